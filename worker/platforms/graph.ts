/**
 * The one Meta Graph helper shared by Instagram (both logins) and Threads (platform reference §2,
 * §8): requests with the token as a parameter, the `{error: {message, type, code, error_subcode,
 * fbtrace_id}}` shape mapped to PublishError by code and subcode, and the container flow both
 * platforms share: create a container from the public link (or, for Instagram with Facebook Login,
 * a resumable container whose bytes go to the rupload host), poll it until FINISHED, check the
 * publishing quota, `*_publish`, permalink.
 *
 * Exactly-once: the `*_publish` call is not idempotent, but the container records its outcome
 * (status PUBLISHED). The container id is checkpointed right after it is created, and the fact that
 * a publish call is about to be sent before it is sent; a resumed attempt (or a publish call without
 * an answer) reads the container before publishing: PUBLISHED means the post exists and is never
 * published again, FINISHED means the earlier call did not take effect. A container that can no
 * longer become a post (ERROR, EXPIRED, gone) is replaced by a new one, which is safe because an
 * unpublished container is invisible.
 *
 * Resumable uploads: the container id and its upload URI are checkpointed before any byte is sent,
 * the byte count after each chunk, and `uploaded` before the container is polled; an interrupted
 * upload asks the upload session for its offset and sends only what it lacks.
 */
import { z } from 'zod';
import { captionProblem } from '../../core/captions.ts';
import { MESSAGES, PublishError, withOutcomeUnknown } from '../../core/errors.ts';
import type { Checkpoint, PlatformDeps, PlatformSpec, PublishInput, PublishResult } from '../../core/platforms.ts';
import { requestJson, retryAfterSeconds, streamBody } from './http.ts';
import type { HttpRequest, MapError, RequestOptions } from './http.ts';

// ---------------------------------------------------------------------------------------------
// Errors

export interface GraphErrorInfo {
  code: number | undefined;
  subcode: number | undefined;
  message: string;
  type: string | undefined;
  isTransient: boolean;
  fbtraceId: string | undefined;
  userTitle: string | undefined;
  userMessage: string | undefined;
}

export function graphErrorInfo(body: unknown): GraphErrorInfo {
  const info: GraphErrorInfo = { code: undefined, subcode: undefined, message: '', type: undefined, isTransient: false, fbtraceId: undefined, userTitle: undefined, userMessage: undefined };
  if (typeof body === 'string') {
    info.message = body.replace(/\s+/g, ' ').trim().slice(0, 300);
    return info;
  }
  if (!body || typeof body !== 'object') return info;
  // The rupload host answers `{debug_info: {retriable, type, message}}` instead.
  const { error, debug_info: debug } = body as { error?: unknown; debug_info?: unknown };
  if ((!error || typeof error !== 'object') && debug && typeof debug === 'object') {
    const d = debug as Record<string, unknown>;
    info.message = typeof d.message === 'string' ? d.message.slice(0, 300) : '';
    info.type = typeof d.type === 'string' ? d.type : undefined;
    info.isTransient = d.retriable === true;
    return info;
  }
  if (!error || typeof error !== 'object') return info;
  const e = error as Record<string, unknown>;
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : undefined);
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  info.code = num(e.code);
  info.subcode = num(e.error_subcode);
  info.message = (str(e.message) ?? '').slice(0, 300);
  info.type = str(e.type);
  info.isTransient = e.is_transient === true;
  info.fbtraceId = str(e.fbtrace_id);
  info.userTitle = str(e.error_user_title);
  info.userMessage = str(e.error_user_msg);
  return info;
}

/** The BUC headers carry `estimated_time_to_regain_access` in minutes; the best wait we get. */
function regainAccessSeconds(headers: Headers): number | undefined {
  let best: number | undefined;
  for (const name of ['x-business-use-case-usage', 'x-app-usage', 'x-ad-account-usage']) {
    const raw = headers.get(name);
    if (!raw) continue;
    const found = raw.match(/"estimated_time_to_regain_access"\s*:\s*(\d+)/g) ?? [];
    for (const match of found) {
      const minutes = Number(match.replace(/\D+/g, ''));
      if (minutes > 0) best = Math.max(best ?? 0, minutes * 60);
    }
  }
  return best;
}

