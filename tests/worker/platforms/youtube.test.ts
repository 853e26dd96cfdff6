/**
 * The YouTube adapter against the wire-level simulator in tests/sim/youtube.ts, which refuses what
 * YouTube refuses (wrong chunk sizes, offsets, Content-Range, scopes, titles) and injects faults.
 * Crashes are simulated in-process by a crash point that throws, and for real through the worker:
 * a child worker process SIGKILLs itself between the final chunk and the checkpoint.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MESSAGES, PublishError } from '../../../core/errors.ts';
import { createLogger } from '../../../core/log.ts';
import type { Checkpoint, Credentials, PlatformDeps, PublishInput, PublishResult, RenditionHandle } from '../../../core/platforms.ts';
import { createYoutubeAdapter, mapYoutubeError, secondsUntilMidnight, videoText, youtubeCredentialsSchema, type YoutubeOptions } from '../../../worker/platforms/youtube.ts';
import { ERRORS, GRANULE, SCOPES, startYoutubeSim, type IssuedCredentials, type YoutubeSim } from '../../sim/youtube.ts';

const KiB = 1024;
const CHUNK = 512 * KiB;
/** Three chunks: two full ones and a short last one (not a multiple of 256 KiB). */
const SIZE = 2 * CHUNK + 123_457;

let sim: YoutubeSim;
let dir: string;
let rendition: RenditionHandle;
const children = new Set<ChildProcess>();

async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let written = 0; written < size; ) {
    const piece = randomBytes(Math.min(4 * 1024 * KiB, size - written));
    hash.update(piece);
    written += piece.length;
    if (!out.write(piece)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return hash.digest('hex');
}

function fileRendition(path: string, size: number, sha256: string): RenditionHandle {
  return {
    id: `rendition-${sha256.slice(0, 8)}`,
    size,
    sha256,
    contentType: 'video/mp4',
    width: 1080,
    height: 1920,
    durationSeconds: 12,
    open: async (range) => createReadStream(path, range ? { start: range.start, end: range.end } : {}),
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-yt-test-'));
  const file = join(dir, 'clip.bin');
  const [started, sha256] = await Promise.all([startYoutubeSim(), writeRandomFile(file, SIZE)]);
  sim = started;
  rendition = fileRendition(file, SIZE, sha256);
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await sim?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

class Crash extends Error {}

function makeDeps(options: { crashAt?: string; now?: () => number; oauth?: boolean } = {}): PlatformDeps & { crashPoints: string[] } {
  const crashPoints: string[] = [];
  return {
    fetch,
    signal: new AbortController().signal,
    log: createLogger({ level: 'silent' }),
    now: options.now ?? (() => Date.now()),
    urls: sim.urls,
    oauthClient: options.oauth === false ? null : sim.client,
    crashPoint: (name) => {
      crashPoints.push(name);
      // Stands in for the SIGKILL the real harness delivers: nothing after this point runs.
      if (name === options.crashAt) throw new Crash(name);
    },
    crashPoints,
  };
}

type TestInput = PublishInput & { checkpoint: Checkpoint; saves: Array<{ patch: Checkpoint; requestsBefore: number }> };

function makeInput(credentials: Credentials, overrides: { caption?: string; checkpoint?: Checkpoint; rendition?: RenditionHandle } = {}): TestInput {
  const saves: TestInput['saves'] = [];
  const input: TestInput = {
    deliveryId: 'delivery-1',
    createdAt: new Date(),
    mediaUrl: null,
    caption: overrides.caption ?? 'My first Short\nShot on a phone #shorts',
    rendition: overrides.rendition ?? rendition,
    account: { id: 'acc-1', handle: 'creator', remoteId: null },
    credentials,
    checkpoint: { ...overrides.checkpoint },
    saves,
    async saveCheckpoint(patch) {
      saves.push({ patch, requestsBefore: sim.requests.length });
      Object.assign(input.checkpoint, patch);
    },
  };
  return input;
}

/** A resumed attempt: same delivery, the checkpoint the earlier attempt left. */
function resumeInput(earlier: TestInput, credentials: Credentials = earlier.credentials): TestInput {
  return makeInput(credentials, { caption: earlier.caption, checkpoint: earlier.checkpoint, rendition: earlier.rendition });
}

const adapter = createYoutubeAdapter({ chunkBytes: CHUNK, checkAfterSeconds: 7 });

function since(mark: number) {
  const slice = sim.requests.slice(mark);
  return { all: slice, of: (op: string) => slice.filter((r) => r.op === op) };
}

function chunkBytes(mark: number): number {
  return since(mark)
    .of('chunk')
    .filter((r) => typeof r.status === 'number' && r.status < 400)
    .reduce((sum, r) => sum + r.bytes, 0);
}

function videosOf(credentials: IssuedCredentials & { userId: string }) {
  return sim.videos.filter((v) => v.userId === credentials.userId);
}

async function rejectsWith(promise: Promise<unknown>, expected: { code: string; retryable?: boolean; outcomeUnknown?: boolean; detail?: RegExp | string }): Promise<PublishError> {
  let caught: PublishError | undefined;
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PublishError, `expected a PublishError, got ${String(error)}`);
    caught = error;
    return true;
  });
  const error = caught!;
  assert.equal(error.code, expected.code, `${error.code}: ${error.message}`);
  if (expected.retryable !== undefined) assert.equal(error.retryable, expected.retryable, error.message);
  if (expected.outcomeUnknown !== undefined) assert.equal(error.outcomeUnknown, expected.outcomeUnknown, error.message);
  if (typeof expected.detail === 'string') assert.equal(error.detail, expected.detail);
  else if (expected.detail) assert.match(error.detail, expected.detail);
  return error;
}

async function untilPublished(result: PublishResult, input: PublishInput, deps: PlatformDeps, a = adapter): Promise<PublishResult> {
  for (let i = 0; i < 10 && result.status === 'processing'; i++) result = await a.check(result.remoteId, input, deps);
  return result;
}

// --- the simulator refuses what YouTube refuses ----------------------------------------------

