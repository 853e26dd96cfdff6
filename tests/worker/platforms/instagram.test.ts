/**
 * The Instagram adapter (both logins) against the Graph simulator in tests/sim/graph.ts, which
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
import { mapGraphError } from '../../../worker/platforms/graph.ts';
import { createInstagramAdapter, instagramCredentialsSchema } from '../../../worker/platforms/instagram.ts';
import { startGraphSim, startMediaServer, type GraphSim, type GraphSimOptions, type SimUser } from '../../sim/graph.ts';
import { clock, randomFile } from '../../support/files.ts';

const MiB = 1024 * 1024;
const CLIENT = { clientId: 'meta-app', clientSecret: 'meta-secret' };
const DAY = 86_400_000;
let dir: string;
let small: RenditionHandle & { path: string };


before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-ig-test-'));
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
    urls: sim.instagramUrls,
    oauthClient: options.oauthClient === undefined ? CLIENT : options.oauthClient,
    crashPoint: (name) => {
      if (name === options.crashAt) throw new Error(`crash at ${name}`);
    },
  };
}

function credentialsOf(user: SimUser, overrides: Partial<Credentials> = {}): Credentials {
  return {
    loginType: user.host === 'ig' ? 'instagram' : 'facebook',
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
    caption: overrides.caption ?? `A reel ${randomUUID().slice(0, 8)} #reelay`,
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

const adapter = createInstagramAdapter({ requestTimeoutMs: 2_000 });

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

for (const host of ['ig', 'fb'] as const) {
  test(`${host === 'ig' ? 'Instagram' : 'Facebook'} Login: container from the link (fetched whole), FINISHED, limit checked, one media_publish, permalink`, async () => {
    await withSim({}, async (sim, media) => {
      const user = sim.addUser({ host });
      const deps = makeDeps(sim);
      const input = makeInput(user, media);
      const first = await adapter.publish(input, deps);
      assert.equal(first.status, 'processing');
      assert.equal(input.saves[0]?.containerId, first.status === 'processing' ? first.remoteId : '', 'the container id is the first thing saved');
      const { result } = await untilDone(input, deps, first);
      assert.equal(result.status, 'published', JSON.stringify(result));
      assert.equal(sim.posts.length, 1);
      const post = sim.posts[0]!;
      assert.equal(result.status === 'published' && result.remoteId, post.id);
      assert.equal(result.status === 'published' && result.url, post.permalink);
      assert.match(post.permalink, /^https:\/\/www\.instagram\.com\/reel\/[\w-]+\/$/);
      assert.equal(post.text, input.caption);
      const container = sim.containers.get(post.containerId)!;
      assert.equal(container.bytes, small.size);
      assert.equal(container.sha256, small.sha256);
      assert.equal(sim.count('publish'), 1);
      assert.ok(sim.count('quota') >= 1, 'the publishing limit was read first');
      assert.ok(sim.log.every((e) => e.host === host), 'only the chosen login host was called');
      assert.equal(input.checkpoint.mediaId, post.id);
    });
  });
}

test('processing then success: IN_PROGRESS for several reads, each check is one status read', async () => {
  await withSim({ processingPolls: 3 }, async (sim, media) => {
    const user = sim.addUser({ host: 'ig' });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    const before = sim.count('status');
    const { result, checks } = await untilDone(input, deps, first);
    assert.equal(result.status, 'published');
    assert.ok(checks >= 4, `checked ${checks} times`);
    assert.equal(sim.count('status') - before, checks, 'one status read per check');
    assert.equal(sim.count('create'), 1);
    assert.equal(sim.count('publish'), 1);
  });
});

test('no public link: refused in plain words before any call', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser({ host: 'ig' });
    const error = await rejectsWith(adapter.publish(makeInput(user, null), makeDeps(sim)));
    assert.equal(error.code, 'rejected');
    assert.equal(error.retryable, false);
    assert.equal(error.userMessage, MESSAGES.metaNeedsPublicLink('Instagram'));
    assert.equal(sim.log.length, 0);
  });
});

test('caption limits: 2200 characters pass, 2201 are refused before any call', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'ig' });
    const error = await rejectsWith(adapter.publish(makeInput(user, media, { caption: 'é'.repeat(2201) }), makeDeps(sim)));
    assert.equal(error.code, 'rejected');
    assert.match(error.detail, /2201/);
    assert.equal(sim.log.length, 0);
    const ok = await adapter.publish(makeInput(user, media, { caption: 'é'.repeat(2200) }), makeDeps(sim));
    assert.equal(ok.status, 'processing');
  });
});

// ---------------------------------------------------------------------------------------------
// Resumable upload (Facebook Login)

/** 1 MiB chunks: the 3 MiB test file goes in four POSTs. */
const chunked = createInstagramAdapter({ requestTimeoutMs: 2_000, uploadChunkBytes: MiB });

function ruploadOffsets(sim: GraphSim): Array<number | undefined> {
  return sim.log.filter((e) => e.route === 'rupload').map((e) => e.offset);
}

test('Facebook Login without a public link: resumable container, bytes streamed to rupload in order, then the usual publish', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'fb' });
    const deps = makeDeps(sim);
    const input = makeInput(user, null);
    const first = await chunked.publish(input, deps);
    assert.equal(first.status, 'processing');
    const containerId = first.status === 'processing' ? first.remoteId : '';
    // The container and its upload URI are saved before any byte is sent, `uploaded` before polling.
    assert.deepEqual(
      { ...input.saves[0], containerAt: 0 },
      { containerId, containerAt: 0, publishSentAt: null, uploadUri: `${sim.urls.rupload}/ig-api-upload/v23.0/${containerId}`, uploadedBytes: 0, uploaded: false },
    );
    assert.deepEqual(input.saves.slice(1).map((s) => s.uploadedBytes ?? s.uploaded), [MiB, 2 * MiB, 3 * MiB, small.size, true]);
    assert.deepEqual(ruploadOffsets(sim), [0, MiB, 2 * MiB, 3 * MiB]);
    assert.ok(sim.log.filter((e) => e.route === 'rupload').every((e) => e.status === 200));
    const { result } = await untilDone(input, deps, first, chunked);
    assert.equal(result.status, 'published', JSON.stringify(result));
    const container = sim.containers.get(containerId)!;
    assert.equal(container.resumable, true);
    assert.equal(container.videoUrl, '', 'no public link was sent');
    assert.deepEqual([container.bytes, container.wireBytes, container.sha256], [small.size, small.size, small.sha256]);
    assert.equal(media.requests, 0, 'nobody fetched a link');
    assert.deepEqual([sim.posts.length, sim.count('publish'), sim.count('ruploadOffset')], [1, 1, 0]);
    assert.equal(sim.posts[0]!.text, input.caption);
    assert.ok(sim.log.every((e) => e.host === 'fb'));
    // Instagram Login keeps the public link (rupload is documented for Facebook Login only).
    const ig = sim.addUser({ host: 'ig' });
    const viaLink = makeInput(ig, media);
    const linked = await chunked.publish(viaLink, deps);
    assert.equal(sim.containers.get(linked.status === 'processing' ? linked.remoteId : '')?.resumable, false);
    assert.equal(viaLink.checkpoint.uploadUri, undefined);
  });
});

