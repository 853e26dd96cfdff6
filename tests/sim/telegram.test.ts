import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { autoRetry } from '@grammyjs/auto-retry';
import { Api, Bot, GrammyError, HttpError, InlineKeyboard, InputFile, webhookCallback } from 'grammy';
import type { Update } from 'grammy/types';
import { startTelegramSim, type TelegramSim } from './telegram.ts';

async function withSim(fn: (sim: TelegramSim) => Promise<void>, options: Parameters<typeof startTelegramSim>[0] = {}): Promise<void> {
  const sim = await startTelegramSim(options);
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

function apiOf(sim: TelegramSim): Api {
  return new Api(sim.token, { apiRoot: sim.url });
}

async function rejects(promise: Promise<unknown>, code: number, description: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof GrammyError, `expected a GrammyError, got ${String(error)}`);
    assert.equal(error.error_code, code);
    assert.match(error.description, description);
    return true;
  });
}

async function raw(sim: TelegramSim, path: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${sim.url}${path}`, init);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

test('wire basics: tokens, unknown methods, JSON, form and query parameters', async () => {
  await withSim(async (sim) => {
    assert.deepEqual(await raw(sim, '/bot123:wrong/getMe'), { status: 401, body: { ok: false, error_code: 401, description: 'Unauthorized' } });
    assert.equal((await raw(sim, `/bot${sim.token}/noSuchMethod`, { method: 'POST' })).status, 404);
    const me = await apiOf(sim).getMe();
    assert.equal(me.id, sim.bot.id);
    assert.equal(me.is_bot, true);
    assert.equal(me.can_read_all_group_messages, false);

    const user = sim.createUser({ first_name: 'Ann' });
    const chat = sim.createPrivateChat(user);
    const viaQuery = await raw(sim, `/bot${sim.token}/SENDMESSAGE?chat_id=${chat.id}&text=hello%20query`);
    assert.equal(viaQuery.status, 200);
    const viaForm = await raw(sim, `/bot${sim.token}/sendMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ chat_id: String(chat.id), text: 'hello form', reply_markup: JSON.stringify({ inline_keyboard: [[{ text: 'Go', callback_data: 'go' }]] }) }).toString(),
    });
    assert.equal(viaForm.status, 200);
    assert.deepEqual(sim.botMessages(chat).map((m) => m.text), ['hello query', 'hello form']);
    assert.deepEqual(sim.botMessages(chat)[1]!.replyMarkup, { inline_keyboard: [[{ text: 'Go', callback_data: 'go' }]] });
    const badJson = await raw(sim, `/bot${sim.token}/sendMessage`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    assert.equal(badJson.status, 400);
    assert.equal(sim.requestsTo('sendMessage').length, 3);
    assert.deepEqual(sim.requestsTo('getMe').map((r) => r.status), [401, 200]);
  });
});

