/**
 * Key rotation: every column that holds a SecretBox envelope is re-sealed under the current key in
 * one transaction, so a failure (or an envelope under a key nobody configured) leaves nothing
 * half-rotated. New sealed columns must be added to SEALED_COLUMNS (a test seals one of each).
 */
import type { SecretBox } from './crypto.ts';
import { withTransaction, type Client, type Pool } from './db.ts';
import { MESSAGES, UserError } from './errors.ts';

interface SealedColumn {
  /** Table and its primary key, the envelope column and the column naming its key id. */
  readonly table: string;
  readonly id: string;
  readonly value: string;
  readonly keyId: string;
}

export const SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: 'accounts', id: 'id', value: 'credentials', keyId: 'key_id' },
  { table: 'link_requests', id: 'token_hash', value: 'verifier', keyId: 'key_id' },
];

export interface RotationResult {
  /** Envelopes re-sealed under the current key. */
  changed: number;
  /** Envelopes looked at. */
  total: number;
  keyId: string;
}

// Identifiers come from the constant table above, never from input.
async function lockSealedRows(client: Client, column: SealedColumn): Promise<Array<{ id: string; value: Buffer }>> {
  const { rows } = await client.query<{ id: string; value: Buffer }>(
    `SELECT ${column.id}::text AS id, ${column.value} AS value FROM ${column.table} WHERE ${column.value} IS NOT NULL ORDER BY ${column.id} FOR UPDATE`,
  );
  return rows;
}

async function storeResealed(client: Client, column: SealedColumn, id: string, value: Buffer, keyId: string): Promise<void> {
  await client.query(`UPDATE ${column.table} SET ${column.value} = $2, ${column.keyId} = $3 WHERE ${column.id}::text = $1`, [id, value, keyId]);
}

/**
 * Re-seals every envelope not under the current key. Idempotent: a second run changes nothing.
 * Refuses (UserError, nothing written) if any envelope's key is neither current nor previous.
 */
export async function rotateSecrets(pool: Pool, box: SecretBox): Promise<RotationResult> {
  const known = new Set([box.keyId, ...box.previousKeyIds]);
  return withTransaction(pool, async (client) => {
    let changed = 0;
    let total = 0;
    for (const column of SEALED_COLUMNS) {
      for (const row of await lockSealedRows(client, column)) {
        total += 1;
        let kid: string;
        try {
          kid = box.keyIdOf(row.value);
        } catch {
          kid = 'unknown (unreadable envelope)';
        }
        if (!known.has(kid)) throw new UserError(MESSAGES.keysUnknownKey(`${column.table} ${row.id}`, kid));
        if (kid === box.keyId) continue;
        await storeResealed(client, column, row.id, box.seal(box.open(row.value)), box.keyId);
        changed += 1;
      }
    }
    return { changed, total, keyId: box.keyId };
  });
}
