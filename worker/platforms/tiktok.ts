/**
 * TikTok Content Posting API: Direct Post (or upload-to-inbox as a draft) with FILE_UPLOAD.
 * creator_info -> init -> sequential chunk PUTs to upload_url -> status/fetch until
 * PUBLISH_COMPLETE / SEND_TO_USER_INBOX / FAILED.
 *
 * Exactly-once: TikTok creates the post when the last chunk lands, not at init. An init whose
 * answer was lost, or whose upload never finished, can never become a post, so initialising again
 * is safe exactly when TikTok says it holds fewer bytes than the video has. That is why the
 * publish_id (and upload_url) are checkpointed right after init returns, and why a resumed attempt
 * asks status/fetch before it uploads or initialises anything.
 *
 * All HTTP goes through `deps.fetch` via http.ts.
 */
import { z } from 'zod';
import { captionProblem } from '../../core/captions.ts';
import { MESSAGES, PublishError } from '../../core/errors.ts';
import type { Checkpoint, Credentials, PlatformAdapter, PlatformDeps, PublishInput, PublishResult, RefreshResult } from '../../core/platforms.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';
import { describeBody, json, requestJson, retryAfterSeconds, streamBody } from './http.ts';
import type { MapError } from './http.ts';

const SPEC = PLATFORM_SPECS.tiktok;
const LABEL = SPEC.label;
const MiB = 1024 * 1024;
/** Refresh when the access token has less than this left, so a long upload does not outlive it. */
const REFRESH_MARGIN_MS = 5 * 60_000;
const DEFAULT_WEB_URL = 'https://www.tiktok.com';

/**
 * Timings and sizes. Mutable so tests can shrink them; production uses the defaults.
 *
 * The Media Transfer Guide says "5 MB" and "64 MB" without saying whether it means 10^6 or 2^20:
 * the defaults satisfy both readings (chunks of 16 MiB, a whole-file upload only up to 64*10^6 bytes).
 */
export const tiktokTuning = {
  apiTimeoutMs: 30_000,
  /** Upload chunk size for files larger than `wholeFileMaxBytes`. */
  chunkBytes: 16 * MiB,
  /** Files up to this size go up as one chunk. */
  wholeFileMaxBytes: 64_000_000,
  /** Poll after the upload finished: TikTok processes 512 MB in under half a minute. */
  firstCheckSeconds: 5,
  processingCheckSeconds: 10,
  /** Moderation usually takes under a minute, sometimes hours: back off from this... */
  moderationMinCheckSeconds: 30,
  /** ...to this... */
  moderationMaxCheckSeconds: 30 * 60,
  /** ...and after this long report it published with the profile link. */
  moderationMaxWaitSeconds: 6 * 3600,
  /** Still PROCESSING this long after init: stop polling and say we cannot tell. */
  stuckProcessingSeconds: 3 * 3600,
  /** upload_url validity is about an hour (unconfirmed); past this a resume initialises again. */
  uploadUrlMaxAgeSeconds: 50 * 60,
  /** TikTok sends no Retry-After; its limits are per minute. */
  defaultRetryAfterSeconds: 60,
  /** TikTok's daily post cap names no reset time; the reference says to wait a day. */
  dailyCapRetrySeconds: 24 * 3600,
};

const MIN_CHUNK = 5 * MiB;
const MAX_CHUNK = 64_000_000;
const MAX_CHUNKS = 1000;

export const PRIVACY_LEVELS = ['PUBLIC_TO_EVERYONE', 'MUTUAL_FOLLOW_FRIENDS', 'FOLLOWER_OF_CREATOR', 'SELF_ONLY'] as const;
export type PrivacyLevel = (typeof PRIVACY_LEVELS)[number];

export const tiktokCredentialsSchema = z.object({
  accessToken: z.string().min(1),
  refreshToken: z.string().min(1),
  /** When the access token expires (from `expires_in`). */
  expiresAt: z.iso.datetime({ offset: true }),
  /** When the refresh token expires (from `refresh_expires_in`); past it the account must be re-linked. */
  refreshExpiresAt: z.iso.datetime({ offset: true }).optional(),
  /** Comma-separated, as TikTok returns it: video.publish for Direct Post, video.upload for inbox. */
  scope: z.string(),
  openId: z.string().min(1).optional(),
  /**
   * Who may see the post. Unaudited apps may only post SELF_ONLY, hence the default; it must be
   * one of the options creator_info offers for the account.
   */
  privacyLevel: z.enum(PRIVACY_LEVELS).default('SELF_ONLY'),
  /** 'inbox' uploads a draft the creator finishes in the TikTok app (scope video.upload). */
  postMode: z.enum(['direct', 'inbox']).default('direct'),
  disableComment: z.boolean().optional(),
  disableDuet: z.boolean().optional(),
  disableStitch: z.boolean().optional(),
  /** Labels the video as AI-generated content. */
  isAigc: z.boolean().optional(),
});
export type TikTokCredentials = z.infer<typeof tiktokCredentialsSchema>;