test('a grammY bot long-polls: commands (text and caption), buttons, reactions, stop confirms the offset', async () => {
  await withSim(async (sim) => {
    const owner = sim.createUser({ first_name: 'Owner', username: 'owner' });
    const stranger = sim.createUser({ first_name: 'Stranger' });
    const dm = sim.createPrivateChat(owner);
    const group = sim.createGroup({ title: 'Team', creator: owner, members: [stranger], bot: 'administrator' });

    const bot = new Bot(sim.token, { client: { apiRoot: sim.url } });
    const seen: string[] = [];
    bot.command('start', (ctx) => ctx.reply('welcome'));
    bot.on(':caption_entities:bot_command', async (ctx) => {
      seen.push(`caption:${ctx.msg.caption}`);
      await ctx.reply('received', { reply_parameters: { message_id: ctx.msg.message_id } });
    });
    bot.on('callback_query:data', async (ctx) => {
      seen.push(`button:${ctx.callbackQuery.data}`);
      await ctx.answerCallbackQuery({ text: 'ok' });
      await ctx.editMessageText('approved');
    });
    bot.on('message_reaction', (ctx) => {
      seen.push(`reaction:${ctx.messageReaction.new_reaction.map((r) => (r.type === 'emoji' ? r.emoji : '?')).join('')}`);
    });
    const started = new Promise<void>((resolve) => {
      void bot.start({ allowed_updates: ['message', 'callback_query', 'message_reaction'], timeout: 5, onStart: () => resolve() });
    });
    await started;
    try {

    sim.sendUserMessage(dm, owner, { text: '/start' });
    const welcome = await sim.waitForBotMessage(dm, (m) => m.text === 'welcome');
    assert.equal(welcome.from.id, sim.bot.id);

    const video = Buffer.from('not really a video');
    const sent = sim.sendUserMessage(group, owner, { caption: '/post to bluesky\nhello', video: { source: video, name: 'clip.mp4', mime: 'video/mp4', duration: 3 } });
    assert.deepEqual(sent.caption_entities, [{ type: 'bot_command', offset: 0, length: 5 }]);
    assert.equal(sent.video?.file_size, video.length);
    const received = await sim.waitForBotMessage(group, (m) => m.text === 'received');
    assert.equal(received.replyTo, sent.message_id);

    const status = await apiOf(sim).sendMessage(group.id, 'waiting', { reply_markup: new InlineKeyboard().text('Approve', 'approve:1') });
    const queryId = sim.pressButton(group, owner, status.message_id, 'approve:1');
    await sim.waitFor(() => sim.getMessage(group, status.message_id)?.text === 'approved');
    assert.deepEqual(sim.callbackAnswers.get(queryId), { text: 'ok', show_alert: false, url: undefined, cache_time: undefined });
    assert.deepEqual(sim.getMessage(group, status.message_id)!.edits.map((e) => e.text), ['waiting']);
    // grammY's editMessageText without reply_markup removes the keyboard, as Telegram does.
    assert.equal(sim.getMessage(group, status.message_id)!.replyMarkup, undefined);

    assert.throws(() => sim.react(group, stranger, status.message_id, ['✅']), /not a standard Telegram reaction/);
    sim.react(group, stranger, status.message_id, ['👍']);
    await sim.waitFor(() => seen.includes('reaction:👍'));
    // Not an administrator any more: Telegram stops telling the bot about reactions in the group.
    sim.setMemberStatus(group, 'bot', 'member');
    sim.react(group, owner, status.message_id, ['👎']);
    sim.sendUserMessage(dm, owner, { text: '/start' });
    await sim.waitFor(() => sim.botMessages(dm).length === 2);
    assert.deepEqual(seen, ['caption:/post to bluesky\nhello', 'button:approve:1', 'reaction:👍']);
    assert.deepEqual(sim.transcript(group), [
      'owner: [video clip.mp4, 18 bytes] /post to bluesky\nhello',
      'reelay_sim_bot: received',
      'reelay_sim_bot: approved',
    ]);

    const polls = sim.requestsTo('getUpdates').length;
    const t0 = Date.now();
    await bot.stop();
    assert.ok(Date.now() - t0 < 3000, 'stop() answers at once');
    const last = sim.requestsTo('getUpdates').slice(polls);
    assert.ok(last.some((r) => r.status === 200 && r.params.limit === 1), 'the confirming getUpdates succeeded');
    assert.deepEqual(sim.pendingUpdates(), [], 'everything handled was confirmed');
    // grammY sent allowed_updates only in its first call; the simulator remembered them.
    assert.deepEqual(sim.currentAllowedUpdates(), ['message', 'callback_query', 'message_reaction']);
    } finally {
      // A failed assertion must not leave the polling loop running.
      if (bot.isRunning()) await bot.stop();
    }
  });
});

