import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MESSAGES, UserError } from '../../core/errors.ts';
import { probe, runFfmpeg } from '../../core/ffmpeg.ts';
import { chooseCuts, keyframesFromFramecrc, partCaption, splitVideo } from '../../core/split.ts';
import { makeClip } from '../support/clips.ts';

let dir = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-split-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A tiny clip with a keyframe exactly every `keyframeSeconds` (makeClip leaves the interval to x264). */
async function clipWithKeyframes(name: string, seconds: number, keyframeSeconds: number, options: { ext?: string; bFrames?: boolean } = {}): Promise<string> {
  const { ext = 'mp4', bFrames = false } = options;
  const path = join(dir, `${name}.${ext}`);
  const fps = 10;
  await runFfmpeg([
    '-f', 'lavfi', '-i', `testsrc2=size=64x64:rate=${fps}`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(seconds),
    '-c:v', 'libx264', '-preset', bFrames ? 'veryfast' : 'ultrafast', '-g', String(fps * keyframeSeconds), '-keyint_min', String(fps * keyframeSeconds), '-sc_threshold', '0',
    '-c:a', 'aac', '-shortest', path,
  ]);
  return path;
}

test('a 9 s clip with a keyframe every second splits at 4 s into 3 ordered stream-copied parts that fit', async () => {
  const input = await clipWithKeyframes('every-second', 9, 1);
  const original = await probe(input);
  const out = join(dir, 'parts-a');
  const parts = await splitVideo(input, { maxSeconds: 4, dir: out });

  assert.equal(parts.length, 3);
  let sum = 0;
  let frames = 0;
  let previousStart = -1;
  for (const part of parts) {
    assert.ok(part.durationSeconds <= 4, `${part.path} is ${part.durationSeconds} s`);
    assert.ok(part.durationSeconds > 0);
    assert.ok(part.startSeconds > previousStart);
    // Starts are keyframe times: whole seconds here.
    assert.equal(Math.abs(part.startSeconds - Math.round(part.startSeconds)) < 1e-6, true);
    previousStart = part.startSeconds;
    const info = await probe(part.path);
    assert.equal(info.video?.codec, 'h264');
    assert.equal(info.video?.width, 64);
    assert.equal(info.audio?.codec, 'aac');
    frames += info.video?.frames ?? 0;
    sum += part.durationSeconds;
  }
  assert.equal(frames, 90, 'no frame lost or repeated');
  assert.ok(Math.abs(sum - (original.durationSeconds ?? 0)) < 0.15, `parts sum to ${sum} s`);
  assert.deepEqual((await readdir(out)).sort(), ['part-001.mp4', 'part-002.mp4', 'part-003.mp4']);
});

test('B-frames in a Matroska file: parts keep the container, fit, and add up to the original', async () => {
  const input = await clipWithKeyframes('mkv-bframes', 7, 1, { ext: 'mkv', bFrames: true });
  const parts = await splitVideo(input, { maxSeconds: 3, dir: join(dir, 'parts-mkv') });
  assert.ok(parts.length >= 3);
  let sum = 0;
  for (const part of parts) {
    assert.match(part.path, /\.mkv$/);
    assert.ok(part.durationSeconds <= 3, `${part.path} is ${part.durationSeconds} s`);
    sum += part.durationSeconds;
  }
  assert.ok(Math.abs(sum - 7) < 0.15, `parts sum to ${sum} s`);
});

test('B-frames in an MP4: every frame lands in exactly one part, in whole keyframe intervals', async () => {
  const input = await clipWithKeyframes('mp4-bframes', 9, 1, { bFrames: true });
  const parts = await splitVideo(input, { maxSeconds: 4, dir: join(dir, 'parts-mp4-b') });
  assert.equal(parts.length, 3);
  let frames = 0;
  let sum = 0;
  for (const part of parts) {
    assert.ok(part.durationSeconds <= 4, `${part.path} is ${part.durationSeconds} s`);
    const info = await probe(part.path);
    assert.equal(info.video?.frames, 30, `${part.path}: whole one-second GOPs of 10 frames`);
    assert.ok(Math.abs(part.durationSeconds - 3) < 0.05, `${part.path} is ${part.durationSeconds} s`);
    frames += info.video?.frames ?? 0;
    sum += part.durationSeconds;
  }
  assert.equal(frames, 90);
  assert.ok(Math.abs(sum - 9) < 0.1, `parts sum to ${sum} s`);
});

test('keyframes further apart than a part may be long: a UserError that says why, and nothing left behind', async () => {
  const input = await clipWithKeyframes('sparse', 6, 5);
  const out = join(dir, 'parts-sparse');
  await assert.rejects(splitVideo(input, { maxSeconds: 2, dir: out }), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.equal(error.message, MESSAGES.splitNeedsReencode(2, 5));
    assert.match(error.message, /keyframe/);
    return true;
  });
  assert.deepEqual(await readdir(out), []);
});

test('a video that already fits comes back as itself, nothing written', async () => {
  const input = makeClip(join(dir, 'short.mp4'), { width: 64, height: 64, seconds: 1, fps: 10 });
  const out = join(dir, 'parts-none');
  const parts = await splitVideo(input, { maxSeconds: 5, dir: out });
  assert.equal(parts.length, 1);
  assert.equal(parts[0]?.path, input);
  assert.equal(parts[0]?.startSeconds, 0);
  await assert.rejects(readdir(out), { code: 'ENOENT' });
});

test('chooseCuts: greedy, as few parts as possible, a margin before each cut', () => {
  const keyframes = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  assert.deepEqual(chooseCuts(keyframes, 9, 4, 0), [4, 8]);
  assert.deepEqual(chooseCuts(keyframes, 9, 4, 0.25), [3, 6]);
  assert.deepEqual(chooseCuts(keyframes, 9, 10, 0.25), []);
  assert.deepEqual(chooseCuts([0, 2.5, 3, 6.5], 9, 4, 0.1), [3, 6.5]);
  assert.throws(() => chooseCuts([0, 1, 6], 9, 4, 0.25), (error: unknown) => {
    assert.ok(error instanceof UserError);
    assert.equal(error.message, MESSAGES.splitNeedsReencode(4, 5));
    return true;
  });
  // No keyframe after the last one and too much video left.
  assert.throws(() => chooseCuts([0, 3], 9, 4, 0.25), UserError);
});

test('keyframesFromFramecrc reads framecrc lines: no F= means a keyframe, times in the stream time base', () => {
  const text = [
    '#tb 0: 1/1000',
    '#media_type 0: video',
    '0,        -66,          0,       33,     2717, 0x2622fbed',
    '0,        -33,        100,       33,      731, 0x7f7151ac, F=0x0',
    '0,          0,         33,       33,      910, 0x5b8d95a3, F=0x0',
    '0,         33,       2000,       33,     2588, 0x9cafe926',
    '0,         66,       3000,       33,     2588, 0x9cafe926, F=0x5',
    '0,         99,       4000,       33,     2588, 0x9cafe926, F=0x4',
  ].join('\n');
  assert.deepEqual(keyframesFromFramecrc(text), [
    { pts: 0, dts: -0.066 },
    { pts: 2, dts: 0.033 },
    { pts: 3, dts: 0.066 },
  ]);
});

test('partCaption adds "Part i/n" on its own line', () => {
  assert.equal(partCaption('Sunset timelapse', 2, 3), 'Sunset timelapse\n\nPart 2/3');
  assert.equal(partCaption('Line one\n', 1, 2), 'Line one\n\nPart 1/2');
  assert.equal(partCaption('', 1, 4), 'Part 1/4');
});
