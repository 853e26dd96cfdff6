/**
 * The daily account validation and the at-risk alert, against the real PDS and the TikTok, X,
 * Pinterest, YouTube, LinkedIn, Instagram + Threads (Graph) and Facebook simulators: on every
 * platform a working login stays active (refreshing where due) and a refused one becomes
 * needs_reauth with one Re-link alert, and no platform is skipped; then a post due soon on such an
 * account is announced exactly once, with a Re-link button, while later or healthy ones are not.
 * Instagram with Facebook Login shares FACEBOOK_GRAPH_URL with Facebook, so its read is tested in
 * tests/worker/platforms/instagram.test.ts instead.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { getAccount, readCredentials, setAccountState, upsertAccount, type AccountRow } from '../../core/accounts.ts';
import { ChatNotifier } from '../../core/chat/notifier.ts';
import type { ChatOutbox, OutMessage } from '../../core/chat/outbox.ts';
import { withTransaction } from '../../core/db.ts';
import { MESSAGES } from '../../core/errors.ts';
import { QUEUES } from '../../core/jobs.ts';
import { importStream, insertMedia } from '../../core/media.ts';
import { insertPost } from '../../core/posts.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { checkAtRisk, validateAccounts } from '../../worker/account-checks.ts';
import { startWorker } from '../../worker/main.ts';
import { blueskyLogin } from '../../worker/platforms/bluesky.ts';
import { ADAPTERS } from '../../worker/platforms/index.ts';
import { tiktokCredentialsSchema } from '../../worker/platforms/tiktok.ts';
import { platformDeps } from '../../worker/publish.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { startPds, type TestPdsHandle } from '../support/pds.ts';
import { startFacebookSim, type FacebookSim } from '../sim/facebook.ts';
import { startGraphSim, type GraphSim, type SimUser as GraphUser } from '../sim/graph.ts';
import { startLinkedInSim, type LinkedInSim, type SimMember } from '../sim/linkedin.ts';
import { startPinterestSim, type PinterestSim } from '../sim/pinterest.ts';
import { startTikTokSim, type TikTokSim } from '../sim/tiktok.ts';
import { startXSim, type XSim } from '../sim/x.ts';
import { startYoutubeSim, type YoutubeSim } from '../sim/youtube.ts';

const WORKSPACE = 'telegram:-500';
let ctx: TestContext;
let pds: TestPdsHandle;
let tiktokSim: TikTokSim;
let xSim: XSim;
let pinterestSim: PinterestSim;
let youtubeSim: YoutubeSim;
let linkedinSim: LinkedInSim;
let graphSim: GraphSim;
let facebookSim: FacebookSim;
const META_CLIENT = { clientId: 'reelay-meta', clientSecret: 'reelay-meta-secret' };
const DAY_MS = 86_400_000;
let notifier: ChatNotifier;
const sent: Array<{ chatId: string; message: OutMessage }> = [];
const outbox: ChatOutbox = {
  chat: 'telegram',
  maxUploadBytes: 50 * 1024 * 1024,
  send: async (chatId, message) => {
    sent.push({ chatId, message });
    return String(sent.length);
  },
  edit: async () => undefined,
  sendFile: async () => 'file',
  remove: async () => false,
};

type AccountKey =
  | 'blueskyOk'
  | 'blueskyBad'
  | 'tiktokOk'
  | 'tiktokExpired'
  | 'tiktokRevoked'
  | 'xOk'
  | 'pinterestOk'
  | 'pinterestRevoked'
  | 'youtubeOk'
  | 'youtubeRevoked'
  | 'linkedinOk'
  | 'linkedinRevoked'
  | 'instagramOk'
  | 'instagramRevoked'
  | 'threadsOk'
  | 'threadsRevoked'
  | 'facebookOk'
  | 'facebookRevoked'
  | 'unlinked';
const accounts: Record<AccountKey, AccountRow> = {} as never;
let expiredRefreshToken: string;
/** Access tokens as stored before the check, to see which were refreshed. */
const storedTokens: Partial<Record<AccountKey, string>> = {};

