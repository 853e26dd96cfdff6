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

/** `previousKeys`: links signed before a key rotation keep working until they expire. */
export function createMediaLinkSigner(secretKey: Buffer, publicBaseUrl: string | undefined, previousKeys: readonly Buffer[] = []): MediaLinkSigner {
  const derive = (secret: Buffer) => Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'reelay media links v1', 32));
  const key = derive(secretKey);
  const verifiers = [key, ...previousKeys.map(derive)];
  const signWith = (k: Buffer, id: string, exp: number) => createHmac('sha256', k).update(`${id}.${exp}`).digest('base64url');
  const sign = (id: string, exp: number) => signWith(key, id, exp);
  return {
    url(renditionId, nowMs, ttlSeconds = DEFAULT_LINK_SECONDS) {
      if (!publicBaseUrl) return null;
      const exp = Math.floor(nowMs / 1000) + ttlSeconds;
      const base = publicBaseUrl.replace(/\/+$/, '');
      return `${base}/media/${encodeURIComponent(renditionId)}?exp=${exp}&sig=${sign(renditionId, exp)}`;
    },
    verify(id, exp, sig, nowMs) {
      if (!exp || !sig || !/^\d{1,12}$/.test(exp)) return false;
      const given = Buffer.from(sig);
      const matches = verifiers.some((k) => {
        const expected = Buffer.from(signWith(k, id, Number(exp)));
        return expected.length === given.length && timingSafeEqual(expected, given);
      });
      return matches && Number(exp) * 1000 > nowMs;
    },
  };
}
