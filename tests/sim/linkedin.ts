/**
 * A wire-level simulator of the LinkedIn calls Reelay makes (platform reference §6), on 127.0.0.1.
 * It enforces what the docs say and refuses the rest:
 * - every `/rest/*` call needs `Authorization: Bearer` (tokens expire; 401 EXPIRED_ACCESS_TOKEN /
 *   REVOKED_ACCESS_TOKEN), an active `LinkedIn-Version` (400 VERSION_MISSING, 426
 *   NONEXISTENT_VERSION) and `X-Restli-Protocol-Version: 2.0.0`; JSON bodies; URNs URL-encoded in
 *   paths and query strings (Rest.li 2.0);
 * - scopes and roles: w_member_social to post as oneself, w_organization_social plus a page admin
 *   role to post as an organization, r_member_social / r_organization_social to read posts back;
 * - videos: initializeUpload (owner the caller may post as, fileSizeBytes 75 KB–500 MB (configurable),
 *   uploadCaptions/uploadThumbnail false) -> upload instructions of `partBytes` each, pre-signed,
 *   expiring -> PUT each part with exactly its byte range (application/octet-stream, Content-Length),
 *   answering an ETag -> finalizeUpload with the uploadToken and every ETag in order -> the video is
 *   PROCESSING for N reads, then AVAILABLE (or PROCESSING_FAILED on demand);
 * - POST /rest/posts: the documented body, "little text" commentary (an unescaped reserved
 *   character is refused rather than silently truncating as LinkedIn does), 3000 characters, an
 *   AVAILABLE video of the author, one post per video and duplicate refusal (422), 201 with the post
 *   URN in `x-restli-id`; GET /rest/posts?q=author, newest first, where a post shows up only after
 *   `indexDelayMs`;
 * - the token endpoint: grant_type=refresh_token with client_id/client_secret in the form;
 * - GET /v2/userinfo (OpenID, not versioned): the same bearer checks, then the `openid` scope (403
 *   ACCESS_DENIED without it); `sub`, and `name` with `profile`;
 * - a per-member daily limit on creating posts (429 TOO_MANY_REQUESTS).
 * Faults on demand: connection reset (before or after the change is committed), hangs, any status,
 * 429, and expiring the caller's token. Part bodies are streamed and hashed, never held.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type LinkedInRoute = 'token' | 'initialize' | 'part' | 'finalize' | 'video' | 'create' | 'find' | 'userinfo';

export type LinkedInFaultKind =
  /** Destroy the socket before doing anything. */
  | 'reset'
  /** Do the work (commit), then destroy the socket instead of answering. */
  | 'resetAfterCommit'
  /** Never answer; nothing is done. */
  | 'hang'
  /** Answer `status`/`body` without doing anything. */
  | 'respond'
  /** Do the work, then answer `status`/`body` instead of the real answer. */
  | 'respondAfterCommit'
  /** 429 TOO_MANY_REQUESTS, with Retry-After when `retryAfterSeconds` is set. */
  | 'rateLimit'
  /** The caller's access token expires now (so this request answers 401). */
  | 'expireToken';

export interface LinkedInFault {
  route: LinkedInRoute;
  kind: LinkedInFaultKind;
  skip?: number;
  times?: number;
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  retryAfterSeconds?: number;
}

export interface LinkedInSimOptions {
  now?: () => number;
  client?: { clientId: string; clientSecret: string };
  activeVersions?: readonly string[];
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  partBytes?: number;
  minFileBytes?: number;
  maxFileBytes?: number;
  uploadUrlTtlSeconds?: number;
  /** Video reads answered PROCESSING after finalize before AVAILABLE. */
  processingReads?: number;
  indexDelayMs?: number;
  /** Posts a member may create per UTC day. */
  dailyPostLimit?: number;
}

export interface SimMember {
  personUrn: string;
  accessToken: string;
  refreshToken: string | undefined;
  expiresAt: Date;
  refreshTokenExpiresAt: Date | undefined;
  scope: string;
}

export interface SimVideo {
  urn: string;
  owner: string;
  size: number;
  uploadToken: string;
  expiresAt: number;
  parts: Array<{ first: number; last: number; sha256: string | null; etag: string | null; bytes: number }>;
  status: 'WAITING_UPLOAD' | 'PROCESSING' | 'AVAILABLE' | 'PROCESSING_FAILED';
  reads: number;
  failWith: string | null;
  /** sha256 of the whole file, when every part arrived in order (repeats identical). */
  sha256: string | null;
  bytes: number;
  seqHash: Hash;
  nextSeq: number;
  broken: boolean;
}

