/** `reelay start`, `reelay bot` and `reelay worker`: long-running processes with a graceful stop. */
import { spawn, type ChildProcess } from 'node:child_process';
import { coreHealthChecks, startHttp } from '../bot/http.ts';
import { logAlertSink, watchWorkers } from '../core/alerts.ts';
import type { Config } from '../core/config.ts';
import { ChatNotifier, linkAnnouncer } from '../core/chat/notifier.ts';
import { configuredOutboxes } from '../core/chat/outboxes.ts';
import { createContext } from '../core/context.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { startWorker } from '../worker/main.ts';

/**
 * `in-process` for `reelay worker`; `child` for `reelay start`, which runs `reelay worker` as a
 * supervised child process: sharing one event loop, the worker's process spawns, garbage
 * collections and large-object writes held the bot's replies back (bench/ack.ts: "Received" p95
 * 0.3–0.6 s with the worker in the bot's process, under 0.1 s with it in its own).
 */
export type WorkerMode = 'in-process' | 'child' | false;

export async function runServers(config: Config, parts: { worker: WorkerMode; http: boolean; bots: boolean }): Promise<number> {
  const log = createLogger({ level: config.log.level ?? 'info' });
  // Listening from the start: a SIGTERM while still starting (an orchestrator, or `reelay start`
  // stopping a worker child it just launched) would otherwise kill the process with no clean-up.
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  const ctx = await createContext({ config, log });
  const stops: Array<() => Promise<void>> = [];
  // The worker edits status messages and sends alerts itself, over the chats' REST APIs.
  const outboxes = configuredOutboxes(config);
  try {
    if (parts.worker === 'child') {
      const child = superviseWorker(log, config.worker.stopGraceSeconds);
      stops.push(child.stop);
    } else if (parts.worker === 'in-process') {
      const notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes });
      const worker = await startWorker(ctx, { notify: notifier });
      stops.push(async () => {
        await worker.stop();
        await notifier.close();
      });
    }
    // A worker's health has no chat connections in it; the bot's includes them.
    const http = parts.http ? await startHttp(ctx, { announce: linkAnnouncer(outboxes), ...(parts.bots ? {} : { checks: coreHealthChecks(ctx) }) }) : undefined;
    if (http) stops.push(http.close);
    if (parts.bots) {
      // Loaded only here: a worker process has no use for the gateway clients' memory.
      const { startBots } = await import('../bot/main.ts');
      stops.push((await startBots(ctx, { outboxes, ...(http ? { http } : {}) })).stop);
      // The alert comes from the bot side: it is the process that stays up when workers do not.
      const watch = watchWorkers(ctx, logAlertSink(ctx.log));
      stops.push(async () => watch.stop());
    }
  } catch (error) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await ctx.close();
    throw error;
  }
  log.info('Reelay is running; Ctrl-C to stop.');
  log.info({ signal: await signalled }, 'stopping: letting in-flight jobs finish');
  for (const stop of stops.reverse()) await stop().catch((error: unknown) => log.warn({ err: error }, 'error while stopping'));
  await ctx.close();
  return 0;
}

/** Restart waits for a worker child that died: doubling from 1 s to 30 s, back to 1 s after a minute up. */
const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30_000;
const STEADY_MS = 60_000;

/**
 * `reelay worker` as a child of this process, with the same Node flags, script and environment.
 * A child that dies is started again (its jobs are resumed by pg-boss like any dead worker's);
 * stopping sends SIGTERM and waits out the worker's own grace period before SIGKILL.
 */
export function superviseWorker(log: Logger, graceSeconds: number): { stop(): Promise<void> } {
  const script = process.argv[1];
  if (!script) throw new Error('cannot tell which script to run the worker with');
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let stopping = false;
  let wait = RESTART_MIN_MS;
  let timer: NodeJS.Timeout | undefined;
  const launch = () => {
    const started = Date.now();
    const current = spawn(process.execPath, [...process.execArgv, script, 'worker'], { stdio: 'inherit' });
    child = current;
    exited = new Promise((resolve) => {
      let over = false;
      // A spawn that fails emits 'error' and may never emit 'exit': either one ends this child.
      const ended = (how: Record<string, unknown>) => {
        if (over) return;
        over = true;
        child = null;
        resolve();
        if (stopping) return;
        wait = Date.now() - started > STEADY_MS ? RESTART_MIN_MS : Math.min(RESTART_MAX_MS, wait * 2);
        log.error({ component: 'worker-child', ...how, restartInMs: wait }, 'the worker process ended; starting it again');
        timer = setTimeout(launch, wait);
      };
      current.once('exit', (code, signal) => ended({ code, signal }));
      current.once('error', (error) => ended({ err: error }));
    });
  };
  launch();
  log.info({ component: 'worker-child' }, 'worker running as a child process');
  return {
    async stop() {
      stopping = true;
      clearTimeout(timer);
      const running = child;
      if (!running) return;
      running.kill('SIGTERM');
      const kill = setTimeout(() => running.kill('SIGKILL'), (graceSeconds + 15) * 1000);
      await exited;
      clearTimeout(kill);
    },
  };
}
