/**
 * Facebook Page Reels (platform reference §3A): `video_reels` start, upload the bytes to the
 * returned rupload URL (or let Meta pull `file_url`), `video_reels` finish with
 * `video_state=PUBLISHED`, then read the video's status until it is published.
 *
 * Exactly-once: the video id and upload URL are saved before any byte is sent; an interrupted
 * upload resumes at the offset Facebook reports instead of starting over. `finish` is the one call
 * that publishes and it has no idempotency key, so the fact that it is about to be sent is saved
 * first; an attempt that finds that mark (or whose finish got no answer) reads the video's status
 * and calls finish again only when the status shows the first one never took effect.
 *
 * Tokens: the account links a Facebook user; publishing uses the Page token derived from it
 * (`GET /{page-id}?fields=access_token`). There is no refresh-token grant: a near-expiry user token
 * is exchanged for a long-lived one (`fb_exchange_token`), and a dead one means re-linking.
 */
import { z } from 'zod';
import { MESSAGES, PublishError, withOutcomeUnknown } from '../../core/errors.ts';
import type { Checkpoint, Credentials, PlatformAdapter, PlatformDeps, PublishInput, PublishResult, RefreshResult } from '../../core/platforms.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';
import { requestJson, streamBody } from './http.ts';
import type { HttpRequest, RequestOptions } from './http.ts';

const SPEC = PLATFORM_SPECS.facebook;
const LABEL = SPEC.label;
export const FACEBOOK_GRAPH_VERSION = 'v23.0';
const REFRESH_MARGIN_MS = 5 * 60_000;
const DEFAULT_WEB_URL = 'https://www.facebook.com';

/**
 * The video status node as the reference describes it. Its field names and enum values are
 * UNCONFIRMED (reference §11), so every name the adapter reads lives here and nowhere else.
 */
export const FACEBOOK_STATUS = {
  /** `fields=` for the one status read. */
  fields: 'status,permalink_url',
  statusObject: 'status',
  permalink: 'permalink_url',
  videoStatus: 'video_status',
  uploadingPhase: 'uploading_phase',
  processingPhase: 'processing_phase',
  publishingPhase: 'publishing_phase',
  phaseStatus: 'status',
  bytesTransferred: 'bytes_transferred',
  publishStatus: 'publish_status',
  phaseErrors: 'errors',
  /** `video_status` values that end the video. */
  videoError: ['error', 'expired'] as readonly string[],
  phaseNotStarted: 'not_started',
  phaseComplete: 'complete',
  phaseError: 'error',
  /** `publish_status` values that mean live (absent counts as live when the phase is complete). */
  live: ['published', 'live'] as readonly string[],
} as const;

export interface FacebookOptions {
  graphVersion?: string;
  /**
   * Renditions of at least this many bytes are sent as `file_url` (Meta pulls input.mediaUrl)
   * when a media link exists; smaller ones, or all when unset, are streamed as bytes.
   */
  fileUrlMinBytes?: number;
  /**
   * Bytes per upload POST; each carries `offset`, as a resumed upload does. One request for the
   * whole file would be simplest, but fetch does not hold back a request body for a slow socket,
   * so a large file would sit in memory; chunks bound that. Set Infinity for one request.
   */
  chunkBytes?: number;
  /** How long Meta may take to pull `file_url` before the upload call gives up. */
  fileUrlTimeoutMs?: number;
  /** Poll delay while Facebook processes or publishes. */
  checkAfterSeconds?: number;
  /**
   * How long after an unanswered finish a status that shows no sign of it may still catch up.
   * Before this, "not started" decides nothing; after it, finish is sent again.
   */
  finishGraceSeconds?: number;
  /** Wait when the 30-reels-per-24-h cap refuses and Facebook gives no time. */
  capRetrySeconds?: number;
  requestTimeoutMs?: number;
  /** Exchange the user token for a long-lived one when less than this is left. */
  userTokenMarginMs?: number;
}