const RATE_CODES = new Set([4, 17, 32, 613, 80001, 80002]);
/** 190 subcodes a forced refresh may cure: an expired session. The rest need the person. */
const REFRESHABLE_190 = new Set([463]);
/** Container failures after which a new container may succeed (Meta's side, or our link). */
export const RETRY_WITH_NEW_CONTAINER = new Set([2207001, 2207003, 2207020, 2207032, 2207052, 2207053]);

export interface GraphErrorContext {
  label: string;
  /** Wait for a rate limit without any hint from the answer. */
  defaultRetryAfterSeconds: number;
  /** Wait after the daily publishing limit (a rolling 24 h window: no exact time is known). */
  publishLimitRetryAfterSeconds: number;
}

/** Words for the person from the subcodes the reference lists as their fault. */
function userDetail(label: string, subcode: number | undefined, info: GraphErrorInfo): string | undefined {
  switch (subcode) {
    case 2207026:
      return MESSAGES.metaUnsupportedVideo(label);
    case 2207057:
      return 'the cover frame position (thumb_offset) is outside the video.';
    case 2207010:
      return MESSAGES.metaCaptionTooLong(label);
    case 2207023:
      return 'the media type is not one it accepts.';
    case 2207050:
      return MESSAGES.metaAccountRestricted(label);
    case 2207051:
    case 4279013:
      return MESSAGES.metaBlockedAsSpam(label);
    default:
      return info.userMessage;
  }
}

/** Maps a Graph error answer (any HTTP status) to a PublishError, per the reference's code table. */
export function mapGraphError(status: number, body: unknown, headers: Headers, nowMs: number, context: GraphErrorContext): PublishError {
  const info = graphErrorInfo(body);
  const { label } = context;
  const codes = [info.code, info.subcode].filter((v) => v !== undefined).join('/');
  const raw = `${info.message || `HTTP ${status}`}${codes ? ` (${codes})` : ''}`;
  const message = `${label} answered ${status}: ${raw}${info.fbtraceId ? ` fbtrace_id ${info.fbtraceId}` : ''}`;
  const { code, subcode } = info;
  const options = { status, detail: raw };

  if (code === 9 || subcode === 2207042) {
    return new PublishError('rate_limited', message, {
      ...options,
      retryable: true,
      retryAfterSeconds: context.publishLimitRetryAfterSeconds,
      userMessage: MESSAGES.metaPublishLimit(label, formatWait(context.publishLimitRetryAfterSeconds)),
    });
  }
  if (code === 190 || /session has been invalidated/i.test(info.message)) {
    const refreshable = code === 190 && (subcode === undefined ? /expired/i.test(info.message) : REFRESHABLE_190.has(subcode));
    return new PublishError('auth', message, { ...options, retryable: refreshable });
  }
  if (code === 10 || (code !== undefined && code >= 200 && code <= 299)) {
    return new PublishError('auth', message, { ...options, retryable: false, detail: MESSAGES.metaMissingPermission(label) });
  }
  if ((code !== undefined && RATE_CODES.has(code)) || status === 429) {
    return new PublishError('rate_limited', message, {
      ...options,
      retryable: true,
      retryAfterSeconds: retryAfterSeconds(headers, nowMs) ?? regainAccessSeconds(headers) ?? context.defaultRetryAfterSeconds,
    });
  }
  const user = userDetail(label, subcode, info);
  if (subcode === 2207026 || subcode === 2207057 || subcode === 2207023) return new PublishError('invalid_media', message, { ...options, retryable: false, detail: user ?? raw });
  if (subcode === 2207010 || subcode === 2207050 || subcode === 2207051 || subcode === 4279013) {
    return new PublishError('rejected', message, { ...options, retryable: false, detail: user ?? raw });
  }
  if (info.isTransient || (subcode !== undefined && RETRY_WITH_NEW_CONTAINER.has(subcode)) || code === 1 || code === 2 || status >= 500) {
    return new PublishError('unavailable', message, { ...options, retryable: true });
  }
  // Not ready for publishing yet (reported while a container is still processing).
  if (subcode === 2207027 || code === 9007) return new PublishError('unavailable', message, { ...options, retryable: true });
  if (code === 100 || code === 24) return new PublishError('rejected', message, { ...options, retryable: false, detail: user ?? raw });
  if (status === 401) return new PublishError('auth', message, { ...options, retryable: true });
  if (status === 404) return new PublishError('rejected', message, { ...options, retryable: false });
  return new PublishError('unknown', message, options);
}

