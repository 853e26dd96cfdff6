import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { PublishError } from '../../../core/errors.ts';
import { repeatInPlace, RETRY_POLICY } from '../../../core/jobs.ts';
import { createLogger } from '../../../core/log.ts';
import type { PlatformDeps } from '../../../core/platforms.ts';
import { json, requestJson, streamBody, type MapError } from '../../../worker/platforms/http.ts';

type Answer = (req: IncomingMessage, res: ServerResponse) => void;

/** A server that answers its n-th request with `answers[n]` (the last one from then on) and counts them. */
async function withServer(answers: Answer[], fn: (base: string, sent: () => number) => Promise<void>): Promise<void> {
  let count = 0;
  const server = createServer((req, res) => {
    const answer = answers[Math.min(count, answers.length - 1)]!;
    count += 1;
    // Read the whole body first so a streamed upload is really sent.
    req.resume();
    req.on('end', () => answer(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, () => count);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

const ok: Answer = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
const status = (code: number, headers: Record<string, string> = {}): Answer => (_req, res) => void res.writeHead(code, headers).end('{}');
const reset: Answer = (req) => void req.socket.destroy();

const mapError: MapError = (code) => (code >= 500 ? new PublishError('unavailable', `HTTP ${code}`, { status: code }) : new PublishError('rejected', `HTTP ${code}`, { status: code, retryable: false }));

/** The worker's deps (the policy's own repeat, with the shortest jitter so the test is quick). */
function deps(overrides: Partial<PlatformDeps> = {}): PlatformDeps {
  return {
    fetch,
    signal: new AbortController().signal,
    log: createLogger({ level: 'silent' }),
    now: () => Date.now(),
    urls: {},
    oauthClient: null,
    crashPoint: () => {},
    repeat: (error, sends) => repeatInPlace(error, sends, () => 0),
    ...overrides,
  };
}

test('a GET that got a 5xx or no answer is sent again in place and its answer returned', async () => {
  await withServer([status(503), reset, ok], async (base, sent) => {
    const response = await requestJson<{ ok: boolean }>(deps(), `${base}/status`, { method: 'GET' }, mapError, { safeToRepeat: true });
    assert.deepEqual(response.body, { ok: true });
    assert.equal(sent(), 3);
  });
});

test('in-place sends are bounded by the retry policy; the last failure is what the attempt sees', async () => {
  await withServer([status(502)], async (base, sent) => {
    await assert.rejects(requestJson(deps(), `${base}/status`, { method: 'GET' }, mapError), (error: unknown) => {
      assert.ok(error instanceof PublishError);
      assert.equal(error.status, 502);
      return true;
    });
    assert.equal(sent(), RETRY_POLICY.inPlace.sends);
  });
});

test('a POST is sent once unless it says it is repeatable; a 4xx, a Retry-After or a streamed body is never repeated in place', async () => {
  await withServer([status(500), ok], async (base, sent) => {
    await assert.rejects(requestJson(deps(), `${base}/finalize`, { method: 'POST', body: json({}) }, mapError, { safeToRepeat: true }));
    assert.equal(sent(), 1, 'a finalize-style POST is left to the next attempt');
  });
  await withServer([status(500), ok], async (base, sent) => {
    await requestJson(deps(), `${base}/status/fetch`, { method: 'POST', body: json({ id: 1 }) }, mapError, { repeatable: true });
    assert.equal(sent(), 2, 'a read sent as POST is repeated');
  });
  await withServer([status(400), ok], async (base, sent) => {
    await assert.rejects(requestJson(deps(), `${base}/x`, { method: 'GET' }, mapError), /HTTP 400/);
    assert.equal(sent(), 1);
  });
  await withServer([status(503, { 'retry-after': '30' }), ok], async (base, sent) => {
    await assert.rejects(requestJson(deps(), `${base}/x`, { method: 'GET' }, mapError), (error: unknown) => error instanceof PublishError && error.retryAfterSeconds === 30);
    assert.equal(sent(), 1, 'the platform named its time: the job waits for it');
  });
  await withServer([status(500), ok], async (base, sent) => {
    const body = streamBody(Readable.from([Buffer.alloc(1024)]), 1024);
    await assert.rejects(requestJson(deps(), `${base}/upload`, { method: 'PUT', body }, mapError, { safeToRepeat: true }), /HTTP 500/);
    assert.equal(sent(), 1, 'a streamed body is spent by its first send');
  });
});

test('without deps.repeat (adapter tests) every failure surfaces at once', async () => {
  await withServer([status(503), ok], async (base, sent) => {
    const { repeat: _omit, ...bare } = deps();
    await assert.rejects(requestJson(bare, `${base}/x`, { method: 'GET' }, mapError), /HTTP 503/);
    assert.equal(sent(), 1);
  });
});

test('cancelling the attempt during the wait ends it with the failure, not another send', async () => {
  await withServer([status(503), ok], async (base, sent) => {
    const controller = new AbortController();
    const slow = deps({ signal: controller.signal, repeat: () => 60_000 });
    const pending = requestJson(slow, `${base}/x`, { method: 'GET' }, mapError);
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(pending, /HTTP 503/);
    assert.equal(sent(), 1);
  });
});
