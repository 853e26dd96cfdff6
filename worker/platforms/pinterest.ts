/**
 * Pinterest (API v5 video Pin, platform reference §7): register the media (`POST /v5/media`),
 * upload the file to the returned S3 form (`multipart/form-data`, every policy field first, the
 * file last), poll `GET /v5/media/{id}` until `succeeded`, then `POST /v5/pins` on the board chosen
 * at link time.
 *
 * Exactly-once: `POST /v5/pins` has no idempotency key. The media id is saved before the upload, and
 * the fact that the create call is about to be sent (with a fingerprint of its title and
 * description) before it is sent. A resumed attempt that finds that mark, or an attempt whose create
 * call got no answer, reads the board's newest Pins for one made since then with that text before
 * creating anything. Pins do not say which media id they were made from, so the text, the time and
 * the media type are what identify ours. Found means published; not found once Pinterest has had
 * time to list it means the call never took effect; anything less certain ends as `unconfirmed`.
 *
 * Registering and uploading media is safe to repeat: media not attached to a Pin is invisible. A
 * saved media id whose upload never landed (Pinterest still says `registered`) is replaced by a new
 * registration rather than re-uploaded, because the S3 form it came with may have expired and is
 * not kept (it carries a security token).
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { captionProblem } from '../../core/captions.ts';
import { MESSAGES, PublishError, withOutcomeUnknown } from '../../core/errors.ts';
import type { Checkpoint, Credentials, PlatformAdapter, PlatformDeps, PublishInput, PublishResult, RefreshResult } from '../../core/platforms.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';
import { json, requestJson, streamBody } from './http.ts';
import type { HttpRequest, MapError, RequestOptions } from './http.ts';
import { countsAsFailedLookup, failedLookup } from './lookups.ts';

const SPEC = PLATFORM_SPECS.pinterest;
const LABEL = SPEC.label;
export const PINTEREST_TITLE_MAX = 100;
export const PINTEREST_DESCRIPTION_MAX = SPEC.caption.maxLength;
/** Refresh when the access token has less than this left, so an upload does not outlive it. */
const REFRESH_MARGIN_MS = 5 * 60_000;
const DEFAULT_WEB_URL = 'https://www.pinterest.com';
/** Media upload and Pin creation need pins:write; the media status and board listing need the reads. */
export const PINTEREST_REQUIRED_SCOPES = ['boards:read', 'pins:read', 'pins:write'] as const;
/**
 * The board is searched from this long before the create call, against clock skew. Kept short: an
 * older Pin with the same text (the same caption pinned twice) must not pass for ours.
 */
const LOOKUP_SKEW_MS = 2 * 60_000;
const MIN_CHECK_SECONDS = 1;
const MAX_CHECK_SECONDS = 300;

export interface PinterestOptions {
  /**
   * `media_source.cover_image_key_frame_time` (the reference does not state the unit; the brief's
   * example is milliseconds). Extracting a frame with ffmpeg and sending `cover_image_data` instead
   * is not implemented.
   */
  coverKeyFrameTime?: number;
  /** Poll delay while Pinterest processes the video (it gives no hint of its own). */
  checkAfterSeconds?: number;
  /** How long after an unanswered create call a Pin missing from the board may still be on its way. */
  indexGraceSeconds?: number;
  /** Board lookups that failed (not a rate limit) for one unanswered create call before giving up as `unconfirmed`. */
  maxLookups?: number;
  /** Board pages read per lookup. */
  lookupPages?: number;
  /** Pins per board page (the API allows up to 250). */
  lookupPageSize?: number;
  /**
   * Apps created before 2025-09-25 must ask for continuous refresh tokens explicitly (reference §7);
   * newer apps get them anyway.
   */
  continuousRefresh?: boolean;
  /** For calls whose body is held in memory. */
  requestTimeoutMs?: number;
}

const DEFAULTS = {
  coverKeyFrameTime: 1000,
  checkAfterSeconds: 5,
  indexGraceSeconds: 120,
  maxLookups: 4,
  lookupPages: 4,
  lookupPageSize: 50,
  continuousRefresh: true,
  requestTimeoutMs: 60_000,
};

