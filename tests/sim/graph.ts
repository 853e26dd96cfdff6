/**
 * A wire-level simulator of the Meta Graph calls Reelay makes for Instagram Reels (platform
 * reference §2; both hosts: graph.instagram.com for Instagram Login, graph.facebook.com for
 * Facebook Login) and Threads (§8), on 127.0.0.1: one listener per host, shared state.
 * It enforces what the docs say and refuses the rest, in Graph's error shape
 * `{error: {message, type, code, error_subcode, fbtrace_id}}`:
 * - `access_token` (query, form, or `Authorization: Bearer|OAuth`) of the host's kind, unexpired,
 *   with the scopes each call needs; the API version in the path;
 * - containers: POST /{v}/{user}/media (`media_type=REELS`, `video_url`, caption ≤ 2200, ≤ 30
 *   hashtags) or /{v}/{user}/threads (`media_type=VIDEO`, `video_url`, text ≤ 500 counted as Threads
 *   counts: one per character, an emoji its UTF-8 bytes), form-encoded;
 * - resumable containers (Facebook Login only): `upload_type=resumable` without `video_url` answers
 *   `{id, uri}` on the rupload listener; POST {uri} with `Authorization: OAuth {token}`, `offset`
 *   (exactly the bytes received so far), `file_size` (the same on every POST), Content-Type
 *   application/octet-stream and a Content-Length of 1 to file_size - offset; the body is streamed,
 *   counted and hashed, and bytes that arrived before a connection broke are kept; GET {uri} answers
 *   `{offset}`. Once file_size bytes are in, processing runs as for a fetched link;
 *   the simulator FETCHES `video_url` (streaming, hashing, checking Content-Type/Length) and the
 *   container stays IN_PROGRESS until the fetch is done and `processingPolls` more status reads
 *   passed, then FINISHED; a failed fetch makes it ERROR; 24 h after creation it is EXPIRED;
 * - `*_publish` only for a FINISHED container of the same user, once (then PUBLISHED), within the
 *   rolling 24 h publishing limit; publishing limit, permalink, recent media reads;
 * - token refresh: ig_refresh_token / th_refresh_token (token ≥ 24 h old and unexpired) and
 *   fb_exchange_token (with the app's client id and secret);
 * - the user node, the daily account check's read: GET /{v}/me or /{v}/{own user id} with a read
 *   token and only fields the host's user node has (Instagram Login `user_id,username`, Facebook
 *   Login `id,username`, Threads `id,username`). The simulator keeps no separate Facebook person, so
 *   /me with a Facebook Login token answers the Instagram account's id.
 * Faults on demand: reset (before or after the work is committed), hang, any answer, expiring the
 * caller's token, and a container that ends in ERROR with a given reason.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { get as httpGet, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type HostKind = 'ig' | 'fb' | 'threads';
export type GraphRoute = 'refresh' | 'exchange' | 'create' | 'status' | 'media' | 'quota' | 'publish' | 'recent' | 'rupload' | 'ruploadOffset' | 'user';

export interface GraphFault {
  route: GraphRoute;
  kind: 'reset' | 'resetAfterCommit' | 'hang' | 'respond' | 'respondAfterCommit' | 'expireToken';
  /** rupload `reset`: keep this many body bytes of the POST, then break the connection. */
  afterBytes?: number;
  host?: HostKind;
  skip?: number;
  times?: number;
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface SimUser {
  host: HostKind;
  userId: string;
  username: string;
  accessToken: string;
  scope: string;
  issuedAt: Date;
  expiresAt: Date;
}

export interface Container {
  id: string;
  host: HostKind;
  userId: string;
  videoUrl: string;
  text: string;
  createdAt: number;
  state: 'IN_PROGRESS' | 'FINISHED' | 'ERROR' | 'PUBLISHED';
  reason?: string;
  fetched: boolean;
  bytes: number;
  sha256?: string;
  /** A resumable container: its declared size, and every body byte that reached rupload for it (refused POSTs included). */
  resumable: boolean;
  fileSize: number | null;
  wireBytes: number;
  hash?: Hash;
  pollsLeft: number;
  mediaId?: string;
}

export interface SimPost {
  id: string;
  host: HostKind;
  userId: string;
  containerId: string;
  text: string;
  shortcode: string;
  permalink: string;
  timestamp: string;
}

export interface GraphSimOptions {
  now?: () => number;
  client?: { clientId: string; clientSecret: string };
  /** The Instagram/Facebook Graph version the paths must carry. */
  version?: string;
  threadsVersion?: string;
  /** Status reads that still say IN_PROGRESS after the fetch finished. */
  processingPolls?: number;
  /** Per user per rolling 24 h (Instagram 100, Threads 250). */
  igPublishLimit?: number;
  threadsPublishLimit?: number;
}

