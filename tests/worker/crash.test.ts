/**
 * Exactly-once under SIGKILL: the worker runs as a child process and kills itself at a named point
 * (REELAY_CRASH_AT); a fresh worker must finish the delivery with exactly one post on the PDS, and
 * within a minute — a dead worker's job is found by its missing heartbeat, not pg-boss's 15-minute expiry.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { upsertAccount } from '../../core/accounts.ts';
import { submitPost } from '../../core/intake.ts';
import { getDelivery, listDeliveries, type DeliveryView } from '../../core/posts.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { blueskyLogin } from '../../worker/platforms/bluesky.ts';
import { platformDeps } from '../../worker/publish.ts';
import { makeClip } from '../support/clips.ts';
import { spawnReelayWorker, until } from '../support/cli.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { startPds, type TestPdsHandle } from '../support/pds.ts';

let ctx: TestContext;
let pds: TestPdsHandle;
let clip: string;
const children = new Set<ChildProcess>();

async function linkAccount(name: string): Promise<{ did: string; handle: string }> {
  const account = await pds.createAccount(name);
  const deps = platformDeps(ctx, 'bluesky', ctx.log, AbortSignal.timeout(20_000));
  const login = await blueskyLogin({ identifier: account.handle, appPassword: account.appPassword, service: pds.url }, deps);
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: login.handle, remoteId: login.did, credentials: login.credentials, expiresAt: login.expiresAt });
  return { did: login.did, handle: login.handle };
}

before(async () => {
  [ctx, pds] = await Promise.all([testContext(), startPds()]);
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
  clip = makeClip(join(ctx.dir, 'clip.mp4'), { seconds: 2 });
});
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await ctx?.dispose();
  await pds?.close();
});

async function crashThenRecover(crashAt: string, postsOnPdsAfterCrash: number): Promise<void> {
  const account = await linkAccount(crashAt.replace(/[^a-z]/g, '').slice(-12));
  const first = spawnReelayWorker(ctx, children, { REELAY_CRASH_AT: crashAt });
  const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: `crash at ${crashAt}`, targets: [{ platform: 'bluesky', handle: account.handle }] });
  const [deliveryRow] = await listDeliveries(ctx.pool, post.id);
  const deliveryId = deliveryRow!.id;

  const outcome = await first.exited;
  assert.equal(outcome.signal, 'SIGKILL', 'the worker died at the crash point');
  const crashed = (await getDelivery(ctx.pool, deliveryId))!;
  assert.equal(crashed.state, 'publishing');
  assert.ok(typeof crashed.checkpoint.rkey === 'string', 'the record key was checkpointed before the crash');
  assert.equal((await pds.listRecords(account.did, 'app.bsky.feed.post')).length, postsOnPdsAfterCrash);

  const restartedAt = Date.now();
  const second = spawnReelayWorker(ctx, children);
  const published = await until<DeliveryView>('the delivery to be published', async () => {
    const row = await getDelivery(ctx.pool, deliveryId);
    return row && row.state === 'published' ? row : null;
  }, 60_000);
  const recoverySeconds = (Date.now() - restartedAt) / 1000;
  second.child.kill('SIGTERM');
  await second.exited;

  assert.ok(recoverySeconds < 60, `recovered in ${recoverySeconds} s`);
  const records = await pds.listRecords(account.did, 'app.bsky.feed.post');
  assert.equal(records.length, 1, 'exactly one post exists');
  assert.equal(records[0]!.uri, published.remote_id);
  assert.ok(published.remote_id!.endsWith(`/${String(crashed.checkpoint.rkey)}`), 'the resumed attempt used the checkpointed key');
}

test('SIGKILL between the upload and the record creation: one post after restart', async () => {
  await crashThenRecover('bluesky.after_upload', 0);
});

test('SIGKILL after the record creation, before the database write: still one post', async () => {
  await crashThenRecover('bluesky.after_create', 1);
});
