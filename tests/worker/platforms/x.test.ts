/**
 * The X adapter against the protocol simulator in tests/sim/x.ts (which enforces the documented
 * protocol and injects faults), plus one run through the worker and a memory test that publishes a
 * file larger than the heap limit from a child process.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MESSAGES, PublishError } from '../../../core/errors.ts';
import { createLogger } from '../../../core/log.ts';
import type { Checkpoint, Credentials, PlatformAdapter, PlatformDeps, PublishInput, PublishResult, RenditionHandle } from '../../../core/platforms.ts';
import { createXAdapter, mapXError, x, xCredentialsSchema, xTextProblem, type XOptions } from '../../../worker/platforms/x.ts';
import { startXSim, type SimUser, type XSim, type XSimOptions } from '../../sim/x.ts';
import { clock, randomFile } from '../../support/files.ts';

const MiB = 1024 * 1024;
const CLIENT = { clientId: 'reelay-client', clientSecret: 'reelay-secret' };
let dir: string;
/** 9 MiB + 123 bytes: three segments of 4 MiB. */
let small: RenditionHandle;

function fileRendition(path: string, size: number, sha256: string, extra: Partial<RenditionHandle> = {}): RenditionHandle {
  return {
    id: `rendition-${randomUUID().slice(0, 8)}`,
    size,
    sha256,
    contentType: 'video/mp4',
    width: 720,
    height: 1280,
    durationSeconds: 20,
    open: async (range) => createReadStream(path, range ? { start: range.start, end: range.end } : {}),
    ...extra,
  };
}


before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-x-test-'));
  const path = join(dir, 'small.bin');
  const size = 9 * MiB + 123;
  small = fileRendition(path, size, randomFile(path, size));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Harness


async function withSim(options: XSimOptions, fn: (sim: XSim) => Promise<void>): Promise<void> {
  const sim = await startXSim({ client: { clientId: CLIENT.clientId, clientSecret: CLIENT.clientSecret }, ...options });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

type Deps = PlatformDeps & { crashPoints: string[] };

function makeDeps(sim: XSim, options: { now?: () => number; crashAt?: string; oauthClient?: PlatformDeps['oauthClient'] } = {}): Deps {
  const crashPoints: string[] = [];
  return {
    fetch: globalThis.fetch,
    signal: new AbortController().signal,
    log: createLogger({ level: 'silent' }),
    now: options.now ?? (() => Date.now()),
    urls: { api: sim.url },
    oauthClient: options.oauthClient === undefined ? CLIENT : options.oauthClient,
    crashPoint: (name) => {
      crashPoints.push(name);
      if (name === options.crashAt) throw new Error(`crash at ${name}`);
    },
    crashPoints,
  };
}

function credentialsOf(user: SimUser, overrides: Partial<Credentials> = {}): Credentials {
  return { accessToken: user.accessToken, refreshToken: user.refreshToken, expiresAt: user.expiresAt.toISOString(), scope: user.scope, ...overrides };
}

type Input = PublishInput & { checkpoint: Checkpoint; saves: Checkpoint[] };

function makeInput(user: Pick<SimUser, 'userId' | 'username'>, overrides: { caption?: string; checkpoint?: Checkpoint; credentials?: Credentials; rendition?: RenditionHandle; remoteId?: string | null } = {}): Input {
  const saves: Checkpoint[] = [];
  const input: Input = {
    deliveryId: randomUUID(),
    createdAt: new Date(),
    mediaUrl: null,
    caption: overrides.caption ?? `A test clip ${randomUUID().slice(0, 8)}`,
    rendition: overrides.rendition ?? small,
    account: { id: 'acc-1', handle: user.username, remoteId: overrides.remoteId === undefined ? user.userId : overrides.remoteId },
    credentials: overrides.credentials ?? ('accessToken' in user ? credentialsOf(user as SimUser) : {}),
    checkpoint: JSON.parse(JSON.stringify(overrides.checkpoint ?? {})) as Checkpoint,
    saves,
    async saveCheckpoint(patch: Checkpoint) {
      // Stored as the database stores it: JSON, merged at the top level.
      const copy = JSON.parse(JSON.stringify(patch)) as Checkpoint;
      saves.push(copy);
      Object.assign(input.checkpoint, copy);
    },
  };
  return input;
}

/** The next attempt of the same delivery: same checkpoint (as saved), possibly new credentials. */
function resume(previous: Input, credentials?: Credentials): Input {
  const next = makeInput({ userId: previous.account.remoteId ?? '', username: previous.account.handle }, {
    caption: previous.caption,
    checkpoint: previous.checkpoint,
    credentials: credentials ?? previous.credentials,
    rendition: previous.rendition,
    remoteId: previous.account.remoteId,
  });
  return Object.assign(next, { deliveryId: previous.deliveryId, createdAt: previous.createdAt });
}

async function rejectsWith(promise: Promise<unknown>, check: (error: PublishError) => void): Promise<PublishError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof PublishError, `expected a PublishError, got ${String(caught)}`);
  check(caught);
  return caught;
}

const fast = (extra: XOptions = {}) => createXAdapter({ requestTimeoutMs: 2_000, ...extra });

function postId(result: PublishResult): string {
  assert.equal(result.status, 'published', JSON.stringify(result));
  return result.status === 'published' ? result.remoteId : '';
}

// ---------------------------------------------------------------------------------------------
// Publishing