/** "Object ... does not exist" on a read: the container or media is gone (or never was ours). */
export function isMissingObject(error: unknown): boolean {
  if (!(error instanceof PublishError)) return false;
  return error.code === 'rejected' && (error.status === 404 || /\((100\/33|24)\b|does not exist|cannot be loaded/i.test(error.detail));
}

function formatWait(seconds: number): string {
  if (seconds >= 3600) {
    const hours = Math.round(seconds / 3600);
    return `${hours} hour${hours === 1 ? '' : 's'}`;
  }
  const minutes = Math.max(1, Math.round(seconds / 60));
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

// ---------------------------------------------------------------------------------------------
// Requests

export interface GraphTarget {
  /** The host's base URL (from config) and the API version path segment ('' for none). */
  base: string;
  version: string;
  token: string;
  timeoutMs: number;
  context: GraphErrorContext;
}

function graphUrl(target: GraphTarget, path: string, query: Record<string, string>): string {
  const base = target.base.replace(/\/+$/, '');
  const url = new URL(`${base}${target.version ? `/${target.version}` : ''}/${path.replace(/^\/+/, '')}`);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  return url.toString();
}

/**
 * One Graph call. The token goes as `access_token` (query for reads, form body for writes), as the
 * reference documents it; http.ts never logs query strings or bodies.
 */
export async function graphCall<T>(
  deps: PlatformDeps,
  target: GraphTarget,
  method: 'GET' | 'POST',
  path: string,
  params: Record<string, string>,
  options: { safeToRepeat: boolean },
): Promise<T> {
  const requestOptions = { safeToRepeat: options.safeToRepeat, timeoutMs: target.timeoutMs };
  if (method === 'GET') {
    const url = graphUrl(target, path, { ...params, access_token: target.token });
    return graphRequest<T>(deps, target, url, { method: 'GET' }, requestOptions);
  }
  const form = new URLSearchParams({ ...params, access_token: target.token });
  const url = graphUrl(target, path, {});
  return graphRequest<T>(deps, target, url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() }, requestOptions);
}

/** Any request to a Meta host (Graph or rupload), its errors mapped by the Graph table. */
async function graphRequest<T>(deps: PlatformDeps, target: GraphTarget, url: string, init: HttpRequest, options: RequestOptions): Promise<T> {
  const mapError: MapError = (status, body, headers) => mapGraphError(status, body, headers, deps.now(), target.context);
  return (await requestJson<T>(deps, url, init, mapError, options)).body;
}

export function unexpected(label: string, what: string, outcomeUnknown: boolean): PublishError {
  return new PublishError('unknown', `${label} answered ${what} with an unexpected body.`, { retryable: true, outcomeUnknown, detail: `unexpected ${what} answer` });
}

// ---------------------------------------------------------------------------------------------
// Container status, the shape both platforms poll

/** IN_PROGRESS, FINISHED, PUBLISHED, ERROR, EXPIRED (or something newer, treated as in progress). */
export interface ContainerStatus {
  state: string;
  /** Instagram `status` ("Error: ... 2207026") or Threads `error_message` (FAILED_DOWNLOADING_VIDEO). */
  reason: string | undefined;
}

export const idSchema = z.object({ id: z.union([z.string().min(1), z.number()]).transform(String) });
const uploadUriSchema = z.object({ uri: z.url() });
const offsetSchema = z.object({ offset: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/).transform(Number)]) });
const permalinkSchema = z.object({ permalink: z.string().url().optional(), shortcode: z.string().optional() });
const quotaSchema = z.object({
  data: z.array(z.object({ quota_usage: z.number().optional(), config: z.object({ quota_total: z.number().optional(), quota_duration: z.number().optional() }).optional() })),
});
const listSchema = z.object({
  data: z.array(z.object({ id: z.union([z.string(), z.number()]).transform(String), permalink: z.string().optional(), timestamp: z.string().optional() })),
});