const DEFAULTS = {
  graphVersion: FACEBOOK_GRAPH_VERSION,
  fileUrlMinBytes: Number.POSITIVE_INFINITY,
  chunkBytes: 8 * 1024 * 1024,
  fileUrlTimeoutMs: 10 * 60_000,
  checkAfterSeconds: 10,
  capRetrySeconds: 3600,
  finishGraceSeconds: 60,
  requestTimeoutMs: 60_000,
  userTokenMarginMs: 7 * 24 * 3600_000,
};

export const facebookCredentialsSchema = z.object({
  /** The linked Facebook user's token (long-lived after linking); Page tokens derive from it. */
  userAccessToken: z.string().min(1),
  /** When the user token expires; absent when Facebook reported none (it does not expire). */
  userTokenExpiresAt: z.iso.datetime({ offset: true }).optional(),
  /** The Page chosen at link time. */
  pageId: z.string().regex(/^\d{1,25}$/),
  /** Derived from the user token; fetched by `refresh` when missing. */
  pageAccessToken: z.string().min(1).optional(),
  pageName: z.string().optional(),
  scope: z.string().optional(),
});
export type FacebookCredentials = z.infer<typeof facebookCredentialsSchema>;

// ---------------------------------------------------------------------------------------------
// Errors

interface GraphError {
  message: string;
  code: number | undefined;
  subcode: number | undefined;
  transient: boolean;
}

function readGraphError(body: unknown, status: number): GraphError {
  const record = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const error = record.error && typeof record.error === 'object' ? (record.error as Record<string, unknown>) : null;
  // rupload answers `{debug_info: {retriable, type, message}}`.
  const debug = record.debug_info && typeof record.debug_info === 'object' ? (record.debug_info as Record<string, unknown>) : null;
  const source = error ?? debug;
  let message = typeof source?.error_user_msg === 'string' ? source.error_user_msg : typeof source?.message === 'string' ? source.message : '';
  if (!message && typeof body === 'string') message = body.replace(/\s+/g, ' ').trim();
  if (!message) message = `HTTP ${status}`;
  if (message.length > 300) message = `${message.slice(0, 299)}…`;
  return {
    message,
    code: typeof error?.code === 'number' ? error.code : undefined,
    subcode: typeof error?.error_subcode === 'number' ? error.error_subcode : undefined,
    transient: error?.is_transient === true || debug?.retriable === true,
  };
}

/** Minutes Facebook says until the app/Page may call again (`x-business-use-case-usage`, `x-app-usage`). */
function usageRetrySeconds(headers: Headers): number | undefined {
  let minutes: number | undefined;
  for (const name of ['x-business-use-case-usage', 'x-page-usage', 'x-app-usage']) {
    const raw = headers.get(name);
    if (!raw) continue;
    for (const match of raw.matchAll(/"estimated_time_to_regain_access"\s*:\s*(\d+)/g)) {
      minutes = Math.max(minutes ?? 0, Number(match[1]));
    }
  }
  return minutes === undefined || minutes === 0 ? undefined : minutes * 60;
}

const RATE_CODES = new Set([4, 17, 32, 613, 80001, 1390008]);
const TRANSIENT_CODES = new Set([1, 2, 1363047, 1609010]);
const MEDIA_CODES = new Set([351, 352, 353, 1363019, 1363023, 1363024, 2069019]);
const POLICY_CODES = new Set([1346003, 1404102]);

/** The Page's 30-reels-per-24-h cap (the reference gives no code: recognised by its words). */
function isReelsCap(error: GraphError): boolean {
  return /reel/i.test(error.message) && /(limit|24 ?h|per day|too many)/i.test(error.message);
}

/**
 * Maps a Graph (or rupload) error answer to a PublishError per reference §3 "Errors (Graph)".
 * 190 is retryable auth: a forced refresh derives a fresh Page token from the user token, and
 * `refresh` itself turns a dead user token into re-linking.
 */
