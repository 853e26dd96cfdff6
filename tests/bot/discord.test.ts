/**
 * The Discord bot end to end: discord.js against the Discord simulator (gateway, interactions,
 * CDN, reactions, buttons), the worker in the same process editing the status message over REST,
 * and the real Bluesky PDS. Posts to "tiktok" go to a test adapter that can be told to fail once.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ChatNotifier } from '../../core/chat/notifier.ts';
import { configuredOutboxes } from '../../core/chat/outboxes.ts';
import { DISCORD_COMMANDS, startDiscord, type RunningDiscord } from '../../bot/discord.ts';
import { discordRegister } from '../../cli/discord.ts';
import { startWorker, type RunningWorker } from '../../worker/main.ts';
import { ADAPTERS } from '../../worker/platforms/index.ts';
import { countPostAndMediaRows, flakyTiktok, linkChatAccounts, startVideoServer } from '../support/chat.ts';
import { makeClip } from '../support/clips.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { startPds, type TestPdsHandle } from '../support/pds.ts';
import { INTENTS, startDiscordSim, type DiscordSim, type SimFileInput, type SimGuild, type SimMessage, type SimUser } from '../sim/discord.ts';

let ctx: TestContext;
let pds: TestPdsHandle;
let sim: DiscordSim;
let discord: RunningDiscord;
let worker: RunningWorker;
let notifier: ChatNotifier;
let clip: Buffer;
let linkServer: Awaited<ReturnType<typeof startVideoServer>>;
let admin: SimUser;
let member: SimUser;
let guild: SimGuild;
let general: string;
let alerts: string;
const tiktok = flakyTiktok();

const video = (name: string, bytes: Buffer = clip): SimFileInput => ({ name, contentType: 'video/mp4', bytes });

/** The bot's message in `channel` replying to `messageId` whose text matches. */
function replyTo(channel: string, messageId: string, match: RegExp, timeoutMs = 15_000): Promise<SimMessage> {
  return sim.waitFor(() => sim.channelMessages(channel).find((m) => m.replyTo === messageId && m.authorId === sim.bot.id && match.test(m.content)), timeoutMs);
}

function messageSays(id: string, match: RegExp, timeoutMs = 30_000): Promise<SimMessage> {
  return sim.waitFor(() => {
    const m = sim.messages.get(id);
    return m && match.test(m.content) ? m : undefined;
  }, timeoutMs);
}

/** Runs a slash command; resolves with the interaction's reply once it is no longer "thinking". */
async function slash(user: SimUser, name: string, options: Record<string, string | number | boolean> = {}, attachments: Record<string, SimFileInput> = {}, g = guild, channel = general) {
  const interaction = sim.slashCommand(g.id, channel, user.id, name, options, attachments);
  const original = await sim.waitFor(() => {
    const m = sim.responsesTo(interaction.id).original;
    return m && m.history.length > 1 ? m : undefined;
  }, 15_000);
  return { interaction, original };
}

before(async () => {
  [sim, pds] = await Promise.all([startDiscordSim({ botUsername: 'Reelay' }), startPds()]);
  ctx = await testContext({ env: { DISCORD_TOKEN: sim.token, DISCORD_APPLICATION_ID: sim.applicationId, DISCORD_API_ROOT: sim.apiRoot } });
  admin = sim.addUser('ada', 'Ada');
  guild = sim.addGuild({ name: 'Creators', channels: ['general', 'alerts'], owner: admin });
  member = sim.addMember(guild.id, 'max').user;
  [general, alerts] = guild.channelIds as [string, string];

  await linkChatAccounts(ctx, pds, `discord:${guild.id}`);

  clip = readFileSync(makeClip(join(ctx.dir, 'clip.mp4'), { width: 360, height: 640, seconds: 4 }));
  linkServer = await startVideoServer(clip);

  const out: string[] = [];
  assert.equal(await discordRegister(ctx.config, { guild: guild.id }, { out: (t) => out.push(t) }), 0);
  assert.equal(await discordRegister(ctx.config, {}, { out: (t) => out.push(t) }), 0);
  assert.match(out.join('\n'), /Registered \d+ slash commands in server/);

  notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: configuredOutboxes(ctx.config) });
  discord = await startDiscord(ctx, { notifier, linkHosts: ['localhost'] });
  worker = await startWorker(ctx, { notify: notifier, pollingIntervalSeconds: 0.5, adapters: { ...ADAPTERS, tiktok: tiktok.adapter } });
});