// ---------------------------------------------------------------------------------------------
// Errors

const USER_REASONS: Record<string, () => string> = {
  unaudited_client_can_only_post_to_private_accounts: MESSAGES.tiktokUnaudited,
  spam_risk_too_many_pending_share: MESSAGES.tiktokTooManyDrafts,
  spam_risk_user_banned_from_posting: MESSAGES.tiktokBanned,
  spam_risk_text: MESSAGES.tiktokSpamText,
  reached_active_user_cap: MESSAGES.tiktokAppUserCap,
  app_version_check_failed: MESSAGES.tiktokUpdateApp,
  publish_cancelled: MESSAGES.tiktokCancelled,
  url_ownership_unverified: MESSAGES.tiktokUrlUnverified,
};

const MEDIA_REASONS: Record<string, () => string> = {
  file_format_check_failed: MESSAGES.tiktokVideoFormat,
  duration_check_failed: MESSAGES.tiktokVideoDuration,
  frame_rate_check_failed: MESSAGES.tiktokVideoFrameRate,
  picture_size_check_failed: MESSAGES.tiktokVideoPictureSize,
  invalid_file_upload: MESSAGES.tiktokVideoFormat,
};

/** `{error: {code, message, log_id}}` (API v2) or `{error, error_description, log_id}` (OAuth). */
function errorCode(body: unknown): { code: string | undefined; message: string; logId: string | undefined } {
  if (!body || typeof body !== 'object') return { code: undefined, message: typeof body === 'string' ? describeBody(body) : '', logId: undefined };
  const record = body as { error?: unknown; error_description?: unknown; log_id?: unknown };
  if (record.error && typeof record.error === 'object') {
    const error = record.error as { code?: unknown; message?: unknown; log_id?: unknown };
    return {
      code: typeof error.code === 'string' ? error.code : undefined,
      message: typeof error.message === 'string' ? error.message : '',
      logId: typeof error.log_id === 'string' ? error.log_id : undefined,
    };
  }
  return {
    code: typeof record.error === 'string' ? record.error : undefined,
    message: typeof record.error_description === 'string' ? record.error_description : '',
    logId: typeof record.log_id === 'string' ? record.log_id : undefined,
  };
}

/**
 * Maps a TikTok answer (an API v2 error envelope, an OAuth error, or a failed post's fail_reason
 * passed as `{error: {code}}`) to a PublishError.
 */
export function mapTikTokError(status: number, body: unknown, headers: Headers, nowMs: number): PublishError {
  const { code, message: apiMessage, logId } = errorCode(body);
  const raw = [code, apiMessage].filter(Boolean).join(': ') || `HTTP ${status}`;
  const message = `${LABEL} answered ${status}: ${raw}${logId ? ` (log_id ${logId})` : ''}`;
  const user = code ? (USER_REASONS[code] ?? (code.startsWith('spam_risk') ? MESSAGES.tiktokSpam : undefined)) : undefined;
  const media = code ? MEDIA_REASONS[code] : undefined;

  if (code === 'access_token_invalid') return new PublishError('auth', message, { status, detail: raw, retryable: true });
  if (code === 'scope_not_authorized' || code === 'scope_permission_missed' || code === 'invalid_grant' || code === 'auth_removed') {
    return new PublishError('auth', message, { status, detail: raw, retryable: false });
  }
  if (status === 429 || code === 'rate_limit_exceeded') {
    return new PublishError('rate_limited', message, {
      status,
      detail: raw,
      retryable: true,
      retryAfterSeconds: retryAfterSeconds(headers, nowMs) ?? tiktokTuning.defaultRetryAfterSeconds,
    });
  }
  if (code === 'spam_risk_too_many_posts') {
    // A cap, not a verdict on the post: deferred like any rate limit, never failed.
    const at = new Date(nowMs + tiktokTuning.dailyCapRetrySeconds * 1000);
    return new PublishError('rate_limited', message, {
      status,
      detail: MESSAGES.tiktokDailyLimit(`${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`),
      retryable: true,
      retryAfterSeconds: tiktokTuning.dailyCapRetrySeconds,
    });
  }
  if (media) return new PublishError('invalid_media', message, { status, detail: media(), retryable: false });
  if (code === 'privacy_level_option_mismatch') {
    return new PublishError('rejected', message, { status, detail: MESSAGES.tiktokPrivacyMismatch(), retryable: false });
  }
  if (user) return new PublishError('rejected', message, { status, detail: user(), retryable: false });
  if (code === 'invalid_params') return new PublishError('rejected', message, { status, detail: apiMessage || raw, retryable: false });
  // The app's key or secret is wrong: our configuration, not the account, so no re-auth.
  if (code === 'invalid_client' || code === 'unauthorized_client' || code === 'invalid_request' || code === 'unsupported_grant_type') {
    return new PublishError('unknown', message, { status, detail: raw, retryable: false });
  }
  if (status === 401) return new PublishError('auth', message, { status, detail: raw, retryable: true });
  if (status >= 500 || code === 'internal_error' || code === 'internal' || code === 'video_pull_failed') {
    return new PublishError('unavailable', message, { status, detail: raw, retryable: true });
  }
  return new PublishError('unknown', message, { status, detail: raw });
}

