/**
 * Scale-out: deliveries per second with 1 and then 4 `reelay worker` processes on one Postgres,
 * uploading to the YouTube simulator behind a proxy that adds 50 ms to every request (a real
 * API's round trip; the simulator itself answers at once).
 *
 * Each run gets its own accounts (so the per-account caps of the CLI worker, left on as in
 * production, are never reached: 20 uploads per account against YouTube's 90 a day) and its own
 * posts, transcoded beforehand by an in-process worker and held for approval. The workers start
 * and report live first; the clock runs from the release of every post until every delivery's
 * upload is done (`processing` or `published`: what follows is YouTube's processing time,
 * polled 30 s later, not the worker's work).
 *
 * Measured twice: with the default 4 jobs per process, and with 1. On two cores one process with 4
 * slots already reaches what the machine can do (workers, Postgres and the simulator share them),
 * so four processes cannot add to it and the ratio measures the machine; with one slot per
 * process, four processes stay under that ceiling and the ratio shows whether processes add up
 * (no lock or queue contention between them). The 3.5x target is read there.
 */
import { join } from 'node:path';
import { upsertAccount } from '../core/accounts.ts';
import { submitPost } from '../core/intake.ts';
import { releasePost } from '../core/post-actions.ts';
import { liveWorkerCount } from '../core/workers.ts';
import { ensureWorkspace } from '../core/workspaces.ts';
import { startWorker } from '../worker/main.ts';
import { makeClip } from '../tests/support/clips.ts';
import { testContext, type TestContext } from '../tests/support/context.ts';
import { startYoutubeSim, type YoutubeSim } from '../tests/sim/youtube.ts';
import { atLeast, info, spawnWorker, startDelayProxy, until, type BenchOptions, type DelayProxy, type Row, type WorkerChild } from './support.ts';

const LATENCY_MS = 50;
const ACCOUNTS = 20;

async function uploadedCount(ctx: TestContext, postIds: readonly string[]): Promise<{ done: number; failed: number }> {
  const { rows } = await ctx.pool.query<{ done: number; failed: number }>(
    `SELECT count(*) FILTER (WHERE state IN ('processing', 'published'))::int AS done,
            count(*) FILTER (WHERE state IN ('failed', 'unconfirmed'))::int AS failed
       FROM deliveries WHERE post_id = ANY($1::uuid[])`,
    [postIds],
  );
  return rows[0]!;
}

async function mediaReady(ctx: TestContext, postIds: readonly string[]): Promise<boolean> {
  const { rows } = await ctx.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM posts WHERE media_state = 'ready' AND id = ANY($1::uuid[])`, [postIds]);
  return rows[0]!.n === postIds.length;
}

export async function throughput({ quick, log }: BenchOptions): Promise<Row[]> {
  const deliveries = quick ? 100 : 400;
  let sim: YoutubeSim | undefined;
  let proxy: DelayProxy | undefined;
  let ctx: TestContext | undefined;
  const children: WorkerChild[] = [];
  try {
    sim = await startYoutubeSim({ insertsPerDay: 1_000_000, unitsPerDay: 1_000_000_000, channelUploadsPerDay: 1_000_000, processingPolls: 0 });
    proxy = await startDelayProxy(sim.url, LATENCY_MS);
    const base = proxy.url;
    const env = { YOUTUBE_API_URL: base, YOUTUBE_UPLOAD_URL: `${base}/upload`, GOOGLE_TOKEN_URL: `${base}/token`, GOOGLE_CLIENT_ID: sim.client.clientId, GOOGLE_CLIENT_SECRET: sim.client.clientSecret };
    ctx = await testContext({ env });
    const c = ctx;
    const s = sim;
    await ensureWorkspace(c.pool, 'cli', 'UTC');
    const clip = makeClip(join(c.dir, 'clip.mp4'), { width: 360, height: 640, seconds: 2 });

    const rates = new Map<string, number>();
    for (const concurrency of [4, 1]) {
      for (const processes of [1, 4]) {
        const run = `c${concurrency}-p${processes}`;
        const handles: string[] = [];
        for (let i = 0; i < ACCOUNTS; i++) {
          const creds = s.addAccount();
          const handle = `${run}-a${i}`;
          await upsertAccount(c.pool, c.secrets, { workspaceId: 'cli', platform: 'youtube', handle, remoteId: s.users.get(creds.userId)!.channelId, credentials: creds, expiresAt: new Date(creds.expiresAt) });
          handles.push(handle);
        }
        const postIds: string[] = [];
        for (let i = 0; i < deliveries / ACCOUNTS; i++) {
          const { post } = await submitPost(c, { workspaceId: 'cli', authorId: 'cli', filePath: clip, caption: `run ${run} post ${i}`, targets: handles.map((handle) => ({ platform: 'youtube' as const, handle })), requireApproval: true });
          postIds.push(post.id);
        }
        const prep = await startWorker(c, { caps: {} });
        await until('the transcodes', () => mediaReady(c, postIds), 10 * 60_000, 250);
        await prep.stop();

        for (let i = 0; i < processes; i++) children.push(spawnWorker(c, { ...env, WORKER_CONCURRENCY: String(concurrency) }, `${run}-${i}`));
        await until(`${processes} live worker(s)`, async () => (await liveWorkerCount(c.pool)) >= processes, 120_000, 250);

        const t0 = performance.now();
        for (const id of postIds) await releasePost(c, id);
        const result = await until(
          'every upload',
          async () => {
            const counts = await uploadedCount(c, postIds);
            if (counts.failed > 0) throw new Error(`${counts.failed} deliveries failed; worker stderr: ${children.map((w) => w.stderr()).join('\n')}`);
            return counts.done === deliveries ? counts : null;
          },
          10 * 60_000,
          100,
        );
        const seconds = (performance.now() - t0) / 1000;
        rates.set(run, result.done / seconds);
        log(`  ${processes} worker process(es), ${concurrency} job(s) each: ${result.done} deliveries in ${seconds.toFixed(1)} s`);
        for (const child of children.splice(0)) await child.stop();
      }
    }
    const rate = (concurrency: number, processes: number) => rates.get(`c${concurrency}-p${processes}`)!;
    return [
      info('throughput, 1 worker process', rate(4, 1), 'deliveries/s', `${deliveries} uploads, ${LATENCY_MS} ms per request, 4 jobs per process (the default)`),
      info('throughput, 4 worker processes', rate(4, 4), 'deliveries/s'),
      info('throughput, 4 / 1 worker processes', rate(4, 4) / rate(4, 1), 'x', 'one process already reaches what the two cores can do: see notes'),
      info('throughput, 1 process with 1 job', rate(1, 1), 'deliveries/s'),
      info('throughput, 4 processes with 1 job each', rate(1, 4), 'deliveries/s'),
      atLeast('throughput, 4 / 1 processes, 1 job each', rate(1, 4) / rate(1, 1), 'x', 3.5),
    ];
  } finally {
    for (const child of children) await child.stop();
    await ctx?.dispose();
    await proxy?.close();
    await sim?.close();
  }
}
