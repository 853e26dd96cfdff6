/**
 * The encode of a non-compliant input (landscape 1920x1080, padded into 1080x1920) through the
 * ffmpeg wrapper (progress parsing, stderr ring) against raw ffmpeg with the identical argument
 * list and priority, alternating so that both meet the same background load. Then one post to TikTok and
 * YouTube, which share the vertical-1080 profile, through intake and the worker's transcode: one
 * encode must serve both.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { upsertAccount } from '../core/accounts.ts';
import { FFMPEG_BASE_ARGS, lowerPriority, probe, runFfmpeg } from '../core/ffmpeg.ts';
import { submitPost } from '../core/intake.ts';
import { encodeArgs } from '../core/video.ts';
import { ensureWorkspace } from '../core/workspaces.ts';
import { startWorker, type RunningWorker } from '../worker/main.ts';
import { profilesFor } from '../worker/transcode.ts';
import { makeClip } from '../tests/support/clips.ts';
import { testContext, type TestContext } from '../tests/support/context.ts';
import { atMost, info, median, until, type BenchOptions, type Row } from './support.ts';

function rawFfmpeg(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'ignore'] });
    // The same priority as the wrapper's runs: the comparison is of the wrapper, not of niceness.
    lowerPriority(child.pid);
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`raw ffmpeg exited ${code}`))));
  });
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function renditionsOf(ctx: TestContext, postId: string): Promise<Array<{ mode: string; profile_keys: string[] }>> {
  const { rows } = await ctx.pool.query<{ mode: string; profile_keys: string[] }>('SELECT r.mode, r.profile_keys FROM renditions r JOIN posts p ON p.media_id = r.media_id WHERE p.id = $1', [postId]);
  return rows;
}

export async function encode({ quick, log }: BenchOptions): Promise<Row[]> {
  const seconds = quick ? 3 : 6;
  const pairs = quick ? 3 : 5;
  const dir = await mkdtemp(join(tmpdir(), 'reelay-bench-encode-'));
  let ctx: TestContext | undefined;
  let worker: RunningWorker | undefined;
  try {
    const input = makeClip(join(dir, 'landscape.mp4'), { width: 1920, height: 1080, seconds, fps: 30 });
    const source = await probe(input);
    const args = encodeArgs(input, join(dir, 'out.mp4'), source, profilesFor(['tiktok'])[0]!);
    const wrapped: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < pairs; i++) {
      // Alternate which goes first, so neither always meets the other's leftovers.
      const order = i % 2 === 0 ? ['wrapped', 'raw'] : ['raw', 'wrapped'];
      for (const which of order) {
        if (which === 'wrapped') wrapped.push(await timed(() => runFfmpeg(args, { durationSeconds: seconds, onProgress: () => undefined })));
        else raw.push(await timed(() => rawFfmpeg([...FFMPEG_BASE_ARGS, ...args])));
      }
    }
    log(`  wrapper ${wrapped.map((t) => t.toFixed(0)).join(', ')} ms; raw ${raw.map((t) => t.toFixed(0)).join(', ')} ms`);
    // Each pair ran back to back under about the same background load: compare within pairs.
    const ratio = median(wrapped.map((w, i) => w / raw[i]!));

    ctx = await testContext();
    const c = ctx;
    await ensureWorkspace(c.pool, 'cli', 'UTC');
    for (const platform of ['tiktok', 'youtube'] as const) {
      await upsertAccount(c.pool, c.secrets, { workspaceId: 'cli', platform, handle: `${platform}.bench`, remoteId: null, credentials: { token: 'bench' }, expiresAt: null });
    }
    // Long enough for both platforms' 3 s minimum.
    const shared = makeClip(join(dir, 'shared.mp4'), { width: 1920, height: 1080, seconds: Math.max(4, seconds) });
    worker = await startWorker(c, { caps: {} });
    const t0 = Date.now();
    // Held for approval: the transcode runs, nothing is published.
    const { post } = await submitPost(c, { workspaceId: 'cli', authorId: 'cli', filePath: shared, caption: 'shared', targets: [{ platform: 'tiktok', handle: null }, { platform: 'youtube', handle: null }], requireApproval: true });
    await until('the transcode', async () => (await c.pool.query<{ media_state: string }>('SELECT media_state FROM posts WHERE id = $1', [post.id])).rows[0]?.media_state === 'ready', 300_000, 250);
    const made = await renditionsOf(c, post.id);
    const encodes = made.filter((r) => r.mode === 'encode');
    return [
      atMost('non-compliant encode: wrapper / raw ffmpeg', ratio, 'x', 1.05, `${seconds} s 1920x1080 → 1080x1920; median of ${pairs} back-to-back pairs (medians ${median(wrapped).toFixed(0)} vs ${median(raw).toFixed(0)} ms)`),
      atMost('TikTok + YouTube (shared profile): encodes', encodes.length, 'runs', 1, `renditions: ${made.map((r) => `${r.mode}(${r.profile_keys.join('+')})`).join(', ')}`),
      info('TikTok + YouTube: intake to media ready', Date.now() - t0, 'ms'),
    ];
  } finally {
    await worker?.stop();
    await ctx?.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}
