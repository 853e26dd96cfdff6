/**
 * What every benchmark shares: the row it reports, percentiles, polling, a worker child process,
 * and a delay proxy that gives a simulator the latency of a real network.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from '../tests/support/context.ts';

export interface Row {
  name: string;
  value: number | null;
  unit: string;
  /** As people read it: "<= 1000", ">= 50", or "" for a number reported for context. */
  target: string;
  /** null: no target, or the benchmark was skipped. */
  pass: boolean | null;
  note?: string;
}

export interface BenchOptions {
  quick: boolean;
  log(line: string): void;
}

export type Benchmark = (options: BenchOptions) => Promise<Row[]>;

export function atMost(name: string, value: number, unit: string, limit: number, note?: string): Row {
  return { name, value, unit, target: `<= ${limit}`, pass: value <= limit, ...(note ? { note } : {}) };
}

export function atLeast(name: string, value: number, unit: string, limit: number, note?: string): Row {
  return { name, value, unit, target: `>= ${limit}`, pass: value >= limit, ...(note ? { note } : {}) };
}

export function info(name: string, value: number | null, unit: string, note?: string): Row {
  return { name, value, unit, target: '', pass: null, ...(note ? { note } : {}) };
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error('percentile of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something truthy; throws after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export async function countDeliveries(ctx: TestContext, state: string, postIds: readonly string[]): Promise<number> {
  const { rows } = await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM deliveries WHERE state = $1 AND post_id = ANY($2::uuid[])', [state, postIds]);
  return rows[0]!.n;
}

const BIN = fileURLToPath(new URL('../bin/reelay.js', import.meta.url));

/** Node's flags from the image's ENTRYPOINT (`node <flags> bin/reelay.js`), so a benchmark runs the worker as deployed. */
export function imageNodeFlags(): string[] {
  const dockerfile = readFileSync(fileURLToPath(new URL('../Dockerfile', import.meta.url)), 'utf8');
  const line = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile);
  if (!line) throw new Error('the Dockerfile has no ENTRYPOINT [...] line');
  const words = JSON.parse(line[1]!) as string[];
  const bin = words.indexOf('bin/reelay.js');
  if (words[0] !== 'node' || bin < 0) throw new Error(`unexpected ENTRYPOINT: ${line[1]}`);
  return words.slice(1, bin);
}

export interface WorkerChild {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr(): string;
  /** SIGTERM (a graceful stop), then SIGKILL if it is still there after 20 s. */
  stop(): Promise<void>;
}

/** `reelay worker` as its own process against the context's database, as a deployment runs it. */
export function spawnWorker(ctx: TestContext, env: Record<string, string>, name: string): WorkerChild {
  const child = spawn(process.execPath, [...imageNodeFlags(), BIN, 'worker'], {
    env: {
      ...process.env,
      DATABASE_URL: ctx.databaseUrl,
      REELAY_SECRET_KEY: readFileSync(join(ctx.dir, 'data', 'secret.key'), 'utf8').trim(),
      REELAY_DATA_DIR: join(ctx.dir, `worker-${name}`),
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface DelayProxy {
  url: string;
  close(): Promise<void>;
}

/**
 * Forwards every request to `target` after `delayMs`: one delay per request, standing in for the
 * round trip to a real API (the simulators answer in well under a millisecond).
 */
export async function startDelayProxy(target: string, delayMs: number): Promise<DelayProxy> {
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    setTimeout(() => {
      const forward = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      req.pipe(forward);
    }, delayMs);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
