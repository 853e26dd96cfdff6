/**
 * A compliant input (1080x1920 H.264 High/AAC MP4) must be remuxed, never encoded: the plan for
 * every vertical platform is one remux, and that remux runs at many times realtime. The encode of
 * the same input is timed too, to show what the remux saves.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probe, runFfmpeg } from '../core/ffmpeg.ts';
import { encodeArgs, remuxArgs, renditionPlan } from '../core/video.ts';
import { profilesFor } from '../worker/transcode.ts';
import { makeClip } from '../tests/support/clips.ts';
import { atLeast, atMost, info, median, type BenchOptions, type Row } from './support.ts';

// Every platform on the shared vertical-1080 profile. Not Bluesky: its 50 MB limit makes a
// 30 s 1080x1920 clip non-compliant by size, and the encode that fits it is the right answer there.
const PLATFORMS = ['tiktok', 'youtube', 'instagram', 'facebook', 'linkedin', 'pinterest', 'threads'] as const;

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function remux({ quick, log }: BenchOptions): Promise<Row[]> {
  const seconds = quick ? 8 : 30;
  const dir = await mkdtemp(join(tmpdir(), 'reelay-bench-remux-'));
  try {
    const input = makeClip(join(dir, 'compliant.mp4'), { width: 1080, height: 1920, seconds, fps: 30 });
    const source = await probe(input);
    const plan = renditionPlan(source, profilesFor(PLATFORMS));
    const encodes = plan.filter((s) => s.mode === 'encode').length;
    log(`  ${(source.sizeBytes / 1e6).toFixed(0)} MB; plan for ${PLATFORMS.length} platforms: ${plan.map((s) => `${s.mode}(${s.profileKeys.join('+')})`).join(', ')}`);

    const remuxMs: number[] = [];
    for (let i = 0; i < 3; i++) remuxMs.push(await timed(() => runFfmpeg(remuxArgs(input, join(dir, `remux-${i}.mp4`)), { durationSeconds: seconds })));
    const profile = profilesFor(['tiktok'])[0]!;
    const encodeMs = await timed(() => runFfmpeg(encodeArgs(input, join(dir, 'encode.mp4'), source, profile), { durationSeconds: seconds }));
    const remuxTime = median(remuxMs);
    return [
      atMost('compliant input: encodes planned', encodes, 'runs', 0, `${PLATFORMS.length} platforms, ${plan.length} ffmpeg run(s)`),
      atLeast('compliant input: remux speed', (seconds * 1000) / remuxTime, 'x realtime', 50, `${seconds} s 1080x1920 clip, median of 3: ${remuxTime.toFixed(0)} ms`),
      info('compliant input: encode time instead', encodeMs, 'ms', `remux is ${(encodeMs / remuxTime).toFixed(0)}x faster`),
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
