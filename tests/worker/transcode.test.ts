import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sweepWorkDirs } from '../../worker/transcode.ts';

test('a worker start removes the work directories of transcodes that died long ago, and nothing else', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sweep-'));
  try {
    const now = Date.now();
    const hoursAgo = (h: number) => new Date(now - h * 3600_000);
    const make = async (name: string, age: number) => {
      const dir = join(root, name);
      await mkdir(dir);
      await writeFile(join(dir, 'input'), 'video bytes');
      await utimes(dir, hoursAgo(age), hoursAgo(age));
      return dir;
    };
    const dead = await make('reelay-transcode-dead', 5);
    const running = await make('reelay-transcode-running', 0.5);
    const other = await make('someone-elses-dir', 48);
    await writeFile(join(root, 'reelay-transcode-file'), 'not a directory');
    await utimes(join(root, 'reelay-transcode-file'), hoursAgo(48), hoursAgo(48));

    assert.deepEqual(await sweepWorkDirs(root, 3 * 3600_000, now), [dead]);
    assert.equal(existsSync(dead), false);
    assert.ok(existsSync(running), 'a transcode still running (or recently dead) is left alone');
    assert.ok(existsSync(other) && existsSync(join(root, 'reelay-transcode-file')), 'only our directories');
    assert.deepEqual(await sweepWorkDirs(root, 3 * 3600_000, now), [], 'a second sweep finds nothing');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