// ---------------------------------------------------------------------------------------------
// The container flow

export interface ContainerTuning {
  requestTimeoutMs: number;
  /** First look after creating a container: Meta fetches and processes the video meanwhile. */
  firstCheckSeconds: number;
  checkSeconds: number;
  /** A container still IN_PROGRESS this long after creation is given up for a new one. */
  maxProcessingSeconds: number;
  /** Containers expire after 24 h; older ones are not worth publishing. */
  containerMaxAgeSeconds: number;
  /** Failed containers a delivery may replace before it gives up (each one cost a fetch). */
  maxContainers: number;
  defaultRetryAfterSeconds: number;
  publishLimitRetryAfterSeconds: number;
  /** A publish call whose answer was lost: how far back the recent-posts lookup reaches. */
  lookupSkewSeconds: number;
}

/** Bytes sent to Meta's rupload host instead of a public link (Instagram with Facebook Login). */
export interface ResumableUpload {
  /** The rupload host from config: the only host the token is sent to for bytes. */
  base: string;
  /**
   * Bytes per POST, each with its `offset`, as a resumed upload sends them. fetch does not hold
   * back a streamed body for a slow socket, so one POST for a whole file could sit in memory.
   */
  chunkBytes: number;
}

export interface ContainerPlatform {
  spec: PlatformSpec;
  /** Prefix of crash point names ('instagram', 'threads'). */
  id: string;
  tuning: ContainerTuning;
  target(deps: PlatformDeps): GraphTarget;
  userId: string;
  /** The create call's path (relative to the version) and parameters, without the token. */
  createPath: string;
  /** `mediaUrl` is null for a resumable container (the bytes follow on the rupload host). */
  createParams(input: PublishInput, mediaUrl: string | null): Record<string, string>;
  /** How this account's containers get their bytes: null for the public link. */
  upload(deps: PlatformDeps): ResumableUpload | null;
  statusFields: string;
  readStatus(body: unknown): ContainerStatus | null;
  publishPath: string;
  quotaPath: string;
  recentPath: string;
  /** Maps a container's ERROR reason to the error to throw; `newContainer` when a new one may work. */
  containerFailed(reason: string | undefined): { error: PublishError; newContainer: boolean };
  profileUrl(input: PublishInput): string;
}

export interface ContainerCheckpoint {
  containerId?: string;
  /** ms since the epoch, when the container was created. */
  containerAt?: number;
  /** A resumable container's upload URI, the bytes the server acknowledged, and whether all are in. */
  uploadUri?: string;
  uploadedBytes?: number;
  uploaded?: boolean;
  /** ISO time a publish call was about to be sent; cleared when its outcome is known. */
  publishSentAt?: string;
  mediaId?: string;
  url?: string;
  /** Containers given up on (never published), for the record. */
  abandoned?: string[];
}

export function readContainerCheckpoint(checkpoint: Checkpoint): ContainerCheckpoint {
  const out: ContainerCheckpoint = {};
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const containerId = str(checkpoint.containerId);
  if (containerId) out.containerId = containerId;
  if (typeof checkpoint.containerAt === 'number' && Number.isFinite(checkpoint.containerAt)) out.containerAt = checkpoint.containerAt;
  const uploadUri = str(checkpoint.uploadUri);
  if (uploadUri) out.uploadUri = uploadUri;
  if (typeof checkpoint.uploadedBytes === 'number' && Number.isSafeInteger(checkpoint.uploadedBytes)) out.uploadedBytes = checkpoint.uploadedBytes;
  if (typeof checkpoint.uploaded === 'boolean') out.uploaded = checkpoint.uploaded;
  const sent = str(checkpoint.publishSentAt);
  if (sent) out.publishSentAt = sent;
  const mediaId = str(checkpoint.mediaId);
  if (mediaId) out.mediaId = mediaId;
  const url = str(checkpoint.url);
  if (url) out.url = url;
  if (Array.isArray(checkpoint.abandoned)) out.abandoned = checkpoint.abandoned.filter((v): v is string => typeof v === 'string');
  return out;
}

