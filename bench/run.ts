/**
 * `npm run bench`: runs each benchmark in bench/<name>.ts in turn, prints one table and writes it,
 * with the machine it ran on, to docs/benchmarks.md. Not part of `npm test`: it takes minutes and
 * its numbers depend on the machine.
 *
 *   npm run bench                     everything, full sizes; writes docs/benchmarks.md
 *   npm run bench -- --quick          smaller sizes (development); prints only
 *   npm run bench -- --only NAME,...  some benchmarks; prints only
 *   npm run bench -- --write          write docs/benchmarks.md even with --quick / --only
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { testContext } from '../tests/support/context.ts';
import { ack } from './ack.ts';
import { chaos } from './chaos.ts';
import { encode } from './encode.ts';
import { lateness } from './lateness.ts';
import { remux } from './remux.ts';
import { rss } from './rss.ts';
import type { Benchmark, Row } from './support.ts';
import { throughput } from './throughput.ts';

const BENCHMARKS: Record<string, Benchmark> = { lateness, remux, encode, rss, throughput, ack, chaos };
const DOC = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));

interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  node: string;
  ffmpeg: string;
  postgres: string;
  date: string;
}

async function machine(): Promise<Machine> {
  const ffmpeg = spawnSync('ffmpeg', ['-hide_banner', '-version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'unknown';
  const ctx = await testContext();
  let postgres = 'unknown';
  try {
    postgres = (await ctx.pool.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v.split(' on ')[0]!;
  } finally {
    await ctx.dispose();
  }
  const model = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown';
  return {
    cpu: model.trim(),
    cores: cpus().length,
    ramGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    ffmpeg: ffmpeg.replace(/^ffmpeg version /, '').split(' Copyright')[0]!,
    postgres,
    date: new Date().toISOString(),
  };
}

function format(value: number | null): string {
  if (value === null) return '—';
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function verdict(row: Row): string {
  return row.pass === null ? (row.target ? 'skipped' : '') : row.pass ? 'pass' : 'MISS';
}

function table(rows: Row[]): string {
  const lines = ['| Benchmark | Value | Unit | Target | Result | Note |', '| --- | ---: | --- | --- | --- | --- |'];
  for (const row of rows) lines.push(`| ${row.name} | ${format(row.value)} | ${row.unit} | ${row.target} | ${verdict(row)} | ${row.note ?? ''} |`);
  return lines.join('\n');
}

function loadNow(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, write: { type: 'boolean', default: false } } });
  const names = values.only ? values.only.split(',').map((n) => n.trim()) : Object.keys(BENCHMARKS);
  const unknown = names.filter((n) => !(n in BENCHMARKS));
  if (unknown.length) {
    process.stderr.write(`Unknown benchmark ${unknown.join(', ')}; there are: ${Object.keys(BENCHMARKS).join(', ')}\n`);
    return 2;
  }
  const quick = values.quick ?? false;
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const about = await machine();
  const loadBefore = loadNow();
  const started = Date.now();
  const rows: Row[] = [];
  for (const name of names) {
    const t0 = Date.now();
    log(`▶ ${name}${quick ? ' (quick)' : ''} — load ${loadNow()}`);
    try {
      const got = await BENCHMARKS[name]!({ quick, log });
      rows.push(...got);
      for (const row of got) log(`  ${row.name}: ${format(row.value)} ${row.unit} ${row.target} ${verdict(row)}${row.note ? ` (${row.note})` : ''}`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`  ${name} failed: ${message}`);
      rows.push({ name, value: null, unit: '', target: '', pass: false, note: `failed: ${message.replace(/\|/g, '/').slice(0, 200)}` });
    }
    log(`  (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  const minutes = (Date.now() - started) / 60_000;
  const loadAfter = loadNow();
  const out = table(rows);
  log(`\n${out}\n`);
  log(`${about.cpu}, ${about.cores} cores, ${about.ramGiB} GiB; Node ${about.node}; ffmpeg ${about.ffmpeg}; ${about.postgres}; ${minutes.toFixed(1)} min; load ${loadBefore} → ${loadAfter}`);

  if ((values.only || quick) && !values.write) {
    log('(not written to docs/benchmarks.md: --quick or --only; add --write to write anyway)');
  } else {
    writeFileSync(DOC, document(out, about, { quick, minutes, loadBefore, loadAfter, names }));
    log(`written to ${DOC}`);
  }
  return rows.some((r) => r.pass === false) ? 1 : 0;
}

function document(out: string, about: Machine, run: { quick: boolean; minutes: number; loadBefore: string; loadAfter: string; names: string[] }): string {
  return `# Benchmarks

Written by \`npm run bench\` (bench/run.ts; one file per benchmark in bench/). Not part of \`npm test\`.
Re-run it on the machine you care about: these numbers are for the machine below only.

${out}

## Machine

| | |
| --- | --- |
| Date | ${about.date} |
| CPU | ${about.cpu} |
| Cores | ${about.cores} |
| RAM | ${about.ramGiB} GiB |
| Node | ${about.node} |
| ffmpeg | ${about.ffmpeg} |
| Postgres | ${about.postgres} (embedded, fsync off, same machine) |
| Run | ${run.quick ? 'quick sizes' : 'full sizes'}, ${run.names.join(', ')}; ${run.minutes.toFixed(1)} min |
| Load average (1/5/15 min) | ${run.loadBefore} before, ${run.loadAfter} after |

${NOTES}
`;
}

const NOTES = readFileSync(fileURLToPath(new URL('./notes.md', import.meta.url)), 'utf8').trim();

process.exitCode = await main();
