/**
 * X (API v2, platform reference §5): chunked media upload (initialize, append segments, finalize,
 * STATUS while X processes the video), then `POST /2/tweets` with the media id.
 *
 * Exactly-once: `POST /2/tweets` has no idempotency key. The media id is saved before any append,
 * and the fact that the create call is about to be sent (with the media it carries) before it is
 * sent. A resumed attempt that finds that mark, or an attempt whose create call got no answer, looks
 * for a post carrying that media on the account's timeline before creating anything: found means
 * published; not found once X has had time to list it means the call never took effect; anything
 * less certain ends as `unconfirmed` rather than a second post.
 *
 * The upload itself is safe to repeat (an unattached media id is invisible and expires), so every
 * upload call is retried freely; appends resume from the last segment saved in the checkpoint.
 *
 * All HTTP goes through `deps.fetch` (via http.ts); twitter-text counts the caption as X does.
 */
import { randomBytes } from 'node:crypto';
import twitterText from 'twitter-text';
import { z } from 'zod';
import { MESSAGES, PublishError, withOutcomeUnknown } from '../../core/errors.ts';
import type { Checkpoint, Credentials, PlatformAdapter, PlatformDeps, PublishInput, PublishResult, RefreshResult } from '../../core/platforms.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';
import { json, requestJson, retryAfterSeconds, streamBody } from './http.ts';
import type { HttpRequest, MapError, RequestOptions } from './http.ts';
import { countsAsFailedLookup, failedLookup } from './lookups.ts';

const SPEC = PLATFORM_SPECS.x;
const LABEL = SPEC.label;
/** X's weighted limit for a post (Premium accounts get more in the apps; the API is built to 280). */
export const X_TEXT_MAX = 280;
/** Refresh when the access token has less than this left, so an upload does not outlive it. */
const REFRESH_MARGIN_MS = 5 * 60_000;
const DEFAULT_WEB_URL = 'https://x.com';
/** `segment_index` runs 0–999. */
const MAX_SEGMENTS = 1000;
/** Scopes every publish needs: upload (media.write), post (tweet.write), and the timeline lookup. */
export const X_REQUIRED_SCOPES = ['tweet.read', 'tweet.write', 'users.read', 'media.write'] as const;
/** A media id closer than this to its expiry is not worth attaching: upload again. */
const MEDIA_EXPIRY_MARGIN_MS = 10 * 60_000;
/** The timeline is searched from this long before the create call, against clock skew. */
const LOOKUP_SKEW_MS = 10 * 60_000;

export interface XOptions {
  /**
   * Bytes per APPEND. The v1.1 rule is ≤ 5 MB per segment and the v2 spec is silent (reference §5,
   * UNCONFIRMED), so the default stays under 5,000,000 by either reading of "MB".
   */
  segmentBytes?: number;
  /**
   * Where STATUS is asked. The official v2 doc uses `GET /2/media/upload?command=STATUS&media_id=`;
   * some clients use `GET /2/media/upload/{id}` (reference §11).
   */
  statusPath?: 'query' | 'path';
  /**
   * How long after an unanswered create call a post missing from the timeline may still be on its
   * way there. Before this, "not found" decides nothing; after it, it means "never created".
   */
  indexGraceSeconds?: number;
  /** Timeline lookups that failed (not a rate limit) for one unanswered create call before giving up as `unconfirmed`. */
  maxLookups?: number;
  /** Timeline pages (100 posts each) read per lookup. */
  lookupPages?: number;
  /** Poll delay when X gives no `check_after_secs`. */
  checkAfterSeconds?: number;
  /** For calls whose body is held in memory. */
  requestTimeoutMs?: number;
  /** For one APPEND; defaults to a minute plus 64 KiB/s for the segment. */
  segmentTimeoutMs?: number;
}

const DEFAULTS = {
  segmentBytes: 4 * 1024 * 1024,
  statusPath: 'query' as 'query' | 'path',
  indexGraceSeconds: 120,
  maxLookups: 4,
  lookupPages: 5,
  checkAfterSeconds: 5,
  requestTimeoutMs: 60_000,
};
const MIN_CHECK_SECONDS = 1;
const MAX_CHECK_SECONDS = 300;

export const xCredentialsSchema = z.object({
  accessToken: z.string().min(1),
  /** Issued only with the `offline.access` scope, which linking always asks for. Rotates on use. */
  refreshToken: z.string().min(1),
  /** When the access token expires (from `expires_in`; 2 h today). */
  expiresAt: z.iso.datetime({ offset: true }),
  /** Space-separated scopes granted, as the token endpoint reports them. */
  scope: z.string(),
  tokenType: z.string().optional(),
  /** The account's numeric user id (GET /2/users/me at linking); looked up when absent. */
  userId: z.string().regex(/^\d{1,19}$/).optional(),
  /** The @handle without @, for post URLs when the account row has none. */
  username: z.string().optional(),
});
export type XCredentials = z.infer<typeof xCredentialsSchema>;

