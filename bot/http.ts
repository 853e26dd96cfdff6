/**
 * The small HTTP server: `/healthz` and `/metrics` now; OAuth callbacks and signed media links
 * later. It answers on the configured host and port and never exposes anything but what a route
 * allows.
 *
 * Health is a list of named checks. Each process passes the ones that matter to it (a worker has
 * no chat connection); a chat bot adds its own check under `chat.<name>` when it starts, replacing
 * the placeholder that reports the chat as not configured.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { handleLinkRoute, type LinkAnnouncer } from './links.ts';
import type { Config } from '../core/config.ts';
import type { Context } from '../core/context.ts';
import { MESSAGES } from '../core/errors.ts';
import { QUEUES } from '../core/jobs.ts';
import { METRICS_CONTENT_TYPE, renderMetrics } from '../core/metrics.ts';
import { liveWorkerCount } from '../core/workers.ts';
import { serveMedia } from './media.ts';

/** `not_configured` is not a failure: an optional part (a chat) that is simply off. */
export type HealthStatus = 'ok' | 'failing' | 'not_configured';

export interface HealthResult {
  status: HealthStatus;
  detail?: string;
}

export interface HealthCheck {
  name: string;
  run(): Promise<HealthResult>;
}

export interface HealthReport {
  ok: boolean;
  /** Names of the failing checks, so a 503 says what broke without reading the whole body. */
  failing: string[];
  checks: Record<string, HealthResult & { ms: number }>;
  /** Live worker processes: informative, never a failure here (the heartbeat alert covers it). */
  workers: number | null;
}

const CHECK_TIMEOUT_MS = 3000;
// ffmpeg does not vanish between two probes a second apart; spawning it per probe would.
const FFMPEG_CACHE_MS = 60_000;

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `binary -version` runs; rejects with the reason when it does not. */
function runVersion(binary: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['-hide_banner', '-version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let first = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      if (first.length < 200) first += text;
    });
    child.once('error', (error) => reject(new Error(`cannot run ${binary}: ${error.message}`)));
    child.once('close', (code) => (code === 0 ? resolve(first.split('\n')[0] ?? '') : reject(new Error(`${binary} -version exited with ${code}`))));
  });
}

function cachedCheck(name: string, ttlMs: number, run: () => Promise<HealthResult>): HealthCheck {
  let cached: { at: number; result: HealthResult } | null = null;
  return {
    name,
    run: async () => {
      if (cached && Date.now() - cached.at < ttlMs) return cached.result;
      const result = await run();
      cached = { at: Date.now(), result };
      return result;
    },
  };
}

/** Database, queue and ffmpeg: what every Reelay process needs. */
export function coreHealthChecks(ctx: Context): HealthCheck[] {
  return [
    {
      name: 'database',
      run: async () => {
        await ctx.pool.query('SELECT 1');
        return { status: 'ok' };
      },
    },
    {
      name: 'queue',
      // Through pg-boss's own connections, which are not the pool's.
      run: async () => ((await ctx.boss.getQueue(QUEUES.publish)) ? { status: 'ok' } : { status: 'failing', detail: `queue ${QUEUES.publish} is missing` }),
    },
    cachedCheck('ffmpeg', FFMPEG_CACHE_MS, async () => {
      await runVersion(ctx.config.media.ffmpegPath);
      await runVersion(ctx.config.media.ffprobePath);
      return { status: 'ok' };
    }),
  ];
}

/**
 * Placeholders for the chat connections: "not configured" without a token. A bot that starts
 * registers its real check under the same name.
 */
export function chatPlaceholderChecks(config: Config): HealthCheck[] {
  const chats = [
    { name: 'chat.telegram', label: 'Telegram', variable: 'TELEGRAM_BOT_TOKEN', token: config.chat.telegram.token },
    { name: 'chat.discord', label: 'Discord', variable: 'DISCORD_TOKEN', token: config.chat.discord.token },
  ];
  return chats.map((chat) => ({
    name: chat.name,
    run: async () => ({ status: 'not_configured', detail: chat.token ? MESSAGES.chatNoBotYet(chat.label) : MESSAGES.chatNotConfigured(chat.variable) }),
  }));
}

