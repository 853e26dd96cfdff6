/** The benchmark helpers whose mistakes would skew every number: percentiles, the delay proxy, how workers are started. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { imageNodeFlags, median, percentile, startDelayProxy } from '../../bench/support.ts';

test('percentiles are nearest-rank over unsorted samples', () => {
  const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.equal(percentile(samples, 50), 50);
  assert.equal(percentile(samples, 99), 99);
  assert.equal(percentile(samples, 100), 100);
  assert.equal(percentile([7], 95), 7);
  assert.equal(median([3, 1, 2, 10]), 2.5);
  assert.throws(() => percentile([], 50));
});

test('the delay proxy forwards method, path and body, and adds its delay', async () => {
  const upstream = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => res.writeHead(201, { 'x-seen': `${req.method} ${req.url}` }).end(body.toUpperCase()));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const proxy = await startDelayProxy(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, 200);
  try {
    const t0 = performance.now();
    const response = await fetch(`${proxy.url}/upload?x=1`, { method: 'PUT', body: 'hello' });
    const elapsed = performance.now() - t0;
    assert.equal(response.status, 201);
    assert.equal(response.headers.get('x-seen'), 'PUT /upload?x=1');
    assert.equal(await response.text(), 'HELLO');
    assert.ok(elapsed >= 195, `answered after ${elapsed.toFixed(0)} ms`);
  } finally {
    await proxy.close();
    upstream.close();
  }
});

test('benchmarks start workers with the image ENTRYPOINT’s Node flags', () => {
  const flags = imageNodeFlags();
  assert.ok(flags.every((flag) => flag.startsWith('--')), flags.join(' '));
  assert.ok(flags.includes('--max-semi-space-size=2'), flags.join(' '));
});