// ---------------------------------------------------------------------------------------------
// Caption

/**
 * Why X would refuse `text`, in plain words, or null when it fits. X weighs characters: links count
 * 23, most emoji and CJK characters 2 (twitter-text is X's own counter). Empty text is fine: a post
 * may be the video alone.
 */
export function xTextProblem(text: string): { detail: string; weightedLength: number } | null {
  if (text === '') return null;
  const parsed = twitterText.parseTweet(text);
  if (parsed.weightedLength > X_TEXT_MAX) {
    return { detail: MESSAGES.captionTooLongWeighted(LABEL, parsed.weightedLength, X_TEXT_MAX), weightedLength: parsed.weightedLength };
  }
  if (!parsed.valid && parsed.weightedLength > 0) return { detail: MESSAGES.xInvalidCharacters(), weightedLength: parsed.weightedLength };
  return null;
}

// ---------------------------------------------------------------------------------------------
// Errors

interface XProblem {
  title: string | undefined;
  type: string | undefined;
  detail: string;
  /** OAuth token-endpoint error code (`invalid_request`, `invalid_grant`, ...). */
  oauthError: string | undefined;
  /** Parameter names the `errors[]` entries point at. */
  parameters: string[];
}

/**
 * Reads the shapes X answers with: problem JSON (`{title, detail, type, status, errors?}`), the
 * OAuth endpoint's `{error, error_description}`, and legacy `{errors: [{code, message}]}`.
 */
function readProblem(body: unknown, status: number): XProblem {
  const parts: string[] = [];
  const parameters: string[] = [];
  let title: string | undefined;
  let type: string | undefined;
  let oauthError: string | undefined;
  if (body && typeof body === 'object') {
    const record = body as Record<string, unknown>;
    if (typeof record.title === 'string') title = record.title;
    if (typeof record.type === 'string') type = record.type;
    if (typeof record.error === 'string') oauthError = record.error;
    if (Array.isArray(record.errors)) {
      for (const entry of record.errors as unknown[]) {
        if (!entry || typeof entry !== 'object') continue;
        const e = entry as Record<string, unknown>;
        if (typeof e.message === 'string') parts.push(e.message);
        else if (typeof e.detail === 'string') parts.push(e.detail);
        if (e.parameters && typeof e.parameters === 'object') parameters.push(...Object.keys(e.parameters));
      }
    }
    for (const key of ['detail', 'error_description', 'reason'] as const) {
      if (typeof record[key] === 'string') parts.push(record[key]);
    }
    if (parts.length === 0 && title) parts.push(title);
    if (parts.length === 0 && oauthError) parts.push(oauthError);
  } else if (typeof body === 'string' && body.trim() !== '') {
    parts.push(body.replace(/\s+/g, ' ').trim());
  }
  const unique = parts.filter((p, i) => p !== '' && parts.indexOf(p) === i);
  let detail = unique.join(': ') || `HTTP ${status}`;
  if (detail.length > 300) detail = `${detail.slice(0, 299)}…`;
  return { title, type, detail, oauthError, parameters };
}

/** X's rate-limit reset is `x-rate-limit-reset` (epoch seconds); Retry-After if it ever sends one. */
export function xRetryAfterSeconds(headers: Headers, nowMs: number): number | undefined {
  const reset = headers.get('x-rate-limit-reset')?.trim();
  if (reset && /^\d+$/.test(reset)) return Math.max(1, Math.ceil(Number(reset) - nowMs / 1000));
  return retryAfterSeconds(headers, nowMs);
}

/** A create call refused because its media id is unknown, expired or not ready: upload again. */
class MediaRefusedError extends PublishError {}

/**
 * Maps a non-2xx answer from X to a PublishError, per the reference: 401 refresh (then re-auth);
 * 403 is the account's or the app's problem, never retried; 429 waits for the reset; 5xx retries.
 */
