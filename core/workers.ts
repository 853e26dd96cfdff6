/** Live worker processes, so `--wait` and the heartbeat alert know whether anyone is working. */
import type { Queryable } from './db.ts';

export const WORKER_STALE_SECONDS = 30;

export async function heartbeat(db: Queryable, worker: { id: string; hostname: string; pid: number }): Promise<void> {
  await db.query(
    `INSERT INTO workers (id, hostname, pid) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET seen_at = now()`,
    [worker.id, worker.hostname, worker.pid],
  );
}

export async function removeWorker(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM workers WHERE id = $1', [id]);
}

export async function liveWorkerCount(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ count: number }>(
    `SELECT count(*)::int AS count FROM workers WHERE seen_at > now() - make_interval(secs => $1)`,
    [WORKER_STALE_SECONDS],
  );
  return rows[0]?.count ?? 0;
}
