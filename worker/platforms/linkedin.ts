/**
 * LinkedIn (Videos API + Posts API, versioned REST; platform reference §6): initializeUpload, PUT
 * each part to its upload URL collecting ETags, finalizeUpload, poll the video until AVAILABLE, then
 * `POST /rest/posts` as the member or the organization chosen at link time (credentials `author`).
 *
 * Exactly-once: `POST /rest/posts` has no idempotency key. The video URN and its upload instructions
 * are saved before the first part, each part's ETag as it completes (a resumed upload skips finished
 * parts), and a "create sent" mark before the create call. A resumed attempt that finds that mark,
 * or an attempt whose create call got no answer, reads the author's posts (newest first) for one
 * carrying the video before creating anything: found means published; not found once LinkedIn has
 * had time to list it means the call never took effect; anything less certain (no read scope, read
 * refused, too many posts since) ends as `unconfirmed` rather than a second post.
 *
 * Every `/rest/*` call carries `LinkedIn-Version` (from config, monthly versions sunset after about a
 * year) and `X-Restli-Protocol-Version: 2.0.0`; part PUTs go to pre-signed upload URLs, without the
 * bearer token.
 */
import { z } from 'zod';
import { countCaption } from '../../core/captions.ts';
import { MESSAGES, PublishError, withOutcomeUnknown } from '../../core/errors.ts';
import type { Checkpoint, Credentials, PlatformAdapter, PlatformDeps, PublishInput, PublishResult, RefreshResult } from '../../core/platforms.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';
import { json, requestJson, retryAfterSeconds, streamBody } from './http.ts';
import type { HttpRequest, MapError, RequestOptions } from './http.ts';
import { countsAsFailedLookup, failedLookup } from './lookups.ts';

const SPEC = PLATFORM_SPECS.linkedin;
const LABEL = SPEC.label;
/** Refresh when the access token has less than this left, so an upload does not outlive it. */
const REFRESH_MARGIN_MS = 5 * 60_000;
const DEFAULT_WEB_URL = 'https://www.linkedin.com';
/** Upload URLs closer than this to their expiry are not worth resuming: initialize again. */
const UPLOAD_EXPIRY_MARGIN_MS = 5 * 60_000;
/** The author's posts are searched from this long before the create call, against clock skew. */
const LOOKUP_SKEW_MS = 10 * 60_000;
const RESTLI_PROTOCOL = '2.0.0';
const AUTHOR_URN = /^urn:li:(person|organization):[A-Za-z0-9_-]{1,64}$/;
const VIDEO_URN = /^urn:li:video:[A-Za-z0-9_-]{1,128}$/;
const POST_URN = /^urn:li:(share|ugcPost):[A-Za-z0-9_-]{1,64}$/;

export interface LinkedInOptions {
  /**
   * How long after an unanswered create call a post missing from the author's feed may still be on
   * its way there. Before this, "not found" decides nothing; after it, it means "never created".
   */
  indexGraceSeconds?: number;
  /** Feed lookups that failed (not a rate limit) for one unanswered create call before giving up as `unconfirmed`. */
  maxLookups?: number;
  /** Pages of the author's posts read per lookup. */
  lookupPages?: number;
  /** Posts per page (the finder's `count`). */
  lookupPageSize?: number;
  /** Poll delay while LinkedIn processes the video (it gives no hint). */
  checkAfterSeconds?: number;
  /** For calls whose body is held in memory. */
  requestTimeoutMs?: number;
  /** For one part PUT (parts are ~4 MB); defaults to a minute plus 64 KiB/s for the part. */
  partTimeoutMs?: number;
}

const DEFAULTS = {
  indexGraceSeconds: 120,
  maxLookups: 4,
  lookupPages: 4,
  lookupPageSize: 50,
  checkAfterSeconds: 10,
  requestTimeoutMs: 60_000,
};

export const linkedinCredentialsSchema = z.object({
  accessToken: z.string().min(1),
  /** Only apps approved for programmatic refresh tokens get one (365 days from first consent). */
  refreshToken: z.string().min(1).optional(),
  /** When the access token expires (from `expires_in`; 60 days today). */
  expiresAt: z.iso.datetime({ offset: true }),
  /** When the refresh token expires (`refresh_token_expires_in`; refreshing does not extend it). */
  refreshTokenExpiresAt: z.iso.datetime({ offset: true }).optional(),
  /** Space-separated scopes granted. */
  scope: z.string(),
  /** Who posts, chosen at link time: the member `urn:li:person:{id}` or `urn:li:organization:{id}`. */
  author: z.string().regex(AUTHOR_URN),
  /** The page or member name, for logs and chat. */
  authorName: z.string().optional(),
});
export type LinkedInCredentials = z.infer<typeof linkedinCredentialsSchema>;

// ---------------------------------------------------------------------------------------------
// Commentary ("little text")

