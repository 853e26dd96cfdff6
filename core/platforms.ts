/**
 * The platform contract and every platform's static facts (label, video profile, caption limits).
 *
 * The facts live here, in core, rather than in the adapters so that intake (bot, CLI) can refuse a
 * too-long caption or an unknown platform before anything is uploaded, without loading any
 * adapter's HTTP code. The adapters in worker/platforms/<id>.ts implement `PlatformAdapter`.
 */
import type { Logger } from './log.ts';
import type { PublishError } from './errors.ts';

export const PLATFORM_IDS = [
  'tiktok',
  'instagram',
  'youtube',
  'facebook',
  'x',
  'linkedin',
  'pinterest',
  'threads',
  'bluesky',
] as const;
export type PlatformId = (typeof PLATFORM_IDS)[number];

export function isPlatformId(value: string): value is PlatformId {
  return (PLATFORM_IDS as readonly string[]).includes(value);
}

/**
 * What a rendition must satisfy for a platform. `key` names the encode (box, codecs, fps, aspect):
 * platforms with the same key share one rendition, and the transcoder checks it against the
 * strictest size and duration limits among them.
 */
export interface VideoProfile {
  key: string;
  container: 'mp4';
  videoCodec: 'h264';
  audioCodec: 'aac';
  maxBytes: number;
  minDurationSeconds: number;
  maxDurationSeconds: number;
  /** The box an encode scales and pads into; compliant input may be smaller. */
  width: number;
  height: number;
  maxFps: number;
  /** width / height */
  minAspect: number;
  maxAspect: number;
}

export interface CaptionRules {
  /** Counted in the unit below; a caption over it is refused at intake. */
  maxLength: number;
  /**
   * weighted: X's count (a link is 23, emoji and CJK count 2), from twitter-text; emojiBytes:
   * graphemes with each emoji counted as its UTF-8 bytes (Threads).
   */
  unit: 'graphemes' | 'characters' | 'utf16' | 'weighted' | 'emojiBytes';
  maxBytes?: number;
}

export interface PlatformSpec {
  id: PlatformId;
  label: string;
  /**
   * The platform may fetch the video from a public link (PUBLIC_BASE_URL must be set); see
   * needsPublicUrl() for accounts that upload the bytes instead.
   */
  needsPublicUrl?: boolean;
  video: VideoProfile;
  caption: CaptionRules;
}

/** A vertical 9:16 short, the common denominator of the short-video platforms. */
const VERTICAL_1080: Omit<VideoProfile, 'key' | 'maxBytes' | 'minDurationSeconds' | 'maxDurationSeconds'> = {
  container: 'mp4',
  videoCodec: 'h264',
  audioCodec: 'aac',
  width: 1080,
  height: 1920,
  maxFps: 60,
  minAspect: 0.5,
  maxAspect: 0.5625 * 1.0001,
};
// LinkedIn accepts down to 1:2.4, but sharing the 9:16 encode is worth more than that latitude.

export const PLATFORM_SPECS = {
  tiktok: {
    id: 'tiktok',
    label: 'TikTok',
    video: { key: 'vertical-1080', ...VERTICAL_1080, maxBytes: 4 * 1024 ** 3, minDurationSeconds: 3, maxDurationSeconds: 600 },
    caption: { maxLength: 2200, unit: 'utf16' },
  },
  instagram: {
    id: 'instagram',
    label: 'Instagram',
    needsPublicUrl: true,
    video: { key: 'vertical-1080', ...VERTICAL_1080, maxBytes: 300 * 1024 ** 2, minDurationSeconds: 3, maxDurationSeconds: 900 },
    caption: { maxLength: 2200, unit: 'characters' },
  },
  youtube: {
    id: 'youtube',
    label: 'YouTube',
    video: { key: 'vertical-1080', ...VERTICAL_1080, maxBytes: 256 * 1024 ** 3, minDurationSeconds: 1, maxDurationSeconds: 180 },
    caption: { maxLength: 5000, unit: 'utf16', maxBytes: 5000 },
  },
  facebook: {
    id: 'facebook',
    label: 'Facebook',
    video: { key: 'vertical-1080', ...VERTICAL_1080, maxBytes: 1024 ** 3, minDurationSeconds: 3, maxDurationSeconds: 90 },
    caption: { maxLength: 2200, unit: 'characters' },
  },
  x: {
    id: 'x',
    label: 'X',
    video: {
      key: 'x-720x1280',
      container: 'mp4',
      videoCodec: 'h264',
      audioCodec: 'aac',
      width: 720,
      height: 1280,
      maxFps: 60,
      minAspect: 1 / 3,
      maxAspect: 3,
      maxBytes: 512 * 1024 ** 2,
      minDurationSeconds: 0.5,
      maxDurationSeconds: 140,
    },
    caption: { maxLength: 280, unit: 'weighted' },
  },
  linkedin: {
    id: 'linkedin',
    label: 'LinkedIn',
    video: { key: 'vertical-1080', ...VERTICAL_1080, maxBytes: 500 * 1024 ** 2, minDurationSeconds: 3, maxDurationSeconds: 1800 },
    caption: { maxLength: 3000, unit: 'characters' },
  },
  pinterest: {
    id: 'pinterest',
    label: 'Pinterest',
    video: { key: 'vertical-1080', ...VERTICAL_1080, maxBytes: 2 * 1024 ** 3, minDurationSeconds: 4, maxDurationSeconds: 900 },
    caption: { maxLength: 800, unit: 'characters' },
  },
  threads: {
    id: 'threads',
    label: 'Threads',
    needsPublicUrl: true,
    video: { key: 'vertical-1080', ...VERTICAL_1080, maxBytes: 1024 ** 3, minDurationSeconds: 1, maxDurationSeconds: 300 },
    // "Text posts are limited to 500 characters. Emojis are counted as the number of UTF-8 bytes."
    caption: { maxLength: 500, unit: 'emojiBytes' },
  },
  bluesky: {
    id: 'bluesky',
    label: 'Bluesky',
    // Bluesky accepts any aspect ratio (the post carries aspectRatio); 50 MB is the blob limit of
    // Bluesky-hosted PDSes, the tightest limit a direct uploadBlob meets.
    video: {
      key: 'bluesky-1920',
      container: 'mp4',
      videoCodec: 'h264',
      audioCodec: 'aac',
      width: 1920,
      height: 1920,
      maxFps: 60,
      minAspect: 0.01,
      maxAspect: 100,
      maxBytes: 50 * 1000 * 1000,
      minDurationSeconds: 0.1,
      maxDurationSeconds: 180,
    },
    caption: { maxLength: 300, unit: 'graphemes', maxBytes: 3000 },
  },
} as const satisfies Record<PlatformId, PlatformSpec>;

