/**
 * `reelay doctor`: everything Reelay depends on, checked at once, as a table with a fix for every
 * row that is wrong. Exit 1 when any row fails; warnings (no worker running, no PUBLIC_BASE_URL,
 * no pg_dump) are reported but do not fail it.
 *
 * It opens the database without migrating or starting the queue, so it also diagnoses a database
 * the app cannot start on. Account tokens are checked offline (state, decryptable, expiry, the
 * app's OAuth client); chat tokens are checked for real (getMe / gateway) when set.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import pg from 'pg';
import type { Config } from '../core/config.ts';
import { createSecretBox, resolveSecretKey, type SecretBox } from '../core/crypto.ts';
import { ConfigError, formatBytes, MESSAGES } from '../core/errors.ts';
import { linkedVia } from '../core/linking.ts';
import type { Logger } from '../core/log.ts';
import { MIGRATIONS_DIR } from '../core/migrate.ts';
import { PLATFORM_SPECS, type Credentials, type PlatformId } from '../core/platforms.ts';
import { storageUsage } from '../core/retention.ts';
import { liveWorkerCount } from '../core/workers.ts';
import { ADAPTERS } from '../worker/platforms/index.ts';
import { openDatabase } from './database.ts';
import type { CommandIo } from './posts.ts';

export type DoctorStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface DoctorRow {
  check: string;
  status: DoctorStatus;
  detail: string;
  /** Present on every `fail` and `warn` row. */
  fix?: string;
}

export interface DoctorDeps {
  log: Logger;
  fetch: typeof globalThis.fetch;
  now(): number;
  nodeVersion?: string;
}

const TOOL_TIMEOUT_MS = 10_000;
const NETWORK_TIMEOUT_MS = 10_000;
const REQUIRED_ENCODERS = ['libx264', 'aac'] as const;
/** The app's OAuth client each platform needs to refresh tokens, by the variables that set it. */
const OAUTH_VARIABLES: Partial<Record<PlatformId, string>> = {
  tiktok: 'TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET',
  youtube: 'GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET',
  x: 'X_CLIENT_ID (and X_CLIENT_SECRET for a confidential client)',
};

function message(error: unknown): string {
  if (error instanceof ConfigError) return error.issues.join('; ');
  return error instanceof Error ? error.message : String(error);
}

/** Runs a binary and returns what it printed; rejects when it cannot start or fails. */
function capture(binary: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], signal: AbortSignal.timeout(TOOL_TIMEOUT_MS) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      if (stdout.length < 1_000_000) stdout += text;
    });
    child.stderr.on('data', (text: string) => {
      if (stderr.length < 100_000) stderr += text;
    });
    child.once('error', (error: NodeJS.ErrnoException) => reject(new Error(error.code === 'ENOENT' ? `${binary} not found` : error.message)));
    child.once('close', (code) => (code === 0 ? resolve({ stdout, stderr }) : reject(new Error(`${binary} exited with code ${code}`))));
  });
}

/** "ffmpeg version 5.1.6-0+deb12u1 Copyright ..." -> "ffmpeg version 5.1.6-0+deb12u1". */
function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').replace(/ Copyright.*$/, '').trim();
}

export function checkNode(version: string): DoctorRow {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  const ok = major > 22 || (major === 22 && minor >= 18);
  return ok ? { check: 'Node.js', status: 'ok', detail: version } : { check: 'Node.js', status: 'fail', detail: `${version} (needs 22.18 or newer)`, fix: MESSAGES.fixNode(version) };
}

