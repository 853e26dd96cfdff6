/**
 * Signed, expiring public links to renditions, for platforms that fetch the video themselves
 * (Instagram, Threads, Facebook file_url, TikTok PULL_FROM_URL). The signature covers the id and
 * the expiry; the key is derived from the secret key, so no extra secret needs configuring.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

export const DEFAULT_LINK_SECONDS = 2 * 60 * 60;

export interface MediaLinkSigner {
  /** The full public URL, or null when no public base URL is configured. */
  url(renditionId: string, nowMs: number, ttlSeconds?: number): string | null;
  /** Whether `sig` is valid for `id` and `exp` (epoch seconds) at `nowMs`. */
  verify(id: string, exp: string | null, sig: string | null, nowMs: number): boolean;
}

export function createMediaLinkSigner(secretKey: Buffer, publicBaseUrl: string | undefined): MediaLinkSigner {
  const key = Buffer.from(hkdfSync('sha256', secretKey, Buffer.alloc(0), 'reelay media links v1', 32));
  const sign = (id: string, exp: number) => createHmac('sha256', key).update(`${id}.${exp}`).digest('base64url');
  return {
    url(renditionId, nowMs, ttlSeconds = DEFAULT_LINK_SECONDS) {
      if (!publicBaseUrl) return null;
      const exp = Math.floor(nowMs / 1000) + ttlSeconds;
      const base = publicBaseUrl.replace(/\/+$/, '');
      return `${base}/media/${encodeURIComponent(renditionId)}?exp=${exp}&sig=${sign(renditionId, exp)}`;
    },
    verify(id, exp, sig, nowMs) {
      if (!exp || !sig || !/^\d{1,12}$/.test(exp)) return false;
      const expected = Buffer.from(sign(id, Number(exp)));
      const given = Buffer.from(sig);
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) return false;
      return Number(exp) * 1000 > nowMs;
    },
  };
}
