/**
 * A context per test file: its own embedded Postgres in a temp dir (fsync off), a silent logger
 * unless REELAY_TEST_LOG is set, and config built from explicit values, never the developer's .env.
 */
import { mkdtemp, readdir, readFile, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from 'pg-boss';
import { parseConfig, type Config } from '../../core/config.ts';
import { createContext, type Context } from '../../core/context.ts';
import { createLogger } from '../../core/log.ts';
import { alive } from '../../core/embedded-postgres.ts';

export interface TestContext extends Context {
  dir: string;
  /** Stops everything and removes the temp dir. */
  dispose(): Promise<void>;
}

const PREFIX = 'reelay-test-';


/**
 * A test process killed from outside (a CI timeout, Ctrl-C, a harness) never disposes its context:
 * its Postgres keeps running and its dir stays. The first context of a later process stops those
 * servers (fast shutdown) and removes their dirs; dirs whose test process is alive are left alone.
 */
export async function sweepOrphans(): Promise<void> {
  const root = tmpdir();
  for (const name of await readdir(root).catch(() => [])) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(root, name);
    const running = await readFile(join(dir, 'data', 'postgres.json'), 'utf8').then((text) => JSON.parse(text) as { pid?: unknown }, () => null);
    if (!running || typeof running.pid !== 'number' || alive(running.pid)) continue;
    const postmaster = Number((await readFile(join(dir, 'data', 'pg', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (postmaster > 0) {
      try {
        process.kill(postmaster, 'SIGINT');
      } catch {
        // Already gone.
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
}

let swept: Promise<void> | undefined;

export async function testConfig(env: Record<string, string | undefined> = {}): Promise<{ config: Config; dir: string }> {
  swept ??= sweepOrphans();
  await swept;
  const dir = await mkdtemp(join(tmpdir(), PREFIX));
  await chmod(dir, 0o755);
  const config = parseConfig({ REELAY_DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'silent', ...env });
  return { config, dir };
}

export async function testContext(options: { env?: Record<string, string | undefined>; clock?: Clock; fetch?: typeof fetch } = {}): Promise<TestContext> {
  const { config, dir } = await testConfig(options.env);
  const log = createLogger({ level: process.env.REELAY_TEST_LOG ?? 'silent' });
  const ctx = await createContext({
    config,
    log,
    fastDatabase: true,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  return {
    ...ctx,
    dir,
    dispose: async () => {
      await ctx.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
