/**
 * Caps as data: an account at its platform's cap is deferred to the moment the cap frees up (its
 * status says when) and then published — never failed. A post whose slot passed while no worker
 * ran is published on return, and says how late.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { upsertAccount } from '../../core/accounts.ts';
import { capReached, CAPS } from '../../core/caps.ts';
import { MESSAGES } from '../../core/errors.ts';
import { submitPost } from '../../core/intake.ts';
import { PLATFORM_SPECS, type PlatformAdapter } from '../../core/platforms.ts';
import { getDelivery } from '../../core/posts.ts';
import { formatInZone } from '../../core/schedule.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { startWorker, type RunningWorker } from '../../worker/main.ts';
import { makeClip } from '../support/clips.ts';
import { poll } from '../support/poll.ts';
import { testContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
let worker: RunningWorker;
let clip: string;
const publishedAt: number[] = [];

const tiktok: PlatformAdapter = {
  spec: PLATFORM_SPECS.tiktok,
  async publish(input) {
    publishedAt.push(Date.now());
    return { status: 'published', remoteId: `tt-${input.deliveryId}`, url: `https://www.tiktok.com/@c/video/${publishedAt.length}` };
  },
  async check(remoteId) {
    return { status: 'published', remoteId, url: 'https://www.tiktok.com/@c/video/x' };
  },
};


async function pastAttempts(accountId: string, secondsAgo: number[]): Promise<void> {
  for (const ago of secondsAgo) {
    await ctx.pool.query(`INSERT INTO events (at, type, account_id) VALUES (now() - make_interval(secs => $1), 'delivery.publishing', $2)`, [ago, accountId]);
  }
}

before(async () => {
  ctx = await testContext();
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
  clip = makeClip(join(ctx.dir, 'clip.mp4'), { width: 360, height: 640, seconds: 4 });
  worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, adapters: { tiktok } });
});

after(async () => {
  await worker?.stop();
  await ctx?.dispose();
});

test('the cap counts attempts in its window and frees up when the oldest leaves it', async () => {
  const account = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'tiktok', handle: 'counted', remoteId: null, credentials: {}, expiresAt: null });
  const now = new Date((await ctx.pool.query<{ now: Date }>('SELECT now()')).rows[0]!.now);
  await pastAttempts(account.id, [50, 40, 30, 20, 10]);
  assert.equal(await capReached(ctx.pool, 'tiktok', account.id, now), null, '5 of 6: still allowed');
  await pastAttempts(account.id, [5, 120]);
  const decision = await capReached(ctx.pool, 'tiktok', account.id, now);
  assert.ok(decision);
  assert.equal(decision.cap, CAPS.tiktok[0]);
  // The oldest of the six inside the window is 50 s old: the cap frees in ~10 s.
  assert.ok(Math.abs(decision.at.getTime() - (now.getTime() + 10_000)) < 1500, `${decision.at.toISOString()} vs ${now.toISOString()}`);
});

test('a delivery over a cap is deferred with the time in its status, then published', async () => {
  const account = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'tiktok', handle: 'busy', remoteId: null, credentials: {}, expiresAt: null });
  // The oldest frees the minute 25 s from now: room for a slow transcode on a loaded machine
  // before the worker looks, and the wait still short.
  await pastAttempts(account.id, [35, 30, 25, 20, 15, 10]);
  const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'capped', targets: [{ platform: 'tiktok', handle: 'busy' }] });
  const deferred = await poll(() => getDelivery(ctx.pool, post.deliveries[0]!.id), (d) => d?.error_code === 'rate_limited');
  assert.equal(deferred?.state, 'scheduled', 'deferred, not failed');
  assert.match(deferred!.error!, /^TikTok allows 6 uploads a minute; this one goes out at /);
  const { rows } = await ctx.pool.query<{ start_after: Date }>('SELECT start_after FROM pgboss.job WHERE id = $1', [deferred!.job_id]);
  assert.equal(deferred!.error, MESSAGES.capDeferred('TikTok', 6, 'uploads a minute', formatInZone(rows[0]!.start_after, 'UTC')));
  const published = await poll(() => getDelivery(ctx.pool, post.deliveries[0]!.id), (d) => d?.state === 'published', 60_000);
  assert.ok(published?.published_at && published.published_at.getTime() >= rows[0]!.start_after.getTime() - 1000, 'published only once the cap freed up');
});

test('a post whose slot passed while no worker ran is published on return and says how late', async () => {
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'tiktok', handle: 'late', remoteId: null, credentials: {}, expiresAt: null });
  const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'late', targets: [{ platform: 'tiktok', handle: 'late' }], at: new Date(Date.now() - 10 * 60_000) });
  const published = await poll(() => getDelivery(ctx.pool, post.deliveries[0]!.id), (d) => d?.state === 'published');
  assert.match(published!.note!, /published 10 min after its time: no worker was running then/);
});