test('an interrupted upload resumes at the offset the session reports: no byte is sent twice', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'fb' });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    // The second POST breaks after half its megabyte arrived.
    sim.fault({ route: 'rupload', kind: 'reset', skip: 1, afterBytes: MiB / 2 });
    const broken = await rejectsWith(chunked.publish(input, deps));
    assert.deepEqual([broken.code, broken.retryable, broken.outcomeUnknown], ['unavailable', true, false], 'bytes of an unpublished container: plain retry');
    const containerId = String(input.checkpoint.containerId);
    const container = sim.containers.get(containerId)!;
    assert.equal(container.bytes, MiB + MiB / 2, 'the server kept what arrived');
    assert.deepEqual([input.checkpoint.uploadedBytes, input.checkpoint.uploaded], [MiB, false], 'our own count only knows whole chunks');

    const again = resume(input, user, media);
    const second = await chunked.publish(again, deps);
    assert.equal(second.status === 'processing' && second.remoteId, containerId);
    assert.equal(sim.count('ruploadOffset'), 1, 'asked the session once');
    assert.deepEqual(ruploadOffsets(sim), [0, MiB, MiB + MiB / 2, 2 * MiB + MiB / 2]);
    assert.equal(container.wireBytes, small.size, 'every byte crossed the wire exactly once');
    assert.equal(container.sha256, small.sha256);
    const { result } = await untilDone(again, deps, second, chunked);
    assert.equal(result.status, 'published');
    assert.deepEqual([sim.count('create'), sim.posts.length, media.requests], [1, 1, 0]);
  });
});

test('an upload refused for an expired session: forced refresh (fb_exchange_token), then the upload continues with the new token', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'fb' });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    sim.fault({ route: 'rupload', kind: 'respond', skip: 2, status: 401, body: { debug_info: { retriable: false, type: 'OAuthException', message: 'Error validating access token: Session has expired' } } });
    const expired = await rejectsWith(chunked.publish(input, deps));
    assert.deepEqual([expired.code, expired.retryable], ['auth', true]);
    const refreshed = await chunked.refresh!(input.credentials, deps, { force: true });
    assert.ok(refreshed);
    const again = resume(input, user, media, refreshed.credentials);
    const { result } = await untilDone(again, deps, await chunked.publish(again, deps), chunked);
    assert.equal(result.status, 'published');
    const container = sim.containers.get(String(again.checkpoint.containerId))!;
    assert.deepEqual([container.wireBytes, container.sha256], [small.size, small.sha256]);
    // The refused POST (its headers never read) and the same offset again with the new token.
    assert.deepEqual(ruploadOffsets(sim), [0, MiB, undefined, 2 * MiB, 3 * MiB]);
    assert.deepEqual([sim.count('create'), sim.count('exchange'), sim.posts.length], [1, 1, 1]);
  });
});

test('crashes around the upload: after the container (nothing sent) and after the upload (nothing sent again); one reel', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'fb' });
    const input = makeInput(user, media);
    await assert.rejects(chunked.publish(input, makeDeps(sim, { crashAt: 'instagram.after_container' })), /crash at instagram.after_container/);
    assert.equal(sim.count('rupload'), 0);
    const second = resume(input, user, media);
    await assert.rejects(chunked.publish(second, makeDeps(sim, { crashAt: 'instagram.after_upload' })), /crash at instagram.after_upload/);
    assert.equal(second.checkpoint.uploaded, true);
    assert.equal(sim.count('ruploadOffset'), 1, 'the resumed upload asked where to start');
    const uploads = sim.count('rupload');
    const third = resume(second, user, media);
    const deps = makeDeps(sim);
    const { result } = await untilDone(third, deps, await chunked.publish(third, deps), chunked);
    assert.equal(result.status, 'published');
    assert.equal(sim.count('rupload'), uploads, 'no byte after the upload was recorded');
    const container = sim.containers.get(String(third.checkpoint.containerId))!;
    assert.deepEqual([container.wireBytes, container.sha256], [small.size, small.sha256]);
    assert.deepEqual([sim.count('create'), sim.posts.length], [1, 1]);
  });
});

test('a session that cannot say its offset: that container is given up (never published) and a new one gets the whole file', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'fb' });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    sim.fault({ route: 'rupload', kind: 'reset', skip: 1, afterBytes: 1000 });
    await rejectsWith(chunked.publish(input, deps));
    const firstId = String(input.checkpoint.containerId);
    sim.fault({ route: 'ruploadOffset', kind: 'respond', status: 405, body: { debug_info: { retriable: false, type: 'MethodNotAllowed', message: 'GET is not supported here' } } });
    const again = resume(input, user, media);
    const { result } = await untilDone(again, deps, await chunked.publish(again, deps), chunked);
    assert.equal(result.status, 'published');
    assert.deepEqual(again.checkpoint.abandoned, [firstId]);
    const container = sim.containers.get(sim.posts[0]!.containerId)!;
    assert.notEqual(container.id, firstId);
    assert.deepEqual([container.wireBytes, container.sha256], [small.size, small.sha256]);
    assert.deepEqual([sim.count('create'), sim.posts.length, sim.containers.get(firstId)?.state], [2, 1, 'IN_PROGRESS']);
  });
});

