import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MESSAGES, UserError } from '../../core/errors.ts';
import { fetchLink, isPublicAddress, type FetchLinkOptions, type Resolver } from '../../core/fetch-link.ts';

const VIDEO = randomBytes(200 * 1024);
const MAX = 1024 * 1024;
const FIVE_GB = 5 * 1024 ** 3;

let dir = '';
let port = 0;
/** A public-looking name for the test server; only tests that say so resolve it. */
const HOST = 'videos.example';
const toServer: Resolver = async (hostname) => {
  if (hostname === HOST) return [{ address: '127.0.0.1', family: 4 }];
  if (hostname === 'localhost') return [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }];
  const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
  error.code = 'ENOTFOUND';
  throw error;
};

function endless(res: ServerResponse): void {
  const chunk = Buffer.alloc(64 * 1024, 1);
  let sent = 0;
  const pump = () => {
    while (!res.destroyed && sent < 64 * MAX) {
      sent += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  switch (url.pathname) {
    case '/clip.mp4':
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': VIDEO.length }).end(VIDEO);
      return;
    case '/download':
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-disposition': 'attachment; filename="../holiday.MOV"' }).end(VIDEO);
      return;
    case '/blob':
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(VIDEO);
      return;
    case '/page':
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<html>a video player</html>');
      return;
    case '/image.png':
      res.writeHead(200, { 'content-type': 'image/png' }).end(VIDEO);
      return;
    case '/empty.mp4':
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': 0 }).end();
      return;
    case '/huge.mp4':
      // Announces 5 GB and sends a little; the client must give up on the header alone.
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': FIVE_GB });
      res.write(VIDEO);
      return;
    case '/endless.mp4':
      res.writeHead(200, { 'content-type': 'video/mp4' });
      endless(res);
      return;
    case '/slow.mp4':
      res.writeHead(200, { 'content-type': 'video/mp4' });
      res.write(VIDEO.subarray(0, 1000));
      return;
    case '/missing.mp4':
      res.writeHead(404).end('not found');
      return;
    case '/hop': {
      const left = Number(url.searchParams.get('n') ?? '0');
      res.writeHead(302, { location: left > 0 ? `/hop?n=${left - 1}` : '/clip.mp4' }).end();
      return;
    }
    case '/to': {
      res.writeHead(307, { location: url.searchParams.get('u') ?? '/' }).end();
      return;
    }
    default:
      res.writeHead(500).end();
  }
});

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-fetch-link-'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

/** The test server under its public-looking name: only that first hop is exempt from the check. */
function viaName(extra: Partial<FetchLinkOptions> = {}): FetchLinkOptions {
  return { dir: join(dir, 'named'), maxBytes: MAX, resolve: toServer, allowHosts: [HOST], ...extra };
}

async function refused(link: string, options: FetchLinkOptions, message: string): Promise<void> {
  await assert.rejects(fetchLink(link, options), (error: unknown) => {
    assert.ok(error instanceof UserError, `expected a UserError, got ${String(error)}`);
    assert.equal(error.message, message);
    return true;
  });
}

async function filesIn(path: string): Promise<string[]> {
  return readdir(path).catch(() => []);
}

test('downloads a video through the checked address, streaming to a file, with progress', async () => {
  const calls: string[] = [];
  const progress: number[] = [];
  const options = viaName({
    resolve: async (hostname) => {
      calls.push(hostname);
      return toServer(hostname);
    },
    onProgress: (bytes, total) => {
      assert.equal(total, VIDEO.length);
      progress.push(bytes);
    },
  });
  const result = await fetchLink(`http://${HOST}:${port}/clip.mp4`, options);
  assert.equal(result.bytes, VIDEO.length);
  assert.equal(result.contentType, 'video/mp4');
  assert.equal(result.filename, 'clip.mp4');
  assert.match(result.path, /\.mp4$/);
  assert.deepEqual(await readFile(result.path), VIDEO);
  assert.equal(progress.at(-1), VIDEO.length);
  // One resolution, and no second one at connect time that an attacker's DNS could answer differently.
  assert.deepEqual(calls, [HOST]);
});

test('follows up to 5 redirects, re-checking each hop, and refuses the 6th', async () => {
  const calls: string[] = [];
  const counting = viaName({
    resolve: async (hostname) => {
      calls.push(hostname);
      return toServer(hostname);
    },
  });
  const result = await fetchLink(`http://${HOST}:${port}/hop?n=4`, counting);
  assert.equal(result.bytes, VIDEO.length);
  assert.equal(calls.length, 6);
  await refused(`http://${HOST}:${port}/hop?n=5`, viaName(), MESSAGES.linkTooManyRedirects(5));
});

test('application/octet-stream is taken with a video file name, which wins over the link', async () => {
  const result = await fetchLink(`http://${HOST}:${port}/download`, viaName());
  assert.equal(result.filename, 'holiday.MOV');
  assert.equal(result.contentType, 'application/octet-stream');
  assert.match(result.path, /\.mov$/);
  await refused(`http://${HOST}:${port}/blob`, viaName(), MESSAGES.linkNotVideo('application/octet-stream'));
});

test('a web page, an image, an empty file and a 404 are refused in plain words', async () => {
  await refused(`http://${HOST}:${port}/page`, viaName(), MESSAGES.linkWebPage());
  assert.match(MESSAGES.linkWebPage(), /web page, not a video file/);
  await refused(`http://${HOST}:${port}/image.png`, viaName(), MESSAGES.linkNotVideo('image/png'));
  await refused(`http://${HOST}:${port}/empty.mp4`, viaName(), MESSAGES.linkEmpty());
  await refused(`http://${HOST}:${port}/missing.mp4`, viaName(), MESSAGES.linkHttpStatus(404));
});

test('a 5 GB Content-Length is refused at once, and a stream without one is cut at the cap', async () => {
  const started = Date.now();
  await refused(`http://${HOST}:${port}/huge.mp4`, viaName(), MESSAGES.linkTooBig(MAX));
  assert.ok(Date.now() - started < 5000);
  const out = join(dir, 'endless');
  await refused(`http://${HOST}:${port}/endless.mp4`, viaName({ dir: out }), MESSAGES.linkTooBig(MAX));
  assert.deepEqual(await filesIn(out), [], 'no partial file is left behind');
});

test('the total timeout ends a stalled download with a plain message and no partial file', async () => {
  const out = join(dir, 'slow');
  await refused(`http://${HOST}:${port}/slow.mp4`, viaName({ dir: out, timeoutMs: 400 }), MESSAGES.linkTimeout(1));
  assert.deepEqual(await filesIn(out), []);
});

test('by default, loopback, private, link-local, CGNAT, multicast and unspecified addresses are refused', async () => {
  const options: FetchLinkOptions = { dir: join(dir, 'default'), maxBytes: MAX, timeoutMs: 5000 };
  for (const host of ['127.0.0.1', '169.254.169.254', '10.0.0.1', '192.168.1.20', '100.64.0.1', '0.0.0.0', '224.0.0.1', '[::1]', '[::]', '[fe80::1]', '[fd00::1]', '[::ffff:127.0.0.1]', '[::ffff:a9fe:a9fe]']) {
    await refused(`http://${host}:${port}/clip.mp4`, options, MESSAGES.linkPrivateAddress(new URL(`http://${host}/`).hostname));
  }
  // Spellings the URL parser turns into 127.0.0.1.
  await refused(`http://2130706433:${port}/clip.mp4`, options, MESSAGES.linkPrivateAddress('127.0.0.1'));
  await refused(`http://0x7f.1:${port}/clip.mp4`, options, MESSAGES.linkPrivateAddress('127.0.0.1'));
  // Resolved by the system resolver (from /etc/hosts), then refused.
  await refused(`http://localhost:${port}/clip.mp4`, options, MESSAGES.linkPrivateAddress('localhost'));
  // Mapping a name to the test server is not enough: the address is still checked.
  await refused(`http://${HOST}:${port}/clip.mp4`, { ...options, resolve: toServer }, MESSAGES.linkPrivateAddress(HOST));
  // One private answer among public ones refuses the name.
  const mixed: Resolver = async () => [
    { address: '93.184.215.14', family: 4 },
    { address: '10.1.2.3', family: 4 },
  ];
  await refused(`http://mixed.example/clip.mp4`, { ...options, resolve: mixed }, MESSAGES.linkPrivateAddress('mixed.example'));
  assert.deepEqual(await filesIn(options.dir), []);
});

test('a redirect from an allowed server to a private address is refused; the exemption is per host', async () => {
  const to = (target: string) => `http://${HOST}:${port}/to?u=${encodeURIComponent(target)}`;
  await refused(to(`http://127.0.0.1:${port}/clip.mp4`), viaName(), MESSAGES.linkPrivateAddress('127.0.0.1'));
  await refused(to(`http://localhost:${port}/clip.mp4`), viaName(), MESSAGES.linkPrivateAddress('localhost'));
  await refused(to('http://169.254.169.254/latest/meta-data/'), viaName(), MESSAGES.linkPrivateAddress('169.254.169.254'));
  await refused(to('http://[::1]/'), viaName(), MESSAGES.linkPrivateAddress('[::1]'));
  await refused(to('ftp://videos.example/clip.mp4'), viaName(), MESSAGES.linkScheme('ftp'));
  await refused(to('file:///etc/passwd'), viaName(), MESSAGES.linkScheme('file'));
});

test('allowPrivate fetches from 127.0.0.1 (the self-hosted setting)', async () => {
  const result = await fetchLink(`http://127.0.0.1:${port}/clip.mp4`, { dir: join(dir, 'private'), maxBytes: MAX, allowPrivate: true });
  assert.equal(result.bytes, VIDEO.length);
});

test('only http and https links, and only links', async () => {
  const options: FetchLinkOptions = { dir: join(dir, 'schemes'), maxBytes: MAX };
  await refused('ftp://example.com/video.mp4', options, MESSAGES.linkScheme('ftp'));
  await refused('file:///etc/passwd', options, MESSAGES.linkScheme('file'));
  await refused('javascript:alert(1)', options, MESSAGES.linkScheme('javascript'));
  await refused('my holiday video', options, MESSAGES.linkInvalid('my holiday video'));
  await refused('http://no-such-host.example/video.mp4', { ...options, resolve: toServer }, MESSAGES.linkHostNotFound('no-such-host.example'));
});

test('a server that is not there is reported as unreachable', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const freePort = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await refused(`http://${HOST}:${freePort}/clip.mp4`, viaName(), MESSAGES.linkUnreachable(HOST));
});

test('isPublicAddress', () => {
  for (const address of ['8.8.8.8', '93.184.215.14', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1']) {
    assert.equal(isPublicAddress(address), true, address);
  }
  for (const address of [
    '127.0.0.1', '10.1.1.1', '172.16.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.64.0.1', '100.127.255.255',
    '0.0.0.0', '224.0.0.251', '239.255.255.250', '255.255.255.255', '192.0.2.1',
    '::', '::1', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::ffff:169.254.169.254',
    '64:ff9b::a00:1', '64:ff9b::7f00:1', '2002:a00:1::', '2002:7f00:1::', '2001:db8::1', '2001::1', '::127.0.0.1', 'not an ip',
  ]) {
    assert.equal(isPublicAddress(address), false, address);
  }
});
