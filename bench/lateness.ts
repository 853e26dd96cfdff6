/**
 * Schedule lateness: posts due every 60 ms for a minute, each published by a worker (default
 * polling, no caps) through a stand-in adapter that records when it was called. Lateness is that
 * call's time minus the post's scheduled_at.
 *
 * The first post goes through the real intake and transcode, held for approval so nothing is
 * queued early; the others are copies of it that share its media and rendition, written with the
 * functions intake and transcode use (a thousand transcodes take a quarter of an hour here and are
 * not what this measures). Releasing each post with its publish time (what an approver's 👍 does)
 * then queues its publish job for that time, exactly as the end of a transcode would.
 */
import { join } from 'node:path';
import { upsertAccount } from '../core/accounts.ts';
import { submitPost } from '../core/intake.ts';
import { PLATFORM_SPECS, type PlatformAdapter } from '../core/platforms.ts';
import { releasePost } from '../core/post-actions.ts';
import { getPost, insertPost, listDeliveries, setMediaState, setRendition } from '../core/posts.ts';
import { withTransaction } from '../core/db.ts';
import { ensureWorkspace } from '../core/workspaces.ts';
import { startWorker, type RunningWorker } from '../worker/main.ts';
import { makeClip } from '../tests/support/clips.ts';
import { testContext, type TestContext } from '../tests/support/context.ts';
import { atMost, countDeliveries, info, percentile, until, type BenchOptions, type Row } from './support.ts';

/** `count` posts like `postId` (same media, rendition and targets), awaiting approval with media ready. */
async function copies(ctx: TestContext, postId: string, count: number): Promise<string[]> {
  const source = await getPost(ctx.pool, postId);
  const [delivery] = await listDeliveries(ctx.pool, postId);
  if (!source?.media_id || !delivery?.rendition_id) throw new Error('the first post has no rendition');
  const ids: string[] = [];
  for (let i = 1; i <= count; i++) {
    ids.push(
      await withTransaction(ctx.pool, async (tx) => {
        const { post } = await insertPost(tx, {
          workspaceId: source.workspace_id,
          authorId: source.author_id,
          caption: `late ${i}`,
          mediaId: source.media_id!,
          scheduledAt: source.scheduled_at,
          timeZone: source.time_zone,
          origin: {},
          targets: [{ accountId: delivery.account_id, platform: delivery.platform, profileKey: delivery.profile_key, caption: null }],
          initialState: 'awaiting_approval',
        });
        await setMediaState(tx, post.id, 'ready');
        await setRendition(tx, post.id, delivery.profile_key, delivery.rendition_id!);
        return post.id;
      }),
    );
  }
  return ids;
}

export async function lateness({ quick, log }: BenchOptions): Promise<Row[]> {
  const posts = quick ? 200 : 1000;
  const windowMs = quick ? 15_000 : 60_000;
  let ctx: TestContext | undefined;
  let worker: RunningWorker | undefined;
  const calledAt = new Map<string, number>();
  const adapter: PlatformAdapter = {
    spec: PLATFORM_SPECS.bluesky,
    async publish(input) {
      if (!calledAt.has(input.deliveryId)) calledAt.set(input.deliveryId, Date.now());
      return { status: 'published', remoteId: `at://bench/${input.deliveryId}`, url: `https://bsky.app/bench/${input.deliveryId}` };
    },
    async check(remoteId) {
      return { status: 'published', remoteId, url: 'https://bsky.app/bench' };
    },
  };
  try {
    ctx = await testContext();
    const c = ctx;
    await ensureWorkspace(c.pool, 'cli', 'UTC');
    await upsertAccount(c.pool, c.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: 'late.bench', remoteId: null, credentials: {}, expiresAt: null });
    const clip = makeClip(join(c.dir, 'clip.mp4'), { width: 180, height: 320, seconds: 1 });
    worker = await startWorker(c, { adapters: { bluesky: adapter }, caps: {} });

    const prepared = Date.now();
    const far = new Date(Date.now() + 86_400_000);
    const { post: first } = await submitPost(c, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'late 0', targets: [{ platform: 'bluesky', handle: null }], at: far, requireApproval: true });
    await until('the transcode', async () => (await getPost(c.pool, first.id))?.media_state === 'ready', 120_000, 250);
    const ids = [first.id, ...(await copies(c, first.id, posts - 1))];
    log(`  ${posts} posts ready in ${((Date.now() - prepared) / 1000).toFixed(0)} s`);

    // Release in time order, with a lead so the first release is done before its slot.
    const start = Date.now() + 3000;
    const step = windowMs / posts;
    const dueAt = new Map<string, number>();
    let releasedLate = 0;
    for (const [i, id] of ids.entries()) {
      const due = start + Math.round(i * step);
      const released = await releasePost(c, id, new Date(due));
      if (Date.now() > due) releasedLate += 1;
      for (const d of released.deliveries) dueAt.set(d.id, due);
    }
    await until('every publish', async () => (await countDeliveries(c, 'published', ids)) === posts, Math.max(windowMs + 120_000, posts * 500), 500);

    const late = [...dueAt].map(([id, due]) => calledAt.get(id)! - due);
    return [
      atMost('schedule lateness p50', percentile(late, 50), 'ms', 1000, `${posts} posts over ${windowMs / 1000} s`),
      atMost('schedule lateness p99', percentile(late, 99), 'ms', 1000, releasedLate ? `${releasedLate} released after their slot` : undefined),
      info('schedule lateness max', Math.max(...late), 'ms'),
      info('publish calls per second while due', posts / ((Math.max(...calledAt.values()) - Math.min(...calledAt.values())) / 1000), '/s', `${(posts / (windowMs / 1000)).toFixed(1)}/s were due`),
    ];
  } finally {
    await worker?.stop();
    await ctx?.dispose();
  }
}
