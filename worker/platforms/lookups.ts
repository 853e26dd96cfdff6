/**
 * The rule X, LinkedIn and Pinterest share for the lookups that settle an unanswered create call
 * (is the post on the account or not?): only a lookup that failed counts toward the adapter's
 * `maxLookups`. A rate limit names its own time to ask again and an expired token is refreshed by
 * the worker; neither says anything about the post, so neither may use up the lookups.
 */
import { PublishError, withOutcomeUnknown } from '../../core/errors.ts';

export function countsAsFailedLookup(error: unknown): boolean {
  return !(error instanceof PublishError && (error.code === 'rate_limited' || (error.code === 'auth' && error.retryable)));
}

/**
 * A lookup failed with `error` after `lookups` counted ones. Throws (retryable, outcome unknown)
 * to ask again later while that can still settle it; returns once the failures are spent, and the
 * caller answers `unconfirmed`.
 */
export async function failedLookup(error: PublishError, lookups: number, maxLookups: number, count: (lookups: number) => Promise<void>): Promise<void> {
  if (!countsAsFailedLookup(error)) throw withOutcomeUnknown(error);
  const counted = lookups + 1;
  await count(counted);
  if (error.retryable && counted < maxLookups) throw withOutcomeUnknown(error);
}
