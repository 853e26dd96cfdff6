/**
 * The media store: originals and renditions as Postgres large objects, streamed in and out in
 * fixed-size chunks so no file is ever held whole in memory. Server-side lo_put/lo_get need no
 * open descriptor, so reads work from any pooled connection.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client, Pool, Queryable } from './db.ts';
import { streamed } from './memory.ts';

export const CHUNK_BYTES = 1024 * 1024;
/**
 * Smaller than the write chunk: each lo_get comes back as a hex string twice its size plus the
 * decoded Buffer, and smaller ones are freed sooner (core/memory.ts); reads are cheap queries.
 */
export const READ_CHUNK_BYTES = 256 * 1024;

export interface StoredObject {
  oid: number;
  size: number;
  sha256: string;
}

/** Streams a file into a new large object inside the caller's transaction. */
export async function importFile(tx: Client, path: string): Promise<StoredObject> {
  return importStream(tx, createReadStream(path, { highWaterMark: CHUNK_BYTES }));
}

export async function importStream(tx: Client, source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>): Promise<StoredObject> {
  const { rows } = await tx.query<{ oid: number }>('SELECT lo_create(0) AS oid');
  const oid = rows[0]!.oid;
  const hash = createHash('sha256');
  let size = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const chunk = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    await tx.query('SELECT lo_put($1::oid, $2::bigint, $3::bytea)', [oid, size - pendingBytes, chunk]);
    streamed(pendingBytes);
    pending = [];
    pendingBytes = 0;
  };
  for await (const piece of source) {
    const buffer = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
    hash.update(buffer);
    size += buffer.length;
    pending.push(buffer);
    pendingBytes += buffer.length;
    if (pendingBytes >= CHUNK_BYTES) await flush();
  }
  await flush();
  return { oid, size, sha256: hash.digest('hex') };
}

/** A fresh stream of a large object's bytes (optionally a byte range, inclusive end). */
export function openObject(db: Queryable, oid: number, size: number, range?: { start: number; end: number }): Readable {
  const start = range?.start ?? 0;
  const end = Math.min(range?.end ?? size - 1, size - 1);
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let offset = start; offset <= end; offset += READ_CHUNK_BYTES) {
      const length = Math.min(READ_CHUNK_BYTES, end - offset + 1);
      const { rows } = await db.query<{ data: Buffer }>('SELECT lo_get($1::oid, $2::bigint, $3::int) AS data', [oid, offset, length]);
      streamed(length);
      yield rows[0]!.data;
    }
  }
  return Readable.from(chunks(), { objectMode: false, highWaterMark: 1 });
}

export async function exportToFile(db: Queryable, object: { oid: number; size: number }, path: string): Promise<void> {
  await pipeline(openObject(db, object.oid, object.size), createWriteStream(path));
}

export async function unlinkObject(db: Queryable, oid: number): Promise<void> {
  await db.query('SELECT lo_unlink($1::oid) WHERE EXISTS (SELECT 1 FROM pg_largeobject_metadata WHERE oid = $1::oid)', [oid]);
}

export interface MediaRow {
  id: string;
  workspace_id: string;
  filename: string;
  content_type: string;
  size: number;
  sha256: string;
  oid: number;
  probe: unknown;
  created_at: Date;
}

export interface RenditionRow {
  id: string;
  media_id: string;
  profile_keys: string[];
  mode: 'remux' | 'encode';
  size: number;
  sha256: string;
  oid: number;
  probe: unknown;
  thumbnail: Buffer | null;
}

export async function insertMedia(
  tx: Client,
  media: { workspaceId: string; filename: string; contentType: string; probe: unknown; stored: StoredObject },
): Promise<MediaRow> {
  const { rows } = await tx.query<MediaRow>(
    `INSERT INTO media (workspace_id, filename, content_type, size, sha256, oid, probe)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
    [media.workspaceId, media.filename, media.contentType, media.stored.size, media.stored.sha256, media.stored.oid, media.probe],
  );
  return rows[0]!;
}

export async function getMedia(db: Queryable, id: string): Promise<MediaRow | null> {
  const { rows } = await db.query<MediaRow>('SELECT * FROM media WHERE id = $1', [id]);
  return rows[0] ?? null;
}

export async function insertRendition(
  tx: Client,
  rendition: { mediaId: string; profileKeys: string[]; mode: 'remux' | 'encode'; probe: unknown; stored: StoredObject; thumbnail?: Buffer | null },
): Promise<RenditionRow> {
  const { rows } = await tx.query<RenditionRow>(
    `INSERT INTO renditions (media_id, profile_keys, mode, size, sha256, oid, probe, thumbnail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
    [rendition.mediaId, rendition.profileKeys, rendition.mode, rendition.stored.size, rendition.stored.sha256, rendition.stored.oid, rendition.probe, rendition.thumbnail ?? null],
  );
  return rows[0]!;
}

export async function listRenditions(db: Queryable, mediaId: string): Promise<RenditionRow[]> {
  const { rows } = await db.query<RenditionRow>('SELECT * FROM renditions WHERE media_id = $1 ORDER BY created_at', [mediaId]);
  return rows;
}

export async function getRendition(db: Queryable, id: string): Promise<RenditionRow | null> {
  const { rows } = await db.query<RenditionRow>('SELECT * FROM renditions WHERE id = $1', [id]);
  return rows[0] ?? null;
}

/** Opens rendition bytes through the pool (each chunk a short query). */
export function renditionOpener(pool: Pool, row: { oid: number; size: number }) {
  return async (range?: { start: number; end: number }) => openObject(pool, row.oid, row.size, range);
}