export interface SimPost {
  urn: string;
  author: string;
  /** The commentary as sent (little text). */
  commentary: string;
  /** What a reader sees. */
  text: string;
  video: string;
  createdAt: number;
  visibleAt: number;
  body: Record<string, unknown>;
}

export interface SimRequest {
  route: LinkedInRoute | 'unknown';
  method: string;
  path: string;
  query: string;
  status: number | 'reset' | 'hang';
  member: string | null;
  bytes: number;
  at: number;
  part?: number;
  headers: Record<string, string | string[] | undefined>;
}

export interface LinkedInSim {
  url: string;
  /** The origin of the upload and download URLs it hands out: its own unless a proxy in front of it is set here. */
  publicUrl: string;
  tokenUrl: string;
  addMember(options?: { scopes?: string[]; adminOf?: string[]; refreshToken?: boolean; expiresInSeconds?: number }): SimMember;
  addOrganization(): string;
  expireAccessToken(token: string): void;
  revokeAccessToken(token: string): void;
  fault(fault: LinkedInFault): void;
  clearFaults(): void;
  failNextProcessing(reason?: string): void;
  readonly posts: readonly SimPost[];
  readonly videos: readonly SimVideo[];
  readonly requests: readonly SimRequest[];
  count(route: LinkedInRoute): number;
  readonly hanging: number;
  close(): Promise<void>;
}

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

/** LinkedIn's REST error shape. */
function restError(status: number, code: string, message: string, serviceErrorCode?: number): Answer {
  return { status, body: { status, ...(serviceErrorCode === undefined ? {} : { serviceErrorCode }), code, message } };
}

function validation(message: string, fieldPath: string): Answer {
  return {
    status: 422,
    body: {
      errorDetailType: 'com.linkedin.common.error.BadRequest',
      code: 'UNPROCESSABLE_ENTITY',
      message,
      errorDetails: { inputErrors: [{ description: message, input: { inputPath: { fieldPath } }, code: 'INVALID_VALUE' }] },
      status: 422,
    },
  };
}

const RESERVED = new Set(['|', '{', '}', '@', '[', ']', '(', ')', '<', '>', '#', '\\', '*', '_', '~']);