test('the rupload simulator refuses a wrong offset, missing headers, another auth scheme and an Instagram Login container', async () => {
  await withSim({}, async (sim, media) => {
    const fb = sim.addUser({ host: 'fb' });
    const ig = sim.addUser({ host: 'ig' });
    const form = (params: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() });
    const created = (await (await fetch(`${sim.urls.fb}/v23.0/${fb.userId}/media`, form({ media_type: 'REELS', upload_type: 'resumable', caption: 'x', access_token: fb.accessToken }))).json()) as { id: string; uri: string };
    assert.equal(created.uri, `${sim.urls.rupload}/ig-api-upload/v23.0/${created.id}`);
    const good = { authorization: `OAuth ${fb.accessToken}`, offset: '0', file_size: '20', 'content-type': 'application/octet-stream' };
    const send = async (headers: Record<string, string | undefined>, body: Buffer = Buffer.alloc(10, 1)) => {
      const clean = Object.fromEntries(Object.entries(headers).filter((e): e is [string, string] => e[1] !== undefined));
      const res = await fetch(created.uri, { method: 'POST', headers: clean, body });
      return { status: res.status, message: ((await res.json()) as { debug_info?: { message?: string } }).debug_info?.message ?? '' };
    };
    assert.equal((await send({ ...good, authorization: undefined })).status, 401);
    assert.equal((await send({ ...good, authorization: `Bearer ${fb.accessToken}` })).status, 401, 'the documented scheme is OAuth');
    assert.equal((await send({ ...good, authorization: `OAuth ${ig.accessToken}` })).status, 401, "another login's token");
    assert.equal((await send({ ...good, offset: undefined })).status, 400);
    assert.equal((await send({ ...good, file_size: undefined })).status, 400);
    assert.equal((await send({ ...good, 'content-type': 'video/mp4' })).status, 400);
    const early = await send({ ...good, offset: '5' });
    assert.equal(early.status, 400);
    assert.match(early.message, /offset 5 does not match the 0 bytes/);
    assert.equal((await send(good)).status, 200);
    const offset = (await (await fetch(created.uri, { headers: { authorization: `OAuth ${fb.accessToken}` } })).json()) as { offset: number };
    assert.equal(offset.offset, 10);
    assert.equal((await send(good)).status, 400, 'offset 0 again');
    assert.equal((await send({ ...good, offset: '10', file_size: '21' })).status, 400, 'file_size changed');
    assert.equal((await send({ ...good, offset: '10' }, Buffer.alloc(11))).status, 400, 'past file_size');
    const container = sim.containers.get(created.id)!;
    assert.equal(container.bytes, 10, 'refused POSTs add nothing');
    assert.equal((await send({ ...good, offset: '10' })).status, 200);
    assert.equal(container.fetched, true);
    assert.equal((await send({ ...good, offset: '20' }, Buffer.alloc(1))).status, 400, 'nothing after the end');
    // Publishing before processing is over, and the Instagram Login host, are refused as well.
    const code = async (r: Response) => ((await r.json()) as { error?: { code?: number } }).error?.code;
    assert.equal(await code(await fetch(`${sim.urls.ig}/v23.0/${ig.userId}/media`, form({ media_type: 'REELS', upload_type: 'resumable', access_token: ig.accessToken }))), 100);
    assert.equal(await code(await fetch(`${sim.urls.fb}/v23.0/${fb.userId}/media`, form({ media_type: 'REELS', upload_type: 'resumable', video_url: media.url, access_token: fb.accessToken }))), 100);
    assert.equal((await fetch(`${sim.urls.rupload}/ig-api-upload/v23.0/999`, { method: 'POST', headers: good, body: Buffer.alloc(10) })).status, 404);
  });
});

// ---------------------------------------------------------------------------------------------
// Errors

test('error mapping follows the reference code/subcode table', () => {
  const ctx = { label: 'Instagram', defaultRetryAfterSeconds: 300, publishLimitRetryAfterSeconds: 3600 };
  const e = (code: number, subcode?: number, extra: Record<string, unknown> = {}, status = 400, headers = new Headers()) =>
    mapGraphError(status, { error: { message: 'm', type: 'OAuthException', code, error_subcode: subcode, fbtrace_id: 'x', ...extra } }, headers, Date.now(), ctx);
  assert.deepEqual([e(190, 463).code, e(190, 463).retryable], ['auth', true]);
  assert.deepEqual([e(190, 460).code, e(190, 460).retryable], ['auth', false]);
  assert.deepEqual([e(10).code, e(10).retryable], ['auth', false]);
  assert.deepEqual([e(200).code, e(200).retryable], ['auth', false]);
  for (const code of [4, 17, 32, 613]) {
    const r = e(code);
    assert.deepEqual([r.code, r.retryable, r.retryAfterSeconds], ['rate_limited', true, 300]);
  }
  const buc = e(4, undefined, {}, 400, new Headers({ 'x-business-use-case-usage': '{"1":[{"type":"instagram","call_count":100,"estimated_time_to_regain_access":12}]}' }));
  assert.equal(buc.retryAfterSeconds, 720);
  for (const [code, sub] of [[9, undefined], [4, 2207042]] as const) {
    const r = e(code, sub);
    assert.deepEqual([r.code, r.retryable, r.retryAfterSeconds], ['rate_limited', true, 3600]);
    assert.match(r.userMessage ?? '', /24 hours/);
  }
  for (const sub of [2207001, 2207003, 2207032, 2207053, 2207020]) assert.deepEqual([e(-1, sub).code, e(-1, sub).retryable], ['unavailable', true]);
  assert.deepEqual([e(2, undefined, { is_transient: true }).code, e(100, undefined, { is_transient: true }).retryable], ['unavailable', true]);
  assert.equal(e(1, undefined, {}, 500).code, 'unavailable');
  assert.deepEqual([e(100, 2207026).code, e(100, 2207026).retryable], ['invalid_media', false]);
  assert.equal(e(100, 2207026).detail, MESSAGES.metaUnsupportedVideo('Instagram'));
  assert.deepEqual([e(100, 2207010).code, e(100, 2207057).code, e(100, 2207023).code], ['rejected', 'invalid_media', 'invalid_media']);
  assert.deepEqual([e(100, 2207050).code, e(100, 2207051).code], ['rejected', 'rejected']);
  assert.equal(e(100, 2207051).detail, MESSAGES.metaBlockedAsSpam('Instagram'));
  assert.deepEqual([e(9007, 2207027).code, e(9007, 2207027).retryable], ['unavailable', true]);
  assert.deepEqual([e(100).code, e(100).retryable], ['rejected', false]);
});