async function startRawSession(credentials: IssuedCredentials, size: number): Promise<string> {
  const response = await fetch(`${sim.urls.upload}/youtube/v3/videos?uploadType=resumable&part=snippet,status`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${credentials.accessToken}`,
      'content-type': 'application/json; charset=UTF-8',
      'x-upload-content-length': String(size),
      'x-upload-content-type': 'video/mp4',
    },
    body: JSON.stringify({ snippet: { title: 'raw' }, status: { privacyStatus: 'private' } }),
  });
  assert.equal(response.status, 200);
  return response.headers.get('location')!;
}

async function reason(response: Response): Promise<string | undefined> {
  const body = (await response.json()) as { error?: { errors?: Array<{ reason?: string }> } | string };
  return typeof body.error === 'string' ? body.error : body.error?.errors?.[0]?.reason;
}

test('simulator: auth, scopes, session start and chunk rules are enforced with Google error shapes', async () => {
  const creds = sim.addAccount();
  const insert = (headers: Record<string, string>, body: unknown, query = 'uploadType=resumable&part=snippet,status') =>
    fetch(`${sim.urls.upload}/youtube/v3/videos?${query}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const good = { authorization: `Bearer ${creds.accessToken}`, 'content-type': 'application/json; charset=UTF-8', 'x-upload-content-length': '1000', 'x-upload-content-type': 'video/mp4' };
  const meta = { snippet: { title: 'ok' }, status: { privacyStatus: 'private' } };

  let r = await insert({ ...good, authorization: 'Bearer nope' }, meta);
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate') ?? '', /invalid_token/);
  assert.equal(await reason(r), 'authError');
  const readOnly = sim.addAccount({ scopes: [SCOPES.readonly] });
  r = await insert({ ...good, authorization: `Bearer ${readOnly.accessToken}` }, meta);
  assert.deepEqual([r.status, await reason(r)], [403, 'insufficientPermissions']);
  r = await insert(good, meta, 'uploadType=media&part=snippet,status');
  assert.equal(r.status, 400);
  await r.body?.cancel();
  r = await insert(good, meta, 'uploadType=resumable&part=snippet');
  assert.deepEqual([r.status, await reason(r)], [400, 'unexpectedPart']);
  r = await insert({ ...good, 'x-upload-content-length': '' }, meta);
  assert.equal(r.status, 400);
  await r.body?.cancel();
  r = await insert({ ...good, 'x-upload-content-type': 'text/plain' }, meta);
  assert.equal(r.status, 400);
  await r.body?.cancel();
  for (const title of ['a <b>', 'x'.repeat(101), '']) {
    r = await insert(good, { ...meta, snippet: { title } });
    assert.deepEqual([r.status, await reason(r)], [400, 'invalidTitle'], title);
  }
  r = await insert(good, { ...meta, snippet: { title: 'ok', description: 'é'.repeat(2501) } });
  assert.deepEqual([r.status, await reason(r)], [400, 'invalidDescription']);
  r = await insert(good, { ...meta, status: { privacyStatus: 'public', publishAt: '2030-01-01T00:00:00Z' } });
  assert.deepEqual([r.status, await reason(r)], [400, 'invalidPublishAt']);

  const size = GRANULE * 2 + 10;
  const uri = await startRawSession(creds, size);
  const put = (headers: Record<string, string>, body: Uint8Array) =>
    fetch(uri, { method: 'PUT', headers: { authorization: `Bearer ${creds.accessToken}`, ...headers }, body, redirect: 'manual' });
  r = await put({ 'content-range': `bytes */${size}` }, new Uint8Array());
  assert.equal(r.status, 308);
  assert.equal(r.headers.get('range'), null, 'nothing persisted yet: no Range');
  r = await put({}, new Uint8Array(GRANULE));
  assert.equal(r.status, 400, 'Content-Range is required');
  await r.body?.cancel();
  r = await put({ 'content-range': `bytes 0-${GRANULE + 9}/${size}` }, new Uint8Array(GRANULE + 10));
  assert.equal(r.status, 400, 'a non-final chunk must be a multiple of 256 KiB');
  await r.body?.cancel();
  r = await put({ 'content-range': `bytes 0-${GRANULE - 1}/${size + 1}` }, new Uint8Array(GRANULE));
  assert.equal(r.status, 400, 'the total must match X-Upload-Content-Length');
  await r.body?.cancel();
  r = await put({ 'content-range': `bytes ${GRANULE}-${2 * GRANULE - 1}/${size}` }, new Uint8Array(GRANULE));
  assert.deepEqual([r.status, await reason(r)], [400, 'badContent'], 'chunks start at the persisted offset');
  r = await put({ 'content-range': `bytes 0-${GRANULE - 1}/${size}` }, new Uint8Array(GRANULE));
  assert.equal(r.status, 308);
  assert.equal(r.headers.get('range'), `bytes=0-${GRANULE - 1}`);
  r = await put({ 'content-range': `bytes */${size}` }, new Uint8Array());
  assert.deepEqual([r.status, r.headers.get('range')], [308, `bytes=0-${GRANULE - 1}`]);
  r = await put({ 'content-range': `bytes ${GRANULE}-${size - 1}/${size}` }, new Uint8Array(size - GRANULE));
  assert.equal(r.status, 200);
  const video = (await r.json()) as { id: string; status: { uploadStatus: string } };
  assert.equal(video.status.uploadStatus, 'uploaded');
  r = await put({ 'content-range': `bytes */${size}` }, new Uint8Array());
  assert.equal(r.status, 200, 'a finished session answers the query with the video');
  assert.equal(((await r.json()) as { id: string }).id, video.id);

  const list = await fetch(`${sim.urls.api}/youtube/v3/videos?part=status&id=${video.id}`, { headers: { authorization: `Bearer ${sim.addAccount({ scopes: [SCOPES.upload] }).accessToken}` } });
  assert.deepEqual([list.status, await reason(list)], [403, 'insufficientPermissions'], 'videos.list needs a read scope');

  const token = (body: string, type = 'application/x-www-form-urlencoded') => fetch(sim.urls.token, { method: 'POST', headers: { 'content-type': type }, body });
  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  r = await token(form({ grant_type: 'refresh_token', refresh_token: creds.refreshToken, client_id: 'other', client_secret: sim.client.clientSecret }));
  assert.deepEqual([r.status, await reason(r)], [401, 'invalid_client']);
  r = await token(JSON.stringify({ grant_type: 'refresh_token' }), 'application/json');
  assert.deepEqual([r.status, await reason(r)], [400, 'invalid_request']);
  r = await token(form({ grant_type: 'refresh_token', refresh_token: 'unknown', client_id: sim.client.clientId, client_secret: sim.client.clientSecret }));
  assert.deepEqual([r.status, await reason(r)], [400, 'invalid_grant']);
});

// --- success, processing --------------------------------------------------------------------------