test('getUpdates: offset, timeout, allowed_updates defaults, 409 on a concurrent poll, prompt answer on close', async () => {
  const sim = await startTelegramSim();
  const api = apiOf(sim);
  const user = sim.createUser();
  const chat = sim.createPrivateChat(user);
  try {
    const m1 = sim.sendUserMessage(chat, user, { text: 'one' });
    sim.react(chat, user, m1.message_id, ['🔥']); // default allowed_updates: not delivered
    sim.sendUserMessage(chat, user, { text: 'two' });
    const batch = await api.getUpdates({ timeout: 0 });
    assert.deepEqual(batch.map((u) => u.message?.text), ['one', 'two']);
    const again = await api.getUpdates({ offset: batch[0]!.update_id + 1 });
    assert.deepEqual(again.map((u) => u.message?.text), ['two']);

    const t0 = Date.now();
    const empty = await api.getUpdates({ offset: batch[1]!.update_id + 1, timeout: 1 });
    const held = Date.now() - t0;
    assert.deepEqual(empty, []);
    assert.ok(held >= 900 && held < 5000, `held ${held} ms`);

    const waiting = api.getUpdates({ timeout: 10, allowed_updates: ['message_reaction'] });
    await sim.waitFor(() => sim.requestsTo('getUpdates').at(-1)?.status === 'held');
    const t1 = Date.now();
    sim.sendUserMessage(chat, user, { text: 'filtered out' });
    sim.react(chat, user, m1.message_id, ['👍']);
    const woke: Update[] = await waiting;
    assert.ok(Date.now() - t1 < 3000, 'an update answers a held poll at once');
    assert.equal(woke.length, 1);
    assert.deepEqual(woke[0]!.message_reaction?.new_reaction, [{ type: 'emoji', emoji: '👍' }]);
    assert.deepEqual(woke[0]!.message_reaction?.old_reaction, [{ type: 'emoji', emoji: '🔥' }]);

    const first = api.getUpdates({ offset: woke[0]!.update_id + 1, timeout: 10 });
    await sim.waitFor(() => sim.requestsTo('getUpdates').at(-1)?.status === 'held');
    const second = api.getUpdates({ timeout: 10 });
    await rejects(first, 409, /terminated by other getUpdates request/);
    await sim.waitFor(() => sim.requestsTo('getUpdates').at(-1)?.status === 'held');
    const t2 = Date.now();
    await sim.close();
    assert.deepEqual(await second, []);
    assert.ok(Date.now() - t2 < 3000, 'close answers a held poll at once');
  } finally {
    await sim.close();
  }
});

test('webhook: getUpdates conflicts, updates are POSTed with the secret, a webhook reply is executed', async () => {
  const received: Array<{ secret: string | undefined; update: Update }> = [];
  let failNext = true;
  const hook = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (failNext) {
        failNext = false;
        res.writeHead(500).end();
        return;
      }
      const update = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Update;
      received.push({ secret: req.headers['x-telegram-bot-api-secret-token'] as string | undefined, update });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ method: 'sendMessage', chat_id: update.message?.chat.id, text: 'from webhook reply' }));
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  try {
    await withSim(async (sim) => {
      const api = apiOf(sim);
      const user = sim.createUser();
      const chat = sim.createPrivateChat(user);
      await api.setWebhook(`http://127.0.0.1:${(hook.address() as AddressInfo).port}/tg`, { secret_token: 's3cret' });
      await rejects(api.getUpdates(), 409, /webhook is active/);
      sim.sendUserMessage(chat, user, { text: 'hi' });
      await sim.waitForBotMessage(chat, (m) => m.text === 'from webhook reply');
      assert.equal(received.length, 1);
      assert.equal(received[0]!.secret, 's3cret');
      assert.equal(received[0]!.update.message?.text, 'hi');
      assert.deepEqual(sim.requestsTo('webhook').map((r) => r.status), [500, 200]);
      const info = await api.getWebhookInfo();
      assert.equal(info.pending_update_count, 0);
      assert.match(info.last_error_message ?? '', /500/);
      await api.deleteWebhook();
      assert.deepEqual(await api.getUpdates(), []);
      await rejects(api.setWebhook('http://example.com/hook'), 400, /HTTPS url must be provided/);
    }, { webhookRetryMs: 50 });
  } finally {
    hook.closeAllConnections();
    await new Promise((resolve) => hook.close(resolve));
  }
});