test('each error class from the wire: rate limit, 5xx, revoked token, missing permission, unsupported video', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'ig' });
    const deps = makeDeps(sim);
    sim.fault({ route: 'create', kind: 'respond', status: 400, body: { error: { message: '(#4) Application request limit reached', type: 'OAuthException', code: 4, fbtrace_id: 'a' } }, headers: { 'x-app-usage': '{"call_count":100,"estimated_time_to_regain_access":3}' } });
    const limited = await rejectsWith(adapter.publish(makeInput(user, media), deps));
    assert.deepEqual([limited.code, limited.retryAfterSeconds], ['rate_limited', 180]);
    sim.fault({ route: 'create', kind: 'respond', status: 500, body: { error: { message: 'An unexpected error has occurred.', type: 'OAuthException', code: 2, is_transient: true, fbtrace_id: 'b' } } });
    const down = await rejectsWith(adapter.publish(makeInput(user, media), deps));
    assert.deepEqual([down.code, down.retryable], ['unavailable', true]);

    const revoked = sim.addUser({ host: 'ig' });
    sim.revoke(revoked.accessToken);
    const auth = await rejectsWith(adapter.publish(makeInput(revoked, media), deps));
    assert.deepEqual([auth.code, auth.retryable], ['auth', false]);

    // A token that does not say which scopes it has: the sim refuses it with Graph's code 10.
    const unscoped = sim.addUser({ host: 'ig', scope: 'instagram_business_basic' });
    const perm = await rejectsWith(adapter.publish(makeInput(unscoped, media, { credentials: credentialsOf(unscoped, { scope: '' }) }), deps));
    assert.deepEqual([perm.code, perm.retryable, perm.detail], ['auth', false, MESSAGES.metaMissingPermission('Instagram')]);

    sim.failNextContainer('Error: The video format is not supported. (2207026)');
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    await sim.settled();
    const bad = await rejectsWith(untilDone(input, deps, first));
    assert.deepEqual([bad.code, bad.retryable, bad.detail], ['invalid_media', false, MESSAGES.metaUnsupportedVideo('Instagram')]);
    assert.equal(sim.posts.length, 0);
  });
});

test('a link Instagram cannot fetch fails the container: a new one is tried, then it gives up in plain words', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'ig' });
    const deps = makeDeps(sim);
    media.failNext(1);
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    await sim.settled();
    // The first container is ERROR (download failed): replaced by a second, which succeeds.
    const { result } = await untilDone(input, deps, first);
    assert.equal(result.status, 'published');
    assert.equal(sim.count('create'), 2);
    assert.deepEqual(input.checkpoint.abandoned, [first.status === 'processing' ? first.remoteId : '']);
    assert.equal(sim.posts.length, 1);

    media.failNext(100);
    const broken = makeInput(user, media);
    let step: PublishResult = await adapter.publish(broken, deps);
    let error: PublishError | undefined;
    for (let i = 0; i < 20 && !error; i++) {
      await sim.settled();
      try {
        step = await adapter.check(step.status === 'processing' ? step.remoteId : '', broken, deps);
      } catch (e) {
        assert.ok(e instanceof PublishError);
        error = e;
      }
    }
    assert.ok(error);
    assert.deepEqual([error.code, error.retryable, error.detail], ['unavailable', false, MESSAGES.metaFetchFailed('Instagram')]);
    assert.equal(sim.posts.length, 1);
  });
});

test('the publishing limit defers, not fails: rate_limited with the wait in plain words, no publish call', async () => {
  await withSim({ igPublishLimit: 1 }, async (sim, media) => {
    const user = sim.addUser({ host: 'ig' });
    const deps = makeDeps(sim);
    const one = makeInput(user, media);
    assert.equal((await untilDone(one, deps, await adapter.publish(one, deps))).result.status, 'published');
    const two = makeInput(user, media);
    const error = await rejectsWith(untilDone(two, deps, await adapter.publish(two, deps)));
    assert.deepEqual([error.code, error.retryable, error.retryAfterSeconds], ['rate_limited', true, 3600]);
    assert.equal(error.userMessage, MESSAGES.metaPublishLimit('Instagram', '1 hour', 1));
    assert.equal(sim.count('publish'), 1, 'no publish call over the limit');
    assert.ok(two.checkpoint.containerId, 'the container is kept for the retry');
  });
});

