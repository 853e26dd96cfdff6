/**
 * Every post and delivery statement, and the delivery state machine. Each transition is one UPDATE
 * guarded by the states it may leave, so two workers (or a worker and a `cancel`) can never both
 * move the same delivery: the loser's UPDATE matches no row.
 */
import type { Client, Queryable } from './db.ts';
import type { Checkpoint, PlatformId } from './platforms.ts';

export const DELIVERY_STATES = [
  'awaiting_approval',
  'scheduled',
  'publishing',
  'processing',
  'published',
  'failed',
  'cancelled',
  'unconfirmed',
] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export const TERMINAL_STATES: readonly DeliveryState[] = ['published', 'failed', 'cancelled', 'unconfirmed'];
export const isTerminal = (state: DeliveryState): boolean => TERMINAL_STATES.includes(state);

/** Which states each state may be entered from. The one picture of the state machine. */
export const TRANSITIONS: Record<DeliveryState, readonly DeliveryState[]> = {
  awaiting_approval: [],
  // From publishing/processing: a retryable failure waits for its next attempt as `scheduled`;
  // from scheduled: a delivery starts waiting for its account to be re-linked.
  scheduled: ['awaiting_approval', 'scheduled', 'failed', 'unconfirmed', 'publishing', 'processing'],
  // A crashed attempt leaves `publishing`; the resumed job enters it again.
  publishing: ['scheduled', 'publishing', 'processing'],
  processing: ['publishing', 'processing'],
  published: ['publishing', 'processing', 'unconfirmed', 'failed'],
  failed: ['scheduled', 'publishing', 'processing'],
  cancelled: ['awaiting_approval', 'scheduled'],
  unconfirmed: ['publishing', 'processing'],
};

export interface PostRow {
  id: string;
  workspace_id: string;
  author_id: string;
  caption: string;
  media_id: string | null;
  media_state: 'pending' | 'ready' | 'failed';
  media_error: string | null;
  scheduled_at: Date;
  time_zone: string;
  origin: Record<string, unknown>;
  /** Part i of n when a long video was split; null otherwise. */
  part: number | null;
  parts: number | null;
  created_at: Date;
}

export interface DeliveryRow {
  id: string;
  post_id: string;
  account_id: string;
  platform: PlatformId;
  state: DeliveryState;
  caption: string | null;
  profile_key: string;
  rendition_id: string | null;
  /** Choices made at intake for this delivery (e.g. `{ board }` for Pinterest). */
  options: Record<string, unknown>;
  checkpoint: Checkpoint;
  remote_id: string | null;
  url: string | null;
  /** Plain words from the platform adapter shown beside the link (e.g. "awaiting TikTok review"). */
  note: string | null;
  error_code: string | null;
  error: string | null;
  attempts: number;
  /** When the current run of attempts began (null before the first, and after a manual retry). */
  first_attempt_at: Date | null;
  job_id: string | null;
  published_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface DeliveryView extends DeliveryRow {
  handle: string;
}

export interface PostWithDeliveries extends PostRow {
  deliveries: DeliveryView[];
}

export type PostState = 'awaiting_approval' | 'scheduled' | 'publishing' | 'published' | 'partially_published' | 'failed' | 'cancelled';

/** A post's state is never stored: it is read off its deliveries. */
export function postState(post: Pick<PostRow, 'media_state'>, deliveries: readonly Pick<DeliveryRow, 'state'>[]): PostState {
  const states = deliveries.map((d) => d.state);
  if (post.media_state === 'failed' || (states.length > 0 && states.every((s) => s === 'failed' || s === 'unconfirmed'))) return 'failed';
  if (states.length > 0 && states.every((s) => s === 'cancelled')) return 'cancelled';
  if (states.some((s) => s === 'awaiting_approval')) return 'awaiting_approval';
  if (states.some((s) => s === 'publishing' || s === 'processing')) return 'publishing';
  if (states.some((s) => s === 'scheduled')) return 'scheduled';
  if (states.every((s) => s === 'published' || s === 'cancelled')) return 'published';
  return 'partially_published';
}

export interface NewPost {
  workspaceId: string;
  authorId: string;
  caption: string;
  mediaId: string;
  scheduledAt: Date;
  timeZone: string;
  origin: Record<string, unknown>;
  part?: { index: number; count: number };
  targets: Array<{ accountId: string; platform: PlatformId; profileKey: string; caption: string | null; options?: Record<string, unknown> }>;
  initialState: 'scheduled' | 'awaiting_approval';
}

export async function insertPost(tx: Client, post: NewPost): Promise<{ post: PostRow; deliveries: DeliveryRow[] }> {
  const { rows } = await tx.query<PostRow>(
    `INSERT INTO posts (workspace_id, author_id, caption, media_id, scheduled_at, time_zone, origin, part, parts)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
    [post.workspaceId, post.authorId, post.caption, post.mediaId, post.scheduledAt, post.timeZone, post.origin, post.part?.index ?? null, post.part?.count ?? null],
  );
  const row = rows[0]!;
  const deliveries: DeliveryRow[] = [];
  for (const target of post.targets) {
    const inserted = await tx.query<DeliveryRow>(
      `INSERT INTO deliveries (post_id, account_id, platform, state, caption, profile_key, options)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [row.id, target.accountId, target.platform, post.initialState, target.caption, target.profileKey, JSON.stringify(target.options ?? {})],
    );
    deliveries.push(inserted.rows[0]!);
  }
  await recordEvent(tx, { type: 'post.created', workspaceId: post.workspaceId, postId: row.id, data: { targets: post.targets.map((t) => t.platform), scheduledAt: post.scheduledAt.toISOString() } });
  return { post: row, deliveries };
}