interface Run {
  platform: ContainerPlatform;
  input: PublishInput;
  deps: PlatformDeps;
  target: GraphTarget;
  cp: ContainerCheckpoint;
  log: PlatformDeps['log'];
}

async function save(run: Run, patch: Record<string, unknown>): Promise<void> {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete (run.cp as Record<string, unknown>)[k];
    else (run.cp as Record<string, unknown>)[k] = v;
  }
  await run.input.saveCheckpoint(patch);
}

async function abandon(run: Run, why: string): Promise<void> {
  const id = run.cp.containerId;
  if (!id) return;
  run.log.warn({ containerId: id, why }, 'container abandoned; it was never published');
  await save(run, { containerId: null, containerAt: null, publishSentAt: null, uploadUri: null, uploadedBytes: null, uploaded: null, abandoned: [...(run.cp.abandoned ?? []), id] });
}

async function readStatus(run: Run, containerId: string): Promise<ContainerStatus> {
  const body = await graphCall<unknown>(run.deps, run.target, 'GET', containerId, { fields: run.platform.statusFields }, { safeToRepeat: true });
  const status = run.platform.readStatus(body);
  if (!status) throw unexpected(run.platform.spec.label, 'the container status', false);
  return status;
}

async function permalinkOf(run: Run, mediaId: string): Promise<string> {
  const body = await graphCall<unknown>(run.deps, run.target, 'GET', mediaId, { fields: 'permalink,shortcode' }, { safeToRepeat: true });
  const parsed = permalinkSchema.safeParse(body);
  // A post without a permalink (yet) is still out: the profile is the honest fallback.
  return parsed.success && parsed.data.permalink ? parsed.data.permalink : run.platform.profileUrl(run.input);
}

async function published(run: Run, mediaId: string): Promise<PublishResult> {
  if (run.cp.url) return { status: 'published', remoteId: mediaId, url: run.cp.url };
  let url: string;
  try {
    url = await permalinkOf(run, mediaId);
  } catch (error) {
    // The post is out: failing the delivery over its link would invite a manual repost.
    run.log.warn({ mediaId, error: error instanceof Error ? error.message : String(error) }, 'permalink unreadable; using the profile');
    return { status: 'published', remoteId: mediaId, url: run.platform.profileUrl(run.input), note: MESSAGES.metaPublishedNoLink(run.platform.spec.label) };
  }
  await save(run, { url });
  return { status: 'published', remoteId: mediaId, url };
}

/**
 * The container says PUBLISHED but we lack the media id (the publish answer was lost): find the
 * post among the account's recent media. It is out either way; only the link is at stake.
 */
async function publishedWithoutId(run: Run, containerId: string): Promise<PublishResult> {
  const since = run.cp.publishSentAt ? Date.parse(run.cp.publishSentAt) - run.platform.tuning.lookupSkewSeconds * 1000 : (run.cp.containerAt ?? 0);
  let found: { id: string; permalink?: string | undefined } | undefined;
  try {
    const body = await graphCall<unknown>(run.deps, run.target, 'GET', run.platform.recentPath, { fields: 'id,permalink,timestamp', limit: '10' }, { safeToRepeat: true });
    const list = listSchema.safeParse(body);
    // Recent media only says "posted at about that time": a single candidate is the one.
    const candidates = list.success ? list.data.data.filter((m) => !m.timestamp || Date.parse(m.timestamp) >= since) : [];
    if (candidates.length === 1) found = candidates[0];
  } catch (error) {
    run.log.warn({ containerId, error: error instanceof Error ? error.message : String(error) }, 'recent media lookup failed');
  }
  await save(run, { publishSentAt: null });
  if (found) {
    await save(run, { mediaId: found.id });
    if (found.permalink) await save(run, { url: found.permalink });
    return published(run, found.id);
  }
  const url = run.platform.profileUrl(run.input);
  await save(run, { mediaId: containerId, url });
  return { status: 'published', remoteId: containerId, url, note: MESSAGES.metaPublishedNoLink(run.platform.spec.label) };
}

