/**
 * The pipeline end to end in one process: intake -> media.transcode -> post.publish -> platform.
 * Bluesky is the real PDS; tiktok/youtube here are test-only adapters that share one encode, to
 * prove a post needs one encode per distinct profile, not one per platform.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { upsertAccount } from '../../core/accounts.ts';
import { submitPost } from '../../core/intake.ts';
import { listRenditions } from '../../core/media.ts';
import type { PlatformAdapter, PlatformId } from '../../core/platforms.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';
import { getPost, listDeliveries, type PostWithDeliveries } from '../../core/posts.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { startWorker } from '../../worker/main.ts';
import { blueskyLogin } from '../../worker/platforms/bluesky.ts';
import { platformDeps } from '../../worker/publish.ts';
import { ffprobeJson, makeClip } from '../support/clips.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { startPds, type TestPdsHandle } from '../support/pds.ts';

let ctx: TestContext;
let pds: TestPdsHandle;
const received: Array<{ platform: PlatformId; deliveryId: string; sha256: string; renditionId: string; options: unknown; thumbnail: Buffer | null }> = [];

/** A test-only adapter that reads the rendition it is given and "publishes" it. */
function recordingAdapter(platform: PlatformId): PlatformAdapter {
  return {
    spec: PLATFORM_SPECS[platform],
    async publish(input) {
      const hash = createHash('sha256');
      for await (const chunk of await input.rendition.open()) hash.update(chunk);
      received.push({ platform, deliveryId: input.deliveryId, sha256: hash.digest('hex'), renditionId: input.rendition.id, options: input.options ?? null, thumbnail: input.rendition.thumbnail ?? null });
      return { status: 'published', remoteId: `${platform}-${input.deliveryId}`, url: `https://${platform}.example/${input.deliveryId}` };
    },
    async check(remoteId) {
      return { status: 'published', remoteId, url: `https://example/${remoteId}` };
    },
  };
}

