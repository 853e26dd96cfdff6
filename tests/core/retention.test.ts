/**
 * Retention at explicit times: what is deleted (bytes, renditions, large objects) and what must
 * stay (anything still moving, anything inside its grace period), and the hourly schedule; expired
 * link and alerts requests go a week after they expire.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MESSAGES } from '../../core/errors.ts';
import { CLEANUP_SCHEDULE, QUEUES, scheduleCleanup } from '../../core/jobs.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';
import { getDelivery, getPost, transition } from '../../core/posts.ts';
import { deleteExpiredAlertsRequests, deleteExpiredLinkRequests, listExpiredMedia, runCleanup } from '../../core/retention.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { startWorker } from '../../worker/main.ts';
import { handlePublish } from '../../worker/publish.ts';
import { silentNotifier } from '../../worker/notify.ts';
import { handleTranscode } from '../../worker/transcode.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { objectExists, seedMedia } from '../support/seed.ts';

const HOUR = 3600_000;
let ctx: TestContext;

before(async () => {
  ctx = await testContext();
});
after(async () => ctx?.dispose());

async function mediaExists(id: string): Promise<boolean> {
  return ((await ctx.pool.query('SELECT 1 FROM media WHERE id = $1', [id])).rowCount ?? 0) > 0;
}

test('finished posts lose their media after the grace period; anything still moving keeps it', async () => {
  const now = new Date();
  const old = new Date(now.getTime() - 25 * HOUR);
  const recent = new Date(now.getTime() - 1 * HOUR);
  const done = await seedMedia(ctx, { states: ['published', 'failed', 'cancelled', 'unconfirmed'], finishedAt: old });
  const moving = await seedMedia(ctx, { states: ['published', 'scheduled'], finishedAt: old });
  const waiting = await seedMedia(ctx, { states: ['awaiting_approval'], finishedAt: old });
  const fresh = await seedMedia(ctx, { states: ['published'], finishedAt: recent });
  const orphan = await seedMedia(ctx, { createdAt: old });
  const newOrphan = await seedMedia(ctx, { createdAt: recent });

  const expired = await listExpiredMedia(ctx.pool, { now, graceHours: 24 });
  assert.deepEqual(new Set(expired), new Set([done.mediaId, orphan.mediaId]));

  const result = await runCleanup(ctx, { now, graceHours: 24 });
  assert.deepEqual(result, { media: 2, renditions: 1, bytes: done.bytes.length + 1024 + orphan.bytes.length });
  for (const gone of [done, orphan]) {
    assert.equal(await mediaExists(gone.mediaId), false);
    for (const oid of gone.oids) assert.equal(await objectExists(ctx, oid), false, `large object ${oid} unlinked`);
  }
  for (const kept of [moving, waiting, fresh, newOrphan]) {
    assert.equal(await mediaExists(kept.mediaId), true);
    for (const oid of kept.oids) assert.equal(await objectExists(ctx, oid), true);
  }
  // The post and its history stay; only the bytes went.
  const post = await getPost(ctx.pool, done.postId!);
  assert.equal(post?.media_id, null);
  const events = await ctx.pool.query<{ data: { mediaId: string } }>(`SELECT data FROM events WHERE type = 'media.deleted'`);
  assert.deepEqual(new Set(events.rows.map((r) => r.data.mediaId)), new Set([done.mediaId, orphan.mediaId]));

  assert.deepEqual(await runCleanup(ctx, { now, graceHours: 24 }), { media: 0, renditions: 0, bytes: 0 }, 'a second sweep finds nothing');
  // The grace period is the setting: a shorter one takes the recently finished post too.
  const shorter = await runCleanup(ctx, { now, graceHours: 0.5 });
  assert.equal(shorter.media, 1);
  assert.equal(await mediaExists(fresh.mediaId), false);
});

test('a retry after the media expired fails with a plain reason instead of waiting forever', async () => {
  const seeded = await seedMedia(ctx, { states: ['failed'], finishedAt: new Date(Date.now() - 48 * HOUR) });
  await runCleanup(ctx, { now: new Date(), graceHours: 24 });
  const deliveryId = seeded.deliveryIds[0]!;
  assert.ok(await transition(ctx.pool, deliveryId, 'scheduled', { resetAttempts: true }));
  const adapter = {
    spec: PLATFORM_SPECS.bluesky,
    publish: async () => assert.fail('nothing may be published without the media'),
    check: async () => assert.fail('nothing to check'),
  };
  await handlePublish({ ctx, adapters: { bluesky: adapter }, notify: silentNotifier }, deliveryId, '00000000-0000-4000-8000-000000000000', new AbortController().signal);
  const delivery = await getDelivery(ctx.pool, deliveryId);
  assert.equal(delivery?.state, 'failed');
  assert.equal(delivery?.error, MESSAGES.mediaExpired(seeded.postId!));
});

test('retrying a failed conversion after the media expired fails the post instead of leaving it pending', async () => {
  const seeded = await seedMedia(ctx, { states: ['failed'], finishedAt: new Date(Date.now() - 48 * HOUR) });
  await ctx.pool.query(`UPDATE posts SET media_state = 'failed' WHERE id = $1`, [seeded.postId]);
  await runCleanup(ctx, { now: new Date(), graceHours: 24 });
  // What `posts retry` does for a failed conversion: pending again, deliveries back on schedule.
  await ctx.pool.query(`UPDATE posts SET media_state = 'pending' WHERE id = $1`, [seeded.postId]);
  assert.ok(await transition(ctx.pool, seeded.deliveryIds[0]!, 'scheduled', { resetAttempts: true }));
  await handleTranscode(ctx, silentNotifier, seeded.postId!, new AbortController().signal);
  const post = await getPost(ctx.pool, seeded.postId!);
  assert.equal(post?.media_state, 'failed');
  assert.equal(post?.media_error, MESSAGES.mediaExpired(seeded.postId!));
  assert.equal((await getDelivery(ctx.pool, seeded.deliveryIds[0]!))?.state, 'failed');
});

test('the cleanup runs on an hourly pg-boss schedule, handled by the worker', async () => {
  await scheduleCleanup(ctx.boss);
  await scheduleCleanup(ctx.boss); // every worker registers it; still one schedule
  const schedules = await ctx.boss.getSchedules(QUEUES.cleanup);
  assert.equal(schedules.length, 1);
  assert.equal(schedules[0]!.cron, CLEANUP_SCHEDULE.cron);

  const expired = await seedMedia(ctx, { states: ['published'], finishedAt: new Date(Date.now() - 30 * HOUR) });
  // Sent before the worker starts so its first fetch takes it (the cleanup queue polls slowly).
  await ctx.boss.send(QUEUES.cleanup, {});
  const worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5 });
  try {
    const deadline = Date.now() + 20_000;
    while (await mediaExists(expired.mediaId)) {
      assert.ok(Date.now() < deadline, 'the worker ran the cleanup job');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await worker.stop();
  }
  for (const oid of expired.oids) assert.equal(await objectExists(ctx, oid), false);
});

test('link and alerts requests that expired more than 7 days ago are deleted; later ones stay', async () => {
  const now = new Date();
  const daysAgo = (days: number) => new Date(now.getTime() - days * 24 * HOUR);
  for (const id of ['requests-a', 'requests-b']) await ensureWorkspace(ctx.pool, id, 'UTC');
  const link = (token: string, expiresAt: Date, usedAt: Date | null = null) =>
    ctx.pool.query(`INSERT INTO link_requests (token_hash, workspace_id, member_id, platform, expires_at, used_at) VALUES ($1, 'requests-a', 'm', 'tiktok', $2, $3)`, [token, expiresAt, usedAt]);
  const alerts = (code: string, workspaceId: string, expiresAt: Date, decision: string | null) =>
    ctx.pool.query(
      `INSERT INTO alerts_requests (code_hash, workspace_id, from_chat, from_name, target_chat, target_name, requested_by, expires_at, decision)
       VALUES ($1, $2, 'telegram:-1', 'From', 'telegram:-2', 'To', 'm', $3, $4)`,
      [code, workspaceId, expiresAt, decision],
    );
  await link('link-unused-8d', daysAgo(8));
  await link('link-used-30d', daysAgo(30), daysAgo(30.01));
  await link('link-6d', daysAgo(6.9));
  await link('link-live', new Date(now.getTime() + 600_000));
  await alerts('alerts-accepted-8d', 'requests-a', daysAgo(8), 'accepted');
  await alerts('alerts-open-10d', 'requests-b', daysAgo(10), null);
  await alerts('alerts-declined-6d', 'requests-a', daysAgo(6.9), 'declined');
  await alerts('alerts-live', 'requests-a', new Date(now.getTime() + 24 * HOUR), null);

  await runCleanup(ctx, { now, graceHours: 24 });
  const links = await ctx.pool.query<{ token_hash: string }>(`SELECT token_hash FROM link_requests WHERE workspace_id = 'requests-a' ORDER BY token_hash`);
  assert.deepEqual(links.rows.map((r) => r.token_hash), ['link-6d', 'link-live']);
  const requests = await ctx.pool.query<{ code_hash: string }>(`SELECT code_hash FROM alerts_requests WHERE workspace_id IN ('requests-a', 'requests-b') ORDER BY code_hash`);
  assert.deepEqual(requests.rows.map((r) => r.code_hash), ['alerts-declined-6d', 'alerts-live']);

  // A day later the 6.9-day-old ones are past the week too.
  const later = new Date(now.getTime() + 24 * HOUR);
  assert.equal(await deleteExpiredLinkRequests(ctx.pool, later), 1);
  assert.equal(await deleteExpiredAlertsRequests(ctx.pool, later), 1);
  assert.equal(await deleteExpiredLinkRequests(ctx.pool, later), 0, 'a second sweep finds nothing');
});
