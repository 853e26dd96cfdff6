import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { alive } from '../../core/embedded-postgres.ts';
import { sweepOrphans } from './context.ts';

const CHILD = `
import { testContext } from ${JSON.stringify(new URL('./context.ts', import.meta.url).href)};
const ctx = await testContext();
process.stdout.write(ctx.dir + '\\n');
setInterval(() => {}, 1000);
`;


test('a killed test process leaves its Postgres running; the next sweep stops it and removes the dir', async () => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], { stdio: ['ignore', 'pipe', 'inherit'] });
  const dir = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code} before starting`)));
  });
  const postmaster = Number(readFileSync(join(dir, 'data', 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  assert.ok(alive(postmaster), 'the orphaned Postgres outlives its test process');

  await sweepOrphans();
  assert.equal(existsSync(dir), false, 'the dir is removed');
  const deadline = Date.now() + 20_000;
  while (alive(postmaster) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(alive(postmaster), false, 'the orphaned Postgres is stopped');
});