/** A platform's credentials as stored (encrypted) on the account; each adapter owns its shape. */
export type Credentials = Record<string, unknown>;

/** Instagram with Facebook Login uploads the bytes (rupload); only its other login needs the public link. */
export function needsPublicUrl(spec: PlatformSpec, credentials: Credentials): boolean {
  if (spec.id === 'instagram') return credentials.loginType !== 'facebook';
  return spec.needsPublicUrl === true;
}

/** Platform ids, upload sessions and similar, saved before the step that depends on them. */
export type Checkpoint = Record<string, unknown>;

export interface RenditionHandle {
  id: string;
  size: number;
  sha256: string;
  contentType: string;
  width: number;
  height: number;
  durationSeconds: number;
  /** A JPEG frame of the video (a cover image), when one was extracted. */
  thumbnail?: Buffer | null;
  /** A fresh stream of the bytes each call; never buffers the whole file. */
  open(range?: { start: number; end: number }): Promise<NodeJS.ReadableStream & AsyncIterable<Buffer>>;
}

export interface PublishInput {
  deliveryId: string;
  /** When the delivery was created: a stable seed for platform idempotency keys. */
  createdAt: Date;
  caption: string;
  rendition: RenditionHandle;
  account: { id: string; handle: string; remoteId: string | null };
  credentials: Credentials;
  /**
   * A signed public link to the rendition (valid 2 h), for platforms that fetch the video by URL;
   * null when PUBLIC_BASE_URL is not configured.
   */
  mediaUrl: string | null;
  /** Choices made for this delivery at intake, e.g. `{ board }` from `to pinterest:<board>`. */
  options?: Readonly<Record<string, unknown>>;
  checkpoint: Checkpoint;
  /** Persists (merges) checkpoint fields before the adapter makes the call that depends on them. */
  saveCheckpoint(patch: Checkpoint): Promise<void>;
}

export interface OAuthClient {
  clientId: string;
  clientSecret: string;
}

export interface PlatformDeps {
  fetch: typeof globalThis.fetch;
  signal: AbortSignal;
  log: Logger;
  now(): number;
  /** Base URLs for this platform, from config; adapters never hard-code hosts. */
  urls: Readonly<Record<string, string>>;
  /** The app's OAuth client for token refresh; null when not configured. */
  oauthClient: OAuthClient | null;
  /** Test-only hook: lets the crash harness kill the process at named points. */
  crashPoint(name: string): void;
  /**
   * For a request that is safe to repeat and failed on its `sends`-th send: milliseconds before
   * sending it again, or null to fail. The worker passes the retry policy's `repeatInPlace`; left
   * out (adapter tests), every failure surfaces at once.
   */
  repeat?(error: PublishError, sends: number): number | null;
}

/** `note`: plain words for the chat when the link alone would mislead ("awaiting review", "sent to drafts"). */
export type PublishResult =
  | { status: 'published'; remoteId: string; url: string; note?: string }
  | { status: 'processing'; remoteId: string; checkAfterSeconds: number; note?: string }
  /**
   * The platform gives no way to know whether an earlier attempt posted (and asking found
   * nothing conclusive): the worker marks the delivery `unconfirmed` and alerts, never reposting.
   */
  | { status: 'unconfirmed'; evidence: string };

export interface RefreshResult {
  credentials: Credentials;
  /** When the access credential expires; null when unknown. */
  expiresAt: Date | null;
}

export interface PlatformAdapter {
  spec: PlatformSpec;
  /**
   * Publishes, or resumes a publish from `input.checkpoint`. Before repeating any call that could
   * create a post, it asks the platform whether the post already exists.
   */
  publish(input: PublishInput, deps: PlatformDeps): Promise<PublishResult>;
  /** One read-only call, safe to repeat. Once live it never answers `processing` again. */
  check(remoteId: string, input: PublishInput, deps: PlatformDeps): Promise<PublishResult>;
  /**
   * Returns fresh credentials when the stored ones are missing a session or near expiry; returns
   * null when nothing needed to change. The worker stores the result under a row lock.
   */
  refresh?(credentials: Credentials, deps: PlatformDeps, options: { force: boolean }): Promise<RefreshResult | null>;
  /**
   * The daily health check: the platform's cheapest documented read with the stored (already
   * refreshed) credentials. Resolves when the login works; throws PublishError 'auth' when the
   * platform refuses it. Adapters without one are skipped.
   */
  validate?(credentials: Credentials, deps: PlatformDeps): Promise<void>;
}
