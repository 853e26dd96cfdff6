/**
 * The LinkedIn adapter against the protocol simulator in tests/sim/linkedin.ts (which enforces the
 * documented protocol and injects faults), plus one run through the worker and a memory test that
 * publishes a file larger than the heap limit from a child process.
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
import {
  createLinkedInAdapter,
  linkedin,
  linkedinCaptionProblem,
  linkedinCommentary,
  linkedinCredentialsSchema,
  mapLinkedInError,
  type LinkedInOptions,
} from '../../../worker/platforms/linkedin.ts';
import { renderLittleText, startLinkedInSim, type LinkedInSim, type LinkedInSimOptions, type SimMember } from '../../sim/linkedin.ts';
import { clock, fileRendition, randomFile } from '../../support/files.ts';

const MiB = 1024 * 1024;
const PART = 4_194_304;
const CLIENT = { clientId: 'reelay-li-client', clientSecret: 'reelay-li-secret' };
const VERSION = '202510';
let dir: string;
/** 9 MiB + 123 bytes: three parts of 4 MiB. */
let small: RenditionHandle;



before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-linkedin-test-'));
  const path = join(dir, 'small.bin');
  const size = 9 * MiB + 123;
  small = fileRendition(path, size, randomFile(path, size));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Harness


async function withSim(options: LinkedInSimOptions, fn: (sim: LinkedInSim) => Promise<void>): Promise<void> {
  const sim = await startLinkedInSim({ client: CLIENT, processingReads: 0, ...options });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

type Deps = PlatformDeps & { crashPoints: string[] };

function makeDeps(sim: LinkedInSim, options: { now?: () => number; crashAt?: string; oauthClient?: PlatformDeps['oauthClient']; version?: string } = {}): Deps {
  const crashPoints: string[] = [];
  return {
    fetch: globalThis.fetch,
    signal: new AbortController().signal,
    log: createLogger({ level: 'silent' }),
    now: options.now ?? (() => Date.now()),
    urls: { api: sim.url, token: sim.tokenUrl, version: options.version ?? VERSION },
    oauthClient: options.oauthClient === undefined ? CLIENT : options.oauthClient,
    crashPoint: (name) => {
      crashPoints.push(name);
      if (name === options.crashAt) throw new Error(`crash at ${name}`);
    },
    crashPoints,
  };
}

function credentialsOf(member: SimMember, overrides: Partial<Credentials> = {}): Credentials {
  const creds: Credentials = { accessToken: member.accessToken, expiresAt: member.expiresAt.toISOString(), scope: member.scope, author: member.personUrn };
  if (member.refreshToken) creds.refreshToken = member.refreshToken;
  if (member.refreshTokenExpiresAt) creds.refreshTokenExpiresAt = member.refreshTokenExpiresAt.toISOString();
  return { ...creds, ...overrides };
}

type Input = PublishInput & { checkpoint: Checkpoint; saves: Checkpoint[] };

function makeInput(credentials: Credentials, overrides: { caption?: string; checkpoint?: Checkpoint; rendition?: RenditionHandle } = {}): Input {
  const saves: Checkpoint[] = [];
  const input: Input = {
    deliveryId: randomUUID(),
    createdAt: new Date(),
    mediaUrl: null,
    caption: overrides.caption ?? `A test clip ${randomUUID().slice(0, 8)}`,
    rendition: overrides.rendition ?? small,
    account: { id: 'acc-1', handle: 'Test Member', remoteId: null },
    credentials,
    checkpoint: JSON.parse(JSON.stringify(overrides.checkpoint ?? {})) as Checkpoint,
    saves,
    async saveCheckpoint(patch: Checkpoint) {
      const copy = JSON.parse(JSON.stringify(patch)) as Checkpoint;
      saves.push(copy);
      Object.assign(input.checkpoint, copy);
    },
  };
  return input;
}

/** The next attempt of the same delivery: same checkpoint (as saved), possibly new credentials. */
function resume(previous: Input, credentials?: Credentials): Input {
  const next = makeInput(credentials ?? previous.credentials, { caption: previous.caption, checkpoint: previous.checkpoint, rendition: previous.rendition });
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

const fast = (extra: LinkedInOptions = {}) => createLinkedInAdapter({ requestTimeoutMs: 2_000, ...extra });

function postUrn(result: PublishResult): string {
  assert.equal(result.status, 'published', JSON.stringify(result));
  return result.status === 'published' ? result.remoteId : '';
}

const READ_SCOPES = ['openid', 'profile', 'w_member_social', 'r_member_social'];

// ---------------------------------------------------------------------------------------------
// Publishing

test('publish: initialize, three parts in order with ETags, finalize, AVAILABLE, one post; ids checkpointed first', async () => {
  await withSim({}, async (sim) => {
    const member = sim.addMember();
    const deps = makeDeps(sim);
    const input = makeInput(credentialsOf(member), { caption: 'Hello (world) #reelay_test @someone 100% *bold* ~x~ <tag> [a]|{b} \\ back' });
    const result = await linkedin.publish(input, deps);

    const urn = postUrn(result);
    assert.equal(result.status === 'published' && result.url, `https://www.linkedin.com/feed/update/${urn}/`);
    assert.deepEqual(deps.crashPoints, ['linkedin.after_upload', 'linkedin.after_create']);
    assert.deepEqual(
      sim.requests.map((r) => `${r.route}:${r.status}${r.part === undefined ? '' : `#${r.part}`}`),
      ['initialize:200', 'part:200#0', 'part:200#1', 'part:200#2', 'finalize:200', 'video:200', 'create:201'],
    );
    for (const r of sim.requests) {
      if (r.route === 'part') {
        assert.equal(r.headers.authorization, undefined, 'upload URLs are pre-signed; no token sent there');
        continue;
      }
      assert.equal(r.headers['linkedin-version'], VERSION);
      assert.equal(r.headers['x-restli-protocol-version'], '2.0.0');
    }
    const video = sim.videos[0]!;
    assert.equal(video.owner, member.personUrn);
    assert.deepEqual(video.parts.map((p) => p.bytes), [PART, PART, small.size - 2 * PART]);
    assert.equal(video.sha256, small.sha256, 'the bytes LinkedIn received are the rendition');
    assert.equal(sim.requests.find((r) => r.route === 'video')!.path, `/rest/videos/${encodeURIComponent(video.urn)}`);

    const [post] = sim.posts;
    assert.equal(sim.posts.length, 1);
    assert.equal(post?.urn, urn);
    assert.equal(post?.text, input.caption, 'the commentary reads as the caption');
    assert.match(post?.commentary ?? '', /\{hashtag\|\\#\|reelay\\_test\}/);
    assert.deepEqual(post?.body.distribution, { feedDistribution: 'MAIN_FEED', targetEntities: [], thirdPartyDistributionChannels: [] });
    assert.deepEqual([post?.body.visibility, post?.body.lifecycleState, post?.body.author], ['PUBLIC', 'PUBLISHED', member.personUrn]);

    // The video URN and instructions are saved before the first part; each ETag as its part ends.
    const first = input.saves[0]!.upload as { video: string; etags: Array<string | null>; parts: unknown[] };
    assert.equal(first.video, video.urn);
    assert.deepEqual(first.etags, [null, null, null]);
    assert.equal(first.parts.length, 3);
    const etagSaves = input.saves.filter((s) => s.upload && typeof s.upload === 'object').map((s) => (s.upload as { etags: Array<string | null> }).etags.filter(Boolean).length);
    assert.deepEqual(etagSaves.slice(0, 4), [0, 1, 2, 3]);
    const sentAt = input.saves.findIndex((s) => s.createSent && typeof s.createSent === 'object');
    const postAt = input.saves.findIndex((s) => s.postUrn === urn);
    assert.ok(sentAt >= 0 && postAt > sentAt);
    assert.equal(input.checkpoint.createSent, null);

    const before = sim.requests.length;
    assert.deepEqual(await linkedin.publish(resume(input), makeDeps(sim)), result);
    assert.equal(sim.requests.length, before, 'a finished delivery answers from its checkpoint');
  });
});

test('as an organization chosen at link time: needs w_organization_social and a page admin role', async () => {
  await withSim({}, async (sim) => {
    const org = sim.addOrganization();
    const admin = sim.addMember({ scopes: ['openid', 'profile', 'w_organization_social', 'r_organization_social'], adminOf: [org] });
    const result = await linkedin.publish(makeInput(credentialsOf(admin, { author: org })), makeDeps(sim));
    postUrn(result);
    assert.equal(sim.posts[0]!.author, org);
    assert.equal(sim.videos[0]!.owner, org);

    const outsider = sim.addMember({ scopes: ['openid', 'profile', 'w_organization_social'] });
    await rejectsWith(linkedin.publish(makeInput(credentialsOf(outsider, { author: org })), makeDeps(sim)), (error) => {
      assert.deepEqual([error.code, error.retryable, error.status], ['rejected', false, 403]);
      assert.match(error.detail, /page admin/);
    });
    // A member token without the organization scope is refused before any request.
    const requests = sim.requests.length;
    const member = sim.addMember();
    await rejectsWith(linkedin.publish(makeInput(credentialsOf(member, { author: org })), makeDeps(sim)), (error) => {
      assert.deepEqual([error.code, error.retryable], ['auth', false]);
      assert.match(error.detail, /w_organization_social/);
    });
    assert.equal(sim.requests.length, requests);
    assert.equal(sim.posts.length, 1);
  });
});

test('processing: publish returns processing with the video URN; check reads the video once per call, then posts', async () => {
  await withSim({ processingReads: 2 }, async (sim) => {
    const member = sim.addMember();
    const input = makeInput(credentialsOf(member));
    const first = await linkedin.publish(input, makeDeps(sim));
    const videoUrn = sim.videos[0]!.urn;
    assert.deepEqual(first, { status: 'processing', remoteId: videoUrn, checkAfterSeconds: 10 });
    assert.equal(sim.count('video'), 1);

    const states: string[] = [];
    let result: PublishResult = first;
    for (let i = 0; i < 5 && result.status === 'processing'; i++) {
      const before = sim.count('video');
      result = await linkedin.check(videoUrn, resume(input), makeDeps(sim));
      assert.equal(sim.count('video') - before, 1, 'one status read per check');
      states.push(result.status);
    }
    assert.deepEqual(states, ['processing', 'published']);
    assert.equal(sim.count('initialize'), 1);
    assert.equal(sim.count('finalize'), 1);
    assert.equal(postUrn(result), sim.posts[0]!.urn);
  });
});

test('PROCESSING_FAILED is invalid_media in plain words; nothing is posted', async () => {
  await withSim({ processingReads: 1 }, async (sim) => {
    sim.failNextProcessing('Video format is not supported');
    const member = sim.addMember();
    const input = makeInput(credentialsOf(member));
    assert.equal((await linkedin.publish(input, makeDeps(sim))).status, 'processing');
    await rejectsWith(linkedin.check('', input, makeDeps(sim)), (error) => {
      assert.deepEqual([error.code, error.retryable, error.detail], ['invalid_media', false, MESSAGES.linkedinProcessingFailed('Video format is not supported')]);
    });
    assert.equal(input.checkpoint.upload, null);
    assert.equal(sim.posts.length, 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Captions

test('caption: little-text escaping round-trips; 3000 characters, refused before any upload', async () => {
  for (const caption of ['plain', 'a_b *c* (d) [e] {f} <g> |h| ~i~ @j #k \\l', '#tag #ta_g #1 a#b #日本語 x#', 'emoji 😀 #😀', '']) {
    assert.equal(renderLittleText(linkedinCommentary(caption)), caption, caption);
  }
  assert.equal(linkedinCommentary('Go #team, now (#2)'), 'Go {hashtag|\\#|team}, now \\(\\#2\\)');
  assert.throws(() => renderLittleText('unescaped (paren)'));
  assert.equal(linkedinCaptionProblem('😀'.repeat(3000)), null);
  assert.equal(linkedinCaptionProblem('x'.repeat(3001)), MESSAGES.captionTooLong('LinkedIn', 3001, 3000, 'characters'));

  await withSim({}, async (sim) => {
    const member = sim.addMember();
    const input = makeInput(credentialsOf(member), { caption: 'x'.repeat(3001) });
    await rejectsWith(linkedin.publish(input, makeDeps(sim)), (error) => assert.deepEqual([error.code, error.retryable], ['rejected', false]));
    assert.equal(sim.requests.length, 0, 'nothing reached LinkedIn');
    // At the limit, with characters that need escaping, LinkedIn takes it (it counts what it shows).
    const full = '(_)'.repeat(1000);
    postUrn(await linkedin.publish(makeInput(credentialsOf(member), { caption: full }), makeDeps(sim)));
    assert.equal(sim.posts[0]!.text, full);
  });
});

// ---------------------------------------------------------------------------------------------
// Errors

test('error mapping follows the reference', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  const h = (init: Record<string, string> = {}) => new Headers(init);
  const map = (status: number, body: unknown, headers = h()) => mapLinkedInError(status, body, headers, now, VERSION);
  const rest = (status: number, code: string, message: string) => ({ status, code, message });

  const expired = map(401, rest(401, 'EXPIRED_ACCESS_TOKEN', 'The token used in the request has expired'));
  assert.deepEqual([expired.code, expired.retryable], ['auth', true]);
  const revoked = map(401, rest(401, 'REVOKED_ACCESS_TOKEN', 'The token used in the request has been revoked by the user'));
  assert.deepEqual([revoked.code, revoked.retryable], ['auth', false]);
  const refused = map(400, { error: 'invalid_request', error_description: 'The provided authorization grant or refresh token is invalid, expired or revoked' });
  assert.deepEqual([refused.code, refused.retryable], ['auth', false]);
  const denied = map(403, rest(403, 'ACCESS_DENIED', 'Not enough permissions to access: partnerApiPostsExternal.CREATE'));
  assert.deepEqual([denied.code, denied.retryable], ['rejected', false]);
  assert.match(denied.detail, /page admin/);
  const version = map(426, rest(426, 'NONEXISTENT_VERSION', 'Requested version 202401 is not active'));
  assert.deepEqual([version.code, version.retryable, version.detail], ['rejected', false, MESSAGES.linkedinVersion(VERSION)]);
  assert.equal(map(400, rest(400, 'VERSION_MISSING', 'A version must be present.')).detail, MESSAGES.linkedinVersion(VERSION));
  const dup = map(422, { status: 422, message: 'Content is a duplicate of urn:li:share:1' });
  assert.deepEqual([dup.code, dup.retryable, dup.detail], ['rejected', false, MESSAGES.linkedinDuplicate()]);
  assert.deepEqual([map(400, rest(400, 'BAD_REQUEST', 'bad urn')).code, map(400, {}).retryable], ['rejected', false]);
  const daily = map(429, rest(429, 'TOO_MANY_REQUESTS', 'Resource level throttle APPLICATION DAY limit for calls to this resource is reached.'));
  assert.deepEqual([daily.code, daily.retryable, daily.retryAfterSeconds], ['rate_limited', true, 12 * 3600]);
  assert.equal(daily.userMessage, MESSAGES.linkedinDailyLimit('2026-03-02 00:00 UTC'));
  const short = map(429, rest(429, 'TOO_MANY_REQUESTS', 'Too many requests'), h({ 'retry-after': '30' }));
  assert.deepEqual([short.code, short.retryAfterSeconds, short.userMessage], ['rate_limited', 30, undefined]);
  for (const status of [500, 503, 504]) assert.deepEqual([map(status, rest(status, 'X', 'Unable to obtain activity')).code, map(status, undefined).retryable], ['unavailable', true]);
  assert.deepEqual([map(413, 'too big').code], ['invalid_media']);
  assert.equal(map(404, rest(404, 'NOT_FOUND', 'Not Found')).code, 'unknown');
});

test('each error class from the wire: daily 429, 429 with Retry-After, inactive version, 5xx on a part then resume', async () => {
  await withSim({}, async (sim) => {
    const member = sim.addMember();
    sim.fault({ route: 'initialize', kind: 'rateLimit' });
    await rejectsWith(linkedin.publish(makeInput(credentialsOf(member)), makeDeps(sim)), (error) => {
      assert.equal(error.code, 'rate_limited');
      assert.ok(error.userMessage?.includes('midnight UTC'));
      assert.ok(error.retryAfterSeconds !== undefined && error.retryAfterSeconds > 0 && error.retryAfterSeconds <= 86_400);
    });
    sim.fault({ route: 'create', kind: 'rateLimit', retryAfterSeconds: 90 });
    const limited = makeInput(credentialsOf(member));
    await rejectsWith(linkedin.publish(limited, makeDeps(sim)), (error) => {
      assert.deepEqual([error.code, error.retryAfterSeconds, error.outcomeUnknown], ['rate_limited', 90, false]);
    });
    assert.equal(limited.checkpoint.createSent, null, 'a refused create leaves nothing to look for');

    await rejectsWith(linkedin.publish(makeInput(credentialsOf(member)), makeDeps(sim, { version: '202401' })), (error) => {
      assert.deepEqual([error.code, error.retryable, error.status, error.detail], ['rejected', false, 426, MESSAGES.linkedinVersion('202401')]);
    });

    // A 503 on a part is a plain retry (nothing anyone sees); the retry sends only the missing parts.
    sim.fault({ route: 'part', kind: 'respond', status: 503, skip: 1 });
    const input = makeInput(credentialsOf(member));
    await rejectsWith(linkedin.publish(input, makeDeps(sim)), (error) => {
      assert.deepEqual([error.code, error.retryable, error.outcomeUnknown], ['unavailable', true, false]);
    });
    const parts = sim.count('part');
    postUrn(await linkedin.publish(resume(input), makeDeps(sim)));
    assert.equal(sim.count('part') - parts, 2, 'the finished part was skipped');
    assert.equal(sim.videos.at(-1)!.sha256, small.sha256);
    assert.equal(sim.posts.length, 1);
  });
});

test('a hung part times out and is sent again; a part whose answer was lost is sent again under its URL', async () => {
  await withSim({}, async (sim) => {
    const member = sim.addMember();
    sim.fault({ route: 'part', kind: 'hang', skip: 1 });
    const adapter = fast({ partTimeoutMs: 500 });
    const input = makeInput(credentialsOf(member));
    await rejectsWith(adapter.publish(input, makeDeps(sim)), (error) => {
      assert.equal(error.code, 'unavailable');
      assert.match(error.detail, /timed out/);
    });
    assert.equal(sim.count('initialize'), 1);
    postUrn(await adapter.publish(resume(input), makeDeps(sim)));

    sim.fault({ route: 'part', kind: 'resetAfterCommit', skip: 1 });
    const other = makeInput(credentialsOf(member));
    await rejectsWith(linkedin.publish(other, makeDeps(sim)), (error) => assert.deepEqual([error.code, error.outcomeUnknown], ['unavailable', false]));
    postUrn(await linkedin.publish(resume(other), makeDeps(sim)));
    const video = sim.videos.at(-1)!;
    assert.deepEqual(sim.requests.filter((r) => r.route === 'part').slice(-4).map((r) => r.part), [0, 1, 1, 2]);
    assert.equal(video.sha256, small.sha256);
    assert.equal(sim.posts.length, 2);
  });
});

test('the simulator refuses what LinkedIn refuses', async () => {
  await withSim({ partBytes: 100 * 1024, minFileBytes: 1 }, async (sim) => {
    const member = sim.addMember();
    const base = { authorization: `Bearer ${member.accessToken}`, 'content-type': 'application/json' };
    const restli = { ...base, 'linkedin-version': VERSION, 'x-restli-protocol-version': '2.0.0' };
    const call = async (method: string, path: string, headers: Record<string, string>, body?: unknown) => {
      const response = await fetch(path.startsWith('http') ? path : `${sim.url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: body instanceof Uint8Array ? body : JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text && text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} };
    };
    const init = (headers: Record<string, string>, owner = member.personUrn, size = 150 * 1024) =>
      call('POST', '/rest/videos?action=initializeUpload', headers, { initializeUploadRequest: { owner, fileSizeBytes: size, uploadCaptions: false, uploadThumbnail: false } });

    assert.deepEqual((await init(base)).body, { status: 400, code: 'VERSION_MISSING', message: 'A version must be present. Please specify a version by adding the LinkedIn-Version header.' });
    assert.equal((await init({ ...base, 'linkedin-version': VERSION })).status, 400, 'X-Restli-Protocol-Version is required');
    assert.equal((await init({ ...restli, 'linkedin-version': '202401' })).status, 426);
    assert.equal((await init({ ...restli, authorization: 'Bearer nope' })).status, 401);
    assert.equal((await init(restli, 'urn:li:person:someoneelse')).status, 403);
    assert.equal((await init(restli, member.personUrn, 600 * MiB)).status, 400);
    const created = await init(restli);
    assert.equal(created.status, 200);
    const value = created.body.value as { video: string; uploadToken: string; uploadInstructions: Array<{ uploadUrl: string; firstByte: number; lastByte: number }> };
    assert.deepEqual(value.uploadInstructions.map((i) => [i.firstByte, i.lastByte]), [[0, 102399], [102400, 150 * 1024 - 1]]);

    const [one, two] = value.uploadInstructions;
    const octet = { 'content-type': 'application/octet-stream' };
    assert.equal((await call('PUT', one!.uploadUrl, octet, new Uint8Array(100))).status, 400, 'wrong byte range');
    assert.equal((await call('PUT', one!.uploadUrl.replace(/sig=[^&]+/, 'sig=forged'), octet, new Uint8Array(102400))).status, 403);
    assert.equal((await call('PUT', one!.uploadUrl, { 'content-type': 'video/mp4' }, new Uint8Array(102400))).status, 400);
    const finalizeBody = (ids: string[]) => ({ finalizeUploadRequest: { video: value.video, uploadToken: value.uploadToken, uploadedPartIds: ids } });
    const put1 = await call('PUT', one!.uploadUrl, octet, new Uint8Array(102400).fill(1));
    assert.equal(put1.status, 200);
    const etag1 = put1.headers.get('etag')!;
    assert.equal((await call('POST', '/rest/videos?action=finalizeUpload', restli, finalizeBody([etag1]))).status, 400, 'a part missing');
    const etag2 = (await call('PUT', two!.uploadUrl, octet, new Uint8Array(51200).fill(2))).headers.get('etag')!;
    assert.equal((await call('POST', '/rest/videos?action=finalizeUpload', restli, finalizeBody([etag2, etag1]))).status, 400, 'ETags out of order');
    // Posting before the video is AVAILABLE, and reading it with a raw URN in the path.
    const post = (commentary: string) => ({
      author: member.personUrn,
      commentary,
      visibility: 'PUBLIC',
      distribution: { feedDistribution: 'MAIN_FEED', targetEntities: [], thirdPartyDistributionChannels: [] },
      content: { media: { id: value.video } },
      lifecycleState: 'PUBLISHED',
    });
    assert.equal((await call('POST', '/rest/posts', restli, post('early'))).status, 400);
    assert.equal((await call('POST', '/rest/videos?action=finalizeUpload', restli, finalizeBody([etag1, etag2]))).status, 200);
    assert.equal((await call('POST', '/rest/videos?action=finalizeUpload', restli, finalizeBody([etag1, etag2]))).status, 400, 'finalize only once');
    assert.equal((await call('GET', `/rest/videos/${value.video}`, restli)).status, 400);
    assert.equal((await call('GET', `/rest/videos/${encodeURIComponent(value.video)}`, restli)).body.status, 'AVAILABLE');
    assert.equal(sim.videos[0]!.sha256, createHash('sha256').update(Buffer.alloc(102400, 1)).update(Buffer.alloc(51200, 2)).digest('hex'));

    assert.equal((await call('POST', '/rest/posts', restli, post('unescaped (paren)'))).status, 422);
    assert.equal((await call('POST', '/rest/posts', restli, post('x'.repeat(3001)))).status, 422);
    const ok = await call('POST', '/rest/posts', restli, post('fine \\(escaped\\)'));
    assert.equal(ok.status, 201);
    assert.match(ok.headers.get('x-restli-id') ?? '', /^urn:li:share:\d+$/);
    assert.equal((await call('POST', '/rest/posts', restli, post('again'))).status, 422, 'one post per video');
    // Reading posts back needs r_member_social and encoded URNs.
    const find = `/rest/posts?author=${encodeURIComponent(member.personUrn)}&q=author&count=10&sortBy=LAST_MODIFIED`;
    assert.equal((await call('GET', find, restli)).status, 403);
    const reader = sim.addMember({ scopes: READ_SCOPES });
    assert.equal((await call('GET', `/rest/posts?author=${reader.personUrn}&q=author`, { ...restli, authorization: `Bearer ${reader.accessToken}` })).status, 400);

    // The token endpoint: client credentials in the form, refresh tokens only where issued.
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const tokenCall = (body: string) => fetch(sim.tokenUrl, { method: 'POST', headers: form, body }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));
    assert.equal((await tokenCall(`grant_type=refresh_token&refresh_token=x&client_id=${CLIENT.clientId}&client_secret=wrong`)).status, 401);
    assert.equal((await tokenCall(`grant_type=refresh_token&refresh_token=x&client_id=${CLIENT.clientId}&client_secret=${CLIENT.clientSecret}`)).body.error, 'invalid_request');
  });
});

// ---------------------------------------------------------------------------------------------
// Tokens

test('token expiry mid-flow: finalize answers 401, a forced refresh, the resumed upload skips every part', async () => {
  await withSim({}, async (sim) => {
    const member = sim.addMember({ refreshToken: true });
    sim.fault({ route: 'finalize', kind: 'expireToken' });
    const input = makeInput(credentialsOf(member));
    await rejectsWith(linkedin.publish(input, makeDeps(sim)), (error) => assert.deepEqual([error.code, error.retryable, error.status], ['auth', true, 401]));
    const refreshed = await linkedin.refresh!(input.credentials, makeDeps(sim), { force: true });
    assert.ok(refreshed);
    const creds = linkedinCredentialsSchema.parse(refreshed.credentials);
    assert.notEqual(creds.accessToken, member.accessToken);
    assert.equal(creds.author, member.personUrn);
    const parts = sim.count('part');
    postUrn(await linkedin.publish(resume(input, refreshed.credentials), makeDeps(sim)));
    assert.equal(sim.count('part'), parts, 'no part was sent again');
    assert.deepEqual(sim.requests.filter((r) => r.route === 'finalize').map((r) => r.status), [401, 200]);
    assert.equal(sim.count('initialize'), 1);
  });
});

test('refresh: programmatic refresh tokens near expiry; without one the token simply expires and needs re-linking', async () => {
  const c = clock();
  await withSim({ now: c.now }, async (sim) => {
    const partner = sim.addMember({ refreshToken: true });
    const deps = makeDeps(sim, { now: c.now });
    assert.equal(await linkedin.refresh!(credentialsOf(partner), deps, { force: false }), null);
    const near = credentialsOf(partner, { expiresAt: new Date(c.now() + 4 * 60_000).toISOString(), authorName: 'Ada' });
    const refreshed = await linkedin.refresh!(near, deps, { force: false });
    assert.ok(refreshed);
    const creds = linkedinCredentialsSchema.parse(refreshed.credentials);
    assert.equal(creds.authorName, 'Ada', 'fields the token endpoint does not know are kept');
    assert.ok(Math.abs(Date.parse(creds.expiresAt) - (c.now() + 60 * 86_400_000)) < 5_000, 'expiry from expires_in');
    assert.equal(creds.refreshToken, partner.refreshToken);
    assert.ok(creds.refreshTokenExpiresAt && Math.abs(Date.parse(creds.refreshTokenExpiresAt) - partner.refreshTokenExpiresAt!.getTime()) < 5_000, 'the refresh TTL is not extended');
    await rejectsWith(linkedin.refresh!(near, makeDeps(sim, { now: c.now, oauthClient: { ...CLIENT, clientSecret: 'wrong' } }), { force: true }), (error) => {
      assert.deepEqual([error.code, error.retryable, error.status], ['auth', false, 401]);
    });
    await rejectsWith(linkedin.refresh!(near, makeDeps(sim, { now: c.now, oauthClient: null }), { force: true }), (error) => assert.deepEqual([error.code, error.retryable], ['unknown', false]));
    // The refresh token's fixed 365-day TTL runs out.
    await rejectsWith(linkedin.refresh!({ ...near, refreshTokenExpiresAt: new Date(c.now() - 1000).toISOString() }, deps, { force: true }), (error) => {
      assert.deepEqual([error.code, error.retryable, error.userMessage], ['auth', false, MESSAGES.linkedinTokenExpired('Ada')]);
    });

    // No refresh token: used for as long as it lasts, then a clear "re-link" and no retries.
    const member = sim.addMember({ expiresInSeconds: 120 });
    const plain = credentialsOf(member, { authorName: 'Grace' });
    assert.equal(await linkedin.refresh!(plain, deps, { force: false }), null);
    await rejectsWith(linkedin.refresh!(plain, deps, { force: true }), (error) => {
      assert.deepEqual([error.code, error.retryable, error.userMessage], ['auth', false, MESSAGES.linkedinTokenExpired('Grace')]);
    });
    c.advance(121_000);
    await rejectsWith(linkedin.refresh!(plain, deps, { force: false }), (error) => assert.deepEqual([error.code, error.retryable], ['auth', false]));
    const requests = sim.requests.length;
    await rejectsWith(linkedin.publish(makeInput(plain), deps), (error) => {
      assert.deepEqual([error.code, error.retryable, error.userMessage], ['auth', false, MESSAGES.linkedinTokenExpired('Grace')]);
    });
    assert.equal(sim.requests.length, requests, 'nothing is sent with a token known to be expired');
    assert.equal(sim.count('token'), 2, 'only the partner token was ever refreshed (once, plus the wrong secret)');
  });
});

test('a revoked token is re-auth, not retried', async () => {
  await withSim({}, async (sim) => {
    const member = sim.addMember();
    sim.revokeAccessToken(member.accessToken);
    await rejectsWith(linkedin.publish(makeInput(credentialsOf(member)), makeDeps(sim)), (error) => assert.deepEqual([error.code, error.retryable, error.status], ['auth', false, 401]));
  });
});

// ---------------------------------------------------------------------------------------------
// Exactly once

test('the create answer is lost after LinkedIn committed it: with read access the lookup finds it in the same attempt', async () => {
  await withSim({}, async (sim) => {
    const member = sim.addMember({ scopes: READ_SCOPES });
    sim.fault({ route: 'create', kind: 'resetAfterCommit' });
    const deps = makeDeps(sim);
    const result = await linkedin.publish(makeInput(credentialsOf(member)), deps);
    assert.equal(postUrn(result), sim.posts[0]!.urn);
    assert.equal(sim.posts.length, 1);
    assert.equal(sim.count('create'), 1);
    const lookup = sim.requests.find((r) => r.route === 'find')!;
    assert.match(lookup.query, new RegExp(`author=${encodeURIComponent(member.personUrn)}&q=author`));
    assert.deepEqual(deps.crashPoints, ['linkedin.after_upload']);
  });
});

test('without read access a lost create answer is unconfirmed with evidence, never reposted', async () => {
  await withSim({}, async (sim) => {
    const member = sim.addMember();
    sim.fault({ route: 'create', kind: 'resetAfterCommit' });
    const input = makeInput(credentialsOf(member));
    await rejectsWith(linkedin.publish(input, makeDeps(sim)), (error) => assert.deepEqual([error.code, error.retryable, error.outcomeUnknown], ['unavailable', true, true]));
    assert.ok(input.checkpoint.createSent);
    const result = await linkedin.publish(resume(input), makeDeps(sim));
    assert.equal(result.status, 'unconfirmed');
    assert.match(result.status === 'unconfirmed' ? result.evidence : '', /video urn:li:video:\S+, as urn:li:person:\S+\) was sent at .* UTC .*r_member_social/);
    assert.equal(sim.count('create'), 1);
    assert.equal(sim.count('find'), 0);
    assert.equal(sim.posts.length, 1);
  });
});

test('a lost create answer and a post not listed yet: ask again later and find it; a 503 that committed nothing posts once after the grace', async () => {
  const c = clock();
  await withSim({ now: c.now, indexDelayMs: 30_000 }, async (sim) => {
    const member = sim.addMember({ scopes: READ_SCOPES });
    sim.fault({ route: 'create', kind: 'resetAfterCommit' });
    const input = makeInput(credentialsOf(member));
    await rejectsWith(linkedin.publish(input, makeDeps(sim, { now: c.now })), (error) => assert.equal(error.outcomeUnknown, true));
    c.advance(5_000);
    const second = resume(input);
    await rejectsWith(linkedin.publish(second, makeDeps(sim, { now: c.now })), (error) => {
      assert.deepEqual([error.code, error.retryable, error.outcomeUnknown], ['unknown', true, true]);
      assert.ok(error.retryAfterSeconds !== undefined && error.retryAfterSeconds > 100 && error.retryAfterSeconds <= 115, String(error.retryAfterSeconds));
    });
    c.advance(40_000);
    assert.equal(postUrn(await linkedin.publish(resume(second), makeDeps(sim, { now: c.now }))), sim.posts[0]!.urn);
    assert.equal(sim.count('create'), 1);

    sim.fault({ route: 'create', kind: 'respond', status: 503 });
    const adapter = fast({ indexGraceSeconds: 60 });
    const other = makeInput(credentialsOf(member));
    await rejectsWith(adapter.publish(other, makeDeps(sim, { now: c.now })), (error) => assert.deepEqual([error.code, error.outcomeUnknown, error.status], ['unavailable', true, 503]));
    c.advance(61_000);
    assert.equal(postUrn(await adapter.publish(resume(other), makeDeps(sim, { now: c.now }))), sim.posts[1]!.urn);
    assert.equal(sim.posts.length, 2);
    assert.equal(sim.count('create'), 3);
    assert.equal(sim.count('initialize'), 2, 'the video was reused');
  });
});

test('a post LinkedIn lists only after the grace period: the repost is refused as a duplicate, so unconfirmed', async () => {
  const c = clock();
  await withSim({ now: c.now, indexDelayMs: 10 * 60_000 }, async (sim) => {
    const member = sim.addMember({ scopes: READ_SCOPES });
    sim.fault({ route: 'create', kind: 'resetAfterCommit' });
    const input = makeInput(credentialsOf(member));
    await assert.rejects(linkedin.publish(input, makeDeps(sim, { now: c.now })));
    c.advance(3 * 60_000);
    const result = await linkedin.publish(resume(input), makeDeps(sim, { now: c.now }));
    assert.equal(result.status, 'unconfirmed');
    assert.match(result.status === 'unconfirmed' ? result.evidence : '', /duplicate/);
    assert.equal(sim.posts.length, 1);
    assert.deepEqual(sim.requests.filter((r) => r.route === 'create').map((r) => r.status), ['reset', 422]);
  });
});

test('when the posts cannot be read the delivery is unconfirmed after a few lookups', async () => {
  await withSim({}, async (sim) => {
    const member = sim.addMember({ scopes: READ_SCOPES });
    sim.fault({ route: 'create', kind: 'resetAfterCommit' });
    sim.fault({ route: 'find', kind: 'respond', status: 503, times: Infinity });
    const adapter = fast({ maxLookups: 3 });
    let input = makeInput(credentialsOf(member));
    let result: PublishResult | null = null;
    const outcomes: string[] = [];
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
    assert.equal(sim.count('create'), 1);
    assert.equal(sim.posts.length, 1);
  });
});

test('crash right after the create call returned: the resumed attempt finds the post (or says unconfirmed), one post', async () => {
  await withSim({}, async (sim) => {
    const member = sim.addMember({ scopes: READ_SCOPES });
    const input = makeInput(credentialsOf(member));
    await assert.rejects(linkedin.publish(input, makeDeps(sim, { crashAt: 'linkedin.after_create' })), /crash at linkedin.after_create/);
    assert.ok(input.checkpoint.createSent && !input.checkpoint.postUrn);
    const deps = makeDeps(sim);
    assert.equal(postUrn(await linkedin.publish(resume(input), deps)), sim.posts[0]!.urn);
    assert.deepEqual(deps.crashPoints, [], 'nothing was uploaded or created again');

    const writeOnly = sim.addMember();
    const other = makeInput(credentialsOf(writeOnly));
    await assert.rejects(linkedin.publish(other, makeDeps(sim, { crashAt: 'linkedin.after_create' })));
    assert.equal((await linkedin.publish(resume(other), makeDeps(sim))).status, 'unconfirmed');
    assert.equal(sim.count('create'), 2);
    assert.equal(sim.posts.length, 2);
  });
});

test('crash after the upload: the resumed attempt posts with the saved video, without uploading again', async () => {
  await withSim({}, async (sim) => {
    const member = sim.addMember();
    const input = makeInput(credentialsOf(member));
    await assert.rejects(linkedin.publish(input, makeDeps(sim, { crashAt: 'linkedin.after_upload' })), /crash at linkedin.after_upload/);
    const uploads = sim.requests.length;
    postUrn(await linkedin.publish(resume(input), makeDeps(sim)));
    assert.deepEqual(sim.requests.slice(uploads).map((r) => r.route), ['video', 'create']);
  });
});

test('a finalize whose answer was lost is not repeated blindly: the video status shows it took effect', async () => {
  await withSim({ processingReads: 3 }, async (sim) => {
    const member = sim.addMember();
    sim.fault({ route: 'finalize', kind: 'resetAfterCommit' });
    const input = makeInput(credentialsOf(member));
    await rejectsWith(linkedin.publish(input, makeDeps(sim)), (error) => assert.equal(error.outcomeUnknown, false));
    const result = await linkedin.publish(resume(input), makeDeps(sim));
    assert.equal(result.status, 'processing');
    assert.deepEqual(sim.requests.slice(-1).map((r) => `${r.route}:${r.status}`), ['video:200']);
    assert.equal(sim.count('finalize'), 1);
    assert.equal(sim.count('part'), 3);
  });
});

test('expired upload URLs in the checkpoint: the upload starts over once with a new video', async () => {
  const c = clock();
  await withSim({ now: c.now, uploadUrlTtlSeconds: 600 }, async (sim) => {
    const member = sim.addMember({ expiresInSeconds: 86_400 });
    sim.fault({ route: 'part', kind: 'respond', status: 503, skip: 1 });
    const input = makeInput(credentialsOf(member));
    await assert.rejects(linkedin.publish(input, makeDeps(sim, { now: c.now })));
    c.advance(30 * 60_000);
    postUrn(await linkedin.publish(resume(input), makeDeps(sim, { now: c.now })));
    assert.equal(sim.count('initialize'), 2);
    assert.equal(sim.posts[0]!.video, sim.videos[1]!.urn);

    // The checkpoint thinks the URLs still work, but LinkedIn refuses them (403): start over, once.
    sim.fault({ route: 'part', kind: 'respond', status: 503, skip: 1 });
    const other = makeInput(credentialsOf(member));
    await assert.rejects(linkedin.publish(other, makeDeps(sim, { now: c.now })));
    c.advance(30 * 60_000);
    const patched = resume(other);
    (patched.checkpoint.upload as { expiresAt: string }).expiresAt = new Date(c.now() + 3600_000).toISOString();
    postUrn(await linkedin.publish(patched, makeDeps(sim, { now: c.now })));
    assert.deepEqual(sim.requests.filter((r) => r.route === 'part').slice(-4).map((r) => r.status), [403, 200, 200, 200]);
    assert.equal(sim.count('initialize'), 4);
    assert.equal(sim.posts.length, 2);
  });
});

// ---------------------------------------------------------------------------------------------
// Through the worker

test('through the worker: processing polled by re-queued jobs, a crash after the create call: one post', async () => {
  const [{ testContext }, { ensureWorkspace }, { upsertAccount }, { submitPost }, { listDeliveries, getDelivery }, { startWorker }, { makeClip }] = await Promise.all([
    import('../../support/context.ts'),
    import('../../../core/workspaces.ts'),
    import('../../../core/accounts.ts'),
    import('../../../core/intake.ts'),
    import('../../../core/posts.ts'),
    import('../../../worker/main.ts'),
    import('../../support/clips.ts'),
  ]);
  await withSim({ processingReads: 1, minFileBytes: 1 }, async (sim) => {
    const ctx = await testContext({
      env: { LINKEDIN_API_URL: sim.url, LINKEDIN_TOKEN_URL: sim.tokenUrl, LINKEDIN_VERSION: VERSION, LINKEDIN_CLIENT_ID: CLIENT.clientId, LINKEDIN_CLIENT_SECRET: CLIENT.clientSecret },
    });
    try {
      await ensureWorkspace(ctx.pool, 'cli', 'UTC');
      const member = sim.addMember({ scopes: READ_SCOPES });
      await upsertAccount(ctx.pool, ctx.secrets, {
        workspaceId: 'cli',
        platform: 'linkedin',
        handle: 'Worker Member',
        remoteId: member.personUrn,
        credentials: credentialsOf(member),
        expiresAt: member.expiresAt,
      });
      let crashes = 0;
      const crashingDeps = (deps: PlatformDeps): PlatformDeps => ({
        ...deps,
        crashPoint: (name) => {
          if (name === 'linkedin.after_create' && crashes++ === 0) throw new Error('crash at linkedin.after_create');
        },
      });
      const crashing: PlatformAdapter = {
        ...linkedin,
        publish: (input, deps) => linkedin.publish(input, crashingDeps(deps)),
        check: (remoteId, input, deps) => linkedin.check(remoteId, input, crashingDeps(deps)),
      };
      const worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, adapters: { linkedin: crashing } });
      try {
        const clip = makeClip(join(ctx.dir, 'clip.mp4'), { width: 720, height: 1280, seconds: 4 });
        const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'From the worker #reelay (test)', targets: [{ platform: 'linkedin', handle: null }] });
        const [row] = await listDeliveries(ctx.pool, post.id);
        const deadline = Date.now() + 90_000;
        let delivery = await getDelivery(ctx.pool, row!.id);
        while (delivery && !['published', 'failed', 'unconfirmed'].includes(delivery.state) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          delivery = await getDelivery(ctx.pool, row!.id);
        }
        assert.equal(delivery?.state, 'published', `${delivery?.state}: ${delivery?.error ?? ''}`);
        assert.equal(sim.posts.length, 1, 'exactly one post');
        assert.equal(delivery?.remote_id, sim.posts[0]!.urn);
        assert.equal(delivery?.url, `https://www.linkedin.com/feed/update/${sim.posts[0]!.urn}/`);
        assert.equal(sim.posts[0]!.text, 'From the worker #reelay (test)');
        assert.equal(sim.count('create'), 1);
        assert.ok(sim.count('video') >= 2, 'processing was polled by a re-queued job');
        assert.equal(crashes, 1);
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

test('a 200 MB file publishes from a process with a 64 MB heap: the parts stream', async () => {
  const size = 200 * MiB + 7;
  const path = join(dir, 'big.bin');
  const sha256 = randomFile(path, size);
  await withSim({}, async (sim) => {
    const member = sim.addMember();
    const adapterUrl = new URL('../../../worker/platforms/linkedin.ts', import.meta.url).href;
    const logUrl = new URL('../../../core/log.ts', import.meta.url).href;
    const script = `
      import { createReadStream } from 'node:fs';
      import { getHeapStatistics } from 'node:v8';
      const { linkedin } = await import(${JSON.stringify(adapterUrl)});
      const { createLogger } = await import(${JSON.stringify(logUrl)});
      const args = JSON.parse(process.argv[1]);
      const baseRss = process.memoryUsage().rss;
      let peakRss = 0, peakHeap = 0;
      const sample = () => { const m = process.memoryUsage(); peakRss = Math.max(peakRss, m.rss); peakHeap = Math.max(peakHeap, m.heapUsed); };
      const timer = setInterval(sample, 25);
      const rendition = { id: 'big', size: args.size, sha256: args.sha256, contentType: 'video/mp4', width: 1080, height: 1920, durationSeconds: 60,
        open: async (r) => createReadStream(args.path, r ? { start: r.start, end: r.end } : {}) };
      const input = { deliveryId: 'big', createdAt: new Date(), caption: 'big file', rendition, account: { id: 'a', handle: 'big', remoteId: null },
        credentials: args.credentials, mediaUrl: null, checkpoint: {}, saveCheckpoint: async () => {} };
      const deps = { fetch, signal: new AbortController().signal, log: createLogger({ level: 'silent' }), now: () => Date.now(),
        urls: args.urls, oauthClient: null, crashPoint: () => {} };
      const started = Date.now();
      const result = await linkedin.publish(input, deps);
      clearInterval(timer); sample();
      console.log(JSON.stringify({ result, baseRss, peakRss, peakHeap, heapLimit: getHeapStatistics().heap_size_limit, ms: Date.now() - started }));
    `;
    const args = JSON.stringify({ size, sha256, path, urls: { api: sim.url, token: sim.tokenUrl, version: VERSION }, credentials: credentialsOf(member) });
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
      `linkedin 200 MB publish: ${report.ms} ms; RSS ${(report.baseRss / MiB).toFixed(1)} MiB after loading, peak ${(report.peakRss / MiB).toFixed(1)} MiB ` +
        `(+${(growth / MiB).toFixed(1)} MiB); peak heap ${(report.peakHeap / MiB).toFixed(1)} MiB of ${(report.heapLimit / MiB).toFixed(0)} MiB`,
    );
    assert.equal(report.result.status, 'published');
    assert.ok(report.heapLimit < 128 * MiB, `the child really ran with a small heap (${report.heapLimit})`);
    assert.ok(growth < 64 * MiB, `memory grew by ${(growth / MiB).toFixed(1)} MiB for a ${(size / MiB).toFixed(0)} MiB file`);
    const video = sim.videos[0]!;
    assert.equal(video.bytes, size);
    assert.equal(video.sha256, sha256);
    assert.equal(video.parts.length, Math.ceil(size / PART));
    assert.equal(sim.posts.length, 1);
  });
});

test('validate: GET /v2/userinfo with the bearer token; expired is retryable auth, revoked is re-linking, no openid still proves the login', async () => {
  await withSim({}, async (sim) => {
    assert.ok(linkedin.validate);
    const member = sim.addMember();
    await linkedin.validate(credentialsOf(member), makeDeps(sim));
    const read = sim.requests.at(-1)!;
    assert.deepEqual([read.route, read.method, read.status, read.member], ['userinfo', 'GET', 200, member.personUrn]);

    const writeOnly = sim.addMember({ scopes: ['w_member_social'] });
    await linkedin.validate(credentialsOf(writeOnly), makeDeps(sim));
    assert.equal(sim.requests.at(-1)!.status, 403, 'refused for scope only: the token was accepted');

    const expiring = sim.addMember();
    sim.expireAccessToken(expiring.accessToken);
    await rejectsWith(linkedin.validate(credentialsOf(expiring), makeDeps(sim)), (error) => assert.deepEqual([error.code, error.retryable, error.status], ['auth', true, 401]));
    const revoked = sim.addMember();
    sim.revokeAccessToken(revoked.accessToken);
    await rejectsWith(linkedin.validate(credentialsOf(revoked), makeDeps(sim)), (error) => assert.deepEqual([error.code, error.retryable, error.status], ['auth', false, 401]));
    await rejectsWith(linkedin.validate(credentialsOf(member, { accessToken: 'AQVforged' }), makeDeps(sim)), (error) => assert.deepEqual([error.code, error.status], ['auth', 401]));
    sim.fault({ route: 'userinfo', kind: 'respond', status: 503 });
    await rejectsWith(linkedin.validate(credentialsOf(member), makeDeps(sim)), (error) => assert.equal(error.code, 'unavailable'));
    assert.equal(sim.count('userinfo'), 6);
  });
});

test('the simulator answers userinfo as OpenID does: sub always, name with profile, no LinkedIn-Version needed', async () => {
  await withSim({}, async (sim) => {
    const get = async (token: string) => {
      const response = await fetch(`${sim.url}/v2/userinfo`, { headers: { authorization: `Bearer ${token}` } });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const member = sim.addMember();
    const ok = await get(member.accessToken);
    assert.equal(ok.status, 200);
    assert.equal(`urn:li:person:${String(ok.body.sub)}`, member.personUrn);
    assert.equal(typeof ok.body.name, 'string');
    const bare = await get(sim.addMember({ scopes: ['openid', 'w_member_social'] }).accessToken);
    assert.equal(bare.status, 200);
    assert.equal(bare.body.name, undefined);
    const noOpenid = await get(sim.addMember({ scopes: ['w_member_social'] }).accessToken);
    assert.deepEqual([noOpenid.status, noOpenid.body.code], [403, 'ACCESS_DENIED']);
    const forged = await get('AQVforged');
    assert.deepEqual([forged.status, forged.body.code, forged.body.serviceErrorCode], [401, 'INVALID_ACCESS_TOKEN', 65600]);
  });
});
