/**
 * Workspaces are sealed from each other. An admin of workspace A (the strongest member there) tries
 * every chat command, every forged `<action>:<uuid>` button and reaction, and the HTTP routes on
 * workspace B's posts, deliveries, renditions and accounts — by full id and by prefix. B's rows, its
 * queue jobs and its chat must come out untouched; then B's own admin does the same things
 * successfully, which proves the ids and commands were real.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startHttp, type HttpServer } from '../../bot/http.ts';
import { ChatNotifier } from '../../core/chat/notifier.ts';
import type { ChatOutbox, OutMessage } from '../../core/chat/outbox.ts';
import { recordChatMessage } from '../../core/chat/records.ts';
import { ChatService, type ChatMember, type ChatPlace } from '../../core/chat/service.ts';
import { MESSAGES } from '../../core/errors.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { freePort } from '../support/net.ts';
import { seedWorkspacePosts, type SeededWorkspace } from '../support/seed.ts';

const A = { chat: 'telegram' as const, chatId: '-1001', workspaceId: 'telegram:-1001' };
const B = { chat: 'telegram' as const, chatId: '-2002', workspaceId: 'telegram:-2002' };
const attacker: ChatMember = { id: '111', name: 'Mallory', chatAdmin: true };
const owner: ChatMember = { id: '222', name: 'Bea', chatAdmin: true };

let ctx: TestContext;
let http: HttpServer;
let base: string;
let service: ChatService;
let notifier: ChatNotifier;
const outgoing: Array<{ kind: 'send' | 'edit' | 'file'; chatId: string; text: string }> = [];
let messageSeq = 0;

const outbox: ChatOutbox = {
  chat: 'telegram',
  maxUploadBytes: 50 * 1024 * 1024,
  send: async (chatId, message: OutMessage) => {
    outgoing.push({ kind: 'send', chatId, text: message.text });
    return String(++messageSeq);
  },
  edit: async (chatId, _id, message) => void outgoing.push({ kind: 'edit', chatId, text: message.text }),
  sendFile: async (chatId, _file, caption) => {
    outgoing.push({ kind: 'file', chatId, text: caption });
    return String(++messageSeq);
  },
  remove: async () => false,
};

/** Everything of workspace B that any action could change, as comparable text. */
async function snapshot(workspaceId: string): Promise<string> {
  const { rows } = await ctx.pool.query<{ s: string }>(
    `SELECT json_build_object(
       'posts', (SELECT json_agg(p ORDER BY p.id) FROM posts p WHERE p.workspace_id = $1),
       'deliveries', (SELECT json_agg(d ORDER BY d.id) FROM deliveries d JOIN posts p ON p.id = d.post_id WHERE p.workspace_id = $1),
       'accounts', (SELECT json_agg(json_build_object('id', a.id, 'state', a.state, 'credentials', md5(a.credentials), 'updated', a.updated_at) ORDER BY a.id) FROM accounts a WHERE a.workspace_id = $1),
       'approvals', (SELECT count(*) FROM approvals ap JOIN posts p ON p.id = ap.post_id WHERE p.workspace_id = $1),
       'links', (SELECT count(*) FROM link_requests l WHERE l.workspace_id = $1),
       'settings', (SELECT w.settings FROM workspaces w WHERE w.id = $1),
       'jobs', (SELECT count(*) FROM pgboss.job)
     )::text AS s`,
    [workspaceId],
  );
  return rows[0]!.s;
}

let b: SeededWorkspace;
let a: SeededWorkspace;

before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  ctx = await testContext({ env: { PUBLIC_BASE_URL: base, HTTP_HOST: '127.0.0.1', HTTP_PORT: String(port) } });
  notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: { telegram: outbox } });
  service = new ChatService({ ctx, outbox, notifier });
  http = await startHttp(ctx, { checks: [] });
  a = await seedWorkspacePosts(ctx, A.workspaceId, attacker.id, 'Alpha');
  b = await seedWorkspacePosts(ctx, B.workspaceId, owner.id, 'Bravo');
  // B's approval preview, as the bot would have recorded it.
  await recordChatMessage(ctx.pool, { chat: 'telegram', chatId: B.chatId, messageId: '9001', workspaceId: B.workspaceId, postId: b.posts.awaiting.postId, kind: 'preview' });
});

after(async () => {
  await http?.close();
  await notifier?.close();
  await ctx?.dispose();
});

const inA = (): ChatPlace => ({ ...A, messageId: String(++messageSeq) });
const inB = (): ChatPlace => ({ ...B, messageId: String(++messageSeq) });

