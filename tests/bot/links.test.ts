/**
 * Linking from chat end to end: `/link` in a Telegram group (simulator) answers privately with a
 * one-time link; the HTTP server sends the browser to the platform's consent page (an OAuth
 * simulator per platform flavour), the callback stores the tokens encrypted and the chat hears
 * "Linked ...". Then every way the flow must refuse: forged, replayed, expired and cross-platform
 * state, a failed code exchange, a missing scope, a denied consent; the Bluesky form; /unlink.
 */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startHttp, type HttpServer } from '../../bot/http.ts';
import { startTelegram, type RunningTelegram } from '../../bot/telegram.ts';
import { readCredentials, upsertAccount } from '../../core/accounts.ts';
import { linkAnnouncer, ChatNotifier } from '../../core/chat/notifier.ts';
import { button } from '../../core/chat/outbox.ts';
import { configuredOutboxes } from '../../core/chat/outboxes.ts';
import { MESSAGES } from '../../core/errors.ts';
import { PLATFORM_IDS, type Checkpoint, type PublishResult } from '../../core/platforms.ts';
import { planIntake } from '../../core/intake.ts';
import { createLinkRequest } from '../../core/linking.ts';
import { createLogger } from '../../core/log.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { facebookCredentialsSchema } from '../../worker/platforms/facebook.ts';
import { createInstagramAdapter, instagramCredentialsSchema } from '../../worker/platforms/instagram.ts';
import { linkedinCredentialsSchema } from '../../worker/platforms/linkedin.ts';
import { threadsCredentialsSchema } from '../../worker/platforms/threads.ts';
import { pinterestCredentialsSchema } from '../../worker/platforms/pinterest.ts';
import { tiktokCredentialsSchema } from '../../worker/platforms/tiktok.ts';
import { xCredentialsSchema } from '../../worker/platforms/x.ts';
import { youtubeCredentialsSchema } from '../../worker/platforms/youtube.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { randomFile } from '../support/files.ts';
import { freePort } from '../support/net.ts';
import { startPds, type TestPdsHandle } from '../support/pds.ts';
import { startGraphSim } from '../sim/graph.ts';
import { startOAuthSim, type OAuthSim, type OAuthSimPlatform } from '../sim/oauth.ts';
import { startTelegramSim, type SimChat, type SimUser, type TelegramSim } from '../sim/telegram.ts';

let ctx: TestContext;
let oauth: OAuthSim;
let sim: TelegramSim;
let pds: TestPdsHandle;
let http: HttpServer;
let telegram: RunningTelegram;
let notifier: ChatNotifier;
let base: string;
let admin: SimUser;
let member: SimUser;
let group: SimChat;
let adminPrivate: SimChat;


const SCHEMAS = { tiktok: tiktokCredentialsSchema, youtube: youtubeCredentialsSchema, x: xCredentialsSchema, linkedin: linkedinCredentialsSchema, pinterest: pinterestCredentialsSchema };

/** Follows the one-time link through the consent page to the callback; returns the final page. */
async function followLink(link: string): Promise<{ status: number; text: string; consent: string }> {
  const first = await fetch(link, { redirect: 'manual' });
  assert.equal(first.status, 302, await first.clone().text());
  const consent = first.headers.get('location')!;
  const second = await fetch(consent, { redirect: 'manual' });
  assert.equal(second.status, 302, await second.clone().text());
  const final = await fetch(second.headers.get('location')!, { redirect: 'manual' });
  return { status: final.status, text: await final.text(), consent };
}

