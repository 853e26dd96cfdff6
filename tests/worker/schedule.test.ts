/**
 * Scheduled publishing driven by pg-boss's TestClock: time moves only when the test moves it, so
 * "in 2 hours" is tested without waiting two hours (or sleeping at all on the clock's behalf).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TestClock } from 'pg-boss';
import { upsertAccount } from '../../core/accounts.ts';
import { submitPost } from '../../core/intake.ts';
import { PLATFORM_SPECS, type PlatformAdapter } from '../../core/platforms.ts';
import { getPost, listDeliveries } from '../../core/posts.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { startWorker, type RunningWorker } from '../../worker/main.ts';
import { makeClip } from '../support/clips.ts';
import { testContext, type TestContext } from '../support/context.ts';

// pg-boss stamps a job's start_after with the database's own now(), so the test clock must not lag
// real time: the scene is set next November (Berlin is UTC+1 then, every year).
const year = new Date().getUTCFullYear() + 1;
const at = (monthDayTime: string): Date => new Date(`${year}-${monthDayTime}Z`);
const start = at('11-22T10:00:00');
const clock = new TestClock(start);
let ctx: TestContext;
let worker: RunningWorker;
const publishedAt: number[] = [];

const adapter: PlatformAdapter = {
  spec: PLATFORM_SPECS.bluesky,
  async publish(input) {
    publishedAt.push(clock.now());
    return { status: 'published', remoteId: `at://test/${input.deliveryId}`, url: `https://bsky.app/profile/t/post/${input.deliveryId}` };
  },
  async check(remoteId) {
    return { status: 'published', remoteId, url: 'https://bsky.app/x' };
  },
};

/** Advances the clock a second at a time until `ready` holds (handlers run in real time between ticks). */
async function tickUntil(what: string, ready: () => Promise<boolean>, maxTicks = 120): Promise<void> {
  for (let i = 0; i < maxTicks; i++) {
    if (await ready()) return;
    await clock.tick(1000);
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`clock ran ${maxTicks} s without ${what}`);
}

before(async () => {
  ctx = await testContext({ clock });
  await ensureWorkspace(ctx.pool, 'cli', 'Europe/Berlin');
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: 'sched.test', remoteId: null, credentials: {}, expiresAt: null });
  worker = await startWorker(ctx, { adapters: { bluesky: adapter }, pollingIntervalSeconds: 0.5 });
});
after(async () => {
  await worker?.stop();
  await ctx?.dispose();
});

test('a post scheduled "tomorrow 9am" in the workspace timezone publishes then, not before', async () => {
  const clip = makeClip(join(ctx.dir, 'clip.mp4'));
  // Berlin is UTC+1 in November: 09:00 local is 08:00Z the next day.
  const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'later', targets: [{ platform: 'bluesky', handle: null }], when: 'tomorrow 9am' });
  assert.equal(post.scheduled_at.toISOString(), at('11-23T08:00:00').toISOString());
  assert.equal(post.time_zone, 'Europe/Berlin');

  // The transcode runs right away (a bad video is reported early, not at the slot).
  await tickUntil('the transcode', async () => (await getPost(ctx.pool, post.id))?.media_state === 'ready');
  assert.equal((await listDeliveries(ctx.pool, post.id))[0]!.state, 'scheduled');

  // A minute before the slot: nothing happens.
  await clock.setTime(at('11-23T07:59:00'));
  for (let i = 0; i < 5; i++) await clock.tick(1000);
  assert.equal(publishedAt.length, 0);
  assert.equal((await listDeliveries(ctx.pool, post.id))[0]!.state, 'scheduled');

  // At the slot it goes out, within the polling interval.
  await clock.setTime(at('11-23T08:00:00'));
  await tickUntil('the publish', async () => (await listDeliveries(ctx.pool, post.id))[0]!.state === 'published', 30);
  assert.equal(publishedAt.length, 1);
  const lateness = publishedAt[0]! - at('11-23T08:00:00').getTime();
  assert.ok(lateness >= 0 && lateness <= 3000, `published ${lateness} ms after the slot`);
});