export function mapFacebookError(status: number, body: unknown, headers: Headers, options: { capRetrySeconds?: number; now?: number } = {}): PublishError {
  const error = readGraphError(body, status);
  const { code, subcode } = error;
  const detail = error.message;
  const message = `${LABEL} answered ${status}${code !== undefined ? ` (#${code}${subcode !== undefined ? `/${subcode}` : ''})` : ''}: ${detail}`;
  const base = { status, detail };
  if (isReelsCap(error)) {
    const seconds = options.capRetrySeconds ?? DEFAULTS.capRetrySeconds;
    const at = new Date((options.now ?? Date.now()) + seconds * 1000);
    return new PublishError('rate_limited', message, {
      ...base,
      retryable: true,
      retryAfterSeconds: seconds,
      userMessage: MESSAGES.facebookReelsCap(`${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`),
    });
  }
  if (code === 190 || status === 401) return new PublishError('auth', message, { ...base, retryable: true });
  if (code === 10 || (code !== undefined && code >= 200 && code < 300)) {
    return new PublishError('auth', message, { ...base, retryable: false, detail: MESSAGES.facebookPermission(detail) });
  }
  if (code === 1404078) return new PublishError('rejected', message, { ...base, retryable: false, detail: MESSAGES.facebookPagePublishingAuthorization() });
  if (code !== undefined && RATE_CODES.has(code)) {
    const wait = usageRetrySeconds(headers);
    return new PublishError('rate_limited', message, { ...base, retryable: true, ...(wait !== undefined ? { retryAfterSeconds: wait } : {}) });
  }
  if (code === 368) return new PublishError('rejected', message, { ...base, retryable: false, detail: MESSAGES.facebookBlocked(detail) });
  if (code !== undefined && POLICY_CODES.has(code)) return new PublishError('rejected', message, { ...base, retryable: false });
  if (code !== undefined && MEDIA_CODES.has(code)) return new PublishError('invalid_media', message, { ...base, retryable: false });
  if (status === 429) return new PublishError('rate_limited', message, { ...base, retryable: true });
  if (status >= 500 || error.transient || (code !== undefined && TRANSIENT_CODES.has(code))) {
    return new PublishError('unavailable', message, { ...base, retryable: true });
  }
  if (code === 100 || status === 400) return new PublishError('rejected', message, { ...base, retryable: false });
  if (status === 413 || status === 415) return new PublishError('invalid_media', message, { ...base, retryable: false });
  return new PublishError('unknown', message, base);
}

/** On the upload host a 400 is about the file (unreadable, wrong size, unfetchable file_url). */
function asMediaError(error: unknown): unknown {
  if (!(error instanceof PublishError) || error.code !== 'rejected' || error.status !== 400) return error;
  return new PublishError('invalid_media', error.message, { status: error.status, detail: error.detail, retryable: false });
}

// ---------------------------------------------------------------------------------------------
// Status

export interface ReelStatus {
  videoStatus: string | undefined;
  bytesTransferred: number | undefined;
  uploading: string | undefined;
  processing: string | undefined;
  publishing: string | undefined;
  publishStatus: string | undefined;
  errors: string[];
  permalink: string | undefined;
}

function field(record: unknown, name: string): unknown {
  return record && typeof record === 'object' ? (record as Record<string, unknown>)[name] : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function readReelStatus(body: unknown): ReelStatus {
  const s = FACEBOOK_STATUS;
  const status = field(body, s.statusObject);
  const phase = (name: string) => field(status, name);
  const errors: string[] = [];
  for (const name of [s.uploadingPhase, s.processingPhase, s.publishingPhase]) {
    const list = field(phase(name), s.phaseErrors);
    if (Array.isArray(list)) for (const e of list) errors.push(str(field(e, 'message')) ?? JSON.stringify(e));
  }
  const bytes = field(phase(s.uploadingPhase), s.bytesTransferred);
  return {
    videoStatus: str(field(status, s.videoStatus)),
    bytesTransferred: typeof bytes === 'number' ? bytes : typeof bytes === 'string' && /^\d+$/.test(bytes) ? Number(bytes) : undefined,
    uploading: str(field(phase(s.uploadingPhase), s.phaseStatus)),
    processing: str(field(phase(s.processingPhase), s.phaseStatus)),
    publishing: str(field(phase(s.publishingPhase), s.phaseStatus)),
    publishStatus: str(field(phase(s.publishingPhase), s.publishStatus)),
    errors,
    permalink: str(field(body, s.permalink)),
  };
}

function isLive(status: ReelStatus): boolean {
  if (status.publishing !== FACEBOOK_STATUS.phaseComplete) return false;
  return status.publishStatus === undefined || FACEBOOK_STATUS.live.includes(status.publishStatus);
}

function isFailed(status: ReelStatus): boolean {
  const s = FACEBOOK_STATUS;
  return (status.videoStatus !== undefined && s.videoError.includes(status.videoStatus)) || status.processing === s.phaseError || status.publishing === s.phaseError;
}

/** Whether `finish` took effect: processing or publishing has begun (or ended). */
function finishTookEffect(status: ReelStatus): boolean {
  const notStarted = FACEBOOK_STATUS.phaseNotStarted;
  if (isLive(status) || isFailed(status)) return true;
  return (status.processing !== undefined && status.processing !== notStarted) || (status.publishing !== undefined && status.publishing !== notStarted);
}

// ---------------------------------------------------------------------------------------------
// Checkpoint

const checkpointSchema = z.object({
  videoId: z.string().regex(/^\d+$/),
  uploadUrl: z.url(),
  /** The rendition the video was started for; another rendition starts over. */
  sha256: z.string(),
  size: z.number().int().positive(),
});

interface FacebookCheckpoint {
  video: z.infer<typeof checkpointSchema> | null;
  uploaded: boolean;
  /** When `finish` was (about to be) sent and its answer not yet seen. */
  finishSentAt: string | null;
  finished: boolean;
}

function readCheckpoint(checkpoint: Checkpoint): FacebookCheckpoint {
  const video = checkpointSchema.safeParse(checkpoint.video);
  return {
    video: video.success ? video.data : null,
    uploaded: checkpoint.uploaded === true,
    finishSentAt: typeof checkpoint.finishSentAt === 'string' ? checkpoint.finishSentAt : null,
    finished: checkpoint.finished === true,
  };
}

function parseCredentials(credentials: Credentials): FacebookCredentials {
  const parsed = facebookCredentialsSchema.safeParse(credentials);
  if (!parsed.success) throw new PublishError('auth', `Stored ${LABEL} credentials are incomplete.`, { retryable: false, detail: 'stored credentials are incomplete' });
  return parsed.data;
}

/** A refusal with the user token means it is dead: refreshing again cannot help, only re-linking. */
function fatalAuth(error: unknown): never {
  if (error instanceof PublishError && error.code === 'auth') throw new PublishError('auth', error.message, { status: error.status, detail: error.detail, retryable: false });
  throw error;
}

function base(deps: PlatformDeps, name: 'graph' | 'rupload'): string {
  const url = deps.urls[name];
  if (!url) throw new PublishError('unknown', `${LABEL} ${name} URL is not configured.`, { retryable: false, detail: `the Facebook ${name} URL is not configured` });
  return url.replace(/\/+$/, '');
}

/**
 * The upload URL from Meta's answer, on the configured rupload host: the Page token travels with
 * the bytes, so it goes only where FACEBOOK_RUPLOAD_URL says, never to a host an answer names.
 */
function pinnedUploadUrl(deps: PlatformDeps, answered: string): string {
  const url = new URL(answered);
  return `${base(deps, 'rupload')}${url.pathname}${url.search}`;
}

// ---------------------------------------------------------------------------------------------
// The adapter

export function createFacebookAdapter(overrides: FacebookOptions = {}): PlatformAdapter {
  const options = { ...DEFAULTS, ...overrides };
  const v = options.graphVersion;
  const chunkBytes = Math.floor(options.chunkBytes);
  if (!(chunkBytes >= 1)) throw new RangeError('Facebook upload chunks must be at least 1 byte');

  function call<T>(deps: PlatformDeps, url: string, init: HttpRequest, requestOptions: RequestOptions = {}): Promise<T> {
    return requestJson<T>(deps, url, init, (status, body, headers) => mapFacebookError(status, body, headers, { capRetrySeconds: options.capRetrySeconds, now: deps.now() }), {
      timeoutMs: options.requestTimeoutMs,
      ...requestOptions,
    }).then((r) => r.body);
  }

  function graphUrl(deps: PlatformDeps, path: string, params: Record<string, string>): string {
    const url = new URL(`${base(deps, 'graph')}/${v}/${path}`);
    for (const [k, value] of Object.entries(params)) url.searchParams.set(k, value);
    return url.toString();
  }

  function form(params: Record<string, string>): HttpRequest {
    return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() };
  }

  // ---- refresh ---------------------------------------------------------------------------------

  /** Swaps the user token for a long-lived one (`fb_exchange_token`); writes into `next`. */
  async function exchange(deps: PlatformDeps, creds: FacebookCredentials, next: FacebookCredentials): Promise<boolean> {
    const client = deps.oauthClient;
    if (!client) {
      throw new PublishError('unknown', `${LABEL} app is not configured (META_APP_ID); cannot extend the login.`, { retryable: false, detail: 'META_APP_ID is not configured' });
    }
    const body = await call<unknown>(
      deps,
      graphUrl(deps, 'oauth/access_token', { grant_type: 'fb_exchange_token', client_id: client.clientId, client_secret: client.clientSecret, fb_exchange_token: creds.userAccessToken }),
      { method: 'GET' },
      { safeToRepeat: true },
    ).catch(fatalAuth);
    const parsed = z.object({ access_token: z.string().min(1), expires_in: z.number().positive().optional() }).safeParse(body);
    if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered the token exchange with an unexpected body.`, { retryable: true, detail: 'unexpected token answer' });
    next.userAccessToken = parsed.data.access_token;
    if (parsed.data.expires_in !== undefined) next.userTokenExpiresAt = new Date(deps.now() + parsed.data.expires_in * 1000).toISOString();
    else delete next.userTokenExpiresAt;
    // A Page token derived from a long-lived user token does not expire: derive it again.
    delete next.pageAccessToken;
    return true;
  }

  async function refresh(credentials: Credentials, deps: PlatformDeps, refreshOptions: { force: boolean }): Promise<RefreshResult | null> {
    const creds = parseCredentials(credentials);
    const next: FacebookCredentials = { ...creds };
    let changed = false;
    const expiry = creds.userTokenExpiresAt ? Date.parse(creds.userTokenExpiresAt) : null;
    if (expiry !== null && expiry - deps.now() <= REFRESH_MARGIN_MS) {
      throw new PublishError('auth', `${LABEL} user token expired.`, { retryable: false, detail: 'the Facebook login expired' });
    }
    if (expiry !== null && expiry - deps.now() <= options.userTokenMarginMs) {
      try {
        changed = await exchange(deps, creds, next);
      } catch (error) {
        // Days are left: a failed extension is tried again next time rather than failing this post.
        if (!(error instanceof PublishError) || !error.retryable) throw error;
        deps.log.warn({ platform: SPEC.id, detail: error.detail }, 'facebook login extension failed; using the current login');
      }
    }
    if (refreshOptions.force || !next.pageAccessToken) {
      const body = await call<unknown>(deps, graphUrl(deps, next.pageId, { fields: 'access_token,name', access_token: next.userAccessToken }), { method: 'GET' }, { safeToRepeat: true }).catch(fatalAuth);
      const token = str(field(body, 'access_token'));
      if (!token) {
        // Facebook leaves the field out when the user no longer manages the Page.
        throw new PublishError('auth', `${LABEL} gave no Page token for ${next.pageId}.`, { retryable: false, detail: MESSAGES.facebookNoPageAccess() });
      }
      next.pageAccessToken = token;
      const name = str(field(body, 'name'));
      if (name) next.pageName = name;
      changed = true;
    }
    if (!changed) return null;
    deps.log.info({ platform: SPEC.id, pageId: next.pageId }, 'facebook tokens refreshed');
    return { credentials: next, expiresAt: next.userTokenExpiresAt ? new Date(next.userTokenExpiresAt) : null };
  }

  // ---- one publish run -------------------------------------------------------------------------

  interface Run {
    input: PublishInput;
    deps: PlatformDeps;
    creds: FacebookCredentials;
    token: string;
    cp: FacebookCheckpoint;
    log: PlatformDeps['log'];
  }

  async function save(run: Run, patch: Partial<FacebookCheckpoint>): Promise<void> {
    Object.assign(run.cp, patch);
    await run.input.saveCheckpoint(patch as Checkpoint);
  }

  async function readStatus(deps: PlatformDeps, token: string, videoId: string): Promise<ReelStatus> {
    const body = await call<unknown>(deps, graphUrl(deps, videoId, { fields: FACEBOOK_STATUS.fields, access_token: token }), { method: 'GET' }, { safeToRepeat: true });
    return readReelStatus(body);
  }

  function permalink(deps: PlatformDeps, videoId: string, status: ReelStatus | null): string {
    const web = (deps.urls.web ?? DEFAULT_WEB_URL).replace(/\/+$/, '');
    const link = status?.permalink;
    if (link && /^https:\/\//.test(link)) return link;
    if (link && link.startsWith('/')) return `${web}${link}`;
    return `${web}/reel/${videoId}`;
  }

  /** What a status read means once `finish` took effect. */
  function outcome(deps: PlatformDeps, videoId: string, status: ReelStatus): PublishResult {
    if (isLive(status)) return { status: 'published', remoteId: videoId, url: permalink(deps, videoId, status) };
    if (isFailed(status)) {
      const detail = status.errors.join('; ') || `processing ended as ${status.videoStatus ?? status.processing ?? status.publishing}`;
      throw new PublishError('invalid_media', `${LABEL} could not publish the reel: ${detail}`, { retryable: false, detail: MESSAGES.facebookProcessingFailed(detail) });
    }
    return { status: 'processing', remoteId: videoId, checkAfterSeconds: options.checkAfterSeconds };
  }

  async function start(run: Run): Promise<NonNullable<FacebookCheckpoint['video']>> {
    // An unfinished video is invisible: starting again after a lost answer only leaves an orphan.
    const body = await call<unknown>(run.deps, graphUrl(run.deps, `${run.creds.pageId}/video_reels`, {}), form({ upload_phase: 'start', access_token: run.token }), { safeToRepeat: true, repeatable: true });
    const parsed = z.object({ video_id: z.string().regex(/^\d+$/), upload_url: z.url() }).safeParse(body);
    if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered video_reels start with an unexpected body.`, { retryable: true, detail: 'unexpected start answer' });
    const video = { videoId: parsed.data.video_id, uploadUrl: pinnedUploadUrl(run.deps, parsed.data.upload_url), sha256: run.input.rendition.sha256, size: run.input.rendition.size };
    await save(run, { video, uploaded: false, finishSentAt: null, finished: false });
    run.log.info({ videoId: video.videoId }, 'facebook reel started');
    return video;
  }

  async function upload(run: Run, video: NonNullable<FacebookCheckpoint['video']>, resumed: boolean): Promise<void> {
    const { rendition, mediaUrl } = run.input;
    const headers: Record<string, string> = { authorization: `OAuth ${run.token}` };
    if (mediaUrl && rendition.size >= options.fileUrlMinBytes) {
      await call<unknown>(run.deps, video.uploadUrl, { method: 'POST', headers: { ...headers, file_url: mediaUrl } }, { safeToRepeat: true, timeoutMs: options.fileUrlTimeoutMs }).catch(
        (error: unknown) => {
          throw asMediaError(error);
        },
      );
    } else {
      let offset = 0;
      if (resumed) {
        const status = await readStatus(run.deps, run.token, video.videoId);
        offset = Math.min(status.bytesTransferred ?? 0, rendition.size);
        run.log.info({ videoId: video.videoId, offset }, 'facebook upload resumes');
      }
      while (offset < rendition.size) {
        const end = Math.min(rendition.size, offset + chunkBytes);
        const stream = await rendition.open({ start: offset, end: end - 1 });
        await call<unknown>(
          run.deps,
          video.uploadUrl,
          { method: 'POST', headers: { ...headers, offset: String(offset), file_size: String(rendition.size), 'content-type': 'application/octet-stream' }, body: streamBody(stream, end - offset) },
          { safeToRepeat: true, timeoutMs: 60_000 + Math.ceil((end - offset) / 65_536) * 1000 },
        ).catch((error: unknown) => {
          throw asMediaError(error);
        });
        offset = end;
      }
    }
    await save(run, { uploaded: true });
    run.deps.crashPoint('facebook.after_upload');
  }

  async function finish(run: Run, videoId: string, again = false): Promise<PublishResult> {
    await save(run, { finishSentAt: new Date(run.deps.now()).toISOString() });
    try {
      await call<unknown>(
        run.deps,
        graphUrl(run.deps, `${run.creds.pageId}/video_reels`, {}),
        form({ upload_phase: 'finish', video_id: videoId, video_state: 'PUBLISHED', description: run.input.caption, access_token: run.token }),
      );
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      // A 5xx may hide a finish that took effect; only a definite refusal clears the mark.
      if (error.outcomeUnknown || (error.status !== undefined && error.status >= 500)) throw withOutcomeUnknown(error);
      await save(run, { finishSentAt: null });
      if (again && error.code === 'rejected' && /already/i.test(error.detail)) {
        // Only the earlier finish we could not see can have finished it.
        run.log.warn({ videoId }, 'facebook says the reel was already finished; not finishing again');
        await save(run, { finished: true });
        return outcome(run.deps, videoId, await readStatus(run.deps, run.token, videoId));
      }
      throw error;
    }
    run.deps.crashPoint('facebook.after_finish');
    await save(run, { finished: true, finishSentAt: null });
    run.log.info({ videoId }, 'facebook reel finished');
    let status: ReelStatus | null = null;
    try {
      status = await readStatus(run.deps, run.token, videoId);
    } catch (error) {
      // The reel is finished either way; the worker's polling reads the status again.
      run.log.warn({ videoId, detail: error instanceof PublishError ? error.detail : String(error) }, 'facebook status after finish unreadable');
    }
    return status ? outcome(run.deps, videoId, status) : { status: 'processing', remoteId: videoId, checkAfterSeconds: options.checkAfterSeconds };
  }

  async function publish(input: PublishInput, deps: PlatformDeps): Promise<PublishResult> {
    const creds = parseCredentials(input.credentials);
    if ([...input.caption].length > SPEC.caption.maxLength) {
      const detail = MESSAGES.captionTooLong(LABEL, [...input.caption].length, SPEC.caption.maxLength, 'characters');
      throw new PublishError('rejected', detail, { retryable: false, detail });
    }
    const { rendition } = input;
    const video = SPEC.video;
    if (rendition.size > video.maxBytes) {
      const detail = MESSAGES.videoTooBig(LABEL, rendition.size, video.maxBytes);
      throw new PublishError('invalid_media', detail, { retryable: false, detail });
    }
    if (rendition.durationSeconds > video.maxDurationSeconds) {
      const detail = MESSAGES.videoTooLong(LABEL, rendition.durationSeconds, video.maxDurationSeconds);
      throw new PublishError('invalid_media', detail, { retryable: false, detail });
    }
    if (rendition.durationSeconds > 0 && rendition.durationSeconds < video.minDurationSeconds) {
      const detail = MESSAGES.videoTooShort(LABEL, rendition.durationSeconds, video.minDurationSeconds);
      throw new PublishError('invalid_media', detail, { retryable: false, detail });
    }
    if (!creds.pageAccessToken) {
      // The worker refreshes before publishing; this is reached only if that found no Page token.
      throw new PublishError('auth', `${LABEL} has no Page token.`, { retryable: true, detail: 'no Page token yet' });
    }
    const run: Run = {
      input,
      deps,
      creds,
      token: creds.pageAccessToken,
      cp: readCheckpoint(input.checkpoint),
      log: deps.log.child({ platform: SPEC.id, deliveryId: input.deliveryId }),
    };

    let current = run.cp.video;
    if (current && (current.sha256 !== rendition.sha256 || current.size !== rendition.size) && !run.cp.finished && !run.cp.finishSentAt) current = null;
    if (current && run.cp.finished) return outcome(deps, current.videoId, await readStatus(deps, run.token, current.videoId));
    if (current && run.cp.finishSentAt) {
      // The earlier finish may have published: ask before sending it again.
      let status: ReelStatus;
      try {
        status = await readStatus(deps, run.token, current.videoId);
      } catch (error) {
        throw error instanceof PublishError ? withOutcomeUnknown(error) : error;
      }
      if (finishTookEffect(status)) {
        run.log.info({ videoId: current.videoId }, 'facebook finish had taken effect; not finishing again');
        await save(run, { finished: true, finishSentAt: null });
        return outcome(deps, current.videoId, status);
      }
      const waitedMs = deps.now() - Date.parse(run.cp.finishSentAt);
      const graceMs = options.finishGraceSeconds * 1000;
      if (!(waitedMs >= graceMs)) {
        // Facebook may not have moved the video on yet: a second finish now could publish twice.
        throw new PublishError('unknown', `${LABEL} does not show the reel finishing yet; asking again before finishing it again.`, {
          retryable: true,
          outcomeUnknown: true,
          retryAfterSeconds: Math.max(1, Math.ceil((graceMs - Math.max(0, waitedMs)) / 1000)),
          detail: 'waiting to see whether the earlier finish took effect',
        });
      }
      run.log.info({ videoId: current.videoId }, 'facebook finish never took effect; sending it again');
      return finish(run, current.videoId, true);
    }
    const resumed = current !== null;
    if (!current) current = await start(run);
    if (!run.cp.uploaded) await upload(run, current, resumed);
    return finish(run, current.videoId);
  }

  return {
    spec: SPEC,
    publish,
    async check(remoteId, input, deps) {
      const creds = parseCredentials(input.credentials);
      if (!creds.pageAccessToken) throw new PublishError('auth', `${LABEL} has no Page token.`, { retryable: true, detail: 'no Page token yet' });
      return outcome(deps, remoteId, await readStatus(deps, creds.pageAccessToken, remoteId));
    },
    refresh,
    /**
     * The Page read with the Page token, the token every publish uses. A refused Page token is
     * retryable auth: the forced refresh derives a new one from the user token, and only a dead user
     * login ends in re-linking.
     */
    async validate(credentials, deps) {
      const creds = parseCredentials(credentials);
      if (!creds.pageAccessToken) throw new PublishError('auth', `${LABEL} has no Page token.`, { retryable: true, detail: 'no Page token yet' });
      await call<unknown>(deps, graphUrl(deps, creds.pageId, { fields: 'id', access_token: creds.pageAccessToken }), { method: 'GET' }, { safeToRepeat: true });
    },
  };
}

export const facebook: PlatformAdapter = createFacebookAdapter();