before(async () => {
  [oauth, sim, pds] = await Promise.all([startOAuthSim(), startTelegramSim({ botUsername: 'reelay_bot' }), startPds()]);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = { PUBLIC_BASE_URL: base, HTTP_HOST: '127.0.0.1', HTTP_PORT: String(port), TELEGRAM_BOT_TOKEN: sim.token, TELEGRAM_API_ROOT: sim.apiRoot };
  const clients: Record<OAuthSimPlatform, [string, string]> = { tiktok: ['TIKTOK_CLIENT_KEY', 'TIKTOK_CLIENT_SECRET'], youtube: ['GOOGLE_CLIENT_ID', 'GOOGLE_CLIENT_SECRET'], x: ['X_CLIENT_ID', 'X_CLIENT_SECRET'], linkedin: ['LINKEDIN_CLIENT_ID', 'LINKEDIN_CLIENT_SECRET'], pinterest: ['PINTEREST_CLIENT_ID', 'PINTEREST_CLIENT_SECRET'] };
  for (const [platform, [id, secret]] of Object.entries(clients) as Array<[OAuthSimPlatform, [string, string]]>) {
    env[id] = `${platform}-client`;
    env[secret] = `${platform}-secret`;
    oauth.register(platform, { id: `${platform}-client`, secret: `${platform}-secret`, redirectUri: `${base}/oauth/${platform}/callback` });
  }
  Object.assign(env, {
    TIKTOK_API_URL: oauth.base('tiktok'), TIKTOK_AUTHORIZE_URL: `${oauth.base('tiktok')}/authorize`,
    YOUTUBE_API_URL: oauth.base('youtube'), GOOGLE_AUTHORIZE_URL: `${oauth.base('youtube')}/authorize`, GOOGLE_TOKEN_URL: `${oauth.base('youtube')}/token`, GOOGLE_REVOKE_URL: `${oauth.base('youtube')}/revoke`,
    X_API_URL: oauth.base('x'), X_AUTHORIZE_URL: `${oauth.base('x')}/authorize`,
    LINKEDIN_API_URL: oauth.base('linkedin'), LINKEDIN_AUTHORIZE_URL: `${oauth.base('linkedin')}/authorize`, LINKEDIN_TOKEN_URL: `${oauth.base('linkedin')}/oauth/v2/accessToken`,
    PINTEREST_API_URL: oauth.base('pinterest'), PINTEREST_AUTHORIZE_URL: `${oauth.base('pinterest')}/authorize`,
    // Instagram and Facebook share the Meta app; Threads has its own.
    META_APP_ID: 'meta-app', META_APP_SECRET: 'meta-secret', THREADS_APP_ID: 'threads-app', THREADS_APP_SECRET: 'threads-secret',
    INSTAGRAM_GRAPH_URL: oauth.base('instagram'), INSTAGRAM_AUTHORIZE_URL: `${oauth.base('instagram')}/authorize`, INSTAGRAM_TOKEN_URL: `${oauth.base('instagram')}/oauth/access_token`,
    FACEBOOK_GRAPH_URL: oauth.base('facebook'), FACEBOOK_AUTHORIZE_URL: `${oauth.base('facebook')}/authorize`,
    THREADS_API_URL: oauth.base('threads'), THREADS_AUTHORIZE_URL: `${oauth.base('threads')}/authorize`,
  });
  for (const platform of ['instagram', 'facebook'] as const) oauth.register(platform, { id: 'meta-app', secret: 'meta-secret', redirectUri: `${base}/oauth/${platform}/callback` });
  oauth.register('threads', { id: 'threads-app', secret: 'threads-secret', redirectUri: `${base}/oauth/threads/callback` });
  ctx = await testContext({ env });
  const outboxes = configuredOutboxes(ctx.config);
  http = await startHttp(ctx, { announce: linkAnnouncer(outboxes) });
  notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes });
  telegram = await startTelegram(ctx, { notifier });
  admin = sim.createUser({ first_name: 'Ada', username: 'ada' });
  member = sim.createUser({ first_name: 'Max', username: 'max' });
  group = sim.createGroup({ title: 'Creators', type: 'supergroup', creator: admin, members: [member], bot: 'administrator' });
  adminPrivate = sim.createPrivateChat(admin, { started: true });
  await ensureWorkspace(ctx.pool, `telegram:${group.id}`, 'UTC');
});

after(async () => {
  await telegram?.stop();
  await notifier?.close();
  await http?.close();
  await ctx?.dispose();
  await Promise.all([oauth?.close(), sim?.close(), pds?.close()]);
});

