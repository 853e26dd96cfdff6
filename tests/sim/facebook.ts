/**
 * A wire-level simulator of Facebook Page Reels publishing (reference §3A) on 127.0.0.1: Graph
 * `video_reels` start/finish, rupload `video-upload` (bytes with `offset`/`file_size`, or
 * `file_url` that it really fetches), the video status node, Page tokens from user tokens and
 * `fb_exchange_token`, and the Page node read (`GET /{page-id}?fields=id,name`) with the Page token or
 * a user token managing the Page, the daily account check's read. It refuses what Facebook refuses (wrong token, wrong offset, finish before the
 * upload or twice, the 30-reels-per-24-h cap) in Graph's error shape, streams and hashes bodies, and
 * injects faults on demand.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

export const SIM_VERSION = 'v23.0';

export type Route = 'exchange' | 'page' | 'pageRead' | 'start' | 'upload' | 'finish' | 'status';

export type Fault =
  | { kind: 'error'; status: number; body: unknown; headers?: Record<string, string> }
  /** Destroys the socket before answering (after reading `afterBytes` of an upload body). */
  | { kind: 'reset'; afterBytes?: number }
  /** Does the work, then destroys the socket instead of answering. */
  | { kind: 'lost' }
  | { kind: 'hang' };

export interface SimPage {
  pageId: string;
  name: string;
  userToken: string;
  userTokenExpiresAt: Date;
  pageToken: string;
}

export interface SimVideo {
  id: string;
  pageId: string;
  fileSize: number | null;
  bytes: number;
  hash: ReturnType<typeof createHash>;
  sha256: string | null;
  viaFileUrl: boolean;
  finishCalls: number;
  finishedAt: number | null;
  description: string | null;
  pollsLeft: number;
  failProcessing: boolean;
  published: boolean;
}

export interface FacebookSimOptions {
  client: { clientId: string; clientSecret: string };
  /** Status reads that still answer "processing" after finish. */
  processingPolls?: number;
  reelsPerDay?: number;
  now?: () => number;
}

export interface LoggedRequest {
  route: Route | 'unknown';
  method: string;
  status: number;
  offset?: number;
  bytes?: number;
}

export interface FacebookSim {
  url: string;
  /** The origin of the upload URLs it hands out: its own unless a proxy in front of it is set here. */
  publicUrl: string;
  requests: LoggedRequest[];
  /** The largest upload body received. */
  maxChunk(): number;
  videos: SimVideo[];
  addPage(): SimPage;
  /** The Page token stops working (as after a password change): a new one is issued on request. */
  expirePageToken(page: SimPage): void;
  revokeUser(page: SimPage): void;
  fault(route: Route, fault: Fault, times?: number): void;
  failNextProcessing(): void;
  count(route: Route): number;
  published(): SimVideo[];
  /** Records a reel published `agoMs` ago without the API, to fill the daily cap. */
  seedPublished(page: SimPage, n: number, agoMs?: number): void;
  close(): Promise<void>;
}

function graphError(res: ServerResponse, status: number, code: number, message: string, extra: Record<string, unknown> = {}): void {
  send(res, status, { error: { message, type: code === 190 ? 'OAuthException' : 'GraphMethodException', code, fbtrace_id: randomBytes(6).toString('hex'), ...extra } });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readSmallBody(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) {
    text += (chunk as Buffer).toString();
    if (text.length > 64 * 1024) throw new Error('body too large');
  }
  return text;
}