/** A 4xx on an upload_url: the upload session is gone or refuses our range. */
class UploadRefusedError extends PublishError {}

function mapUploadError(deps: PlatformDeps): MapError {
  return (status, body, headers) => {
    const mapped = mapTikTokError(status, body, headers, deps.now());
    if (status >= 400 && status < 500 && status !== 429) {
      return new UploadRefusedError('unknown', `${LABEL} refused an upload chunk (${status}): ${mapped.detail}`, { status, detail: mapped.detail, retryable: true });
    }
    return mapped;
  };
}

// ---------------------------------------------------------------------------------------------
// API calls

const envelopeSchema = z.object({
  data: z.unknown().optional(),
  error: z.object({ code: z.string(), message: z.string().optional(), log_id: z.string().optional() }).optional(),
});

const creatorInfoSchema = z.object({
  creator_username: z.string().min(1),
  creator_nickname: z.string().optional(),
  privacy_level_options: z.array(z.string()),
  comment_disabled: z.boolean().optional(),
  duet_disabled: z.boolean().optional(),
  stitch_disabled: z.boolean().optional(),
  max_video_post_duration_sec: z.number().optional(),
});
type CreatorInfo = z.infer<typeof creatorInfoSchema>;

const initSchema = z.object({ publish_id: z.string().min(1), upload_url: z.url({ protocol: /^https?$/ }) });

const statusSchema = z.object({
  status: z.string(),
  fail_reason: z.string().nullish(),
  // The misspelling is TikTok's own field name.
  publicaly_available_post_id: z.array(z.union([z.string(), z.number()])).nullish(),
  uploaded_bytes: z.number().nullish(),
  downloaded_bytes: z.number().nullish(),
});
type PublishStatus = z.infer<typeof statusSchema>;

const tokenSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().positive(),
  refresh_token: z.string().min(1),
  refresh_expires_in: z.number().positive().optional(),
  scope: z.string().optional(),
  open_id: z.string().optional(),
});

/**
 * Post ids are 19-digit int64s: as JSON numbers they do not survive JSON.parse, so integers beyond
 * 2^53 are kept as their source text (JSON.parse source access, Node >= 21).
 */
function parsePreservingIds(text: string): unknown {
  const reviver = (_key: string, value: unknown, context?: { source?: string }): unknown =>
    typeof value === 'number' && !Number.isSafeInteger(value) && Number.isInteger(value) && context?.source ? context.source : value;
  return JSON.parse(text, reviver as (this: unknown, key: string, value: unknown) => unknown);
}

function apiUrl(deps: PlatformDeps, path: string): string {
  const base = deps.urls.api;
  if (!base) throw new Error('TikTok API base URL (urls.api) is not configured.');
  return new URL(path, base.endsWith('/') ? base : `${base}/`).toString();
}

async function api(deps: PlatformDeps, token: string, path: string, body: unknown, options: { safeToRepeat: boolean; repeatable?: boolean }): Promise<unknown> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=UTF-8' };
  const mapError: MapError = (status, answer, responseHeaders) => mapTikTokError(status, answer, responseHeaders, deps.now());
  const init = body === undefined ? { method: 'POST' as const, headers } : { method: 'POST' as const, headers, body: json(body) };
  const response = await requestJson<string>(deps, apiUrl(deps, path), init, mapError, {
    safeToRepeat: options.safeToRepeat,
    repeatable: options.repeatable ?? false,
    response: 'text',
    timeoutMs: tiktokTuning.apiTimeoutMs,
  });
  let parsed: unknown;
  try {
    parsed = parsePreservingIds(response.body);
  } catch {
    throw new PublishError('unknown', `${LABEL} answered ${path} with a body that is not JSON.`, {
      status: response.status,
      retryable: true,
      outcomeUnknown: !options.safeToRepeat,
      detail: `unreadable answer (${response.status})`,
    });
  }
  const envelope = envelopeSchema.safeParse(parsed);
  if (!envelope.success) {
    throw new PublishError('unknown', `${LABEL} answered ${path} with an unexpected body.`, { retryable: true, outcomeUnknown: !options.safeToRepeat, detail: 'unexpected answer' });
  }
  // TikTok reports errors in the envelope; a 2xx with a non-ok code is still an error.
  if (envelope.data.error && envelope.data.error.code !== 'ok') throw mapTikTokError(response.status, parsed, response.headers, deps.now());
  return envelope.data.data;
}

