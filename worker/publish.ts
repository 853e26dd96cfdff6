/**
 * The one publish handler: load the delivery, refresh credentials, publish or check, record the
 * outcome, schedule the next step. Rules it keeps:
 * - a delivery found terminal (or cancelled, or awaiting approval) is left alone;
 * - a delivery with a remote id is only ever `check`ed, never published again;
 * - adapters checkpoint platform ids before the call that depends on them and ask the platform
 *   before repeating a non-idempotent call, so a resumed attempt cannot post twice;
 * - retries follow the one policy in core/jobs.ts; polling is a new job with `startAfter`.
 */
import { pipeline, Transform } from 'node:stream';
import { getAccount, setAccountState, withLockedCredentials } from '../core/accounts.ts';
import { CRASH_RANDOM } from '../core/config.ts';
import type { Context } from '../core/context.ts';
import { withTransaction } from '../core/db.ts';
import { describePublishError, MESSAGES, PublishError } from '../core/errors.ts';
import { relinkCommand } from '../core/linking.ts';
import { capReached, type Cap, type CapDecision } from '../core/caps.ts';
import { formatInZone } from '../core/schedule.ts';
import { nextAttempt, repeatInPlace, sendPublish } from '../core/jobs.ts';
import type { Logger } from '../core/log.ts';
import { getRendition, renditionOpener } from '../core/media.ts';
import { recordPublish, recordRetry, recordTokenRefreshFailure } from '../core/metrics.ts';
import type { Credentials, PlatformAdapter, PlatformDeps, PlatformId, PublishInput, PublishResult } from '../core/platforms.ts';
import { getDelivery, getPost, isTerminal, saveCheckpoint, setJob, transition, type DeliveryRow, type DeliveryView } from '../core/posts.ts';
import type { Notifier } from './notify.ts';

export interface PublishEnvironment {
  ctx: Context;
  adapters: Partial<Record<PlatformId, PlatformAdapter>>;
  notify: Notifier;
  caps?: Partial<Record<PlatformId, readonly Cap[]>>;
}

/** mulberry32: a tiny seeded PRNG, so a failing chaos seed can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// One draw sequence per process: every adapter's crash points advance the same generator.
let randomCrash: { spec: string; probability: number; draw: () => number } | undefined;

/**
 * Kills the process at a named point when the crash harness asks for it (tests only):
 * REELAY_CRASH_AT=name kills at that point, random:P[:SEED] at any point with probability P.
 */
export function crashPointFor(ctx: Context): (name: string) => void {
  const target = ctx.config.testing.crashAt;
  const random = target ? CRASH_RANDOM.exec(target) : null;
  if (target && random && randomCrash?.spec !== target) {
    const seed = random[2] === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(random[2]);
    randomCrash = { spec: target, probability: Number(random[1]), draw: seededRandom(seed) };
  }
  return (name) => {
    const hit = random ? randomCrash!.draw() < randomCrash!.probability : target === name;
    if (target && hit) {
      ctx.log.warn({ crashPoint: name }, 'crash point reached: SIGKILL');
      process.kill(process.pid, 'SIGKILL');
    }
  };
}

export function platformDeps(ctx: Context, platform: PlatformId, log: Logger, signal: AbortSignal): PlatformDeps {
  const { urls, client } = ctx.config.platforms[platform];
  return { fetch: ctx.fetch, signal, log, now: ctx.now, urls, oauthClient: client, crashPoint: crashPointFor(ctx), repeat: repeatInPlace };
}

type Opener = PublishInput['rendition']['open'];

/**
 * Upload progress without adapter changes: the furthest byte any opened stream has handed over.
 * The count is a stage the bytes pass through, not a 'data' listener: a listener puts the stream
 * in flowing mode, and every chunk read before the adapter's consumer attached went to the
 * listener alone — an upload short of its Content-Length whenever the connection was slower than
 * the first read (found by the N = 200 crash run: Bluesky's uploadBlob, under load).
 */
export function countingOpener(open: Opener, size: number, report: (fraction: number) => void): Opener {
  let furthest = 0;
  return async (range) => {
    const source = await open(range);
    let position = range?.start ?? 0;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        position += chunk.length;
        if (position > furthest && size > 0) {
          furthest = position;
          report(Math.min(1, furthest / size));
        }
        done(null, chunk);
      },
    });
    // Either end's failure or early close reaches the other: the consumer sees a read error, and
    // an upload abandoned half-way releases the source.
    pipeline(source, counted, () => undefined);
    return counted;
  };
}

