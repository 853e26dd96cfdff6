/**
 * `reelay demo --chat telegram`: the chat experience without a token. The real bot talks to the
 * Bot API simulator from the test suite, the real worker edits the status message, the post goes
 * to a local Bluesky PDS; then the conversation is printed as a newcomer would read it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChatNotifier } from '../core/chat/notifier.ts';
import { configuredOutboxes } from '../core/chat/outboxes.ts';
import { ensureWorkspace } from '../core/workspaces.ts';
import { startTelegram } from '../bot/telegram.ts';
import { startTelegramSim } from '../tests/sim/telegram.ts';
import { startWorker } from '../worker/main.ts';
import { addBluesky } from './accounts.ts';
import { makeSampleClip, withDemoEnvironment } from './demo.ts';
import type { CommandIo } from './posts.ts';

const WAIT_MS = 90_000;

export async function runTelegramDemo(io: CommandIo, options: { keep?: boolean } = {}): Promise<number> {
  const sim = await startTelegramSim({ botUsername: 'reelay_demo_bot' });
  try {
    return await withDemoEnvironment(io, { ...options, env: { TELEGRAM_BOT_TOKEN: sim.token, TELEGRAM_API_ROOT: sim.apiRoot } }, async ({ ctx, pds, dir, account, step }) => {
      const creator = sim.createUser({ first_name: 'Ada', username: 'ada' });
      const group = sim.createGroup({ title: 'Creators', type: 'supergroup', creator, bot: 'administrator' });
      const workspace = `telegram:${group.id}`;
      await ensureWorkspace(ctx.pool, workspace, ctx.config.defaults.timeZone);
      await addBluesky(ctx, { handle: account.handle, appPassword: account.appPassword, service: pds.url, workspace }, { out: (t) => step(t) });
      step(`Telegram Bot API simulator at ${sim.apiRoot}; a group "Creators" with @ada and the bot.`);

      const notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: configuredOutboxes(ctx.config) });
      const telegram = await startTelegram(ctx, { notifier });
      const worker = await startWorker(ctx, { notify: notifier, pollingIntervalSeconds: 0.5 });
      try {
        const clip = join(dir, 'sample.mp4');
        await makeSampleClip(clip, ctx.config.media.ffmpegPath);
        const video = { source: await readFile(clip), name: 'sample.mp4', mime: 'video/mp4' };

        const help = sim.sendUserMessage(group, creator, { text: '/help' });
        await sim.waitForBotMessage(group, (m) => m.replyTo === help.message_id, WAIT_MS);
        const sent = sim.sendUserMessage(group, creator, { video, caption: '/post to bluesky\nHello from Reelay in Telegram 👋 #reelay' });
        step('@ada sent a video captioned "/post to bluesky".');
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
        const link = /https:\/\/bsky\.app\/\S+/.exec(status.text ?? '')?.[0];
        io.out('');
        io.out('The conversation in "Creators":');
        io.out('');
        for (const line of sim.transcript(group)) io.out(`  ${line.replaceAll('\n', '\n    ')}`);
        io.out('');
        if (!link) {
          io.out('The demo post did not publish.');
          return 1;
        }
        io.out(`  Post URL: ${link}`);
        io.out('Nothing left this machine: Telegram was a local simulator and the post lives on the local PDS.');
        return 0;
      } finally {
        await telegram.stop();
        await worker.stop();
        await notifier.close();
      }
    });
  } finally {
    await sim.close();
  }
}
