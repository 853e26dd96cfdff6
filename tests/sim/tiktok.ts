/**
 * A wire-level simulator of TikTok's Content Posting API (Direct Post, upload to inbox, status
 * fetch, creator info) and OAuth token refresh, on 127.0.0.1. It enforces what the reference says
 * the real API enforces, so an adapter that passes against it got the protocol right:
 * - exact paths, methods and content types; `Authorization: Bearer` with an unexpired token and the
 *   endpoint's scope (401 access_token_invalid / scope_not_authorized);
 * - the Media Transfer Guide's chunk plan at init (400 invalid_params), and on every PUT the
 *   chunk's exact `Content-Range: bytes first-last/total`, in order (416 otherwise);
 * - creator options at init (privacy level, caption length), unaudited apps (SELF_ONLY on private
 *   accounts only), daily post and pending-inbox caps;
 * - state transitions: PROCESSING_UPLOAD for N polls after the last chunk, then PUBLISH_COMPLETE
 *   (public post id withheld for M polls of moderation; never for SELF_ONLY), SEND_TO_USER_INBOX
 *   or FAILED with a fail_reason;
 * - per-token rate limits (init 6/min, creator_info 20/min, status 30/min): 429 rate_limit_exceeded;
 * - rotating refresh tokens: a refresh token works once.
 * Uploads are streamed and hashed, never buffered. Faults are injected per endpoint.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type SimEndpoint = 'creator_info' | 'init' | 'inbox_init' | 'status' | 'upload' | 'token';
export type PrivacyLevel = 'PUBLIC_TO_EVERYONE' | 'MUTUAL_FOLLOW_FRIENDS' | 'FOLLOWER_OF_CREATOR' | 'SELF_ONLY';

export type SimFault =
  /** Answer with this status and a TikTok error envelope (or `body` as is). */
  | { kind: 'http'; status: number; code?: string; message?: string; headers?: Record<string, string>; body?: string }
  /** Never answer. */
  | { kind: 'hang' }
  /** Destroy the socket without reading the request. */
  | { kind: 'reset' }
  /** Handle the request completely (state changes happen), then destroy the socket instead of answering. */
  | { kind: 'reset_after' }
  /** Expire the access tokens of the account concerned, then handle the request. */
  | { kind: 'expire_token' };

export interface SimAccountOptions {
  username?: string;
  nickname?: string;
  privacyOptions?: PrivacyLevel[];
  maxDurationSec?: number;
  commentDisabled?: boolean;
  duetDisabled?: boolean;
  stitchDisabled?: boolean;
  /** Private accounts are the only ones an unaudited app may post to. */
  isPrivate?: boolean;
  scopes?: string[];
  /** Posts per 24 h before spam_risk_too_many_posts. */
  dailyPostCap?: number;
}

export interface SimAccount {
  openId: string;
  username: string;
  nickname: string;
  privacyOptions: PrivacyLevel[];
  maxDurationSec: number;
  commentDisabled: boolean;
  duetDisabled: boolean;
  stitchDisabled: boolean;
  isPrivate: boolean;
  scopes: string[];
  dailyPostCap: number;
}

export interface SimTokens {
  openId: string;
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  refreshExpiresIn: number;
  scope: string;
}

export interface SimPublish {
  publishId: string;
  openId: string;
  mode: 'direct' | 'inbox';
  title: string | undefined;
  privacyLevel: PrivacyLevel | undefined;
  postInfo: Record<string, unknown> | undefined;
  videoSize: number;
  chunkSize: number;
  totalChunks: number;
  uploadId: string;
  uploadToken: string;
  createdAt: number;
  nextChunk: number;
  receivedBytes: number;
  uploadComplete: boolean;
  sha256: string | undefined;
  processingPollsLeft: number;
  moderationPollsLeft: number;
  failReason: string | undefined;
  postId: string | undefined;
  statusPolls: number;
  hash: Hash;
}