/** Anything an adapter throws becomes a PublishError; a bug in an adapter is an unknown outcome. */
function asPublishError(error: unknown): PublishError {
  if (error instanceof PublishError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new PublishError('unknown', message, { retryable: true, outcomeUnknown: true });
}

async function freshCredentials(env: PublishEnvironment, adapter: PlatformAdapter, delivery: DeliveryView, deps: PlatformDeps, force: boolean): Promise<Credentials> {
  const { ctx } = env;
  return withLockedCredentials(ctx.pool, ctx.secrets, delivery.account_id, async (credentials) => {
    if (!adapter.refresh) return { result: credentials };
    const refreshed = await adapter.refresh(credentials, deps, { force }).catch((error: unknown) => {
      recordTokenRefreshFailure(delivery.platform);
      throw error;
    });
    if (!refreshed) return { result: credentials };
    return { credentials: refreshed.credentials, expiresAt: refreshed.expiresAt, result: refreshed.credentials };
  });
}

export async function handlePublish(env: PublishEnvironment, deliveryId: string, jobId: string, signal: AbortSignal): Promise<void> {
  const { ctx } = env;
  const log = ctx.log.child({ component: 'publish', deliveryId, jobId });
  const delivery = await getDelivery(ctx.pool, deliveryId);
  if (!delivery) return log.warn('delivery vanished');
  if (isTerminal(delivery.state) || delivery.state === 'awaiting_approval') return log.debug({ state: delivery.state }, 'nothing to do');
  const post = await getPost(ctx.pool, delivery.post_id);
  if (post && post.media_state === 'ready' && post.media_id === null) {
    // The retention sweep deleted the video (a retry after the grace period): nothing to publish.
    const failed = await transition(ctx.pool, delivery.id, 'failed', { errorCode: 'invalid_media', error: MESSAGES.mediaExpired(post.id) });
    if (failed) await env.notify.deliveryChanged(failed.id);
    return;
  }
  if (!post || post.media_state !== 'ready' || !delivery.rendition_id) return log.warn('media not ready; the transcode job will queue this delivery');
  // A job from before a reschedule wakes at the old time; the job queued for the new time publishes.
  if (delivery.state === 'scheduled' && post.scheduled_at.getTime() > ctx.now() + 1000) return log.debug('rescheduled to a later time');

  const adapter = env.adapters[delivery.platform];
  if (!adapter) {
    const failed = await transition(ctx.pool, delivery.id, 'failed', { errorCode: 'rejected', error: MESSAGES.notAvailable(delivery.platform) });
    if (failed) await env.notify.deliveryChanged(failed.id);
    return;
  }
  const account = await getAccount(ctx.pool, delivery.account_id);
  if (account?.state === 'needs_reauth' && delivery.state !== 'processing') return waitForRelink(env, delivery, post.scheduled_at, adapter.spec.label, log);
  if (!account || account.state === 'disabled') {
    const failed = await transition(ctx.pool, delivery.id, 'failed', { errorCode: 'auth', error: MESSAGES.platformAuth(adapter.spec.label) });
    if (failed) await env.notify.deliveryChanged(failed.id);
    return;
  }

  // Polling a processing delivery is not a new attempt; anything else is.
  const checking = delivery.state === 'processing' && delivery.remote_id !== null;
  if (!checking) {
    const capped = await capReached(ctx.pool, delivery.platform, delivery.account_id, new Date(ctx.now()), env.caps?.[delivery.platform] ?? []);
    if (capped) return deferForCap(env, delivery, capped, adapter.spec.label, post.time_zone, log);
  }
  const current = checking
    ? delivery
    : await transition(ctx.pool, delivery.id, 'publishing', { attemptAt: new Date(ctx.now()), jobId, error: null, errorCode: null });
  if (!current) return log.debug('another actor moved the delivery first');
  if (!checking) await env.notify.deliveryChanged(delivery.id);

  const rendition = await getRendition(ctx.pool, delivery.rendition_id);
  if (!rendition) throw new Error(`Rendition ${delivery.rendition_id} is missing.`);
  const probe = rendition.probe as { width?: number; height?: number; durationSeconds?: number };
  const deps = platformDeps(ctx, delivery.platform, log, signal);
  let checkpoint = current.checkpoint;
  let progressed = false;

  const attempt = async (force: boolean): Promise<PublishResult> => {
    const credentials = await freshCredentials(env, adapter, delivery, deps, force);
    const input: PublishInput = {
      deliveryId: delivery.id,
      createdAt: delivery.created_at,
      caption: delivery.caption ?? post.caption,
      rendition: {
        id: rendition.id,
        size: rendition.size,
        sha256: rendition.sha256,
        contentType: 'video/mp4',
        width: probe.width ?? 0,
        height: probe.height ?? 0,
        durationSeconds: probe.durationSeconds ?? 0,
        thumbnail: rendition.thumbnail,
        open: countingOpener(renditionOpener(ctx.pool, rendition), rendition.size, (fraction) =>
          env.notify.progress?.({ postId: post.id, deliveryId: delivery.id, stage: 'uploading', fraction }),
        ),
      },
      account: { id: account.id, handle: account.handle, remoteId: account.remote_id },
      credentials,
      mediaUrl: ctx.mediaLinks.url(rendition.id, ctx.now()),
      options: delivery.options,
      checkpoint,
      saveCheckpoint: async (patch) => {
        checkpoint = await saveCheckpoint(ctx.pool, delivery.id, patch);
        progressed = true;
      },
    };
    return checking && current.remote_id ? adapter.check(current.remote_id, input, deps) : adapter.publish(input, deps);
  };

  let result: PublishResult;
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  try {
    try {
      result = await attempt(false);
    } catch (error) {
      const first = asPublishError(error);
      // An expired access token is cured by a forced refresh, once, right away.
      if (first.code !== 'auth' || !first.retryable) throw first;
      log.info('access token expired mid-flow; refreshing');
      result = await attempt(true);
    }
  } catch (error) {
    await recordFailure(env, current, asPublishError(error), log, adapter.spec.label, elapsed(), progressed);
    return;
  }
  recordPublish(delivery.platform, result.status, elapsed());

  deps.crashPoint('worker.before_record');
  if (result.status === 'unconfirmed') {
    log.error({ evidence: result.evidence }, 'platform cannot confirm whether the post went out; not reposting');
    const moved = await transition(ctx.pool, delivery.id, 'unconfirmed', { errorCode: 'unknown', error: `${MESSAGES.unconfirmed(adapter.spec.label)} ${result.evidence}` });
    if (moved) await env.notify.deliveryChanged(delivery.id);
    return;
  }
  if (result.status === 'published') {
    // A first attempt long after its slot means no worker was running then: say how late.
    const lateSeconds = (ctx.now() - post.scheduled_at.getTime()) / 1000;
    const late = current.attempts <= 1 && lateSeconds > LATE_NOTE_SECONDS ? MESSAGES.publishedLate(lateSeconds) : null;
    const note = [result.note, late].filter(Boolean).join(' ') || null;
    const published = await transition(ctx.pool, delivery.id, 'published', { remoteId: result.remoteId, url: result.url, note, publishedAt: new Date(ctx.now()), error: null, errorCode: null });
    log.info({ url: result.url }, 'published');
    if (published) await env.notify.deliveryChanged(delivery.id);
    return;
  }
  await withTransaction(ctx.pool, async (tx) => {
    const moved = await transition(tx, delivery.id, 'processing', { remoteId: result.remoteId, note: result.note ?? null });
    if (!moved) return;
    const next = await sendPublish(ctx.boss, { deliveryId: delivery.id }, new Date(ctx.now() + result.checkAfterSeconds * 1000), tx);
    await setJob(tx, delivery.id, next);
  });
  log.info({ remoteId: result.remoteId, checkAfterSeconds: result.checkAfterSeconds }, 'processing on the platform');
  await env.notify.deliveryChanged(delivery.id);
}

async function recordFailure(env: PublishEnvironment, delivery: DeliveryRow, error: PublishError, log: Logger, label: string, seconds: number, progressed: boolean): Promise<void> {
  const { ctx } = env;
  const retryingForSeconds = delivery.first_attempt_at ? (ctx.now() - delivery.first_attempt_at.getTime()) / 1000 : 0;
  const decision = nextAttempt(error, { attempts: delivery.attempts, progressed, retryingForSeconds, windowSeconds: ctx.config.worker.retryWindowSeconds });
  recordPublish(delivery.platform, decision.retry ? 'retry' : 'failed', seconds);
  if (decision.retry) recordRetry(delivery.platform, error.code);
  log.warn({ code: error.code, status: error.status, detail: error.detail, retry: decision }, 'publish attempt failed');
  if (error.code === 'auth' && !error.retryable) {
    // The login is gone: the delivery waits for a re-link instead of failing (see waitForRelink).
    await setAccountState(ctx.pool, delivery.account_id, 'needs_reauth', error.detail);
    await env.notify.accountNeedsReauth?.(delivery.account_id);
    const post = await getPost(ctx.pool, delivery.post_id);
    const view = await getDelivery(ctx.pool, delivery.id);
    if (post && view) return waitForRelink(env, view, post.scheduled_at, label, log);
  }
  if (decision.retry) {
    const at = new Date(ctx.now() + decision.delaySeconds * 1000);
    // "Gave up" would be untrue while it still tries: the chat is shown when the next try is.
    const silent = error.code === 'unavailable' && !error.userMessage;
    const reason = silent ? MESSAGES.platformUnavailableRetrying(label, formatInZone(at, (await getPost(ctx.pool, delivery.post_id))?.time_zone ?? 'UTC')) : describePublishError(label, error);
    await withTransaction(ctx.pool, async (tx) => {
      const waiting = await transition(tx, delivery.id, 'scheduled', { errorCode: error.code, error: reason });
      if (!waiting) return;
      const next = await sendPublish(ctx.boss, { deliveryId: delivery.id }, at, tx);
      await setJob(tx, delivery.id, next);
    });
  } else if (error.outcomeUnknown) {
    // Out of attempts while the last call's effect is unknown: the post may exist. Saying
    // "failed" could make someone post it again by hand.
    log.error({ detail: error.detail }, 'attempts exhausted with an unknown outcome; marking unconfirmed');
    await transition(ctx.pool, delivery.id, 'unconfirmed', { errorCode: error.code, error: `${MESSAGES.unconfirmed(label)} ${error.detail}` });
  } else if (error.retryable && delivery.remote_id) {
    // The platform already holds the upload (it was processing): only its outcome went unread.
    log.error({ detail: error.detail, remoteId: delivery.remote_id }, 'attempts exhausted while the platform holds the upload; marking unconfirmed');
    await transition(ctx.pool, delivery.id, 'unconfirmed', { errorCode: error.code, error: MESSAGES.uploadedUnconfirmed(label, delivery.remote_id) });
  } else {
    await transition(ctx.pool, delivery.id, 'failed', { errorCode: error.code, error: describePublishError(label, error) });
  }
  await env.notify.deliveryChanged(delivery.id);
}


/** How long a delivery waits for its account to be re-linked before failing, and how often it looks. */
export const RELINK_WAIT_HOURS = 24;
const RELINK_CHECK_SECONDS = 15 * 60;

/**
 * A delivery whose account needs re-linking waits (scheduled, with the reason shown) and looks
 * again every 15 minutes; linking the account again wakes it at once (core/linking.ts). After
 * RELINK_WAIT_HOURS past its slot it fails with the reason.
 */
async function waitForRelink(env: PublishEnvironment, delivery: DeliveryView, scheduledAt: Date, label: string, log: Logger): Promise<void> {
  const { ctx } = env;
  const deadline = scheduledAt.getTime() + RELINK_WAIT_HOURS * 3600_000;
  if (ctx.now() >= deadline) {
    const failed = await transition(ctx.pool, delivery.id, 'failed', { errorCode: 'auth', error: MESSAGES.platformAuth(label) });
    if (failed) await env.notify.deliveryChanged(delivery.id);
    return;
  }
  const reason = MESSAGES.waitingForRelink(label, delivery.handle, RELINK_WAIT_HOURS, await relinkCommand(ctx, { id: delivery.account_id, platform: delivery.platform }));
  await withTransaction(ctx.pool, async (tx) => {
    const waiting = delivery.state === 'scheduled' && delivery.error === reason ? delivery : await transition(tx, delivery.id, 'scheduled', { errorCode: 'auth', error: reason });
    if (!waiting) return;
    const next = await sendPublish(ctx.boss, { deliveryId: delivery.id }, new Date(Math.min(deadline, ctx.now() + RELINK_CHECK_SECONDS * 1000)), tx);
    await setJob(tx, delivery.id, next);
  });
  log.info('account needs re-linking; the delivery waits');
  await env.notify.deliveryChanged(delivery.id);
}

/** Published this long after its slot, a post says so (a worker was down, or a long queue). */
const LATE_NOTE_SECONDS = 120;

/** Over a cap: the delivery waits for the time the cap frees up, and its status says when. */
async function deferForCap(env: PublishEnvironment, delivery: DeliveryView, capped: CapDecision, label: string, timeZone: string, log: Logger): Promise<void> {
  const { ctx } = env;
  const reason = MESSAGES.capDeferred(label, capped.cap.limit, capped.cap.what, formatInZone(capped.at, timeZone));
  await withTransaction(ctx.pool, async (tx) => {
    const waiting = await transition(tx, delivery.id, 'scheduled', { errorCode: 'rate_limited', error: reason });
    if (!waiting) return;
    await setJob(tx, delivery.id, await sendPublish(ctx.boss, { deliveryId: delivery.id }, capped.at, tx));
  });
  log.info({ cap: capped.cap, at: capped.at.toISOString() }, 'over a publishing cap; deferred');
  await env.notify.deliveryChanged(delivery.id);
}