test('the simulator refuses what Graph refuses', async () => {
  await withSim({}, async (sim, media) => {
    const ig = sim.addUser({ host: 'ig' });
    const fb = sim.addUser({ host: 'fb' });
    const post = (base: string, path: string, form: Record<string, string>, type = 'application/x-www-form-urlencoded') =>
      fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': type }, body: type.includes('json') ? JSON.stringify(form) : new URLSearchParams(form).toString() });
    const code = async (r: Response) => ((await r.json()) as { error?: { code?: number; error_subcode?: number } }).error;
    // The other login's token on this host.
    assert.equal((await code(await post(sim.urls.ig, `/v23.0/${fb.userId}/media`, { media_type: 'REELS', video_url: media.url, access_token: fb.accessToken })))?.code, 190);
    // VIDEO is for carousel items.
    assert.equal((await code(await post(sim.urls.ig, `/v23.0/${ig.userId}/media`, { media_type: 'VIDEO', video_url: media.url, access_token: ig.accessToken })))?.code, 100);
    // Parameters as JSON.
    assert.equal((await post(sim.urls.ig, `/v23.0/${ig.userId}/media`, { media_type: 'REELS', video_url: media.url, access_token: ig.accessToken }, 'application/json')).status, 400);
    // Another version in the path.
    assert.equal((await post(sim.urls.ig, `/v19.0/${ig.userId}/media`, { media_type: 'REELS', video_url: media.url, access_token: ig.accessToken })).status, 400);
    // Someone else's user id.
    assert.equal((await code(await post(sim.urls.ig, `/v23.0/123/media`, { media_type: 'REELS', video_url: media.url, access_token: ig.accessToken })))?.error_subcode, 33);
    // Publishing a container that is not FINISHED.
    const created = (await (await post(sim.urls.ig, `/v23.0/${ig.userId}/media`, { media_type: 'REELS', video_url: media.url, caption: 'x', access_token: ig.accessToken })).json()) as { id: string };
    const early = await code(await post(sim.urls.ig, `/v23.0/${ig.userId}/media_publish`, { creation_id: created.id, access_token: ig.accessToken }));
    assert.equal(early?.error_subcode, 2207027);
    await sim.settled();
    // Status reads need fields, and only known ones.
    assert.equal((await fetch(`${sim.urls.ig}/v23.0/${created.id}?access_token=${ig.accessToken}`)).status, 400);
    assert.equal((await fetch(`${sim.urls.ig}/v23.0/${created.id}?fields=bogus&access_token=${ig.accessToken}`)).status, 400);
    const finished = (await (await fetch(`${sim.urls.ig}/v23.0/${created.id}?fields=status_code&access_token=${ig.accessToken}`)).json()) as { status_code: string };
    assert.equal(finished.status_code, 'FINISHED');
    assert.equal((await post(sim.urls.ig, `/v23.0/${ig.userId}/media_publish`, { creation_id: created.id, access_token: ig.accessToken })).status, 200);
    // Never twice.
    assert.equal((await code(await post(sim.urls.ig, `/v23.0/${ig.userId}/media_publish`, { creation_id: created.id, access_token: ig.accessToken })))?.code, 100);
    assert.equal(sim.posts.length, 1);
    // No token at all.
    assert.equal((await fetch(`${sim.urls.ig}/v23.0/${ig.userId}/content_publishing_limit?fields=quota_usage`)).status, 400);
  });
});

// ---------------------------------------------------------------------------------------------
// Tokens

test('token expiry mid-flow: a retryable auth error, a forced refresh, the same container publishes', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'ig' });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    await sim.settled();
    sim.fault({ route: 'status', kind: 'respond', status: 400, body: { error: { message: 'Error validating access token: Session has expired.', type: 'OAuthException', code: 190, error_subcode: 463, fbtrace_id: 'c' } } });
    const expired = await rejectsWith(adapter.check(first.status === 'processing' ? first.remoteId : '', input, deps));
    assert.deepEqual([expired.code, expired.retryable], ['auth', true]);
    // What the worker does next: a forced refresh, then the same step again.
    const refreshed = await adapter.refresh!(input.credentials, deps, { force: true });
    assert.ok(refreshed);
    assert.notEqual(refreshed.credentials.accessToken, user.accessToken);
    const again = resume(input, user, media, refreshed.credentials);
    const { result } = await untilDone(again, deps, await adapter.check('', again, deps));
    assert.equal(result.status, 'published');
    assert.equal(sim.count('create'), 1);
    assert.equal(sim.posts.length, 1);
  });
});

test('refresh: Instagram Login by ig_refresh_token inside the window; Facebook Login by fb_exchange_token; expired needs re-auth', async () => {
  const c = clock();
  await withSim({ now: c.now }, async (sim) => {
    const deps = makeDeps(sim, { now: c.now });
    const ig = sim.addUser({ host: 'ig', ageMs: 55 * DAY, lifetimeMs: 60 * DAY });
    const result = await adapter.refresh!(credentialsOf(ig), deps, { force: false });
    assert.ok(result?.expiresAt);
    assert.ok(Math.abs(result.expiresAt.getTime() - (c.now() + 60 * DAY)) < 5000);
    const parsed = instagramCredentialsSchema.parse(result.credentials);
    assert.equal(parsed.loginType, 'instagram');
    assert.equal(sim.count('refresh'), 1);
    // Far from expiry: nothing to do.
    const fresh = sim.addUser({ host: 'ig', ageMs: 2 * DAY });
    assert.equal(await adapter.refresh!(credentialsOf(fresh), deps, { force: false }), null);
    // Within the window but younger than 24 h: wait (Instagram would refuse).
    const young = sim.addUser({ host: 'ig', ageMs: 3600_000, lifetimeMs: 3 * DAY });
    assert.equal(await adapter.refresh!(credentialsOf(young), deps, { force: false }), null);
    // The window is configurable.
    const wide = createInstagramAdapter({ refreshWithinDays: 59 });
    assert.ok(await wide.refresh!(credentialsOf(fresh), deps, { force: false }));

    const fb = sim.addUser({ host: 'fb', ageMs: 58 * DAY, lifetimeMs: 60 * DAY });
    const exchanged = await adapter.refresh!(credentialsOf(fb), deps, { force: false });
    assert.ok(exchanged);
    assert.equal(sim.count('exchange'), 1);
    assert.equal(sim.tokenInfo(String(exchanged.credentials.accessToken))?.host, 'fb');
    // Facebook Login without the app's credentials: an unforced refresh lets the token serve on.
    assert.equal(await adapter.refresh!(credentialsOf(fb), makeDeps(sim, { now: c.now, oauthClient: null }), { force: false }), null);
    // A page-linked token that does not expire needs nothing.
    assert.equal(await adapter.refresh!(credentialsOf(fb, { expiresAt: undefined }), deps, { force: false }), null);

    c.advance(61 * DAY);
    const gone = await rejectsWith(adapter.refresh!(credentialsOf(ig), deps, { force: true }));
    assert.deepEqual([gone.code, gone.retryable], ['auth', false]);
    // A refusal from the refresh endpoint is final too.
    const revoked = sim.addUser({ host: 'ig', ageMs: 2 * DAY });
    sim.revoke(revoked.accessToken);
    const refused = await rejectsWith(adapter.refresh!(credentialsOf(revoked), deps, { force: true }));
    assert.deepEqual([refused.code, refused.retryable], ['auth', false]);
  });
});