async function checkFfmpeg(config: Config): Promise<DoctorRow> {
  try {
    // One run: the encoder list on stdout, the version banner on stderr.
    const { stdout, stderr } = await capture(config.media.ffmpegPath, ['-encoders']);
    const names = new Set(stdout.split('\n').flatMap((line) => /^\s*[VAS][A-Z.]{5}\s+(\S+)/.exec(line)?.[1] ?? []));
    const missing = REQUIRED_ENCODERS.filter((name) => !names.has(name));
    return missing.length === 0
      ? { check: 'ffmpeg', status: 'ok', detail: `${firstLine(stderr)} (${REQUIRED_ENCODERS.join(', ')})` }
      : { check: 'ffmpeg', status: 'fail', detail: `no ${missing.join(', ')} encoder`, fix: MESSAGES.fixEncoders(missing.join(' and ')) };
  } catch (error) {
    return { check: 'ffmpeg', status: 'fail', detail: message(error), fix: MESSAGES.fixBinaryMissing('ffmpeg', 'FFMPEG_PATH', 'ffmpeg') };
  }
}

async function checkFfprobe(config: Config): Promise<DoctorRow> {
  try {
    return { check: 'ffprobe', status: 'ok', detail: firstLine((await capture(config.media.ffprobePath, ['-hide_banner', '-version'])).stdout) };
  } catch (error) {
    return { check: 'ffprobe', status: 'fail', detail: message(error), fix: MESSAGES.fixBinaryMissing('ffprobe', 'FFPROBE_PATH', 'ffmpeg') };
  }
}

/** The major version of pg_dump, or an error row: backups are optional, so never a failure. */
async function pgDumpMajor(config: Config): Promise<number | DoctorRow> {
  try {
    const version = (await capture(config.backup.pgDumpPath, ['--version'])).stdout;
    const major = Number(/\(PostgreSQL\)\s+(\d+)/.exec(version)?.[1] ?? /(\d+)\./.exec(version)?.[1]);
    if (!Number.isFinite(major)) throw new Error(`cannot read the version in "${version.trim()}"`);
    return major;
  } catch (error) {
    return { check: 'pg_dump', status: 'warn', detail: `${message(error)}; reelay backup will not work`, fix: MESSAGES.fixBinaryMissing('pg_dump', 'PG_DUMP_PATH', 'postgresql-client') };
  }
}

function checkPublicBaseUrl(config: Config): DoctorRow {
  const url = config.http.publicBaseUrl;
  if (!url) return { check: 'PUBLIC_BASE_URL', status: 'warn', detail: 'not set', fix: MESSAGES.fixPublicBaseUrl() };
  if (!url.startsWith('https://')) return { check: 'PUBLIC_BASE_URL', status: 'warn', detail: url, fix: MESSAGES.fixPublicBaseUrlHttps() };
  return { check: 'PUBLIC_BASE_URL', status: 'ok', detail: url };
}

async function getJson(deps: DoctorDeps, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const response = await deps.fetch(url, { headers, signal: AbortSignal.timeout(NETWORK_TIMEOUT_MS) });
  const body: unknown = await response.json().catch(() => null);
  return { status: response.status, body };
}

async function checkTelegram(config: Config, deps: DoctorDeps): Promise<DoctorRow> {
  const check = 'Telegram bot';
  const { token, apiRoot } = config.chat.telegram;
  if (!token) return { check, status: 'skip', detail: MESSAGES.chatNotConfigured('TELEGRAM_BOT_TOKEN') };
  try {
    // The token is part of the URL: never put the URL in a message.
    const { status, body } = await getJson(deps, `${apiRoot}/bot${token}/getMe`);
    const result = (body as { ok?: boolean; result?: { username?: string } } | null)?.result;
    if (status === 200 && result?.username) return { check, status: 'ok', detail: `@${result.username} (getMe)` };
    return { check, status: 'fail', detail: `getMe answered ${status}`, fix: MESSAGES.fixChatToken('TELEGRAM_BOT_TOKEN') };
  } catch (error) {
    return { check, status: 'fail', detail: `getMe: ${message(error)}`, fix: MESSAGES.fixChatUnreachable('Telegram', 'TELEGRAM_API_ROOT') };
  }
}