export const pinterestCredentialsSchema = z.object({
  accessToken: z.string().min(1),
  /** Continuous: every refresh returns a new one (60 days), which must be stored. */
  refreshToken: z.string().min(1),
  /** When the access token expires (from `expires_in`). */
  expiresAt: z.iso.datetime({ offset: true }),
  /** Granted scopes as the token endpoint reports them (comma-separated). */
  scope: z.string(),
  refreshTokenExpiresAt: z.iso.datetime({ offset: true }).optional(),
  /** The board chosen at link time; Pins go there unless a post names another (not wired yet). */
  boardId: z.string().regex(/^\d{1,25}$/).optional(),
  boardName: z.string().optional(),
  /** The Pinterest username, for display only. */
  username: z.string().optional(),
});
export type PinterestCredentials = z.infer<typeof pinterestCredentialsSchema>;

// ---------------------------------------------------------------------------------------------
// Text

/** The Pin's title: the caption's first non-empty line, cut to 100 characters (code points). */
export function pinterestTitle(caption: string): string {
  const line = caption.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '') ?? '';
  return Array.from(line).slice(0, PINTEREST_TITLE_MAX).join('').trim();
}

// ---------------------------------------------------------------------------------------------
// Errors

function readBody(body: unknown, status: number): { code: number | undefined; detail: string; oauthError: string | undefined } {
  let code: number | undefined;
  let oauthError: string | undefined;
  const parts: string[] = [];
  if (body && typeof body === 'object') {
    const record = body as Record<string, unknown>;
    if (typeof record.code === 'number') code = record.code;
    if (typeof record.error === 'string') oauthError = record.error;
    for (const key of ['message', 'error_description', 'error'] as const) {
      const value = record[key];
      if (typeof value === 'string' && value !== '' && !parts.includes(value)) parts.push(value);
    }
  } else if (typeof body === 'string' && body.trim() !== '') {
    parts.push(body.replace(/\s+/g, ' ').trim());
  }
  let detail = parts.join(': ') || `HTTP ${status}`;
  if (detail.length > 300) detail = `${detail.slice(0, 299)}…`;
  return { code, detail, oauthError };
}

/**
 * Maps a non-2xx answer from the Pinterest API (`{code, message}`) to a PublishError, per the
 * reference: 401 refresh (then re-auth); 403 (code 29: board not owned, Trial limits, scopes) is
 * the account's or the app's problem; 429 waits; 400 is the input; 5xx retries.
 */
export function mapPinterestError(status: number, body: unknown): PublishError {
  const { code, detail } = readBody(body, status);
  const message = `${LABEL} answered ${status}${code !== undefined ? ` (code ${code})` : ''}: ${detail}`;
  const lower = detail.toLowerCase();
  // A missing scope is not cured by a refresh: the person must link again and grant it.
  if ((status === 401 || status === 403) && lower.includes('scope')) {
    return new PublishError('auth', message, { status, detail: MESSAGES.pinterestMissingScopes(PINTEREST_REQUIRED_SCOPES.join(', ')), retryable: false });
  }
  if (status === 401) return new PublishError('auth', message, { status, detail, retryable: true });
  if (status === 429) return new PublishError('rate_limited', message, { status, detail, retryable: true });
  if (status === 403) return new PublishError('rejected', message, { status, detail: MESSAGES.pinterestForbidden(detail), retryable: false });
  if (status === 413) return new PublishError('invalid_media', message, { status, detail, retryable: false });
  if (status === 400 || status === 404 || status === 409 || status === 422) return new PublishError('rejected', message, { status, detail, retryable: false });
  if (status >= 500) return new PublishError('unavailable', message, { status, detail, retryable: true });
  return new PublishError('unknown', message, { status, detail });
}

/** The token endpoint: a refusal is never cured by refreshing again. */
function mapTokenError(status: number, body: unknown): PublishError {
  const mapped = mapPinterestError(status, body);
  if (status >= 400 && status < 500 && status !== 429) {
    return new PublishError('auth', mapped.message, { status, detail: mapped.detail, retryable: false });
  }
  return mapped;
}

