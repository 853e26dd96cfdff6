/**
 * Queues, payloads and the one retry policy. Postgres rows are the truth; a job is only a timer
 * carrying ids. Two kinds of retry exist and both are configured here:
 * - a platform error the worker understood: the worker schedules the next attempt itself with
 *   `nextAttempt` (jittered exponential backoff, or the platform's Retry-After), counting attempts
 *   on the delivery row and, for a platform that does not answer, the time since the first;
 * - a crash or an unexpected error: pg-boss retries the job (heartbeat expiry finds dead workers).
 * Inside an attempt, a repeatable request (a read, a status check, opening an upload id nobody sees)
 * that got no answer or a 5xx is sent again in place (`repeatInPlace`) before its failure costs the
 * delivery an attempt.
 */
import { PgBoss, type Clock, type SendOptions, type Queue } from 'pg-boss';
import { z } from 'zod';
import type { PublishError } from './errors.ts';
import type { Queryable } from './db.ts';
import { bossDb } from './db.ts';
import type { Logger } from './log.ts';

export const QUEUES = {
  transcode: 'media.transcode',
  publish: 'post.publish',
  cleanup: 'media.cleanup',
  validateAccounts: 'accounts.validate',
  atRisk: 'deliveries.at-risk',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** The retention sweep (core/retention.ts): hourly, at an odd minute to miss the top-of-hour rush. */
export const CLEANUP_SCHEDULE = { cron: '17 * * * *', tz: 'UTC' } as const;

/** Every active account's login, checked with one cheap read a day (worker/account-checks.ts). */
export const VALIDATE_SCHEDULE = { cron: '41 5 * * *', tz: 'UTC' } as const;
/** Posts due soon on an account that needs re-linking: looked for every 10 minutes. */
export const AT_RISK_SCHEDULE = { cron: '*/10 * * * *', tz: 'UTC' } as const;

export const transcodePayload = z.object({ postId: z.uuid() });
export const publishPayload = z.object({ deliveryId: z.uuid() });
export type TranscodePayload = z.infer<typeof transcodePayload>;
export type PublishPayload = z.infer<typeof publishPayload>;

export const RETRY_POLICY = {
  /** Platform attempts per delivery before it fails for good. */
  maxAttempts: 6,
  /**
   * An attempt that moved the delivery's checkpoint forward (a chunk, a container, a session) shows
   * the platform is working: it may go on to this many attempts in all. Under a steady trickle of
   * faults a long flow fails somewhere in most attempts, yet each gets further.
   */
  maxAttemptsWithProgress: 12,
  /**
   * A platform that does not answer (no answer, a reset, a 5xx) is given time, not only attempts:
   * past the budgets above, such failures are retried with the capped backoff until the window
   * after the run's first attempt closes (PUBLISH_RETRY_WINDOW_MINUTES, an hour by default), so an
   * outage of half an hour makes a post late, not failed. Retrying is safe that long because every
   * adapter asks the platform before repeating what may have taken effect. Even inside the window
   * a delivery stops after this many attempts.
   */
  maxAttemptsTransient: 20,
  baseDelaySeconds: 5,
  maxDelaySeconds: 15 * 60,
  /** An auth error that a forced token refresh may cure is retried at once, once. */
  authRetryDelaySeconds: 0,
  /**
   * Sends of a repeatable request, within one attempt, after no answer or a 5xx. A flow of a dozen
   * calls meets a transient fault in most attempts when faults are common; repeating the harmless
   * calls in place leaves only the others (creates, finalizes, streamed uploads) to cost an attempt.
   */
  inPlace: { sends: 3, baseDelayMs: 500 },
  /** Crash recovery by pg-boss: a dead worker's job is retried after its heartbeat lapses. */
  crash: { retryLimit: 5, retryDelay: 2, retryBackoff: true, retryDelayMax: 60 },
  /** A worker that stops heart-beating for this long is presumed dead (pg-boss minimum: 10). */
  heartbeatSeconds: 10,
} as const;

export type RetryDecision = { retry: true; delaySeconds: number } | { retry: false };

/** What is known about a delivery's attempts when one fails. */
export interface AttemptHistory {
  /** Attempts made, including the one that just failed. */
  attempts: number;
  /** Whether the failed attempt moved the delivery's checkpoint forward. */
  progressed?: boolean;
  /** Seconds since the run's first attempt began. */
  retryingForSeconds?: number;
  /** How long a platform that does not answer is given (config: PUBLISH_RETRY_WINDOW_MINUTES). */
  windowSeconds?: number;
}

/** Whether and when to try a platform call again after `error`. */
export function nextAttempt(error: PublishError, history: AttemptHistory, random: () => number = Math.random): RetryDecision {
  const { attempts, progressed = false, retryingForSeconds = 0, windowSeconds = 0 } = history;
  if (!error.retryable) return { retry: false };
  // A platform that names its reset time is obeyed even past our attempt budget: rate limits
  // defer, they do not fail.
  if (error.code === 'rate_limited' && error.retryAfterSeconds !== undefined) {
    return { retry: true, delaySeconds: Math.max(1, Math.ceil(error.retryAfterSeconds)) };
  }
  const spent = attempts >= (progressed ? RETRY_POLICY.maxAttemptsWithProgress : RETRY_POLICY.maxAttempts);
  const windowLeft = windowSeconds - retryingForSeconds;
  const silent = error.code === 'unavailable' && attempts < RETRY_POLICY.maxAttemptsTransient && windowLeft > 0;
  if (spent && !silent) return { retry: false };
  if (error.retryAfterSeconds !== undefined) return { retry: true, delaySeconds: Math.max(1, Math.ceil(error.retryAfterSeconds)) };
  // Progress restarts the backoff: the platform answered, only this step failed.
  const step = progressed ? 1 : attempts;
  const exponential = RETRY_POLICY.baseDelaySeconds * 2 ** Math.max(0, step - 1);
  // "Full jitter" between half and the whole step keeps many deliveries from retrying in lockstep.
  const jittered = Math.min(RETRY_POLICY.maxDelaySeconds, Math.round(exponential / 2 + (exponential / 2) * random()));
  // Living on the window, the last try lands as it closes rather than a long backoff after it.
  return { retry: true, delaySeconds: spent ? Math.max(1, Math.min(jittered, Math.ceil(windowLeft))) : jittered };
}

/**
 * Milliseconds to wait before sending a repeatable request again after `error` on its `sends`-th send, or
 * null when the error is not worth repeating in place: a rate limit or a 4xx answer is the platform's
 * word and goes to `nextAttempt`; so does anything once the in-place sends are spent.
 */
export function repeatInPlace(error: PublishError, sends: number, random: () => number = Math.random): number | null {
  if (sends >= RETRY_POLICY.inPlace.sends) return null;
  if (!error.retryable || error.code !== 'unavailable' || error.retryAfterSeconds !== undefined) return null;
  if (error.status !== undefined && error.status < 500) return null;
  const step = RETRY_POLICY.inPlace.baseDelayMs * 2 ** (sends - 1);
  return Math.round(step / 2 + (step / 2) * random());
}

const QUEUE_OPTIONS: Record<QueueName, Omit<Queue, 'name'>> = {
  [QUEUES.transcode]: { ...RETRY_POLICY.crash, heartbeatSeconds: RETRY_POLICY.heartbeatSeconds, expireInSeconds: 3600, notify: true },
  [QUEUES.publish]: { ...RETRY_POLICY.crash, heartbeatSeconds: RETRY_POLICY.heartbeatSeconds, expireInSeconds: 3600, notify: true },
  // A missed or failed sweep is simply done by the next one; no point retrying hard.
  [QUEUES.cleanup]: { retryLimit: 1, retryDelay: 60, expireInSeconds: 3600 },
  [QUEUES.validateAccounts]: { retryLimit: 1, retryDelay: 600, expireInSeconds: 3600 },
  [QUEUES.atRisk]: { retryLimit: 0, expireInSeconds: 600 },
};

export interface BossOptions {
  connectionString: string;
  log: Logger;
  clock?: Clock;
  /** Seconds between polls when LISTEN/NOTIFY cannot wake the worker (and for future-dated jobs). */
  pollingIntervalSeconds?: number;
}

export async function startBoss(options: BossOptions): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: options.connectionString,
    useListenNotify: true,
    // Heartbeat expiry is detected by the supervisor; check often so a dead worker's job moves on
    // within seconds instead of minutes.
    superviseIntervalSeconds: 5,
    monitorIntervalSeconds: 5,
    max: 4,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  boss.on('error', (error: unknown) => options.log.warn({ component: 'queue', err: error }, 'pg-boss error'));
  boss.on('warning', (warning: unknown) => options.log.debug({ component: 'queue', warning }, 'pg-boss warning'));
  await boss.start();
  for (const [name, queueOptions] of Object.entries(QUEUE_OPTIONS)) {
    const existing = await boss.getQueue(name);
    if (!existing) await boss.createQueue(name, queueOptions);
    else await boss.updateQueue(name, queueOptions);
  }
  return boss;
}