async function checkDiscord(config: Config, deps: DoctorDeps): Promise<DoctorRow[]> {
  const check = 'Discord bot';
  const { token, apiRoot, applicationId } = config.chat.discord;
  if (!token) return [{ check, status: 'skip', detail: MESSAGES.chatNotConfigured('DISCORD_TOKEN') }];
  const rows: DoctorRow[] = [];
  try {
    const { status, body } = await getJson(deps, `${apiRoot}/v10/gateway/bot`, { authorization: `Bot ${token}` });
    const gateway = body as { url?: string; shards?: number } | null;
    if (status === 200 && gateway?.url) rows.push({ check, status: 'ok', detail: `gateway ${gateway.url} (${gateway.shards ?? 1} shard${gateway.shards === 1 ? '' : 's'})` });
    else rows.push({ check, status: 'fail', detail: `gateway answered ${status}`, fix: MESSAGES.fixChatToken('DISCORD_TOKEN') });
  } catch (error) {
    rows.push({ check, status: 'fail', detail: `gateway: ${message(error)}`, fix: MESSAGES.fixChatUnreachable('Discord', 'DISCORD_API_ROOT') });
  }
  if (!applicationId) rows.push({ check: 'Discord application id', status: 'fail', detail: 'DISCORD_APPLICATION_ID is not set', fix: MESSAGES.fixDiscordApplicationId() });
  return rows;
}

function checkSecretKey(config: Config): { row: DoctorRow; box: SecretBox | null } {
  const check = 'secret key';
  try {
    const key = resolveSecretKey(config.secrets.key, { embedded: !config.database.url, dataDir: config.database.dataDir });
    const box = createSecretBox(key, [...config.secrets.previous]);
    const source = config.secrets.key ? 'REELAY_SECRET_KEY' : `generated in ${config.database.dataDir}`;
    return { row: { check, status: 'ok', detail: `${source} (key id ${box.keyId})` }, box };
  } catch (error) {
    return { row: { check, status: 'fail', detail: message(error), fix: MESSAGES.missingSecretKey() }, box: null };
  }
}

async function checkMigrations(db: pg.Client): Promise<DoctorRow> {
  const check = 'migrations';
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((name) => /\.(sql|js|ts)$/.test(name))
    .map((name) => name.replace(/\.(sql|js|ts)$/, ''))
    .sort();
  let applied: string[] = [];
  try {
    applied = (await db.query<{ name: string }>('SELECT name FROM reelay_migrations ORDER BY run_on, id')).rows.map((r) => r.name);
  } catch (error) {
    if ((error as { code?: string }).code !== '42P01') throw error;
  }
  const pending = files.filter((name) => !applied.includes(name));
  const unknown = applied.filter((name) => !files.includes(name));
  const queue = await db.query<{ version: number }>('SELECT version FROM pgboss.version').then(
    (r) => r.rows[0]?.version ?? null,
    () => null,
  );
  if (pending.length > 0) return { check, status: 'fail', detail: `${pending.length} pending: ${pending.join(', ')}`, fix: MESSAGES.fixMigrations() };
  if (queue === null) return { check, status: 'fail', detail: 'the job queue (pg-boss) is not installed', fix: MESSAGES.fixMigrations() };
  if (unknown.length > 0) return { check, status: 'warn', detail: `unknown to this version: ${unknown.join(', ')}`, fix: MESSAGES.fixNewerDatabase() };
  return { check, status: 'ok', detail: `${applied.length} applied, none pending; queue schema v${queue}` };
}

interface AccountCredentialsRow {
  id: string;
  workspace_id: string;
  platform: PlatformId;
  handle: string;
  state: string;
  expires_at: Date | null;
  last_error: string | null;
  credentials: Buffer;
}

/** Credentials for a hint; unreadable ones (no key, another key) read as none. */
function openQuietly(box: SecretBox | null, sealed: Buffer): Credentials {
  try {
    return box ? (box.open(sealed) as Credentials) : {};
  } catch {
    return {};
  }
}

