/**
 * The Threads adapter against the Graph simulator in tests/sim/graph.ts (its Threads host), which
 * really fetches the public link from a loopback file server; plus a memory test that publishes a
 * 200 MB file from a child process with a 64 MB heap.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MESSAGES, PublishError } from '../../../core/errors.ts';
import { createLogger } from '../../../core/log.ts';
import type { Checkpoint, Credentials, PlatformDeps, PublishInput, PublishResult, RenditionHandle } from '../../../core/platforms.ts';
import { createThreadsAdapter, threadsCredentialsSchema } from '../../../worker/platforms/threads.ts';
import { startGraphSim, startMediaServer, type GraphSim, type GraphSimOptions, type SimUser } from '../../sim/graph.ts';
import { clock, randomFile } from '../../support/files.ts';

const MiB = 1024 * 1024;
const CLIENT = { clientId: 'meta-app', clientSecret: 'meta-secret' };
const DAY = 86_400_000;
let dir: string;
let small: RenditionHandle & { path: string };


before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-threads-test-'));
  const path = join(dir, 'small.mp4');
  const size = 3 * MiB + 17;
  const sha256 = randomFile(path, size);
  small = { id: 'r1', size, sha256, contentType: 'video/mp4', width: 1080, height: 1920, durationSeconds: 10, path, open: async (r) => createReadStream(path, r ? { start: r.start, end: r.end } : {}) };
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Harness


type Media = Awaited<ReturnType<typeof startMediaServer>>;

async function withSim(options: GraphSimOptions, fn: (sim: GraphSim, media: Media) => Promise<void>): Promise<void> {
  const sim = await startGraphSim({ client: CLIENT, processingPolls: 0, ...options });
  const media = await startMediaServer({ path: small.path, size: small.size });
  try {
    await fn(sim, media);
  } finally {
    await sim.settled();
    await sim.close();
    await media.close();
  }
}

function makeDeps(sim: GraphSim, options: { now?: () => number; crashAt?: string; oauthClient?: PlatformDeps['oauthClient'] } = {}): PlatformDeps {
  return {
    fetch: globalThis.fetch,
    signal: new AbortController().signal,
    log: createLogger({ level: 'silent' }),
    now: options.now ?? (() => Date.now()),
    urls: sim.threadsUrls,
    oauthClient: options.oauthClient === undefined ? CLIENT : options.oauthClient,
    crashPoint: (name) => {
      if (name === options.crashAt) throw new Error(`crash at ${name}`);
    },
  };
}

function credentialsOf(user: SimUser, overrides: Partial<Credentials> = {}): Credentials {
  return {
    accessToken: user.accessToken,
    expiresAt: user.expiresAt.toISOString(),
    issuedAt: user.issuedAt.toISOString(),
    scope: user.scope,
    userId: user.userId,
    username: user.username,
    ...overrides,
  };
}

type Input = PublishInput & { checkpoint: Checkpoint; saves: Checkpoint[] };

function makeInput(user: SimUser, media: Media | null, overrides: { caption?: string; checkpoint?: Checkpoint; credentials?: Credentials } = {}): Input {
  const saves: Checkpoint[] = [];
  const input: Input = {
    deliveryId: randomUUID(),
    createdAt: new Date(),
    caption: overrides.caption ?? `A thread ${randomUUID().slice(0, 8)}`,
    rendition: small,
    account: { id: 'acc', handle: user.username, remoteId: user.userId },
    credentials: overrides.credentials ?? credentialsOf(user),
    mediaUrl: media ? media.url : null,
    checkpoint: JSON.parse(JSON.stringify(overrides.checkpoint ?? {})) as Checkpoint,
    saves,
    async saveCheckpoint(patch) {
      const copy = JSON.parse(JSON.stringify(patch)) as Checkpoint;
      saves.push(copy);
      for (const [k, v] of Object.entries(copy)) {
        if (v === null) delete input.checkpoint[k];
        else input.checkpoint[k] = v;
      }
    },
  };
  return input;
}

/** The next attempt of the same delivery, with the checkpoint as saved. */
function resume(previous: Input, user: SimUser, media: Media, credentials?: Credentials): Input {
  const next = makeInput(user, media, { caption: previous.caption, checkpoint: previous.checkpoint, credentials: credentials ?? previous.credentials });
  return Object.assign(next, { deliveryId: previous.deliveryId });
}

