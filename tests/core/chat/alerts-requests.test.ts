/**
 * `/settings alerts CHAT` through ChatService with recording outboxes: another workspace's chat
 * is asked first and only its admin can accept, once, before the code expires; a channel of the
 * requester's own Discord guild is set at once.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { ChatNotifier } from '../../../core/chat/notifier.ts';
import type { ChatInfo, ChatOutbox, OutMessage } from '../../../core/chat/outbox.ts';
import type { ChatName } from '../../../core/chat/records.ts';
import { ChatService, type ChatMember, type ChatPlace } from '../../../core/chat/service.ts';
import { readSettings } from '../../../core/chat/settings.ts';
import { testContext, type TestContext } from '../../support/context.ts';

let ctx: TestContext;
let offset = 0;
const sent: Array<{ chat: ChatName; chatId: string; message: OutMessage }> = [];
const edits: Array<{ chatId: string; messageId: string; message: OutMessage }> = [];
const notifiers: ChatNotifier[] = [];

/** An outbox that knows some chats by name and workspace, and cannot post in `closed`. */
function recordingOutbox(chat: ChatName, known: Record<string, ChatInfo>, closed: readonly string[] = []): ChatOutbox {
  return {
    chat,
    maxUploadBytes: 1024,
    send: async (chatId, message) => {
      if (closed.includes(chatId)) throw new Error('403 Forbidden: bot is not a member of the chat');
      sent.push({ chat, chatId, message });
      return String(5000 + sent.length);
    },
    edit: async (chatId, messageId, message) => void edits.push({ chatId, messageId, message }),
    sendFile: async () => 'file',
    remove: async () => false,
    describe: async (chatId) => known[chatId] ?? null,
  };
}

function serviceFor(outbox: ChatOutbox): ChatService {
  const notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: { [outbox.chat]: outbox } });
  notifiers.push(notifier);
  return new ChatService({ ctx: { ...ctx, now: () => Date.now() + offset }, outbox, notifier });
}

const telegram = () =>
  serviceFor(
    recordingOutbox(
      'telegram',
      { '-10': { name: 'Creators', workspaceId: 'telegram:-10' }, '-20': { name: 'Alerts', workspaceId: 'telegram:-20' }, '-30': { name: 'Elsewhere', workspaceId: 'telegram:-30' }, '-40': { name: 'Closed', workspaceId: 'telegram:-40' } },
      ['-40'],
    ),
  );

const ada: ChatMember = { id: '1', name: 'Ada', chatAdmin: true };
const max: ChatMember = { id: '2', name: 'Max', chatAdmin: false };
const at = (chatId: string, messageId = '1', chat: ChatName = 'telegram', workspaceId = `${chat}:${chatId}`): ChatPlace => ({ chat, chatId, workspaceId, messageId });

/** Asks chat -20 from -10; returns the Accept and Decline button data and the request's message id. */
async function ask(service: ChatService, target = '-20'): Promise<{ accept: string; decline: string; messageId: string }> {
  const before = sent.length;
  const reply = await service.command(at('-10'), ada, 'settings', `alerts ${target}`);
  assert.match(reply.text, new RegExp(`Asked ${target === '-20' ? 'Alerts' : 'Elsewhere'} to take`));
  const request = sent.slice(before).find((s) => s.chatId === target)!;
  assert.ok(request, 'the request went into the asked chat');
  assert.match(request.message.text, /^Creators wants to send its Reelay alerts here \(asked by Ada\)/);
  const [accept, decline] = request.message.buttons![0]!;
  assert.deepEqual([accept!.label, decline!.label], ['Accept', 'Decline']);
  return { accept: accept!.data, decline: decline!.data, messageId: String(5000 + sent.indexOf(request) + 1) };
}

const alertsChat = async (workspaceId = 'telegram:-10') => (await readSettings(ctx.pool, workspaceId)).alertsChat;

before(async () => {
  ctx = await testContext();
});

