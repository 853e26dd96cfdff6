/**
 * Downloads the video behind a link someone pasted in chat, without letting the link reach into
 * our own network: every hop's host is resolved here, every address checked, and the socket is
 * then opened to exactly those addresses (the connector's lookup only answers from what was
 * checked), so a DNS answer cannot change between the check and the connect.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import dns, { type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { extname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';
import { MESSAGES, UserError } from './errors.ts';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Every address `hostname` resolves to. The default asks the system resolver. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export interface FetchLinkOptions {
  /** Where the file is written (created if missing). */
  dir: string;
  maxBytes: number;
  /** For the whole download, redirects included. Default 10 minutes. */
  timeoutMs?: number;
  /** Default 5. */
  maxRedirects?: number;
  /** Fetch from private and local addresses too (a self-hosted setup on a LAN). Default false. */
  allowPrivate?: boolean;
  /**
   * Hostnames whose addresses are not checked (e.g. a media server on the LAN, or a test server).
   * Only the hop to that very host is exempt; wherever it redirects is checked as usual.
   */
  allowHosts?: readonly string[];
  resolve?: Resolver;
  signal?: AbortSignal;
  /** Bytes written so far, and the announced total when the server sent one. */
  onProgress?: (bytes: number, totalBytes: number | null) => void;
}

export interface FetchedLink {
  path: string;
  bytes: number;
  /** The media type the server announced, without parameters. */
  contentType: string;
  /** The file's name as the server or the link gives it, for display. */
  filename: string;
}

const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;
const DEFAULT_MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const VIDEO_EXTENSIONS = new Set(['.mp4', '.m4v', '.mov', '.webm', '.mkv']);
const EXTENSION_BY_TYPE: Record<string, string | undefined> = {
  'video/mp4': '.mp4',
  'video/x-m4v': '.m4v',
  'video/quicktime': '.mov',
  'video/webm': '.webm',
  'video/x-matroska': '.mkv',
  'video/matroska': '.mkv',
};
const WEB_PAGE_TYPES = new Set(['text/html', 'application/xhtml+xml']);
const GENERIC_BINARY_TYPES = new Set(['application/octet-stream', 'binary/octet-stream', 'application/x-binary']);
/** Connection failures that mean "the server is not there", as opposed to a bug on our side. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
]);

// IPv4 ranges that are not the public internet (RFC 6890 and friends).
const PRIVATE_V4: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];

/** Not public even inside the global unicast block. */
const PRIVATE_V6: ReadonlyArray<readonly [string, number]> = [
  ['2001::', 23], // protocol assignments: Teredo, benchmarking, ORCHID
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation
  ['64:ff9b:1::', 48], // local-use NAT64
];

function v4Hex(address: string): [string, string] {
  const [a = 0, b = 0, c = 0, d = 0] = address.split('.').map(Number);
  return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
}

function buildBlockList(): { blocked: BlockList; publicV6: BlockList } {
  const blocked = new BlockList();
  for (const [network, prefix] of PRIVATE_V4) {
    // BlockList matches IPv4-mapped IPv6 (::ffff:a.b.c.d) against IPv4 rules by itself; the
    // other IPv6 forms that embed an IPv4 address (NAT64, 6to4) get their own rules.
    blocked.addSubnet(network, prefix, 'ipv4');
    const [high, low] = v4Hex(network);
    blocked.addSubnet(`64:ff9b::${high}:${low}`, 96 + prefix, 'ipv6');
    blocked.addSubnet(`2002:${high}:${low}::`, 16 + prefix, 'ipv6');
  }
  for (const [network, prefix] of PRIVATE_V6) blocked.addSubnet(network, prefix, 'ipv6');
  // Outside these, IPv6 is loopback, unspecified, link-local, unique-local, multicast or reserved.
  const publicV6 = new BlockList();
  publicV6.addSubnet('2000::', 3, 'ipv6');
  publicV6.addSubnet('64:ff9b::', 96, 'ipv6');
  publicV6.addSubnet('::ffff:0:0', 96, 'ipv6');
  return { blocked, publicV6 };
}

