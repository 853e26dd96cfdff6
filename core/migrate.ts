import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type { Logger } from './log.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

/** Applies pending SQL migrations; concurrent starters wait on the runner's advisory lock. */
export async function migrate(databaseUrl: string, log: Logger): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'reelay_migrations',
    checkOrder: true,
    advisoryLockMode: 'wait',
    log: (message: string) => log.debug({ component: 'migrate' }, message),
    verbose: false,
  });
  const names = applied.map((m) => m.name);
  if (names.length > 0) log.info({ component: 'migrate', applied: names }, 'migrations applied');
  return names;
}