export interface SimRequest {
  at: number;
  method: string;
  path: string;
  endpoint: SimEndpoint | 'unknown';
  status: number | 'hang' | 'reset';
  contentRange?: string;
  contentLength?: string;
  contentType?: string;
  /** Upload bytes received in this request. */
  bytes?: number;
  /** The caller's access token, for rate-limit assertions. */
  token?: string;
  body?: unknown;
}

export interface TikTokSimOptions {
  clientKey?: string;
  clientSecret?: string;
  /** Apps TikTok has not audited may only post SELF_ONLY to private accounts. */
  audited?: boolean;
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  /** Status polls answered PROCESSING_UPLOAD after the last chunk. */
  processingPolls?: number;
  /** Status polls answered PUBLISH_COMPLETE without a public post id (public posts only). */
  moderationPolls?: number;
  /** How the chunk rules read "MB". */
  mb?: number;
  /** How long an upload_url stays valid. */
  uploadUrlTtlMs?: number;
  rateLimits?: Partial<Record<'init' | 'creator_info' | 'status', number>>;
  /** Send `Retry-After` with 429s (TikTok documents none). */
  retryAfterSeconds?: number;
}

const JSON_LIMIT = 64 * 1024;
const CAPTION_LIMIT = 2200;
const MAX_VIDEO = 4 * 1024 ** 3;
const VIDEO_TYPES = new Set(['video/mp4', 'video/quicktime', 'video/webm']);

interface TokenRecord {
  openId: string;
  scopes: string[];
  expiresAt: number;
}

interface PendingFault {
  endpoint: SimEndpoint;
  fault: SimFault;
  skip: number;
  times: number;
}

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function logId(): string {
  return `2026${randomBytes(13).toString('hex').toUpperCase()}`;
}

/** A 19-digit id like TikTok's video ids, beyond 2^53 so JSON numbers would lose it. */
function videoId(): string {
  let id = '7';
  for (let i = 0; i < 18; i++) id += String(randomBytes(1)[0]! % 10);
  return id;
}

export class TikTokSim {
  readonly options: Required<Omit<TikTokSimOptions, 'rateLimits' | 'retryAfterSeconds'>> & {
    rateLimits: Record<'init' | 'creator_info' | 'status', number>;
    retryAfterSeconds: number | undefined;
  };
  readonly accounts = new Map<string, SimAccount>();
  readonly publishes = new Map<string, SimPublish>();
  readonly requests: SimRequest[] = [];
  /** Refresh tokens that were spent (rotated away), for assertions. */
  readonly spentRefreshTokens = new Set<string>();
  url = '';
  /** The origin of the upload URLs it hands out: its own unless a proxy in front of it is set here. */
  publicUrl: string | undefined;
  private server: Server | undefined;
  private readonly accessTokens = new Map<string, TokenRecord>();
  private readonly refreshTokens = new Map<string, TokenRecord>();
  private readonly calls = new Map<string, number[]>();
  private faults: PendingFault[] = [];
  private counter = 0;
  private readonly hung = new Set<ServerResponse>();

  constructor(options: TikTokSimOptions = {}) {
    this.options = {
      clientKey: options.clientKey ?? 'sim-client-key',
      clientSecret: options.clientSecret ?? 'sim-client-secret',
      audited: options.audited ?? false,
      accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 7200,
      refreshTokenTtlSeconds: options.refreshTokenTtlSeconds ?? 180 * 86400,
      processingPolls: options.processingPolls ?? 1,
      moderationPolls: options.moderationPolls ?? 0,
      mb: options.mb ?? 1024 * 1024,
      uploadUrlTtlMs: options.uploadUrlTtlMs ?? 60 * 60_000,
      rateLimits: { init: 6, creator_info: 20, status: 30, ...options.rateLimits },
      retryAfterSeconds: options.retryAfterSeconds,
    };
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.sendError(res, 500, 'internal_error', error instanceof Error ? error.message : String(error));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.hung.clear();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
    this.server = undefined;
  }

