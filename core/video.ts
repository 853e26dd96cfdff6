/**
 * Decisions about an input video, all pure: whether Reelay can use it at all, whether a platform
 * profile takes it as is, and the exact ffmpeg arguments that make a rendition. Keeping the
 * arguments pure lets the benchmark run bare ffmpeg with the very same command.
 */
import { readFile } from 'node:fs/promises';
import { MESSAGES } from './errors.ts';
import { fileUrl, runFfmpeg, type ProbeError, type ProbeResult, type VideoStreamInfo } from './ffmpeg.ts';
import type { VideoProfile } from './platforms.ts';

/** ffprobe's name for the ISO-BMFF demuxer: every MP4/MOV/M4A/3GP file reports exactly this. */
export const MP4_FORMAT_NAME = 'mov,mp4,m4a,3gp,3g2,mj2';

/**
 * Durations wobble by a frame or an AAC priming delay between tools; a clip cut at exactly the
 * limit must not be refused for 0.02 s.
 */
export const DURATION_SLACK_SECONDS = 0.05;

/** Demuxers for still images (and image sequences, which a single upload never is). */
const IMAGE_FORMATS = new Set(['image2', 'image2pipe']);

/** H.264 profiles every platform decoder takes; High 10 / 4:2:2 / 4:4:4 are not among them. */
const PLAIN_H264_PROFILES = new Set(['Constrained Baseline', 'Baseline', 'Main', 'High']);

/**
 * Above this average rate no short-form encode at CRF 23 gets near a platform's size limit, so
 * the encode is left uncapped and its arguments do not depend on the limits at all.
 */
const UNCAPPED_BITRATE = 16_000_000;
const AUDIO_BITRATE = 128_000;
/** Share of maxBytes the encode aims at: room for container overhead and VBV overshoot. */
const SIZE_TARGET_SHARE = 0.92;
const MIN_VIDEO_BITRATE = 200_000;
const VBV_SECONDS = 1;

/**
 * Below this a picture is not a video anyone means to post (and scaling it to an even size would
 * leave nothing); 32 is also X's smallest accepted side.
 */
export const MIN_PICTURE_SIDE = 32;
/** Relative gap between the average and the base frame rate beyond which frames are uneven. */
const VFR_TOLERANCE = 0.02;

/**
 * True when frames are unevenly spaced. Platforms mis-time such files (audio drifts, TikTok and
 * Instagram refuse some), so a rendition is always re-encoded at a constant rate.
 */
export function isVariableFrameRate(video: VideoStreamInfo): boolean {
  const { fps, baseFps } = video;
  if (fps == null || baseFps == null || !(baseFps > 0)) return false;
  return Math.abs(fps - baseFps) / baseFps > VFR_TOLERANCE;
}

function isImageFormat(formatName: string): boolean {
  return IMAGE_FORMATS.has(formatName) || formatName.endsWith('_pipe');
}

/** The user message when Reelay cannot use this input at all, or null when it can. */
export function inputProblem(probe: ProbeResult, name: string): string | null {
  const video = probe.video;
  if (!video) return probe.audio ? MESSAGES.noVideoStream(name) : MESSAGES.notAVideo(name);
  if (isImageFormat(probe.formatName)) return MESSAGES.notAVideo(name);
  // A one-frame GIF or a PNG inside some container is a picture, whatever the container says.
  if (video.frames === 1) return MESSAGES.notAVideo(name);
  if (probe.durationSeconds === null || !(probe.durationSeconds > 0)) return MESSAGES.notAVideo(name);
  // ffprobe found the stream but could not decode its parameters: the data is not all there.
  if (video.width <= 0 || video.height <= 0 || video.codec === 'unknown') return MESSAGES.corruptVideo(name);
  if (video.displayWidth < MIN_PICTURE_SIDE || video.displayHeight < MIN_PICTURE_SIDE) {
    return MESSAGES.pictureTooSmall(name, video.displayWidth, video.displayHeight, MIN_PICTURE_SIDE);
  }
  return null;
}

/**
 * The user message for a file ffprobe refused. `sizeBytes` is the uploaded size as the caller
 * knows it; an empty upload is reported as such whatever ffprobe said.
 */
export function describeProbeFailure(error: ProbeError, name: string, sizeBytes: number): string {
  if (sizeBytes === 0) return MESSAGES.fileEmpty(name);
  if (error.kind === 'not_found') return MESSAGES.fileNotFound(name);
  // Recognised by content yet unreadable (e.g. "moov atom not found" on an MP4 cut short):
  // damaged media. Otherwise it never was media, e.g. a text file renamed to .mp4.
  return error.detectedFormat !== null ? MESSAGES.corruptVideo(name) : MESSAGES.notAVideo(name);
}

function durationWithin(seconds: number, profile: VideoProfile): 'short' | 'long' | 'ok' {
  if (seconds < profile.minDurationSeconds - DURATION_SLACK_SECONDS) return 'short';
  if (seconds > profile.maxDurationSeconds + DURATION_SLACK_SECONDS) return 'long';
  return 'ok';
}

