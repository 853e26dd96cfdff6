/**
 * Cuts a video that is too long for a platform into parts that fit, by stream copy at keyframes:
 * no re-encode, so no quality loss and it runs at disk speed. A part may only start on a
 * keyframe, so the cut points are chosen from the file's own keyframe times.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { MESSAGES, UserError } from './errors.ts';
import { fileUrl, probe, runFfmpeg } from './ffmpeg.ts';

export interface SplitOptions {
  maxSeconds: number;
  /** Where the parts are written (created if missing); the caller removes them. */
  dir: string;
  ffmpegPath?: string;
  ffprobePath?: string;
  signal?: AbortSignal;
}

export interface SplitPart {
  path: string;
  /** Where the part starts in the input, in seconds. */
  startSeconds: number;
  /** As ffprobe measures the written part. */
  durationSeconds: number;
}

/**
 * A part runs a little past its last video frame: its audio ends on a whole audio frame (about
 * 0.02 s of AAC at 48 kHz, 0.05 s at low sample rates). Cut this much early so the measured part
 * still fits; the result is measured anyway.
 */
const FIRST_MARGIN_SECONDS = 0.1;
const ATTEMPTS = 3;

/** Containers that take whatever a stream copy from the same container carries. */
const KEEP_EXTENSIONS = new Set(['.mp4', '.m4v', '.mov', '.mkv', '.webm']);

/** "Part 2/3" on a line of its own after the caption, or alone when there is none. */
export function partCaption(caption: string, index: number, count: number): string {
  const label = `Part ${index}/${count}`;
  const trimmed = caption.trimEnd();
  return trimmed === '' ? label : `${trimmed}\n\n${label}`;
}

/**
 * Where to cut: keyframe times (seconds, ascending) at which parts start after the first,
 * greedy so that there are as few parts as possible. Throws UserError when two keyframes are
 * further apart than a part may be long.
 */
export function chooseCuts(keyframes: readonly number[], durationSeconds: number, maxSeconds: number, marginSeconds: number): number[] {
  const budget = maxSeconds - marginSeconds;
  if (!(budget > 0)) throw new RangeError(`maxSeconds ${maxSeconds} leaves no room for a part`);
  const cuts: number[] = [];
  let start = 0;
  while (durationSeconds - start > budget) {
    let next: number | null = null;
    let gapEnd = durationSeconds;
    for (const time of keyframes) {
      if (time <= start) continue;
      if (time - start <= budget) next = time;
      else {
        gapEnd = time;
        break;
      }
    }
    if (next === null) throw new UserError(MESSAGES.splitNeedsReencode(maxSeconds, gapEnd - start));
    cuts.push(next);
    start = next;
  }
  return cuts;
}

/** A keyframe's presentation time and decode time, in seconds from the start of the file. */
export interface Keyframe {
  pts: number;
  dts: number;
}

/**
 * Parses ffmpeg's framecrc output: one line a packet, "stream, dts, pts, duration, size, crc"
 * and ", F=0x.." when the flags are anything but "keyframe"; "#tb 0: num/den" gives the unit.
 */
