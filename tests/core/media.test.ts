import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { withTransaction } from '../../core/db.ts';
import { CHUNK_BYTES, importStream, openObject, unlinkObject } from '../../core/media.ts';
import { testContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;
before(async () => {
  ctx = await testContext();
});
after(async () => ctx.dispose());

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

test('bytes stream into a large object and back, whole and by range', async () => {
  const data = randomBytes(Math.floor(CHUNK_BYTES * 3.5));
  // Feed odd-sized pieces so chunk boundaries do not line up with the input's.
  async function* pieces() {
    for (let i = 0; i < data.length; i += 300_001) yield data.subarray(i, i + 300_001);
  }
  const stored = await withTransaction(ctx.pool, (tx) => importStream(tx, pieces()));
  assert.equal(stored.size, data.length);
  assert.equal(stored.sha256, createHash('sha256').update(data).digest('hex'));
  assert.deepEqual(await collect(openObject(ctx.pool, stored.oid, stored.size)), data);
  const range = { start: CHUNK_BYTES - 10, end: CHUNK_BYTES * 2 + 5 };
  assert.deepEqual(await collect(openObject(ctx.pool, stored.oid, stored.size, range)), data.subarray(range.start, range.end + 1));
  await unlinkObject(ctx.pool, stored.oid);
  await unlinkObject(ctx.pool, stored.oid); // idempotent
});

test('an import that fails mid-way leaves no large object behind', async () => {
  const before = (await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_largeobject_metadata')).rows[0]!.n;
  async function* broken() {
    yield randomBytes(CHUNK_BYTES + 10);
    throw new Error('connection to the chat CDN dropped');
  }
  await assert.rejects(withTransaction(ctx.pool, (tx) => importStream(tx, broken())), /CDN dropped/);
  const afterCount = (await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_largeobject_metadata')).rows[0]!.n;
  assert.equal(afterCount, before);
});