test('publish uploads in 256 KiB-multiple chunks, checkpoints the session first, then follows processing to the Shorts URL', async () => {
  const creds = sim.addAccount();
  const deps = makeDeps();
  const input = makeInput(creds, { caption: 'My first Short <3\n\nShot on a phone.\nSecond line #shorts' });
  const mark = sim.requests.length;
  const result = await adapter.publish(input, deps);

  assert.equal(result.status, 'processing');
  if (result.status !== 'processing') return;
  assert.equal(result.checkAfterSeconds, 7);
  const video = videosOf(creds)[0]!;
  assert.equal(videosOf(creds).length, 1);
  assert.equal(result.remoteId, video.id);
  assert.equal(video.sha256, rendition.sha256, 'the bytes YouTube holds are the rendition');
  assert.equal(video.size, SIZE);
  assert.equal(video.title, 'My first Short ‹3');
  assert.equal(video.description, 'Shot on a phone.\nSecond line #shorts');
  assert.equal(video.privacyStatus, 'private', 'private unless configured');
  assert.equal(video.categoryId, '22');
  assert.equal(video.notifySubscribers, true);
  assert.equal(video.selfDeclaredMadeForKids, undefined);

  const requests = since(mark);
  assert.deepEqual(requests.all.map((r) => `${r.op} ${r.status} ${r.contentRange ?? ''}`.trim()), [
    'insert 200',
    `chunk 308 bytes 0-${CHUNK - 1}/${SIZE}`,
    `chunk 308 bytes ${CHUNK}-${2 * CHUNK - 1}/${SIZE}`,
    `chunk 200 bytes ${2 * CHUNK}-${SIZE - 1}/${SIZE}`,
  ]);
  // The session URI is saved after the insert and before any byte is sent; the video id right after the last chunk.
  const sessionSave = input.saves.find((s) => typeof s.patch.sessionUri === 'string')!;
  assert.equal(sessionSave.requestsBefore, mark + 1);
  assert.equal(sessionSave.patch.sessionSize, SIZE);
  assert.equal(sessionSave.patch.sessionSha256, rendition.sha256);
  const finalSave = input.saves.find((s) => s.patch.finalChunkSent === true)!;
  assert.equal(finalSave.requestsBefore, mark + 3, 'marked before the final chunk went out');
  const idSave = input.saves.at(-1)!;
  assert.deepEqual(idSave.patch, { videoId: video.id });
  assert.equal(idSave.requestsBefore, mark + 4);
  assert.deepEqual(deps.crashPoints, ['youtube.after_session', 'youtube.after_chunk', 'youtube.after_chunk', 'youtube.after_final_chunk', 'youtube.after_video_saved']);

  // Processing: two polls say `uploaded` (with YouTube's own estimate), then `processed`.
  const first = await adapter.check(result.remoteId, input, deps);
  assert.deepEqual(first, { status: 'processing', remoteId: video.id, checkAfterSeconds: 5 });
  const second = await adapter.check(result.remoteId, input, deps);
  assert.equal(second.status, 'processing');
  const done = await adapter.check(result.remoteId, input, deps);
  assert.deepEqual(done, { status: 'published', remoteId: video.id, url: `https://www.youtube.com/shorts/${video.id}` });
  assert.deepEqual(await adapter.check(result.remoteId, input, deps), done, 'once live, never processing again');
  assert.equal(since(mark).of('list').length, 4);
});

test('privacy, category, subscriber notification and made-for-kids come from the account settings; a 201 completes too', async () => {
  const creds = { ...sim.addAccount({ scopes: [SCOPES.youtube] }), privacyStatus: 'public', categoryId: '24', notifySubscribers: false, madeForKids: false };
  assert.ok(youtubeCredentialsSchema.safeParse(creds).success);
  sim.options.completeStatus = 201;
  sim.options.processingPolls = 0;
  try {
    const input = makeInput(creds);
    const result = await untilPublished(await adapter.publish(input, makeDeps()), input, makeDeps());
    assert.equal(result.status, 'published');
    const video = videosOf(creds)[0]!;
    assert.deepEqual([video.privacyStatus, video.categoryId, video.notifySubscribers, video.selfDeclaredMadeForKids], ['public', '24', false, false]);
  } finally {
    sim.options.completeStatus = 200;
    sim.options.processingPolls = 2;
  }
});

test('an unaudited project gets the upload locked private: still published, privacy as YouTube kept it', async () => {
  const creds = { ...sim.addAccount(), privacyStatus: 'public' };
  sim.options.lockPrivacy = 'private';
  try {
    const input = makeInput(creds);
    const result = await untilPublished(await adapter.publish(input, makeDeps()), input, makeDeps());
    assert.equal(result.status, 'published');
    assert.deepEqual([videosOf(creds)[0]!.requestedPrivacy, videosOf(creds)[0]!.privacyStatus], ['public', 'private']);
  } finally {
    sim.options.lockPrivacy = undefined;
  }
});

test('processing that fails or is rejected is a plain-words error, and a manual retry uploads afresh', async () => {
  const cases = [
    { outcome: { uploadStatus: 'failed' as const, failureReason: 'codec' }, code: 'invalid_media', detail: MESSAGES.youtubeProcessingFailed('codec') },
    { outcome: { uploadStatus: 'rejected' as const, rejectionReason: 'duplicate' }, code: 'rejected', detail: MESSAGES.youtubeVideoRejected('duplicate') },
  ];
  for (const { outcome, code, detail } of cases) {
    const creds = sim.addAccount();
    sim.options.outcome = outcome;
    sim.options.processingPolls = 0;
    try {
      const input = makeInput(creds);
      const result = await adapter.publish(input, makeDeps());
      assert.equal(result.status, 'processing');
      if (result.status !== 'processing') return;
      await rejectsWith(adapter.check(result.remoteId, input, makeDeps()), { code, retryable: false, detail });
      assert.equal(input.checkpoint.videoId, null);
      assert.equal(input.checkpoint.sessionUri, null);
      assert.equal(input.checkpoint.failedVideoId, result.remoteId);
    } finally {
      sim.options.outcome = { uploadStatus: 'processed' };
      sim.options.processingPolls = 2;
    }
  }
  assert.equal(MESSAGES.youtubeProcessingFailed('codec'), 'it uses a codec YouTube cannot read.');
});

// --- captions ---------------------------------------------------------------------------------

test('caption to title and description: first line, angle brackets, 100-character titles, 5000-byte descriptions', async () => {
  assert.deepEqual(videoText('Hello world'), { title: 'Hello world', description: '' });
  assert.deepEqual(videoText('\n\n  Title   with  spaces \r\nline 2\r\n\r\nline 3 '), { title: 'Title with spaces', description: 'line 2\n\nline 3' });
  assert.deepEqual(videoText('a <b> c\n<html> & >'), { title: 'a ‹b› c', description: '‹html› & ›' });
  assert.deepEqual(videoText(''), { title: 'Untitled', description: '' });
  assert.deepEqual(videoText(' \n \n'), { title: 'Untitled', description: '' });

  const words = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
  const long = videoText(`${words}\nmore`);
  assert.ok(long.title.length <= 100, String(long.title.length));
  assert.ok(long.title.endsWith('…'));
  assert.ok(words.startsWith(long.title.slice(0, -1)), 'cut at a word boundary');
  assert.equal(long.description, `${words}\nmore`, 'the whole caption survives in the description');
  // Emoji are two UTF-16 units; the cut never splits one.
  const emoji = videoText('👍'.repeat(120));
  assert.ok(emoji.title.length <= 100);
  assert.equal(emoji.title, `${'👍'.repeat(49)}…`);

  const tooLong = `Title\n${'é'.repeat(2501)}`;
  const creds = sim.addAccount();
  const mark = sim.requests.length;
  await rejectsWith(adapter.publish(makeInput(creds, { caption: tooLong }), makeDeps()), {
    code: 'rejected',
    retryable: false,
    detail: MESSAGES.captionTooManyBytes('YouTube', 5002, 5000),
  });
  assert.equal(sim.requests.length, mark, 'refused before any request');

  // What the adapter derives, YouTube accepts.
  const input = makeInput(creds, { caption: `${'long title <tag> '.repeat(10)}\n${'d'.repeat(4000)}` });
  const result = await adapter.publish(input, makeDeps());
  assert.equal(result.status, 'processing');
  const video = videosOf(creds)[0]!;
  assert.ok([...video.title].length <= 100 && !/[<>]/.test(video.title + video.description));
});

