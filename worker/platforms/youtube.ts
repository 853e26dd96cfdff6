/**
 * YouTube Shorts through the Data API v3 resumable upload (`videos.insert`, platform reference §4):
 * start a session, PUT the file in chunks of a multiple of 256 KiB, then follow processing with
 * `videos.list` from the worker's polling. A Short is not a flag: a vertical or square video of at
 * most 3 minutes is one, and the rendition profile makes sure of that.
 *
 * Exactly-once: the video is created when its last byte arrives, and nothing else can create it. The
 * session URI is saved before the first byte is sent and the video id as soon as the final chunk
 * answers. A resumed attempt asks the session (`Content-Range: bytes * /total`) before sending
 * anything, and the session answers with the finished video if the earlier attempt completed it.
 * Only a session that vanished after its final chunk was sent leaves the outcome unknowable.
 *
 * All HTTP goes through `deps.fetch` (via http.ts); there is no Google SDK.
 */
import { z } from 'zod';
import { MESSAGES, PublishError, withOutcomeUnknown } from '../../core/errors.ts';
import type { Checkpoint, Credentials, PlatformAdapter, PlatformDeps, PublishInput, PublishResult, RefreshResult } from '../../core/platforms.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';
import { describeBody, json, requestJson, streamBody } from './http.ts';
import type { HttpRequest, HttpResponse, MapError, RequestOptions } from './http.ts';

const SPEC = PLATFORM_SPECS.youtube;
const LABEL = SPEC.label;
/** Google's granule: every chunk but the last must be a multiple of it. */
export const CHUNK_GRANULE = 256 * 1024;
/** Refresh when the access token has less than this left, so an upload does not outlive it. */
const REFRESH_MARGIN_MS = 5 * 60_000;
const DEFAULT_WEB_URL = 'https://www.youtube.com';
const TITLE_MAX = 100;
const DESCRIPTION_MAX_BYTES = 5000;
const UNTITLED = 'Untitled';
/** A non-final chunk that moves the offset by nothing this many times in a row means a confused server. */
const MAX_STALLED_CHUNKS = 3;

const SCOPE = 'https://www.googleapis.com/auth/';
/** Scopes that allow videos.insert. */
const UPLOAD_SCOPES = ['youtube.upload', 'youtube', 'youtube.force-ssl', 'youtubepartner'].map((s) => SCOPE + s);
/** Scopes that allow videos.list of the channel's own (private) videos. */
const READ_SCOPES = ['youtube.readonly', 'youtube', 'youtube.force-ssl', 'youtubepartner'].map((s) => SCOPE + s);

export const PRIVACY_STATUSES = ['public', 'unlisted', 'private'] as const;
export type PrivacyStatus = (typeof PRIVACY_STATUSES)[number];

export const youtubeCredentialsSchema = z.object({
  accessToken: z.string().min(1),
  refreshToken: z.string().min(1),
  /** When the access token expires (from `expires_in`). */
  expiresAt: z.iso.datetime({ offset: true }),
  /** Space-separated scopes granted, as the token endpoint reports them. */
  scope: z.string(),
  tokenType: z.string().optional(),
  /** The channel the uploads land on (channels.list?mine=true at linking), for display. */
  channelId: z.string().optional(),
  // Per-account settings; each falls back to the adapter's option.
  privacyStatus: z.enum(PRIVACY_STATUSES).optional(),
  categoryId: z.string().regex(/^\d+$/).optional(),
  notifySubscribers: z.boolean().optional(),
  /** `status.selfDeclaredMadeForKids`; left out (YouTube then asks in Studio) unless set. */
  madeForKids: z.boolean().optional(),
});
export type YoutubeCredentials = z.infer<typeof youtubeCredentialsSchema>;

export interface YoutubeOptions {
  /**
   * Bytes per PUT; rounded down to a multiple of 256 KiB. Chunks stream from the media store, but
   * Node's bundled fetch holds a request's body until the request ends, so this also bounds memory.
   */
  chunkBytes?: number;
  /**
   * Privacy when the account sets none. Private by default: unaudited API projects (all created
   * after 2020-07-28 until they pass YouTube's compliance audit) are locked to private anyway.
   */
  defaultPrivacy?: PrivacyStatus;
  /** People & Blogs unless configured. */
  categoryId?: string;
  notifySubscribers?: boolean;
  /** Poll delay when YouTube gives no estimate of the processing time left. */
  checkAfterSeconds?: number;
  /** The shortest poll delay, however soon YouTube expects to finish. */
  minCheckSeconds?: number;
  /** Where the daily quota resets at midnight. */
  quotaTimeZone?: string;
  /** For calls whose body is held in memory. */
  requestTimeoutMs?: number;
  /** For one chunk PUT; defaults to a minute plus 64 KiB/s for the chunk. */
  chunkTimeoutMs?: number;
}