/** S3 answers the upload with XML `<Error><Code>…</Code><Message>…</Message></Error>`. */
export function mapUploadError(status: number, body: unknown): PublishError {
  const text = typeof body === 'string' ? body : JSON.stringify(body ?? '');
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? '';
  const msg = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? '';
  const detail = [code, msg].filter(Boolean).join(': ') || `HTTP ${status}`;
  const message = `${LABEL} media upload answered ${status}: ${detail}`;
  if (code === 'EntityTooLarge' || code === 'EntityTooSmall' || status === 413) {
    return new PublishError('invalid_media', message, { status, detail: code === 'EntityTooSmall' ? 'the file is too small' : 'the file is too large', retryable: false });
  }
  if (status >= 500) return new PublishError('unavailable', message, { status, detail, retryable: true });
  // An expired or refused S3 form (403 AccessDenied): the next attempt registers the media again.
  return new PublishError('unknown', message, { status, detail, retryable: true });
}

// ---------------------------------------------------------------------------------------------
// Responses

const registerSchema = z.object({
  media_id: z.string().min(1),
  upload_url: z.url(),
  upload_parameters: z.record(z.string(), z.string()),
});

const mediaStatusSchema = z.object({
  media_id: z.string().optional(),
  status: z.enum(['registered', 'processing', 'succeeded', 'failed']),
});

const pinSchema = z.object({ id: z.string().regex(/^\d+$/) });

const boardsSchema = z.object({ items: z.array(z.object({ id: z.string(), name: z.string() })) });

const boardPinsSchema = z.object({
  items: z.array(
    z.object({
      id: z.string(),
      created_at: z.string().optional(),
      title: z.string().nullable().optional(),
      description: z.string().nullable().optional(),
      media: z.object({ media_type: z.string().optional() }).nullable().optional(),
    }),
  ),
  bookmark: z.string().nullable().optional(),
});

const tokenSchema = z.object({
  access_token: z.string().min(1),
  refresh_token: z.string().min(1).optional(),
  expires_in: z.number().positive(),
  scope: z.string().optional(),
  refresh_token_expires_in: z.number().positive().optional(),
});

// ---------------------------------------------------------------------------------------------
// Checkpoint

const mediaCheckpointSchema = z.object({
  id: z.string().min(1),
  /** The rendition it was uploaded from; a different rendition means a new upload. */
  sha256: z.string(),
  size: z.number().int().positive(),
  uploaded: z.boolean(),
  ready: z.boolean(),
});
type MediaCheckpoint = z.infer<typeof mediaCheckpointSchema>;

/** Saved just before `POST /v5/pins`: what to look for if its answer never arrives. */
const createSentSchema = z.object({
  at: z.iso.datetime({ offset: true }),
  mediaId: z.string(),
  boardId: z.string(),
  /** sha256 of title NUL description, as sent. */
  fingerprint: z.string(),
});
type CreateSent = z.infer<typeof createSentSchema>;

interface PinterestCheckpoint {
  media: MediaCheckpoint | null;
  createSent: CreateSent | null;
  lookups: number;
  pinId: string | null;
}

