/**
 * `reelay accounts link` and `reelay accounts remove` as a person runs them: the printed one-time
 * link goes through the HTTP server and the OAuth simulator to a linked account in the chosen
 * workspace; remove revokes the token and disables the account; bad input exits 2 with a reason.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startHttp, type HttpServer } from '../../bot/http.ts';
import { readCredentials } from '../../core/accounts.ts';
import { MESSAGES } from '../../core/errors.ts';
import { PLATFORM_IDS } from '../../core/platforms.ts';
import { runReelay } from '../support/cli.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { freePort } from '../support/net.ts';
import { startOAuthSim, type OAuthSim } from '../sim/oauth.ts';

const WORKSPACE = 'discord:42';
let ctx: TestContext;
let oauth: OAuthSim;
let http: HttpServer;
let env: Record<string, string>;

const reelay = (args: string[], extra: Record<string, string> = {}) => runReelay(ctx, args, { ...env, ...extra });

before(async () => {
  oauth = await startOAuthSim();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  oauth.register('tiktok', { id: 'tiktok-client', secret: 'tiktok-secret', redirectUri: `${base}/oauth/tiktok/callback` });
  env = {
    PUBLIC_BASE_URL: base,
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: String(port),
    TIKTOK_CLIENT_KEY: 'tiktok-client',
    TIKTOK_CLIENT_SECRET: 'tiktok-secret',
    TIKTOK_API_URL: oauth.base('tiktok'),
    TIKTOK_AUTHORIZE_URL: `${oauth.base('tiktok')}/authorize`,
  };
  ctx = await testContext({ env });
  http = await startHttp(ctx, { checks: [] });
});

after(async () => {
  await http?.close();
  await ctx?.dispose();
  await oauth?.close();
});

test('accounts link prints a one-time link that links the account into the workspace; remove unlinks and revokes it', async () => {
  const printed = await reelay(['accounts', 'link', 'tiktok', '--workspace', WORKSPACE]);
  assert.equal(printed.code, 0, printed.stderr);
  assert.ok(printed.stdout.includes(`Connect TikTok to ${WORKSPACE}: `), printed.stdout);
  assert.ok(printed.stdout.includes(MESSAGES.cliLinkOpen()));
  const link = /(http:\/\/\S+\/link\/\S+)/.exec(printed.stdout)![1]!;

  const consent = (await fetch(link, { redirect: 'manual' })).headers.get('location')!;
  assert.ok(consent.startsWith(oauth.base('tiktok')), consent);
  const callback = (await fetch(consent, { redirect: 'manual' })).headers.get('location')!;
  const done = await fetch(callback);
  assert.equal(done.status, 200, await done.clone().text());
  const { rows } = await ctx.pool.query<{ id: string; handle: string; state: string }>(`SELECT id, handle, state FROM accounts WHERE workspace_id = $1 AND platform = 'tiktok'`, [WORKSPACE]);
  assert.deepEqual(rows.map((r) => [r.handle, r.state]), [['creator', 'active']]);
  const token = String((await readCredentials(ctx.pool, ctx.secrets, rows[0]!.id)).accessToken);
  assert.equal((await fetch(link, { redirect: 'manual' })).status, 400, 'the link works once');

  const removed = await reelay(['accounts', 'remove', 'tiktok:creator', '--workspace', WORKSPACE]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(removed.stdout.trim(), MESSAGES.unlinked('TikTok', 'creator'));
  const after = await ctx.pool.query<{ state: string }>('SELECT state FROM accounts WHERE id = $1', [rows[0]!.id]);
  assert.equal(after.rows[0]!.state, 'disabled');
  assert.equal(oauth.accessTokens.get(token)?.revoked, true, 'revoked with the platform');

  const again = await reelay(['accounts', 'remove', 'tiktok', '--workspace', WORKSPACE]);
  assert.equal(again.code, 2);
  assert.ok(again.stderr.includes(MESSAGES.noAccount('TikTok', WORKSPACE)), again.stderr);
});

test('accounts link and remove refuse bad input with exit 2 and a reason', async () => {
  const cases: Array<{ args: string[]; extra?: Record<string, string>; message: string }> = [
    { args: ['accounts', 'link', 'tiktok'], extra: { PUBLIC_BASE_URL: '' }, message: MESSAGES.linkNeedsPublicUrl() },
    { args: ['accounts', 'link', 'instagram', '--workspace', WORKSPACE], message: MESSAGES.linkNoClient('Instagram') },
    { args: ['accounts', 'link', 'youtube'], message: MESSAGES.linkNoClient('YouTube') },
    { args: ['accounts', 'link', 'myspace'], message: MESSAGES.unknownPlatform('myspace', PLATFORM_IDS) },
    { args: ['accounts', 'link', 'instagram', '--via', 'facebook'], message: MESSAGES.linkNoClient('Facebook') },
    { args: ['accounts', 'link', 'x', '--via', 'facebook'], message: MESSAGES.linkViaUnsupported('X', 'Facebook', 'x') },
    { args: ['accounts', 'remove', 'myspace'], message: MESSAGES.unknownPlatform('myspace', PLATFORM_IDS) },
    { args: ['accounts', 'remove', 'x:nobody'], message: MESSAGES.noAccount('X', 'cli', 'nobody') },
  ];
  for (const { args, extra, message } of cases) {
    const run = await reelay(args, extra);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.ok(run.stderr.includes(message), `${args.join(' ')}: expected "${message}" in ${run.stderr}`);
  }
});

test('accounts link instagram --via facebook hands out a link that remembers the Facebook Login variant', async () => {
  const meta = { META_APP_ID: 'meta-app', META_APP_SECRET: 'meta-secret', FACEBOOK_AUTHORIZE_URL: `${oauth.base('facebook')}/authorize` };
  const printed = await reelay(['accounts', 'link', 'instagram', '--via', 'facebook', '--workspace', WORKSPACE], meta);
  assert.equal(printed.code, 0, printed.stderr);
  assert.ok(printed.stdout.includes(`Connect Instagram (through Facebook) to ${WORKSPACE}: `), printed.stdout);
  const { rows } = await ctx.pool.query<{ platform: string; via: string | null }>(`SELECT platform, via FROM link_requests WHERE workspace_id = $1 AND member_id = 'cli' ORDER BY created_at DESC LIMIT 1`, [WORKSPACE]);
  assert.deepEqual(rows, [{ platform: 'instagram', via: 'facebook' }]);
});