after(async () => {
  if (process.env.REELAY_TEST_TRANSCRIPT) for (const m of sim.messages.values()) console.log(`${m.channelId} ${m.authorId === sim.bot.id ? 'bot' : m.authorId}: ${m.content}`);
  await discord?.stop();
  await worker?.stop();
  await notifier?.close();
  await ctx?.dispose();
  await pds?.close();
  await sim?.close();
  linkServer?.close();
});

test('the commands are registered (guild and global) and the bot identifies with only the intents it uses', () => {
  const names = DISCORD_COMMANDS.map((c) => c.name);
  assert.deepEqual(sim.commandsOf(guild.id).map((c) => c.name), names);
  assert.deepEqual(sim.commandsOf(undefined).map((c) => c.name), names);
  const identify = sim.connections.find((c) => c.kind === 'identify');
  assert.ok(identify, 'the bot opened a gateway session');
  assert.equal(sim.gatewaySessions, 1);
  assert.ok(sim.requests.some((r) => r.route.endsWith('/gateway/bot')));
  assert.equal(discord.client.options.intents.bitfield, INTENTS.Guilds | INTENTS.GuildMessages | INTENTS.MessageContent | INTENTS.GuildMessageReactions);
});

test('/post with an attachment to bluesky ends with the bsky.app link in its status message', async () => {
  const { original } = await slash(member, 'post', { to: 'bluesky', caption: 'Hello from Discord **#reelay** @everyone' }, { attachment: video('clip.mp4') });
  assert.match(original.content, /max asked: \/post to bluesky/);
  assert.match(original.content, /\\\*\\\*#reelay\\\*\\\*/, 'markdown in the caption is escaped');
  const received = await replyTo(general, original.id, /Received clip\.mp4/);
  const status = await messageSays(received.id, /bsky\.app\/profile\/alice\.test\/post\//, 60_000);
  assert.match(status.content, /Published/);
  assert.ok(status.history.length >= 2, 'the status message was edited, not re-sent');
  const { rows } = await ctx.pool.query<{ remote_id: string }>(`SELECT remote_id FROM accounts WHERE platform = 'bluesky'`);
  const records = await pds.listRecords(rows[0]!.remote_id, 'app.bsky.feed.post');
  assert.equal(records.filter((r) => (r.value as { text?: string }).text === 'Hello from Discord **#reelay** @everyone').length, 1, 'posted exactly once');
  // Nothing the bot sends may ping: every message body carries allowed_mentions with no parse.
  for (const request of sim.requestsTo('POST /channels/:channel/messages')) {
    const body = request.body as { allowed_mentions?: { parse?: unknown[] } } | undefined;
    if (body && typeof body === 'object' && 'content' in body) assert.deepEqual(body.allowed_mentions?.parse, []);
  }
});

test('a message mentioning the bot with a video attached is posted the same way', async () => {
  const sent = sim.userMessage(general, member.id, { content: 'post to bluesky\nFrom a mention', mentionsBot: true, attachments: [video('phone.mp4')] });
  const received = await replyTo(general, sent.id, /Received phone\.mp4/);
  await messageSays(received.id, /bsky\.app\/profile\/alice\.test\/post\//, 60_000);
});

test('schedule, then /queue lists it with its local time, then /cancel cancels it', async () => {
  const { original } = await slash(member, 'schedule', { when: '2030-01-15 18:00', to: 'tiktok', caption: 'Later' }, { attachment: video('later.mp4') });
  await replyTo(general, original.id, /Scheduled for .*15 Jan 2030, 18:00/, 30_000);
  const queue = await slash(member, 'queue');
  assert.match(queue.original.content, /TikTok/);
  assert.match(queue.original.content, /18:00/);
  const id = /^([0-9a-f]{8}) ·/.exec(queue.original.content)![1]!;
  const cancel = await slash(member, 'cancel', { id });
  assert.match(cancel.original.content, new RegExp(`Cancelled post ${id}`));
  const empty = await slash(member, 'queue');
  assert.match(empty.original.content, /Nothing is scheduled/);
});

test('approval: a non-approver 👍 is ignored, a Manage Server 👍 publishes', async () => {
  const on = await slash(admin, 'settings change', { setting: 'approval', value: 'on' });
  assert.match(on.original.content, /Approval: on/);
  const { original } = await slash(member, 'post', { to: 'tiktok', caption: 'Please approve' }, { attachment: video('needs-ok.mp4') });
  const received = await replyTo(general, original.id, /Received needs-ok\.mp4/);
  const preview = await sim.waitFor(() => sim.channelMessages(general).find((m) => /Approval needed/.test(m.content) && /Please approve/.test(m.content)), 30_000);
  assert.equal(preview.attachments[0]?.filename, 'preview.jpg', 'the preview carries a thumbnail frame');
  await messageSays(received.id, /Waiting for approval/, 15_000);

  const before = tiktok.posts.length;
  sim.react(general, preview.id, member.id, '👍');
  await new Promise((r) => setTimeout(r, 1500));
  const { rows } = await ctx.pool.query<{ state: string }>(`SELECT d.state FROM deliveries d JOIN posts p ON p.id = d.post_id WHERE p.caption = 'Please approve'`);
  assert.deepEqual(rows.map((r) => r.state), ['awaiting_approval'], 'a non-approver reaction changes nothing');

  sim.react(general, preview.id, admin.id, '👍');
  await messageSays(received.id, /tiktok\.com/, 30_000);
  assert.equal(tiktok.posts.length, before + 1);
  const off = await slash(admin, 'settings change', { setting: 'approval', value: 'off' });
  assert.match(off.original.content, /Approval: off/);
});

test('a failure reaches the alerts channel with a Retry that works and a file fallback', async () => {
  const set = await slash(admin, 'settings alerts', { channel: alerts });
  assert.match(set.original.content, /Saved/);
  tiktok.failNext(1);
  const { original } = await slash(member, 'post', { to: 'tiktok', caption: 'Fails once' }, { attachment: video('fails.mp4') });
  const received = await replyTo(general, original.id, /Received fails\.mp4/);
  const alert = await sim.waitFor(() => sim.channelMessages(alerts).find((m) => /TikTok @creator did not get post/.test(m.content)), 30_000);
  assert.match(alert.content, /possible spam/);
  const buttons = alert.components.flatMap((row) => row.components as Array<{ label: string; custom_id: string }>);
  const retry = buttons.find((b) => b.label === 'Retry')!;
  const file = buttons.find((b) => b.label === 'Send me the file')!;
  assert.ok(retry && file, 'the alert has Retry and Send me the file');
  await messageSays(received.id, /not published|failed/i, 15_000);

  const fileId = sim.pressButton(alerts, alert.id, admin.id, file.custom_id);
  const sentFile = await sim.waitFor(() => sim.responsesTo(fileId.id).original?.content.match(/Sent the TikTok file/) && sim.channelMessages(alerts).find((m) => m.attachments[0]?.filename === 'reelay-tiktok.mp4'), 15_000);
  assert.ok(sentFile.attachments[0]!.size > 0);
  assert.ok(sim.responsesTo(fileId.id).original!.ephemeral, 'button answers are ephemeral');

  const pressed = sim.pressButton(alerts, alert.id, admin.id, retry.custom_id);
  const answer = await sim.waitFor(() => sim.responsesTo(pressed.id).original?.content.match(/Trying TikTok again/), 10_000);
  assert.ok(answer);
  await messageSays(received.id, /tiktok\.com/, 30_000);
  await slash(admin, 'settings alerts', { off: true });
});

test('a channel of another server must accept the alerts first; only its admins can', async () => {
  const agency = sim.addGuild({ name: 'Agency', channels: ['inbox'], owner: member });
  const zoe = sim.addMember(agency.id, 'zoe').user;
  const inbox = agency.channelIds[0]!;
  const setting = async () => (await ctx.pool.query<{ a: string | null }>(`SELECT settings->>'alertsChat' AS a FROM workspaces WHERE id = $1`, [`discord:${guild.id}`])).rows[0]?.a ?? null;
  const asked = sim.userMessage(general, admin.id, { content: `settings alerts <#${inbox}>`, mentionsBot: true });
  // Both sides name the other's server, not only a channel name any server may have.
  await replyTo(general, asked.id, /Asked #inbox \(Agency\) to take this chat's alerts/);
  const request = await sim.waitFor(() => sim.channelMessages(inbox).find((m) => m.authorId === sim.bot.id && /^#general \(Creators\) wants to send its Reelay alerts here \(asked by/.test(m.content)), 10_000);
  const accept = request.components.flatMap((row) => row.components as Array<{ label: string; custom_id: string }>).find((b) => b.label === 'Accept')!;

  const refused = sim.pressButton(inbox, request.id, zoe.id, accept.custom_id);
  await sim.waitFor(() => sim.responsesTo(refused.id).original?.content.match(/Only admins of this chat can use Accept/), 10_000);
  assert.equal(await setting(), null, 'a member without Manage Server cannot accept');
  const pressed = sim.pressButton(inbox, request.id, member.id, accept.custom_id);
  await sim.waitFor(() => sim.responsesTo(pressed.id).original?.content.match(/Accepted by/), 10_000);
  await sim.waitFor(() => sim.channelMessages(general).find((m) => /#inbox \(Agency\) accepted: this chat's Reelay alerts go there now/.test(m.content)), 10_000);
  assert.equal(await setting(), `discord:${inbox}`);
  await slash(admin, 'settings alerts', { off: true });
});

test('bad inputs get a clear reply and leave no rows behind', async () => {
  const before = await countPostAndMediaRows(ctx);
  const cases: Array<{ run: () => Promise<string>; expect: RegExp }> = [
    { run: async () => (await slash(member, 'post', { to: 'bluesky' }, { attachment: { name: 'p.jpg', contentType: 'image/jpeg', bytes: Buffer.alloc(100, 1) } })).original.id, expect: /That is a photo/ },
    { run: async () => (await slash(member, 'post', { to: 'bluesky' }, { attachment: { name: 'notes.pdf', contentType: 'application/pdf', bytes: Buffer.alloc(100, 1) } })).original.id, expect: /notes\.pdf is not a video file/ },
    { run: async () => (await slash(member, 'schedule', { when: 'yesterday 5pm', to: 'bluesky' }, { attachment: video('x.mp4') })).original.id, expect: /in the past/ },
    { run: async () => (await slash(member, 'post', { to: 'myspace' }, { attachment: video('x.mp4') })).original.id, expect: /myspace/ },
    { run: async () => (await slash(member, 'post', { to: 'youtube' }, { attachment: video('x.mp4') })).original.id, expect: /No YouTube account is linked/ },
    { run: async () => (await slash(member, 'post', { to: 'bluesky', url: 'http://127.0.0.1:9/video.mp4' })).original.id, expect: /private|local|not allowed|refus/i },
    { run: async () => (await slash(member, 'post', { to: 'bluesky' }, { attachment: video('broken.mp4', Buffer.concat([clip.subarray(0, 200), Buffer.alloc(4000, 7)])) })).original.id, expect: /broken\.mp4 (looks damaged|is not a video)/ },
    { run: async () => sim.userMessage(general, member.id, { content: 'post to bluesky', mentionsBot: true, attachments: [{ name: 'p.png', contentType: 'image/png', bytes: Buffer.alloc(10, 1) }] }).id, expect: /That is a photo/ },
  ];
  for (const item of cases) {
    const id = await item.run();
    await replyTo(general, id, item.expect, 20_000);
  }
  const lonely = sim.addGuild({ name: 'No accounts', owner: admin });
  const none = await slash(admin, 'post', {}, { attachment: video('x.mp4') }, lonely, lonely.channelIds[0]!);
  await replyTo(lonely.channelIds[0]!, none.original.id, /No any platform account|No .* account is linked/);

  await discord.service.idle();
  assert.deepEqual(await countPostAndMediaRows(ctx), before, 'no post or media row was written for any bad input');
});

test('a url option is fetched and posted; management commands work through a mention too', async () => {
  const url = linkServer.url('/from-link.mp4');
  const { original } = await slash(member, 'post', { to: 'tiktok', caption: 'From a link', url });
  const received = await replyTo(general, original.id, /Received from-link\.mp4/);
  await messageSays(received.id, /tiktok\.com/, 30_000);
  const { rows } = await ctx.pool.query<{ caption: string }>(`SELECT caption FROM posts ORDER BY created_at DESC LIMIT 1`);
  assert.equal(rows[0]!.caption, 'From a link', 'the link is not part of the caption');

  // A 429 on the reply is waited out by @discordjs/rest, not lost.
  sim.fault('POST /channels/:channel/messages', { status: 429, retryAfter: 0.3 });
  const asked = sim.userMessage(general, member.id, { content: 'accounts', mentionsBot: true });
  await replyTo(general, asked.id, /Bluesky @alice\.test: ok/);
  assert.ok(sim.requestsTo('POST /channels/:channel/messages').some((r) => r.status === 429));

  const link = await slash(admin, 'link', { platform: 'bluesky' });
  assert.ok(link.original.ephemeral, 'a one-time link is shown to the asker only');
});
