/**
 * A fault-injecting HTTP proxy on 127.0.0.1 in front of one simulator. Point an adapter's base URL
 * at `proxy.url(simUrl)`; each request is, with probability `rate` (a seeded PRNG, so a failing
 * seed replays), answered with one fault instead of being forwarded cleanly:
 * - `rate_limit`: 429 with Retry-After 1-2 s (no platform error body);
 * - `server_error`: 500, 502 or 503 (no platform error body);
 * - `hang`: nothing, until the client gives up or `hangMs` passes, then the socket is destroyed;
 * - `reset`: the connection is reset before anything is forwarded;
 * - `lost_response`: forwarded, the simulator answers (it committed), then the client socket is
 *   destroyed — the response is lost. The case exactly-once depends on.
 * Bodies stream through both ways (uploads can be megabytes).
 *
 * Absolute URLs a simulator hands out (upload URLs, session URIs) and the PDS endpoint in Bluesky's
 * DID documents must name the proxy too, or those requests would go around it: the harness sets
 * each simulator's and the PDS's `publicUrl` to its proxy (tests/support/chaos-run.ts). Requests
 * that `isUpload` picks out are counted apart, so a run can show the uploads were faulted too.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { seededRandom } from '../../worker/publish.ts';

export const FAULT_KINDS = ['rate_limit', 'server_error', 'hang', 'reset', 'lost_response'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ChaosOptions {
  /** Names the proxy in reports (the platform it stands in front of). */
  name: string;
  /** The simulator's origin (anything after it is ignored). */
  target: string;
  rate: number;
  seed: number;
  kinds?: readonly FaultKind[];
  /** How long a hang holds the request at most (short, so tests stay fast). */
  hangMs?: number;
  /** The requests that carry a video's bytes (by method and path). */
  isUpload?: (method: string, path: string) => boolean;
}

export interface ChaosProxy {
  readonly name: string;
  readonly seed: number;
  /** `simUrl` with the proxy's origin (same path and query). */
  url(simUrl: string): string;
  setRate(rate: number): void;
  readonly counts: Readonly<Record<FaultKind | 'forwarded', number>>;
  /** The `isUpload` requests among them: forwarded cleanly, or answered with a fault (null without `isUpload`). */
  readonly uploads: Readonly<{ forwarded: number; faulted: number }> | null;
  close(): Promise<void>;
}

export async function startChaosProxy(options: ChaosOptions): Promise<ChaosProxy> {
  const target = new URL(options.target);
  const random = seededRandom(options.seed);
  const kinds = options.kinds ?? FAULT_KINDS;
  const hangMs = options.hangMs ?? 3000;
  let rate = options.rate;
  const counts: Record<FaultKind | 'forwarded', number> = { rate_limit: 0, server_error: 0, hang: 0, reset: 0, lost_response: 0, forwarded: 0 };
  const uploads = { forwarded: 0, faulted: 0 };
  const timers = new Set<NodeJS.Timeout>();

  const listener = await listenLocal((req, res) => {
    const upload = options.isUpload?.(req.method ?? 'GET', new URL(req.url ?? '/', 'http://127.0.0.1').pathname) ?? false;
    if (random() >= rate) {
      counts.forwarded++;
      if (upload) uploads.forwarded++;
      return forward(req, res, target, false);
    }
    const kind = kinds[Math.floor(random() * kinds.length)]!;
    counts[kind]++;
    if (upload) uploads.faulted++;
    switch (kind) {
      case 'rate_limit':
        req.resume();
        res.writeHead(429, { 'retry-after': String(1 + Math.floor(random() * 2)), 'content-type': 'text/plain' }).end('Too Many Requests');
        return;
      case 'server_error': {
        req.resume();
        const status = [500, 502, 503][Math.floor(random() * 3)]!;
        res.writeHead(status, { 'content-type': 'text/plain' }).end('chaos');
        return;
      }
      case 'hang': {
        req.resume();
        const timer = setTimeout(() => {
          timers.delete(timer);
          req.socket.destroy();
        }, hangMs);
        timers.add(timer);
        return;
      }
      case 'reset':
        req.socket.resetAndDestroy();
        return;
      case 'lost_response':
        return forward(req, res, target, true);
    }
  });
  const origin = listener.origin;
  return {
    name: options.name,
    seed: options.seed,
    counts,
    uploads: options.isUpload ? uploads : null,
    url(simUrl) {
      const original = new URL(simUrl);
      return `${origin}${original.pathname === '/' && !simUrl.endsWith('/') ? '' : original.pathname}${original.search}`;
    },
    setRate(next) {
      rate = next;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      await listener.close();
    },
  };
}

/**
 * Streams `req` to `target`'s origin (same path) and the answer back. A broken upstream connection
 * breaks the client's too, so a fault behind this hop reaches the client as that fault, never as
 * an answer. `loseResponse`: the upstream finishes its answer (its side is committed), then the
 * client's connection is broken instead.
 */
export function forward(req: IncomingMessage, res: ServerResponse, target: URL, loseResponse: boolean): void {
  const upstream = httpRequest(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
    (answer) => {
      answer.on('error', () => req.socket.destroy());
      if (loseResponse) {
        answer.resume();
        answer.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => req.socket.destroy());
  req.on('aborted', () => upstream.destroy());
  req.pipe(upstream);
}

/** An HTTP server on 127.0.0.1 (a free port); `close` also ends the connections still open. */
export async function listenLocal(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ origin: string; close(): Promise<void> }> {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