test("a member of A reaches nothing of B's: commands, forged buttons, reactions, HTTP routes", async () => {
  const before = await snapshot(B.workspaceId);
  const { awaiting, scheduled, failed } = b.posts;
  const ids = [awaiting.postId, scheduled.postId, failed.postId];

  const replies: string[] = [];
  for (const id of ids.flatMap((full) => [full, full.slice(0, 8)])) {
    for (const [name, args] of [
      ['status', id],
      ['status', `${id} x https://x.com/creator/status/1`],
      ['cancel', id],
      ['retry', id],
      ['reschedule', `${id} 2031-06-01 10:00`],
      ['edit', `${id}\nhijacked caption`],
    ] as const) {
      const reply = await service.command(inA(), attacker, name, args);
      assert.ok(reply.text.startsWith(MESSAGES.postNotFound(id)), `/${name} ${args} from A answered: ${reply.text}`);
      replies.push(reply.text);
    }
  }
  const queue = await service.command(inA(), attacker, 'queue', '');
  const accounts = await service.command(inA(), attacker, 'accounts', '');
  for (const reply of [queue.text, accounts.text]) {
    assert.ok(reply.includes('Alpha') || reply.includes(a.account.handle), `A sees its own: ${reply}`);
    assert.ok(!reply.includes('Bravo') && !reply.includes(b.account.handle), `A's /queue and /accounts show nothing of B: ${reply}`);
  }
  const unlink = await service.command(inA(), attacker, 'unlink', `x:${b.account.handle}`);
  assert.equal(unlink.text, MESSAGES.noAccount('X', A.workspaceId, b.account.handle));

  // Forged callback data: every action with B's ids.
  for (const data of [
    `approve:${awaiting.postId}`,
    `reject:${awaiting.postId}`,
    `now:${scheduled.postId}`,
    `retry:${failed.deliveryId}`,
    `file:${failed.deliveryId}`,
    `relink:${b.account.id}`,
  ]) {
    const answer = await service.button(inA(), attacker, data);
    assert.ok([MESSAGES.postNotFound(awaiting.postId.slice(0, 8)), MESSAGES.postNotFound(scheduled.postId.slice(0, 8)), MESSAGES.buttonExpired()].includes(answer), `${data}: ${answer}`);
  }
  // 👍 on B's preview message id, from A's chat.
  await service.reaction(inA(), attacker, '9001', ['👍']);
  await service.idle();

  assert.equal(await snapshot(B.workspaceId), before, "B's posts, deliveries, accounts, approvals, links, settings and the queue are unchanged");
  assert.deepEqual(outgoing.filter((o) => o.chatId === B.chatId || o.kind === 'file'), [], 'nothing was sent to B or uploaded anywhere');

  // HTTP: a signed media link is for one rendition; B's id under A's signature is refused.
  const aLink = new URL(ctx.mediaLinks.url(a.renditionId, ctx.now())!);
  assert.equal((await fetch(aLink)).status, 200, "A's own link works");
  const swapped = new URL(aLink);
  swapped.pathname = `/media/${b.renditionId}`;
  assert.equal((await fetch(swapped)).status, 403);
  assert.equal((await fetch(`${base}/media/${b.renditionId}`)).status, 403, 'unsigned');
  // One-time link and OAuth routes only answer to their random token / state.
  assert.equal((await fetch(`${base}/link/${randomBytes(24).toString('base64url')}`, { redirect: 'manual' })).status, 400);
  assert.equal((await fetch(`${base}/oauth/x/callback?code=c&state=${randomBytes(24).toString('base64url')}`)).status, 400);
  assert.equal(await snapshot(B.workspaceId), before);
});

test("B's own admin can do what A could not (the ids and commands above were real)", async () => {
  const { awaiting, scheduled, failed } = b.posts;
  assert.equal((await service.command(inB(), owner, 'edit', `${scheduled.postId.slice(0, 8)}\nnew caption`)).text, MESSAGES.edited(scheduled.postId.slice(0, 8)));
  assert.equal((await service.command(inB(), owner, 'cancel', scheduled.postId)).text, MESSAGES.cancelledPost(scheduled.postId.slice(0, 8)));
  assert.equal(await service.button(inB(), { ...owner, id: '333', name: 'Ann' }, `reject:${awaiting.postId}`), MESSAGES.rejectedBy('Ann'));
  assert.equal(await service.button(inB(), owner, `file:${failed.deliveryId}`), MESSAGES.fileSent('X'));
  const { rows } = await ctx.pool.query<{ id: string; state: string }>(`SELECT post_id AS id, state FROM deliveries WHERE post_id = ANY($1) ORDER BY state`, [[scheduled.postId, awaiting.postId]]);
  assert.deepEqual(rows.map((r) => r.state).sort(), ['cancelled', 'cancelled']);
});
