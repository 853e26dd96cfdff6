/**
 * Reading WHERE: "tiktok, youtube:mychannel, bluesky" or "all" into platform/handle pairs.
 * Pure; which accounts exist (and so what "all" or a bare platform name means) is the caller's
 * business.
 */
import { MESSAGES } from './errors.ts';
import { PLATFORM_IDS, isPlatformId } from './platforms.ts';
import type { PlatformId } from './platforms.ts';

export interface Target {
  platform: PlatformId;
  /** Without a leading @; null means "the account linked for this platform". */
  handle: string | null;
}

export type TargetsResult =
  | {
      ok: true;
      /** In the order given, duplicates removed. Empty for "" and for a bare "all". */
      targets: Target[];
      /** "all" was among the targets: every linked account, added by the caller. */
      all: boolean;
    }
  | { ok: false; message: string };

// A Map, not an object literal: "constructor" or "__proto__" must not resolve to a platform.
const ALIASES: ReadonlyMap<string, PlatformId> = new Map([
  ['yt', 'youtube'],
  ['ig', 'instagram'],
  ['insta', 'instagram'],
  ['fb', 'facebook'],
  ['twitter', 'x'],
  ['bsky', 'bluesky'],
  ['tt', 'tiktok'],
]);

export function parseTargets(text: string): TargetsResult {
  const targets: Target[] = [];
  const seen = new Set<string>();
  let all = false;

  for (const token of text.split(/[\s,;]+/)) {
    if (token === '') continue;
    const colon = token.indexOf(':');
    // Only the first colon separates: handles such as Bluesky DIDs (did:plc:...) contain colons.
    const name = colon === -1 ? token : token.slice(0, colon);
    const rawHandle = colon === -1 ? '' : token.slice(colon + 1);
    const key = name.toLowerCase();

    if (key === 'all' && colon === -1) {
      all = true;
      continue;
    }
    const platform = isPlatformId(key) ? key : ALIASES.get(key);
    if (!platform) return { ok: false, message: MESSAGES.unknownPlatform(name, PLATFORM_IDS) };

    const handle = rawHandle.replace(/^@/, '') || null;
    // Handles are case-insensitive on every supported platform, so "@Me" and "me" are one target.
    const dedupeKey = `${platform}:${handle?.toLowerCase() ?? ''}`;
    if (seen.has(dedupeKey)) continue;
    seen.add(dedupeKey);
    targets.push({ platform, handle });
  }

  return { ok: true, targets, all };
}
