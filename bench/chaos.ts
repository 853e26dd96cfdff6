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
  // The harness's one-line summaries (states per run, faults): what the row's note reports.
  const summaries: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, ['--test', '--test-timeout=5400000', HARNESS], {
      // --quick leaves N at the test's own default.
      env: { ...process.env, ...(quick ? {} : { CHAOS_POSTS: String(POSTS) }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keeper = () => {
      let partial = '';
      return (chunk: Buffer) => {
        tail = (tail + chunk.toString()).slice(-3000);
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          // Its summaries, each delivery that did not publish, and a failure's seed.
          if (!/chaos(:| failed with seed)/.test(line)) continue;
          log(`  ${line.replace(/^#\s*/, '')}`);
          const summary = /chaos: (\{.*\})$/.exec(line);
          if (summary) summaries.push(summary[1]!);
        }
      };
    };
    child.stdout.on('data', keeper());
    child.stderr.on('data', keeper());
    child.once('error', reject);
    child.once('close', resolve);
  });
  const seconds = (Date.now() - t0) / 1000;
  if (code !== 0) log(tail);
  const size = readsN ? '' : ' (the harness does not read CHAOS_POSTS yet: it ran at its own N)';
  const verdict = code === 0 ? 'every delivery terminal, none posted twice' : `exit ${code}: ${/not ok .*/.exec(tail)?.[0] ?? 'see output'}`;
  return [{ name, value: seconds, unit: 's', target: 'exit 0', pass: code === 0, note: [verdict + size, ...summaries.map(describeRun)].join('; ') }];
}

/** "crashes: 400 published" from a harness summary line. */
function describeRun(json: string, index: number): string {
  const parsed = JSON.parse(json) as { states?: Record<string, number>; kills?: { crashPoint: number; timer: number }; faults?: Record<string, number> };
  const states = Object.entries(parsed.states ?? {}).map(([state, n]) => `${n} ${state}`).join(', ');
  const faults = Object.entries(parsed.faults ?? {}).filter(([kind]) => kind !== 'forwarded').reduce((sum, [, n]) => sum + n, 0);
  return `${index === 0 ? 'crash run' : 'fault run'}: ${states}${faults > 0 ? ` (${faults} faults)` : ''}`;
}
