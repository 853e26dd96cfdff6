import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MESSAGES } from '../../core/errors.ts';
import { ProbeError, probe, runFfmpeg, type ProbeResult } from '../../core/ffmpeg.ts';
import type { VideoProfile } from '../../core/platforms.ts';
import {
  describeProbeFailure,
  encodeArgs,
  inputProblem,
  isCompliant,
  isVariableFrameRate,
  MIN_PICTURE_SIDE,
  profileProblem,
  remuxArgs,
  renditionPlan,
} from '../../core/video.ts';

const execFileAsync = promisify(execFile);

let dir = '';
const file = (name: string) => join(dir, name);

async function ffmpeg(...args: string[]): Promise<void> {
  await execFileAsync('ffmpeg', ['-v', 'error', '-nostdin', '-y', ...args]);
}

/** A small vertical box so that test encodes stay fast; same shape as the real 1080x1920 one. */
const SMALL_VERTICAL: VideoProfile = {
  key: 'test-vertical-360',
  container: 'mp4',
  videoCodec: 'h264',
  audioCodec: 'aac',
  maxBytes: 50 * 1024 ** 2,
  minDurationSeconds: 0.5,
  maxDurationSeconds: 60,
  width: 360,
  height: 640,
  maxFps: 30,
  minAspect: 0.5,
  maxAspect: 0.5625 * 1.0001,
};

// Profiles of our own: the real ones in platforms.ts change as platforms do.
const VERTICAL_BASE = { ...SMALL_VERTICAL, width: 1080, height: 1920, maxFps: 60 };
/** TikTok-like: vertical 1080x1920, 3 s to 10 min. */
const VERTICAL_LONG: VideoProfile = { ...VERTICAL_BASE, key: 'test-vertical-long', maxBytes: 4 * 1024 ** 3, minDurationSeconds: 3, maxDurationSeconds: 600 };
/** Same encode as VERTICAL_LONG under another key, with other limits. */
const VERTICAL_SHORT: VideoProfile = { ...VERTICAL_BASE, key: 'test-vertical-short', maxBytes: 256 * 1024 ** 3, minDurationSeconds: 1, maxDurationSeconds: 180 };
/** X-like: 720x1280 box, any aspect from 1:3 to 3:1. */
const WIDE: VideoProfile = {
  ...SMALL_VERTICAL, key: 'test-wide-720', width: 720, height: 1280, maxFps: 60, minAspect: 1 / 3, maxAspect: 3,
  maxBytes: 512 * 1024 ** 2, minDurationSeconds: 0.5, maxDurationSeconds: 140,
};
/** Bluesky-like: any aspect in a 1920 square, 50 MB. */
const ANY: VideoProfile = {
  ...SMALL_VERTICAL, key: 'test-any-1920', width: 1920, height: 1920, maxFps: 60, minAspect: 0.01, maxAspect: 100,
  maxBytes: 50 * 1000 * 1000, minDurationSeconds: 0.1, maxDurationSeconds: 180,
};

const probes = new Map<string, ProbeResult>();
function probed(name: string): ProbeResult {
  const result = probes.get(name);
  assert.ok(result, `fixture ${name} was not probed`);
  return result;
}

async function probeFailure(name: string): Promise<ProbeError> {
  try {
    await probe(file(name));
  } catch (error) {
    assert.ok(error instanceof ProbeError, `expected ProbeError, got ${String(error)}`);
    return error;
  }
  assert.fail(`${name} probed successfully`);
}

/** Top-level ISO-BMFF box types in file order. */
async function topLevelBoxes(path: string): Promise<string[]> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const types: string[] = [];
    const header = Buffer.alloc(16);
    for (let offset = 0; offset + 8 <= size; ) {
      await handle.read(header, 0, 16, offset);
      let boxSize = header.readUInt32BE(0);
      if (boxSize === 1) boxSize = Number(header.readBigUInt64BE(8));
      if (boxSize === 0) boxSize = size - offset;
      types.push(header.toString('latin1', 4, 8));
      if (boxSize < 8) break;
      offset += boxSize;
    }
    return types;
  } finally {
    await handle.close();
  }
}

