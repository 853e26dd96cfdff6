/**
 * Caption length as each platform counts it, so a too-long caption is refused at intake with the
 * platform's own number instead of failing at publish time.
 */
import twitterText from 'twitter-text';
import { MESSAGES } from './errors.ts';
import type { CaptionRules, PlatformSpec } from './platforms.ts';

export type CaptionUnit = CaptionRules['unit'];

const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' });

/**
 * A grapheme that is (or contains) an emoji: a pictograph, a flag's regional indicators, or a
 * keycap. Text-style symbols such as © are pictographs too; counting them as emoji can only make
 * intake refuse a caption a little early, never let through one the platform refuses.
 */
const EMOJI = /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3/u;

/**
 * graphemes: what a reader sees as one character (a ZWJ family emoji is one);
 * characters: Unicode code points; utf16: JavaScript string length (astral characters are two);
 * emojiBytes: graphemes, except that an emoji counts as its UTF-8 bytes (Threads: 😀 is 4, a ZWJ
 * family 25, a flag 8).
 */
export function countCaption(text: string, unit: CaptionUnit): number {
  switch (unit) {
    case 'graphemes': {
      let count = 0;
      for (const _ of graphemes.segment(text)) count += 1;
      return count;
    }
    case 'characters': {
      let count = 0;
      for (const _ of text) count += 1;
      return count;
    }
    case 'utf16':
      return text.length;
    case 'emojiBytes': {
      let count = 0;
      for (const { segment } of graphemes.segment(text)) count += EMOJI.test(segment) ? utf8ByteLength(segment) : 1;
      return count;
    }
    case 'weighted':
      return twitterText.parseTweet(text).weightedLength;
  }
}

export function utf8ByteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** The message to show when `text` is too long for the platform, or null when it fits. */
export function captionProblem(text: string, spec: PlatformSpec): string | null {
  const { maxLength, unit, maxBytes } = spec.caption;
  const length = countCaption(text, unit);
  if (unit === 'weighted') {
    if (length > maxLength) return MESSAGES.captionTooLongWeighted(spec.label, length, maxLength);
    if (text !== '' && !twitterText.parseTweet(text).valid) return MESSAGES.xInvalidCharacters();
    return null;
  }
  if (unit === 'emojiBytes' && length > maxLength) return MESSAGES.captionTooLongEmojiBytes(spec.label, length, maxLength);
  // Every unit is reported as "characters": it is the platform's own count, and "graphemes" or
  // "UTF-16 units" would mean nothing to the person shortening the caption.
  if (length > maxLength) return MESSAGES.captionTooLong(spec.label, length, maxLength, 'characters');
  if (maxBytes !== undefined) {
    const bytes = utf8ByteLength(text);
    if (bytes > maxBytes) return MESSAGES.captionTooManyBytes(spec.label, bytes, maxBytes);
  }
  return null;
}
