/**
 * A wire-level simulator of the YouTube Data API v3 resumable upload, videos.list and Google's OAuth
 * token endpoint, on 127.0.0.1. It enforces what the platform reference (§4) says and refuses what
 * YouTube refuses:
 * - Bearer tokens that exist and have not expired (401 authError), with the scope each call needs
 *   (403 insufficientPermissions);
 * - the session start: `uploadType=resumable`, `part` covering the body, JSON content type,
 *   `X-Upload-Content-Length` / `X-Upload-Content-Type`, title and description rules, quotas
 *   (403 quotaExceeded) and the channel's daily cap (400 uploadLimitExceeded);
 * - chunk PUTs: `Content-Range: bytes first-last/total` matching the declared total and the
 *   `Content-Length`, starting exactly at the persisted offset, a multiple of 256 KiB except the last,
 *   one at a time; `bytes * /total` queries answered 308 + Range or with the finished video;
 *   404 for an expired session;
 * - processing: `uploadStatus` stays `uploaded` for a number of polls, then `processed` or a failure;
 * - `channels.list` (`part`, one filter such as `mine=true`, a read scope, 1 quota unit), the daily
 *   account check's read.
 *
 * Bodies are streamed and hashed as they arrive (never more than one chunk in flight, none of it
 * buffered). A connection cut mid-chunk keeps what arrived up to the last whole 256 KiB, as Google
 * does. Faults are injected per operation (see `inject`), and everything is recorded for assertions.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const GRANULE = 256 * 1024;
const SCOPE = 'https://www.googleapis.com/auth/';
export const SCOPES = {
  upload: `${SCOPE}youtube.upload`,
  readonly: `${SCOPE}youtube.readonly`,
  youtube: `${SCOPE}youtube`,
  forceSsl: `${SCOPE}youtube.force-ssl`,
} as const;
const UPLOAD_SCOPES = [SCOPES.upload, SCOPES.youtube, SCOPES.forceSsl, `${SCOPE}youtubepartner`];
const READ_SCOPES = [SCOPES.readonly, SCOPES.youtube, SCOPES.forceSsl, `${SCOPE}youtubepartner`];
const WRITABLE_PARTS = new Set(['snippet', 'status', 'recordingDetails', 'localizations']);
const CHANNEL_PARTS = new Set(['id', 'snippet', 'contentDetails', 'statistics', 'status', 'brandingSettings', 'topicDetails', 'localizations', 'contentOwnerDetails', 'auditDetails']);
const CHANNEL_FILTERS = ['categoryId', 'forHandle', 'forUsername', 'id', 'managedByMe', 'mine'];
const READABLE_PARTS = new Set(['id', 'snippet', 'status', 'processingDetails', 'contentDetails', 'statistics', 'fileDetails', 'player', 'topicDetails', 'recordingDetails', 'localizations', 'liveStreamingDetails', 'suggestions']);
const CATEGORY_IDS = new Set(['1', '2', '10', '15', '17', '19', '20', '22', '23', '24', '25', '26', '27', '28', '29']);
const MAX_JSON_BYTES = 64 * 1024;

export type SimOp = 'token' | 'insert' | 'chunk' | 'query' | 'list' | 'channels' | 'other';

export type Fault =
  /** Answer this instead of handling the request. */
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  /** Cut the connection before reading the body. */
  | { kind: 'reset' }
  /** Read this many body bytes (keeping whole granules, as Google would), then cut the connection. */
  | { kind: 'resetMidBody'; afterBytes: number }
  /** Handle the request completely (a final chunk creates the video), then cut the connection instead of answering. */
  | { kind: 'resetAfterHandling' }
  /** Never answer. */
  | { kind: 'hang' }
  /** The presented access token expires now; the request then meets the usual 401. */
  | { kind: 'expireToken' };

export interface RequestInfo {
  op: SimOp;
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** For chunk PUTs: whether the range ends at the last byte. */
  final: boolean;
  sessionId: string | undefined;
}

interface FaultRule {
  op: SimOp;
  fault: Fault;
  remaining: number;
  when: ((info: RequestInfo) => boolean) | undefined;
}

export interface LoggedRequest {
  op: SimOp;
  method: string;
  path: string;
  contentRange: string | undefined;
  /** Body bytes read. */
  bytes: number;
  status: number | 'reset' | 'hang';
  reason?: string;
  sessionId?: string;
}

export type ProcessingOutcome = { uploadStatus: 'processed' } | { uploadStatus: 'failed'; failureReason: string } | { uploadStatus: 'rejected'; rejectionReason: string };

export interface SimVideo {
  id: string;
  userId: string;
  title: string;
  description: string;
  categoryId: string | undefined;
  privacyStatus: string;
  requestedPrivacy: string;
  selfDeclaredMadeForKids: boolean | undefined;
  notifySubscribers: boolean;
  contentType: string;
  size: number;
  sha256: string;
  uploadStatus: 'uploaded' | 'processed' | 'failed' | 'rejected' | 'deleted';
  failureReason?: string;
  rejectionReason?: string;
  polls: number;
  pollsUntilDone: number;
  outcome: ProcessingOutcome;
  createdAt: number;
}