async function account(platform: AccountRow['platform'], handle: string, remoteId: string | null, credentials: Record<string, unknown>, expiresAt: Date | null): Promise<AccountRow> {
  return upsertAccount(ctx.pool, ctx.secrets, { workspaceId: WORKSPACE, platform, handle, remoteId, credentials, expiresAt });
}

function graphCredentials(user: GraphUser, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { accessToken: user.accessToken, expiresAt: user.expiresAt.toISOString(), issuedAt: user.issuedAt.toISOString(), scope: user.scope, userId: user.userId, username: user.username, ...extra };
}

function linkedinCredentials(member: SimMember): Record<string, unknown> {
  return {
    accessToken: member.accessToken,
    ...(member.refreshToken ? { refreshToken: member.refreshToken, refreshTokenExpiresAt: member.refreshTokenExpiresAt!.toISOString() } : {}),
    expiresAt: member.expiresAt.toISOString(),
    scope: member.scope,
    author: member.personUrn,
  };
}

async function tiktokAccount(handle: string, tokens: { accessToken: string; refreshToken: string; openId: string; scope: string }, expiresAt: Date): Promise<AccountRow> {
  return upsertAccount(ctx.pool, ctx.secrets, {
    workspaceId: WORKSPACE,
    platform: 'tiktok',
    handle,
    remoteId: tokens.openId,
    credentials: tiktokCredentialsSchema.parse({ ...tokens, expiresAt: expiresAt.toISOString() }),
    expiresAt,
  });
}

