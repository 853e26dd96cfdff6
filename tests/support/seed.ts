/**
 * Rows for operations tests (retention, backup, metrics) written straight to the database: a
 * media object with a rendition, a post and deliveries in chosen states, without ffmpeg or a worker.
 */
import { randomBytes } from 'node:crypto';
import { upsertAccount } from '../../core/accounts.ts';
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
