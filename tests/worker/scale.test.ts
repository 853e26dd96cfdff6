/**
 * Scale-out: two worker processes (each its own pool and pg-boss instance, as on two machines)
 * on one Postgres share the work, and no delivery is published twice.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { upsertAccount } from '../../core/accounts.ts';
import { parseConfig } from '../../core/config.ts';
import { createContext, type Context } from '../../core/context.ts';
import { submitPost } from '../../core/intake.ts';
import { createLogger } from '../../core/log.ts';
import { PLATFORM_SPECS, type PlatformAdapter } from '../../core/platforms.ts';
import { listDeliveries } from '../../core/posts.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { startWorker, type RunningWorker } from '../../worker/main.ts';
import { makeClip } from '../support/clips.ts';
import { testContext, type TestContext } from '../support/context.ts';

const POSTS = 4;
let first: TestContext;
let second: Context;
const workers: RunningWorker[] = [];
const published = new Map<string, string[]>();
let inFlight = 0;
let maxInFlight = 0;

/** Holds each publish until another is in flight too (or 5 s pass), so overlap proves two workers. */
function adapterFor(name: string): PlatformAdapter {
  return {
    spec: PLATFORM_SPECS.bluesky,
    async publish(input) {
      published.set(input.deliveryId, [...(published.get(input.deliveryId) ?? []), name]);
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const deadline = Date.now() + 5000;
      while (maxInFlight < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      inFlight -= 1;
      return { status: 'published', remoteId: `at://scale/${input.deliveryId}`, url: `https://bsky.app/scale/${input.deliveryId}` };
    },
    async check(remoteId) {
      return { status: 'published', remoteId, url: 'https://bsky.app/scale' };
    },
  };
}

before(async () => {
  first = await testContext();
  const key = readFileSync(join(first.dir, 'data', 'secret.key'), 'utf8').trim();
  const config = parseConfig({ DATABASE_URL: first.databaseUrl, REELAY_SECRET_KEY: key, REELAY_DATA_DIR: join(first.dir, 'second'), LOG_LEVEL: 'silent' });
  second = await createContext({ config, log: createLogger({ level: 'silent' }) });
  await ensureWorkspace(first.pool, 'cli', 'UTC');
  await upsertAccount(first.pool, first.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: 'scale.test', remoteId: null, credentials: {}, expiresAt: null });
});
after(async () => {
  for (const worker of workers) await worker.stop();
  await second?.close();
  await first?.dispose();
});

test('two worker processes on one database share the deliveries; each is published exactly once', async () => {
  const clip = makeClip(join(first.dir, 'clip.mp4'), { seconds: 1 });
  const postIds: string[] = [];
  for (let i = 0; i < POSTS; i++) {
    const { post } = await submitPost(first, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: `scale ${i}`, targets: [{ platform: 'bluesky', handle: null }] });
    postIds.push(post.id);
  }
  workers.push(await startWorker(first, { adapters: { bluesky: adapterFor('a') }, concurrency: 1, pollingIntervalSeconds: 0.5 }));
  workers.push(await startWorker(second, { adapters: { bluesky: adapterFor('b') }, concurrency: 1, pollingIntervalSeconds: 0.5 }));

  const deadline = Date.now() + 90_000;
  for (;;) {
    const states = (await Promise.all(postIds.map((id) => listDeliveries(first.pool, id)))).flat().map((d) => d.state);
    if (states.every((s) => s === 'published')) break;
    assert.ok(Date.now() < deadline, `not all published: ${states.join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(published.size, POSTS);
  for (const [deliveryId, by] of published) assert.equal(by.length, 1, `delivery ${deliveryId} published once (by ${by.join(', ')})`);
  assert.equal(maxInFlight, 2, 'both workers published at the same time');
  const by = new Set([...published.values()].flat());
  assert.deepEqual([...by].sort(), ['a', 'b'], 'each worker took part');
});
