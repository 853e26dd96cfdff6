/**
 * The `reelay` command as a person runs it: a child process per command, exit codes, messages on
 * stderr, and the database checked afterwards for anything half-written.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { upsertAccount } from '../../core/accounts.ts';
import { MESSAGES } from '../../core/errors.ts';
import { PLATFORM_IDS } from '../../core/platforms.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { RELINK_WAIT_HOURS } from '../../worker/publish.ts';
import { runReelay } from '../support/cli.ts';
import { makeClip } from '../support/clips.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { startPds, type TestPdsHandle } from '../support/pds.ts';

let ctx: TestContext;
let pds: TestPdsHandle;


const reelay = (args: string[], extraEnv: Record<string, string> = {}) => runReelay(ctx, args, extraEnv);

async function counts(): Promise<Record<string, number>> {
  const { rows } = await ctx.pool.query<Record<string, number>>(
    `SELECT (SELECT count(*)::int FROM posts) AS posts, (SELECT count(*)::int FROM deliveries) AS deliveries,
            (SELECT count(*)::int FROM media) AS media, (SELECT count(*)::int FROM pg_largeobject_metadata) AS objects`,
  );
  return rows[0]!;
}

before(async () => {
  [ctx, pds] = await Promise.all([testContext(), startPds()]);
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
  // Intake needs a linked account before it looks at the file; these tests never publish with it.
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'instagram', handle: 'insta.creator', remoteId: null, credentials: {}, expiresAt: null });
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: 'offline.test', remoteId: null, credentials: { identifier: 'offline.test', appPassword: 'x', service: 'http://127.0.0.1:1' }, expiresAt: null });
});
after(async () => {
  await ctx?.dispose();
  await pds?.close();
});

test('bad input: a clear message, exit 2, nothing written', async () => {
  const dir = ctx.dir;
  writeFileSync(join(dir, 'notes.mp4'), 'these are my notes, not a video\n'.repeat(50));
  writeFileSync(join(dir, 'empty.mp4'), '');
  const whole = readFileSync(makeClip(join(dir, 'whole.mp4'), { faststart: false }));
  writeFileSync(join(dir, 'truncated.mp4'), whole.subarray(0, Math.floor(whole.length / 2)));
  const audio = spawnSync('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '2', '-c:a', 'aac', join(dir, 'song.m4a')]);
  assert.equal(audio.status, 0);
  const good = makeClip(join(dir, 'good.mp4'));
  const before = await counts();

  const cases: Array<{ args: string[]; message: string }> = [
    { args: ['post', join(dir, 'notes.mp4'), '--to', 'bluesky'], message: MESSAGES.notAVideo('notes.mp4') },
    { args: ['post', join(dir, 'empty.mp4'), '--to', 'bluesky'], message: MESSAGES.fileEmpty('empty.mp4') },
    { args: ['post', join(dir, 'truncated.mp4'), '--to', 'bluesky'], message: MESSAGES.corruptVideo('truncated.mp4') },
    { args: ['post', join(dir, 'song.m4a'), '--to', 'bluesky'], message: MESSAGES.noVideoStream('song.m4a') },
    { args: ['post', join(dir, 'missing.mp4'), '--to', 'bluesky'], message: MESSAGES.fileNotFound(join(dir, 'missing.mp4')) },
    { args: ['post', good, '--to', 'myspace'], message: MESSAGES.unknownPlatform('myspace', PLATFORM_IDS) },
    { args: ['post', good, '--to', 'tiktok'], message: MESSAGES.noAccount('TikTok', 'cli') },
    { args: ['post', good, '--to', 'instagram'], message: MESSAGES.needsPublicUrl('Instagram') },
    { args: ['post', good, '--to', 'bluesky', '--at', '2020-01-01 10:00'], message: 'is in the past. Did you mean' },
    { args: ['post', good, '--to', 'bluesky', '--at', 'whenever you like'], message: MESSAGES.timeUnparsed('whenever you like') },
    { args: ['post', good, '--to', 'bluesky', '--caption', 'x'.repeat(301)], message: MESSAGES.captionTooLong('Bluesky', 301, 300, 'characters') },
    { args: ['post', good, '--to', 'bluesky', '--tz', 'Mars/Base'], message: MESSAGES.unknownTimezone('Mars/Base') },
    { args: ['post', good, '--to', 'bluesky', '--workspace', 'slack:1'], message: 'Unknown workspace "slack:1"' },
    { args: ['post', good], message: "required option '--to <targets>' not specified" },
    { args: ['posts', 'show', 'ffffffff'], message: MESSAGES.postNotFound('ffffffff') },
    { args: ['accounts', 'add', 'tiktok', '--handle', 'a', '--app-password', 'b'], message: 'only bluesky can be added here' },
    { args: ['frobnicate'], message: "unknown command 'frobnicate'" },
  ];
  for (const { args, message } of cases) {
    const run = await reelay(args);
    assert.equal(run.code, 2, `${args.join(' ')} exits 2 (stderr: ${run.stderr})`);
    assert.ok(run.stderr.includes(message), `${args.join(' ')}: expected "${message}" in:\n${run.stderr}`);
    assert.ok(!run.stderr.includes('    at '), `${args.join(' ')}: no stack trace`);
  }
  assert.deepEqual(await counts(), before, 'nothing half-written');
});

test('post --wait --json publishes to the PDS and prints one object; schedule, list, cancel', async () => {
  const account = await pds.createAccount('cli-user');
  const add = await reelay(['accounts', 'add', 'bluesky', '--handle', account.handle, '--app-password', account.appPassword, '--service', pds.url]);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /Linked Bluesky @cli-user\.test/);
  assert.ok(!add.stdout.includes(account.appPassword), 'the app password is never echoed');

  const wrong = await reelay(['accounts', 'add', 'bluesky', '--handle', account.handle, '--app-password', 'aaaa-bbbb-cccc-dddd', '--service', pds.url]);
  assert.equal(wrong.code, 2);
  assert.ok(wrong.stderr.includes(MESSAGES.accountAuthFailed('Bluesky', account.handle)));

  const clip = makeClip(join(ctx.dir, 'cli.mp4'));
  const posted = await reelay(['post', clip, '--to', `bluesky:${account.handle}`, '--caption', 'from the CLI', '--wait', '--json']);
  assert.equal(posted.code, 0, posted.stderr);
  const result = JSON.parse(posted.stdout) as { post: string; scheduledAt: string; deliveries: Array<Record<string, unknown>> };
  assert.match(result.post, /^[0-9a-f-]{36}$/);
  assert.ok(!Number.isNaN(Date.parse(result.scheduledAt)));
  assert.equal(result.deliveries.length, 1);
  const delivery = result.deliveries[0]!;
  assert.equal(delivery.platform, 'bluesky');
  assert.equal(delivery.account, account.handle);
  assert.equal(delivery.state, 'published');
  assert.equal(delivery.error, null);
  assert.match(String(delivery.url), /^https:\/\/bsky\.app\/profile\/cli-user\.test\/post\//);
  assert.ok(await pds.getRecord(String(delivery.remoteId)), 'the record is on the PDS');

  const scheduled = await reelay(['post', clip, '--to', `bluesky:${account.handle}`, '--at', 'in 2 hours', '--json']);
  assert.equal(scheduled.code, 0, scheduled.stderr);
  const later = JSON.parse(scheduled.stdout) as { post: string; scheduledAt: string; deliveries: Array<{ state: string }> };
  const inTwoHours = Date.parse(later.scheduledAt) - Date.now();
  assert.ok(Math.abs(inTwoHours - 2 * 3600_000) < 120_000, `scheduled ~2 h ahead (${inTwoHours} ms)`);
  assert.equal(later.deliveries[0]!.state, 'scheduled');

  const list = await reelay(['posts', 'list']);
  assert.equal(list.code, 0);
  assert.ok(list.stdout.includes(later.post.slice(0, 8)));
  const cancel = await reelay(['posts', 'cancel', later.post.slice(0, 8), '--json']);
  assert.equal(cancel.code, 0, cancel.stderr);
  assert.equal((JSON.parse(cancel.stdout) as { deliveries: Array<{ state: string }> }).deliveries[0]!.state, 'cancelled');
  const again = await reelay(['posts', 'cancel', later.post]);
  assert.equal(again.code, 2);
});

test('a revoked login exits 1 with the reason: the delivery waits for a re-link, --wait does not', async () => {
  const account = await pds.createAccount('revoked');
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: account.handle, remoteId: account.did, credentials: { identifier: account.handle, appPassword: 'zzzz-zzzz-zzzz-zzzz', service: pds.url }, expiresAt: null });
  const clip = makeClip(join(ctx.dir, 'fail.mp4'));
  const run = await reelay(['post', clip, '--to', `bluesky:${account.handle}`, '--wait']);
  assert.equal(run.code, 1, run.stderr);
  assert.ok(run.stdout.includes(MESSAGES.waitingForRelink('Bluesky', account.handle, RELINK_WAIT_HOURS, '/link bluesky')), run.stdout);
  const { rows } = await ctx.pool.query<{ state: string }>(`SELECT state FROM accounts WHERE handle = $1`, [account.handle]);
  assert.equal(rows[0]!.state, 'needs_reauth');
});
