/**
 * A wire-level simulator of the X API v2 calls Reelay makes (platform reference §5), on 127.0.0.1.
 * It enforces what the docs say and refuses the rest:
 * - `Authorization: Bearer` user tokens that expire, with the scopes each endpoint needs;
 * - OAuth 2.0 refresh at /2/oauth2/token (Basic auth for a confidential client, `client_id` in the
 *   form for a public one), rotating single-use refresh tokens, X's `invalid_request` for a spent one;
 * - media: initialize (JSON, video/mp4, total_bytes ≤ 512 MB, media_category) -> append
 *   (multipart/form-data `segment_index` + `media`, or JSON base64; ≤ 5 MB per segment; indexes in
 *   order, 0–999; the last one may be sent again after a lost answer) -> finalize (bytes must add up;
 *   only once) -> STATUS (pending for N polls, in_progress for M, then succeeded or failed);
 * - POST /2/tweets: JSON, 280 weighted characters (twitter-text), media that finished processing,
 *   X's duplicate-text refusal; GET /2/users/:id/tweets with start_time, pagination and the
 *   attachments.media_keys expansion, where a new post shows up only after `indexDelayMs`;
 * - per-user rate limits with x-rate-limit-* headers.
 * Faults on demand: connection reset (before or after the change is committed), hangs, any status,
 * 429, usage caps, and expiring the caller's token. Request bodies are streamed and hashed, never
 * held whole (at most one segment of a JSON append).
 */
import { MultipartParser } from './multipart.ts';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import twitterText from 'twitter-text';

export type XRoute = 'token' | 'initialize' | 'append' | 'finalize' | 'status' | 'create' | 'timeline' | 'me';

export type XFaultKind =
  /** Destroy the socket before doing anything. */
  | 'reset'
  /** Do the work (commit), then destroy the socket instead of answering. */
  | 'resetAfterCommit'
  /** Never answer; nothing is done. */
  | 'hang'
  /** Do the work, then never answer. */
  | 'hangAfterCommit'
  /** Answer `status`/`body` without doing anything. */
  | 'respond'
  /** Do the work, then answer `status`/`body` instead of the real answer. */
  | 'respondAfterCommit'
  /** 429 Too Many Requests with x-rate-limit-reset `retryAfterSeconds` ahead. */
  | 'rateLimit'
  /** 429 UsageCapExceeded (the app's monthly cap). */
  | 'usageCap'
  /** The caller's access token expires now (so this request answers 401). */
  | 'expireToken';

export interface XFault {
  route: XRoute;
  kind: XFaultKind;
  /** Requests to this route to let through before the fault applies. */
  skip?: number;
  /** How many requests it applies to (default 1; Infinity for all). */
  times?: number;
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  retryAfterSeconds?: number;
}

export interface XSimOptions {
  now?: () => number;
  /** The app's OAuth client. A null secret makes it a public client. */
  client?: { clientId: string; clientSecret: string | null };
  accessTokenTtlSeconds?: number;
  mediaExpiresAfterSecs?: number;
  maxSegmentBytes?: number;
  maxTotalBytes?: number;
  /** STATUS polls answered `pending`, then `in_progress`, before the final state. */
  pendingPolls?: number;
  inProgressPolls?: number;
  checkAfterSecs?: number;
  /** What finalize answers: processing (default), or no processing_info (ready at once). */
  processing?: 'async' | 'none';
  /** Which STATUS paths exist: the official `?command=STATUS&media_id=` and/or `/2/media/upload/{id}`. */
  statusPaths?: ReadonlyArray<'query' | 'path'>;
  /** A new post appears on the timeline this long after it was created. */
  indexDelayMs?: number;
  rateLimits?: Partial<Record<RateGroup, { limit: number; windowSeconds: number }>>;
}

type RateGroup = 'media' | 'status' | 'create' | 'timeline' | 'me';

export interface SimUser {
  userId: string;
  username: string;
  accessToken: string;
  refreshToken: string;
  expiresAt: Date;
  scope: string;
}

export interface SimPost {
  id: string;
  authorId: string;
  text: string;
  mediaKeys: string[];
  createdAt: number;
  visibleAt: number;
}

export interface SimMedia {
  id: string;
  key: string;
  ownerId: string;
  totalBytes: number;
  category: string;
  createdAt: number;
  expiresAt: number;
  segments: number[];
  bytes: number;
  finalized: boolean;
  sha256: string | null;
  state: 'uploading' | 'pending' | 'in_progress' | 'succeeded' | 'failed';
  polls: number;
  failWith: { code: number; name: string; message: string } | null;
  hashAll: Hash;
  hashBeforeLast: Hash | null;
}

export interface SimRequest {
  route: XRoute | 'unknown';
  method: string;
  path: string;
  status: number | 'reset' | 'hang';
  userId: string | null;
  /** Body bytes received. */
  bytes: number;
  at: number;
  segmentIndex?: number;
}