async function rejectsWith(promise: Promise<unknown>): Promise<PublishError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof PublishError, `expected a PublishError, got ${String(caught)}`);
  return caught;
}

const adapter = createThreadsAdapter({ requestTimeoutMs: 2_000 });

/** Drives check the way the worker's re-queued jobs do, until the result is not processing. */
async function untilDone(input: Input, deps: PlatformDeps, first: PublishResult, a = adapter): Promise<{ result: PublishResult; checks: number }> {
  let result = first;
  let checks = 0;
  while (result.status === 'processing' && checks < 250) {
    await new Promise((r) => setTimeout(r, 20));
    result = await a.check(result.remoteId, input, deps);
    checks++;
  }
  return { result, checks };
}

// ---------------------------------------------------------------------------------------------
// Publishing

test('container from the link (fetched whole), FINISHED, limit checked, one threads_publish, permalink', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'threads', username: 'reelay_th' });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    assert.equal(first.status, 'processing');
    assert.equal(first.status === 'processing' && first.checkAfterSeconds, 30, 'the docs: wait about 30 s first');
    assert.equal(input.saves[0]?.containerId, first.status === 'processing' ? first.remoteId : '', 'the container id is the first thing saved');
    const { result } = await untilDone(input, deps, first);
    assert.equal(result.status, 'published', JSON.stringify(result));
    assert.equal(sim.posts.length, 1);
    const post = sim.posts[0]!;
    assert.equal(result.status === 'published' && result.url, post.permalink);
    assert.match(post.permalink, /^https:\/\/www\.threads\.com\/@reelay_th\/post\/[\w-]+$/);
    assert.equal(post.text, input.caption);
    const container = sim.containers.get(post.containerId)!;
    assert.equal(container.bytes, small.size);
    assert.equal(container.sha256, small.sha256);
    assert.equal(sim.count('publish'), 1);
    assert.ok(sim.count('quota') >= 1);
    assert.ok(sim.log.every((e) => e.host === 'threads'));
  });
});

test('processing then success: IN_PROGRESS for several reads, each check is one status read', async () => {
  await withSim({ processingPolls: 3 }, async (sim, media) => {
    const user = sim.addUser({ host: 'threads' });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    const before = sim.count('status');
    const { result, checks } = await untilDone(input, deps, first);
    assert.equal(result.status, 'published');
    assert.ok(checks >= 4, `checked ${checks} times`);
    assert.equal(sim.count('status') - before, checks);
    assert.equal(sim.count('publish'), 1);
  });
});

test('text limits: 500 characters pass, 501 are refused before any call; no public link is refused too', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'threads' });
    const long = await rejectsWith(adapter.publish(makeInput(user, media, { caption: 'a'.repeat(501) }), makeDeps(sim)));
    assert.equal(long.code, 'rejected');
    assert.match(long.detail, /501/);
    const none = await rejectsWith(adapter.publish(makeInput(user, null), makeDeps(sim)));
    assert.equal(none.userMessage, MESSAGES.metaNeedsPublicLink('Threads'));
    assert.equal(sim.log.length, 0);
    const ok = await adapter.publish(makeInput(user, media, { caption: 'ü'.repeat(500) }), makeDeps(sim));
    assert.equal(ok.status, 'processing');
    // The simulator enforces the same limit on the wire.
    const raw = await fetch(`${sim.urls.threads}/v1.0/${user.userId}/threads`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ media_type: 'VIDEO', video_url: media.url, text: 'a'.repeat(501), access_token: user.accessToken }).toString(),
    });
    assert.equal(raw.status, 400);
  });
});

