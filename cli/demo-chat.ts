/**
 * `reelay demo --chat telegram|discord`: the chat experience without a token. The real bot talks to
 * the chat simulator from the test suite, the real worker edits the status message, the post goes
 * to a local Bluesky PDS; then the conversation is printed as a newcomer would read it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChatNotifier } from '../core/chat/notifier.ts';
import { configuredOutboxes } from '../core/chat/outboxes.ts';
import { ensureWorkspace } from '../core/workspaces.ts';
import { startDiscord } from '../bot/discord.ts';
import { startTelegram } from '../bot/telegram.ts';
import { startDiscordSim, type DiscordSim, type SimMessage } from '../tests/sim/discord.ts';
import { startTelegramSim } from '../tests/sim/telegram.ts';
import { startWorker } from '../worker/main.ts';
import { addBluesky } from './accounts.ts';
import { makeSampleClip, withDemoEnvironment, type DemoEnvironment } from './demo.ts';
import { discordRegister } from './discord.ts';
import type { CommandIo } from './posts.ts';

const WAIT_MS = 90_000;

/** What every chat demo shares: the workspace with the PDS account, a worker, a sample clip. */
async function demoBackend(env: DemoEnvironment, workspace: string): Promise<{ notifier: ChatNotifier; clip: Buffer; stop(): Promise<void> }> {
  const { ctx, pds, dir, account, step } = env;
  await ensureWorkspace(ctx.pool, workspace, ctx.config.defaults.timeZone);
  await addBluesky(ctx, { handle: account.handle, appPassword: account.appPassword, service: pds.url, workspace }, { out: (t) => step(t) });
  const path = join(dir, 'sample.mp4');
  await makeSampleClip(path, ctx.config.media.ffmpegPath);
  const notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: configuredOutboxes(ctx.config) });
  const worker = await startWorker(ctx, { notify: notifier, pollingIntervalSeconds: 0.5 });
  return {
    notifier,
    clip: await readFile(path),
    stop: async () => {
      await worker.stop();
      await notifier.close();
    },
  };
}

/** Prints the conversation; 0 when the status message ended with the post's link. */
function printConversation(io: CommandIo, chat: string, transcript: readonly string[], status: string): number {
  const link = /https:\/\/bsky\.app\/[^\s>]+/.exec(status)?.[0];
  io.out('');
  io.out('The conversation in "Creators":');
  io.out('');
  for (const line of transcript) io.out(`  ${line.replaceAll('\n', '\n    ')}`);
  io.out('');
  if (!link) {
    io.out('The demo post did not publish.');
    return 1;
  }
  io.out(`  Post URL: ${link}`);
  io.out(`Nothing left this machine: ${chat} was a local simulator and the post lives on the local PDS.`);
  return 0;
}

export async function runTelegramDemo(io: CommandIo, options: { keep?: boolean } = {}): Promise<number> {
  const sim = await startTelegramSim({ botUsername: 'reelay_demo_bot' });
  try {
    return await withDemoEnvironment(io, { ...options, env: { TELEGRAM_BOT_TOKEN: sim.token, TELEGRAM_API_ROOT: sim.apiRoot } }, async (env) => {
      const creator = sim.createUser({ first_name: 'Ada', username: 'ada' });
      const group = sim.createGroup({ title: 'Creators', type: 'supergroup', creator, bot: 'administrator' });
      const backend = await demoBackend(env, `telegram:${group.id}`);
      env.step(`Telegram Bot API simulator at ${sim.apiRoot}; a group "Creators" with @ada and the bot.`);
      const telegram = await startTelegram(env.ctx, { notifier: backend.notifier });
      try {
        const video = { source: backend.clip, name: 'sample.mp4', mime: 'video/mp4' };
        const help = sim.sendUserMessage(group, creator, { text: '/help' });
        await sim.waitForBotMessage(group, (m) => m.replyTo === help.message_id, WAIT_MS);
        const sent = sim.sendUserMessage(group, creator, { video, caption: '/post to bluesky\nHello from Reelay in Telegram 👋 #reelay' });
        env.step('@ada sent a video captioned "/post to bluesky".');
        const status = await sim.waitForBotMessage(group, (m) => m.replyTo === sent.message_id && /bsky\.app|Not published/.test(m.text ?? ''), WAIT_MS);
        const scheduled = sim.sendUserMessage(group, creator, { video, caption: '/schedule tomorrow 6pm to bluesky\nSee you tomorrow' });
        await sim.waitForBotMessage(group, (m) => m.replyTo === scheduled.message_id && /Scheduled for/.test(m.text ?? ''), WAIT_MS);
        const queue = sim.sendUserMessage(group, creator, { text: '/queue' });
        const listed = await sim.waitForBotMessage(group, (m) => m.replyTo === queue.message_id, WAIT_MS);
        const id = /^([0-9a-f]{8})/.exec(listed.text ?? '')?.[1];
        if (id) {
          const cancel = sim.sendUserMessage(group, creator, { text: `/cancel ${id}` });
          await sim.waitForBotMessage(group, (m) => m.replyTo === cancel.message_id, WAIT_MS);
        }
        return printConversation(io, 'Telegram', sim.transcript(group), status.text ?? '');
      } finally {
        await telegram.stop();
        await backend.stop();
      }
    });
  } finally {
    await sim.close();
  }
}