const RESERVED = /[|{}@[\]()<>#\\*_~]/g;
/** A hashtag as a person means it: `#` at a word start, followed by a word with a letter in it. */
const HASHTAG = /(?<![\p{L}\p{N}_&#\\])#([\p{L}\p{N}_]*\p{L}[\p{L}\p{N}_]*)/gu;

function escapeLittle(text: string): string {
  return text.replace(RESERVED, (c) => `\\${c}`);
}

/**
 * The caption as LinkedIn's "little text" commentary: reserved characters are backslash-escaped
 * (unescaped, LinkedIn drops the text after them), and `#word` becomes a hashtag template so it stays
 * a hashtag. The limit (3000) is on the caption as written, which is what the person sees.
 */
export function linkedinCommentary(caption: string): string {
  let out = '';
  let last = 0;
  for (const match of caption.matchAll(HASHTAG)) {
    out += escapeLittle(caption.slice(last, match.index));
    out += `{hashtag|\\#|${escapeLittle(match[1]!)}}`;
    last = match.index + match[0].length;
  }
  return out + escapeLittle(caption.slice(last));
}

/** Why LinkedIn would refuse `caption`, in plain words, or null when it fits. */
export function linkedinCaptionProblem(caption: string): string | null {
  const length = countCaption(caption, SPEC.caption.unit);
  return length > SPEC.caption.maxLength ? MESSAGES.captionTooLong(LABEL, length, SPEC.caption.maxLength, 'characters') : null;
}

// ---------------------------------------------------------------------------------------------
// Errors

interface LinkedInProblem {
  code: string | undefined;
  serviceErrorCode: number | undefined;
  oauthError: string | undefined;
  detail: string;
}

/** Reads `{status, serviceErrorCode, code, message}` (REST) and `{error, error_description}` (OAuth). */
function readProblem(body: unknown, status: number): LinkedInProblem {
  let code: string | undefined;
  let serviceErrorCode: number | undefined;
  let oauthError: string | undefined;
  const parts: string[] = [];
  if (body && typeof body === 'object') {
    const record = body as Record<string, unknown>;
    if (typeof record.code === 'string') code = record.code;
    if (typeof record.serviceErrorCode === 'number') serviceErrorCode = record.serviceErrorCode;
    if (typeof record.error === 'string') oauthError = record.error;
    if (typeof record.message === 'string') parts.push(record.message);
    if (typeof record.error_description === 'string') parts.push(record.error_description);
    const inputErrors = (record.errorDetails as { inputErrors?: unknown } | undefined)?.inputErrors;
    if (Array.isArray(inputErrors)) {
      for (const e of inputErrors as Array<Record<string, unknown>>) if (typeof e?.description === 'string') parts.push(e.description);
    }
    if (parts.length === 0 && code) parts.push(code);
    if (parts.length === 0 && oauthError) parts.push(oauthError);
  } else if (typeof body === 'string' && body.trim() !== '') {
    parts.push(body.replace(/\s+/g, ' ').trim());
  }
  let detail = parts.filter((p, i) => p !== '' && parts.indexOf(p) === i).join(': ') || `HTTP ${status}`;
  if (detail.length > 300) detail = `${detail.slice(0, 299)}…`;
  return { code, serviceErrorCode, oauthError, detail };
}

/** The next 00:00 UTC, when LinkedIn's daily limits reset. */
function nextUtcMidnight(nowMs: number): Date {
  const d = new Date(nowMs);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1));
}

/**
 * Maps a non-2xx answer from LinkedIn to a PublishError, per the reference: 401 expired refresh
 * (then re-auth), revoked re-auth; 403 scope or page role (the person's to fix); 426 / version
 * errors are Reelay's configuration; 422 and 400 the post's content; 429 waits for the daily reset
 * unless told sooner; 5xx retries.
 */
export function mapLinkedInError(status: number, body: unknown, headers: Headers, nowMs: number, version = '?'): PublishError {
  const problem = readProblem(body, status);
  const { detail, code = '' } = problem;
  const message = `${LABEL} answered ${status}${code ? ` ${code}` : ''}: ${detail}`;
  const lower = detail.toLowerCase();
  if (status === 429) {
    const after = retryAfterSeconds(headers, nowMs);
    if (after !== undefined && !/\bday\b/i.test(detail)) return new PublishError('rate_limited', message, { status, detail, retryable: true, retryAfterSeconds: Math.max(1, after) });
    const reset = nextUtcMidnight(nowMs);
    return new PublishError('rate_limited', message, {
      status,
      detail,
      retryable: true,
      retryAfterSeconds: Math.max(1, Math.ceil((reset.getTime() - nowMs) / 1000)),
      userMessage: MESSAGES.linkedinDailyLimit(reset.toISOString().slice(0, 16).replace('T', ' ') + ' UTC'),
    });
  }
  if (status >= 500) return new PublishError('unavailable', message, { status, detail, retryable: true });
  if (problem.oauthError) {
    // The token endpoint: a refused refresh token is never cured by asking again.
    return new PublishError('auth', message, { status, detail, retryable: false });
  }
  if (status === 401) {
    if (code === 'REVOKED_ACCESS_TOKEN') return new PublishError('auth', message, { status, detail, retryable: false });
    return new PublishError('auth', message, { status, detail, retryable: true });
  }
  if (status === 426 || code === 'NONEXISTENT_VERSION' || code === 'VERSION_MISSING' || /\bversion\b.*\bnot active\b/.test(lower)) {
    const text = MESSAGES.linkedinVersion(version);
    return new PublishError('rejected', message, { status, detail: text, retryable: false, userMessage: MESSAGES.platformRejected(LABEL, text) });
  }
  if (status === 403) return new PublishError('rejected', message, { status, detail: MESSAGES.linkedinForbidden(detail), retryable: false });
  if (status === 413) return new PublishError('invalid_media', message, { status, detail, retryable: false });
  if (status === 422 && lower.includes('duplicate')) return new PublishError('rejected', message, { status, detail: MESSAGES.linkedinDuplicate(), retryable: false });
  if (status === 400 || status === 422) return new PublishError('rejected', message, { status, detail, retryable: false });
  return new PublishError('unknown', message, { status, detail });
}

/** On the upload calls a 400/422 is about the file (size, parts): LinkedIn rejected the video. */
function asMediaError(error: PublishError): PublishError {
  if (error.code !== 'rejected' || (error.status !== 400 && error.status !== 422)) return error;
  return new PublishError('invalid_media', error.message, { status: error.status, detail: error.detail, retryable: false });
}

// ---------------------------------------------------------------------------------------------
// Responses

const initializeSchema = z.object({
  value: z.object({
    video: z.string().regex(VIDEO_URN),
    uploadInstructions: z.array(z.object({ uploadUrl: z.string().url(), firstByte: z.number().int().nonnegative(), lastByte: z.number().int().nonnegative() })).min(1),
    uploadToken: z.string().optional(),
    uploadUrlsExpireAt: z.number().optional(),
  }),
});

const videoSchema = z.object({
  id: z.string().optional(),
  status: z.enum(['WAITING_UPLOAD', 'PROCESSING', 'AVAILABLE', 'PROCESSING_FAILED']),
  processingFailureReason: z.string().optional(),
});
type VideoStatus = z.infer<typeof videoSchema>;

const postsPageSchema = z.object({
  elements: z.array(
    z.object({
      id: z.string(),
      createdAt: z.number().optional(),
      lastModifiedAt: z.number().optional(),
      content: z.object({ media: z.object({ id: z.string() }).optional() }).optional(),
    }),
  ),
  paging: z.object({ start: z.number().optional(), count: z.number().optional(), total: z.number().optional() }).optional(),
});

const tokenSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().positive(),
  refresh_token: z.string().min(1).optional(),
  refresh_token_expires_in: z.number().positive().optional(),
  scope: z.string().optional(),
});