before(async () => {
  [pds, tiktokSim, xSim, pinterestSim, youtubeSim, linkedinSim, graphSim, facebookSim] = await Promise.all([
    startPds(),
    startTikTokSim(),
    startXSim(),
    startPinterestSim(),
    startYoutubeSim(),
    startLinkedInSim(),
    startGraphSim({ client: META_CLIENT }),
    startFacebookSim({ client: META_CLIENT }),
  ]);
  ctx = await testContext({
    env: {
      TIKTOK_API_URL: tiktokSim.url,
      TIKTOK_CLIENT_KEY: tiktokSim.options.clientKey,
      TIKTOK_CLIENT_SECRET: tiktokSim.options.clientSecret,
      X_API_URL: xSim.url,
      X_CLIENT_ID: 'reelay-client',
      X_CLIENT_SECRET: 'reelay-secret',
      PINTEREST_API_URL: pinterestSim.url,
      PINTEREST_CLIENT_ID: 'reelay-client',
      PINTEREST_CLIENT_SECRET: 'reelay-secret',
      YOUTUBE_API_URL: youtubeSim.urls.api,
      YOUTUBE_UPLOAD_URL: youtubeSim.urls.upload,
      GOOGLE_TOKEN_URL: youtubeSim.urls.token,
      GOOGLE_CLIENT_ID: youtubeSim.client.clientId,
      GOOGLE_CLIENT_SECRET: youtubeSim.client.clientSecret,
      LINKEDIN_API_URL: linkedinSim.url,
      LINKEDIN_TOKEN_URL: linkedinSim.tokenUrl,
      LINKEDIN_CLIENT_ID: 'reelay-li-client',
      LINKEDIN_CLIENT_SECRET: 'reelay-li-secret',
      INSTAGRAM_GRAPH_URL: graphSim.urls.ig,
      THREADS_API_URL: graphSim.urls.threads,
      FACEBOOK_GRAPH_URL: facebookSim.url,
      META_APP_ID: META_CLIENT.clientId,
      META_APP_SECRET: META_CLIENT.clientSecret,
      AT_RISK_HOURS: '2',
    },
  });
  notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: { telegram: outbox } });
  await ensureWorkspace(ctx.pool, WORKSPACE, 'UTC');

  const alice = await pds.createAccount('alice');
  const login = await blueskyLogin({ identifier: alice.handle, appPassword: alice.appPassword, service: pds.url }, platformDeps(ctx, 'bluesky', ctx.log, AbortSignal.timeout(20_000)));
  accounts.blueskyOk = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: WORKSPACE, platform: 'bluesky', handle: login.handle, remoteId: login.did, credentials: login.credentials, expiresAt: login.expiresAt });
  // An app password revoked since linking, and no session left.
  const bob = await pds.createAccount('bob');
  accounts.blueskyBad = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: WORKSPACE, platform: 'bluesky', handle: bob.handle, remoteId: null, credentials: { identifier: bob.handle, appPassword: 'revoked-pass-word-0000', service: pds.url }, expiresAt: null });

  const ok = tiktokSim.addAccount({ username: 'fine' });
  accounts.tiktokOk = await tiktokAccount('fine', ok.tokens, new Date(Date.now() + 3600_000));
  const expired = tiktokSim.addAccount({ username: 'stale' });
  expiredRefreshToken = expired.tokens.refreshToken;
  accounts.tiktokExpired = await tiktokAccount('stale', expired.tokens, new Date(Date.now() - 60_000));
  accounts.tiktokRevoked = await tiktokAccount('gone', { accessToken: `act.${randomBytes(8).toString('hex')}`, refreshToken: `rft.${randomBytes(8).toString('hex')}`, openId: 'nobody', scope: 'video.publish' }, new Date(Date.now() + 3600_000));
  const xUser = xSim.addUser({ username: 'x_fine' });
  accounts.xOk = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: WORKSPACE, platform: 'x', handle: xUser.username, remoteId: xUser.userId, credentials: { accessToken: xUser.accessToken, refreshToken: xUser.refreshToken, expiresAt: xUser.expiresAt.toISOString(), scope: xUser.scope }, expiresAt: xUser.expiresAt });
  const pinner = pinterestSim.addUser({ username: 'pinner' });
  const pinCredentials = { accessToken: pinner.accessToken, refreshToken: pinner.refreshToken, expiresAt: pinner.expiresAt.toISOString(), scope: pinner.scope, boardId: pinner.boardId };
  accounts.pinterestOk = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: WORKSPACE, platform: 'pinterest', handle: 'pinner', remoteId: pinner.userId, credentials: pinCredentials, expiresAt: pinner.expiresAt });
  accounts.pinterestRevoked = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: WORKSPACE, platform: 'pinterest', handle: 'unpinned', remoteId: null, credentials: { ...pinCredentials, accessToken: 'pina_revoked', refreshToken: 'pinr_revoked' }, expiresAt: pinner.expiresAt });

  // YouTube: an access token minutes from expiry (refreshed first); one whose refresh token was revoked.
  const { userId: tuberId, ...tuber } = youtubeSim.addAccount({ expiresInSeconds: 60 });
  accounts.youtubeOk = await account('youtube', 'tuber', tuberId, tuber, new Date(tuber.expiresAt));
  storedTokens.youtubeOk = tuber.accessToken;
  const { userId: untuberId, ...untuber } = youtubeSim.addAccount();
  youtubeSim.revokeRefreshToken(untuber.refreshToken);
  youtubeSim.expireAccessToken(untuber.accessToken);
  accounts.youtubeRevoked = await account('youtube', 'untuber', untuberId, untuber, new Date(untuber.expiresAt));

  // LinkedIn: a partner refresh token and an access token about to expire; a token the member revoked.
  const member = linkedinSim.addMember({ refreshToken: true, expiresInSeconds: 60 });
  accounts.linkedinOk = await account('linkedin', 'member', member.personUrn, linkedinCredentials(member), member.expiresAt);
  storedTokens.linkedinOk = member.accessToken;
  const leaver = linkedinSim.addMember();
  linkedinSim.revokeAccessToken(leaver.accessToken);
  accounts.linkedinRevoked = await account('linkedin', 'leaver', leaver.personUrn, linkedinCredentials(leaver), leaver.expiresAt);

  // Instagram (Instagram Login) and Threads: long-lived tokens 5 days from expiry (refreshed), and revoked ones.
  for (const [platform, host] of [['instagram', 'ig'], ['threads', 'threads']] as const) {
    const extra = platform === 'instagram' ? { loginType: 'instagram' } : {};
    const fine = graphSim.addUser({ host, ageMs: 55 * DAY_MS, lifetimeMs: 60 * DAY_MS });
    accounts[`${platform}Ok`] = await account(platform, fine.username, fine.userId, graphCredentials(fine, extra), fine.expiresAt);
    storedTokens[`${platform}Ok`] = fine.accessToken;
    const gone = graphSim.addUser({ host });
    graphSim.revoke(gone.accessToken);
    accounts[`${platform}Revoked`] = await account(platform, gone.username, gone.userId, graphCredentials(gone, extra), gone.expiresAt);
  }

  // Facebook: no Page token stored yet (derived first); a user whose login was revoked, its Page token with it.
  const page = facebookSim.addPage();
  accounts.facebookOk = await account('facebook', page.name, page.pageId, { userAccessToken: page.userToken, userTokenExpiresAt: page.userTokenExpiresAt.toISOString(), pageId: page.pageId }, page.userTokenExpiresAt);
  const lostPage = facebookSim.addPage();
  accounts.facebookRevoked = await account(
    'facebook',
    lostPage.name,
    lostPage.pageId,
    { userAccessToken: lostPage.userToken, userTokenExpiresAt: lostPage.userTokenExpiresAt.toISOString(), pageId: lostPage.pageId, pageAccessToken: lostPage.pageToken },
    lostPage.userTokenExpiresAt,
  );
  facebookSim.revokeUser(lostPage);

  accounts.unlinked = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: WORKSPACE, platform: 'x', handle: 'old_x', remoteId: null, credentials: {}, expiresAt: null });
  await setAccountState(ctx.pool, accounts.unlinked.id, 'disabled', null);
});