async function checkAccounts(db: pg.Client, config: Config, box: SecretBox | null, now: number): Promise<DoctorRow[]> {
  const { rows } = await db.query<AccountCredentialsRow>(
    `SELECT id, workspace_id, platform, handle, state, expires_at, last_error, credentials FROM accounts
      WHERE state <> 'disabled' ORDER BY workspace_id, platform, handle`,
  );
  if (rows.length === 0) return [{ check: 'accounts', status: 'skip', detail: 'no linked accounts' }];
  let unreadable = 0;
  const result = rows.map((account): DoctorRow => {
    const label = PLATFORM_SPECS[account.platform]?.label ?? account.platform;
    const check = `${label} @${account.handle}${account.workspace_id === 'cli' ? '' : ` (${account.workspace_id})`}`;
    if (!ADAPTERS[account.platform]) return { check, status: 'fail', detail: 'platform not supported by this version', fix: MESSAGES.fixAccountUnsupported(label) };
    if (account.state === 'needs_reauth') {
      // Bluesky takes a new app password; the others sign in again the way they were linked.
      const fix = account.platform === 'bluesky'
        ? MESSAGES.fixAccountReauth(account.platform, account.handle, account.workspace_id)
        : MESSAGES.fixAccountRelink(account.platform, linkedVia(account.platform, openQuietly(box, account.credentials)), account.workspace_id);
      return { check, status: 'fail', detail: `needs re-linking${account.last_error ? `: ${account.last_error}` : ''}`, fix };
    }
    if (box) {
      try {
        box.open(account.credentials);
      } catch {
        unreadable += 1;
        return { check, status: 'fail', detail: 'credentials cannot be decrypted with this key', fix: '' };
      }
    }
    const oauth = OAUTH_VARIABLES[account.platform];
    if (oauth && !config.platforms[account.platform].client) return { check, status: 'fail', detail: 'no OAuth client configured', fix: MESSAGES.fixOAuthClient(label, oauth) };
    if (account.expires_at === null) return { check, status: 'ok', detail: 'active' };
    const expired = account.expires_at.getTime() <= now;
    return { check, status: 'ok', detail: expired ? `access token expired ${account.expires_at.toISOString()}; refreshed at the next publish` : `access token valid until ${account.expires_at.toISOString()}` };
  });
  for (const row of result) if (row.fix === '') row.fix = MESSAGES.fixSecretKeyMismatch(unreadable);
  return result;
}