async function checkQuota(run: Run): Promise<void> {
  const { label } = run.platform.spec;
  let body: unknown;
  try {
    body = await graphCall<unknown>(run.deps, run.target, 'GET', run.platform.quotaPath, { fields: 'quota_usage,config' }, { safeToRepeat: true });
  } catch (error) {
    // The quota read is advisory: the publish call enforces the limit itself (code 9).
    if (error instanceof PublishError && (error.code === 'auth' || error.code === 'rate_limited')) throw error;
    run.log.warn({ error: error instanceof Error ? error.message : String(error) }, 'publishing limit unreadable');
    return;
  }
  const parsed = quotaSchema.safeParse(body);
  const entry = parsed.success ? parsed.data.data[0] : undefined;
  const usage = entry?.quota_usage;
  const total = entry?.config?.quota_total;
  if (usage === undefined || total === undefined || usage < total) return;
  const wait = run.platform.tuning.publishLimitRetryAfterSeconds;
  throw new PublishError('rate_limited', `${label} publishing limit reached (${usage} of ${total} in 24 h).`, {
    retryable: true,
    retryAfterSeconds: wait,
    detail: `publishing limit reached (${usage} of ${total})`,
    userMessage: MESSAGES.metaPublishLimit(label, formatWait(wait), total),
  });
}

async function createContainer(run: Run, mediaUrl: string | null): Promise<PublishResult> {
  const { platform } = run;
  const { label } = platform.spec;
  const upload = platform.upload(run.deps);
  if (!upload && !mediaUrl) {
    const detail = MESSAGES.metaNeedsPublicLink(label);
    throw new PublishError('rejected', `${label} needs a public link to the video (PUBLIC_BASE_URL).`, { retryable: false, detail, userMessage: detail });
  }
  // A create whose answer is lost leaves an orphan container that nobody can publish, and it
  // expires in 24 h: safe to repeat (it only counts toward the 400 containers a day).
  const body = await graphCall<unknown>(run.deps, run.target, 'POST', platform.createPath, platform.createParams(run.input, upload ? null : mediaUrl), { safeToRepeat: true });
  const parsed = idSchema.safeParse(body);
  if (!parsed.success) throw unexpected(platform.spec.label, 'the container creation', false);
  const containerId = parsed.data.id;
  if (!upload) {
    await save(run, { containerId, containerAt: run.deps.now(), publishSentAt: null });
    run.deps.crashPoint(`${platform.id}.after_container`);
    run.log.info({ containerId }, 'container created');
    return { status: 'processing', remoteId: containerId, checkAfterSeconds: platform.tuning.firstCheckSeconds };
  }
  const returned = uploadUriSchema.safeParse(body);
  if (!returned.success) throw unexpected(platform.spec.label, 'the resumable container creation', false);
  const uploadUri = onUploadHost(returned.data.uri, upload);
  await save(run, { containerId, containerAt: run.deps.now(), publishSentAt: null, uploadUri, uploadedBytes: 0, uploaded: false });
  run.deps.crashPoint(`${platform.id}.after_container`);
  run.log.info({ containerId }, 'resumable container created');
  await uploadBytes(run, upload, uploadUri, 0);
  return { status: 'processing', remoteId: containerId, checkAfterSeconds: platform.tuning.firstCheckSeconds };
}

/**
 * Meta's own URI is used (a hand-built one can leave the container stuck IN_PROGRESS), but only on
 * the configured rupload host: the token never goes anywhere a create answer names.
 */
function onUploadHost(uri: string, upload: ResumableUpload): string {
  const given = new URL(uri);
  const base = new URL(upload.base);
  if (given.origin === base.origin) return given.toString();
  return new URL(`${given.pathname}${given.search}`, base).toString();
}

/**
 * The upload session's own count: the one offset the next POST may carry; null when the session
 * cannot say. How to read it is UNCONFIRMED in the reference (§2); this asks the upload URI itself
 * (GET, the same OAuth header), as Meta's Graph resumable-upload API answers `GET upload:{id}`
 * with its `file_offset`. Auth, rate-limit and transient failures are thrown as usual.
 */
