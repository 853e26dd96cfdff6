/**
 * SQL for requests to send a workspace's alerts to another chat. Alerts carry buttons that act on
 * the workspace's posts, so a chat only becomes the alerts chat when one of its admins accepts.
 * The code is handed out once, in the buttons posted into the asked chat; only its hash is kept.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Queryable } from '../db.ts';

/** How long the asked chat has to answer. */
export const ALERTS_REQUEST_TTL_MS = 24 * 60 * 60 * 1000;

export interface AlertsRequestRow {
  code_hash: string;
  workspace_id: string;
  from_chat: string;
  from_name: string;
  target_chat: string;
  target_name: string;
  requested_by: string;
  expires_at: Date;
  decision: 'accepted' | 'declined' | 'withdrawn' | null;
  decided_at: Date | null;
}

const hash = (code: string): string => createHash('sha256').update(code).digest('base64url');

/** Marks the workspace's open request (if any) withdrawn: a newer choice replaces it. */
export async function withdrawAlertsRequests(db: Queryable, workspaceId: string, now: Date): Promise<void> {
  await db.query(`UPDATE alerts_requests SET decision = 'withdrawn', decided_at = $2 WHERE workspace_id = $1 AND decision IS NULL`, [workspaceId, now]);
}

/** Opens a request, withdrawing the workspace's earlier one; returns the code for the buttons. */
export async function openAlertsRequest(
  db: Queryable,
  request: { workspaceId: string; fromChat: string; fromName: string; targetChat: string; targetName: string; requestedBy: string },
  now: Date,
): Promise<{ code: string; expiresAt: Date }> {
  const code = randomUUID();
  const expiresAt = new Date(now.getTime() + ALERTS_REQUEST_TTL_MS);
  await withdrawAlertsRequests(db, request.workspaceId, now);
  await db.query(
    `INSERT INTO alerts_requests (code_hash, workspace_id, from_chat, from_name, target_chat, target_name, requested_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [hash(code), request.workspaceId, request.fromChat, request.fromName, request.targetChat, request.targetName, request.requestedBy, expiresAt],
  );
  return { code, expiresAt };
}

/** Forgets a request whose message could not be delivered. */
export async function dropAlertsRequest(db: Queryable, code: string): Promise<void> {
  await db.query('DELETE FROM alerts_requests WHERE code_hash = $1', [hash(code)]);
}

/** The request behind a code, if it is still open, unexpired, and meant for this chat. */
export async function findOpenAlertsRequest(db: Queryable, code: string, targetChat: string, now: Date): Promise<AlertsRequestRow | null> {
  const { rows } = await db.query<AlertsRequestRow>(
    'SELECT * FROM alerts_requests WHERE code_hash = $1 AND target_chat = $2 AND decision IS NULL AND expires_at > $3',
    [hash(code), targetChat, now],
  );
  return rows[0] ?? null;
}

/**
 * Settles an open request once: one guarded UPDATE, so a replayed or concurrent press finds
 * nothing. Null when the code is unknown, used, expired, or meant for another chat.
 */
export async function decideAlertsRequest(db: Queryable, code: string, targetChat: string, decision: 'accepted' | 'declined', now: Date): Promise<AlertsRequestRow | null> {
  const { rows } = await db.query<AlertsRequestRow>(
    `UPDATE alerts_requests SET decision = $3, decided_at = $4
      WHERE code_hash = $1 AND target_chat = $2 AND decision IS NULL AND expires_at > $4
      RETURNING *`,
    [hash(code), targetChat, decision, now],
  );
  return rows[0] ?? null;
}

/** The workspace's open, unexpired request, for /settings. */
export async function pendingAlertsRequest(db: Queryable, workspaceId: string, now: Date): Promise<AlertsRequestRow | null> {
  const { rows } = await db.query<AlertsRequestRow>('SELECT * FROM alerts_requests WHERE workspace_id = $1 AND decision IS NULL AND expires_at > $2', [workspaceId, now]);
  return rows[0] ?? null;
}