test('an emoji-heavy caption is counted as Threads counts it: refused at intake with its numbers, and by the simulator on the wire', async () => {
  // 133 characters to a reader; Threads counts each 🔥 as its 4 UTF-8 bytes: 123 × 4 + 10 = 502.
  const over = '🔥'.repeat(123) + ' new reel!';
  const fits = '🔥'.repeat(122) + ' new reel!';
  assert.equal([...over].length, 133);
  const expected = MESSAGES.captionTooLongEmojiBytes('Threads', 502, 500);
  assert.match(expected, /502 characters on Threads/);

  const [{ testContext }, { ensureWorkspace }, { upsertAccount }, { submitPost }] = await Promise.all([
    import('../../support/context.ts'),
    import('../../../core/workspaces.ts'),
    import('../../../core/accounts.ts'),
    import('../../../core/intake.ts'),
  ]);
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'threads', username: 'emoji_th' });
    const ctx = await testContext({ env: { PUBLIC_BASE_URL: 'https://reelay.example' } });
    try {
      await ensureWorkspace(ctx.pool, 'cli', 'UTC');
      await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'threads', handle: user.username, remoteId: user.userId, credentials: credentialsOf(user), expiresAt: user.expiresAt });
      // The caption is checked before the file is even looked at.
      const request = { workspaceId: 'cli', authorId: 'cli', filePath: join(dir, 'never-read.mp4'), targets: [{ platform: 'threads' as const, handle: null }] };
      await assert.rejects(submitPost(ctx, { ...request, caption: over }), (error: unknown) => error instanceof Error && error.name === 'UserError' && error.message === expected);
      await assert.rejects(submitPost(ctx, { ...request, caption: fits }), (error: unknown) => error instanceof Error && !error.message.includes('caption'), 'within the limit, intake goes on to the file');
    } finally {
      await ctx.dispose();
    }

    // The adapter refuses it before any call, in the same words.
    const refused = await rejectsWith(adapter.publish(makeInput(user, media, { caption: over }), makeDeps(sim)));
    assert.deepEqual([refused.code, refused.retryable, refused.detail], ['rejected', false, expected]);
    assert.equal(sim.log.length, 0);

    // The simulator counts the same way: 502 is refused, 498 goes through and is published as is.
    const raw = await fetch(`${sim.urls.threads}/v1.0/${user.userId}/threads`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ media_type: 'VIDEO', video_url: media.url, text: over, access_token: user.accessToken }).toString(),
    });
    assert.equal(raw.status, 400);
    assert.match(((await raw.json()) as { error: { message: string } }).error.message, /at most 500 characters.*counts 502/);
    const deps = makeDeps(sim);
    const input = makeInput(user, media, { caption: fits });
    const { result } = await untilDone(input, deps, await adapter.publish(input, deps));
    assert.equal(result.status, 'published');
    assert.equal(sim.posts[0]?.text, fits);
  });
});

test('container errors in plain words: INVALID_* is invalid_media; FAILED_DOWNLOADING_VIDEO gets a new container', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'threads' });
    const deps = makeDeps(sim);
    sim.failNextContainer('INVALID_DURATION');
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    await sim.settled();
    const bad = await rejectsWith(untilDone(input, deps, first));
    assert.deepEqual([bad.code, bad.retryable, bad.detail], ['invalid_media', false, MESSAGES.metaVideoProblem('INVALID_DURATION')]);

    media.failNext(1);
    const retry = makeInput(user, media);
    const second = await adapter.publish(retry, deps);
    await sim.settled();
    const { result } = await untilDone(retry, deps, second);
    assert.equal(result.status, 'published');
    assert.equal((retry.checkpoint.abandoned as string[]).length, 1);
    assert.equal(sim.posts.length, 1);
  });
});

