/** `reelay start` and `reelay worker`: long-running processes with a graceful stop. */
import { coreHealthChecks, startHttp } from '../bot/http.ts';
import { logAlertSink, watchWorkers } from '../core/alerts.ts';
import type { Config } from '../core/config.ts';
import { ChatNotifier, linkAnnouncer } from '../core/chat/notifier.ts';
import { configuredOutboxes } from '../core/chat/outboxes.ts';
import { createContext } from '../core/context.ts';
import { createLogger } from '../core/log.ts';
import { startWorker } from '../worker/main.ts';

export async function runServers(config: Config, parts: { worker: boolean; http: boolean; bots: boolean }): Promise<number> {
  const log = createLogger({ level: config.log.level ?? 'info' });
  const ctx = await createContext({ config, log });
  const stops: Array<() => Promise<void>> = [];
  // The worker edits status messages and sends alerts itself, over the chats' REST APIs.
  const outboxes = configuredOutboxes(config);
  try {
    if (parts.worker) {
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
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping: letting in-flight jobs finish');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  for (const stop of stops.reverse()) await stop().catch((error: unknown) => log.warn({ err: error }, 'error while stopping'));
  await ctx.close();
  return 0;
}