export interface SimSession {
  id: string;
  userId: string;
  total: number;
  contentType: string;
  metadata: { snippet: Record<string, unknown>; status: Record<string, unknown>; notifySubscribers: boolean };
  /** Bytes persisted: [0, received). */
  received: number;
  hash: Hash;
  inFlight: boolean;
  video: SimVideo | undefined;
  createdAt: number;
  /** Set to answer every later request with this status (expiry). */
  gone: 404 | 410 | undefined;
}

export interface SimUser {
  id: string;
  channelId: string | null;
  uploadsToday: number;
}

interface SimToken {
  value: string;
  userId: string;
  scopes: Set<string>;
  expiresAt: number;
}

interface SimRefreshToken {
  value: string;
  userId: string;
  scopes: Set<string>;
  revoked: boolean;
}

export interface YoutubeSimOptions {
  clientId?: string;
  clientSecret?: string;
  accessTokenTtlSeconds?: number;
  /** videos.insert has its own bucket (current quota page). */
  insertsPerDay?: number;
  /** Shared units; videos.list costs 1. */
  unitsPerDay?: number;
  /** The channel's own daily upload cap. */
  channelUploadsPerDay?: number;
  /** How long an upload session lives. */
  sessionTtlMs?: number;
  /** How many videos.list polls a new video stays `uploaded` (processing). */
  processingPolls?: number;
  /** What processing ends in for new videos. */
  outcome?: ProcessingOutcome;
  /** Privacy forced on every upload, as YouTube does for unaudited API projects. */
  lockPrivacy?: 'private';
  /** Status of the answer that completes an upload. */
  completeStatus?: 200 | 201;
  /** Include a Google refresh token in refresh answers (Google normally does not). */
  rotateRefreshTokens?: boolean;
  now?: () => number;
}

// A type, not an interface, so that it is assignable to the adapter's `Credentials` record.
export type IssuedCredentials = {
  accessToken: string;
  refreshToken: string;
  expiresAt: string;
  scope: string;
  tokenType: 'Bearer';
};

export interface YoutubeSim {
  url: string;
  /** The origin of the upload session URIs it hands out: its own unless a proxy in front of it is set here. */
  publicUrl: string;
  /** What `deps.urls` should be for the adapter. */
  urls: { api: string; upload: string; token: string };
  client: { clientId: string; clientSecret: string };
  options: Required<Omit<YoutubeSimOptions, 'lockPrivacy' | 'now'>> & Pick<YoutubeSimOptions, 'lockPrivacy'>;
  users: Map<string, SimUser>;
  videos: SimVideo[];
  sessions: Map<string, SimSession>;
  requests: LoggedRequest[];
  quota: { inserts: number; units: number };
  /** A new user (channel unless `channel: false`) with tokens; credentials in the adapter's shape. */
  addAccount(options?: { scopes?: string[]; channel?: boolean; expiresInSeconds?: number; userId?: string }): IssuedCredentials & { userId: string };
  expireAccessToken(token: string): void;
  revokeRefreshToken(token: string): void;
  /** The session's id from a session URI. */
  sessionOf(uri: string): SimSession | undefined;
  expireSession(uri: string, status?: 404 | 410): void;
  inject(op: SimOp, fault: Fault, options?: { times?: number; when?: (info: RequestInfo) => boolean }): void;
  clearFaults(): void;
  resetQuota(): void;
  /** Requests of one kind, in order. */
  log(op: SimOp): LoggedRequest[];
  close(): Promise<void>;
}

class HttpFailure extends Error {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;
  constructor(status: number, body: unknown, headers: Record<string, string> = {}) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

const STATUS_NAMES: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };

/** Google's JSON error envelope. */
export function googleErrorBody(code: number, reason: string, message: string, options: { domain?: string; withStatus?: boolean; location?: string } = {}): unknown {
  const item: Record<string, string> = { message, domain: options.domain ?? 'global', reason };
  if (options.location) Object.assign(item, { location: options.location, locationType: options.location === 'Authorization' ? 'header' : 'parameter' });
  const error: Record<string, unknown> = { code, message, errors: [item] };
  if (options.withStatus && STATUS_NAMES[code]) error.status = STATUS_NAMES[code];
  return { error };
}

function fail(code: number, reason: string, message: string, options: { domain?: string; withStatus?: boolean; location?: string; headers?: Record<string, string> } = {}): HttpFailure {
  return new HttpFailure(code, googleErrorBody(code, reason, message, options), options.headers);
}

