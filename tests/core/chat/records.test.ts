import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { claimEdit, claimNotice, recordApproval, recordChatMessage } from '../../../core/chat/records.ts';
import { ensureWorkspace } from '../../../core/workspaces.ts';
import { testContext, type TestContext } from '../../support/context.ts';
import { seedMedia } from '../../support/seed.ts';

let ctx: TestContext;
before(async () => {
  ctx = await testContext();
  await ensureWorkspace(ctx.pool, 'telegram:1', 'UTC');
});
after(async () => ctx?.dispose());

test('the edit throttle: one edit per message every 2 s, never the same text twice, shared by every process', async () => {
  const key = { chat: 'telegram' as const, chatId: '1', messageId: '10' };
  await recordChatMessage(ctx.pool, { ...key, workspaceId: 'telegram:1', kind: 'status' });
  const t0 = new Date('2026-11-22T10:00:00Z');
  const at = (ms: number) => new Date(t0.getTime() + ms);
  assert.deepEqual(await claimEdit(ctx.pool, key, 'a', t0), { action: 'send' });
  assert.deepEqual(await claimEdit(ctx.pool, key, 'a', at(5000)), { action: 'skip' }, 'identical text is never re-sent');
  assert.deepEqual(await claimEdit(ctx.pool, key, 'b', at(500)), { action: 'later', waitMs: 1500 });
  // Two processes racing for the same slot: exactly one wins.
  const race = await Promise.all([claimEdit(ctx.pool, key, 'c', at(2000)), claimEdit(ctx.pool, key, 'd', at(2000))]);
  assert.equal(race.filter((r) => r.action === 'send').length, 1);
  assert.deepEqual(await claimEdit(ctx.pool, { ...key, messageId: '11' }, 'x', t0), { action: 'send' }, 'a message Reelay does not track is not throttled');
});

test('notices are claimed once; approvals count each approver once with their latest decision', async () => {
  assert.equal(await claimNotice(ctx.pool, 'final:abc:1'), true);
  assert.equal(await claimNotice(ctx.pool, 'final:abc:1'), false);
  const seeded = await seedMedia(ctx, { states: ['awaiting_approval'] });
  assert.deepEqual(await recordApproval(ctx.pool, seeded.postId!, 'u1', 'approve'), { approvals: 1, rejections: 0 });
  assert.deepEqual(await recordApproval(ctx.pool, seeded.postId!, 'u1', 'approve'), { approvals: 1, rejections: 0 });
  assert.deepEqual(await recordApproval(ctx.pool, seeded.postId!, 'u2', 'reject'), { approvals: 1, rejections: 1 });
  assert.deepEqual(await recordApproval(ctx.pool, seeded.postId!, 'u2', 'approve'), { approvals: 2, rejections: 0 });
});