test("webhook with grammY's webhookCallback: the secret is checked, replies go through the API", async () => {
  await withSim(async (sim) => {
    const bot = new Bot(sim.token, { client: { apiRoot: sim.url, canUseWebhookReply: (method) => method === 'setMessageReaction' } });
    bot.command('start', async (ctx) => {
      await ctx.react('👀');
      await ctx.reply('welcome via webhook');
    });
    const server = createServer(webhookCallback(bot, 'http', { secretToken: 'hook-secret' }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const user = sim.createUser();
      const chat = sim.createPrivateChat(user);
      await bot.api.setWebhook(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { secret_token: 'hook-secret', allowed_updates: ['message'] });
      const start = sim.sendUserMessage(chat, user, { text: '/start' });
      await sim.waitForBotMessage(chat, (m) => m.text === 'welcome via webhook');
      // setMessageReaction rode back in the webhook answer; sendMessage was a call of its own.
      await sim.waitFor(() => sim.getMessage(chat, start.message_id)?.botReaction[0] === '👀');
      assert.equal(sim.requestsTo('setMessageReaction')[0]?.http, 'WEBHOOK-REPLY');
      assert.equal(sim.requestsTo('sendMessage')[0]?.http, 'POST');
      await bot.api.setWebhook(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { secret_token: 'wrong-secret' });
      sim.sendUserMessage(chat, user, { text: '/start' });
      await sim.waitFor(() => sim.requestsTo('webhook').some((r) => r.status === 401));
      assert.equal(sim.botMessages(chat).length, 1);
      await bot.api.deleteWebhook({ drop_pending_updates: true });
      assert.equal((await bot.api.getWebhookInfo()).pending_update_count, 0);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }, { webhookRetryMs: 50 });
});

test('messages: HTML validation, replies, keyboards, edits, deletes, reactions, access errors', async () => {
  await withSim(async (sim) => {
    const api = apiOf(sim);
    const user = sim.createUser();
    const chat = sim.createPrivateChat(user);

    const html = await api.sendMessage(chat.id, '<b>Bold</b> &amp; <a href="https://bsky.app/x">link</a> /help', { parse_mode: 'HTML' });
    assert.equal(html.text, 'Bold & link /help');
    assert.deepEqual(html.entities, [
      { type: 'bold', offset: 0, length: 4 },
      { type: 'text_link', offset: 7, length: 4, url: 'https://bsky.app/x' },
      { type: 'bot_command', offset: 12, length: 5 },
    ]);
    await rejects(api.sendMessage(chat.id, '<b>open', { parse_mode: 'HTML' }), 400, /^Bad Request: can't parse entities: Can't find end tag corresponding to start tag "b"/);
    await rejects(api.sendMessage(chat.id, 'x <blink>y</blink>', { parse_mode: 'HTML' }), 400, /can't parse entities: Unsupported start tag "blink" at byte offset 2/);
    await rejects(api.sendMessage(chat.id, '<b><i>x</b></i>', { parse_mode: 'HTML' }), 400, /can't parse entities: Unmatched end tag/);
    await rejects(api.sendMessage(chat.id, 'x'.repeat(4097)), 400, /message is too long/);
    await rejects(api.sendMessage(chat.id, 'k', { reply_markup: new InlineKeyboard().text('Long', 'x'.repeat(65)) }), 400, /BUTTON_DATA_INVALID/);

    const userMsg = sim.sendUserMessage(chat, user, { text: 'see https://example.com/v.mp4' });
    assert.deepEqual(userMsg.entities, [{ type: 'url', offset: 4, length: 25 }]);
    const reply = await api.sendMessage(chat.id, 'got it', { reply_parameters: { message_id: userMsg.message_id } });
    assert.equal(reply.reply_to_message?.message_id, userMsg.message_id);
    const legacy = await raw(sim, `/bot${sim.token}/sendMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ chat_id: chat.id, text: 'legacy', reply_to_message_id: userMsg.message_id }),
    });
    assert.equal(((legacy.body.result as Record<string, unknown>).reply_to_message as Record<string, unknown>).message_id, userMsg.message_id);
    await rejects(api.sendMessage(chat.id, 'x', { reply_parameters: { message_id: 9999 } }), 400, /message to be replied not found/);

    await rejects(api.editMessageText(chat.id, reply.message_id, 'got it'), 400, /^Bad Request: message is not modified/);
    const edited = await api.editMessageText(chat.id, reply.message_id, 'got it!', { reply_markup: new InlineKeyboard().text('Retry', 'retry:7') });
    assert.ok(edited !== true && edited.edit_date !== undefined);
    await rejects(api.editMessageReplyMarkup(chat.id, reply.message_id, { reply_markup: new InlineKeyboard().text('Retry', 'retry:7') }), 400, /message is not modified/);
    await api.editMessageReplyMarkup(chat.id, reply.message_id);
    await rejects(api.editMessageText(chat.id, 9999, 'x'), 400, /message to edit not found/);
    await rejects(api.editMessageText(chat.id, userMsg.message_id, 'x'), 400, /message can't be edited/);
    assert.deepEqual(sim.getMessage(chat, reply.message_id)!.edits.map((e) => e.text), ['got it', 'got it!']);

    assert.equal(await api.setMessageReaction(chat.id, userMsg.message_id, [{ type: 'emoji', emoji: '👀' }]), true);
    assert.deepEqual(sim.getMessage(chat, userMsg.message_id)!.botReaction, ['👀']);
    await rejects(api.setMessageReaction(chat.id, userMsg.message_id, [{ type: 'emoji', emoji: '✅' as '👍' }]), 400, /REACTION_INVALID/);

    assert.equal(await api.deleteMessage(chat.id, reply.message_id), true);
    await rejects(api.deleteMessage(chat.id, reply.message_id), 400, /message to delete not found/);

    await rejects(api.sendMessage(-42, 'x'), 400, /^Bad Request: chat not found$/);
    const shy = sim.createUser();
    sim.createPrivateChat(shy, { started: false });
    await rejects(api.sendMessage(shy.id, 'x'), 403, /bot can't initiate conversation/);
    sim.blockBot(user);
    await rejects(api.sendMessage(chat.id, 'x'), 403, /bot was blocked by the user/);
    const left = sim.createGroup({ bot: 'left' });
    await rejects(api.sendMessage(left.id, 'x'), 403, /bot is not a member of the supergroup chat/);
    const kicked = sim.createGroup({ type: 'group', bot: 'kicked' });
    await rejects(api.sendMessage(kicked.id, 'x'), 403, /bot was kicked from the group chat/);
  });
});

test('groups: privacy mode, chat and member lookups, commands', async () => {
  await withSim(async (sim) => {
    const api = apiOf(sim);
    const admin = sim.createUser({ first_name: 'Ada' });
    const member = sim.createUser({ first_name: 'Bo' });
    const group = sim.createGroup({ title: 'Crew', creator: admin, admins: [], members: [member] });
    await api.getUpdates({ allowed_updates: [] });
    sim.sendUserMessage(group, member, { text: 'chatter' });
    const command = sim.sendUserMessage(group, member, { text: '/queue' });
    const mine = await api.sendMessage(group.id, 'status');
    sim.sendUserMessage(group, member, { text: 'a reply to the bot', reply_to_message_id: mine.message_id });
    const updates = await api.getUpdates();
    assert.deepEqual(updates.map((u) => u.message?.text), ['/queue', 'a reply to the bot']);
    assert.equal(updates[0]!.message?.message_id, command.message_id);
    assert.throws(() => sim.sendUserMessage(group, sim.createUser(), { text: 'x' }), /not a member/);

    const chat = await api.getChat(group.id);
    assert.equal(chat.type, 'supergroup');
    assert.equal(chat.title, 'Crew');
    assert.equal((await api.getChatMember(group.id, admin.id)).status, 'creator');
    assert.equal((await api.getChatMember(group.id, member.id)).status, 'member');
    assert.equal((await api.getChatMember(group.id, sim.createUser().id)).status, 'left');
    assert.deepEqual((await api.getChatAdministrators(group.id)).map((m) => m.user.id), [admin.id]);
    sim.setMemberStatus(group, member, 'administrator');
    sim.setMemberStatus(group, 'bot', 'administrator', admin);
    const promoted = await api.getUpdates({ offset: updates.at(-1)!.update_id + 1 });
    assert.equal(promoted.length, 1);
    assert.equal(promoted[0]!.my_chat_member?.new_chat_member.status, 'administrator');
    assert.equal(promoted[0]!.my_chat_member?.old_chat_member.status, 'member');
    assert.equal(promoted[0]!.my_chat_member?.from.id, admin.id);
    assert.deepEqual((await api.getChatAdministrators(group.id)).map((m) => [m.user.id, m.status]), [[admin.id, 'creator'], [member.id, 'administrator'], [sim.bot.id, 'administrator']]);
    await rejects(api.getChatAdministrators(admin.id < 0 ? 0 : sim.createPrivateChat(admin).id), 400, /no administrators in the private chat/);

    await api.setMyCommands([{ command: 'post', description: 'Post a video' }, { command: 'queue', description: 'Upcoming posts' }]);
    assert.deepEqual((await api.getMyCommands()).map((c) => c.command), ['post', 'queue']);
    await api.setMyCommands([{ command: 'status', description: 'Status' }], { scope: { type: 'all_group_chats' } });
    assert.deepEqual(sim.myCommands({ type: 'all_group_chats' }), [{ command: 'status', description: 'Status' }]);
    await rejects(api.setMyCommands([{ command: 'Bad-Name', description: 'x' }]), 400, /BOT_COMMAND_INVALID/);
  });
});

test('files: multipart uploads, file_id reuse, getFile and downloads, the 20 MB and 50 MB caps', async () => {
  await withSim(async (sim) => {
    const api = apiOf(sim);
    const user = sim.createUser();
    const chat = sim.createPrivateChat(user);
    const bytes = Buffer.alloc(300_000, 7);
    const video = await api.sendVideo(chat.id, new InputFile(bytes, 'render.mp4'), { caption: '<i>Part 1/2</i>', parse_mode: 'HTML', duration: 12, width: 1080, height: 1920 });
    assert.equal(video.video.file_size, bytes.length);
    assert.equal(video.video.duration, 12);
    assert.equal(video.caption, 'Part 1/2');
    const stored = sim.getMessage(chat, video.message_id)!;
    assert.ok(stored.media?.file.bytes().equals(bytes));
    assert.deepEqual(sim.requestsTo('sendVideo')[0]!.params.video, 'attach://' + String(sim.requestsTo('sendVideo')[0]!.params.video).slice(9));
    assert.ok(Object.values(sim.requestsTo('sendVideo')[0]!.params).some((v) => typeof v === 'object' && v !== null && (v as { size?: number }).size === bytes.length));

    const again = await api.sendDocument(chat.id, video.video.file_id, { caption: 'same file' });
    assert.equal(again.document.file_id, video.video.file_id);
    const photo = await api.sendPhoto(chat.id, new InputFile(Buffer.from('jpeg'), 'thumb.jpg'));
    assert.equal(photo.photo.length, 1);
    await rejects(api.sendVideo(chat.id, 'no-such-file-id'), 400, /wrong file identifier/);

    // A part named after the field (curl -F video=@file), the other multipart style.
    const form = new FormData();
    form.set('chat_id', String(chat.id));
    form.set('video', new Blob([Buffer.from('direct')], { type: 'video/mp4' }), 'direct.mp4');
    const direct = await raw(sim, `/bot${sim.token}/sendVideo`, { method: 'POST', body: form });
    assert.equal(((direct.body.result as Record<string, unknown>).video as Record<string, unknown>).file_name, 'direct.mp4');

    const sent = sim.sendUserMessage(chat, user, { document: { source: Buffer.from('user video'), name: 'phone.mov', mime: 'video/quicktime' } });
    assert.equal(sent.document?.mime_type, 'video/quicktime');
    const file = await api.getFile(sent.document!.file_id);
    const download = await fetch(`${sim.url}/file/bot${sim.token}/${file.file_path}`);
    assert.equal(download.status, 200);
    assert.equal(Buffer.from(await download.arrayBuffer()).toString(), 'user video');
    assert.equal((await fetch(`${sim.url}/file/bot123:nope/${file.file_path}`)).status, 401);
    assert.equal((await fetch(`${sim.url}/file/bot${sim.token}/videos/missing.mp4`)).status, 404);

    const dir = await mkdtemp(join(tmpdir(), 'tg-sim-'));
    try {
      await writeFile(join(dir, 'from-disk.mp4'), 'bytes on disk');
      const fromDisk = sim.sendUserMessage(chat, user, { video: join(dir, 'from-disk.mp4'), caption: 'disk' });
      assert.equal(fromDisk.video?.file_name, 'from-disk.mp4');
      assert.equal(fromDisk.video?.mime_type, 'video/mp4');
      const diskFile = await api.getFile(fromDisk.video!.file_id);
      assert.equal(await (await fetch(`${sim.url}/file/bot${sim.token}/${diskFile.file_path}`)).text(), 'bytes on disk');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // A URL string: Telegram fetches it (the simulator only from loopback).
    const byUrl = await api.sendVideo(chat.id, `${sim.url}/file/bot${sim.token}/${file.file_path}`);
    assert.equal(byUrl.video.file_size, 'user video'.length);

    const big = sim.sendUserMessage(chat, user, { video: Buffer.alloc(20 * 1024 * 1024 + 1) });
    await rejects(api.getFile(big.video!.file_id), 400, /^Bad Request: file is too big$/);

    await rejects(api.sendVideo(chat.id, new InputFile(Buffer.alloc(50 * 1024 * 1024 + 1), 'huge.mp4')), 413, /^Request Entity Too Large$/);
    assert.equal(sim.botMessages(chat).length, 5);
  });
});

test('faults: 429 with retry_after is retried by auto-retry; a reset surfaces as an HttpError', async () => {
  await withSim(async (sim) => {
    const user = sim.createUser();
    const chat = sim.createPrivateChat(user);
    const api = apiOf(sim);
    api.config.use(autoRetry({ maxRetryAttempts: 2 }));
    sim.fault('sendMessage', { status: 429, retryAfter: 1 });
    const t0 = Date.now();
    await api.sendMessage(chat.id, 'after the limit');
    assert.ok(Date.now() - t0 >= 900, 'waited retry_after');
    const calls = sim.requestsTo('sendMessage');
    assert.deepEqual(calls.map((r) => r.status), [429, 200]);
    assert.equal(calls[0]!.description, 'Too Many Requests: retry after 1');

    const plain = apiOf(sim);
    sim.fault('sendMessage', { status: 429, retryAfter: 7 });
    await assert.rejects(plain.sendMessage(chat.id, 'x'), (error: unknown) => {
      assert.ok(error instanceof GrammyError);
      assert.equal(error.parameters.retry_after, 7);
      return true;
    });
    sim.fault('editMessageText', 'reset');
    await assert.rejects(plain.editMessageText(chat.id, 1, 'x'), HttpError);
    sim.fault('getChat', { status: 500, description: 'Internal Server Error' }, 2);
    await rejects(plain.getChat(chat.id), 500, /Internal/);
    await rejects(plain.getChat(chat.id), 500, /Internal/);
    assert.equal((await plain.getChat(chat.id)).id, chat.id);
  });
});
