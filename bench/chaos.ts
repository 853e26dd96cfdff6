/**
 * HOOK: the crash harness at bench size. tests/worker/chaos.test.ts (its own file, run in
 * `npm test` with a small N) reads CHAOS_POSTS; here it runs with N = 200 as its own
 * `node --test` process and its verdict (exit code) is the row. Skipped, with a note, while the
 * file does not exist.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BenchOptions, Row } from './support.ts';

const HARNESS = fileURLToPath(new URL('../tests/worker/chaos.test.ts', import.meta.url));
const POSTS = 200;

export async function chaos({ quick, log }: BenchOptions): Promise<Row[]> {
  if (!existsSync(HARNESS)) return [{ name: 'crash harness', value: null, unit: '', target: 'exit 0', pass: null, note: 'skipped: tests/worker/chaos.test.ts does not exist yet' }];
  const readsN = readFileSync(HARNESS, 'utf8').includes('CHAOS_POSTS');
  const name = `crash harness, N = ${quick || !readsN ? "the test's own" : POSTS}`;
  const t0 = Date.now();
  let tail = '';
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, ['--test', '--test-timeout=5400000', HARNESS], {
      // --quick leaves N at the test's own default.
      env: { ...process.env, ...(quick ? {} : { CHAOS_POSTS: String(POSTS) }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => (tail = (tail + chunk.toString()).slice(-3000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('close', resolve);
  });
  const seconds = (Date.now() - t0) / 1000;
  if (code !== 0) log(tail);
  const size = readsN ? '' : ' (the harness does not read CHAOS_POSTS yet: it ran at its own N)';
  const verdict = code === 0 ? 'every delivery terminal, none posted twice' : `exit ${code}: ${/not ok .*/.exec(tail)?.[0] ?? 'see output'}`;
  return [{ name, value: seconds, unit: 's', target: 'exit 0', pass: code === 0, note: `${verdict}${size}` }];
}
