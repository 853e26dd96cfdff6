import { test } from 'node:test';
import assert from 'node:assert/strict';
import { captionProblem, countCaption, utf8ByteLength } from '../../core/captions.ts';
import { MESSAGES } from '../../core/errors.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';

// Man, ZWJ, woman, ZWJ, girl, ZWJ, boy: one visible emoji.
const FAMILY = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}';
// Regional indicators D + E.
const FLAG = '\u{1F1E9}\u{1F1EA}';
// e + combining acute accent.
const E_ACUTE = 'e\u0301';

test('counting by unit', () => {
  assert.equal(countCaption(FAMILY, 'graphemes'), 1);
  assert.equal(countCaption(FAMILY, 'characters'), 7);
  assert.equal(countCaption(FAMILY, 'utf16'), 11);
  assert.equal(countCaption(FLAG, 'graphemes'), 1);
  assert.equal(countCaption(FLAG, 'characters'), 2);
  assert.equal(countCaption(FLAG, 'utf16'), 4);
  assert.equal(countCaption(E_ACUTE, 'graphemes'), 1);
  assert.equal(countCaption(E_ACUTE, 'characters'), 2);
  assert.equal(countCaption('', 'graphemes'), 0);
  assert.equal(countCaption('hello', 'utf16'), 5);
  assert.equal(utf8ByteLength(FAMILY), 25);
});

test('Bluesky counts a ZWJ emoji sequence as one of its 300 graphemes', () => {
  const bluesky = PLATFORM_SPECS.bluesky;
  const fits = FAMILY.repeat(100) + 'a'.repeat(200);
  assert.equal(countCaption(fits, 'graphemes'), 300);
  assert.equal(countCaption(fits, 'characters'), 900);
  assert.equal(utf8ByteLength(fits), 2700);
  assert.equal(captionProblem(fits, bluesky), null);

  const over = fits + 'a';
  assert.equal(captionProblem(over, bluesky), MESSAGES.captionTooLong('Bluesky', 301, 300, 'characters'));
});

test('the same emoji are several characters for a code-point platform', () => {
  const instagram = PLATFORM_SPECS.instagram;
  const caption = FAMILY.repeat(314) + 'ab';
  assert.equal(countCaption(FAMILY.repeat(40), 'graphemes'), 40);
  assert.equal(countCaption(FAMILY.repeat(40), 'characters'), 280);
  assert.equal(countCaption(caption, 'characters'), 2200);
  assert.equal(captionProblem(caption, instagram), null);
  assert.equal(captionProblem(caption + 'a', instagram), MESSAGES.captionTooLong('Instagram', 2201, 2200, 'characters'));
});

test('Threads counts each emoji as its UTF-8 bytes and everything else as one character', () => {
  const threads = PLATFORM_SPECS.threads;
  assert.equal(PLATFORM_SPECS.threads.caption.unit, 'emojiBytes');
  assert.equal(countCaption('😀', 'emojiBytes'), 4);
  assert.equal(countCaption(FAMILY, 'emojiBytes'), 25);
  assert.equal(countCaption(FLAG, 'emojiBytes'), 8);
  // Heart with variation selector 16 (3 + 3 bytes), keycap one (1 + 3 + 3).
  assert.equal(countCaption('\u2764\uFE0F', 'emojiBytes'), 6);
  assert.equal(countCaption('1\uFE0F\u20E3', 'emojiBytes'), 7);
  // Letters, accents and CJK are one each, however many bytes they take.
  assert.equal(countCaption(`${E_ACUTE}日本語 ok`, 'emojiBytes'), 7);
  assert.equal(countCaption('שָׁלוֹם', 'emojiBytes'), 4);

  // 125 grinning faces are 125 characters to a reader and 500 to Threads.
  assert.equal(captionProblem('😀'.repeat(125), threads), null);
  assert.equal(captionProblem('😀'.repeat(126), threads), MESSAGES.captionTooLongEmojiBytes('Threads', 504, 500));
  const mixed = FAMILY.repeat(19) + 'a'.repeat(25);
  assert.equal(countCaption(mixed, 'characters'), 158);
  assert.equal(countCaption(mixed, 'emojiBytes'), 500);
  assert.equal(captionProblem(mixed, threads), null);
  assert.equal(captionProblem(mixed + '!', threads), MESSAGES.captionTooLongEmojiBytes('Threads', 501, 500));
  // Without emoji the count is the plain character count.
  assert.equal(captionProblem('é'.repeat(500), threads), null);
  assert.equal(captionProblem('é'.repeat(501), threads), MESSAGES.captionTooLongEmojiBytes('Threads', 501, 500));
});

