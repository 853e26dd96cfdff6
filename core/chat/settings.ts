/**
 * A workspace's chat settings, stored in `workspaces.settings` and read through one zod schema so
 * an old or hand-edited row still yields every default.
 */
import { z } from 'zod';
import type { Queryable } from '../db.ts';

export const SETTINGS_SCHEMA = z.object({
  approval: z
    .object({
      required: z.boolean().default(false),
      quorum: z.number().int().min(1).max(20).default(1),
      /** Member ids allowed to approve, besides chat administrators. */
      approvers: z.array(z.string()).default([]),
      /** Whether the author's own approval counts. */
      allowSelf: z.boolean().default(false),
    })
    .prefault({}),
  /** Where alerts go (`<chat>:<chat id>`), or null for the chat a post came from. */
  alertsChat: z.string().nullable().default(null),
  /** The alerts chat's name as it was when its admin accepted (for /settings); null: ask the chat. */
  alertsChatName: z.string().nullable().default(null),
  /** Targets used when a request names none (the `/post` grammar), or null for every linked account. */
  defaultTargets: z.string().nullable().default(null),
  split: z.boolean().default(false),
  splitSpacingMinutes: z.number().int().min(0).max(24 * 60).default(1),
  /** Discord: the role allowed to post (everyone when null) and the approvers' role. */
  posterRole: z.string().nullable().default(null),
  approverRole: z.string().nullable().default(null),
});

export type WorkspaceSettings = z.infer<typeof SETTINGS_SCHEMA>;

export function parseSettings(raw: unknown): WorkspaceSettings {
  const parsed = SETTINGS_SCHEMA.safeParse(raw ?? {});
  return parsed.success ? parsed.data : SETTINGS_SCHEMA.parse({});
}

export async function readSettings(db: Queryable, workspaceId: string): Promise<WorkspaceSettings> {
  const { rows } = await db.query<{ settings: unknown }>('SELECT settings FROM workspaces WHERE id = $1', [workspaceId]);
  return parseSettings(rows[0]?.settings);
}

/** Applies a change to the stored settings under a row lock, so two admins cannot lose an edit. */
export async function updateSettings(db: Queryable, workspaceId: string, change: (current: WorkspaceSettings) => WorkspaceSettings): Promise<WorkspaceSettings> {
  const { rows } = await db.query<{ settings: unknown }>('SELECT settings FROM workspaces WHERE id = $1 FOR UPDATE', [workspaceId]);
  const next = SETTINGS_SCHEMA.parse(change(parseSettings(rows[0]?.settings)));
  await db.query('UPDATE workspaces SET settings = $2 WHERE id = $1', [workspaceId, JSON.stringify(next)]);
  return next;
}
