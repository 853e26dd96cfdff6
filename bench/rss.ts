/**
 * Peak memory of a worker process (`reelay worker`, its own process) that transcodes and uploads a
 * 1 GB video to the YouTube simulator. The video is compliant, so the transcode is a remux and the
 * bytes cross the worker three times (export from Postgres, import of the rendition, the upload):
 * streaming everywhere should keep the process far below the file's size. VmHWM of the worker's
 * /proc status is its peak resident set over its whole life (ffmpeg's own memory is not in it).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { upsertAccount } from '../core/accounts.ts';
import { submitPost } from '../core/intake.ts';
import { liveWorkerCount } from '../core/workers.ts';
import { ensureWorkspace } from '../core/workspaces.ts';
import { testContext, type TestContext } from '../tests/support/context.ts';
import { startYoutubeSim, type YoutubeSim } from '../tests/sim/youtube.ts';
import { atMost, info, sleep, spawnWorker, until, type BenchOptions, type Row, type WorkerChild } from './support.ts';

const MB = 1024 * 1024;

function ffmpeg(args: string[]): void {
  const result = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ffmpeg failed: ${result.stderr}`);
}

/**
 * A compliant 720x1280 H.264/AAC MP4 of at least `bytes`: a few seconds of noise at a very high
 * rate (noise does not compress), stream-copied end to end as often as needed.
 */
function bigVideo(dir: string, bytes: number): string {
  const segment = join(dir, 'segment.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=720x1280:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '4', '-vf', 'noise=alls=60:allf=t', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '10', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', segment]);
  const loops = Math.max(1, Math.ceil(bytes / statSync(segment).size));
  const out = join(dir, 'big.mp4');
  ffmpeg(['-stream_loop', String(loops - 1), '-i', segment, '-c', 'copy', '-movflags', '+faststart', out]);
  return out;
}

function peakRssMb(pid: number): number | null {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export async function rss({ quick, log }: BenchOptions): Promise<Row[]> {
  const target = quick ? 100 * MB : 1000 * 1000 * 1000;
  let sim: YoutubeSim | undefined;
  let ctx: TestContext | undefined;
  let worker: WorkerChild | undefined;
  try {
    sim = await startYoutubeSim({ insertsPerDay: 1_000_000, unitsPerDay: 1_000_000_000, channelUploadsPerDay: 1_000_000, processingPolls: 0 });
    const env = { YOUTUBE_API_URL: sim.urls.api, YOUTUBE_UPLOAD_URL: sim.urls.upload, GOOGLE_TOKEN_URL: sim.urls.token, GOOGLE_CLIENT_ID: sim.client.clientId, GOOGLE_CLIENT_SECRET: sim.client.clientSecret };
    ctx = await testContext({ env });
    const c = ctx;
    await ensureWorkspace(c.pool, 'cli', 'UTC');
    const creds = sim.addAccount();
    await upsertAccount(c.pool, c.secrets, { workspaceId: 'cli', platform: 'youtube', handle: 'rss.bench', remoteId: sim.users.get(creds.userId)!.channelId, credentials: creds, expiresAt: new Date(creds.expiresAt) });

    let t0 = Date.now();
    const file = bigVideo(c.dir, target);
    const size = statSync(file).size;
    const label = size >= 1e9 ? `${(size / 1e9).toFixed(2)} GB` : `${(size / MB).toFixed(0)} MiB`;
    log(`  generated ${(size / MB).toFixed(0)} MiB in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    // Started first and idle: its peak then is the baseline a worker needs before any video.
    worker = spawnWorker(c, env, 'rss');
    const pid = worker.child.pid!;
    await until('the worker', async () => (await liveWorkerCount(c.pool)) >= 1, 120_000, 250);
    await sleep(2000);
    const idle = peakRssMb(pid);

    t0 = Date.now();
    const { post } = await submitPost(c, { workspaceId: 'cli', authorId: 'cli', filePath: file, caption: 'big', targets: [{ platform: 'youtube', handle: null }] });
    log(`  intake (import into Postgres) ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    t0 = Date.now();
    const seen: { afterTranscode: number | null } = { afterTranscode: null };
    const final = await until(
      'the upload',
      async () => {
        const { rows } = await c.pool.query<{ state: string; error: string | null; media_state: string }>('SELECT d.state, d.error, p.media_state FROM deliveries d JOIN posts p ON p.id = d.post_id WHERE p.id = $1', [post.id]);
        const row = rows[0]!;
        if (seen.afterTranscode === null && row.media_state === 'ready') seen.afterTranscode = peakRssMb(pid);
        if (worker!.child.exitCode !== null) throw new Error(`the worker exited: ${worker!.stderr()}`);
        return ['processing', 'published', 'failed', 'unconfirmed'].includes(row.state) ? row : null;
      },
      30 * 60_000,
      250,
    );
    const peak = peakRssMb(pid);
    if (final.state === 'failed' || final.state === 'unconfirmed') throw new Error(`the delivery ended ${final.state}: ${final.error ?? ''}`);
    const uploaded = sim.videos.at(-1);
    // The remux rewrites the container only, so the upload is within a few percent of the input.
    if (!uploaded || uploaded.size < size * 0.9) throw new Error(`the simulator received ${uploaded?.size ?? 0} bytes of ${size}`);
    log(`  transcode + upload ${((Date.now() - t0) / 1000).toFixed(0)} s; uploaded ${(uploaded.size / MB).toFixed(0)} MiB`);
    if (peak === null) throw new Error('could not read the worker’s VmHWM');
    return [
      atMost(`peak RSS, worker publishing a ${label} file`, peak, 'MiB', 200, `to the YouTube simulator; ${seen.afterTranscode === null ? '' : `${seen.afterTranscode.toFixed(0)} MiB by the end of the remux`}`),
      info('peak RSS, the same worker idle before it', idle, 'MiB'),
      info(`${label} file: worker transcode + upload`, Date.now() - t0, 'ms'),
    ];
  } finally {
    await worker?.stop();
    await ctx?.dispose();
    await sim?.close();
  }
}