function parseData<T>(schema: z.ZodType<T>, data: unknown, what: string, outcomeUnknown: boolean): T {
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    throw new PublishError('unknown', `${LABEL} answered ${what} with unexpected data.`, { retryable: true, outcomeUnknown, detail: `unexpected ${what} answer` });
  }
  return parsed.data;
}

async function queryCreatorInfo(deps: PlatformDeps, token: string): Promise<CreatorInfo> {
  const data = await api(deps, token, 'v2/post/publish/creator_info/query/', undefined, { safeToRepeat: true, repeatable: true });
  return parseData(creatorInfoSchema, data, 'creator_info', false);
}

async function fetchStatus(deps: PlatformDeps, token: string, publishId: string): Promise<PublishStatus> {
  const data = await api(deps, token, 'v2/post/publish/status/fetch/', { publish_id: publishId }, { safeToRepeat: true, repeatable: true });
  return parseData(statusSchema, data, 'status/fetch', false);
}

// ---------------------------------------------------------------------------------------------
// Tokens

function parseCredentials(credentials: Credentials): TikTokCredentials {
  const parsed = tiktokCredentialsSchema.safeParse(credentials);
  if (!parsed.success) {
    throw new PublishError('auth', `Stored ${LABEL} credentials are incomplete.`, { retryable: false, detail: 'stored credentials are incomplete' });
  }
  return parsed.data;
}

function hasScope(creds: TikTokCredentials, scope: string): boolean {
  return creds.scope.split(/[,\s]+/).includes(scope);
}

async function refresh(credentials: Credentials, deps: PlatformDeps, options: { force: boolean }): Promise<RefreshResult | null> {
  const creds = parseCredentials(credentials);
  const now = deps.now();
  if (!options.force && Date.parse(creds.expiresAt) - now > REFRESH_MARGIN_MS) return null;
  const client = deps.oauthClient;
  if (!client) {
    // Without the app's key the token cannot be renewed; an unforced refresh lets the token serve
    // out its last minutes.
    if (!options.force) return null;
    const detail = MESSAGES.fixOAuthClient(LABEL, 'TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET');
    throw new PublishError('unknown', detail, { retryable: false, detail });
  }
  if (creds.refreshExpiresAt && Date.parse(creds.refreshExpiresAt) <= now) {
    throw new PublishError('auth', `${LABEL} refresh token expired.`, { retryable: false, detail: 'refresh token expired' });
  }
  const form = new URLSearchParams({
    client_key: client.clientId,
    client_secret: client.clientSecret,
    grant_type: 'refresh_token',
    refresh_token: creds.refreshToken,
  });
  const mapError: MapError = (status, body, headers) => mapTikTokError(status, body, headers, deps.now());
  // Not safe to repeat: the refresh token rotates, so a lost answer may have spent it.
  const response = await requestJson<unknown>(
    deps,
    apiUrl(deps, 'v2/oauth/token/'),
    { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'cache-control': 'no-cache' }, body: form.toString() },
    mapError,
    { timeoutMs: tiktokTuning.apiTimeoutMs },
  );
  if (errorCode(response.body).code) throw mapTikTokError(response.status, response.body, response.headers, deps.now());
  const token = parseData(tokenSchema, response.body, 'oauth/token', true);
  const issuedAt = deps.now();
  const expiresAt = new Date(issuedAt + token.expires_in * 1000);
  const next: TikTokCredentials = {
    ...creds,
    accessToken: token.access_token,
    refreshToken: token.refresh_token,
    expiresAt: expiresAt.toISOString(),
    scope: token.scope ?? creds.scope,
  };
  if (token.refresh_expires_in !== undefined) next.refreshExpiresAt = new Date(issuedAt + token.refresh_expires_in * 1000).toISOString();
  if (token.open_id) next.openId = token.open_id;
  deps.log.info({ platform: SPEC.id, expiresAt: next.expiresAt }, 'tiktok access token refreshed');
  return { credentials: next, expiresAt };
}

// ---------------------------------------------------------------------------------------------
// Chunk plan

export interface ChunkPlan {
  videoSize: number;
  chunkSize: number;
  totalChunks: number;
}

/**
 * The Media Transfer Guide's plan: total_chunk_count = floor(size / chunk_size), every chunk
 * chunk_size bytes except the last, which takes the remainder (< 2 * chunk_size <= 128 MB).
 */