function readCheckpoint(checkpoint: Checkpoint): PinterestCheckpoint {
  const media = mediaCheckpointSchema.safeParse(checkpoint.media);
  const sent = createSentSchema.safeParse(checkpoint.createSent);
  return {
    media: media.success ? media.data : null,
    createSent: sent.success ? sent.data : null,
    lookups: typeof checkpoint.lookups === 'number' ? checkpoint.lookups : 0,
    pinId: typeof checkpoint.pinId === 'string' && /^\d+$/.test(checkpoint.pinId) ? checkpoint.pinId : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function parseCredentials(credentials: Credentials): PinterestCredentials {
  const parsed = pinterestCredentialsSchema.safeParse(credentials);
  if (!parsed.success) {
    throw new PublishError('auth', `Stored ${LABEL} credentials are incomplete.`, { retryable: false, detail: 'stored credentials are incomplete' });
  }
  return parsed.data;
}

function apiBase(deps: PlatformDeps): string {
  const api = deps.urls.api;
  if (!api) throw new PublishError('unknown', `${LABEL} API URL is not configured (PINTEREST_API_URL).`, { retryable: false, detail: 'PINTEREST_API_URL is not configured' });
  return `${api.replace(/\/+$/, '')}/v5`;
}

function fingerprint(title: string, description: string): string {
  return createHash('sha256').update(`${title}\0${description}`).digest('hex');
}

/** Pinterest writes `created_at` without a zone ("2026-11-22T06:00:00"); it is UTC. */
function parsePinTime(value: string | undefined): number {
  if (!value) return Number.NaN;
  return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`);
}

function clampCheck(seconds: number): number {
  return Math.min(MAX_CHECK_SECONDS, Math.max(MIN_CHECK_SECONDS, Math.ceil(seconds)));
}

/** The S3 POST form: every policy field in the order issued, then the file, streamed. */
function multipartFrame(fields: Record<string, string>, contentType: string): { boundary: string; head: Buffer; tail: Buffer } {
  const boundary = `reelay-${randomBytes(12).toString('hex')}`;
  let head = '';
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${name.replace(/"/g, '%22')}"\r\n\r\n${value}\r\n`;
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="video.mp4"\r\nContent-Type: ${contentType}\r\n\r\n`;
  return { boundary, head: Buffer.from(head), tail: Buffer.from(`\r\n--${boundary}--\r\n`) };
}

type Lookup = { kind: 'found'; pinId: string } | { kind: 'absent' } | { kind: 'incomplete'; pages: number };
const NOT_POSTED = Symbol('not posted');

// ---------------------------------------------------------------------------------------------
// The adapter

export function createPinterestAdapter(overrides: PinterestOptions = {}): PlatformAdapter {
  const options = { ...DEFAULTS, ...overrides };

  function call<T>(deps: PlatformDeps, url: string, init: HttpRequest, requestOptions: RequestOptions, mapError: MapError = mapPinterestError): Promise<T> {
    return requestJson<T>(deps, url, init, mapError, { timeoutMs: options.requestTimeoutMs, ...requestOptions }).then((r) => r.body);
  }

  // ---- refresh ---------------------------------------------------------------------------------

  async function refresh(credentials: Credentials, deps: PlatformDeps, refreshOptions: { force: boolean }): Promise<RefreshResult | null> {
    const creds = parseCredentials(credentials);
    if (!refreshOptions.force && Date.parse(creds.expiresAt) - deps.now() > REFRESH_MARGIN_MS) return null;
    const client = deps.oauthClient;
    if (!client) {
      // Not the account's fault, so not 'auth' (which would ask the person to re-link).
      throw new PublishError('unknown', `${LABEL} OAuth client is not configured (PINTEREST_CLIENT_ID); cannot refresh the token.`, {
        retryable: false,
        detail: 'PINTEREST_CLIENT_ID and PINTEREST_CLIENT_SECRET are not configured, so the Pinterest token cannot be refreshed',
      });
    }
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.refreshToken });
    if (options.continuousRefresh) form.set('continuous_refresh', 'true');
    const basic = Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64');
    // Not safe to repeat: the refresh token rotates, so a lost answer may have spent ours.
    const body = await call<unknown>(
      deps,
      `${apiBase(deps)}/oauth/token`,
      { method: 'POST', headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() },
      {},
      mapTokenError,
    );
    const parsed = tokenSchema.safeParse(body);
    if (!parsed.success) {
      throw new PublishError('unknown', `${LABEL} answered the token refresh with an unexpected body.`, { retryable: true, outcomeUnknown: true, detail: 'unexpected token answer' });
    }
    const token = parsed.data;
    const nextExpiry = new Date(deps.now() + token.expires_in * 1000);
    const next: PinterestCredentials = {
      ...creds,
      accessToken: token.access_token,
      refreshToken: token.refresh_token ?? creds.refreshToken,
      expiresAt: nextExpiry.toISOString(),
      scope: token.scope ?? creds.scope,
    };
    if (token.refresh_token_expires_in) next.refreshTokenExpiresAt = new Date(deps.now() + token.refresh_token_expires_in * 1000).toISOString();
    deps.log.info({ platform: SPEC.id, rotated: token.refresh_token !== undefined && token.refresh_token !== creds.refreshToken }, 'pinterest token refreshed');
    return { credentials: next, expiresAt: nextExpiry };
  }

  // ---- one publish run ---------------------------------------------------------------------------

  interface Run {
    input: PublishInput;
    deps: PlatformDeps;
    api: string;
    auth: Record<string, string>;
    boardId: string;
    title: string;
    description: string;
    cp: PinterestCheckpoint;
    log: PlatformDeps['log'];
  }

  async function save(run: Run, patch: Partial<PinterestCheckpoint>): Promise<void> {
    Object.assign(run.cp, patch);
    await run.input.saveCheckpoint(patch as Checkpoint);
  }

  function published(run: Run, pinId: string): PublishResult {
    const web = (run.deps.urls.web ?? DEFAULT_WEB_URL).replace(/\/+$/, '');
    return { status: 'published', remoteId: pinId, url: `${web}/pin/${pinId}/` };
  }

  // ---- media -------------------------------------------------------------------------------------

  async function register(run: Run): Promise<z.infer<typeof registerSchema>> {
    const body = await call<unknown>(run.deps, `${run.api}/media`, { method: 'POST', headers: run.auth, body: json({ media_type: 'video' }) }, { safeToRepeat: true, repeatable: true });
    const parsed = registerSchema.safeParse(body);
    if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered POST /v5/media without an upload form.`, { retryable: true, detail: 'unexpected media registration answer' });
    const { rendition } = run.input;
    await save(run, { media: { id: parsed.data.media_id, sha256: rendition.sha256, size: rendition.size, uploaded: false, ready: false } });
    run.log.info({ mediaId: parsed.data.media_id }, 'pinterest media registered');
    return parsed.data;
  }

  async function upload(run: Run, form: z.infer<typeof registerSchema>): Promise<void> {
    const { rendition } = run.input;
    const { boundary, head, tail } = multipartFrame(form.upload_parameters, rendition.contentType);
    const file = await rendition.open();
    async function* frame(): AsyncGenerator<Uint8Array> {
      yield head;
      for await (const chunk of file) yield chunk;
      yield tail;
    }
    const closable = file as { destroy?: (error?: Error) => void };
    const source = { [Symbol.asyncIterator]: frame, destroy: (error?: Error) => closable.destroy?.(error) };
    // No bearer token: the form's policy and signature are the authorization, and the token must
    // not go to a third-party host.
    await call<unknown>(
      run.deps,
      form.upload_url,
      { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: streamBody(source, head.length + rendition.size + tail.length) },
      { safeToRepeat: true, response: 'none', timeoutMs: 60_000 + Math.ceil(rendition.size / 65_536) * 1000 },
      mapUploadError,
    );
  }

  /** The media's status, or null when Pinterest no longer knows the id. */
  async function mediaStatus(run: Run, mediaId: string): Promise<z.infer<typeof mediaStatusSchema>['status'] | null> {
    let body: unknown;
    try {
      body = await call<unknown>(run.deps, `${run.api}/media/${encodeURIComponent(mediaId)}`, { method: 'GET', headers: run.auth }, { safeToRepeat: true });
    } catch (error) {
      if (error instanceof PublishError && error.status === 404) return null;
      throw error;
    }
    const parsed = mediaStatusSchema.safeParse(body);
    if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered GET /v5/media with an unexpected body.`, { retryable: true, detail: 'unexpected media status answer' });
    return parsed.data.status;
  }

  function processingFailed(): PublishError {
    const detail = MESSAGES.pinterestProcessingFailed('its status is failed');
    return new PublishError('invalid_media', `${LABEL} could not process the video.`, { retryable: false, detail });
  }

  type MediaStep = { kind: 'ready'; media: MediaCheckpoint } | { kind: 'processing'; media: MediaCheckpoint };

  async function prepareMedia(run: Run): Promise<MediaStep> {
    const { rendition } = run.input;
    let media = run.cp.media;
    if (media && (media.sha256 !== rendition.sha256 || media.size !== rendition.size)) media = null;
    if (media && !media.uploaded) {
      // Did the interrupted upload land? Pinterest moves past `registered` once S3 has the file.
      const status = await mediaStatus(run, media.id);
      if (status === 'processing' || status === 'succeeded') {
        media = { ...media, uploaded: true };
        await save(run, { media });
      } else if (status === 'failed') {
        await save(run, { media: null });
        throw processingFailed();
      } else {
        run.log.info({ mediaId: media.id, status }, 'pinterest media upload never landed; registering again');
        media = null;
      }
    }
    if (!media) {
      const form = await register(run);
      await upload(run, form);
      media = { id: form.media_id, sha256: rendition.sha256, size: rendition.size, uploaded: true, ready: false };
      await save(run, { media });
      run.deps.crashPoint('pinterest.after_upload');
      run.log.info({ mediaId: media.id, size: rendition.size }, 'pinterest media uploaded');
    }
    if (media.ready) return { kind: 'ready', media };
    const status = await mediaStatus(run, media.id);
    if (status === 'succeeded') {
      media = { ...media, ready: true };
      await save(run, { media });
      return { kind: 'ready', media };
    }
    if (status === 'failed') {
      await save(run, { media: null });
      throw processingFailed();
    }
    if (status === null) {
      // Forgotten (expired) before a Pin used it: the next attempt uploads again.
      await save(run, { media: null });
      throw new PublishError('unknown', `${LABEL} no longer knows media ${media.id}.`, { retryable: true, detail: 'the uploaded video expired before it was pinned' });
    }
    return { kind: 'processing', media };
  }

  // ---- finding a Pin on the board ------------------------------------------------------------------

  async function lookForPin(run: Run, sent: CreateSent): Promise<Lookup> {
    const since = Date.parse(sent.at) - LOOKUP_SKEW_MS;
    let bookmark: string | undefined;
    for (let page = 1; page <= options.lookupPages; page++) {
      const url = new URL(`${run.api}/boards/${encodeURIComponent(sent.boardId)}/pins`);
      url.searchParams.set('page_size', String(options.lookupPageSize));
      if (bookmark) url.searchParams.set('bookmark', bookmark);
      const body = await call<unknown>(run.deps, url.toString(), { method: 'GET', headers: run.auth }, { safeToRepeat: true });
      const parsed = boardPinsSchema.safeParse(body);
      if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered the board listing with an unexpected body.`, { retryable: true, detail: 'unexpected board pins answer' });
      let older = false;
      for (const pin of parsed.data.items) {
        const at = parsePinTime(pin.created_at);
        if (Number.isFinite(at) && at < since) {
          older = true;
          continue;
        }
        const isVideo = !pin.media?.media_type || pin.media.media_type.startsWith('video');
        if (isVideo && fingerprint(pin.title ?? '', pin.description ?? '') === sent.fingerprint) return { kind: 'found', pinId: pin.id };
      }
      // Newest first: once Pins older than the create call appear, ours cannot be further down.
      bookmark = parsed.data.bookmark ?? undefined;
      if (older || !bookmark) return { kind: 'absent' };
    }
    return { kind: 'incomplete', pages: options.lookupPages };
  }

  function unconfirmed(sent: CreateSent, why: string): PublishResult {
    return {
      status: 'unconfirmed',
      evidence: `The Pin (with Pinterest media ${sent.mediaId}, on board ${sent.boardId}) was sent at ${sent.at.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC')} and Pinterest's answer never arrived; ${why}`,
    };
  }

  async function resolveUnsure(run: Run, sent: CreateSent): Promise<PublishResult | typeof NOT_POSTED> {
    let found: Lookup;
    try {
      found = await lookForPin(run, sent);
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      await failedLookup(error, run.cp.lookups, options.maxLookups, (lookups) => save(run, { lookups }));
      return unconfirmed(sent, `reading the board's Pins failed (${error.detail}).`);
    }
    if (found.kind === 'found') {
      run.log.info({ pinId: found.pinId, mediaId: sent.mediaId }, 'pinterest pin found on the board; not pinning again');
      await save(run, { pinId: found.pinId, createSent: null });
      return published(run, found.pinId);
    }
    if (found.kind === 'incomplete') return unconfirmed(sent, `the board got more than ${found.pages * options.lookupPageSize} Pins since, too many to check.`);
    const waitedMs = run.deps.now() - Date.parse(sent.at);
    const graceMs = options.indexGraceSeconds * 1000;
    if (waitedMs < graceMs) {
      // Not listed yet decides nothing before the grace period ends; the next look, after it, does.
      throw new PublishError('unknown', `${LABEL} does not list the Pin yet; asking again once it has had time to.`, {
        retryable: true,
        outcomeUnknown: true,
        retryAfterSeconds: Math.max(1, Math.ceil((graceMs - waitedMs) / 1000)),
        detail: 'waiting for Pinterest to list the Pin before deciding whether it went out',
      });
    }
    run.log.warn({ mediaId: sent.mediaId, waitedSeconds: Math.round(waitedMs / 1000) }, 'pinterest pin not on the board after the grace period; the create call never took effect');
    await save(run, { createSent: null, lookups: 0 });
    return NOT_POSTED;
  }

  // ---- creating the Pin ----------------------------------------------------------------------------

  async function createPin(run: Run, media: MediaCheckpoint): Promise<PublishResult> {
    const sent: CreateSent = { at: new Date(run.deps.now()).toISOString(), mediaId: media.id, boardId: run.boardId, fingerprint: fingerprint(run.title, run.description) };
    await save(run, { createSent: sent, lookups: 0 });
    const payload: Record<string, unknown> = {
      board_id: run.boardId,
      // A frame the transcoder extracted, when there is one; otherwise Pinterest picks the frame.
      media_source: run.input.rendition.thumbnail
        ? { source_type: 'video_id', media_id: media.id, cover_image_content_type: 'image/jpeg', cover_image_data: run.input.rendition.thumbnail.toString('base64') }
        : { source_type: 'video_id', media_id: media.id, cover_image_key_frame_time: options.coverKeyFrameTime },
    };
    if (run.title !== '') payload.title = run.title;
    if (run.description !== '') payload.description = run.description;
    let body: unknown;
    try {
      body = await call<unknown>(run.deps, `${run.api}/pins`, { method: 'POST', headers: run.auth, body: json(payload) }, {}, (status, errorBody) => {
        const mapped = mapPinterestError(status, errorBody);
        // A 5xx may hide a Pin that was created.
        if (status >= 500) return withOutcomeUnknown(mapped);
        if (status === 404 && /board/i.test(mapped.detail)) {
          return new PublishError('rejected', mapped.message, { status, detail: MESSAGES.pinterestBoardNotFound(run.boardId), retryable: false });
        }
        return mapped;
      });
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      if (error.outcomeUnknown) {
        // Pinterest usually lists a new Pin at once: asking now often settles it within this attempt.
        const found = await lookForPin(run, sent).catch(async (lookupError: unknown) => {
          if (countsAsFailedLookup(lookupError)) await save(run, { lookups: run.cp.lookups + 1 });
          return null;
        });
        if (found?.kind === 'found') {
          run.log.info({ pinId: found.pinId }, 'pinterest create call got no answer but the pin exists');
          await save(run, { pinId: found.pinId, createSent: null });
          return published(run, found.pinId);
        }
        throw error;
      }
      // A definite refusal: nothing was created.
      await save(run, { createSent: null });
      throw error;
    }
    run.deps.crashPoint('pinterest.after_create');
    const parsed = pinSchema.safeParse(body);
    if (!parsed.success) {
      throw new PublishError('unknown', `${LABEL} created a Pin but answered without its id.`, { retryable: true, outcomeUnknown: true, detail: 'Pin created; id missing' });
    }
    const pinId = parsed.data.id;
    await save(run, { pinId, createSent: null });
    run.log.info({ pinId, mediaId: media.id }, 'pinterest pin created');
    return published(run, pinId);
  }

  // ---- publish / check -----------------------------------------------------------------------------

  /** `to pinterest:<board>`: a board id as is, or a board name looked up among the account's boards. */
  async function resolveBoard(deps: PlatformDeps, accessToken: string, board: string): Promise<string> {
    if (/^\d{1,25}$/.test(board)) return board;
    const url = new URL(`${apiBase(deps)}/boards`);
    url.searchParams.set('page_size', '250');
    const body = await call<unknown>(deps, url.toString(), { method: 'GET', headers: { authorization: `Bearer ${accessToken}` } }, { safeToRepeat: true });
    const parsed = boardsSchema.safeParse(body);
    if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered the board list with an unexpected body.`, { retryable: true, detail: 'unexpected boards answer' });
    const found = parsed.data.items.find((b) => b.name.toLowerCase() === board.toLowerCase());
    if (!found) throw new PublishError('rejected', `No ${LABEL} board named ${board}.`, { retryable: false, detail: MESSAGES.pinterestBoardNotFound(board) });
    return found.id;
  }

  async function advance(input: PublishInput, deps: PlatformDeps): Promise<PublishResult> {
    const creds = parseCredentials(input.credentials);
    const problem = captionProblem(input.caption, SPEC);
    if (problem) throw new PublishError('rejected', problem, { retryable: false, detail: problem });
    const granted = new Set(creds.scope.split(/[\s,]+/).filter(Boolean));
    const missing = PINTEREST_REQUIRED_SCOPES.filter((s) => !granted.has(s));
    if (missing.length > 0) {
      throw new PublishError('auth', `${LABEL} token lacks scopes: ${missing.join(' ')}`, { retryable: false, detail: MESSAGES.pinterestMissingScopes(missing.join(', ')) });
    }
    const named = typeof input.options?.board === 'string' ? input.options.board : null;
    const boardId = named === null ? creds.boardId : await resolveBoard(deps, creds.accessToken, named);
    if (!boardId) throw new PublishError('rejected', `${LABEL} account has no board chosen.`, { retryable: false, detail: MESSAGES.pinterestNoBoard() });
    const { rendition } = input;
    const video = SPEC.video;
    if (rendition.size <= 0 || rendition.size > video.maxBytes) {
      const detail = MESSAGES.videoTooBig(LABEL, rendition.size, video.maxBytes);
      throw new PublishError('invalid_media', detail, { retryable: false, detail: rendition.size <= 0 ? 'the file is empty' : detail });
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
      api: apiBase(deps),
      auth: { authorization: `Bearer ${creds.accessToken}` },
      boardId,
      title: pinterestTitle(input.caption),
      description: input.caption.trim(),
      cp: readCheckpoint(input.checkpoint),
      log: deps.log.child({ platform: SPEC.id, deliveryId: input.deliveryId }),
    };

    if (run.cp.pinId) return published(run, run.cp.pinId);
    if (run.cp.createSent) {
      const resolved = await resolveUnsure(run, run.cp.createSent);
      if (resolved !== NOT_POSTED) return resolved;
    }
    const step = await prepareMedia(run);
    if (step.kind === 'processing') {
      run.log.info({ mediaId: step.media.id }, 'pinterest is processing the video');
      return { status: 'processing', remoteId: step.media.id, checkAfterSeconds: clampCheck(options.checkAfterSeconds) };
    }
    return createPin(run, step.media);
  }

  return {
    spec: SPEC,
    publish: advance,
    /**
     * `remoteId` is the media id while Pinterest processes the video. One status read while it is
     * still processing; once it succeeded, this creates the Pin (exactly once, as publish does),
     * because a video Pin can only be created from processed media.
     */
    check: (_remoteId, input, deps) => advance(input, deps),
    refresh,
    /** One board (page_size=1): the cheapest read, and one posting needs (boards:read). */
    validate: async (credentials, deps) => {
      const creds = parseCredentials(credentials);
      const url = new URL(`${apiBase(deps)}/boards`);
      url.searchParams.set('page_size', '1');
      await call<unknown>(deps, url.toString(), { method: 'GET', headers: { authorization: `Bearer ${creds.accessToken}` } }, { safeToRepeat: true });
    },
  };
}

export const pinterest: PlatformAdapter = createPinterestAdapter();
