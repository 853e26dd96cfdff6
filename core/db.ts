/**
 * The Postgres pool and the one transaction helper. Every SQL statement lives in a named function
 * in the module that owns its table (posts.ts, accounts.ts, media.ts, workers.ts).
 */
import pg from 'pg';
import type { Logger } from './log.ts';

export type Pool = pg.Pool;
export type Client = pg.PoolClient;
/** Anything that can run a query: the pool or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

// bigint columns (sizes, event ids) fit comfortably in a JS number for our ranges.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export function createPool(connectionString: string, log: Logger, max = 10): Pool {
  const pool = new pg.Pool({ connectionString, max, application_name: 'reelay' });
  // An idle client losing its connection (Postgres restarted) must not crash the process.
  pool.on('error', (error) => log.warn({ err: error }, 'idle database connection lost'));
  return pool;
}

export async function withTransaction<T>(pool: Pool, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // pg-pool takes its idle 'error' listener off a checked-out client: a connection dropped while
  // the transaction waits on something else (a file, a platform) would emit 'error' to no one and
  // end the process. The transaction is lost either way; its next statement fails, and the client
  // is released with the error so the pool discards it.
  let lost: Error | undefined;
  const onError = (error: Error) => {
    lost ??= error;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    if (!lost) await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.removeListener('error', onError);
    client.release(lost);
  }
}

/** pg-boss's database adapter over one of our clients, so a job is sent in our transaction. */
export function bossDb(client: Queryable): { executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }> } {
  return { executeSql: (text, values) => client.query(text, values as unknown[]) };
}