// ---------------------------------------------------------------------------------------------
// Checkpoint

const uploadCheckpointSchema = z.object({
  video: z.string().regex(VIDEO_URN),
  /** The rendition it was uploaded from; a different rendition means a new upload. */
  sha256: z.string(),
  size: z.number().int().positive(),
  uploadToken: z.string(),
  /** When the upload URLs stop working. */
  expiresAt: z.iso.datetime({ offset: true }),
  parts: z.array(z.object({ url: z.string(), first: z.number().int().nonnegative(), last: z.number().int().nonnegative() })).min(1),
  /** The ETag of each finished part, in order; null for a part still to send. */
  etags: z.array(z.string().nullable()),
  /** finalizeUpload was sent (its answer may have been lost): ask the video's status before sending it again. */
  finalizeSent: z.boolean(),
  finalized: z.boolean(),
  /** AVAILABLE: the video may be attached to a post. */
  ready: z.boolean(),
});
type UploadCheckpoint = z.infer<typeof uploadCheckpointSchema>;

/** Saved just before `POST /rest/posts`: what to look for if its answer never arrives. */
const createSentSchema = z.object({ at: z.iso.datetime({ offset: true }), video: z.string(), author: z.string() });
type CreateSent = z.infer<typeof createSentSchema>;

interface LinkedInCheckpoint {
  upload: UploadCheckpoint | null;
  createSent: CreateSent | null;
  lookups: number;
  postUrn: string | null;
  /** A create call was sent again after a lookup found nothing. */
  recreated: boolean;
}

