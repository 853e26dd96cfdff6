/**
 * Prometheus metrics. Two kinds, because the work happens in worker processes while a scrape may
 * hit any process:
 * - what only the process that did the work can know (durations, retries, refresh failures) is
 *   recorded here by the worker and served by that process's own /metrics;
 * - what the database knows for the whole deployment (deliveries by state, queue depth, worker
 *   heartbeats) is read at scrape time, so every process reports the same cluster-wide numbers.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Queryable } from './db.ts';
import { DELIVERY_STATES } from './posts.ts';
import { QUEUES } from './jobs.ts';
import { PLATFORM_IDS } from './platforms.ts';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'reelay_' });

// Publishing spans seconds (Bluesky) to many minutes (a large resumable upload).
const publishDuration = new Histogram({
  name: 'reelay_publish_duration_seconds',
  help: 'Duration of one publish or check attempt, by platform and outcome.',
  labelNames: ['platform', 'outcome'] as const,
  buckets: [0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
  registers: [registry],
});

const transcodeDuration = new Histogram({
  name: 'reelay_transcode_duration_seconds',
  help: 'Duration of making one rendition (remux or encode).',
  labelNames: ['mode'] as const,
  buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
  registers: [registry],
});

const retries = new Counter({
  name: 'reelay_publish_retries_total',
  help: 'Publish attempts that failed and were scheduled again, by platform and error code.',
  labelNames: ['platform', 'code'] as const,
  registers: [registry],
});

const refreshFailures = new Counter({
  name: 'reelay_token_refresh_failures_total',
  help: 'Failed access-token refreshes, by platform.',
  labelNames: ['platform'] as const,
  registers: [registry],
});

const deliveries = new Gauge({
  name: 'reelay_deliveries',
  help: 'Deliveries in the database, by platform and state.',
  labelNames: ['platform', 'state'] as const,
  registers: [registry],
});

const queueDepth = new Gauge({
  name: 'reelay_queue_depth',
  help: 'Jobs waiting or running, by queue and state (created = waiting, retry = waiting after a crash, active = running).',
  labelNames: ['queue', 'state'] as const,
  registers: [registry],
});

const queueDue = new Gauge({
  name: 'reelay_queue_due',
  help: 'Jobs whose start time has passed and that no worker has picked up yet, by queue.',
  labelNames: ['queue'] as const,
  registers: [registry],
});

const lastHeartbeat = new Gauge({
  name: 'reelay_worker_last_heartbeat_timestamp_seconds',
  help: 'Unix time of the most recent heartbeat of any worker process (0 when none is registered).',
  registers: [registry],
});

const liveWorkers = new Gauge({
  name: 'reelay_workers_live',
  help: 'Worker processes that sent a heartbeat in the last 30 seconds.',
  registers: [registry],
});

export type PublishOutcome = 'published' | 'processing' | 'unconfirmed' | 'retry' | 'failed';

export function recordPublish(platform: string, outcome: PublishOutcome, seconds: number): void {
  publishDuration.observe({ platform, outcome }, seconds);
}

export function recordTranscode(mode: 'remux' | 'encode', seconds: number): void {
  transcodeDuration.observe({ mode }, seconds);
}

export function recordRetry(platform: string, code: string): void {
  retries.inc({ platform, code });
}

export function recordTokenRefreshFailure(platform: string): void {
  refreshFailures.inc({ platform });
}

const QUEUE_STATES = ['created', 'retry', 'active'] as const;

/** Reads the deployment-wide gauges from the database. */
async function refreshDatabaseGauges(db: Queryable): Promise<void> {
  const queues = Object.values(QUEUES);
  const [byState, jobs, workers] = await Promise.all([
    db.query<{ platform: string; state: string; count: number }>('SELECT platform, state, count(*)::int AS count FROM deliveries GROUP BY 1, 2'),
    db.query<{ name: string; state: string; count: number; due: number }>(
      `SELECT name, state::text AS state, count(*)::int AS count,
              count(*) FILTER (WHERE state::text IN ('created', 'retry') AND start_after <= now())::int AS due
         FROM pgboss.job WHERE name = ANY($1::text[]) AND state::text IN ('created', 'retry', 'active') GROUP BY 1, 2`,
      [queues],
    ),
    db.query<{ last: number | null; live: number }>(
      `SELECT extract(epoch FROM max(seen_at))::float8 AS last,
              count(*) FILTER (WHERE seen_at > now() - interval '30 seconds')::int AS live FROM workers`,
    ),
  ]);
  // Every known series is written each scrape, so a state that emptied reads 0 instead of vanishing.
  deliveries.reset();
  for (const platform of PLATFORM_IDS) for (const state of DELIVERY_STATES) deliveries.set({ platform, state }, 0);
  for (const row of byState.rows) deliveries.set({ platform: row.platform, state: row.state }, row.count);
  queueDepth.reset();
  queueDue.reset();
  for (const queue of queues) {
    queueDue.set({ queue }, 0);
    for (const state of QUEUE_STATES) queueDepth.set({ queue, state }, 0);
  }
  const due = new Map<string, number>();
  for (const row of jobs.rows) {
    queueDepth.set({ queue: row.name, state: row.state }, row.count);
    due.set(row.name, (due.get(row.name) ?? 0) + row.due);
  }
  for (const [queue, count] of due) queueDue.set({ queue }, count);
  lastHeartbeat.set(workers.rows[0]?.last ?? 0);
  liveWorkers.set(workers.rows[0]?.live ?? 0);
}

/** The exposition text, with the database gauges read fresh. */
export async function renderMetrics(db: Queryable): Promise<string> {
  await refreshDatabaseGauges(db);
  return registry.metrics();
}

export const METRICS_CONTENT_TYPE = registry.contentType;
