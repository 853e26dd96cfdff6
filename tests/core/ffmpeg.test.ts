import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FFMPEG_NICE, FfmpegError, ProbeError, parseProbeJson, probe, runFfmpeg } from '../../core/ffmpeg.ts';

const execFileAsync = promisify(execFile);
const MP4 = 'mov,mp4,m4a,3gp,3g2,mj2';

let dir = '';
const file = (name: string) => join(dir, name);

async function ffmpeg(...args: string[]): Promise<void> {
  await execFileAsync('ffmpeg', ['-v', 'error', '-nostdin', '-y', ...args]);
}

/** ffmpeg processes whose parent is this test process, with their nice values. */
async function childFfmpegProcesses(): Promise<Array<{ pid: number; nice: number }>> {
  const found: Array<{ pid: number; nice: number }> = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const text = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // Format: pid (comm) state ppid ... (field 19 is nice); comm may contain spaces, so split after the last ")".
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const fields = text.slice(close + 2).split(' ');
    if (comm === 'ffmpeg' && Number(fields[1]) === process.pid) found.push({ pid: Number(entry), nice: Number(fields[16]) });
  }
  return found;
}

async function childFfmpegs(): Promise<number[]> {
  return (await childFfmpegProcesses()).map((p) => p.pid);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-ffmpeg-'));
  await Promise.all([
    ffmpeg(
      '-f', 'lavfi', '-i', 'testsrc2=size=720x1280:rate=30',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest',
      '-movflags', '+faststart', file('ok.mp4'),
    ),
    // ffmpeg 5.1 turns a rotate tag into a display matrix only when stream-copying; an encode drops it.
    ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', file('upright.mp4'))
      .then(() => ffmpeg('-i', file('upright.mp4'), '-c', 'copy', '-metadata:s:v:0', 'rotate=90', file('rotated.mp4'))),
    ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '1', '-c:a', 'aac', file('audio.m4a')),
    ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=64x64', '-frames:v', '1', file('still.png')),
    // moov at the end (no faststart), so the first half has none.
    ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', file('whole.mp4')),
    writeFile(file('text.mp4'), 'This is a shopping list, not a video.\n'.repeat(20)),
    writeFile(file('empty.mp4'), ''),
  ]);
  const whole = await readFile(file('whole.mp4'));
  await writeFile(file('truncated.mp4'), whole.subarray(0, Math.floor(whole.length / 2)));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('probe summarises a compliant MP4', async () => {
  const result = await probe(file('ok.mp4'));
  assert.equal(result.formatName, MP4);
  assert.ok(result.durationSeconds !== null && Math.abs(result.durationSeconds - 2) < 0.1, `duration ${result.durationSeconds}`);
  assert.equal(result.sizeBytes, (await stat(file('ok.mp4'))).size);
  assert.ok(result.bitRate !== null && result.bitRate > 0);
  assert.deepEqual(result.video, {
    codec: 'h264',
    // What x264 -preset ultrafast produces (no CABAC, no B-frames).
    profile: 'Constrained Baseline',
    pixFmt: 'yuv420p',
    width: 720,
    height: 1280,
    displayWidth: 720,
    displayHeight: 1280,
    fps: 30,
    baseFps: 30,
    rotation: 0,
    sampleAspectRatio: 1,
    frames: 60,
  });
  assert.deepEqual(result.audio, { codec: 'aac', channels: 1, sampleRate: 48000 });
});

test('probe swaps display dimensions for a quarter-turn rotation', async () => {
  const result = await probe(file('rotated.mp4'));
  assert.ok(result.video);
  assert.equal(result.video.width, 320);
  assert.equal(result.video.height, 180);
  assert.equal(result.video.displayWidth, 180);
  assert.equal(result.video.displayHeight, 320);
  assert.ok([90, 270].includes(result.video.rotation), `rotation ${result.video.rotation}`);
  assert.equal(result.video.fps, 25);
  assert.equal(result.audio, null);
});

