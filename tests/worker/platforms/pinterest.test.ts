/**
 * The Pinterest adapter against the protocol simulator in tests/sim/pinterest.ts (which enforces the
 * documented protocol, the S3 form upload included, and injects faults), plus one run through the
 * worker and a memory test that publishes a file larger than the heap limit from a child process.
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
import type { Checkpoint, Credentials, PlatformAdapter, PlatformDeps, PublishInput, PublishResult, RenditionHandle } from '../../../core/platforms.ts';
import {
  createPinterestAdapter,
  mapPinterestError,
  mapUploadError,
  pinterest,
  pinterestCredentialsSchema,
  pinterestTitle,
  type PinterestOptions,
} from '../../../worker/platforms/pinterest.ts';
import { startPinterestSim, type PinterestSim, type PinterestSimOptions, type PinterestSimUser } from '../../sim/pinterest.ts';
import { clock, fileRendition, randomFile } from '../../support/files.ts';

const MiB = 1024 * 1024;
const CLIENT = { clientId: 'reelay-pinterest', clientSecret: 'pinterest-secret' };
let dir: string;
let small: RenditionHandle;



before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-pinterest-test-'));
  const path = join(dir, 'small.bin');
  const size = 3 * MiB + 77;
  small = fileRendition(path, size, randomFile(path, size));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Harness


async function withSim(options: PinterestSimOptions, fn: (sim: PinterestSim) => Promise<void>): Promise<void> {
  const sim = await startPinterestSim({ client: CLIENT, processingPolls: 0, ...options });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

function makeDeps(sim: PinterestSim, options: { now?: () => number; crashAt?: string; oauthClient?: PlatformDeps['oauthClient'] } = {}): PlatformDeps & { crashPoints: string[] } {
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

function credentialsOf(user: PinterestSimUser, overrides: Partial<Credentials> = {}): Credentials {
  return { accessToken: user.accessToken, refreshToken: user.refreshToken, expiresAt: user.expiresAt.toISOString(), scope: user.scope, boardId: user.boardId, ...overrides };
}

type Input = PublishInput & { checkpoint: Checkpoint; saves: Checkpoint[] };

function makeInput(credentials: Credentials, overrides: { caption?: string; checkpoint?: Checkpoint; rendition?: RenditionHandle; onSave?: (patch: Checkpoint) => void } = {}): Input {
  const saves: Checkpoint[] = [];
  const input: Input = {
    deliveryId: randomUUID(),
    createdAt: new Date(),
    mediaUrl: null,
    caption: overrides.caption ?? `A test clip ${randomUUID().slice(0, 8)}\nWith a second line.`,
    rendition: overrides.rendition ?? small,
    account: { id: 'acc-1', handle: 'pinner', remoteId: null },
    credentials,
    checkpoint: JSON.parse(JSON.stringify(overrides.checkpoint ?? {})) as Checkpoint,
    saves,
    async saveCheckpoint(patch: Checkpoint) {
      const copy = JSON.parse(JSON.stringify(patch)) as Checkpoint;
      overrides.onSave?.(copy);
      saves.push(copy);
      Object.assign(input.checkpoint, copy);
    },
  };
  return input;
}

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

const fast = (extra: PinterestOptions = {}) => createPinterestAdapter({ requestTimeoutMs: 2_000, ...extra });

function pinId(result: PublishResult): string {
  assert.equal(result.status, 'published', JSON.stringify(result));
  return result.status === 'published' ? result.remoteId : '';
}

// ---------------------------------------------------------------------------------------------
// Publishing

test('publish registers the media, checkpoints it before the S3 form upload, waits for it, and pins once', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    const deps = makeDeps(sim);
    let uploadsWhenMediaSaved = -1;
    const input = makeInput(credentialsOf(user), {
      caption: '  My clip title\nLonger description #reelay',
      onSave: (patch) => {
        const media = patch.media as { id: string; uploaded: boolean } | undefined;
        if (media && !media.uploaded && uploadsWhenMediaSaved < 0) uploadsWhenMediaSaved = sim.media(media.id)?.uploads ?? -2;
      },
    });
    const result = await pinterest.publish(input, deps);
    const id = pinId(result);
    assert.equal(result.status === 'published' && result.url, `https://www.pinterest.com/pin/${id}/`);
    assert.equal(uploadsWhenMediaSaved, 0, 'the media id was saved before the upload');
    assert.equal(sim.pins.length, 1);
    const pin = sim.pins[0]!;
    assert.equal(pin.id, id);
    assert.equal(pin.boardId, user.boardId);
    assert.equal(pin.title, 'My clip title');
    assert.equal(pin.description, 'My clip title\nLonger description #reelay');
    assert.deepEqual(pin.cover, { keyFrameTime: 1000 });
    const media = sim.media(pin.mediaId)!;
    assert.equal(media.bytes, small.size);
    assert.equal(media.sha256, small.sha256);
    assert.equal(media.uploads, 1);
    assert.ok(input.saves.findIndex((s) => s.createSent) < input.saves.findIndex((s) => s.pinId), 'the create mark precedes the pin id');
    assert.deepEqual(deps.crashPoints, ['pinterest.after_upload', 'pinterest.after_create']);
    assert.equal(input.checkpoint.pinId, id);
    assert.equal(input.checkpoint.createSent, null);
    // The upload never carried the bearer token (the simulator would have refused it).
    assert.equal(sim.requests.filter((r) => r.route === 'upload' && r.status === 204).length, 1);
  });
});

test('processing: publish returns processing with the media id; each check reads the status once, then pins', async () => {
  await withSim({ processingPolls: 2 }, async (sim) => {
    const user = sim.addUser();
    const deps = makeDeps(sim);
    const input = makeInput(credentialsOf(user));
    const first = await pinterest.publish(input, deps);
    assert.equal(first.status, 'processing');
    const mediaId = first.status === 'processing' ? first.remoteId : '';
    assert.equal(sim.media(mediaId)?.status, 'processing');
    assert.equal(sim.count('media'), 1);
    const second = await pinterest.check(mediaId, resume(input), deps);
    assert.equal(second.status, 'processing');
    assert.equal(sim.count('media'), 2);
    assert.equal(sim.pins.length, 0);
    const third = await pinterest.check(mediaId, resume(resume(input)), deps);
    pinId(third);
    assert.equal(sim.count('media'), 3);
    assert.equal(sim.count('register'), 1);
    assert.equal(sim.count('upload'), 1);
    assert.equal(sim.pins.length, 1);
  });
});

test('processing that fails is invalid_media in plain words; nothing is pinned', async () => {
  await withSim({ processingPolls: 1 }, async (sim) => {
    const user = sim.addUser();
    sim.failNextProcessing();
    const deps = makeDeps(sim);
    const input = makeInput(credentialsOf(user));
    assert.equal((await pinterest.publish(input, deps)).status, 'processing');
    await rejectsWith(pinterest.check('x', resume(input), deps), (error) => {
      assert.equal(error.code, 'invalid_media');
      assert.equal(error.retryable, false);
      assert.match(MESSAGES.platformInvalidMedia('Pinterest', error.detail), /Pinterest rejected the video: Pinterest could not process it/);
    });
    assert.equal(sim.pins.length, 0);
  });
});

test('caption limits: description 800 characters, title the first line cut to 100, refused before any call', async () => {
  assert.equal(pinterestTitle('\n\n  Hello  \nworld'), 'Hello');
  assert.equal(pinterestTitle('😀'.repeat(150)), '😀'.repeat(100));
  assert.equal(pinterestTitle(''), '');
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    const deps = makeDeps(sim);
    await rejectsWith(pinterest.publish(makeInput(credentialsOf(user), { caption: 'é'.repeat(801) }), deps), (error) => {
      assert.equal(error.code, 'rejected');
      assert.equal(error.detail, MESSAGES.captionTooLong('Pinterest', 801, 800, 'characters'));
    });
    assert.equal(sim.requests.length, 0);
    // Exactly at the limits, astral characters counted as one.
    const caption = `${'🎬'.repeat(120)}\n${'a'.repeat(800 - 121)}`;
    pinId(await pinterest.publish(makeInput(credentialsOf(user), { caption }), deps));
    assert.equal([...sim.pins[0]!.title].length, 100);
    assert.equal([...sim.pins[0]!.description].length, 800);
  });
});

// ---------------------------------------------------------------------------------------------
// Errors

test('error mapping follows the reference', () => {
  const auth = mapPinterestError(401, { code: 2, message: 'Authentication failed.' });
  assert.equal(auth.code, 'auth');
  assert.equal(auth.retryable, true);
  const scope = mapPinterestError(401, { code: 3, message: 'Not authorized to access this resource: missing scope pins:write.' });
  assert.equal(scope.code, 'auth');
  assert.equal(scope.retryable, false);
  const forbidden = mapPinterestError(403, { code: 29, message: 'You are not permitted to access that resource.' });
  assert.equal(forbidden.code, 'rejected');
  assert.equal(forbidden.detail, MESSAGES.pinterestForbidden('You are not permitted to access that resource.'));
  assert.equal(mapPinterestError(429, { code: 8, message: 'rate' }).code, 'rate_limited');
  assert.equal(mapPinterestError(400, { code: 1, message: 'missing cover' }).code, 'rejected');
  assert.equal(mapPinterestError(503, 'Service Unavailable').code, 'unavailable');
  assert.equal(mapPinterestError(418, {}).code, 'unknown');
  assert.equal(mapUploadError(400, '<Error><Code>EntityTooLarge</Code><Message>big</Message></Error>').code, 'invalid_media');
  const expired = mapUploadError(403, '<Error><Code>AccessDenied</Code><Message>Invalid according to Policy: Policy expired.</Message></Error>');
  assert.equal(expired.code, 'unknown');
  assert.equal(expired.retryable, true);
  assert.equal(mapUploadError(503, '<Error><Code>SlowDown</Code></Error>').code, 'unavailable');
});

test('each error class from the wire: 429 with reset, 5xx, a foreign board, a deleted board, no board, missing scopes', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    const deps = makeDeps(sim);
    sim.fault({ route: 'register', kind: 'rateLimit', retryAfterSeconds: 42 });
    await rejectsWith(pinterest.publish(makeInput(credentialsOf(user)), deps), (error) => {
      assert.equal(error.code, 'rate_limited');
      assert.equal(error.retryAfterSeconds, 42);
    });
    sim.fault({ route: 'register', kind: 'respond', status: 502 });
    await rejectsWith(pinterest.publish(makeInput(credentialsOf(user)), deps), (error) => {
      assert.equal(error.code, 'unavailable');
      assert.equal(error.retryable, true);
    });
    const foreignBoard = sim.addBoard();
    await rejectsWith(pinterest.publish(makeInput(credentialsOf(user, { boardId: foreignBoard })), deps), (error) => {
      assert.equal(error.code, 'rejected');
      assert.equal(error.retryable, false);
      assert.equal(error.detail, MESSAGES.pinterestForbidden('You are not permitted to access that resource.'));
    });
    await rejectsWith(pinterest.publish(makeInput(credentialsOf(user, { boardId: '999999999' })), deps), (error) => {
      assert.equal(error.code, 'rejected');
      assert.equal(error.detail, MESSAGES.pinterestBoardNotFound('999999999'));
    });
    const before = sim.requests.length;
    await rejectsWith(pinterest.publish(makeInput(credentialsOf(user, { boardId: undefined })), deps), (error) => {
      assert.equal(error.code, 'rejected');
      assert.equal(error.detail, MESSAGES.pinterestNoBoard());
    });
    await rejectsWith(pinterest.publish(makeInput(credentialsOf(user, { scope: 'boards:read,pins:read' })), deps), (error) => {
      assert.equal(error.code, 'auth');
      assert.equal(error.retryable, false);
      assert.equal(error.detail, MESSAGES.pinterestMissingScopes('pins:write'));
    });
    assert.equal(sim.requests.length, before, 'refusals that need no network make no call');
    // A token the platform says lacks a scope (granted list stale) needs re-linking, not a refresh.
    const narrow = sim.addUser({ scopes: ['boards:read', 'pins:read'] });
    await rejectsWith(pinterest.publish(makeInput(credentialsOf(narrow, { scope: 'boards:read,pins:read,pins:write' })), deps), (error) => {
      assert.equal(error.code, 'auth');
      assert.equal(error.retryable, false);
    });
    assert.equal(sim.pins.length, 0);
  });
});

test('the org_write limit from the wire: 429 with x-ratelimit-reset until the window passes', async () => {
  const c = clock();
  await withSim({ now: c.now, writeLimitPerMinute: 2 }, async (sim) => {
    const user = sim.addUser();
    const deps = makeDeps(sim, { now: c.now });
    // register + create use the two writes of this minute; the next register is refused.
    pinId(await pinterest.publish(makeInput(credentialsOf(user)), deps));
    const input = makeInput(credentialsOf(user));
    await rejectsWith(pinterest.publish(input, deps), (error) => {
      assert.equal(error.code, 'rate_limited');
      assert.ok(error.retryAfterSeconds !== undefined && error.retryAfterSeconds > 0 && error.retryAfterSeconds <= 60);
    });
    c.advance(61_000);
    pinId(await pinterest.publish(resume(input), deps));
    assert.equal(sim.pins.length, 2);
  });
});

test('the simulator refuses what Pinterest and S3 refuse', async () => {
  await withSim({ policyTtlSeconds: 60 }, async (sim) => {
    const user = sim.addUser();
    const auth = { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' };
    const register = async () => {
      const res = await fetch(`${sim.url}/v5/media`, { method: 'POST', headers: auth, body: JSON.stringify({ media_type: 'video' }) });
      assert.equal(res.status, 201);
      return (await res.json()) as { media_id: string; upload_url: string; upload_parameters: Record<string, string> };
    };
    const form = (fields: [string, string][], file: Buffer | null, fileFirst = false) => {
      const b = 'simtest';
      const parts = fields.map(([k, v]) => `--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
      const filePart = file ? Buffer.concat([Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="v.mp4"\r\nContent-Type: video/mp4\r\n\r\n`), file, Buffer.from('\r\n')]) : Buffer.alloc(0);
      const body = fileFirst ? Buffer.concat([filePart, Buffer.from(parts.join('')), Buffer.from(`--${b}--\r\n`)]) : Buffer.concat([Buffer.from(parts.join('')), filePart, Buffer.from(`--${b}--\r\n`)]);
      return { body, type: `multipart/form-data; boundary=${b}` };
    };
    const post = async (uploadUrl: string, f: { body: Buffer; type: string }, headers: Record<string, string> = {}) => {
      const res = await fetch(uploadUrl, { method: 'POST', headers: { 'content-type': f.type, ...headers }, body: f.body });
      return { status: res.status, text: await res.text() };
    };
    const m = await register();
    const fields = Object.entries(m.upload_parameters);
    const bytes = Buffer.from('not really a video');
    assert.match((await post(m.upload_url, form(fields, bytes), { authorization: `Bearer ${user.accessToken}` })).text, /Unsupported Authorization Type/);
    assert.match((await post(m.upload_url, form(fields.filter(([k]) => k !== 'x-amz-signature'), bytes))).text, /x-amz-signature/);
    assert.match((await post(m.upload_url, form([...fields, ['extra', '1']], bytes))).text, /Extra input fields: extra/);
    assert.match((await post(m.upload_url, form(fields.map(([k, v]) => [k, k === 'policy' ? `${v}x` : v]), bytes))).text, /Policy Condition failed: \["eq", "\$policy"/);
    assert.match((await post(m.upload_url, form(fields, bytes, true))).text, /before the file/);
    assert.match((await post(m.upload_url, form(fields, null))).text, /exactly one file/);
    // Chunked (no Content-Length) is refused.
    const chunked = await fetch(m.upload_url, {
      method: 'POST',
      headers: { 'content-type': form(fields, bytes).type },
      body: (async function* () {
        yield form(fields, bytes).body;
      })(),
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 411);
    await chunked.text();
    assert.equal(sim.media(m.media_id)?.status, 'registered');
    // Pins need processed media, an owned board, a cover and short text.
    const pin = async (body: unknown) => {
      const res = await fetch(`${sim.url}/v5/pins`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { code: number; message: string } };
    };
    const notReady = await pin({ board_id: user.boardId, media_source: { source_type: 'video_id', media_id: m.media_id, cover_image_key_frame_time: 0 } });
    assert.equal(notReady.status, 400);
    assert.match(notReady.body.message, /not ready/);
    assert.equal((await post(m.upload_url, form(fields, bytes))).status, 204);
    await fetch(`${sim.url}/v5/media/${m.media_id}`, { headers: auth }).then((r) => r.text());
    assert.match((await pin({ board_id: user.boardId, media_source: { source_type: 'video_id', media_id: m.media_id } })).body.message, /cover image is required/);
    assert.match((await pin({ board_id: user.boardId, title: 'x'.repeat(101), media_source: { source_type: 'video_id', media_id: m.media_id, cover_image_key_frame_time: 0 } })).body.message, /title/);
    assert.equal((await pin({ board_id: user.boardId, media_source: { source_type: 'video_id', media_id: m.media_id, cover_image_key_frame_time: 0 } })).status, 201);
    const noAuth = await fetch(`${sim.url}/v5/media`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"media_type":"video"}' });
    assert.equal(noAuth.status, 401);
    assert.deepEqual(await noAuth.json(), { code: 2, message: 'Authentication failed.' });
    // An upload form outlives its policy only until it expires.
    const late = await register();
    const realNow = Date.now;
    try {
      Date.now = () => realNow() + 120_000;
      assert.match((await post(late.upload_url, form(Object.entries(late.upload_parameters), bytes))).text, /Policy expired/);
    } finally {
      Date.now = realNow;
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Tokens

test('token expiry mid-flow: a retryable auth error, a forced refresh rotates the tokens, the publish resumes without uploading again', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    const deps = makeDeps(sim);
    sim.fault({ route: 'media', kind: 'expireToken' });
    const input = makeInput(credentialsOf(user));
    await rejectsWith(pinterest.publish(input, deps), (error) => {
      assert.equal(error.code, 'auth');
      assert.equal(error.retryable, true);
    });
    assert.equal(sim.count('upload'), 1);
    const refreshed = await pinterest.refresh!(input.credentials, deps, { force: true });
    assert.ok(refreshed);
    const creds = pinterestCredentialsSchema.parse(refreshed.credentials);
    assert.notEqual(creds.accessToken, user.accessToken);
    assert.notEqual(creds.refreshToken, user.refreshToken, 'continuous refresh returns a new refresh token');
    assert.equal(creds.boardId, user.boardId);
    assert.ok(creds.refreshTokenExpiresAt);
    pinId(await pinterest.publish(resume(input, refreshed.credentials), deps));
    assert.equal(sim.count('upload'), 1);
    assert.equal(sim.count('register'), 1);
    assert.equal(sim.pins.length, 1);
  });
});

test('refresh: only near expiry or when forced; Basic client auth; a spent refresh token needs re-auth', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    const deps = makeDeps(sim);
    assert.equal(await pinterest.refresh!(credentialsOf(user), deps, { force: false }), null);
    assert.equal(sim.count('token'), 0);
    const soon = credentialsOf(user, { expiresAt: new Date(Date.now() + 60_000).toISOString() });
    const result = await pinterest.refresh!(soon, deps, { force: false });
    assert.ok(result?.expiresAt && result.expiresAt.getTime() > Date.now() + 29 * 86_400_000, 'expiry from expires_in');
    await rejectsWith(pinterest.refresh!(soon, deps, { force: true }), (error) => {
      assert.equal(error.code, 'auth');
      assert.equal(error.retryable, false);
    });
    await rejectsWith(pinterest.refresh!(soon, makeDeps(sim, { oauthClient: { clientId: CLIENT.clientId, clientSecret: 'wrong' } }), { force: true }), (error) => {
      assert.equal(error.code, 'auth');
    });
    await rejectsWith(pinterest.refresh!(soon, makeDeps(sim, { oauthClient: null }), { force: true }), (error) => {
      assert.equal(error.code, 'unknown');
      assert.equal(error.retryable, false);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Exactly once

test('the create answer is lost after Pinterest committed it: the board lookup finds the Pin in the same attempt', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'createPin', kind: 'resetAfterCommit' });
    const input = makeInput(credentialsOf(user));
    const id = pinId(await pinterest.publish(input, makeDeps(sim)));
    assert.equal(sim.pins.length, 1);
    assert.equal(sim.pins[0]!.id, id);
    assert.equal(sim.count('boardPins'), 1);
  });
});

test('a lost create answer and a Pin not listed yet: ask again later, find it, never pin twice', async () => {
  const c = clock();
  await withSim({ now: c.now, listDelayMs: 30_000 }, async (sim) => {
    const user = sim.addUser();
    // Someone else's Pin with other text on the board is not ours.
    sim.addForeignPin(user.boardId, { title: 'hand made', description: 'hand made' });
    sim.fault({ route: 'createPin', kind: 'resetAfterCommit' });
    const deps = makeDeps(sim, { now: c.now });
    const input = makeInput(credentialsOf(user));
    await rejectsWith(pinterest.publish(input, deps), (error) => {
      assert.equal(error.code, 'unavailable');
      assert.equal(error.outcomeUnknown, true);
    });
    c.advance(5_000);
    await rejectsWith(pinterest.publish(resume(input), deps), (error) => {
      assert.equal(error.outcomeUnknown, true);
      assert.ok(error.retryAfterSeconds !== undefined && error.retryAfterSeconds > 0);
    });
    c.advance(30_000);
    const id = pinId(await pinterest.publish(resume(input), deps));
    assert.equal(sim.pins.length, 1);
    assert.equal(sim.pins[0]!.id, id);
    assert.equal(sim.count('createPin'), 1);
  });
});

test('a 503 from the create call (nothing committed) is outcome-unknown; after the grace period it pins once', async () => {
  const c = clock();
  await withSim({ now: c.now }, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'createPin', kind: 'respond', status: 503 });
    const deps = makeDeps(sim, { now: c.now });
    const input = makeInput(credentialsOf(user));
    await rejectsWith(pinterest.publish(input, deps), (error) => {
      assert.equal(error.code, 'unavailable');
      assert.equal(error.outcomeUnknown, true);
    });
    c.advance(121_000);
    pinId(await pinterest.publish(resume(input), deps));
    assert.equal(sim.pins.length, 1);
    assert.equal(sim.count('createPin'), 2);
    assert.equal(sim.count('upload'), 1);
  });
});

test('an older Pin with the same text is not taken for ours: after the grace period it pins once', async () => {
  const c = clock();
  await withSim({ now: c.now }, async (sim) => {
    const user = sim.addUser();
    const caption = 'Same caption twice\nPinned again today';
    sim.addForeignPin(user.boardId, { title: 'Same caption twice', description: caption, createdAt: c.now() - 10 * 60_000 });
    sim.fault({ route: 'createPin', kind: 'respond', status: 503 });
    const deps = makeDeps(sim, { now: c.now });
    const input = makeInput(credentialsOf(user), { caption });
    await rejectsWith(pinterest.publish(input, deps), (error) => assert.equal(error.outcomeUnknown, true));
    c.advance(121_000);
    const id = pinId(await pinterest.publish(resume(input), deps));
    assert.equal(sim.pins.length, 1);
    assert.equal(sim.pins[0]!.id, id);
  });
});

test('an expired upload form is a retryable failure that created nothing; the next attempt registers again', async () => {
  await withSim({ policyTtlSeconds: -1 }, async (sim) => {
    const user = sim.addUser();
    const input = makeInput(credentialsOf(user));
    await rejectsWith(pinterest.publish(input, makeDeps(sim)), (error) => {
      assert.equal(error.code, 'unknown');
      assert.equal(error.retryable, true);
      assert.equal(error.outcomeUnknown, false);
      assert.match(error.detail, /Policy expired/);
    });
    await rejectsWith(pinterest.publish(resume(input), makeDeps(sim)), (error) => assert.match(error.detail, /Policy expired/));
    assert.equal(sim.count('register'), 2, 'the stale registration was replaced, not reused');
    assert.equal(sim.pins.length, 0);
  });
});

test('when the board cannot be read the delivery is unconfirmed, never re-pinned', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'createPin', kind: 'resetAfterCommit' });
    sim.fault({ route: 'boardPins', kind: 'respond', status: 500, times: Infinity });
    const deps = makeDeps(sim);
    let input = makeInput(credentialsOf(user));
    let result: PublishResult | null = null;
    for (let attempt = 0; attempt < 6 && !result; attempt++) {
      try {
        result = await fast({ maxLookups: 3 }).publish(input, deps);
      } catch (error) {
        assert.ok(error instanceof PublishError && error.outcomeUnknown, String(error));
        input = resume(input);
      }
    }
    assert.equal(result?.status, 'unconfirmed');
    assert.match(result?.status === 'unconfirmed' ? result.evidence : '', /reading the board's Pins failed/);
    assert.equal(sim.pins.length, 1, 'only the Pin of the lost answer');
    assert.equal(sim.count('createPin'), 1);
  });
});

test('crash right after the create call returned: the resumed attempt finds the Pin, one Pin', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    const input = makeInput(credentialsOf(user));
    await assert.rejects(pinterest.publish(input, makeDeps(sim, { crashAt: 'pinterest.after_create' })), /crash at pinterest.after_create/);
    assert.ok(input.checkpoint.createSent, 'the create mark survived the crash');
    const id = pinId(await pinterest.publish(resume(input), makeDeps(sim)));
    assert.equal(id, sim.pins[0]!.id);
    assert.equal(sim.pins.length, 1);
    assert.equal(sim.count('createPin'), 1);
  });
});

test('crash after the upload: the resumed attempt pins the saved media without uploading again', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    const input = makeInput(credentialsOf(user));
    await assert.rejects(pinterest.publish(input, makeDeps(sim, { crashAt: 'pinterest.after_upload' })), /crash/);
    pinId(await pinterest.publish(resume(input), makeDeps(sim)));
    assert.equal(sim.count('upload'), 1);
    assert.equal(sim.count('register'), 1);
    assert.equal(sim.pins.length, 1);
  });
});

test('an upload cut off mid-way is registered and uploaded again; one whose answer was lost is not', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'upload', kind: 'reset' });
    const input = makeInput(credentialsOf(user));
    await rejectsWith(pinterest.publish(input, makeDeps(sim)), (error) => {
      assert.equal(error.code, 'unavailable');
      assert.equal(error.outcomeUnknown, false, 'an upload cannot create a Pin');
    });
    pinId(await pinterest.publish(resume(input), makeDeps(sim)));
    assert.equal(sim.count('register'), 2);
    assert.equal(sim.pins.length, 1);

    sim.fault({ route: 'upload', kind: 'resetAfterCommit' });
    const second = makeInput(credentialsOf(user));
    await rejectsWith(pinterest.publish(second, makeDeps(sim)), (error) => assert.equal(error.code, 'unavailable'));
    pinId(await pinterest.publish(resume(second), makeDeps(sim)));
    assert.equal(sim.count('register'), 3, 'the landed upload was recognised by its status');
    assert.equal(sim.pins.length, 2);
  });
});

test('a hung create call times out and is resolved by the board lookup', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    sim.fault({ route: 'createPin', kind: 'hangAfterCommit' });
    const id = pinId(await fast({ requestTimeoutMs: 500 }).publish(makeInput(credentialsOf(user)), makeDeps(sim)));
    assert.equal(sim.pins[0]!.id, id);
    assert.equal(sim.pins.length, 1);
  });
});

// ---------------------------------------------------------------------------------------------
// Through the worker

test('through the worker: a token refresh, processing polled by re-queued jobs, a crash after the create call: one Pin', async () => {
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
    const ctx = await testContext({ env: { PINTEREST_API_URL: sim.url, PINTEREST_CLIENT_ID: CLIENT.clientId, PINTEREST_CLIENT_SECRET: CLIENT.clientSecret } });
    try {
      await ensureWorkspace(ctx.pool, 'cli', 'UTC');
      const user = sim.addUser({ username: 'worker_pinner' });
      const expiresAt = new Date(Date.now() + 3 * 60_000);
      const account = await upsertAccount(ctx.pool, ctx.secrets, {
        workspaceId: 'cli',
        platform: 'pinterest',
        handle: user.username,
        remoteId: user.userId,
        credentials: credentialsOf(user, { expiresAt: expiresAt.toISOString() }),
        expiresAt,
      });
      let crashes = 0;
      const crashing = (deps: PlatformDeps): PlatformDeps => ({
        ...deps,
        crashPoint: (name) => {
          if (name === 'pinterest.after_create' && crashes++ === 0) throw new Error('crash at pinterest.after_create');
        },
      });
      const adapter: PlatformAdapter = {
        ...pinterest,
        publish: (input, deps) => pinterest.publish(input, crashing(deps)),
        check: (remoteId, input, deps) => pinterest.check(remoteId, input, crashing(deps)),
      };
      const worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5, adapters: { pinterest: adapter } });
      try {
        const clip = makeClip(join(ctx.dir, 'clip.mp4'), { width: 720, height: 1280, seconds: 5 });
        const { post } = await submitPost(ctx, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: 'From the worker\n#reelay', targets: [{ platform: 'pinterest', handle: null }] });
        const [row] = await listDeliveries(ctx.pool, post.id);
        const deadline = Date.now() + 60_000;
        let delivery = await getDelivery(ctx.pool, row!.id);
        while (delivery && !['published', 'failed', 'unconfirmed'].includes(delivery.state) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          delivery = await getDelivery(ctx.pool, row!.id);
        }
        assert.equal(delivery?.state, 'published', `${delivery?.state}: ${delivery?.error ?? ''}`);
        assert.equal(sim.pins.length, 1, 'exactly one Pin');
        assert.equal(delivery?.remote_id, sim.pins[0]!.id);
        assert.equal(delivery?.url, `https://www.pinterest.com/pin/${sim.pins[0]!.id}/`);
        assert.equal(sim.count('createPin'), 1);
        assert.ok(sim.count('media') >= 2, 'processing was polled by a re-queued job');
        assert.equal(crashes, 1);
        const stored = pinterestCredentialsSchema.parse(await readCredentials(ctx.pool, ctx.secrets, account.id));
        assert.notEqual(stored.refreshToken, user.refreshToken, 'the new refresh token was stored');
        assert.equal(stored.boardId, user.boardId);
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

test('a 200 MB file publishes from a process with a 64 MB heap: the form upload streams', async () => {
  const size = 200 * MiB + 11;
  const path = join(dir, 'big.bin');
  const sha256 = randomFile(path, size);
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    const adapterUrl = new URL('../../../worker/platforms/pinterest.ts', import.meta.url).href;
    const logUrl = new URL('../../../core/log.ts', import.meta.url).href;
    const undiciUrl = import.meta.resolve('undici');
    const script = `
      import { createReadStream } from 'node:fs';
      import { getHeapStatistics } from 'node:v8';
      const { pinterest } = await import(${JSON.stringify(adapterUrl)});
      const { createLogger } = await import(${JSON.stringify(logUrl)});
      // The fetch production uses (core/context.ts): Node's built-in one holds a streamed body in memory.
      const { fetch } = await import(${JSON.stringify(undiciUrl)});
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
        urls: { api: args.api }, oauthClient: null, crashPoint: () => {} };
      const started = Date.now();
      const result = await pinterest.publish(input, deps);
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
      `pinterest 200 MB publish: ${report.ms} ms; RSS ${(report.baseRss / MiB).toFixed(1)} MiB after loading, peak ${(report.peakRss / MiB).toFixed(1)} MiB ` +
        `(+${(growth / MiB).toFixed(1)} MiB); peak heap ${(report.peakHeap / MiB).toFixed(1)} MiB of ${(report.heapLimit / MiB).toFixed(0)} MiB`,
    );
    assert.equal(report.result.status, 'published');
    assert.ok(report.heapLimit < 128 * MiB, `the child really ran with a small heap (${report.heapLimit})`);
    assert.ok(growth < 64 * MiB, `memory grew by ${(growth / MiB).toFixed(1)} MiB for a ${(size / MiB).toFixed(0)} MiB file`);
    const media = sim.allMedia[0]!;
    assert.equal(media.bytes, size);
    assert.equal(media.sha256, sha256);
    assert.equal(sim.pins.length, 1);
  });
});

test('the cover is the frame the transcoder extracted; `to pinterest:<board>` picks a board by name', async () => {
  await withSim({}, async (sim) => {
    const user = sim.addUser();
    const recipes = sim.addBoard(user.userId, 'Weeknight Recipes');
    const { spawnSync } = await import('node:child_process');
    const frame = spawnSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x568', '-frames:v', '1', '-f', 'image2', '-c:v', 'mjpeg', 'pipe:1'], { maxBuffer: 4 * 1024 * 1024 });
    assert.equal(frame.status, 0);
    const input = makeInput(credentialsOf(user), { rendition: { ...small, thumbnail: frame.stdout } });
    const named: Input = { ...input, options: { board: 'weeknight recipes' } };
    const result = await pinterest.publish(named, makeDeps(sim));
    assert.equal(result.status, 'published');
    const pin = sim.pins.at(-1)!;
    assert.equal(pin.boardId, recipes, 'the board named in the target, not the account default');
    assert.deepEqual(pin.cover, { data: { contentType: 'image/jpeg', bytes: frame.stdout.length } });

    const missing = makeInput(credentialsOf(user));
    await rejectsWith(pinterest.publish({ ...missing, options: { board: 'No Such Board' } }, makeDeps(sim)), (error) => {
      assert.equal(error.code, 'rejected');
      assert.equal(error.detail, MESSAGES.pinterestBoardNotFound('No Such Board'));
    });
  });
});
