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
 * graphemes: what a reader sees as one character (a ZWJ family emoji is one);
 * characters: Unicode code points; utf16: JavaScript string length (astral characters are two).
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
  // Every unit is reported as "characters": it is the platform's own count, and "graphemes" or
  // "UTF-16 units" would mean nothing to the person shortening the caption.
  if (length > maxLength) return MESSAGES.captionTooLong(spec.label, length, maxLength, 'characters');
  if (maxBytes !== undefined) {
    const bytes = utf8ByteLength(text);
    if (bytes > maxBytes) return MESSAGES.captionTooManyBytes(spec.label, bytes, maxBytes);
  }
  return null;
}