test('X counts weighted characters: a link is 23, an emoji 2', () => {
  const x = PLATFORM_SPECS.x;
  assert.equal(captionProblem('😀'.repeat(140), x), null);
  assert.equal(captionProblem('😀'.repeat(141), x), MESSAGES.captionTooLongWeighted('X', 282, 280));
  const withLink = 'a'.repeat(256) + ' https://example.com/a/very/long/path/that/counts/as/twenty/three';
  assert.equal(countCaption(withLink, 'weighted'), 280);
  assert.equal(captionProblem(withLink, x), null);
  assert.equal(captionProblem('\uFEFFhello', x), MESSAGES.xInvalidCharacters());
});

test('the byte limit applies even when the grapheme count fits', () => {
  const bluesky = PLATFORM_SPECS.bluesky;
  // 120 family emoji: 120 graphemes but 3000 bytes, exactly at the limit.
  const atLimit = FAMILY.repeat(120);
  assert.equal(utf8ByteLength(atLimit), 3000);
  assert.equal(captionProblem(atLimit, bluesky), null);
  const over = atLimit + 'a';
  assert.equal(countCaption(over, 'graphemes'), 121);
  assert.equal(captionProblem(over, bluesky), MESSAGES.captionTooManyBytes('Bluesky', 3001, 3000));
});

test('UTF-16 platforms count astral characters twice', () => {
  const tiktok = PLATFORM_SPECS.tiktok;
  const rocket = '\u{1F680}';
  assert.equal(captionProblem(rocket.repeat(1100), tiktok), null);
  assert.equal(captionProblem(rocket.repeat(1100) + 'a', tiktok), MESSAGES.captionTooLong('TikTok', 2201, 2200, 'characters'));
});

test('right-to-left text is counted like any other', () => {
  // Arabic "hello world" with a right-to-left mark; each letter is one grapheme and one code point.
  const arabic = '\u200Fمرحبا بالعالم';
  assert.equal(countCaption(arabic, 'graphemes'), 14);
  assert.equal(countCaption(arabic, 'characters'), 14);
  assert.equal(countCaption(arabic, 'utf16'), 14);
  assert.equal(utf8ByteLength(arabic), 28);
  assert.equal(captionProblem(arabic, PLATFORM_SPECS.bluesky), null);
  // Hebrew with niqqud: the vowel points join their letters.
  const hebrew = 'שָׁלוֹם';
  assert.equal(countCaption(hebrew, 'graphemes'), 4);
  assert.equal(countCaption(hebrew, 'characters'), 7);
  const long = 'שלום '.repeat(60);
  assert.equal(countCaption(long, 'graphemes'), 300);
  assert.equal(captionProblem(long, PLATFORM_SPECS.bluesky), null);
  assert.equal(captionProblem(long + 'ש', PLATFORM_SPECS.bluesky), MESSAGES.captionTooLong('Bluesky', 301, 300, 'characters'));
});

test('a caption within every limit has no problem', () => {
  for (const spec of Object.values(PLATFORM_SPECS)) {
    assert.equal(captionProblem('New video! #shorts', spec), null, spec.id);
  }
});