test('/link tiktok answers privately; the link leads through consent (PKCE) to "Linked TikTok @creator"', async () => {
  const sent = sim.sendUserMessage(group, admin, { text: '/link tiktok' });
  const publicReply = await sim.waitForBotMessage(group, (m) => m.replyTo === sent.message_id, 10_000);
  assert.equal(publicReply.text, MESSAGES.linkSent('TikTok'));
  const privateMessage = await sim.waitForBotMessage(adminPrivate, (m) => /\/link\//.test(m.text ?? ''), 10_000);
  const link = /(http:\/\/\S+\/link\/\S+)/.exec(privateMessage.text!)![1]!;
  assert.ok(!(publicReply.text ?? '').includes('/link/'), 'the link is never shown in the group');

  const { status, text, consent } = await followLink(link);
  assert.equal(status, 200, text);
  assert.match(text, /Linked TikTok @creator/);
  const consentUrl = new URL(consent);
  assert.equal(consentUrl.searchParams.get('client_key'), 'tiktok-client');
  assert.equal(consentUrl.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(consentUrl.searchParams.get('scope'), 'user.info.basic,video.publish,video.upload');
  await sim.waitForBotMessage(group, (m) => m.text === 'Linked TikTok @creator.', 10_000);

  const { rows } = await ctx.pool.query<{ id: string; credentials: Buffer; remote_id: string }>(`SELECT id, credentials, remote_id FROM accounts WHERE platform = 'tiktok'`);
  assert.equal(rows.length, 1);
  const credentials = tiktokCredentialsSchema.parse(await readCredentials(ctx.pool, ctx.secrets, rows[0]!.id));
  assert.ok(oauth.accessTokens.has(credentials.accessToken));
  assert.ok(!rows[0]!.credentials.toString('latin1').includes(credentials.accessToken), 'stored encrypted');
  assert.equal(credentials.openId, rows[0]!.remote_id);

  const again = await fetch(link, { redirect: 'manual' });
  assert.equal(again.status, 400, 'the one-time link works once');
  assert.match(await again.text(), /expired or was already used/);
});

test('every other OAuth platform links, and its stored credentials are what its adapter reads', async () => {
  for (const platform of ['youtube', 'x', 'linkedin', 'pinterest'] as const) {
    const { url } = await createLinkRequest(ctx, { workspaceId: `telegram:${group.id}`, memberId: String(admin.id), platform, chat: null });
    const { status, text } = await followLink(url);
    assert.equal(status, 200, `${platform}: ${text}`);
    const { rows } = await ctx.pool.query<{ id: string }>(`SELECT id FROM accounts WHERE platform = $1 AND state = 'active'`, [platform]);
    const parsed = SCHEMAS[platform].safeParse(await readCredentials(ctx.pool, ctx.secrets, rows[0]!.id));
    assert.ok(parsed.success, `${platform}: ${JSON.stringify(parsed.error?.issues)}`);
  }
});

test('Instagram, Threads and Facebook trade the short-lived token for a long-lived one; a Facebook login links each Page', async () => {
  const workspaceId = `telegram:${group.id}`;
  const isLongLived = (token: string) => oauth.accessTokens.get(token)?.kind === 'long';
  const days = (iso: string | undefined) => (Date.parse(iso ?? '') - Date.now()) / 86_400_000;

  for (const platform of ['instagram', 'threads'] as const) {
    const { url } = await createLinkRequest(ctx, { workspaceId, memberId: String(admin.id), platform, chat: null });
    const { status, text, consent } = await followLink(url);
    assert.equal(status, 200, `${platform}: ${text}`);
    assert.match(text, new RegExp(`Linked ${platform === 'instagram' ? 'Instagram' : 'Threads'} @creator`));
    assert.equal(new URL(consent).searchParams.get('scope'), platform === 'instagram' ? 'instagram_business_basic,instagram_business_content_publish' : 'threads_basic,threads_content_publish');
    const { rows } = await ctx.pool.query<{ id: string; remote_id: string }>(`SELECT id, remote_id FROM accounts WHERE platform = $1 AND workspace_id = $2`, [platform, workspaceId]);
    assert.equal(rows.length, 1);
    const schema = platform === 'instagram' ? instagramCredentialsSchema : threadsCredentialsSchema;
    const credentials = schema.parse(await readCredentials(ctx.pool, ctx.secrets, rows[0]!.id));
    assert.ok(isLongLived(credentials.accessToken), `${platform}: the stored token is the long-lived one`);
    assert.ok(days(credentials.expiresAt) > 59 && days(credentials.expiresAt) <= 60, `${platform}: expires in 60 days`);
    assert.ok(credentials.issuedAt, `${platform}: the issue time is kept (refresh needs the token to be a day old)`);
    assert.equal(credentials.userId, rows[0]!.remote_id);
  }
  const instagram = instagramCredentialsSchema.parse(await readCredentials(ctx.pool, ctx.secrets, (await ctx.pool.query<{ id: string }>(`SELECT id FROM accounts WHERE platform = 'instagram'`)).rows[0]!.id));
  assert.equal(instagram.loginType, 'instagram');
  assert.equal(instagram.scope, 'instagram_business_basic,instagram_business_content_publish');

  const { url } = await createLinkRequest(ctx, { workspaceId, memberId: String(admin.id), platform: 'facebook', chat: workspaceId });
  const { status, text } = await followLink(url);
  assert.equal(status, 200, text);
  assert.match(text, /Linked Facebook @Casey Cooks/);
  assert.match(text, /Linked Facebook @Casey Travels/);
  await sim.waitForBotMessage(group, (m) => m.text === 'Linked Facebook @Casey Travels.', 10_000);
  const { rows: pages } = await ctx.pool.query<{ id: string; handle: string; remote_id: string }>(`SELECT id, handle, remote_id FROM accounts WHERE platform = 'facebook' ORDER BY handle`);
  assert.deepEqual(pages.map((p) => p.handle), ['Casey Cooks', 'Casey Travels']);
  for (const page of pages) {
    const credentials = facebookCredentialsSchema.parse(await readCredentials(ctx.pool, ctx.secrets, page.id));
    assert.equal(credentials.pageId, page.remote_id);
    assert.ok(isLongLived(credentials.userAccessToken), 'Page tokens come from the long-lived user token');
    assert.match(credentials.pageAccessToken ?? '', new RegExp(`^pt-${page.remote_id}-`));
  }

  // A Page is named, not handled: `to facebook:caseytravels` finds "Casey Travels".
  const plan = await planIntake(ctx, { workspaceId, authorId: 'm', caption: 'hi', targets: [{ platform: 'facebook', handle: 'caseytravels' }] });
  assert.deepEqual(plan.chosen.map((c) => c.account.handle), ['Casey Travels']);

  // A failed Meta code exchange: Graph's error message in plain words.
  const tampered = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'threads', chat: null });
  const tamperedConsent = (await fetch(tampered.url, { redirect: 'manual' })).headers.get('location')!;
  const tamperedCallback = new URL((await fetch(tamperedConsent, { redirect: 'manual' })).headers.get('location')!);
  tamperedCallback.searchParams.set('code', 'not-the-code');
  const exchange = await fetch(tamperedCallback);
  assert.equal(exchange.status, 400);
  assert.match(await exchange.text(), /Threads refused to finish the sign-in: This authorization code has expired or has been used/);
});