const DEFAULTS = {
  chunkBytes: 8 * 1024 * 1024,
  defaultPrivacy: 'private' as PrivacyStatus,
  categoryId: '22',
  notifySubscribers: true,
  checkAfterSeconds: 30,
  minCheckSeconds: 5,
  quotaTimeZone: 'America/Los_Angeles',
  requestTimeoutMs: 60_000,
};
const MAX_CHECK_SECONDS = 300;

// ---------------------------------------------------------------------------------------------
// Errors

interface GoogleError {
  reason: string | undefined;
  message: string | undefined;
}

/**
 * The reason of a Google API error (`{"error": {"errors": [{"reason": ...}]}}`) or of an OAuth
 * token-endpoint error (`{"error": "invalid_grant", "error_description": ...}`).
 */
function googleError(body: unknown): GoogleError {
  if (!body || typeof body !== 'object') return { reason: undefined, message: typeof body === 'string' ? body : undefined };
  const record = body as { error?: unknown; error_description?: unknown };
  if (typeof record.error === 'string') {
    return { reason: record.error, message: typeof record.error_description === 'string' ? record.error_description : undefined };
  }
  if (record.error && typeof record.error === 'object') {
    const error = record.error as { message?: unknown; status?: unknown; errors?: unknown };
    const first = Array.isArray(error.errors) ? (error.errors[0] as { reason?: unknown } | undefined) : undefined;
    const reason = typeof first?.reason === 'string' ? first.reason : typeof error.status === 'string' ? error.status : undefined;
    return { reason, message: typeof error.message === 'string' ? error.message : undefined };
  }
  return { reason: undefined, message: undefined };
}

const METADATA_REASONS = new Set([
  'invalidTitle',
  'invalidDescription',
  'invalidTags',
  'invalidCategoryId',
  'invalidPublishAt',
  'invalidVideoMetadata',
  'invalidRecordingDetails',
  'invalidFilename',
  'defaultLanguageNotSet',
]);

/**
 * Seconds from `nowMs` to the next midnight in `timeZone` (YouTube's quota resets at midnight
 * Pacific), correct across daylight-saving changes.
 */
export function secondsUntilMidnight(nowMs: number, timeZone: string): number {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  /** The wall-clock time at `ms`, written as if it were UTC. */
  const wall = (ms: number): number => {
    const parts: Record<string, number> = {};
    for (const part of format.formatToParts(ms)) if (part.type !== 'literal') parts[part.type] = Number(part.value);
    return Date.UTC(parts.year ?? 1970, (parts.month ?? 1) - 1, parts.day ?? 1, parts.hour ?? 0, parts.minute ?? 0, parts.second ?? 0);
  };
  const whole = Math.floor(nowMs / 1000) * 1000;
  const today = new Date(wall(whole));
  const midnight = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + 1);
  // The offset at midnight may differ from now's (a DST change tonight): correct it once.
  let utc = midnight - (wall(whole) - whole);
  utc = midnight - (wall(utc) - utc);
  return Math.max(1, Math.ceil((utc - nowMs) / 1000));
}