const DELIVERY_VIEW = `SELECT d.*, a.handle FROM deliveries d JOIN accounts a ON a.id = d.account_id`;

export async function getPost(db: Queryable, id: string): Promise<PostRow | null> {
  const { rows } = await db.query<PostRow>('SELECT * FROM posts WHERE id = $1', [id]);
  return rows[0] ?? null;
}

/**
 * Finds a post in a workspace by its id or a unique prefix of it (people type short ids).
 * Returns 'ambiguous' when the prefix matches more than one post.
 */
export async function findPost(db: Queryable, workspaceId: string, idOrPrefix: string): Promise<PostWithDeliveries | null | 'ambiguous'> {
  const prefix = idOrPrefix.toLowerCase().replace(/[^0-9a-f-]/g, '');
  if (prefix.length < 4) return null;
  const { rows } = await db.query<PostRow>(
    `SELECT * FROM posts WHERE workspace_id = $1 AND id::text LIKE $2 || '%' ORDER BY created_at DESC LIMIT 2`,
    [workspaceId, prefix],
  );
  if (rows.length > 1) return 'ambiguous';
  const post = rows[0];
  if (!post) return null;
  return { ...post, deliveries: await listDeliveries(db, post.id) };
}

export async function listDeliveries(db: Queryable, postId: string): Promise<DeliveryView[]> {
  const { rows } = await db.query<DeliveryView>(`${DELIVERY_VIEW} WHERE d.post_id = $1 ORDER BY d.created_at, d.platform`, [postId]);
  return rows;
}

export async function getDelivery(db: Queryable, id: string): Promise<DeliveryView | null> {
  const { rows } = await db.query<DeliveryView>(`${DELIVERY_VIEW} WHERE d.id = $1`, [id]);
  return rows[0] ?? null;
}

export async function listPosts(db: Queryable, workspaceId: string, limit = 20): Promise<PostWithDeliveries[]> {
  const { rows } = await db.query<PostRow>('SELECT * FROM posts WHERE workspace_id = $1 ORDER BY created_at DESC LIMIT $2', [workspaceId, limit]);
  return Promise.all(rows.map(async (post) => ({ ...post, deliveries: await listDeliveries(db, post.id) })));
}

export async function setMediaState(db: Queryable, postId: string, state: 'ready' | 'failed', error: string | null = null): Promise<void> {
  await db.query(`UPDATE posts SET media_state = $2, media_error = $3 WHERE id = $1`, [postId, state, error]);
}

export async function setRendition(db: Queryable, postId: string, profileKey: string, renditionId: string): Promise<void> {
  await db.query(`UPDATE deliveries SET rendition_id = $3, updated_at = now() WHERE post_id = $1 AND profile_key = $2`, [postId, profileKey, renditionId]);
}

export interface TransitionPatch {
  remoteId?: string | null;
  url?: string | null;
  note?: string | null;
  errorCode?: string | null;
  error?: string | null;
  jobId?: string | null;
  /** Counts an attempt starting at this time (the first of a run also stamps `first_attempt_at`). */
  attemptAt?: Date;
  resetAttempts?: boolean;
  publishedAt?: Date;
}

/**
 * Moves a delivery to `to` if it is currently in one of the states `to` may be entered from.
 * Returns the updated row, or null when another actor moved it first.
 */
