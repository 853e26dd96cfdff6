import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { startEmbeddedPostgres, type DatabaseHandle } from '../../core/embedded-postgres.ts';
import { createLogger } from '../../core/log.ts';
import { testConfig } from '../support/context.ts';

const log = createLogger({ level: 'silent' });
const handles: DatabaseHandle[] = [];
after(async () => {
  for (const handle of handles.reverse()) await handle.stop();
});

async function query(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
  } finally {
    await client.end();
  }
}

test('a second process on the same data dir connects to the running server instead of starting one', async () => {
  const { config } = await testConfig();
  const dataDir = config.database.dataDir;
  const first = await startEmbeddedPostgres({ dataDir, log, fast: true });
  handles.push(first);
  assert.equal(first.owned, true);
  const running = JSON.parse(readFileSync(join(dataDir, 'postgres.json'), 'utf8')) as { port: number; pid: number };
  assert.equal(running.pid, process.pid);

  const second = await startEmbeddedPostgres({ dataDir, log, fast: true });
  handles.push(second);
  assert.equal(second.owned, false);
  assert.equal(second.url, first.url);
  assert.equal(await query(second.url), 1);

  // Only the starter stops the server; a joiner's stop leaves it running for the others.
  await second.stop();
  assert.equal(await query(first.url), 1);
  await first.stop();
  assert.equal(existsSync(join(dataDir, 'postgres.json')), false);
  await assert.rejects(query(first.url));

  // A restart reuses the cluster and its password.
  const again = await startEmbeddedPostgres({ dataDir, log, fast: true });
  handles.push(again);
  assert.equal(again.owned, true);
  assert.equal(await query(again.url), 1);
});
