/** REELAY_CRASH_AT: a named point, or random:P[:SEED] at every point (the chaos harness's form). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { parseConfig } from '../../core/config.ts';
import { ConfigError } from '../../core/errors.ts';
import { seededRandom } from '../../worker/publish.ts';

const PUBLISH = new URL('../../worker/publish.ts', import.meta.url).href;
const CONFIG = new URL('../../core/config.ts', import.meta.url).href;

/** Runs crashPointFor in a child process at `points` and reports how it ended and which points it passed. */
function runPoints(crashAt: string, points: string[]): { signal: NodeJS.Signals | null; passed: string[] } {
  const script = `
    const { crashPointFor } = await import(${JSON.stringify(PUBLISH)});
    const { parseConfig } = await import(${JSON.stringify(CONFIG)});
    const config = parseConfig({ REELAY_CRASH_AT: ${JSON.stringify(crashAt)} });
    const crash = crashPointFor({ config, log: { warn() {} } });
    for (const name of ${JSON.stringify(points)}) { crash(name); process.stdout.write(name + '\\n'); }`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return { signal: result.signal, passed: result.stdout.split('\n').filter(Boolean) };
}

test('the named form kills at that point only', () => {
  const run = runPoints('x.after_create', ['x.after_upload', 'x.after_create', 'worker.before_record']);
  assert.equal(run.signal, 'SIGKILL');
  assert.deepEqual(run.passed, ['x.after_upload']);
});

test('random:P:SEED kills with probability P at any point, the same way for the same seed', () => {
  const points = Array.from({ length: 200 }, (_, i) => `point.${i}`);
  assert.deepEqual(runPoints('random:0', points), { signal: null, passed: points });
  assert.deepEqual(runPoints('random:1:7', points), { signal: 'SIGKILL', passed: [] });
  const a = runPoints('random:0.05:1234', points);
  const b = runPoints('random:0.05:1234', points);
  assert.equal(a.signal, 'SIGKILL');
  assert.deepEqual(a.passed, b.passed, 'a seed replays');
  const draws = seededRandom(1234);
  const expected = points.findIndex(() => draws() < 0.05);
  assert.equal(a.passed.length, expected, 'the kill lands where the seeded draws say');
});

test('a malformed random form is refused by name', () => {
  assert.throws(() => parseConfig({ REELAY_CRASH_AT: 'random:2' }), (error: unknown) => error instanceof ConfigError && /REELAY_CRASH_AT/.test(error.message));
  assert.equal(parseConfig({ REELAY_CRASH_AT: 'random:0.25:99' }).testing.crashAt, 'random:0.25:99');
});