/** Renders little text as a reader sees it; throws on an unescaped reserved character. */
export function renderLittleText(source: string): string {
  let out = '';
  let i = 0;
  const unescapeRun = (text: string): string => {
    let r = '';
    for (let j = 0; j < text.length; j++) {
      const c = text[j]!;
      if (c === '\\' && j + 1 < text.length && RESERVED.has(text[j + 1]!)) {
        r += text[++j]!;
      } else if (RESERVED.has(c)) {
        throw new Error(`unescaped reserved character "${c}"`);
      } else r += c;
    }
    return r;
  };
  while (i < source.length) {
    const c = source[i]!;
    if (c === '\\') {
      const next = source[i + 1];
      if (next === undefined || !RESERVED.has(next)) throw new Error('a backslash must escape a reserved character');
      out += next;
      i += 2;
    } else if (c === '{') {
      const m = /^\{hashtag\|\\#\|((?:\\.|[^\\{}|])+)\}/u.exec(source.slice(i));
      if (!m) throw new Error('unescaped "{" that starts no template');
      out += `#${unescapeRun(m[1]!)}`;
      i += m[0].length;
    } else if (RESERVED.has(c)) {
      throw new Error(`unescaped reserved character "${c}" at ${i}`);
    } else {
      out += c;
      i += 1;
    }
  }
  return out;
}

export async function startLinkedInSim(options: LinkedInSimOptions = {}): Promise<LinkedInSim> {
  const now = options.now ?? (() => Date.now());
  const cfg = {
    activeVersions: new Set(options.activeVersions ?? ['202509', '202510', '202511']),
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 60 * 86_400,
    refreshTokenTtlSeconds: options.refreshTokenTtlSeconds ?? 365 * 86_400,
    partBytes: options.partBytes ?? 4_194_304,
    minFileBytes: options.minFileBytes ?? 75 * 1024,
    maxFileBytes: options.maxFileBytes ?? 500 * 1024 * 1024,
    uploadUrlTtlSeconds: options.uploadUrlTtlSeconds ?? 3600,
    processingReads: options.processingReads ?? 1,
    indexDelayMs: options.indexDelayMs ?? 0,
    dailyPostLimit: options.dailyPostLimit ?? 150,
  };
  const client = options.client ?? { clientId: 'reelay-li-client', clientSecret: 'reelay-li-secret' };

  const members = new Map<string, { adminOf: Set<string> }>();
  const accessTokens = new Map<string, { member: string; scopes: Set<string>; expiresAt: number; revoked: boolean }>();
  const refreshTokens = new Map<string, { member: string; scopes: Set<string>; expiresAt: number }>();
  const videos = new Map<string, SimVideo>();
  const uploads = new Map<string, { video: string; index: number; sig: string }>();
  const posts: SimPost[] = [];
  const requests: SimRequest[] = [];
  const faults: (LinkedInFault & { seen: number; applied: number })[] = [];
  const daily = new Map<string, number>();
  const hung = new Set<ServerResponse>();
  let nextFailure: string | null = null;
  let nextShare = 7_100_000_000_000_000_000n;
  let nextOrg = 10_000_000;

  const id = (bytes = 12) => randomBytes(bytes).toString('base64url');
  let baseUrl = '';
  let publicUrl: string | undefined;

  function issue(member: string, scopes: Set<string>, withRefresh: boolean, ttlSeconds = cfg.accessTokenTtlSeconds) {
    const accessToken = `AQV${id(24)}`;
    const expiresAt = now() + ttlSeconds * 1000;
    accessTokens.set(accessToken, { member, scopes, expiresAt, revoked: false });
    let refreshToken: string | undefined;
    let refreshExpiresAt: number | undefined;
    if (withRefresh) {
      refreshToken = `AQX${id(24)}`;
      refreshExpiresAt = now() + cfg.refreshTokenTtlSeconds * 1000;
      refreshTokens.set(refreshToken, { member, scopes, expiresAt: refreshExpiresAt });
    }
    return { accessToken, expiresAt, refreshToken, refreshExpiresAt };
  }

  function authenticate(req: IncomingMessage): { member: string; scopes: Set<string> } {
    const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    const entry = match ? accessTokens.get(match[1]!) : undefined;
    if (!entry) throw new SimError(restError(401, 'INVALID_ACCESS_TOKEN', 'Invalid access token', 65600));
    if (entry.revoked) throw new SimError(restError(401, 'REVOKED_ACCESS_TOKEN', 'The token used in the request has been revoked by the user', 65601));
    if (entry.expiresAt <= now()) throw new SimError(restError(401, 'EXPIRED_ACCESS_TOKEN', 'The token used in the request has expired', 65602));
    return { member: entry.member, scopes: entry.scopes };
  }

  function requireRestHeaders(req: IncomingMessage): void {
    const version = req.headers['linkedin-version'];
    if (typeof version !== 'string' || version === '') {
      throw new SimError(restError(400, 'VERSION_MISSING', 'A version must be present. Please specify a version by adding the LinkedIn-Version header.'));
    }
    if (!cfg.activeVersions.has(version)) throw new SimError(restError(426, 'NONEXISTENT_VERSION', `Requested version ${version} is not active`));
    if (req.headers['x-restli-protocol-version'] !== '2.0.0') {
      throw new SimError(restError(400, 'ILLEGAL_ARGUMENT', 'X-Restli-Protocol-Version 2.0.0 is required for this resource', 100));
    }
  }

  /** May `member` (with `scopes`) act as `author`: itself with w_member_social, or a page it administers. */
  function requireWrite(member: string, scopes: Set<string>, author: unknown, path: string): string {
    if (typeof author !== 'string' || !/^urn:li:(person|organization):[A-Za-z0-9_-]+$/.test(author)) throw new SimError(validation(`${path} is not a valid person or organization URN`, path));
    if (author.startsWith('urn:li:person:')) {
      if (author !== member) throw new SimError(restError(403, 'ACCESS_DENIED', `Member is not authorized to act as ${author}`, 100));
      if (!scopes.has('w_member_social')) throw new SimError(restError(403, 'ACCESS_DENIED', 'Not enough permissions to access: w_member_social', 100));
    } else {
      if (!scopes.has('w_organization_social')) throw new SimError(restError(403, 'ACCESS_DENIED', 'Not enough permissions to access: w_organization_social', 100));
      if (!members.get(member)?.adminOf.has(author)) throw new SimError(restError(403, 'ACCESS_DENIED', `Member is not an ADMINISTRATOR or DIRECT_SPONSORED_CONTENT_POSTER of ${author}`, 100));
    }
    return author;
  }

  function routeOf(method: string, url: URL): { route: LinkedInRoute; id?: string } | null {
    const path = url.pathname;
    if (method === 'POST' && path === '/oauth/v2/accessToken') return { route: 'token' };
    if (method === 'POST' && path === '/rest/videos' && url.searchParams.get('action') === 'initializeUpload') return { route: 'initialize' };
    if (method === 'POST' && path === '/rest/videos' && url.searchParams.get('action') === 'finalizeUpload') return { route: 'finalize' };
    const v = /^\/rest\/videos\/([^/]+)$/.exec(path);
    if (method === 'GET' && v) return { route: 'video', id: v[1]! };
    const p = /^\/dms-uploads\/([A-Za-z0-9_-]+)$/.exec(path);
    if (method === 'PUT' && p) return { route: 'part', id: p[1]! };
    if (method === 'POST' && path === '/rest/posts') return { route: 'create' };
    if (method === 'GET' && path === '/rest/posts') return { route: 'find' };
    if (method === 'GET' && path === '/v2/userinfo') return { route: 'userinfo' };
    return null;
  }

  function takeFault(route: LinkedInRoute): LinkedInFault | null {
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

  async function drain(req: IncomingMessage): Promise<number> {
    let bytes = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) bytes += chunk.length;
    return bytes;
  }

  async function readJson(req: IncomingMessage, log: SimRequest): Promise<Record<string, unknown>> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) {
      log.bytes += chunk.length;
      if (log.bytes <= 1024 * 1024) chunks.push(chunk);
    }
    if (type !== 'application/json') throw new SimError(restError(415, 'UNSUPPORTED_MEDIA_TYPE', `Unsupported Content-Type: ${type || '(none)'}`));
    if (log.bytes > 1024 * 1024) throw new SimError(restError(413, 'REQUEST_ENTITY_TOO_LARGE', 'Request body too large'));
    try {
      const value = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
      return value as Record<string, unknown>;
    } catch {
      throw new SimError(restError(400, 'BAD_REQUEST', 'Request body is not valid JSON'));
    }
  }

  // ---- routes ------------------------------------------------------------------------------------

  async function tokenRoute(req: IncomingMessage, log: SimRequest): Promise<Answer> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) {
      log.bytes += chunk.length;
      chunks.push(chunk);
    }
    if (type !== 'application/x-www-form-urlencoded') return { status: 400, body: { error: 'invalid_request', error_description: 'Content-Type must be application/x-www-form-urlencoded' } };
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    if (form.get('client_id') !== client.clientId || form.get('client_secret') !== client.clientSecret) {
      return { status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed' } };
    }
    if (form.get('grant_type') !== 'refresh_token') return { status: 400, body: { error: 'unsupported_grant_type', error_description: 'grant_type must be refresh_token here' } };
    const entry = refreshTokens.get(form.get('refresh_token') ?? '');
    if (!entry || entry.expiresAt <= now()) {
      return { status: 400, body: { error: 'invalid_request', error_description: 'The provided authorization grant or refresh token is invalid, expired or revoked' } };
    }
    log.member = entry.member;
    const accessToken = `AQV${id(24)}`;
    accessTokens.set(accessToken, { member: entry.member, scopes: entry.scopes, expiresAt: now() + cfg.accessTokenTtlSeconds * 1000, revoked: false });
    // The refresh token keeps its TTL from first consent; LinkedIn reports what is left of it.
    return {
      status: 200,
      body: {
        access_token: accessToken,
        expires_in: cfg.accessTokenTtlSeconds,
        refresh_token: form.get('refresh_token'),
        refresh_token_expires_in: Math.floor((entry.expiresAt - now()) / 1000),
        scope: [...entry.scopes].join(','),
      },
    };
  }

  async function initializeRoute(req: IncomingMessage, log: SimRequest, member: string, scopes: Set<string>): Promise<Answer> {
    const body = await readJson(req, log);
    const request = body.initializeUploadRequest as Record<string, unknown> | undefined;
    if (!request || typeof request !== 'object') throw new SimError(validation('initializeUploadRequest is required', '/initializeUploadRequest'));
    const owner = requireWrite(member, scopes, request.owner, '/initializeUploadRequest/owner');
    const size = request.fileSizeBytes;
    if (typeof size !== 'number' || !Number.isInteger(size)) throw new SimError(validation('fileSizeBytes is required', '/initializeUploadRequest/fileSizeBytes'));
    if (size < cfg.minFileBytes || size > cfg.maxFileBytes) throw new SimError(restError(400, 'BAD_REQUEST', `fileSizeBytes ${size} is outside ${cfg.minFileBytes}-${cfg.maxFileBytes}`));
    if (request.uploadCaptions !== false || request.uploadThumbnail !== false) {
      throw new SimError(validation('uploadCaptions and uploadThumbnail must be set (false: none is sent)', '/initializeUploadRequest/uploadCaptions'));
    }
    const urn = `urn:li:video:C5${id(12)}`;
    const parts: SimVideo['parts'] = [];
    for (let first = 0; first < size; first += cfg.partBytes) parts.push({ first, last: Math.min(size, first + cfg.partBytes) - 1, sha256: null, etag: null, bytes: 0 });
    const expiresAt = now() + cfg.uploadUrlTtlSeconds * 1000;
    const video: SimVideo = {
      urn,
      owner,
      size,
      uploadToken: parts.length > 1 ? id(16) : '',
      expiresAt,
      parts,
      status: 'WAITING_UPLOAD',
      reads: 0,
      failWith: null,
      sha256: null,
      bytes: 0,
      seqHash: createHash('sha256'),
      nextSeq: 0,
      broken: false,
    };
    videos.set(urn, video);
    const instructions = parts.map((part, index) => {
      const key = id(16);
      const sig = id(16);
      uploads.set(key, { video: urn, index, sig });
      return { uploadUrl: `${publicUrl ?? baseUrl}/dms-uploads/${key}?ca=vector_feedshare&cn=uploads&sig=${sig}`, firstByte: part.first, lastByte: part.last };
    });
    return { status: 200, body: { value: { uploadUrlsExpireAt: expiresAt, video: urn, uploadInstructions: instructions, uploadToken: video.uploadToken } } };
  }

  async function partRoute(req: IncomingMessage, url: URL, key: string, log: SimRequest): Promise<Answer> {
    const upload = uploads.get(key);
    if (!upload || url.searchParams.get('sig') !== upload.sig) throw new SimError({ status: 403, body: 'Forbidden: bad upload signature' });
    const video = videos.get(upload.video)!;
    log.part = upload.index;
    if (now() >= video.expiresAt) throw new SimError({ status: 403, body: 'Forbidden: upload URL expired' });
    if (video.status !== 'WAITING_UPLOAD') throw new SimError(restError(400, 'BAD_REQUEST', 'Video is not waiting for an upload'));
    const part = video.parts[upload.index]!;
    const expected = part.last - part.first + 1;
    const type = (req.headers['content-type'] ?? '').toLowerCase();
    if (type !== 'application/octet-stream') throw new SimError(restError(400, 'BAD_REQUEST', `Content-Type must be application/octet-stream, got ${type || '(none)'}`));
    if (req.headers['transfer-encoding'] || req.headers['content-length'] !== String(expected)) {
      throw new SimError(restError(400, 'BAD_REQUEST', `Content-Length must be ${expected} (bytes ${part.first}-${part.last})`));
    }
    const hash = createHash('sha256');
    const sequential = upload.index === video.nextSeq;
    let bytes = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      log.bytes = bytes;
      hash.update(chunk);
      if (sequential) video.seqHash.update(chunk);
    }
    if (bytes !== expected) {
      if (sequential) video.broken = true;
      throw new SimError(restError(400, 'BAD_REQUEST', `Received ${bytes} bytes for a part of ${expected}`));
    }
    const sha256 = hash.digest('hex');
    if (sequential) video.nextSeq += 1;
    else if (upload.index > video.nextSeq || (part.sha256 !== null && part.sha256 !== sha256)) video.broken = true;
    if (part.sha256 === null) video.bytes += bytes;
    part.sha256 = sha256;
    part.bytes = bytes;
    part.etag = `/${Buffer.from(sha256.slice(0, 24), 'hex').toString('base64')}${id(3)}`;
    return { status: 200, headers: { etag: part.etag } };
  }

  async function finalizeRoute(req: IncomingMessage, log: SimRequest, member: string, scopes: Set<string>): Promise<Answer> {
    const body = await readJson(req, log);
    const request = body.finalizeUploadRequest as Record<string, unknown> | undefined;
    if (!request || typeof request !== 'object') throw new SimError(validation('finalizeUploadRequest is required', '/finalizeUploadRequest'));
    const video = typeof request.video === 'string' ? videos.get(request.video) : undefined;
    if (!video) throw new SimError(restError(404, 'NOT_FOUND', `Video ${String(request.video)} does not exist`));
    requireWrite(member, scopes, video.owner, '/finalizeUploadRequest/video');
    if (video.status !== 'WAITING_UPLOAD') throw new SimError(restError(400, 'BAD_REQUEST', `Video ${video.urn} is already finalized`));
    if (request.uploadToken !== video.uploadToken) throw new SimError(restError(400, 'BAD_REQUEST', 'uploadToken does not match'));
    const ids = request.uploadedPartIds;
    if (!Array.isArray(ids) || ids.length !== video.parts.length || video.parts.some((p, i) => p.etag === null || ids[i] !== p.etag)) {
      throw new SimError(restError(400, 'BAD_REQUEST', 'uploadedPartIds must list the ETag of every part, in order'));
    }
    video.status = 'PROCESSING';
    video.reads = 0;
    video.sha256 = video.broken || video.nextSeq !== video.parts.length ? null : video.seqHash.digest('hex');
    video.failWith = nextFailure;
    nextFailure = null;
    return { status: 200 };
  }

  function videoRoute(rawId: string, member: string, scopes: Set<string>): Answer {
    if (rawId.includes(':')) throw new SimError(restError(400, 'BAD_REQUEST', 'URNs in the path must be URL-encoded'));
    const video = videos.get(decodeURIComponent(rawId));
    if (!video) throw new SimError(restError(404, 'NOT_FOUND', 'Not Found'));
    requireWrite(member, scopes, video.owner, '/id');
    if (video.status === 'PROCESSING') {
      video.reads += 1;
      if (video.reads > cfg.processingReads) video.status = video.failWith ? 'PROCESSING_FAILED' : 'AVAILABLE';
    }
    return {
      status: 200,
      body: {
        id: video.urn,
        owner: video.owner,
        status: video.status,
        ...(video.status === 'PROCESSING_FAILED' ? { processingFailureReason: video.failWith } : {}),
        ...(video.status === 'AVAILABLE' ? { duration: 20000, aspectRatioWidth: 9, aspectRatioHeight: 16, downloadUrl: `${publicUrl ?? baseUrl}/dms/${id(8)}` } : {}),
      },
    };
  }

  async function createRoute(req: IncomingMessage, log: SimRequest, member: string, scopes: Set<string>): Promise<Answer> {
    const body = await readJson(req, log);
    const author = requireWrite(member, scopes, body.author, '/author');
    if (typeof body.commentary !== 'string') throw new SimError(validation('commentary is required', '/commentary'));
    let text: string;
    try {
      text = renderLittleText(body.commentary);
    } catch (error) {
      throw new SimError(validation(`commentary is not valid little text: ${(error as Error).message}`, '/commentary'));
    }
    if ([...text].length > 3000) throw new SimError(validation('commentary is longer than 3000 characters', '/commentary'));
    if (!['PUBLIC', 'CONNECTIONS', 'LOGGED_IN'].includes(String(body.visibility))) throw new SimError(validation('visibility is invalid', '/visibility'));
    const distribution = body.distribution as Record<string, unknown> | undefined;
    if (!distribution || !['MAIN_FEED', 'NONE'].includes(String(distribution.feedDistribution))) throw new SimError(validation('distribution.feedDistribution is required', '/distribution'));
    if (body.lifecycleState !== 'PUBLISHED') throw new SimError(validation('lifecycleState must be PUBLISHED', '/lifecycleState'));
    const mediaId = (body.content as { media?: { id?: unknown } } | undefined)?.media?.id;
    const video = typeof mediaId === 'string' ? videos.get(mediaId) : undefined;
    if (!video) throw new SimError(validation(`content.media.id ${String(mediaId)} is not a video`, '/content/media/id'));
    if (video.owner !== author) throw new SimError(restError(403, 'ACCESS_DENIED', 'Accessing this video resource is forbidden', 100));
    if (video.status !== 'AVAILABLE') throw new SimError(restError(400, 'BAD_REQUEST', `Video ${video.urn} is not AVAILABLE (status ${video.status})`));
    const day = `${author}:${new Date(now()).toISOString().slice(0, 10)}`;
    const used = daily.get(day) ?? 0;
    if (used >= cfg.dailyPostLimit) throw new SimError(restError(429, 'TOO_MANY_REQUESTS', 'Resource level throttle MEMBER DAY limit for calls to this resource is reached.', 101));
    const duplicate = posts.find((p) => p.author === author && (p.video === video.urn || (p.commentary === body.commentary && text !== '')));
    if (duplicate) throw new SimError(validation(`Content is a duplicate of ${duplicate.urn}`, '/content'));
    daily.set(day, used + 1);
    const urn = `urn:li:share:${nextShare++}`;
    posts.push({ urn, author, commentary: body.commentary, text, video: video.urn, createdAt: now(), visibleAt: now() + cfg.indexDelayMs, body });
    return { status: 201, headers: { 'x-restli-id': urn, 'x-linkedin-id': urn } };
  }

  function findRoute(url: URL, member: string, scopes: Set<string>): Answer {
    const raw = url.search;
    if (/author=urn:/.test(raw)) throw new SimError(restError(400, 'BAD_REQUEST', 'URNs in the query must be URL-encoded'));
    const q = url.searchParams;
    if (q.get('q') !== 'author') throw new SimError(restError(400, 'BAD_REQUEST', 'Unsupported finder; use q=author'));
    const author = q.get('author') ?? '';
    if (author.startsWith('urn:li:person:')) {
      if (author !== member || !scopes.has('r_member_social')) throw new SimError(restError(403, 'ACCESS_DENIED', 'Not enough permissions to access: r_member_social', 100));
    } else if (author.startsWith('urn:li:organization:')) {
      if (!scopes.has('r_organization_social') || !members.get(member)?.adminOf.has(author)) throw new SimError(restError(403, 'ACCESS_DENIED', 'Not enough permissions to access: r_organization_social', 100));
    } else throw new SimError(restError(400, 'BAD_REQUEST', 'author must be a person or organization URN'));
    const count = Number(q.get('count') ?? '10');
    const start = Number(q.get('start') ?? '0');
    if (!Number.isInteger(count) || count < 1 || count > 100) throw new SimError(restError(400, 'BAD_REQUEST', 'count must be 1-100'));
    if (!Number.isInteger(start) || start < 0) throw new SimError(restError(400, 'BAD_REQUEST', 'start must be >= 0'));
    const sortBy = q.get('sortBy') ?? 'LAST_MODIFIED';
    if (!['LAST_MODIFIED', 'CREATED'].includes(sortBy)) throw new SimError(restError(400, 'BAD_REQUEST', 'sortBy must be LAST_MODIFIED or CREATED'));
    const visible = posts.filter((p) => p.author === author && p.visibleAt <= now()).sort((a, b) => b.createdAt - a.createdAt);
    const page = visible.slice(start, start + count);
    return {
      status: 200,
      body: {
        paging: { start, count, links: [] },
        elements: page.map((p) => ({
          id: p.urn,
          author: p.author,
          commentary: p.commentary,
          content: { media: { id: p.video } },
          createdAt: p.createdAt,
          lastModifiedAt: p.createdAt,
          publishedAt: p.createdAt,
          lifecycleState: 'PUBLISHED',
          visibility: 'PUBLIC',
          distribution: { feedDistribution: 'MAIN_FEED', targetEntities: [], thirdPartyDistributionChannels: [] },
        })),
      },
    };
  }

  function userinfoRoute(member: string, scopes: Set<string>): Answer {
    if (!scopes.has('openid')) throw new SimError(restError(403, 'ACCESS_DENIED', 'Not enough permissions to access: userinfo.GET.NO_VERSION', 100));
    const sub = member.slice('urn:li:person:'.length);
    const profile = scopes.has('profile') ? { name: `Member ${sub}`, given_name: 'Member', family_name: sub, locale: { country: 'US', language: 'en' } } : {};
    return { status: 200, body: { sub, ...profile } };
  }

  // ---- the server --------------------------------------------------------------------------------

  function send(res: ServerResponse, answer: Answer): void {
    const text = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    const headers: Record<string, string> = { ...(text && typeof answer.body !== 'string' ? { 'content-type': 'application/json' } : {}), ...answer.headers };
    res.writeHead(answer.status, headers).end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const matched = routeOf(method, url);
    const log: SimRequest = { route: matched?.route ?? 'unknown', method, path: url.pathname, query: url.search, status: 0, member: null, bytes: 0, at: now(), headers: { ...req.headers } };
    requests.push(log);
    if (!matched) {
      log.bytes = await drain(req);
      log.status = 404;
      return send(res, restError(404, 'NOT_FOUND', `No resource for ${method} ${url.pathname}`));
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
      return send(res, { status: log.status, body: fault.body ?? restError(log.status, 'SERVICE_UNAVAILABLE', 'Service Unavailable').body, headers: fault.headers ?? {} });
    }

    let answer: Answer;
    try {
      if (route === 'token') answer = await tokenRoute(req, log);
      else if (route === 'part') answer = await partRoute(req, url, matched.id!, log);
      else {
        if (fault?.kind === 'expireToken') {
          const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
          const entry = bearer ? accessTokens.get(bearer) : undefined;
          if (entry) entry.expiresAt = now();
        }
        const { member, scopes } = authenticate(req);
        log.member = member;
        // /v2/userinfo is the unversioned OpenID endpoint: no LinkedIn-Version.
        if (route !== 'userinfo') requireRestHeaders(req);
        if (fault?.kind === 'rateLimit') {
          throw new SimError({
            ...restError(429, 'TOO_MANY_REQUESTS', fault.retryAfterSeconds === undefined ? 'Resource level throttle APPLICATION DAY limit for calls to this resource is reached.' : 'Too many requests', 101),
            headers: fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) },
          });
        }
        switch (route) {
          case 'initialize':
            answer = await initializeRoute(req, log, member, scopes);
            break;
          case 'finalize':
            answer = await finalizeRoute(req, log, member, scopes);
            break;
          case 'video':
            log.bytes = await drain(req);
            answer = videoRoute(matched.id!, member, scopes);
            break;
          case 'create':
            answer = await createRoute(req, log, member, scopes);
            break;
          case 'find':
            log.bytes = await drain(req);
            answer = findRoute(url, member, scopes);
            break;
          case 'userinfo':
            log.bytes = await drain(req);
            answer = userinfoRoute(member, scopes);
            break;
        }
      }
    } catch (error) {
      if (!(error instanceof SimError)) throw error;
      if (!req.readableEnded) log.bytes += await drain(req);
      answer = error.answer;
    }
    if (fault?.kind === 'resetAfterCommit') {
      log.status = 'reset';
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'respondAfterCommit') {
      answer = { status: fault.status ?? 503, body: fault.body ?? restError(fault.status ?? 503, 'SERVICE_UNAVAILABLE', 'Unable to obtain activity').body, headers: fault.headers ?? {} };
    }
    log.status = answer.status;
    send(res, answer);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, restError(500, 'INTERNAL_SERVER_ERROR', error instanceof Error ? error.message : String(error)));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: baseUrl,
    get publicUrl() {
      return publicUrl ?? baseUrl;
    },
    set publicUrl(value) {
      publicUrl = value;
    },
    tokenUrl: `${baseUrl}/oauth/v2/accessToken`,
    addMember(memberOptions = {}) {
      const personUrn = `urn:li:person:${id(7)}`;
      members.set(personUrn, { adminOf: new Set(memberOptions.adminOf ?? []) });
      const scopes = new Set(memberOptions.scopes ?? ['openid', 'profile', 'w_member_social']);
      const issued = issue(personUrn, scopes, memberOptions.refreshToken ?? false, memberOptions.expiresInSeconds);
      return {
        personUrn,
        accessToken: issued.accessToken,
        refreshToken: issued.refreshToken,
        expiresAt: new Date(issued.expiresAt),
        refreshTokenExpiresAt: issued.refreshExpiresAt === undefined ? undefined : new Date(issued.refreshExpiresAt),
        scope: [...scopes].join(' '),
      };
    },
    addOrganization() {
      return `urn:li:organization:${nextOrg++}`;
    },
    expireAccessToken(token) {
      const entry = accessTokens.get(token);
      if (entry) entry.expiresAt = now();
    },
    revokeAccessToken(token) {
      const entry = accessTokens.get(token);
      if (entry) entry.revoked = true;
    },
    fault(fault) {
      faults.push({ ...fault, seen: 0, applied: 0 });
    },
    clearFaults() {
      faults.length = 0;
    },
    failNextProcessing(reason = 'Video format is not supported') {
      nextFailure = reason;
    },
    get posts() {
      return posts;
    },
    get videos() {
      return [...videos.values()];
    },
    get requests() {
      return requests;
    },
    count(route) {
      return requests.filter((r) => r.route === route).length;
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
