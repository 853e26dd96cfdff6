/**
 * A context per test file: its own embedded Postgres in a temp dir (fsync off), a silent logger
 * unless REELAY_TEST_LOG is set, and config built from explicit values, never the developer's .env.
 */
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from 'pg-boss';
import { parseConfig, type Config } from '../../core/config.ts';
import { createContext, type Context } from '../../core/context.ts';
import { createLogger } from '../../core/log.ts';

export interface TestContext extends Context {
  dir: string;
  /** Stops everything and removes the temp dir. */
  dispose(): Promise<void>;
}

export async function testConfig(env: Record<string, string | undefined> = {}): Promise<{ config: Config; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'reelay-test-'));
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