test('/link instagram via facebook: each Page with an Instagram professional account becomes an instagram account on Facebook Login', async () => {
  const workspaceId = `telegram:${group.id}`;
  const facebookAccounts = async () => (await ctx.pool.query(`SELECT 1 FROM accounts WHERE platform = 'facebook'`)).rowCount;
  const facebookBefore = await facebookAccounts();
  oauth.pages = [
    { id: '101000000000001', name: 'Casey Cooks', instagram: { id: '17841400000000001', username: 'caseycooks' } },
    { id: '101000000000002', name: 'Casey Travels' },
    { id: '101000000000003', name: 'Casey Shorts', instagram: { id: '17841400000000003', username: 'caseyshorts' } },
  ];

  const sent = sim.sendUserMessage(group, admin, { text: '/link instagram via facebook' });
  const publicReply = await sim.waitForBotMessage(group, (m) => m.replyTo === sent.message_id, 10_000);
  assert.equal(publicReply.text, MESSAGES.linkSent('Instagram (through Facebook)'));
  const privateMessage = await sim.waitForBotMessage(adminPrivate, (m) => /Instagram \(through Facebook\)/.test(m.text ?? '') && /\/link\//.test(m.text ?? ''), 10_000);
  const link = /(http:\/\/\S+\/link\/\S+)/.exec(privateMessage.text!)![1]!;
  const { status, text, consent } = await followLink(link);
  assert.equal(status, 200, text);
  assert.match(text, /Linked Instagram @caseycooks/);
  assert.match(text, /Linked Instagram @caseyshorts/);
  const consentUrl = new URL(consent);
  assert.equal(`${consentUrl.origin}${consentUrl.pathname}`, `${oauth.base('facebook')}/authorize`, "Facebook Login's consent page");
  assert.equal(consentUrl.searchParams.get('scope'), 'instagram_basic,instagram_content_publish,pages_read_engagement,pages_show_list');
  assert.equal(consentUrl.searchParams.get('redirect_uri'), `${base}/oauth/facebook/callback`);
  await sim.waitForBotMessage(group, (m) => m.text === 'Linked Instagram @caseyshorts.', 10_000);
  assert.ok(oauth.log.some((entry) => entry.platform === 'facebook' && entry.path === '/v23.0/me/accounts' && entry.params.fields === 'id,name,instagram_business_account{id,username}'));

  const { rows } = await ctx.pool.query<{ id: string; handle: string; remote_id: string; credentials: Buffer }>(
    `SELECT id, handle, remote_id, credentials FROM accounts WHERE platform = 'instagram' AND workspace_id = $1 AND handle LIKE 'casey%' ORDER BY handle`,
    [workspaceId],
  );
  assert.deepEqual(rows.map((r) => [r.handle, r.remote_id]), [['caseycooks', '17841400000000001'], ['caseyshorts', '17841400000000003']]);
  const pageOf: Record<string, string> = { caseycooks: '101000000000001', caseyshorts: '101000000000003' };
  for (const row of rows) {
    const credentials = instagramCredentialsSchema.parse(await readCredentials(ctx.pool, ctx.secrets, row.id));
    assert.equal(credentials.loginType, 'facebook');
    assert.equal(credentials.userId, row.remote_id);
    assert.equal(credentials.username, row.handle);
    assert.equal(credentials.pageId, pageOf[row.handle]);
    assert.equal(oauth.accessTokens.get(credentials.accessToken)?.kind, 'long', 'the long-lived user token, not the short one or a Page token');
    assert.ok((Date.parse(credentials.expiresAt ?? '') - Date.now()) / 86_400_000 > 59, 'expires in 60 days');
    assert.deepEqual(credentials.scope.split(',').sort(), ['instagram_basic', 'instagram_content_publish', 'pages_read_engagement', 'pages_show_list', 'public_profile']);
    assert.ok(!row.credentials.toString('latin1').includes(credentials.accessToken), 'stored encrypted');
  }
  assert.equal(await facebookAccounts(), facebookBefore, 'no Facebook Page accounts come from an Instagram link');

  // The Re-link button of such an account goes through Facebook Login again.
  const alert = await configuredOutboxes(ctx.config).telegram!.send(String(group.id), { text: 'needs re-linking', buttons: [[button('Re-link Instagram', 'relink', rows[0]!.id)]] });
  const earlier = new Set(sim.botMessages(adminPrivate).map((m) => m.messageId));
  sim.pressButton(group, admin, Number(alert), `relink:${rows[0]!.id}`);
  const relinkMessage = await sim.waitForBotMessage(adminPrivate, (m) => !earlier.has(m.messageId) && /\/link\//.test(m.text ?? ''), 10_000);
  const relinkOpened = await fetch(/(http:\/\/\S+\/link\/\S+)/.exec(relinkMessage.text!)![1]!, { redirect: 'manual' });
  assert.equal(relinkOpened.status, 302, `${relinkMessage.text}: ${await relinkOpened.clone().text()}`);
  const relinkConsent = relinkOpened.headers.get('location')!;
  assert.ok(relinkConsent.startsWith(`${oauth.base('facebook')}/authorize`), relinkConsent);

  // A permission unticked on the consent page is named; nothing is stored.
  oauth.consent.set('facebook', { grant: ['instagram_basic', 'pages_show_list', 'pages_read_engagement'] });
  const narrow = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'instagram', via: 'facebook', chat: null });
  const narrowPage = await followLink(narrow.url);
  oauth.consent.delete('facebook');
  assert.equal(narrowPage.status, 400);
  assert.ok(narrowPage.text.includes(MESSAGES.linkMissingScopes('Instagram (through Facebook)', ['instagram_content_publish']).replace(/'/g, '&#39;')), narrowPage.text);

  // No Page has an Instagram account connected.
  oauth.pages = [{ id: '101000000000002', name: 'Casey Travels' }];
  const none = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'instagram', via: 'facebook', chat: null });
  const nonePage = await followLink(none.url);
  assert.equal(nonePage.status, 400);
  assert.ok(nonePage.text.includes(MESSAGES.instagramNoPageAccount()), nonePage.text);
  assert.equal((await ctx.pool.query(`SELECT 1 FROM accounts WHERE platform = 'instagram' AND handle LIKE 'casey%'`)).rowCount, 2);

  // A state from the Facebook variant is refused at Instagram Login's callback.
  const crossed = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'instagram', via: 'facebook', chat: null });
  const crossedConsent = (await fetch(crossed.url, { redirect: 'manual' })).headers.get('location')!;
  const crossedCallback = new URL((await fetch(crossedConsent, { redirect: 'manual' })).headers.get('location')!);
  const wrongCallback = await fetch(`${base}/oauth/instagram/callback${crossedCallback.search}`);
  assert.equal(wrongCallback.status, 400);
  assert.match(await wrongCallback.text(), /not one Reelay asked for/);

  // Only pairings that exist; unknown words get the usage.
  const viaX = sim.sendUserMessage(group, admin, { text: '/link x via facebook' });
  assert.equal((await sim.waitForBotMessage(group, (m) => m.replyTo === viaX.message_id, 10_000)).text, MESSAGES.linkViaUnsupported('X', 'Facebook', 'x'));
  const garbled = sim.sendUserMessage(group, admin, { text: '/link instagram via' });
  assert.equal((await sim.waitForBotMessage(group, (m) => m.replyTo === garbled.message_id, 10_000)).text, MESSAGES.usageLink(PLATFORM_IDS));
});