/** Error bodies tests can inject, worded as YouTube words them. */
export const ERRORS = {
  quotaExceeded: () => ({
    kind: 'status' as const,
    status: 403,
    body: googleErrorBody(403, 'quotaExceeded', 'The request cannot be completed because you have exceeded your <a href="/youtube/v3/getting-started#quota">quota</a>.', { domain: 'youtube.quota' }),
  }),
  uploadLimitExceeded: () => ({
    kind: 'status' as const,
    status: 400,
    body: googleErrorBody(400, 'uploadLimitExceeded', 'The user has exceeded the number of videos they may upload.', { domain: 'youtube.video' }),
  }),
  rateLimited: (retryAfterSeconds?: number) => ({
    kind: 'status' as const,
    status: 429,
    body: googleErrorBody(429, 'rateLimitExceeded', 'Resource has been exhausted (e.g. check quota).', { domain: 'usageLimits', withStatus: true }),
    headers: (retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) }) as Record<string, string>,
  }),
  backendError: (status = 503) => ({
    kind: 'status' as const,
    status,
    body: googleErrorBody(status, 'backendError', 'Backend Error', { withStatus: true }),
  }),
  forbidden: () => ({ kind: 'status' as const, status: 403, body: googleErrorBody(403, 'forbidden', 'Forbidden', { domain: 'youtube.video' }) }),
};