async function uploadOffset(run: Run, uri: string): Promise<number | null> {
  let body: unknown;
  try {
    body = await graphRequest<unknown>(run.deps, run.target, uri, { method: 'GET', headers: { authorization: `OAuth ${run.target.token}` } }, { safeToRepeat: true, timeoutMs: run.target.timeoutMs });
  } catch (error) {
    if (error instanceof PublishError && !isMissingObject(error) && (error.code === 'rejected' || (error.code === 'unknown' && error.status !== undefined && error.status < 500))) return null;
    throw error;
  }
  const parsed = offsetSchema.safeParse(body);
  return parsed.success && parsed.data.offset <= run.input.rendition.size ? parsed.data.offset : null;
}

async function uploadBytes(run: Run, upload: ResumableUpload, uri: string, from: number): Promise<void> {
  const { rendition } = run.input;
  let offset = from;
  let askedAgain = false;
  while (offset < rendition.size) {
    const end = Math.min(rendition.size, offset + upload.chunkBytes);
    const stream = await rendition.open({ start: offset, end: end - 1 });
    const headers = { authorization: `OAuth ${run.target.token}`, offset: String(offset), file_size: String(rendition.size), 'content-type': 'application/octet-stream' };
    try {
      // Bytes of an unpublished container: sending them again creates nothing anyone sees.
      await graphRequest<unknown>(run.deps, run.target, uri, { method: 'POST', headers, body: streamBody(stream, end - offset) }, {
        safeToRepeat: true,
        timeoutMs: run.target.timeoutMs + Math.ceil((end - offset) / 65_536) * 1000,
      });
    } catch (error) {
      // The session holds another count than ours (part of a chunk arrived before its answer
      // was lost): ask it once and go on from there rather than failing the attempt.
      const known = !askedAgain && error instanceof PublishError && error.status === 400 && /offset/i.test(error.detail) ? await uploadOffset(run, uri) : null;
      if (known === null) throw error;
      askedAgain = true;
      offset = known;
      continue;
    }
    offset = end;
    await save(run, { uploadedBytes: offset });
  }
  await save(run, { uploaded: true });
  run.deps.crashPoint(`${run.platform.id}.after_upload`);
  run.log.info({ containerId: run.cp.containerId, bytes: rendition.size }, 'video uploaded');
}

/**
 * A resumable container whose bytes are not all in: send the rest from the session's offset, or
 * start over with a new container when that cannot be (gone, too old, offset unknowable).
 */
async function resumeUpload(run: Run, containerId: string, uri: string, mediaUrl: string | null): Promise<PublishResult> {
  const { platform } = run;
  const upload = platform.upload(run.deps);
  const age = (run.deps.now() - (run.cp.containerAt ?? run.deps.now())) / 1000;
  if (!upload || age > platform.tuning.containerMaxAgeSeconds) {
    await abandon(run, upload ? 'upload too old to finish' : 'account no longer uploads bytes');
    return createContainer(run, mediaUrl);
  }
  let offset: number | null;
  try {
    offset = await uploadOffset(run, uri);
  } catch (error) {
    if (!isMissingObject(error)) throw error;
    offset = null;
  }
  if (offset === null) {
    await abandon(run, 'the upload session could not say how much it holds');
    return createContainer(run, mediaUrl);
  }
  run.log.info({ containerId, offset, size: run.input.rendition.size }, "upload resumes at the session's offset");
  await uploadBytes(run, upload, uri, offset);
  return { status: 'processing', remoteId: containerId, checkAfterSeconds: platform.tuning.firstCheckSeconds };
}