/** Refusals at intake that no conversion can fix: the video's length. */
export function profileProblem(probe: ProbeResult, profile: VideoProfile, label: string): string | null {
  const seconds = probe.durationSeconds;
  if (seconds === null) return null;
  switch (durationWithin(seconds, profile)) {
    case 'short':
      return MESSAGES.videoTooShort(label, seconds, profile.minDurationSeconds);
    case 'long':
      return MESSAGES.videoTooLong(label, seconds, profile.maxDurationSeconds);
    case 'ok':
      return null;
  }
}

function aspectOf(video: VideoStreamInfo): number {
  return video.displayWidth / video.displayHeight;
}

/** True when a remux (stream copy into a fresh faststart MP4) is all the profile needs. */
export function isCompliant(probe: ProbeResult, profile: VideoProfile): boolean {
  const video = probe.video;
  if (!video || probe.formatName !== MP4_FORMAT_NAME) return false;
  if (video.codec !== profile.videoCodec || video.pixFmt !== 'yuv420p') return false;
  if (video.profile === null || !PLAIN_H264_PROFILES.has(video.profile)) return false;
  // Players disagree on rotation metadata and on non-square pixels; an encode bakes both in.
  if (video.rotation !== 0 || Math.abs(video.sampleAspectRatio - 1) > 0.001) return false;
  if (probe.audio && probe.audio.codec !== profile.audioCodec) return false;
  if (video.displayWidth <= 0 || video.displayHeight <= 0) return false;
  if (video.displayWidth > profile.width || video.displayHeight > profile.height) return false;
  const aspect = aspectOf(video);
  if (aspect < profile.minAspect || aspect > profile.maxAspect) return false;
  if (video.fps === null || video.fps > profile.maxFps + 0.01 || isVariableFrameRate(video)) return false;
  if (probe.durationSeconds === null || durationWithin(probe.durationSeconds, profile) !== 'ok') return false;
  return probe.sizeBytes <= profile.maxBytes;
}

/** Copies the first real video track and first audio track (if any) into a faststart MP4. */
export function remuxArgs(input: string, output: string): string[] {
  return [
    '-i', fileUrl(input),
    // V, not v: skips cover art and thumbnails, which some files list before the video.
    '-map', '0:V:0',
    '-map', '0:a:0?',
    // Phone videos carry GPS coordinates and device names in container metadata; none of it
    // belongs in a public post.
    '-map_metadata', '-1',
    '-c', 'copy',
    '-movflags', '+faststart',
    '-f', 'mp4',
    fileUrl(output),
  ];
}

function constantRate(video: VideoStreamInfo, profile: VideoProfile): number {
  const base = video.baseFps ?? null;
  const rate = base !== null && base <= profile.maxFps + 0.01 ? base : (video.fps ?? profile.maxFps);
  return Math.min(profile.maxFps, Math.max(1, Number(rate.toFixed(3))));
}

function videoFilters(video: VideoStreamInfo, profile: VideoProfile): string {
  const { width: W, height: H } = profile;
  const filters: string[] = [];
  // First, so that every later filter handles fewer frames. Uneven frames are evened out at the
  // base rate, the rate the camera meant, unless that is a time base (browser WebM says 1000).
  if (isVariableFrameRate(video)) filters.push(`fps=${constantRate(video, profile)}`);
  else if (video.fps !== null && video.fps > profile.maxFps + 0.01) filters.push(`fps=${profile.maxFps}`);
  // The scale filter keeps the pixel (not display) aspect, so square the pixels before fitting.
  if (Math.abs(video.sampleAspectRatio - 1) > 0.001) filters.push('scale=w=trunc(iw*sar/2)*2:h=ih', 'setsar=1');
  const aspect = aspectOf(video);
  if (aspect < profile.minAspect || aspect > profile.maxAspect) {
    // The frame is padded to the whole box anyway, so the picture may grow to fill it.
    filters.push(
      `scale=w=${W}:h=${H}:force_original_aspect_ratio=decrease:force_divisible_by=2`,
      `pad=w=${W}:h=${H}:x=(ow-iw)/2:y=(oh-ih)/2:color=black`,
    );
  } else {
    // Only ever shrinks: upscaling a small input costs bytes and adds nothing.
    filters.push(`scale=w='min(${W},iw)':h='min(${H},ih)':force_original_aspect_ratio=decrease:force_divisible_by=2`);
  }
  filters.push('setsar=1');
  return filters.join(',');
}

/**
 * The video bitrate (and VBV buffer, VBV_SECONDS of it) that keeps the file under maxBytes, or
 * null when there is no risk. x264 can spend rate × duration plus one full buffer, which for a
 * short clip is a large share, so the buffer comes out of the budget too.
 */
function videoBitrateCap(probe: ProbeResult, profile: VideoProfile): number | null {
  const seconds = probe.durationSeconds;
  if (seconds === null || !(seconds > 0)) return null;
  const budgetBits = profile.maxBytes * 8 * SIZE_TARGET_SHARE;
  if (budgetBits / seconds >= UNCAPPED_BITRATE) return null;
  const videoBits = budgetBits - (probe.audio ? AUDIO_BITRATE * seconds : 0);
  return Math.max(MIN_VIDEO_BITRATE, Math.floor(videoBits / (seconds + VBV_SECONDS)));
}