/** Maps a non-2xx answer of the Data API, the upload endpoint or the token endpoint to a PublishError. */
export function mapYoutubeError(status: number, body: unknown, nowMs: number, quotaTimeZone: string = DEFAULTS.quotaTimeZone): PublishError {
  const { reason, message: googleMessage } = googleError(body);
  const detail = describeDetail(reason, googleMessage, body, status);
  const message = `${LABEL} answered ${status}${reason ? ` ${reason}` : ''}: ${detail}`;
  const userError = (text: string) => new PublishError('rejected', message, { status, detail: text, retryable: false });

  if (reason === 'invalid_grant') return new PublishError('auth', message, { status, detail, retryable: false });
  if (reason === 'invalid_client' || reason === 'unauthorized_client') {
    // Our app's OAuth client, not the account: re-linking would not help.
    return new PublishError('unknown', message, { status, detail: `Reelay's Google OAuth client was refused (${reason})`, retryable: false });
  }
  if (reason === 'youtubeSignupRequired') return userError(MESSAGES.youtubeNoChannel());
  if (reason === 'insufficientPermissions' || reason === 'ACCESS_TOKEN_SCOPE_INSUFFICIENT') {
    return new PublishError('auth', message, { status, detail: 'the account was linked without permission to upload', retryable: false });
  }
  // An expired or revoked access token; the worker refreshes once and tries again.
  if (status === 401) return new PublishError('auth', message, { status, detail, retryable: true });
  if (reason === 'quotaExceeded' || reason === 'dailyLimitExceeded') {
    const seconds = secondsUntilMidnight(nowMs, quotaTimeZone);
    const resetAt = new Date(nowMs + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return new PublishError('rate_limited', message, { status, detail: MESSAGES.youtubeQuotaExceeded(resetAt), userMessage: MESSAGES.youtubeQuotaExceeded(resetAt), retryable: true, retryAfterSeconds: seconds });
  }
  if (status === 429 || reason === 'rateLimitExceeded' || reason === 'userRateLimitExceeded') {
    return new PublishError('rate_limited', message, { status, detail, retryable: true });
  }
  if (reason === 'uploadLimitExceeded') return userError(MESSAGES.youtubeUploadLimit());
  if (reason !== undefined && METADATA_REASONS.has(reason)) return userError(MESSAGES.youtubeMetadata(reason));
  if (status === 413 || reason === 'mediaBodyTooLarge' || reason === 'uploadTooLarge') {
    return new PublishError('invalid_media', message, { status, detail: 'the file is larger than YouTube accepts', retryable: false });
  }
  if (status === 403 || reason === 'forbidden') return userError(MESSAGES.youtubeForbidden());
  if (status >= 500) return new PublishError('unavailable', message, { status, detail, retryable: true });
  // Any other 4xx is a request Reelay built wrong; repeating it would change nothing.
  if (status >= 400 && status < 500) return new PublishError('unknown', message, { status, detail, retryable: false });
  return new PublishError('unknown', message, { status, detail });
}

function describeDetail(reason: string | undefined, message: string | undefined, body: unknown, status: number): string {
  const text = [reason, message].filter((v): v is string => typeof v === 'string' && v !== '');
  // Google's messages carry HTML (`<a href=...>quota</a>`); a log line does not need it.
  const joined = text.join(': ').replace(/<[^>]*>/g, '');
  if (joined) return joined.length > 300 ? `${joined.slice(0, 299)}…` : joined;
  return describeBody(body) || `HTTP ${status}`;
}

/** Call-specific meanings of a status, checked before the generic mapping. */
type SpecialMap = (status: number, body: unknown, headers: Headers) => PublishError | undefined;

/** A 308 from the session: the upload is incomplete and the server holds bytes [0, offset). */
class ResumeIncomplete extends PublishError {
  readonly offset: number;
  constructor(offset: number) {
    super('unknown', `${LABEL} upload incomplete at byte ${offset}`, { retryable: false, status: 308 });
    this.offset = offset;
  }
}

/** A 404/410 from the session: it expired or never existed; the upload must start over. */
class SessionGone extends PublishError {}

/** A 403 for a missing scope on a read: the token itself was accepted. */
class ScopeShort extends PublishError {
  constructor(reason: string) {
    super('auth', `${LABEL} answered 403 ${reason}`, { status: 403, retryable: false, detail: reason });
  }
}

function uploadedOffset(headers: Headers): number {
  const range = headers.get('range');
  if (!range) return 0;
  const match = /^bytes=0-(\d+)$/.exec(range.trim());
  if (!match) throw new PublishError('unknown', `${LABEL} answered 308 with an unreadable Range: ${range}`, { retryable: true, detail: 'unreadable upload offset' });
  return Number(match[1]) + 1;
}

// ---------------------------------------------------------------------------------------------
// Captions

export interface VideoText {
  title: string;
  description: string;
}

/** YouTube refuses `<` and `>` in titles and descriptions; the look-alike angle quotes keep "<3" readable. */
function replaceAngles(text: string): string {
  return text.replace(/</g, '‹').replace(/>/g, '›');
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** The longest prefix of whole graphemes within `max` UTF-16 units (the stricter reading of "characters"). */
function clip(text: string, max: number): string {
  let out = '';
  for (const { segment } of graphemes.segment(text)) {
    if (out.length + segment.length > max) break;
    out += segment;
  }
  return out;
}

/**
 * Title from the first non-empty caption line, description from the rest. A first line over 100
 * characters is cut at a word where one is near, ending in "…", and the description then carries the
 * whole caption so nothing is lost. A description over 5000 bytes is a 'rejected' error.
 */
export function videoText(caption: string): VideoText {
  const lines = replaceAngles(caption.replace(/\r\n?/g, '\n')).split('\n');
  const index = lines.findIndex((line) => line.trim() !== '');
  if (index === -1) return { title: UNTITLED, description: '' };
  const first = lines[index]!.trim().replace(/\s+/g, ' ');
  const rest = lines.slice(index + 1).join('\n').trim();
  let title = first;
  let description = rest;
  if (first.length > TITLE_MAX) {
    const cut = clip(first, TITLE_MAX - 1);
    const space = cut.lastIndexOf(' ');
    title = `${(space >= TITLE_MAX * 0.6 ? cut.slice(0, space) : cut).trimEnd()}…`;
    description = lines.slice(index).join('\n').trim();
  }
  const bytes = Buffer.byteLength(description, 'utf8');
  if (bytes > DESCRIPTION_MAX_BYTES) {
    const detail = MESSAGES.captionTooManyBytes(LABEL, bytes, DESCRIPTION_MAX_BYTES);
    throw new PublishError('rejected', detail, { retryable: false, detail });
  }
  return { title, description };
}

// ---------------------------------------------------------------------------------------------
// Credentials and token refresh

function parseCredentials(credentials: Credentials): YoutubeCredentials {
  const parsed = youtubeCredentialsSchema.safeParse(credentials);
  if (!parsed.success) {
    throw new PublishError('auth', `Stored ${LABEL} credentials are incomplete.`, { retryable: false, detail: 'stored credentials are incomplete' });
  }
  return parsed.data;
}

/** An empty scope means unknown: YouTube then decides, and says so with insufficientPermissions. */
function hasScope(scope: string, wanted: readonly string[]): boolean {
  const granted = new Set(scope.split(/\s+/).filter(Boolean));
  return granted.size === 0 || wanted.some((s) => granted.has(s));
}

const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().positive(),
  scope: z.string().optional(),
  token_type: z.string().optional(),
  refresh_token: z.string().min(1).optional(),
});

