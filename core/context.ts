/**
 * The wired dependencies of one process, built once: config, logger, database (embedded or not),
 * migrations, pool, queue, secret box, clock. Tests pass overrides instead of patching modules.
 */
import type { Clock, PgBoss } from 'pg-boss';
import type { Config } from './config.ts';
import { createSecretBox, resolveSecretKey, type SecretBox } from './crypto.ts';
import { createPool, type Pool } from './db.ts';
import { startEmbeddedPostgres, type DatabaseHandle } from './embedded-postgres.ts';
import { startBoss } from './jobs.ts';
import { createLogger, type Logger } from './log.ts';
import { createMediaLinkSigner, type MediaLinkSigner } from './media-links.ts';
import { migrate } from './migrate.ts';
import { fetch as undiciFetch } from 'undici';

export interface Context {
  config: Config;
  log: Logger;
  pool: Pool;
  boss: PgBoss;
  secrets: SecretBox;
  /** Signs public links to renditions (null URLs without PUBLIC_BASE_URL). */
  mediaLinks: MediaLinkSigner;
  databaseUrl: string;
  /** Milliseconds since the epoch; a TestClock in scheduling tests. */
  now(): number;
  fetch: typeof globalThis.fetch;
  close(): Promise<void>;
}

export interface ContextOptions {
  config: Config;
  log?: Logger;
  clock?: Clock;
  fetch?: typeof globalThis.fetch;
  /** Embedded Postgres without fsync: tests only. */
  fastDatabase?: boolean;
}

export async function createContext(options: ContextOptions): Promise<Context> {
  const { config } = options;
  const log = options.log ?? createLogger({ level: config.log.level ?? 'info' });
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch((error: unknown) => log.warn({ err: error }, 'error while closing'));
  };
  try {
    let database: DatabaseHandle;
    if (config.database.url) database = { url: config.database.url, owned: false, stop: async () => undefined };
    else database = await startEmbeddedPostgres({ dataDir: config.database.dataDir, log, fast: options.fastDatabase ?? false });
    closers.push(() => database.stop());

    const key = resolveSecretKey(config.secrets.key, { embedded: !config.database.url, dataDir: config.database.dataDir });
    const secrets = createSecretBox(key, [...config.secrets.previous]);

    await migrate(database.url, log);
    const pool = createPool(database.url, log);
    closers.push(() => pool.end());
    const boss = await startBoss({ connectionString: database.url, log, ...(options.clock ? { clock: options.clock } : {}) });
    closers.push(() => boss.stop({ graceful: true, timeout: 10_000 }));

    const clock = options.clock;
    return {
      config,
      log,
      pool,
      boss,
      secrets,
      mediaLinks: createMediaLinkSigner(key, config.http.publicBaseUrl, config.secrets.previous),
      databaseUrl: database.url,
      now: clock ? () => clock.now() : () => Date.now(),
      // undici's fetch streams request bodies; Node's built-in one keeps a streamed body in memory
      // until the request ends (measured: a 100 MB upload held 116 MB of buffers vs 27 MB).
      fetch: options.fetch ?? (undiciFetch as unknown as typeof globalThis.fetch),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
