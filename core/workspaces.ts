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

export type MemberRole = 'owner' | 'admin' | 'approver' | 'poster';

export interface MemberRow {
  workspace_id: string;
  id: string;
  display_name: string | null;
  role: MemberRole;
  time_zone: string | null;
}

/** The member's row, created on first contact; the display name follows the chat's. */
export async function touchMember(db: Queryable, workspaceId: string, memberId: string, displayName: string): Promise<MemberRow> {
  const { rows } = await db.query<MemberRow>(
    `INSERT INTO members (workspace_id, id, display_name) VALUES ($1, $2, $3)
     ON CONFLICT (workspace_id, id) DO UPDATE SET display_name = EXCLUDED.display_name RETURNING *`,
    [workspaceId, memberId, displayName],
  );
  return rows[0]!;
}

export async function setMemberTimeZone(db: Queryable, workspaceId: string, memberId: string, timeZone: string): Promise<void> {
  await db.query('UPDATE members SET time_zone = $3 WHERE workspace_id = $1 AND id = $2', [workspaceId, memberId, timeZone]);
}

export async function setMemberRole(db: Queryable, workspaceId: string, memberId: string, role: MemberRole): Promise<boolean> {
  const { rowCount } = await db.query('UPDATE members SET role = $3 WHERE workspace_id = $1 AND id = $2', [workspaceId, memberId, role]);
  return (rowCount ?? 0) > 0;
}
