/**
 * The worker heartbeat alert: when jobs are due and no worker has sent a heartbeat for
 * WORKERS_DOWN_AFTER_SECONDS, the alerts channel hears about it once; when a worker is alive again,
 * once more. The state lives in the `alerts` table and changes only through a guarded UPDATE, so
 * any number of watching processes (or restarts of one) send each message exactly once.
 */
import { withTransaction, type Pool, type Queryable } from './db.ts';
import { MESSAGES } from './errors.ts';
import { QUEUES } from './jobs.ts';
import type { Logger } from './log.ts';
import { WORKER_STALE_SECONDS } from './workers.ts';

export const WORKERS_DOWN_AFTER_SECONDS = 120;
const WORKERS_DOWN = 'workers_down';

export interface OpsAlert {
  kind: 'workers_down' | 'workers_back';
  /** The plain-words text for the alerts channel. */
  message: string;
  at: Date;
  /** When the outage began (the later of the last heartbeat and the oldest due job). */
  since: Date;
}

/**
 * Where operational alerts go. The chat front ends implement it (a message to the alerts
 * channel); until they exist, alerts are logged.
 */
export interface AlertSink {
  alert(alert: OpsAlert): Promise<void>;
}

export function logAlertSink(log: Logger): AlertSink {
  return {
    alert: async (alert) => {
      const line = { component: 'alerts', kind: alert.kind, since: alert.since.toISOString() };
      if (alert.kind === 'workers_down') log.error(line, alert.message);
      else log.info(line, alert.message);
    },
  };
}

export interface WorkerActivity {
  /** The most recent heartbeat of any worker, or null when none is registered. */
  lastSeen: Date | null;
  /** The start time of the oldest job that is due and not yet picked up, or null. */
  oldestDue: Date | null;
  dueJobs: number;
}

export async function workerActivity(db: Queryable, now: Date): Promise<WorkerActivity> {
  const { rows } = await db.query<{ last_seen: Date | null; oldest_due: Date | null; due: number }>(
    `SELECT (SELECT max(seen_at) FROM workers) AS last_seen,
            min(start_after) AS oldest_due, count(*)::int AS due
       FROM pgboss.job
      WHERE name = ANY($1::text[]) AND state::text IN ('created', 'retry') AND start_after <= $2`,
    [Object.values(QUEUES), now],
  );
  const row = rows[0];
  return { lastSeen: row?.last_seen ?? null, oldestDue: row?.oldest_due ?? null, dueJobs: row?.due ?? 0 };
}

/** Down: a job has waited, and no worker has been heard from, for the whole threshold. */
export function workersDown(activity: WorkerActivity, now: Date): { down: boolean; since: Date | null } {
  if (!activity.oldestDue) return { down: false, since: null };
  const since = new Date(Math.max(activity.oldestDue.getTime(), activity.lastSeen?.getTime() ?? 0));
  return { down: now.getTime() - since.getTime() >= WORKERS_DOWN_AFTER_SECONDS * 1000, since };
}

function workerAlive(activity: WorkerActivity, now: Date): boolean {
  return activity.lastSeen !== null && now.getTime() - activity.lastSeen.getTime() < WORKER_STALE_SECONDS * 1000;
}

/**
 * One look at the workers; sends at most one alert. The state flips and the alert is sent in one
 * transaction, so a failed send is retried at the next check instead of being lost, and the row
 * lock keeps a second watcher from sending the same alert meanwhile.
 */
export async function checkWorkerHeartbeat(pool: Pool, now: Date, sink: AlertSink): Promise<OpsAlert | null> {
  const activity = await workerActivity(pool, now);
  const { down, since } = workersDown(activity, now);
  if (down && since) {
    return withTransaction(pool, async (tx) => {
      const { rows } = await tx.query(
        `INSERT INTO alerts (name, active, since, changed_at, data) VALUES ($1, true, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET active = true, since = EXCLUDED.since, changed_at = EXCLUDED.changed_at, data = EXCLUDED.data
          WHERE alerts.active = false
         RETURNING name`,
        [WORKERS_DOWN, since, now, JSON.stringify({ dueJobs: activity.dueJobs })],
      );
      if (rows.length === 0) return null;
      const minutes = Math.floor((now.getTime() - since.getTime()) / 60_000);
      const alert: OpsAlert = { kind: 'workers_down', message: MESSAGES.workersDown(minutes, activity.dueJobs), at: now, since };
      await sink.alert(alert);
      return alert;
    });
  }
  if (!workerAlive(activity, now)) return null;
  return withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<{ since: Date }>(
      `UPDATE alerts SET active = false, changed_at = $2 WHERE name = $1 AND active RETURNING since`,
      [WORKERS_DOWN, now],
    );
    const downSince = rows[0]?.since;
    if (!downSince) return null;
    const minutes = Math.max(1, Math.round((now.getTime() - downSince.getTime()) / 60_000));
    const alert: OpsAlert = { kind: 'workers_back', message: MESSAGES.workersBack(minutes), at: now, since: downSince };
    await sink.alert(alert);
    return alert;
  });
}

/** Checks every `intervalSeconds` until stopped; a failed check is logged and tried again. */
export function watchWorkers(deps: { pool: Pool; log: Logger; now(): number }, sink: AlertSink, intervalSeconds = 30): { stop(): void } {
  let running = false;
  const tick = () => {
    if (running) return;
    running = true;
    checkWorkerHeartbeat(deps.pool, new Date(deps.now()), sink)
      .catch((error: unknown) => deps.log.warn({ component: 'alerts', err: error }, 'worker heartbeat check failed'))
      .finally(() => {
        running = false;
      });
  };
  const timer = setInterval(tick, intervalSeconds * 1000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