test('an Instagram account linked through Facebook Login publishes on graph.facebook.com (resumable upload)', async () => {
  const graph = await startGraphSim({ client: { clientId: 'meta-app', clientSecret: 'meta-secret' }, processingPolls: 0 });
  const dir = await mkdtemp(join(tmpdir(), 'reelay-igfb-'));
  try {
    // The Graph simulator issued this user's token; the sign-in hands it out as the long-lived one.
    const user = graph.addUser({ host: 'fb', username: 'caseyreels' });
    oauth.pages = [{ id: '101000000000009', name: 'Casey Reels', instagram: { id: user.userId, username: user.username } }];
    oauth.nextLongLivedTokens.push(user.accessToken);
    const { url } = await createLinkRequest(ctx, { workspaceId: `telegram:${group.id}`, memberId: String(admin.id), platform: 'instagram', via: 'facebook', chat: null });
    const linked = await followLink(url);
    assert.equal(linked.status, 200, linked.text);
    const { rows } = await ctx.pool.query<{ id: string; handle: string; remote_id: string }>(`SELECT id, handle, remote_id FROM accounts WHERE platform = 'instagram' AND handle = 'caseyreels'`);
    const account = rows[0]!;

    const path = join(dir, 'reel.mp4');
    const size = 1024 * 1024 + 5;
    const sha256 = randomFile(path, size);
    const checkpoint: Checkpoint = {};
    const input = {
      deliveryId: 'igfb-1',
      createdAt: new Date(),
      caption: 'Linked through Facebook #reelay',
      rendition: { id: 'r', size, sha256, contentType: 'video/mp4', width: 1080, height: 1920, durationSeconds: 10, open: async (r?: { start: number; end: number }) => createReadStream(path, r ? { start: r.start, end: r.end } : {}) },
      account: { id: account.id, handle: account.handle, remoteId: account.remote_id },
      credentials: await readCredentials(ctx.pool, ctx.secrets, account.id),
      mediaUrl: null,
      checkpoint,
      saveCheckpoint: async (patch: Checkpoint) => {
        for (const [key, value] of Object.entries(patch)) {
          if (value === null) delete checkpoint[key];
          else checkpoint[key] = value;
        }
      },
    };
    const deps = { fetch: globalThis.fetch, signal: new AbortController().signal, log: createLogger({ level: 'silent' }), now: () => Date.now(), urls: graph.instagramUrls, oauthClient: { clientId: 'meta-app', clientSecret: 'meta-secret' }, crashPoint: () => {} };
    const adapter = createInstagramAdapter({ requestTimeoutMs: 5_000 });
    let result: PublishResult = await adapter.publish(input, deps);
    for (let i = 0; result.status === 'processing' && i < 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      result = await adapter.check(result.remoteId, input, deps);
    }
    assert.equal(result.status, 'published', JSON.stringify(result));
    assert.equal(graph.posts.length, 1);
    assert.equal(graph.posts[0]!.host, 'fb', 'published on the Facebook Graph host');
    assert.equal(graph.posts[0]!.userId, user.userId);
    const container = [...graph.containers.values()][0]!;
    assert.equal(container.resumable, true);
    assert.equal(container.sha256, sha256);
  } finally {
    await graph.settled();
    await graph.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('forged, replayed, expired and cross-platform state; failed exchange; missing scope; denied consent', async () => {
  const workspaceId = `telegram:${group.id}`;
  const forged = await fetch(`${base}/oauth/x/callback?code=abc&state=forged-state-value`);
  assert.equal(forged.status, 400);
  assert.match(await forged.text(), /not one Reelay asked for/);

  // Replay: the same callback twice.
  const { url } = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'x', chat: null });
  const consent = (await fetch(url, { redirect: 'manual' })).headers.get('location')!;
  const callback = (await fetch(consent, { redirect: 'manual' })).headers.get('location')!;
  assert.equal((await fetch(callback)).status, 200);
  const replay = await fetch(callback);
  assert.equal(replay.status, 400);
  assert.match(await replay.text(), /not one Reelay asked for/);

  // A state issued for X presented to the Pinterest callback.
  const other = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'x', chat: null });
  const otherConsent = (await fetch(other.url, { redirect: 'manual' })).headers.get('location')!;
  const otherCallback = new URL((await fetch(otherConsent, { redirect: 'manual' })).headers.get('location')!);
  const cross = await fetch(`${base}/oauth/pinterest/callback${otherCallback.search}`);
  assert.equal(cross.status, 400);

  // Expired: ten minutes passed.
  const expired = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'pinterest', chat: null });
  await ctx.pool.query(`UPDATE link_requests SET expires_at = now() - interval '1 second' WHERE used_at IS NULL AND opened_at IS NULL`);
  const late = await fetch(expired.url, { redirect: 'manual' });
  assert.equal(late.status, 400);

  // The code exchange fails (a tampered code): the platform's reason in plain words.
  const tampered = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'linkedin', chat: null });
  const tamperedConsent = (await fetch(tampered.url, { redirect: 'manual' })).headers.get('location')!;
  const tamperedCallback = new URL((await fetch(tamperedConsent, { redirect: 'manual' })).headers.get('location')!);
  tamperedCallback.searchParams.set('code', 'not-the-code');
  const exchange = await fetch(tamperedCallback);
  assert.equal(exchange.status, 400);
  assert.match(await exchange.text(), /LinkedIn refused to finish the sign-in: authorization code is invalid or expired/);

  // A grant without a needed scope names it; a denied consent says so.
  oauth.consent.set('youtube', { grant: ['https://www.googleapis.com/auth/youtube.readonly'] });
  const narrow = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'youtube', chat: null });
  const narrowPage = await followLink(narrow.url);
  assert.equal(narrowPage.status, 400);
  assert.ok(narrowPage.text.includes('YouTube did not grant https://www.googleapis.com/auth/youtube.upload'), narrowPage.text);
  oauth.consent.set('youtube', { deny: true });
  const denied = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'youtube', chat: null });
  const deniedPage = await followLink(denied.url);
  assert.match(deniedPage.text, /YouTube did not grant access \(access_denied\)/);
  oauth.consent.delete('youtube');
});

