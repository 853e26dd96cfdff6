/**
 * The one HTTP helper every platform adapter uses, so that timeouts, "did it reach the server?"
 * and rate-limit headers are decided in one place.
 *
 * Secrets: request headers and bodies are never logged or copied into errors, and URLs are logged
 * without their query string (some platforms take tokens there).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { PlatformDeps } from '../../core/platforms.ts';
import { PublishError } from '../../core/errors.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A request body that is streamed, never buffered; see `streamBody`. */
export interface StreamedBody {
  readonly kind: 'stream';
  readonly stream: AsyncIterable<Uint8Array>;
  readonly length: number;
  /** Releases the source (an open file) if the request ended before reading all of it. */
  close(): void;
}

export interface HttpRequest {
  method: HttpMethod;
  headers?: Record<string, string>;
  /** A string or bytes is sent as is; a plain value is sent as JSON (and Content-Type set). */
  body?: string | Uint8Array | StreamedBody | JsonBody;
}

/** Marks a value to send as JSON, so strings can still be sent raw. */
export interface JsonBody {
  readonly kind: 'json';
  readonly value: unknown;
}

export function json(value: unknown): JsonBody {
  return { kind: 'json', value };
}

export interface RequestOptions {
  /**
   * Per-request limit on top of `deps.signal`. Defaults to 60 s for bodies we hold in memory; for a
   * streamed body it defaults to none, because the time an upload needs depends on its size.
   */
  timeoutMs?: number | null;
  /**
   * True for calls that cannot create anything a person would see twice (reads, status checks,
   * uploads of media not yet attached to a post): a network failure then is not `outcomeUnknown`.
   */
  safeToRepeat?: boolean;
  /**
   * A send that got no answer or a 5xx may go again at once, in place, as `deps.repeat` allows: a
   * repeat is harmless and answers as the first send would have. True by default for GET and PUT;
   * a read sent as POST, or a call that only opens something invisible (an upload id that expires
   * unused), says so. Never a finalize-style call: its repeat is refused ("already finalized"),
   * which its flow settles only on a later attempt.
   */
  repeatable?: boolean;
  /** How to read a 2xx answer; 'none' discards it. */
  response?: 'json' | 'text' | 'none';
}

export interface HttpResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

export type MapError = (status: number, body: unknown, headers: Headers) => PublishError;

const DEFAULT_TIMEOUT_MS = 60_000;
const DETAIL_MAX = 300;

/**
 * Sends a request through `deps.fetch` and returns its parsed 2xx answer; a repeatable request whose
 * body we hold is sent again as `deps.repeat` allows. Everything else becomes
 * a PublishError: a non-2xx answer through the adapter's `mapError`, and a request that never got an
 * answer (reset connection, DNS failure, timeout, abort) as 'unavailable', retryable, with
 * `outcomeUnknown` set because the server may have acted on it.
 */
export async function requestJson<T>(
  deps: PlatformDeps,
  url: string,
  init: HttpRequest,
  mapError: MapError,
  options: RequestOptions = {},
): Promise<HttpResponse<T>> {
  // A streamed body is spent by its first send; only bodies we hold can go again.
  const streamed = typeof init.body === 'object' && 'kind' in init.body && init.body.kind === 'stream';
  const repeatable = (options.repeatable ?? (init.method === 'GET' || init.method === 'PUT')) && !streamed && deps.repeat !== undefined;
  for (let sends = 1; ; sends++) {
    try {
      return await sendOnce<T>(deps, url, init, mapError, options);
    } catch (error) {
      if (!repeatable || !(error instanceof PublishError) || deps.signal.aborted) throw error;
      const delayMs = deps.repeat?.(error, sends) ?? null;
      if (delayMs === null) throw error;
      const target = new URL(url);
      deps.log.info({ request: `${init.method} ${target.origin}${target.pathname}`, sends, delayMs, detail: error.detail }, 'repeating a request in place');
      try {
        await sleep(delayMs, undefined, { signal: deps.signal });
      } catch {
        throw error;
      }
    }
  }
}

async function sendOnce<T>(deps: PlatformDeps, url: string, init: HttpRequest, mapError: MapError, options: RequestOptions): Promise<HttpResponse<T>> {
  const target = new URL(url);
  const where = `${init.method} ${target.origin}${target.pathname}`;
  const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
  let body: string | Uint8Array | AsyncIterable<Uint8Array> | undefined;
  let streamed: StreamedBody | undefined;
  const payload = init.body;
  if (payload === undefined || typeof payload === 'string' || payload instanceof Uint8Array) {
    body = payload;
  } else if (payload.kind === 'json') {
    body = JSON.stringify(payload.value);
    if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'application/json';
  } else {
    body = payload.stream;
    streamed = payload;
    // fetch cannot know a stream's length; without it undici sends chunked encoding, which some
    // upload endpoints refuse. undici checks the bytes sent against it.
    setHeader(headers, 'content-length', String(payload.length));
  }

  const timeoutMs = options.timeoutMs === undefined ? (streamed ? null : DEFAULT_TIMEOUT_MS) : options.timeoutMs;
  const signal = timeoutMs === null ? deps.signal : AbortSignal.any([deps.signal, AbortSignal.timeout(timeoutMs)]);
  const outcomeUnknown = !options.safeToRepeat;
  const started = performance.now();

  let response: Response;
  try {
    const fetchInit: globalThis.RequestInit = { method: init.method, headers, signal };
    if (body !== undefined) fetchInit.body = body;
    if (streamed) fetchInit.duplex = 'half';
    response = await deps.fetch(target, fetchInit);
  } catch (error) {
    // On abort undici neither finishes nor returns the body iterator, which would leave the file
    // open (and an endless source running) forever.
    streamed?.close();
    throw networkError(deps, where, error, signal, outcomeUnknown);
  }
  // A server may refuse an upload before reading all of it (413); the rest is never wanted.
  if (!response.ok) streamed?.close();

  let text = '';
  try {
    if (options.response === 'none' && response.ok) await response.body?.cancel();
    else text = await response.text();
  } catch (error) {
    streamed?.close();
    throw networkError(deps, where, error, signal, outcomeUnknown);
  }
  const elapsedMs = Math.round(performance.now() - started);
  deps.log.debug({ request: where, status: response.status, elapsedMs }, 'platform request');

  if (!response.ok) {
    const parsed = parseMaybeJson(text);
    const error = mapError(response.status, parsed, response.headers);
    const retryAfter = retryAfterSeconds(response.headers, deps.now());
    throw error.retryAfterSeconds === undefined && retryAfter !== undefined && error.retryable ? withRetryAfter(error, retryAfter) : error;
  }

  if (options.response === 'none') return { status: response.status, headers: response.headers, body: undefined as T };
  if (options.response === 'text') return { status: response.status, headers: response.headers, body: text as T };
  if (text === '') return { status: response.status, headers: response.headers, body: undefined as T };
  try {
    return { status: response.status, headers: response.headers, body: JSON.parse(text) as T };
  } catch {
    // The server accepted and answered the call, but we cannot tell what it did.
    throw new PublishError('unknown', `${where} answered ${response.status} with a body that is not JSON.`, {
      status: response.status,
      retryable: true,
      outcomeUnknown,
      detail: `unreadable answer (${response.status})`,
    });
  }
}