test('publish streams three segments in order, creates one post with the media, and checkpoints ids first', async () => {
  await withSim({ processing: 'none' }, async (sim) => {
    const user = sim.addUser({ username: 'reelay_test' });
    const deps = makeDeps(sim);
    const input = makeInput(user, { caption: 'Hello 👋 #reelay https://example.com/a?b=1' });
    const result = await x.publish(input, deps);

    const id = postId(result);
    assert.equal(result.status === 'published' && result.url, `https://x.com/reelay_test/status/${id}`);
    assert.deepEqual(deps.crashPoints, ['x.after_upload', 'x.after_create']);
    assert.deepEqual(
      sim.requests.map((r) => `${r.route}:${r.status}${r.segmentIndex === undefined ? '' : `#${r.segmentIndex}`}`),
      ['initialize:200', 'append:200#0', 'append:200#1', 'append:200#2', 'finalize:200', 'create:201'],
    );

    const [post] = sim.postsBy(user.userId);
    assert.equal(sim.posts.length, 1);
    assert.equal(post?.id, id);
    assert.equal(post?.text, input.caption);
    const media = sim.allMedia[0]!;
    assert.deepEqual(post?.mediaKeys, [media.key]);
    assert.equal(media.category, 'tweet_video');
    assert.deepEqual(media.segments, [4 * MiB, 4 * MiB, MiB + 123]);
    assert.equal(media.sha256, small.sha256, 'the bytes X received are the rendition');

    // The media id is saved before the first append, and the create mark before the create call.
    const first = input.saves[0]!.media as { id: string; segmentsDone: number };
    assert.equal(first.id, media.id);
    assert.equal(first.segmentsDone, 0);
    const sentAt = input.saves.findIndex((s) => s.createSent && typeof s.createSent === 'object');
    const tweetAt = input.saves.findIndex((s) => s.tweetId === id);
    assert.ok(sentAt >= 0 && tweetAt > sentAt);
    assert.equal(input.checkpoint.createSent, null);

    // Asking again with the checkpoint answers from it, without a request.
    const before = sim.requests.length;
    assert.deepEqual(await x.publish(resume(input), makeDeps(sim)), result);
    assert.equal(sim.requests.length, before);
  });
});

test('processing: publish returns processing with the media id; check polls STATUS once per call, then posts', async () => {
  await withSim({ pendingPolls: 1, inProgressPolls: 1, checkAfterSecs: 3 }, async (sim) => {
    const user = sim.addUser();
    const input = makeInput(user);
    const first = await x.publish(input, makeDeps(sim));
    const mediaId = sim.allMedia[0]!.id;
    assert.deepEqual(first, { status: 'processing', remoteId: mediaId, checkAfterSeconds: 3 });
    assert.equal(sim.count('status'), 0, 'no polling inside publish');

    const states: string[] = [];
    let result: PublishResult = first;
    for (let i = 0; i < 5 && result.status === 'processing'; i++) {
      const before = sim.count('status');
      result = await x.check(mediaId, input, makeDeps(sim));
      assert.equal(sim.count('status') - before, 1, 'one STATUS call per check');
      states.push(result.status);
    }
    assert.deepEqual(states, ['processing', 'processing', 'published']);
    assert.equal(sim.count('initialize'), 1);
    assert.equal(sim.posts.length, 1);
    assert.equal(postId(result), sim.posts[0]!.id);
  });
});

test('STATUS path is configurable: /2/media/upload/{id} when the adapter and the API agree, 404 when not', async () => {
  await withSim({ statusPaths: ['path'], pendingPolls: 0, inProgressPolls: 0 }, async (sim) => {
    const user = sim.addUser();
    const input = makeInput(user);
    const adapter = createXAdapter({ statusPath: 'path' });
    assert.equal((await adapter.publish(input, makeDeps(sim))).status, 'processing');
    assert.equal((await adapter.check('', input, makeDeps(sim))).status, 'published');
    assert.ok(sim.requests.some((r) => r.route === 'status' && r.path === `/2/media/upload/${sim.allMedia[0]!.id}`));

    const other = makeInput(user);
    assert.equal((await x.publish(other, makeDeps(sim))).status, 'processing');
    await rejectsWith(x.check('', other, makeDeps(sim)), (error) => {
      assert.equal(error.status, 404);
      assert.equal(error.code, 'unknown');
    });
    assert.equal(sim.allMedia.length, 2, 'a wrong STATUS path does not cause another upload');
  });
});

test('processing that fails is invalid_media in plain words; nothing is posted', async () => {
  await withSim({ pendingPolls: 0, inProgressPolls: 0 }, async (sim) => {
    sim.failNextProcessing();
    const user = sim.addUser();
    const input = makeInput(user);
    assert.equal((await x.publish(input, makeDeps(sim))).status, 'processing');
    await rejectsWith(x.check('', input, makeDeps(sim)), (error) => {
      assert.equal(error.code, 'invalid_media');
      assert.equal(error.retryable, false);
      assert.equal(error.detail, MESSAGES.xProcessingFailed('InvalidMedia: Invalid or Unsupported media, Reason: UnsupportedMedia.'));
    });
    assert.equal(input.checkpoint.media, null);
    assert.equal(sim.posts.length, 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Captions

test('caption limits: 280 weighted characters with links as 23 and emoji as 2, refused before any upload', async () => {
  const url = `https://example.com/${'a'.repeat(80)}`;
  const cases: Array<[string, boolean]> = [
    ['x'.repeat(280), true],
    ['x'.repeat(281), false],
    [`${'x'.repeat(256)} ${url}`, true],
    [`${'x'.repeat(257)} ${url}`, false],
    ['😀'.repeat(140), true],
    ['😀'.repeat(141), false],
    ['日本'.repeat(70), true],
    ['日本'.repeat(70) + '語', false],
    ['hello\uFEFFworld', false],
    ['', true],
  ];
  for (const [text, ok] of cases) assert.equal(xTextProblem(text) === null, ok, `${text.slice(0, 20)}… (${text.length})`);
  assert.equal(xTextProblem('x'.repeat(281))?.detail, MESSAGES.captionTooLongWeighted('X', 281, 280));
  assert.equal(xTextProblem('a\uFEFFb')?.detail, MESSAGES.xInvalidCharacters());

  await withSim({ processing: 'none' }, async (sim) => {
    const user = sim.addUser();
    for (const caption of ['x'.repeat(281), `${'x'.repeat(257)} ${url}`, 'a\uFFFFb']) {
      const input = makeInput(user, { caption });
      await rejectsWith(x.publish(input, makeDeps(sim)), (error) => {
        assert.equal(error.code, 'rejected');
        assert.equal(error.retryable, false);
      });
      assert.equal(input.saves.length, 0);
    }
    assert.equal(sim.requests.length, 0, 'nothing reached X');

    // The limits are X's own: the simulator agrees with what the adapter lets through.
    for (const caption of ['😀'.repeat(140), `${'y'.repeat(256)} ${url}`]) assert.equal((await x.publish(makeInput(user, { caption }), makeDeps(sim))).status, 'published');
    // A post may be the video alone.
    await x.publish(makeInput(user, { caption: '' }), makeDeps(sim));
    assert.equal(sim.posts.at(-1)?.text, '');
    assert.equal(sim.posts.length, 3);
  });
});

// ---------------------------------------------------------------------------------------------
// Errors

test('error mapping follows the reference', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  const h = (init: Record<string, string> = {}) => new Headers(init);
  const problemBody = (status: number, title: string, detail: string, type = 'about:blank') => ({ title, detail, type, status });
  const map = (status: number, body: unknown, headers = h()) => mapXError(status, body, headers, now);

  const expired = map(401, problemBody(401, 'Unauthorized', 'Unauthorized'));
  assert.deepEqual([expired.code, expired.retryable], ['auth', true]);
  const spent = map(400, { error: 'invalid_request', error_description: 'Value passed for the token was invalid.' });
  assert.deepEqual([spent.code, spent.retryable], ['auth', false]);
  assert.deepEqual([map(400, { error: 'invalid_grant' }).code, map(400, { error: 'invalid_grant' }).retryable], ['auth', false]);
  const dup = map(403, problemBody(403, 'Forbidden', 'You are not allowed to create a Tweet with duplicate content.'));
  assert.deepEqual([dup.code, dup.retryable, dup.detail], ['rejected', false, MESSAGES.xDuplicate()]);
  const scopes = map(403, problemBody(403, 'Forbidden', 'Missing required OAuth 2.0 scopes: media.write'));
  assert.deepEqual([scopes.code, scopes.retryable], ['auth', false]);
  const project = map(403, { title: 'Client Forbidden', detail: 'When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project.', type: 'https://api.twitter.com/2/problems/client-forbidden', reason: 'client-not-enrolled' });
  assert.deepEqual([project.code, project.detail], ['rejected', MESSAGES.xAppNotAllowed()]);
  const limited = map(429, problemBody(429, 'Too Many Requests', 'Too Many Requests'), h({ 'x-rate-limit-reset': String(now / 1000 + 300) }));
  assert.deepEqual([limited.code, limited.retryable, limited.retryAfterSeconds], ['rate_limited', true, 300]);
  const capped = map(429, problemBody(429, 'UsageCapExceeded', 'Usage cap exceeded: Monthly product cap', 'https://api.twitter.com/2/problems/usage-capped'));
  assert.deepEqual([capped.code, capped.retryable, capped.detail], ['rejected', false, MESSAGES.xAppLimit()]);
  assert.deepEqual([map(402, problemBody(402, 'CreditsDepleted', 'No credits')).code, map(402, {}).retryable], ['rejected', false]);
  const mediaIds = map(400, { errors: [{ parameters: { 'media.media_ids': ['1'] }, message: 'Your media IDs are invalid.' }], title: 'Invalid Request', detail: 'One or more parameters to your request was invalid.', type: 'https://api.twitter.com/2/problems/invalid-request' });
  assert.deepEqual([mediaIds.code, mediaIds.retryable], ['invalid_media', false]);
  assert.match(mediaIds.detail, /Your media IDs are invalid/);
  const badText = map(400, { errors: [{ parameters: { text: ['…'] }, message: 'Tweet text is too long' }], title: 'Invalid Request', detail: 'One or more parameters to your request was invalid.' });
  assert.deepEqual([badText.code, badText.retryable], ['rejected', false]);
  assert.deepEqual([map(413, 'too big').code, map(413, 'too big').retryable], ['invalid_media', false]);
  assert.deepEqual([map(503, problemBody(503, 'Service Unavailable', 'Service Unavailable')).code, map(503, undefined).retryable], ['unavailable', true]);
  assert.deepEqual([map(500, { error: 'server_error' }).code, map(500, { error: 'server_error' }).retryable], ['unavailable', true]);
  assert.equal(map(404, problemBody(404, 'Not Found Error', 'nope')).code, 'unknown');
});

test('each error class from the wire: 429 with reset, usage cap, 5xx, duplicate text, missing scopes', async () => {
  await withSim({ processing: 'none' }, async (sim) => {
    const user = sim.addUser();

    sim.fault({ route: 'initialize', kind: 'rateLimit', retryAfterSeconds: 120 });
    await rejectsWith(x.publish(makeInput(user), makeDeps(sim)), (error) => {
      assert.equal(error.code, 'rate_limited');
      assert.ok(error.retryAfterSeconds !== undefined && error.retryAfterSeconds >= 119 && error.retryAfterSeconds <= 121, String(error.retryAfterSeconds));
    });

    sim.fault({ route: 'append', kind: 'usageCap' });
    await rejectsWith(x.publish(makeInput(user), makeDeps(sim)), (error) => {
      assert.deepEqual([error.code, error.retryable, error.detail], ['rejected', false, MESSAGES.xAppLimit()]);
    });

    // A 503 on an upload call is a plain retry (it creates nothing anyone sees); the retry resumes.
    sim.fault({ route: 'finalize', kind: 'respond', status: 503 });
    const input = makeInput(user, { caption: 'same text twice' });
    await rejectsWith(x.publish(input, makeDeps(sim)), (error) => {
      assert.deepEqual([error.code, error.retryable, error.outcomeUnknown], ['unavailable', true, false]);
    });
    const appends = sim.count('append');
    assert.equal((await x.publish(resume(input), makeDeps(sim))).status, 'published');
    assert.equal(sim.count('append'), appends, 'the resumed attempt did not upload again');

    await rejectsWith(x.publish(makeInput(user, { caption: 'same text twice' }), makeDeps(sim)), (error) => {
      assert.deepEqual([error.code, error.retryable, error.detail], ['rejected', false, MESSAGES.xDuplicate()]);
    });

    // Scopes: refused before any request when the grant says so, and by X when the token lacks one.
    const requests = sim.requests.length;
    await rejectsWith(x.publish(makeInput(user, { credentials: credentialsOf(user, { scope: 'tweet.read tweet.write users.read offline.access' }) }), makeDeps(sim)), (error) => {
      assert.deepEqual([error.code, error.retryable], ['auth', false]);
      assert.equal(error.detail, MESSAGES.xMissingScopes('media.write'));
    });
    assert.equal(sim.requests.length, requests);
    const narrow = sim.addUser({ scopes: ['tweet.read', 'tweet.write', 'users.read', 'offline.access'] });
    await rejectsWith(x.publish(makeInput(narrow, { credentials: credentialsOf(narrow, { scope: user.scope }) }), makeDeps(sim)), (error) => {
      assert.deepEqual([error.code, error.retryable, error.status], ['auth', false, 403]);
    });
    assert.equal(sim.posts.length, 1);
  });
});

test('the per-user limit on POST /2/tweets: 429 until x-rate-limit-reset, then the same media posts once', async () => {
  const c = clock();
  await withSim({ now: c.now, processing: 'none', rateLimits: { create: { limit: 1, windowSeconds: 900 } } }, async (sim) => {
    const user = sim.addUser();
    await x.publish(makeInput(user), makeDeps(sim, { now: c.now }));
    const input = makeInput(user);
    await rejectsWith(x.publish(input, makeDeps(sim, { now: c.now })), (error) => {
      assert.deepEqual([error.code, error.retryable, error.outcomeUnknown], ['rate_limited', true, false]);
      assert.ok(error.retryAfterSeconds !== undefined && error.retryAfterSeconds >= 899 && error.retryAfterSeconds <= 901, String(error.retryAfterSeconds));
    });
    assert.equal(input.checkpoint.createSent, null, 'a refused create call leaves nothing to look for');
    c.advance(901_000);
    assert.equal((await x.publish(resume(input), makeDeps(sim, { now: c.now }))).status, 'published');
    assert.equal(sim.count('timeline'), 0);
    assert.equal(sim.count('initialize'), 2);
    assert.equal(sim.posts.length, 2);
  });
});

test('a hung upload call times out and is retried from the checkpoint', async () => {
  await withSim({ processing: 'none' }, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'append', kind: 'hang', skip: 1 });
    const adapter = fast({ segmentTimeoutMs: 500 });
    const input = makeInput(user);
    await rejectsWith(adapter.publish(input, makeDeps(sim)), (error) => {
      assert.equal(error.code, 'unavailable');
      assert.match(error.detail, /timed out/);
    });
    assert.equal((input.checkpoint.media as { segmentsDone: number }).segmentsDone, 1);
    assert.equal(postId(await adapter.publish(resume(input), makeDeps(sim))), sim.posts[0]!.id);
    assert.equal(sim.count('initialize'), 1);
    assert.deepEqual(sim.allMedia[0]!.segments.length, 3);
    assert.equal(sim.allMedia[0]!.sha256, small.sha256);
  });
});

test('an APPEND whose answer was lost after X stored it is sent again under the same index and replaces it', async () => {
  await withSim({ processing: 'none' }, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'append', kind: 'resetAfterCommit', skip: 1 });
    const input = makeInput(user);
    await rejectsWith(x.publish(input, makeDeps(sim)), (error) => assert.deepEqual([error.code, error.outcomeUnknown], ['unavailable', false]));
    assert.equal(sim.allMedia[0]!.segments.length, 2, 'X kept the segment');
    assert.equal((input.checkpoint.media as { segmentsDone: number }).segmentsDone, 1, 'but the checkpoint could not know');
    assert.equal((await x.publish(resume(input), makeDeps(sim))).status, 'published');
    assert.deepEqual(sim.requests.filter((r) => r.route === 'append').map((r) => r.segmentIndex), [0, 1, 1, 2]);
    assert.equal(sim.allMedia[0]!.sha256, small.sha256);
  });
});

