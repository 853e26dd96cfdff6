/**
 * A worker process's loop: one boss.work per queue, a heartbeat row so others know it is alive,
 * and a sweep that re-queues deliveries whose job died for good.
 */
import { randomUUID } from 'node:crypto';
import type { JobResult } from 'pg-boss';
import { hostname } from 'node:os';
import type { Context } from '../core/context.ts';
import { withTransaction } from '../core/db.ts';
import { publishPayload, QUEUES, scheduleAccountChecks, scheduleCleanup, sendPublish, transcodePayload } from '../core/jobs.ts';
import { checkAtRisk, validateAccounts } from './account-checks.ts';
import type { PlatformAdapter, PlatformId } from '../core/platforms.ts';
import { listOrphanedDeliveries, setJob } from '../core/posts.ts';
import { runCleanup } from '../core/retention.ts';
import { heartbeat, removeWorker } from '../core/workers.ts';
import { silentNotifier, type Notifier } from './notify.ts';
import { ADAPTERS } from './platforms/index.ts';
import { CAPS, type Cap } from '../core/caps.ts';
import { handlePublish } from './publish.ts';
import { handleTranscode, sweepWorkDirs } from './transcode.ts';

export interface WorkerOptions {
  adapters?: Partial<Record<PlatformId, PlatformAdapter>>;
  /** Per-account publishing caps; benchmarks that hammer one test account pass none. */
  caps?: Partial<Record<PlatformId, readonly Cap[]>>;
  notify?: Notifier;
  concurrency?: number;
  /** Seconds between polls for future-dated jobs (their start is not notified). */
  pollingIntervalSeconds?: number;
  sweepIntervalSeconds?: number;
  /** On stop, how long in-flight jobs may run before they are cancelled (default: config). */
  stopGraceSeconds?: number;
}

export interface RunningWorker {
  id: string;
  stop(): Promise<void>;
  /** Re-queues deliveries whose job died; returns how many. Runs on a timer too. */
  sweep(): Promise<number>;
}