// --- errors --------------------------------------------------------------------------------

test('quotaExceeded defers to the next midnight Pacific; nothing is checkpointed', async () => {
  const creds = sim.addAccount();
  const now = Date.parse('2026-07-01T20:00:00Z'); // 13:00 PDT: 11 hours to midnight
  sim.inject('insert', ERRORS.quotaExceeded());
  const input = makeInput(creds);
  const error = await rejectsWith(adapter.publish(input, makeDeps({ now: () => now })), { code: 'rate_limited', retryable: true });
  assert.equal(error.retryAfterSeconds, 11 * 3600);
  assert.equal(error.detail, MESSAGES.youtubeQuotaExceeded('2026-07-02T07:00:00Z'));
  assert.equal(input.saves.length, 0);

  // The simulator's own bucket says the same when it runs dry.
  const saved = sim.options.insertsPerDay;
  sim.options.insertsPerDay = sim.quota.inserts;
  try {
    await rejectsWith(adapter.publish(makeInput(creds), makeDeps()), { code: 'rate_limited', retryable: true });
  } finally {
    sim.options.insertsPerDay = saved;
  }
});

test('uploadLimitExceeded and a missing channel are user errors in plain words, not retried', async () => {
  const creds = sim.addAccount();
  sim.users.get(creds.userId)!.uploadsToday = sim.options.channelUploadsPerDay;
  await rejectsWith(adapter.publish(makeInput(creds), makeDeps()), { code: 'rejected', retryable: false, detail: MESSAGES.youtubeUploadLimit() });
  const noChannel = sim.addAccount({ channel: false });
  await rejectsWith(adapter.publish(makeInput(noChannel), makeDeps()), { code: 'rejected', retryable: false, detail: MESSAGES.youtubeNoChannel() });
  sim.inject('insert', ERRORS.forbidden());
  await rejectsWith(adapter.publish(makeInput(sim.addAccount()), makeDeps()), { code: 'rejected', retryable: false, detail: MESSAGES.youtubeForbidden() });
});

test('an account without upload permission needs re-linking: refused locally, or by YouTube when the scope is unknown', async () => {
  const readOnly = sim.addAccount({ scopes: [SCOPES.readonly] });
  const mark = sim.requests.length;
  await rejectsWith(adapter.publish(makeInput(readOnly), makeDeps()), { code: 'auth', retryable: false });
  assert.equal(sim.requests.length, mark);
  await rejectsWith(adapter.publish(makeInput({ ...readOnly, scope: '' }), makeDeps()), { code: 'auth', retryable: false });
  assert.equal(since(mark).of('insert')[0]?.reason, 'insufficientPermissions');
});

test('429 with Retry-After on a chunk is rate_limited; the next attempt resumes without resending a byte', async () => {
  const creds = sim.addAccount();
  sim.inject('chunk', ERRORS.rateLimited(42), { when: (info) => info.headers['content-range']?.startsWith(`bytes ${CHUNK}-`) ?? false });
  const mark = sim.requests.length;
  const first = makeInput(creds);
  const error = await rejectsWith(adapter.publish(first, makeDeps()), { code: 'rate_limited', retryable: true });
  assert.equal(error.retryAfterSeconds, 42);

  const result = await adapter.publish(resumeInput(first), makeDeps());
  assert.equal(result.status, 'processing');
  assert.equal(chunkBytes(mark), SIZE, 'every byte sent exactly once');
  assert.equal(since(mark).of('insert').length, 1);
  assert.equal(since(mark).of('query').length, 1);
  assert.equal(videosOf(creds).length, 1);
  assert.equal(videosOf(creds)[0]!.sha256, rendition.sha256);
});

test('5xx on a chunk is retryable; a cut mid-chunk keeps whole granules and the resume starts there', async () => {
  const creds = sim.addAccount();
  sim.inject('chunk', ERRORS.backendError(503));
  const first = makeInput(creds);
  await rejectsWith(adapter.publish(first, makeDeps()), { code: 'unavailable', retryable: true, outcomeUnknown: false });

  // The second chunk is cut after 300 KiB: YouTube keeps 256 KiB of it.
  sim.inject('chunk', { kind: 'resetMidBody', afterBytes: 300 * KiB }, { when: (info) => info.headers['content-range']?.startsWith(`bytes ${CHUNK}-`) ?? false });
  const second = resumeInput(first);
  await rejectsWith(adapter.publish(second, makeDeps()), { code: 'unavailable', retryable: true, outcomeUnknown: false });
  const session = sim.sessionOf(String(second.checkpoint.sessionUri))!;
  assert.equal(session.received, CHUNK + GRANULE);

  const mark = sim.requests.length;
  const result = await adapter.publish(resumeInput(second), makeDeps());
  assert.equal(result.status, 'processing');
  assert.deepEqual(since(mark).all.map((r) => `${r.op} ${r.contentRange ?? ''}`), [`query bytes */${SIZE}`, `chunk bytes ${CHUNK + GRANULE}-${SIZE - 1}/${SIZE}`]);
  assert.equal(videosOf(creds).length, 1);
  assert.equal(videosOf(creds)[0]!.sha256, rendition.sha256);
});

test('a hung server times out as unavailable; a read that timed out is not outcome-unknown', async () => {
  const creds = sim.addAccount();
  const impatient = createYoutubeAdapter({ chunkBytes: CHUNK, requestTimeoutMs: 1000, chunkTimeoutMs: 1500 });
  sim.inject('list', { kind: 'hang' });
  const input = makeInput(creds, { checkpoint: {} });
  const result = await impatient.publish(input, makeDeps());
  assert.equal(result.status, 'processing');
  if (result.status !== 'processing') return;
  const started = Date.now();
  await rejectsWith(impatient.check(result.remoteId, input, makeDeps()), { code: 'unavailable', retryable: true, outcomeUnknown: false, detail: /timed out/ });
  assert.ok(Date.now() - started < 5000);

  // A hung final chunk: the adapter asks the session at once; the video does not exist, so the error stands.
  const other = makeInput(sim.addAccount());
  sim.inject('chunk', { kind: 'hang' }, { when: (info) => info.final });
  await rejectsWith(impatient.publish(other, makeDeps()), { code: 'unavailable', retryable: true, outcomeUnknown: true });
  const resumed = await impatient.publish(resumeInput(other), makeDeps());
  assert.equal(resumed.status, 'processing');
});

