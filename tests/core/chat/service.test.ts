/**
 * ChatService without a chat: a recording outbox stands in. Split: a video longer than a target
 * allows becomes parts cut at keyframes, each its own post in order, spaced by the setting, with
 * "Part i/n" and its own status message.
 */
import assert from 'node:assert/strict';
import { copyFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { upsertAccount } from '../../../core/accounts.ts';
import { ChatNotifier } from '../../../core/chat/notifier.ts';
import type { ChatOutbox, OutMessage } from '../../../core/chat/outbox.ts';
import { ChatService, type IncomingMedia } from '../../../core/chat/service.ts';
import { ensureWorkspace } from '../../../core/workspaces.ts';
import { makeClip } from '../../support/clips.ts';
import { testContext, type TestContext } from '../../support/context.ts';

let ctx: TestContext;
let service: ChatService;
let notifier: ChatNotifier;
const sent: Array<{ chatId: string; message: OutMessage }> = [];

const outbox: ChatOutbox = {
  chat: 'telegram',
  maxUploadBytes: 50 * 1024 * 1024,
  send: async (chatId, message) => {
    sent.push({ chatId, message });
    return String(1000 + sent.length);
  },
  edit: async () => undefined,
  sendFile: async () => 'file',
  remove: async () => false,
};

function fileMedia(path: string, name: string): IncomingMedia {
  return { name, size: null, fetch: async (to, onProgress) => { await copyFile(path, to); onProgress(1); } };
}

before(async () => {
  ctx = await testContext();
  await ensureWorkspace(ctx.pool, 'telegram:-7', 'UTC');
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'telegram:-7', platform: 'x', handle: 'c', remoteId: null, credentials: {}, expiresAt: null });
  notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: { telegram: outbox } });
  service = new ChatService({ ctx, outbox, notifier });
});

after(async () => {
  await notifier?.close();
  await ctx?.dispose();
});

test('split: a video longer than X allows becomes parts, in order, a minute apart, each with "Part i/n"', async () => {
  // 150 s at 10 fps: x264 puts a keyframe every 25 s, so the only cut that fits X's 140 s is at 125 s.
  const clip = makeClip(join(ctx.dir, 'long.mp4'), { width: 180, height: 320, seconds: 150, fps: 10, audio: false });
  assert.ok((await stat(clip)).size > 0);
  const place = { chat: 'telegram' as const, chatId: '-7', workspaceId: 'telegram:-7', messageId: '1' };
  await service.request(place, { id: '42', name: 'Ada', chatAdmin: true }, '/schedule 2030-03-01 12:00 to x split\nA long one', fileMedia(clip, 'long.mp4'));
  await service.idle();
  const { rows } = await ctx.pool.query<{ caption: string; part: number; parts: number; scheduled_at: Date; media_id: string }>(
    `SELECT caption, part, parts, scheduled_at, media_id FROM posts WHERE workspace_id = 'telegram:-7' ORDER BY part`,
  );
  assert.deepEqual(rows.map((r) => [r.part, r.parts]), [[1, 2], [2, 2]]);
  assert.deepEqual(rows.map((r) => r.caption), ['A long one\n\nPart 1/2', 'A long one\n\nPart 2/2']);
  assert.equal(rows[0]!.scheduled_at.toISOString(), '2030-03-01T12:00:00.000Z');
  assert.equal(rows[1]!.scheduled_at.getTime() - rows[0]!.scheduled_at.getTime(), 60_000);
  const durations = await ctx.pool.query<{ d: number }>(`SELECT (probe->>'durationSeconds')::float AS d FROM media WHERE workspace_id = 'telegram:-7' ORDER BY (probe->>'durationSeconds')::float DESC`);
  assert.ok(durations.rows.every((r) => r.d <= 140), JSON.stringify(durations.rows));
  assert.ok(Math.abs(durations.rows.reduce((sum, r) => sum + r.d, 0) - 150) < 1, 'the parts add up to the whole');
  const statuses = await ctx.pool.query(`SELECT 1 FROM chat_messages WHERE kind = 'status' AND workspace_id = 'telegram:-7' AND post_id IS NOT NULL`);
  assert.equal(statuses.rowCount, 2, 'one status message per part');
});
