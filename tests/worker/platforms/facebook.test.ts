/**
 * The Facebook Page Reels adapter against the protocol simulator in tests/sim/facebook.ts, plus a
 * memory test that publishes a file larger than the heap limit from a child process.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PublishError } from '../../../core/errors.ts';
import { createLogger } from '../../../core/log.ts';
import type { Checkpoint, Credentials, PlatformDeps, PublishInput, PublishResult, RenditionHandle } from '../../../core/platforms.ts';
import { createFacebookAdapter, facebook, facebookCredentialsSchema, mapFacebookError } from '../../../worker/platforms/facebook.ts';
import { SIM_VERSION, startFacebookSim, type FacebookSim, type FacebookSimOptions, type SimPage } from '../../sim/facebook.ts';
import { randomFile } from '../../support/files.ts';
import { freePort } from '../../support/net.ts';

const MiB = 1024 * 1024;
const CLIENT = { clientId: 'meta-app', clientSecret: 'meta-secret' };
let dir: string;
let small: RenditionHandle;
let smallPath: string;


before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-fb-test-'));
  smallPath = join(dir, 'small.bin');
  const size = 3 * MiB + 77;
  const sha256 = randomFile(smallPath, size);
  small = {
    id: 'small', size, sha256, contentType: 'video/mp4', width: 1080, height: 1920, durationSeconds: 20,
    open: async (r) => createReadStream(smallPath, r ? { start: r.start, end: r.end } : {}),
  };
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function withSim(options: Partial<FacebookSimOptions>, fn: (sim: FacebookSim) => Promise<void>): Promise<void> {
  const sim = await startFacebookSim({ client: CLIENT, ...options });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

type Deps = PlatformDeps & { crashPoints: string[] };

function makeDeps(sim: FacebookSim, crashAt?: string, now: () => number = () => Date.now()): Deps {
  const crashPoints: string[] = [];
  return {
    fetch: globalThis.fetch,
    signal: new AbortController().signal,
    log: createLogger({ level: 'silent' }),
    now,
    urls: { graph: sim.url, rupload: sim.url },
    oauthClient: CLIENT,
    crashPoint: (name) => {
      crashPoints.push(name);
      if (name === crashAt) throw new Error(`crash at ${name}`);
    },
    crashPoints,
  };
}

function credentialsOf(page: SimPage, overrides: Partial<Credentials> = {}): Credentials {
  return { userAccessToken: page.userToken, userTokenExpiresAt: page.userTokenExpiresAt.toISOString(), pageId: page.pageId, pageAccessToken: page.pageToken, ...overrides };
}

type Input = PublishInput & { saves: Checkpoint[] };

function makeInput(page: SimPage, overrides: { caption?: string; checkpoint?: Checkpoint; credentials?: Credentials; mediaUrl?: string | null } = {}): Input {
  const saves: Checkpoint[] = [];
  const input: Input = {
    deliveryId: randomUUID(),
    createdAt: new Date(),
    caption: overrides.caption ?? 'A reel #reelay',
    rendition: small,
    account: { id: 'acc', handle: page.name, remoteId: page.pageId },
    credentials: overrides.credentials ?? credentialsOf(page),
    mediaUrl: overrides.mediaUrl ?? null,
    checkpoint: JSON.parse(JSON.stringify(overrides.checkpoint ?? {})) as Checkpoint,
    saves,
    async saveCheckpoint(patch) {
      const copy = JSON.parse(JSON.stringify(patch)) as Checkpoint;
      saves.push(copy);
      Object.assign(input.checkpoint, copy);
    },
  };
  return input;
}

function resume(previous: Input, credentials?: Credentials): Input {
  const next = makeInput({ pageId: previous.account.remoteId ?? '', name: previous.account.handle } as SimPage, {
    caption: previous.caption, checkpoint: previous.checkpoint, credentials: credentials ?? previous.credentials, mediaUrl: previous.mediaUrl,
  });
  return Object.assign(next, { deliveryId: previous.deliveryId });
}

async function rejectsWith(promise: Promise<unknown>): Promise<PublishError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PublishError, `expected a PublishError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

const fast = createFacebookAdapter({ requestTimeoutMs: 2_000, graphVersion: SIM_VERSION });

test('publish: start, checkpoint the video id, stream the bytes, finish once, published with the permalink', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    const deps = makeDeps(sim);
    const input = makeInput(page, { caption: 'Hello 👋 #reelay' });
    const result = await facebook.publish(input, deps);
    const video = sim.videos[0]!;
    assert.deepEqual(result, { status: 'published', remoteId: video.id, url: `https://www.facebook.com/reel/${video.id}` });
    assert.deepEqual(sim.requests.map((r) => `${r.route}:${r.status}`), ['start:200', 'upload:200', 'finish:200', 'status:200']);
    assert.equal(video.sha256, small.sha256);
    assert.equal(video.description, 'Hello 👋 #reelay');
    assert.equal(video.finishCalls, 1);
    assert.deepEqual(deps.crashPoints, ['facebook.after_upload', 'facebook.after_finish']);
    const firstSave = input.saves[0]!.video as { videoId: string };
    assert.equal(firstSave.videoId, video.id, 'the video id is saved before the upload');
    const sentAt = input.saves.findIndex((s) => typeof s.finishSentAt === 'string');
    assert.ok(sentAt > 0 && input.saves.findIndex((s) => s.finished === true) > sentAt);
  });
});

test('the bytes and the Page token go to the configured rupload host, whatever host the start answer names', async () => {
  await withSim({}, async (sim) => {
    // A port nothing listens on: a token sent there would be a token sent somewhere unintended.
    sim.publicUrl = `http://127.0.0.1:${await freePort()}`;
    const page = sim.addPage();
    const result = await facebook.publish(makeInput(page), makeDeps(sim));
    assert.equal(result.status, 'published');
    assert.deepEqual(sim.requests.filter((r) => r.route === 'upload').map((r) => r.status), [200]);
    assert.equal(sim.videos[0]!.sha256, small.sha256);
  });
});

test('chunks: each upload POST carries the next offset and the total file_size; the bytes arrive whole', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    const chunked = createFacebookAdapter({ graphVersion: SIM_VERSION, chunkBytes: MiB, requestTimeoutMs: 2_000 });
    const result = await chunked.publish(makeInput(page), makeDeps(sim));
    assert.equal(result.status, 'published');
    const uploads = sim.requests.filter((r) => r.route === 'upload');
    assert.deepEqual(uploads.map((r) => [r.offset, r.bytes, r.status]), [[0, MiB, 200], [MiB, MiB, 200], [2 * MiB, MiB, 200], [3 * MiB, 77, 200]]);
    assert.equal(sim.videos[0]!.sha256, small.sha256);
  });
});

test('processing: publish returns processing; check is one status read per call until published', async () => {
  await withSim({ processingPolls: 2 }, async (sim) => {
    const page = sim.addPage();
    const deps = makeDeps(sim);
    const input = makeInput(page);
    const first = await fast.publish(input, deps);
    assert.equal(first.status, 'processing');
    const id = first.status === 'processing' ? first.remoteId : '';
    const before = sim.requests.length;
    const second = await fast.check(id, resume(input), deps);
    assert.equal(second.status, 'processing');
    assert.equal(sim.requests.length, before + 1);
    const third = await fast.check(id, resume(input), deps);
    assert.equal(third.status, 'published');
    assert.equal(sim.videos[0]!.finishCalls, 1);
  });
});

test('processing that fails is invalid_media in plain words', async () => {
  await withSim({ processingPolls: 1 }, async (sim) => {
    const page = sim.addPage();
    sim.failNextProcessing();
    const error = await rejectsWith(fast.publish(makeInput(page), makeDeps(sim)));
    assert.equal(error.code, 'invalid_media');
    assert.equal(error.retryable, false);
    assert.match(error.detail, /could not be decoded/);
  });
});

test('caption over 2200 characters is refused before anything is sent', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    const error = await rejectsWith(fast.publish(makeInput(page, { caption: 'é'.repeat(2201) }), makeDeps(sim)));
    assert.equal(error.code, 'rejected');
    assert.match(error.detail, /2201 characters.*2200/);
    assert.equal(sim.requests.length, 0);
    const ok = await fast.publish(makeInput(page, { caption: '👍'.repeat(2200) }), makeDeps(sim));
    assert.equal(ok.status, 'published');
  });
});

test('error mapping follows the reference', () => {
  const h = new Headers();
  const e = (code: number, extra: Record<string, unknown> = {}, status = 400) => mapFacebookError(status, { error: { message: 'x', code, ...extra } }, h);
  assert.deepEqual([e(190).code, e(190).retryable], ['auth', true]);
  assert.deepEqual([e(10).code, e(10).retryable], ['auth', false]);
  assert.deepEqual([e(200).code, e(200).retryable], ['auth', false]);
  assert.equal(e(1404078).code, 'rejected');
  for (const code of [4, 17, 32, 613, 1390008]) assert.equal(e(code).code, 'rate_limited');
  for (const code of [1, 2, 1363047, 1609010]) assert.equal(e(code).code, 'unavailable');
  assert.equal(e(100, { is_transient: true }).code, 'unavailable');
  assert.equal(e(100).code, 'rejected');
  assert.equal(e(2069019).code, 'invalid_media');
  assert.equal(e(1346003).code, 'rejected');
  assert.equal(e(368).code, 'rejected');
  assert.equal(mapFacebookError(503, 'oops', h).code, 'unavailable');
  assert.equal(mapFacebookError(418, {}, h).code, 'unknown');
  const buc = mapFacebookError(400, { error: { message: 'x', code: 80001 } }, new Headers({ 'x-business-use-case-usage': '{"1":[{"estimated_time_to_regain_access":7}]}' }));
  assert.deepEqual([buc.code, buc.retryAfterSeconds], ['rate_limited', 420]);
});

test('the 30 reels per 24 h cap defers with a time and plain words; nothing is published twice', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    sim.seedPublished(page, 30);
    const input = makeInput(page);
    const error = await rejectsWith(fast.publish(input, makeDeps(sim)));
    assert.equal(error.code, 'rate_limited');
    assert.equal(error.retryable, true);
    assert.equal(error.retryAfterSeconds, 3600);
    assert.match(error.userMessage ?? '', /30 reels in 24 hours; Reelay will try again around \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    assert.equal(input.checkpoint.finishSentAt, null, 'a definite refusal clears the finish mark');
  });
});

test('each error class from the wire: 5xx, transient, 429 with Retry-After, permission', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    sim.fault('start', { kind: 'error', status: 500, body: { error: { message: 'An unknown error occurred', code: 1, is_transient: true } } });
    assert.equal((await rejectsWith(fast.publish(makeInput(page), makeDeps(sim)))).code, 'unavailable');
    sim.fault('start', { kind: 'error', status: 429, body: { error: { message: 'Too many calls', code: 32 } }, headers: { 'retry-after': '120' } });
    const limited = await rejectsWith(fast.publish(makeInput(page), makeDeps(sim)));
    assert.deepEqual([limited.code, limited.retryAfterSeconds], ['rate_limited', 120]);
    sim.fault('start', { kind: 'error', status: 403, body: { error: { message: '(#200) Permissions error', code: 200 } } });
    const denied = await rejectsWith(fast.publish(makeInput(page), makeDeps(sim)));
    assert.deepEqual([denied.code, denied.retryable], ['auth', false]);
    assert.match(denied.detail, /Create content task/);
    sim.fault('start', { kind: 'hang' });
    const hung = await rejectsWith(fast.publish(makeInput(page), makeDeps(sim)));
    assert.deepEqual([hung.code, hung.retryable], ['unavailable', true]);
    assert.equal(sim.published().length, 0);
  });
});

test('the simulator refuses what Facebook refuses', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    const graph = `${sim.url}/${SIM_VERSION}/${page.pageId}/video_reels`;
    const post = (body: Record<string, string>, type = 'application/x-www-form-urlencoded') => fetch(graph, { method: 'POST', headers: { 'content-type': type }, body: new URLSearchParams(body).toString() });
    assert.equal((await post({ upload_phase: 'start', access_token: 'nope' })).status, 401);
    assert.equal((await post({ upload_phase: 'start', access_token: page.userToken })).status, 400, 'a user token is not a Page token');
    assert.equal((await post({ upload_phase: 'start', access_token: page.pageToken }, 'application/json')).status, 400);
    const start = (await (await post({ upload_phase: 'start', access_token: page.pageToken })).json()) as { video_id: string; upload_url: string };
    assert.equal((await post({ upload_phase: 'finish', video_id: start.video_id, video_state: 'PUBLISHED', access_token: page.pageToken })).status, 400, 'finish before upload');
    const up = (headers: Record<string, string>, body: Buffer) => fetch(start.upload_url, { method: 'POST', headers, body });
    assert.equal((await up({ offset: '0', file_size: '4' }, Buffer.from('abcd'))).status, 401, 'no OAuth header');
    assert.equal((await up({ authorization: `OAuth ${page.pageToken}`, offset: '2', file_size: '4' }, Buffer.from('cd'))).status, 400, 'wrong offset');
    assert.equal((await up({ authorization: `OAuth ${page.pageToken}`, offset: '0', file_size: '4' }, Buffer.from('abcd'))).status, 200);
    const finish = { upload_phase: 'finish', video_id: start.video_id, video_state: 'PUBLISHED', access_token: page.pageToken };
    assert.equal((await post(finish)).status, 200);
    assert.equal((await post(finish)).status, 400, 'a finished video is not finished twice');
  });
});

test('token expiry mid-upload: retryable auth, a forced refresh derives a new Page token, the upload resumes at the offset', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    const deps = makeDeps(sim);
    const input = makeInput(page);
    sim.fault('upload', { kind: 'reset', afterBytes: MiB });
    const first = await rejectsWith(fast.publish(input, deps));
    assert.equal(first.code, 'unavailable');
    sim.expirePageToken(page);
    const expired = await rejectsWith(fast.publish(resume(input), deps));
    assert.deepEqual([expired.code, expired.retryable], ['auth', true]);
    const refreshed = await fast.refresh!(input.credentials, deps, { force: true });
    assert.ok(refreshed);
    assert.equal(facebookCredentialsSchema.parse(refreshed.credentials).pageAccessToken, page.pageToken);
    const result = await fast.publish(resume(input, refreshed.credentials), deps);
    assert.equal(result.status, 'published');
    assert.equal(sim.videos.length, 1, 'the same video continued');
    const offsets = sim.requests.filter((r) => r.route === 'upload' && r.status === 200).map((r) => r.offset);
    assert.deepEqual(offsets, [MiB]);
    assert.equal(sim.videos[0]!.sha256, small.sha256);
  });
});

test('refresh: derives a missing Page token, exchanges a near-expiry user token, a dead login needs re-linking', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    const deps = makeDeps(sim);
    assert.equal(await fast.refresh!(credentialsOf(page), deps, { force: false }), null);
    const derived = await fast.refresh!(credentialsOf(page, { pageAccessToken: undefined }), deps, { force: false });
    assert.equal(derived?.credentials.pageAccessToken, page.pageToken);
    const soon = new Date(Date.now() + 2 * 86400_000).toISOString();
    // A failed extension with days left does not fail the post: the current login carries on.
    sim.fault('exchange', { kind: 'error', status: 500, body: { error: { message: 'Service temporarily unavailable', code: 2, is_transient: true } } });
    assert.equal(await fast.refresh!(credentialsOf(page, { userTokenExpiresAt: soon }), deps, { force: false }), null);
    const exchanged = await fast.refresh!(credentialsOf(page, { userTokenExpiresAt: soon }), deps, { force: false });
    assert.ok(exchanged?.expiresAt && exchanged.expiresAt.getTime() > Date.now() + 50 * 86400_000);
    assert.equal(exchanged.credentials.userAccessToken, page.userToken);
    assert.equal(sim.count('exchange'), 2);
    sim.revokeUser(page);
    const dead = await rejectsWith(fast.refresh!(exchanged.credentials, deps, { force: true }));
    assert.deepEqual([dead.code, dead.retryable], ['auth', false]);
  });
});

test('crash right after finish returned: the resumed attempt reads the status and never finishes twice', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    const input = makeInput(page);
    await assert.rejects(fast.publish(input, makeDeps(sim, 'facebook.after_finish')), /crash at facebook.after_finish/);
    const result = await fast.publish(resume(input), makeDeps(sim));
    assert.equal(result.status, 'published');
    assert.equal(sim.videos[0]!.finishCalls, 1);
    assert.equal(sim.count('start'), 1);
    assert.equal(sim.count('upload'), 1);
  });
});

test('a lost finish answer: the same attempt fails outcome-unknown; the next reads the status, finds it done, no second finish', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    const input = makeInput(page);
    sim.fault('finish', { kind: 'lost' });
    const lost = await rejectsWith(fast.publish(input, makeDeps(sim)));
    assert.equal(lost.outcomeUnknown, true);
    const result = await fast.publish(resume(input), makeDeps(sim));
    assert.equal(result.status, 'published');
    assert.equal(sim.videos[0]!.finishCalls, 1);
  });
});

test('a finish that never reached Facebook: too soon to tell, then after the grace period it is sent again once', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    const input = makeInput(page);
    sim.fault('finish', { kind: 'reset' });
    const lost = await rejectsWith(fast.publish(input, makeDeps(sim)));
    assert.equal(lost.outcomeUnknown, true);
    const early = await rejectsWith(fast.publish(resume(input), makeDeps(sim)));
    assert.deepEqual([early.code, early.retryable, early.outcomeUnknown], ['unknown', true, true]);
    assert.ok(early.retryAfterSeconds !== undefined && early.retryAfterSeconds > 0 && early.retryAfterSeconds <= 60);
    assert.equal(sim.count('finish'), 1);
    const later = () => Date.now() + 61_000;
    const result = await fast.publish(resume(input), makeDeps(sim, undefined, later));
    assert.equal(result.status, 'published');
    assert.equal(sim.videos[0]!.finishCalls, 1, 'the reset finish never reached the handler; the second one did');
    assert.equal(sim.published().length, 1);
  });
});

test('a finish Facebook took but did not yet show: the re-sent finish is refused as already finished, and that is success', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    const input = makeInput(page);
    sim.fault('finish', { kind: 'lost' });
    await rejectsWith(fast.publish(input, makeDeps(sim)));
    // The status read says nothing happened yet (as Facebook might, moments after finish).
    sim.fault('status', { kind: 'error', status: 200, body: { id: sim.videos[0]!.id, status: { video_status: 'upload_complete', uploading_phase: { status: 'complete', bytes_transferred: small.size }, processing_phase: { status: 'not_started' }, publishing_phase: { status: 'not_started' } } } });
    const result = await fast.publish(resume(input), makeDeps(sim, undefined, () => Date.now() + 61_000));
    assert.equal(result.status, 'published');
    assert.equal(sim.videos[0]!.finishCalls, 2);
    assert.equal(sim.published().length, 1);
  });
});

test('crash after the upload: the resumed attempt finishes the saved video without uploading again', async () => {
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    const input = makeInput(page);
    await assert.rejects(fast.publish(input, makeDeps(sim, 'facebook.after_upload')));
    const result = await fast.publish(resume(input), makeDeps(sim));
    assert.equal(result.status, 'published');
    assert.equal(sim.count('upload'), 1);
    assert.equal(sim.count('start'), 1);
  });
});

test('file_url: a large rendition with a media link is pulled by Facebook, which really fetches it', async () => {
  const server = createServer((req, res) => {
    if (req.url !== '/media/small') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(small.size) });
    createReadStream(smallPath).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    await withSim({}, async (sim) => {
      const page = sim.addPage();
      const pull = createFacebookAdapter({ graphVersion: SIM_VERSION, fileUrlMinBytes: MiB, requestTimeoutMs: 5_000 });
      const result = await pull.publish(makeInput(page, { mediaUrl: `${base}/media/small` }), makeDeps(sim));
      assert.equal(result.status, 'published');
      assert.equal(sim.videos[0]!.viaFileUrl, true);
      assert.equal(sim.videos[0]!.sha256, small.sha256);
      const broken = await rejectsWith(pull.publish(makeInput(page, { mediaUrl: `${base}/media/missing` }), makeDeps(sim)));
      assert.equal(broken.code, 'invalid_media');
    });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('through the worker: the Page token derived from the user token, processing polled by re-queued jobs, a crash after finish: one reel', async () => {
  const [{ testContext }, { ensureWorkspace }, { upsertAccount, readCredentials }, { submitPost }, { listDeliveries, getDelivery }, { startWorker }, { makeClip }] = await Promise.all([
    import('../../support/context.ts'),
    import('../../../core/workspaces.ts'),
    import('../../../core/accounts.ts'),
    import('../../../core/intake.ts'),
    import('../../../core/posts.ts'),
    import('../../../worker/main.ts'),
    import('../../support/clips.ts'),
  ]);
  await withSim({ processingPolls: 1 }, async (sim) => {
    const ctx = await testContext({ env: { FACEBOOK_GRAPH_URL: sim.url, FACEBOOK_RUPLOAD_URL: sim.url, META_APP_ID: CLIENT.clientId, META_APP_SECRET: CLIENT.clientSecret } });
    try {
      await ensureWorkspace(ctx.pool, 'cli', 'UTC');
      const page = sim.addPage();
      // Linked without a Page token: the worker's refresh derives it before publishing.
      const account = await upsertAccount(ctx.pool, ctx.secrets, {
        workspaceId: 'cli',
        platform: 'facebook',
        handle: page.name,
        remoteId: page.pageId,
        credentials: credentialsOf(page, { pageAccessToken: undefined }),
        expiresAt: page.userTokenExpiresAt,
      });
      let crashes = 0;
      const crashOnce = (deps: PlatformDeps): PlatformDeps => ({
        ...deps,
        crashPoint: (name) => {
          if (name === 'facebook.after_finish' && crashes++ === 0) throw new Error('crash at facebook.after_finish');
        },
      });
      const adapter = createFacebookAdapter({ checkAfterSeconds: 1 });
      const crashing = { ...adapter, publish: (input: PublishInput, deps: PlatformDeps) => adapter.publish(input, crashOnce(deps)) };
      const worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, adapters: { facebook: crashing } });
      try {
        const clip = makeClip(join(ctx.dir, 'clip.mp4'), { width: 1080, height: 1920, seconds: 3.5 });
        const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'From the worker #reelay', targets: [{ platform: 'facebook', handle: null }] });
        const [row] = await listDeliveries(ctx.pool, post.id);
        const deadline = Date.now() + 60_000;
        let delivery = await getDelivery(ctx.pool, row!.id);
        while (delivery && !['published', 'failed', 'unconfirmed'].includes(delivery.state) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          delivery = await getDelivery(ctx.pool, row!.id);
        }
        assert.equal(delivery?.state, 'published', `${delivery?.state}: ${delivery?.error ?? ''}`);
        assert.equal(sim.published().length, 1, 'exactly one reel');
        const video = sim.videos[0]!;
        assert.equal(video.finishCalls, 1);
        assert.equal(video.description, 'From the worker #reelay');
        assert.equal(delivery?.remote_id, video.id);
        assert.equal(delivery?.url, `https://www.facebook.com/reel/${video.id}`);
        assert.equal(crashes, 1);
        assert.ok(sim.count('status') >= 2, 'processing was polled');
        const stored = facebookCredentialsSchema.parse(await readCredentials(ctx.pool, ctx.secrets, account.id));
        assert.equal(stored.pageAccessToken, page.pageToken, 'the derived Page token was stored');
      } finally {
        await worker.stop();
      }
    } finally {
      await ctx.dispose();
    }
  });
});

test('a 200 MB file publishes from a process with a 64 MB heap: the upload streams', async () => {
  const size = 200 * MiB + 7;
  const path = join(dir, 'big.bin');
  const sha256 = randomFile(path, size);
  await withSim({}, async (sim) => {
    const page = sim.addPage();
    const adapterUrl = new URL('../../../worker/platforms/facebook.ts', import.meta.url).href;
    const logUrl = new URL('../../../core/log.ts', import.meta.url).href;
    const script = `
      import { createReadStream } from 'node:fs';
      import { getHeapStatistics } from 'node:v8';
      const { createFacebookAdapter } = await import(${JSON.stringify(adapterUrl)});
      const { createLogger } = await import(${JSON.stringify(logUrl)});
      const args = JSON.parse(process.argv[1]);
      const baseRss = process.memoryUsage().rss;
      let peakRss = 0, peakHeap = 0, peakExternal = 0;
      const sample = () => { const m = process.memoryUsage(); peakRss = Math.max(peakRss, m.rss); peakHeap = Math.max(peakHeap, m.heapUsed); peakExternal = Math.max(peakExternal, m.external); };
      const timer = setInterval(sample, 25);
      const rendition = { id: 'big', size: args.size, sha256: args.sha256, contentType: 'video/mp4', width: 1080, height: 1920, durationSeconds: 60,
        open: async (r) => createReadStream(args.path, r ? { start: r.start, end: r.end } : {}) };
      const input = { deliveryId: 'big', createdAt: new Date(), caption: 'big file', rendition, account: { id: 'a', handle: 'p', remoteId: null },
        credentials: args.credentials, mediaUrl: null, checkpoint: {}, saveCheckpoint: async () => {} };
      const deps = { fetch, signal: new AbortController().signal, log: createLogger({ level: 'silent' }), now: () => Date.now(),
        urls: { graph: args.url, rupload: args.url }, oauthClient: null, crashPoint: () => {} };
      const started = Date.now();
      const result = await createFacebookAdapter({ graphVersion: args.version }).publish(input, deps);
      clearInterval(timer); sample();
      console.log(JSON.stringify({ result, baseRss, peakRss, peakHeap, peakExternal, heapLimit: getHeapStatistics().heap_size_limit, ms: Date.now() - started }));
    `;
    const args = JSON.stringify({ size, sha256, path, url: sim.url, version: SIM_VERSION, credentials: credentialsOf(page) });
    const child = spawn(process.execPath, ['--max-old-space-size=64', '--input-type=module', '-e', script, args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, err.slice(-3000));
    const report = JSON.parse(out.trim().split('\n').at(-1)!) as { result: PublishResult; baseRss: number; peakRss: number; peakHeap: number; peakExternal: number; heapLimit: number; ms: number };
    const growth = report.peakRss - report.baseRss;
    console.log(
      `facebook 200 MB publish: ${report.ms} ms; RSS ${(report.baseRss / MiB).toFixed(1)} MiB after loading, peak ${(report.peakRss / MiB).toFixed(1)} MiB ` +
        `(+${(growth / MiB).toFixed(1)} MiB); peak heap ${(report.peakHeap / MiB).toFixed(1)} MiB of ${(report.heapLimit / MiB).toFixed(0)} MiB; peak external ${(report.peakExternal / MiB).toFixed(1)} MiB`,
    );
    assert.equal(report.result.status, 'published');
    assert.ok(report.heapLimit < 128 * MiB);
    assert.ok(growth < 64 * MiB, `memory grew by ${(growth / MiB).toFixed(1)} MiB`);
    assert.equal(sim.videos[0]!.bytes, size);
    assert.equal(sim.videos[0]!.sha256, sha256);
    assert.equal(sim.maxChunk(), 8 * MiB);
    assert.equal(sim.count('upload'), Math.ceil(size / (8 * MiB)));
    assert.equal(sim.videos[0]!.finishCalls, 1);
  });
});

test('validate: the Page read with the Page token; a stale Page token is retryable (refresh derives a new one), a revoked login is not', async () => {
  await withSim({}, async (sim) => {
    assert.ok(fast.validate);
    const page = sim.addPage();
    const deps = makeDeps(sim);
    await fast.validate(credentialsOf(page), deps);
    assert.deepEqual(sim.requests.filter((r) => r.route === 'pageRead').map((r) => [r.method, r.status]), [['GET', 200]]);

    const none = await rejectsWith(fast.validate(credentialsOf(page, { pageAccessToken: undefined }), deps));
    assert.deepEqual([none.code, none.retryable], ['auth', true]);
    assert.equal(sim.count('pageRead'), 1, 'no Page token: nothing sent');

    const stale = credentialsOf(page);
    sim.expirePageToken(page);
    const expired = await rejectsWith(fast.validate(stale, deps));
    assert.deepEqual([expired.code, expired.retryable, expired.status], ['auth', true, 401]);
    const refreshed = await fast.refresh!(stale, deps, { force: true });
    await fast.validate(refreshed!.credentials, deps);

    sim.revokeUser(page);
    const revoked = await rejectsWith(fast.validate(refreshed!.credentials, deps));
    assert.deepEqual([revoked.code, revoked.retryable], ['auth', true]);
    const dead = await rejectsWith(fast.refresh!(refreshed!.credentials, deps, { force: true }));
    assert.deepEqual([dead.code, dead.retryable], ['auth', false], 'the forced refresh is where re-linking is decided');
    assert.deepEqual(sim.requests.filter((r) => r.route === 'pageRead').map((r) => r.status), [200, 401, 200, 401]);

    const other = sim.addPage();
    const read = (fields: string, token: string) => fetch(`${sim.url}/${SIM_VERSION}/${other.pageId}?fields=${fields}&access_token=${token}`);
    assert.equal((await read('id,name', other.userToken)).status, 200, 'a user token managing the Page may read it');
    assert.equal((await read('id', page.pageToken)).status, 401, "another Page's token");
    assert.equal((await read('id,fan_secret', other.pageToken)).status, 400, 'an unknown field');
  });
});