function urlOf(deps: PlatformDeps, key: 'api' | 'upload' | 'token'): string {
  const value = deps.urls[key];
  if (!value) throw new PublishError('unknown', `${LABEL} ${key} URL is not configured.`, { retryable: false, detail: `${key} URL not configured` });
  return value.replace(/\/+$/, '');
}

function createRefresh(options: Required<Pick<YoutubeOptions, 'quotaTimeZone' | 'requestTimeoutMs'>>) {
  return async function refresh(credentials: Credentials, deps: PlatformDeps, { force }: { force: boolean }): Promise<RefreshResult | null> {
    const creds = parseCredentials(credentials);
    if (!force && Date.parse(creds.expiresAt) - deps.now() > REFRESH_MARGIN_MS) return null;
    if (!deps.oauthClient) {
      throw new PublishError('unknown', `${LABEL} token refresh needs GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET.`, {
        retryable: false,
        detail: 'the Google OAuth client is not configured',
      });
    }
    const form = new URLSearchParams({
      client_id: deps.oauthClient.clientId,
      client_secret: deps.oauthClient.clientSecret,
      refresh_token: creds.refreshToken,
      grant_type: 'refresh_token',
    });
    const mapError: MapError = (status, body) => mapYoutubeError(status, body, deps.now(), options.quotaTimeZone);
    const response = await requestJson<unknown>(
      deps,
      urlOf(deps, 'token'),
      { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() },
      mapError,
      { safeToRepeat: true, timeoutMs: options.requestTimeoutMs },
    );
    const parsed = tokenResponseSchema.safeParse(response.body);
    if (!parsed.success) {
      throw new PublishError('unknown', `${LABEL} answered the token refresh with an unexpected body.`, { retryable: true, detail: 'unexpected token answer' });
    }
    const expiresAt = new Date(deps.now() + parsed.data.expires_in * 1000);
    const next: YoutubeCredentials = {
      ...creds,
      accessToken: parsed.data.access_token,
      // Google keeps the refresh token unless it says otherwise.
      refreshToken: parsed.data.refresh_token ?? creds.refreshToken,
      expiresAt: expiresAt.toISOString(),
      scope: parsed.data.scope ?? creds.scope,
    };
    if (parsed.data.token_type) next.tokenType = parsed.data.token_type;
    return { credentials: next, expiresAt };
  };
}

// ---------------------------------------------------------------------------------------------
// Video resources and processing

const videoSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]+$/),
  status: z
    .object({
      uploadStatus: z.string().optional(),
      failureReason: z.string().optional(),
      rejectionReason: z.string().optional(),
      privacyStatus: z.string().optional(),
    })
    .optional(),
  processingDetails: z
    .object({
      processingStatus: z.string().optional(),
      processingFailureReason: z.string().optional(),
      processingProgress: z.object({ timeLeftMs: z.union([z.string(), z.number()]).optional() }).optional(),
    })
    .optional(),
});
type Video = z.infer<typeof videoSchema>;

