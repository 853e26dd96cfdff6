/**
 * Chat acknowledgement: how long from a video with `/post to tiktok` arriving at the Telegram Bot
 * API simulator until the bot's "Received …" reply is there. The real bot (grammY, long polling)
 * and a worker run in this process, as `reelay start` runs them, so the acknowledgements meet the
 * downloads, transcodes and status edits of the earlier messages.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { upsertAccount } from '../core/accounts.ts';
import { ChatNotifier } from '../core/chat/notifier.ts';
import { configuredOutboxes } from '../core/chat/outboxes.ts';
import { ensureWorkspace } from '../core/workspaces.ts';
import { startTelegram, type RunningTelegram } from '../bot/telegram.ts';
import { startWorker, type RunningWorker } from '../worker/main.ts';
import { flakyTiktok } from '../tests/support/chat.ts';
import { makeClip } from '../tests/support/clips.ts';
import { testContext, type TestContext } from '../tests/support/context.ts';
import { startTelegramSim, type TelegramSim } from '../tests/sim/telegram.ts';
import { atMost, info, percentile, sleep, type BenchOptions, type Row } from './support.ts';

export async function ack({ quick, log }: BenchOptions): Promise<Row[]> {
  const messages = quick ? 20 : 60;
  let sim: TelegramSim | undefined;
  let ctx: TestContext | undefined;
  let telegram: RunningTelegram | undefined;
  let worker: RunningWorker | undefined;
  let notifier: ChatNotifier | undefined;
  try {
    sim = await startTelegramSim({ botUsername: 'reelay_bot' });
    const s = sim;
    ctx = await testContext({ env: { TELEGRAM_BOT_TOKEN: s.token, TELEGRAM_API_ROOT: s.apiRoot } });
    const c = ctx;
    const admin = s.createUser({ first_name: 'Ada', username: 'ada' });
    const group = s.createGroup({ title: 'Bench', type: 'supergroup', creator: admin, bot: 'administrator' });
    const workspaceId = `telegram:${group.id}`;
    await ensureWorkspace(c.pool, workspaceId, 'UTC');
    await upsertAccount(c.pool, c.secrets, { workspaceId, platform: 'tiktok', handle: 'creator', remoteId: null, credentials: { token: 'test' }, expiresAt: null });
    const clip = readFileSync(makeClip(join(c.dir, 'clip.mp4'), { width: 360, height: 640, seconds: 4 }));

    notifier = new ChatNotifier({ pool: c.pool, log: c.log, now: c.now, outboxes: configuredOutboxes(c.config) });
    telegram = await startTelegram(c, { notifier });
    worker = await startWorker(c, { notify: notifier, caps: {}, adapters: { tiktok: flakyTiktok().adapter } });

    const latencies: number[] = [];
    for (let i = 0; i < messages; i++) {
      const name = `clip-${i}.mp4`;
      const t0 = performance.now();
      const sent = s.sendUserMessage(group, admin, { video: { source: clip, name, mime: 'video/mp4' }, caption: `/post to tiktok\nBench ${i}` });
      await s.waitForBotMessage(group, (m) => m.replyTo === sent.message_id && (m.text ?? '').startsWith(`Received ${name}`), 30_000);
      latencies.push(performance.now() - t0);
      // Messages a little apart, as people send them; the background work of the last still runs.
      await sleep(250);
    }
    log(`  latencies (ms): ${latencies.map((l) => l.toFixed(0)).join(' ')}`);
    return [
      atMost('bot acknowledgement p95', percentile(latencies, 95), 'ms', 300, `${messages} videos with /post, Telegram simulator, long polling`),
      info('bot acknowledgement p50', percentile(latencies, 50), 'ms'),
    ];
  } finally {
    await telegram?.stop();
    await worker?.stop();
    await notifier?.close();
    await ctx?.dispose();
    await sim?.close();
  }
}