export interface XSim {
  url: string;
  addUser(options?: { username?: string; scopes?: string[]; expiresInSeconds?: number }): SimUser;
  /** Expires an access token now (the refresh token stays valid). */
  expireAccessToken(token: string): void;
  fault(fault: XFault): void;
  clearFaults(): void;
  /** Fails processing of the next finalized media (STATUS ends in `failed`). */
  failNextProcessing(error?: { code: number; name: string; message: string }): void;
  readonly posts: readonly SimPost[];
  postsBy(userId: string): SimPost[];
  readonly requests: readonly SimRequest[];
  count(route: XRoute): number;
  media(id: string): SimMedia | undefined;
  readonly allMedia: readonly SimMedia[];
  /** Requests still hanging (held open until close). */
  readonly hanging: number;
  close(): Promise<void>;
}

const ALL_SCOPES = ['tweet.read', 'tweet.write', 'users.read', 'media.write', 'offline.access'];
const ROUTE_SCOPES: Record<Exclude<XRoute, 'token'>, string[]> = {
  initialize: ['media.write'],
  append: ['media.write'],
  finalize: ['media.write'],
  status: ['media.write'],
  create: ['tweet.read', 'tweet.write', 'users.read'],
  timeline: ['tweet.read', 'users.read'],
  me: ['tweet.read', 'users.read'],
};
const ROUTE_GROUP: Record<Exclude<XRoute, 'token'>, RateGroup> = {
  initialize: 'media',
  append: 'media',
  finalize: 'media',
  status: 'status',
  create: 'create',
  timeline: 'timeline',
  me: 'me',
};
const DEFAULT_LIMITS: Record<RateGroup, { limit: number; windowSeconds: number }> = {
  media: { limit: 1875, windowSeconds: 900 },
  status: { limit: 1000, windowSeconds: 900 },
  create: { limit: 100, windowSeconds: 900 },
  timeline: { limit: 900, windowSeconds: 900 },
  me: { limit: 75, windowSeconds: 900 },
};
const TWEET_FIELDS = new Set(['attachments', 'author_id', 'created_at', 'edit_history_tweet_ids', 'entities', 'id', 'lang', 'public_metrics', 'text', 'conversation_id']);
const EXPANSIONS = new Set(['attachments.media_keys', 'author_id', 'edit_history_tweet_ids', 'referenced_tweets.id', 'attachments.poll_ids']);
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
const JSON_LIMIT = 8 * 1024 * 1024;

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

class SimError extends Error {
  readonly answer: Answer;
  constructor(answer: Answer) {
    super(`sim answer ${answer.status}`);
    this.answer = answer;
  }
}

function problem(status: number, title: string, detail: string, type = 'about:blank', extra: Record<string, unknown> = {}): Answer {
  return { status, body: { title, detail, type, status, ...extra }, headers: { 'content-type': 'application/problem+json' } };
}

function invalidRequest(message: string, parameters?: Record<string, unknown[]>): Answer {
  return {
    status: 400,
    body: {
      errors: [{ ...(parameters ? { parameters } : {}), message }],
      title: 'Invalid Request',
      detail: 'One or more parameters to your request was invalid.',
      type: 'https://api.twitter.com/2/problems/invalid-request',
    },
    headers: { 'content-type': 'application/json' },
  };
}

const UNAUTHORIZED = (): Answer => problem(401, 'Unauthorized', 'Unauthorized');

