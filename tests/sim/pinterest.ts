/**
 * A wire-level simulator of the Pinterest API v5 calls Reelay makes (platform reference §7), plus
 * the S3 POST-policy upload endpoint Pinterest hands out, on 127.0.0.1. It enforces what the docs say
 * and refuses the rest:
 * - `Authorization: Bearer` tokens that expire, with the scopes each endpoint needs; the upload
 *   endpoint refuses any Authorization header (S3 does: the form is the authorization);
 * - refresh at /v5/oauth/token: HTTP Basic client auth, form-encoded `grant_type=refresh_token`,
 *   continuous refresh tokens (each refresh returns a new one; the old one is spent);
 * - POST /v5/media `{media_type: 'video'}` -> media id, upload_url and an S3 POST policy form;
 * - the upload: `multipart/form-data` with an exact Content-Length, every issued field with exactly
 *   its issued value and nothing else, then `file` last; the policy expires; answers 204 like S3,
 *   or S3's XML errors;
 * - GET /v5/media/{id}: `registered` until the file lands, `processing` for N polls, then
 *   `succeeded` (or `failed` on demand);
 * - POST /v5/pins: JSON, board owned by the caller, title ≤ 100, description ≤ 800, link ≤ 2048,
 *   `media_source` of type `video_id` with processed media and a cover;
 * - GET /v5/boards/{id}/pins: newest first, page_size ≤ 250, bookmark pagination, a new Pin listed
 *   only after `listDelayMs`;
 * - per-user `org_write` limits with x-ratelimit-* headers, errors as `{code, message}`.
 * Faults on demand: connection reset (before or after the change is committed), hangs, any status,
 * 429, and expiring the caller's token. Upload bodies are streamed and hashed, never held whole.
 */
