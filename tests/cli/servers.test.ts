/**
 * `reelay start` as a person runs it: the bots and HTTP server in the process, the worker in a
 * supervised child (so a transcode never holds a chat reply back), restarted when it dies and
 * stopped with its parent.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { BIN, reelayEnv, until } from '../support/cli.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { freePort } from '../support/net.ts';
import { alive } from '../../core/embedded-postgres.ts';

let ctx: TestContext;

before(async () => {
  ctx = await testContext();
});

after(async () => {
  await ctx?.dispose();
});

async function workerPids(): Promise<number[]> {
  const { rows } = await ctx.pool.query<{ pid: number }>('SELECT pid FROM workers ORDER BY started_at');
  return rows.map((r) => r.pid);
}


test('reelay start runs the worker as its own child process, starts it again when it dies, and stops it on SIGTERM', async () => {
  const port = await freePort();
  const env = reelayEnv(ctx, 'start-data', { HTTP_HOST: '127.0.0.1', HTTP_PORT: String(port), WORKER_STOP_GRACE_SECONDS: '3' });
  const start = spawn(process.execPath, [BIN, 'start'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  start.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => start.on('exit', (code) => resolve(code)));
  try {
    const [first] = await until('a worker to register', async () => {
      const pids = await workerPids();
      return pids.length > 0 ? pids : null;
    }, 60_000);
    assert.notEqual(first, start.pid, 'the worker is not the parent process');
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200, 'the parent serves HTTP');

    process.kill(first!, 'SIGKILL');
    const second = await until('the worker to be started again', async () => (await workerPids()).find((pid) => pid !== first), 60_000);
    assert.notEqual(second, start.pid);

    start.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    assert.equal(alive(second), false, 'the worker child stopped with its parent');
    assert.deepEqual(await workerPids(), [first], 'the stopped worker removed itself; only the killed one is left');
  } finally {
    if (start.exitCode === null) start.kill('SIGKILL');
  }
});