test('error mapping follows the reference', () => {
  const now = Date.parse('2026-01-15T08:00:00Z'); // 00:00 PST
  const body = (code: number, reason: string) => ({ error: { code, message: 'm', errors: [{ reason, domain: 'x', message: 'm' }] } });
  const map = (status: number, b: unknown) => mapYoutubeError(status, b, now);
  const kind = (e: PublishError) => [e.code, e.retryable];
  assert.deepEqual(kind(map(401, body(401, 'authError'))), ['auth', true]);
  assert.deepEqual(kind(map(400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' })), ['auth', false]);
  assert.deepEqual(kind(map(401, { error: 'invalid_client' })), ['unknown', false]);
  assert.deepEqual(kind(map(403, body(403, 'insufficientPermissions'))), ['auth', false]);
  assert.deepEqual(kind(map(401, body(401, 'youtubeSignupRequired'))), ['rejected', false]);
  const quota = map(403, body(403, 'quotaExceeded'));
  assert.deepEqual(kind(quota), ['rate_limited', true]);
  assert.equal(quota.retryAfterSeconds, 24 * 3600);
  assert.deepEqual(kind(map(403, body(403, 'rateLimitExceeded'))), ['rate_limited', true]);
  assert.deepEqual(kind(map(429, undefined)), ['rate_limited', true]);
  assert.deepEqual(kind(map(400, body(400, 'uploadLimitExceeded'))), ['rejected', false]);
  for (const r of ['invalidTitle', 'invalidDescription', 'invalidTags', 'invalidCategoryId', 'invalidPublishAt', 'invalidVideoMetadata']) {
    const e = map(400, body(400, r));
    assert.deepEqual(kind(e), ['rejected', false], r);
    assert.equal(e.detail, MESSAGES.youtubeMetadata(r));
  }
  assert.deepEqual(kind(map(400, body(400, 'mediaBodyRequired'))), ['unknown', false]);
  assert.deepEqual(kind(map(403, body(403, 'forbidden'))), ['rejected', false]);
  assert.deepEqual(kind(map(413, 'Request Entity Too Large')), ['invalid_media', false]);
  for (const s of [500, 502, 503, 504]) assert.deepEqual(kind(map(s, 'oops')), ['unavailable', true]);
  assert.ok(!map(403, ERRORS.quotaExceeded().body).message.includes('<a'), 'HTML stays out of messages');
});

test('seconds until midnight Pacific, across daylight-saving changes', () => {
  const la = 'America/Los_Angeles';
  assert.equal(secondsUntilMidnight(Date.parse('2026-03-08T07:00:00Z'), la), 3600, '23:00 PST the night clocks spring forward');
  assert.equal(secondsUntilMidnight(Date.parse('2026-03-08T19:00:00Z'), la), 12 * 3600, 'noon PDT');
  assert.equal(secondsUntilMidnight(Date.parse('2026-11-01T07:30:00Z'), la), 24.5 * 3600, '00:30 PDT on the 25-hour day');
  assert.equal(secondsUntilMidnight(Date.parse('2026-01-15T07:59:59.500Z'), la), 1);
  assert.equal(secondsUntilMidnight(Date.parse('2026-01-15T08:00:00Z'), la), 24 * 3600, 'exactly midnight: the next one');
  assert.equal(secondsUntilMidnight(Date.parse('2026-01-15T23:00:00Z'), 'UTC'), 3600);
});

// --- token refresh ----------------------------------------------------------------------------

test('refresh is driven by the stored expiry, keeps the refresh token, and invalid_grant needs re-auth', async () => {
  const creds = sim.addAccount();
  const mark = sim.requests.length;
  assert.equal(await adapter.refresh!(creds, makeDeps(), { force: false }), null, 'an hour left: nothing to do');
  assert.equal(sim.requests.length, mark);

  const soon = Date.parse(creds.expiresAt) - 4 * 60_000;
  const refreshed = await adapter.refresh!(creds, makeDeps({ now: () => soon }), { force: false });
  assert.ok(refreshed);
  const next = youtubeCredentialsSchema.parse(refreshed.credentials);
  assert.notEqual(next.accessToken, creds.accessToken);
  assert.equal(next.refreshToken, creds.refreshToken, 'Google does not rotate: the old refresh token stays');
  assert.equal(next.scope, creds.scope);
  assert.equal(refreshed.expiresAt?.getTime(), soon + 3599_000);
  assert.equal(next.expiresAt, refreshed.expiresAt?.toISOString());
  const tokenCall = since(mark).of('token');
  assert.equal(tokenCall.length, 1);

  const forced = await adapter.refresh!(creds, makeDeps(), { force: true });
  assert.ok(forced, 'forced even with an hour left');

  sim.options.rotateRefreshTokens = true;
  try {
    const rotated = await adapter.refresh!(creds, makeDeps(), { force: true });
    assert.notEqual(youtubeCredentialsSchema.parse(rotated!.credentials).refreshToken, creds.refreshToken, 'a new refresh token, when given, is kept');
  } finally {
    sim.options.rotateRefreshTokens = false;
  }
  // The rotation revoked the old refresh token.
  await rejectsWith(adapter.refresh!(creds, makeDeps(), { force: true }), { code: 'auth', retryable: false });
  await rejectsWith(adapter.refresh!(creds, makeDeps({ oauth: false }), { force: true }), { code: 'unknown', retryable: false, detail: /not configured/ });
  await rejectsWith(adapter.refresh!({ accessToken: 'x' }, makeDeps(), { force: true }), { code: 'auth', retryable: false });
});

test('an access token that expires mid-upload: auth (retryable), refresh, and the upload continues where it was', async () => {
  const creds = sim.addAccount();
  sim.inject('chunk', { kind: 'expireToken' }, { when: (info) => info.headers['content-range']?.startsWith(`bytes ${CHUNK}-`) ?? false });
  const mark = sim.requests.length;
  const first = makeInput(creds);
  await rejectsWith(adapter.publish(first, makeDeps()), { code: 'auth', retryable: true });
  assert.equal(since(mark).of('chunk').at(-1)?.status, 401);

  // What the worker does: a forced refresh, then the same delivery again.
  const refreshed = await adapter.refresh!(creds, makeDeps(), { force: true });
  assert.ok(refreshed);
  const result = await adapter.publish(resumeInput(first, refreshed.credentials), makeDeps());
  assert.equal(result.status, 'processing');
  assert.equal(since(mark).of('insert').length, 1, 'the same session');
  assert.equal(chunkBytes(mark), SIZE, 'nothing resent');
  assert.equal(videosOf(creds).length, 1);
  assert.equal(videosOf(creds)[0]!.sha256, rendition.sha256);

  // Expired while processing: check is auth too, and works after refresh.
  if (result.status !== 'processing') return;
  sim.expireAccessToken(youtubeCredentialsSchema.parse(refreshed.credentials).accessToken);
  await rejectsWith(adapter.check(result.remoteId, makeInput(refreshed.credentials), makeDeps()), { code: 'auth', retryable: true });
  const again = await adapter.refresh!(refreshed.credentials, makeDeps(), { force: true });
  assert.equal((await adapter.check(result.remoteId, makeInput(again!.credentials), makeDeps())).status, 'processing');
});

// --- crash and resume: exactly once ----------------------------------------------------------

test('crash mid-upload: the resumed attempt asks the session and continues; one session, one video', async () => {
  const creds = sim.addAccount();
  const mark = sim.requests.length;
  const first = makeInput(creds);
  await assert.rejects(adapter.publish(first, makeDeps({ crashAt: 'youtube.after_chunk' })), Crash);
  assert.equal(typeof first.checkpoint.sessionUri, 'string');
  assert.equal(first.checkpoint.videoId, undefined);

  const deps = makeDeps();
  const result = await adapter.publish(resumeInput(first), deps);
  assert.equal(result.status, 'processing');
  const after = since(mark);
  assert.equal(after.of('insert').length, 1);
  assert.equal(after.of('query').length, 1);
  assert.deepEqual(after.of('query')[0]?.status, 308);
  assert.equal(chunkBytes(mark), SIZE);
  assert.equal(videosOf(creds).length, 1);
});

test('crash after the final chunk, before the video id was saved: the session hands back the video, nothing is uploaded again', async () => {
  const creds = sim.addAccount();
  const first = makeInput(creds);
  await assert.rejects(adapter.publish(first, makeDeps({ crashAt: 'youtube.after_final_chunk' })), Crash);
  assert.equal(videosOf(creds).length, 1, 'YouTube created the video');
  assert.equal(first.checkpoint.videoId, undefined, 'but the id never reached the checkpoint');
  assert.equal(first.checkpoint.finalChunkSent, true);

  const mark = sim.requests.length;
  const resumed = resumeInput(first);
  const result = await adapter.publish(resumed, makeDeps());
  assert.deepEqual(result, { status: 'processing', remoteId: videosOf(creds)[0]!.id, checkAfterSeconds: 7 });
  assert.deepEqual(since(mark).all.map((r) => `${r.op} ${r.status}`), ['query 200']);
  assert.equal(resumed.checkpoint.videoId, videosOf(creds)[0]!.id);
  assert.equal(videosOf(creds).length, 1);

  // And once the id is saved, a further attempt only reads the video's status.
  const mark2 = sim.requests.length;
  const again = await adapter.publish(resumeInput(resumed), makeDeps());
  assert.equal(again.status, 'processing');
  assert.deepEqual(since(mark2).all.map((r) => r.op), ['list']);
});

test('the answer to the final chunk is lost after YouTube created the video: the same attempt finds it by asking the session', async () => {
  const creds = sim.addAccount();
  sim.inject('chunk', { kind: 'resetAfterHandling' }, { when: (info) => info.final });
  const mark = sim.requests.length;
  const input = makeInput(creds);
  const result = await adapter.publish(input, makeDeps());
  assert.equal(result.status, 'processing');
  assert.deepEqual(since(mark).all.map((r) => `${r.op} ${r.status}`), ['insert 200', 'chunk 308', 'chunk 308', 'chunk reset', 'query 200']);
  assert.equal(input.checkpoint.videoId, videosOf(creds)[0]!.id);
  assert.equal(videosOf(creds).length, 1);
});

test('a final chunk that failed with 5xx: the session says incomplete, the error stands, the retry completes once', async () => {
  const creds = sim.addAccount();
  sim.inject('chunk', ERRORS.backendError(500), { when: (info) => info.final });
  const first = makeInput(creds);
  await rejectsWith(adapter.publish(first, makeDeps()), { code: 'unavailable', retryable: true, outcomeUnknown: true });
  assert.equal(videosOf(creds).length, 0);
  const result = await adapter.publish(resumeInput(first), makeDeps());
  assert.equal(result.status, 'processing');
  assert.equal(videosOf(creds).length, 1);
});

test('an expired session starts over (before the final chunk), but after the final chunk it is unconfirmed', async () => {
  const creds = sim.addAccount();
  const first = makeInput(creds);
  await assert.rejects(adapter.publish(first, makeDeps({ crashAt: 'youtube.after_chunk' })), Crash);
  sim.expireSession(String(first.checkpoint.sessionUri), 410);
  const mark = sim.requests.length;
  const resumed = resumeInput(first);
  const result = await adapter.publish(resumed, makeDeps());
  assert.equal(result.status, 'processing');
  assert.deepEqual(since(mark).all.map((r) => `${r.op} ${r.status}`), ['query 410', 'insert 200', 'chunk 308', 'chunk 308', 'chunk 200']);
  assert.notEqual(resumed.checkpoint.sessionUri, first.checkpoint.sessionUri);
  assert.equal(videosOf(creds).length, 1);

  // Expiry mid-upload (a chunk answered 404): one restart in the same attempt.
  const other = sim.addAccount();
  const midway = makeInput(other);
  sim.inject('chunk', { kind: 'status', status: 404, body: { error: { code: 404, message: 'Not Found', errors: [{ reason: 'notFound', domain: 'global', message: 'Not Found' }] } } }, { when: (info) => info.headers['content-range']?.startsWith(`bytes ${CHUNK}-`) ?? false });
  assert.equal((await adapter.publish(midway, makeDeps())).status, 'processing');
  assert.equal(videosOf(other).length, 1);

  // The final chunk went out, then the session vanished: YouTube cannot say, so neither do we.
  const third = sim.addAccount();
  const lost = makeInput(third);
  await assert.rejects(adapter.publish(lost, makeDeps({ crashAt: 'youtube.after_final_chunk' })), Crash);
  sim.expireSession(String(lost.checkpoint.sessionUri), 404);
  const mark3 = sim.requests.length;
  const unconfirmed = await adapter.publish(resumeInput(lost), makeDeps());
  assert.equal(unconfirmed.status, 'unconfirmed');
  assert.match(unconfirmed.status === 'unconfirmed' ? unconfirmed.evidence : '', /last chunk of the upload was sent at .*\(HTTP 404\)/);
  assert.deepEqual(since(mark3).all.map((r) => `${r.op} ${r.status}`), ['query 404'], 'no new upload');
  assert.equal(videosOf(third).length, 1);
});

test('a refused final chunk proves nothing was created: a later session expiry starts over instead of going unconfirmed', async () => {
  const creds = sim.addAccount();
  sim.inject('chunk', { kind: 'expireToken' }, { when: (info) => info.final });
  const first = makeInput(creds);
  await rejectsWith(adapter.publish(first, makeDeps()), { code: 'auth', retryable: true });
  assert.equal(first.checkpoint.finalChunkSent, false);
  sim.expireSession(String(first.checkpoint.sessionUri));
  const refreshed = await adapter.refresh!(creds, makeDeps(), { force: true });
  const result = await adapter.publish(resumeInput(first, refreshed!.credentials), makeDeps());
  assert.equal(result.status, 'processing');
  assert.equal(videosOf(creds).length, 1);
});

test('a checkpointed session for a different rendition is abandoned for a new one', async () => {
  const creds = sim.addAccount();
  const first = makeInput(creds);
  await assert.rejects(adapter.publish(first, makeDeps({ crashAt: 'youtube.after_session' })), Crash);
  const mark = sim.requests.length;
  const other = { ...rendition, sha256: 'f'.repeat(64) };
  const input = makeInput(creds, { checkpoint: first.checkpoint, rendition: other });
  assert.equal((await adapter.publish(input, makeDeps())).status, 'processing');
  assert.deepEqual(since(mark).all.map((r) => r.op), ['query', 'insert', 'chunk', 'chunk', 'chunk']);
  assert.equal(input.checkpoint.sessionSha256, other.sha256);
});

// --- through the worker ---------------------------------------------------------------------

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('through the worker: expired token mid-upload is refreshed under the row lock and the post goes out; SIGKILL after the final chunk still yields one video', async () => {
  const [{ testContext }, { upsertAccount, readCredentials }, { submitPost }, { getDelivery, listDeliveries }, { ensureWorkspace }, { startWorker }, { makeClip }, { QUEUES }] = await Promise.all([
    import('../../support/context.ts'),
    import('../../../core/accounts.ts'),
    import('../../../core/intake.ts'),
    import('../../../core/posts.ts'),
    import('../../../core/workspaces.ts'),
    import('../../../worker/main.ts'),
    import('../../support/clips.ts'),
    import('../../../core/jobs.ts'),
  ]);
  const env = {
    YOUTUBE_API_URL: sim.urls.api,
    YOUTUBE_UPLOAD_URL: sim.urls.upload,
    GOOGLE_TOKEN_URL: sim.urls.token,
    GOOGLE_CLIENT_ID: sim.client.clientId,
    GOOGLE_CLIENT_SECRET: sim.client.clientSecret,
  };
  const ctx = await testContext({ env });
  try {
    await ensureWorkspace(ctx.pool, 'cli', 'UTC');
    const clip = makeClip(join(ctx.dir, 'short.mp4'), { width: 720, height: 1280, seconds: 3 });
    const link = async (handle: string) => {
      const creds = sim.addAccount();
      await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'youtube', handle, remoteId: sim.users.get(creds.userId)!.channelId, credentials: creds, expiresAt: new Date(creds.expiresAt) });
      return creds;
    };
    const waitFor = async (deliveryId: string, states: string[], timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const row = await getDelivery(ctx.pool, deliveryId);
        if (row && states.includes(row.state)) return row;
        if (Date.now() > deadline) throw new Error(`delivery ${deliveryId} stuck in ${row?.state}: ${row?.error ?? ''}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const workerAdapter = createYoutubeAdapter({ chunkBytes: GRANULE, checkAfterSeconds: 1, minCheckSeconds: 1 });

    // 1. In process: the token dies on the second chunk; the worker's forced refresh cures it.
    const alice = await link('alice');
    sim.inject('chunk', { kind: 'expireToken' }, { when: (info) => info.headers['content-range']?.startsWith(`bytes ${GRANULE}-`) ?? false });
    const worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, adapters: { youtube: workerAdapter } });
    let aliceDelivery: string;
    try {
      const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'Worker short\nfrom the test', targets: [{ platform: 'youtube', handle: 'alice' }] });
      aliceDelivery = (await listDeliveries(ctx.pool, post.id))[0]!.id;
      const done = await waitFor(aliceDelivery, ['published', 'failed', 'unconfirmed'], 60_000);
      assert.equal(done.state, 'published', done.error ?? '');
      const video = videosOf(alice)[0]!;
      assert.equal(videosOf(alice).length, 1);
      assert.equal(done.remote_id, video.id);
      assert.equal(done.url, `https://www.youtube.com/shorts/${video.id}`);
      assert.equal(video.title, 'Worker short');
      const stored = youtubeCredentialsSchema.parse(await readCredentials(ctx.pool, ctx.secrets, done.account_id));
      assert.notEqual(stored.accessToken, alice.accessToken, 'the refreshed token was saved');
      assert.equal(stored.refreshToken, alice.refreshToken);
      assert.ok(sim.requests.some((r) => r.op === 'chunk' && r.status === 401), 'the token did expire mid-upload');
    } finally {
      await worker.stop();
    }

    // 2. A real worker process SIGKILLs itself between the final chunk and the checkpoint.
    const bob = await link('bob');
    const spawnWorker = (crashAt: string) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD_WORKER], {
        env: {
          ...process.env,
          ...env,
          YT_ROOT: ROOT,
          DATABASE_URL: ctx.databaseUrl,
          REELAY_SECRET_KEY: readFileSync(join(ctx.dir, 'data', 'secret.key'), 'utf8').trim(),
          REELAY_DATA_DIR: join(ctx.dir, 'worker-data'),
          LOG_LEVEL: 'warn',
          REELAY_CRASH_AT: crashAt,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      children.add(child);
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.on('exit', (code, signal) => {
          children.delete(child);
          if (code !== 0 && signal !== 'SIGKILL' && signal !== 'SIGTERM') process.stderr.write(`worker stderr:\n${stderr}\n`);
          resolve(signal);
        }),
      );
      return { child, exited };
    };
    const crashing = spawnWorker('youtube.after_final_chunk');
    const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'Crash test', targets: [{ platform: 'youtube', handle: 'bob' }] });
    const deliveryId = (await listDeliveries(ctx.pool, post.id))[0]!.id;
    assert.equal(await crashing.exited, 'SIGKILL');
    const crashed = (await getDelivery(ctx.pool, deliveryId))!;
    assert.equal(crashed.state, 'publishing');
    assert.equal(typeof crashed.checkpoint.sessionUri, 'string');
    assert.equal(crashed.checkpoint.videoId, undefined);
    assert.equal(videosOf(bob).length, 1, 'the video exists; only its id was lost');
    // pg-boss would find the dead worker by its missing heartbeat; failing the job now saves ~15 s.
    await ctx.boss.fail(QUEUES.publish, crashed.job_id!);
    const inserts = sim.log('insert').length;
    const recovering = spawnWorker('');
    try {
      const done = await waitFor(deliveryId, ['published', 'failed', 'unconfirmed'], 60_000);
      assert.equal(done.state, 'published', done.error ?? '');
      assert.equal(videosOf(bob).length, 1, 'exactly one video');
      assert.equal(done.remote_id, videosOf(bob)[0]!.id);
      assert.equal(sim.log('insert').length, inserts, 'no new upload session');
    } finally {
      recovering.child.kill('SIGTERM');
      await recovering.exited;
    }
  } finally {
    await ctx.dispose();
  }
});