/**
 * Wraps a Node stream or any async iterable of bytes as a request body of known length. The stream
 * is destroyed if the request ends early, so an aborted upload does not leave a file open.
 */
export function streamBody(source: AsyncIterable<Uint8Array | string> & { destroy?: (error?: Error) => void }, length: number): StreamedBody {
  if (!Number.isSafeInteger(length) || length < 0) throw new TypeError(`Invalid stream length: ${length}`);
  let finished = false;
  async function* bytes(): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of source) {
        yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      }
      finished = true;
    } finally {
      if (!finished) source.destroy?.();
    }
  }
  return {
    kind: 'stream',
    stream: bytes(),
    length,
    close() {
      if (!finished) source.destroy?.();
    },
  };
}

/**
 * Seconds to wait from `Retry-After` (delta seconds or an HTTP date) or, failing that,
 * `ratelimit-reset` (Bluesky) / `x-rate-limit-reset` (X) (epoch seconds). Undefined when
 * neither is usable.
 */
export function retryAfterSeconds(headers: Headers, nowMs: number): number | undefined {
  const retryAfter = headers.get('retry-after')?.trim();
  if (retryAfter) {
    if (/^\d+(\.\d+)?$/.test(retryAfter)) return Math.max(0, Math.ceil(Number(retryAfter)));
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, Math.ceil((date - nowMs) / 1000));
  }
  const reset = (headers.get('ratelimit-reset') ?? headers.get('x-rate-limit-reset') ?? headers.get('x-ratelimit-reset'))?.trim();
  if (reset && /^\d+$/.test(reset)) {
    const value = Number(reset);
    // The IETF draft defines ratelimit-reset as delta seconds; small values can only be that.
    if (value < 1_000_000_000) return value;
    return Math.max(0, Math.ceil(value - nowMs / 1000));
  }
  return undefined;
}

/** A short, single-line excerpt of an error body for `PublishError.detail`. */
export function describeBody(body: unknown): string {
  if (body && typeof body === 'object') {
    const record = body as Record<string, unknown>;
    const parts = [record.error, record.message, record.error_description]
      .filter((v): v is string => typeof v === 'string' && v !== '')
      .filter((v, i, all) => all.indexOf(v) === i);
    if (parts.length > 0) return truncate(parts.join(': '));
    return truncate(JSON.stringify(body));
  }
  if (typeof body === 'string') return truncate(body.replace(/\s+/g, ' ').trim());
  return '';
}

function truncate(text: string): string {
  return text.length > DETAIL_MAX ? `${text.slice(0, DETAIL_MAX - 1)}…` : text;
}

function parseMaybeJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function networkError(deps: PlatformDeps, where: string, error: unknown, signal: AbortSignal, outcomeUnknown: boolean): PublishError {
  let reason: string;
  if (deps.signal.aborted) reason = 'cancelled';
  else if (signal.aborted) reason = 'timed out';
  else reason = describeNetworkError(error);
  deps.log.warn({ request: where, reason, outcomeUnknown }, 'platform request failed without an answer');
  return new PublishError('unavailable', `${where} failed: ${reason}`, {
    retryable: true,
    outcomeUnknown,
    detail: `no answer (${reason})`,
  });
}

/** undici wraps the socket error as `cause`; its code (ECONNRESET, ENOTFOUND, ...) is the useful bit. */
function describeNetworkError(error: unknown): string {
  const seen = new Set<unknown>();
  let current: unknown = error;
  let fallback = 'network error';
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const record = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof record.code === 'string') return record.code;
    if (typeof record.message === 'string' && fallback === 'network error') fallback = record.message;
    current = record.cause;
  }
  return truncate(fallback);
}

function withRetryAfter(error: PublishError, seconds: number): PublishError {
  const copy = new PublishError(error.code, error.message, {
    retryable: error.retryable,
    retryAfterSeconds: seconds,
    status: error.status,
    detail: error.detail,
    outcomeUnknown: error.outcomeUnknown,
  });
  if (error.stack) copy.stack = error.stack;
  return copy;
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

function setHeader(headers: Record<string, string>, name: string, value: string): void {
  for (const k of Object.keys(headers)) if (k.toLowerCase() === name) delete headers[k];
  headers[name] = value;
}