/** A channel as a reader sees it: who said what, slash commands as typed, escapes rendered. */
function discordTranscript(sim: DiscordSim, channelId: string): string[] {
  return sim.channelMessages(channelId).map((m) => {
    const user = sim.users.get(m.authorId);
    const who = m.authorId === sim.bot.id ? sim.bot.username : (user?.globalName ?? user?.username ?? m.authorId);
    const interaction = m.interactionId ? sim.interactions.get(m.interactionId) : undefined;
    const asker = interaction ? sim.users.get(interaction.userId) : undefined;
    const context = interaction?.commandName ? ` (to /${interaction.commandName} from ${asker?.globalName ?? asker?.username ?? '?'})` : '';
    const files = m.attachments.map((a) => ` [${a.filename}]`).join('');
    const content = m.content.replace(/\\([\\*_~`|>#\-[\]().])/g, '$1').replaceAll(`<@${sim.bot.id}>`, `@${sim.bot.username}`);
    return `${who}${context}: ${content}${files}`;
  });
}

export async function runDiscordDemo(io: CommandIo, options: { keep?: boolean } = {}): Promise<number> {
  const sim = await startDiscordSim({ botUsername: 'Reelay' });
  try {
    const env = { DISCORD_TOKEN: sim.token, DISCORD_APPLICATION_ID: sim.applicationId, DISCORD_API_ROOT: sim.apiRoot };
    return await withDemoEnvironment(io, { ...options, env }, async (demo) => {
      const creator = sim.addUser('ada', 'Ada');
      const guild = sim.addGuild({ name: 'Creators', owner: creator });
      const channel = guild.channelIds[0]!;
      const backend = await demoBackend(demo, `discord:${guild.id}`);
      await discordRegister(demo.ctx.config, { guild: guild.id }, { out: (t) => demo.step(t) });
      demo.step(`Discord simulator at ${sim.url}; a server "Creators" owned by Ada, with the bot in #general.`);
      const discord = await startDiscord(demo.ctx, { notifier: backend.notifier });
      const botReply = (to: string, match: RegExp): Promise<SimMessage> =>
        sim.waitFor(() => sim.channelMessages(channel).find((m) => m.authorId === sim.bot.id && m.replyTo === to && match.test(m.content)), WAIT_MS);
      /** A slash command; resolves with the deferred reply once it says something. */
      const slash = async (name: string, values: Record<string, string> = {}, withVideo = false): Promise<SimMessage> => {
        const { id } = sim.slashCommand(guild.id, channel, creator.id, name, values, withVideo ? { attachment: { name: 'sample.mp4', contentType: 'video/mp4', bytes: backend.clip } } : {});
        return sim.waitFor(() => {
          const original = sim.responsesTo(id).original;
          return original && original.history.length > 1 ? original : undefined;
        }, WAIT_MS);
      };
      try {
        await slash('help');
        const asked = await slash('post', { to: 'bluesky', caption: 'Hello from Reelay in Discord 👋 #reelay' }, true);
        demo.step('Ada ran /post to:bluesky with a video attached.');
        const received = await botReply(asked.id, /Received/);
        const status = await sim.waitFor(() => {
          const m = sim.messages.get(received.id);
          return m && /bsky\.app|Not published/.test(m.content) ? m : undefined;
        }, WAIT_MS);
        const mention = sim.userMessage(channel, creator.id, {
          content: 'schedule tomorrow 6pm to bluesky\nSee you tomorrow',
          mentionsBot: true,
          attachments: [{ name: 'sample.mp4', contentType: 'video/mp4', bytes: backend.clip }],
        });
        demo.step('Ada mentioned the bot with a video: "@Reelay schedule tomorrow 6pm to bluesky".');
        await botReply(mention.id, /Scheduled for/);
        const listed = await slash('queue');
        const id = /^([0-9a-f]{8})/.exec(listed.content)?.[1];
        if (id) await slash('cancel', { id });
        return printConversation(io, 'Discord', discordTranscript(sim, channel), status.content);
      } finally {
        await discord.stop();
        await backend.stop();
      }
    });
  } finally {
    await sim.close();
  }
}
