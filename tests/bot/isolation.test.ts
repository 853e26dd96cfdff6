/**
 * Workspace isolation through the real Telegram front end: an admin of group A sends every post
 * command with group B's post ids (full and short) and /unlink for B's account; each is answered
 * "not found" in A, B's rows stay as they were, and group B hears nothing. The core-level test
 * (tests/core/isolation.test.ts) covers forged buttons, reactions and the HTTP routes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTelegram, type RunningTelegram } from '../../bot/telegram.ts';
import { ChatNotifier } from '../../core/chat/notifier.ts';
import { configuredOutboxes } from '../../core/chat/outboxes.ts';
import { MESSAGES } from '../../core/errors.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { seedWorkspacePosts, type SeededWorkspace } from '../support/seed.ts';
import { startTelegramSim, type SimChat, type SimUser, type TelegramSim } from '../sim/telegram.ts';

let ctx: TestContext;
let sim: TelegramSim;
let telegram: RunningTelegram;
let notifier: ChatNotifier;
let mallory: SimUser;
let groupA: SimChat;
let groupB: SimChat;
let b: SeededWorkspace;

async function rowsOf(workspaceId: string): Promise<string> {
  const { rows } = await ctx.pool.query<{ s: string }>(
    `SELECT json_build_object(
       'posts', (SELECT json_agg(p ORDER BY p.id) FROM posts p WHERE p.workspace_id = $1),
       'deliveries', (SELECT json_agg(d ORDER BY d.id) FROM deliveries d JOIN posts p ON p.id = d.post_id WHERE p.workspace_id = $1),
       'accounts', (SELECT json_agg(a.state ORDER BY a.id) FROM accounts a WHERE a.workspace_id = $1)
     )::text AS s`,
    [workspaceId],
  );
  return rows[0]!.s;
}

before(async () => {
  sim = await startTelegramSim({ botUsername: 'reelay_bot' });
  ctx = await testContext({ env: { TELEGRAM_BOT_TOKEN: sim.token, TELEGRAM_API_ROOT: sim.apiRoot } });
  mallory = sim.createUser({ first_name: 'Mallory', username: 'mallory' });
  const bea = sim.createUser({ first_name: 'Bea', username: 'bea' });
  groupA = sim.createGroup({ title: 'Alpha', type: 'supergroup', creator: mallory, bot: 'administrator' });
  groupB = sim.createGroup({ title: 'Bravo', type: 'supergroup', creator: bea, bot: 'administrator' });
  await seedWorkspacePosts(ctx, `telegram:${groupA.id}`, String(mallory.id), 'Alpha', { chat: 'telegram', chatId: String(groupA.id) });
  b = await seedWorkspacePosts(ctx, `telegram:${groupB.id}`, String(bea.id), 'Bravo', { chat: 'telegram', chatId: String(groupB.id) });
  notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: configuredOutboxes(ctx.config) });
  telegram = await startTelegram(ctx, { notifier });
});

after(async () => {
  await telegram?.stop();
  await notifier?.close();
  await ctx?.dispose();
  await sim?.close();
});

test("an admin of group A cannot see or change group B's posts or accounts by any command", async () => {
  const before = await rowsOf(`telegram:${groupB.id}`);
  const ids = Object.values(b.posts).flatMap(({ postId }) => [postId, postId.slice(0, 8)]);
  for (const id of ids) {
    for (const command of [`/status ${id}`, `/status ${id} x https://x.com/a/status/1`, `/cancel ${id}`, `/retry ${id}`, `/reschedule ${id} 2031-06-01 10:00`, `/edit ${id}\nhijacked`]) {
      const sent = sim.sendUserMessage(groupA, mallory, { text: command });
      const reply = await sim.waitForBotMessage(groupA, (m) => m.replyTo === sent.message_id, 15_000);
      assert.ok((reply.text ?? '').startsWith(MESSAGES.postNotFound(id)), `${command}: ${reply.text}`);
    }
  }
  const unlink = sim.sendUserMessage(groupA, mallory, { text: `/unlink x:${b.account.handle}` });
  const refused = await sim.waitForBotMessage(groupA, (m) => m.replyTo === unlink.message_id, 15_000);
  assert.equal(refused.text, MESSAGES.noAccount('X', `telegram:${groupA.id}`, b.account.handle));
  const queue = sim.sendUserMessage(groupA, mallory, { text: '/queue' });
  const listed = await sim.waitForBotMessage(groupA, (m) => m.replyTo === queue.message_id, 15_000);
  assert.match(listed.text ?? '', /Alpha/);
  assert.doesNotMatch(listed.text ?? '', /Bravo/);

  assert.equal(await rowsOf(`telegram:${groupB.id}`), before);
  assert.deepEqual(sim.botMessages(groupB), [], 'group B heard nothing');
});
