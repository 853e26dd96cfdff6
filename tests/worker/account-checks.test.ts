/**
 * The daily account validation and the at-risk alert, against the real PDS and the TikTok, X and
 * Pinterest simulators: working logins stay active (refreshing where due), refused ones become needs_reauth
 * with one Re-link alert, adapters without a cheap read are skipped; then a post due soon on such an
 * account is announced exactly once, with a Re-link button, while later or healthy ones are not.
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
import { startPinterestSim, type PinterestSim } from '../sim/pinterest.ts';
import { startTikTokSim, type TikTokSim } from '../sim/tiktok.ts';
import { startXSim, type XSim } from '../sim/x.ts';

const WORKSPACE = 'telegram:-500';
let ctx: TestContext;
let pds: TestPdsHandle;
let tiktokSim: TikTokSim;
let xSim: XSim;
let pinterestSim: PinterestSim;
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

const accounts: Record<'blueskyOk' | 'blueskyBad' | 'tiktokOk' | 'tiktokExpired' | 'tiktokRevoked' | 'xOk' | 'pinterestOk' | 'pinterestRevoked' | 'instagram' | 'unlinked', AccountRow> = {} as never;
let expiredRefreshToken: string;

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
  [pds, tiktokSim, xSim, pinterestSim] = await Promise.all([startPds(), startTikTokSim(), startXSim(), startPinterestSim()]);
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
  accounts.instagram = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: WORKSPACE, platform: 'instagram', handle: 'insta', remoteId: null, credentials: {}, expiresAt: null });
  accounts.unlinked = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: WORKSPACE, platform: 'x', handle: 'old_x', remoteId: null, credentials: {}, expiresAt: null });
  await setAccountState(ctx.pool, accounts.unlinked.id, 'disabled', null);
});

after(async () => {
  await notifier?.close();
  await ctx?.dispose();
  await Promise.all([pds?.close(), tiktokSim?.close(), xSim?.close(), pinterestSim?.close()]);
});

test('daily validation: working logins stay active (refreshed when due), refused ones need re-linking with one alert', async () => {
  const creatorInfoBefore = tiktokSim.requestsTo('creator_info').length;
  const summary = await validateAccounts(ctx, ADAPTERS, notifier);
  assert.deepEqual(summary.needsReauth.sort(), [accounts.blueskyBad.id, accounts.tiktokRevoked.id, accounts.pinterestRevoked.id].sort());
  assert.equal(summary.checked, 5, 'bluesky, tiktok, tiktok refreshed, x, pinterest');
  assert.equal(summary.skipped, 1, 'instagram has no validate; the unlinked account is not looked at');
  assert.equal(summary.failed, 0);
  assert.ok(tiktokSim.requestsTo('creator_info').length >= creatorInfoBefore + 2, 'one cheap read per TikTok account');
  assert.ok(xSim.requests.some((r) => r.route === 'me' && r.status === 200 && r.userId === accounts.xOk.remote_id), 'X: GET /2/users/me');
  assert.ok(pinterestSim.requests.some((r) => r.route === 'boards' && r.status === 200), 'Pinterest: one board');
  assert.ok(pinterestSim.requests.some((r) => r.route === 'boards' && r.status === 401), 'the revoked Pinterest token was refused');

  const state = async (a: AccountRow) => (await getAccount(ctx.pool, a.id))!.state;
  assert.equal(await state(accounts.blueskyOk), 'active');
  assert.equal(await state(accounts.tiktokOk), 'active');
  assert.equal(await state(accounts.tiktokExpired), 'active');
  assert.equal(await state(accounts.xOk), 'active');
  assert.equal(await state(accounts.pinterestOk), 'active');
  assert.equal(await state(accounts.pinterestRevoked), 'needs_reauth');
  assert.equal(await state(accounts.instagram), 'active');
  assert.equal(await state(accounts.blueskyBad), 'needs_reauth');
  assert.equal(await state(accounts.tiktokRevoked), 'needs_reauth');
  assert.ok(tiktokSim.spentRefreshTokens.has(expiredRefreshToken), 'the expired token was refreshed');
  const refreshed = tiktokCredentialsSchema.parse(await readCredentials(ctx.pool, ctx.secrets, accounts.tiktokExpired.id));
  assert.notEqual(refreshed.refreshToken, expiredRefreshToken, 'and the rotated refresh token was stored');

  const alerts = sent.filter((s) => s.chatId === '-500' && /needs re-linking/.test(s.message.text));
  assert.equal(alerts.length, 3, alerts.map((a) => a.message.text).join('\n'));
  const buttons = alerts.flatMap((a) => a.message.buttons?.flat() ?? []).map((b) => b.data).sort();
  assert.deepEqual(buttons, [`relink:${accounts.blueskyBad.id}`, `relink:${accounts.tiktokRevoked.id}`, `relink:${accounts.pinterestRevoked.id}`].sort());

  const again = await validateAccounts(ctx, ADAPTERS, notifier);
  assert.deepEqual(again.needsReauth, [], 'accounts needing re-linking are not checked again');
  assert.equal(sent.filter((s) => /needs re-linking/.test(s.message.text)).length, 3, 'no second alert');
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