export async function startXSim(options: XSimOptions = {}): Promise<XSim> {
  const now = options.now ?? (() => Date.now());
  const cfg = {
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 7200,
    mediaExpiresAfterSecs: options.mediaExpiresAfterSecs ?? 86_400,
    maxSegmentBytes: options.maxSegmentBytes ?? 5 * 1024 * 1024,
    maxTotalBytes: options.maxTotalBytes ?? 512 * 1024 * 1024,
    pendingPolls: options.pendingPolls ?? 1,
    inProgressPolls: options.inProgressPolls ?? 1,
    checkAfterSecs: options.checkAfterSecs ?? 1,
    processing: options.processing ?? 'async',
    statusPaths: new Set(options.statusPaths ?? ['query']),
    indexDelayMs: options.indexDelayMs ?? 0,
  };
  const client = options.client ?? { clientId: 'reelay-client', clientSecret: 'reelay-secret' };
  const limits = { ...DEFAULT_LIMITS, ...options.rateLimits };

  const users = new Map<string, { userId: string; username: string }>();
  const accessTokens = new Map<string, { userId: string; scopes: Set<string>; expiresAt: number }>();
  const refreshTokens = new Map<string, { userId: string; scopes: Set<string>; spent: boolean }>();
  const media = new Map<string, SimMedia>();
  const posts: SimPost[] = [];
  const requests: SimRequest[] = [];
  const faults: (XFault & { seen: number; applied: number })[] = [];
  const routeHits = new Map<XRoute, number>();
  const windows = new Map<string, { start: number; count: number }>();
  const hung = new Set<ServerResponse>();
  let nextUser = 1000;
  let nextId = 1_900_000_000_000_000_000n;
  let nextFailure: SimMedia['failWith'] = null;

  const snowflake = () => String(nextId++);
  const token = (prefix: string) => `${prefix}-${randomBytes(18).toString('base64url')}`;

  function issue(userId: string, scopes: Set<string>, ttlSeconds = cfg.accessTokenTtlSeconds) {
    const accessToken = token('xat');
    const refreshToken = token('xrt');
    const expiresAt = now() + ttlSeconds * 1000;
    accessTokens.set(accessToken, { userId, scopes, expiresAt });
    if (scopes.has('offline.access')) refreshTokens.set(refreshToken, { userId, scopes, spent: false });
    return { accessToken, refreshToken, expiresAt };
  }

  function authenticate(req: IncomingMessage, route: Exclude<XRoute, 'token'>): { userId: string } {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer (\S+)$/.exec(header);
    const entry = match ? accessTokens.get(match[1]!) : undefined;
    if (!entry || entry.expiresAt <= now()) throw new SimError(UNAUTHORIZED());
    const missing = ROUTE_SCOPES[route].filter((s) => !entry.scopes.has(s));
    if (missing.length > 0) {
      throw new SimError(problem(403, 'Forbidden', `Missing required OAuth 2.0 scopes: ${missing.join(', ')}`));
    }
    return { userId: entry.userId };
  }

  function rateHeaders(userId: string, route: Exclude<XRoute, 'token'>): Record<string, string> {
    const group = ROUTE_GROUP[route];
    const { limit, windowSeconds } = limits[group];
    const key = `${userId}:${group}`;
    let window = windows.get(key);
    if (!window || now() >= window.start + windowSeconds * 1000) {
      window = { start: now(), count: 0 };
      windows.set(key, window);
    }
    window.count += 1;
    const reset = String(Math.ceil((window.start + windowSeconds * 1000) / 1000));
    const headers = { 'x-rate-limit-limit': String(limit), 'x-rate-limit-remaining': String(Math.max(0, limit - window.count)), 'x-rate-limit-reset': reset };
    if (window.count > limit) throw new SimError({ ...problem(429, 'Too Many Requests', 'Too Many Requests'), headers: { ...headers, 'content-type': 'application/problem+json' } });
    return headers;
  }

  function routeOf(method: string, url: URL): { route: XRoute; id?: string } | null {
    const path = url.pathname;
    if (method === 'POST' && path === '/2/oauth2/token') return { route: 'token' };
    if (method === 'POST' && path === '/2/media/upload/initialize') return { route: 'initialize' };
    let m = /^\/2\/media\/upload\/(\d+)\/(append|finalize)$/.exec(path);
    if (method === 'POST' && m) return { route: m[2] as 'append' | 'finalize', id: m[1]! };
    if (method === 'GET' && path === '/2/media/upload' && cfg.statusPaths.has('query') && url.searchParams.get('command') === 'STATUS') {
      return { route: 'status', id: url.searchParams.get('media_id') ?? '' };
    }
    m = /^\/2\/media\/upload\/(\d+)$/.exec(path);
    if (method === 'GET' && m && cfg.statusPaths.has('path')) return { route: 'status', id: m[1]! };
    if (method === 'POST' && path === '/2/tweets') return { route: 'create' };
    if (method === 'GET' && path === '/2/users/me') return { route: 'me' };
    m = /^\/2\/users\/([^/]+)\/tweets$/.exec(path);
    if (method === 'GET' && m) return { route: 'timeline', id: m[1]! };
    return null;
  }

  function takeFault(route: XRoute): XFault | null {
    const hits = (routeHits.get(route) ?? 0) + 1;
    routeHits.set(route, hits);
    for (const fault of faults) {
      if (fault.route !== route) continue;
      fault.seen += 1;
      if (fault.seen <= (fault.skip ?? 0)) continue;
      if (fault.applied >= (fault.times ?? 1)) continue;
      fault.applied += 1;
      return fault;
    }
    return null;
  }

  // ---- bodies ----------------------------------------------------------------------------------

  async function readLimited(req: IncomingMessage, limit = JSON_LIMIT): Promise<{ text: string; bytes: number }> {
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes <= limit) chunks.push(chunk);
    }
    if (bytes > limit) throw new SimError(problem(413, 'Payload Too Large', 'Request body too large'));
    return { text: Buffer.concat(chunks).toString('utf8'), bytes };
  }

  function requireJson(req: IncomingMessage): void {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') throw new SimError(invalidRequest(`Unsupported Content-Type: ${type || '(none)'}; expected application/json`));
  }

  async function readJson(req: IncomingMessage): Promise<{ value: Record<string, unknown>; bytes: number }> {
    requireJson(req);
    const { text, bytes } = await readLimited(req);
    try {
      const value = JSON.parse(text) as unknown;
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
      return { value: value as Record<string, unknown>, bytes };
    } catch {
      throw new SimError(invalidRequest('Request body is not valid JSON'));
    }
  }

  // ---- routes ------------------------------------------------------------------------------------

  async function tokenRoute(req: IncomingMessage): Promise<{ answer: Answer; bytes: number; userId: string | null }> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const { text, bytes } = await readLimited(req, 64 * 1024);
    if (type !== 'application/x-www-form-urlencoded') {
      return { answer: { status: 400, body: { error: 'invalid_request', error_description: 'Unsupported content type' } }, bytes, userId: null };
    }
    const form = new URLSearchParams(text);
    const basic = /^Basic (\S+)$/.exec(req.headers.authorization ?? '');
    if (client.clientSecret !== null) {
      const expected = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64');
      if (!basic || basic[1] !== expected) {
        return { answer: { status: 401, body: { error: 'unauthorized_client', error_description: 'Missing valid authorization header' } }, bytes, userId: null };
      }
    } else if (basic || form.get('client_id') !== client.clientId) {
      return { answer: { status: 400, body: { error: 'invalid_request', error_description: 'Missing required parameter [client_id].' } }, bytes, userId: null };
    }
    if (form.get('grant_type') !== 'refresh_token') {
      return { answer: { status: 400, body: { error: 'unsupported_grant_type', error_description: 'Unsupported grant type' } }, bytes, userId: null };
    }
    const presented = form.get('refresh_token') ?? '';
    const entry = refreshTokens.get(presented);
    if (!entry || entry.spent) {
      return { answer: { status: 400, body: { error: 'invalid_request', error_description: 'Value passed for the token was invalid.' } }, bytes, userId: null };
    }
    // Single use: the presented token is spent whatever happens to the answer.
    entry.spent = true;
    const issued = issue(entry.userId, entry.scopes);
    return {
      answer: {
        status: 200,
        body: {
          token_type: 'bearer',
          expires_in: cfg.accessTokenTtlSeconds,
          access_token: issued.accessToken,
          scope: [...entry.scopes].join(' '),
          refresh_token: issued.refreshToken,
        },
      },
      bytes,
      userId: entry.userId,
    };
  }

  function liveMedia(id: string, userId: string): SimMedia {
    const item = media.get(id);
    if (!item || item.ownerId !== userId || item.expiresAt <= now()) {
      throw new SimError(invalidRequest(`Invalid media_id: ${id}`, { media_id: [id] }));
    }
    return item;
  }

  async function initializeRoute(req: IncomingMessage, userId: string): Promise<{ answer: Answer; bytes: number }> {
    const { value, bytes } = await readJson(req);
    const { media_type, total_bytes, media_category } = value;
    if (typeof media_type !== 'string' || !['video/mp4', 'video/quicktime', 'image/jpeg', 'image/png', 'image/gif'].includes(media_type)) {
      throw new SimError(invalidRequest('media_type must be a supported MIME type', { media_type: [String(media_type)] }));
    }
    if (typeof total_bytes !== 'number' || !Number.isInteger(total_bytes) || total_bytes <= 0) {
      throw new SimError(invalidRequest('total_bytes must be a positive integer', { total_bytes: [String(total_bytes)] }));
    }
    if (typeof media_category !== 'string' || !['tweet_video', 'amplify_video', 'tweet_image', 'tweet_gif'].includes(media_category)) {
      throw new SimError(invalidRequest('media_category is required for chunked video uploads', { media_category: [String(media_category)] }));
    }
    if (media_type.startsWith('video/') && !media_category.endsWith('_video')) {
      throw new SimError(invalidRequest(`media_category ${media_category} does not accept ${media_type}`, { media_category: [media_category] }));
    }
    if (total_bytes > cfg.maxTotalBytes) {
      throw new SimError(invalidRequest(`File size exceeds ${cfg.maxTotalBytes} bytes.`, { total_bytes: [String(total_bytes)] }));
    }
    const id = snowflake();
    const item: SimMedia = {
      id,
      key: `7_${id}`,
      ownerId: userId,
      totalBytes: total_bytes,
      category: media_category,
      createdAt: now(),
      expiresAt: now() + cfg.mediaExpiresAfterSecs * 1000,
      segments: [],
      bytes: 0,
      finalized: false,
      sha256: null,
      state: 'uploading',
      polls: 0,
      failWith: null,
      hashAll: createHash('sha256'),
      hashBeforeLast: null,
    };
    media.set(id, item);
    return { answer: { status: 200, body: { data: { id, media_key: item.key, expires_after_secs: cfg.mediaExpiresAfterSecs } } }, bytes };
  }

  /** Streams an APPEND: multipart/form-data parsed on the fly, or JSON with base64 `media`. */
  async function appendRoute(req: IncomingMessage, userId: string, id: string, log: SimRequest): Promise<{ answer: Answer; bytes: number }> {
    if (req.headers['transfer-encoding'] && !req.headers['content-length']) {
      throw new SimError(problem(411, 'Length Required', 'Content-Length is required for media uploads'));
    }
    const type = req.headers['content-type'] ?? '';
    const item = liveMedia(id, userId);
    if (item.finalized) throw new SimError(invalidRequest('Media is already finalized; APPEND is not allowed.', { media_id: [id] }));

    // Two candidate running hashes: the segment is either the next one or a resend of the last.
    const asNext = item.hashAll.copy();
    const asResend = item.hashBeforeLast?.copy() ?? null;
    let mediaBytes = 0;
    let sawMedia = false;
    let indexText: string | null = null;
    let bytes = 0;
    const onMedia = (data: Buffer) => {
      mediaBytes += data.length;
      if (mediaBytes <= cfg.maxSegmentBytes) {
        asNext.update(data);
        asResend?.update(data);
      }
    };

    const mime = type.split(';')[0]!.trim().toLowerCase();
    if (mime === 'multipart/form-data') {
      const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
      if (!boundary) throw new SimError(invalidRequest('multipart/form-data without a boundary'));
      const parser = new MultipartParser(boundary[1] ?? boundary[2]!, (message) => new SimError(invalidRequest(message)));
      let field: string | null = null;
      let fieldText = '';
      parser.onPart = (headers) => {
        const name = /name="([^"]*)"/i.exec(headers['content-disposition'] ?? '')?.[1] ?? null;
        field = name;
        fieldText = '';
        if (name === 'media') sawMedia = true;
      };
      parser.onData = (data) => {
        if (field === 'media') onMedia(data);
        else if (fieldText.length < 64) fieldText += data.toString('latin1');
      };
      parser.onPartEnd = () => {
        if (field === 'segment_index') indexText = fieldText;
        field = null;
      };
      for await (const chunk of req as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        parser.write(chunk);
      }
      if (!parser.done) throw new SimError(invalidRequest('Malformed multipart body (no closing boundary)'));
    } else if (mime === 'application/json') {
      const { value, bytes: read } = await readJson(req);
      bytes = read;
      if (typeof value.media === 'string') {
        sawMedia = true;
        onMedia(Buffer.from(value.media, 'base64'));
      }
      if (typeof value.segment_index === 'number') indexText = String(value.segment_index);
    } else {
      throw new SimError(invalidRequest(`Unsupported Content-Type for APPEND: ${mime || '(none)'}`));
    }

    const text: string | null = indexText;
    if (text === null || !/^\d+$/.test(text)) throw new SimError(invalidRequest('segment_index is required', { segment_index: [String(text)] }));
    const index = Number(text);
    log.segmentIndex = index;
    if (index > 999) throw new SimError(invalidRequest('segment_index must be between 0 and 999', { segment_index: [text] }));
    if (!sawMedia || mediaBytes === 0) throw new SimError(invalidRequest('media is required', { media: [] }));
    if (mediaBytes > cfg.maxSegmentBytes) {
      throw new SimError(invalidRequest(`Segment is ${mediaBytes} bytes; segments must be at most ${cfg.maxSegmentBytes} bytes.`, { media: [] }));
    }
    const count = item.segments.length;
    if (index === count) {
      if (item.bytes + mediaBytes > item.totalBytes) throw new SimError(invalidRequest('Appended bytes exceed total_bytes', { segment_index: [text] }));
      item.hashBeforeLast = item.hashAll;
      item.hashAll = asNext;
      item.segments.push(mediaBytes);
      item.bytes += mediaBytes;
    } else if (index === count - 1 && asResend) {
      const previous = item.segments[index]!;
      if (item.bytes - previous + mediaBytes > item.totalBytes) throw new SimError(invalidRequest('Appended bytes exceed total_bytes', { segment_index: [text] }));
      item.hashAll = asResend;
      item.segments[index] = mediaBytes;
      item.bytes += mediaBytes - previous;
    } else {
      throw new SimError(invalidRequest(`segment_index ${index} is out of order; expected ${count}`, { segment_index: [text] }));
    }
    return { answer: { status: 200, body: { data: { expires_at: Math.floor(item.expiresAt / 1000) } } }, bytes };
  }

  function processingInfo(item: SimMedia): Record<string, unknown> {
    switch (item.state) {
      case 'pending':
        return { state: 'pending', check_after_secs: cfg.checkAfterSecs };
      case 'in_progress':
        return { state: 'in_progress', check_after_secs: cfg.checkAfterSecs, progress_percent: 50 };
      case 'succeeded':
        return { state: 'succeeded', progress_percent: 100 };
      case 'failed':
        return { state: 'failed', progress_percent: 100, error: item.failWith };
      default:
        return {};
    }
  }

  function mediaData(item: SimMedia, withProcessing: boolean): Record<string, unknown> {
    const data: Record<string, unknown> = {
      id: item.id,
      media_key: item.key,
      size: item.bytes,
      expires_after_secs: Math.max(0, Math.floor((item.expiresAt - now()) / 1000)),
    };
    if (withProcessing) data.processing_info = processingInfo(item);
    return { data };
  }

  async function finalizeRoute(req: IncomingMessage, userId: string, id: string): Promise<{ answer: Answer; bytes: number }> {
    const { bytes } = await readLimited(req, 64 * 1024);
    const item = liveMedia(id, userId);
    if (item.finalized) throw new SimError(invalidRequest('Media is already finalized.', { media_id: [id] }));
    if (item.segments.length === 0 || item.bytes !== item.totalBytes) {
      throw new SimError(invalidRequest(`File size mismatch: received ${item.bytes} of ${item.totalBytes} bytes`, { media_id: [id] }));
    }
    item.finalized = true;
    item.sha256 = item.hashAll.copy().digest('hex');
    item.failWith = nextFailure;
    nextFailure = null;
    if (cfg.processing === 'none') {
      item.state = item.failWith ? 'failed' : 'succeeded';
      return { answer: { status: 200, body: mediaData(item, false) }, bytes };
    }
    item.state = 'pending';
    return { answer: { status: 200, body: mediaData(item, true) }, bytes };
  }

  function statusRoute(userId: string, id: string): Answer {
    if (!/^\d+$/.test(id)) throw new SimError(invalidRequest('media_id is required', { media_id: [id] }));
    const item = liveMedia(id, userId);
    if (!item.finalized) throw new SimError(invalidRequest('Media has not been finalized; STATUS is not available.', { media_id: [id] }));
    if (item.state === 'pending' || item.state === 'in_progress') {
      item.polls += 1;
      if (item.state === 'pending' && item.polls > cfg.pendingPolls) {
        item.state = 'in_progress';
        item.polls = 1;
      }
      if (item.state === 'in_progress' && item.polls > cfg.inProgressPolls) item.state = item.failWith ? 'failed' : 'succeeded';
    }
    return { status: 200, body: mediaData(item, true) };
  }

  async function createRoute(req: IncomingMessage, userId: string): Promise<{ answer: Answer; bytes: number }> {
    const { value, bytes } = await readJson(req);
    const text = value.text;
    if (text !== undefined && typeof text !== 'string') throw new SimError(invalidRequest('text must be a string', { text: [String(text)] }));
    const mediaField = value.media as { media_ids?: unknown } | undefined;
    const ids = mediaField?.media_ids;
    if (mediaField !== undefined && (!Array.isArray(ids) || ids.length < 1 || ids.length > 4 || !ids.every((i) => typeof i === 'string' && /^\d{1,19}$/.test(i)))) {
      throw new SimError(invalidRequest('media.media_ids must hold 1 to 4 numeric string ids', { 'media.media_ids': Array.isArray(ids) ? ids : [] }));
    }
    const mediaIds = (ids as string[] | undefined) ?? [];
    if ((text === undefined || text === '') && mediaIds.length === 0) throw new SimError(invalidRequest('A post needs text or media', { text: [] }));
    if (typeof text === 'string' && text !== '') {
      const parsed = twitterText.parseTweet(text);
      if (parsed.weightedLength > 280 || !parsed.valid) throw new SimError(invalidRequest('Tweet text is too long or contains invalid characters', { text: [text] }));
    }
    const keys: string[] = [];
    for (const id of mediaIds) {
      const item = media.get(id);
      if (!item || item.ownerId !== userId || item.expiresAt <= now() || item.state !== 'succeeded') {
        throw new SimError(invalidRequest('Your media IDs are invalid.', { 'media.media_ids': mediaIds }));
      }
      keys.push(item.key);
    }
    if (typeof text === 'string' && text !== '' && posts.some((p) => p.authorId === userId && p.text === text)) {
      throw new SimError(problem(403, 'Forbidden', 'You are not allowed to create a Tweet with duplicate content.'));
    }
    const id = snowflake();
    const post: SimPost = { id, authorId: userId, text: typeof text === 'string' ? text : '', mediaKeys: keys, createdAt: now(), visibleAt: now() + cfg.indexDelayMs };
    posts.push(post);
    return { answer: { status: 201, body: { data: { id, text: post.text, edit_history_tweet_ids: [id] } } }, bytes };
  }

  function list(param: string | null, allowed: Set<string>, name: string): Set<string> {
    const values = new Set((param ?? '').split(',').filter(Boolean));
    for (const v of values) if (!allowed.has(v)) throw new SimError(invalidRequest(`The \`${name}\` query parameter value [${v}] is not one of [${[...allowed].join(',')}]`, { [name]: [v] }));
    return values;
  }

  function timelineRoute(url: URL, id: string): Answer {
    if (!/^\d{1,19}$/.test(id)) throw new SimError(invalidRequest(`The \`id\` query parameter value [${id}] does not match ^[0-9]{1,19}$`, { id: [id] }));
    if (![...users.values()].some((u) => u.userId === id)) {
      return { status: 200, body: { errors: [{ title: 'Not Found Error', detail: `Could not find user with id: [${id}].`, type: 'https://api.twitter.com/2/problems/resource-not-found' }] } };
    }
    const q = url.searchParams;
    const maxText = q.get('max_results');
    const max = maxText === null ? 10 : Number(maxText);
    if (!Number.isInteger(max) || max < 5 || max > 100) throw new SimError(invalidRequest(`The \`max_results\` query parameter value [${maxText}] is not between 5 and 100`, { max_results: [String(maxText)] }));
    let startMs = -Infinity;
    const start = q.get('start_time');
    if (start !== null) {
      if (!RFC3339.test(start)) throw new SimError(invalidRequest(`Invalid 'start_time':'${start}'. 'start_time' must be a valid RFC3339 date.`, { start_time: [start] }));
      startMs = Date.parse(start);
    }
    const fields = list(q.get('tweet.fields'), TWEET_FIELDS, 'tweet.fields');
    const expansions = list(q.get('expansions'), EXPANSIONS, 'expansions');
    const offsetToken = q.get('pagination_token');
    let offset = 0;
    if (offsetToken !== null) {
      const m = /^p(\d+)$/.exec(Buffer.from(offsetToken, 'base64url').toString('utf8'));
      if (!m) throw new SimError(invalidRequest('Invalid pagination_token', { pagination_token: [offsetToken] }));
      offset = Number(m[1]);
    }
    const visible = posts
      .filter((p) => p.authorId === id && p.visibleAt <= now() && p.createdAt >= startMs)
      .sort((a, b) => b.createdAt - a.createdAt || (BigInt(b.id) > BigInt(a.id) ? 1 : -1));
    const page = visible.slice(offset, offset + max);
    if (page.length === 0) return { status: 200, body: { meta: { result_count: 0 } } };
    const withAttachments = fields.has('attachments') || expansions.has('attachments.media_keys');
    const data = page.map((p) => {
      const out: Record<string, unknown> = { id: p.id, text: p.text, edit_history_tweet_ids: [p.id] };
      if (fields.has('created_at')) out.created_at = new Date(p.createdAt).toISOString();
      if (withAttachments && p.mediaKeys.length > 0) out.attachments = { media_keys: p.mediaKeys };
      return out;
    });
    const body: Record<string, unknown> = { data };
    if (expansions.has('attachments.media_keys')) {
      const keys = page.flatMap((p) => p.mediaKeys);
      if (keys.length > 0) body.includes = { media: keys.map((key) => ({ media_key: key, type: 'video' })) };
    }
    const meta: Record<string, unknown> = { result_count: page.length, newest_id: page[0]!.id, oldest_id: page[page.length - 1]!.id };
    if (offset + max < visible.length) meta.next_token = Buffer.from(`p${offset + max}`).toString('base64url');
    body.meta = meta;
    return { status: 200, body };
  }

  // ---- the server --------------------------------------------------------------------------------

  function send(res: ServerResponse, answer: Answer): void {
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', ...answer.headers };
    const text = answer.body === undefined ? '' : JSON.stringify(answer.body);
    res.writeHead(answer.status, headers).end(text);
  }

  async function drain(req: IncomingMessage): Promise<number> {
    let bytes = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) bytes += chunk.length;
    return bytes;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const matched = routeOf(method, url);
    const log: SimRequest = { route: matched?.route ?? 'unknown', method, path: url.pathname, status: 0, userId: null, bytes: 0, at: now() };
    requests.push(log);
    if (!matched) {
      log.bytes = await drain(req);
      log.status = 404;
      return send(res, problem(404, 'Not Found Error', `No route for ${method} ${url.pathname}`, 'https://api.twitter.com/2/problems/resource-not-found'));
    }
    const { route } = matched;
    const fault = takeFault(route);
    if (fault?.kind === 'reset') {
      log.status = 'reset';
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'hang') {
      log.status = 'hang';
      hung.add(res);
      req.resume();
      return;
    }
    if (fault?.kind === 'respond') {
      log.bytes = await drain(req);
      log.status = fault.status ?? 503;
      return send(res, { status: log.status, body: fault.body ?? { title: 'Service Unavailable', detail: 'Service Unavailable', type: 'about:blank', status: log.status }, headers: fault.headers ?? {} });
    }

    let answer: Answer;
    let extraHeaders: Record<string, string> = {};
    try {
      if (route === 'token') {
        const result = await tokenRoute(req);
        log.bytes = result.bytes;
        log.userId = result.userId;
        answer = result.answer;
      } else {
        if (fault?.kind === 'expireToken') {
          const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
          const entry = bearer ? accessTokens.get(bearer) : undefined;
          if (entry) entry.expiresAt = now();
        }
        let userId: string;
        try {
          userId = authenticate(req, route).userId;
        } catch (error) {
          log.bytes = await drain(req);
          throw error;
        }
        log.userId = userId;
        if (fault?.kind === 'rateLimit' || fault?.kind === 'usageCap') {
          log.bytes = await drain(req);
          const reset = String(Math.ceil(now() / 1000) + (fault.retryAfterSeconds ?? 60));
          throw new SimError(
            fault.kind === 'usageCap'
              ? { ...problem(429, 'UsageCapExceeded', 'Usage cap exceeded: Monthly product cap', 'https://api.twitter.com/2/problems/usage-capped', { period: 'Monthly', scope: 'Product' }) }
              : { ...problem(429, 'Too Many Requests', 'Too Many Requests'), headers: { 'content-type': 'application/problem+json', 'x-rate-limit-limit': '1', 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': reset } },
          );
        }
        try {
          extraHeaders = rateHeaders(userId, route);
        } catch (error) {
          log.bytes = await drain(req);
          throw error;
        }
        switch (route) {
          case 'initialize': {
            const r = await initializeRoute(req, userId);
            log.bytes = r.bytes;
            answer = r.answer;
            break;
          }
          case 'append': {
            const r = await appendRoute(req, userId, matched.id!, log).catch(async (error: unknown) => {
              if (!req.readableEnded) log.bytes += await drain(req);
              throw error;
            });
            log.bytes = r.bytes;
            answer = r.answer;
            break;
          }
          case 'finalize': {
            const r = await finalizeRoute(req, userId, matched.id!);
            log.bytes = r.bytes;
            answer = r.answer;
            break;
          }
          case 'status':
            log.bytes = await drain(req);
            answer = statusRoute(userId, matched.id!);
            break;
          case 'create': {
            const r = await createRoute(req, userId);
            log.bytes = r.bytes;
            answer = r.answer;
            break;
          }
          case 'timeline':
            log.bytes = await drain(req);
            answer = timelineRoute(url, matched.id!);
            break;
          case 'me': {
            log.bytes = await drain(req);
            const user = [...users.values()].find((u) => u.userId === userId)!;
            answer = { status: 200, body: { data: { id: user.userId, name: user.username, username: user.username } } };
            break;
          }
        }
      }
    } catch (error) {
      if (!(error instanceof SimError)) throw error;
      if (!req.readableEnded) log.bytes += await drain(req);
      answer = error.answer;
    }
    answer = { ...answer, headers: { ...extraHeaders, ...answer.headers } };

    if (fault?.kind === 'resetAfterCommit') {
      log.status = 'reset';
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'hangAfterCommit') {
      log.status = 'hang';
      hung.add(res);
      return;
    }
    if (fault?.kind === 'respondAfterCommit') {
      answer = { status: fault.status ?? 503, body: fault.body ?? { title: 'Service Unavailable', detail: 'Service Unavailable', type: 'about:blank', status: fault.status ?? 503 }, headers: fault.headers ?? {} };
    }
    log.status = answer.status;
    send(res, answer);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, problem(500, 'Internal Error', error instanceof Error ? error.message : String(error)));
      else res.destroy();
    });
  });
  // Uploads of many segments reuse a keep-alive connection; a hung request must not hold close().
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    addUser(userOptions = {}) {
      const userId = String(nextUser++) + String(Math.floor(Math.random() * 1e6)).padStart(6, '0');
      const username = userOptions.username ?? `user${userId.slice(-6)}`;
      users.set(userId, { userId, username });
      const scopes = new Set(userOptions.scopes ?? ALL_SCOPES);
      const issued = issue(userId, scopes, userOptions.expiresInSeconds);
      return { userId, username, accessToken: issued.accessToken, refreshToken: issued.refreshToken, expiresAt: new Date(issued.expiresAt), scope: [...scopes].join(' ') };
    },
    expireAccessToken(accessToken) {
      const entry = accessTokens.get(accessToken);
      if (entry) entry.expiresAt = now();
    },
    fault(fault) {
      faults.push({ ...fault, seen: 0, applied: 0 });
    },
    clearFaults() {
      faults.length = 0;
    },
    failNextProcessing(error = { code: 1, name: 'InvalidMedia', message: 'Invalid or Unsupported media, Reason: UnsupportedMedia.' }) {
      nextFailure = error;
    },
    get posts() {
      return posts;
    },
    postsBy(userId) {
      return posts.filter((p) => p.authorId === userId);
    },
    get requests() {
      return requests;
    },
    count(route) {
      return requests.filter((r) => r.route === route).length;
    },
    media(id) {
      return media.get(id);
    },
    get allMedia() {
      return [...media.values()];
    },
    get hanging() {
      return hung.size;
    },
    async close() {
      for (const res of hung) res.destroy();
      hung.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