test('a token that really expired mid-flow: the forced refresh cannot renew it, so the account needs re-linking', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'ig' });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    await sim.settled();
    sim.fault({ route: 'status', kind: 'expireToken' });
    const expired = await rejectsWith(adapter.check(first.status === 'processing' ? first.remoteId : '', input, deps));
    assert.deepEqual([expired.code, expired.retryable], ['auth', true]);
    const refused = await rejectsWith(adapter.refresh!(input.credentials, deps, { force: true }));
    assert.deepEqual([refused.code, refused.retryable], ['auth', false]);
    assert.equal(sim.posts.length, 0);
  });
});

test('an unforced refresh that fails days before expiry keeps the current token; a stored scope list without publishing is refused up front', async () => {
  await withSim({}, async (sim, media) => {
    const deps = makeDeps(sim);
    const user = sim.addUser({ host: 'ig', ageMs: 55 * DAY });
    sim.fault({ route: 'refresh', kind: 'respond', status: 500, body: { error: { message: 'oops', type: 'OAuthException', code: 2, fbtrace_id: 'r' } } });
    assert.equal(await adapter.refresh!(credentialsOf(user), deps, { force: false }), null);
    const forced = await rejectsWith((sim.fault({ route: 'refresh', kind: 'respond', status: 500, body: { error: { message: 'oops', type: 'OAuthException', code: 2, fbtrace_id: 'r' } } }), adapter.refresh!(credentialsOf(user), deps, { force: true })));
    assert.deepEqual([forced.code, forced.retryable], ['unavailable', true]);
    const readOnly = sim.addUser({ host: 'fb', scope: 'instagram_basic' });
    const before = sim.log.length;
    const error = await rejectsWith(adapter.publish(makeInput(readOnly, media), deps));
    assert.deepEqual([error.code, error.retryable, error.detail], ['auth', false, MESSAGES.metaMissingPermission('Instagram')]);
    assert.equal(sim.log.length, before);
  });
});

// ---------------------------------------------------------------------------------------------
// Exactly once

test('crash right after media_publish returned: the resumed attempt reads PUBLISHED and finds the post; one post', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'ig' });
    const input = makeInput(user, media);
    const crashing = makeDeps(sim, { crashAt: 'instagram.after_publish' });
    const first = await adapter.publish(input, crashing);
    await sim.settled();
    await assert.rejects(adapter.check(first.status === 'processing' ? first.remoteId : '', input, crashing), /crash at instagram.after_publish/);
    assert.equal(sim.posts.length, 1);
    assert.ok(input.checkpoint.publishSentAt, 'the publish call was marked before it was sent');
    const again = resume(input, user, media);
    const result = await adapter.publish(again, makeDeps(sim));
    assert.equal(result.status, 'published');
    assert.equal(result.status === 'published' && result.remoteId, sim.posts[0]!.id);
    assert.equal(result.status === 'published' && result.url, sim.posts[0]!.permalink);
    assert.equal(sim.count('publish'), 1, 'never a second media_publish');
  });
});

test('media_publish answer lost after it took effect: the same attempt reads the container and reports the post', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'fb' });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    await sim.settled();
    sim.fault({ route: 'publish', kind: 'resetAfterCommit' });
    const { result } = await untilDone(input, deps, first);
    assert.equal(result.status, 'published');
    assert.equal(result.status === 'published' && result.remoteId, sim.posts[0]!.id);
    assert.equal(sim.count('publish'), 1);
    assert.equal(sim.posts.length, 1);
  });
});

test('media_publish lost before it took effect: outcome unknown; the retry sees FINISHED and publishes once', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'ig' });
    const deps = makeDeps(sim);
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    await sim.settled();
    sim.fault({ route: 'publish', kind: 'reset' });
    const error = await rejectsWith(untilDone(input, deps, first));
    assert.deepEqual([error.code, error.outcomeUnknown], ['unavailable', true]);
    assert.equal(sim.posts.length, 0);
    const again = resume(input, user, media);
    const result = await adapter.publish(again, deps);
    assert.equal(result.status, 'published');
    assert.equal(sim.posts.length, 1);
    assert.equal(sim.count('create'), 1, 'the same container');
  });
});

test('crash right after the container was created: the resume polls it, no second container', async () => {
  await withSim({}, async (sim, media) => {
    const user = sim.addUser({ host: 'ig' });
    const input = makeInput(user, media);
    await assert.rejects(adapter.publish(input, makeDeps(sim, { crashAt: 'instagram.after_container' })), /crash/);
    assert.ok(input.checkpoint.containerId);
    const again = resume(input, user, media);
    const deps = makeDeps(sim);
    const { result } = await untilDone(again, deps, await adapter.publish(again, deps));
    assert.equal(result.status, 'published');
    assert.equal(sim.count('create'), 1);
    assert.equal(sim.posts.length, 1);
  });
});

test('an expired container is replaced, never published', async () => {
  const c = clock();
  await withSim({ now: c.now }, async (sim, media) => {
    const user = sim.addUser({ host: 'ig' });
    const deps = makeDeps(sim, { now: c.now });
    const input = makeInput(user, media);
    const first = await adapter.publish(input, deps);
    await sim.settled();
    c.advance(25 * 3600_000);
    const { result } = await untilDone(input, deps, await adapter.check(first.status === 'processing' ? first.remoteId : '', input, deps));
    assert.equal(result.status, 'published');
    assert.equal(sim.count('create'), 2);
    assert.equal(sim.posts[0]!.containerId === (first.status === 'processing' ? first.remoteId : ''), false);
  });
});

/**
 * Instagram Login: the signed media link served by Reelay. Facebook Login: the rendition read from
 * its large object in ranges and uploaded to rupload, with a crash after the upload as well.
 */