after(async () => {
  await notifier?.close();
  await ctx?.dispose();
  await Promise.all([pds?.close(), tiktokSim?.close(), xSim?.close(), pinterestSim?.close(), youtubeSim?.close(), linkedinSim?.close(), graphSim?.close(), facebookSim?.close()]);
});

test('daily validation: working logins stay active (refreshed when due), refused ones need re-linking with one alert', async () => {
  const creatorInfoBefore = tiktokSim.requestsTo('creator_info').length;
  const summary = await validateAccounts(ctx, ADAPTERS, notifier);
  const refused = [
    accounts.blueskyBad,
    accounts.tiktokRevoked,
    accounts.pinterestRevoked,
    accounts.youtubeRevoked,
    accounts.linkedinRevoked,
    accounts.instagramRevoked,
    accounts.threadsRevoked,
    accounts.facebookRevoked,
  ].map((a) => a.id);
  assert.deepEqual(summary.needsReauth.sort(), [...refused].sort());
  assert.equal(summary.checked, 10, 'bluesky, tiktok, tiktok refreshed, x, pinterest, youtube, linkedin, instagram, threads, facebook');
  assert.equal(summary.skipped, 0, 'every platform has a cheap read; the unlinked account is not looked at');
  assert.equal(summary.failed, 0);
  assert.ok(tiktokSim.requestsTo('creator_info').length >= creatorInfoBefore + 2, 'one cheap read per TikTok account');
  assert.ok(xSim.requests.some((r) => r.route === 'me' && r.status === 200 && r.userId === accounts.xOk.remote_id), 'X: GET /2/users/me');
  assert.ok(pinterestSim.requests.some((r) => r.route === 'boards' && r.status === 200), 'Pinterest: one board');
  assert.ok(pinterestSim.requests.some((r) => r.route === 'boards' && r.status === 401), 'the revoked Pinterest token was refused');

  // Each platform's read, answered for the working login and refused for the other.
  const channels = youtubeSim.log('channels');
  assert.deepEqual(channels.map((r) => r.status).sort(), [200, 401], 'YouTube: channels.list?mine=true, once each');
  assert.ok(youtubeSim.log('token').some((r) => r.status === 200) && youtubeSim.log('token').some((r) => r.status === 400 && r.reason === 'invalid_grant'), 'YouTube: one refresh, one refused');
  const userinfo = linkedinSim.requests.filter((r) => r.route === 'userinfo');
  assert.deepEqual(userinfo.map((r) => r.status).sort(), [200, 401], 'LinkedIn: GET /v2/userinfo');
  assert.equal(linkedinSim.count('token'), 1, 'LinkedIn: the near-expiry token was refreshed; a revoked one is not retried');
  for (const host of ['ig', 'threads'] as const) {
    const reads = graphSim.log.filter((e) => e.host === host && e.route === 'user');
    assert.deepEqual(reads.map((e) => e.status).sort(), [200, 400], `${host}: GET /me once each (a revoked token is 400 code 190)`);
    assert.equal(graphSim.count('refresh', host), 1, `${host}: the token 5 days from expiry was refreshed`);
  }
  assert.deepEqual(facebookSim.requests.filter((r) => r.route === 'pageRead').map((r) => r.status).sort(), [200, 401], 'Facebook: the Page read with the Page token');
  assert.deepEqual(facebookSim.requests.filter((r) => r.route === 'page').map((r) => r.status).sort(), [200, 400], 'a Page token derived for one; the revoked login refused the forced refresh of the other');

  const state = async (a: AccountRow) => (await getAccount(ctx.pool, a.id))!.state;
  for (const key of ['blueskyOk', 'tiktokOk', 'tiktokExpired', 'xOk', 'pinterestOk', 'youtubeOk', 'linkedinOk', 'instagramOk', 'threadsOk', 'facebookOk'] as const) {
    assert.equal(await state(accounts[key]), 'active', key);
  }
  for (const id of refused) assert.equal((await getAccount(ctx.pool, id))!.state, 'needs_reauth', id);
  assert.ok(tiktokSim.spentRefreshTokens.has(expiredRefreshToken), 'the expired token was refreshed');
  const refreshed = tiktokCredentialsSchema.parse(await readCredentials(ctx.pool, ctx.secrets, accounts.tiktokExpired.id));
  assert.notEqual(refreshed.refreshToken, expiredRefreshToken, 'and the rotated refresh token was stored');
  for (const key of ['youtubeOk', 'linkedinOk', 'instagramOk', 'threadsOk'] as const) {
    const stored = await readCredentials(ctx.pool, ctx.secrets, accounts[key].id);
    assert.equal(typeof stored.accessToken, 'string', key);
    assert.notEqual(stored.accessToken, storedTokens[key], `${key}: the refreshed token was stored`);
  }
  const facebookStored = await readCredentials(ctx.pool, ctx.secrets, accounts.facebookOk.id);
  assert.equal(typeof facebookStored.pageAccessToken, 'string', 'the derived Page token was stored');

  const alerts = sent.filter((s) => s.chatId === '-500' && /needs re-linking/.test(s.message.text));
  assert.equal(alerts.length, refused.length, alerts.map((a) => a.message.text).join('\n'));
  const buttons = alerts.flatMap((a) => a.message.buttons?.flat() ?? []).map((b) => b.data).sort();
  assert.deepEqual(buttons, refused.map((id) => `relink:${id}`).sort());

  const again = await validateAccounts(ctx, ADAPTERS, notifier);
  assert.deepEqual(again.needsReauth, [], 'accounts needing re-linking are not checked again');
  assert.equal(again.checked, 10);
  assert.equal(again.skipped, 0);
  assert.equal(sent.filter((s) => /needs re-linking/.test(s.message.text)).length, refused.length, 'no second alert');
  assert.equal(linkedinSim.count('token') + graphSim.count('refresh'), 3, 'fresh tokens are not refreshed again');
});

