/**
 * Retention: videos are the bulk of the database, and nothing needs them once every delivery of
 * their post is over. A media row (with its renditions and their large objects) is deleted when
 * - every delivery of every post using it is terminal and the last one finished more than the
 *   grace period ago (MEDIA_RETENTION_HOURS; the grace leaves room for a `retry`), or
 * - no post uses it and it is older than UNATTACHED_MEDIA_HOURS.
 * Posts, deliveries and events stay: only bytes go. One-time link requests and alerts-chat requests
 * are useless once expired; they are kept EXPIRED_REQUEST_DAYS (to look into a link that failed)
 * and then deleted. Runs hourly from pg-boss's cron (QUEUES.cleanup) and on demand with `reelay cleanup`.
 */
import { withTransaction, type Pool, type Queryable } from './db.ts';
import type { Logger } from './log.ts';
import { unlinkObject } from './media.ts';
import { recordEvent, TERMINAL_STATES } from './posts.ts';

export const UNATTACHED_MEDIA_HOURS = 24;
const BATCH = 100;

export interface CleanupOptions {
  now: Date;
  graceHours: number;
}

export interface CleanupResult {
  media: number;
  renditions: number;
  bytes: number;
}

const HOUR_MS = 3600_000;

/**
 * The eligibility test for media `m`, shared by the listing and the re-check under lock.
 * $1: terminal states, $2: finished-before cutoff, $3: unattached-before cutoff.
 */
const EXPIRED = `(
  (NOT EXISTS (SELECT 1 FROM posts p WHERE p.media_id = m.id) AND m.created_at < $3)
  OR (
    EXISTS (SELECT 1 FROM posts p WHERE p.media_id = m.id)
    AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.media_id = m.id AND p.media_state = 'pending')
    AND NOT EXISTS (
      SELECT 1 FROM posts p JOIN deliveries d ON d.post_id = p.id
       WHERE p.media_id = m.id AND d.state <> ALL($1::text[]))
    AND (SELECT max(COALESCE(d.updated_at, p.created_at)) FROM posts p LEFT JOIN deliveries d ON d.post_id = p.id
          WHERE p.media_id = m.id) < $2
  )
)`;

function cutoffs(options: CleanupOptions): [readonly string[], Date, Date] {
  const now = options.now.getTime();
  return [TERMINAL_STATES, new Date(now - options.graceHours * HOUR_MS), new Date(now - UNATTACHED_MEDIA_HOURS * HOUR_MS)];
}

/** Ids of media that may be deleted at `options.now`, oldest first. */
export async function listExpiredMedia(db: Queryable, options: CleanupOptions, limit = BATCH): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(`SELECT m.id FROM media m WHERE ${EXPIRED} ORDER BY m.created_at LIMIT $4`, [...cutoffs(options), limit]);
  return rows.map((r) => r.id);
}

/**
 * Deletes one media row, its renditions and their large objects, if it is still expired once
 * locked. The deliveries are locked too, so a concurrent `retry` either happens first (and the
 * media stays) or finds the media gone.
 */
async function deleteMedia(pool: Pool, id: string, options: CleanupOptions): Promise<{ renditions: number; bytes: number } | null> {
  return withTransaction(pool, async (tx) => {
    const locked = await tx.query<{ id: string }>('SELECT id FROM media WHERE id = $1 FOR UPDATE SKIP LOCKED', [id]);
    if (!locked.rows[0]) return null;
    await tx.query('SELECT d.id FROM deliveries d JOIN posts p ON p.id = d.post_id WHERE p.media_id = $1 FOR UPDATE OF d', [id]);
    const { rows } = await tx.query<{ oid: number; size: number; workspace_id: string }>(
      `SELECT m.oid, m.size, m.workspace_id FROM media m WHERE m.id = $4 AND ${EXPIRED}`,
      [...cutoffs(options), id],
    );
    const media = rows[0];
    if (!media) return null;
    const renditions = await tx.query<{ oid: number; size: number }>('SELECT oid, size FROM renditions WHERE media_id = $1', [id]);
    for (const rendition of renditions.rows) await unlinkObject(tx, rendition.oid);
    await unlinkObject(tx, media.oid);
    // Renditions go by cascade; posts.media_id and deliveries.rendition_id become NULL.
    await tx.query('DELETE FROM media WHERE id = $1', [id]);
    const bytes = media.size + renditions.rows.reduce((sum, r) => sum + r.size, 0);
    await recordEvent(tx, { type: 'media.deleted', workspaceId: media.workspace_id, data: { mediaId: id, bytes, renditions: renditions.rowCount ?? 0 } });
    return { renditions: renditions.rows.length, bytes };
  });
}