const RANGES = buildBlockList();

/** True for an address on the public internet; false for private, local and special ones. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !RANGES.blocked.check(address, 'ipv4');
  if (family === 6) return RANGES.publicV6.check(address, 'ipv6') && !RANGES.blocked.check(address, 'ipv6');
  return false;
}

const systemResolver: Resolver = async (hostname) => {
  const answers = await dns.promises.lookup(hostname, { all: true, order: 'verbatim' });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

function parseLink(text: string): URL {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new UserError(MESSAGES.linkInvalid(text.trim().slice(0, 100)));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UserError(MESSAGES.linkScheme(url.protocol.replace(/:$/, '')));
  return url;
}

/** The URL's host as a resolver or a lookup sees it: IPv6 literals without brackets. */
function bareHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
}

/** Checks where `url` points and records the addresses the connection may use. */
async function checkDestination(url: URL, options: FetchLinkOptions, pinned: Map<string, ResolvedAddress[]>): Promise<void> {
  const host = bareHost(url);
  const exempt = options.allowPrivate === true || (options.allowHosts ?? []).some((h) => h.toLowerCase() === host);
  const family = isIP(host);
  if (family !== 0) {
    // A literal address is connected to as is; no lookup happens.
    if (!exempt && !isPublicAddress(host)) throw new UserError(MESSAGES.linkPrivateAddress(url.hostname));
    return;
  }
  let addresses: ResolvedAddress[];
  try {
    addresses = await (options.resolve ?? systemResolver)(host);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ENODATA' || code === 'EAI_FAIL') {
      throw new UserError(MESSAGES.linkHostNotFound(host), { cause: error });
    }
    throw error;
  }
  if (addresses.length === 0) throw new UserError(MESSAGES.linkHostNotFound(host));
  // One private answer refuses the host: picking the public ones would still let a name that
  // mixes them probe the inside on a retry.
  if (!exempt && addresses.some((a) => !isPublicAddress(a.address))) throw new UserError(MESSAGES.linkPrivateAddress(host));
  pinned.set(host, addresses);
}

/** A `lookup` for the connector that answers only with addresses checkDestination accepted. */
function pinnedLookup(pinned: Map<string, ResolvedAddress[]>): typeof dns.lookup {
  const lookup = (
    hostname: string,
    options: { family?: number | string; all?: boolean },
    callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    const wanted = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
    const list = (pinned.get(hostname.toLowerCase()) ?? []).filter((a) => wanted === 0 || a.family === wanted);
    const first = list[0];
    if (!first) {
      const error: NodeJS.ErrnoException = new Error(`${hostname} was not checked before connecting`);
      error.code = 'ENOTFOUND';
      callback(error, '');
      return;
    }
    if (options.all) callback(null, list);
    else callback(null, first.address, first.family);
  };
  return lookup as unknown as typeof dns.lookup;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function cleanFilename(name: string): string {
  const base = name.split(/[/\\]/).at(-1) ?? '';
  // eslint-disable-next-line no-control-regex
  return base.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 200);
}

