/**
 * Rows for operations and isolation tests (retention, backup, metrics, workspaces) written straight to the database: a
 * media object with a rendition, a post and deliveries in chosen states, without ffmpeg or a worker.
 */
import { randomBytes } from 'node:crypto';
import { upsertAccount, type AccountRow } from '../../core/accounts.ts';
import { withTransaction } from '../../core/db.ts';
import { importStream, insertMedia, insertRendition } from '../../core/media.ts';
import type { DeliveryState } from '../../core/posts.ts';
import { insertPost } from '../../core/posts.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import type { TestContext } from './context.ts';

export interface Seeded {
  mediaId: string;
  postId: string | null;
  deliveryIds: string[];
  /** Large objects: the original first, then the rendition (when there is a post). */
  oids: number[];
  bytes: Buffer;
}

async function account(ctx: TestContext, index: number): Promise<string> {
  const row = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: `seed${index}.test`, remoteId: null, credentials: {}, expiresAt: null });
  return row.id;
}

/**
 * A media object; with `states`, also a post whose deliveries are in those states (one account
 * each) and a rendition serving them. `finishedAt` backdates the deliveries' last change.
 */
export async function seedMedia(ctx: TestContext, options: { states?: DeliveryState[]; finishedAt?: Date; createdAt?: Date; size?: number } = {}): Promise<Seeded> {
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
  const bytes = randomBytes(options.size ?? 64 * 1024);
  const accounts = await Promise.all((options.states ?? []).map((_, i) => account(ctx, i)));
  return withTransaction(ctx.pool, async (tx) => {
    const stored = await importStream(tx, [bytes]);
    const media = await insertMedia(tx, { workspaceId: 'cli', filename: 'clip.mp4', contentType: 'video/mp4', probe: {}, stored });
    if (options.createdAt) await tx.query('UPDATE media SET created_at = $2 WHERE id = $1', [media.id, options.createdAt]);
    if (!options.states) return { mediaId: media.id, postId: null, deliveryIds: [], oids: [stored.oid], bytes };
    const rendition = await insertRendition(tx, { mediaId: media.id, profileKeys: ['bluesky'], mode: 'remux', probe: {}, stored: await importStream(tx, [bytes.subarray(0, 1024)]) });
    const { post, deliveries } = await insertPost(tx, {
      workspaceId: 'cli',
      authorId: 'cli',
      caption: 'seeded',
      mediaId: media.id,
      scheduledAt: new Date(),
      timeZone: 'UTC',
      origin: {},
      targets: accounts.map((accountId) => ({ accountId, platform: 'bluesky' as const, profileKey: 'bluesky', caption: null })),
      initialState: 'scheduled',
    });
    await tx.query(`UPDATE posts SET media_state = 'ready' WHERE id = $1`, [post.id]);
    for (const [i, delivery] of deliveries.entries()) {
      await tx.query('UPDATE deliveries SET state = $2, rendition_id = $3, updated_at = COALESCE($4, now()) WHERE id = $1', [delivery.id, options.states[i], rendition.id, options.finishedAt ?? null]);
    }
    return { mediaId: media.id, postId: post.id, deliveryIds: deliveries.map((d) => d.id), oids: [stored.oid, rendition.oid], bytes };
  });
}

export async function objectExists(ctx: TestContext, oid: number): Promise<boolean> {
  const { rowCount } = await ctx.pool.query('SELECT 1 FROM pg_largeobject_metadata WHERE oid = $1', [oid]);
  return (rowCount ?? 0) > 0;
}

export interface SeededWorkspace {
  account: AccountRow;
  /** Posts by state of their one delivery. */
  posts: Record<'awaiting' | 'scheduled' | 'failed', { postId: string; deliveryId: string }>;
  renditionId: string;
}

/**
 * A workspace with an X account and three posts on it (awaiting approval, scheduled, failed), each
 * with a rendition; captions start with `label`. For isolation tests, which need two of them.
 */
export async function seedWorkspacePosts(ctx: TestContext, workspaceId: string, author: string, label: string, origin: Record<string, unknown> = {}): Promise<SeededWorkspace> {
  await ensureWorkspace(ctx.pool, workspaceId, 'UTC');
  const account = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId, platform: 'x', handle: `acct${workspaceId.slice(-4)}`, remoteId: null, credentials: { accessToken: 'a' }, expiresAt: null });
  return withTransaction(ctx.pool, async (tx) => {
    const bytes = randomBytes(32 * 1024);
    const media = await insertMedia(tx, { workspaceId, filename: 'clip.mp4', contentType: 'video/mp4', probe: {}, stored: await importStream(tx, [bytes]) });
    const rendition = await insertRendition(tx, { mediaId: media.id, profileKeys: ['x'], mode: 'remux', probe: {}, stored: await importStream(tx, [bytes]) });
    const make = async (state: DeliveryState, caption: string) => {
      const initialState = state === 'awaiting_approval' ? 'awaiting_approval' : 'scheduled';
      const { post, deliveries } = await insertPost(tx, {
        workspaceId,
        authorId: author,
        caption,
        mediaId: media.id,
        scheduledAt: new Date(Date.UTC(2031, 0, 1, 12)),
        timeZone: 'UTC',
        origin,
        targets: [{ accountId: account.id, platform: 'x', profileKey: 'x', caption: null }],
        initialState,
      });
      await tx.query(`UPDATE posts SET media_state = 'ready' WHERE id = $1`, [post.id]);
      await tx.query('UPDATE deliveries SET rendition_id = $2, state = $3 WHERE id = $1', [deliveries[0]!.id, rendition.id, state]);
      return { postId: post.id, deliveryId: deliveries[0]!.id };
    };
    return {
      account,
      renditionId: rendition.id,
      posts: { awaiting: await make('awaiting_approval', `${label} awaiting`), scheduled: await make('scheduled', `${label} scheduled`), failed: await make('failed', `${label} failed`) },
    };
  });
}