test('each error class from the wire: rate limit, transient, expired token, missing permission, publishing limit', async () => {
  await withSim({ threadsPublishLimit: 1 }, async (sim, media) => {
    const user = sim.addUser({ host: 'threads' });
    const deps = makeDeps(sim);
    sim.fault({ route: 'create', kind: 'respond', status: 400, body: { error: { message: 'Application request limit reached', type: 'OAuthException', code: 17, fbtrace_id: 'a' } }, headers: { 'retry-after': '120' } });
    const limited = await rejectsWith(adapter.publish(makeInput(user, media), deps));
    assert.deepEqual([limited.code, limited.retryAfterSeconds], ['rate_limited', 120]);
    sim.fault({ route: 'create', kind: 'respond', status: 400, body: { error: { message: 'Please retry', type: 'OAuthException', code: 100, is_transient: true, fbtrace_id: 'b' } } });
    const transient = await rejectsWith(adapter.publish(makeInput(user, media), deps));
    assert.deepEqual([transient.code, transient.retryable], ['unavailable', true]);
    const unscoped = sim.addUser({ host: 'threads', scope: 'threads_basic' });
    const before = sim.log.length;
    const perm = await rejectsWith(adapter.publish(makeInput(unscoped, media), deps));
    assert.deepEqual([perm.code, perm.retryable, perm.detail], ['auth', false, MESSAGES.metaMissingPermission('Threads')]);
    assert.equal(sim.log.length, before, 'a stored scope list without the permission is refused before any call');
    // Without a stored scope list, the platform's code 10 says the same.
    const wire = await rejectsWith(adapter.publish(makeInput(unscoped, media, { credentials: credentialsOf(unscoped, { scope: '' }) }), deps));
    assert.deepEqual([wire.code, wire.retryable], ['auth', false]);
    const expired = sim.addUser({ host: 'threads', ageMs: 61 * DAY });
    const gone = await rejectsWith(adapter.publish(makeInput(expired, media), deps));
    assert.deepEqual([gone.code, gone.retryable], ['auth', true], 'a forced refresh decides');
    await rejectsWith(adapter.refresh!(credentialsOf(expired), deps, { force: true })).then((e) => assert.deepEqual([e.code, e.retryable], ['auth', false]));

    const one = makeInput(user, media);
    assert.equal((await untilDone(one, deps, await adapter.publish(one, deps))).result.status, 'published');
    const two = makeInput(user, media);
    const capped = await rejectsWith(untilDone(two, deps, await adapter.publish(two, deps)));
    assert.deepEqual([capped.code, capped.retryable], ['rate_limited', true]);
    assert.equal(capped.userMessage, MESSAGES.metaPublishLimit('Threads', '1 hour', 1));
    assert.equal(sim.count('publish'), 1);
  });
});

// ---------------------------------------------------------------------------------------------
// Tokens

test('token expiry mid-flow: a retryable auth error, a forced th_refresh_token, the same container publishes', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'threads' });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    await sim.settled();
    sim.fault({ route: 'status', kind: 'respond', status: 400, body: { error: { message: 'Error validating access token: Session has expired.', type: 'OAuthException', code: 190, error_subcode: 463, fbtrace_id: 'c' } } });
    const expired = await rejectsWith(adapter.check(first.status === 'processing' ? first.remoteId : '', input, deps));
    assert.deepEqual([expired.code, expired.retryable], ['auth', true]);
    const refreshed = await adapter.refresh!(input.credentials, deps, { force: true });
    assert.ok(refreshed);
    assert.equal(sim.count('refresh'), 1);
    const again = resume(input, user, media, refreshed.credentials);
    const { result } = await untilDone(again, deps, await adapter.check('', again, deps));
    assert.equal(result.status, 'published');
    assert.equal(sim.count('create'), 1);
    assert.equal(sim.posts.length, 1);
  });
});

test('refresh: th_refresh_token inside the configurable window, not for a token under 24 h old, never after expiry', async () => {
  const c = clock();
  await withSim({ now: c.now }, async (sim) => {
    const deps = makeDeps(sim, { now: c.now });
    const old = sim.addUser({ host: 'threads', ageMs: 55 * DAY });
    const result = await adapter.refresh!(credentialsOf(old), deps, { force: false });
    assert.ok(result?.expiresAt);
    assert.ok(Math.abs(result.expiresAt.getTime() - (c.now() + 60 * DAY)) < 5000);
    assert.ok(threadsCredentialsSchema.parse(result.credentials).issuedAt);
    const fresh = sim.addUser({ host: 'threads', ageMs: 2 * DAY });
    assert.equal(await adapter.refresh!(credentialsOf(fresh), deps, { force: false }), null);
    assert.ok(await createThreadsAdapter({ refreshWithinDays: 59 }).refresh!(credentialsOf(fresh), deps, { force: false }));
    const young = sim.addUser({ host: 'threads', ageMs: 3600_000, lifetimeMs: 2 * DAY });
    assert.equal(await adapter.refresh!(credentialsOf(young), deps, { force: false }), null);
    const refused = await rejectsWith(adapter.refresh!(credentialsOf(young), deps, { force: true }));
    assert.deepEqual([refused.code, refused.retryable], ['auth', false], 'Threads refuses tokens under 24 h old');
    c.advance(61 * DAY);
    const gone = await rejectsWith(adapter.refresh!(credentialsOf(old), deps, { force: true }));
    assert.deepEqual([gone.code, gone.retryable], ['auth', false]);
  });
});

