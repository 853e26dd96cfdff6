/**
 * `reelay backup FILE` and `reelay restore FILE`: pg_dump's custom format of the whole database —
 * rows, the queue and the videos (large objects are part of a whole-database dump) — and
 * pg_restore of it over the current database. Both work on the embedded default as on a server.
 */
import { spawn } from 'node:child_process';
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import pg from 'pg';
import { childEnvironment, type Config } from '../core/config.ts';
import { formatBytes, MESSAGES, UserError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { liveWorkerCount } from '../core/workers.ts';
import { openDatabase, splitPassword } from './database.ts';
import type { CommandIo } from './posts.ts';

const TAIL_CHARS = 2000;

/** Runs a Postgres client tool; rejects with the end of its stderr when it fails. */
function runTool(binary: string, args: string[], databaseUrl: string): Promise<void> {
  const { password } = splitPassword(databaseUrl);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(binary, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: childEnvironment(password === undefined ? {} : { PGPASSWORD: password }),
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      stderr = (stderr + text).slice(-TAIL_CHARS);
    });
    child.once('error', (error) => reject(new UserError(MESSAGES.backupToolFailed(binary, error.message))));
    child.once('close', (code) => {
      if (code === 0) resolvePromise();
      else reject(new UserError(MESSAGES.backupToolFailed(binary, stderr.trim() || `exit code ${code}`)));
    });
  });
}

function seconds(startedMs: number): string {
  return ((performance.now() - startedMs) / 1000).toFixed(1);
}

export async function backupCommand(config: Config, log: Logger, file: string, io: CommandIo): Promise<number> {
  const target = resolve(file);
  if (existsSync(target)) throw new UserError(MESSAGES.backupFileExists(file));
  const database = await openDatabase(config, log);
  // Written aside and renamed at the end, so an interrupted backup never looks like a whole one.
  const partial = `${target}.partial`;
  try {
    const started = performance.now();
    // Uncompressed: the bulk is video, which gzip cannot shrink (measured on 200 MB of media: the
    // same size either way, 11.5 s at level 6 against 2 s without).
    await runTool(config.backup.pgDumpPath, ['--format=custom', '--compress=0', `--file=${partial}`, `--dbname=${splitPassword(database.url).url}`], database.url);
    renameSync(partial, target);
    io.out(MESSAGES.backupDone(file, formatBytes(statSync(target).size), seconds(started)));
    return 0;
  } finally {
    rmSync(partial, { force: true });
    await database.stop();
  }
}

export async function restoreCommand(config: Config, log: Logger, file: string, options: { force?: boolean }, io: CommandIo): Promise<number> {
  const source = resolve(file);
  if (!existsSync(source)) throw new UserError(MESSAGES.backupFileMissing(file));
  const database = await openDatabase(config, log);
  try {
    // Dropping tables under running workers would block on their locks, or pull rows from under
    // a publish in flight.
    const running = await withClient(database.url, (client) => liveWorkerCount(client).catch(() => 0));
    if (running > 0 && !options.force) throw new UserError(MESSAGES.restoreWorkersRunning(running));
    const started = performance.now();
    const queueSchema = await setQueueSchemaAside(database.url);
    try {
      await runTool(
        config.backup.pgRestorePath,
        // One transaction: a failed restore leaves the database as it was. The dump's owner and
        // grants belong to the machine it came from, not to this one.
        ['--clean', '--if-exists', '--no-owner', '--no-privileges', '--single-transaction', '--exit-on-error', `--dbname=${splitPassword(database.url).url}`, source],
        database.url,
      );
    } catch (error) {
      await queueSchema.putBack();
      throw error;
    }
    await queueSchema.drop();
    const removed = await removeOrphanedObjects(database.url);
    if (removed > 0) log.info({ component: 'restore', removed }, 'removed videos stored after the backup was taken');
    io.out(MESSAGES.restoreDone(file, seconds(started)));
    return 0;
  } finally {
    await database.stop();
  }
}

async function withClient<T>(databaseUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const QUEUE_SCHEMA = 'pgboss';
const QUEUE_SCHEMA_ASIDE = 'pgboss_before_restore';

/**
 * pg_restore --clean cannot drop pg-boss's partitioned tables (it drops a partition's inherited
 * primary key first, which Postgres refuses), so the queue schema is renamed out of its way
 * first, and dropped after a successful restore or renamed back after a failed one.
 */
async function setQueueSchemaAside(databaseUrl: string): Promise<{ drop(): Promise<void>; putBack(): Promise<void> }> {
  const moved = await withClient(databaseUrl, async (client) => {
    await client.query(`DROP SCHEMA IF EXISTS ${QUEUE_SCHEMA_ASIDE} CASCADE`);
    const { rowCount } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [QUEUE_SCHEMA]);
    if (!rowCount) return false;
    await client.query(`ALTER SCHEMA ${QUEUE_SCHEMA} RENAME TO ${QUEUE_SCHEMA_ASIDE}`);
    return true;
  });
  return {
    drop: async () => {
      if (moved) await withClient(databaseUrl, (client) => client.query(`DROP SCHEMA ${QUEUE_SCHEMA_ASIDE} CASCADE`));
    },
    putBack: async () => {
      if (moved) await withClient(databaseUrl, (client) => client.query(`ALTER SCHEMA ${QUEUE_SCHEMA_ASIDE} RENAME TO ${QUEUE_SCHEMA}`));
    },
  };
}

/**
 * pg_restore --clean replaces the large objects the dump holds but leaves alone those created
 * after it was taken; no row refers to them any more.
 */
async function removeOrphanedObjects(databaseUrl: string): Promise<number> {
  return withClient(databaseUrl, async (client) => {
    const { rowCount } = await client.query(
      `SELECT lo_unlink(l.oid) FROM pg_largeobject_metadata l
        WHERE NOT EXISTS (SELECT 1 FROM media m WHERE m.oid = l.oid)
          AND NOT EXISTS (SELECT 1 FROM renditions r WHERE r.oid = l.oid)`,
    );
    return rowCount ?? 0;
  });
}
