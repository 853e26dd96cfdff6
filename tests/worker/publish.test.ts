/**
 * How a delivery ends when its attempts run out on a retryable error: `failed` when the platform
 * holds nothing of it, `unconfirmed` when it already holds the upload (the delivery was
 * processing, so it has a remote id) — calling that "failed" would invite a second post by hand.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { upsertAccount } from '../../core/accounts.ts';
import { MESSAGES, PublishError } from '../../core/errors.ts';
import { RETRY_POLICY, sendPublish } from '../../core/jobs.ts';
import { submitPost } from '../../core/intake.ts';
import { PLATFORM_SPECS, type PlatformAdapter } from '../../core/platforms.ts';
import { getDelivery } from '../../core/posts.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { startWorker, type RunningWorker } from '../../worker/main.ts';
import { countingOpener } from '../../worker/publish.ts';
import { makeClip } from '../support/clips.ts';
import { poll } from '../support/poll.ts';
import { testContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
let worker: RunningWorker;
let clip: string;

const unavailable = () => new PublishError('unavailable', 'YouTube answered 503', { status: 503, retryable: true, detail: 'HTTP 503' });

/** YouTube that takes every upload and then never answers a status check; `refuse` handles refuse every upload. */
const youtube: PlatformAdapter = {
  spec: PLATFORM_SPECS.youtube,
  async publish(input) {
    if (input.caption.includes('refused')) throw unavailable();
    return { status: 'processing', remoteId: `yt-${input.deliveryId.slice(0, 8)}`, checkAfterSeconds: 3 };
  },
  async check() {
    throw unavailable();
  },
};


before(async () => {
  ctx = await testContext();
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'youtube', handle: 'chan', remoteId: null, credentials: {}, expiresAt: null });
  clip = makeClip(join(ctx.dir, 'clip.mp4'), { width: 360, height: 640, seconds: 3 });
  worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, caps: {}, adapters: { youtube } });
});

after(async () => {
  await worker?.stop();
  await ctx?.dispose();
});

/** Spends the delivery's attempt budget so the next failure is its last. */
async function lastAttempt(deliveryId: string): Promise<void> {
  await ctx.pool.query('UPDATE deliveries SET attempts = 100 WHERE id = $1', [deliveryId]);
}

test('out of attempts while the platform holds the upload: unconfirmed, naming the upload', async () => {
  const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'held', targets: [{ platform: 'youtube', handle: null }] });
  const id = post.deliveries[0]!.id;
  const processing = await poll(() => getDelivery(ctx.pool, id), (d) => d?.state === 'processing');
  await lastAttempt(id);
  const done = await poll(() => getDelivery(ctx.pool, id), (d) => d?.state === 'unconfirmed' || d?.state === 'failed');
  assert.equal(done!.state, 'unconfirmed');
  assert.equal(done!.error, MESSAGES.uploadedUnconfirmed('YouTube', processing!.remote_id!));
  const { rows } = await ctx.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM events WHERE delivery_id = $1 AND type = 'delivery.unconfirmed'`, [id]);
  assert.equal(rows[0]!.n, 1);
});

test('out of attempts with nothing on the platform: failed with the reason', async () => {
  const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'refused', targets: [{ platform: 'youtube', handle: null }], at: new Date(Date.now() + 4000) });
  const id = post.deliveries[0]!.id;
  await lastAttempt(id);
  const done = await poll(() => getDelivery(ctx.pool, id), (d) => d?.state === 'unconfirmed' || d?.state === 'failed');
  assert.equal(done!.state, 'failed');
  assert.equal(done!.remote_id, null);
  assert.equal(done!.error, MESSAGES.platformUnavailable('YouTube'));
});

test('a platform that does not answer is retried past the attempt budget until the window closes, and the chat is told when', async () => {
  const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'refused again', targets: [{ platform: 'youtube', handle: null }], at: new Date(Date.now() + 4000) });
  const id = post.deliveries[0]!.id;
  // Out of attempts, ten minutes into the run: inside the hour.
  await ctx.pool.query(`UPDATE deliveries SET attempts = $2, first_attempt_at = now() - interval '10 minutes' WHERE id = $1`, [id, RETRY_POLICY.maxAttempts]);
  const waiting = await poll(() => getDelivery(ctx.pool, id), (d) => d?.attempts === RETRY_POLICY.maxAttempts + 1 && d.state === 'scheduled');
  assert.match(waiting!.error ?? '', /^YouTube is not answering right now; Reelay tries again at .+\.$/);
  const { rows } = await ctx.pool.query<{ seconds: number }>(`SELECT extract(epoch FROM start_after - now())::float8 AS seconds FROM pgboss.job WHERE id = $1`, [waiting!.job_id]);
  assert.ok(rows[0]!.seconds > 60, `the next try waits (${rows[0]!.seconds} s)`);

  // The window closed: the next failure is the last.
  await ctx.pool.query(`UPDATE deliveries SET first_attempt_at = now() - interval '61 minutes' WHERE id = $1`, [id]);
  await sendPublish(ctx.boss, { deliveryId: id }, new Date());
  const done = await poll(() => getDelivery(ctx.pool, id), (d) => d?.state === 'failed');
  assert.equal(done!.error, MESSAGES.platformUnavailable('YouTube'));
  assert.equal(done!.attempts, RETRY_POLICY.maxAttempts + 2);
});

/** A rendition stream like the media store's: each chunk a database round trip away. */
function slowSource(chunks: number, bytes: number): Readable & { destroyedEarly(): boolean } {
  let finished = false;
  async function* read(): AsyncGenerator<Buffer> {
    for (let i = 0; i < chunks; i++) {
      await sleep(2);
      yield Buffer.alloc(bytes, i);
    }
    finished = true;
  }
  const stream = Readable.from(read(), { objectMode: false, highWaterMark: 1 });
  return Object.assign(stream, { destroyedEarly: () => stream.destroyed && !finished });
}

test('upload progress counts bytes without taking any from the upload, however late the upload starts reading', async () => {
  const reported: number[] = [];
  const open = countingOpener(async () => slowSource(10, 1000), 10_000, (fraction) => reported.push(fraction));
  const stream = await open();
  // A slow connection: the adapter's consumer attaches only after several reads could have happened.
  await sleep(40);
  let received = 0;
  for await (const chunk of stream) received += (chunk as Buffer).length;
  assert.equal(received, 10_000, 'every byte reaches the upload');
  assert.equal(reported.at(-1), 1);
  assert.deepEqual(reported, [...reported].sort((a, b) => a - b), 'progress only grows');
});

test('an upload abandoned half-way releases its source; a source that fails fails the upload', async () => {
  const source = slowSource(100, 1000);
  const stream = await countingOpener(async () => source, 100_000, () => undefined)();
  for await (const _chunk of stream) break;
  await poll(async () => source.destroyed, (destroyed) => destroyed, 5000, 10);
  assert.ok(source.destroyedEarly(), 'the source was closed before its end');

  const broken = new Readable({ read() { this.destroy(new Error('large object read failed')); } });
  const failing = await countingOpener(async () => broken, 1000, () => undefined)();
  await assert.rejects(async () => {
    for await (const _chunk of failing) {
      // nothing arrives
    }
  }, /large object read failed/);
});
