/** How the CLI shows posts: one JSON object with --json, a short readable block otherwise. */
import { PLATFORM_SPECS } from '../core/platforms.ts';
import { postState, type PostWithDeliveries } from '../core/posts.ts';
import { formatInZone } from '../core/schedule.ts';

export interface PostJson {
  post: string;
  state: string;
  scheduledAt: string;
  deliveries: Array<{ platform: string; account: string; state: string; url: string | null; remoteId: string | null; error: string | null; note: string | null }>;
}

export function postJson(post: PostWithDeliveries): PostJson {
  return {
    post: post.id,
    state: postState(post, post.deliveries),
    scheduledAt: post.scheduled_at.toISOString(),
    deliveries: post.deliveries.map((d) => ({
      platform: d.platform,
      account: d.handle,
      state: d.state,
      url: d.url,
      remoteId: d.remote_id,
      error: d.state === 'published' ? null : d.error,
      note: d.note,
    })),
  };
}

export function postText(post: PostWithDeliveries): string {
  const lines = [
    `Post ${post.id} — ${postState(post, post.deliveries).replace('_', ' ')}`,
    `  scheduled ${formatInZone(post.scheduled_at, post.time_zone)}${post.media_error ? `\n  ${post.media_error}` : ''}`,
  ];
  for (const d of post.deliveries) {
    const label = `${PLATFORM_SPECS[d.platform].label} @${d.handle}`;
    const detail = d.state === 'published' ? d.url : d.error ? `${d.error}` : '';
    lines.push(`  ${label}: ${d.state.replace('_', ' ')}${detail ? ` — ${detail}` : ''}`);
    if (d.state === 'published' && d.remote_id) lines.push(`    ${d.remote_id}`);
    if (d.note) lines.push(`    ${d.note}`);
  }
  return lines.join('\n');
}

export function postLine(post: PostWithDeliveries): string {
  const targets = post.deliveries.map((d) => `${d.platform}:${d.state}`).join(' ');
  const caption = post.caption.split('\n')[0]?.slice(0, 40) ?? '';
  return `${post.id.slice(0, 8)}  ${post.scheduled_at.toISOString().slice(0, 16).replace('T', ' ')}Z  ${postState(post, post.deliveries).padEnd(19)} ${targets}  ${caption}`;
}