export function keyframesFromFramecrc(framecrc: string): Keyframe[] {
  let timeBase = 0;
  const keyframes: Keyframe[] = [];
  for (const line of framecrc.split('\n')) {
    const tb = line.match(/^#tb 0: (\d+)\/(\d+)/);
    if (tb) {
      timeBase = Number(tb[1]) / Number(tb[2]);
      continue;
    }
    if (line.startsWith('#') || line.trim() === '') continue;
    const fields = line.split(',').map((f) => f.trim());
    if (fields[0] !== '0') continue;
    const dts = Number(fields[1]);
    const pts = Number(fields[2]);
    const flagField = fields.find((f) => f.startsWith('F='));
    const flags = flagField ? Number.parseInt(flagField.slice(2), 16) : 1;
    if ((flags & 1) === 1 && Number.isFinite(pts) && Number.isFinite(dts)) keyframes.push({ pts: pts * timeBase, dts: dts * timeBase });
  }
  return keyframes.sort((a, b) => a.pts - b.pts);
}

async function readKeyframes(input: string, dir: string, options: SplitOptions): Promise<Keyframe[]> {
  const listPath = join(dir, 'keyframes.framecrc');
  try {
    // Copying the video stream into framecrc reads packets only (no decode) and prints their
    // flags, with timestamps on the same scale the cutting runs below use.
    await runFfmpeg(['-i', fileUrl(input), '-map', '0:v:0', '-c', 'copy', '-f', 'framecrc', fileUrl(listPath)], runOptions(options));
    return keyframesFromFramecrc(await readFile(listPath, 'utf8'));
  } finally {
    await rm(listPath, { force: true });
  }
}

function runOptions(options: SplitOptions): { ffmpegPath?: string; signal?: AbortSignal } {
  return {
    ...(options.ffmpegPath !== undefined ? { ffmpegPath: options.ffmpegPath } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  };
}

function probeOptions(options: SplitOptions): { ffprobePath?: string; signal?: AbortSignal } {
  return {
    ...(options.ffprobePath !== undefined ? { ffprobePath: options.ffprobePath } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  };
}

function partExtension(input: string, formatName: string): string {
  const ext = extname(input).toLowerCase();
  if (KEEP_EXTENSIONS.has(ext)) return ext;
  return formatName.startsWith('mov,') ? '.mp4' : '.mkv';
}

/**
 * Splits `input` into parts of at most `maxSeconds`, in order. A video that already fits comes
 * back as one part whose path is `input` itself (nothing is written). Throws UserError when the
 * keyframes are too far apart to cut without re-encoding.
 */
export async function splitVideo(input: string, options: SplitOptions): Promise<SplitPart[]> {
  const { maxSeconds, dir } = options;
  const info = await probe(input, probeOptions(options));
  const duration = info.durationSeconds;
  if (duration === null) throw new Error(`ffprobe reports no duration for ${input}`);
  if (duration <= maxSeconds) return [{ path: input, startSeconds: 0, durationSeconds: duration }];

  await mkdir(dir, { recursive: true });
  const keyframes = await readKeyframes(input, dir, options);
  const ext = partExtension(input, info.formatName);
  let margin = FIRST_MARGIN_SECONDS;
  for (let attempt = 1; ; attempt++) {
    const cuts = chooseCuts(
      keyframes.map((k) => k.pts),
      duration,
      maxSeconds,
      margin,
    );
    const parts = await writeParts(input, cuts, keyframes, ext, options);
    const longest = Math.max(...parts.map((p) => p.durationSeconds));
    if (longest <= maxSeconds) return parts;
    await Promise.all(parts.map((p) => rm(p.path, { force: true })));
    // Only an unusual audio layout overruns the margin; cut earlier by what it overran.
    if (attempt === ATTEMPTS) throw new Error(`split parts of ${input} still run to ${longest} s (limit ${maxSeconds} s)`);
    margin += longest - maxSeconds + 0.05;
  }
}

/** Seconds as ffmpeg reads them; microseconds are far finer than any frame. */
function seconds(value: number): string {
  return Math.max(0, value).toFixed(6);
}

/**
 * One ffmpeg run a part, each reading only its stretch (input seeking). The video and the audio
 * come from two inputs of the same file so that each stops on its own clock: ffmpeg stops a
 * copied stream by decode time, and with B-frames a keyframe is decoded before it is shown, so
 * the video's limit is the next cut's decode time while the audio runs to its presentation time.
 */
async function writeParts(input: string, cuts: number[], keyframes: readonly Keyframe[], ext: string, options: SplitOptions): Promise<SplitPart[]> {
  const decodeTime = new Map(keyframes.map((k) => [k.pts, k.dts]));
  const starts = [0, ...cuts];
  const parts: SplitPart[] = [];
  try {
    for (const [i, startSeconds] of starts.entries()) {
    const end = cuts[i];
    const path = join(options.dir, `part-${String(i + 1).padStart(3, '0')}${ext}`);
    const ss = ['-ss', seconds(startSeconds)];
    // Half a millisecond short of the next keyframe's decode time: it belongs to the next part.
    const videoLimit = end === undefined ? [] : ['-t', seconds((decodeTime.get(end) ?? end) - startSeconds - 0.0005)];
    const audioLimit = end === undefined ? [] : ['-t', seconds(end - startSeconds)];
    const args = [...ss, ...videoLimit, '-i', fileUrl(input), ...ss, ...audioLimit, '-i', fileUrl(input)];
    // copypriorss 0: a seek may land before the cut (Matroska even a keyframe early); what
    // comes before it belongs to the previous part, and the video then starts at the cut's
    // keyframe, the first one not dropped.
    args.push('-map', '0:v:0', '-map', '1:a:0?', '-c', 'copy', '-copypriorss', '0');
    if (ext === '.mp4' || ext === '.m4v' || ext === '.mov') args.push('-movflags', '+faststart');
    args.push(fileUrl(path));
    await runFfmpeg(args, runOptions(options));
    const measured = await probe(path, probeOptions(options));
    parts.push({ path, startSeconds, durationSeconds: measured.durationSeconds ?? 0 });
    }
  } catch (error) {
    await Promise.all(starts.map((_, i) => rm(join(options.dir, `part-${String(i + 1).padStart(3, '0')}${ext}`), { force: true })));
    throw error;
  }
  return parts;
}
