/**
 * What people do to a post after it exists — cancel, retry, reschedule, edit, approve, mark as
 * posted by hand — shared by the CLI and every chat. Each action checks the state it needs, changes
 * rows and queues jobs in one transaction, and says no in plain words otherwise.
 */
import { captionProblem } from './captions.ts';
import type { Context } from './context.ts';
import { withTransaction, type Client } from './db.ts';
import { MESSAGES, UserError } from './errors.ts';
import { sendPublish, sendTranscode } from './jobs.ts';
import { PLATFORM_SPECS, type PlatformId } from './platforms.ts';
import { findPost, getPost, listDeliveries, recordEvent, setJob, transition, type DeliveryView, type PostWithDeliveries } from './posts.ts';
import { parseWhen } from './schedule.ts';

/** A post of this workspace by id or unique prefix, or a UserError saying why not. */
export async function loadPost(ctx: Context, workspaceId: string, id: string): Promise<PostWithDeliveries> {
  const post = await findPost(ctx.pool, workspaceId, id);
  if (post === 'ambiguous') throw new UserError(MESSAGES.postIdAmbiguous(id));
  if (!post) throw new UserError(MESSAGES.postNotFound(id));
  return post;
}

async function reload(ctx: Context, postId: string): Promise<PostWithDeliveries> {
  const post = await getPost(ctx.pool, postId);
  if (!post) throw new UserError(MESSAGES.postNotFound(postId));
  return { ...post, deliveries: await listDeliveries(ctx.pool, postId) };
}

/** Locks the post row: approval, reschedule and the end of a transcode must not interleave. */
export async function lockPost(tx: Client, postId: string): Promise<{ media_state: string; scheduled_at: Date } | null> {
  const { rows } = await tx.query<{ media_state: string; scheduled_at: Date }>('SELECT media_state, scheduled_at FROM posts WHERE id = $1 FOR UPDATE', [postId]);
  return rows[0] ?? null;
}

const NOT_STARTED = new Set(['scheduled', 'awaiting_approval']);

export async function cancelPost(ctx: Context, post: PostWithDeliveries): Promise<PostWithDeliveries> {
  const cancellable = post.deliveries.filter((d) => NOT_STARTED.has(d.state));
  if (cancellable.length === 0) throw new UserError(MESSAGES.cannotCancel(post.id, post.deliveries.map((d) => d.state).join(', ')));
  await withTransaction(ctx.pool, async (tx) => {
    for (const delivery of cancellable) await transition(tx, delivery.id, 'cancelled', { error: MESSAGES.cancelled() });
  });
  return reload(ctx, post.id);
}

/**
 * Puts failed deliveries back on the schedule, keeping their checkpoints: the adapter asks the
 * platform before posting again, so a retry after an unknown outcome cannot duplicate.
 * `deliveryId` limits the retry to one delivery (a Retry button on one platform's line).
 */
export async function retryPost(ctx: Context, post: PostWithDeliveries, deliveryId?: string): Promise<PostWithDeliveries> {
  const failed = post.deliveries.filter((d) => (d.state === 'failed' || d.state === 'unconfirmed') && (deliveryId === undefined || d.id === deliveryId));
  if (failed.length === 0 && post.media_state !== 'failed') throw new UserError(MESSAGES.nothingToRetry(post.id));
  await withTransaction(ctx.pool, async (tx) => {
    const mediaFailed = post.media_state === 'failed';
    if (mediaFailed) await tx.query(`UPDATE posts SET media_state = 'pending', media_error = NULL WHERE id = $1`, [post.id]);
    for (const delivery of failed) {
      const moved = await transition(tx, delivery.id, 'scheduled', { resetAttempts: true, error: null, errorCode: null });
      if (moved && !mediaFailed) await setJob(tx, delivery.id, await sendPublish(ctx.boss, { deliveryId: delivery.id }, new Date(ctx.now()), tx));
    }
    if (mediaFailed) await sendTranscode(ctx.boss, { postId: post.id }, tx);
  });
  return reload(ctx, post.id);
}

/** Queues publish jobs for the post's `scheduled` deliveries when its media is ready (else the transcode does). */
async function queueScheduled(ctx: Context, tx: Client, postId: string, at: Date): Promise<void> {
  const locked = await lockPost(tx, postId);
  if (locked?.media_state !== 'ready') return;
  for (const delivery of await listDeliveries(tx, postId)) {
    if (delivery.state === 'scheduled') await setJob(tx, delivery.id, await sendPublish(ctx.boss, { deliveryId: delivery.id }, at, tx));
  }
}