export function planChunks(videoSize: number, tuning: { chunkBytes: number; wholeFileMaxBytes: number } = tiktokTuning): ChunkPlan {
  if (!Number.isSafeInteger(videoSize) || videoSize <= 0) throw new RangeError(`Invalid video size: ${videoSize}`);
  if (videoSize < MIN_CHUNK || videoSize <= Math.min(tuning.wholeFileMaxBytes, MAX_CHUNK)) {
    return { videoSize, chunkSize: videoSize, totalChunks: 1 };
  }
  let chunkSize = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, Math.floor(tuning.chunkBytes)));
  // A file over 64 MB must go up in at least two chunks, and there may be at most 1000.
  if (videoSize > MAX_CHUNK) chunkSize = Math.min(chunkSize, Math.floor(videoSize / 2));
  if (Math.floor(videoSize / chunkSize) > MAX_CHUNKS) chunkSize = Math.ceil(videoSize / MAX_CHUNKS);
  return { videoSize, chunkSize, totalChunks: Math.max(1, Math.floor(videoSize / chunkSize)) };
}

function chunkRange(plan: ChunkPlan, index: number): { start: number; end: number } {
  const start = index * plan.chunkSize;
  const end = index === plan.totalChunks - 1 ? plan.videoSize - 1 : start + plan.chunkSize - 1;
  return { start, end };
}

const UPLOAD_TYPES = new Set(['video/mp4', 'video/quicktime', 'video/webm']);

