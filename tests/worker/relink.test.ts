/**
 * A lost login does not fail posts: the account turns `needs_reauth`, the alerts chat hears it once
 * with a Re-link button, the delivery waits (scheduled, with the reason), and linking the account
 * again sends it at once. A delivery still waiting 24 h after its slot fails with the reason.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { getAccount, upsertAccount } from '../../core/accounts.ts';
import { ChatNotifier } from '../../core/chat/notifier.ts';
import type { ChatOutbox, OutMessage } from '../../core/chat/outbox.ts';
import { MESSAGES, PublishError } from '../../core/errors.ts';
import { submitPost } from '../../core/intake.ts';
import { wakeWaiting } from '../../core/linking.ts';
import { PLATFORM_SPECS, type PlatformAdapter } from '../../core/platforms.ts';
import { getDelivery, listDeliveries } from '../../core/posts.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { startWorker, type RunningWorker } from '../../worker/main.ts';
import { makeClip } from '../support/clips.ts';
import { poll } from '../support/poll.ts';
import { testContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
let worker: RunningWorker;
let notifier: ChatNotifier;
let clip: string;
let loginGone = true;
let published = 0;
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
  remove: async () => true,
};

const tiktok: PlatformAdapter = {
  spec: PLATFORM_SPECS.tiktok,
  async publish(input) {
    if (loginGone) throw new PublishError('auth', 'access_token_invalid: refresh token revoked', { retryable: false });
    published++;
    return { status: 'published', remoteId: `tt-${input.deliveryId}`, url: `https://www.tiktok.com/@c/video/${published}` };
  },
  async check(remoteId) {
    return { status: 'published', remoteId, url: 'https://www.tiktok.com/@c/video/x' };
  },
};

/** An Instagram whose login is always gone: what its waiting deliveries say. */
const instagram: PlatformAdapter = {
  spec: PLATFORM_SPECS.instagram,
  async publish() {
    throw new PublishError('auth', 'Error validating access token: Session has expired.', { retryable: false });
  },
  async check(remoteId) {
    return { status: 'published', remoteId, url: 'https://www.instagram.com/reel/x' };
  },
};


before(async () => {
  // Instagram takes posts only where Reelay has a public address (nothing is fetched here).
  ctx = await testContext({ env: { PUBLIC_BASE_URL: 'http://127.0.0.1:9' } });
  await ensureWorkspace(ctx.pool, 'telegram:-100', 'UTC');
  clip = makeClip(join(ctx.dir, 'clip.mp4'), { width: 360, height: 640, seconds: 4 });
  notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: { telegram: outbox } });
  worker = await startWorker(ctx, { notify: notifier, pollingIntervalSeconds: 0.5, adapters: { tiktok, instagram } });
});

after(async () => {
  await worker?.stop();
  await notifier?.close();
  await ctx?.dispose();
});

test('the delivery waits for a re-link, the chat is told once with a Re-link button, and re-linking sends it', async () => {
  const account = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'telegram:-100', platform: 'tiktok', handle: 'creator', remoteId: null, credentials: { token: 'x' }, expiresAt: null });
  const { post } = await submitPost(ctx, { workspaceId: 'telegram:-100', authorId: 'u1', filePath: clip, caption: 'waits', targets: [{ platform: 'tiktok', handle: null }] });
  const waiting = await poll(() => getDelivery(ctx.pool, post.deliveries[0]!.id), (d) => d?.error === MESSAGES.waitingForRelink('TikTok', 'creator', 24, '/link tiktok'));
  assert.equal(waiting?.state, 'scheduled', 'waiting, not failed');
  assert.equal((await getAccount(ctx.pool, account.id))?.state, 'needs_reauth');
  const alerts = sent.filter((s) => s.message.text.startsWith('🔑'));
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0]!.chatId, '-100', 'a Telegram workspace hears its own alerts');
  assert.deepEqual(alerts[0]!.message.buttons, [[{ label: 'Re-link TikTok', data: `relink:${account.id}` }]]);

  loginGone = false;
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'telegram:-100', platform: 'tiktok', handle: 'creator', remoteId: null, credentials: { token: 'y' }, expiresAt: null });
  await wakeWaiting(ctx, account.id);
  const done = await poll(() => listDeliveries(ctx.pool, post.id), (ds) => ds[0]?.state === 'published');
  assert.match(done[0]!.url!, /tiktok\.com/);
  assert.equal(sent.filter((s) => s.message.text.startsWith('🔑')).length, 1, 'one alert, not one per check');
});

test('a delivery still waiting 24 h after its slot fails with the reason', async () => {
  loginGone = true;
  const { post } = await submitPost(ctx, { workspaceId: 'telegram:-100', authorId: 'u1', filePath: clip, caption: 'too late', targets: [{ platform: 'tiktok', handle: null }] });
  await poll(() => getDelivery(ctx.pool, post.deliveries[0]!.id), (d) => d?.error_code === 'auth' && d.state === 'scheduled');
  await ctx.pool.query(`UPDATE posts SET scheduled_at = now() - interval '25 hours' WHERE id = $1`, [post.id]);
  await wakeWaiting(ctx, post.deliveries[0]!.account_id);
  const failed = await poll(() => getDelivery(ctx.pool, post.deliveries[0]!.id), (d) => d?.state === 'failed');
  assert.equal(failed?.error, MESSAGES.platformAuth('TikTok'));
});

test('a waiting delivery names the command that re-links its account the way it was linked', async () => {
  const viaFacebook = { accessToken: 'x', loginType: 'facebook', userId: '17841400000000001', username: 'caseycooks', pageId: '101000000000001' };
  const own = { accessToken: 'y', loginType: 'instagram', userId: '17841400000000002', username: 'caseytravels' };
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'telegram:-100', platform: 'instagram', handle: 'caseycooks', remoteId: viaFacebook.userId, credentials: viaFacebook, expiresAt: null });
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'telegram:-100', platform: 'instagram', handle: 'caseytravels', remoteId: own.userId, credentials: own, expiresAt: null });
  const { post } = await submitPost(ctx, {
    workspaceId: 'telegram:-100',
    authorId: 'u1',
    filePath: clip,
    caption: 'both wait',
    targets: [{ platform: 'instagram', handle: 'caseycooks' }, { platform: 'instagram', handle: 'caseytravels' }],
  });
  const waiting = await poll(() => listDeliveries(ctx.pool, post.id), (ds) => ds.length === 2 && ds.every((d) => d.error_code === 'auth' && d.state === 'scheduled'));
  const reasons = Object.fromEntries(waiting.map((d) => [d.handle, d.error]));
  assert.deepEqual(reasons, {
    caseycooks: MESSAGES.waitingForRelink('Instagram', 'caseycooks', 24, '/link instagram via facebook'),
    caseytravels: MESSAGES.waitingForRelink('Instagram', 'caseytravels', 24, '/link instagram'),
  });
});