export async function startFacebookSim(options: FacebookSimOptions): Promise<FacebookSim> {
  const now = options.now ?? (() => Date.now());
  const cap = options.reelsPerDay ?? 30;
  const processingPolls = options.processingPolls ?? 0;
  const pages = new Map<string, SimPage>();
  const revokedUsers = new Set<string>();
  const videos: SimVideo[] = [];
  const seeded: { pageId: string; at: number }[] = [];
  const requests: LoggedRequest[] = [];
  const faults = new Map<Route, Fault[]>();
  const sockets = new Set<Socket>();
  let failProcessing = false;
  let maxChunk = 0;
  let nextId = 1000;
  let url = '';
  let publicUrl: string | undefined;

  const pageByToken = (token: string | null): SimPage | undefined => [...pages.values()].find((p) => p.pageToken === token);
  const pageByUser = (token: string | null): SimPage | undefined =>
    [...pages.values()].find((p) => p.userToken === token && !revokedUsers.has(token) && p.userTokenExpiresAt.getTime() > now());

  function takeFault(route: Route): Fault | undefined {
    const list = faults.get(route);
    return list?.shift();
  }

  function statusBody(video: SimVideo): unknown {
    const uploaded = video.fileSize !== null && video.bytes === video.fileSize;
    const finished = video.finishedAt !== null;
    let processing = 'not_started';
    let publishing = 'not_started';
    let videoStatus = uploaded ? 'upload_complete' : 'uploading';
    const errors: unknown[] = [];
    if (finished) {
      if (video.failProcessing) {
        processing = 'error';
        videoStatus = 'error';
        errors.push({ code: 1363008, message: 'The video file could not be decoded' });
      } else if (video.pollsLeft > 0) {
        processing = 'in_progress';
        videoStatus = 'processing';
      } else {
        processing = 'complete';
        publishing = 'complete';
        videoStatus = 'ready';
        video.published = true;
      }
    }
    return {
      id: video.id,
      permalink_url: `/reel/${video.id}`,
      status: {
        video_status: videoStatus,
        uploading_phase: { status: uploaded ? 'complete' : video.bytes > 0 ? 'in_progress' : 'not_started', bytes_transferred: video.bytes },
        processing_phase: { status: processing, ...(errors.length ? { errors } : {}) },
        publishing_phase: { status: publishing, ...(publishing === 'complete' ? { publish_status: 'published', publish_time: Math.floor(now() / 1000) } : {}) },
      },
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse, log: LoggedRequest): Promise<void> {
    const target = new URL(req.url ?? '/', url);
    const parts = target.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';

    // ---- rupload ------------------------------------------------------------------------------
    if (parts[0] === 'video-upload') {
      log.route = 'upload';
      if (method !== 'POST' || parts[1] !== SIM_VERSION || parts.length !== 3) return graphError(res, 404, 100, 'Unknown path');
      const video = videos.find((v) => v.id === parts[2]);
      const page = video ? pages.get(video.pageId) : undefined;
      const auth = req.headers.authorization ?? '';
      if (!auth.startsWith('OAuth ')) return send(res, 401, { debug_info: { retriable: false, type: 'AuthError', message: 'Authorization: OAuth {token} required' } });
      if (!video || !page) return send(res, 404, { debug_info: { retriable: false, type: 'NotFoundError', message: 'Unknown video' } });
      if (auth.slice(6) !== page.pageToken) return graphError(res, 401, 190, 'Error validating access token: Session has expired', { error_subcode: 463 });
      if (video.finishedAt !== null) return send(res, 400, { debug_info: { retriable: false, type: 'ProcessingFailedError', message: 'Video already finished' } });
      const fault = takeFault('upload');
      const fileUrl = req.headers.file_url;
      if (typeof fileUrl === 'string') {
        if (fault) return applyFault(fault, req, res, 'upload', log);
        await pullFileUrl(video, fileUrl, res);
        return;
      }
      const offset = Number(req.headers.offset);
      const fileSize = Number(req.headers.file_size);
      log.offset = offset;
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(fileSize) || fileSize <= 0) {
        return send(res, 400, { debug_info: { retriable: false, type: 'BadRequest', message: 'offset and file_size headers are required' } });
      }
      if (video.fileSize !== null && video.fileSize !== fileSize) return send(res, 400, { debug_info: { retriable: false, type: 'BadRequest', message: 'file_size changed' } });
      if (offset !== video.bytes) return send(res, 400, { debug_info: { retriable: false, type: 'BadRequest', message: `offset ${offset} does not match ${video.bytes} bytes received` } });
      const length = Number(req.headers['content-length']);
      // A body may stop short of the end (a chunk); the next POST resumes at the new offset.
      if (!Number.isSafeInteger(length) || length <= 0 || length > fileSize - offset) {
        return send(res, 400, { debug_info: { retriable: false, type: 'BadRequest', message: 'Content-Length must be 1 to file_size - offset' } });
      }
      if (fault && fault.kind !== 'reset') return applyFault(fault, req, res, 'upload', log);
      video.fileSize = fileSize;
      for await (const chunk of req) {
        const buf = chunk as Buffer;
        const room = fault?.kind === 'reset' ? (fault.afterBytes ?? 0) - (video.bytes - offset) : buf.length;
        const take = Math.max(0, Math.min(buf.length, room));
        video.hash.update(buf.subarray(0, take));
        video.bytes += take;
        if (take < buf.length) {
          log.status = 0;
          req.socket.destroy();
          return;
        }
      }
      if (video.bytes - offset !== length) return send(res, 400, { debug_info: { retriable: false, type: 'BadRequest', message: 'body shorter than Content-Length' } });
      log.bytes = length;
      maxChunk = Math.max(maxChunk, length);
      if (video.bytes === fileSize) video.sha256 = video.hash.copy().digest('hex');
      return send(res, 200, { success: true });
    }

    if (parts[0] !== SIM_VERSION) return graphError(res, 404, 100, 'Unknown path');
    const rest = parts.slice(1);

    // ---- token exchange -------------------------------------------------------------------------
    if (rest.join('/') === 'oauth/access_token') {
      log.route = 'exchange';
      const q = target.searchParams;
      if (method !== 'GET') return graphError(res, 400, 100, 'Unsupported method');
      const fault = takeFault('exchange');
      if (fault) return applyFault(fault, req, res, 'exchange', log);
      if (q.get('grant_type') !== 'fb_exchange_token' || q.get('client_id') !== options.client.clientId || q.get('client_secret') !== options.client.clientSecret) {
        return graphError(res, 400, 101, 'Error validating client secret.');
      }
      const page = pageByUser(q.get('fb_exchange_token'));
      if (!page) return graphError(res, 400, 190, 'Error validating access token: The session has been invalidated', { error_subcode: 460 });
      page.userToken = `user-${randomBytes(8).toString('hex')}`;
      page.userTokenExpiresAt = new Date(now() + 60 * 86400_000);
      return send(res, 200, { access_token: page.userToken, token_type: 'bearer', expires_in: 60 * 86400 });
    }

    // ---- video_reels ----------------------------------------------------------------------------
    if (rest.length === 2 && rest[1] === 'video_reels') {
      const page = pages.get(rest[0]!);
      if (method !== 'POST') return graphError(res, 400, 100, 'Unsupported get request.');
      if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return graphError(res, 400, 100, 'Expected a form body');
      const params = new URLSearchParams(await readSmallBody(req));
      const phase = params.get('upload_phase');
      log.route = phase === 'finish' ? 'finish' : 'start';
      if (!page) return graphError(res, 400, 100, 'Unsupported post request. Object does not exist');
      if (params.get('access_token') !== page.pageToken) {
        return pageByUser(params.get('access_token')) ? graphError(res, 400, 200, 'A Page access token is required') : graphError(res, 401, 190, 'Error validating access token: Session has expired', { error_subcode: 463 });
      }
      const fault = takeFault(log.route);
      if (fault && fault.kind !== 'lost') return applyFault(fault, req, res, log.route, log);
      if (phase === 'start') {
        const video: SimVideo = {
          id: String(nextId++), pageId: page.pageId, fileSize: null, bytes: 0, hash: createHash('sha256'), sha256: null, viaFileUrl: false,
          finishCalls: 0, finishedAt: null, description: null, pollsLeft: processingPolls, failProcessing: false, published: false,
        };
        videos.push(video);
        if (fault?.kind === 'lost') return void req.socket.destroy();
        return send(res, 200, { video_id: video.id, upload_url: `${publicUrl ?? url}/video-upload/${SIM_VERSION}/${video.id}` });
      }
      if (phase !== 'finish') return graphError(res, 400, 100, 'Invalid upload_phase');
      const video = videos.find((v) => v.id === params.get('video_id') && v.pageId === page.pageId);
      if (!video) return graphError(res, 400, 100, 'Invalid video_id');
      video.finishCalls++;
      if (video.finishedAt !== null) return graphError(res, 400, 100, 'The video has already been finished');
      if (video.fileSize === null || video.bytes !== video.fileSize) return graphError(res, 400, 100, 'The video upload is not complete');
      if (params.get('video_state') !== 'PUBLISHED') return graphError(res, 400, 100, 'video_state must be PUBLISHED');
      const description = params.get('description') ?? '';
      if ([...description].length > 2200) return graphError(res, 400, 100, 'Description is too long');
      const dayAgo = now() - 86400_000;
      const recent = videos.filter((v) => v.pageId === page.pageId && v.finishedAt !== null && v.finishedAt > dayAgo).length + seeded.filter((s) => s.pageId === page.pageId && s.at > dayAgo).length;
      if (recent >= cap) return graphError(res, 400, 4, `The Page has reached the limit of ${cap} reels published through the API in 24 hours.`, { error_subcode: 2207042 });
      video.finishedAt = now();
      video.description = description;
      if (failProcessing) {
        video.failProcessing = true;
        failProcessing = false;
      }
      if (fault?.kind === 'lost') return void req.socket.destroy();
      return send(res, 200, { success: true });
    }

    // ---- Page token / video status -------------------------------------------------------------
    if (rest.length === 1 && method === 'GET') {
      const id = rest[0]!;
      const token = target.searchParams.get('access_token');
      const fields = target.searchParams.get('fields') ?? '';
      const page = pages.get(id);
      if (page && !fields.split(',').includes('access_token')) {
        log.route = 'pageRead';
        const fault = takeFault('pageRead');
        if (fault) return applyFault(fault, req, res, 'pageRead', log);
        // A stale Page token meets the same refusal as on the video node.
        if (token !== page.pageToken && pageByUser(token) !== page) return graphError(res, 401, 190, 'Error validating access token: Session has expired', { error_subcode: 463 });
        const asked = fields.split(',').filter(Boolean);
        const unknown = asked.find((f) => f !== 'id' && f !== 'name');
        if (unknown !== undefined) return graphError(res, 400, 100, `(#100) Tried accessing nonexisting field (${unknown}) on node type (Page)`);
        return send(res, 200, { id: page.pageId, ...(asked.includes('name') ? { name: page.name } : {}) });
      }
      if (page) {
        log.route = 'page';
        const fault = takeFault('page');
        if (fault) return applyFault(fault, req, res, 'page', log);
        if (!pageByUser(token) || pageByUser(token) !== page) return graphError(res, 400, 190, 'Error validating access token: The user has not authorized application', { error_subcode: 458 });
        if (!fields.split(',').includes('access_token')) return graphError(res, 400, 100, 'fields must include access_token');
        return send(res, 200, { id: page.pageId, name: page.name, access_token: page.pageToken });
      }
      const video = videos.find((v) => v.id === id);
      log.route = 'status';
      if (!video) return graphError(res, 400, 100, 'Unsupported get request. Object does not exist');
      if (token !== pages.get(video.pageId)?.pageToken) return graphError(res, 401, 190, 'Error validating access token: Session has expired', { error_subcode: 463 });
      if (fields !== 'status,permalink_url') return graphError(res, 400, 100, `Unexpected fields ${fields}`);
      const fault = takeFault('status');
      if (fault) return applyFault(fault, req, res, 'status', log);
      const body = statusBody(video);
      if (video.finishedAt !== null && video.pollsLeft > 0) video.pollsLeft--;
      return send(res, 200, body);
    }
    return graphError(res, 404, 100, 'Unknown path');
  }

  /** Meta pulls the file: streamed, counted and hashed; a failed fetch fails the video. */
  async function pullFileUrl(video: SimVideo, fileUrl: string, res: ServerResponse): Promise<void> {
    video.viaFileUrl = true;
    let response: Response;
    try {
      response = await fetch(fileUrl);
    } catch {
      return send(res, 400, { debug_info: { retriable: false, type: 'FetchError', message: 'Could not fetch file_url' } });
    }
    const length = Number(response.headers.get('content-length'));
    if (!response.ok || !(response.headers.get('content-type') ?? '').startsWith('video/') || !Number.isSafeInteger(length) || !response.body) {
      await response.body?.cancel();
      return send(res, 400, { debug_info: { retriable: false, type: 'FetchError', message: `file_url answered ${response.status}` } });
    }
    video.fileSize = length;
    for await (const chunk of response.body) {
      video.hash.update(chunk);
      video.bytes += chunk.length;
    }
    if (video.bytes !== length) return send(res, 400, { debug_info: { retriable: false, type: 'FetchError', message: 'file_url body was short' } });
    video.sha256 = video.hash.copy().digest('hex');
    send(res, 200, { success: true });
  }

  function applyFault(fault: Fault, req: IncomingMessage, res: ServerResponse, route: Route, log: LoggedRequest): void {
    log.route = route;
    if (fault.kind === 'error') {
      req.resume();
      return send(res, fault.status, fault.body, fault.headers);
    }
    if (fault.kind === 'hang') {
      req.resume();
      return;
    }
    log.status = 0;
    req.socket.destroy();
  }

  const server = createServer((req, res) => {
    const log: LoggedRequest = { route: 'unknown', method: req.method ?? '', status: 0 };
    requests.push(log);
    res.on('finish', () => (log.status = res.statusCode));
    handle(req, res, log).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { error: { message: String(error), code: 2, is_transient: true } });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    get publicUrl() {
      return publicUrl ?? url;
    },
    set publicUrl(value) {
      publicUrl = value;
    },
    requests,
    maxChunk: () => maxChunk,
    videos,
    addPage() {
      const page: SimPage = {
        pageId: String(100000 + pages.size),
        name: `Page ${pages.size}`,
        userToken: `user-${randomBytes(8).toString('hex')}`,
        userTokenExpiresAt: new Date(now() + 60 * 86400_000),
        pageToken: `page-${randomBytes(8).toString('hex')}`,
      };
      pages.set(page.pageId, page);
      return page;
    },
    expirePageToken(page) {
      page.pageToken = `page-${randomBytes(8).toString('hex')}`;
    },
    revokeUser(page) {
      revokedUsers.add(page.userToken);
      page.pageToken = `page-${randomBytes(8).toString('hex')}`;
    },
    fault(route, fault, times = 1) {
      const list = faults.get(route) ?? [];
      for (let i = 0; i < times; i++) list.push(fault);
      faults.set(route, list);
    },
    failNextProcessing() {
      failProcessing = true;
    },
    count: (route) => requests.filter((r) => r.route === route).length,
    published: () => videos.filter((v) => v.finishedAt !== null),
    seedPublished(page, n, agoMs = 0) {
      for (let i = 0; i < n; i++) seeded.push({ pageId: page.pageId, at: now() - agoMs });
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