async function uploadChunks(input: PublishInput, deps: PlatformDeps, uploadUrl: string, plan: ChunkPlan, fromChunk: number): Promise<void> {
  const { rendition } = input;
  const contentType = UPLOAD_TYPES.has(rendition.contentType) ? rendition.contentType : 'video/mp4';
  for (let index = fromChunk; index < plan.totalChunks; index++) {
    const { start, end } = chunkRange(plan, index);
    const length = end - start + 1;
    const stream = await rendition.open({ start, end });
    await requestJson<string>(
      deps,
      uploadUrl,
      {
        method: 'PUT',
        headers: { 'content-type': contentType, 'content-range': `bytes ${start}-${end}/${plan.videoSize}` },
        body: streamBody(stream, length),
      },
      mapUploadError(deps),
      // A chunk cannot make a second post: the publish_id is fixed, and a lost answer is settled by
      // status/fetch's uploaded_bytes.
      { safeToRepeat: true, response: 'text', timeoutMs: 120_000 + Math.ceil(length / (256 * 1024)) * 1000 },
    );
    if (index === 0 && plan.totalChunks > 1) deps.crashPoint('tiktok.mid_upload');
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoint

interface TikTokCheckpoint {
  publishId?: string;
  uploadUrl?: string;
  /** ms since the epoch, when init returned. */
  initAt?: number;
  plan?: ChunkPlan;
  /** The rendition the publish was initialised for. */
  sha256?: string;
  mode?: 'direct' | 'inbox';
  privacyLevel?: PrivacyLevel;
  creatorUsername?: string;
  /** Set once every chunk was acknowledged. */
  uploaded?: boolean;
  /** ms since the epoch, when PUBLISH_COMPLETE was first seen without a public post id. */
  completeAt?: number;
  /** Publish ids given up on because TikTok never received all their bytes (for the record). */
  abandoned?: string[];
}

const planSchema = z.object({ videoSize: z.number().int().positive(), chunkSize: z.number().int().positive(), totalChunks: z.number().int().positive() });

function readCheckpoint(checkpoint: Checkpoint): TikTokCheckpoint {
  const out: TikTokCheckpoint = {};
  const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
  const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
  const publishId = str(checkpoint.publishId);
  if (publishId) out.publishId = publishId;
  const uploadUrl = str(checkpoint.uploadUrl);
  if (uploadUrl) out.uploadUrl = uploadUrl;
  const initAt = num(checkpoint.initAt);
  if (initAt !== undefined) out.initAt = initAt;
  const plan = planSchema.safeParse(checkpoint.plan);
  if (plan.success) out.plan = plan.data;
  const sha256 = str(checkpoint.sha256);
  if (sha256) out.sha256 = sha256;
  if (checkpoint.mode === 'direct' || checkpoint.mode === 'inbox') out.mode = checkpoint.mode;
  const privacy = z.enum(PRIVACY_LEVELS).safeParse(checkpoint.privacyLevel);
  if (privacy.success) out.privacyLevel = privacy.data;
  const username = str(checkpoint.creatorUsername);
  if (username) out.creatorUsername = username;
  if (checkpoint.uploaded === true) out.uploaded = true;
  const completeAt = num(checkpoint.completeAt);
  if (completeAt !== undefined) out.completeAt = completeAt;
  if (Array.isArray(checkpoint.abandoned)) out.abandoned = checkpoint.abandoned.filter((v): v is string => typeof v === 'string');
  return out;
}

/** Forgets a publish that can never become a post, so the next step initialises a fresh one. */
async function abandon(input: PublishInput, cp: TikTokCheckpoint, why: string, deps: PlatformDeps): Promise<void> {
  if (!cp.publishId) return;
  deps.log.warn({ platform: SPEC.id, deliveryId: input.deliveryId, publishId: cp.publishId, why }, 'tiktok publish abandoned; it never received the whole video');
  await input.saveCheckpoint({
    publishId: null,
    uploadUrl: null,
    uploaded: false,
    completeAt: null,
    abandoned: [...(cp.abandoned ?? []), cp.publishId],
  });
}

// ---------------------------------------------------------------------------------------------
// Outcomes

function webBase(deps: PlatformDeps): string {
  return (deps.urls.web ?? DEFAULT_WEB_URL).replace(/\/+$/, '');
}

function handleOf(cp: TikTokCheckpoint, input: PublishInput): string {
  return (cp.creatorUsername ?? input.account.handle).replace(/^@/, '');
}

function profileUrl(deps: PlatformDeps, handle: string): string {
  return `${webBase(deps)}/@${encodeURIComponent(handle)}`;
}

/** What the worker records, plus a plain-words note for the chat where the link is not the video. */
export type TikTokResult = PublishResult & { note?: string };

function firstPostId(status: PublishStatus): string | undefined {
  for (const id of status.publicaly_available_post_id ?? []) {
    const text = String(id);
    if (/^\d+$/.test(text)) return text;
  }
  return undefined;
}

/** Turns a status into a result, or throws for FAILED. Saves moderation bookkeeping as it goes. */
async function interpret(
  status: PublishStatus,
  publishId: string,
  cp: TikTokCheckpoint,
  input: PublishInput,
  deps: PlatformDeps,
): Promise<TikTokResult> {
  const handle = handleOf(cp, input);
  const now = deps.now();
  switch (status.status) {
    case 'FAILED': {
      const reason = status.fail_reason ?? 'unknown';
      const error = mapTikTokError(200, { error: { code: reason, message: 'the post failed on TikTok' } }, new Headers(), now);
      // This publish is dead either way; a retry (for a failure on TikTok's side) starts afresh.
      if (error.retryable) await abandon(input, cp, `FAILED: ${reason}`, deps);
      throw error;
    }
    case 'SEND_TO_USER_INBOX':
      return { status: 'published', remoteId: publishId, url: profileUrl(deps, handle), note: MESSAGES.tiktokSentToInbox() };
    case 'PUBLISH_COMPLETE': {
      const postId = firstPostId(status);
      if (postId) return { status: 'published', remoteId: postId, url: `${webBase(deps)}/@${encodeURIComponent(handle)}/video/${postId}` };
      const profile = profileUrl(deps, handle);
      // A private post never gets a public id; waiting for one would be forever.
      if (cp.privacyLevel === 'SELF_ONLY') return { status: 'published', remoteId: publishId, url: profile, note: MESSAGES.tiktokPrivatePost(profile) };
      let completeAt = cp.completeAt;
      if (completeAt === undefined) {
        completeAt = now;
        await input.saveCheckpoint({ completeAt });
      }
      const waited = Math.max(0, (now - completeAt) / 1000);
      if (waited >= tiktokTuning.moderationMaxWaitSeconds) {
        return { status: 'published', remoteId: publishId, url: profile, note: MESSAGES.tiktokAwaitingReview(profile) };
      }
      // Doubling waits: about as long again as we have waited so far.
      const checkAfterSeconds = Math.round(Math.min(tiktokTuning.moderationMaxCheckSeconds, Math.max(tiktokTuning.moderationMinCheckSeconds, waited)));
      return { status: 'processing', remoteId: publishId, checkAfterSeconds, note: MESSAGES.tiktokAwaitingReview(profile) };
    }
    default: {
      // PROCESSING_UPLOAD, PROCESSING_DOWNLOAD, or a status TikTok added later.
      const since = cp.initAt ?? now;
      if ((now - since) / 1000 > tiktokTuning.stuckProcessingSeconds) {
        const uploaded = status.uploaded_bytes ?? 'unknown';
        return {
          status: 'unconfirmed',
          evidence: `TikTok publish ${publishId} is still ${status.status} ${Math.round((now - since) / 60_000)} minutes after it started (uploaded_bytes ${uploaded} of ${cp.plan?.videoSize ?? input.rendition.size}).`,
        };
      }
      return { status: 'processing', remoteId: publishId, checkAfterSeconds: tiktokTuning.processingCheckSeconds };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Publishing

function prePublishChecks(input: PublishInput, creds: TikTokCredentials): void {
  const problem = captionProblem(input.caption, SPEC);
  if (problem) throw new PublishError('rejected', problem, { retryable: false, detail: problem });
  const scope = creds.postMode === 'inbox' ? 'video.upload' : 'video.publish';
  if (!hasScope(creds, scope)) {
    throw new PublishError('auth', `${LABEL} token lacks the ${scope} scope.`, { retryable: false, detail: `the account was linked without the ${scope} permission` });
  }
}

/** creator_info, init, checkpoint, upload; returns processing. */
async function startPublish(input: PublishInput, deps: PlatformDeps, creds: TikTokCredentials, cp: TikTokCheckpoint): Promise<TikTokResult> {
  const log = deps.log.child({ platform: SPEC.id, deliveryId: input.deliveryId });
  const { rendition } = input;
  let creatorUsername = input.account.handle.replace(/^@/, '');
  let body: Record<string, unknown>;
  let path: string;
  const plan = planChunks(rendition.size);
  const sourceInfo = { source: 'FILE_UPLOAD', video_size: plan.videoSize, chunk_size: plan.chunkSize, total_chunk_count: plan.totalChunks };

  if (creds.postMode === 'inbox') {
    path = 'v2/post/publish/inbox/video/init/';
    // The inbox init documents source_info only; whether it takes a title is unconfirmed.
    body = { source_info: sourceInfo };
  } else {
    const creator = await queryCreatorInfo(deps, creds.accessToken);
    creatorUsername = creator.creator_username;
    if (!creator.privacy_level_options.includes(creds.privacyLevel)) {
      const detail = MESSAGES.tiktokPrivacyNotOffered(creds.privacyLevel, creator.privacy_level_options);
      throw new PublishError('rejected', detail, { retryable: false, detail });
    }
    const max = creator.max_video_post_duration_sec;
    if (max !== undefined && rendition.durationSeconds > max) {
      const detail = MESSAGES.videoTooLong(LABEL, rendition.durationSeconds, max);
      throw new PublishError('invalid_media', detail, { retryable: false, detail });
    }
    path = 'v2/post/publish/video/init/';
    body = {
      post_info: {
        title: input.caption,
        privacy_level: creds.privacyLevel,
        // An interaction the creator switched off in TikTok stays off.
        disable_comment: Boolean(creator.comment_disabled || creds.disableComment),
        disable_duet: Boolean(creator.duet_disabled || creds.disableDuet),
        disable_stitch: Boolean(creator.stitch_disabled || creds.disableStitch),
        brand_content_toggle: false,
        brand_organic_toggle: false,
        ...(creds.isAigc ? { is_aigc: true } : {}),
      },
      source_info: sourceInfo,
    };
  }

  // Not safe to repeat in general, but an init whose answer is lost never receives bytes and so
  // never becomes a post: the next attempt simply initialises again.
  const data = await api(deps, creds.accessToken, path, body, { safeToRepeat: false });
  const init = parseData(initSchema, data, 'init', true);
  deps.crashPoint('tiktok.after_init');
  const initAt = deps.now();
  await input.saveCheckpoint({
    publishId: init.publish_id,
    uploadUrl: init.upload_url,
    initAt,
    plan,
    sha256: rendition.sha256,
    mode: creds.postMode,
    privacyLevel: creds.privacyLevel,
    creatorUsername,
    uploaded: false,
    completeAt: null,
  });
  log.info({ publishId: init.publish_id, chunks: plan.totalChunks, chunkSize: plan.chunkSize, size: plan.videoSize }, 'tiktok publish initialised');
  const next: TikTokCheckpoint = { ...cp, publishId: init.publish_id, uploadUrl: init.upload_url, initAt, plan, sha256: rendition.sha256, mode: creds.postMode, privacyLevel: creds.privacyLevel, creatorUsername };
  delete next.completeAt;
  return finishUpload(input, deps, next, 0);
}

async function finishUpload(input: PublishInput, deps: PlatformDeps, cp: TikTokCheckpoint, fromChunk: number): Promise<TikTokResult> {
  const { publishId, uploadUrl, plan } = cp;
  if (!publishId || !uploadUrl || !plan) throw new Error('TikTok checkpoint lacks the upload session.');
  await uploadChunks(input, deps, uploadUrl, plan, fromChunk);
  await input.saveCheckpoint({ uploaded: true });
  deps.crashPoint('tiktok.after_upload');
  deps.log.info({ platform: SPEC.id, deliveryId: input.deliveryId, publishId }, 'tiktok upload complete');
  return { status: 'processing', remoteId: publishId, checkAfterSeconds: tiktokTuning.firstCheckSeconds };
}

/** The chunk index `uploaded` bytes end at, when that is a chunk boundary of the plan. */
function chunkAt(plan: ChunkPlan, uploaded: number): number | undefined {
  if (uploaded < 0 || uploaded >= plan.videoSize || uploaded % plan.chunkSize !== 0) return undefined;
  const index = uploaded / plan.chunkSize;
  return index < plan.totalChunks ? index : undefined;
}

/** A checkpoint holds a publish_id: ask TikTok where it stands before doing anything else. */
async function resumePublish(input: PublishInput, deps: PlatformDeps, creds: TikTokCredentials, cp: TikTokCheckpoint, publishId: string): Promise<TikTokResult> {
  const log = deps.log.child({ platform: SPEC.id, deliveryId: input.deliveryId, publishId });
  let status: PublishStatus;
  try {
    status = await fetchStatus(deps, creds.accessToken, publishId);
  } catch (error) {
    if (error instanceof PublishError && error.code === 'rejected') {
      // TikTok no longer knows the publish_id: it may or may not have become a post.
      return { status: 'unconfirmed', evidence: `TikTok no longer recognises publish ${publishId} (${error.detail}); an earlier attempt ${cp.uploaded ? 'uploaded the whole video' : 'may have uploaded the video'}.` };
    }
    throw error;
  }
  if (status.status !== 'PROCESSING_UPLOAD') return interpret(status, publishId, cp, input, deps);

  const size = cp.plan?.videoSize ?? input.rendition.size;
  const uploaded = status.uploaded_bytes;
  if (cp.uploaded || (typeof uploaded === 'number' && uploaded >= size)) return interpret(status, publishId, cp, input, deps);
  // Without uploaded_bytes we cannot tell a finished upload from a broken one: wait, bounded.
  if (typeof uploaded !== 'number') return interpret(status, publishId, cp, input, deps);

  // TikTok holds part of the video: this publish cannot become a post unless we finish it.
  const age = cp.initAt === undefined ? Infinity : (deps.now() - cp.initAt) / 1000;
  const from = cp.plan ? chunkAt(cp.plan, uploaded) : undefined;
  const sameVideo = cp.sha256 === input.rendition.sha256 && cp.plan?.videoSize === input.rendition.size;
  const sameMode = (cp.mode ?? 'direct') === creds.postMode;
  if (from !== undefined && sameVideo && sameMode && cp.uploadUrl && age < tiktokTuning.uploadUrlMaxAgeSeconds) {
    log.info({ uploaded, fromChunk: from }, 'tiktok upload resumed');
    try {
      return await finishUpload(input, deps, cp, from);
    } catch (error) {
      if (!(error instanceof UploadRefusedError)) throw error;
      log.warn({ detail: error.detail }, 'tiktok refused the resumed upload');
    }
    // A refused chunk may mean TikTok had it after all: only abandon what it confirms is short.
    const again = await fetchStatus(deps, creds.accessToken, publishId);
    const held = again.uploaded_bytes;
    if (again.status !== 'PROCESSING_UPLOAD' || typeof held !== 'number' || held >= size) return interpret(again, publishId, cp, input, deps);
  }
  await abandon(input, cp, `upload incomplete (${uploaded} of ${size} bytes)`, deps);
  const fresh = { ...cp };
  delete fresh.publishId;
  delete fresh.uploadUrl;
  delete fresh.uploaded;
  delete fresh.completeAt;
  fresh.abandoned = [...(cp.abandoned ?? []), publishId];
  return startPublish(input, deps, creds, fresh);
}

async function publish(input: PublishInput, deps: PlatformDeps): Promise<TikTokResult> {
  const creds = parseCredentials(input.credentials);
  prePublishChecks(input, creds);
  const cp = readCheckpoint(input.checkpoint);
  if (cp.publishId) return resumePublish(input, deps, creds, cp, cp.publishId);
  return startPublish(input, deps, creds, cp);
}

async function check(remoteId: string, input: PublishInput, deps: PlatformDeps): Promise<TikTokResult> {
  const creds = parseCredentials(input.credentials);
  const cp = readCheckpoint(input.checkpoint);
  const status = await fetchStatus(deps, creds.accessToken, remoteId);
  return interpret(status, remoteId, cp.publishId === remoteId || !cp.publishId ? cp : {}, input, deps);
}

/** creator_info: the read every post starts with, so it needs exactly the scopes posting needs. */
async function validate(credentials: Credentials, deps: PlatformDeps): Promise<void> {
  await queryCreatorInfo(deps, parseCredentials(credentials).accessToken);
}

export const tiktok: PlatformAdapter = {
  spec: SPEC,
  publish,
  check,
  refresh,
  validate,
};