export async function runHealthChecks(ctx: Context, checks: readonly HealthCheck[]): Promise<HealthReport> {
  const workers = withTimeout(liveWorkerCount(ctx.pool), CHECK_TIMEOUT_MS).catch(() => null);
  const results = await Promise.all(
    checks.map(async (check) => {
      const started = performance.now();
      let result: HealthResult;
      try {
        result = await withTimeout(check.run(), CHECK_TIMEOUT_MS);
      } catch (error) {
        result = { status: 'failing', detail: message(error) };
      }
      return [check.name, { ...result, ms: Math.round(performance.now() - started) }] as const;
    }),
  );
  const failing = results.filter(([, r]) => r.status === 'failing').map(([name]) => name);
  return { ok: failing.length === 0, failing, checks: Object.fromEntries(results), workers: await workers };
}

export interface HttpServer {
  url: string;
  /** Adds a health check, or replaces the one with the same name (a chat bot's real check). */
  addHealthCheck(check: HealthCheck): void;
  /** A POST route for a chat's webhook. */
  addPostRoute(path: string, handler: (request: IncomingMessage, response: ServerResponse) => void): void;
  close(): Promise<void>;
}

export interface HttpOptions {
  host?: string;
  port?: number;
  /** Default: the core checks and the chat placeholders. */
  checks?: HealthCheck[];
  /** Tells the chat an account was linked (the bot's outboxes); logged only when absent. */
  announce?: LinkAnnouncer;
}

export async function startHttp(ctx: Context, options: HttpOptions = {}): Promise<HttpServer> {
  const log = ctx.log.child({ component: 'http' });
  const checks = new Map<string, HealthCheck>();
  const announce: LinkAnnouncer = options.announce ?? (async (linked) => log.info({ platform: linked.account.platform, workspaceId: linked.workspaceId }, 'account linked'));
  const postRoutes = new Map<string, (request: IncomingMessage, response: ServerResponse) => void>();
  for (const check of options.checks ?? [...coreHealthChecks(ctx), ...chatPlaceholderChecks(ctx.config)]) checks.set(check.name, check);

  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if ((request.method === 'GET' || request.method === 'HEAD') && path.startsWith('/media/')) {
      serveMedia(ctx, request, response, url).catch((error: unknown) => {
        log.warn({ err: error }, 'media link failed');
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' }).end('Error\n');
        else response.destroy();
      });
      return;
    }
    if (request.method === 'GET' && path === '/healthz') {
      runHealthChecks(ctx, [...checks.values()])
        .then((report) => {
          if (!report.ok) log.warn({ failing: report.failing }, 'health check failing');
          response.writeHead(report.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          response.end(JSON.stringify(report));
        })
        .catch((error: unknown) => {
          log.warn({ err: error }, 'health check crashed');
          response.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, failing: ['healthz'] }));
        });
      return;
    }
    if (handleLinkRoute(ctx, request, response, url, announce)) return;
    const postRoute = request.method === 'POST' ? postRoutes.get(path) : undefined;
    if (postRoute) return postRoute(request, response);
    if (request.method === 'GET' && path === '/metrics') {
      renderMetrics(ctx.pool)
        .then((text) => {
          response.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' }).end(text);
        })
        .catch((error: unknown) => {
          log.warn({ err: error }, 'metrics failed');
          response.writeHead(503, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${message(error)}\n`);
        });
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n');
  });
  const host = options.host ?? ctx.config.http.host;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? ctx.config.http.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  log.info({ host, port }, 'HTTP server listening');
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    addHealthCheck: (check) => {
      checks.set(check.name, check);
    },
    addPostRoute: (path, handler) => {
      postRoutes.set(path, handler);
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections (a Prometheus scraper) would hold close() open otherwise.
        server.closeIdleConnections();
      }),
  };
}
