/**
 * The Bluesky adapter against a real PDS on loopback (tests/support/pds.ts). Faults (connection
 * resets, 429s, expired tokens) are injected by wrapping the fetch the adapter is given.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PublishError } from '../../../core/errors.ts';
import { createLogger } from '../../../core/log.ts';
import type { Checkpoint, Credentials, PlatformDeps, PublishInput, RenditionHandle } from '../../../core/platforms.ts';
import {
  bluesky,
  blueskyCredentialsSchema,
  blueskyLogin,
  deliveryRecordKey,
  isValidTid,
  jwtExpiry,
  mapBlueskyError,
  tidFromTime,
  type BlueskyCredentials,
} from '../../../worker/platforms/bluesky.ts';
import { json, requestJson, retryAfterSeconds, streamBody } from '../../../worker/platforms/http.ts';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { startPds, type PdsAccount, type TestPdsHandle } from '../../support/pds.ts';

let pds: TestPdsHandle;
let dir: string;
let rendition: RenditionHandle;
let accountCounter = 0;

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} exited ${code}: ${err.slice(-2000)}`))));
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-bsky-test-'));
  const file = join(dir, 'clip.mp4');
  const [started] = await Promise.all([
    startPds(),
    run('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=size=720x1280:rate=30',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', file,
    ]),
  ]);
  pds = started;
  const size = (await stat(file)).size;
  const sha256 = createHash('sha256').update(await readFile(file)).digest('hex');
  rendition = {
    id: 'rendition-1',
    size,
    sha256,
    contentType: 'video/mp4',
    width: 720,
    height: 1280,
    durationSeconds: 2,
    open: async () => createReadStream(file),
  };
});

after(async () => {
  await pds?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Recorded {
  crashPoints: string[];
  calls: { nsid: string; init: RequestInit | undefined }[];
}

type FetchWrapper = (url: URL, init: RequestInit | undefined, real: typeof fetch) => Promise<Response>;

function makeDeps(wrap?: FetchWrapper): PlatformDeps & { recorded: Recorded } {
  const recorded: Recorded = { crashPoints: [], calls: [] };
  const wrapped: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    recorded.calls.push({ nsid: url.pathname.replace('/xrpc/', ''), init });
    return wrap ? wrap(url, init, fetch) : fetch(input, init);
  };
  return {
    fetch: wrapped,
    signal: new AbortController().signal,
    log: createLogger({ level: 'silent' }),
    now: () => Date.now(),
    oauthClient: null,
    urls: {},
    crashPoint: (name) => recorded.crashPoints.push(name),
    recorded,
  };
}

function callsTo(deps: { recorded: Recorded }, nsid: string): number {
  return deps.recorded.calls.filter((c) => c.nsid === nsid).length;
}

async function newAccount(): Promise<{ account: PdsAccount; credentials: Credentials }> {
  const account = await pds.createAccount(`user${++accountCounter}-${randomUUID().slice(0, 6)}`);
  const login = await blueskyLogin({ identifier: account.handle, appPassword: account.appPassword, service: pds.url }, makeDeps());
  return { account, credentials: login.credentials };
}

function makeInput(
  account: PdsAccount,
  credentials: Credentials,
  overrides: { caption?: string; checkpoint?: Checkpoint; deliveryId?: string; createdAt?: Date } = {},
): PublishInput & { checkpoint: Checkpoint; saves: Checkpoint[] } {
  const saves: Checkpoint[] = [];
  const input = {
    deliveryId: overrides.deliveryId ?? randomUUID(),
    createdAt: overrides.createdAt ?? new Date(),
    mediaUrl: null,
    caption: overrides.caption ?? 'A test clip',
    rendition,
    account: { id: 'acc-1', handle: account.handle, remoteId: account.did },
    credentials,
    checkpoint: { ...overrides.checkpoint } as Checkpoint,
    saves,
    async saveCheckpoint(patch: Checkpoint) {
      saves.push(patch);
      Object.assign(input.checkpoint, patch);
    },
  };
  return input;
}

async function posts(account: PdsAccount) {
  return pds.listRecords(account.did, 'app.bsky.feed.post');
}

function connectionReset(): TypeError {
  const cause = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  return new TypeError('fetch failed', { cause });
}

test('PDS harness starts quickly once dev-env is loaded', () => {
  assert.ok(pds.startupMs.startMs < 10_000, JSON.stringify(pds.startupMs));
  console.log(`PDS startup: import ${pds.startupMs.importMs} ms, start ${pds.startupMs.startMs} ms`);
});

test('login with a wrong password is an auth error that is not retried', async () => {
  const account = await pds.createAccount(`wrongpw-${randomUUID().slice(0, 6)}`);
  await assert.rejects(
    blueskyLogin({ identifier: account.handle, appPassword: 'aaaa-bbbb-cccc-dddd', service: pds.url }, makeDeps()),
    (error: unknown) => {
      assert.ok(error instanceof PublishError);
      assert.equal(error.code, 'auth');
      assert.equal(error.retryable, false);
      assert.match(error.message, /refused the login/);
      return true;
    },
  );
});

test('login refuses the main account password (only app passwords are stored)', async () => {
  const account = await pds.createAccount(`mainpw-${randomUUID().slice(0, 6)}`);
  await assert.rejects(blueskyLogin({ identifier: account.handle, appPassword: account.password, service: pds.url }, makeDeps()), (error: unknown) => {
    assert.ok(error instanceof PublishError);
    assert.equal(error.code, 'auth');
    assert.equal(error.retryable, false);
    assert.match(error.detail, /app password/);
    return true;
  });
});

test('login against an unreachable service is unavailable', async () => {
  await assert.rejects(blueskyLogin({ identifier: 'x.test', appPassword: 'p', service: 'http://127.0.0.1:1' }, makeDeps()), (error: unknown) => {
    assert.ok(error instanceof PublishError);
    assert.equal(error.code, 'unavailable');
    assert.equal(error.retryable, true);
    assert.match(error.message, /Cannot reach Bluesky/);
    return true;
  });
});

test('login stores credentials matching the schema, with a session on the PDS', async () => {
  const account = await pds.createAccount(`login-${randomUUID().slice(0, 6)}`);
  const login = await blueskyLogin({ identifier: `@${account.handle}`, appPassword: account.appPassword, service: `${pds.url}/` }, makeDeps());
  const creds = blueskyCredentialsSchema.parse(login.credentials);
  assert.equal(login.did, account.did);
  assert.equal(login.handle, account.handle);
  assert.equal(creds.identifier, account.handle);
  assert.equal(creds.service, pds.url);
  assert.equal(creds.session?.pdsUrl, pds.url);
  assert.ok(login.expiresAt && login.expiresAt.getTime() > Date.now() + 60 * 60_000);
});

test('publish posts the video with aspect ratio and hashtag/link facets; the blob is h264 + aac', async () => {
  const { account, credentials } = await newAccount();
  const caption = 'Héllo 👋 #reelay see https://example.com/a?b=1 and @nobody.test #テスト';
  const deps = makeDeps();
  const input = makeInput(account, credentials, { caption });
  const result = await bluesky.publish(input, deps);

  assert.equal(result.status, 'published');
  const rkey = input.checkpoint.rkey;
  assert.ok(isValidTid(rkey));
  assert.equal(rkey, deliveryRecordKey(input.deliveryId, input.createdAt));
  assert.equal(result.remoteId, `at://${account.did}/app.bsky.feed.post/${rkey}`);
  assert.equal(result.status === 'published' && result.url, `https://bsky.app/profile/${account.handle}/post/${rkey}`);
  // The record key is saved before anything else happens.
  assert.deepEqual(input.saves[0], { rkey });
  assert.deepEqual(deps.recorded.crashPoints, ['bluesky.after_upload', 'bluesky.after_create']);
  assert.equal(callsTo(deps, 'com.atproto.repo.uploadBlob'), 1);
  assert.equal(callsTo(deps, 'com.atproto.repo.getRecord'), 0, 'a first attempt has nothing to look for');

  // Streamed, not buffered, with an explicit length.
  const upload = deps.recorded.calls.find((c) => c.nsid === 'com.atproto.repo.uploadBlob');
  const uploadBody = upload?.init?.body;
  assert.ok(uploadBody && typeof uploadBody === 'object' && Symbol.asyncIterator in uploadBody && !(uploadBody instanceof Uint8Array));
  assert.equal(new Headers(upload?.init?.headers).get('content-length'), String(rendition.size));
  assert.equal(new Headers(upload?.init?.headers).get('content-type'), 'video/mp4');

  const record = await pds.getRecord(result.remoteId);
  assert.ok(record);
  const value = record.value as {
    text: string;
    createdAt: string;
    langs?: unknown;
    embed: { $type: string; video: { ref: { $link: string }; mimeType: string; size: number }; aspectRatio: { width: number; height: number } };
    facets: { index: { byteStart: number; byteEnd: number }; features: { $type: string; tag?: string; uri?: string }[] }[];
  };
  assert.equal(value.text, caption);
  assert.equal(value.langs, undefined);
  assert.ok(Math.abs(Date.parse(value.createdAt) - Date.now()) < 60_000);
  assert.equal(value.embed.$type, 'app.bsky.embed.video');
  assert.deepEqual(value.embed.aspectRatio, { width: 720, height: 1280 });
  assert.equal(value.embed.video.mimeType, 'video/mp4');
  assert.equal(value.embed.video.size, rendition.size);

  const bytes = Buffer.from(caption, 'utf8');
  const spans = value.facets.map((f) => ({ text: bytes.subarray(f.index.byteStart, f.index.byteEnd).toString('utf8'), type: f.features[0]?.$type }));
  assert.deepEqual(spans, [
    { text: '#reelay', type: 'app.bsky.richtext.facet#tag' },
    { text: 'https://example.com/a?b=1', type: 'app.bsky.richtext.facet#link' },
    { text: '#テスト', type: 'app.bsky.richtext.facet#tag' },
  ]);
  assert.equal(value.facets[0]?.features[0]?.tag, 'reelay');
  assert.equal(value.facets[1]?.features[0]?.uri, 'https://example.com/a?b=1');

  const blob = await pds.getBlob(account.did, value.embed.video.ref.$link);
  assert.equal(blob.length, rendition.size);
  const probeFile = join(dir, `probe-${randomUUID()}.mp4`);
  await writeFile(probeFile, blob);
  const probe = JSON.parse(await run('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', probeFile])) as {
    streams: { codec_type: string; codec_name: string; width?: number; height?: number }[];
  };
  const video = probe.streams.find((s) => s.codec_type === 'video');
  const audio = probe.streams.find((s) => s.codec_type === 'audio');
  assert.equal(video?.codec_name, 'h264');
  assert.equal(video?.width, 720);
  assert.equal(video?.height, 1280);
  assert.equal(audio?.codec_name, 'aac');

  const checked = await bluesky.check(result.remoteId, input, makeDeps());
  assert.deepEqual(checked, result);
});

test('a repeated publish with the same checkpoint finds the post and does not post again', async () => {
  const { account, credentials } = await newAccount();
  const first = makeInput(account, credentials);
  const published = await bluesky.publish(first, makeDeps());

  const deps = makeDeps();
  const again = makeInput(account, credentials, { deliveryId: first.deliveryId, createdAt: first.createdAt, checkpoint: first.checkpoint });
  const result = await bluesky.publish(again, deps);
  assert.deepEqual(result, published);
  assert.equal(callsTo(deps, 'com.atproto.repo.getRecord'), 1);
  assert.equal(callsTo(deps, 'com.atproto.repo.uploadBlob'), 0);
  assert.equal(callsTo(deps, 'com.atproto.repo.createRecord'), 0);
  assert.equal((await posts(account)).length, 1);
});

test('a checkpoint holding a record key but no record publishes under that key', async () => {
  const { account, credentials } = await newAccount();
  const rkey = deliveryRecordKey('some-earlier-delivery', new Date('2026-01-02T03:04:05Z'));
  const deps = makeDeps();
  const input = makeInput(account, credentials, { checkpoint: { rkey } });
  const result = await bluesky.publish(input, deps);
  assert.equal(result.status, 'published');
  if (result.status !== 'published') return;
  assert.equal(result.remoteId, `at://${account.did}/app.bsky.feed.post/${rkey}`);
  assert.equal(callsTo(deps, 'com.atproto.repo.getRecord'), 1);
  assert.equal(callsTo(deps, 'com.atproto.repo.createRecord'), 1);
  const all = await posts(account);
  assert.equal(all.length, 1);
  assert.equal(all[0]?.uri, result.remoteId);
});

test('a saved blob is reused, and re-uploaded once when the PDS no longer has it', async () => {
  const { account, credentials } = await newAccount();
  // A well-formed CID this PDS has never stored for this account.
  const missing = { $type: 'blob', ref: { $link: 'bafkreiai6fteo3pbqp32dmuhjvke2n4rfkxy2gnzeaj6dkx6em52emicji' }, mimeType: 'video/mp4', size: rendition.size };
  const deps = makeDeps();
  const input = makeInput(account, credentials, { checkpoint: { blob: missing, blobSha256: rendition.sha256 } });
  const result = await bluesky.publish(input, deps);
  assert.equal(result.status, 'published');
  assert.equal(callsTo(deps, 'com.atproto.repo.createRecord'), 2);
  assert.equal(callsTo(deps, 'com.atproto.repo.uploadBlob'), 1);
  assert.notDeepEqual(input.checkpoint.blob, missing);
  assert.equal((await posts(account)).length, 1);
});

test('a caption over 300 graphemes or 3000 bytes is rejected before any upload', async () => {
  const { account, credentials } = await newAccount();
  for (const caption of ['x'.repeat(301), '👨‍👩‍👧‍👦'.repeat(200)]) {
    const deps = makeDeps();
    const input = makeInput(account, credentials, { caption });
    await assert.rejects(bluesky.publish(input, deps), (error: unknown) => {
      assert.ok(error instanceof PublishError);
      assert.equal(error.code, 'rejected');
      assert.equal(error.retryable, false);
      assert.match(error.detail, /^The caption is (301 graphemes|5000 bytes)/);
      return true;
    });
    assert.equal(callsTo(deps, 'com.atproto.repo.uploadBlob'), 0);
    assert.equal(deps.recorded.calls.length, 0);
    assert.equal(input.saves.length, 0);
  }
  // Exactly 300 graphemes of emoji are fine by both counts.
  const input = makeInput(account, credentials, { caption: '😀'.repeat(300) });
  assert.equal((await bluesky.publish(input, makeDeps())).status, 'published');
});

test('refresh keeps a fresh session, and a forced refresh rotates both tokens', async () => {
  const { account, credentials } = await newAccount();
  assert.equal(await bluesky.refresh!(credentials, makeDeps(), { force: false }), null);

  // Access tokens carry no nonce: issued within the same second as the old one, the new token is
  // byte-identical. Wait for the next second so the rotation is visible.
  const claims = JSON.parse(Buffer.from(blueskyCredentialsSchema.parse(credentials).session!.accessJwt.split('.')[1]!, 'base64url').toString()) as { iat: number };
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, claims.iat * 1000 + 1100 - Date.now())));
  const deps = makeDeps();
  const refreshed = await bluesky.refresh!(credentials, deps, { force: true });
  assert.ok(refreshed);
  assert.equal(callsTo(deps, 'com.atproto.server.refreshSession'), 1);
  assert.equal(callsTo(deps, 'com.atproto.server.createSession'), 0);
  const before = blueskyCredentialsSchema.parse(credentials).session!;
  const after = blueskyCredentialsSchema.parse(refreshed.credentials).session!;
  assert.notEqual(after.accessJwt, before.accessJwt);
  assert.notEqual(after.refreshJwt, before.refreshJwt);
  assert.equal(after.did, account.did);
  assert.deepEqual(refreshed.expiresAt, jwtExpiry(after.accessJwt));

  const result = await bluesky.publish(makeInput(account, refreshed.credentials), makeDeps());
  assert.equal(result.status, 'published');
});

test('refresh logs in again when there is no session or the refresh token is refused', async () => {
  const { account, credentials } = await newAccount();
  const creds = blueskyCredentialsSchema.parse(credentials);

  const noSession: BlueskyCredentials = { identifier: creds.identifier, appPassword: creds.appPassword, service: creds.service };
  const deps1 = makeDeps();
  const fromNothing = await bluesky.refresh!(noSession, deps1, { force: false });
  assert.ok(fromNothing);
  assert.equal(callsTo(deps1, 'com.atproto.server.createSession'), 1);

  const expiring = { ...creds, session: { ...creds.session!, refreshJwt: 'not.a-valid.token' } };
  const deps2 = makeDeps();
  const recovered = await bluesky.refresh!(expiring, deps2, { force: true });
  assert.ok(recovered);
  assert.equal(callsTo(deps2, 'com.atproto.server.refreshSession'), 1);
  assert.equal(callsTo(deps2, 'com.atproto.server.createSession'), 1);
  assert.equal(blueskyCredentialsSchema.parse(recovered.credentials).session?.did, account.did);

  // A revoked app password cannot be cured by logging in again.
  const wrong = { ...expiring, appPassword: 'wron-gwro-ngwr-ongw' };
  await assert.rejects(bluesky.refresh!(wrong, makeDeps(), { force: true }), (error: unknown) => {
    assert.ok(error instanceof PublishError);
    assert.equal(error.code, 'auth');
    assert.equal(error.retryable, false);
    return true;
  });
});

test('an expired access token is a retryable auth error (the worker refreshes and retries)', async () => {
  const { account, credentials } = await newAccount();
  const deps = makeDeps(async (url, init, real) =>
    url.pathname.endsWith('uploadBlob')
      ? new Response(JSON.stringify({ error: 'ExpiredToken', message: 'Token has expired' }), { status: 400, headers: { 'content-type': 'application/json' } })
      : real(url, init),
  );
  await assert.rejects(bluesky.publish(makeInput(account, credentials), deps), (error: unknown) => {
    assert.ok(error instanceof PublishError);
    assert.equal(error.code, 'auth');
    assert.equal(error.retryable, true);
    return true;
  });
});

test('a connection reset after createRecord reached the PDS is outcome-unknown; the retry finds the one post', async () => {
  const { account, credentials } = await newAccount();
  const token = blueskyCredentialsSchema.parse(credentials).session!.accessJwt;
  const deps = makeDeps(async (url, init, real) => {
    if (!url.pathname.endsWith('createRecord')) return real(url, init);
    await (await real(url, init)).arrayBuffer();
    throw connectionReset();
  });
  const first = makeInput(account, credentials);
  await assert.rejects(bluesky.publish(first, deps), (error: unknown) => {
    assert.ok(error instanceof PublishError);
    assert.equal(error.code, 'unavailable');
    assert.equal(error.retryable, true);
    assert.equal(error.outcomeUnknown, true);
    assert.match(error.detail, /ECONNRESET/);
    assert.ok(!error.message.includes(token) && !error.detail.includes(token));
    return true;
  });
  assert.deepEqual(deps.recorded.crashPoints, ['bluesky.after_upload']);

  const retryDeps = makeDeps();
  const retry = makeInput(account, credentials, { deliveryId: first.deliveryId, createdAt: first.createdAt, checkpoint: first.checkpoint });
  const result = await bluesky.publish(retry, retryDeps);
  assert.equal(result.status, 'published');
  assert.equal(callsTo(retryDeps, 'com.atproto.repo.createRecord'), 0);
  assert.equal((await posts(account)).length, 1);
});

test('a connection reset before createRecord was sent: the retry posts exactly once, reusing the blob', async () => {
  const { account, credentials } = await newAccount();
  const deps = makeDeps(async (url, init, real) => {
    if (url.pathname.endsWith('createRecord')) throw connectionReset();
    return real(url, init);
  });
  const first = makeInput(account, credentials);
  await assert.rejects(bluesky.publish(first, deps), (error: unknown) => error instanceof PublishError && error.outcomeUnknown);

  const retryDeps = makeDeps();
  const retry = makeInput(account, credentials, { deliveryId: first.deliveryId, createdAt: first.createdAt, checkpoint: first.checkpoint });
  const result = await bluesky.publish(retry, retryDeps);
  assert.equal(result.status, 'published');
  assert.equal(callsTo(retryDeps, 'com.atproto.repo.uploadBlob'), 0);
  assert.equal(callsTo(retryDeps, 'com.atproto.repo.createRecord'), 1);
  assert.equal((await posts(account)).length, 1);
});

test('429 is rate_limited with retryAfterSeconds from ratelimit-reset', async () => {
  const { account, credentials } = await newAccount();
  const reset = Math.floor(Date.now() / 1000) + 120;
  const deps = makeDeps(async (url, init, real) =>
    url.pathname.endsWith('uploadBlob')
      ? new Response(JSON.stringify({ error: 'RateLimitExceeded', message: 'Rate Limit Exceeded' }), {
          status: 429,
          headers: { 'content-type': 'application/json', 'ratelimit-limit': '1000', 'ratelimit-remaining': '0', 'ratelimit-reset': String(reset) },
        })
      : real(url, init),
  );
  await assert.rejects(bluesky.publish(makeInput(account, credentials), deps), (error: unknown) => {
    assert.ok(error instanceof PublishError);
    assert.equal(error.code, 'rate_limited');
    assert.equal(error.retryable, true);
    assert.ok(error.retryAfterSeconds !== undefined && error.retryAfterSeconds >= 118 && error.retryAfterSeconds <= 121, String(error.retryAfterSeconds));
    return true;
  });
});

test('check of a post that was never created is a retryable unknown', async () => {
  const { account, credentials } = await newAccount();
  const rkey = deliveryRecordKey(randomUUID(), new Date());
  await assert.rejects(bluesky.check(`at://${account.did}/app.bsky.feed.post/${rkey}`, makeInput(account, credentials), makeDeps()), (error: unknown) => {
    assert.ok(error instanceof PublishError);
    assert.equal(error.code, 'unknown');
    assert.equal(error.retryable, true);
    return true;
  });
});

test('error mapping follows the reference', () => {
  const h = new Headers();
  const now = Date.now();
  const map = (status: number, error?: string) => mapBlueskyError(status, error ? { error, message: 'm' } : undefined, h, now);
  assert.deepEqual([map(400, 'ExpiredToken').code, map(400, 'ExpiredToken').retryable], ['auth', true]);
  assert.deepEqual([map(400, 'InvalidToken').code, map(400, 'InvalidToken').retryable], ['auth', false]);
  assert.deepEqual([map(401, 'AuthenticationRequired').code, map(401, 'AuthenticationRequired').retryable], ['auth', false]);
  assert.deepEqual([map(401, 'AuthFactorTokenRequired').code, map(401, 'AuthFactorTokenRequired').retryable], ['auth', false]);
  assert.equal(map(429, 'RateLimitExceeded').code, 'rate_limited');
  assert.deepEqual([map(413).code, map(413).retryable], ['invalid_media', false]);
  assert.deepEqual([map(400, 'BlobTooLarge').code, map(400, 'BlobTooLarge').retryable], ['invalid_media', false]);
  assert.deepEqual([map(400, 'InvalidRequest').code, map(400, 'InvalidRequest').retryable], ['rejected', false]);
  assert.deepEqual([map(502).code, map(502).retryable], ['unavailable', true]);
  assert.equal(map(404, 'Whatever').code, 'unknown');
});

test('Retry-After and ratelimit-reset parsing', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  assert.equal(retryAfterSeconds(new Headers({ 'retry-after': '30' }), now), 30);
  assert.equal(retryAfterSeconds(new Headers({ 'retry-after': 'Sun, 01 Mar 2026 12:01:30 GMT' }), now), 90);
  assert.equal(retryAfterSeconds(new Headers({ 'ratelimit-reset': String(now / 1000 + 45) }), now), 45);
  assert.equal(retryAfterSeconds(new Headers({ 'ratelimit-reset': '12' }), now), 12);
  assert.equal(retryAfterSeconds(new Headers({ 'retry-after': 'soon' }), now), undefined);
  assert.equal(retryAfterSeconds(new Headers(), now), undefined);
});

test('record keys are valid TIDs, deterministic per delivery, and match the atproto encoding', async () => {
  const createdAt = new Date('2026-05-06T07:08:09.123Z');
  const a = deliveryRecordKey('delivery-a', createdAt);
  assert.equal(a, deliveryRecordKey('delivery-a', createdAt));
  assert.notEqual(a, deliveryRecordKey('delivery-b', createdAt));
  // Cross-check against the reference implementations that ship with @atproto/api.
  const { isValidTid: officialIsValidTid, isValidRecordKey } = await import('@atproto/syntax');
  const { TID } = await import('@atproto/common-web');
  for (const key of [a, deliveryRecordKey('x', new Date(0)), deliveryRecordKey('y', new Date('2200-01-01'))]) {
    assert.ok(officialIsValidTid(key), key);
    assert.ok(isValidRecordKey(key), key);
    assert.ok(isValidTid(key));
  }
  const micros = 1_767_000_000_123_456;
  assert.equal(tidFromTime(BigInt(micros), 517), TID.fromTime(micros, 517).toString());
  assert.equal(TID.fromStr(a).timestamp() - (createdAt.getTime() * 1000), TID.fromStr(a).timestamp() % 1000);
});

// --- http.ts, against a plain local server --------------------------------------------------------

async function withServer(handler: Parameters<typeof createServer>[1], fn: (base: string) => Promise<void>): Promise<void> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

const neverMapped = (status: number) => new PublishError('unknown', `HTTP ${status}`);

test('requestJson: a hung server times out as outcome-unknown; safeToRepeat calls are not outcome-unknown', async () => {
  await withServer(
    () => undefined,
    async (base) => {
      const deps = makeDeps();
      await assert.rejects(requestJson(deps, `${base}/x?access_token=secret`, { method: 'POST', body: json({ a: 1 }) }, neverMapped, { timeoutMs: 200 }), (error: unknown) => {
        assert.ok(error instanceof PublishError);
        assert.equal(error.code, 'unavailable');
        assert.equal(error.outcomeUnknown, true);
        assert.match(error.detail, /timed out/);
        assert.ok(!error.message.includes('secret'), 'query strings stay out of messages');
        return true;
      });
      await assert.rejects(requestJson(deps, `${base}/y`, { method: 'GET' }, neverMapped, { timeoutMs: 200, safeToRepeat: true }), (error: unknown) => {
        assert.ok(error instanceof PublishError);
        assert.equal(error.outcomeUnknown, false);
        return true;
      });
    },
  );
});

test('requestJson: non-2xx goes through mapError with Retry-After filled in; a 2xx that is not JSON is unknown', async () => {
  await withServer(
    (req, res) => {
      if (req.url === '/busy') {
        res.writeHead(503, { 'retry-after': '7', 'content-type': 'text/plain' }).end('  down\nfor maintenance ');
      } else {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
      }
    },
    async (base) => {
      let seen: unknown;
      const mapError = (status: number, body: unknown) => {
        seen = body;
        return new PublishError('unavailable', `HTTP ${status}`, { status });
      };
      await assert.rejects(requestJson(makeDeps(), `${base}/busy`, { method: 'GET' }, mapError), (error: unknown) => {
        assert.ok(error instanceof PublishError);
        assert.equal(error.retryAfterSeconds, 7);
        assert.equal(error.status, 503);
        return true;
      });
      assert.equal(seen, '  down\nfor maintenance ');
      await assert.rejects(requestJson(makeDeps(), `${base}/html`, { method: 'POST', body: 'x' }, mapError), (error: unknown) => {
        assert.ok(error instanceof PublishError);
        assert.equal(error.code, 'unknown');
        assert.equal(error.outcomeUnknown, true);
        return true;
      });
    },
  );
});

test('streamBody: the upload is streamed with Content-Length, and an abort destroys the source', async () => {
  let received = 0;
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  await withServer(
    (req, res) => {
      contentLength = req.headers['content-length'];
      transferEncoding = req.headers['transfer-encoding'];
      req.on('data', (chunk: Buffer) => (received += chunk.length));
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    },
    async (base) => {
      const chunks = Array.from({ length: 8 }, () => Buffer.alloc(64 * 1024, 1));
      const ok = await requestJson<{ ok: boolean }>(makeDeps(), `${base}/up`, { method: 'POST', body: streamBody(Readable.from(chunks), 8 * 64 * 1024) }, neverMapped);
      assert.deepEqual(ok.body, { ok: true });
      assert.equal(received, 8 * 64 * 1024);
      assert.equal(contentLength, String(8 * 64 * 1024));
      assert.equal(transferEncoding, undefined);

      // A source that never ends: cancelling the job must end the request and release the source.
      const controller = new AbortController();
      const endless = new Readable({ read() { setTimeout(() => this.push(Buffer.alloc(16 * 1024)), 5); } });
      const deps = { ...makeDeps(), signal: controller.signal };
      setTimeout(() => controller.abort(), 150);
      await assert.rejects(requestJson(deps, `${base}/up`, { method: 'POST', body: streamBody(endless, 1024 ** 3) }, neverMapped), (error: unknown) => {
        assert.ok(error instanceof PublishError);
        assert.equal(error.code, 'unavailable');
        assert.match(error.detail, /cancelled/);
        return true;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(endless.destroyed, true);
    },
  );
});
