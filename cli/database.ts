/**
 * The database alone — no migrations, no queue — for the commands that inspect it (`doctor`) or
 * replace it (`restore`): they must work on a database the app could not start on, and must not
 * hold pg-boss connections while its tables are dropped.
 */
import type { Config } from '../core/config.ts';
import { startEmbeddedPostgres, type DatabaseHandle } from '../core/embedded-postgres.ts';
import type { Logger } from '../core/log.ts';

export async function openDatabase(config: Config, log: Logger): Promise<DatabaseHandle> {
  if (config.database.url) return { url: config.database.url, owned: false, stop: async () => undefined };
  return startEmbeddedPostgres({ dataDir: config.database.dataDir, log });
}

/**
 * A connection string without its password, and the password apart: Postgres tools get the
 * password through PGPASSWORD, so it never shows in `ps`.
 */
export function splitPassword(url: string): { url: string; password: string | undefined } {
  const parsed = new URL(url);
  const password = parsed.password ? decodeURIComponent(parsed.password) : undefined;
  parsed.password = '';
  return { url: parsed.toString(), password };
}