  // --- set-up and introspection ------------------------------------------------------------------

  /** Creates an account and issues it a token pair (as the OAuth code exchange would). */
  addAccount(options: SimAccountOptions = {}): { account: SimAccount; tokens: SimTokens } {
    const n = ++this.counter;
    const account: SimAccount = {
      openId: `-000${n}${randomBytes(8).toString('hex')}`,
      username: options.username ?? `creator${n}`,
      nickname: options.nickname ?? `Creator ${n}`,
      privacyOptions: options.privacyOptions ?? ['PUBLIC_TO_EVERYONE', 'MUTUAL_FOLLOW_FRIENDS', 'SELF_ONLY'],
      maxDurationSec: options.maxDurationSec ?? 600,
      commentDisabled: options.commentDisabled ?? false,
      duetDisabled: options.duetDisabled ?? false,
      stitchDisabled: options.stitchDisabled ?? false,
      isPrivate: options.isPrivate ?? true,
      scopes: options.scopes ?? ['user.info.basic', 'video.publish', 'video.upload'],
      dailyPostCap: options.dailyPostCap ?? 15,
    };
    this.accounts.set(account.openId, account);
    return { account, tokens: this.issueTokens(account) };
  }

  /** Makes every access token of the account expire now. */
  expireAccessTokens(openId: string): void {
    for (const record of this.accessTokens.values()) if (record.openId === openId) record.expiresAt = 0;
  }

  /** Makes the next `times` matching requests (after `skip` pass through) fail this way. */
  inject(endpoint: SimEndpoint, fault: SimFault, options: { times?: number; skip?: number } = {}): void {
    this.faults.push({ endpoint, fault, times: options.times ?? 1, skip: options.skip ?? 0 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Publishes of this account that received every byte: what became (or will become) a post. */
  posts(openId: string): SimPublish[] {
    return [...this.publishes.values()].filter((p) => p.openId === openId && p.uploadComplete);
  }

  publishesOf(openId: string): SimPublish[] {
    return [...this.publishes.values()].filter((p) => p.openId === openId);
  }

  /** Sets what happens to this account's next completed publish instead of success. */
  failNextPublish(openId: string, failReason: string): void {
    this.pendingFailures.set(openId, failReason);
  }

  /** Lets the clock of an upload_url run out. */
  expireUploadUrl(publishId: string): void {
    const publish = this.publishes.get(publishId);
    if (publish) publish.createdAt = -Infinity;
  }

  requestsTo(endpoint: SimEndpoint, token?: string): SimRequest[] {
    return this.requests.filter((r) => r.endpoint === endpoint && (token === undefined || r.token === token));
  }

  private readonly pendingFailures = new Map<string, string>();

  // --- plumbing -----------------------------------------------------------------------------------

  private issueTokens(account: SimAccount): SimTokens {
    const accessToken = `act.${randomBytes(24).toString('hex')}`;
    const refreshToken = `rft.${randomBytes(24).toString('hex')}`;
    const now = Date.now();
    this.accessTokens.set(accessToken, { openId: account.openId, scopes: account.scopes, expiresAt: now + this.options.accessTokenTtlSeconds * 1000 });
    this.refreshTokens.set(refreshToken, { openId: account.openId, scopes: account.scopes, expiresAt: now + this.options.refreshTokenTtlSeconds * 1000 });
    return {
      openId: account.openId,
      accessToken,
      refreshToken,
      expiresIn: this.options.accessTokenTtlSeconds,
      refreshExpiresIn: this.options.refreshTokenTtlSeconds,
      scope: account.scopes.join(','),
    };
  }

  private takeFault(endpoint: SimEndpoint): SimFault | undefined {
    const pending = this.faults.find((f) => f.endpoint === endpoint);
    if (!pending) return undefined;
    if (pending.skip > 0) {
      pending.skip -= 1;
      return undefined;
    }
    pending.times -= 1;
    if (pending.times <= 0) this.faults.splice(this.faults.indexOf(pending), 1);
    return pending.fault;
  }

  private send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    const entry = (res as ServerResponse & { simEntry?: SimRequest }).simEntry;
    if (entry) entry.status = status;
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers }).end(body);
  }