const lavfiVideo = (spec: string) => ['-f', 'lavfi', '-i', `testsrc2=${spec}`];
const lavfiSine = (rate: number) => ['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=${rate}`];
const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast'];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-video-'));
  await Promise.all([
    ffmpeg(...lavfiVideo('size=720x1280:rate=30'), ...lavfiSine(48000), '-t', '2', ...x264, '-pix_fmt', 'yuv420p',
      '-c:a', 'aac', '-shortest', '-movflags', '+faststart', file('ok.mp4')),
    ffmpeg(...lavfiVideo('size=640x360:rate=30'), ...lavfiSine(48000), '-t', '1', ...x264, '-pix_fmt', 'yuv420p',
      '-c:a', 'aac', '-shortest', file('landscape.mp4')),
    ffmpeg(...lavfiVideo('size=400x720:rate=30'), ...lavfiSine(44100), '-t', '1', ...x264, '-pix_fmt', 'yuv444p',
      '-c:a', 'aac', '-shortest', file('yuv444.mp4')),
    // Noise defeats compression: at CRF 23 this needs megabits per second.
    ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=360x640:rate=30,noise=alls=60:allf=t', '-t', '1', ...x264, '-crf', '10',
      '-pix_fmt', 'yuv420p', file('noisy.mp4')),
    ffmpeg(...lavfiVideo('size=180x320:rate=60'), '-t', '1', ...x264, '-pix_fmt', 'yuv420p', file('fast.mp4')),
    ffmpeg(...lavfiVideo('size=320x180:rate=25'), '-t', '1', ...x264, file('upright.mp4')).then(() =>
      // Stream copy: ffmpeg 5.1 writes a rotate tag as a display matrix only without an encode.
      ffmpeg('-i', file('upright.mp4'), '-c', 'copy', '-metadata:s:v:0', 'rotate=90', file('rotated.mp4')),
    ),
    ffmpeg(...lavfiSine(48000), '-t', '1', '-c:a', 'aac', file('audio.m4a')),
    ffmpeg(...lavfiVideo('size=64x64'), '-frames:v', '1', file('still.png')),
    ffmpeg(...lavfiVideo('size=64x64'), '-frames:v', '1', file('still.jpg')),
    ffmpeg(...lavfiVideo('size=64x64'), '-frames:v', '1', file('still.gif')),
    ffmpeg(...lavfiVideo('size=64x64:rate=10'), '-t', '1', file('animated.gif')),
    // Default (non-faststart) MP4: moov comes last, so the first half lacks it.
    ffmpeg(...lavfiVideo('size=320x240:rate=30'), '-t', '2', ...x264, file('whole.mp4')),
    writeFile(file('notes.mp4'), 'Dear diary, today I did not send a video.\n'.repeat(10)),
    writeFile(file('empty.mp4'), ''),
  ]);
  const whole = await readFile(file('whole.mp4'));
  await writeFile(file('truncated.mp4'), whole.subarray(0, Math.floor(whole.length / 2)));
  const names = ['ok.mp4', 'landscape.mp4', 'yuv444.mp4', 'fast.mp4', 'rotated.mp4', 'audio.m4a', 'still.png', 'still.jpg', 'still.gif', 'animated.gif', 'noisy.mp4'];
  await Promise.all(names.map(async (name) => probes.set(name, await probe(file(name)))));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('inputProblem accepts real videos', () => {
  for (const name of ['ok.mp4', 'landscape.mp4', 'yuv444.mp4', 'fast.mp4', 'rotated.mp4', 'animated.gif']) {
    assert.equal(inputProblem(probed(name), name), null, name);
  }
});

test('inputProblem refuses audio-only files and still images', () => {
  assert.equal(inputProblem(probed('audio.m4a'), 'song.m4a'), MESSAGES.noVideoStream('song.m4a'));
  assert.equal(inputProblem(probed('still.png'), 'cat.png'), MESSAGES.notAVideo('cat.png'));
  assert.equal(inputProblem(probed('still.jpg'), 'cat.jpg'), MESSAGES.notAVideo('cat.jpg'));
  assert.equal(inputProblem(probed('still.gif'), 'cat.gif'), MESSAGES.notAVideo('cat.gif'));
});

test('inputProblem refuses a missing duration and undecodable stream parameters', () => {
  const ok = probed('ok.mp4');
  assert.equal(inputProblem({ ...ok, durationSeconds: null }, 'a.mp4'), MESSAGES.notAVideo('a.mp4'));
  assert.equal(inputProblem({ ...ok, durationSeconds: 0 }, 'a.mp4'), MESSAGES.notAVideo('a.mp4'));
  assert.ok(ok.video);
  const blank = { ...ok.video, width: 0, height: 0, displayWidth: 0, displayHeight: 0, frames: null };
  assert.equal(inputProblem({ ...ok, video: blank }, 'a.mp4'), MESSAGES.corruptVideo('a.mp4'));
  assert.equal(inputProblem({ ...ok, video: null, audio: null }, 'a.mp4'), MESSAGES.notAVideo('a.mp4'));
});