export function mapXError(status: number, body: unknown, headers: Headers, nowMs: number): PublishError {
  const problem = readProblem(body, status);
  const { detail } = problem;
  const message = `${LABEL} answered ${status}${problem.title ? ` ${problem.title}` : ''}: ${detail}`;
  const type = problem.type ?? '';
  const lower = detail.toLowerCase();
  if (problem.oauthError) {
    // The token endpoint refuses a spent or revoked refresh token with invalid_request ("Value
    // passed for the token was invalid."), not only invalid_grant; neither is cured by retrying.
    if (status >= 500) return new PublishError('unavailable', message, { status, detail, retryable: true });
    if (status === 429) return new PublishError('rate_limited', message, { status, detail, retryable: true, retryAfterSeconds: xRetryAfterSeconds(headers, nowMs) });
    return new PublishError('auth', message, { status, detail, retryable: false });
  }
  if (status === 401) return new PublishError('auth', message, { status, detail, retryable: true });
  if (status === 402) return new PublishError('rejected', message, { status, detail: MESSAGES.xAppLimit(), retryable: false });
  if (status === 429) {
    if (type.endsWith('/usage-capped') || problem.title === 'UsageCapExceeded') {
      return new PublishError('rejected', message, { status, detail: MESSAGES.xAppLimit(), retryable: false });
    }
    return new PublishError('rate_limited', message, { status, detail, retryable: true, retryAfterSeconds: xRetryAfterSeconds(headers, nowMs) });
  }
  if (status === 403) {
    if (lower.includes('duplicate')) return new PublishError('rejected', message, { status, detail: MESSAGES.xDuplicate(), retryable: false });
    if (lower.includes('scope')) return new PublishError('auth', message, { status, detail, retryable: false });
    if (type.endsWith('/client-forbidden') || type.endsWith('/unsupported-authentication') || lower.includes('attached to a project')) {
      return new PublishError('rejected', message, { status, detail: MESSAGES.xAppNotAllowed(), retryable: false });
    }
    return new PublishError('rejected', message, { status, detail: MESSAGES.xForbidden(detail), retryable: false });
  }
  if (status === 413) return new PublishError('invalid_media', message, { status, detail, retryable: false });
  if (status === 400 || status === 422) {
    if (problem.parameters.some((p) => p.startsWith('media')) || /media[ _]?ids?/i.test(detail)) {
      return new MediaRefusedError('invalid_media', message, { status, detail, retryable: false });
    }
    return new PublishError('rejected', message, { status, detail, retryable: false });
  }
  if (status >= 500) return new PublishError('unavailable', message, { status, detail, retryable: true });
  return new PublishError('unknown', message, { status, detail });
}

/** On the upload endpoints a 400 is about the file (size, type, segments): X rejected the video. */
function asMediaError(error: PublishError): PublishError {
  if (error.code !== 'rejected' || error.status !== 400) return error;
  return new PublishError('invalid_media', error.message, { status: error.status, detail: error.detail, retryable: false });
}

// ---------------------------------------------------------------------------------------------
// Responses

const processingInfoSchema = z.object({
  state: z.enum(['pending', 'in_progress', 'succeeded', 'failed']),
  check_after_secs: z.number().optional(),
  progress_percent: z.number().optional(),
  error: z.object({ code: z.number().optional(), name: z.string().optional(), message: z.string().optional() }).optional(),
});
type ProcessingInfo = z.infer<typeof processingInfoSchema>;

const mediaAnswerSchema = z.object({
  data: z.object({
    id: z.string().regex(/^\d+$/),
    media_key: z.string().optional(),
    expires_after_secs: z.number().optional(),
    processing_info: processingInfoSchema.optional(),
  }),
});

const createAnswerSchema = z.object({ data: z.object({ id: z.string().regex(/^\d+$/), text: z.string().optional() }) });

const timelineSchema = z.object({
  data: z
    .array(
      z.object({
        id: z.string(),
        created_at: z.string().optional(),
        attachments: z.object({ media_keys: z.array(z.string()).optional() }).optional(),
      }),
    )
    .optional(),
  meta: z.object({ result_count: z.number().optional(), next_token: z.string().optional() }).optional(),
});

const meSchema = z.object({ data: z.object({ id: z.string().regex(/^\d+$/), username: z.string().optional() }) });

const tokenSchema = z.object({
  access_token: z.string().min(1),
  refresh_token: z.string().min(1).optional(),
  expires_in: z.number().positive(),
  scope: z.string().optional(),
  token_type: z.string().optional(),
});

// ---------------------------------------------------------------------------------------------
// Checkpoint

const mediaCheckpointSchema = z.object({
  id: z.string().regex(/^\d+$/),
  key: z.string().min(1),
  /** The rendition it was uploaded from; a different rendition means a new upload. */
  sha256: z.string(),
  size: z.number().int().positive(),
  /** Fixed for the life of the upload: segment i covers bytes [i * segmentBytes, ...). */
  segmentBytes: z.number().int().positive(),
  segmentsDone: z.number().int().nonnegative(),
  finalized: z.boolean(),
  /** Processing succeeded (or X needed none): the id may be attached to a post. */
  ready: z.boolean(),
  expiresAt: z.iso.datetime({ offset: true }),
});
type MediaCheckpoint = z.infer<typeof mediaCheckpointSchema>;

/** Saved just before `POST /2/tweets`: what to look for if its answer never arrives. */
const createSentSchema = z.object({ at: z.iso.datetime({ offset: true }), mediaId: z.string(), mediaKey: z.string() });
type CreateSent = z.infer<typeof createSentSchema>;

interface XCheckpoint {
  media: MediaCheckpoint | null;
  createSent: CreateSent | null;
  lookups: number;
  tweetId: string | null;
  userId: string | null;
  /** A create call was sent again after a lookup found nothing: a duplicate refusal now means "posted". */
  recreated: boolean;
}

