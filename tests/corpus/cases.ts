/**
 * The bad-input corpus (issue #8): every input a person can get wrong, and the inputs that look
 * odd but are fine, each with the one outcome Reelay must give. Media are made with ffmpeg at test
 * time (MEDIA); corpus.test.ts runs every case through its surface and checks that a refusal
 * left no row and no large object behind.
 *
 * Surfaces: `intake` calls submitPost in-process (what the CLI and the chats call), `cli` runs the
 * `reelay` command, `chat` sends a Telegram message to the bot (through the Bot API simulator),
 * `http` asks the bot's HTTP server.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { MESSAGES } from '../../core/errors.ts';
import { PLATFORM_IDS, PLATFORM_SPECS, type PlatformId } from '../../core/platforms.ts';
import { formatInZone, MAX_AHEAD_YEARS } from '../../core/schedule.ts';
import { MIN_PICTURE_SIDE } from '../../core/video.ts';

const run = promisify(execFile);

async function ffmpeg(...args: string[]): Promise<void> {
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { maxBuffer: 16 * 1024 * 1024 });
}

const X264 = ['-c:v', 'libx264', '-preset', 'ultrafast'];
const SINE = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'];

/** How each input file is made; `make` writes `path`. `source` files are inputs to others. */
export const MEDIA = {
  good: { file: 'good.mp4', make: (p: string) => ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=360x640:rate=30', ...SINE, '-t', '1', ...X264, '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', p) },
  corrupt: { file: 'corrupt.mp4', make: (p: string) => writeFile(p, Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 251))) },
  // The first half of an MP4 whose index (moov) is at the end: ffprobe knows the format, not the contents.
  truncated: {
    file: 'truncated.mp4',
    make: async (p: string) => {
      await ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=360x640:rate=30', '-t', '2', ...X264, '-pix_fmt', 'yuv420p', `${p}.whole.mp4`);
      const { readFile } = await import('node:fs/promises');
      const whole = await readFile(`${p}.whole.mp4`);
      await writeFile(p, whole.subarray(0, Math.floor(whole.length / 2)));
    },
  },
  empty: { file: 'empty.mp4', make: (p: string) => writeFile(p, '') },
  text: { file: 'notes.mp4', make: (p: string) => writeFile(p, 'my shopping list, not a video\n'.repeat(40)) },
  audioOnly: { file: 'song.mp4', make: (p: string) => ffmpeg(...SINE, '-t', '2', '-c:a', 'aac', '-f', 'mp4', p) },
  png: { file: 'picture.mp4', make: (p: string) => ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=360x640', '-frames:v', '1', '-c:v', 'png', '-f', 'image2', p) },
  stillFrame: { file: 'still.mp4', make: (p: string) => ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=360x640', '-frames:v', '1', '-c:v', 'mjpeg', '-f', 'mp4', p) },
  // Ten hours at 1 fps of a 32x32 colour: 36 000 tiny frames, under a second to make.
  tenHours: { file: 'ten-hours.mp4', make: (p: string) => ffmpeg('-f', 'lavfi', '-i', 'color=c=blue:size=32x32:rate=1', '-t', '36000', ...X264, '-tune', 'stillimage', '-pix_fmt', 'yuv420p', p) },
  onePixel: { file: 'pixel.mp4', make: (p: string) => ffmpeg('-f', 'lavfi', '-i', 'color=c=red:size=16x16:rate=30', '-t', '1', '-vf', 'scale=1:1', ...X264, '-pix_fmt', 'yuv444p', p) },
  // Valid inputs that need work before any platform takes them.
  eightK: { file: 'eight-k.mp4', make: (p: string) => ffmpeg('-f', 'lavfi', '-i', 'color=c=green:size=7680x4320:rate=24', '-t', '0.75', ...X264, '-pix_fmt', 'yuv420p', p) },
  hevc: { file: 'hevc.mp4', make: (p: string) => ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=360x640:rate=30', ...SINE, '-t', '1', '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error', '-tag:v', 'hvc1', '-c:a', 'aac', '-shortest', p) },
  vp9: { file: 'clip.webm', make: (p: string) => ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=360x640:rate=30', ...SINE, '-t', '1', '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-c:a', 'libopus', '-shortest', p) },
  prores: { file: 'master.mov', make: (p: string) => ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=360x640:rate=30', ...SINE, '-t', '1', '-c:v', 'prores_ks', '-profile:v', '0', '-c:a', 'pcm_s16le', '-shortest', p) },
  // Frames dropped unevenly but their timestamps kept: 30 fps base, about 11 fps on average.
  vfr: { file: 'low-light.mp4', make: (p: string) => ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=360x640:rate=30', ...SINE, '-t', '2', '-vf', "select='not(mod(n\\,3))+eq(n\\,10)+eq(n\\,11)'", '-fps_mode', 'vfr', ...X264, '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', p) },
  noAudio: { file: 'silent.mp4', make: (p: string) => ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=360x640:rate=30', '-t', '1', ...X264, '-pix_fmt', 'yuv420p', p) },
  // A phone held upright: landscape pixels with a 90° display rotation, as phones record.
  rotated: {
    file: 'phone.mp4',
    make: async (p: string) => {
      await ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', ...SINE, '-t', '1', ...X264, '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', `${p}.land.mp4`);
      await ffmpeg('-i', `${p}.land.mp4`, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', p);
    },
  },
  // 4:2:0 needs even sizes, so an odd-sized H.264 is 4:4:4, as some screen recorders make.
  oddSize: { file: 'odd.mp4', make: (p: string) => ffmpeg('-f', 'lavfi', '-i', 'color=c=yellow:size=16x16:rate=30', '-t', '1', '-vf', 'scale=361:641,setsar=1', ...X264, '-pix_fmt', 'yuv444p', p) },
} as const;

export type MediaName = keyof typeof MEDIA;

/** An accepted input's rendition, as ffprobe sees it: h264/yuv420p, even sides, constant fps, no rotation left. */
export interface RenditionExpectation {
  platform: PlatformId;
  /** Upright (taller than wide) once the rotation is applied. */
  portrait?: boolean;
  audio: boolean;
}

export type Expectation =
  /** Refused with exactly this text (a function when it names today's date or the chat's workspace). */
  | { refused: string | ((env: { now: Date; workspace: string }) => string) }
  /** Accepted: one delivery per platform listed, the caption stored byte for byte. */
  | { accepted: PlatformId[] }
  /** Accepted and converted: each rendition is compliant. */
  | { renditions: RenditionExpectation[] }
  /** Chat only: nothing happens and nothing is said (a reaction from someone who may not decide). */
  | { ignored: true };

export interface CorpusCase {
  id: string;
  surface: 'intake' | 'cli' | 'chat' | 'http';
  media?: MediaName;
  /** --to / "to ..." (intake and CLI). */
  to?: string;
  caption?: string;
  when?: string;
  timeZone?: string;
  /** Chat: the message text (or caption), with {link:NAME} replaced by the test's link server. */
  chat?: { text: string; attach?: { media: MediaName; as: 'video' | 'document' | 'photo'; name?: string }; approval?: 'reaction' | 'button' };
  /** HTTP: the path and query asked for. */
  http?: string;
  expect: Expectation;
}

/** The size cap the corpus runs with (LINK_MAX_BYTES), so the 5 GB links stop early. */
export const LINK_MAX_BYTES = 16 * 1024 * 1024;
export const FIVE_GB = 5 * 1024 ** 3;
export const CHAT_WORKSPACE_LINKED: PlatformId[] = ['bluesky', 'x'];
/** Linked in the intake workspace; linkedin is left out on purpose (the "unlinked" case). */
export const INTAKE_LINKED: PlatformId[] = ['bluesky', 'x', 'tiktok', 'youtube', 'instagram', 'facebook', 'threads', 'pinterest'];

const label = (p: PlatformId) => PLATFORM_SPECS[p].label;
const tooLong = (p: PlatformId, length: number) => MESSAGES.captionTooLong(label(p), length, PLATFORM_SPECS[p].caption.maxLength, 'characters');

/** The next 10:00 UTC after `now` (what a refused past 10:00 suggests). */
function nextTen(now: Date): string {
  const at = new Date(now);
  at.setUTCHours(10, 0, 0, 0);
  if (at.getTime() <= now.getTime()) at.setUTCDate(at.getUTCDate() + 1);
  return formatInZone(at, 'UTC');
}

const INJECTION = '<script>alert(1)</script> <b>bold</b> **bold** [click](javascript:alert(1)) &amp; `code`';
const RTL_EMOJI = 'שלום 👋 مرحبا بالعالم \u202Eevil\u202C 👨‍👩‍👧‍👦 🇩🇪 #تجربة';

export const CASES: CorpusCase[] = [
  // --- Files nobody can use -------------------------------------------------------------------
  { id: 'corrupt', surface: 'intake', media: 'corrupt', expect: { refused: MESSAGES.notAVideo('corrupt.mp4') } },
  { id: 'truncated', surface: 'intake', media: 'truncated', expect: { refused: MESSAGES.corruptVideo('truncated.mp4') } },
  { id: 'zero-byte', surface: 'intake', media: 'empty', expect: { refused: MESSAGES.fileEmpty('empty.mp4') } },
  { id: 'text-renamed-mp4', surface: 'intake', media: 'text', expect: { refused: MESSAGES.notAVideo('notes.mp4') } },
  { id: 'audio-only', surface: 'intake', media: 'audioOnly', expect: { refused: MESSAGES.noVideoStream('song.mp4') } },
  { id: 'image-png-renamed', surface: 'intake', media: 'png', expect: { refused: MESSAGES.notAVideo('picture.mp4') } },
  { id: 'image-one-frame-mp4', surface: 'intake', media: 'stillFrame', expect: { refused: MESSAGES.notAVideo('still.mp4') } },
  // Spelled out once: the length reads as hours, and the limit is the platform's own.
  { id: 'ten-hours', surface: 'intake', media: 'tenHours', to: 'x', expect: { refused: 'The video is 10:00:00 long; X allows at most 2:20.' } },
  { id: 'ten-hours-tiktok', surface: 'intake', media: 'tenHours', to: 'tiktok', expect: { refused: MESSAGES.videoTooLong('TikTok', 36000, 600) } },
  { id: 'one-pixel', surface: 'intake', media: 'onePixel', expect: { refused: MESSAGES.pictureTooSmall('pixel.mp4', 1, 1, MIN_PICTURE_SIDE) } },
  { id: 'cli-ten-hours', surface: 'cli', media: 'tenHours', to: 'x', expect: { refused: MESSAGES.videoTooLong('X', 36000, 140) } },
  { id: 'cli-text-renamed', surface: 'cli', media: 'text', expect: { refused: MESSAGES.notAVideo('notes.mp4') } },

  // --- Odd but valid: converted to what every platform takes ---------------------------------
  { id: '8k', surface: 'intake', media: 'eightK', to: 'x, bluesky', expect: { renditions: [{ platform: 'x', audio: false }, { platform: 'bluesky', audio: false }] } },
  { id: 'hevc', surface: 'intake', media: 'hevc', to: 'x', expect: { renditions: [{ platform: 'x', portrait: true, audio: true }] } },
  { id: 'vp9-webm', surface: 'intake', media: 'vp9', to: 'x', expect: { renditions: [{ platform: 'x', portrait: true, audio: true }] } },
  { id: 'prores-mov', surface: 'intake', media: 'prores', to: 'x', expect: { renditions: [{ platform: 'x', portrait: true, audio: true }] } },
  { id: 'variable-frame-rate', surface: 'intake', media: 'vfr', to: 'x', expect: { renditions: [{ platform: 'x', portrait: true, audio: true }] } },
  { id: 'no-audio', surface: 'intake', media: 'noAudio', to: 'x', expect: { renditions: [{ platform: 'x', portrait: true, audio: false }] } },
  { id: 'rotated-phone', surface: 'intake', media: 'rotated', to: 'x', expect: { renditions: [{ platform: 'x', portrait: true, audio: true }] } },
  { id: 'odd-dimensions', surface: 'intake', media: 'oddSize', to: 'x', expect: { renditions: [{ platform: 'x', portrait: true, audio: false }] } },

  // --- Captions -------------------------------------------------------------------------------
  { id: 'caption-bluesky-graphemes', surface: 'intake', to: 'bluesky', caption: 'a'.repeat(301), expect: { refused: tooLong('bluesky', 301) } },
  // 121 family emoji are 121 graphemes but 3025 bytes: under Bluesky's count, over its byte limit.
  { id: 'caption-bluesky-bytes', surface: 'intake', to: 'bluesky', caption: '👨‍👩‍👧‍👦'.repeat(121), expect: { refused: MESSAGES.captionTooManyBytes('Bluesky', 3025, 3000) } },
  { id: 'caption-x-weighted-emoji', surface: 'intake', to: 'x', caption: '😀'.repeat(141), expect: { refused: MESSAGES.captionTooLongWeighted('X', 282, 280) } },
  { id: 'caption-threads-emoji-bytes', surface: 'intake', to: 'threads', caption: '👨‍👩‍👧‍👦'.repeat(21), expect: { refused: MESSAGES.captionTooLongEmojiBytes('Threads', 525, 500) } },
  { id: 'caption-tiktok-utf16', surface: 'intake', to: 'tiktok', caption: '🎵'.repeat(1101), expect: { refused: tooLong('tiktok', 2202) } },
  { id: 'caption-youtube-bytes', surface: 'intake', to: 'youtube', caption: 'é'.repeat(2600), expect: { refused: MESSAGES.captionTooManyBytes('YouTube', 5200, 5000) } },
  { id: 'caption-instagram', surface: 'intake', to: 'instagram', caption: 'i'.repeat(2201), expect: { refused: tooLong('instagram', 2201) } },
  { id: 'caption-facebook', surface: 'intake', to: 'facebook', caption: 'f'.repeat(2201), expect: { refused: tooLong('facebook', 2201) } },
  { id: 'caption-pinterest', surface: 'intake', to: 'pinterest', caption: 'p'.repeat(801), expect: { refused: tooLong('pinterest', 801) } },
  { id: 'caption-strictest-wins', surface: 'intake', to: 'tiktok, bluesky', caption: 'b'.repeat(301), expect: { refused: tooLong('bluesky', 301) } },
  { id: 'caption-emoji-rtl', surface: 'intake', to: 'bluesky, x, threads', caption: RTL_EMOJI, expect: { accepted: ['bluesky', 'x', 'threads'] } },
  { id: 'caption-zero-width-joiners', surface: 'intake', to: 'bluesky', caption: `zero\u200Bwidth\u200C\u200D\u2060 ${'👩\u200D💻'.repeat(10)}`, expect: { accepted: ['bluesky'] } },
  { id: 'caption-zero-width-spaces-count', surface: 'intake', to: 'bluesky', caption: '\u200B'.repeat(301), expect: { refused: tooLong('bluesky', 301) } },
  { id: 'caption-byte-order-mark-x', surface: 'intake', to: 'x', caption: 'hello\uFEFFworld', expect: { refused: MESSAGES.xInvalidCharacters() } },
  { id: 'caption-html-markdown', surface: 'intake', to: 'bluesky, x', caption: INJECTION, expect: { accepted: ['bluesky', 'x'] } },

  // --- Times ----------------------------------------------------------------------------------
  { id: 'time-past', surface: 'intake', when: '2020-01-01 10:00', timeZone: 'UTC', expect: { refused: ({ now }) => MESSAGES.timePast('Wed 1 Jan 2020, 10:00 UTC', nextTen(now)) } },
  { id: 'time-31-feb-iso', surface: 'intake', when: '2027-02-31 10:00', timeZone: 'UTC', expect: { refused: MESSAGES.timeNoSuchDate('2027-02-31 10:00', 'February', 28) } },
  { id: 'time-31-feb-words', surface: 'intake', when: '31 Feb 2028 10:00', timeZone: 'UTC', expect: { refused: MESSAGES.timeNoSuchDate('31 Feb 2028 10:00', 'February', 29) } },
  { id: 'time-dst-gap', surface: 'intake', when: '2027-03-28 02:30', timeZone: 'Europe/Berlin', expect: { refused: MESSAGES.timeNonexistent('Sun 28 Mar 2027, 02:30', 'Europe/Berlin', 'Sun 28 Mar 2027, 03:00 CEST') } },
  { id: 'time-dst-overlap', surface: 'intake', when: '2027-10-31 02:30', timeZone: 'Europe/Berlin', expect: { refused: MESSAGES.timeAmbiguous('Sun 31 Oct 2027, 02:30', 'Europe/Berlin', '02:30 CEST (+02:00)', '02:30 CET (+01:00)') } },
  { id: 'time-far-future', surface: 'intake', when: '3000-01-01 10:00', timeZone: 'UTC', expect: { refused: MESSAGES.timeTooFar('Wed 1 Jan 3000, 10:00 UTC', MAX_AHEAD_YEARS) } },
  { id: 'time-empty', surface: 'intake', when: '  ', timeZone: 'UTC', expect: { refused: MESSAGES.timeEmpty() } },
  { id: 'time-unknown-zone', surface: 'intake', when: 'tomorrow 6pm', timeZone: 'Mars/Olympus_Mons', expect: { refused: MESSAGES.unknownTimezone('Mars/Olympus_Mons') } },

  // --- Targets --------------------------------------------------------------------------------
  { id: 'target-unknown', surface: 'intake', to: 'bluesky, myspace', expect: { refused: MESSAGES.unknownPlatform('myspace', PLATFORM_IDS) } },
  { id: 'target-unlinked', surface: 'intake', to: 'linkedin', expect: { refused: MESSAGES.noAccount('LinkedIn', 'cli') } },
  { id: 'target-unknown-handle', surface: 'intake', to: 'bluesky:nobody.test', expect: { refused: MESSAGES.noAccount('Bluesky', 'cli', 'nobody.test') } },
  { id: 'target-none', surface: 'intake', to: ' , ', expect: { refused: MESSAGES.noTargets() } },
  { id: 'target-duplicates', surface: 'intake', to: 'bluesky, bsky, Bluesky, x, twitter', expect: { accepted: ['bluesky', 'x'] } },

  // --- Chat: replies never render markup, links never reach inside ----------------------------
  { id: 'chat-html-in-reply', surface: 'chat', chat: { text: '/post to <b>tiktok</b>', attach: { media: 'good', as: 'video' } }, expect: { refused: MESSAGES.unknownPlatform('<b>tiktok</b>', PLATFORM_IDS) } },
  { id: 'chat-markdown-in-reply', surface: 'chat', chat: { text: '/schedule __*[soon](http://evil.test)*__ to bluesky', attach: { media: 'good', as: 'video' } }, expect: { refused: MESSAGES.timeUnparsed('__*[soon](http://evil.test)*__') } },
  { id: 'chat-unlinked', surface: 'chat', chat: { text: '/post to youtube', attach: { media: 'good', as: 'video' } }, expect: { refused: ({ workspace }) => MESSAGES.noAccount('YouTube', workspace) } },
  { id: 'chat-31-feb', surface: 'chat', chat: { text: '/schedule 31 feb 2027 9:00 to bluesky', attach: { media: 'good', as: 'video' } }, expect: { refused: MESSAGES.timeNoSuchDate('31 feb 2027 9:00', 'February', 28) } },
  { id: 'chat-photo', surface: 'chat', chat: { text: '/post to bluesky', attach: { media: 'stillFrame', as: 'photo', name: 'p.jpg' } }, expect: { refused: MESSAGES.chatPhotoNotVideo() } },
  { id: 'chat-audio-document', surface: 'chat', chat: { text: '/post to bluesky', attach: { media: 'audioOnly', as: 'document', name: 'song.m4a' } }, expect: { refused: MESSAGES.chatDocumentNotVideo('song.m4a') } },
  { id: 'chat-audio-as-video', surface: 'chat', chat: { text: '/post to bluesky', attach: { media: 'audioOnly', as: 'video', name: 'song.mp4' } }, expect: { refused: MESSAGES.noVideoStream('song.mp4') } },
  { id: 'chat-corrupt', surface: 'chat', chat: { text: '/post to x', attach: { media: 'corrupt', as: 'video', name: 'corrupt.mp4' } }, expect: { refused: MESSAGES.notAVideo('corrupt.mp4') } },
  { id: 'chat-ten-hours', surface: 'chat', chat: { text: '/post to x', attach: { media: 'tenHours', as: 'video', name: 'ten-hours.mp4' } }, expect: { refused: MESSAGES.videoTooLong('X', 36000, 140) } },
  { id: 'link-loopback', surface: 'chat', chat: { text: '/post to bluesky\nhttp://127.0.0.1:9/video.mp4' }, expect: { refused: MESSAGES.linkPrivateAddress('127.0.0.1') } },
  { id: 'link-cloud-metadata', surface: 'chat', chat: { text: '/post to bluesky\nhttp://169.254.169.254/latest/meta-data/video.mp4' }, expect: { refused: MESSAGES.linkPrivateAddress('169.254.169.254') } },
  { id: 'link-ipv6-loopback', surface: 'chat', chat: { text: '/post to bluesky\nhttp://[::1]:9/video.mp4' }, expect: { refused: MESSAGES.linkPrivateAddress('[::1]') } },
  { id: 'link-redirect-to-private', surface: 'chat', chat: { text: '/post to bluesky\n{link:redirect}' }, expect: { refused: MESSAGES.linkPrivateAddress('127.0.0.1') } },
  { id: 'link-5gb-declared', surface: 'chat', chat: { text: '/post to bluesky\n{link:huge}' }, expect: { refused: MESSAGES.linkTooBig(LINK_MAX_BYTES) } },
  { id: 'link-5gb-undeclared', surface: 'chat', chat: { text: '/post to bluesky\n{link:endless}' }, expect: { refused: MESSAGES.linkTooBig(LINK_MAX_BYTES) } },
  { id: 'chat-preview-shows-markup-as-text', surface: 'chat', chat: { text: `/post to x\n${INJECTION}`, attach: { media: 'good', as: 'video' }, approval: 'button' }, expect: { refused: MESSAGES.notAnApprover() } },
  { id: 'chat-non-approver-reaction', surface: 'chat', chat: { text: '/post to x\nReact to me', attach: { media: 'good', as: 'video' }, approval: 'reaction' }, expect: { ignored: true } },

  // --- Linking over HTTP ----------------------------------------------------------------------
  { id: 'oauth-forged-state', surface: 'http', http: '/oauth/tiktok/callback?code=stolen&state=forged-state-value', expect: { refused: MESSAGES.linkStateInvalid() } },
  { id: 'oauth-forged-state-injection', surface: 'http', http: `/oauth/x/callback?state=${encodeURIComponent('<script>alert(1)</script>')}&error=${encodeURIComponent('<img src=x onerror=alert(1)>')}`, expect: { refused: MESSAGES.linkStateInvalid() } },
  { id: 'oauth-no-state', surface: 'http', http: '/oauth/youtube/callback?code=abc', expect: { refused: MESSAGES.linkStateInvalid() } },
];