// ---------------------------------------------------------------------------------------------
// Exactly once

test('crash right after threads_publish returned: the resumed attempt reads PUBLISHED and finds the post; one post', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'threads' });
    const input = makeInput(user, media);
    const crashing = makeDeps(sim, { crashAt: 'threads.after_publish' });
    const first = await adapter.publish(input, crashing);
    await sim.settled();
    await assert.rejects(adapter.check(first.status === 'processing' ? first.remoteId : '', input, crashing), /crash at threads.after_publish/);
    const again = resume(input, user, media);
    const result = await adapter.publish(again, makeDeps(sim));
    assert.equal(result.status, 'published');
    assert.equal(result.status === 'published' && result.url, sim.posts[0]!.permalink);
    assert.equal(sim.count('publish'), 1);
  });
});

test('threads_publish answered 500 after it took effect: the container says PUBLISHED; no second publish', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'threads' });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    await sim.settled();
    sim.fault({ route: 'publish', kind: 'respondAfterCommit', status: 500, body: { error: { message: 'An unknown error occurred', type: 'OAuthException', code: 1, fbtrace_id: 'd' } } });
    const { result } = await untilDone(input, deps, first);
    assert.equal(result.status, 'published');
    assert.equal(sim.count('publish'), 1);
    assert.equal(sim.posts.length, 1);
  });
});

test('a publish call that hangs: timed out, outcome unknown; the retry reads the container first', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'threads' });
    const quick = createThreadsAdapter({ requestTimeoutMs: 1_000 });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    const first = await quick.publish(input, deps);
    await sim.settled();
    sim.fault({ route: 'publish', kind: 'hang' });
    const error = await rejectsWith(untilDone(input, deps, first, quick));
    assert.deepEqual([error.code, error.outcomeUnknown], ['unavailable', true]);
    const again = resume(input, user, media);
    const result = await quick.publish(again, deps);
    assert.equal(result.status, 'published');
    assert.equal(sim.posts.length, 1);
    assert.equal(sim.count('status') >= 2, true, 'the container was read before publishing again');
  });
});

// ---------------------------------------------------------------------------------------------
// Memory