async function sendPublish(run: Run, containerId: string): Promise<PublishResult> {
  const { platform } = run;
  await checkQuota(run);
  await save(run, { publishSentAt: new Date(run.deps.now()).toISOString() });
  let body: unknown;
  try {
    body = await graphCall<unknown>(run.deps, run.target, 'POST', platform.publishPath, { creation_id: containerId }, { safeToRepeat: false });
  } catch (error) {
    if (!(error instanceof PublishError)) throw error;
    const unknown = error.outcomeUnknown || (error.status !== undefined && error.status >= 500) || error.code === 'unavailable';
    if (!unknown) {
      // A definite refusal: nothing was published.
      await save(run, { publishSentAt: null });
      throw error;
    }
    // Ask the container now: often it settles the question within this attempt.
    const status = await readStatus(run, containerId).catch(() => null);
    if (status?.state === 'PUBLISHED') return publishedWithoutId(run, containerId);
    throw withOutcomeUnknown(error);
  }
  run.deps.crashPoint(`${platform.id}.after_publish`);
  const parsed = idSchema.safeParse(body);
  if (!parsed.success) throw unexpected(platform.spec.label, 'the publish call', true);
  await save(run, { mediaId: parsed.data.id, publishSentAt: null });
  run.log.info({ containerId, mediaId: parsed.data.id }, 'published');
  return published(run, parsed.data.id);
}

/** Where the saved container stands, and the next step. */
async function resumeContainer(run: Run, containerId: string, mediaUrl: string | null): Promise<PublishResult> {
  const { platform } = run;
  if (run.cp.uploadUri && run.cp.uploaded === false) return resumeUpload(run, containerId, run.cp.uploadUri, mediaUrl);
  let status: ContainerStatus;
  try {
    status = await readStatus(run, containerId);
  } catch (error) {
    if (!isMissingObject(error)) throw error;
    if (run.cp.publishSentAt) {
      return { status: 'unconfirmed', evidence: `${platform.spec.label} no longer knows container ${containerId}, and a publish call for it was sent at ${run.cp.publishSentAt} without an answer.` };
    }
    await abandon(run, 'container gone');
    return createContainer(run, mediaUrl);
  }
  const age = (run.deps.now() - (run.cp.containerAt ?? run.deps.now())) / 1000;
  switch (status.state) {
    case 'PUBLISHED':
      return publishedWithoutId(run, containerId);
    case 'FINISHED':
      // Never published (that would read PUBLISHED), even if a publish call was sent before.
      if (age > platform.tuning.containerMaxAgeSeconds) {
        await abandon(run, 'container too old to publish');
        return createContainer(run, mediaUrl);
      }
      return sendPublish(run, containerId);
    case 'EXPIRED':
      await abandon(run, 'container expired');
      return createContainer(run, mediaUrl);
    case 'ERROR': {
      const failed = platform.containerFailed(status.reason);
      if (!failed.newContainer) throw failed.error;
      await abandon(run, `ERROR: ${status.reason ?? 'no reason'}`);
      // Each failed container cost Meta a fetch of the whole video: after a few, stop.
      if ((run.cp.abandoned?.length ?? 0) >= platform.tuning.maxContainers) {
        throw new PublishError(failed.error.code, failed.error.message, { retryable: false, detail: failed.error.detail, ...(failed.error.status !== undefined ? { status: failed.error.status } : {}) });
      }
      return createContainer(run, mediaUrl);
    }
    default:
      if (age > platform.tuning.maxProcessingSeconds) {
        await abandon(run, `still ${status.state} after ${Math.round(age)} s`);
        throw new PublishError('unavailable', `${platform.spec.label} was still processing the video after ${Math.round(age / 60)} minutes.`, {
          retryable: true,
          detail: 'the video was still processing after a long time; trying again',
        });
      }
      return { status: 'processing', remoteId: containerId, checkAfterSeconds: platform.tuning.checkSeconds };
  }
}

/** publish and check alike: one step forward from the checkpoint. */
export async function advanceContainer(platform: ContainerPlatform, input: PublishInput, deps: PlatformDeps): Promise<PublishResult> {
  const problem = captionProblem(input.caption, platform.spec);
  if (problem) throw new PublishError('rejected', problem, { retryable: false, detail: problem });
  const run: Run = {
    platform,
    input,
    deps,
    target: platform.target(deps),
    cp: readContainerCheckpoint(input.checkpoint),
    log: deps.log.child({ platform: platform.spec.id, deliveryId: input.deliveryId }),
  };
  if (run.cp.mediaId) return published(run, run.cp.mediaId);
  if (run.cp.containerId) return resumeContainer(run, run.cp.containerId, input.mediaUrl);
  return createContainer(run, input.mediaUrl);
}
