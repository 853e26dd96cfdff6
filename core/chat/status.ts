/**
 * The one status message a post gets in chat, rendered from the database (never from memory, so
 * the worker and the bot can be separate processes), and the throttle that keeps edits to at most
 * one per message every two seconds and never repeats an identical edit.
 */
import { PLATFORM_SPECS } from '../platforms.ts';
import { postState, type DeliveryView, type PostRow } from '../posts.ts';
import { formatInZone } from '../schedule.ts';

const STATE_WORDS: Record<DeliveryView['state'], string> = {
  awaiting_approval: 'waiting for approval',
  scheduled: 'scheduled',
  publishing: 'uploading',
  processing: 'processing on the platform',
  published: 'published',
  failed: 'failed',
  cancelled: 'cancelled',
  unconfirmed: 'not confirmed',
};

const ICONS: Record<DeliveryView['state'], string> = {
  awaiting_approval: '⏸',
  scheduled: '🕒',
  publishing: '⏫',
  processing: '⚙️',
  published: '✅',
  failed: '❌',
  cancelled: '🚫',
  unconfirmed: '⚠️',
};

export interface StatusLine {
  platform: string;
  text: string;
  /** A failed delivery offers Retry. */
  retryable: boolean;
}

export interface RenderedStatus {
  text: string;
  lines: StatusLine[];
  /** Whether every delivery has reached an end state (no more edits will follow). */
  final: boolean;
}

/** Plain text: each front end escapes it for its own markup. */
export function renderStatus(post: PostRow, deliveries: readonly DeliveryView[], options: { now: Date }): RenderedStatus {
  const header = (() => {
    if (post.media_state === 'pending') return 'Converting the video…';
    if (post.media_state === 'failed') return post.media_error ?? 'The video could not be converted.';
    const state = postState(post, deliveries);
    if (state === 'scheduled' && post.scheduled_at.getTime() > options.now.getTime()) {
      return `Scheduled for ${formatInZone(post.scheduled_at, post.time_zone)}`;
    }
    return {
      awaiting_approval: 'Waiting for approval',
      scheduled: 'Publishing shortly',
      publishing: 'Publishing…',
      published: 'Published',
      partially_published: 'Published with problems',
      failed: 'Not published',
      cancelled: 'Cancelled',
    }[state];
  })();
  const lines = deliveries.map((d): StatusLine => {
    const label = `${PLATFORM_SPECS[d.platform].label} @${d.handle}`;
    const detail = d.state === 'published' ? [d.url, d.note].filter(Boolean).join(' — ') : d.state === 'processing' && d.note ? d.note : d.state === 'failed' || d.state === 'unconfirmed' || (d.state === 'scheduled' && d.error) ? (d.error ?? '') : '';
    return {
      platform: d.platform,
      text: `${ICONS[d.state]} ${label}: ${d.state === 'published' ? detail : `${STATE_WORDS[d.state]}${detail ? ` — ${detail}` : ''}`}`,
      retryable: d.state === 'failed',
    };
  });
  const final = post.media_state === 'failed' || deliveries.every((d) => ['published', 'failed', 'cancelled', 'unconfirmed'].includes(d.state));
  return { text: [header, ...lines.map((l) => l.text)].join('\n'), lines, final };
}

/**
 * Decides whether an edit may go out now. Keyed by message; holds only the last text and time per
 * message, for a bounded number of messages (the oldest are forgotten first).
 */
export class EditThrottle {
  readonly #minIntervalMs: number;
  readonly #last = new Map<string, { text: string; at: number }>();

  readonly #capacity: number;

  constructor(minIntervalMs = 2000, capacity = 10_000) {
    this.#minIntervalMs = minIntervalMs;
    this.#capacity = capacity;
  }

  /** 'send' now, 'skip' (identical to what the message shows), or 'later' with the wait in ms. */
  decide(messageKey: string, text: string, now: number): { action: 'send' } | { action: 'skip' } | { action: 'later'; waitMs: number } {
    const last = this.#last.get(messageKey);
    if (last && last.text === text) return { action: 'skip' };
    if (last && now - last.at < this.#minIntervalMs) return { action: 'later', waitMs: this.#minIntervalMs - (now - last.at) };
    return { action: 'send' };
  }

  sent(messageKey: string, text: string, now: number): void {
    this.#last.delete(messageKey);
    this.#last.set(messageKey, { text, at: now });
    if (this.#last.size > this.#capacity) {
      const oldest = this.#last.keys().next();
      if (!oldest.done) this.#last.delete(oldest.value);
    }
  }
}