interface TokenRecord {
  host: HostKind;
  userId: string;
  scope: Set<string>;
  issuedAt: number;
  expiresAt: number;
  revoked: boolean;
}

interface LogEntry {
  host: HostKind;
  route: GraphRoute | 'unknown';
  method: string;
  path: string;
  status: number | 'reset' | 'hang';
  /** rupload POSTs: the `offset` header sent. */
  offset?: number;
}

const DAY = 86_400_000;
const SCOPES: Record<HostKind, { read: string[]; write: string[] }> = {
  ig: { read: ['instagram_business_basic'], write: ['instagram_business_basic', 'instagram_business_content_publish'] },
  fb: { read: ['instagram_basic'], write: ['instagram_basic', 'instagram_content_publish'] },
  threads: { read: ['threads_basic'], write: ['threads_basic', 'threads_content_publish'] },
};
const TOKEN_PREFIX: Record<HostKind, string> = { ig: 'IGAA', fb: 'EAAB', threads: 'THAA' };
/** Fields of the user node each host answers (a subset of Meta's; others are refused as unknown). */
const USER_FIELDS: Record<HostKind, string[]> = { ig: ['id', 'user_id', 'username', 'name'], fb: ['id', 'username', 'name'], threads: ['id', 'username', 'name'] };
const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** "Text posts are limited to 500 characters. Emojis are counted as the number of UTF-8 bytes." */
function threadsLength(text: string): number {
  let n = 0;
  for (const { segment } of segmenter.segment(text)) n += /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3/u.test(segment) ? Buffer.byteLength(segment) : 1;
  return n;
}

class GraphFailure extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, code: number, message: string, subcode?: number, extra: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.body = { error: { message, type: code === 190 ? 'OAuthException' : 'OAuthException', code, ...(subcode !== undefined ? { error_subcode: subcode } : {}), fbtrace_id: randomBytes(8).toString('base64url'), ...extra } };
  }
}