test('inputProblem refuses a picture too small to scale (a 1x1 video), before any conversion', () => {
  const ok = probed('ok.mp4');
  assert.ok(ok.video);
  const sized = (w: number, h: number) => ({ ...ok, video: { ...ok.video!, width: w, height: h, displayWidth: w, displayHeight: h } });
  assert.equal(inputProblem(sized(1, 1), 'dot.mp4'), MESSAGES.pictureTooSmall('dot.mp4', 1, 1, MIN_PICTURE_SIDE));
  assert.equal(inputProblem(sized(640, MIN_PICTURE_SIDE - 1), 'strip.mp4'), MESSAGES.pictureTooSmall('strip.mp4', 640, MIN_PICTURE_SIDE - 1, MIN_PICTURE_SIDE));
  assert.equal(inputProblem(sized(MIN_PICTURE_SIDE, MIN_PICTURE_SIDE), 'small.mp4'), null);
});

test('a variable frame rate is never remuxed: the encode evens it out at the base rate', () => {
  const ok = probed('ok.mp4');
  assert.ok(ok.video);
  assert.equal(isVariableFrameRate(ok.video), false);
  const uneven = { ...ok, video: { ...ok.video, fps: 11.38, baseFps: 30 } };
  assert.equal(isVariableFrameRate(uneven.video), true);
  assert.equal(isCompliant(uneven, WIDE), false);
  assert.ok(encodeArgs('in.mp4', 'out.mp4', uneven, WIDE).some((a) => a.startsWith('fps=30,')), 'an fps filter at the base rate');
  // A browser WebM's base "rate" is its 1000 Hz time base: the average is the better guess then.
  const browser = { ...ok, video: { ...ok.video, fps: 29.5, baseFps: 1000 } };
  assert.ok(encodeArgs('in.webm', 'out.mp4', browser, WIDE).some((a) => a.startsWith('fps=29.5,')));
  // 29.97 against a 30000/1001 base is the same rate, not a variable one.
  assert.equal(isVariableFrameRate({ ...ok.video, fps: 29.97, baseFps: 30000 / 1001 }), false);
});

test('describeProbeFailure: empty, not a video, damaged, missing', async () => {
  const empty = await probeFailure('empty.mp4');
  assert.equal(describeProbeFailure(empty, 'clip.mp4', 0), MESSAGES.fileEmpty('clip.mp4'));

  const notes = await probeFailure('notes.mp4');
  assert.equal(describeProbeFailure(notes, 'notes.mp4', (await stat(file('notes.mp4'))).size), MESSAGES.notAVideo('notes.mp4'));

  const truncated = await probeFailure('truncated.mp4');
  assert.match(truncated.stderrTail, /moov atom not found/);
  assert.equal(
    describeProbeFailure(truncated, 'clip.mp4', (await stat(file('truncated.mp4'))).size),
    MESSAGES.corruptVideo('clip.mp4'),
  );

  const missing = await probeFailure('gone.mp4');
  assert.equal(describeProbeFailure(missing, 'gone.mp4', 1), MESSAGES.fileNotFound('gone.mp4'));
});

test('profileProblem refuses lengths outside the profile, with a little slack', () => {
  const ok = probed('ok.mp4');
  const at = (durationSeconds: number | null) => ({ ...ok, durationSeconds });
  assert.equal(profileProblem(ok, VERTICAL_LONG, 'TikTok'), MESSAGES.videoTooShort('TikTok', ok.durationSeconds ?? 0, 3));
  assert.equal(profileProblem(ok, WIDE, 'X'), null);
  assert.equal(profileProblem(ok, { ...WIDE, maxDurationSeconds: 1 }, 'X'), MESSAGES.videoTooLong('X', ok.durationSeconds ?? 0, 1));
  // A frame or an AAC priming delay either side of the limit is not worth a refusal.
  assert.equal(profileProblem(at(2.96), VERTICAL_LONG, 'TikTok'), null);
  assert.equal(profileProblem(at(2.94), VERTICAL_LONG, 'TikTok'), MESSAGES.videoTooShort('TikTok', 2.94, 3));
  assert.equal(profileProblem(at(600.04), VERTICAL_LONG, 'TikTok'), null);
  assert.equal(profileProblem(at(601), VERTICAL_LONG, 'TikTok'), MESSAGES.videoTooLong('TikTok', 601, 600));
  // An unknown duration is inputProblem's business.
  assert.equal(profileProblem(at(null), VERTICAL_LONG, 'TikTok'), null);
});