/** A worker process with the YouTube adapter (the registry does not list it yet). */
const CHILD_WORKER = `
const root = process.env.YT_ROOT;
const { parseConfig } = await import(root + 'core/config.ts');
const { createContext } = await import(root + 'core/context.ts');
const { createLogger } = await import(root + 'core/log.ts');
const { startWorker } = await import(root + 'worker/main.ts');
const { createYoutubeAdapter } = await import(root + 'worker/platforms/youtube.ts');
const config = parseConfig(process.env);
const ctx = await createContext({ config, log: createLogger({ level: 'warn' }) });
const youtube = createYoutubeAdapter({ chunkBytes: 262144, checkAfterSeconds: 1, minCheckSeconds: 1 });
const worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, adapters: { youtube } });
process.on('SIGTERM', () => { worker.stop().then(() => ctx.close()).then(() => process.exit(0)); });
`;

// --- memory -------------------------------------------------------------------------------------

/** Publishes a file far larger than its heap from a child process, sampling memory as it goes. */
const CHILD_UPLOAD = `
const { createReadStream } = await import('node:fs');
const { createYoutubeAdapter } = await import(process.env.YT_ROOT + 'worker/platforms/youtube.ts');
const { createLogger } = await import(process.env.YT_ROOT + 'core/log.ts');
const size = Number(process.env.YT_SIZE);
let peakRss = 0, peakHeap = 0, peakExternal = 0;
const sample = () => { const m = process.memoryUsage(); peakRss = Math.max(peakRss, m.rss); peakHeap = Math.max(peakHeap, m.heapUsed); peakExternal = Math.max(peakExternal, m.external); };
const timer = setInterval(sample, 10);
const file = process.env.YT_FILE;
const rendition = { id: 'big', size, sha256: process.env.YT_SHA, contentType: 'video/mp4', width: 1080, height: 1920, durationSeconds: 60,
  open: async (range) => createReadStream(file, range ? { start: range.start, end: range.end } : {}) };
const checkpoint = {};
const input = { deliveryId: 'big', createdAt: new Date(), caption: 'Big one', rendition, account: { id: 'a', handle: 'h', remoteId: null },
  credentials: JSON.parse(process.env.YT_CREDS), checkpoint, saveCheckpoint: async (patch) => { Object.assign(checkpoint, patch); } };
const deps = { fetch, signal: new AbortController().signal, log: createLogger({ level: 'silent' }), now: Date.now,
  urls: JSON.parse(process.env.YT_URLS), oauthClient: null, crashPoint: () => {} };
const adapter = createYoutubeAdapter();
const started = performance.now();
let result = await adapter.publish(input, deps);
while (result.status === 'processing') result = await adapter.check(result.remoteId, input, deps);
sample();
clearInterval(timer);
process.stdout.write(JSON.stringify({ result, peakRss, peakHeap, peakExternal, ms: Math.round(performance.now() - started) }));
`;