export async function startWorker(ctx: Context, options: WorkerOptions = {}): Promise<RunningWorker> {
  const id = randomUUID();
  const log = ctx.log.child({ component: 'worker', workerId: id });
  const env = { ctx, adapters: options.adapters ?? ADAPTERS, notify: options.notify ?? silentNotifier, caps: options.caps ?? CAPS };
  const controller = new AbortController();
  const me = { id, hostname: hostname(), pid: process.pid };
  await heartbeat(ctx.pool, me);
  void sweepWorkDirs().then(
    (removed) => removed.length > 0 && log.info({ removed: removed.length }, 'removed work directories of transcodes that died'),
    (error: unknown) => log.warn({ err: error }, 'could not sweep old transcode directories'),
  );

  const concurrency = options.concurrency ?? ctx.config.worker.concurrency;
  const polling = { pollingIntervalSeconds: options.pollingIntervalSeconds ?? 1, notifyPollingIntervalSeconds: options.pollingIntervalSeconds ?? 1 };
  const workIds = [
    await ctx.boss.work(QUEUES.transcode, { ...polling, localConcurrency: Math.max(1, Math.floor(concurrency / 2)) }, async (jobs) => {
      for (const job of jobs) {
        const { postId } = transcodePayload.parse(job.data);
        await handleTranscode(ctx, env.notify, postId, controller.signal);
      }
    }),
    // pg-boss waits a polling interval after every fetch, even a fruitful one: fetched one at a
    // time, a slot would take at most one due job a second however many are due. Two per fetch,
    // with a full batch fetching again at once, drains a backlog (many posts due at 18:00) at the
    // pace of the platforms instead. The pair runs in turn, so a slot still runs one publish at a
    // time, and each job is settled on its own (one failing does not fail its partner).
    await ctx.boss.work(QUEUES.publish, { ...polling, localConcurrency: concurrency, batchSize: 2, burstWhenBatchFull: true, perJobResults: true }, async (jobs) => {
      const results: JobResult[] = [];
      for (const job of jobs) {
        try {
          const { deliveryId } = publishPayload.parse(job.data);
          await handlePublish(env, deliveryId, job.id, controller.signal);
          results.push({ id: job.id, status: 'completed' });
        } catch (error) {
          log.warn({ jobId: job.id, err: error }, 'publish job failed; pg-boss retries it');
          results.push({ id: job.id, status: 'failed', output: { message: error instanceof Error ? error.message : String(error) } });
        }
      }
      return results;
    }),
    // Hourly work: polling it every second would only load the database.
    await ctx.boss.work(QUEUES.cleanup, { pollingIntervalSeconds: 30, localConcurrency: 1 }, async () => {
      await runCleanup(ctx, { now: new Date(ctx.now()), graceHours: ctx.config.retention.mediaHours });
    }),
    await ctx.boss.work(QUEUES.validateAccounts, { pollingIntervalSeconds: 30, localConcurrency: 1 }, async () => {
      await validateAccounts(ctx, env.adapters, env.notify);
    }),
    await ctx.boss.work(QUEUES.atRisk, { pollingIntervalSeconds: 30, localConcurrency: 1 }, async () => {
      await checkAtRisk(ctx, env.notify);
    }),
  ];
  await scheduleCleanup(ctx.boss);
  await scheduleAccountChecks(ctx.boss);

  const sweep = async (): Promise<number> => {
    const orphans = await listOrphanedDeliveries(ctx.pool, new Date(ctx.now()));
    for (const delivery of orphans) {
      await withTransaction(ctx.pool, async (tx) => {
        const jobId = await sendPublish(ctx.boss, { deliveryId: delivery.id }, new Date(ctx.now()), tx);
        await setJob(tx, delivery.id, jobId);
      });
      log.warn({ deliveryId: delivery.id, state: delivery.state }, 'delivery had no live job; re-queued');
    }
    return orphans.length;
  };

  const beat = setInterval(() => {
    heartbeat(ctx.pool, me).catch((error: unknown) => log.warn({ err: error }, 'heartbeat failed'));
  }, 10_000);
  const sweeper = setInterval(() => {
    sweep().catch((error: unknown) => log.warn({ err: error }, 'sweep failed'));
  }, (options.sweepIntervalSeconds ?? 60) * 1000);
  beat.unref();
  sweeper.unref();
  await sweep();
  log.info({ concurrency }, 'worker started');

  let stopped = false;
  return {
    id,
    sweep,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      clearInterval(beat);
      clearInterval(sweeper);
      // In-flight jobs finish before we go; pg-boss waits for them. One still running after the
      // grace period (a hung platform call, a long upload) is cancelled: its adapter call fails as
      // "no answer", the delivery keeps its checkpoint and goes back to `scheduled` with a new job,
      // so nothing is left `publishing` with no job to resume it when the orchestrator's SIGKILL comes.
      const [transcodeWork, publishWork, cleanupWork, validateWork, atRiskWork] = workIds;
      const graceSeconds = options.stopGraceSeconds ?? ctx.config.worker.stopGraceSeconds;
      const grace = setTimeout(() => {
        log.warn({ graceSeconds }, 'in-flight jobs outlived the stop grace period; cancelling them');
        controller.abort();
      }, graceSeconds * 1000);
      await Promise.all([
        ctx.boss.offWork(QUEUES.transcode, { id: transcodeWork, wait: true }).catch(() => undefined),
        ctx.boss.offWork(QUEUES.publish, { id: publishWork, wait: true }).catch(() => undefined),
        ctx.boss.offWork(QUEUES.cleanup, { id: cleanupWork, wait: true }).catch(() => undefined),
        ctx.boss.offWork(QUEUES.validateAccounts, { id: validateWork, wait: true }).catch(() => undefined),
        ctx.boss.offWork(QUEUES.atRisk, { id: atRiskWork, wait: true }).catch(() => undefined),
      ]);
      clearTimeout(grace);
      await removeWorker(ctx.pool, id).catch(() => undefined);
      log.info('worker stopped');
    },
  };
}