test('isCompliant', () => {
  const ok = probed('ok.mp4');
  assert.equal(isCompliant(ok, WIDE), true);
  assert.equal(isCompliant(ok, ANY), true);
  assert.equal(isCompliant(ok, SMALL_VERTICAL), false, 'larger than the box');
  assert.equal(isCompliant(ok, VERTICAL_LONG), false, 'shorter than TikTok allows');
  assert.equal(isCompliant({ ...ok, sizeBytes: WIDE.maxBytes + 1 }, WIDE), false);
  assert.equal(isCompliant({ ...ok, formatName: 'matroska,webm' }, WIDE), false);
  assert.equal(isCompliant({ ...ok, audio: { codec: 'opus', channels: 2, sampleRate: 48000 } }, WIDE), false);
  assert.equal(isCompliant({ ...ok, audio: null }, WIDE), true);
  assert.ok(ok.video);
  assert.equal(isCompliant({ ...ok, video: { ...ok.video, profile: 'High 10' } }, WIDE), false);
  assert.equal(isCompliant({ ...ok, video: { ...ok.video, fps: 120 } }, WIDE), false);

  assert.equal(isCompliant(probed('landscape.mp4'), WIDE), true, 'WIDE takes landscape');
  assert.equal(isCompliant(probed('landscape.mp4'), SMALL_VERTICAL), false, 'aspect');
  assert.equal(isCompliant(probed('yuv444.mp4'), WIDE), false, 'pixel format');
  assert.equal(isCompliant(probed('rotated.mp4'), WIDE), false, 'rotation metadata');
  assert.equal(isCompliant(probed('fast.mp4'), SMALL_VERTICAL), false, '60 fps');
  assert.equal(isCompliant(probed('fast.mp4'), WIDE), true);
});

test('renditionPlan remuxes once for every profile the input satisfies', () => {
  assert.deepEqual(renditionPlan(probed('ok.mp4'), [WIDE, ANY, WIDE]), [{ mode: 'remux', profileKeys: [WIDE.key, ANY.key] }]);
});

test('renditionPlan encodes once per key, holding a shared key to the strictest limits', () => {
  const input = probed('yuv444.mp4');
  const small = { ...SMALL_VERTICAL, maxBytes: 1000 * 1000, maxDurationSeconds: 30 };
  assert.deepEqual(renditionPlan(input, [SMALL_VERTICAL, small]), [
    { mode: 'encode', profile: small, profileKeys: [SMALL_VERTICAL.key] },
  ]);
  // A shared key remuxes only when the input fits every platform behind it.
  const ok = probed('ok.mp4');
  assert.deepEqual(renditionPlan(ok, [WIDE]), [{ mode: 'remux', profileKeys: [WIDE.key] }]);
  const plan = renditionPlan(ok, [WIDE, { ...WIDE, maxBytes: ok.sizeBytes - 1 }]);
  assert.equal(plan.length, 1);
  assert.equal(plan[0]?.mode, 'encode');
});

test('renditionPlan shares one encode between keys whose encode arguments are identical', () => {
  const input = probed('yuv444.mp4');
  assert.deepEqual(encodeArgs('a', 'b', input, VERTICAL_LONG), encodeArgs('a', 'b', input, VERTICAL_SHORT));
  assert.deepEqual(renditionPlan(input, [VERTICAL_LONG, VERTICAL_SHORT, WIDE]), [
    { mode: 'encode', profile: VERTICAL_LONG, profileKeys: [VERTICAL_LONG.key, VERTICAL_SHORT.key] },
    { mode: 'encode', profile: WIDE, profileKeys: [WIDE.key] },
  ]);
  assert.deepEqual(renditionPlan(probed('landscape.mp4'), [VERTICAL_LONG, WIDE]), [
    { mode: 'remux', profileKeys: [WIDE.key] },
    { mode: 'encode', profile: VERTICAL_LONG, profileKeys: [VERTICAL_LONG.key] },
  ]);
});

test('remuxArgs copies streams into a faststart MP4', async () => {
  const out = file('remuxed.mp4');
  await runFfmpeg(remuxArgs(file('whole.mp4'), out), {});
  const boxes = await topLevelBoxes(out);
  assert.ok(boxes.indexOf('moov') >= 0 && boxes.indexOf('moov') < boxes.indexOf('mdat'), boxes.join(' '));
  assert.deepEqual(await topLevelBoxes(file('whole.mp4')).then((b) => b.indexOf('moov') > b.indexOf('mdat')), true);

  await runFfmpeg(remuxArgs(file('ok.mp4'), file('ok-remuxed.mp4')), {});
  const result = await probe(file('ok-remuxed.mp4'));
  assert.deepEqual(result.video, probed('ok.mp4').video);
  assert.deepEqual(result.audio, probed('ok.mp4').audio);
  assert.equal(isCompliant(result, WIDE), true);
});