test('memory: a 200 MB file is streamed from a child with a 64 MB heap', async () => {
  const size = 200 * 1024 * 1024 + 12_345;
  const file = join(dir, 'big.bin');
  const sha256 = await writeRandomFile(file, size);
  const creds = sim.addAccount();
  sim.options.processingPolls = 0;
  try {
    const child = spawn(process.execPath, ['--max-old-space-size=64', '--input-type=module', '-e', CHILD_UPLOAD], {
      env: { ...process.env, YT_ROOT: ROOT, YT_FILE: file, YT_SIZE: String(size), YT_SHA: sha256, YT_CREDS: JSON.stringify(creds), YT_URLS: JSON.stringify(sim.urls) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => (children.delete(child), resolve(c))));
    assert.equal(code, 0, err.slice(-2000));
    const report = JSON.parse(out) as { result: PublishResult; peakRss: number; peakHeap: number; peakExternal: number; ms: number };
    assert.equal(report.result.status, 'published');
    const video = videosOf(creds)[0]!;
    assert.equal(video.size, size);
    assert.equal(video.sha256, sha256, 'every byte arrived, in order');
    const mb = (n: number) => Math.round(n / 1024 / 1024);
    console.log(`200 MB upload: ${report.ms} ms, peak RSS ${mb(report.peakRss)} MB, peak heap ${mb(report.peakHeap)} MB, peak external ${mb(report.peakExternal)} MB`);
    // Buffering the file would need over 200 MB; what remains is about one chunk, which Node's
    // bundled fetch keeps until its request ends.
    assert.ok(report.peakHeap < 64 * 1024 * 1024);
    assert.ok(report.peakExternal < 64 * 1024 * 1024, `peak external ${mb(report.peakExternal)} MB`);
    assert.ok(report.peakRss < 180 * 1024 * 1024, `peak RSS ${mb(report.peakRss)} MB`);
  } finally {
    sim.options.processingPolls = 2;
    await rm(file, { force: true });
  }
});

test('validate: channels.list?mine=true with the stored token; refused tokens are auth, a scope refusal still proves the login', async () => {
  assert.ok(adapter.validate);
  const account = sim.addAccount();
  const units = sim.quota.units;
  let mark = sim.requests.length;
  await adapter.validate(account, makeDeps());
  const [read] = since(mark).of('channels');
  assert.equal(read?.status, 200);
  assert.equal(read?.method, 'GET');
  assert.equal(sim.quota.units, units + 1, 'one quota unit');

  // Upload-only links are refused for scope (403), which Google checks after the token itself.
  const uploadOnly = sim.addAccount({ scopes: [SCOPES.upload] });
  mark = sim.requests.length;
  await adapter.validate(uploadOnly, makeDeps());
  assert.equal(since(mark).of('channels')[0]?.reason, 'insufficientPermissions');

  // Expired: retryable, so the daily check forces a refresh; unknown tokens likewise.
  sim.expireAccessToken(account.accessToken);
  mark = sim.requests.length;
  await rejectsWith(adapter.validate(account, makeDeps()), { code: 'auth', retryable: true });
  assert.equal(since(mark).of('channels')[0]?.status, 401);
  await rejectsWith(adapter.validate({ ...account, accessToken: 'ya29.forged' }, makeDeps()), { code: 'auth', retryable: true });
  await rejectsWith(adapter.validate({ scope: '' }, makeDeps()), { code: 'auth', retryable: false, detail: 'stored credentials are incomplete' });

  sim.inject('channels', ERRORS.quotaExceeded());
  await rejectsWith(adapter.validate(sim.addAccount(), makeDeps()), { code: 'rate_limited' });
});

test('simulator: channels.list needs a part, exactly one filter and a read scope', async () => {
  const account = sim.addAccount();
  const get = async (query: string, token = account.accessToken) => {
    const response = await fetch(`${sim.urls.api}/youtube/v3/channels?${query}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: response.status, reason: await reason(response) };
  };
  assert.deepEqual(await get('mine=true'), { status: 400, reason: 'required' });
  assert.deepEqual(await get('part=id'), { status: 400, reason: 'missingRequiredParameter' });
  assert.deepEqual(await get('part=id&mine=true&id=UCx'), { status: 400, reason: 'incompatibleParameters' });
  assert.deepEqual(await get('part=bogus&mine=true'), { status: 400, reason: 'unknownPart' });
  assert.deepEqual(await get('part=id&mine=true', 'ya29.nope'), { status: 401, reason: 'authError' });
  const noChannel = sim.addAccount({ channel: false });
  const response = await fetch(`${sim.urls.api}/youtube/v3/channels?part=id&mine=true`, { headers: { authorization: `Bearer ${noChannel.accessToken}` } });
  assert.equal(response.status, 200);
  assert.deepEqual(((await response.json()) as { items?: unknown[] }).items, undefined, 'no channel: no items');
});