function readCheckpoint(checkpoint: Checkpoint): LinkedInCheckpoint {
  const upload = uploadCheckpointSchema.safeParse(checkpoint.upload);
  const sent = createSentSchema.safeParse(checkpoint.createSent);
  return {
    upload: upload.success && upload.data.etags.length === upload.data.parts.length ? upload.data : null,
    createSent: sent.success ? sent.data : null,
    lookups: typeof checkpoint.lookups === 'number' ? checkpoint.lookups : 0,
    postUrn: typeof checkpoint.postUrn === 'string' && POST_URN.test(checkpoint.postUrn) ? checkpoint.postUrn : null,
    recreated: checkpoint.recreated === true,
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function parseCredentials(credentials: Credentials): LinkedInCredentials {
  const parsed = linkedinCredentialsSchema.safeParse(credentials);
  if (!parsed.success) {
    throw new PublishError('auth', `Stored ${LABEL} credentials are incomplete.`, { retryable: false, detail: 'stored credentials are incomplete' });
  }
  return parsed.data;
}

function configured(deps: PlatformDeps, key: 'api' | 'token' | 'version', variable: string): string {
  const value = deps.urls[key];
  if (!value || (key === 'version' && !/^\d{6}$/.test(value))) {
    throw new PublishError('unknown', `${LABEL} ${key} is not configured (${variable}).`, { retryable: false, detail: `${variable} is not configured` });
  }
  return key === 'version' ? value : value.replace(/\/+$/, '');
}

/** LinkedIn reports granted scopes comma-separated; linking may store them space-separated. */
function hasScope(creds: LinkedInCredentials, scope: string): boolean {
  return creds.scope.split(/[\s,]+/).includes(scope);
}

function isOrganization(author: string): boolean {
  return author.startsWith('urn:li:organization:');
}

/** The scope the author needs to post, and the one it needs to read its own posts back. */
function scopesFor(author: string): { write: string; read: string } {
  return isOrganization(author) ? { write: 'w_organization_social', read: 'r_organization_social' } : { write: 'w_member_social', read: 'r_member_social' };
}

function postUrl(deps: PlatformDeps, urn: string): string {
  const web = (deps.urls.web ?? DEFAULT_WEB_URL).replace(/\/+$/, '');
  return `${web}/feed/update/${urn}/`;
}

function utc(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
}

type Lookup = { kind: 'found'; urn: string } | { kind: 'absent' } | { kind: 'incomplete'; posts: number };

/** What `resolveUnsure` concludes when the earlier create call demonstrably did nothing. */
const NOT_POSTED = Symbol('not posted');

// ---------------------------------------------------------------------------------------------
// The adapter

export function createLinkedInAdapter(overrides: LinkedInOptions = {}): PlatformAdapter {
  const options = { ...DEFAULTS, ...overrides };

  function call<T>(
    deps: PlatformDeps,
    url: string,
    init: HttpRequest,
    requestOptions: RequestOptions,
    special?: (error: PublishError) => PublishError,
  ): Promise<{ body: T; headers: Headers }> {
    const version = deps.urls.version ?? '?';
    const mapError: MapError = (status, body, headers) => {
      const mapped = mapLinkedInError(status, body, headers, deps.now(), version);
      return special ? special(mapped) : mapped;
    };
    return requestJson<T>(deps, url, init, mapError, { timeoutMs: options.requestTimeoutMs, ...requestOptions }).then((r) => ({ body: r.body, headers: r.headers }));
  }

  // ---- refresh ---------------------------------------------------------------------------------

  async function refresh(credentials: Credentials, deps: PlatformDeps, refreshOptions: { force: boolean }): Promise<RefreshResult | null> {
    const creds = parseCredentials(credentials);
    const now = deps.now();
    const expiresAt = Date.parse(creds.expiresAt);
    if (!refreshOptions.force && expiresAt - now > REFRESH_MARGIN_MS) return null;
    const expiredMessage = MESSAGES.linkedinTokenExpired(creds.authorName ?? creds.author);
    const refreshExpired = creds.refreshTokenExpiresAt !== undefined && Date.parse(creds.refreshTokenExpiresAt) <= now;
    if (!creds.refreshToken || refreshExpired) {
      // Without a (live) refresh token the access token is used for as long as it lasts; once it has
      // expired, or LinkedIn refused it, only the person re-linking the account helps.
      if (!refreshOptions.force && expiresAt > now) return null;
      throw new PublishError('auth', `${LABEL} access token expired and there is no refresh token.`, {
        retryable: false,
        detail: refreshExpired ? 'the refresh token expired' : 'the access token expired and LinkedIn issued no refresh token',
        userMessage: expiredMessage,
      });
    }
    const client = deps.oauthClient;
    if (!client) {
      throw new PublishError('unknown', `${LABEL} OAuth client is not configured (LINKEDIN_CLIENT_ID); cannot refresh the token.`, {
        retryable: false,
        detail: 'LINKEDIN_CLIENT_ID is not configured, so the LinkedIn token cannot be refreshed',
      });
    }
    // LinkedIn takes the client credentials in the form.
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.refreshToken, client_id: client.clientId, client_secret: client.clientSecret });
    const { body } = await call<unknown>(
      deps,
      configured(deps, 'token', 'LINKEDIN_TOKEN_URL'),
      { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() },
      {},
      (mapped) => (mapped.code === 'auth' ? new PublishError('auth', mapped.message, { status: mapped.status, detail: mapped.detail, retryable: false, userMessage: expiredMessage }) : mapped),
    );
    const parsed = tokenSchema.safeParse(body);
    if (!parsed.success) {
      throw new PublishError('unknown', `${LABEL} answered the token refresh with an unexpected body.`, { retryable: true, outcomeUnknown: true, detail: 'unexpected token answer' });
    }
    const token = parsed.data;
    const nextExpiry = new Date(now + token.expires_in * 1000);
    const next: LinkedInCredentials = {
      ...creds,
      accessToken: token.access_token,
      refreshToken: token.refresh_token ?? creds.refreshToken,
      expiresAt: nextExpiry.toISOString(),
      scope: token.scope ?? creds.scope,
    };
    // The refresh token's TTL is fixed from first consent: LinkedIn reports what is left of it.
    if (token.refresh_token_expires_in !== undefined) next.refreshTokenExpiresAt = new Date(now + token.refresh_token_expires_in * 1000).toISOString();
    deps.log.info({ platform: SPEC.id }, 'linkedin token refreshed');
    return { credentials: next, expiresAt: nextExpiry };
  }

  // ---- the daily check ---------------------------------------------------------------------------

  /**
   * `GET /v2/userinfo` (OpenID; linking asks for `openid profile`). It is not a versioned `/rest`
   * resource. LinkedIn checks the token before the scope, so a 403 for a login linked without
   * `openid` still shows that the token works; only 401 says it does not.
   */
  async function validate(credentials: Credentials, deps: PlatformDeps): Promise<void> {
    const creds = parseCredentials(credentials);
    try {
      await call<unknown>(deps, `${configured(deps, 'api', 'LINKEDIN_API_URL')}/v2/userinfo`, { method: 'GET', headers: { authorization: `Bearer ${creds.accessToken}` } }, { safeToRepeat: true });
    } catch (error) {
      if (!(error instanceof PublishError && error.status === 403)) throw error;
      deps.log.debug({ platform: SPEC.id, detail: error.detail }, 'linkedin userinfo refused for scope; the token itself was accepted');
    }
  }

  // ---- one publish run ---------------------------------------------------------------------------

  interface Run {
    input: PublishInput;
    deps: PlatformDeps;
    creds: LinkedInCredentials;
    api: string;
    /** Headers for every `/rest/*` call. */
    rest: Record<string, string>;
    cp: LinkedInCheckpoint;
    log: PlatformDeps['log'];
  }

  async function save(run: Run, patch: Partial<LinkedInCheckpoint>): Promise<void> {
    Object.assign(run.cp, patch);
    await run.input.saveCheckpoint(patch as Checkpoint);
  }

  function published(run: Run, urn: string): PublishResult {
    return { status: 'published', remoteId: urn, url: postUrl(run.deps, urn) };
  }

  function videoPath(run: Run, urn: string): string {
    return `${run.api}/rest/videos/${encodeURIComponent(urn)}`;
  }

  // ---- video upload ------------------------------------------------------------------------------

  async function initialize(run: Run): Promise<UploadCheckpoint> {
    const { rendition } = run.input;
    const { body } = await call<unknown>(
      run.deps,
      `${run.api}/rest/videos?action=initializeUpload`,
      {
        method: 'POST',
        headers: run.rest,
        body: json({ initializeUploadRequest: { owner: run.creds.author, fileSizeBytes: rendition.size, uploadCaptions: false, uploadThumbnail: false } }),
      },
      // A video never finalized nor attached to a post is invisible and abandoned.
      { safeToRepeat: true, repeatable: true },
      asMediaError,
    );
    const parsed = initializeSchema.safeParse(body);
    if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered initializeUpload without a video.`, { retryable: true, detail: 'unexpected initializeUpload answer' });
    const { video, uploadInstructions, uploadToken, uploadUrlsExpireAt } = parsed.data.value;
    const parts = uploadInstructions.map((i) => ({ url: i.uploadUrl, first: i.firstByte, last: i.lastByte })).sort((a, b) => a.first - b.first);
    // The instructions must tile the file exactly, or the parts would not add up to it.
    let expected = 0;
    for (const part of parts) {
      if (part.first !== expected || part.last < part.first) break;
      expected = part.last + 1;
    }
    if (expected !== rendition.size) {
      throw new PublishError('unknown', `${LABEL} gave upload instructions that do not cover the file.`, { retryable: true, detail: 'upload instructions do not cover the file' });
    }
    const upload: UploadCheckpoint = {
      video,
      sha256: rendition.sha256,
      size: rendition.size,
      uploadToken: uploadToken ?? '',
      expiresAt: new Date(uploadUrlsExpireAt ?? run.deps.now() + 3600_000).toISOString(),
      parts,
      etags: parts.map(() => null),
      finalizeSent: false,
      finalized: false,
      ready: false,
    };
    await save(run, { upload });
    run.log.info({ video, parts: parts.length, size: rendition.size }, 'linkedin video upload initialized');
    return upload;
  }

  async function putPart(run: Run, upload: UploadCheckpoint, index: number): Promise<string> {
    const part = upload.parts[index]!;
    const length = part.last - part.first + 1;
    const file = await run.input.rendition.open({ start: part.first, end: part.last });
    const { headers } = await call<unknown>(
      run.deps,
      part.url,
      { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: streamBody(file, length) },
      { safeToRepeat: true, response: 'none', timeoutMs: options.partTimeoutMs ?? 60_000 + Math.ceil(length / 65_536) * 1000 },
      // The upload host refuses an expired or unknown pre-signed URL; the next attempt starts over.
      (mapped) =>
        mapped.status === 403 || mapped.status === 404
          ? new PublishError('unknown', mapped.message, { status: mapped.status, detail: 'the upload URL was refused (expired?)', retryable: true })
          : asMediaError(mapped),
    );
    const etag = headers.get('etag');
    if (!etag) throw new PublishError('unknown', `${LABEL} accepted part ${index + 1} without an ETag.`, { retryable: true, detail: 'upload part answered without an ETag' });
    return etag;
  }

  async function finalize(run: Run, upload: UploadCheckpoint): Promise<void> {
    await call<unknown>(
      run.deps,
      `${run.api}/rest/videos?action=finalizeUpload`,
      {
        method: 'POST',
        headers: run.rest,
        body: json({ finalizeUploadRequest: { video: upload.video, uploadToken: upload.uploadToken, uploadedPartIds: upload.etags } }),
      },
      { safeToRepeat: true, response: 'none' },
      asMediaError,
    );
  }

  async function videoStatus(run: Run, urn: string): Promise<VideoStatus> {
    const { body } = await call<unknown>(run.deps, videoPath(run, urn), { method: 'GET', headers: run.rest }, { safeToRepeat: true });
    const parsed = videoSchema.safeParse(body);
    if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered the video status with an unexpected body.`, { retryable: true, detail: 'unexpected video answer' });
    return parsed.data;
  }

  type VideoStep = { kind: 'ready'; upload: UploadCheckpoint } | { kind: 'processing'; upload: UploadCheckpoint };

  async function afterStatus(run: Run, upload: UploadCheckpoint, status: VideoStatus): Promise<VideoStep> {
    if (status.status === 'AVAILABLE') {
      const ready = { ...upload, finalizeSent: true, finalized: true, ready: true };
      await save(run, { upload: ready });
      return { kind: 'ready', upload: ready };
    }
    if (status.status === 'PROCESSING_FAILED') {
      await save(run, { upload: null });
      const reason = status.processingFailureReason ?? 'no reason given';
      throw new PublishError('invalid_media', `${LABEL} could not process the video: ${reason}`, { retryable: false, detail: MESSAGES.linkedinProcessingFailed(reason) });
    }
    return { kind: 'processing', upload };
  }

  /**
   * Brings the rendition's video to "ready" or "processing": uploads it, resumes an upload from the
   * checkpoint (skipping parts with an ETag), or asks the status of a finalized one. A resumed upload
   * LinkedIn no longer takes (expired URLs, a video it forgot) starts over once.
   */
  async function prepareVideo(run: Run): Promise<VideoStep> {
    const { rendition } = run.input;
    let upload = run.cp.upload;
    if (
      upload &&
      (upload.sha256 !== rendition.sha256 || upload.size !== rendition.size || (!upload.finalizeSent && Date.parse(upload.expiresAt) - run.deps.now() < UPLOAD_EXPIRY_MARGIN_MS))
    ) {
      run.log.info({ video: upload.video }, 'linkedin upload in the checkpoint is stale; uploading again');
      upload = null;
    }
    let resumed = upload !== null;
    for (;;) {
      try {
        if (!upload) upload = await initialize(run);
        if (upload.ready) return { kind: 'ready', upload };
        if (upload.finalized) return await afterStatus(run, upload, await videoStatus(run, upload.video));
        if (upload.finalizeSent) {
          // The finalize call's answer was lost: LinkedIn may have taken it. Ask before repeating.
          const status = await videoStatus(run, upload.video);
          if (status.status !== 'WAITING_UPLOAD') {
            upload = { ...upload, finalized: true };
            await save(run, { upload });
            return await afterStatus(run, upload, status);
          }
        }
        for (let index = 0; index < upload.parts.length; index++) {
          if (upload.etags[index]) continue;
          const etag = await putPart(run, upload, index);
          const etags: Array<string | null> = [...upload.etags];
          etags[index] = etag;
          upload = { ...upload, etags };
          await save(run, { upload });
        }
        upload = { ...upload, finalizeSent: true };
        await save(run, { upload });
        await finalize(run, upload);
        upload = { ...upload, finalized: true };
        await save(run, { upload });
        run.deps.crashPoint('linkedin.after_upload');
        run.log.info({ video: upload.video }, 'linkedin video uploaded');
        // Small videos are often ready at once; one read settles it without another job.
        return await afterStatus(run, upload, await videoStatus(run, upload.video));
      } catch (error) {
        // Expired upload URLs answer 403 on the upload host; a forgotten video 404.
        const gone = resumed && error instanceof PublishError && !upload?.finalized && (error.status === 403 || error.status === 404 || error.code === 'invalid_media');
        if (!gone) throw error;
        run.log.info({ video: upload?.video, detail: error instanceof PublishError ? error.detail : undefined }, 'linkedin no longer takes the saved upload; uploading again');
        await save(run, { upload: null });
        upload = null;
        resumed = false;
      }
    }
  }

  // ---- finding a post in the author's feed ---------------------------------------------------------

  /** Reads the author's posts since the create call, newest first, looking for one with the video. */
  async function lookForPost(run: Run, sent: CreateSent): Promise<Lookup> {
    const since = Date.parse(sent.at) - LOOKUP_SKEW_MS;
    let seen = 0;
    for (let page = 0; page < options.lookupPages; page++) {
      const url = new URL(`${run.api}/rest/posts`);
      url.searchParams.set('author', sent.author);
      url.searchParams.set('q', 'author');
      url.searchParams.set('count', String(options.lookupPageSize));
      url.searchParams.set('start', String(page * options.lookupPageSize));
      url.searchParams.set('sortBy', 'LAST_MODIFIED');
      const { body } = await call<unknown>(run.deps, url.toString(), { method: 'GET', headers: run.rest }, { safeToRepeat: true });
      const parsed = postsPageSchema.safeParse(body);
      if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered the posts lookup with an unexpected body.`, { retryable: true, detail: 'unexpected posts answer' });
      const { elements } = parsed.data;
      for (const post of elements) {
        if (post.content?.media?.id === sent.video && POST_URN.test(post.id)) return { kind: 'found', urn: post.id };
      }
      seen += elements.length;
      const oldest = elements.at(-1);
      // Sorted by last change, newest first: past the create call there is nothing more to find.
      if (elements.length < options.lookupPageSize || (oldest?.lastModifiedAt !== undefined && oldest.lastModifiedAt < since)) return { kind: 'absent' };
    }
    return { kind: 'incomplete', posts: seen };
  }

  function unconfirmed(sent: CreateSent, why: string): PublishResult {
    return {
      status: 'unconfirmed',
      evidence: `The LinkedIn post (with video ${sent.video}, as ${sent.author}) was sent at ${utc(sent.at)} and LinkedIn's answer never arrived; ${why}`,
    };
  }

  /**
   * An earlier create call may or may not have posted. Asks the author's feed; returns the post,
   * NOT_POSTED when it demonstrably never happened, or `unconfirmed`. Throws (retryable, outcome
   * unknown) to ask again later while that can still settle it.
   */
  async function resolveUnsure(run: Run, sent: CreateSent): Promise<PublishResult | typeof NOT_POSTED> {
    const { read } = scopesFor(sent.author);
    if (!hasScope(run.creds, read)) {
      return unconfirmed(sent, `the account did not grant ${read}, so Reelay cannot read its posts to check.`);
    }
    let found: Lookup;
    try {
      found = await lookForPost(run, sent);
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      await failedLookup(error, run.cp.lookups, options.maxLookups, (lookups) => save(run, { lookups }));
      return unconfirmed(sent, `looking for it among the account's posts failed (${error.detail}).`);
    }
    if (found.kind === 'found') {
      run.log.info({ postUrn: found.urn, video: sent.video }, 'linkedin post found in the feed; not posting again');
      await save(run, { postUrn: found.urn, createSent: null });
      return published(run, found.urn);
    }
    if (found.kind === 'incomplete') return unconfirmed(sent, `the account changed more than ${found.posts} posts since, too many to check.`);
    const waitedMs = run.deps.now() - Date.parse(sent.at);
    const graceMs = options.indexGraceSeconds * 1000;
    if (waitedMs < graceMs) {
      // Not listed yet decides nothing before the grace period ends; the next look, after it, does.
      throw new PublishError('unknown', `${LABEL} does not list the post yet; asking again once it has had time to.`, {
        retryable: true,
        outcomeUnknown: true,
        retryAfterSeconds: Math.max(1, Math.ceil((graceMs - waitedMs) / 1000)),
        detail: 'waiting for LinkedIn to list the post before deciding whether it went out',
      });
    }
    run.log.warn({ video: sent.video, waitedSeconds: Math.round(waitedMs / 1000) }, 'linkedin post not in the feed after the grace period; the create call never took effect');
    await save(run, { createSent: null, lookups: 0, recreated: true });
    return NOT_POSTED;
  }

  // ---- creating the post -------------------------------------------------------------------------

  async function createPost(run: Run, upload: UploadCheckpoint): Promise<PublishResult> {
    const sent: CreateSent = { at: new Date(run.deps.now()).toISOString(), video: upload.video, author: run.creds.author };
    await save(run, { createSent: sent, lookups: 0 });
    const payload = {
      author: run.creds.author,
      commentary: linkedinCommentary(run.input.caption),
      visibility: 'PUBLIC',
      distribution: { feedDistribution: 'MAIN_FEED', targetEntities: [], thirdPartyDistributionChannels: [] },
      content: { media: { id: upload.video } },
      lifecycleState: 'PUBLISHED',
      isReshareDisabledByAuthor: false,
    };
    let headers: Headers;
    try {
      ({ headers } = await call<unknown>(run.deps, `${run.api}/rest/posts`, { method: 'POST', headers: run.rest, body: json(payload) }, { response: 'none' }, (mapped) =>
        // LinkedIn's 5xx ("Unable to obtain activity") may hide a post that was created.
        mapped.status !== undefined && mapped.status >= 500 ? withOutcomeUnknown(mapped) : mapped,
      ));
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      if (error.outcomeUnknown) {
        // Usually LinkedIn lists a new post at once: asking now often settles it within this attempt.
        if (hasScope(run.creds, scopesFor(sent.author).read)) {
          const found = await lookForPost(run, sent).catch(async (lookupError: unknown) => {
            if (countsAsFailedLookup(lookupError)) await save(run, { lookups: run.cp.lookups + 1 });
            return null;
          });
          if (found?.kind === 'found') {
            run.log.info({ postUrn: found.urn }, 'linkedin create call got no answer but the post exists');
            await save(run, { postUrn: found.urn, createSent: null });
            return published(run, found.urn);
          }
        }
        throw error;
      }
      // A definite refusal: nothing was posted.
      await save(run, { createSent: null });
      if (run.cp.recreated && error.detail === MESSAGES.linkedinDuplicate()) {
        // The one post that makes LinkedIn call this a duplicate is most likely the one we could not find.
        return unconfirmed(sent, `the account's posts did not show it, but LinkedIn now refuses the same post as a duplicate (${error.message}), so it most likely went out.`);
      }
      throw error;
    }
    run.deps.crashPoint('linkedin.after_create');
    const urn = headers.get('x-restli-id');
    if (!urn || !POST_URN.test(urn)) {
      throw new PublishError('unknown', `${LABEL} created a post but answered without its id.`, { retryable: true, outcomeUnknown: true, detail: 'post created; x-restli-id missing' });
    }
    await save(run, { postUrn: urn, createSent: null });
    run.log.info({ postUrn: urn, video: upload.video }, 'linkedin post created');
    return published(run, urn);
  }

  // ---- publish / check -----------------------------------------------------------------------------

  async function advance(input: PublishInput, deps: PlatformDeps): Promise<PublishResult> {
    const creds = parseCredentials(input.credentials);
    // Refusals that need no network come first: nothing is uploaded for a post LinkedIn would refuse.
    const captionProblem = linkedinCaptionProblem(input.caption);
    if (captionProblem) throw new PublishError('rejected', captionProblem, { retryable: false, detail: captionProblem });
    const { write } = scopesFor(creds.author);
    if (!hasScope(creds, write)) {
      throw new PublishError('auth', `${LABEL} token lacks the ${write} scope`, { retryable: false, detail: `the linked account did not grant ${write}; re-link it` });
    }
    if (Date.parse(creds.expiresAt) <= deps.now() && !creds.refreshToken) {
      throw new PublishError('auth', `${LABEL} access token expired`, { retryable: false, detail: 'the access token expired', userMessage: MESSAGES.linkedinTokenExpired(creds.authorName ?? creds.author) });
    }
    const { rendition } = input;
    const video = SPEC.video;
    if (rendition.size > video.maxBytes) {
      const detail = MESSAGES.videoTooBig(LABEL, rendition.size, video.maxBytes);
      throw new PublishError('invalid_media', detail, { retryable: false, detail });
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
      api: configured(deps, 'api', 'LINKEDIN_API_URL'),
      rest: {
        authorization: `Bearer ${creds.accessToken}`,
        'linkedin-version': configured(deps, 'version', 'LINKEDIN_VERSION'),
        'x-restli-protocol-version': RESTLI_PROTOCOL,
      },
      cp: readCheckpoint(input.checkpoint),
      log: deps.log.child({ platform: SPEC.id, deliveryId: input.deliveryId }),
    };

    if (run.cp.postUrn) return published(run, run.cp.postUrn);
    if (run.cp.createSent) {
      const resolved = await resolveUnsure(run, run.cp.createSent);
      if (resolved !== NOT_POSTED) return resolved;
    }

    const step = await prepareVideo(run);
    if (step.kind === 'processing') {
      run.log.info({ video: step.upload.video }, 'linkedin is processing the video');
      return { status: 'processing', remoteId: step.upload.video, checkAfterSeconds: options.checkAfterSeconds };
    }
    return createPost(run, step.upload);
  }

  return {
    spec: SPEC,
    publish: advance,
    /**
     * `remoteId` is the video URN while LinkedIn processes it. One status read while it is still
     * processing; once AVAILABLE this creates the post (exactly once, as publish does), because the
     * post can only be created after processing.
     */
    check: (_remoteId, input, deps) => advance(input, deps),
    refresh,
    validate,
  };
}

export const linkedin: PlatformAdapter = createLinkedInAdapter();