test('a 200 MB file publishes from a process with a 64 MB heap: nothing is buffered', async () => {
  const size = 200 * MiB + 3;
  const path = join(dir, 'big.mp4');
  const sha256 = randomFile(path, size);
  const adapterUrl = new URL('../../../worker/platforms/threads.ts', import.meta.url).href;
  const simUrl = new URL('../../sim/graph.ts', import.meta.url).href;
  const logUrl = new URL('../../../core/log.ts', import.meta.url).href;
  // The simulator and the file server run in the child too: the whole path, fetch included, is
  // under the 64 MB heap.
  const script = `
    import { getHeapStatistics } from 'node:v8';
    const { threads } = await import(${JSON.stringify(adapterUrl)});
    const { startGraphSim, startMediaServer } = await import(${JSON.stringify(simUrl)});
    const { createLogger } = await import(${JSON.stringify(logUrl)});
    const args = JSON.parse(process.argv[1]);
    const sim = await startGraphSim({ processingPolls: 0 });
    const media = await startMediaServer({ path: args.path, size: args.size });
    const user = sim.addUser({ host: 'threads' });
    const baseRss = process.memoryUsage().rss;
    let peakRss = 0, peakHeap = 0;
    const sample = () => { const m = process.memoryUsage(); peakRss = Math.max(peakRss, m.rss); peakHeap = Math.max(peakHeap, m.heapUsed); };
    const timer = setInterval(sample, 25);
    const rendition = { id: 'big', size: args.size, sha256: args.sha256, contentType: 'video/mp4', width: 1080, height: 1920, durationSeconds: 60, open: async () => { throw new Error('not read'); } };
    const checkpoint = {};
    const input = { deliveryId: 'big', createdAt: new Date(), caption: 'big file', rendition, account: { id: 'a', handle: user.username, remoteId: user.userId },
      credentials: { accessToken: user.accessToken, expiresAt: user.expiresAt.toISOString(), scope: user.scope, userId: user.userId },
      mediaUrl: media.url, checkpoint, saveCheckpoint: async (p) => { for (const [k, v] of Object.entries(p)) { if (v === null) delete checkpoint[k]; else checkpoint[k] = v; } } };
    const deps = { fetch, signal: new AbortController().signal, log: createLogger({ level: 'silent' }), now: () => Date.now(), urls: sim.threadsUrls, oauthClient: null, crashPoint: () => {} };
    const started = Date.now();
    let result = await threads.publish(input, deps);
    while (result.status === 'processing') { await new Promise((r) => setTimeout(r, 50)); result = await threads.check(result.remoteId, input, deps); }
    clearInterval(timer); sample();
    const container = [...sim.containers.values()][0];
    console.log(JSON.stringify({ result, baseRss, peakRss, peakHeap, heapLimit: getHeapStatistics().heap_size_limit, ms: Date.now() - started, bytes: container.bytes, sha256: container.sha256, posts: sim.posts.length }));
    await sim.close(); await media.close();
  `;
  const child = spawn(process.execPath, ['--max-old-space-size=64', '--input-type=module', '-e', script, JSON.stringify({ size, sha256, path })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, err.slice(-3000));
  const report = JSON.parse(out.trim().split('\n').at(-1)!) as { result: PublishResult; baseRss: number; peakRss: number; peakHeap: number; heapLimit: number; ms: number; bytes: number; sha256: string; posts: number };
  const growth = report.peakRss - report.baseRss;
  console.log(
    `threads 200 MB publish: ${report.ms} ms; RSS ${(report.baseRss / MiB).toFixed(1)} MiB after loading, peak ${(report.peakRss / MiB).toFixed(1)} MiB ` +
      `(+${(growth / MiB).toFixed(1)} MiB); peak heap ${(report.peakHeap / MiB).toFixed(1)} MiB of ${(report.heapLimit / MiB).toFixed(0)} MiB`,
  );
  assert.equal(report.result.status, 'published');
  assert.ok(report.heapLimit < 128 * MiB, `the child really ran with a small heap (${report.heapLimit})`);
  assert.ok(growth < 64 * MiB, `memory grew by ${(growth / MiB).toFixed(1)} MiB for a 200 MiB file`);
  assert.equal(report.bytes, size);
  assert.equal(report.sha256, sha256);
  assert.equal(report.posts, 1);
});

test('validate: GET /v1.0/me?fields=id; revoked is re-linking, expired is a retryable auth error, a forged token is refused', async () => {
  await withSim({}, async (sim) => {
    assert.ok(adapter.validate);
    const deps = makeDeps(sim);
    const user = sim.addUser({ host: 'threads' });
    await adapter.validate(credentialsOf(user), deps);
    const read = sim.log.at(-1)!;
    assert.deepEqual([read.host, read.route, read.method, read.path, read.status], ['threads', 'user', 'GET', '/v1.0/me', 200]);

    const revoked = sim.addUser({ host: 'threads' });
    sim.revoke(revoked.accessToken);
    let error = await rejectsWith(adapter.validate(credentialsOf(revoked), deps));
    assert.deepEqual([error.code, error.retryable, error.status], ['auth', false, 400]);
    const expired = sim.addUser({ host: 'threads', ageMs: 61 * DAY });
    error = await rejectsWith(adapter.validate(credentialsOf(expired), deps));
    assert.deepEqual([error.code, error.retryable], ['auth', true]);
    error = await rejectsWith(adapter.validate(credentialsOf(user, { accessToken: sim.addUser({ host: 'ig' }).accessToken }), deps));
    assert.equal(error.code, 'auth', 'an Instagram token is not a Threads token');
    assert.equal(sim.count('user', 'threads'), 4);

    const response = await fetch(`${sim.urls.threads}/v1.0/me?fields=id,user_id&access_token=${user.accessToken}`);
    assert.equal(response.status, 400, 'a field the Threads user node lacks');
  });
});
