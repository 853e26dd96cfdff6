/**
 * Per-account publishing caps from the platform reference, as data. Before a publish call the
 * worker counts the account's recent publish attempts (the `delivery.publishing` events) in each
 * window; a delivery over a cap is deferred to when the oldest attempt leaves the window, and its
 * status says when — a cap never fails a post. The platforms' own limits still apply on top (a
 * 429 or a publishing-limit answer defers the same way through the retry policy).
 */
import type { Queryable } from './db.ts';
import type { PlatformId } from './platforms.ts';

export interface Cap {
  /** Attempts allowed per window, per account. */
  limit: number;
  windowSeconds: number;
  /** What the platform calls it, for the person reading the status. */
  what: string;
}

/** Set a little under the documented numbers: our count misses attempts made outside Reelay. */
export const CAPS: Readonly<Record<PlatformId, readonly Cap[]>> = {
  // Init is 6/min per token; each attempt makes one.
  tiktok: [{ limit: 6, windowSeconds: 60, what: 'uploads a minute' }],
  // content_publishing_limit: 100 API posts per rolling 24 h (older docs say 25; the adapter checks the live quota).
  instagram: [{ limit: 100, windowSeconds: 86_400, what: 'posts a day' }],
  // 30 API-published reels per rolling 24 h per Page.
  facebook: [{ limit: 30, windowSeconds: 86_400, what: 'reels a day per Page' }],
  // videos.insert costs most of the default 10,000-unit daily quota (~6 uploads); the newer model allows ~100.
  youtube: [{ limit: 90, windowSeconds: 86_400, what: 'uploads a day' }],
  // POST /2/tweets: 100 per 15 min per user.
  x: [{ limit: 100, windowSeconds: 900, what: 'posts per 15 minutes' }],
  // Daily per-member limits exist but are shown only in LinkedIn's developer portal.
  linkedin: [{ limit: 150, windowSeconds: 86_400, what: 'posts a day' }],
  pinterest: [{ limit: 100, windowSeconds: 86_400, what: 'pins a day' }],
  // 250 posts per 24 h.
  threads: [{ limit: 250, windowSeconds: 86_400, what: 'posts a day' }],
  // Each publish may log in (createSession: 30 per 5 min, 300 per day per account).
  bluesky: [
    { limit: 30, windowSeconds: 300, what: 'logins per 5 minutes' },
    { limit: 300, windowSeconds: 86_400, what: 'logins a day' },
  ],
};

export interface CapDecision {
  cap: Cap;
  /** When the next attempt is allowed. */
  at: Date;
}

/**
 * The earliest cap this account is at, with the time it frees up; null when a publish may go now.
 * Counted from the append-only events, so every worker process sees the same numbers.
 */
export async function capReached(db: Queryable, platform: PlatformId, accountId: string, now: Date, caps: readonly Cap[] = CAPS[platform]): Promise<CapDecision | null> {
  let worst: CapDecision | null = null;
  for (const cap of caps) {
    const { rows } = await db.query<{ n: number; oldest: Date | null }>(
      `SELECT count(*)::int AS n, min(at) AS oldest FROM (
         SELECT at FROM events
          WHERE account_id = $1 AND type = 'delivery.publishing' AND at > $2::timestamptz - make_interval(secs => $3)
          ORDER BY at DESC LIMIT $4) recent`,
      [accountId, now, cap.windowSeconds, cap.limit],
    );
    const row = rows[0];
    if (!row || row.n < cap.limit || !row.oldest) continue;
    const at = new Date(row.oldest.getTime() + cap.windowSeconds * 1000);
    if (!worst || at > worst.at) worst = { cap, at };
  }
  return worst;
}