function filenameFrom(disposition: string | undefined, url: URL): string {
  if (disposition) {
    const extended = disposition.match(/filename\*\s*=\s*[^']*'[^']*'([^;]+)/i);
    if (extended?.[1]) {
      try {
        const name = cleanFilename(decodeURIComponent(extended[1].trim()));
        if (name) return name;
      } catch {
        // A malformed percent-encoding: fall through to the plain parameter.
      }
    }
    const plain = disposition.match(/filename\s*=\s*(?:"([^"]*)"|([^;]+))/i);
    const name = cleanFilename(plain?.[1] ?? plain?.[2] ?? '');
    if (name) return name;
  }
  const segment = url.pathname.split('/').at(-1) ?? '';
  try {
    return cleanFilename(decodeURIComponent(segment));
  } catch {
    return cleanFilename(segment);
  }
}

function hasVideoExtension(filename: string): boolean {
  return VIDEO_EXTENSIONS.has(extname(filename).toLowerCase());
}

async function saveBody(
  url: URL,
  response: Awaited<ReturnType<typeof request>>,
  options: FetchLinkOptions,
): Promise<FetchedLink> {
  const contentType = (headerValue(response.headers['content-type']) ?? '').split(';')[0]?.trim().toLowerCase() || 'application/octet-stream';
  const named = filenameFrom(headerValue(response.headers['content-disposition']), url);
  if (WEB_PAGE_TYPES.has(contentType)) throw new UserError(MESSAGES.linkWebPage());
  const acceptable = contentType.startsWith('video/') || (GENERIC_BINARY_TYPES.has(contentType) && hasVideoExtension(named));
  if (!acceptable) throw new UserError(MESSAGES.linkNotVideo(contentType));

  const lengthHeader = headerValue(response.headers['content-length']);
  const declared = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
  if (declared !== null && declared > options.maxBytes) throw new UserError(MESSAGES.linkTooBig(options.maxBytes));
  if (declared === 0) throw new UserError(MESSAGES.linkEmpty());

  const ext = hasVideoExtension(named) ? extname(named).toLowerCase() : (EXTENSION_BY_TYPE[contentType] ?? '');
  const filename = named || `video${ext}`;
  await mkdir(options.dir, { recursive: true });
  const path = join(options.dir, `${randomUUID()}${ext}`);
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > options.maxBytes) {
        callback(new UserError(MESSAGES.linkTooBig(options.maxBytes)));
        return;
      }
      options.onProgress?.(bytes, declared);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(response.body, counter, createWriteStream(path, { flags: 'wx' }));
    if (bytes === 0) throw new UserError(MESSAGES.linkEmpty());
  } catch (error) {
    await rm(path, { force: true });
    throw error;
  }
  return { path, bytes, contentType, filename };
}

/**
 * Downloads the video at `link` into `options.dir`, following at most `maxRedirects` redirects
 * and checking every hop. Every refusal is a UserError with a plain-words message; an abort of
 * `options.signal` rejects with its AbortError as is.
 */
export async function fetchLink(link: string, options: FetchLinkOptions): Promise<FetchedLink> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const pinned = new Map<string, ResolvedAddress[]>();
  const agent = new Agent({ connect: { lookup: pinnedLookup(pinned) } });
  let url = parseLink(link);
  try {
    for (let redirects = 0; ; ) {
      signal.throwIfAborted();
      await checkDestination(url, options, pinned);
      const response = await request(url, {
        method: 'GET',
        dispatcher: agent,
        signal,
        headers: { 'user-agent': 'Reelay (video link download)', accept: 'video/*, application/octet-stream;q=0.9, */*;q=0.1' },
      });
      try {
        if (REDIRECT_STATUSES.has(response.statusCode)) {
          const location = headerValue(response.headers.location);
          if (!location) throw new UserError(MESSAGES.linkHttpStatus(response.statusCode));
          if (redirects >= maxRedirects) throw new UserError(MESSAGES.linkTooManyRedirects(maxRedirects));
          redirects++;
          url = parseLink(new URL(location, url).href);
          continue;
        }
        if (response.statusCode !== 200) throw new UserError(MESSAGES.linkHttpStatus(response.statusCode));
        return await saveBody(url, response, options);
      } finally {
        // Whatever was not read (a redirect's page, a refused body) is dropped with its socket.
        if (!response.body.readableEnded) {
          // undici reports the destroy itself as an 'error' event; nobody is reading any more.
          response.body.on('error', () => {});
          response.body.destroy();
        }
      }
    }
  } catch (error) {
    throw userFacing(error, url, timeout, timeoutMs, options.signal);
  } finally {
    await agent.destroy();
  }
}

function userFacing(error: unknown, url: URL, timeout: AbortSignal, timeoutMs: number, callerSignal: AbortSignal | undefined): unknown {
  if (error instanceof UserError) return error;
  if (callerSignal?.aborted) return error;
  if (timeout.aborted) return new UserError(MESSAGES.linkTimeout(Math.max(1, Math.round(timeoutMs / 1000))), { cause: error });
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return new UserError(MESSAGES.linkUnreachable(url.hostname), { cause: error });
  return error;
}