/**
 * A new time for a post that has not started. The old publish jobs stay queued and find the post
 * rescheduled when they wake (the publish handler skips a delivery whose time has not come).
 */
export async function reschedulePost(ctx: Context, post: PostWithDeliveries, when: string, timeZone: string): Promise<PostWithDeliveries> {
  if (!post.deliveries.some((d) => NOT_STARTED.has(d.state))) throw new UserError(MESSAGES.cannotReschedule(post.id));
  const parsed = parseWhen(when, { timeZone, now: new Date(ctx.now()) });
  if (!parsed.ok) throw new UserError(parsed.message);
  await withTransaction(ctx.pool, async (tx) => {
    await lockPost(tx, post.id);
    await tx.query('UPDATE posts SET scheduled_at = $2, time_zone = $3 WHERE id = $1', [post.id, parsed.at, timeZone]);
    await recordEvent(tx, { type: 'post.rescheduled', postId: post.id, data: { scheduledAt: parsed.at.toISOString() } });
    await queueScheduled(ctx, tx, post.id, parsed.at);
  });
  return reload(ctx, post.id);
}

/** A new caption, only while nothing has started; checked against every target's limit first. */
export async function editCaption(ctx: Context, post: PostWithDeliveries, caption: string): Promise<PostWithDeliveries> {
  if (post.deliveries.some((d) => !NOT_STARTED.has(d.state) && d.state !== 'cancelled')) throw new UserError(MESSAGES.cannotEdit(post.id));
  for (const delivery of post.deliveries) {
    const problem = captionProblem(caption, PLATFORM_SPECS[delivery.platform]);
    if (problem) throw new UserError(problem);
  }
  await withTransaction(ctx.pool, async (tx) => {
    // The guard repeats the state check inside the transaction: a job may have started meanwhile.
    const { rowCount } = await tx.query(
      `UPDATE posts SET caption = $2 WHERE id = $1 AND NOT EXISTS (
         SELECT 1 FROM deliveries WHERE post_id = $1 AND state NOT IN ('scheduled', 'awaiting_approval', 'cancelled'))`,
      [post.id, caption],
    );
    if (rowCount === 0) throw new UserError(MESSAGES.cannotEdit(post.id));
    await recordEvent(tx, { type: 'post.edited', postId: post.id });
  });
  return reload(ctx, post.id);
}

/** Releases a post from approval: its deliveries are scheduled and, once media is ready, queued. */
export async function releasePost(ctx: Context, postId: string, publishAt: Date | null = null): Promise<PostWithDeliveries> {
  await withTransaction(ctx.pool, async (tx) => {
    const locked = await lockPost(tx, postId);
    if (!locked) return;
    if (publishAt) await tx.query('UPDATE posts SET scheduled_at = $2 WHERE id = $1', [postId, publishAt]);
    for (const delivery of await listDeliveries(tx, postId)) {
      if (delivery.state === 'awaiting_approval') await transition(tx, delivery.id, 'scheduled');
    }
    await recordEvent(tx, { type: 'post.approved', postId });
    await queueScheduled(ctx, tx, postId, publishAt ?? locked.scheduled_at);
  });
  return reload(ctx, postId);
}

export async function rejectPost(ctx: Context, postId: string, reason: string): Promise<PostWithDeliveries> {
  await withTransaction(ctx.pool, async (tx) => {
    for (const delivery of await listDeliveries(tx, postId)) {
      if (delivery.state === 'awaiting_approval') await transition(tx, delivery.id, 'cancelled', { error: reason });
    }
    await recordEvent(tx, { type: 'post.rejected', postId });
  });
  return reload(ctx, postId);
}

/** The creator posted it by hand after a final failure: record their link so the history is whole. */
export async function markPublishedByHand(ctx: Context, post: PostWithDeliveries, platform: PlatformId, url: string): Promise<DeliveryView> {
  if (!/^https:\/\/\S+$/i.test(url)) throw new UserError(MESSAGES.manualLinkInvalid(url));
  const delivery = post.deliveries.find((d) => d.platform === platform && (d.state === 'failed' || d.state === 'unconfirmed'));
  if (!delivery) throw new UserError(MESSAGES.manualNothingFailed(post.id, PLATFORM_SPECS[platform].label));
  const moved = await transition(ctx.pool, delivery.id, 'published', { url, note: MESSAGES.postedByHand(), publishedAt: new Date(ctx.now()), error: null, errorCode: null });
  if (!moved) throw new UserError(MESSAGES.manualNothingFailed(post.id, PLATFORM_SPECS[platform].label));
  return { ...delivery, ...moved };
}