  private sendData(res: ServerResponse, data: unknown, rawPostId?: string): void {
    let body = JSON.stringify({ data, error: { code: 'ok', message: '', log_id: logId() } });
    // TikTok sends post ids as int64 numbers: write the digits raw, as a JSON number.
    if (rawPostId) body = body.replace(`"${rawPostId}"`, rawPostId);
    this.send(res, 200, body);
  }

  private sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
    this.send(res, status, JSON.stringify({ data: {}, error: { code, message, log_id: logId() } }), headers);
  }

  private endpointOf(method: string, path: string): SimEndpoint | 'unknown' {
    switch (path) {
      case '/v2/post/publish/creator_info/query/':
        return 'creator_info';
      case '/v2/post/publish/video/init/':
        return 'init';
      case '/v2/post/publish/inbox/video/init/':
        return 'inbox_init';
      case '/v2/post/publish/status/fetch/':
        return 'status';
      case '/v2/oauth/token/':
        return 'token';
      case '/upload/':
        return method === 'PUT' ? 'upload' : 'unknown';
      default:
        return 'unknown';
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const endpoint = this.endpointOf(method, url.pathname);
    const entry: SimRequest = { at: Date.now(), method, path: url.pathname, endpoint, status: 0 };
    const range = req.headers['content-range'];
    if (range !== undefined) entry.contentRange = range;
    if (req.headers['content-length'] !== undefined) entry.contentLength = req.headers['content-length'];
    if (req.headers['content-type'] !== undefined) entry.contentType = req.headers['content-type'];
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) entry.token = auth.slice('Bearer '.length);
    this.requests.push(entry);
    (res as ServerResponse & { simEntry?: SimRequest }).simEntry = entry;

    if (endpoint === 'unknown') {
      // Drain, then refuse: an unknown path or a wrong method.
      req.resume();
      return this.sendError(res, 404, 'invalid_params', `No such endpoint: ${method} ${url.pathname}`);
    }
    const fault = this.takeFault(endpoint);
    if (fault?.kind === 'hang') {
      entry.status = 'hang';
      this.hung.add(res);
      req.resume();
      return;
    }
    if (fault?.kind === 'reset') {
      entry.status = 'reset';
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'http') {
      req.resume();
      await new Promise((resolve) => req.on('end', resolve));
      if (fault.body !== undefined) return this.send(res, fault.status, fault.body, fault.headers);
      return this.sendError(res, fault.status, fault.code ?? 'internal_error', fault.message ?? 'injected', fault.headers);
    }

    // reset_after: let the handler change state, then cut the connection instead of answering.
    const target: ServerResponse = fault?.kind === 'reset_after' ? this.swallow(res, req) : res;
    try {
      if (endpoint === 'upload') {
        await this.upload(req, target, url, fault);
      } else if (method !== 'POST') {
        req.resume();
        throw new HttpError(404, 'invalid_params', `Use POST for ${url.pathname}`);
      } else if (endpoint === 'token') {
        await this.token(req, target);
      } else {
        await this.api(req, target, endpoint, fault);
      }
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      const headers: Record<string, string> = {};
      if (error.status === 429 && this.options.retryAfterSeconds !== undefined) headers['retry-after'] = String(this.options.retryAfterSeconds);
      if (endpoint === 'token') {
        this.send(target, error.status, JSON.stringify({ error: error.code, error_description: error.message, log_id: logId() }));
      } else {
        this.sendError(target, error.status, error.code, error.message, headers);
      }
    }
    if (target !== res) {
      entry.status = 'reset';
      req.socket.destroy();
    }
  }

  /** A response stand-in that records the status it would have sent. */
  private swallow(res: ServerResponse, _req: IncomingMessage): ServerResponse {
    const fake = Object.create(res) as ServerResponse & { simEntry?: SimRequest };
    Object.defineProperty(fake, 'writeHead', { value: () => fake });
    Object.defineProperty(fake, 'end', { value: () => fake });
    Object.defineProperty(fake, 'headersSent', { value: false });
    Object.defineProperty(fake, 'writableEnded', { value: false });
    Object.defineProperty(fake, 'destroyed', { value: false });
    return fake;
  }

  private async readJson(req: IncomingMessage, allowEmpty: boolean): Promise<Record<string, unknown>> {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json(;\s*charset=utf-8)?$/i.test(type.trim())) {
      req.resume();
      throw new HttpError(400, 'invalid_params', `Content-Type must be application/json; charset=UTF-8, got "${type}"`);
    }
    const text = await this.readText(req);
    if (text === '' && allowEmpty) return {};
    try {
      const value = JSON.parse(text) as unknown;
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
      return value as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'invalid_params', 'The request body is not a JSON object');
    }
  }

  private async readText(req: IncomingMessage): Promise<string> {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > JSON_LIMIT) throw new HttpError(413, 'invalid_params', 'Request body too large');
      parts.push(chunk);
    }
    return Buffer.concat(parts).toString('utf8');
  }

  private authorize(req: IncomingMessage, anyOf: string[]): { record: TokenRecord; token: string; account: SimAccount } {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer (\S+)$/.exec(header);
    const record = match ? this.accessTokens.get(match[1]!) : undefined;
    if (!match || !record || record.expiresAt <= Date.now()) {
      throw new HttpError(401, 'access_token_invalid', 'The access token is invalid or not found in the request.');
    }
    if (!anyOf.some((scope) => record.scopes.includes(scope))) {
      throw new HttpError(401, 'scope_not_authorized', `The user did not authorize the scope required for completing this request (${anyOf.join(' or ')}).`);
    }
    return { record, token: match[1]!, account: this.accounts.get(record.openId)! };
  }

  private rateLimit(token: string, kind: 'init' | 'creator_info' | 'status'): void {
    const key = `${kind}:${token}`;
    const now = Date.now();
    const recent = (this.calls.get(key) ?? []).filter((t) => now - t < 60_000);
    if (recent.length >= this.options.rateLimits[kind]) {
      this.calls.set(key, recent);
      throw new HttpError(429, 'rate_limit_exceeded', 'The API rate limit was exceeded. Please try again later.');
    }
    recent.push(now);
    this.calls.set(key, recent);
  }

  private async api(req: IncomingMessage, res: ServerResponse, endpoint: SimEndpoint, fault: SimFault | undefined): Promise<void> {
    const scopes = endpoint === 'inbox_init' ? ['video.upload'] : endpoint === 'status' ? ['video.publish', 'video.upload'] : ['video.publish'];
    if (fault?.kind === 'expire_token') {
      const header = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
      const record = this.accessTokens.get(header);
      if (record) this.expireAccessTokens(record.openId);
    }
    const { token, account } = this.authorize(req, scopes);
    const entry = (res as ServerResponse & { simEntry?: SimRequest }).simEntry;
    switch (endpoint) {
      case 'creator_info': {
        this.rateLimit(token, 'creator_info');
        await this.readJson(req, true);
        return this.sendData(res, {
          creator_avatar_url: `https://p16.tiktokcdn.example/${account.username}.jpeg`,
          creator_username: account.username,
          creator_nickname: account.nickname,
          privacy_level_options: account.privacyOptions,
          comment_disabled: account.commentDisabled,
          duet_disabled: account.duetDisabled,
          stitch_disabled: account.stitchDisabled,
          max_video_post_duration_sec: account.maxDurationSec,
        });
      }
      case 'init':
      case 'inbox_init': {
        this.rateLimit(token, 'init');
        const body = await this.readJson(req, false);
        if (entry) entry.body = body;
        return this.init(res, account, body, endpoint === 'inbox_init' ? 'inbox' : 'direct');
      }
      case 'status': {
        this.rateLimit(token, 'status');
        const body = await this.readJson(req, false);
        const publishId = body.publish_id;
        const publish = typeof publishId === 'string' ? this.publishes.get(publishId) : undefined;
        if (!publish || publish.openId !== account.openId) throw new HttpError(400, 'invalid_params', 'publish_id is invalid');
        return this.status(res, publish);
      }
      default:
        throw new HttpError(404, 'invalid_params', 'unknown endpoint');
    }
  }

  private init(res: ServerResponse, account: SimAccount, body: Record<string, unknown>, mode: 'direct' | 'inbox'): void {
    const source = body.source_info as Record<string, unknown> | undefined;
    if (!source || typeof source !== 'object') throw new HttpError(400, 'invalid_params', 'source_info is required');
    if (source.source !== 'FILE_UPLOAD') throw new HttpError(400, 'invalid_params', 'Only FILE_UPLOAD is simulated');
    const { video_size: size, chunk_size: chunk, total_chunk_count: count } = source;
    if (![size, chunk, count].every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0)) {
      throw new HttpError(400, 'invalid_params', 'video_size, chunk_size and total_chunk_count must be positive integers');
    }
    this.checkChunkPlan(size as number, chunk as number, count as number);

    let postInfo: Record<string, unknown> | undefined;
    let title: string | undefined;
    let privacy: PrivacyLevel | undefined;
    if (mode === 'direct') {
      postInfo = body.post_info as Record<string, unknown> | undefined;
      if (!postInfo || typeof postInfo !== 'object') throw new HttpError(400, 'invalid_params', 'post_info is required');
      if (postInfo.title !== undefined && typeof postInfo.title !== 'string') throw new HttpError(400, 'invalid_params', 'title must be a string');
      title = postInfo.title as string | undefined;
      // "2200 UTF-16 runes": JavaScript's string length.
      if (title !== undefined && title.length > CAPTION_LIMIT) throw new HttpError(400, 'invalid_params', `title is longer than ${CAPTION_LIMIT} UTF-16 runes`);
      for (const flag of ['disable_comment', 'disable_duet', 'disable_stitch', 'brand_content_toggle', 'brand_organic_toggle', 'is_aigc']) {
        if (postInfo[flag] !== undefined && typeof postInfo[flag] !== 'boolean') throw new HttpError(400, 'invalid_params', `${flag} must be a boolean`);
      }
      if (typeof postInfo.privacy_level !== 'string') throw new HttpError(400, 'invalid_params', 'privacy_level is required');
      privacy = postInfo.privacy_level as PrivacyLevel;
      if (!account.privacyOptions.includes(privacy)) {
        throw new HttpError(400, 'privacy_level_option_mismatch', 'privacy_level is not one of the creator privacy_level_options');
      }
      if (!this.options.audited && (privacy !== 'SELF_ONLY' || !account.isPrivate)) {
        throw new HttpError(403, 'unaudited_client_can_only_post_to_private_accounts', 'Unaudited clients can only post to a private account');
      }
      const today = [...this.publishes.values()].filter((p) => p.openId === account.openId && p.mode === 'direct' && p.uploadComplete && Date.now() - p.createdAt < 86_400_000);
      if (today.length >= account.dailyPostCap) throw new HttpError(403, 'spam_risk_too_many_posts', 'The daily post cap from the API is reached for the current user.');
    } else {
      if (body.post_info !== undefined) throw new HttpError(400, 'invalid_params', 'post_info is not accepted by inbox init');
      const pending = [...this.publishes.values()].filter((p) => p.openId === account.openId && p.mode === 'inbox' && p.uploadComplete);
      if (pending.length >= 5) throw new HttpError(403, 'spam_risk_too_many_pending_share', 'The user has too many pending shares.');
    }

    const n = ++this.counter;
    const publish: SimPublish = {
      publishId: `v_${mode === 'inbox' ? 'inbox' : 'pub'}_file~v2-1.${7_000_000_000 + n}`,
      openId: account.openId,
      mode,
      title,
      privacyLevel: privacy,
      postInfo,
      videoSize: size as number,
      chunkSize: chunk as number,
      totalChunks: count as number,
      uploadId: `${n}${randomBytes(6).toString('hex')}`,
      uploadToken: randomBytes(16).toString('hex'),
      createdAt: Date.now(),
      nextChunk: 0,
      receivedBytes: 0,
      uploadComplete: false,
      sha256: undefined,
      processingPollsLeft: this.options.processingPolls,
      moderationPollsLeft: this.options.moderationPolls,
      failReason: undefined,
      postId: undefined,
      statusPolls: 0,
      hash: createHash('sha256'),
    };
    this.publishes.set(publish.publishId, publish);
    this.sendData(res, {
      publish_id: publish.publishId,
      upload_url: `${this.publicUrl ?? this.url}/upload/?upload_id=${publish.uploadId}&upload_token=${publish.uploadToken}`,
    });
  }

  /** The Media Transfer Guide's chunk rules. */
  private checkChunkPlan(size: number, chunk: number, count: number): void {
    const mb = this.options.mb;
    const refuse = (why: string) => {
      throw new HttpError(400, 'invalid_params', `Invalid chunk plan: ${why}`);
    };
    if (size > MAX_VIDEO) refuse('video_size is over 4 GB');
    if (count !== Math.floor(size / chunk)) refuse('total_chunk_count must be floor(video_size / chunk_size)');
    if (count < 1 || count > 1000) refuse('total_chunk_count must be between 1 and 1000');
    if (size < 5 * mb) {
      if (chunk !== size) refuse('videos under 5 MB must be uploaded whole (chunk_size = video_size)');
      return;
    }
    if (chunk < 5 * mb || chunk > 64 * mb) refuse('chunk_size must be between 5 MB and 64 MB');
    if (size > 64 * mb && count < 2) refuse('videos over 64 MB must be uploaded in chunks');
    const last = size - (count - 1) * chunk;
    if (last > 128 * mb) refuse('the final chunk may not exceed 128 MB');
  }

  private status(res: ServerResponse, publish: SimPublish): void {
    publish.statusPolls += 1;
    const base = { fail_reason: '', publicaly_available_post_id: [] as string[], uploaded_bytes: publish.receivedBytes };
    if (!publish.uploadComplete) return this.sendData(res, { ...base, status: 'PROCESSING_UPLOAD' });
    if (publish.processingPollsLeft > 0) {
      publish.processingPollsLeft -= 1;
      return this.sendData(res, { ...base, status: 'PROCESSING_UPLOAD' });
    }
    if (publish.failReason) return this.sendData(res, { ...base, status: 'FAILED', fail_reason: publish.failReason });
    if (publish.mode === 'inbox') return this.sendData(res, { ...base, status: 'SEND_TO_USER_INBOX' });
    if (publish.privacyLevel === 'SELF_ONLY') return this.sendData(res, { ...base, status: 'PUBLISH_COMPLETE' });
    if (publish.moderationPollsLeft > 0) {
      publish.moderationPollsLeft -= 1;
      return this.sendData(res, { ...base, status: 'PUBLISH_COMPLETE' });
    }
    publish.postId ??= videoId();
    return this.sendData(res, { ...base, status: 'PUBLISH_COMPLETE', publicaly_available_post_id: [publish.postId] }, publish.postId);
  }

  private async upload(req: IncomingMessage, res: ServerResponse, url: URL, fault: SimFault | undefined): Promise<void> {
    const publish = [...this.publishes.values()].find((p) => p.uploadId === url.searchParams.get('upload_id'));
    const refuse = (status: number, code: string, message: string): never => {
      req.resume();
      throw new HttpError(status, code, message);
    };
    if (!publish || publish.uploadToken !== url.searchParams.get('upload_token')) return refuse(404, 'invalid_params', 'Unknown upload');
    if (Date.now() - publish.createdAt > this.options.uploadUrlTtlMs) return refuse(403, 'invalid_params', 'The upload URL has expired');
    if (fault?.kind === 'expire_token') this.expireAccessTokens(publish.openId);
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!VIDEO_TYPES.has(type)) return refuse(400, 'invalid_file_upload', `Content-Type must be video/mp4, video/quicktime or video/webm, got "${type}"`);
    if (publish.uploadComplete) return refuse(416, 'invalid_params', 'The upload is already complete');

    const index = publish.nextChunk;
    const first = index * publish.chunkSize;
    const last = index === publish.totalChunks - 1 ? publish.videoSize - 1 : first + publish.chunkSize - 1;
    const header = req.headers['content-range'];
    const expected = `bytes ${first}-${last}/${publish.videoSize}`;
    if (header === undefined) return refuse(416, 'invalid_params', `Content-Range is required (expected "${expected}")`);
    if (header !== expected) return refuse(416, 'invalid_params', `Content-Range "${header}" is not the next chunk (expected "${expected}")`);
    const length = last - first + 1;
    if (req.headers['content-length'] !== String(length)) return refuse(400, 'invalid_params', `Content-Length must be ${length}`);

    // Stream through a copy of the running hash: an aborted chunk must not spoil it.
    const hash = publish.hash.copy();
    let received = 0;
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        received += chunk.length;
        hash.update(chunk);
      }
    } catch {
      return; // The client went away mid-chunk; nothing was stored.
    }
    const entry = (res as ServerResponse & { simEntry?: SimRequest }).simEntry;
    if (entry) entry.bytes = received;
    if (received !== length) throw new HttpError(400, 'invalid_params', `Received ${received} bytes, expected ${length}`);
    publish.hash = hash;
    publish.receivedBytes += received;
    publish.nextChunk += 1;
    if (publish.nextChunk < publish.totalChunks) return this.send(res, 206, '');
    publish.uploadComplete = true;
    publish.sha256 = publish.hash.digest('hex');
    const failure = this.pendingFailures.get(publish.openId);
    if (failure) {
      publish.failReason = failure;
      this.pendingFailures.delete(publish.openId);
    }
    this.send(res, 201, '');
  }

  private async token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      req.resume();
      throw new HttpError(400, 'invalid_request', 'Content-Type must be application/x-www-form-urlencoded');
    }
    const form = new URLSearchParams(await this.readText(req));
    if (form.get('client_key') !== this.options.clientKey || form.get('client_secret') !== this.options.clientSecret) {
      throw new HttpError(401, 'invalid_client', 'Client authentication failed');
    }
    if (form.get('grant_type') !== 'refresh_token') throw new HttpError(400, 'unsupported_grant_type', 'Only refresh_token is simulated');
    const refreshToken = form.get('refresh_token') ?? '';
    const record = this.refreshTokens.get(refreshToken);
    if (!record || record.expiresAt <= Date.now()) throw new HttpError(400, 'invalid_grant', 'The refresh token is invalid or expired');
    // Rotation: the old refresh token stops working once a new one is issued.
    this.refreshTokens.delete(refreshToken);
    this.spentRefreshTokens.add(refreshToken);
    const tokens = this.issueTokens(this.accounts.get(record.openId)!);
    this.send(
      res,
      200,
      JSON.stringify({
        open_id: tokens.openId,
        scope: tokens.scope,
        access_token: tokens.accessToken,
        expires_in: tokens.expiresIn,
        refresh_token: tokens.refreshToken,
        refresh_expires_in: tokens.refreshExpiresIn,
        token_type: 'Bearer',
      }),
    );
  }
}

export async function startTikTokSim(options: TikTokSimOptions = {}): Promise<TikTokSim> {
  return new TikTokSim(options).start();
}
