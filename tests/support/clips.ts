/** Test videos made on the spot with ffmpeg, so no binary fixtures live in the repo. */
import { spawnSync } from 'node:child_process';

export interface ClipOptions {
  width?: number;
  height?: number;
  seconds?: number;
  fps?: number;
  pixFmt?: string;
  audio?: boolean;
  faststart?: boolean;
}

export function makeClip(path: string, options: ClipOptions = {}): string {
  const { width = 720, height = 1280, seconds = 2, fps = 30, pixFmt = 'yuv420p', audio = true, faststart = true } = options;
  const args = ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=${fps}`];
  if (audio) args.push('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000');
  args.push('-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', pixFmt);
  if (audio) args.push('-c:a', 'aac', '-shortest');
  if (faststart) args.push('-movflags', '+faststart');
  args.push(path);
  const result = spawnSync('ffmpeg', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ffmpeg failed: ${result.stderr}`);
  return path;
}

export function ffprobeJson(path: string): { streams: Array<{ codec_type: string; codec_name: string; profile?: string; pix_fmt?: string; width?: number; height?: number }>; format: { format_name: string } } {
  const result = spawnSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', path], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ffprobe failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as ReturnType<typeof ffprobeJson>;
}