/** Registers the hourly cleanup with pg-boss's cron (an upsert: every worker may call it). */
export async function scheduleCleanup(boss: PgBoss): Promise<void> {
  // `once`: a deployment that was down at the slot still gets one sweep, not a backlog of them.
  await boss.schedule(QUEUES.cleanup, CLEANUP_SCHEDULE.cron, {}, { tz: CLEANUP_SCHEDULE.tz, missed: 'once' });
}

/** The daily account validation and the at-risk check, on pg-boss's cron (upserts, like cleanup). */
export async function scheduleAccountChecks(boss: PgBoss): Promise<void> {
  await boss.schedule(QUEUES.validateAccounts, VALIDATE_SCHEDULE.cron, {}, { tz: VALIDATE_SCHEDULE.tz, missed: 'once' });
  await boss.schedule(QUEUES.atRisk, AT_RISK_SCHEDULE.cron, {}, { tz: AT_RISK_SCHEDULE.tz });
}

function sendOptions(db: Queryable | undefined, extra: SendOptions = {}): SendOptions {
  return db ? { ...extra, db: bossDb(db) } : extra;
}

/** Queues the transcode of a post's media, in the caller's transaction when `db` is given. */
export async function sendTranscode(boss: PgBoss, payload: TranscodePayload, db?: Queryable): Promise<string | null> {
  return boss.send(QUEUES.transcode, payload, sendOptions(db));
}

/** Queues one publish attempt of a delivery, starting at `startAfter`. */
export async function sendPublish(boss: PgBoss, payload: PublishPayload, startAfter: Date, db?: Queryable): Promise<string | null> {
  return boss.send(QUEUES.publish, payload, sendOptions(db, { startAfter }));
}
