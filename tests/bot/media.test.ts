import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startHttp, type HttpServer } from '../../bot/http.ts';
import { parseRange } from '../../bot/media.ts';
import { withTransaction } from '../../core/db.ts';
import { createMediaLinkSigner } from '../../core/media-links.ts';
import { importStream, insertMedia, insertRendition } from '../../core/media.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { testContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
let http: HttpServer;
let renditionId: string;
const bytes = randomBytes(3 * 1024 * 1024 + 17);

before(async () => {
  ctx = await testContext({ env: { PUBLIC_BASE_URL: 'https://reelay.example.com' } });
  http = await startHttp(ctx, { host: '127.0.0.1', port: 0, checks: [] });
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
  renditionId = await withTransaction(ctx.pool, async (tx) => {
    const stored = await importStream(tx, [bytes]);
    const media = await insertMedia(tx, { workspaceId: 'cli', filename: 'a.mp4', contentType: 'video/mp4', probe: {}, stored });
    return (await insertRendition(tx, { mediaId: media.id, profileKeys: ['k'], mode: 'remux', probe: {}, stored })).id;
  });
});
after(async () => {
  await http?.close();
  await ctx?.dispose();
});

/** The signed public URL, re-pointed at the local server. */
function local(publicUrl: string): string {
  const url = new URL(publicUrl);
  return `${http.url}${url.pathname}${url.search}`;
}

test('a signed link streams the rendition with type and length; HEAD sends headers only', async () => {
  const link = ctx.mediaLinks.url(renditionId, Date.now());
  assert.ok(link?.startsWith(`https://reelay.example.com/media/${renditionId}?exp=`));
  const response = await fetch(local(link!));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'video/mp4');
  assert.equal(response.headers.get('content-length'), String(bytes.length));
  assert.equal(response.headers.get('accept-ranges'), 'bytes');
  assert.deepEqual(Buffer.from(await response.arrayBuffer()), bytes);
  const head = await fetch(local(link!), { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(bytes.length));
  assert.equal((await head.arrayBuffer()).byteLength, 0);
});

test('ranges: a span, an open end, a suffix; an unsatisfiable range is 416', async () => {
  const link = local(ctx.mediaLinks.url(renditionId, Date.now())!);
  const span = await fetch(link, { headers: { range: 'bytes=1048570-1048580' } });
  assert.equal(span.status, 206);
  assert.equal(span.headers.get('content-range'), `bytes 1048570-1048580/${bytes.length}`);
  assert.deepEqual(Buffer.from(await span.arrayBuffer()), bytes.subarray(1048570, 1048581));
  const suffix = await fetch(link, { headers: { range: 'bytes=-5' } });
  assert.deepEqual(Buffer.from(await suffix.arrayBuffer()), bytes.subarray(bytes.length - 5));
  const bad = await fetch(link, { headers: { range: `bytes=${bytes.length}-` } });
  assert.equal(bad.status, 416);
  assert.equal(bad.headers.get('content-range'), `bytes */${bytes.length}`);
  assert.deepEqual(parseRange('bytes=5-', 10), { start: 5, end: 9 });
  assert.equal(parseRange('items=1-2', 10), 'invalid');
});

test('unsigned, tampered and expired links are refused alike, whether or not the media exists', async () => {
  const valid = new URL(ctx.mediaLinks.url(renditionId, Date.now())!);
  const missing = randomUUID();
  const forged = [
    `${http.url}/media/${renditionId}`,
    `${http.url}/media/${renditionId}?exp=${valid.searchParams.get('exp')}&sig=${'A'.repeat(43)}`,
    `${http.url}/media/${missing}?exp=${valid.searchParams.get('exp')}&sig=${valid.searchParams.get('sig')}`,
    `${http.url}/media/${renditionId}?exp=${Number(valid.searchParams.get('exp')) + 60}&sig=${valid.searchParams.get('sig')}`,
    local(ctx.mediaLinks.url(renditionId, Date.now() - 3 * 3600_000)!),
    local(ctx.mediaLinks.url(missing, Date.now() - 3 * 3600_000)!),
  ];
  for (const link of forged) {
    const response = await fetch(link);
    assert.equal(response.status, 403, link);
    assert.equal(await response.text(), 'Forbidden\n');
  }
});

test('without PUBLIC_BASE_URL there are no links; another key cannot sign', () => {
  assert.equal(createMediaLinkSigner(randomBytes(32), undefined).url(renditionId, Date.now()), null);
  const other = createMediaLinkSigner(randomBytes(32), 'https://x.example');
  const url = new URL(other.url(renditionId, Date.now())!);
  assert.equal(ctx.mediaLinks.verify(renditionId, url.searchParams.get('exp'), url.searchParams.get('sig'), Date.now()), false);
});