function readCheckpoint(checkpoint: Checkpoint): XCheckpoint {
  const media = mediaCheckpointSchema.safeParse(checkpoint.media);
  const sent = createSentSchema.safeParse(checkpoint.createSent);
  return {
    media: media.success ? media.data : null,
    createSent: sent.success ? sent.data : null,
    lookups: typeof checkpoint.lookups === 'number' ? checkpoint.lookups : 0,
    tweetId: typeof checkpoint.tweetId === 'string' && /^\d+$/.test(checkpoint.tweetId) ? checkpoint.tweetId : null,
    userId: typeof checkpoint.userId === 'string' && /^\d+$/.test(checkpoint.userId) ? checkpoint.userId : null,
    recreated: checkpoint.recreated === true,
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function parseCredentials(credentials: Credentials): XCredentials {
  const parsed = xCredentialsSchema.safeParse(credentials);
  if (!parsed.success) {
    throw new PublishError('auth', `Stored ${LABEL} credentials are incomplete.`, { retryable: false, detail: 'stored credentials are incomplete' });
  }
  return parsed.data;
}

function apiBase(deps: PlatformDeps): string {
  const api = deps.urls.api;
  if (!api) throw new PublishError('unknown', `${LABEL} API URL is not configured (X_API_URL).`, { retryable: false, detail: 'X_API_URL is not configured' });
  return api.replace(/\/+$/, '');
}

function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function clampCheck(seconds: number | undefined, fallback: number): number {
  const value = seconds !== undefined && Number.isFinite(seconds) ? Math.ceil(seconds) : fallback;
  return Math.min(MAX_CHECK_SECONDS, Math.max(MIN_CHECK_SECONDS, value));
}

const HANDLE = /^[A-Za-z0-9_]{1,15}$/;

function postUrl(deps: PlatformDeps, input: PublishInput, creds: XCredentials, tweetId: string): string {
  const web = (deps.urls.web ?? DEFAULT_WEB_URL).replace(/\/+$/, '');
  const handle = [input.account.handle.replace(/^@/, ''), creds.username ?? ''].find((h) => HANDLE.test(h));
  return handle ? `${web}/${handle}/status/${tweetId}` : `${web}/i/web/status/${tweetId}`;
}

/** Bytes of a `multipart/form-data` APPEND body around the segment, built so it can stream. */
function multipartFrame(segmentIndex: number): { boundary: string; head: Buffer; tail: Buffer } {
  const boundary = `reelay-${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="segment_index"\r\n\r\n${segmentIndex}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="media"; filename="segment-${segmentIndex}"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { boundary, head, tail };
}

type Lookup = { kind: 'found'; tweetId: string } | { kind: 'absent' } | { kind: 'incomplete'; pages: number };

/** What `resolveUnsure` concludes when the earlier create call demonstrably did nothing. */
const NOT_POSTED = Symbol('not posted');

// ---------------------------------------------------------------------------------------------
// The adapter

export function createXAdapter(overrides: XOptions = {}): PlatformAdapter {
  const options = { ...DEFAULTS, ...overrides };
  const segmentBytes = Math.floor(options.segmentBytes);
  if (!(segmentBytes >= 1)) throw new RangeError('X segments must be at least 1 byte');
  const segmentTimeoutMs = overrides.segmentTimeoutMs ?? 60_000 + Math.ceil(segmentBytes / 65_536) * 1000;

  function call<T>(deps: PlatformDeps, url: string, init: HttpRequest, requestOptions: RequestOptions, special?: (error: PublishError) => PublishError): Promise<T> {
    const mapError: MapError = (status, body, headers) => {
      const mapped = mapXError(status, body, headers, deps.now());
      return special ? special(mapped) : mapped;
    };
    return requestJson<T>(deps, url, init, mapError, { timeoutMs: options.requestTimeoutMs, ...requestOptions }).then((r) => r.body);
  }

  // ---- refresh ---------------------------------------------------------------------------------

  async function refresh(credentials: Credentials, deps: PlatformDeps, refreshOptions: { force: boolean }): Promise<RefreshResult | null> {
    const creds = parseCredentials(credentials);
    const expiresAt = Date.parse(creds.expiresAt);
    if (!refreshOptions.force && expiresAt - deps.now() > REFRESH_MARGIN_MS) return null;
    const client = deps.oauthClient;
    if (!client) {
      // Not the account's fault, so not 'auth' (which would ask the person to re-link).
      throw new PublishError('unknown', `${LABEL} OAuth client is not configured (X_CLIENT_ID); cannot refresh the token.`, {
        retryable: false,
        detail: 'X_CLIENT_ID is not configured, so the X token cannot be refreshed',
      });
    }
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.refreshToken });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (client.clientSecret) {
      // Confidential clients authenticate with HTTP Basic (RFC 6749 §2.3.1: form-encoded parts).
      const basic = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64');
      headers.authorization = `Basic ${basic}`;
    } else {
      form.set('client_id', client.clientId);
    }
    // Not safe to repeat: X rotates the refresh token, so a lost answer may have spent ours.
    const body = await call<unknown>(deps, `${apiBase(deps)}/2/oauth2/token`, { method: 'POST', headers, body: form.toString() }, {}, (mapped) =>
      // A refusal here is never cured by refreshing again.
      mapped.code === 'auth' && mapped.retryable ? new PublishError('auth', mapped.message, { status: mapped.status, detail: mapped.detail, retryable: false }) : mapped,
    );
    const parsed = tokenSchema.safeParse(body);
    if (!parsed.success) {
      throw new PublishError('unknown', `${LABEL} answered the token refresh with an unexpected body.`, { retryable: true, outcomeUnknown: true, detail: 'unexpected token answer' });
    }
    const token = parsed.data;
    const nextExpiry = new Date(deps.now() + token.expires_in * 1000);
    const next: XCredentials = {
      ...creds,
      accessToken: token.access_token,
      refreshToken: token.refresh_token ?? creds.refreshToken,
      expiresAt: nextExpiry.toISOString(),
      scope: token.scope ?? creds.scope,
    };
    if (token.token_type) next.tokenType = token.token_type;
    deps.log.info({ platform: SPEC.id, rotated: token.refresh_token !== undefined && token.refresh_token !== creds.refreshToken }, 'x token refreshed');
    return { credentials: next, expiresAt: nextExpiry };
  }

  // ---- one publish run ---------------------------------------------------------------------------

  interface Run {
    input: PublishInput;
    deps: PlatformDeps;
    creds: XCredentials;
    api: string;
    auth: Record<string, string>;
    cp: XCheckpoint;
    log: PlatformDeps['log'];
  }

  async function save(run: Run, patch: Partial<XCheckpoint>): Promise<void> {
    Object.assign(run.cp, patch);
    await run.input.saveCheckpoint(patch as Checkpoint);
  }

  function published(run: Run, tweetId: string): PublishResult {
    return { status: 'published', remoteId: tweetId, url: postUrl(run.deps, run.input, run.creds, tweetId) };
  }

  // ---- media upload ------------------------------------------------------------------------------

  async function initialize(run: Run): Promise<MediaCheckpoint> {
    const { rendition } = run.input;
    const body = await call<unknown>(
      run.deps,
      `${run.api}/2/media/upload/initialize`,
      {
        method: 'POST',
        headers: run.auth,
        body: json({ media_type: 'video/mp4', total_bytes: rendition.size, media_category: 'tweet_video' }),
      },
      // An unused media id is invisible to everyone and expires on its own.
      { safeToRepeat: true, repeatable: true },
      asMediaError,
    );
    const parsed = mediaAnswerSchema.safeParse(body);
    if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered initialize without a media id.`, { retryable: true, detail: 'unexpected initialize answer' });
    const { id, media_key, expires_after_secs } = parsed.data.data;
    const media: MediaCheckpoint = {
      id,
      key: media_key ?? `7_${id}`,
      sha256: rendition.sha256,
      size: rendition.size,
      segmentBytes,
      segmentsDone: 0,
      finalized: false,
      ready: false,
      expiresAt: new Date(run.deps.now() + (expires_after_secs ?? 24 * 3600) * 1000).toISOString(),
    };
    await save(run, { media });
    run.log.info({ mediaId: id, size: rendition.size }, 'x media upload initialized');
    return media;
  }

  async function append(run: Run, media: MediaCheckpoint, index: number): Promise<void> {
    const start = index * media.segmentBytes;
    const end = Math.min(media.size, start + media.segmentBytes) - 1;
    const { boundary, head, tail } = multipartFrame(index);
    const file = await run.input.rendition.open({ start, end });
    async function* frame(): AsyncGenerator<Uint8Array> {
      yield head;
      for await (const chunk of file) yield chunk;
      yield tail;
    }
    const closable = file as { destroy?: (error?: Error) => void };
    const source = { [Symbol.asyncIterator]: frame, destroy: (error?: Error) => closable.destroy?.(error) };
    await call<unknown>(
      run.deps,
      `${run.api}/2/media/upload/${media.id}/append`,
      {
        method: 'POST',
        headers: { ...run.auth, 'content-type': `multipart/form-data; boundary=${boundary}` },
        body: streamBody(source, head.length + (end - start + 1) + tail.length),
      },
      { safeToRepeat: true, response: 'none', timeoutMs: segmentTimeoutMs },
      asMediaError,
    );
  }

  async function finalize(run: Run, media: MediaCheckpoint): Promise<ProcessingInfo | undefined> {
    const body = await call<unknown>(run.deps, `${run.api}/2/media/upload/${media.id}/finalize`, { method: 'POST', headers: run.auth }, { safeToRepeat: true }, asMediaError);
    const parsed = mediaAnswerSchema.safeParse(body);
    if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered finalize with an unexpected body.`, { retryable: true, detail: 'unexpected finalize answer' });
    return parsed.data.data.processing_info;
  }

  async function status(run: Run, mediaId: string): Promise<ProcessingInfo | undefined> {
    const url =
      options.statusPath === 'path'
        ? `${run.api}/2/media/upload/${mediaId}`
        : `${run.api}/2/media/upload?command=STATUS&media_id=${encodeURIComponent(mediaId)}`;
    const body = await call<unknown>(run.deps, url, { method: 'GET', headers: run.auth }, { safeToRepeat: true });
    const parsed = mediaAnswerSchema.safeParse(body);
    if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered STATUS with an unexpected body.`, { retryable: true, detail: 'unexpected STATUS answer' });
    return parsed.data.data.processing_info;
  }

  function processingFailed(info: ProcessingInfo): PublishError {
    const reason = [info.error?.name, info.error?.message].filter(Boolean).join(': ') || 'no reason given';
    return new PublishError('invalid_media', `${LABEL} could not process the video: ${reason}`, { retryable: false, detail: MESSAGES.xProcessingFailed(reason) });
  }

  type MediaStep = { kind: 'ready'; media: MediaCheckpoint } | { kind: 'processing'; media: MediaCheckpoint; checkAfterSeconds: number };

  /** Applies a processing answer to the checkpointed media. */
  async function afterProcessing(run: Run, media: MediaCheckpoint, info: ProcessingInfo | undefined): Promise<MediaStep> {
    if (!info || info.state === 'succeeded') {
      const ready = { ...media, finalized: true, ready: true };
      await save(run, { media: ready });
      return { kind: 'ready', media: ready };
    }
    if (info.state === 'failed') {
      await save(run, { media: null });
      throw processingFailed(info);
    }
    if (!media.finalized) await save(run, { media: { ...media, finalized: true } });
    return { kind: 'processing', media: { ...media, finalized: true }, checkAfterSeconds: clampCheck(info.check_after_secs, options.checkAfterSeconds) };
  }

  /**
   * Brings the rendition's media to "ready" or "processing": uploads it, resumes an upload from the
   * checkpoint, or asks STATUS once for a finalized one. A resumed media X no longer knows (expired,
   * or an id from an attempt long ago) is uploaded again from the start, once.
   */
  async function prepareMedia(run: Run): Promise<MediaStep> {
    const { rendition } = run.input;
    let media = run.cp.media;
    if (
      media &&
      (media.sha256 !== rendition.sha256 || media.size !== rendition.size || Date.parse(media.expiresAt) - run.deps.now() < MEDIA_EXPIRY_MARGIN_MS)
    ) {
      run.log.info({ mediaId: media.id }, 'x media in the checkpoint is stale; uploading again');
      media = null;
    }
    let resumed = media !== null;
    for (;;) {
      try {
        if (!media) media = await initialize(run);
        if (media.ready) return { kind: 'ready', media };
        if (media.finalized) return await afterProcessing(run, media, await status(run, media.id));
        const segments = Math.ceil(media.size / media.segmentBytes);
        for (let index = media.segmentsDone; index < segments; index++) {
          await append(run, media, index);
          media = { ...media, segmentsDone: index + 1 };
          await save(run, { media });
        }
        let info: ProcessingInfo | undefined;
        try {
          info = await finalize(run, media);
        } catch (error) {
          // A finalize whose answer was lost was still done: X refuses a second one. Ask STATUS.
          if (!(resumed && error instanceof PublishError && !error.retryable && error.code !== 'auth')) throw error;
          info = await status(run, media.id);
          if (!info) throw error;
        }
        const step = await afterProcessing(run, media, info);
        run.deps.crashPoint('x.after_upload');
        run.log.info({ mediaId: media.id, state: info?.state ?? 'ready' }, 'x media uploaded');
        return step;
      } catch (error) {
        // X answers 400 for a media id it does not know (expired, or never finished).
        const gone = resumed && error instanceof PublishError && error.status === 400;
        if (!gone) throw error;
        run.log.info({ mediaId: media?.id, detail: error instanceof PublishError ? error.detail : undefined }, 'x no longer knows the saved media; uploading again');
        await save(run, { media: null });
        media = null;
        resumed = false;
      }
    }
  }

  // ---- finding a post on the timeline ------------------------------------------------------------

  async function userIdOf(run: Run): Promise<string> {
    const known = run.cp.userId ?? run.creds.userId ?? (run.input.account.remoteId && /^\d+$/.test(run.input.account.remoteId) ? run.input.account.remoteId : null);
    if (known) return known;
    const body = await call<unknown>(run.deps, `${run.api}/2/users/me`, { method: 'GET', headers: run.auth }, { safeToRepeat: true });
    const parsed = meSchema.safeParse(body);
    if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered /2/users/me with an unexpected body.`, { retryable: true, detail: 'unexpected users/me answer' });
    await save(run, { userId: parsed.data.data.id });
    return parsed.data.data.id;
  }

  /** Reads the account's posts since the create call, looking for one that carries the media. */
  async function lookForPost(run: Run, sent: CreateSent): Promise<Lookup> {
    const userId = await userIdOf(run);
    let token: string | undefined;
    for (let page = 1; page <= options.lookupPages; page++) {
      const url = new URL(`${run.api}/2/users/${userId}/tweets`);
      url.searchParams.set('max_results', '100');
      url.searchParams.set('start_time', isoSeconds(Date.parse(sent.at) - LOOKUP_SKEW_MS));
      url.searchParams.set('tweet.fields', 'attachments,created_at');
      url.searchParams.set('expansions', 'attachments.media_keys');
      if (token) url.searchParams.set('pagination_token', token);
      const body = await call<unknown>(run.deps, url.toString(), { method: 'GET', headers: run.auth }, { safeToRepeat: true });
      const parsed = timelineSchema.safeParse(body);
      // X answers 200 with only `errors` (no `meta`) for a user it cannot find: that decides nothing.
      if (!parsed.success || !parsed.data.meta) throw new PublishError('unknown', `${LABEL} answered the timeline lookup with an unexpected body.`, { retryable: true, detail: 'unexpected timeline answer' });
      for (const post of parsed.data.data ?? []) {
        const keys = post.attachments?.media_keys ?? [];
        if (keys.some((key) => key === sent.mediaKey || key.endsWith(`_${sent.mediaId}`))) return { kind: 'found', tweetId: post.id };
      }
      token = parsed.data.meta?.next_token;
      if (!token) return { kind: 'absent' };
    }
    return { kind: 'incomplete', pages: options.lookupPages };
  }

  function unconfirmed(sent: CreateSent, why: string): PublishResult {
    return {
      status: 'unconfirmed',
      evidence: `The post (with X media ${sent.mediaId}) was sent at ${sent.at.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC')} and X's answer never arrived; ${why}`,
    };
  }

  /**
   * An earlier create call may or may not have posted. Asks the timeline; returns the post, NOT_POSTED
   * when it demonstrably never happened, or `unconfirmed`. Throws (retryable, outcome unknown) to ask
   * again later while that can still settle it.
   */
  async function resolveUnsure(run: Run, sent: CreateSent): Promise<PublishResult | typeof NOT_POSTED> {
    let found: Lookup;
    try {
      found = await lookForPost(run, sent);
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      await failedLookup(error, run.cp.lookups, options.maxLookups, (lookups) => save(run, { lookups }));
      return unconfirmed(sent, `looking for it on the account's timeline failed (${error.detail}).`);
    }
    if (found.kind === 'found') {
      run.log.info({ tweetId: found.tweetId, mediaId: sent.mediaId }, 'x post found on the timeline; not posting again');
      await save(run, { tweetId: found.tweetId, createSent: null });
      return published(run, found.tweetId);
    }
    if (found.kind === 'incomplete') {
      return unconfirmed(sent, `the account posted more than ${found.pages * 100} times since, too many to check.`);
    }
    const waitedMs = run.deps.now() - Date.parse(sent.at);
    const graceMs = options.indexGraceSeconds * 1000;
    if (waitedMs < graceMs) {
      // Not listed yet decides nothing before the grace period ends; the next look, after it, does.
      throw new PublishError('unknown', `${LABEL} does not list the post yet; asking again once it has had time to.`, {
        retryable: true,
        outcomeUnknown: true,
        retryAfterSeconds: Math.max(1, Math.ceil((graceMs - waitedMs) / 1000)),
        detail: 'waiting for X to list the post before deciding whether it went out',
      });
    }
    run.log.warn({ mediaId: sent.mediaId, waitedSeconds: Math.round(waitedMs / 1000) }, 'x post not on the timeline after the grace period; the create call never took effect');
    await save(run, { createSent: null, lookups: 0, recreated: true });
    return NOT_POSTED;
  }

  // ---- creating the post -------------------------------------------------------------------------

  async function createPost(run: Run, media: MediaCheckpoint, text: string): Promise<PublishResult> {
    const sent: CreateSent = { at: new Date(run.deps.now()).toISOString(), mediaId: media.id, mediaKey: media.key };
    await save(run, { createSent: sent, lookups: 0 });
    const payload: Record<string, unknown> = { media: { media_ids: [media.id] } };
    if (text !== '') payload.text = text;
    let body: unknown;
    try {
      body = await call<unknown>(run.deps, `${run.api}/2/tweets`, { method: 'POST', headers: run.auth, body: json(payload) }, {}, (mapped) =>
        // A 5xx may hide a post that was created.
        mapped.status !== undefined && mapped.status >= 500 ? withOutcomeUnknown(mapped) : mapped,
      );
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      if (error.outcomeUnknown) {
        // Usually X lists a new post at once: asking now often settles it within this attempt.
        const found = await lookForPost(run, sent).catch(async (lookupError: unknown) => {
          if (countsAsFailedLookup(lookupError)) await save(run, { lookups: run.cp.lookups + 1 });
          return null;
        });
        if (found?.kind === 'found') {
          run.log.info({ tweetId: found.tweetId }, 'x create call got no answer but the post exists');
          await save(run, { tweetId: found.tweetId, createSent: null });
          return published(run, found.tweetId);
        }
        throw error;
      }
      // A definite refusal: nothing was posted.
      await save(run, { createSent: null });
      if (run.cp.recreated && error.detail === MESSAGES.xDuplicate()) {
        // The one thing that makes X call this text a duplicate is the post we could not find.
        return unconfirmed(sent, 'the timeline did not show it, but X now refuses the same text as a duplicate, so it most likely went out.');
      }
      throw error;
    }
    run.deps.crashPoint('x.after_create');
    const parsed = createAnswerSchema.safeParse(body);
    if (!parsed.success) {
      throw new PublishError('unknown', `${LABEL} created a post but answered without its id.`, { retryable: true, outcomeUnknown: true, detail: 'post created; id missing' });
    }
    const tweetId = parsed.data.data.id;
    await save(run, { tweetId, createSent: null });
    run.log.info({ tweetId, mediaId: media.id }, 'x post created');
    return published(run, tweetId);
  }

  // ---- publish / check -----------------------------------------------------------------------------

  async function advance(input: PublishInput, deps: PlatformDeps): Promise<PublishResult> {
    const creds = parseCredentials(input.credentials);
    // Refusals that need no network come first: nothing is uploaded for a post X would refuse.
    const problem = xTextProblem(input.caption);
    if (problem) throw new PublishError('rejected', problem.detail, { retryable: false, detail: problem.detail });
    const granted = new Set(creds.scope.split(/\s+/).filter(Boolean));
    const missing = X_REQUIRED_SCOPES.filter((s) => !granted.has(s));
    if (missing.length > 0) {
      throw new PublishError('auth', `${LABEL} token lacks scopes: ${missing.join(' ')}`, { retryable: false, detail: MESSAGES.xMissingScopes(missing.join(', ')) });
    }
    const { rendition } = input;
    const video = SPEC.video;
    if (rendition.size > video.maxBytes) {
      const detail = MESSAGES.videoTooBig(LABEL, rendition.size, video.maxBytes);
      throw new PublishError('invalid_media', detail, { retryable: false, detail });
    }
    if (rendition.size <= 0 || Math.ceil(rendition.size / segmentBytes) > MAX_SEGMENTS) {
      throw new PublishError('invalid_media', `${LABEL}: ${rendition.size} bytes do not fit ${MAX_SEGMENTS} segments`, { retryable: false, detail: 'the file is empty or too large to upload' });
    }
    if (rendition.durationSeconds > 0 && rendition.durationSeconds > video.maxDurationSeconds) {
      const detail = MESSAGES.videoTooLong(LABEL, rendition.durationSeconds, video.maxDurationSeconds);
      throw new PublishError('invalid_media', detail, { retryable: false, detail });
    }
    if (rendition.durationSeconds > 0 && rendition.durationSeconds < video.minDurationSeconds) {
      const detail = MESSAGES.videoTooShort(LABEL, rendition.durationSeconds, video.minDurationSeconds);
      throw new PublishError('invalid_media', detail, { retryable: false, detail });
    }

    const run: Run = {
      input,
      deps,
      creds,
      api: apiBase(deps),
      auth: { authorization: `Bearer ${creds.accessToken}` },
      cp: readCheckpoint(input.checkpoint),
      log: deps.log.child({ platform: SPEC.id, deliveryId: input.deliveryId }),
    };

    if (run.cp.tweetId) return published(run, run.cp.tweetId);
    if (run.cp.createSent) {
      const resolved = await resolveUnsure(run, run.cp.createSent);
      if (resolved !== NOT_POSTED) return resolved;
    }

    let reuploaded = false;
    for (;;) {
      const step = await prepareMedia(run);
      if (step.kind === 'processing') {
        run.log.info({ mediaId: step.media.id, checkAfterSeconds: step.checkAfterSeconds }, 'x is processing the video');
        return { status: 'processing', remoteId: step.media.id, checkAfterSeconds: step.checkAfterSeconds };
      }
      try {
        return await createPost(run, step.media, input.caption);
      } catch (error) {
        // The media expired or X forgot it between upload and post: upload once more.
        if (error instanceof MediaRefusedError && !reuploaded) {
          reuploaded = true;
          run.log.info({ mediaId: step.media.id, detail: error.detail }, 'x refused the media id; uploading again');
          await save(run, { media: null });
          continue;
        }
        throw error;
      }
    }
  }

  return {
    spec: SPEC,
    publish: advance,
    /**
     * `remoteId` is the media id while X processes the video. One STATUS call while it is still
     * processing; once it succeeded, this creates the post (exactly once, as publish does), because
     * on X the post can only be created after processing.
     */
    check: (_remoteId, input, deps) => advance(input, deps),
    refresh,
    /** GET /2/users/me: the cheapest read that needs the user's token (users.read). */
    validate: async (credentials, deps) => {
      const creds = parseCredentials(credentials);
      await call<unknown>(deps, `${apiBase(deps)}/2/users/me`, { method: 'GET', headers: { authorization: `Bearer ${creds.accessToken}` } }, { safeToRepeat: true });
    },
  };
}

export const x: PlatformAdapter = createXAdapter();