/** How long expired link and alerts requests are kept before the cleanup deletes them. */
export const EXPIRED_REQUEST_DAYS = 7;

const requestCutoff = (now: Date): Date => new Date(now.getTime() - EXPIRED_REQUEST_DAYS * 24 * HOUR_MS);

/** `/link` requests (used or not) that expired more than EXPIRED_REQUEST_DAYS before `now`. */
export async function deleteExpiredLinkRequests(db: Queryable, now: Date): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM link_requests WHERE expires_at < $1', [requestCutoff(now)]);
  return rowCount ?? 0;
}

/** Alerts-chat requests (answered or not) that expired more than EXPIRED_REQUEST_DAYS before `now`. */
export async function deleteExpiredAlertsRequests(db: Queryable, now: Date): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM alerts_requests WHERE expires_at < $1', [requestCutoff(now)]);
  return rowCount ?? 0;
}

export async function runCleanup(deps: { pool: Pool; log: Logger }, options: CleanupOptions): Promise<CleanupResult> {
  const linkRequests = await deleteExpiredLinkRequests(deps.pool, options.now);
  const alertsRequests = await deleteExpiredAlertsRequests(deps.pool, options.now);
  if (linkRequests + alertsRequests > 0) deps.log.info({ component: 'retention', linkRequests, alertsRequests }, 'expired requests deleted');
  const result: CleanupResult = { media: 0, renditions: 0, bytes: 0 };
  const tried = new Set<string>();
  for (;;) {
    // Rows another sweep holds (SKIP LOCKED) or that stopped qualifying are not tried twice.
    const ids = (await listExpiredMedia(deps.pool, options, BATCH + tried.size)).filter((id) => !tried.has(id));
    if (ids.length === 0) break;
    for (const id of ids) {
      tried.add(id);
      const deleted = await deleteMedia(deps.pool, id, options);
      if (!deleted) continue;
      result.media += 1;
      result.renditions += deleted.renditions;
      result.bytes += deleted.bytes;
    }
  }
  if (result.media > 0) deps.log.info({ component: 'retention', ...result }, 'expired media deleted');
  else deps.log.debug({ component: 'retention' }, 'no expired media');
  return result;
}

/** Bytes of the database and how much of it is media, for `reelay doctor`. */
export async function storageUsage(db: Queryable): Promise<{ databaseBytes: number; mediaBytes: number; mediaFiles: number; renditionBytes: number }> {
  const { rows } = await db.query<{ database_bytes: number; media_bytes: number; media_files: number; rendition_bytes: number }>(
    `SELECT pg_database_size(current_database())::bigint AS database_bytes,
            (SELECT COALESCE(sum(size), 0)::bigint FROM media) AS media_bytes,
            (SELECT count(*)::int FROM media) AS media_files,
            (SELECT COALESCE(sum(size), 0)::bigint FROM renditions) AS rendition_bytes`,
  );
  const row = rows[0]!;
  return { databaseBytes: row.database_bytes, mediaBytes: row.media_bytes, mediaFiles: row.media_files, renditionBytes: row.rendition_bytes };
}
