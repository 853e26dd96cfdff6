/** The README keeps up with the code: every CLI command and every Reelay metric is documented. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { buildProgram } from '../cli/main.ts';
import { registry } from '../core/metrics.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

test('the README shows every CLI command', () => {
  for (const command of buildProgram(() => undefined).commands) {
    assert.match(readme, new RegExp(`^reelay ${command.name()}\\b`, 'm'), `README's CLI block lacks reelay ${command.name()}`);
  }
});

test('the README lists every metric Reelay defines', () => {
  const ours = registry
    .getMetricsAsArray()
    .map((metric) => metric.name)
    .filter((name) => !name.startsWith('reelay_process_') && !name.startsWith('reelay_nodejs_'));
  assert.ok(ours.length >= 8);
  for (const name of ours) assert.ok(readme.includes(`\`${name}`), `README does not mention ${name}`);
});

test('the platform checklist exists and the files it names do', () => {
  const checklist = readFileSync(new URL('../docs/adding-a-platform.md', import.meta.url), 'utf8');
  for (const [, path] of checklist.matchAll(/`((?:core|worker|cli|tests)\/[\w./-]+\.ts)`/g)) {
    if (path!.includes('<id>')) continue;
    assert.ok(existsSync(new URL(`../${path}`, import.meta.url)), `${path}, named in docs/adding-a-platform.md, exists`);
  }
});
