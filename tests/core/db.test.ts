/**
 * A transaction's connection dropped while it waits on something else (Postgres restarted, the
 * backend terminated): the transaction fails, the process does not, and the pool carries on.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { withTransaction } from '../../core/db.ts';
import { testContext, type TestContext } from '../support/context.ts';

let ctx: TestContext;

before(async () => {
  ctx = await testContext();
});

after(async () => {
  await ctx?.dispose();
});

test('a connection killed mid-transaction fails that transaction only, and does not end the process', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    let backend = 0;
    const outcome = withTransaction(ctx.pool, async (tx) => {
      backend = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      // Waiting on something that is not the database, as intake does on a file.
      await new Promise((r) => setTimeout(r, 1500));
      await tx.query('SELECT 1');
    });
    while (backend === 0) await new Promise((r) => setTimeout(r, 20));
    const killed = await ctx.pool.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [backend]);
    assert.equal(killed.rows[0]!.ok, true);
    await assert.rejects(outcome);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(uncaught, []);
    const { rows } = await ctx.pool.query<{ n: number }>('SELECT 41 + 1 AS n');
    assert.equal(rows[0]!.n, 42);
  } finally {
    process.off('uncaughtException', onUncaught);
  }
});