test('probe reports audio-only and image inputs without inventing a video', async () => {
  const audio = await probe(file('audio.m4a'));
  assert.equal(audio.formatName, MP4);
  assert.equal(audio.video, null);
  assert.deepEqual(audio.audio, { codec: 'aac', channels: 1, sampleRate: 44100 });

  const still = await probe(file('still.png'));
  assert.equal(still.formatName, 'png_pipe');
  assert.equal(still.durationSeconds, null);
  assert.equal(still.video?.codec, 'png');
});

test('probe rejects a missing file as not_found', async () => {
  await assert.rejects(probe(file('nope.mp4')), (error: unknown) => {
    assert.ok(error instanceof ProbeError);
    assert.equal(error.kind, 'not_found');
    return true;
  });
});

test('probe rejects an empty file without running ffprobe', async () => {
  await assert.rejects(probe(file('empty.mp4'), { ffprobePath: '/nonexistent/ffprobe' }), (error: unknown) => {
    assert.ok(error instanceof ProbeError);
    assert.equal(error.kind, 'unreadable');
    assert.equal(error.detectedFormat, null);
    return true;
  });
});

test('a text file named .mp4 fails like a truncated MP4, but is not recognised by content', async () => {
  // Given the .mp4 name, ffprobe picks the MP4 demuxer by extension, so the stderr is the same
  // "moov atom not found" a truncated MP4 gives; only the name-blind sniff tells them apart.
  await assert.rejects(probe(file('text.mp4')), (error: unknown) => {
    assert.ok(error instanceof ProbeError);
    assert.equal(error.kind, 'unreadable');
    assert.match(error.stderrTail, /moov atom not found/);
    assert.equal(error.detectedFormat, null);
    return true;
  });
  await assert.rejects(probe(file('truncated.mp4')), (error: unknown) => {
    assert.ok(error instanceof ProbeError);
    assert.equal(error.kind, 'unreadable');
    assert.match(error.stderrTail, /moov atom not found/);
    assert.equal(error.detectedFormat, MP4);
    return true;
  });
});

test('probe fails loudly when ffprobe itself cannot be run', async () => {
  await assert.rejects(probe(file('ok.mp4'), { ffprobePath: '/nonexistent/ffprobe' }), (error: unknown) => {
    assert.ok(error instanceof Error);
    assert.ok(!(error instanceof ProbeError), 'a missing binary is not a problem with the file');
    assert.match(error.message, /Cannot run \/nonexistent\/ffprobe/);
    return true;
  });
});

test('parseProbeJson turns malformed ffprobe output into an error', () => {
  assert.throws(() => parseProbeJson({ streams: [] }, 1));
  assert.throws(() => parseProbeJson({ format: { format_name: 'x' }, streams: [{ width: 'wide' }] }, 1));
  const minimal = parseProbeJson({ format: { format_name: 'x', duration: 'N/A' } }, 5);
  assert.deepEqual(minimal, { formatName: 'x', durationSeconds: null, sizeBytes: 5, bitRate: null, video: null, audio: null });
});

test('parseProbeJson ignores cover art, reads legacy rotate tags, falls back to r_frame_rate and Matroska DURATION tags', () => {
  const result = parseProbeJson(
    {
      format: { format_name: 'matroska,webm' },
      streams: [
        { codec_type: 'video', codec_name: 'mjpeg', width: 600, height: 600, disposition: { attached_pic: 1 } },
        {
          codec_type: 'video', codec_name: 'h264', width: 1920, height: 1080, avg_frame_rate: '0/0',
          r_frame_rate: '30000/1001', tags: { rotate: '-90', DURATION: '00:01:02.500000000' },
        },
      ],
    },
    10,
  );
  assert.equal(result.durationSeconds, 62.5);
  assert.equal(result.video?.codec, 'h264');
  assert.equal(result.video?.rotation, 270);
  assert.equal(result.video?.displayWidth, 1080);
  assert.equal(result.video?.displayHeight, 1920);
  assert.ok(result.video?.fps !== null && Math.abs((result.video?.fps ?? 0) - 29.97) < 0.01);
});

