import type { Queryable } from './db.ts';

export interface WorkspaceRow {
  id: string;
  time_zone: string;
  settings: Record<string, unknown>;
  created_at: Date;
}

/** Workspace ids: `cli`, `telegram:<chat_id>`, `discord:<guild_id>`. */
export const WORKSPACE_ID = /^(cli|telegram:-?\d+|discord:\d+)$/;

export function isWorkspaceId(id: string): boolean {
  return WORKSPACE_ID.test(id);
}

/** Returns the workspace, creating it with the default timezone on first use. */
export async function ensureWorkspace(db: Queryable, id: string, defaultTimeZone: string): Promise<WorkspaceRow> {
  const { rows } = await db.query<WorkspaceRow>(
    `INSERT INTO workspaces (id, time_zone) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id RETURNING *`,
    [id, defaultTimeZone],
  );
  return rows[0]!;
}

export async function getWorkspace(db: Queryable, id: string): Promise<WorkspaceRow | null> {
  const { rows } = await db.query<WorkspaceRow>('SELECT * FROM workspaces WHERE id = $1', [id]);
  return rows[0] ?? null;
}

export async function setWorkspaceTimeZone(db: Queryable, id: string, timeZone: string): Promise<void> {
  await db.query('UPDATE workspaces SET time_zone = $2 WHERE id = $1', [id, timeZone]);
}

export async function ensureMember(db: Queryable, workspaceId: string, memberId: string, role: 'owner' | 'admin' | 'approver' | 'poster' = 'poster'): Promise<void> {
  await db.query(
    `INSERT INTO members (workspace_id, id, role) VALUES ($1, $2, $3) ON CONFLICT (workspace_id, id) DO NOTHING`,
    [workspaceId, memberId, role],
  );
}