async function encode(name: string, profile: VideoProfile): Promise<ProbeResult> {
  const out = file(`${name}.${profile.key}.mp4`);
  const input = probed(name);
  await runFfmpeg(encodeArgs(file(name), out, input, profile), { durationSeconds: input.durationSeconds ?? undefined });
  return probe(out);
}

function assertEncoded(result: ProbeResult, profile: VideoProfile): void {
  assert.equal(result.formatName, 'mov,mp4,m4a,3gp,3g2,mj2');
  assert.ok(result.video);
  assert.equal(result.video.codec, 'h264');
  assert.equal(result.video.profile, 'High');
  assert.equal(result.video.pixFmt, 'yuv420p');
  assert.equal(result.video.rotation, 0);
  assert.ok(result.video.displayWidth <= profile.width && result.video.displayHeight <= profile.height,
    `${result.video.displayWidth}x${result.video.displayHeight}`);
  assert.equal(result.video.width % 2, 0);
  assert.equal(result.video.height % 2, 0);
  assert.equal(isCompliant(result, profile), true);
}

test('encodeArgs pads a landscape input into the vertical box, with 48 kHz AAC', async () => {
  const result = await encode('landscape.mp4', SMALL_VERTICAL);
  assertEncoded(result, SMALL_VERTICAL);
  assert.equal(result.video?.width, 360);
  assert.equal(result.video?.height, 640);
  assert.equal(result.audio?.codec, 'aac');
  assert.equal(result.audio?.sampleRate, 48000);
});

test('encodeArgs shrinks an in-range aspect to fit and converts 4:4:4 to 4:2:0', async () => {
  const result = await encode('yuv444.mp4', SMALL_VERTICAL);
  assertEncoded(result, SMALL_VERTICAL);
  assert.equal(result.video?.height, 640);
  assert.ok(result.video && result.video.width >= 354 && result.video.width <= 356, `width ${result.video?.width}`);
  assert.equal(result.audio?.sampleRate, 48000, 'resampled from 44.1 kHz');
});

test('encodeArgs applies rotation metadata to the pixels and never upscales', async () => {
  const result = await encode('rotated.mp4', SMALL_VERTICAL);
  assertEncoded(result, SMALL_VERTICAL);
  assert.equal(result.video?.width, 180);
  assert.equal(result.video?.height, 320);
  assert.equal(result.audio, null);
});

test('encodeArgs caps the frame rate and leaves out audio the input lacks', async () => {
  const args = encodeArgs('in.mp4', 'out.mp4', probed('fast.mp4'), SMALL_VERTICAL);
  assert.ok(args.includes('-an'));
  assert.match(args[args.indexOf('-vf') + 1] ?? '', /^fps=30,/);
  const plain = encodeArgs('in.mp4', 'out.mp4', probed('ok.mp4'), WIDE);
  assert.doesNotMatch(plain[plain.indexOf('-vf') + 1] ?? '', /fps=/);
  const result = await encode('fast.mp4', SMALL_VERTICAL);
  assertEncoded(result, SMALL_VERTICAL);
  assert.equal(result.video?.fps, 30);
  assert.equal(result.audio, null);
});

test('encodeArgs caps the bitrate when the size limit is close', async () => {
  const tight: VideoProfile = { ...SMALL_VERTICAL, key: 'test-tight', maxBytes: 100_000 };
  const input = probed('noisy.mp4');
  assert.ok(input.sizeBytes > 10 * tight.maxBytes, `${input.sizeBytes} bytes in`);
  const args = encodeArgs('in.mp4', 'out.mp4', input, tight);
  assert.ok(args.includes('-maxrate') && args.includes('-bufsize'));
  assert.ok(!encodeArgs('in.mp4', 'out.mp4', input, SMALL_VERTICAL).includes('-maxrate'), 'no cap when the limit is far');
  const result = await encode('noisy.mp4', tight);
  assert.ok(result.sizeBytes <= tight.maxBytes, `${result.sizeBytes} bytes out`);
});

test('encodeArgs and remuxArgs keep odd file names from reading as options or protocols', () => {
  const args = remuxArgs('-evil.mp4', 'concat:a|b');
  assert.equal(args[args.indexOf('-i') + 1], 'file:-evil.mp4');
  assert.equal(args.at(-1), 'file:concat:a|b');
});