async function throughTheWorker(host: 'ig' | 'fb'): Promise<void> {
  const [{ testContext }, { ensureWorkspace }, { upsertAccount, readCredentials }, { submitPost }, { listDeliveries, getDelivery }, { startWorker }, { makeClip }, { startHttp }] = await Promise.all([
    import('../../support/context.ts'),
    import('../../../core/workspaces.ts'),
    import('../../../core/accounts.ts'),
    import('../../../core/intake.ts'),
    import('../../../core/posts.ts'),
    import('../../../worker/main.ts'),
    import('../../support/clips.ts'),
    import('../../../bot/http.ts'),
  ]);
  const { createServer } = await import('node:http');
  // A free port for Reelay's own HTTP server, so PUBLIC_BASE_URL can name it before it starts.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  await withSim({ processingPolls: 1 }, async (sim) => {
    const ctx = await testContext({
      env: { INSTAGRAM_GRAPH_URL: sim.urls.ig, FACEBOOK_GRAPH_URL: sim.urls.fb, FACEBOOK_RUPLOAD_URL: sim.urls.rupload, PUBLIC_BASE_URL: `http://127.0.0.1:${port}`, META_APP_ID: CLIENT.clientId, META_APP_SECRET: CLIENT.clientSecret },
    });
    const http = await startHttp(ctx, { host: '127.0.0.1', port, checks: [] });
    try {
      await ensureWorkspace(ctx.pool, 'cli', 'UTC');
      // Five days left on a 55-day-old token: the worker refreshes it before publishing.
      const user = sim.addUser({ host, username: 'worker_reels', ageMs: 55 * DAY, lifetimeMs: 60 * DAY });
      const account = await upsertAccount(ctx.pool, ctx.secrets, {
        workspaceId: 'cli',
        platform: 'instagram',
        handle: user.username,
        remoteId: user.userId,
        credentials: credentialsOf(user),
        expiresAt: user.expiresAt,
      });
      const crashAt = new Set(host === 'ig' ? ['instagram.after_publish'] : ['instagram.after_upload', 'instagram.after_publish']);
      let crashes = 0;
      const crashOnce = (deps: PlatformDeps): PlatformDeps => ({
        ...deps,
        crashPoint: (name) => {
          if (crashAt.delete(name)) {
            crashes++;
            throw new Error(`crash at ${name}`);
          }
        },
      });
      const fastPolls = createInstagramAdapter({ firstCheckSeconds: 1, checkSeconds: 1 });
      const crashing = { ...fastPolls, publish: (input: PublishInput, deps: PlatformDeps) => fastPolls.publish(input, crashOnce(deps)), check: (id: string, input: PublishInput, deps: PlatformDeps) => fastPolls.check(id, input, crashOnce(deps)) };
      const worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, adapters: { instagram: crashing } });
      try {
        const clip = makeClip(join(ctx.dir, 'clip.mp4'), { width: 1080, height: 1920, seconds: 3.5 });
        const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'From the worker #reelay', targets: [{ platform: 'instagram', handle: null }] });
        const [row] = await listDeliveries(ctx.pool, post.id);
        const deadline = Date.now() + 60_000;
        let delivery = await getDelivery(ctx.pool, row!.id);
        while (delivery && !['published', 'failed', 'unconfirmed'].includes(delivery.state) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          delivery = await getDelivery(ctx.pool, row!.id);
        }
        assert.equal(delivery?.state, 'published', `${delivery?.state}: ${delivery?.error ?? ''}`);
        assert.equal(sim.posts.length, 1, 'exactly one reel');
        assert.equal(sim.count('publish'), 1);
        assert.equal(crashes, host === 'ig' ? 1 : 2);
        assert.equal(delivery?.remote_id, sim.posts[0]!.id);
        assert.equal(delivery?.url, sim.posts[0]!.permalink);
        const container = sim.containers.get(sim.posts[0]!.containerId)!;
        if (host === 'ig') {
          assert.ok(container.videoUrl.startsWith(`http://127.0.0.1:${port}/media/`), 'the signed link');
          assert.ok(container.bytes > 0 && container.sha256, 'Instagram fetched the rendition through the signed link');
        } else {
          assert.equal(container.videoUrl, '');
          assert.ok(container.sha256 && container.bytes > 0 && container.wireBytes === container.bytes, 'the rendition was uploaded once, whole');
          assert.equal(sim.count('create'), 1);
        }
        assert.ok(sim.count('status') >= 2, 'processing was polled');
        const stored = instagramCredentialsSchema.parse(await readCredentials(ctx.pool, ctx.secrets, account.id));
        assert.notEqual(stored.accessToken, user.accessToken, 'the refreshed token was stored');
        assert.ok(Date.parse(stored.expiresAt ?? '') > Date.now() + 59 * DAY);
      } finally {
        await worker.stop();
      }
    } finally {
      await http.close();
      await ctx.dispose();
    }
  });
}

for (const host of ['ig', 'fb'] as const) {
  test(`through the worker (${host === 'ig' ? 'Instagram Login, the signed link' : 'Facebook Login, resumable upload'}): a token refresh, polling by re-queued jobs, crashes: one reel`, () => throughTheWorker(host));
}

// ---------------------------------------------------------------------------------------------
// Memory

let big: { path: string; size: number; sha256: string } | undefined;

