/**
 * The `reelay` command as a person runs it, against a test context's database: a child process,
 * its exit code and both streams. The CLI gets the context's key and its own data dir, never the
 * developer's environment beyond PATH and friends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from './context.ts';

export const BIN = fileURLToPath(new URL('../../bin/reelay.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment a `reelay` child gets: the context's database and key, its own data dir, `extra` on top. */
export function reelayEnv(ctx: TestContext, dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: ctx.databaseUrl,
    REELAY_SECRET_KEY: readFileSync(join(ctx.dir, 'data', 'secret.key'), 'utf8').trim(),
    REELAY_DATA_DIR: join(ctx.dir, dataDir),
    LOG_LEVEL: 'silent',
    ...extra,
  };
}

export function runReelay(ctx: TestContext, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: reelayEnv(ctx, 'cli-data', env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface WorkerChild {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `reelay worker` as its own process on the context's database (the crash and SIGTERM tests kill
 * it). Its stderr tail is printed only when it exits with an error of its own, not when a test
 * killed it. Every child is remembered in `children` until it exits, so `after` can reap it.
 */
export function spawnReelayWorker(ctx: TestContext, children: Set<ChildProcess>, env: Record<string, string> = {}): WorkerChild {
  const child = spawn(process.execPath, [BIN, 'worker'], { env: reelayEnv(ctx, 'worker-data', { LOG_LEVEL: 'warn', ...env }), stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (code !== null && code !== 0) process.stderr.write(`worker stderr:\n${stderr}\n`);
      resolve({ code, signal });
    }),
  );
  return { child, exited };
}

/** Polls `fn` every 200 ms until it yields something truthy; fails with `what` after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
