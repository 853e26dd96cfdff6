/**
 * The one status message a post gets in chat, rendered from the database (never from memory, so
 * the worker and the bot can be separate processes). The edit throttle lives in the database too
 * (records.ts claimEdit), shared by every process that edits.
 */
import { PLATFORM_SPECS } from '../platforms.ts';
import { postState, type DeliveryView, type PostRow } from '../posts.ts';
import { formatInZone } from '../schedule.ts';

/** The id people type: eight hex digits are unique enough within a workspace (prefix lookup). */
export function shortId(id: string): string {
  return id.slice(0, 8);
}

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

/** Live fractions (0..1) the worker knows but the database does not. */
export interface StatusProgress {
  transcoding?: number;
  uploading?: Record<string, number>;
}

const percent = (fraction: number): string => `${Math.floor(Math.min(1, Math.max(0, fraction)) * 100)}%`;

/** Plain text: each front end escapes it for its own markup. */
export function renderStatus(post: PostRow, deliveries: readonly DeliveryView[], options: { now: Date; progress?: StatusProgress }): RenderedStatus {
  const part = post.parts && post.parts > 1 ? ` (part ${post.part}/${post.parts})` : '';
  const header = (() => {
    const transcoding = options.progress?.transcoding;
    if (post.media_state === 'pending') return transcoding === undefined ? 'Converting the video…' : `Converting the video… ${percent(transcoding)}`;
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
    const uploaded = options.progress?.uploading?.[d.id];
    if (d.state === 'publishing' && uploaded !== undefined) {
      return { platform: d.platform, text: `${ICONS[d.state]} ${label}: uploading ${percent(uploaded)}`, retryable: false };
    }
    const detail = d.state === 'published' ? [d.url, d.note].filter(Boolean).join(' — ') : d.state === 'processing' && d.note ? d.note : d.state === 'failed' || d.state === 'unconfirmed' || (d.state === 'scheduled' && d.error) ? (d.error ?? '') : '';
    return {
      platform: d.platform,
      text: `${ICONS[d.state]} ${label}: ${d.state === 'published' ? detail : `${STATE_WORDS[d.state]}${detail ? ` — ${detail}` : ''}`}`,
      retryable: d.state === 'failed',
    };
  });
  const final = post.media_state === 'failed' || deliveries.every((d) => ['published', 'failed', 'cancelled', 'unconfirmed'].includes(d.state));
  return { text: [`${header}${part}`, ...lines.map((l) => l.text), `Post ${shortId(post.id)}`].join('\n'), lines, final };
}