async function checkDatabase(config: Config, deps: DoctorDeps, box: SecretBox | null, pgDump: Promise<number | DoctorRow>): Promise<DoctorRow[]> {
  const embedded = !config.database.url;
  const needs = (check: string): DoctorRow => ({ check, status: 'skip', detail: 'needs the database' });
  let database: Awaited<ReturnType<typeof openDatabase>> | null = null;
  let client: pg.Client | null = null;
  try {
    let serverMajor: number;
    try {
      database = await openDatabase(config, deps.log);
      client = new pg.Client({ connectionString: database.url, connectionTimeoutMillis: 5000, application_name: 'reelay-doctor' });
      await client.connect();
      serverMajor = Math.floor(Number((await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]?.v) / 10000);
    } catch (error) {
      return [
        { check: 'database', status: 'fail', detail: message(error), fix: MESSAGES.fixDatabase(embedded) },
        needs('migrations'),
        needs('database size'),
        needs('workers'),
        needs('accounts'),
      ];
    }
    const where = embedded ? `embedded in ${config.database.dataDir}` : new URL(config.database.url ?? '').host;
    const rows: DoctorRow[] = [{ check: 'database', status: 'ok', detail: `Postgres ${serverMajor}, ${where}` }];
    rows.push(await checkMigrations(client));
    const dump = await pgDump;
    if (typeof dump !== 'number') rows.push(dump);
    else if (dump < serverMajor) rows.push({ check: 'pg_dump', status: 'warn', detail: `pg_dump ${dump}, server ${serverMajor}`, fix: MESSAGES.fixPgDumpVersion(dump, serverMajor) });
    else rows.push({ check: 'pg_dump', status: 'ok', detail: `version ${dump} (backups work)` });
    const schema = await client.query<{ ready: boolean }>(
      `SELECT to_regclass('public.media') IS NOT NULL AND to_regclass('public.accounts') IS NOT NULL AND to_regclass('public.workers') IS NOT NULL AS ready`,
    );
    if (!schema.rows[0]?.ready) {
      const later = (check: string): DoctorRow => ({ check, status: 'skip', detail: 'needs the migrations' });
      return [...rows, later('database size'), later('workers'), later('accounts')];
    }
    const usage = await storageUsage(client);
    rows.push({
      check: 'database size',
      status: 'ok',
      detail: `${formatBytes(usage.databaseBytes)}; videos ${formatBytes(usage.mediaBytes)} in ${usage.mediaFiles} file${usage.mediaFiles === 1 ? '' : 's'}, renditions ${formatBytes(usage.renditionBytes)}`,
    });
    const workers = await liveWorkerCount(client).catch(() => 0);
    rows.push(workers > 0 ? { check: 'workers', status: 'ok', detail: `${workers} running` } : { check: 'workers', status: 'warn', detail: 'none running', fix: MESSAGES.fixNoWorker() });
    rows.push(...(await checkAccounts(client, config, box, deps.now())));
    return rows;
  } finally {
    await client?.end().catch(() => undefined);
    await database?.stop().catch(() => undefined);
  }
}

export async function runDoctor(config: Config, deps: DoctorDeps): Promise<DoctorRow[]> {
  const secret = checkSecretKey(config);
  // Independent checks run side by side: the slow ones (starting binaries, the network) overlap.
  const [ffmpeg, ffprobe, database, telegram, discord] = await Promise.all([
    checkFfmpeg(config),
    checkFfprobe(config),
    checkDatabase(config, deps, secret.box, pgDumpMajor(config)),
    checkTelegram(config, deps),
    checkDiscord(config, deps),
  ]);
  return [checkNode(deps.nodeVersion ?? process.version), ffmpeg, ffprobe, ...database, secret.row, telegram, ...discord, checkPublicBaseUrl(config)];
}

const STATUS_TEXT: Record<DoctorStatus, string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL', skip: '-' };

export function formatDoctor(rows: readonly DoctorRow[]): string {
  const width = Math.max(5, ...rows.map((r) => r.check.length));
  const lines = [`${'CHECK'.padEnd(width)}  STATUS  DETAIL`];
  for (const row of rows) lines.push(`${row.check.padEnd(width)}  ${STATUS_TEXT[row.status].padEnd(6)}  ${row.detail}`);
  const problems = rows.filter((r) => r.status === 'fail' || r.status === 'warn');
  if (problems.length > 0) {
    lines.push('', 'To fix:');
    for (const row of problems) lines.push(`  ${STATUS_TEXT[row.status]} ${row.check}: ${row.fix ?? ''}`);
  }
  const failed = rows.filter((r) => r.status === 'fail').length;
  lines.push('', failed === 0 ? 'Reelay is ready.' : `${failed} problem${failed === 1 ? '' : 's'} to fix.`);
  return lines.join('\n');
}

export async function doctorCommand(config: Config, deps: DoctorDeps, options: { json?: boolean }, io: CommandIo): Promise<number> {
  const rows = await runDoctor(config, deps);
  io.out(options.json ? JSON.stringify({ ok: rows.every((r) => r.status !== 'fail'), checks: rows }) : formatDoctor(rows));
  return rows.some((r) => r.status === 'fail') ? 1 : 0;
}
