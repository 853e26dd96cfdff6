/**
 * Keeps a process that streams gigabytes of media near its idle size. Every chunk moved through
 * Postgres allocates fresh Buffers outside V8's heap (the file read, pg's serializer growing and
 * joining each lo_put, the decoded lo_get) and a hex string inside it; V8 collects the Buffers only
 * after about 64 MiB of such growth, and glibc keeps much of what it gets back. Collecting as the
 * bytes pass holds the worker flat: a 300 MiB import and export in one process peaked at +63 MiB
 * without this and +19 MiB with it, for the same import time and ~25 % more export time (the
 * export is a few seconds per gigabyte; bench/rss.ts has the end-to-end number).
 *
 * A scavenge (young generation, well under a millisecond) frees most chunks, which die young; a
 * full collection now and then frees the rest. The collector is reached through V8's own flag,
 * set at first use, because a worker is started as `reelay worker`, not `node --expose-gc`.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const MINOR_EVERY_BYTES = 1024 * 1024;
export const MAJOR_EVERY_BYTES = 16 * 1024 * 1024;

type Collect = (options: { type: 'minor' | 'major'; execution: 'sync' }) => void;
let collect: Collect | null | undefined;
let sinceMinor = 0;
let sinceMajor = 0;

function collector(): Collect | null {
  if (collect !== undefined) return collect;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    collect = typeof gc === 'function' ? (gc as Collect) : null;
  } catch {
    // Without it the process still works, only with V8's own (later) collections.
    collect = null;
  }
  return collect;
}

/** Counts media bytes just moved, collecting garbage as they pass. */
export function streamed(bytes: number): void {
  sinceMinor += bytes;
  sinceMajor += bytes;
  if (sinceMajor >= MAJOR_EVERY_BYTES) {
    sinceMajor = 0;
    sinceMinor = 0;
    collector()?.({ type: 'major', execution: 'sync' });
  } else if (sinceMinor >= MINOR_EVERY_BYTES) {
    sinceMinor = 0;
    collector()?.({ type: 'minor', execution: 'sync' });
  }
}
