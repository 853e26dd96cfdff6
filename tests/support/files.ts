/** Test scaffolding the platform adapter tests share: large random files, renditions over them, a shared clock. */
import { createHash, randomFillSync, randomUUID } from 'node:crypto';
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';
import type { RenditionHandle } from '../../core/platforms.ts';

const MiB = 1024 * 1024;

/** Writes `size` random bytes in 1 MiB pieces (never the whole file in memory) and returns their sha256. */
export function randomFile(path: string, size: number): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  const piece = Buffer.alloc(MiB);
  try {
    for (let written = 0; written < size; ) {
      const n = Math.min(MiB, size - written);
      randomFillSync(piece, 0, n);
      hash.update(piece.subarray(0, n));
      writeSync(fd, piece, 0, n);
      written += n;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** A 1080x1920, 20 s rendition handle that streams the file at `path` (ranges included). */
export function fileRendition(path: string, size: number, sha256: string): RenditionHandle {
  return {
    id: `rendition-${randomUUID().slice(0, 8)}`,
    size,
    sha256,
    contentType: 'video/mp4',
    width: 1080,
    height: 1920,
    durationSeconds: 20,
    open: async (range) => createReadStream(path, range ? { start: range.start, end: range.end } : {}),
  };
}

/** A clock the adapter and a simulator share, so "two minutes later" takes no time. */
export function clock(): { now: () => number; advance: (ms: number) => number } {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms: number) => (offset += ms) };
}