test('Bluesky links through a one-time form; a wrong password shows the form again', async () => {
  const alice = await pds.createAccount('alice');
  const { url } = await createLinkRequest(ctx, { workspaceId: `telegram:${group.id}`, memberId: String(admin.id), platform: 'bluesky', chat: `telegram:${group.id}` });
  const form = await fetch(url);
  assert.equal(form.status, 200);
  assert.match(await form.text(), /App password/);
  const post = (password: string) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ handle: alice.handle, appPassword: password, service: pds.url }).toString() });
  const wrong = await post('wrong-pass-word-xxxx');
  assert.equal(wrong.status, 400);
  const wrongText = await wrong.text();
  assert.match(wrongText, /App password/, 'the form again');
  assert.ok(!wrongText.includes('wrong-pass-word-xxxx'), 'the password is never echoed');
  const right = await post(alice.appPassword);
  assert.equal(right.status, 200);
  assert.match(await right.text(), /Linked Bluesky @alice\.test/);
  await sim.waitForBotMessage(group, (m) => m.text === 'Linked Bluesky @alice.test.', 10_000);
  assert.equal((await post(alice.appPassword)).status, 400, 'the form works once');
});

test('only admins link; an app password pasted in chat is deleted with a warning; /unlink revokes', async () => {
  const asked = sim.sendUserMessage(group, member, { text: '/link x' });
  const refused = await sim.waitForBotMessage(group, (m) => m.replyTo === asked.message_id, 10_000);
  assert.equal(refused.text, MESSAGES.adminOnly('/link'));

  const pasted = sim.sendUserMessage(group, member, { text: 'my password is abcd-efgh-ijkl-mnop' });
  await sim.waitForBotMessage(group, (m) => m.text === MESSAGES.appPasswordPasted(), 10_000);
  assert.equal(sim.getMessage(group, pasted.message_id)?.deleted, true);

  const { rows } = await ctx.pool.query<{ id: string }>(`SELECT id FROM accounts WHERE platform = 'x' AND state = 'active'`);
  const token = String((await readCredentials(ctx.pool, ctx.secrets, rows[0]!.id)).accessToken);
  const unlink = sim.sendUserMessage(group, admin, { text: '/unlink x' });
  const reply = await sim.waitForBotMessage(group, (m) => m.replyTo === unlink.message_id, 10_000);
  assert.equal(reply.text, MESSAGES.unlinked('X', 'creator'));
  assert.equal(oauth.accessTokens.get(token)?.revoked, true, 'revoked with the platform');
  const state = await ctx.pool.query<{ state: string }>('SELECT state FROM accounts WHERE id = $1', [rows[0]!.id]);
  assert.equal(state.rows[0]!.state, 'disabled');
});