test('runFfmpeg reports increasing progress that ends at 1', async () => {
  const fractions: number[] = [];
  await runFfmpeg(
    [
      // Paced input and frequent reports, so that even a fast machine shows several steps.
      '-stats_period', '0.05', '-readrate', '4',
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-t', '2',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'mp4', file('progress.mp4'),
    ],
    { durationSeconds: 2, onProgress: (f) => fractions.push(f) },
  );
  assert.ok(fractions.length >= 3, `only ${fractions.length} reports: ${fractions.join(', ')}`);
  for (let i = 1; i < fractions.length; i++) assert.ok(fractions[i]! > fractions[i - 1]!, `not increasing: ${fractions.join(', ')}`);
  assert.equal(fractions.at(-1), 1);
  assert.ok(fractions.slice(0, -1).every((f) => f >= 0 && f < 1));
  const out = await probe(file('progress.mp4'));
  assert.equal(out.video?.codec, 'h264');
});

test('runFfmpeg without a duration reports only completion', async () => {
  const fractions: number[] = [];
  await runFfmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=64x64:rate=10', '-t', '0.5', '-f', 'null', '-'], {
    onProgress: (f) => fractions.push(f),
  });
  assert.deepEqual(fractions, [1]);
});

test('aborting a long encode kills ffmpeg and rejects with AbortError', async () => {
  const controller = new AbortController();
  const running = runFfmpeg(['-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-t', '60', '-f', 'null', '-'], {
    signal: controller.signal,
    durationSeconds: 60,
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal((await childFfmpegs()).length, 1, 'ffmpeg should be running');
  controller.abort();
  await assert.rejects(running, { name: 'AbortError' });
  assert.deepEqual(await childFfmpegs(), []);
});

test('ffmpeg runs at a lower CPU priority than its parent, so encodes never starve the processes that must answer', async () => {
  const controller = new AbortController();
  const running = runFfmpeg(['-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-t', '60', '-f', 'null', '-'], { signal: controller.signal });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const [child] = await childFfmpegProcesses();
  controller.abort();
  await assert.rejects(running, { name: 'AbortError' });
  assert.equal(child?.nice, Math.max(getPriority(), FFMPEG_NICE));
});

test('an already aborted signal rejects without starting ffmpeg', async () => {
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(runFfmpeg(['-version'], { signal: controller.signal, ffmpegPath: '/nonexistent/ffmpeg' }), { name: 'AbortError' });
});

test('a failing run rejects with FfmpegError carrying a bounded stderr tail', async () => {
  await assert.rejects(runFfmpeg(['-i', `file:${file('nope.mp4')}`, '-f', 'null', '-'], {}), (error: unknown) => {
    assert.ok(error instanceof FfmpegError);
    assert.equal(error.exitCode, 1);
    assert.match(error.stderrTail, /No such file or directory/);
    assert.match(error.message, /exited with code 1/);
    return true;
  });
  // -v debug prints far more than 20 lines before failing on the bad filter.
  await assert.rejects(
    runFfmpeg(['-v', 'debug', '-f', 'lavfi', '-i', 'testsrc2=size=64x64', '-t', '0.2', '-vf', 'nosuchfilter', '-f', 'null', '-'], {}),
    (error: unknown) => {
      assert.ok(error instanceof FfmpegError);
      assert.notEqual(error.exitCode, 0);
      const lines = error.stderrTail.split('\n');
      assert.ok(lines.length > 0 && lines.length <= 20, `${lines.length} lines`);
      assert.match(error.stderrTail, /nosuchfilter/);
      return true;
    },
  );
});

test('runFfmpeg fails loudly when ffmpeg cannot be run', async () => {
  await assert.rejects(runFfmpeg(['-version'], { ffmpegPath: '/nonexistent/ffmpeg' }), (error: unknown) => {
    assert.ok(error instanceof Error && !(error instanceof FfmpegError));
    assert.match(error.message, /Cannot run \/nonexistent\/ffmpeg/);
    return true;
  });
});