test('the simulator refuses what X refuses', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    const bearer = { authorization: `Bearer ${user.accessToken}` };
    const call = async (method: string, path: string, init: { headers?: Record<string, string>; body?: string | Uint8Array } = {}) => {
      const response = await fetch(`${sim.url}${path}`, { method, headers: init.headers ?? {}, ...(init.body === undefined ? {} : { body: init.body }) });
      const text = await response.text();
      return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    };
    const jsonHeaders = { ...bearer, 'content-type': 'application/json' };
    const init = (body: unknown) => call('POST', '/2/media/upload/initialize', { headers: jsonHeaders, body: JSON.stringify(body) });
    const multipart = (index: string, bytes: Buffer) => {
      const b = 'sim-boundary';
      const body = Buffer.concat([
        Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="segment_index"\r\n\r\n${index}\r\n--${b}\r\nContent-Disposition: form-data; name="media"; filename="x"\r\nContent-Type: application/octet-stream\r\n\r\n`),
        bytes,
        Buffer.from(`\r\n--${b}--\r\n`),
      ]);
      return { headers: { ...bearer, 'content-type': `multipart/form-data; boundary=${b}` }, body };
    };

    // Authentication and scopes.
    assert.equal((await call('POST', '/2/media/upload/initialize', { headers: { 'content-type': 'application/json' }, body: '{}' })).status, 401);
    assert.deepEqual((await call('GET', '/2/users/me', { headers: { authorization: 'Bearer nope' } })).body, { title: 'Unauthorized', detail: 'Unauthorized', type: 'about:blank', status: 401 });
    const readOnly = sim.addUser({ scopes: ['tweet.read', 'users.read'] });
    assert.equal((await call('POST', '/2/tweets', { headers: { authorization: `Bearer ${readOnly.accessToken}`, 'content-type': 'application/json' }, body: '{"text":"hi"}' })).status, 403);

    // Initialize: JSON only, a known category, 512 MB at most; the legacy command form is gone here.
    assert.equal((await call('POST', '/2/media/upload/initialize', { headers: { ...bearer, 'content-type': 'application/x-www-form-urlencoded' }, body: 'media_type=video/mp4' })).status, 400);
    assert.equal((await init({ media_type: 'video/mp4', total_bytes: 10 })).status, 400, 'media_category is required');
    assert.equal((await init({ media_type: 'video/mp4', total_bytes: 10, media_category: 'tweet_image' })).status, 400);
    assert.equal((await init({ media_type: 'video/mp4', total_bytes: 512 * MiB + 1, media_category: 'tweet_video' })).status, 400);
    assert.equal((await call('POST', '/2/media/upload', { headers: { ...bearer, 'content-type': 'application/x-www-form-urlencoded' }, body: 'command=INIT' })).status, 404);
    const created = await init({ media_type: 'video/mp4', total_bytes: 10, media_category: 'tweet_video' });
    assert.equal(created.status, 200);
    const id = (created.body.data as { id: string }).id;

    // STATUS before finalize, appends out of order, oversized, empty, after the total; finalize short.
    assert.equal((await call('GET', `/2/media/upload?command=STATUS&media_id=${id}`, { headers: bearer })).status, 400);
    assert.equal((await call('POST', `/2/media/upload/${id}/append`, multipart('1', Buffer.alloc(4)))).status, 400, 'out of order');
    assert.equal((await call('POST', `/2/media/upload/${id}/append`, multipart('0', Buffer.alloc(0)))).status, 400, 'empty');
    assert.equal((await call('POST', `/2/media/upload/${id}/append`, multipart('0', Buffer.alloc(11)))).status, 400, 'more than total_bytes');
    assert.equal((await call('POST', `/2/media/upload/${id}/append`, { headers: jsonHeaders, body: JSON.stringify({ segment_index: 0, media: Buffer.alloc(4, 1).toString('base64') }) })).status, 200, 'JSON base64 is allowed');
    assert.equal((await call('POST', `/2/media/upload/${id}/append`, { headers: { ...bearer, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(6) })).status, 400);
    assert.equal((await call('POST', `/2/media/upload/${id}/finalize`, { headers: bearer })).status, 400, 'bytes missing');
    assert.equal((await call('POST', `/2/tweets`, { headers: jsonHeaders, body: JSON.stringify({ text: 'early', media: { media_ids: [id] } }) })).status, 400, 'not processed');
    assert.equal((await call('POST', `/2/media/upload/${id}/append`, multipart('1', Buffer.alloc(6, 2)))).status, 200);
    const finalized = await call('POST', `/2/media/upload/${id}/finalize`, { headers: bearer });
    assert.deepEqual((finalized.body.data as { processing_info: unknown }).processing_info, { state: 'pending', check_after_secs: 1 });
    assert.equal((await call('POST', `/2/media/upload/${id}/finalize`, { headers: bearer })).status, 400, 'finalize only once');
    assert.equal((await call('POST', `/2/media/upload/${id}/append`, multipart('2', Buffer.alloc(1)))).status, 400, 'no append after finalize');
    assert.equal(sim.media(id)!.sha256, createHash('sha256').update(Buffer.alloc(4, 1)).update(Buffer.alloc(6, 2)).digest('hex'));

    // A segment over 5 MiB.
    const big = await init({ media_type: 'video/mp4', total_bytes: 6 * MiB, media_category: 'tweet_video' });
    const bigId = (big.body.data as { id: string }).id;
    assert.equal((await call('POST', `/2/media/upload/${bigId}/append`, multipart('0', Buffer.alloc(5 * MiB + 1)))).status, 400);

    // Posts and the timeline.
    assert.equal((await call('POST', '/2/tweets', { headers: { ...bearer, 'content-type': 'text/plain' }, body: '{"text":"hi"}' })).status, 400);
    assert.equal((await call('POST', '/2/tweets', { headers: jsonHeaders, body: JSON.stringify({ text: 'x'.repeat(281) }) })).status, 400);
    assert.equal((await call('POST', '/2/tweets', { headers: jsonHeaders, body: JSON.stringify({ text: 'hi', media: { media_ids: [123] } }) })).status, 400);
    assert.equal((await call('POST', '/2/tweets', { headers: jsonHeaders, body: JSON.stringify({ text: 'hi' }) })).status, 201);
    assert.equal((await call('POST', '/2/tweets', { headers: jsonHeaders, body: JSON.stringify({ text: 'hi' }) })).status, 403, 'duplicate');
    const timeline = (query: string) => call('GET', `/2/users/${user.userId}/tweets?${query}`, { headers: bearer });
    assert.equal((await timeline('max_results=101')).status, 400);
    assert.equal((await timeline('start_time=2026-01-01')).status, 400);
    assert.equal((await timeline('expansions=everything')).status, 400);
    assert.equal(((await timeline('max_results=5')).body.meta as { result_count: number }).result_count, 1);

    // OAuth: the confidential client must use Basic auth, and a refresh token is spent once.
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const basic = `Basic ${Buffer.from(`${CLIENT.clientId}:${CLIENT.clientSecret}`).toString('base64')}`;
    assert.equal((await call('POST', '/2/oauth2/token', { headers: form, body: `grant_type=refresh_token&refresh_token=${user.refreshToken}&client_id=${CLIENT.clientId}` })).status, 401);
    assert.equal((await call('POST', '/2/oauth2/token', { headers: { ...form, authorization: basic }, body: `grant_type=refresh_token&refresh_token=${user.refreshToken}` })).status, 200);
    assert.deepEqual((await call('POST', '/2/oauth2/token', { headers: { ...form, authorization: basic }, body: `grant_type=refresh_token&refresh_token=${user.refreshToken}` })).body, {
      error: 'invalid_request',
      error_description: 'Value passed for the token was invalid.',
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Tokens

test('token expiry mid-upload: a retryable auth error, a forced refresh rotates the tokens, the upload resumes', async () => {
  await withSim({ processing: 'none' }, async (sim) => {
    const user = sim.addUser();
    const adapter = fast({ segmentBytes: MiB });
    // The token expires as the fourth segment arrives.
    sim.fault({ route: 'append', kind: 'expireToken', skip: 3 });
    const input = makeInput(user);
    await rejectsWith(adapter.publish(input, makeDeps(sim)), (error) => {
      assert.deepEqual([error.code, error.retryable, error.status], ['auth', true, 401]);
    });
    assert.equal((input.checkpoint.media as { segmentsDone: number }).segmentsDone, 3);

    // What the worker does next: a forced refresh, then the same publish with the same checkpoint.
    const refreshed = await adapter.refresh!(input.credentials, makeDeps(sim), { force: true });
    assert.ok(refreshed);
    const creds = xCredentialsSchema.parse(refreshed.credentials);
    assert.notEqual(creds.accessToken, user.accessToken);
    assert.notEqual(creds.refreshToken, user.refreshToken);
    const result = await adapter.publish(resume(input, refreshed.credentials), makeDeps(sim));
    assert.equal(postId(result), sim.posts[0]!.id);

    const appends = sim.requests.filter((r) => r.route === 'append');
    // The refused request is not read (auth comes first), so it has no segment index.
    assert.deepEqual(appends.map((r) => `${r.segmentIndex ?? '-'}:${r.status}`), ['0:200', '1:200', '2:200', '-:401', '3:200', '4:200', '5:200', '6:200', '7:200', '8:200', '9:200']);
    assert.equal(sim.count('initialize'), 1);
    assert.equal(sim.allMedia[0]!.sha256, small.sha256);
  });
});

test('refresh: only near expiry or when forced; confidential and public clients; a spent token needs re-auth', async () => {
  const c = clock();
  await withSim({ now: c.now }, async (sim) => {
    const user = sim.addUser();
    const deps = makeDeps(sim, { now: c.now });
    assert.equal(await x.refresh!(credentialsOf(user), deps, { force: false }), null);
    assert.equal(sim.count('token'), 0);

    // Four minutes left: refresh, with HTTP Basic for the confidential client.
    const nearly = credentialsOf(user, { expiresAt: new Date(c.now() + 4 * 60_000).toISOString(), userId: user.userId });
    const refreshed = await x.refresh!(nearly, deps, { force: false });
    assert.ok(refreshed);
    const creds = xCredentialsSchema.parse(refreshed.credentials);
    assert.equal(creds.userId, user.userId, 'fields the token endpoint does not know are kept');
    assert.equal(refreshed.expiresAt?.getTime(), Date.parse(creds.expiresAt));
    assert.ok(Math.abs(Date.parse(creds.expiresAt) - (c.now() + 7200_000)) < 5_000, 'expiry from expires_in');
    assert.equal(creds.scope, user.scope);

    // The old refresh token was single-use.
    await rejectsWith(x.refresh!(nearly, deps, { force: true }), (error) => {
      assert.deepEqual([error.code, error.retryable, error.status], ['auth', false, 400]);
      assert.match(error.detail, /Value passed for the token was invalid/);
    });
    // The new one works, and rotates again.
    const again = await x.refresh!(refreshed.credentials, deps, { force: true });
    assert.notEqual(xCredentialsSchema.parse(again!.credentials).refreshToken, creds.refreshToken);

    // Wrong client secret: refused, not retried.
    await rejectsWith(x.refresh!(again!.credentials, makeDeps(sim, { oauthClient: { clientId: CLIENT.clientId, clientSecret: 'wrong' } }), { force: true }), (error) => {
      assert.deepEqual([error.code, error.retryable, error.status], ['auth', false, 401]);
    });
    // No client configured: cannot refresh, and says so without blaming the account.
    await rejectsWith(x.refresh!(again!.credentials, makeDeps(sim, { oauthClient: null }), { force: true }), (error) => {
      assert.deepEqual([error.code, error.retryable], ['unknown', false]);
    });
  });

  await withSim({ client: { clientId: 'public-client', clientSecret: null } }, async (sim) => {
    const user = sim.addUser();
    const refreshed = await x.refresh!(credentialsOf(user), makeDeps(sim, { oauthClient: { clientId: 'public-client', clientSecret: '' } }), { force: true });
    assert.ok(refreshed);
  });
});

// ---------------------------------------------------------------------------------------------
// Exactly once

test('the create answer is lost after X committed it: the lookup finds the post in the same attempt', async () => {
  await withSim({ processing: 'none' }, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'create', kind: 'resetAfterCommit' });
    const deps = makeDeps(sim);
    const result = await x.publish(makeInput(user), deps);
    assert.equal(sim.posts.length, 1);
    assert.equal(postId(result), sim.posts[0]!.id);
    assert.equal(sim.count('create'), 1);
    assert.equal(sim.count('timeline'), 1);
    const lookup = sim.requests.find((r) => r.route === 'timeline')!;
    assert.equal(lookup.path, `/2/users/${user.userId}/tweets`);
    assert.deepEqual(deps.crashPoints, ['x.after_upload'], 'the create call never returned');
  });
});

test('a lost create answer and a post not listed yet: ask again later, find it, never post twice', async () => {
  const c = clock();
  await withSim({ now: c.now, processing: 'none', indexDelayMs: 30_000 }, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'create', kind: 'resetAfterCommit' });
    const input = makeInput(user, { remoteId: null });
    await rejectsWith(x.publish(input, makeDeps(sim, { now: c.now })), (error) => {
      assert.deepEqual([error.code, error.retryable, error.outcomeUnknown], ['unavailable', true, true]);
      assert.match(error.detail, /ECONNRESET|socket|terminated/i);
    });
    assert.ok(input.checkpoint.createSent, 'the create mark survives for the next attempt');
    assert.equal(sim.count('me'), 1, 'the user id came from /2/users/me');

    c.advance(5_000);
    const second = resume(input);
    await rejectsWith(x.publish(second, makeDeps(sim, { now: c.now })), (error) => {
      assert.deepEqual([error.code, error.retryable, error.outcomeUnknown], ['unknown', true, true]);
      assert.ok(error.retryAfterSeconds !== undefined && error.retryAfterSeconds > 100 && error.retryAfterSeconds <= 115, String(error.retryAfterSeconds));
    });

    c.advance(40_000);
    const third = resume(second);
    const result = await x.publish(third, makeDeps(sim, { now: c.now }));
    assert.equal(postId(result), sim.posts[0]!.id);
    assert.equal(sim.posts.length, 1);
    assert.equal(sim.count('create'), 1);
    assert.equal(sim.count('me'), 1, 'the user id was checkpointed');
  });
});

test('a 503 from the create call (nothing committed) is outcome-unknown; after the grace period it posts once', async () => {
  const c = clock();
  await withSim({ now: c.now, processing: 'none' }, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'create', kind: 'respond', status: 503 });
    const adapter = fast({ indexGraceSeconds: 60 });
    const input = makeInput(user);
    await rejectsWith(adapter.publish(input, makeDeps(sim, { now: c.now })), (error) => {
      assert.deepEqual([error.code, error.outcomeUnknown, error.status], ['unavailable', true, 503]);
    });
    c.advance(61_000);
    const result = await adapter.publish(resume(input), makeDeps(sim, { now: c.now }));
    assert.equal(postId(result), sim.posts[0]!.id);
    assert.equal(sim.posts.length, 1);
    assert.equal(sim.count('create'), 2);
    assert.equal(sim.count('initialize'), 1, 'the media id was reused');
  });
});

test('rate-limited and not-yet-listed lookups do not use up the lookups: after the grace period the post is made, once', async () => {
  const c = clock();
  await withSim({ now: c.now, processing: 'none' }, async (sim) => {
    const user = sim.addUser();
    // The create never reached X; X then rate-limits the first two timeline reads after the quick one.
    sim.fault({ route: 'create', kind: 'reset' });
    sim.fault({ route: 'timeline', kind: 'rateLimit', skip: 2, times: 2, retryAfterSeconds: 5 });
    const adapter = fast({ indexGraceSeconds: 60, maxLookups: 2 });
    let input = makeInput(user);
    const outcomes: string[] = [];
    let result: PublishResult | null = null;
    for (let attempt = 0; attempt < 6 && !result; attempt++) {
      try {
        result = await adapter.publish(input, makeDeps(sim, { now: c.now }));
      } catch (error) {
        assert.ok(error instanceof PublishError && error.outcomeUnknown && error.retryable, String(error));
        outcomes.push(error.code);
        input = resume(input);
        c.advance(error.retryAfterSeconds !== undefined ? error.retryAfterSeconds * 1000 : 5_000);
      }
    }
    assert.deepEqual(outcomes, ['unavailable', 'unknown', 'rate_limited', 'rate_limited']);
    assert.equal(result?.status, 'published');
    assert.equal(sim.posts.length, 1);
    assert.equal(postId(result!), sim.posts[0]!.id);
    assert.equal(sim.count('create'), 2);
  });
});

test('when the timeline cannot be read the delivery is unconfirmed, never reposted', async () => {
  await withSim({ processing: 'none' }, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'create', kind: 'resetAfterCommit' });
    sim.fault({ route: 'timeline', kind: 'respond', status: 503, times: Infinity });
    const adapter = fast({ maxLookups: 3 });
    let input = makeInput(user);
    const outcomes: string[] = [];
    let result: PublishResult | null = null;
    for (let attempt = 0; attempt < 5 && !result; attempt++) {
      try {
        result = await adapter.publish(input, makeDeps(sim));
      } catch (error) {
        assert.ok(error instanceof PublishError && error.outcomeUnknown && error.retryable, String(error));
        outcomes.push(error.code);
        input = resume(input);
      }
    }
    assert.deepEqual(outcomes, ['unavailable', 'unavailable']);
    assert.equal(result?.status, 'unconfirmed');
    assert.match(result?.status === 'unconfirmed' ? result.evidence : '', /media \d+\) was sent at .* UTC .*timeline failed/);
    assert.equal(sim.count('create'), 1);
    assert.equal(sim.posts.length, 1);

    // A timeline the app may not read at all (403) decides nothing either: unconfirmed at once.
    sim.clearFaults();
    sim.fault({ route: 'create', kind: 'resetAfterCommit' });
    sim.fault({ route: 'timeline', kind: 'respond', status: 403, body: { title: 'Forbidden', detail: 'Forbidden', type: 'about:blank', status: 403 }, times: Infinity });
    const other = makeInput(user);
    await assert.rejects(adapter.publish(other, makeDeps(sim)));
    assert.equal((await adapter.publish(resume(other), makeDeps(sim))).status, 'unconfirmed');
    assert.equal(sim.count('create'), 2);
  });
});

test('a post X lists only after the grace period: the repost is refused as a duplicate, so unconfirmed', async () => {
  const c = clock();
  await withSim({ now: c.now, processing: 'none', indexDelayMs: 10 * 60_000 }, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'create', kind: 'resetAfterCommit' });
    const input = makeInput(user);
    await assert.rejects(x.publish(input, makeDeps(sim, { now: c.now })));
    c.advance(3 * 60_000);
    const result = await x.publish(resume(input), makeDeps(sim, { now: c.now }));
    assert.equal(result.status, 'unconfirmed');
    assert.match(result.status === 'unconfirmed' ? result.evidence : '', /duplicate/);
    assert.equal(sim.posts.length, 1);
    assert.equal(sim.count('create'), 2);
  });
});

test('crash right after the create call returned: the resumed attempt finds the post, one post', async () => {
  await withSim({ processing: 'none' }, async (sim) => {
    const user = sim.addUser();
    const input = makeInput(user);
    await assert.rejects(x.publish(input, makeDeps(sim, { crashAt: 'x.after_create' })), /crash at x.after_create/);
    assert.equal(sim.posts.length, 1);
    assert.ok(input.checkpoint.createSent && !input.checkpoint.tweetId);

    const deps = makeDeps(sim);
    const result = await x.publish(resume(input), deps);
    assert.equal(postId(result), sim.posts[0]!.id);
    assert.equal(sim.count('create'), 1);
    assert.deepEqual(deps.crashPoints, [], 'nothing was uploaded or created again');
  });
});

test('crash after the upload: the resumed attempt posts with the saved media, without uploading again', async () => {
  await withSim({ processing: 'none' }, async (sim) => {
    const user = sim.addUser();
    const input = makeInput(user);
    await assert.rejects(x.publish(input, makeDeps(sim, { crashAt: 'x.after_upload' })), /crash at x.after_upload/);
    const uploads = sim.requests.length;
    const result = await x.publish(resume(input), makeDeps(sim));
    assert.equal(postId(result), sim.posts[0]!.id);
    assert.deepEqual(sim.requests.slice(uploads).map((r) => r.route), ['create']);
  });
});

test('a finalize whose answer was lost is not repeated blindly: X refuses it and STATUS carries on', async () => {
  await withSim({ pendingPolls: 5 }, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'finalize', kind: 'resetAfterCommit' });
    const input = makeInput(user);
    await rejectsWith(x.publish(input, makeDeps(sim)), (error) => assert.equal(error.outcomeUnknown, false));
    const result = await x.publish(resume(input), makeDeps(sim));
    assert.equal(result.status, 'processing');
    assert.deepEqual(sim.requests.slice(-2).map((r) => `${r.route}:${r.status}`), ['finalize:400', 'status:200']);
    assert.equal(sim.count('initialize'), 1);
  });
});

test('media X no longer knows is uploaded again: an expired saved id, and a create refused for its media id', async () => {
  const c = clock();
  await withSim({ now: c.now, processing: 'none', mediaExpiresAfterSecs: 1800 }, async (sim) => {
    const user = sim.addUser();
    // An attempt that uploaded half the file, then the job waited past the media's expiry.
    sim.fault({ route: 'append', kind: 'respond', status: 503, skip: 1 });
    const input = makeInput(user);
    await assert.rejects(x.publish(input, makeDeps(sim, { now: c.now })));
    c.advance(40 * 60_000);
    const result = await x.publish(resume(input), makeDeps(sim, { now: c.now }));
    assert.equal(result.status, 'published');
    assert.equal(sim.count('initialize'), 2);

    // The media expires between the upload and the post: X refuses the id, the adapter uploads again once.
    const expiring = await startXSim({ now: c.now, processing: 'none', mediaExpiresAfterSecs: 700 });
    try {
      const u = expiring.addUser();
      const late = makeInput(u);
      await assert.rejects(x.publish(late, makeDeps(expiring, { now: c.now, crashAt: 'x.after_upload' })));
      c.advance(701_000);
      // The saved id looks usable to the adapter (expiry margin aside), so it tries the post first.
      const patched = resume(late);
      (patched.checkpoint.media as { expiresAt: string }).expiresAt = new Date(c.now() + 3600_000).toISOString();
      const posted = await x.publish(patched, makeDeps(expiring, { now: c.now }));
      assert.equal(posted.status, 'published');
      assert.deepEqual(expiring.requests.filter((r) => r.route === 'create').map((r) => r.status), [400, 201]);
      assert.equal(expiring.count('initialize'), 2);
      assert.equal(expiring.posts.length, 1);
    } finally {
      await expiring.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Through the worker

test('through the worker: a token refresh, processing polled by re-queued jobs, a crash after the create call: one post', async () => {
  const [{ testContext }, { ensureWorkspace }, { upsertAccount, readCredentials }, { submitPost }, { listDeliveries, getDelivery }, { startWorker }, { makeClip }] = await Promise.all([
    import('../../support/context.ts'),
    import('../../../core/workspaces.ts'),
    import('../../../core/accounts.ts'),
    import('../../../core/intake.ts'),
    import('../../../core/posts.ts'),
    import('../../../worker/main.ts'),
    import('../../support/clips.ts'),
  ]);
  await withSim({ pendingPolls: 1, inProgressPolls: 0, checkAfterSecs: 1 }, async (sim) => {
    const ctx = await testContext({ env: { X_API_URL: sim.url, X_CLIENT_ID: CLIENT.clientId, X_CLIENT_SECRET: CLIENT.clientSecret } });
    try {
      await ensureWorkspace(ctx.pool, 'cli', 'UTC');
      const user = sim.addUser({ username: 'worker_user' });
      // Three minutes left: the worker refreshes before publishing and stores the rotated tokens.
      const expiresAt = new Date(Date.now() + 3 * 60_000);
      const account = await upsertAccount(ctx.pool, ctx.secrets, {
        workspaceId: 'cli',
        platform: 'x',
        handle: user.username,
        remoteId: user.userId,
        credentials: credentialsOf(user, { expiresAt: expiresAt.toISOString() }),
        expiresAt,
      });
      // The first run dies right after its create call returned (the crash harness would SIGKILL).
      let crashes = 0;
      const crashing: PlatformAdapter = {
        ...x,
        publish: (input, deps) =>
          x.publish(input, {
            ...deps,
            crashPoint: (name) => {
              if (name === 'x.after_create' && crashes++ === 0) throw new Error('crash at x.after_create');
            },
          }),
        check: (remoteId, input, deps) =>
          x.check(remoteId, input, {
            ...deps,
            crashPoint: (name) => {
              if (name === 'x.after_create' && crashes++ === 0) throw new Error('crash at x.after_create');
            },
          }),
      };
      const worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, adapters: { x: crashing } });
      try {
        const clip = makeClip(join(ctx.dir, 'clip.mp4'), { width: 720, height: 1280, seconds: 1 });
        const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'From the worker #reelay', targets: [{ platform: 'x', handle: null }] });
        const [row] = await listDeliveries(ctx.pool, post.id);
        const deadline = Date.now() + 60_000;
        let delivery = await getDelivery(ctx.pool, row!.id);
        while (delivery && !['published', 'failed', 'unconfirmed'].includes(delivery.state) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          delivery = await getDelivery(ctx.pool, row!.id);
        }
        assert.equal(delivery?.state, 'published', `${delivery?.state}: ${delivery?.error ?? ''}`);
        assert.equal(sim.posts.length, 1, 'exactly one post');
        assert.equal(delivery?.remote_id, sim.posts[0]!.id);
        assert.equal(delivery?.url, `https://x.com/worker_user/status/${sim.posts[0]!.id}`);
        assert.equal(sim.count('create'), 1);
        assert.ok(sim.count('status') >= 1, 'processing was polled by re-queued jobs');
        assert.equal(crashes, 1);
        const stored = xCredentialsSchema.parse(await readCredentials(ctx.pool, ctx.secrets, account.id));
        assert.notEqual(stored.refreshToken, user.refreshToken, 'the rotated refresh token was stored');
        assert.ok(Date.parse(stored.expiresAt) > Date.now() + 60 * 60_000);
      } finally {
        await worker.stop();
      }
    } finally {
      await ctx.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Memory

test('a 200 MB file publishes from a process with a 64 MB heap: the upload streams', async () => {
  const size = 200 * MiB + 7;
  const path = join(dir, 'big.bin');
  const sha256 = randomFile(path, size);
  await withSim({ processing: 'none' }, async (sim) => {
    const user = sim.addUser({ username: 'big_file' });
    const adapterUrl = new URL('../../../worker/platforms/x.ts', import.meta.url).href;
    const logUrl = new URL('../../../core/log.ts', import.meta.url).href;
    const script = `
      import { createReadStream } from 'node:fs';
      import { getHeapStatistics } from 'node:v8';
      const { x } = await import(${JSON.stringify(adapterUrl)});
      const { createLogger } = await import(${JSON.stringify(logUrl)});
      const args = JSON.parse(process.argv[1]);
      // Loading the code (type stripping included) costs ~100 MB of RSS before any byte is read.
      const baseRss = process.memoryUsage().rss;
      let peakRss = 0, peakHeap = 0;
      const sample = () => { const m = process.memoryUsage(); peakRss = Math.max(peakRss, m.rss); peakHeap = Math.max(peakHeap, m.heapUsed); };
      const timer = setInterval(sample, 25);
      const rendition = { id: 'big', size: args.size, sha256: args.sha256, contentType: 'video/mp4', width: 720, height: 1280, durationSeconds: 60,
        open: async (r) => createReadStream(args.path, r ? { start: r.start, end: r.end } : {}) };
      const input = { deliveryId: 'big', createdAt: new Date(), caption: 'big file', rendition, account: { id: 'a', handle: 'big_file', remoteId: null },
        credentials: args.credentials, checkpoint: {}, saveCheckpoint: async () => {} };
      const deps = { fetch, signal: new AbortController().signal, log: createLogger({ level: 'silent' }), now: () => Date.now(),
        urls: { api: args.api }, oauthClient: null, crashPoint: () => {} };
      const started = Date.now();
      const result = await x.publish(input, deps);
      clearInterval(timer); sample();
      console.log(JSON.stringify({ result, baseRss, peakRss, peakHeap, heapLimit: getHeapStatistics().heap_size_limit, ms: Date.now() - started }));
    `;
    const args = JSON.stringify({ size, sha256, path, api: sim.url, credentials: credentialsOf(user) });
    const child = spawn(process.execPath, ['--max-old-space-size=64', '--input-type=module', '-e', script, args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, err.slice(-3000));
    const report = JSON.parse(out.trim().split('\n').at(-1)!) as { result: PublishResult; baseRss: number; peakRss: number; peakHeap: number; heapLimit: number; ms: number };
    const growth = report.peakRss - report.baseRss;
    console.log(
      `x 200 MB publish: ${report.ms} ms; RSS ${(report.baseRss / MiB).toFixed(1)} MiB after loading, peak ${(report.peakRss / MiB).toFixed(1)} MiB ` +
        `(+${(growth / MiB).toFixed(1)} MiB); peak heap ${(report.peakHeap / MiB).toFixed(1)} MiB of ${(report.heapLimit / MiB).toFixed(0)} MiB`,
    );
    assert.equal(report.result.status, 'published');
    // heap_size_limit is old space (64 MiB) plus the young generation.
    assert.ok(report.heapLimit < 128 * MiB, `the child really ran with a small heap (${report.heapLimit})`);
    assert.ok(growth < 64 * MiB, `memory grew by ${(growth / MiB).toFixed(1)} MiB for a ${(size / MiB).toFixed(0)} MiB file`);
    const media = sim.allMedia[0]!;
    assert.equal(media.bytes, size);
    assert.equal(media.sha256, sha256);
    assert.equal(media.segments.length, Math.ceil(size / (4 * MiB)));
    assert.equal(sim.posts.length, 1);
  });
});
