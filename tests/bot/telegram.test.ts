/**
 * The Telegram bot end to end: grammY against the Bot API simulator (long polling, files, reactions,
 * buttons), the worker in the same process editing the status message through the Bot API, and
 * the real Bluesky PDS. Posts to "tiktok" go to a test adapter that can be told to fail once.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ChatNotifier } from '../../core/chat/notifier.ts';
import { configuredOutboxes } from '../../core/chat/outboxes.ts';
import { startTelegram, TELEGRAM_COMMANDS, type RunningTelegram } from '../../bot/telegram.ts';
import { startWorker, type RunningWorker } from '../../worker/main.ts';
import { ADAPTERS } from '../../worker/platforms/index.ts';
import { countPostAndMediaRows, flakyTiktok, linkChatAccounts, startVideoServer } from '../support/chat.ts';
import { makeClip } from '../support/clips.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { startPds, type TestPdsHandle } from '../support/pds.ts';
import { startTelegramSim, type SimChat, type SimMessage, type SimUser, type TelegramSim } from '../sim/telegram.ts';

let ctx: TestContext;
let pds: TestPdsHandle;
let sim: TelegramSim;
let telegram: RunningTelegram;
let worker: RunningWorker;
let notifier: ChatNotifier;
let clip: Buffer;
let linkServer: Awaited<ReturnType<typeof startVideoServer>>;
let admin: SimUser;
let member: SimUser;
let group: SimChat;
let alertsChat: SimChat;
const tiktok = flakyTiktok();

const workspace = (chat: SimChat) => `telegram:${chat.id}`;
const text = (m: SimMessage) => m.text ?? m.caption ?? '';

/** The bot's reply to a user message (a new message replying to it). */
function replyTo(chat: SimChat, message: { message_id: number }, match: RegExp, timeoutMs = 15_000): Promise<SimMessage> {
  return sim.waitForBotMessage(chat, (m) => m.replyTo === message.message_id && match.test(text(m)), timeoutMs);
}

before(async () => {
  [sim, pds] = await Promise.all([startTelegramSim({ botUsername: 'reelay_bot' }), startPds()]);
  ctx = await testContext({ env: { TELEGRAM_BOT_TOKEN: sim.token, TELEGRAM_API_ROOT: sim.apiRoot } });
  admin = sim.createUser({ first_name: 'Ada', username: 'ada' });
  member = sim.createUser({ first_name: 'Max', username: 'max' });
  group = sim.createGroup({ title: 'Creators', type: 'supergroup', creator: admin, members: [member], bot: 'administrator' });
  alertsChat = sim.createGroup({ title: 'Alerts', type: 'supergroup', creator: admin, members: [member], bot: 'administrator' });

  await linkChatAccounts(ctx, pds, workspace(group));

  clip = readFileSync(makeClip(join(ctx.dir, 'clip.mp4'), { width: 360, height: 640, seconds: 4 }));
  linkServer = await startVideoServer(clip);

  notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: configuredOutboxes(ctx.config) });
  telegram = await startTelegram(ctx, { notifier, linkHosts: ['localhost'] });
  worker = await startWorker(ctx, { notify: notifier, pollingIntervalSeconds: 0.5, adapters: { ...ADAPTERS, tiktok: tiktok.adapter } });
});

after(async () => {
  if (process.env.REELAY_TEST_TRANSCRIPT) for (const chat of [group, alertsChat]) console.log(sim.transcript(chat).join('\n'));
  await telegram?.stop();
  await worker?.stop();
  await notifier?.close();
  await ctx?.dispose();
  await pds?.close();
  await sim?.close();
  linkServer?.close();
});

test('the bot registers its commands and polls for reactions and button presses', async () => {
  assert.deepEqual(sim.myCommands()?.map((c) => c.command), TELEGRAM_COMMANDS.map((c) => c.command));
  const polls = sim.requestsTo('getUpdates');
  assert.ok(polls.length > 0);
  assert.ok(sim.currentAllowedUpdates().includes('message_reaction'));
  assert.ok(sim.currentAllowedUpdates().includes('callback_query'));
});

