import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { upsertAccount } from '../../core/accounts.ts';
import { withTransaction } from '../../core/db.ts';
import { importStream, insertMedia } from '../../core/media.ts';
import { insertPost, listEvents, postState, saveCheckpoint, transition, type DeliveryRow } from '../../core/posts.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { testContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
let accountId: string;
before(async () => {
  ctx = await testContext();
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
  accountId = (await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: 'alice.test', remoteId: 'did:plc:alice', credentials: { token: 'x' }, expiresAt: null })).id;
});
after(async () => ctx.dispose());

async function newDelivery(): Promise<DeliveryRow> {
  return withTransaction(ctx.pool, async (tx) => {
    const stored = await importStream(tx, [randomBytes(10)]);
    const media = await insertMedia(tx, { workspaceId: 'cli', filename: 'a.mp4', contentType: 'video/mp4', probe: {}, stored });
    const { deliveries } = await insertPost(tx, {
      workspaceId: 'cli', authorId: 'cli', caption: 'hi', mediaId: media.id, scheduledAt: new Date(), timeZone: 'UTC', origin: {},
      targets: [{ accountId, platform: 'bluesky', profileKey: 'bluesky-1920', caption: null }], initialState: 'scheduled',
    });
    return deliveries[0]!;
  });
}

test('transitions are guarded by the current state', async () => {
  const d = await newDelivery();
  assert.equal((await transition(ctx.pool, d.id, 'publishing', { attemptAt: new Date() }))?.attempts, 1);
  assert.equal((await transition(ctx.pool, d.id, 'published', { remoteId: 'at://x', url: 'https://bsky.app/x' }))?.state, 'published');
  // Terminal: nothing moves it again, not even a second "published".
  assert.equal(await transition(ctx.pool, d.id, 'published', {}), null);
  assert.equal(await transition(ctx.pool, d.id, 'publishing', {}), null);
  assert.equal(await transition(ctx.pool, d.id, 'cancelled', {}), null);
  const types = (await listEvents(ctx.pool, d.post_id)).map((e) => e.type);
  assert.deepEqual(types, ['post.created', 'delivery.publishing', 'delivery.published']);
});

test('a run of attempts keeps the time it began; a manual retry starts a new run', async () => {
  const d = await newDelivery();
  assert.equal(d.first_attempt_at, null);
  const first = new Date('2026-03-01T10:00:00Z');
  assert.deepEqual((await transition(ctx.pool, d.id, 'publishing', { attemptAt: first }))?.first_attempt_at, first);
  await transition(ctx.pool, d.id, 'scheduled', {});
  const second = await transition(ctx.pool, d.id, 'publishing', { attemptAt: new Date('2026-03-01T10:05:00Z') });
  assert.equal(second?.attempts, 2);
  assert.deepEqual(second?.first_attempt_at, first, 'the second attempt does not restart the clock');
  await transition(ctx.pool, d.id, 'failed', {});
  const retried = await transition(ctx.pool, d.id, 'scheduled', { resetAttempts: true });
  assert.equal(retried?.attempts, 0);
  assert.equal(retried?.first_attempt_at, null);
  const again = new Date('2026-03-02T08:00:00Z');
  assert.deepEqual((await transition(ctx.pool, d.id, 'publishing', { attemptAt: again }))?.first_attempt_at, again);
});

test('two racing actors: exactly one wins', async () => {
  const d = await newDelivery();
  const results = await Promise.all([transition(ctx.pool, d.id, 'cancelled', {}), transition(ctx.pool, d.id, 'cancelled', {})]);
  assert.equal(results.filter(Boolean).length, 1);
});

test('checkpoints merge, and only while the delivery is being worked on', async () => {
  const d = await newDelivery();
  await assert.rejects(saveCheckpoint(ctx.pool, d.id, { rkey: 'a' }), /no longer being published/);
  await transition(ctx.pool, d.id, 'publishing', {});
  await saveCheckpoint(ctx.pool, d.id, { rkey: '3abc' });
  assert.deepEqual(await saveCheckpoint(ctx.pool, d.id, { blob: { cid: 'b' } }), { rkey: '3abc', blob: { cid: 'b' } });
});

test('the events table is append-only', async () => {
  await assert.rejects(ctx.pool.query('DELETE FROM events'), /append-only/);
  await assert.rejects(ctx.pool.query(`UPDATE events SET type = 'x'`), /append-only/);
});

test("a post's state is derived from its deliveries", () => {
  const ready = { media_state: 'ready' as const };
  assert.equal(postState(ready, [{ state: 'published' }, { state: 'published' }]), 'published');
  assert.equal(postState(ready, [{ state: 'published' }, { state: 'failed' }]), 'partially_published');
  assert.equal(postState(ready, [{ state: 'scheduled' }, { state: 'published' }]), 'scheduled');
  assert.equal(postState(ready, [{ state: 'processing' }, { state: 'scheduled' }]), 'publishing');
  assert.equal(postState(ready, [{ state: 'failed' }, { state: 'unconfirmed' }]), 'failed');
  assert.equal(postState({ media_state: 'failed' }, [{ state: 'failed' }]), 'failed');
  assert.equal(postState(ready, [{ state: 'cancelled' }]), 'cancelled');
  assert.equal(postState(ready, [{ state: 'awaiting_approval' }]), 'awaiting_approval');
});
