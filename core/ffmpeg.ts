/**
 * A small typed wrapper over the ffprobe and ffmpeg binaries: argument arrays only, never a shell,
 * bounded memory for whatever the child prints, and cancellation through an AbortSignal.
 */
import { spawn } from 'node:child_process';
import { open, stat } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';
import { z } from 'zod';

export interface VideoStreamInfo {
  codec: string;
  /** The codec profile as ffprobe names it, e.g. "High" or "Constrained Baseline". */
  profile: string | null;
  pixFmt: string | null;
  /** Coded size, before rotation. */
  width: number;
  height: number;
  /** What a player shows: rotation applied and non-square pixels stretched to square ones. */
  displayWidth: number;
  displayHeight: number;
  fps: number | null;
  /**
   * The container's base rate (r_frame_rate). Far from `fps` (the average) the frames are not
   * evenly spaced: a variable frame rate, as phones record in low light.
   */
  baseFps?: number | null;
  /** Clockwise degrees in [0, 360) from the display matrix (or the legacy rotate tag). */
  rotation: number;
  /** Sample (pixel) aspect ratio; 1 when square or unknown. */
  sampleAspectRatio: number;
  frames: number | null;
}

export interface AudioStreamInfo {
  codec: string;
  channels: number | null;
  sampleRate: number | null;
}

/** Plain data, so it can be stored as JSON next to the media it describes. */
export interface ProbeResult {
  /** ffprobe's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm". */
  formatName: string;
  durationSeconds: number | null;
  sizeBytes: number;
  bitRate: number | null;
  video: VideoStreamInfo | null;
  audio: AudioStreamInfo | null;
}

export type ProbeErrorKind = 'not_found' | 'unreadable';