export async function startGraphSim(options: GraphSimOptions = {}) {
  const now = options.now ?? (() => Date.now());
  const version = options.version ?? 'v23.0';
  const threadsVersion = options.threadsVersion ?? 'v1.0';
  const tokens = new Map<string, TokenRecord>();
  const users = new Map<string, SimUser>();
  const containers = new Map<string, Container>();
  const posts: SimPost[] = [];
  const log: LogEntry[] = [];
  const faults: GraphFault[] = [];
  const seen = new Map<string, number>();
  const hanging = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  const fetches = new Set<Promise<void>>();
  const containerFailures: string[] = [];
  let processingPolls = options.processingPolls ?? 1;
  let nextId = 17_841_400_000_000_000n;
  const newId = () => String(nextId++);

  function issueToken(host: HostKind, userId: string, scope: string, issuedAt: number, expiresAt: number): string {
    const token = `${TOKEN_PREFIX[host]}${randomBytes(18).toString('base64url')}`;
    tokens.set(token, { host, userId, scope: new Set(scope.split(/[,\s]+/).filter(Boolean)), issuedAt, expiresAt, revoked: false });
    return token;
  }

  function addUser(init: { host: HostKind; username?: string; scope?: string; ageMs?: number; lifetimeMs?: number }): SimUser {
    const userId = newId();
    const issuedAt = now() - (init.ageMs ?? 2 * DAY);
    const expiresAt = issuedAt + (init.lifetimeMs ?? 60 * DAY);
    const scope = init.scope ?? SCOPES[init.host].write.join(',');
    const accessToken = issueToken(init.host, userId, scope, issuedAt, expiresAt);
    const user: SimUser = { host: init.host, userId, username: init.username ?? `user${userId.slice(-4)}`, accessToken, scope, issuedAt: new Date(issuedAt), expiresAt: new Date(expiresAt) };
    users.set(userId, user);
    return user;
  }

  function takeFault(host: HostKind, route: GraphRoute): GraphFault | undefined {
    const key = `${host}:${route}`;
    const index = (seen.get(key) ?? 0) + 1;
    seen.set(key, index);
    for (const fault of faults) {
      if (fault.route !== route || (fault.host && fault.host !== host)) continue;
      if ((fault.skip ?? 0) > 0) {
        fault.skip = (fault.skip ?? 0) - 1;
        continue;
      }
      fault.times = (fault.times ?? 1) - 1;
      if (fault.times <= 0) faults.splice(faults.indexOf(fault), 1);
      return fault;
    }
    return undefined;
  }

  // ---- request parsing ---------------------------------------------------------------------------

  async function readParams(req: IncomingMessage, url: URL): Promise<Map<string, string>> {
    const params = new Map<string, string>(url.searchParams);
    if (req.method !== 'POST') return params;
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    let size = 0;
    const parts: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      // Graph parameters are small; a body this big is not a parameter set.
      if (size > 64 * 1024) throw new GraphFailure(413, 1, 'Request body too large');
      parts.push(chunk);
    }
    if (size === 0) return params;
    if (type !== 'application/x-www-form-urlencoded') throw new GraphFailure(400, 100, `Unsupported content type ${type || '(none)'} for parameters`);
    for (const [k, v] of new URLSearchParams(Buffer.concat(parts).toString('utf8'))) {
      if (params.has(k) && params.get(k) !== v) throw new GraphFailure(400, 100, `Parameter ${k} given twice`);
      params.set(k, v);
    }
    return params;
  }

  function authenticate(host: HostKind, req: IncomingMessage, params: Map<string, string>, need: 'read' | 'write'): { token: string; record: TokenRecord } {
    const header = req.headers.authorization?.match(/^(?:Bearer|OAuth)\s+(\S+)$/i)?.[1];
    const token = params.get('access_token') ?? header;
    if (!token) throw new GraphFailure(400, 2500, 'An active access token must be used to query information about the current user.');
    const record = tokens.get(token);
    if (!record || record.host !== host) throw new GraphFailure(400, 190, 'Invalid OAuth access token - Cannot parse access token');
    if (record.revoked) throw new GraphFailure(400, 190, 'Error validating access token: The user has not authorized application.', 458);
    if (record.expiresAt <= now()) {
      throw new GraphFailure(400, 190, `Error validating access token: Session has expired on ${new Date(record.expiresAt).toUTCString()}.`, 463);
    }
    const missing = SCOPES[host][need].filter((s) => !record.scope.has(s));
    if (missing.length > 0) throw new GraphFailure(403, 10, `(#10) Application does not have permission for this action (needs ${missing.join(', ')})`);
    return { token, record };
  }

  function owner(record: TokenRecord, userId: string): void {
    if (userId !== record.userId) throw new GraphFailure(400, 100, `Unsupported request. Object with ID '${userId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`, 33);
  }

  // ---- the video fetch -----------------------------------------------------------------------------

  function fetchVideo(container: Container): void {
    const done = new Promise<void>((resolve) => {
      const fail = (reason: string) => {
        container.state = 'ERROR';
        container.reason = reason;
        resolve();
      };
      const failFetch = () => fail(container.host === 'threads' ? 'FAILED_DOWNLOADING_VIDEO' : 'Error: Media download has failed. The media URI doesn\'t meet our requirements. (2207052)');
      let target: URL;
      try {
        target = new URL(container.videoUrl);
      } catch {
        failFetch();
        return;
      }
      const req = httpGet(target, (res) => {
        const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim();
        const length = Number(res.headers['content-length']);
        if (res.statusCode !== 200 || !Number.isSafeInteger(length)) {
          res.resume();
          failFetch();
          return;
        }
        if (!/^video\/(mp4|quicktime)$/.test(type)) {
          res.resume();
          fail(container.host === 'threads' ? 'FAILED_PROCESSING_VIDEO' : 'Error: The video format is not supported. (2207026)');
          return;
        }
        const hash = createHash('sha256');
        res.on('data', (chunk: Buffer) => {
          container.bytes += chunk.length;
          hash.update(chunk);
        });
        res.on('end', () => {
          if (container.bytes !== length) return failFetch();
          container.sha256 = hash.digest('hex');
          container.fetched = true;
          const injected = containerFailures.shift();
          if (injected) fail(injected);
          resolve();
        });
        res.on('error', failFetch);
      });
      req.on('error', failFetch);
      req.setTimeout(30_000, () => req.destroy(new Error('fetch timed out')));
    });
    fetches.add(done);
    void done.finally(() => fetches.delete(done));
  }

  function expireIfOld(container: Container): void {
    if (container.state !== 'PUBLISHED' && now() - container.createdAt > DAY) {
      container.state = 'ERROR';
      container.reason = 'EXPIRED';
    }
  }

  function statusOf(container: Container): string {
    return container.reason === 'EXPIRED' ? 'EXPIRED' : container.state;
  }

  // ---- routes --------------------------------------------------------------------------------------

  function route(host: HostKind, method: string, segments: string[]): { route: GraphRoute; id?: string } | undefined {
    const v = host === 'threads' ? threadsVersion : version;
    if (method === 'GET' && segments.length === 1 && segments[0] === 'refresh_access_token' && host !== 'fb') return { route: 'refresh' };
    if (segments[0] !== v) return undefined;
    const [, a, b] = segments;
    if (host === 'fb' && method === 'GET' && a === 'oauth' && b === 'access_token' && segments.length === 3) return { route: 'exchange' };
    if (!a) return undefined;
    const edge = host === 'threads' ? { create: 'threads', publish: 'threads_publish', quota: 'threads_publishing_limit' } : { create: 'media', publish: 'media_publish', quota: 'content_publishing_limit' };
    if (segments.length === 2 && method === 'GET' && (a === 'me' || users.get(a)?.host === host)) return { route: 'user', id: a };
    if (segments.length === 2 && method === 'GET') return { route: containers.has(a) ? 'status' : 'media', id: a };
    if (segments.length !== 3) return undefined;
    if (method === 'POST' && b === edge.create) return { route: 'create', id: a };
    if (method === 'GET' && b === edge.create) return { route: 'recent', id: a };
    if (method === 'POST' && b === edge.publish) return { route: 'publish', id: a };
    if (method === 'GET' && b === edge.quota) return { route: 'quota', id: a };
    return undefined;
  }

  function publishedWithin(host: HostKind, userId: string): number {
    const since = now() - DAY;
    return posts.filter((p) => p.host === host && p.userId === userId && Date.parse(p.timestamp) > since).length;
  }

  function limitOf(host: HostKind): number {
    return host === 'threads' ? (options.threadsPublishLimit ?? 250) : (options.igPublishLimit ?? 100);
  }

  function fieldsOf(params: Map<string, string>, allowed: string[]): string[] {
    const fields = (params.get('fields') ?? '').split(',').map((f) => f.trim()).filter(Boolean);
    for (const f of fields) if (!allowed.includes(f)) throw new GraphFailure(400, 100, `(#100) Tried accessing nonexisting field (${f})`);
    return fields;
  }

  /** Does the work of a request; returns the answer. Throws GraphFailure for refusals. */
  async function handle(host: HostKind, name: GraphRoute, id: string | undefined, req: IncomingMessage, params: Map<string, string>): Promise<unknown> {
    switch (name) {
      case 'refresh': {
        const grant = host === 'threads' ? 'th_refresh_token' : 'ig_refresh_token';
        if (params.get('grant_type') !== grant) throw new GraphFailure(400, 100, `Unsupported grant_type; expected ${grant}`);
        const { record } = authenticate(host, req, params, 'read');
        if (now() - record.issuedAt < DAY) throw new GraphFailure(400, 100, 'The access token must be at least 24 hours old to be refreshed.');
        const fresh = issueToken(host, record.userId, [...record.scope].join(','), now(), now() + 60 * DAY);
        return { access_token: fresh, token_type: 'bearer', expires_in: 60 * 86_400 };
      }
      case 'exchange': {
        if (params.get('grant_type') !== 'fb_exchange_token') throw new GraphFailure(400, 100, 'Unsupported grant_type');
        const client = options.client;
        if (!client || params.get('client_id') !== client.clientId || params.get('client_secret') !== client.clientSecret) {
          throw new GraphFailure(400, 1, 'Error validating client secret.');
        }
        const old = params.get('fb_exchange_token') ?? '';
        const record = tokens.get(old);
        if (!record || record.host !== 'fb' || record.revoked) throw new GraphFailure(400, 190, 'Invalid OAuth access token - Cannot parse access token');
        if (record.expiresAt <= now()) throw new GraphFailure(400, 190, 'Error validating access token: Session has expired.', 463);
        const fresh = issueToken('fb', record.userId, [...record.scope].join(','), now(), now() + 60 * DAY);
        return { access_token: fresh, token_type: 'bearer', expires_in: 60 * 86_400 };
      }
      case 'create': {
        const { record } = authenticate(host, req, params, 'write');
        owner(record, id ?? '');
        const type = params.get('media_type');
        const wanted = host === 'threads' ? 'VIDEO' : 'REELS';
        if (type !== wanted) throw new GraphFailure(400, 100, `(#100) media_type must be ${wanted} for a single video (got ${type ?? 'none'})`, host === 'threads' ? undefined : 2207023);
        const uploadType = params.get('upload_type');
        const resumable = uploadType === 'resumable';
        if (uploadType !== undefined && !resumable) throw new GraphFailure(400, 100, `(#100) Invalid upload_type ${uploadType}`);
        // Meta documents the resumable upload only for apps with Facebook Login for Business.
        if (resumable && host !== 'fb') throw new GraphFailure(400, 100, '(#100) upload_type=resumable is not supported for this app');
        const videoUrl = params.get('video_url') ?? '';
        if (resumable && videoUrl) throw new GraphFailure(400, 100, '(#100) video_url cannot be used with upload_type=resumable');
        if (!resumable && !/^https?:\/\//.test(videoUrl)) throw new GraphFailure(400, 100, '(#100) The parameter video_url is required');
        const text = params.get(host === 'threads' ? 'text' : 'caption') ?? '';
        if (host === 'threads') {
          const length = threadsLength(text);
          if (length > 500) throw new GraphFailure(400, 100, `Param text must be at most 500 characters long (it counts ${length}).`);
          if (params.has('caption')) throw new GraphFailure(400, 100, '(#100) Unknown parameter caption');
        } else {
          if ([...text].length > 2200) throw new GraphFailure(400, 100, 'The caption is too long.', 2207010);
          if ((text.match(/#[\p{L}\p{N}_]+/gu) ?? []).length > 30) throw new GraphFailure(400, 100, 'Too many hashtags.', 2207010);
          if (params.has('text')) throw new GraphFailure(400, 100, '(#100) Unknown parameter text');
        }
        const container: Container = {
          id: newId(),
          host,
          userId: record.userId,
          videoUrl,
          text,
          createdAt: now(),
          state: 'IN_PROGRESS',
          fetched: false,
          bytes: 0,
          pollsLeft: processingPolls,
          resumable,
          fileSize: null,
          wireBytes: 0,
        };
        containers.set(container.id, container);
        if (!resumable) {
          fetchVideo(container);
          return { id: container.id };
        }
        container.hash = createHash('sha256');
        return { id: container.id, uri: `${publicUrls.rupload}/ig-api-upload/${version}/${container.id}` };
      }
      case 'status': {
        const { record } = authenticate(host, req, params, 'read');
        const container = containers.get(id ?? '')!;
        if (container.host !== host) throw new GraphFailure(400, 100, `Unsupported get request. Object with ID '${id}' does not exist.`, 33);
        owner(record, container.userId);
        const fields = fieldsOf(params, host === 'threads' ? ['id', 'status', 'error_message'] : ['id', 'status_code', 'status']);
        if (fields.length === 0) throw new GraphFailure(400, 100, '(#100) fields is required for a container');
        expireIfOld(container);
        // A read counts down the processing only once Meta holds the whole video.
        if (container.state === 'IN_PROGRESS' && container.fetched) {
          if (container.pollsLeft <= 0) container.state = 'FINISHED';
          else container.pollsLeft--;
        }
        const state = statusOf(container);
        const out: Record<string, unknown> = { id: container.id };
        if (host === 'threads') {
          if (fields.includes('status')) out.status = state;
          if (fields.includes('error_message') && state === 'ERROR') out.error_message = container.reason;
        } else {
          if (fields.includes('status_code')) out.status_code = state;
          if (fields.includes('status')) out.status = state === 'ERROR' ? container.reason : state === 'IN_PROGRESS' ? 'In Progress' : state === 'FINISHED' ? 'Finished' : state;
        }
        return out;
      }
      case 'media': {
        const { record } = authenticate(host, req, params, 'read');
        const post = posts.find((p) => p.id === id && p.host === host);
        if (!post) throw new GraphFailure(400, 100, `Unsupported get request. Object with ID '${id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`, 33);
        owner(record, post.userId);
        const fields = fieldsOf(params, ['id', 'permalink', 'shortcode', 'timestamp', 'caption', 'text', 'media_type']);
        const out: Record<string, unknown> = { id: post.id };
        if (fields.includes('permalink')) out.permalink = post.permalink;
        if (fields.includes('shortcode')) out.shortcode = post.shortcode;
        if (fields.includes('timestamp')) out.timestamp = post.timestamp;
        return out;
      }
      case 'user': {
        const { record } = authenticate(host, req, params, 'read');
        if (id !== 'me') owner(record, id ?? '');
        const user = users.get(record.userId);
        const fields = fieldsOf(params, USER_FIELDS[host]);
        const out: Record<string, unknown> = { id: record.userId };
        if (fields.includes('user_id')) out.user_id = record.userId;
        if (fields.includes('username') && user) out.username = user.username;
        if (fields.includes('name') && user) out.name = user.username;
        return out;
      }
      case 'recent': {
        const { record } = authenticate(host, req, params, 'read');
        owner(record, id ?? '');
        const fields = fieldsOf(params, ['id', 'permalink', 'shortcode', 'timestamp', 'caption', 'text', 'media_type']);
        const limit = Math.min(100, Number(params.get('limit') ?? 25) || 25);
        const mine = posts.filter((p) => p.host === host && p.userId === record.userId).reverse().slice(0, limit);
        return {
          data: mine.map((p) => ({ id: p.id, ...(fields.includes('permalink') ? { permalink: p.permalink } : {}), ...(fields.includes('timestamp') ? { timestamp: p.timestamp } : {}) })),
          paging: {},
        };
      }
      case 'quota': {
        const { record } = authenticate(host, req, params, 'read');
        owner(record, id ?? '');
        const fields = fieldsOf(params, ['quota_usage', 'config', 'reply_quota_usage', 'reply_config']);
        const entry: Record<string, unknown> = {};
        if (fields.includes('quota_usage')) entry.quota_usage = publishedWithin(host, record.userId);
        if (fields.includes('config')) entry.config = { quota_total: limitOf(host), quota_duration: 86_400 };
        return { data: [entry] };
      }
      case 'publish': {
        const { record } = authenticate(host, req, params, 'write');
        owner(record, id ?? '');
        const container = containers.get(params.get('creation_id') ?? '');
        if (!container || container.host !== host || container.userId !== record.userId) {
          throw new GraphFailure(400, 100, `Unsupported post request. Object with ID '${params.get('creation_id') ?? ''}' does not exist.`, 33);
        }
        expireIfOld(container);
        const state = statusOf(container);
        if (state === 'PUBLISHED') throw new GraphFailure(400, 100, 'The media has already been published.', 2207008);
        if (state === 'EXPIRED') throw new GraphFailure(400, 9007, 'The media you are trying to access has expired.', 2207020);
        if (state !== 'FINISHED') throw new GraphFailure(400, 9007, 'Media ID is not available: the media is not ready for publishing, please wait for a moment', 2207027);
        if (publishedWithin(host, record.userId) >= limitOf(host)) throw new GraphFailure(400, 9, 'Application request limit reached: the account reached its publishing limit.', 2207042);
        const shortcode = randomBytes(8).toString('base64url');
        const user = users.get(record.userId);
        const post: SimPost = {
          id: newId(),
          host,
          userId: record.userId,
          containerId: container.id,
          text: container.text,
          shortcode,
          permalink: host === 'threads' ? `https://www.threads.com/@${user?.username ?? 'user'}/post/${shortcode}` : `https://www.instagram.com/reel/${shortcode}/`,
          timestamp: new Date(now()).toISOString(),
        };
        posts.push(post);
        container.state = 'PUBLISHED';
        container.mediaId = post.id;
        return { id: post.id };
      }
    }
  }

  function serve(host: HostKind) {
    return async (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const segments = url.pathname.split('/').filter(Boolean);
      const method = req.method ?? 'GET';
      const matched = route(host, method, segments);
      const entry: LogEntry = { host, route: matched?.route ?? 'unknown', method, path: url.pathname, status: 200 };
      log.push(entry);
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        entry.status = status;
        res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
        res.end(JSON.stringify(body));
      };
      try {
        if (!matched) throw new GraphFailure(400, 100, `Unknown path components: ${url.pathname}`, 33);
        const fault = takeFault(host, matched.route);
        if (fault?.kind === 'reset') {
          entry.status = 'reset';
          req.socket.destroy();
          return;
        }
        if (fault?.kind === 'hang') {
          entry.status = 'hang';
          hanging.add(res);
          return;
        }
        if (fault?.kind === 'respond') return send(fault.status ?? 500, fault.body ?? {}, fault.headers);
        const params = await readParams(req, url);
        if (fault?.kind === 'expireToken') {
          const record = tokens.get(params.get('access_token') ?? '');
          if (record) record.expiresAt = now();
        }
        const body = await handle(host, matched.route, matched.id, req, params);
        if (fault?.kind === 'resetAfterCommit') {
          entry.status = 'reset';
          req.socket.destroy();
          return;
        }
        if (fault?.kind === 'respondAfterCommit') return send(fault.status ?? 500, fault.body ?? {}, fault.headers);
        send(200, body);
      } catch (error) {
        if (error instanceof GraphFailure) return send(error.status, error.body);
        send(500, { error: { message: 'An unknown error has occurred.', type: 'OAuthException', code: 1, is_transient: true, fbtrace_id: 'sim' } });
      }
    };
  }

  // ---- rupload --------------------------------------------------------------------------------------

  /** rupload's error shape: `{debug_info: {retriable, type, message}}`. */
  class RuploadFailure extends Error {
    readonly status: number;
    readonly type: string;
    constructor(status: number, type: string, message: string) {
      super(message);
      this.status = status;
      this.type = type;
    }
    get body() {
      return { debug_info: { retriable: false, type: this.type, message: this.message } };
    }
  }

  function ruploadAuth(req: IncomingMessage, container: Container, need: 'read' | 'write'): TokenRecord {
    const match = req.headers.authorization?.match(/^OAuth (\S+)$/);
    if (!match) throw new RuploadFailure(401, 'OAuthException', 'Authorization: OAuth <access token> is required');
    const record = tokens.get(match[1]!);
    if (!record || record.host !== 'fb' || record.revoked) throw new RuploadFailure(401, 'OAuthException', 'Invalid OAuth access token');
    if (record.expiresAt <= now()) throw new RuploadFailure(401, 'OAuthException', 'Error validating access token: Session has expired');
    if (SCOPES.fb[need].some((s) => !record.scope.has(s))) throw new RuploadFailure(403, 'OAuthException', 'The token lacks instagram_content_publish');
    if (record.userId !== container.userId) throw new RuploadFailure(404, 'NotFoundError', `Container ${container.id} does not exist`);
    return record;
  }

  function header(req: IncomingMessage, name: string): number | undefined {
    const raw = req.headers[name];
    return typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : undefined;
  }

  /** Reads (and counts) a POST body; `keep` bytes are taken into the container, the rest refused. */
  async function receive(req: IncomingMessage, container: Container, keep: number, fault: GraphFault | undefined): Promise<'ok' | 'reset'> {
    const limit = fault?.kind === 'reset' ? Math.min(keep, fault.afterBytes ?? 0) : keep;
    let taken = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      // Past a simulated break nothing arrives: only the kept part crossed the wire.
      const part = chunk.length <= limit - taken ? chunk : chunk.subarray(0, Math.max(0, limit - taken));
      taken += part.length;
      container.wireBytes += part.length;
      container.bytes += part.length;
      container.hash?.update(part);
      if (fault?.kind === 'reset' && taken >= limit) return 'reset';
    }
    return 'ok';
  }

  async function serveRupload(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const route: GraphRoute = method === 'GET' ? 'ruploadOffset' : 'rupload';
    const entry: LogEntry = { host: 'fb', route, method, path: url.pathname, status: 200 };
    log.push(entry);
    const send = (status: number, body: unknown) => {
      entry.status = status;
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(JSON.stringify(body));
    };
    const match = url.pathname.match(/^\/ig-api-upload\/([^/]+)\/(\d+)$/);
    const container = match ? containers.get(match[2]!) : undefined;
    try {
      if (!match || match[1] !== version || !container?.resumable || (method !== 'GET' && method !== 'POST')) {
        throw new RuploadFailure(404, 'NotFoundError', `No upload session at ${url.pathname}`);
      }
      const fault = takeFault('fb', route);
      if (fault?.kind === 'hang') {
        entry.status = 'hang';
        hanging.add(res);
        return;
      }
      if (fault?.kind === 'respond') return send(fault.status ?? 500, fault.body ?? {});
      if (fault?.kind === 'expireToken') {
        const record = tokens.get(req.headers.authorization?.replace(/^OAuth /, '') ?? '');
        if (record) record.expiresAt = now();
      }
      expireIfOld(container);
      if (method === 'GET') {
        ruploadAuth(req, container, 'read');
        return send(200, { id: container.id, offset: container.bytes, ...(container.fileSize !== null ? { file_size: container.fileSize } : {}) });
      }
      ruploadAuth(req, container, 'write');
      if (container.state !== 'IN_PROGRESS' || container.fetched) throw new RuploadFailure(400, 'BadRequest', `The upload of container ${container.id} is over (${statusOf(container)})`);
      if (req.headers.file_url !== undefined) throw new RuploadFailure(400, 'BadRequest', 'file_url uploads are not simulated');
      const offset = header(req, 'offset');
      if (offset !== undefined) entry.offset = offset;
      const fileSize = header(req, 'file_size');
      if (offset === undefined || fileSize === undefined || fileSize <= 0) throw new RuploadFailure(400, 'BadRequest', 'The offset and file_size headers are required');
      if (container.fileSize !== null && container.fileSize !== fileSize) throw new RuploadFailure(400, 'BadRequest', `file_size ${fileSize} differs from ${container.fileSize}`);
      if (offset !== container.bytes) throw new RuploadFailure(400, 'BadRequest', `offset ${offset} does not match the ${container.bytes} bytes received`);
      if ((req.headers['content-type'] ?? '').split(';')[0]!.trim() !== 'application/octet-stream') throw new RuploadFailure(400, 'BadRequest', 'Content-Type must be application/octet-stream');
      const length = header(req, 'content-length');
      if (length === undefined || length < 1 || length > fileSize - offset) throw new RuploadFailure(400, 'BadRequest', 'Content-Length must be 1 to file_size - offset');
      container.fileSize = fileSize;
      if ((await receive(req, container, length, fault)) === 'reset') {
        entry.status = 'reset';
        req.socket.destroy();
        return;
      }
      if (container.bytes - offset !== length) throw new RuploadFailure(400, 'BadRequest', 'The body was shorter than Content-Length');
      if (container.bytes === fileSize) {
        container.sha256 = container.hash?.digest('hex');
        container.fetched = true;
        const injected = containerFailures.shift();
        if (injected) {
          container.state = 'ERROR';
          container.reason = injected;
        }
      }
      if (fault?.kind === 'reset' || fault?.kind === 'resetAfterCommit') {
        entry.status = 'reset';
        req.socket.destroy();
        return;
      }
      send(200, container.fetched ? { success: true, message: 'Upload successful.' } : { success: true, offset: container.bytes });
    } catch (error) {
      // A refused POST's body is still read (and counted), as it crossed the wire.
      if (container && req.readable) for await (const chunk of req as AsyncIterable<Buffer>) container.wireBytes += chunk.length;
      if (error instanceof RuploadFailure) return send(error.status, error.body);
      send(500, { debug_info: { retriable: true, type: 'InternalError', message: String(error) } });
    }
  }

  const servers = new Map<HostKind | 'rupload', Server>();
  const urls = {} as Record<HostKind | 'rupload', string>;
  /** The origins in the URLs it hands out (the rupload `uri`): each listener's own unless a proxy in front of it is set here. */
  const publicUrls = {} as Record<HostKind | 'rupload', string>;
  for (const host of ['ig', 'fb', 'threads', 'rupload'] as const) {
    const server = createServer(host === 'rupload' ? (req, res) => void serveRupload(req, res) : serve(host));
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.set(host, server);
    urls[host] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    publicUrls[host] = urls[host];
  }

  return {
    urls,
    publicUrls,
    /** deps.urls for the Instagram adapter. */
    instagramUrls: { instagramGraph: urls.ig, facebookGraph: urls.fb, rupload: urls.rupload },
    threadsUrls: { api: urls.threads },
    addUser,
    users,
    containers,
    posts,
    log,
    fault(fault: GraphFault) {
      faults.push({ ...fault });
    },
    /** The next container whose fetch succeeds ends in ERROR with this reason. */
    failNextContainer(reason: string) {
      containerFailures.push(reason);
    },
    setProcessingPolls(n: number) {
      processingPolls = n;
    },
    revoke(token: string) {
      const record = tokens.get(token);
      if (record) record.revoked = true;
    },
    count(route: GraphRoute, host?: HostKind): number {
      return log.filter((e) => e.route === route && (!host || e.host === host)).length;
    },
    tokenInfo(token: string) {
      return tokens.get(token);
    },
    /** Resolves when every video fetch under way has ended. */
    async settled(): Promise<void> {
      while (fetches.size > 0) await Promise.all([...fetches]);
    },
    async close(): Promise<void> {
      for (const res of hanging) res.destroy();
      hanging.clear();
      for (const socket of sockets) socket.destroy();
      await Promise.all([...servers.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}

export type GraphSim = Awaited<ReturnType<typeof startGraphSim>>;

/**
 * The public media link in tests: serves one file (streamed) at /media/<name> with Content-Type
 * and Content-Length, as the real signed link does; `failures` makes the next requests 404.
 */
export async function startMediaServer(file: { path: string; size: number; contentType?: string }) {
  const { createReadStream } = await import('node:fs');
  let failures = 0;
  let served = 0;
  let requests = 0;
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    requests++;
    if (failures > 0) {
      failures--;
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': file.contentType ?? 'video/mp4', 'content-length': String(file.size) });
    if (req.method === 'HEAD') return res.end();
    const stream = createReadStream(file.path);
    stream.on('data', (chunk) => (served += chunk.length));
    stream.pipe(res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/media/clip.mp4`;
  return {
    url,
    failNext(n = 1) {
      failures += n;
    },
    get served() {
      return served;
    },
    get requests() {
      return requests;
    },
    async close(): Promise<void> {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