test('a video captioned /post to bluesky ends with the bsky.app link in its status message', async () => {
  const sent = sim.sendUserMessage(group, member, { video: { source: clip, name: 'clip.mp4', mime: 'video/mp4' }, caption: '/post to bluesky\nHello from Telegram #reelay' });
  const received = await replyTo(group, sent, /Received clip\.mp4/);
  const status = await sim.waitForBotMessage(group, (m) => m.messageId === received.messageId && /bsky\.app\/profile\/alice\.test\/post\//.test(text(m)), 60_000);
  assert.match(text(status), /Published/);
  assert.ok(status.edits.length >= 1, 'the status message was edited, not re-sent');
  const { rows } = await ctx.pool.query<{ remote_id: string }>(`SELECT remote_id FROM accounts WHERE platform = 'bluesky'`);
  const records = await pds.listRecords(rows[0]!.remote_id, 'app.bsky.feed.post');
  assert.equal(records.filter((r) => (r.value as { text?: string }).text === 'Hello from Telegram #reelay').length, 1, 'posted exactly once');
});

test('status edits are at least 2 s apart and never identical', async () => {
  const editCalls = sim.requestsTo('editMessageText').filter((r) => r.status === 200);
  const byMessage = new Map<string, Array<{ at: number; text: string }>>();
  for (const call of editCalls) {
    const key = `${String(call.params.chat_id)}:${String(call.params.message_id)}`;
    byMessage.set(key, [...(byMessage.get(key) ?? []), { at: call.at, text: String(call.params.text) }]);
  }
  assert.ok(byMessage.size > 0);
  for (const edits of byMessage.values()) {
    for (let i = 1; i < edits.length; i++) {
      assert.ok(edits[i]!.at - edits[i - 1]!.at >= 1900, `edits ${edits[i]!.at - edits[i - 1]!.at} ms apart`);
      assert.notEqual(edits[i]!.text, edits[i - 1]!.text);
    }
  }
});

test('schedule, then /queue lists it with its local time, then /cancel cancels it', async () => {
  const sent = sim.sendUserMessage(group, member, { video: { source: clip, name: 'later.mp4', mime: 'video/mp4' }, caption: '/schedule 2030-01-15 18:00 to tiktok\nLater' });
  await replyTo(group, sent, /Scheduled for .*15 Jan 2030, 18:00/);
  const queued = sim.sendUserMessage(group, member, { text: '/queue' });
  const queue = await replyTo(group, queued, /TikTok/);
  assert.match(text(queue), /Tue 15 Jan 2030|15 Jan 2030|2030-01-15/);
  assert.match(text(queue), /18:00/);
  const id = /^([0-9a-f]{8}) ·/.exec(text(queue))![1]!;
  const cancel = sim.sendUserMessage(group, member, { text: `/cancel ${id}` });
  await replyTo(group, cancel, new RegExp(`Cancelled post ${id}`));
  const after = sim.sendUserMessage(group, member, { text: '/queue' });
  await replyTo(group, after, /Nothing is scheduled/);
});

test('approval: a non-admin 👍 is ignored, an admin 👍 publishes', async () => {
  const on = sim.sendUserMessage(group, admin, { text: '/settings approval on' });
  await replyTo(group, on, /Approval: on/);
  const sent = sim.sendUserMessage(group, member, { video: { source: clip, name: 'needs-ok.mp4', mime: 'video/mp4' }, caption: '/post to tiktok\nPlease approve' });
  const received = await replyTo(group, sent, /Received needs-ok\.mp4/);
  const preview = await sim.waitForBotMessage(group, (m) => /Approval needed/.test(text(m)) && /Please approve/.test(text(m)), 30_000);
  assert.equal(preview.media?.kind, 'photo', 'the preview carries a thumbnail frame');
  await sim.waitForBotMessage(group, (m) => m.messageId === received.messageId && /Waiting for approval/.test(text(m)), 15_000);

  const before = tiktok.posts.length;
  sim.react(group, member, preview.messageId, ['👍']);
  await new Promise((r) => setTimeout(r, 1500));
  const { rows } = await ctx.pool.query<{ state: string }>(`SELECT d.state FROM deliveries d JOIN posts p ON p.id = d.post_id WHERE p.caption = 'Please approve'`);
  assert.deepEqual(rows.map((r) => r.state), ['awaiting_approval'], 'a non-approver reaction changes nothing');

  sim.react(group, admin, preview.messageId, ['👍']);
  await sim.waitForBotMessage(group, (m) => m.messageId === received.messageId && /tiktok\.com/.test(text(m)), 30_000);
  assert.equal(tiktok.posts.length, before + 1);
  const off = sim.sendUserMessage(group, admin, { text: '/settings approval off' });
  await replyTo(group, off, /Approval: off/);
});

test('alerts to another chat: that chat is asked, and only its admin can accept', async () => {
  const alertsSetting = async () => (await ctx.pool.query<{ a: string | null }>(`SELECT settings->>'alertsChat' AS a FROM workspaces WHERE id = $1`, [workspace(group)])).rows[0]?.a ?? null;
  const pressed = async (message: SimMessage, user: SimUser, label: string): Promise<string> => {
    const data = ((message.replyMarkup?.inline_keyboard ?? []) as Array<Array<{ text: string; callback_data: string }>>).flat().find((b) => b.text === label)!.callback_data;
    const id = sim.pressButton(alertsChat, user, message.messageId, data);
    return String((await sim.waitFor(() => sim.callbackAnswers.get(id), 10_000)).text);
  };
  const request = (after: number) => sim.waitForBotMessage(alertsChat, (m) => m.messageId > after && /^Creators wants to send its Reelay alerts here \(asked by @ada\)/.test(text(m)), 10_000);

  const nobot = sim.createGroup({ title: 'No bot here', type: 'supergroup', creator: admin, bot: 'left' });
  await replyTo(group, sim.sendUserMessage(group, admin, { text: `/settings alerts ${nobot.id}` }), /cannot post in No bot here/);
  await replyTo(group, sim.sendUserMessage(group, member, { text: `/settings alerts ${alertsChat.id}` }), /Only admins/);

  await replyTo(group, sim.sendUserMessage(group, admin, { text: `/settings alerts ${alertsChat.id}` }), /Asked Alerts to take this chat's alerts/);
  const first = await request(0);
  assert.match(await pressed(first, admin, 'Decline'), /Declined by @ada/);
  await sim.waitForBotMessage(group, (m) => /Alerts declined to take this chat's Reelay alerts/.test(text(m)));
  assert.equal(await alertsSetting(), null, 'a declined request changes nothing');
  assert.deepEqual((sim.getMessage(alertsChat, first.messageId)!.replyMarkup?.inline_keyboard ?? []) as unknown[], [], 'the answered request lost its buttons');

  await replyTo(group, sim.sendUserMessage(group, admin, { text: `/settings alerts ${alertsChat.id}` }), /Asked Alerts/);
  await replyTo(group, sim.sendUserMessage(group, member, { text: '/settings' }), /Alerts request: waiting for an admin of Alerts to accept/);
  const second = await request(first.messageId);
  assert.match(await pressed(second, member, 'Accept'), /Only admins of this chat can use Accept/);
  assert.equal(await alertsSetting(), null, 'a non-admin cannot accept');
  assert.match(await pressed(second, admin, 'Accept'), /Accepted by @ada: Reelay alerts of Creators come here now/);
  await sim.waitForBotMessage(group, (m) => /Alerts accepted: this chat's Reelay alerts go there now/.test(text(m)));
  assert.equal(await alertsSetting(), `telegram:${alertsChat.id}`);
  const shown = await replyTo(group, sim.sendUserMessage(group, member, { text: '/settings' }), /Alerts: Alerts \(set with \/settings alerts\)/);
  assert.doesNotMatch(text(shown), /Alerts request/);
});

test('a failure reaches the alerts chat with a Retry that works', async () => {
  tiktok.failNext(1);
  const sent = sim.sendUserMessage(group, member, { video: { source: clip, name: 'fails.mp4', mime: 'video/mp4' }, caption: '/post to tiktok\nFails once' });
  const received = await replyTo(group, sent, /Received fails\.mp4/);
  const alert = await sim.waitForBotMessage(alertsChat, (m) => /TikTok @creator did not get post/.test(text(m)), 30_000);
  assert.match(text(alert), /possible spam/);
  const rows = (alert.replyMarkup?.inline_keyboard ?? []) as Array<Array<{ text: string; callback_data: string }>>;
  const retry = rows.flat().find((b) => b.text === 'Retry')!;
  assert.ok(retry, 'the alert has a Retry button');
  await sim.waitForBotMessage(group, (m) => m.messageId === received.messageId && /not published|failed/i.test(text(m)), 15_000);

  const queryId = sim.pressButton(alertsChat, admin, alert.messageId, retry.callback_data);
  await sim.waitFor(() => sim.callbackAnswers.get(queryId), 10_000);
  assert.match(String(sim.callbackAnswers.get(queryId)!.text), /Trying TikTok again/);
  await sim.waitForBotMessage(group, (m) => m.messageId === received.messageId && /tiktok\.com/.test(text(m)), 30_000);
});

test('bad inputs get a clear reply and leave no rows behind', async () => {
  const before = await countPostAndMediaRows(ctx);
  const cases: Array<{ send: () => { message_id: number }; expect: RegExp }> = [
    { send: () => sim.sendUserMessage(group, member, { photo: { source: readFileSync(makeClip(join(ctx.dir, 'c.mp4'))).subarray(0, 100), name: 'p.jpg', mime: 'image/jpeg' }, caption: '/post to bluesky' }), expect: /That is a photo/ },
    { send: () => sim.sendUserMessage(group, member, { text: '/schedule yesterday 5pm to bluesky' }), expect: /in the past/ },
    { send: () => sim.sendUserMessage(group, member, { video: { source: clip, name: 'x.mp4', mime: 'video/mp4' }, caption: '/post to myspace' }), expect: /myspace/ },
    { send: () => sim.sendUserMessage(group, member, { video: { source: clip, name: 'x.mp4', mime: 'video/mp4' }, caption: '/post to youtube' }), expect: /No YouTube account is linked/ },
    { send: () => sim.sendUserMessage(group, member, { text: '/post to bluesky\nhttp://127.0.0.1:9/video.mp4' }), expect: /private|local|not allowed|refus/i },
  ];
  for (const item of cases) {
    const sent = item.send();
    await replyTo(group, sent, item.expect);
  }
  const lonely = sim.createGroup({ title: 'No accounts', type: 'supergroup', creator: admin, bot: 'administrator' });
  const none = sim.sendUserMessage(lonely, admin, { video: { source: clip, name: 'x.mp4', mime: 'video/mp4' }, caption: '/post' });
  await replyTo(lonely, none, /No any platform account|No .* account is linked/);

  const corrupt = sim.sendUserMessage(group, member, { video: { source: Buffer.concat([clip.subarray(0, 200), Buffer.alloc(4000, 7)]), name: 'broken.mp4', mime: 'video/mp4' }, caption: '/post to bluesky' });
  await replyTo(group, corrupt, /broken\.mp4 (looks damaged|is not a video)/);

  const big = sim.sendUserMessage(group, member, { video: { source: Buffer.alloc(21 * 1024 * 1024, 1), name: 'big.mp4', mime: 'video/mp4' }, caption: '/post to bluesky' });
  await replyTo(group, big, /only 20 MB/);

  await telegram.service.idle();
  assert.deepEqual(await countPostAndMediaRows(ctx), before, 'no post or media row was written for any bad input');
});

test('a link on a caption line is fetched and posted; a command replying to a video uses that video', async () => {
  const url = linkServer.url('/from-link.mp4');
  const sent = sim.sendUserMessage(group, member, { text: `/post to tiktok\nFrom a link\n${url}` });
  const received = await replyTo(group, sent, /Received from-link\.mp4/);
  await sim.waitForBotMessage(group, (m) => m.messageId === received.messageId && /tiktok\.com/.test(text(m)), 30_000);
  const { rows } = await ctx.pool.query<{ caption: string }>(`SELECT caption FROM posts ORDER BY created_at DESC LIMIT 1`);
  assert.equal(rows[0]!.caption, 'From a link', 'the link is not part of the caption');

  const video = sim.sendUserMessage(group, member, { video: { source: clip, name: 'earlier.mp4', mime: 'video/mp4' } });
  const command = sim.sendUserMessage(group, member, { text: '/post to tiktok\nReplying', reply_to_message_id: video.message_id });
  const status = await replyTo(group, command, /Received earlier\.mp4/);
  await sim.waitForBotMessage(group, (m) => m.messageId === status.messageId && /tiktok\.com/.test(text(m)), 30_000);
});
