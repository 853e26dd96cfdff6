import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderStatus } from '../../../core/chat/status.ts';
import type { DeliveryView, PostRow } from '../../../core/posts.ts';

const post: PostRow = {
  id: '7c9e6679-7425-40de-944b-e07fc1f90ae7', workspace_id: 'telegram:1', author_id: '42', caption: 'hi', media_id: null,
  media_state: 'ready', media_error: null, scheduled_at: new Date('2026-11-23T17:00:00Z'), time_zone: 'Europe/Berlin', origin: {}, part: null, parts: null, created_at: new Date(),
};

function delivery(platform: DeliveryView['platform'], state: DeliveryView['state'], extra: Partial<DeliveryView> = {}): DeliveryView {
  return {
    id: `${platform}-id`, post_id: post.id, account_id: 'a', platform, state, caption: null, profile_key: 'k', rendition_id: null, checkpoint: {},
    remote_id: null, url: null, note: null, options: {}, error_code: null, error: null, attempts: 0, first_attempt_at: null, job_id: null, published_at: null, created_at: new Date(), updated_at: new Date(), handle: 'me', ...extra,
  };
}

test('a scheduled post shows its local time; published and failed lines show link or reason', () => {
  const scheduled = renderStatus(post, [delivery('bluesky', 'scheduled')], { now: new Date('2026-11-22T12:00:00Z') });
  assert.match(scheduled.text, /^Scheduled for .*23 Nov 2026.*18:00/);
  assert.equal(scheduled.final, false);

  const done = renderStatus(post, [
    delivery('bluesky', 'published', { url: 'https://bsky.app/profile/me/post/3abc' }),
    delivery('tiktok', 'failed', { error: 'TikTok refused the post: the caption mentions too many accounts.' }),
  ], { now: new Date('2026-11-23T18:00:00Z') });
  assert.equal(done.text, [
    'Published with problems',
    '✅ Bluesky @me: https://bsky.app/profile/me/post/3abc',
    '❌ TikTok @me: failed — TikTok refused the post: the caption mentions too many accounts.',
    'Post 7c9e6679',
  ].join('\n'));
  assert.deepEqual(done.lines.map((l) => l.retryable), [false, true]);
  assert.equal(done.final, true);
});

test('a retry waiting its turn shows the last reason', () => {
  const waiting = renderStatus(post, [delivery('x', 'scheduled', { error: 'X is limiting requests right now; Reelay will try again later.' })], { now: new Date('2026-11-23T18:00:00Z') });
  assert.match(waiting.text, /X @me: scheduled — X is limiting requests/);
});

test('live progress shows in the header while converting and on the uploading line', () => {
  const pending = renderStatus({ ...post, media_state: 'pending' }, [delivery('bluesky', 'scheduled')], { now: new Date(), progress: { transcoding: 0.426 } });
  assert.match(pending.text, /^Converting the video… 42%/);
  const uploading = renderStatus(post, [delivery('bluesky', 'publishing')], { now: new Date(), progress: { uploading: { 'bluesky-id': 0.5 } } });
  assert.match(uploading.text, /Bluesky @me: uploading 50%/);
  const split = renderStatus({ ...post, part: 2, parts: 3 }, [delivery('bluesky', 'published', { url: 'https://bsky.app/x' })], { now: new Date() });
  assert.match(split.text, /^Published \(part 2\/3\)/);
});