import { MultipartParser } from './multipart.ts';
import { createHash, createHmac, randomBytes, type Hash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type PinterestRoute = 'token' | 'register' | 'upload' | 'media' | 'createPin' | 'boardPins' | 'boards';

export type PinterestFaultKind = 'reset' | 'resetAfterCommit' | 'hang' | 'hangAfterCommit' | 'respond' | 'respondAfterCommit' | 'rateLimit' | 'expireToken';

export interface PinterestFault {
  route: PinterestRoute;
  kind: PinterestFaultKind;
  skip?: number;
  times?: number;
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  retryAfterSeconds?: number;
}

export interface PinterestSimOptions {
  now?: () => number;
  client?: { clientId: string; clientSecret: string };
  accessTokenTtlSeconds?: number;
  /** Status polls answered `processing` after the upload, before `succeeded`. */
  processingPolls?: number;
  /** A new Pin appears in the board listing this long after it was created. */
  listDelayMs?: number;
  /** How long an upload form stays valid. */
  policyTtlSeconds?: number;
  maxBytes?: number;
  /** org_write (media registration and Pin creation) per user per minute. */
  writeLimitPerMinute?: number;
}

export interface PinterestSimUser {
  userId: string;
  username: string;
  accessToken: string;
  refreshToken: string;
  expiresAt: Date;
  scope: string;
  boardId: string;
}

export interface SimPin {
  id: string;
  ownerId: string;
  boardId: string;
  title: string;
  description: string;
  link: string | null;
  mediaId: string;
  cover: Record<string, unknown>;
  createdAt: number;
  visibleAt: number;
}

export interface SimMedia {
  id: string;
  ownerId: string;
  key: string;
  fields: Record<string, string>;
  policyExpiresAt: number;
  status: 'registered' | 'processing' | 'succeeded' | 'failed';
  polls: number;
  uploads: number;
  bytes: number;
  sha256: string | null;
  fail: boolean;
}

export interface SimRequest {
  route: PinterestRoute | 'unknown';
  method: string;
  path: string;
  status: number | 'reset' | 'hang';
  userId: string | null;
  bytes: number;
  at: number;
}

export interface PinterestSim {
  url: string;
  /** The origin of the upload URLs it hands out: its own unless a proxy in front of it is set here. */
  publicUrl: string;
  addUser(options?: { username?: string; scopes?: string[]; expiresInSeconds?: number }): PinterestSimUser;
  /** A board owned by `userId`, or (with no user) by somebody else. */
  addBoard(userId?: string, name?: string): string;
  /** Pins made on a board outside Reelay (the person pinning by hand). */
  addForeignPin(boardId: string, pin: { title: string; description: string; createdAt?: number }): void;
  expireAccessToken(token: string): void;
  fault(fault: PinterestFault): void;
  clearFaults(): void;
  failNextProcessing(): void;
  readonly pins: readonly SimPin[];
  readonly requests: readonly SimRequest[];
  count(route: PinterestRoute): number;
  media(id: string): SimMedia | undefined;
  readonly allMedia: readonly SimMedia[];
  readonly hanging: number;
  close(): Promise<void>;
}

export const PINTEREST_SCOPES = ['boards:read', 'boards:write', 'pins:read', 'pins:write', 'user_accounts:read'];
const ROUTE_SCOPES: Record<Exclude<PinterestRoute, 'token' | 'upload'>, string[]> = {
  register: ['pins:write'],
  media: ['pins:read'],
  createPin: ['boards:read', 'pins:write'],
  boardPins: ['boards:read', 'pins:read'],
  boards: ['boards:read'],
};
const JSON_LIMIT = 64 * 1024;

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

const apiError = (status: number, code: number, message: string, headers: Record<string, string> = {}): SimError =>
  new SimError({ status, body: { code, message }, headers });
const s3Error = (status: number, code: string, message: string): SimError =>
  new SimError({ status, body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>SIM</RequestId></Error>`, headers: { 'content-type': 'application/xml' } });

export async function startPinterestSim(options: PinterestSimOptions = {}): Promise<PinterestSim> {
  const now = options.now ?? (() => Date.now());
  const cfg = {
    ttl: options.accessTokenTtlSeconds ?? 30 * 86_400,
    processingPolls: options.processingPolls ?? 1,
    listDelayMs: options.listDelayMs ?? 0,
    policyTtlSeconds: options.policyTtlSeconds ?? 3600,
    maxBytes: options.maxBytes ?? 2 * 1024 ** 3,
    writeLimit: options.writeLimitPerMinute ?? 100,
  };
  const client = options.client ?? { clientId: 'reelay-client', clientSecret: 'reelay-secret' };
  const signingKey = randomBytes(32);

  const users = new Map<string, { userId: string; username: string }>();
  const accessTokens = new Map<string, { userId: string; scopes: Set<string>; expiresAt: number }>();
  const refreshTokens = new Map<string, { userId: string; scopes: Set<string>; spent: boolean }>();
  const boards = new Map<string, string | null>();
  const boardNames = new Map<string, string>();
  const media = new Map<string, SimMedia>();
  const pins: SimPin[] = [];
  const foreign: SimPin[] = [];
  const requests: SimRequest[] = [];
  const faults: (PinterestFault & { seen: number; applied: number })[] = [];
  const windows = new Map<string, { start: number; count: number }>();
  const hung = new Set<ServerResponse>();
  let nextNumber = 1_000_000_000_000n;
  let failNext = false;
  let url = '';
  let publicUrl: string | undefined;

  const id = () => String(nextNumber++) + String(Math.floor(Math.random() * 1000)).padStart(3, '0');
  const token = (prefix: string) => `${prefix}-${randomBytes(18).toString('base64url')}`;

  function issue(userId: string, scopes: Set<string>, ttlSeconds = cfg.ttl) {
    const accessToken = token('pina');
    const refreshToken = token('pinr');
    const expiresAt = now() + ttlSeconds * 1000;
    accessTokens.set(accessToken, { userId, scopes, expiresAt });
    refreshTokens.set(refreshToken, { userId, scopes, spent: false });
    return { accessToken, refreshToken, expiresAt };
  }

  function authenticate(req: IncomingMessage, route: keyof typeof ROUTE_SCOPES): string {
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const entry = bearer ? accessTokens.get(bearer) : undefined;
    if (!entry || entry.expiresAt <= now()) throw apiError(401, 2, 'Authentication failed.');
    const missing = ROUTE_SCOPES[route].filter((s) => !entry.scopes.has(s));
    if (missing.length > 0) throw apiError(401, 3, `Not authorized to access this resource: missing scope ${missing.join(', ')}.`);
    return entry.userId;
  }

  function rateLimit(userId: string, route: PinterestRoute): Record<string, string> {
    if (route !== 'register' && route !== 'createPin') return {};
    const key = `${userId}:org_write`;
    let window = windows.get(key);
    if (!window || now() - window.start >= 60_000) {
      window = { start: now(), count: 0 };
      windows.set(key, window);
    }
    const reset = String(Math.max(1, Math.ceil((window.start + 60_000 - now()) / 1000)));
    if (window.count >= cfg.writeLimit) {
      throw apiError(429, 8, 'You have exceeded your rate limit. Try again later.', { 'x-ratelimit-limit': String(cfg.writeLimit), 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset });
    }
    window.count += 1;
    return { 'x-ratelimit-limit': String(cfg.writeLimit), 'x-ratelimit-remaining': String(cfg.writeLimit - window.count), 'x-ratelimit-reset': reset };
  }

  async function readSmall(req: IncomingMessage): Promise<{ text: string; bytes: number }> {
    const parts: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes <= JSON_LIMIT) parts.push(chunk);
    }
    if (bytes > JSON_LIMIT) throw apiError(413, 1, 'Request body too large.');
    return { text: Buffer.concat(parts).toString('utf8'), bytes };
  }

  async function readJson(req: IncomingMessage): Promise<{ value: Record<string, unknown>; bytes: number }> {
    const type = req.headers['content-type'] ?? '';
    const body = await readSmall(req);
    if (!/^application\/json\b/i.test(type)) throw apiError(415, 1, `Unsupported content type: ${type || 'none'}`);
    try {
      const value = JSON.parse(body.text) as unknown;
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
      return { value: value as Record<string, unknown>, bytes: body.bytes };
    } catch {
      throw apiError(400, 1, 'Invalid JSON body.');
    }
  }

  function drain(req: IncomingMessage): Promise<number> {
    return new Promise((resolve) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => resolve(bytes));
      req.on('error', () => resolve(bytes));
      req.on('close', () => resolve(bytes));
    });
  }

  // ---- routes ----

  async function tokenRoute(req: IncomingMessage): Promise<{ answer: Answer; bytes: number }> {
    const basic = /^Basic (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const body = await readSmall(req);
    const expected = Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64');
    if (basic !== expected) throw apiError(401, 2, 'Authentication failed: invalid client credentials.');
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) throw apiError(415, 1, 'Unsupported content type.');
    const form = new URLSearchParams(body.text);
    if (form.get('grant_type') !== 'refresh_token') throw apiError(400, 1, 'Invalid grant_type.');
    const continuous = form.get('continuous_refresh');
    if (continuous !== null && continuous !== 'true' && continuous !== 'false') throw apiError(400, 1, 'Invalid continuous_refresh.');
    const entry = refreshTokens.get(form.get('refresh_token') ?? '');
    if (!entry || entry.spent) throw apiError(400, 1, 'invalid_grant: Refresh token is invalid or expired.');
    entry.spent = true;
    const issued = issue(entry.userId, entry.scopes);
    return {
      bytes: body.bytes,
      answer: {
        status: 200,
        body: {
          access_token: issued.accessToken,
          refresh_token: issued.refreshToken,
          response_type: 'refresh_token',
          token_type: 'bearer',
          expires_in: cfg.ttl,
          scope: [...entry.scopes].join(','),
          refresh_token_expires_in: 60 * 86_400,
          refresh_token_expires_at: Math.floor(now() / 1000) + 60 * 86_400,
        },
      },
    };
  }

  async function registerRoute(req: IncomingMessage, userId: string): Promise<{ answer: Answer; bytes: number }> {
    const { value, bytes } = await readJson(req);
    if (value.media_type !== 'video') throw apiError(400, 1, 'Invalid parameters: media_type must be "video".');
    const mediaId = id();
    const key = `uploads/${userId}/${mediaId}.mp4`;
    const date = new Date(now()).toISOString().replace(/[-:]|\.\d+/g, '');
    const credential = `SIMKEY/${date.slice(0, 8)}/us-east-1/s3/aws4_request`;
    const policyExpiresAt = now() + cfg.policyTtlSeconds * 1000;
    const policy = Buffer.from(JSON.stringify({ expiration: new Date(policyExpiresAt).toISOString(), conditions: [{ bucket: 'pinterest-media-upload' }, { key }] })).toString('base64');
    const fields: Record<string, string> = {
      'x-amz-date': date,
      'x-amz-signature': createHmac('sha256', signingKey).update(policy).digest('hex'),
      'x-amz-security-token': randomBytes(24).toString('base64'),
      'x-amz-algorithm': 'AWS4-HMAC-SHA256',
      key,
      policy,
      'x-amz-credential': credential,
      'Content-Type': 'multipart/form-data',
    };
    media.set(mediaId, { id: mediaId, ownerId: userId, key, fields, policyExpiresAt, status: 'registered', polls: 0, uploads: 0, bytes: 0, sha256: null, fail: false });
    return { bytes, answer: { status: 201, body: { media_id: mediaId, media_type: 'video', upload_url: `${publicUrl ?? url}/s3-upload/`, upload_parameters: fields } } };
  }

  async function uploadRoute(req: IncomingMessage, log: SimRequest): Promise<Answer> {
    if (req.headers.authorization) throw s3Error(400, 'InvalidArgument', 'Unsupported Authorization Type');
    if (req.headers['transfer-encoding'] || req.headers['content-length'] === undefined) throw s3Error(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.');
    const declared = Number(req.headers['content-length']);
    const boundary = /^multipart\/form-data;\s*boundary=(?:"([^"]+)"|([^\s;]+))/i.exec(req.headers['content-type'] ?? '');
    if (!boundary) throw s3Error(412, 'PreconditionFailed', 'Bucket POST must be of the enclosure-type multipart/form-data');
    const parser = new MultipartParser(boundary[1] ?? boundary[2]!, (message) => s3Error(400, 'MalformedPOSTRequest', message));
    const fields: Record<string, string> = {};
    let current: { name: string; value: Buffer[]; size: number } | null = null;
    let fileSeen = false;
    let fileDone = false;
    let fileBytes = 0;
    let afterFile = false;
    let hash: Hash | null = null;
    parser.onPart = (headers) => {
      const disposition = headers['content-disposition'] ?? '';
      const name = /\bname="([^"]*)"/.exec(disposition)?.[1];
      if (!name) throw s3Error(400, 'MalformedPOSTRequest', 'The body of your POST request is not well-formed multipart/form-data.');
      if (fileDone) afterFile = true;
      if (name === 'file') {
        if (fileSeen) throw s3Error(400, 'InvalidArgument', 'POST requires exactly one file upload per request.');
        fileSeen = true;
        hash = createHash('sha256');
        current = null;
      } else {
        current = { name, value: [], size: 0 };
      }
    };
    parser.onData = (data) => {
      if (current) {
        current.size += data.length;
        if (current.size > 20_000) throw s3Error(400, 'MaxPostPreDataLengthExceeded', 'Your POST request fields preceding the upload file were too large.');
        current.value.push(Buffer.from(data));
      } else {
        fileBytes += data.length;
        if (fileBytes > cfg.maxBytes) throw s3Error(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
        hash?.update(data);
      }
    };
    parser.onPartEnd = () => {
      if (current) {
        fields[current.name] = Buffer.concat(current.value).toString('utf8');
        current = null;
      } else {
        fileDone = true;
      }
    };
    let received = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      received += chunk.length;
      log.bytes = received;
      parser.write(chunk);
    }
    if (received !== declared) throw s3Error(400, 'IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header.');
    if (!parser.done) throw s3Error(400, 'MalformedPOSTRequest', 'The body of your POST request is not well-formed multipart/form-data.');
    if (!fileSeen || !fileDone) throw s3Error(400, 'InvalidArgument', 'POST requires exactly one file upload per request.');
    // S3 ignores fields after the file: a policy field sent late counts as missing.
    if (afterFile) throw s3Error(400, 'InvalidArgument', 'Fields after the file are ignored; send every form field before the file.');
    const target = [...media.values()].find((m) => m.key === fields.key);
    if (!target) throw s3Error(403, 'AccessDenied', 'Invalid according to Policy: Policy Condition failed: ["eq", "$key", ...]');
    for (const [name, value] of Object.entries(target.fields)) {
      if (fields[name] !== value) throw s3Error(403, 'AccessDenied', `Invalid according to Policy: Policy Condition failed: ["eq", "$${name}", ...]`);
    }
    const extra = Object.keys(fields).filter((name) => !(name in target.fields));
    if (extra.length > 0) throw s3Error(403, 'AccessDenied', `Invalid according to Policy: Extra input fields: ${extra.join(', ')}`);
    if (fields.policy !== undefined && createHmac('sha256', signingKey).update(fields.policy).digest('hex') !== fields['x-amz-signature']) {
      throw s3Error(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
    }
    if (now() > target.policyExpiresAt) throw s3Error(403, 'AccessDenied', 'Invalid according to Policy: Policy expired.');
    if (fileBytes === 0) throw s3Error(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed size');
    target.uploads += 1;
    target.bytes = fileBytes;
    target.sha256 = (hash as Hash | null)?.digest('hex') ?? null;
    target.status = 'processing';
    target.polls = 0;
    if (failNext) {
      target.fail = true;
      failNext = false;
    }
    return { status: 204, headers: { etag: `"${target.sha256?.slice(0, 32) ?? ''}"`, location: `${publicUrl ?? url}/s3-upload/${target.key}` } };
  }

  function mediaRoute(userId: string, mediaId: string): Answer {
    const entry = media.get(mediaId);
    if (!entry || entry.ownerId !== userId) throw apiError(404, 3, 'Media not found.');
    if (entry.status === 'processing') {
      entry.polls += 1;
      if (entry.polls > cfg.processingPolls) entry.status = entry.fail ? 'failed' : 'succeeded';
    }
    return { status: 200, body: { media_id: entry.id, media_type: 'video', status: entry.status } };
  }

  function pinJson(pin: SimPin): Record<string, unknown> {
    return {
      id: pin.id,
      created_at: new Date(pin.createdAt).toISOString().replace(/\.\d+Z$/, ''),
      board_id: pin.boardId,
      title: pin.title,
      description: pin.description,
      link: pin.link,
      media: { media_type: 'video', cover_image_url: `https://i.pinimg.com/sim/${pin.id}.jpg`, video_url: null, duration: 10000 },
    };
  }

  async function createPinRoute(req: IncomingMessage, userId: string): Promise<{ answer: Answer; bytes: number }> {
    const { value, bytes } = await readJson(req);
    const boardId = value.board_id;
    if (typeof boardId !== 'string' || !/^\d+$/.test(boardId)) throw apiError(400, 1, 'Invalid parameters: board_id is required.');
    if (!boards.has(boardId)) throw apiError(404, 40, 'Board not found.');
    if (boards.get(boardId) !== userId) throw apiError(403, 29, 'You are not permitted to access that resource.');
    const title = value.title ?? '';
    const description = value.description ?? '';
    const link = value.link ?? null;
    if (typeof title !== 'string' || [...title].length > 100) throw apiError(400, 1, 'Invalid parameters: title must be at most 100 characters.');
    if (typeof description !== 'string' || [...description].length > 800) throw apiError(400, 1, 'Invalid parameters: description must be at most 800 characters.');
    if (link !== null && (typeof link !== 'string' || link.length > 2048)) throw apiError(400, 1, 'Invalid parameters: link.');
    const source = value.media_source as Record<string, unknown> | undefined;
    if (!source || typeof source !== 'object') throw apiError(400, 1, 'Invalid parameters: media_source is required.');
    if (source.source_type !== 'video_id') throw apiError(400, 1, 'Invalid parameters: media_source.source_type.');
    const entry = typeof source.media_id === 'string' ? media.get(source.media_id) : undefined;
    if (!entry || entry.ownerId !== userId) throw apiError(400, 1, 'Invalid media_id: media not found.');
    if (entry.status !== 'succeeded') throw apiError(400, 1, `Media ${entry.id} is not ready (status ${entry.status}).`);
    const cover: Record<string, unknown> = {};
    if (typeof source.cover_image_url === 'string') cover.url = source.cover_image_url;
    if (typeof source.cover_image_key_frame_time === 'number') {
      if (!Number.isInteger(source.cover_image_key_frame_time) || source.cover_image_key_frame_time < 0) throw apiError(400, 1, 'Invalid parameters: cover_image_key_frame_time.');
      cover.keyFrameTime = source.cover_image_key_frame_time;
    }
    if (typeof source.cover_image_data === 'string') {
      if (source.cover_image_content_type !== 'image/jpeg' && source.cover_image_content_type !== 'image/png') throw apiError(400, 1, 'Invalid parameters: cover_image_content_type.');
      const image = Buffer.from(source.cover_image_data, 'base64');
      const isJpeg = image.length > 3 && image[0] === 0xff && image[1] === 0xd8 && image[2] === 0xff;
      const isPng = image.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      if (!(source.cover_image_content_type === 'image/jpeg' ? isJpeg : isPng)) throw apiError(400, 1, 'Invalid parameters: cover_image_data is not the declared image type.');
      cover.data = { contentType: source.cover_image_content_type, bytes: image.length };
    }
    if (Object.keys(cover).length !== 1) throw apiError(400, 1, 'A cover image is required for video Pins: give exactly one of cover_image_url, cover_image_data or cover_image_key_frame_time.');
    const pin: SimPin = { id: id(), ownerId: userId, boardId, title, description, link, mediaId: entry.id, cover, createdAt: now(), visibleAt: now() + cfg.listDelayMs };
    pins.push(pin);
    return { bytes, answer: { status: 201, body: pinJson(pin) } };
  }

  function boardPinsRoute(userId: string, boardId: string, query: URLSearchParams): Answer {
    if (!boards.has(boardId)) throw apiError(404, 40, 'Board not found.');
    if (boards.get(boardId) !== userId) throw apiError(403, 29, 'You are not permitted to access that resource.');
    const pageSize = Number(query.get('page_size') ?? '25');
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 250) throw apiError(400, 1, 'Invalid parameters: page_size must be between 1 and 250.');
    const listed = [...pins, ...foreign].filter((p) => p.boardId === boardId && p.visibleAt <= now()).sort((a, b) => b.createdAt - a.createdAt || Number(BigInt(b.id) - BigInt(a.id)));
    const start = query.get('bookmark') ? Number(Buffer.from(query.get('bookmark')!, 'base64url').toString()) : 0;
    if (!Number.isInteger(start) || start < 0) throw apiError(400, 1, 'Invalid bookmark.');
    const items = listed.slice(start, start + pageSize).map(pinJson);
    const next = start + pageSize < listed.length ? Buffer.from(String(start + pageSize)).toString('base64url') : null;
    return { status: 200, body: { items, bookmark: next } };
  }

  function routeOf(method: string, path: string): { route: PinterestRoute; id?: string } | null {
    if (method === 'POST' && path === '/v5/oauth/token') return { route: 'token' };
    if (method === 'POST' && path === '/v5/media') return { route: 'register' };
    if (method === 'POST' && path === '/s3-upload/') return { route: 'upload' };
    let m = /^\/v5\/media\/([^/]+)$/.exec(path);
    if (method === 'GET' && m) return { route: 'media', id: decodeURIComponent(m[1]!) };
    if (method === 'POST' && path === '/v5/pins') return { route: 'createPin' };
    if (method === 'GET' && path === '/v5/boards') return { route: 'boards' };
    m = /^\/v5\/boards\/([^/]+)\/pins$/.exec(path);
    if (method === 'GET' && m) return { route: 'boardPins', id: decodeURIComponent(m[1]!) };
    return null;
  }

  function takeFault(route: PinterestRoute) {
    for (const fault of faults) {
      if (fault.route !== route) continue;
      fault.seen += 1;
      if (fault.seen <= (fault.skip ?? 0)) continue;
      if (fault.applied >= (fault.times ?? 1)) continue;
      fault.applied += 1;
      return fault;
    }
    return undefined;
  }

  function send(res: ServerResponse, answer: Answer): void {
    const headers: Record<string, string> = { ...answer.headers };
    let payload = '';
    if (answer.body !== undefined) {
      payload = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    }
    res.writeHead(answer.status, headers);
    res.end(payload);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsedUrl = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const matched = routeOf(method, parsedUrl.pathname);
    const log: SimRequest = { route: matched?.route ?? 'unknown', method, path: parsedUrl.pathname, status: 0, userId: null, bytes: 0, at: now() };
    requests.push(log);
    if (!matched) {
      log.bytes = await drain(req);
      log.status = 404;
      return send(res, { status: 404, body: { code: 404, message: `No route for ${method} ${parsedUrl.pathname}` } });
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
      return send(res, { status: log.status, body: fault.body ?? { code: 0, message: 'Service unavailable' }, headers: fault.headers ?? {} });
    }
    let answer: Answer;
    let extra: Record<string, string> = {};
    try {
      if (route === 'token') {
        const r = await tokenRoute(req);
        log.bytes = r.bytes;
        answer = r.answer;
      } else if (route === 'upload') {
        answer = await uploadRoute(req, log);
      } else {
        if (fault?.kind === 'expireToken') {
          const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
          const entry = bearer ? accessTokens.get(bearer) : undefined;
          if (entry) entry.expiresAt = now();
        }
        const userId = authenticate(req, route);
        log.userId = userId;
        if (fault?.kind === 'rateLimit') {
          throw apiError(429, 8, 'You have exceeded your rate limit. Try again later.', { 'x-ratelimit-limit': '1', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(fault.retryAfterSeconds ?? 60) });
        }
        extra = rateLimit(userId, route);
        switch (route) {
          case 'register': {
            const r = await registerRoute(req, userId);
            log.bytes = r.bytes;
            answer = r.answer;
            break;
          }
          case 'media':
            log.bytes = await drain(req);
            answer = mediaRoute(userId, matched.id!);
            break;
          case 'createPin': {
            const r = await createPinRoute(req, userId);
            log.bytes = r.bytes;
            answer = r.answer;
            break;
          }
          case 'boardPins':
            log.bytes = await drain(req);
            answer = boardPinsRoute(userId, matched.id!, parsedUrl.searchParams);
            break;
          case 'boards': {
            log.bytes = await drain(req);
            // The caller's boards, one page (page_size ≤ 250), as GET /v5/boards lists them.
            const pageSize = Number(parsedUrl.searchParams.get('page_size') ?? '25');
            if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 250) throw apiError(400, 1, 'Invalid parameters: page_size.');
            const mine = [...boards.entries()].filter(([, owner]) => owner === userId).map(([boardId]) => ({ id: boardId, name: boardNames.get(boardId) ?? '' }));
            answer = { status: 200, body: { items: mine.slice(0, pageSize), bookmark: null } };
            break;
          }
        }
      }
    } catch (error) {
      if (!(error instanceof SimError)) throw error;
      if (!req.readableEnded) log.bytes += await drain(req);
      answer = error.answer;
    }
    answer = { ...answer, headers: { ...extra, ...answer.headers } };
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
    if (fault?.kind === 'respondAfterCommit') answer = { status: fault.status ?? 503, body: fault.body ?? { code: 0, message: 'Service unavailable' }, headers: fault.headers ?? {} };
    log.status = answer.status;
    send(res, answer);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, { status: 500, body: { code: 0, message: error instanceof Error ? error.message : String(error) } });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  function addBoard(userId?: string, name?: string): string {
    const boardId = id();
    boards.set(boardId, userId ?? null);
    boardNames.set(boardId, name ?? `Board ${boardId.slice(-4)}`);
    return boardId;
  }

  return {
    url,
    get publicUrl() {
      return publicUrl ?? url;
    },
    set publicUrl(value) {
      publicUrl = value;
    },
    addUser(userOptions = {}) {
      const userId = id();
      const username = userOptions.username ?? `user${userId.slice(-6)}`;
      users.set(userId, { userId, username });
      const scopes = new Set(userOptions.scopes ?? PINTEREST_SCOPES);
      const issued = issue(userId, scopes, userOptions.expiresInSeconds);
      return { userId, username, accessToken: issued.accessToken, refreshToken: issued.refreshToken, expiresAt: new Date(issued.expiresAt), scope: [...scopes].join(','), boardId: addBoard(userId) };
    },
    addBoard,
    addForeignPin(boardId, pin) {
      const at = pin.createdAt ?? now();
      foreign.push({ id: id(), ownerId: boards.get(boardId) ?? '', boardId, title: pin.title, description: pin.description, link: null, mediaId: '', cover: {}, createdAt: at, visibleAt: at });
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
    failNextProcessing() {
      failNext = true;
    },
    get pins() {
      return pins;
    },
    get requests() {
      return requests;
    },
    count(route) {
      return requests.filter((r) => r.route === route).length;
    },
    media(mediaId) {
      return media.get(mediaId);
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