async function schedulePost(caption: string, at: Date, targets: AccountRow[]): Promise<string[]> {
  return withTransaction(ctx.pool, async (tx) => {
    const media = await insertMedia(tx, { workspaceId: WORKSPACE, filename: 'clip.mp4', contentType: 'video/mp4', probe: {}, stored: await importStream(tx, [randomBytes(1024)]) });
    const { deliveries } = await insertPost(tx, {
      workspaceId: WORKSPACE,
      authorId: '7',
      caption,
      mediaId: media.id,
      scheduledAt: at,
      timeZone: 'UTC',
      origin: { chat: 'telegram', chatId: '-500' },
      targets: targets.map((a) => ({ accountId: a.id, platform: a.platform, profileKey: a.platform, caption: null })),
      initialState: 'scheduled',
    });
    return deliveries.map((d) => d.id);
  });
}

test('at risk: a post due within AT_RISK_HOURS on an unhealthy account is announced once, with a Re-link button', async () => {
  const soon = new Date(ctx.now() + 60 * 60_000);
  const [badSoon, okSoon] = await schedulePost('soon', soon, [accounts.blueskyBad, accounts.blueskyOk]);
  const badPost = (await ctx.pool.query<{ post_id: string }>('SELECT post_id FROM deliveries WHERE id = $1', [badSoon])).rows[0]!.post_id;
  const [unlinkedSoon] = await schedulePost('soon, unlinked', soon, [accounts.unlinked]);
  await schedulePost('later', new Date(ctx.now() + 5 * 3600_000), [accounts.blueskyBad]);
  await schedulePost('healthy', soon, [accounts.tiktokOk]);
  const before = sent.length;

  const found = await checkAtRisk(ctx, notifier);
  assert.deepEqual(found.sort(), [badSoon!, unlinkedSoon!].sort());
  assert.ok(!found.includes(okSoon!));
  const alerts = sent.slice(before);
  assert.equal(alerts.length, 2, alerts.map((a) => a.message.text).join('\n'));
  const bad = alerts.find((a) => a.message.text.includes(accounts.blueskyBad.handle))!;
  assert.ok(bad, alerts.map((a) => a.message.text).join('\n'));
  assert.equal(bad.message.text, MESSAGES.alertAtRisk('Bluesky', accounts.blueskyBad.handle, badPost.slice(0, 8), 'placeholder', 'needs_reauth').replace('placeholder', /at (.+), but/.exec(bad.message.text)![1]!));
  assert.deepEqual(bad.message.buttons?.flat().map((b) => b.data), [`relink:${accounts.blueskyBad.id}`]);
  assert.equal(bad.chatId, '-500');
  assert.ok(alerts.some((a) => a.message.text.includes('was unlinked')), 'an unlinked account is at risk too');

  await checkAtRisk(ctx, notifier);
  await checkAtRisk(ctx, notifier);
  assert.equal(sent.length, before + 2, 'each delivery is announced once, however often the check runs');
});

test('the worker schedules both checks with pg-boss', async () => {
  const worker = await startWorker(ctx, { notify: notifier, pollingIntervalSeconds: 0.5 });
  try {
    const validate = await ctx.boss.getSchedules(QUEUES.validateAccounts);
    const atRisk = await ctx.boss.getSchedules(QUEUES.atRisk);
    assert.equal(validate.length, 1);
    assert.equal(atRisk.length, 1);
    assert.match(atRisk[0]!.cron, /^\*\/10 /, 'every 10 minutes');
  } finally {
    await worker.stop();
  }
});
