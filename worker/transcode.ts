/**
 * Right after intake (not at the scheduled time, so a bad video is reported early): make one
 * rendition per distinct profile the post's deliveries need — a remux when the input already
 * satisfies a profile, one encode per other profile — then queue each delivery's publish job at
 * its scheduled time, in the same transaction that marks the media ready.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from '../core/context.ts';
import { withTransaction } from '../core/db.ts';
import { MESSAGES } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { FfmpegError, probe, runFfmpeg, type ProbeResult } from '../core/ffmpeg.ts';
import { sendPublish } from '../core/jobs.ts';
import { lockPost } from '../core/post-actions.ts';
import { exportToFile, getMedia, importFile, insertRendition } from '../core/media.ts';
import { recordTranscode } from '../core/metrics.ts';
import { PLATFORM_SPECS, type PlatformId, type VideoProfile } from '../core/platforms.ts';
import { getPost, listDeliveries, setJob, setMediaState, setRendition, transition } from '../core/posts.ts';
import { encodeArgs, extractFrame, remuxArgs, renditionPlan } from '../core/video.ts';
import type { Notifier } from './notify.ts';

const WORK_DIR_PREFIX = 'reelay-transcode-';

/**
 * A transcode's files live in a temporary directory that the job removes when it ends; a worker
 * killed mid-transcode (SIGKILL, OOM, a lost machine) leaves it, with a copy of the video, until
 * the next worker start on that machine removes it here. Only directories untouched for longer
 * than any transcode may run (its job expires after an hour) are taken, so workers sharing the
 * machine keep theirs.
 */
export async function sweepWorkDirs(root: string = tmpdir(), olderThanMs = 3 * 3600_000, now = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || !entry.name.startsWith(WORK_DIR_PREFIX)) continue;
    const path = join(root, entry.name);
    const info = await stat(path).catch(() => null);
    if (!info || now - info.mtimeMs < olderThanMs) continue;
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

/** What the publish step needs to know about a rendition, stored with it. */
export interface RenditionSummary {
  width: number;
  height: number;
  durationSeconds: number;
  videoCodec: string | null;
  audioCodec: string | null;
  fps: number | null;
}

export function summarize(result: ProbeResult): RenditionSummary {
  return {
    width: result.video?.displayWidth ?? 0,
    height: result.video?.displayHeight ?? 0,
    durationSeconds: result.durationSeconds ?? 0,
    videoCodec: result.video?.codec ?? null,
    audioCodec: result.audio?.codec ?? null,
    fps: result.video?.fps ?? null,
  };
}

/**
 * One profile per encode key. Platforms sharing a key share the encode, so the rendition must fit
 * the strictest duration and size limits among them to count as compliant.
 */
export function profilesFor(platforms: readonly PlatformId[]): VideoProfile[] {
  const byKey = new Map<string, VideoProfile>();
  for (const platform of platforms) {
    const video = PLATFORM_SPECS[platform].video;
    const seen = byKey.get(video.key);
    byKey.set(
      video.key,
      seen
        ? {
            ...seen,
            maxBytes: Math.min(seen.maxBytes, video.maxBytes),
            minDurationSeconds: Math.max(seen.minDurationSeconds, video.minDurationSeconds),
            maxDurationSeconds: Math.min(seen.maxDurationSeconds, video.maxDurationSeconds),
          }
        : { ...video },
    );
  }
  return [...byKey.values()];
}

/**
 * One JPEG frame (a second in, or mid-way through a shorter clip), at most 720 px on the long side:
 * the Pinterest cover and the chat preview. A failure costs the cover, not the post.
 */
export async function extractThumbnail(ctx: Context, video: string, path: string, durationSeconds: number, signal: AbortSignal, log: Logger): Promise<Buffer | null> {
  try {
    return await extractFrame(video, path, durationSeconds, { signal, ffmpegPath: ctx.config.media.ffmpegPath });
  } catch (error) {
    if (signal.aborted) throw error;
    log.warn({ err: error }, 'could not extract a thumbnail');
    return null;
  }
}