const listSchema = z.object({ items: z.array(z.unknown()).default([]) });

function shortsUrl(deps: PlatformDeps, id: string): string {
  return `${(deps.urls.web ?? DEFAULT_WEB_URL).replace(/\/+$/, '')}/shorts/${id}`;
}

interface YoutubeCheckpoint {
  sessionUri?: string;
  /** Size and hash of the rendition the session uploads: the query needs the size, a new rendition needs a new session. */
  sessionSize?: number;
  sessionSha256?: string;
  /** Set before the final chunk goes out: from then on the video may exist. */
  finalChunkSent?: boolean;
  finalChunkSentAt?: string;
  videoId?: string;
}

function readCheckpoint(checkpoint: Checkpoint): YoutubeCheckpoint {
  const out: YoutubeCheckpoint = {};
  if (typeof checkpoint.sessionUri === 'string' && checkpoint.sessionUri !== '') out.sessionUri = checkpoint.sessionUri;
  if (typeof checkpoint.sessionSize === 'number') out.sessionSize = checkpoint.sessionSize;
  if (typeof checkpoint.sessionSha256 === 'string') out.sessionSha256 = checkpoint.sessionSha256;
  if (checkpoint.finalChunkSent === true) out.finalChunkSent = true;
  if (typeof checkpoint.finalChunkSentAt === 'string') out.finalChunkSentAt = checkpoint.finalChunkSentAt;
  if (typeof checkpoint.videoId === 'string' && checkpoint.videoId !== '') out.videoId = checkpoint.videoId;
  return out;
}

/** Clears what a new upload must not reuse. */
const FRESH_SESSION: Checkpoint = { sessionUri: null, sessionSize: null, sessionSha256: null, finalChunkSent: null, finalChunkSentAt: null };

// ---------------------------------------------------------------------------------------------
// The adapter

