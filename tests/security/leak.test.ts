/**
 * No secret leaves its envelope. A whole flow runs with distinctive credentials — Bluesky linked
 * through the one-time form from a Telegram chat, X linked through OAuth (PKCE) and then unlinked
 * (revocation), a video posted from the chat to Bluesky (the real PDS) and TikTok (its simulator,
 * with an expired access token so the worker refreshes and rotates it) — while pino logs at trace
 * level into a buffer. Then every place a secret could end up is searched for every plaintext
 * secret, as text and as hex (how bytea and large objects appear in a dump): the log, everything
 * the bot sent to the chat, every job payload, and a pg_dump of the whole database.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startHttp, type HttpServer } from '../../bot/http.ts';
import { startTelegram, type RunningTelegram } from '../../bot/telegram.ts';
import { splitPassword } from '../../cli/database.ts';
import { readCredentials, upsertAccount } from '../../core/accounts.ts';
import { ChatNotifier, linkAnnouncer } from '../../core/chat/notifier.ts';
import { configuredOutboxes } from '../../core/chat/outboxes.ts';
import { createContext, type Context } from '../../core/context.ts';
import { createLogger } from '../../core/log.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { startWorker, type RunningWorker } from '../../worker/main.ts';
import { tiktokCredentialsSchema } from '../../worker/platforms/tiktok.ts';
import { makeClip } from '../support/clips.ts';
import { testConfig } from '../support/context.ts';
import { freePort } from '../support/net.ts';
import { startPds, type TestPdsHandle } from '../support/pds.ts';
import { startOAuthSim, type OAuthSim } from '../sim/oauth.ts';
import { startTelegramSim, type SimChat, type SimUser, type TelegramSim } from '../sim/telegram.ts';
import { startTikTokSim, type TikTokSim } from '../sim/tiktok.ts';

const X_CLIENT_SECRET = 'x-client-secret-LEAKCHECK-5f2a9c';

let ctx: Context;
let dir: string;
let pds: TestPdsHandle;
let oauth: OAuthSim;
let tiktokSim: TikTokSim;
let sim: TelegramSim;
let http: HttpServer;
let telegram: RunningTelegram;
let worker: RunningWorker;
let notifier: ChatNotifier;
let admin: SimUser;
let group: SimChat;
let adminPrivate: SimChat;
const logLines: string[] = [];

before(async () => {
  [pds, oauth, tiktokSim, sim] = await Promise.all([startPds(), startOAuthSim(), startTikTokSim({ processingPolls: 0 }), startTelegramSim({ botUsername: 'reelay_bot' })]);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  oauth.register('x', { id: 'x-client', secret: X_CLIENT_SECRET, redirectUri: `${base}/oauth/x/callback` });
  const made = await testConfig({
    LOG_LEVEL: 'trace',
    PUBLIC_BASE_URL: base,
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: String(port),
    TELEGRAM_BOT_TOKEN: sim.token,
    TELEGRAM_API_ROOT: sim.apiRoot,
    X_CLIENT_ID: 'x-client',
    X_CLIENT_SECRET,
    X_API_URL: oauth.base('x'),
    X_AUTHORIZE_URL: `${oauth.base('x')}/authorize`,
    TIKTOK_API_URL: tiktokSim.url,
    TIKTOK_CLIENT_KEY: tiktokSim.options.clientKey,
    TIKTOK_CLIENT_SECRET: tiktokSim.options.clientSecret,
  });
  dir = made.dir;
  const log = createLogger({ level: 'trace', destination: { write: (line: string) => void logLines.push(line) } });
  ctx = await createContext({ config: made.config, log, fastDatabase: true });
  const outboxes = configuredOutboxes(ctx.config);
  notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes });
  http = await startHttp(ctx, { announce: linkAnnouncer(outboxes) });
  telegram = await startTelegram(ctx, { notifier });
  worker = await startWorker(ctx, { notify: notifier, pollingIntervalSeconds: 0.5 });
  admin = sim.createUser({ first_name: 'Ada', username: 'ada' });
  group = sim.createGroup({ title: 'Creators', type: 'supergroup', creator: admin, bot: 'administrator' });
  adminPrivate = sim.createPrivateChat(admin, { started: true });
  await ensureWorkspace(ctx.pool, `telegram:${group.id}`, 'UTC');
});

after(async () => {
  await telegram?.stop();
  await worker?.stop();
  await notifier?.close();
  await http?.close();
  await ctx?.close();
  await Promise.all([pds?.close(), oauth?.close(), tiktokSim?.close(), sim?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const text = (m: { text: string | undefined; caption: string | undefined }) => m.text ?? m.caption ?? '';

/** `/link PLATFORM` in the group; the one-time link the bot sends privately. */
async function linkFromChat(platform: string): Promise<string> {
  const before = sim.messages(adminPrivate).length;
  sim.sendUserMessage(group, admin, { text: `/link ${platform}` });
  const message = await sim.waitForBotMessage(adminPrivate, (m) => m.messageId > before && /\/link\//.test(text(m)), 15_000);
  return /(http:\/\/\S+\/link\/\S+)/.exec(text(message))![1]!;
}

/** Everything the bot told the chat simulator: every request's parameters, every message and edit. */
function chatTraffic(): string {
  const methods = ['sendMessage', 'editMessageText', 'editMessageCaption', 'editMessageReplyMarkup', 'sendPhoto', 'sendVideo', 'sendDocument', 'answerCallbackQuery', 'deleteMessage'];
  const requests = methods.flatMap((method) => sim.requestsTo(method).map((r) => JSON.stringify(r.params)));
  const messages = [group, adminPrivate].flatMap((chat) => sim.messages(chat).map((m) => JSON.stringify({ text: m.text, caption: m.caption, edits: m.edits, markup: m.replyMarkup })));
  return [...requests, ...messages].join('\n');
}

async function jobPayloads(): Promise<string> {
  const tables = await ctx.pool.query<{ name: string }>(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'pgboss' AND table_name IN ('job', 'archive')`);
  const parts: string[] = [];
  for (const { name } of tables.rows) {
    const { rows } = await ctx.pool.query<{ data: string | null; output: string | null }>(`SELECT data::text AS data, output::text AS output FROM pgboss.${name}`);
    for (const row of rows) parts.push(row.data ?? '', row.output ?? '');
  }
  assert.ok(parts.length > 0, 'the flow left jobs to inspect');
  return parts.join('\n');
}

/** A plain-format dump of the whole database, large objects included. */
function pgDump(): Promise<Buffer> {
  const { url, password } = splitPassword(ctx.databaseUrl);
  return new Promise((resolve, reject) => {
    const child = spawn(ctx.config.backup.pgDumpPath, ['--format=plain', '--blobs', `--dbname=${url}`], { env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}) } });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`pg_dump exited ${code}: ${stderr}`))));
  });
}

/** Where each secret was found: as text, or hex-encoded (bytea and large objects in a dump). */
function findLeaks(haystack: Buffer, secrets: Map<string, string>): string[] {
  const lower = Buffer.from(haystack.toString('latin1').toLowerCase(), 'latin1');
  const found: string[] = [];
  for (const [name, secret] of secrets) {
    if (haystack.includes(secret)) found.push(`${name} (text)`);
    if (lower.includes(Buffer.from(secret, 'utf8').toString('hex'))) found.push(`${name} (hex)`);
  }
  return found;
}

test('no token, app password, client secret or key appears in logs, chat, job payloads or a database dump', async () => {
  const workspaceId = `telegram:${group.id}`;

  // Bluesky through the one-time form.
  const alice = await pds.createAccount('alice');
  const blueskyLink = await linkFromChat('bluesky');
  const form = await fetch(blueskyLink, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ handle: alice.handle, appPassword: alice.appPassword, service: pds.url }).toString(),
  });
  assert.equal(form.status, 200, await form.clone().text());
  // A failed sign-in on a second form: the typed password must not surface in an error log either.
  const wrongPassword = 'wrong-app-password-LEAKCHECK-77';
  const retry = await fetch(await linkFromChat('bluesky'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ handle: alice.handle, appPassword: wrongPassword, service: pds.url }).toString(),
  });
  assert.equal(retry.status, 400);
  await sim.waitForBotMessage(group, (m) => text(m) === 'Linked Bluesky @alice.test.', 15_000);

  // X through OAuth with PKCE: the consent page, the callback.
  const xLink = await linkFromChat('x');
  const consent = (await fetch(xLink, { redirect: 'manual' })).headers.get('location')!;
  const callback = (await fetch(consent, { redirect: 'manual' })).headers.get('location')!;
  const linked = await fetch(callback);
  assert.equal(linked.status, 200, await linked.clone().text());
  await sim.waitForBotMessage(group, (m) => text(m) === 'Linked X @creator.', 15_000);
  // A failed code exchange (tampered code): the error path logs the platform's answer, not the secrets.
  const tampered = new URL((await fetch((await fetch(await linkFromChat('x'), { redirect: 'manual' })).headers.get('location')!, { redirect: 'manual' })).headers.get('location')!);
  tampered.searchParams.set('code', 'not-the-code');
  assert.equal((await fetch(tampered)).status, 400);

  // TikTok with an access token that already expired: the publish must refresh (and rotate) it.
  const { account: tt, tokens } = tiktokSim.addAccount({ username: 'leakcheck', isPrivate: true });
  await upsertAccount(ctx.pool, ctx.secrets, {
    workspaceId,
    platform: 'tiktok',
    handle: tt.username,
    remoteId: tt.openId,
    credentials: tiktokCredentialsSchema.parse({ accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, expiresAt: new Date(Date.now() - 60_000).toISOString(), scope: tokens.scope, openId: tokens.openId }),
    expiresAt: new Date(Date.now() - 60_000),
  });

  const clip = readFileSync(makeClip(join(dir, 'clip.mp4'), { width: 360, height: 640, seconds: 3 }));
  const sent = sim.sendUserMessage(group, admin, { video: { source: clip, name: 'clip.mp4', mime: 'video/mp4' }, caption: '/post to bluesky, tiktok\nNothing secret here' });
  const received = await sim.waitForBotMessage(group, (m) => m.replyTo === sent.message_id && /Received clip\.mp4/.test(text(m)), 30_000);
  await sim.waitForBotMessage(group, (m) => m.messageId === received.messageId && /bsky\.app\/profile\//.test(text(m)) && /tiktok\.com/.test(text(m)), 120_000);
  assert.ok(tiktokSim.requestsTo('token').length >= 1, 'the TikTok token was refreshed');
  assert.ok(tiktokSim.spentRefreshTokens.has(tokens.refreshToken), 'and the refresh token rotated');

  // The X token as stored, then /unlink (revocation with the platform).
  const accounts = await ctx.pool.query<{ id: string; platform: string }>(`SELECT id, platform FROM accounts WHERE workspace_id = $1`, [workspaceId]);
  const stored = new Map<string, Record<string, unknown>>();
  for (const row of accounts.rows) stored.set(row.platform, (await readCredentials(ctx.pool, ctx.secrets, row.id)) as Record<string, unknown>);
  const unlink = sim.sendUserMessage(group, admin, { text: '/unlink x' });
  await sim.waitForBotMessage(group, (m) => m.replyTo === unlink.message_id, 15_000);
  assert.ok([...oauth.accessTokens.values()].some((t) => t.platform === 'x' && t.revoked), 'the X token was revoked');

  const secrets = new Map<string, string>([
    ['bluesky app password', alice.appPassword],
    ['wrong bluesky app password', wrongPassword],
    ['tiktok first access token', tokens.accessToken],
    ['tiktok first refresh token', tokens.refreshToken],
    ['x client secret', X_CLIENT_SECRET],
    ['tiktok client secret', tiktokSim.options.clientSecret],
    ['telegram bot token', sim.token],
    ['reelay secret key', readFileSync(join(dir, 'data', 'secret.key'), 'utf8').trim()],
  ]);
  for (const [platform, credentials] of stored) {
    for (const [field, value] of Object.entries(credentials)) {
      if (/^(accessToken|refreshToken|accessJwt|refreshJwt|appPassword|password)$/.test(field) && typeof value === 'string') secrets.set(`${platform} ${field}`, value);
    }
  }
  for (const [token] of oauth.accessTokens) secrets.set(`x access token ${token.slice(0, 6)}`, token);
  for (const [token] of oauth.refreshTokens) secrets.set(`x refresh token ${token.slice(0, 6)}`, token);
  assert.ok(stored.get('tiktok')?.accessToken !== tokens.accessToken, 'the refreshed TikTok token is one of the secrets checked');
  assert.ok(secrets.size >= 14, `${secrets.size} secrets checked`);
  for (const [name, value] of secrets) assert.ok(value.length >= 16, `${name} is distinctive enough to search for`);

  // The one-time links are bearer secrets too; they go to the private chat and nowhere else.
  const linkTokens = new Map([blueskyLink, xLink].map((link, i) => [`one-time link ${i}`, link.split('/link/')[1]!]));

  const logs = Buffer.from(logLines.join(''));
  assert.ok(logLines.length > 20 && logs.includes('"level":20'), `debug-level logging captured (${logLines.length} lines)`);
  if (process.env.REELAY_LEAK_LOG) (await import('node:fs')).writeFileSync(process.env.REELAY_LEAK_LOG, logs);
  const chat = Buffer.from(chatTraffic());
  const jobs = Buffer.from(await jobPayloads());
  const dump = await pgDump();
  assert.ok(dump.includes('CREATE TABLE public.accounts'), 'the dump holds the schema');
  assert.ok(dump.includes('Nothing secret here'), 'and the data');

  const all = new Map([...secrets, ...linkTokens]);
  // The search itself finds what it looks for, as text and as hex.
  const planted = Buffer.from([...all.values()].join(' ') + ' \\x' + [...all.values()].map((v) => Buffer.from(v).toString('hex').toUpperCase()).join(''));
  assert.equal(findLeaks(planted, all).length, all.size * 2);
  assert.deepEqual(findLeaks(logs, all), [], 'logs');
  assert.deepEqual(findLeaks(jobs, all), [], 'job payloads');
  assert.deepEqual(findLeaks(dump, all), [], 'database dump');
  assert.deepEqual(findLeaks(chat, secrets), [], 'chat');
});
