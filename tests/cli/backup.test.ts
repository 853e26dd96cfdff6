/**
 * `reelay backup` / `reelay restore` / `reelay cleanup` as a person runs them, on the embedded
 * default: backup, change things, restore, and the change is gone while the videos (large
 * objects) are back byte for byte.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatBytes, MESSAGES } from '../../core/errors.ts';
import { QUEUES, startBoss } from '../../core/jobs.ts';
import { openObject, unlinkObject } from '../../core/media.ts';
import { ensureWorkspace, getWorkspace } from '../../core/workspaces.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { objectExists, seedMedia } from '../support/seed.ts';

const BIN = fileURLToPath(new URL('../../bin/reelay.js', import.meta.url));
let ctx: TestContext;

before(async () => {
  ctx = await testContext();
});
after(async () => ctx?.dispose());

/** The CLI on the test's embedded Postgres: no DATABASE_URL, the same data dir. */
function reelay(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, DATABASE_URL: '', REELAY_SECRET_KEY: '', REELAY_DATA_DIR: join(ctx.dir, 'data'), LOG_LEVEL: 'silent' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
  });
}

async function read(oid: number, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of openObject(ctx.pool, oid, size)) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

test('reelay cleanup deletes expired media now', async () => {
  const stale = await seedMedia(ctx, { createdAt: new Date(Date.now() - 48 * 3600_000) });
  const run = await reelay(['cleanup', '--json']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { media: 1, renditions: 0, bytes: stale.bytes.length });
  assert.equal(await objectExists(ctx, stale.oids[0]!), false);
});

test('backup, change, restore: the change is gone and the videos survive', async () => {
  const kept = await seedMedia(ctx, { states: ['published'], size: 4 * 1024 * 1024 });
  const file = join(ctx.dir, 'reelay.dump');

  const backup = await reelay(['backup', file]);
  assert.equal(backup.code, 0, backup.stderr);
  assert.ok(backup.stdout.startsWith(`Backed up the database (media included) to ${file}: `), backup.stdout);
  assert.ok(!existsSync(`${file}.partial`));
  process.stderr.write(`# backup: ${formatBytes(statSync(file).size)} (4 MB of video) in ${Math.round(backup.ms)} ms including process start\n`);
  const twice = await reelay(['backup', file]);
  assert.equal(twice.code, 2);
  assert.ok(twice.stderr.includes(MESSAGES.backupFileExists(file)));

  // The change: a new workspace, the backed-up video deleted, another one stored.
  await ensureWorkspace(ctx.pool, 'telegram:7', 'UTC');
  const [keptMedia, keptRendition] = kept.oids as [number, number];
  for (const oid of kept.oids) await unlinkObject(ctx.pool, oid);
  await ctx.pool.query('DELETE FROM media WHERE id = $1', [kept.mediaId]);
  const later = await seedMedia(ctx);

  // A live worker makes restore refuse: it would drop tables under running jobs.
  const workerId = randomUUID();
  await ctx.pool.query('INSERT INTO workers (id, hostname, pid) VALUES ($1, $2, $3)', [workerId, 'busy', 1]);
  const refused = await reelay(['restore', file]);
  assert.equal(refused.code, 2);
  assert.ok(refused.stderr.includes(MESSAGES.restoreWorkersRunning(1)), refused.stderr);
  await ctx.pool.query('DELETE FROM workers WHERE id = $1', [workerId]);

  // As in production, nothing else holds the queue while the database is replaced.
  await ctx.boss.stop({ graceful: true, timeout: 5000 });
  const restore = await reelay(['restore', file]);
  assert.equal(restore.code, 0, restore.stderr);
  assert.ok(restore.stdout.startsWith(`Restored the database from ${file} in `), restore.stdout);
  process.stderr.write(`# restore: ${Math.round(restore.ms)} ms including process start\n`);

  assert.equal(await getWorkspace(ctx.pool, 'telegram:7'), null, 'the workspace made after the backup is gone');
  const { rows } = await ctx.pool.query<{ oid: number; size: number }>('SELECT oid, size FROM media WHERE id = $1', [kept.mediaId]);
  assert.equal(rows[0]?.oid, keptMedia, 'the video row is back');
  assert.deepEqual(await read(keptMedia, rows[0]!.size), kept.bytes, 'its bytes are back, identical');
  assert.equal(await objectExists(ctx, keptRendition), true, 'the rendition too');
  assert.equal((await ctx.pool.query('SELECT 1 FROM media WHERE id = $1', [later.mediaId])).rowCount, 0);
  assert.equal(await objectExists(ctx, later.oids[0]!), false, 'a video stored after the backup leaves no orphaned object');
  // The restored queue works: Reelay starts on it and sends a job.
  const boss = await startBoss({ connectionString: ctx.databaseUrl, log: ctx.log });
  try {
    assert.ok(await boss.send(QUEUES.transcode, { postId: randomUUID() }));
  } finally {
    await boss.stop({ graceful: false });
  }
});