export function createYoutubeAdapter(overrides: YoutubeOptions = {}): PlatformAdapter {
  const options = { ...DEFAULTS, ...overrides };
  const chunkBytes = Math.floor(options.chunkBytes / CHUNK_GRANULE) * CHUNK_GRANULE;
  if (chunkBytes < CHUNK_GRANULE) throw new RangeError(`YouTube chunks must be at least ${CHUNK_GRANULE} bytes`);
  const chunkTimeoutMs = overrides.chunkTimeoutMs ?? 60_000 + Math.ceil(chunkBytes / 65_536) * 1000;
  const refresh = createRefresh(options);

  function call<T>(deps: PlatformDeps, url: string, init: HttpRequest, special: SpecialMap | undefined, requestOptions: RequestOptions): Promise<HttpResponse<T>> {
    const mapError: MapError = (status, body, headers) =>
      special?.(status, body, headers) ?? mapYoutubeError(status, body, deps.now(), options.quotaTimeZone);
    return requestJson<T>(deps, url, init, mapError, { timeoutMs: options.requestTimeoutMs, ...requestOptions });
  }

  /** 308 and 404/410 mean something specific on a session URI. */
  const sessionErrors: SpecialMap = (status, _body, headers) => {
    if (status === 308) return new ResumeIncomplete(uploadedOffset(headers));
    if (status === 404 || status === 410) {
      return new SessionGone('unknown', `${LABEL} upload session is gone (${status})`, { status, retryable: true, detail: `upload session gone (${status})` });
    }
    return undefined;
  };

  function parseVideo(body: unknown, where: string): Video {
    const parsed = videoSchema.safeParse(body);
    if (!parsed.success) {
      throw new PublishError('unknown', `${LABEL} answered ${where} without a video id.`, { retryable: true, outcomeUnknown: true, detail: `unexpected ${where} answer` });
    }
    return parsed.data;
  }

  async function startSession(input: PublishInput, deps: PlatformDeps, creds: YoutubeCredentials, text: VideoText): Promise<string> {
    const url = new URL(`${urlOf(deps, 'upload')}/youtube/v3/videos`);
    url.searchParams.set('uploadType', 'resumable');
    url.searchParams.set('part', 'snippet,status');
    const notify = creds.notifySubscribers ?? options.notifySubscribers;
    if (!notify) url.searchParams.set('notifySubscribers', 'false');
    const status: Record<string, unknown> = { privacyStatus: creds.privacyStatus ?? options.defaultPrivacy };
    if (creds.madeForKids !== undefined) status.selfDeclaredMadeForKids = creds.madeForKids;
    const resource = {
      snippet: { title: text.title, description: text.description, categoryId: creds.categoryId ?? options.categoryId },
      status,
    };
    const response = await call<unknown>(
      deps,
      url.toString(),
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${creds.accessToken}`,
          'content-type': 'application/json; charset=UTF-8',
          'x-upload-content-length': String(input.rendition.size),
          'x-upload-content-type': input.rendition.contentType || 'video/mp4',
        },
        body: json(resource),
      },
      undefined,
      // Opening a session creates nothing anyone sees; an unused one expires.
      { safeToRepeat: true, response: 'none' },
    );
    const location = response.headers.get('location');
    if (!location) {
      throw new PublishError('unknown', `${LABEL} opened an upload session without a Location.`, { retryable: true, detail: 'no session URI' });
    }
    return new URL(location, url).toString();
  }

  type SessionState = { kind: 'complete'; video: Video } | { kind: 'incomplete'; offset: number };

  /** Asks the session how far it got: `PUT` with no body and `Content-Range: bytes * /total`. */
  async function querySession(deps: PlatformDeps, creds: YoutubeCredentials, sessionUri: string, total: number): Promise<SessionState> {
    try {
      const response = await call<unknown>(
        deps,
        sessionUri,
        { method: 'PUT', headers: { authorization: `Bearer ${creds.accessToken}`, 'content-range': `bytes */${total}` }, body: '' },
        sessionErrors,
        { safeToRepeat: true },
      );
      return { kind: 'complete', video: parseVideo(response.body, 'the upload status query') };
    } catch (error) {
      if (error instanceof ResumeIncomplete) return { kind: 'incomplete', offset: error.offset };
      throw error;
    }
  }

  /** Sends bytes [offset, total) in chunks; returns the created video. */
  async function upload(input: PublishInput, deps: PlatformDeps, creds: YoutubeCredentials, sessionUri: string, startAt: number, log: PlatformDeps['log']): Promise<Video> {
    const { rendition } = input;
    const total = rendition.size;
    let offset = startAt;
    let stalled = 0;
    for (;;) {
      const end = Math.min(offset + chunkBytes, total) - 1;
      const length = end - offset + 1;
      const final = end === total - 1;
      if (final) await input.saveCheckpoint({ finalChunkSent: true, finalChunkSentAt: new Date(deps.now()).toISOString() });
      const stream = await rendition.open({ start: offset, end });
      try {
        const response = await call<unknown>(
          deps,
          sessionUri,
          {
            method: 'PUT',
            headers: {
              authorization: `Bearer ${creds.accessToken}`,
              'content-type': rendition.contentType || 'video/mp4',
              'content-range': `bytes ${offset}-${end}/${total}`,
            },
            body: streamBody(stream, length),
          },
          sessionErrors,
          // Only the final chunk can create the video.
          { safeToRepeat: !final, timeoutMs: chunkTimeoutMs },
        );
        deps.crashPoint('youtube.after_final_chunk');
        return parseVideo(response.body, 'the final chunk');
      } catch (error) {
        if (error instanceof ResumeIncomplete) {
          if (final) await input.saveCheckpoint({ finalChunkSent: false, finalChunkSentAt: null });
          stalled = error.offset > offset ? 0 : stalled + 1;
          if (stalled >= MAX_STALLED_CHUNKS) {
            throw new PublishError('unknown', `${LABEL} keeps answering the upload at byte ${error.offset}.`, { retryable: true, detail: 'upload made no progress' });
          }
          offset = error.offset;
          deps.crashPoint('youtube.after_chunk');
          continue;
        }
        if (!final || !(error instanceof PublishError) || error instanceof SessionGone) throw error;
        if (error.status !== undefined && error.status < 500) {
          // A refusal (401, 429, ...) proves the last chunk created nothing.
          await input.saveCheckpoint({ finalChunkSent: false, finalChunkSentAt: null });
          throw error;
        }
        // No answer, or a 5xx: the last byte may have arrived and created the video. Ask first.
        const state = await querySession(deps, creds, sessionUri, total).catch(() => null);
        if (state?.kind === 'complete') {
          log.info({ videoId: state.video.id }, 'youtube final chunk answer lost; the session holds the finished video');
          return state.video;
        }
        throw withOutcomeUnknown(error);
      }
    }
  }

  /** The publish result for a video that exists; one read-only call when the scope allows it. */
  async function videoResult(input: PublishInput, deps: PlatformDeps, creds: YoutubeCredentials, videoId: string): Promise<PublishResult> {
    if (!hasScope(creds.scope, READ_SCOPES)) {
      // Without a read scope processing cannot be followed; the upload itself is done.
      deps.log.warn({ platform: SPEC.id, videoId }, 'youtube account lacks a read scope; not following processing');
      return { status: 'published', remoteId: videoId, url: shortsUrl(deps, videoId) };
    }
    const url = new URL(`${urlOf(deps, 'api')}/youtube/v3/videos`);
    url.searchParams.set('part', 'status,processingDetails');
    url.searchParams.set('id', videoId);
    const response = await call<unknown>(deps, url.toString(), { method: 'GET', headers: { authorization: `Bearer ${creds.accessToken}` } }, undefined, { safeToRepeat: true });
    const list = listSchema.safeParse(response.body);
    const item = list.success ? list.data.items[0] : undefined;
    if (item === undefined) {
      // Kept in the checkpoint: a video that reappears must not be uploaded a second time.
      throw new PublishError('unknown', `${LABEL} does not list video ${videoId}.`, { retryable: true, detail: 'the uploaded video is not listed' });
    }
    const video = parseVideo(item, 'videos.list');
    const uploadStatus = video.status?.uploadStatus;
    const processing = video.processingDetails?.processingStatus;
    const terminal = async (error: PublishError): Promise<never> => {
      // A manual retry of this delivery uploads afresh instead of finding the dead video again.
      await input.saveCheckpoint({ ...FRESH_SESSION, videoId: null, failedVideoId: videoId });
      throw error;
    };
    if (uploadStatus === 'failed') {
      const detail = MESSAGES.youtubeProcessingFailed(video.status?.failureReason ?? 'unknown');
      return terminal(new PublishError('invalid_media', `${LABEL} failed to process ${videoId}: ${video.status?.failureReason ?? 'unknown'}`, { retryable: false, detail }));
    }
    if (uploadStatus === 'rejected') {
      const detail = MESSAGES.youtubeVideoRejected(video.status?.rejectionReason ?? 'unknown');
      return terminal(new PublishError('rejected', `${LABEL} rejected ${videoId}: ${video.status?.rejectionReason ?? 'unknown'}`, { retryable: false, detail }));
    }
    if (uploadStatus === 'deleted') {
      return terminal(new PublishError('rejected', `${LABEL} video ${videoId} was deleted`, { retryable: false, detail: MESSAGES.youtubeVideoDeleted() }));
    }
    if (processing === 'failed' || processing === 'terminated') {
      const reason = video.processingDetails?.processingFailureReason ?? processing;
      return terminal(new PublishError('invalid_media', `${LABEL} processing of ${videoId} ${processing}: ${reason}`, { retryable: false, detail: MESSAGES.youtubeProcessingFailed(reason) }));
    }
    if (uploadStatus === 'processed') {
      const requested = creds.privacyStatus ?? options.defaultPrivacy;
      const actual = video.status?.privacyStatus;
      if (actual && actual !== requested) {
        // Unaudited API projects get every upload locked private.
        deps.log.warn({ platform: SPEC.id, videoId, requested, actual }, 'youtube kept a different privacy than requested');
      }
      return { status: 'published', remoteId: videoId, url: shortsUrl(deps, videoId) };
    }
    // YouTube's own estimate, when it gives one, bounded so a wild guess neither spins nor stalls.
    const estimate = video.processingDetails?.processingProgress?.timeLeftMs;
    const left = estimate === undefined ? Number.NaN : Number(estimate);
    const checkAfterSeconds = Number.isFinite(left) && left >= 0 ? Math.min(MAX_CHECK_SECONDS, Math.max(options.minCheckSeconds, Math.ceil(left / 1000))) : options.checkAfterSeconds;
    return { status: 'processing', remoteId: videoId, checkAfterSeconds };
  }

  async function publish(input: PublishInput, deps: PlatformDeps): Promise<PublishResult> {
    const creds = parseCredentials(input.credentials);
    const checkpoint = readCheckpoint(input.checkpoint);
    const log = deps.log.child({ platform: SPEC.id, deliveryId: input.deliveryId });
    if (checkpoint.videoId) return videoResult(input, deps, creds, checkpoint.videoId);

    const text = videoText(input.caption);
    if (!hasScope(creds.scope, UPLOAD_SCOPES)) {
      throw new PublishError('auth', `${LABEL} account may not upload.`, { retryable: false, detail: 'the account was linked without permission to upload' });
    }
    const { rendition } = input;
    if (!(rendition.size > 0)) throw new PublishError('invalid_media', `${LABEL}: empty rendition`, { retryable: false, detail: MESSAGES.youtubeProcessingFailed('emptyFile') });

    let sessionUri = checkpoint.sessionUri;
    let offset = 0;
    let video: Video | undefined;
    if (sessionUri !== undefined) {
      try {
        const state = await querySession(deps, creds, sessionUri, checkpoint.sessionSize ?? rendition.size);
        if (state.kind === 'complete') {
          video = state.video;
          log.info({ videoId: video.id }, 'youtube upload had completed before; not uploading again');
        } else if (checkpoint.sessionSha256 === rendition.sha256 && checkpoint.sessionSize === rendition.size) {
          offset = state.offset;
          log.info({ offset, size: rendition.size }, 'youtube resuming upload');
        } else {
          sessionUri = undefined;
        }
      } catch (error) {
        if (!(error instanceof SessionGone)) throw error instanceof PublishError && checkpoint.finalChunkSent ? withOutcomeUnknown(error) : error;
        if (checkpoint.finalChunkSent) return sessionLost(checkpoint, error);
        log.info({ status: error.status }, 'youtube upload session expired; starting over');
        sessionUri = undefined;
      }
    }

    for (let restarted = false; video === undefined; ) {
      if (sessionUri === undefined) {
        sessionUri = await startSession(input, deps, creds, text);
        await input.saveCheckpoint({ ...FRESH_SESSION, sessionUri, sessionSize: rendition.size, sessionSha256: rendition.sha256 });
        deps.crashPoint('youtube.after_session');
        offset = 0;
      }
      try {
        video = await upload(input, deps, creds, sessionUri, offset, log);
      } catch (error) {
        if (!(error instanceof SessionGone)) throw error;
        const current = readCheckpoint(input.checkpoint);
        if (current.finalChunkSent) return sessionLost(current, error);
        if (restarted) throw error;
        restarted = true;
        log.info({ status: error.status }, 'youtube upload session expired mid-upload; starting over');
        sessionUri = undefined;
      }
    }

    await input.saveCheckpoint({ videoId: video.id });
    deps.crashPoint('youtube.after_video_saved');
    log.info({ videoId: video.id, uploadStatus: video.status?.uploadStatus }, 'youtube video uploaded');
    if (video.status?.uploadStatus === 'processed') return { status: 'published', remoteId: video.id, url: shortsUrl(deps, video.id) };
    return { status: 'processing', remoteId: video.id, checkAfterSeconds: options.checkAfterSeconds };
  }

  function sessionLost(checkpoint: YoutubeCheckpoint, error: PublishError): PublishResult {
    return {
      status: 'unconfirmed',
      evidence:
        `The last chunk of the upload was sent${checkpoint.finalChunkSentAt ? ` at ${checkpoint.finalChunkSentAt}` : ''}, ` +
        `but YouTube has since dropped the upload session (HTTP ${error.status ?? '?'}), so it cannot say whether the video was created. ` +
        `Look for it in YouTube Studio before retrying.`,
    };
  }

  async function check(remoteId: string, input: PublishInput, deps: PlatformDeps): Promise<PublishResult> {
    return videoResult(input, deps, parseCredentials(input.credentials), remoteId);
  }

  /** Google checks the token before the scope: a scope refusal proves the login works. */
  const scopeShort: SpecialMap = (status, body) => {
    const { reason } = googleError(body);
    return status === 403 && (reason === 'insufficientPermissions' || reason === 'ACCESS_TOKEN_SCOPE_INSUFFICIENT') ? new ScopeShort(reason) : undefined;
  };

  /**
   * `channels.list?part=id&mine=true`, 1 quota unit. It needs a read scope; an account linked with
   * youtube.upload alone is refused 403 for scope, not 401, so that still counts as a working login.
   */
  async function validate(credentials: Credentials, deps: PlatformDeps): Promise<void> {
    const creds = parseCredentials(credentials);
    const url = new URL(`${urlOf(deps, 'api')}/youtube/v3/channels`);
    url.searchParams.set('part', 'id');
    url.searchParams.set('mine', 'true');
    try {
      await call<unknown>(deps, url.toString(), { method: 'GET', headers: { authorization: `Bearer ${creds.accessToken}` } }, scopeShort, { safeToRepeat: true });
    } catch (error) {
      if (!(error instanceof ScopeShort)) throw error;
    }
  }

  return { spec: SPEC, publish, check, refresh, validate };
}

export const youtube: PlatformAdapter = createYoutubeAdapter();