test('/link facebook reads what was granted from /me/permissions and names a declined permission', async () => {
  const workspaceId = `telegram:${group.id}`;
  const facebookAccounts = async () => (await ctx.pool.query(`SELECT 1 FROM accounts WHERE platform = 'facebook'`)).rowCount;
  const before = await facebookAccounts();
  const reads = () => oauth.log.filter((entry) => entry.platform === 'facebook' && entry.path === '/v23.0/me/permissions' && entry.status === 200).length;
  const readsBefore = reads();
  oauth.consent.set('facebook', { grant: ['pages_show_list', 'pages_read_engagement'] });
  const narrow = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'facebook', chat: null });
  const page = await followLink(narrow.url).finally(() => oauth.consent.delete('facebook'));
  assert.equal(page.status, 400);
  assert.ok(page.text.includes(MESSAGES.linkMissingScopes('Facebook', ['pages_manage_posts']).replace(/'/g, '&#39;')), page.text);
  assert.equal(await facebookAccounts(), before, 'nothing is stored');
  assert.equal(reads(), readsBefore + 1, 'the granted permissions came from /me/permissions');
});

test("both Facebook flows read every page of /me/accounts (Graph pages it), not only the first", async () => {
  const workspaceId = 'paged-pages';
  await ensureWorkspace(ctx.pool, workspaceId, 'UTC');
  const saved = oauth.pages;
  const count = 230;
  const withInstagram = new Set([0, 120, count - 1]);
  oauth.pages = Array.from({ length: count }, (_, i) => ({
    id: String(102000000000000 + i),
    name: `Paged ${String(i).padStart(3, '0')}`,
    ...(withInstagram.has(i) ? { instagram: { id: String(17841500000000000 + i), username: `paged${i}` } } : {}),
  }));
  const accountReads = () => oauth.log.filter((entry) => entry.platform === 'facebook' && entry.path === '/v23.0/me/accounts');
  try {
    const readsBefore = accountReads().length;
    const instagram = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'instagram', via: 'facebook', chat: null });
    const linkedInstagram = await followLink(instagram.url);
    assert.equal(linkedInstagram.status, 200, linkedInstagram.text);
    const reads = accountReads().slice(readsBefore);
    assert.equal(reads.length, 3, 'three reads of at most 100 Pages');
    assert.deepEqual(reads.map((r) => r.status), [200, 200, 200]);
    assert.equal(reads[0]!.params.after, undefined);
    assert.ok(reads[1]!.params.after && reads[2]!.params.after && reads[1]!.params.after !== reads[2]!.params.after, 'each later read names the cursor it was given');
    const { rows: igRows } = await ctx.pool.query<{ handle: string }>(`SELECT handle FROM accounts WHERE platform = 'instagram' AND workspace_id = $1 ORDER BY handle`, [workspaceId]);
    assert.deepEqual(igRows.map((r) => r.handle), ['paged0', 'paged120', 'paged229'], 'Instagram accounts on the second and third pages are linked too');

    const facebook = await createLinkRequest(ctx, { workspaceId, memberId: 'm', platform: 'facebook', chat: null });
    const linkedFacebook = await followLink(facebook.url);
    assert.equal(linkedFacebook.status, 200, linkedFacebook.text);
    const { rows: fbRows } = await ctx.pool.query<{ id: string; handle: string }>(`SELECT id, handle FROM accounts WHERE platform = 'facebook' AND workspace_id = $1 ORDER BY handle`, [workspaceId]);
    assert.equal(fbRows.length, count, 'every Page the login manages');
    assert.equal(fbRows.at(-1)!.handle, `Paged ${count - 1}`);
    const last = facebookCredentialsSchema.parse(await readCredentials(ctx.pool, ctx.secrets, fbRows.at(-1)!.id));
    assert.match(last.pageAccessToken ?? '', new RegExp(`^pt-${102000000000000 + count - 1}-`));
    assert.deepEqual((last.scope ?? '').split(',').sort(), ['pages_manage_posts', 'pages_read_engagement', 'pages_show_list', 'public_profile'], 'the granted permissions, from /me/permissions');
  } finally {
    oauth.pages = saved;
  }
});

