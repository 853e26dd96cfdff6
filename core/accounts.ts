/**
 * Linked platform accounts. Credentials are sealed with the SecretBox before they reach a query and
 * opened only inside `withLockedCredentials`, which holds the row lock while a refresh spends a
 * (possibly rotating) refresh token, so two workers can never both spend one.
 */
import type { SecretBox } from './crypto.ts';
import type { Client, Pool, Queryable } from './db.ts';
import { withTransaction } from './db.ts';
import type { Credentials, PlatformId } from './platforms.ts';
import { recordEvent } from './posts.ts';

export type AccountState = 'active' | 'needs_reauth' | 'disabled';

export interface AccountRow {
  id: string;
  workspace_id: string;
  platform: PlatformId;
  handle: string;
  remote_id: string | null;
  state: AccountState;
  expires_at: Date | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
}

const PUBLIC_COLUMNS = 'id, workspace_id, platform, handle, remote_id, state, expires_at, last_error, created_at, updated_at';

export async function upsertAccount(
  db: Queryable,
  box: SecretBox,
  account: { workspaceId: string; platform: PlatformId; handle: string; remoteId: string | null; credentials: Credentials; expiresAt: Date | null },
): Promise<AccountRow> {
  const { rows } = await db.query<AccountRow>(
    `INSERT INTO accounts (workspace_id, platform, handle, remote_id, credentials, key_id, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (workspace_id, platform, lower(handle)) WHERE state <> 'disabled'
     DO UPDATE SET remote_id = EXCLUDED.remote_id, credentials = EXCLUDED.credentials, key_id = EXCLUDED.key_id,
                   expires_at = EXCLUDED.expires_at, state = 'active', last_error = NULL, updated_at = now()
     RETURNING ${PUBLIC_COLUMNS}`,
    [account.workspaceId, account.platform, account.handle, account.remoteId, box.seal(account.credentials), box.keyId, account.expiresAt],
  );
  const row = rows[0]!;
  await recordEvent(db, { type: 'account.linked', workspaceId: account.workspaceId, accountId: row.id, data: { platform: account.platform, handle: account.handle } });
  return row;
}

export async function listAccounts(db: Queryable, workspaceId: string): Promise<AccountRow[]> {
  const { rows } = await db.query<AccountRow>(
    `SELECT ${PUBLIC_COLUMNS} FROM accounts WHERE workspace_id = $1 AND state <> 'disabled' ORDER BY platform, handle`,
    [workspaceId],
  );
  return rows;
}

export async function getAccount(db: Queryable, id: string): Promise<AccountRow | null> {
  const { rows } = await db.query<AccountRow>(`SELECT ${PUBLIC_COLUMNS} FROM accounts WHERE id = $1`, [id]);
  return rows[0] ?? null;
}

/** Opens an account's credentials without locking (read-only use). */
export async function readCredentials(db: Queryable, box: SecretBox, accountId: string): Promise<Credentials> {
  const { rows } = await db.query<{ credentials: Buffer }>('SELECT credentials FROM accounts WHERE id = $1', [accountId]);
  if (!rows[0]) throw new Error(`Account ${accountId} not found.`);
  return box.open(rows[0].credentials) as Credentials;
}

/**
 * Runs `fn` with the account's credentials under a row lock; whatever it returns as `credentials`
 * is sealed and saved in the same transaction.
 */
export async function withLockedCredentials<T>(
  pool: Pool,
  box: SecretBox,
  accountId: string,
  fn: (credentials: Credentials, tx: Client) => Promise<{ credentials?: Credentials; expiresAt?: Date | null; result: T }>,
): Promise<T> {
  return withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<{ credentials: Buffer }>('SELECT credentials FROM accounts WHERE id = $1 FOR UPDATE', [accountId]);
    if (!rows[0]) throw new Error(`Account ${accountId} not found.`);
    const outcome = await fn(box.open(rows[0].credentials) as Credentials, tx);
    if (outcome.credentials) {
      await tx.query(
        `UPDATE accounts SET credentials = $2, key_id = $3, expires_at = COALESCE($4, expires_at), updated_at = now() WHERE id = $1`,
        [accountId, box.seal(outcome.credentials), box.keyId, outcome.expiresAt ?? null],
      );
    }
    return outcome.result;
  });
}

export async function setAccountState(db: Queryable, accountId: string, state: AccountState, lastError: string | null): Promise<void> {
  await db.query('UPDATE accounts SET state = $2, last_error = $3, updated_at = now() WHERE id = $1', [accountId, state, lastError]);
  await recordEvent(db, { type: `account.${state}`, accountId, data: { error: lastError ?? undefined } });
}
