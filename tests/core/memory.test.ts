/** The media streams' collector: bytes passing through `streamed` must actually free garbage. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { MAJOR_EVERY_BYTES, streamed } from '../../core/memory.ts';

let freed = 0;
const registry = new FinalizationRegistry<number>((n) => (freed += n));

/** Garbage as soon as this returns, like a chunk after its lo_put. */
function dropChunk(): void {
  registry.register({ data: Buffer.alloc(1024 * 1024) }, 1);
}

test('a full collection runs once MAJOR_EVERY_BYTES have been streamed', async () => {
  dropChunk();
  streamed(MAJOR_EVERY_BYTES);
  for (let i = 0; i < 20 && freed === 0; i++) await tick();
  assert.equal(freed, 1);
});