test('Re-link pressed by an admin Reelay cannot message privately names /link instagram via facebook for such an account', async () => {
  const boss = sim.createUser({ first_name: 'Bo', username: 'bo' });
  const other = sim.createGroup({ title: 'Second', creator: boss, bot: 'administrator' });
  const workspaceId = `telegram:${other.id}`;
  await ensureWorkspace(ctx.pool, workspaceId, 'UTC');
  const viaFacebook = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId, platform: 'instagram', handle: 'boreels', remoteId: '17841400000000077', credentials: { accessToken: 'lt', loginType: 'facebook', userId: '17841400000000077', username: 'boreels', pageId: '101000000000077' }, expiresAt: null });
  const own = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId, platform: 'instagram', handle: 'boself', remoteId: '17841400000000078', credentials: { accessToken: 'lt', loginType: 'instagram', userId: '17841400000000078', username: 'boself' }, expiresAt: null });
  const outbox = configuredOutboxes(ctx.config).telegram!;
  for (const [account, command] of [[viaFacebook, '/link instagram via facebook'], [own, '/link instagram']] as const) {
    const alert = await outbox.send(String(other.id), { text: 'needs re-linking', buttons: [[button('Re-link Instagram', 'relink', account.id)]] });
    const queryId = sim.pressButton(other, boss, Number(alert), `relink:${account.id}`);
    await sim.waitFor(() => sim.callbackAnswers.get(queryId), 10_000);
    assert.equal(sim.callbackAnswers.get(queryId)!.text, MESSAGES.relinkHint(command));
  }
});
