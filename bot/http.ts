/**
 * The small HTTP server: health now; OAuth callbacks and signed media links later. It answers on
 * the configured host and port and never exposes anything but what a route allows.
 */
import { createServer, type Server } from 'node:http';
import type { Context } from '../core/context.ts';
import { liveWorkerCount } from '../core/workers.ts';

export interface HttpServer {
  url: string;
  close(): Promise<void>;
}

async function health(ctx: Context): Promise<{ ok: boolean; checks: Record<string, string> }> {
  const checks: Record<string, string> = {};
  let ok = true;
  try {
    await ctx.pool.query('SELECT 1');
    checks.database = 'ok';
  } catch (error) {
    ok = false;
    checks.database = error instanceof Error ? error.message : 'unreachable';
  }
  try {
    checks.workers = String(await liveWorkerCount(ctx.pool));
  } catch {
    checks.workers = 'unknown';
  }
  return { ok, checks };
}

export async function startHttp(ctx: Context, options: { host?: string; port?: number } = {}): Promise<HttpServer> {
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (request.method === 'GET' && path === '/healthz') {
      health(ctx)
        .then(({ ok, checks }) => {
          response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ ok, ...checks }));
        })
        .catch(() => {
          response.writeHead(503).end();
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
  ctx.log.info({ component: 'http', host, port }, 'HTTP server listening');
  return {
    url: `http://${host}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