beforeEach(async () => {
  offset = 0;
  await ctx.pool.query('DELETE FROM alerts_requests');
  await ctx.pool.query(`UPDATE workspaces SET settings = '{}'::jsonb`);
});

after(async () => {
  for (const notifier of notifiers) await notifier.close();
  await ctx?.dispose();
});

test('another chat is asked; nothing changes until its admin accepts, then both chats hear it', async () => {
  const service = telegram();
  const { accept, messageId } = await ask(service);
  assert.equal(await alertsChat(), null, 'still the old alerts chat while the request waits');
  const shown = await service.command(at('-10'), max, 'settings', '');
  assert.match(shown.text, /Alerts request: waiting for an admin of Alerts to accept \(until /);
  const { rows } = await ctx.pool.query<{ code_hash: string }>('SELECT code_hash FROM alerts_requests');
  assert.equal(rows.length, 1);
  assert.ok(!accept.includes(rows[0]!.code_hash), 'only a hash of the code is stored');

  assert.equal(await service.button(at('-20', messageId), max, accept), 'Only admins of this chat can use Accept.');
  assert.equal(await alertsChat(), null, 'a non-admin cannot accept');

  const before = sent.length;
  assert.match(await service.button(at('-20', messageId), ada, accept), /^Accepted by Ada: Reelay alerts of Creators come here now/);
  assert.equal(await alertsChat(), 'telegram:-20');
  assert.deepEqual(edits.at(-1), { chatId: '-20', messageId, message: { text: 'Accepted by Ada: Reelay alerts of Creators come here now.' } }, 'the request message loses its buttons');
  assert.deepEqual(sent.slice(before).map((s) => [s.chatId, s.message.text]), [['-10', "Alerts accepted: this chat's Reelay alerts go there now."]]);
  const settings = (await service.command(at('-10'), max, 'settings', '')).text;
  assert.doesNotMatch(settings, /Alerts request/);
  assert.match(settings, /^Alerts: Alerts \(set with \/settings alerts\)$/m, 'the accepted chat by name');
  // The name outlives the request (the retention sweep deletes it a week after it expired).
  await ctx.pool.query('DELETE FROM alerts_requests');
  assert.match((await service.command(at('-10'), max, 'settings', '')).text, /^Alerts: Alerts \(set/m);
});

test('/settings names an alerts chat set directly by asking the chat, and falls back to its id', async () => {
  const service = telegram();
  assert.match((await service.command(at('-10'), ada, 'settings', 'alerts here')).text, /^Alerts: Creators \(set with \/settings alerts\)$/m);
  await ctx.pool.query(`UPDATE workspaces SET settings = settings || '{"alertsChat": "telegram:-77"}'::jsonb WHERE id = 'telegram:-10'`);
  assert.match((await service.command(at('-10'), max, 'settings', '')).text, /^Alerts: -77 \(set with \/settings alerts\)$/m, 'a chat the bot cannot see: its id');
  assert.match((await service.command(at('-10'), ada, 'settings', 'alerts off')).text, /^Alerts: the chat each post came from$/m);
});

test('a replayed or crossed press is refused: the code works once, and only in the chat asked', async () => {
  const service = telegram();
  const { accept, decline, messageId } = await ask(service);
  // The requesting workspace (or any other chat) cannot accept on the asked chat's behalf.
  assert.match(await service.button(at('-10'), ada, accept), /expired or was already answered/);
  assert.match(await service.button(at('-30'), ada, accept), /expired or was already answered/);
  assert.equal(await alertsChat(), null);

  assert.match(await service.button(at('-20', messageId), ada, decline), /^Declined by Ada/);
  assert.equal(sent.at(-1)!.chatId, '-10');
  assert.match(sent.at(-1)!.message.text, /Alerts declined to take this chat's Reelay alerts/);
  assert.match(await service.button(at('-20', messageId), ada, accept), /expired or was already answered/, 'a declined request cannot be accepted later');
  assert.equal(await alertsChat(), null);

  const again = await ask(service);
  assert.match(await service.button(at('-20', again.messageId), ada, again.accept), /^Accepted/);
  assert.match(await service.button(at('-20', again.messageId), ada, again.accept), /expired or was already answered/, 'a replay is refused');
  assert.match(await service.button(at('-20', again.messageId), ada, again.decline), /expired or was already answered/);
  assert.equal(await alertsChat(), 'telegram:-20');
});

test('an expired request is refused and the old alerts chat stays', async () => {
  const service = telegram();
  await service.command(at('-10'), ada, 'settings', 'alerts here');
  const { accept, messageId } = await ask(service);
  offset = 24 * 60 * 60 * 1000 + 1000;
  assert.match(await service.button(at('-20', messageId), ada, accept), /expired or was already answered/);
  assert.equal(await alertsChat(), 'telegram:-10');
  assert.doesNotMatch((await service.command(at('-10'), ada, 'settings', '')).text, /Alerts request/, 'an expired request is no longer shown');
});

test('a newer choice withdraws the waiting request', async () => {
  const service = telegram();
  const first = await ask(service);
  const second = await ask(service, '-30');
  assert.match(await service.button(at('-20', first.messageId), ada, first.accept), /expired or was already answered/);
  await service.command(at('-10'), ada, 'settings', 'alerts off');
  assert.match(await service.button(at('-30', second.messageId), ada, second.accept), /expired or was already answered/);
  assert.equal(await alertsChat(), null);
});

test('a chat the bot cannot post in is reported and leaves no request', async () => {
  const service = telegram();
  assert.match((await service.command(at('-10'), ada, 'settings', 'alerts -40')).text, /^I cannot post in Closed/);
  assert.match((await service.command(at('-10'), ada, 'settings', 'alerts -99')).text, /^I cannot post in -99/, 'an unknown chat');
  assert.equal((await ctx.pool.query('SELECT 1 FROM alerts_requests')).rowCount, 0);
  assert.equal(await alertsChat(), null);
  assert.match((await service.command(at('-10'), max, 'settings', 'alerts -20')).text, /Only admins/);
});

test('Discord: a channel of the same guild is set at once; another guild\'s channel is asked', async () => {
  const service = serviceFor(
    recordingOutbox('discord', { '111': { name: '#general', workspaceId: 'discord:900' }, '222': { name: '#alerts', workspaceId: 'discord:900' }, '333': { name: '#inbox', workspaceId: 'discord:901' } }),
  );
  const general = at('111', '1', 'discord', 'discord:900');
  const before = sent.length;
  assert.match((await service.command(general, ada, 'settings', 'alerts <#222>')).text, /^Saved\./);
  assert.equal(await alertsChat('discord:900'), 'discord:222');
  assert.equal(sent.length, before, 'no request for a channel of the same guild');
  assert.match((await service.command(general, max, 'settings', '')).text, /^Alerts: #alerts \(set with \/settings alerts\)$/m);

  assert.match((await service.command(general, ada, 'settings', 'alerts <#444>')).text, /^I cannot post in 444/, 'a channel the bot cannot see');
  assert.match((await service.command(general, ada, 'settings', 'alerts <#333>')).text, /^Asked #inbox to take/);
  const request = sent.at(-1)!;
  assert.equal(request.chatId, '333');
  const accept = request.message.buttons![0]![0]!.data;
  // An admin of the asking guild is nobody in the other guild: only that guild's admins decide.
  assert.equal(await service.button(at('333', '9', 'discord', 'discord:901'), { id: '7', name: 'Zoe', chatAdmin: false }, accept), 'Only admins of this chat can use Accept.');
  assert.match(await service.button(at('333', '9', 'discord', 'discord:901'), { id: '8', name: 'Owner', chatAdmin: true }, accept), /^Accepted by Owner: Reelay alerts of #general/);
  assert.equal(await alertsChat('discord:900'), 'discord:333');
  assert.match((await service.command(general, max, 'settings', '')).text, /^Alerts: #inbox \(set with \/settings alerts\)$/m);
});