async function publishBigFile(host: 'ig' | 'fb'): Promise<void> {
  if (!big) {
    const path = join(dir, 'big.mp4');
    const size = 200 * MiB + 3;
    big = { path, size, sha256: randomFile(path, size) };
  }
  const { path, size, sha256 } = big;
  const adapterUrl = new URL('../../../worker/platforms/instagram.ts', import.meta.url).href;
  const simUrl = new URL('../../sim/graph.ts', import.meta.url).href;
  const logUrl = new URL('../../../core/log.ts', import.meta.url).href;
  // The simulator and the file server run in the child too: the whole path, fetch included, is
  // under the 64 MB heap.
  const script = `
    import { getHeapStatistics } from 'node:v8';
    import { createReadStream } from 'node:fs';
    const { instagram } = await import(${JSON.stringify(adapterUrl)});
    const { startGraphSim, startMediaServer } = await import(${JSON.stringify(simUrl)});
    const { createLogger } = await import(${JSON.stringify(logUrl)});
    const args = JSON.parse(process.argv[1]);
    const sim = await startGraphSim({ processingPolls: 0 });
    const media = await startMediaServer({ path: args.path, size: args.size });
    const user = sim.addUser({ host: args.host });
    const baseRss = process.memoryUsage().rss;
    let peakRss = 0, peakHeap = 0;
    const sample = () => { const m = process.memoryUsage(); peakRss = Math.max(peakRss, m.rss); peakHeap = Math.max(peakHeap, m.heapUsed); };
    const timer = setInterval(sample, 25);
    const rendition = { id: 'big', size: args.size, sha256: args.sha256, contentType: 'video/mp4', width: 1080, height: 1920, durationSeconds: 60, open: async (r) => { if (args.host === 'ig') throw new Error('not read'); return createReadStream(args.path, r ? { start: r.start, end: r.end } : {}); } };
    const checkpoint = {};
    const input = { deliveryId: 'big', createdAt: new Date(), caption: 'big file', rendition, account: { id: 'a', handle: user.username, remoteId: user.userId },
      credentials: { loginType: args.host === 'ig' ? 'instagram' : 'facebook', accessToken: user.accessToken, expiresAt: user.expiresAt.toISOString(), scope: user.scope, userId: user.userId },
      mediaUrl: args.host === 'ig' ? media.url : null, checkpoint, saveCheckpoint: async (p) => { for (const [k, v] of Object.entries(p)) { if (v === null) delete checkpoint[k]; else checkpoint[k] = v; } } };
    const deps = { fetch, signal: new AbortController().signal, log: createLogger({ level: 'silent' }), now: () => Date.now(), urls: sim.instagramUrls, oauthClient: null, crashPoint: () => {} };
    const started = Date.now();
    let result = await instagram.publish(input, deps);
    while (result.status === 'processing') { await new Promise((r) => setTimeout(r, 50)); result = await instagram.check(result.remoteId, input, deps); }
    clearInterval(timer); sample();
    const container = [...sim.containers.values()][0];
    console.log(JSON.stringify({ result, baseRss, peakRss, peakHeap, heapLimit: getHeapStatistics().heap_size_limit, ms: Date.now() - started, bytes: container.bytes, sha256: container.sha256, posts: sim.posts.length }));
    await sim.close(); await media.close();
  `;
  const child = spawn(process.execPath, ['--max-old-space-size=64', '--input-type=module', '-e', script, JSON.stringify({ size, sha256, path, host })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, err.slice(-3000));
  const report = JSON.parse(out.trim().split('\n').at(-1)!) as { result: PublishResult; baseRss: number; peakRss: number; peakHeap: number; heapLimit: number; ms: number; bytes: number; sha256: string; posts: number };
  const growth = report.peakRss - report.baseRss;
  console.log(
    `instagram 200 MB publish (${host === 'ig' ? 'link' : 'rupload'}): ${report.ms} ms; RSS ${(report.baseRss / MiB).toFixed(1)} MiB after loading, peak ${(report.peakRss / MiB).toFixed(1)} MiB ` +
      `(+${(growth / MiB).toFixed(1)} MiB); peak heap ${(report.peakHeap / MiB).toFixed(1)} MiB of ${(report.heapLimit / MiB).toFixed(0)} MiB`,
  );
  assert.equal(report.result.status, 'published');
  assert.ok(report.heapLimit < 128 * MiB, `the child really ran with a small heap (${report.heapLimit})`);
  assert.ok(growth < 64 * MiB, `memory grew by ${(growth / MiB).toFixed(1)} MiB for a 200 MiB file`);
  assert.equal(report.bytes, size);
  assert.equal(report.sha256, sha256);
  assert.equal(report.posts, 1);
}

for (const host of ['ig', 'fb'] as const) {
  test(`a 200 MB file publishes from a process with a 64 MB heap (${host === 'ig' ? 'fetched from the link' : 'resumable upload'}): nothing is buffered`, () => publishBigFile(host));
}

test('validate: one profile read on the login\'s own host; revoked and expired tokens are auth, and the simulator refuses what Graph refuses', async () => {
  await withSim({}, async (sim) => {
    assert.ok(adapter.validate);
    const deps = makeDeps(sim);
    const last = () => sim.log.at(-1)!;
    const ig = sim.addUser({ host: 'ig' });
    await adapter.validate(credentialsOf(ig), deps);
    assert.deepEqual([last().host, last().route, last().path, last().status], ['ig', 'user', '/v23.0/me', 200]);
    const fb = sim.addUser({ host: 'fb' });
    await adapter.validate(credentialsOf(fb), deps);
    assert.deepEqual([last().host, last().route, last().path, last().status], ['fb', 'user', `/v23.0/${fb.userId}`, 200]);
    await adapter.validate(credentialsOf(fb, { userId: undefined }), deps);
    assert.deepEqual([last().host, last().path, last().status], ['fb', '/v23.0/me', 200]);

    const revoked = sim.addUser({ host: 'ig' });
    sim.revoke(revoked.accessToken);
    let error = await rejectsWith(adapter.validate(credentialsOf(revoked), deps));
    assert.deepEqual([error.code, error.retryable, last().status], ['auth', false, 400]);
    const expired = sim.addUser({ host: 'fb', ageMs: 61 * DAY });
    error = await rejectsWith(adapter.validate(credentialsOf(expired), deps));
    assert.deepEqual([error.code, error.retryable], ['auth', true], 'an expired session: the daily check forces a refresh');
    error = await rejectsWith(adapter.validate(credentialsOf(fb, { accessToken: ig.accessToken }), deps));
    assert.equal(error.code, 'auth', "the other login's token is not accepted");
    const noBasic = sim.addUser({ host: 'ig', scope: 'instagram_business_content_publish' });
    error = await rejectsWith(adapter.validate(credentialsOf(noBasic), deps));
    assert.deepEqual([error.code, error.retryable], ['auth', false]);
    assert.equal(sim.count('user'), 7);

    const get = async (host: 'ig' | 'fb', path: string, token: string) => {
      const response = await fetch(`${sim.urls[host]}/v23.0/${path}${path.includes('?') ? '&' : '?'}access_token=${token}`);
      return { status: response.status, code: ((await response.json()) as { error?: { code?: number } }).error?.code };
    };
    assert.deepEqual(await get('ig', 'me?fields=user_id,followers_secret', ig.accessToken), { status: 400, code: 100 });
    assert.deepEqual(await get('fb', `${ig.userId}?fields=id`, fb.accessToken), { status: 400, code: 100 }, "another account's node");
    assert.deepEqual(await get('fb', `${fb.userId}?fields=id,username`, 'EAABforged'), { status: 400, code: 190 });
  });
});