async function waitUntilDone(postId: string, timeoutMs = 60_000): Promise<PostWithDeliveries> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const post = (await getPost(ctx.pool, postId))!;
    const deliveries = await listDeliveries(ctx.pool, postId);
    if (post.media_state === 'failed' || deliveries.every((d) => ['published', 'failed', 'cancelled', 'unconfirmed'].includes(d.state))) {
      return { ...post, deliveries };
    }
    if (Date.now() > deadline) throw new Error(`post ${postId} not done: ${deliveries.map((d) => `${d.platform}:${d.state}`).join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  [ctx, pds] = await Promise.all([testContext(), startPds()]);
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
  const alice = await pds.createAccount('alice');
  const deps = platformDeps(ctx, 'bluesky', ctx.log, AbortSignal.timeout(20_000));
  const login = await blueskyLogin({ identifier: alice.handle, appPassword: alice.appPassword, service: pds.url }, deps);
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: login.handle, remoteId: login.did, credentials: login.credentials, expiresAt: login.expiresAt });
  for (const platform of ['tiktok', 'youtube'] as const) {
    await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform, handle: `creator-${platform}`, remoteId: null, credentials: { token: 'test' }, expiresAt: null });
  }
});
after(async () => {
  await ctx?.dispose();
  await pds?.close();
});

test('a non-compliant clip is encoded, posted to the real PDS, and reads back as H.264/AAC mp4', async () => {
  const clip = makeClip(join(ctx.dir, 'yuv444.mp4'), { width: 720, height: 1280, pixFmt: 'yuv444p', seconds: 2 });
  const worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5 });
  try {
    const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'Hello #reelay https://example.com', targets: [{ platform: 'bluesky', handle: null }] });
    const done = await waitUntilDone(post.id);
    const delivery = done.deliveries[0]!;
    assert.equal(delivery.state, 'published', delivery.error ?? '');
    assert.match(delivery.url!, /^https:\/\/bsky\.app\/profile\/alice\.test\/post\/[234567a-z]{13}$/);
    assert.match(delivery.remote_id!, /^at:\/\/did:plc:[a-z0-9]+\/app\.bsky\.feed\.post\/[234567a-z]{13}$/);

    const record = await pds.getRecord(delivery.remote_id!);
    assert.ok(record, 'the record exists on the PDS');
    const value = record.value as { text: string; embed: { $type: string; aspectRatio: { width: number; height: number }; video: { ref: { $link: string } } }; facets?: unknown[] };
    assert.equal(value.text, 'Hello #reelay https://example.com');
    assert.equal(value.embed.$type, 'app.bsky.embed.video');
    assert.deepEqual(value.embed.aspectRatio, { width: 720, height: 1280 });
    assert.equal(value.facets?.length, 2);

    const [renditions] = await Promise.all([listRenditions(ctx.pool, done.media_id!)]);
    assert.equal(renditions.length, 1);
    assert.equal(renditions[0]!.mode, 'encode');

    const did = delivery.remote_id!.split('/')[2]!;
    const blob = await pds.getBlob(did, value.embed.video.ref.$link);
    const file = join(ctx.dir, 'from-pds.mp4');
    writeFileSync(file, blob);
    const probed = ffprobeJson(file);
    assert.match(probed.format.format_name, /mp4/);
    const video = probed.streams.find((s) => s.codec_type === 'video')!;
    assert.equal(video.codec_name, 'h264');
    assert.equal(video.pix_fmt, 'yuv420p');
    assert.equal(probed.streams.find((s) => s.codec_type === 'audio')?.codec_name, 'aac');
  } finally {
    await worker.stop();
  }
});

test('compliant input is remuxed once for every platform, never re-encoded', async () => {
  received.length = 0;
  const clip = makeClip(join(ctx.dir, 'compliant.mp4'), { width: 720, height: 1280, seconds: 3 });
  const worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, adapters: { tiktok: recordingAdapter('tiktok'), youtube: recordingAdapter('youtube'), bluesky: recordingAdapter('bluesky') } });
  try {
    const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'compliant', targets: [{ platform: 'tiktok', handle: null }, { platform: 'youtube', handle: null }, { platform: 'bluesky', handle: null }] });
    const done = await waitUntilDone(post.id);
    assert.deepEqual(done.deliveries.map((d) => d.state), ['published', 'published', 'published']);
    const renditions = await listRenditions(ctx.pool, done.media_id!);
    assert.equal(renditions.length, 1);
    assert.equal(renditions[0]!.mode, 'remux');
    assert.deepEqual([...renditions[0]!.profile_keys].sort(), ['bluesky-1920', 'vertical-1080']);
    assert.equal(new Set(received.map((r) => r.renditionId)).size, 1);
    assert.equal(new Set(received.map((r) => r.sha256)).size, 1);
  } finally {
    await worker.stop();
  }
});

test('non-compliant input is encoded once for two platforms that share a profile', async () => {
  received.length = 0;
  // 4:4:4 chroma: fine for the box and the frame rate, but the pixel format forces an encode.
  const clip = makeClip(join(ctx.dir, 'needs-encode.mp4'), { width: 540, height: 960, pixFmt: 'yuv444p', seconds: 3, fps: 25 });
  const worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, adapters: { tiktok: recordingAdapter('tiktok'), youtube: recordingAdapter('youtube') } });
  try {
    const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'encode once', targets: [{ platform: 'tiktok', handle: null }, { platform: 'youtube', handle: null }] });
    const done = await waitUntilDone(post.id);
    assert.deepEqual(done.deliveries.map((d) => d.state), ['published', 'published']);
    const renditions = await listRenditions(ctx.pool, done.media_id!);
    assert.equal(renditions.length, 1, 'one encode serves both platforms');
    assert.equal(renditions[0]!.mode, 'encode');
    assert.deepEqual(received.map((r) => r.platform).sort(), ['tiktok', 'youtube']);
    assert.equal(new Set(received.map((r) => r.renditionId)).size, 1);
  } finally {
    await worker.stop();
  }
});

test('every rendition carries a JPEG frame; `pinterest:<board>` reaches the adapter as a delivery option', async () => {
  received.length = 0;
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'pinterest', handle: 'pinner', remoteId: null, credentials: { token: 'test' }, expiresAt: null });
  const clip = makeClip(join(ctx.dir, 'pin.mp4'), { width: 720, height: 1280, seconds: 5 });
  const worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, adapters: { pinterest: recordingAdapter('pinterest') } });
  try {
    const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'pin it', targets: [{ platform: 'pinterest', handle: 'Weeknight Recipes' }] });
    const done = await waitUntilDone(post.id);
    assert.equal(done.deliveries[0]!.state, 'published');
    assert.equal(done.deliveries[0]!.handle, 'pinner', 'the only Pinterest account, not a handle named like the board');
    assert.deepEqual(received[0]!.options, { board: 'Weeknight Recipes' });
    const thumbnail = received[0]!.thumbnail;
    assert.ok(thumbnail && thumbnail.length > 1000, 'a cover frame was extracted');
    assert.deepEqual([...thumbnail.subarray(0, 3)], [0xff, 0xd8, 0xff], 'it is a JPEG');
  } finally {
    await worker.stop();
  }
});