export async function handleTranscode(ctx: Context, notify: Notifier, postId: string, signal: AbortSignal): Promise<void> {
  const log = ctx.log.child({ component: 'transcode', postId });
  const post = await getPost(ctx.pool, postId);
  if (post && post.media_state === 'pending' && !post.media_id) {
    // The retention sweep deleted the video (a retry long after a failed conversion).
    await withTransaction(ctx.pool, async (tx) => {
      await setMediaState(tx, postId, 'failed', MESSAGES.mediaExpired(postId));
      for (const delivery of await listDeliveries(tx, postId)) {
        if (delivery.state === 'scheduled') await transition(tx, delivery.id, 'failed', { errorCode: 'invalid_media', error: MESSAGES.mediaExpired(postId) });
      }
    });
    await notify.postChanged(postId);
    return;
  }
  if (!post || post.media_state !== 'pending' || !post.media_id) return log.debug('nothing to transcode');
  const media = await getMedia(ctx.pool, post.media_id);
  if (!media) throw new Error(`Media ${post.media_id} is missing.`);
  const deliveries = (await listDeliveries(ctx.pool, postId)).filter((d) => d.state === 'scheduled' || d.state === 'awaiting_approval');

  const profiles = profilesFor(deliveries.map((d) => d.platform));

  const dir = await mkdtemp(join(tmpdir(), WORK_DIR_PREFIX));
  // Deliveries whose platform cannot take the rendition, with the reason.
  const rejected = new Map<string, string>();
  try {
    const input = join(dir, 'input');
    await exportToFile(ctx.pool, media, input);
    const source = await probe(input, { signal, ffprobePath: ctx.config.media.ffprobePath });
    const plan = renditionPlan(source, profiles);
    for (const [index, step] of plan.entries()) {
      const output = join(dir, `rendition-${index}.mp4`);
      const started = Date.now();
      const args = step.mode === 'remux' ? remuxArgs(input, output) : encodeArgs(input, output, source, step.profile);
      await runFfmpeg(args, {
        signal,
        ffmpegPath: ctx.config.media.ffmpegPath,
        ...(source.durationSeconds ? { durationSeconds: source.durationSeconds } : {}),
        onProgress: (fraction) => notify.progress?.({ postId, deliveryId: null, stage: 'transcoding', fraction: (index + fraction) / plan.length }),
      });
      const made = await probe(output, { signal, ffprobePath: ctx.config.media.ffprobePath });
      // Size is checked per platform: platforms sharing an encode may still take different sizes.
      for (const delivery of deliveries) {
        const { video, label } = PLATFORM_SPECS[delivery.platform];
        if (step.profileKeys.includes(video.key) && made.sizeBytes > video.maxBytes) {
          rejected.set(delivery.id, MESSAGES.videoTooBig(label, made.sizeBytes, video.maxBytes));
        }
      }
      const thumbnail = await extractThumbnail(ctx, output, join(dir, `thumbnail-${index}.jpg`), made.durationSeconds ?? 0, signal, log);
      await withTransaction(ctx.pool, async (tx) => {
        const stored = await importFile(tx, output);
        const rendition = await insertRendition(tx, { mediaId: media.id, profileKeys: step.profileKeys, mode: step.mode, probe: summarize(made), stored, thumbnail });
        for (const key of step.profileKeys) await setRendition(tx, postId, key, rendition.id);
      });
      recordTranscode(step.mode, (Date.now() - started) / 1000);
      log.info({ mode: step.mode, profiles: step.profileKeys, ms: Date.now() - started, bytes: made.sizeBytes }, 'rendition ready');
    }
  } catch (error) {
    if (signal.aborted) throw error;
    const detail = error instanceof FfmpegError ? (error.stderrTail.split('\n').filter(Boolean).at(-1) ?? error.message) : error instanceof Error ? error.message : String(error);
    log.warn({ err: error }, 'transcode failed');
    await withTransaction(ctx.pool, async (tx) => {
      await setMediaState(tx, postId, 'failed', MESSAGES.transcodeFailed(detail));
      for (const delivery of deliveries) await transition(tx, delivery.id, 'failed', { errorCode: 'invalid_media', error: MESSAGES.transcodeFailed(detail) });
    });
    await notify.postChanged(postId);
    return;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  await withTransaction(ctx.pool, async (tx) => {
    // Under the post's lock and from fresh rows: an approval or a reschedule during the encode
    // changed states and times, and whichever commits second queues the publish jobs.
    const locked = await lockPost(tx, postId);
    await setMediaState(tx, postId, 'ready');
    for (const delivery of await listDeliveries(tx, postId)) {
      const reason = rejected.get(delivery.id);
      if (reason) {
        if (delivery.state === 'scheduled' || delivery.state === 'awaiting_approval') await transition(tx, delivery.id, 'failed', { errorCode: 'invalid_media', error: reason });
      } else if (delivery.state === 'scheduled') {
        const jobId = await sendPublish(ctx.boss, { deliveryId: delivery.id }, locked?.scheduled_at ?? post.scheduled_at, tx);
        await setJob(tx, delivery.id, jobId);
      }
    }
  });
  await notify.postChanged(postId);
}