function randomId(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

function hasAny(scopes: Set<string>, wanted: readonly string[]): boolean {
  return wanted.some((s) => scopes.has(s));
}

export async function startYoutubeSim(config: YoutubeSimOptions = {}): Promise<YoutubeSim> {
  const now = config.now ?? Date.now;
  const options = {
    clientId: config.clientId ?? 'sim-client.apps.googleusercontent.com',
    clientSecret: config.clientSecret ?? 'sim-secret',
    accessTokenTtlSeconds: config.accessTokenTtlSeconds ?? 3599,
    insertsPerDay: config.insertsPerDay ?? 100,
    unitsPerDay: config.unitsPerDay ?? 10_000,
    channelUploadsPerDay: config.channelUploadsPerDay ?? 50,
    sessionTtlMs: config.sessionTtlMs ?? 7 * 24 * 3600 * 1000,
    processingPolls: config.processingPolls ?? 2,
    outcome: config.outcome ?? { uploadStatus: 'processed' },
    lockPrivacy: config.lockPrivacy,
    completeStatus: config.completeStatus ?? 200,
    rotateRefreshTokens: config.rotateRefreshTokens ?? false,
  };
  const users = new Map<string, SimUser>();
  const tokens = new Map<string, SimToken>();
  const refreshTokens = new Map<string, SimRefreshToken>();
  const sessions = new Map<string, SimSession>();
  const videos: SimVideo[] = [];
  const requests: LoggedRequest[] = [];
  const quota = { inserts: 0, units: 0 };
  let faults: FaultRule[] = [];
  let base = '';
  let publicUrl: string | undefined;

  function issueAccessToken(userId: string, scopes: Set<string>, ttlSeconds = options.accessTokenTtlSeconds): SimToken {
    const token: SimToken = { value: `ya29.${randomId(24)}`, userId, scopes, expiresAt: now() + ttlSeconds * 1000 };
    tokens.set(token.value, token);
    return token;
  }

  function authenticate(req: IncomingMessage, wanted: readonly string[]): SimToken {
    const header = req.headers.authorization;
    const match = header ? /^Bearer (\S+)$/.exec(header) : null;
    const token = match ? tokens.get(match[1]!) : undefined;
    if (!token || token.expiresAt <= now()) {
      throw fail(401, 'authError', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', {
        withStatus: true,
        location: 'Authorization',
        headers: { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
      });
    }
    if (!hasAny(token.scopes, wanted)) {
      throw fail(403, 'insufficientPermissions', 'Request had insufficient authentication scopes.', { withStatus: true });
    }
    return token;
  }

  function classify(req: IncomingMessage, url: URL): RequestInfo {
    const path = url.pathname;
    let op: SimOp = 'other';
    let final = false;
    const sessionId = url.searchParams.get('upload_id') ?? undefined;
    if (path === '/token') op = 'token';
    else if (path === '/upload/youtube/v3/videos' && req.method === 'POST') op = 'insert';
    else if (path === '/upload/youtube/v3/videos' && req.method === 'PUT') {
      const range = req.headers['content-range'] ?? '';
      op = range.startsWith('bytes */') ? 'query' : 'chunk';
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(range);
      if (m) final = Number(m[2]) === Number(m[3]) - 1;
    } else if (path === '/youtube/v3/videos' && req.method === 'GET') op = 'list';
    else if (path === '/youtube/v3/channels' && req.method === 'GET') op = 'channels';
    return { op, method: req.method ?? '', path, query: url.searchParams, headers: req.headers, final, sessionId };
  }

  function takeFault(info: RequestInfo): Fault | undefined {
    const rule = faults.find((r) => r.op === info.op && r.remaining > 0 && (!r.when || r.when(info)));
    if (!rule) return undefined;
    rule.remaining -= 1;
    return rule.fault;
  }

  async function readJson(req: IncomingMessage, entry: LoggedRequest): Promise<string> {
    const pieces: Buffer[] = [];
    let size = 0;
    for await (const piece of req as AsyncIterable<Buffer>) {
      size += piece.length;
      entry.bytes = size;
      if (size > MAX_JSON_BYTES) throw fail(413, 'uploadTooLarge', 'Request body too large.');
      pieces.push(piece);
    }
    return Buffer.concat(pieces).toString('utf8');
  }

  async function drain(req: IncomingMessage, entry: LoggedRequest): Promise<void> {
    for await (const piece of req as AsyncIterable<Buffer>) entry.bytes += piece.length;
  }

  // --- /token -----------------------------------------------------------------------------

  async function handleToken(req: IncomingMessage, entry: LoggedRequest): Promise<[number, unknown]> {
    if (req.method !== 'POST') throw new HttpFailure(405, { error: 'invalid_request', error_description: 'Method not allowed' });
    const type = req.headers['content-type'] ?? '';
    const text = await readJson(req, entry);
    if (!type.startsWith('application/x-www-form-urlencoded')) {
      throw new HttpFailure(400, { error: 'invalid_request', error_description: 'Invalid Content-Type; expected application/x-www-form-urlencoded' });
    }
    const form = new URLSearchParams(text);
    const grant = form.get('grant_type');
    if (grant !== 'refresh_token') throw new HttpFailure(400, { error: 'unsupported_grant_type', error_description: `Invalid grant_type: ${grant ?? ''}` });
    if (form.get('client_id') !== options.clientId || form.get('client_secret') !== options.clientSecret) {
      throw new HttpFailure(401, { error: 'invalid_client', error_description: 'The OAuth client was not found.' });
    }
    const value = form.get('refresh_token');
    if (!value) throw new HttpFailure(400, { error: 'invalid_request', error_description: 'Missing required parameter: refresh_token' });
    const refresh = refreshTokens.get(value);
    if (!refresh || refresh.revoked) throw new HttpFailure(400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' });
    const token = issueAccessToken(refresh.userId, refresh.scopes);
    const body: Record<string, unknown> = {
      access_token: token.value,
      expires_in: options.accessTokenTtlSeconds,
      scope: [...refresh.scopes].join(' '),
      token_type: 'Bearer',
    };
    if (options.rotateRefreshTokens) {
      refresh.revoked = true;
      const next: SimRefreshToken = { value: `1//${randomId(32)}`, userId: refresh.userId, scopes: refresh.scopes, revoked: false };
      refreshTokens.set(next.value, next);
      body.refresh_token = next.value;
    }
    return [200, body];
  }

  // --- session start ----------------------------------------------------------------------

  function checkTitle(title: unknown): string {
    if (typeof title !== 'string' || title.trim() === '') throw fail(400, 'invalidTitle', 'The request metadata specifies an invalid or empty video title.', { domain: 'youtube.video', location: 'body.snippet.title' });
    if ([...title].length > 100 || /[<>]/.test(title)) {
      throw fail(400, 'invalidTitle', 'The request metadata specifies an invalid video title.', { domain: 'youtube.video', location: 'body.snippet.title' });
    }
    return title;
  }

  function checkDescription(description: unknown): string {
    if (description === undefined) return '';
    if (typeof description !== 'string' || Buffer.byteLength(description, 'utf8') > 5000 || /[<>]/.test(description)) {
      throw fail(400, 'invalidDescription', 'The request metadata specifies an invalid video description.', { domain: 'youtube.video', location: 'body.snippet.description' });
    }
    return description;
  }

  async function handleInsert(req: IncomingMessage, url: URL, entry: LoggedRequest): Promise<[number, unknown, Record<string, string>]> {
    const token = authenticate(req, UPLOAD_SCOPES);
    const text = await readJson(req, entry);
    if (url.searchParams.get('uploadType') !== 'resumable') throw fail(400, 'invalidParameter', "Invalid value for uploadType: this simulator only speaks 'resumable'.", { location: 'uploadType' });
    const partParam = url.searchParams.get('part');
    if (!partParam) throw fail(400, 'required', 'Required parameter: part', { location: 'part' });
    const parts = partParam.split(',').map((p) => p.trim());
    for (const part of parts) if (!WRITABLE_PARTS.has(part)) throw fail(400, 'invalidPart', `'${part}' is not a valid part for videos.insert.`, { location: 'part' });
    const notify = url.searchParams.get('notifySubscribers');
    if (notify !== null && notify !== 'true' && notify !== 'false') throw fail(400, 'invalidParameter', 'Invalid boolean value for notifySubscribers.', { location: 'notifySubscribers' });
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json(\s*;\s*charset=utf-8)?$/i.test(type)) throw fail(400, 'badContent', `Unsupported content with type: ${type}`);
    const declared = req.headers['x-upload-content-length'];
    if (typeof declared !== 'string' || !/^\d+$/.test(declared) || Number(declared) <= 0) {
      throw fail(400, 'badRequest', 'X-Upload-Content-Length must be a positive integer.', { location: 'X-Upload-Content-Length' });
    }
    const uploadType = req.headers['x-upload-content-type'];
    if (typeof uploadType !== 'string' || !(/^video\/[\w.+-]+$/.test(uploadType) || uploadType === 'application/octet-stream')) {
      throw fail(400, 'badContent', `Media type '${String(uploadType)}' is not supported.`, { location: 'X-Upload-Content-Type' });
    }
    let resource: Record<string, unknown>;
    try {
      resource = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw fail(400, 'parseError', 'Parse Error');
    }
    if (!resource || typeof resource !== 'object') throw fail(400, 'parseError', 'Parse Error');
    for (const key of Object.keys(resource)) {
      if (!parts.includes(key)) throw fail(400, 'unexpectedPart', `The request metadata sets '${key}' but part does not include it.`, { location: 'part' });
    }
    const snippet = (resource.snippet ?? {}) as Record<string, unknown>;
    const status = (resource.status ?? {}) as Record<string, unknown>;
    checkTitle(snippet.title);
    checkDescription(snippet.description);
    if (snippet.categoryId !== undefined && (typeof snippet.categoryId !== 'string' || !CATEGORY_IDS.has(snippet.categoryId))) {
      throw fail(400, 'invalidCategoryId', 'The snippet.categoryId property specifies an invalid category ID.', { domain: 'youtube.video' });
    }
    if (Array.isArray(snippet.tags) && (snippet.tags as unknown[]).join(',').length > 500) throw fail(400, 'invalidTags', 'The request metadata specifies invalid video keywords.', { domain: 'youtube.video' });
    const privacy = status.privacyStatus ?? 'public';
    if (privacy !== 'public' && privacy !== 'unlisted' && privacy !== 'private') throw fail(400, 'invalidValue', `Invalid value '${String(privacy)}' for status.privacyStatus.`, { location: 'body.status.privacyStatus' });
    if (status.publishAt !== undefined && privacy !== 'private') throw fail(400, 'invalidPublishAt', 'publishAt can only be set for private videos.', { domain: 'youtube.video' });

    const user = users.get(token.userId)!;
    if (!user.channelId) throw fail(401, 'youtubeSignupRequired', 'Unauthorized', { domain: 'youtube.header', location: 'Authorization' });
    if (quota.inserts >= options.insertsPerDay) throw new HttpFailure(403, ERRORS.quotaExceeded().body);
    quota.inserts += 1;
    if (user.uploadsToday >= options.channelUploadsPerDay) throw new HttpFailure(400, ERRORS.uploadLimitExceeded().body);

    const id = `AEnB2U${randomId(24)}`;
    const session: SimSession = {
      id,
      userId: token.userId,
      total: Number(declared),
      contentType: uploadType,
      metadata: { snippet, status, notifySubscribers: notify !== 'false' },
      received: 0,
      hash: createHash('sha256'),
      inFlight: false,
      video: undefined,
      createdAt: now(),
      gone: undefined,
    };
    sessions.set(id, session);
    entry.sessionId = id;
    const location = new URL(`${publicUrl ?? base}/upload/youtube/v3/videos`);
    location.searchParams.set('uploadType', 'resumable');
    location.searchParams.set('part', partParam);
    location.searchParams.set('upload_id', id);
    return [200, undefined, { location: location.toString(), 'x-guploader-uploadid': id }];
  }

  // --- session PUTs -----------------------------------------------------------------------

  function findSession(info: RequestInfo): SimSession {
    const session = info.sessionId ? sessions.get(info.sessionId) : undefined;
    if (!session) throw fail(404, 'notFound', 'Not Found');
    if (session.gone) throw fail(session.gone, session.gone === 404 ? 'notFound' : 'gone', session.gone === 404 ? 'Not Found' : 'Gone');
    if (now() - session.createdAt > options.sessionTtlMs) {
      session.gone = 404;
      throw fail(404, 'notFound', 'Not Found');
    }
    return session;
  }

  function incompleteHeaders(session: SimSession): Record<string, string> {
    return session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {};
  }

  function videoResource(video: SimVideo, parts: readonly string[]): Record<string, unknown> {
    const resource: Record<string, unknown> = { kind: 'youtube#video', etag: createHash('md5').update(`${video.id}:${video.uploadStatus}:${video.polls}`).digest('base64url'), id: video.id };
    if (parts.includes('snippet')) {
      resource.snippet = { publishedAt: new Date(video.createdAt).toISOString(), channelId: users.get(video.userId)?.channelId, title: video.title, description: video.description, categoryId: video.categoryId };
    }
    if (parts.includes('status')) {
      const status: Record<string, unknown> = { uploadStatus: video.uploadStatus, privacyStatus: video.privacyStatus, license: 'youtube', embeddable: true, publicStatsViewable: true };
      if (video.selfDeclaredMadeForKids !== undefined) status.selfDeclaredMadeForKids = video.selfDeclaredMadeForKids;
      if (video.failureReason) status.failureReason = video.failureReason;
      if (video.rejectionReason) status.rejectionReason = video.rejectionReason;
      resource.status = status;
    }
    if (parts.includes('processingDetails')) {
      const left = Math.max(0, video.pollsUntilDone - video.polls);
      const details: Record<string, unknown> = {};
      if (video.uploadStatus === 'uploaded') {
        details.processingStatus = 'processing';
        details.processingProgress = { partsTotal: String(video.pollsUntilDone), partsProcessed: String(video.polls), timeLeftMs: String(left * 1000) };
      } else if (video.uploadStatus === 'processed') details.processingStatus = 'succeeded';
      else if (video.uploadStatus === 'failed') Object.assign(details, { processingStatus: 'failed', processingFailureReason: 'transcodeFailed' });
      else details.processingStatus = 'terminated';
      resource.processingDetails = details;
    }
    return resource;
  }

  function createVideo(session: SimSession): SimVideo {
    const snippet = session.metadata.snippet;
    const status = session.metadata.status;
    const requested = typeof status.privacyStatus === 'string' ? status.privacyStatus : 'public';
    const video: SimVideo = {
      id: randomId(8).slice(0, 11),
      userId: session.userId,
      title: snippet.title as string,
      description: typeof snippet.description === 'string' ? snippet.description : '',
      categoryId: typeof snippet.categoryId === 'string' ? snippet.categoryId : undefined,
      privacyStatus: options.lockPrivacy ?? requested,
      requestedPrivacy: requested,
      selfDeclaredMadeForKids: typeof status.selfDeclaredMadeForKids === 'boolean' ? status.selfDeclaredMadeForKids : undefined,
      notifySubscribers: session.metadata.notifySubscribers,
      contentType: session.contentType,
      size: session.total,
      sha256: session.hash.digest('hex'),
      uploadStatus: 'uploaded',
      polls: 0,
      pollsUntilDone: options.processingPolls,
      outcome: options.outcome,
      createdAt: now(),
    };
    videos.push(video);
    users.get(session.userId)!.uploadsToday += 1;
    return video;
  }

  async function handleQuery(req: IncomingMessage, info: RequestInfo, entry: LoggedRequest): Promise<[number, unknown, Record<string, string>]> {
    authenticate(req, UPLOAD_SCOPES);
    const session = findSession(info);
    await drain(req, entry);
    if (entry.bytes !== 0) throw fail(400, 'badRequest', 'A status query must have an empty body.');
    const total = Number((req.headers['content-range'] ?? '').slice('bytes */'.length));
    if (total !== session.total) throw fail(400, 'badRequest', `Content-Range total ${total} does not match the declared upload size ${session.total}.`);
    if (session.video) return [options.completeStatus, videoResource(session.video, ['snippet', 'status']), {}];
    return [308, undefined, incompleteHeaders(session)];
  }

  async function handleChunk(req: IncomingMessage, res: ServerResponse, info: RequestInfo, entry: LoggedRequest, cutAfter: number | undefined): Promise<[number, unknown, Record<string, string>] | 'cut'> {
    const token = authenticate(req, UPLOAD_SCOPES);
    const session = findSession(info);
    if (token.userId !== session.userId) throw fail(403, 'forbidden', 'The session belongs to another user.');
    const range = req.headers['content-range'];
    if (!range) throw fail(400, 'badRequest', 'Content-Range is required for a chunk of a resumable upload.');
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(range);
    if (!m) throw fail(400, 'badRequest', `Malformed Content-Range: ${range}`);
    const [first, last, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (total !== session.total) throw fail(400, 'badRequest', `Content-Range total ${total} does not match the declared upload size ${session.total}.`);
    if (last < first || last >= total) throw fail(400, 'badRequest', `Invalid Content-Range ${range}.`);
    const lengthHeader = req.headers['content-length'];
    if (lengthHeader === undefined || req.headers['transfer-encoding']) throw fail(400, 'badRequest', 'Content-Length is required (no chunked transfer encoding).');
    const length = last - first + 1;
    if (Number(lengthHeader) !== length) throw fail(400, 'badRequest', `Content-Length ${lengthHeader} does not match Content-Range ${range}.`);
    if (session.video) throw fail(400, 'badRequest', 'The upload is already complete.');
    if (first !== session.received) {
      throw fail(400, 'badContent', `Invalid request. According to the Content-Range header, the upload offset is ${first} byte(s), which does not match the ${session.received} byte(s) already uploaded.`);
    }
    const final = last === total - 1;
    if (!final && length % GRANULE !== 0) throw fail(400, 'badRequest', `Chunk size ${length} is not a multiple of 256 KiB and it is not the last chunk.`);
    const type = req.headers['content-type'];
    if (type !== undefined && type !== session.contentType && type !== 'application/octet-stream') throw fail(400, 'badContent', `Content-Type ${type} does not match the session's ${session.contentType}.`);
    if (session.inFlight) throw fail(400, 'badRequest', 'Another chunk of this upload is still in flight: chunks must be sequential.');

    // Bytes persist in whole granules: a hash snapshot at each granule boundary is what survives a cut.
    session.inFlight = true;
    let kept = session.hash.copy();
    let keptBytes = 0;
    let work = session.hash.copy();
    let seen = 0;
    let cut = false;
    try {
      for await (const piece of req as AsyncIterable<Buffer>) {
        let at = 0;
        while (at < piece.length) {
          if (seen >= length) throw fail(400, 'badRequest', 'More bytes than Content-Length.');
          const toBoundary = GRANULE - (seen % GRANULE);
          const take = Math.min(toBoundary, piece.length - at, length - seen, cutAfter === undefined ? Infinity : cutAfter - seen);
          if (take <= 0) break;
          work.update(piece.subarray(at, at + take));
          at += take;
          seen += take;
          entry.bytes = seen;
          if (seen % GRANULE === 0) {
            kept = work.copy();
            keptBytes = seen;
          }
        }
        if (cutAfter !== undefined && seen >= cutAfter) {
          cut = true;
          break;
        }
      }
    } catch (error) {
      if (error instanceof HttpFailure) throw error;
      cut = true; // the client went away mid-body
    } finally {
      session.inFlight = false;
    }
    if (cut || req.readableAborted || seen < length) {
      session.hash = kept;
      session.received += keptBytes;
      if (cutAfter !== undefined) res.socket?.destroy();
      return 'cut';
    }
    session.hash = work;
    session.received += length;
    if (!final) return [308, undefined, incompleteHeaders(session)];
    const video = createVideo(session);
    session.video = video;
    entry.sessionId = session.id;
    return [options.completeStatus, videoResource(video, ['snippet', 'status']), {}];
  }

  // --- videos.list ------------------------------------------------------------------------

  async function handleList(req: IncomingMessage, url: URL, entry: LoggedRequest): Promise<[number, unknown]> {
    const token = authenticate(req, READ_SCOPES);
    await drain(req, entry);
    const partParam = url.searchParams.get('part');
    if (!partParam) throw fail(400, 'required', 'Required parameter: part', { location: 'part' });
    const parts = partParam.split(',').map((p) => p.trim());
    for (const part of parts) if (!READABLE_PARTS.has(part)) throw fail(400, 'unknownPart', `'${part}'`, { location: 'part' });
    const ids = url.searchParams.get('id');
    if (!ids) throw fail(400, 'missingRequiredParameter', 'No filter selected. Expected one of: myRating, id, chart.', { domain: 'youtube.parameter', location: 'parameters.' });
    if (quota.units >= options.unitsPerDay) throw new HttpFailure(403, ERRORS.quotaExceeded().body);
    quota.units += 1;
    const items: unknown[] = [];
    for (const id of ids.split(',')) {
      const video = videos.find((v) => v.id === id && v.uploadStatus !== 'deleted');
      // Only the owner sees a video that is not public and processed (and its processingDetails at all).
      if (!video || (video.userId !== token.userId && !(video.privacyStatus === 'public' && video.uploadStatus === 'processed'))) continue;
      if (video.uploadStatus === 'uploaded') {
        video.polls += 1;
        if (video.polls > video.pollsUntilDone) {
          video.uploadStatus = video.outcome.uploadStatus;
          if (video.outcome.uploadStatus === 'failed') video.failureReason = video.outcome.failureReason;
          if (video.outcome.uploadStatus === 'rejected') video.rejectionReason = video.outcome.rejectionReason;
        }
      }
      items.push(videoResource(video, video.userId === token.userId ? parts : parts.filter((p) => p !== 'processingDetails')));
    }
    return [200, { kind: 'youtube#videoListResponse', etag: randomId(8), pageInfo: { totalResults: items.length, resultsPerPage: items.length }, items }];
  }

  // --- channels.list ----------------------------------------------------------------------

  async function handleChannels(req: IncomingMessage, url: URL, entry: LoggedRequest): Promise<[number, unknown]> {
    const token = authenticate(req, READ_SCOPES);
    await drain(req, entry);
    const partParam = url.searchParams.get('part');
    if (!partParam) throw fail(400, 'required', 'Required parameter: part', { location: 'part' });
    const parts = partParam.split(',').map((p) => p.trim());
    for (const part of parts) if (!CHANNEL_PARTS.has(part)) throw fail(400, 'unknownPart', `'${part}'`, { location: 'part' });
    const filters = CHANNEL_FILTERS.filter((f) => url.searchParams.has(f));
    if (filters.length !== 1) {
      throw fail(400, filters.length === 0 ? 'missingRequiredParameter' : 'incompatibleParameters', `Expected exactly one of: ${CHANNEL_FILTERS.join(', ')}.`, { domain: 'youtube.parameter', location: 'parameters.' });
    }
    if (filters[0] !== 'mine') throw fail(400, 'invalidParameter', `This simulator only answers mine=true (got ${filters[0]}).`, { location: filters[0] });
    if (url.searchParams.get('mine') !== 'true') throw fail(400, 'invalidParameter', 'Invalid boolean value for mine.', { location: 'mine' });
    if (quota.units >= options.unitsPerDay) throw new HttpFailure(403, ERRORS.quotaExceeded().body);
    quota.units += 1;
    const channelId = users.get(token.userId)?.channelId ?? null;
    // A Google account without a channel answers 200 with no items.
    const items = channelId === null ? [] : [{ kind: 'youtube#channel', etag: randomId(8), id: channelId }];
    const body: Record<string, unknown> = { kind: 'youtube#channelListResponse', etag: randomId(8), pageInfo: { totalResults: items.length, resultsPerPage: 5 } };
    if (items.length > 0) body.items = items;
    return [200, body];
  }

  // --- dispatch ---------------------------------------------------------------------------

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.destroyed || res.headersSent) return;
    const text = body === undefined ? '' : JSON.stringify(body);
    const out: Record<string, string> = { ...headers, 'content-length': String(Buffer.byteLength(text)) };
    if (body !== undefined) out['content-type'] = 'application/json; charset=UTF-8';
    res.writeHead(status, out).end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', base);
    const info = classify(req, url);
    const entry: LoggedRequest = { op: info.op, method: info.method, path: url.pathname, contentRange: req.headers['content-range'], bytes: 0, status: 0 };
    if (info.sessionId) entry.sessionId = info.sessionId;
    requests.push(entry);
    const fault = takeFault(info);
    try {
      if (fault?.kind === 'status') {
        await drain(req, entry).catch(() => undefined);
        entry.status = fault.status;
        return send(res, fault.status, fault.body, fault.headers);
      }
      if (fault?.kind === 'reset') {
        entry.status = 'reset';
        res.socket?.destroy();
        return;
      }
      if (fault?.kind === 'hang') {
        entry.status = 'hang';
        req.resume();
        return;
      }
      if (fault?.kind === 'expireToken') {
        const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
        const token = match ? tokens.get(match[1]!) : undefined;
        if (token) token.expiresAt = now();
      }
      let result: [number, unknown, Record<string, string>?] | 'cut';
      switch (info.op) {
        case 'token':
          result = await handleToken(req, entry);
          break;
        case 'insert':
          result = await handleInsert(req, url, entry);
          break;
        case 'query':
          result = await handleQuery(req, info, entry);
          break;
        case 'chunk':
          result = await handleChunk(req, res, info, entry, fault?.kind === 'resetMidBody' ? fault.afterBytes : undefined);
          break;
        case 'list':
          result = await handleList(req, url, entry);
          break;
        case 'channels':
          result = await handleChannels(req, url, entry);
          break;
        default:
          await drain(req, entry);
          throw fail(404, 'notFound', `No such endpoint: ${req.method} ${url.pathname}`);
      }
      if (result === 'cut') {
        entry.status = 'reset';
        return;
      }
      if (fault?.kind === 'resetAfterHandling') {
        entry.status = 'reset';
        res.socket?.destroy();
        return;
      }
      entry.status = result[0];
      send(res, result[0], result[1], result[2]);
    } catch (error) {
      if (!(error instanceof HttpFailure)) throw error;
      entry.status = error.status;
      const reason = googleReason(error.body);
      if (reason) entry.reason = reason;
      // Read (and discard) the rest first: a client still writing a chunk may not see an early answer.
      if (!req.complete) await drain(req, entry).catch(() => undefined);
      send(res, error.status, error.body, error.headers);
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      send(res, 500, googleErrorBody(500, 'internalError', `simulator bug: ${error instanceof Error ? error.message : String(error)}`));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const sim: YoutubeSim = {
    url: base,
    get publicUrl() {
      return publicUrl ?? base;
    },
    set publicUrl(value) {
      publicUrl = value;
    },
    urls: { api: base, upload: `${base}/upload`, token: `${base}/token` },
    client: { clientId: options.clientId, clientSecret: options.clientSecret },
    options,
    users,
    videos,
    sessions,
    requests,
    quota,
    addAccount(opts = {}) {
      const userId = opts.userId ?? `user-${randomId(6)}`;
      if (!users.has(userId)) users.set(userId, { id: userId, channelId: opts.channel === false ? null : `UC${randomId(16)}`, uploadsToday: 0 });
      const scopes = new Set(opts.scopes ?? [SCOPES.upload, SCOPES.readonly]);
      const access = issueAccessToken(userId, scopes, opts.expiresInSeconds);
      const refresh: SimRefreshToken = { value: `1//${randomId(32)}`, userId, scopes, revoked: false };
      refreshTokens.set(refresh.value, refresh);
      return { userId, accessToken: access.value, refreshToken: refresh.value, expiresAt: new Date(access.expiresAt).toISOString(), scope: [...scopes].join(' '), tokenType: 'Bearer' };
    },
    expireAccessToken(token) {
      const found = tokens.get(token);
      if (found) found.expiresAt = now();
    },
    revokeRefreshToken(token) {
      const found = refreshTokens.get(token);
      if (found) found.revoked = true;
    },
    sessionOf(uri) {
      const id = new URL(uri).searchParams.get('upload_id');
      return id ? sessions.get(id) : undefined;
    },
    expireSession(uri, status = 404) {
      const session = sim.sessionOf(uri);
      if (session) session.gone = status;
    },
    inject(op, fault, opts = {}) {
      faults.push({ op, fault, remaining: opts.times ?? 1, when: opts.when });
    },
    clearFaults() {
      faults = [];
    },
    resetQuota() {
      quota.inserts = 0;
      quota.units = 0;
      for (const user of users.values()) user.uploadsToday = 0;
    },
    log(op) {
      return requests.filter((r) => r.op === op);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return sim;
}

function googleReason(body: unknown): string | undefined {
  const error = (body as { error?: unknown } | undefined)?.error;
  if (typeof error === 'string') return error;
  const first = (error as { errors?: Array<{ reason?: string }> } | undefined)?.errors?.[0];
  return first?.reason;
}
