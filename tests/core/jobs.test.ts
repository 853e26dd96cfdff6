import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PublishError } from '../../core/errors.ts';
import { nextAttempt, repeatInPlace, RETRY_POLICY } from '../../core/jobs.ts';

test('errors that are not retryable are never retried', () => {
  assert.deepEqual(nextAttempt(new PublishError('rejected', 'caption too long'), { attempts: 1 }), { retry: false });
  assert.deepEqual(nextAttempt(new PublishError('auth', 'revoked', { retryable: false }), { attempts: 1 }), { retry: false });
});

test('backoff grows exponentially with jitter and is capped', () => {
  const error = new PublishError('unavailable', '503');
  const low = (attempts: number) => nextAttempt(error, { attempts }, () => 0);
  const high = (attempts: number) => nextAttempt(error, { attempts }, () => 1);
  assert.deepEqual(low(1), { retry: true, delaySeconds: Math.round(RETRY_POLICY.baseDelaySeconds / 2) });
  assert.deepEqual(high(1), { retry: true, delaySeconds: RETRY_POLICY.baseDelaySeconds });
  assert.deepEqual(high(3), { retry: true, delaySeconds: RETRY_POLICY.baseDelaySeconds * 4 });
  const delays = Array.from({ length: 50 }, () => nextAttempt(error, { attempts: 2 }));
  for (const d of delays) assert.ok(d.retry && d.delaySeconds >= 5 && d.delaySeconds <= 10);
  assert.ok(new Set(delays.map((d) => (d.retry ? d.delaySeconds : -1))).size > 1, 'jitter varies the delay');
});

const HOUR = 3600;

test('a delivery out of attempts stops retrying, except a platform that does not answer, which gets the window', () => {
  const { maxAttempts, maxAttemptsTransient, maxDelaySeconds } = RETRY_POLICY;
  const silent = new PublishError('unavailable', 'no answer (ECONNRESET)');
  assert.deepEqual(nextAttempt(silent, { attempts: maxAttempts }), { retry: false }, 'no window: the budget stands');
  const early = nextAttempt(silent, { attempts: maxAttempts, retryingForSeconds: 300, windowSeconds: HOUR }, () => 1);
  assert.ok(early.retry, 'five minutes into an outage: keep trying');
  assert.ok(early.delaySeconds <= maxDelaySeconds);
  assert.deepEqual(nextAttempt(silent, { attempts: maxAttempts, retryingForSeconds: HOUR, windowSeconds: HOUR }), { retry: false }, 'the window closes');
  assert.deepEqual(nextAttempt(silent, { attempts: maxAttemptsTransient, retryingForSeconds: 60, windowSeconds: HOUR }), { retry: false }, 'a hard cap inside the window');
  assert.ok(nextAttempt(silent, { attempts: maxAttemptsTransient - 1, retryingForSeconds: 60, windowSeconds: HOUR }).retry);
  // Only silence earns time: an answer that says something is wrong does not improve by waiting.
  const inWindow = { attempts: maxAttempts, retryingForSeconds: 60, windowSeconds: HOUR };
  assert.deepEqual(nextAttempt(new PublishError('unknown', 'unreadable answer'), inWindow), { retry: false });
  assert.deepEqual(nextAttempt(new PublishError('rate_limited', '429 without a time'), inWindow), { retry: false });
  assert.deepEqual(nextAttempt(new PublishError('unavailable', 'down', { retryable: false }), inWindow), { retry: false });
});

test('in the window the last try lands as it closes, not a long backoff after it', () => {
  const silent = new PublishError('unavailable', '503', { status: 503 });
  assert.deepEqual(nextAttempt(silent, { attempts: 9, retryingForSeconds: HOUR - 30, windowSeconds: HOUR }, () => 1), { retry: true, delaySeconds: 30 });
  assert.deepEqual(nextAttempt(silent, { attempts: 9, retryingForSeconds: HOUR - 0.2, windowSeconds: HOUR }, () => 1), { retry: true, delaySeconds: 1 });
  // Within the budget the window does not shorten anything.
  assert.deepEqual(nextAttempt(silent, { attempts: 3, retryingForSeconds: 30, windowSeconds: 40 }, () => 1), { retry: true, delaySeconds: RETRY_POLICY.baseDelaySeconds * 4 });
});

test('an hour of silence is covered by a handful of capped attempts, not a storm', () => {
  const silent = new PublishError('unavailable', '503', { status: 503 });
  for (const jitter of [0, 1]) {
    let elapsed = 0;
    let attempts = 1;
    for (;;) {
      const decision = nextAttempt(silent, { attempts, retryingForSeconds: elapsed, windowSeconds: HOUR }, () => jitter);
      if (!decision.retry) break;
      elapsed += decision.delaySeconds;
      attempts++;
    }
    assert.ok(elapsed >= HOUR || attempts === RETRY_POLICY.maxAttemptsTransient, `gave up after ${elapsed} s and ${attempts} attempts`);
    assert.ok(attempts <= RETRY_POLICY.maxAttemptsTransient, `${attempts} attempts`);
    assert.ok(elapsed <= HOUR + 1, `the last try is at the window's end (${elapsed} s)`);
  }
});

test('an attempt that moved the checkpoint forward earns more attempts, up to a cap, and restarts the backoff', () => {
  const error = new PublishError('unavailable', 'no answer (timed out)');
  assert.deepEqual(nextAttempt(error, { attempts: RETRY_POLICY.maxAttempts, progressed: true }, () => 1), { retry: true, delaySeconds: RETRY_POLICY.baseDelaySeconds });
  assert.deepEqual(nextAttempt(error, { attempts: RETRY_POLICY.maxAttempts, progressed: false }, () => 1), { retry: false }, 'no progress: the budget stands');
  assert.deepEqual(nextAttempt(error, { attempts: RETRY_POLICY.maxAttemptsWithProgress, progressed: true }, () => 1), { retry: false }, 'progress has a cap too');
  assert.ok(RETRY_POLICY.maxAttemptsWithProgress > RETRY_POLICY.maxAttempts);
});

test('Retry-After is obeyed, and a rate limit defers even past the attempt budget', () => {
  assert.deepEqual(nextAttempt(new PublishError('unavailable', '503', { retryAfterSeconds: 42 }), { attempts: 1 }), { retry: true, delaySeconds: 42 });
  assert.deepEqual(nextAttempt(new PublishError('rate_limited', '429', { retryAfterSeconds: 3600 }), { attempts: 99 }), { retry: true, delaySeconds: 3600 });
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
