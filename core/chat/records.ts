/**
 * SQL for the chat's own rows: messages later events refer to, approvals, and once-only notices.
 * Every lookup that starts from a chat update is scoped by the chat and chat id it came from.
 */
import type { Queryable } from '../db.ts';

export type ChatName = 'telegram' | 'discord';
export type ChatMessageKind = 'status' | 'preview' | 'alert' | 'video';

export interface ChatMessageRow {
  chat: ChatName;
  chat_id: string;
  message_id: string;
  workspace_id: string;
  kind: ChatMessageKind;
  post_id: string | null;
  delivery_id: string | null;
  data: Record<string, unknown>;
}

export async function recordChatMessage(
  db: Queryable,
  row: { chat: ChatName; chatId: string; messageId: string; workspaceId: string; kind: ChatMessageKind; postId?: string | null; deliveryId?: string | null; data?: Record<string, unknown> },
): Promise<void> {
  await db.query(
    `INSERT INTO chat_messages (chat, chat_id, message_id, workspace_id, kind, post_id, delivery_id, data)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (chat, chat_id, message_id) DO UPDATE SET kind = EXCLUDED.kind, post_id = EXCLUDED.post_id, delivery_id = EXCLUDED.delivery_id, data = EXCLUDED.data`,
    [row.chat, row.chatId, row.messageId, row.workspaceId, row.kind, row.postId ?? null, row.deliveryId ?? null, JSON.stringify(row.data ?? {})],
  );
}

export async function findChatMessage(db: Queryable, chat: ChatName, chatId: string, messageId: string): Promise<ChatMessageRow | null> {
  const { rows } = await db.query<ChatMessageRow>('SELECT * FROM chat_messages WHERE chat = $1 AND chat_id = $2 AND message_id = $3', [chat, chatId, messageId]);
  return rows[0] ?? null;
}

export async function listPostMessages(db: Queryable, postId: string, kind: ChatMessageKind): Promise<ChatMessageRow[]> {
  const { rows } = await db.query<ChatMessageRow>('SELECT * FROM chat_messages WHERE post_id = $1 AND kind = $2 ORDER BY created_at', [postId, kind]);
  return rows;
}

/** Records an approver's decision (a changed mind replaces the earlier one) and returns the tally. */
export async function recordApproval(db: Queryable, postId: string, memberId: string, decision: 'approve' | 'reject'): Promise<{ approvals: number; rejections: number }> {
  await db.query(
    `INSERT INTO approvals (post_id, member_id, decision) VALUES ($1, $2, $3)
     ON CONFLICT (post_id, member_id) DO UPDATE SET decision = EXCLUDED.decision, at = now()`,
    [postId, memberId, decision],
  );
  const { rows } = await db.query<{ approvals: number; rejections: number }>(
    `SELECT count(*) FILTER (WHERE decision = 'approve')::int AS approvals, count(*) FILTER (WHERE decision = 'reject')::int AS rejections
       FROM approvals WHERE post_id = $1`,
    [postId],
  );
  return rows[0] ?? { approvals: 0, rejections: 0 };
}

/** True the first time a key is claimed. Claim and send in one transaction so a failed send is retried. */
export async function claimNotice(db: Queryable, key: string): Promise<boolean> {
  const { rows } = await db.query('INSERT INTO chat_notices (key) VALUES ($1) ON CONFLICT (key) DO NOTHING RETURNING key', [key]);
  return rows.length > 0;
}

export const EDIT_INTERVAL_MS = 2000;

/**
 * Claims the right to edit a message now: granted when the text differs from the last edit and
 * the last edit is at least EDIT_INTERVAL_MS old. One guarded UPDATE, so concurrent processes
 * cannot both win. Otherwise says whether to skip (same text) or how long to wait.
 */
export async function claimEdit(db: Queryable, key: { chat: ChatName; chatId: string; messageId: string }, textHash: string, now: Date): Promise<{ action: 'send' } | { action: 'skip' } | { action: 'later'; waitMs: number }> {
  const { rows } = await db.query<{ edited_at: Date | null; text_hash: string | null; won: boolean }>(
    `WITH claim AS (
       UPDATE chat_messages SET edited_at = $5, text_hash = $4
        WHERE chat = $1 AND chat_id = $2 AND message_id = $3
          AND text_hash IS DISTINCT FROM $4
          AND (edited_at IS NULL OR edited_at <= $5::timestamptz - make_interval(secs => $6::double precision / 1000))
       RETURNING true AS won)
     SELECT m.edited_at, m.text_hash, EXISTS (SELECT 1 FROM claim) AS won
       FROM chat_messages m WHERE chat = $1 AND chat_id = $2 AND message_id = $3`,
    [key.chat, key.chatId, key.messageId, textHash, now, EDIT_INTERVAL_MS],
  );
  const row = rows[0];
  if (!row || row.won) return { action: 'send' };
  if (row.text_hash === textHash) return { action: 'skip' };
  return { action: 'later', waitMs: Math.max(50, (row.edited_at?.getTime() ?? 0) + EDIT_INTERVAL_MS - now.getTime()) };
}
