/**
 * GET/HEAD /media/<rendition id>?exp=...&sig=... — renditions for platforms that fetch the video
 * themselves. The signature is checked before the database is asked, so an unsigned, tampered or
 * expired link gets the same 403 whether or not the media exists.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Context } from '../core/context.ts';
import { getRendition, openObject } from '../core/media.ts';

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parses a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range; null when absent, 'invalid' when unsatisfiable. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'invalid' {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return 'invalid';
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'invalid';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start > end || start >= size) return 'invalid';
  return { start, end };
}

export async function serveMedia(ctx: Context, request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
  const id = decodeURIComponent(url.pathname.slice('/media/'.length));
  const signed = ctx.mediaLinks.verify(id, url.searchParams.get('exp'), url.searchParams.get('sig'), ctx.now());
  if (!signed || !ID.test(id)) {
    response.writeHead(403, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('Forbidden\n');
    return;
  }
  const rendition = await getRendition(ctx.pool, id);
  if (!rendition) {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n');
    return;
  }
  const headers: Record<string, string> = {
    'content-type': 'video/mp4',
    'accept-ranges': 'bytes',
    'cache-control': 'private, max-age=300',
    etag: `"${rendition.sha256}"`,
  };
  const range = parseRange(request.headers.range, rendition.size);
  if (range === 'invalid') {
    response.writeHead(416, { ...headers, 'content-range': `bytes */${rendition.size}` }).end();
    return;
  }
  const status = range ? 206 : 200;
  const span = range ?? { start: 0, end: rendition.size - 1 };
  headers['content-length'] = String(span.end - span.start + 1);
  if (range) headers['content-range'] = `bytes ${span.start}-${span.end}/${rendition.size}`;
  response.writeHead(status, headers);
  if (request.method === 'HEAD' || rendition.size === 0) {
    response.end();
    return;
  }
  await pipeline(openObject(ctx.pool, rendition.oid, rendition.size, span), response);
}
