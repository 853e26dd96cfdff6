import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PublishError } from '../../core/errors.ts';
import { nextAttempt, repeatInPlace, RETRY_POLICY } from '../../core/jobs.ts';

test('errors that are not retryable are never retried', () => {
  assert.deepEqual(nextAttempt(new PublishError('rejected', 'caption too long'), 1), { retry: false });
  assert.deepEqual(nextAttempt(new PublishError('auth', 'revoked', { retryable: false }), 1), { retry: false });
});

test('backoff grows exponentially with jitter and is capped', () => {
  const error = new PublishError('unavailable', '503');
  const low = (attempts: number) => nextAttempt(error, attempts, () => 0);
  const high = (attempts: number) => nextAttempt(error, attempts, () => 1);
  assert.deepEqual(low(1), { retry: true, delaySeconds: Math.round(RETRY_POLICY.baseDelaySeconds / 2) });
  assert.deepEqual(high(1), { retry: true, delaySeconds: RETRY_POLICY.baseDelaySeconds });
  assert.deepEqual(high(3), { retry: true, delaySeconds: RETRY_POLICY.baseDelaySeconds * 4 });
  const delays = Array.from({ length: 50 }, () => nextAttempt(error, 2));
  for (const d of delays) assert.ok(d.retry && d.delaySeconds >= 5 && d.delaySeconds <= 10);
  assert.ok(new Set(delays.map((d) => (d.retry ? d.delaySeconds : -1))).size > 1, 'jitter varies the delay');
});

test('a delivery out of attempts stops retrying', () => {
  assert.deepEqual(nextAttempt(new PublishError('unavailable', '503'), RETRY_POLICY.maxAttempts), { retry: false });
});

test('an attempt that moved the checkpoint forward earns more attempts, up to a cap, and restarts the backoff', () => {
  const error = new PublishError('unavailable', 'no answer (timed out)');
  assert.deepEqual(nextAttempt(error, RETRY_POLICY.maxAttempts, () => 1, true), { retry: true, delaySeconds: RETRY_POLICY.baseDelaySeconds });
  assert.deepEqual(nextAttempt(error, RETRY_POLICY.maxAttempts, () => 1, false), { retry: false }, 'no progress: the budget stands');
  assert.deepEqual(nextAttempt(error, RETRY_POLICY.maxAttemptsWithProgress, () => 1, true), { retry: false }, 'progress has a cap too');
  assert.ok(RETRY_POLICY.maxAttemptsWithProgress > RETRY_POLICY.maxAttempts);
});

test('Retry-After is obeyed, and a rate limit defers even past the attempt budget', () => {
  assert.deepEqual(nextAttempt(new PublishError('unavailable', '503', { retryAfterSeconds: 42 }), 1), { retry: true, delaySeconds: 42 });
  assert.deepEqual(nextAttempt(new PublishError('rate_limited', '429', { retryAfterSeconds: 3600 }), 99), { retry: true, delaySeconds: 3600 });
});

test('in place, only a failure without a usable answer is repeated: no answer or a 5xx, a few times, with short jittered waits', () => {
  const noAnswer = new PublishError('unavailable', 'no answer (ECONNRESET)');
  const first = [repeatInPlace(noAnswer, 1, () => 0), repeatInPlace(noAnswer, 1, () => 1)];
  assert.deepEqual(first, [RETRY_POLICY.inPlace.baseDelayMs / 2, RETRY_POLICY.inPlace.baseDelayMs]);
  assert.equal(repeatInPlace(noAnswer, 2, () => 1), RETRY_POLICY.inPlace.baseDelayMs * 2, 'the wait doubles');
  assert.equal(repeatInPlace(noAnswer, RETRY_POLICY.inPlace.sends), null, 'bounded');
  assert.notEqual(repeatInPlace(new PublishError('unavailable', '502', { status: 502 }), 1), null);
  assert.equal(repeatInPlace(new PublishError('unavailable', '404 while processing', { status: 400 }), 1), null, 'a 4xx is the platform speaking');
  assert.equal(repeatInPlace(new PublishError('unavailable', '503', { status: 503, retryAfterSeconds: 20 }), 1), null, 'a named time goes to the job');
  assert.equal(repeatInPlace(new PublishError('rate_limited', '429', { status: 429 }), 1), null);
  assert.equal(repeatInPlace(new PublishError('auth', 'expired', { status: 401 }), 1), null);
  assert.equal(repeatInPlace(new PublishError('unknown', 'unreadable answer'), 1), null);
});