/** ffprobe could not read the file. Callers turn it into a user message (see core/video.ts). */
export class ProbeError extends Error {
  override name = 'ProbeError';
  readonly kind: ProbeErrorKind;
  /** The last lines ffprobe printed, for logs. */
  readonly stderrTail: string;
  /**
   * The container ffprobe recognises from the file's first bytes alone (ignoring its name), or
   * null. Non-null means a damaged media file rather than something that never was one.
   */
  readonly detectedFormat: string | null;
  constructor(kind: ProbeErrorKind, message: string, options: { stderrTail?: string; detectedFormat?: string | null; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.stderrTail = options.stderrTail ?? '';
    this.detectedFormat = options.detectedFormat ?? null;
  }
}

/** ffmpeg ran and exited unsuccessfully. */
export class FfmpegError extends Error {
  override name = 'FfmpegError';
  /** null when the process was ended by a signal. */
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last ~20 lines of stderr. */
  readonly stderrTail: string;
  constructor(exitCode: number | null, signal: NodeJS.Signals | null, stderrTail: string) {
    const how = exitCode === null ? `was killed by ${signal ?? 'a signal'}` : `exited with code ${exitCode}`;
    const last = stderrTail.split('\n').filter((l) => l.trim() !== '').at(-1);
    super(last ? `ffmpeg ${how}: ${last}` : `ffmpeg ${how}`);
    this.exitCode = exitCode;
    this.signal = signal;
    this.stderrTail = stderrTail;
  }
}

const TAIL_LINES = 20;
// ffmpeg can print one enormous line (a dumped header, a binary tag); past this it is noise.
const MAX_LINE_CHARS = 2000;
// Way above any real ffprobe answer for -show_format -show_streams; a guard, not a limit.
const MAX_PROBE_JSON_BYTES = 16 * 1024 * 1024;
// Enough for every demuxer's content probe (ffmpeg probes with at most 1 MiB by default).
const SNIFF_BYTES = 1024 * 1024;

/** Splits streamed text into lines without ever holding more than one (capped) line. */
class LineSplitter {
  #partial = '';
  readonly #onLine: (line: string) => void;
  constructor(onLine: (line: string) => void) {
    this.#onLine = onLine;
  }
  push(text: string): void {
    // \r too: ffmpeg redraws its status line with carriage returns.
    const parts = (this.#partial + text).split(/\r\n|\r|\n/);
    this.#partial = (parts.pop() ?? '').slice(0, MAX_LINE_CHARS);
    for (const part of parts) this.#onLine(part.slice(0, MAX_LINE_CHARS));
  }
  end(): void {
    if (this.#partial !== '') this.#onLine(this.#partial);
    this.#partial = '';
  }
}

class LineRing {
  readonly #lines: string[] = [];
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  add(line: string): void {
    if (line.trim() === '') return;
    this.#lines.push(line);
    if (this.#lines.length > this.#max) this.#lines.shift();
  }
  text(): string {
    return this.#lines.join('\n');
  }
}

function abortError(signal: AbortSignal, what: string): DOMException {
  return new DOMException(`${what} was cancelled`, { name: 'AbortError', cause: signal.reason });
}

function spawnFailure(binary: string, error: Error): Error {
  return new Error(`Cannot run ${binary}: ${error.message}`, { cause: error });
}

/**
 * Prefixing file: keeps a path that starts with "-" from reading as an option and one that
 * contains ":" (concat:, http:, subfile:...) from selecting another protocol.
 */
export function fileUrl(path: string): string {
  return `file:${path}`;
}

// ---------------------------------------------------------------------------------------------
// ffprobe

/** Numbers arrive as strings ("2.000000"), sometimes "N/A"; anything unparsable means unknown. */
const numeric = z
  .union([z.string(), z.number()])
  .optional()
  .transform((value) => {
    if (value === undefined) return null;
    const n = typeof value === 'number' ? value : Number(value);
    return Number.isFinite(n) ? n : null;
  });

const streamSchema = z.object({
  codec_type: z.string().optional(),
  codec_name: z.string().optional(),
  profile: z.string().optional(),
  pix_fmt: z.string().optional(),
  width: z.number().int().nonnegative().optional(),
  height: z.number().int().nonnegative().optional(),
  sample_aspect_ratio: z.string().optional(),
  avg_frame_rate: z.string().optional(),
  r_frame_rate: z.string().optional(),
  nb_frames: numeric,
  duration: numeric,
  channels: z.number().int().nonnegative().optional(),
  sample_rate: numeric,
  disposition: z.record(z.string(), z.number()).optional(),
  tags: z.record(z.string(), z.string()).optional(),
  side_data_list: z.array(z.object({ side_data_type: z.string().optional(), rotation: numeric })).optional(),
});

const probeSchema = z.object({
  streams: z.array(streamSchema).default([]),
  format: z.object({
    format_name: z.string(),
    duration: numeric,
    bit_rate: numeric,
  }),
});

type RawStream = z.infer<typeof streamSchema>;

/** "30000/1001" → 29.97; "0/0" and junk → null. */
function parseRate(rate: string | undefined): number | null {
  if (!rate) return null;
  const [num, den] = rate.split('/').map(Number);
  if (num === undefined || !Number.isFinite(num) || num <= 0) return null;
  if (den === undefined) return num;
  if (!Number.isFinite(den) || den <= 0) return null;
  return num / den;
}

function parseRatio(ratio: string | undefined): number {
  if (!ratio) return 1;
  const [num, den] = ratio.split(':').map(Number);
  if (num === undefined || den === undefined || !(num > 0) || !(den > 0)) return 1;
  return num / den;
}

/** Matroska writers (mkvmerge, ffmpeg) put a stream's length in a DURATION tag, "HH:MM:SS.nnn". */
function parseDurationTag(tags: Record<string, string> | undefined): number | null {
  const value = tags?.['DURATION'] ?? tags?.['duration'];
  const match = value?.match(/^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/);
  if (!match) return null;
  const seconds = Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3]);
  return seconds > 0 ? seconds : null;
}

function rotationOf(stream: RawStream): number {
  const fromMatrix = stream.side_data_list?.find((s) => s.rotation !== null)?.rotation;
  const raw = fromMatrix ?? (stream.tags?.['rotate'] !== undefined ? Number(stream.tags['rotate']) : 0);
  if (!Number.isFinite(raw)) return 0;
  return ((Math.round(raw) % 360) + 360) % 360;
}

function videoInfo(stream: RawStream): VideoStreamInfo {
  const width = stream.width ?? 0;
  const height = stream.height ?? 0;
  const rotation = rotationOf(stream);
  const sampleAspectRatio = parseRatio(stream.sample_aspect_ratio);
  const squareWidth = Math.round(width * sampleAspectRatio);
  const quarterTurn = rotation === 90 || rotation === 270;
  return {
    codec: stream.codec_name ?? 'unknown',
    profile: stream.profile ?? null,
    pixFmt: stream.pix_fmt ?? null,
    width,
    height,
    displayWidth: quarterTurn ? height : squareWidth,
    displayHeight: quarterTurn ? squareWidth : height,
    fps: parseRate(stream.avg_frame_rate) ?? parseRate(stream.r_frame_rate),
    baseFps: parseRate(stream.r_frame_rate),
    rotation,
    sampleAspectRatio,
    frames: stream.nb_frames,
  };
}

/** Normalises ffprobe's JSON; `sizeBytes` comes from stat. Throws a ZodError on malformed output. */
export function parseProbeJson(json: unknown, sizeBytes: number): ProbeResult {
  const data = probeSchema.parse(json);
  // Cover art in an .m4a or .mp3 shows up as a one-frame video stream; it is not the video.
  const video = data.streams.find((s) => s.codec_type === 'video' && s.disposition?.['attached_pic'] !== 1);
  const audio = data.streams.find((s) => s.codec_type === 'audio');
  const streamDuration = video?.duration ?? parseDurationTag(video?.tags) ?? audio?.duration ?? parseDurationTag(audio?.tags);
  return {
    formatName: data.format.format_name,
    durationSeconds: data.format.duration ?? streamDuration,
    sizeBytes,
    bitRate: data.format.bit_rate,
    video: video ? videoInfo(video) : null,
    audio: audio
      ? { codec: audio.codec_name ?? 'unknown', channels: audio.channels ?? null, sampleRate: audio.sample_rate }
      : null,
  };
}

interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs ffprobe on the first bytes of the file through a pipe, so no file name is seen: given a
 * name, ffprobe trusts the extension, and a text file called x.mp4 then fails exactly like a
 * truncated MP4 ("moov atom not found"). Returns the format recognised from content, or null.
 */
async function sniffFormat(path: string, ffprobePath: string, signal: AbortSignal | undefined): Promise<string | null> {
  const handle = await open(path, 'r');
  let head: Buffer;
  try {
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    head = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  if (head.length === 0) return null;
  let detected: string | null = null;
  const lines = new LineSplitter((line) => {
    // Printed at debug level only when the content probe scored above AVPROBE_SCORE_RETRY; a
    // weak guess prints "detected only with low score" instead and counts as not recognised.
    const match = line.match(/Format (\S+) probed with size=\d+ and score=(\d+)/);
    if (match?.[1] && detected === null) detected = match[1];
  });
  const child = spawn(ffprobePath, ['-hide_banner', '-v', 'debug', '-i', 'pipe:0'], {
    stdio: ['pipe', 'ignore', 'pipe'],
    signal,
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => lines.push(text));
  // ffprobe stops reading once it has decided; the rest of the write then fails with EPIPE.
  child.stdin.on('error', () => {});
  child.stdin.end(head);
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', () => resolve());
  });
  lines.end();
  return detected;
}

/** Runs ffprobe and normalises its answer. Rejects with ProbeError when the file is not readable media. */
export async function probe(path: string, options: { signal?: AbortSignal; ffprobePath?: string } = {}): Promise<ProbeResult> {
  const { signal } = options;
  const ffprobePath = options.ffprobePath ?? 'ffprobe';
  if (signal?.aborted) throw abortError(signal, 'ffprobe');

  let sizeBytes: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new ProbeError('unreadable', `${path} is not a regular file`);
    sizeBytes = info.size;
  } catch (error) {
    if (error instanceof ProbeError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ProbeError('not_found', `${path}: no such file`, { cause: error });
    throw new ProbeError('unreadable', `${path}: ${(error as Error).message}`, { cause: error });
  }
  if (sizeBytes === 0) throw new ProbeError('unreadable', `${path} is empty`);

  const child = spawn(ffprobePath, ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', fileUrl(path)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  let stdoutBytes = 0;
  let overflow = false;
  const ring = new LineRing(TAIL_LINES);
  const lines = new LineSplitter((line) => ring.add(line));
  child.stdout.on('data', (chunk: Buffer) => {
    stdoutBytes += chunk.length;
    if (stdoutBytes > MAX_PROBE_JSON_BYTES) {
      overflow = true;
      child.kill('SIGKILL');
      return;
    }
    stdout.push(chunk);
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => lines.push(text));

  const onAbort = () => child.kill('SIGKILL');
  signal?.addEventListener('abort', onAbort, { once: true });
  let outcome: ChildOutcome;
  try {
    outcome = await new Promise<ChildOutcome>((resolve, reject) => {
      child.once('error', (error) => reject(spawnFailure(ffprobePath, error)));
      child.once('close', (code, sig) => resolve({ code, signal: sig }));
    });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  lines.end();
  if (signal?.aborted) throw abortError(signal, 'ffprobe');
  if (overflow) throw new ProbeError('unreadable', `ffprobe printed more than ${MAX_PROBE_JSON_BYTES} bytes for ${path}`);

  const stderrTail = ring.text();
  if (outcome.code !== 0) {
    let detectedFormat: string | null = null;
    try {
      detectedFormat = await sniffFormat(path, ffprobePath, signal);
    } catch (error) {
      if (signal?.aborted) throw abortError(signal, 'ffprobe');
      throw new ProbeError('unreadable', `ffprobe could not read ${path}: ${stderrTail}`, { stderrTail, cause: error });
    }
    const last = stderrTail.split('\n').at(-1) || `exit ${outcome.code ?? outcome.signal}`;
    throw new ProbeError('unreadable', `ffprobe could not read ${path}: ${last}`, { stderrTail, detectedFormat });
  }

  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(stdout).toString('utf8'));
    return parseProbeJson(json, sizeBytes);
  } catch (error) {
    throw new ProbeError('unreadable', `ffprobe gave unexpected output for ${path}: ${(error as Error).message}`, { stderrTail, cause: error });
  }
}

// ---------------------------------------------------------------------------------------------
// ffmpeg

export interface RunFfmpegOptions {
  signal?: AbortSignal;
  /** The input's duration; without it progress cannot be a fraction and is reported only at the end. */
  durationSeconds?: number;
  /** Called with non-decreasing fractions in [0, 1]; 1 only after a successful exit. */
  onProgress?: (fraction: number) => void;
  ffmpegPath?: string;
}

/** Flags every run gets: no banner, never wait on stdin, overwrite, machine-readable progress. */
export const FFMPEG_BASE_ARGS = ['-hide_banner', '-nostdin', '-y', '-progress', 'pipe:1', '-nostats'] as const;

/**
 * The CPU priority ffmpeg runs at (nice 10, or its parent's if that is lower still). An encode takes every core it can get for seconds or
 * minutes; at normal priority it starved the processes that must answer at once — the chat bot's
 * "Received", Postgres, the worker's own heartbeat — whenever they shared a machine. Lowered, it
 * still gets all the CPU nobody else wants, so an idle machine encodes as fast as before.
 */
export const FFMPEG_NICE = 10;

/** Lowers a just-started ffmpeg's priority (never raises it above its parent's); a refusal only costs the courtesy. */
export function lowerPriority(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    setPriority(pid, Math.max(getPriority(), FFMPEG_NICE));
  } catch {
    // EPERM/ESRCH (already exited): the run goes on at normal priority.
  }
}

/**
 * Runs ffmpeg with `args` (inputs, filters, outputs). Rejects with FfmpegError on a non-zero exit
 * and with an AbortError (after the child has exited) when `signal` aborts.
 */
export async function runFfmpeg(args: string[], options: RunFfmpegOptions = {}): Promise<void> {
  const { signal, durationSeconds, onProgress } = options;
  const ffmpegPath = options.ffmpegPath ?? 'ffmpeg';
  if (signal?.aborted) throw abortError(signal, 'ffmpeg');

  const child = spawn(ffmpegPath, [...FFMPEG_BASE_ARGS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  lowerPriority(child.pid);

  let reported = -1;
  const report = (fraction: number) => {
    const clamped = Math.min(1, Math.max(0, fraction));
    if (clamped <= reported) return;
    reported = clamped;
    onProgress?.(clamped);
  };
  let outTimeUs: number | null = null;
  const progressLines = new LineSplitter((line) => {
    const eq = line.indexOf('=');
    if (eq < 0) return;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    // Despite its name, out_time_ms is in microseconds too (a long-standing ffmpeg quirk).
    if (key === 'out_time_us' || key === 'out_time_ms') {
      const n = Number(value);
      if (Number.isFinite(n)) outTimeUs = n;
    } else if (key === 'progress' && value === 'continue') {
      if (outTimeUs !== null && durationSeconds && durationSeconds > 0) {
        // Held below 1 so that 1 always means "finished successfully".
        report(Math.min(0.999, outTimeUs / 1e6 / durationSeconds));
      }
    }
  });
  const ring = new LineRing(TAIL_LINES);
  const stderrLines = new LineSplitter((line) => ring.add(line));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => progressLines.push(text));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => stderrLines.push(text));

  // SIGKILL rather than SIGTERM: on SIGTERM ffmpeg finishes the file gracefully, which can take
  // a while and produces output nobody wants.
  const onAbort = () => child.kill('SIGKILL');
  signal?.addEventListener('abort', onAbort, { once: true });
  let outcome: ChildOutcome;
  try {
    outcome = await new Promise<ChildOutcome>((resolve, reject) => {
      child.once('error', (error) => reject(spawnFailure(ffmpegPath, error)));
      child.once('close', (code, sig) => resolve({ code, signal: sig }));
    });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  progressLines.end();
  stderrLines.end();
  if (signal?.aborted) throw abortError(signal, 'ffmpeg');
  if (outcome.code !== 0) throw new FfmpegError(outcome.code, outcome.signal, ring.text());
  report(1);
}