export async function transition(db: Queryable, deliveryId: string, to: DeliveryState, patch: TransitionPatch = {}): Promise<DeliveryRow | null> {
  const from = TRANSITIONS[to];
  const { rows } = await db.query<DeliveryRow>(
    `UPDATE deliveries SET
       state = $3,
       remote_id = CASE WHEN $4::boolean THEN $5 ELSE remote_id END,
       url = CASE WHEN $6::boolean THEN $7 ELSE url END,
       error_code = CASE WHEN $8::boolean THEN $9 ELSE error_code END,
       error = CASE WHEN $10::boolean THEN $11 ELSE error END,
       job_id = CASE WHEN $12::boolean THEN $13::uuid ELSE job_id END,
       attempts = CASE WHEN $14::boolean THEN 0 WHEN $15::timestamptz IS NOT NULL THEN attempts + 1 ELSE attempts END,
       first_attempt_at = CASE WHEN $14::boolean THEN NULL WHEN $15::timestamptz IS NOT NULL THEN COALESCE(first_attempt_at, $15) ELSE first_attempt_at END,
       published_at = COALESCE($16, published_at),
       note = CASE WHEN $17::boolean THEN $18 ELSE note END,
       updated_at = now()
     WHERE id = $1 AND state = ANY($2::text[])
     RETURNING *`,
    [
      deliveryId,
      from,
      to,
      patch.remoteId !== undefined,
      patch.remoteId ?? null,
      patch.url !== undefined,
      patch.url ?? null,
      patch.errorCode !== undefined,
      patch.errorCode ?? null,
      patch.error !== undefined,
      patch.error ?? null,
      patch.jobId !== undefined,
      patch.jobId ?? null,
      patch.resetAttempts ?? false,
      patch.attemptAt ?? null,
      patch.publishedAt ?? null,
      patch.note !== undefined,
      patch.note ?? null,
    ],
  );
  const row = rows[0] ?? null;
  if (row) await recordEvent(db, { type: `delivery.${to}`, postId: row.post_id, deliveryId, accountId: row.account_id, data: { error: patch.error ?? undefined, errorCode: patch.errorCode ?? undefined, url: patch.url ?? undefined } });
  return row;
}

/** Merges checkpoint fields; only while the delivery is being worked on. */
export async function saveCheckpoint(db: Queryable, deliveryId: string, patch: Checkpoint): Promise<Checkpoint> {
  const { rows } = await db.query<{ checkpoint: Checkpoint }>(
    `UPDATE deliveries SET checkpoint = checkpoint || $2::jsonb, updated_at = now()
     WHERE id = $1 AND state IN ('publishing', 'processing') RETURNING checkpoint`,
    [deliveryId, JSON.stringify(patch)],
  );
  if (!rows[0]) throw new Error(`Delivery ${deliveryId} is no longer being published; checkpoint not saved.`);
  return rows[0].checkpoint;
}

export async function setJob(db: Queryable, deliveryId: string, jobId: string | null): Promise<void> {
  await db.query('UPDATE deliveries SET job_id = $2 WHERE id = $1', [deliveryId, jobId]);
}

/** Deliveries a worker should own but that have no live job (a crash exhausted pg-boss's retries). */
export async function listOrphanedDeliveries(db: Queryable, now: Date): Promise<DeliveryRow[]> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT d.* FROM deliveries d JOIN posts p ON p.id = d.post_id
      WHERE d.state IN ('scheduled', 'publishing', 'processing') AND p.media_state = 'ready'
        AND p.scheduled_at <= $1
        AND NOT EXISTS (
          SELECT 1 FROM pgboss.job j
           WHERE j.id = d.job_id AND j.state IN ('created', 'retry', 'active'))`,
    [now],
  );
  return rows;
}

export async function recordEvent(
  db: Queryable,
  event: { type: string; workspaceId?: string; postId?: string; deliveryId?: string; accountId?: string; data?: Record<string, unknown> },
): Promise<void> {
  await db.query(
    `INSERT INTO events (type, workspace_id, post_id, delivery_id, account_id, data)
     VALUES ($1, COALESCE($2, (SELECT workspace_id FROM posts WHERE id = $3::uuid)), $3, $4, $5, $6)`,
    [event.type, event.workspaceId ?? null, event.postId ?? null, event.deliveryId ?? null, event.accountId ?? null, JSON.stringify(event.data ?? {})],
  );
}

export async function listEvents(db: Queryable, postId: string): Promise<Array<{ at: Date; type: string; data: Record<string, unknown> }>> {
  const { rows } = await db.query<{ at: Date; type: string; data: Record<string, unknown> }>(
    'SELECT at, type, data FROM events WHERE post_id = $1 ORDER BY id',
    [postId],
  );
  return rows;
}

/** Posts still waiting for their time or an approval, soonest first. */
export async function listUpcoming(db: Queryable, workspaceId: string, limit = 20): Promise<PostWithDeliveries[]> {
  const { rows } = await db.query<PostRow>(
    `SELECT p.* FROM posts p
      WHERE p.workspace_id = $1 AND p.media_state <> 'failed'
        AND EXISTS (SELECT 1 FROM deliveries d WHERE d.post_id = p.id AND d.state IN ('scheduled', 'awaiting_approval'))
      ORDER BY p.scheduled_at, p.created_at LIMIT $2`,
    [workspaceId, limit],
  );
  return Promise.all(rows.map(async (post) => ({ ...post, deliveries: await listDeliveries(db, post.id) })));
}