/**
 * H.264 High / yuv420p / AAC in a faststart MP4 that fits the profile's box. ffmpeg's autorotate
 * stays on, so rotation metadata is applied to the pixels before these filters run.
 */
export function encodeArgs(input: string, output: string, probe: ProbeResult, profile: VideoProfile): string[] {
  const video = probe.video;
  if (!video) throw new Error('encodeArgs needs an input with a video stream');
  const cap = videoBitrateCap(probe, profile);
  const audio = probe.audio
    ? [
        '-c:a', 'aac', '-b:a', `${AUDIO_BITRATE / 1000}k`, '-ar', '48000',
        // 128 kb/s is a stereo budget; surround downmixes rather than starves.
        ...(probe.audio.channels !== null && probe.audio.channels > 2 ? ['-ac', '2'] : []),
      ]
    : ['-an'];
  return [
    '-i', fileUrl(input),
    '-map', '0:V:0',
    ...(probe.audio ? ['-map', '0:a:0'] : []),
    '-map_metadata', '-1',
    '-vf', videoFilters(video, profile),
    '-c:v', 'libx264',
    '-preset', 'veryfast',
    '-crf', '23',
    // Capped CRF: quality-driven, but never above the rate the size limit allows.
    ...(cap === null ? [] : ['-maxrate', `${Math.floor(cap / 1000)}k`, '-bufsize', `${Math.floor((cap * VBV_SECONDS) / 1000)}k`]),
    '-profile:v', 'high',
    '-pix_fmt', 'yuv420p',
    ...audio,
    '-movflags', '+faststart',
    '-max_muxing_queue_size', '1024',
    '-f', 'mp4',
    fileUrl(output),
  ];
}

export type RenditionStep =
  | { mode: 'remux'; profileKeys: string[] }
  | { mode: 'encode'; profile: VideoProfile; profileKeys: string[] };

/**
 * Platforms that share a key share one rendition, so it has to satisfy the strictest of their
 * limits. The box, fps and aspect are the same for one key by contract; taking the strictest of
 * those too keeps a slip in platforms.ts from producing a rendition one of them refuses.
 */
function strictest(a: VideoProfile, b: VideoProfile): VideoProfile {
  return {
    ...a,
    maxBytes: Math.min(a.maxBytes, b.maxBytes),
    minDurationSeconds: Math.max(a.minDurationSeconds, b.minDurationSeconds),
    maxDurationSeconds: Math.min(a.maxDurationSeconds, b.maxDurationSeconds),
    width: Math.min(a.width, b.width),
    height: Math.min(a.height, b.height),
    maxFps: Math.min(a.maxFps, b.maxFps),
    minAspect: Math.max(a.minAspect, b.minAspect),
    maxAspect: Math.min(a.maxAspect, b.maxAspect),
  };
}

/**
 * The fewest ffmpeg runs that serve every profile: one remux for all the profiles the input
 * already satisfies, and one encode per distinct set of encode arguments (normally one per key).
 * Profiles with the same key are merged into their strictest combination first. The caller
 * still checks each platform's own maxBytes against the file a step produced.
 */
export function renditionPlan(probe: ProbeResult, profiles: VideoProfile[]): RenditionStep[] {
  const byKey = new Map<string, VideoProfile>();
  for (const profile of profiles) {
    const seen = byKey.get(profile.key);
    byKey.set(profile.key, seen ? strictest(seen, profile) : profile);
  }

  const remuxKeys: string[] = [];
  const encodes = new Map<string, { mode: 'encode'; profile: VideoProfile; profileKeys: string[] }>();
  for (const profile of byKey.values()) {
    if (isCompliant(probe, profile)) {
      remuxKeys.push(profile.key);
      continue;
    }
    const signature = encodeArgs('in', 'out', probe, profile).join('\0');
    const existing = encodes.get(signature);
    if (existing) existing.profileKeys.push(profile.key);
    else encodes.set(signature, { mode: 'encode', profile, profileKeys: [profile.key] });
  }
  const plan: RenditionStep[] = [];
  if (remuxKeys.length > 0) plan.push({ mode: 'remux', profileKeys: remuxKeys });
  plan.push(...encodes.values());
  return plan;
}

/** A JPEG frame (at most 720 px a side) from early in the video: covers and approval previews. */
export async function extractFrame(video: string, path: string, durationSeconds: number, options: { signal?: AbortSignal; ffmpegPath?: string }): Promise<Buffer> {
  const at = Math.min(1, Math.max(0, durationSeconds / 2));
  await runFfmpeg(
    ['-ss', at.toFixed(3), '-i', video, '-frames:v', '1', '-vf', "scale='min(720,iw)':'min(720,ih)':force_original_aspect_ratio=decrease", '-q:v', '4', '-f', 'image2', path],
    options,
  );
  return readFile(path);
}
