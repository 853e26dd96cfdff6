/**
 * Postgres goes away mid-run: every connection is killed and new ones are refused for a few
 * seconds, as in a restart. The worker must not crash, must reconnect by itself, and every post must
 * still be published exactly once.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { upsertAccount } from '../../core/accounts.ts';
import { submitPost } from '../../core/intake.ts';
import { PLATFORM_SPECS, type PlatformAdapter } from '../../core/platforms.ts';
import { listDeliveries } from '../../core/posts.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { startWorker, type RunningWorker } from '../../worker/main.ts';
import { makeClip } from '../support/clips.ts';
import { testContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
let worker: RunningWorker;
const posted = new Map<string, number>();

/**
 * Keeps the adapter contract like the real ones: checkpoint before the non-idempotent call, and on
 * a resumed attempt ask the "platform" (the map) before posting again. Slow enough that the outage
 * lands while posts are in flight.
 */
const x: PlatformAdapter = {
  spec: PLATFORM_SPECS.x,
  async publish(input) {
    const url = `https://x.com/c/status/${input.deliveryId}`;
    if (input.checkpoint.sent === true && posted.has(input.deliveryId)) return { status: 'published', remoteId: `x-${input.deliveryId}`, url };
    await input.saveCheckpoint({ sent: true });
    await new Promise((r) => setTimeout(r, 400));
    posted.set(input.deliveryId, (posted.get(input.deliveryId) ?? 0) + 1);
    return { status: 'published', remoteId: `x-${input.deliveryId}`, url: `https://x.com/c/status/${input.deliveryId}` };
  },
  async check(remoteId) {
    return { status: 'published', remoteId, url: `https://x.com/c/status/${remoteId}` };
  },
};

/** As a superuser on a separate connection: drop every other connection and refuse new ones for a while. */
async function outage(ms: number): Promise<void> {
  const admin = new pg.Client({ connectionString: ctx.databaseUrl.replace(/\/[^/]+$/, '/postgres') });
  await admin.connect();
  const database = new URL(ctx.databaseUrl).pathname.slice(1);
  await admin.query(`ALTER DATABASE "${database}" WITH ALLOW_CONNECTIONS false`);
  await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
  await new Promise((r) => setTimeout(r, ms));
  await admin.query(`ALTER DATABASE "${database}" WITH ALLOW_CONNECTIONS true`);
  await admin.end();
}

before(async () => {
  ctx = await testContext();
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'x', handle: 'c', remoteId: null, credentials: {}, expiresAt: null });
  worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, adapters: { x } });
});

after(async () => {
  await worker?.stop();
  await ctx?.dispose();
});

test('a database outage mid-run: the worker reconnects and every post goes out exactly once', async () => {
  const clip = makeClip(join(ctx.dir, 'clip.mp4'), { width: 360, height: 640, seconds: 2 });
  const posts: Array<{ id: string }> = [];
  for (let i = 0; i < 6; i++) posts.push((await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: `outage ${i}`, targets: [{ platform: 'x', handle: null }] })).post);
  // Let the first publishes start, then take the database away for three seconds.
  const deadline = Date.now() + 60_000;
  while (posted.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await outage(3000);

  const done = async () => {
    for (;;) {
      try {
        const states = (await Promise.all(posts.map((p) => listDeliveries(ctx.pool, p.id)))).flat().map((d) => d.state);
        if (states.every((s) => s === 'published' || s === 'failed' || s === 'unconfirmed')) return states;
      } catch {
        // The test's own pool reconnects too.
      }
      if (Date.now() > deadline + 60_000) throw new Error(`not done: ${JSON.stringify([...posted.entries()])}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const states = await done();
  assert.deepEqual(states, Array(6).fill('published'));
  const deliveries = (await Promise.all(posts.map((p) => listDeliveries(ctx.pool, p.id)))).flat();
  for (const d of deliveries) assert.equal(posted.get(d.id), 1, `delivery ${d.id} posted ${posted.get(d.id) ?? 0} times`);
});
