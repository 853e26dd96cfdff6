/**
 * SIGTERM mid-publish (`reelay worker` as a child process): the worker exits within its grace
 * period even though a platform call hangs; the delivery is not left `publishing` without a live
 * job; a new worker finishes it with exactly one post (the hung call had created it: X's create
 * commits and never answers).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { upsertAccount } from '../../core/accounts.ts';
import { submitPost } from '../../core/intake.ts';
import { getDelivery, listDeliveries, listOrphanedDeliveries, type DeliveryView } from '../../core/posts.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { startXSim, type XSim } from '../sim/x.ts';
import { makeClip } from '../support/clips.ts';
import { spawnReelayWorker, until } from '../support/cli.ts';
import { testContext, type TestContext } from '../support/context.ts';

const CLIENT = { clientId: 'reelay-client', clientSecret: 'reelay-secret' };
const GRACE_SECONDS = 3;
let ctx: TestContext;
let sim: XSim;
const children = new Set<ChildProcess>();

before(async () => {
  sim = await startXSim({ client: CLIENT, processing: 'none' });
  ctx = await testContext({ env: { X_API_URL: sim.url, X_CLIENT_ID: CLIENT.clientId, X_CLIENT_SECRET: CLIENT.clientSecret } });
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
});
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await ctx?.dispose();
  await sim?.close();
});

test('SIGTERM while a create call hangs: exits within the grace period, the delivery is re-queued, a new worker posts it exactly once', async () => {
  const user = sim.addUser({ username: 'sigterm_user' });
  await upsertAccount(ctx.pool, ctx.secrets, {
    workspaceId: 'cli',
    platform: 'x',
    handle: user.username,
    remoteId: user.userId,
    credentials: { accessToken: user.accessToken, refreshToken: user.refreshToken, expiresAt: user.expiresAt.toISOString(), scope: user.scope },
    expiresAt: user.expiresAt,
  });
  // The post is created, the answer never comes (the adapter would wait 60 s for it).
  sim.fault({ route: 'create', kind: 'hangAfterCommit' });
  const first = spawnReelayWorker(ctx, children, { X_API_URL: sim.url, X_CLIENT_ID: CLIENT.clientId, X_CLIENT_SECRET: CLIENT.clientSecret, WORKER_STOP_GRACE_SECONDS: String(GRACE_SECONDS) });
  const clip = makeClip(join(ctx.dir, 'clip.mp4'), { seconds: 2 });
  const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'sigterm mid-publish', targets: [{ platform: 'x', handle: user.username }] });
  const deliveryId = (await listDeliveries(ctx.pool, post.id))[0]!.id;
  await until('the create call to hang', () => sim.hanging > 0, 90_000);
  assert.equal(sim.posts.length, 1, 'the hung call created the post');
  assert.equal((await getDelivery(ctx.pool, deliveryId))!.state, 'publishing');

  const termAt = Date.now();
  first.child.kill('SIGTERM');
  const outcome = await first.exited;
  const stopSeconds = (Date.now() - termAt) / 1000;
  process.stderr.write(`sigterm: the worker stopped ${stopSeconds.toFixed(1)} s after SIGTERM (grace ${GRACE_SECONDS} s)\n`);
  assert.equal(outcome.code, 0, 'a clean exit');
  assert.ok(stopSeconds < GRACE_SECONDS + 15, `stopped in ${stopSeconds} s`);

  const stopped = (await getDelivery(ctx.pool, deliveryId))!;
  assert.equal(stopped.state, 'scheduled', `cancelled at the grace period, the delivery waits for its retry (${stopped.error ?? ''})`);
  const { rows } = await ctx.pool.query<{ state: string }>('SELECT state FROM pgboss.job WHERE id = $1', [stopped.job_id]);
  assert.ok(['created', 'retry'].includes(rows[0]?.state ?? ''), `a live job will resume it (job ${rows[0]?.state ?? 'missing'})`);
  assert.deepEqual(await listOrphanedDeliveries(ctx.pool, new Date(Date.now() + 3600_000)), [], 'no orphaned delivery');

  const second = spawnReelayWorker(ctx, children, { X_API_URL: sim.url, X_CLIENT_ID: CLIENT.clientId, X_CLIENT_SECRET: CLIENT.clientSecret, WORKER_STOP_GRACE_SECONDS: String(GRACE_SECONDS) });
  const published = await until<DeliveryView>('the delivery to be published', async () => {
    const row = await getDelivery(ctx.pool, deliveryId);
    return row && row.state === 'published' ? row : null;
  }, 90_000);
  second.child.kill('SIGTERM');
  assert.equal((await second.exited).code, 0);
  assert.equal(sim.posts.length, 1, 'exactly one post');
  assert.equal(published.remote_id, sim.posts[0]!.id, 'the resumed attempt found the post the hung call made');
});
