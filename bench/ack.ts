/**
 * Chat acknowledgement: how long from a video with `/post to youtube` arriving at the Telegram Bot
 * API simulator until the bot's "Received …" reply is there. The real bot (grammY, long polling)
 * runs in this process; the worker that transcodes, publishes and edits the status messages of
 * the earlier videos runs as `reelay start` and docker-compose run it, in its own process (the
 * measured number), and, for comparison, inside the bot's process as `reelay start` used to.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { upsertAccount } from '../core/accounts.ts';
import { ChatNotifier } from '../core/chat/notifier.ts';
import { configuredOutboxes } from '../core/chat/outboxes.ts';
import { ensureWorkspace } from '../core/workspaces.ts';
import { startTelegram, type RunningTelegram } from '../bot/telegram.ts';
import { startWorker, type RunningWorker } from '../worker/main.ts';
import { makeClip } from '../tests/support/clips.ts';
import { testContext, type TestContext } from '../tests/support/context.ts';
import { startTelegramSim, type TelegramSim } from '../tests/sim/telegram.ts';
import { startYoutubeSim, type YoutubeSim } from '../tests/sim/youtube.ts';
import { atMost, info, percentile, sleep, spawnWorker, type BenchOptions, type Row, type WorkerChild } from './support.ts';

type WorkerPlace = 'own process' | 'bot process';

async function measure(place: WorkerPlace, messages: number, log: (line: string) => void): Promise<number[]> {
  let telegramSim: TelegramSim | undefined;
  let youtubeSim: YoutubeSim | undefined;
  let ctx: TestContext | undefined;
  let telegram: RunningTelegram | undefined;
  let worker: RunningWorker | undefined;
  let child: WorkerChild | undefined;
  let notifier: ChatNotifier | undefined;
  try {
    telegramSim = await startTelegramSim({ botUsername: 'reelay_bot' });
    youtubeSim = await startYoutubeSim({ insertsPerDay: 1_000_000, unitsPerDay: 1_000_000_000, channelUploadsPerDay: 1_000_000, processingPolls: 0 });
    const s = telegramSim;
    const yt = youtubeSim;
    const env = {
      TELEGRAM_BOT_TOKEN: s.token,
      TELEGRAM_API_ROOT: s.apiRoot,
      YOUTUBE_API_URL: yt.urls.api,
      YOUTUBE_UPLOAD_URL: yt.urls.upload,
      GOOGLE_TOKEN_URL: yt.urls.token,
      GOOGLE_CLIENT_ID: yt.client.clientId,
      GOOGLE_CLIENT_SECRET: yt.client.clientSecret,
    };
    ctx = await testContext({ env });
    const c = ctx;
    const admin = s.createUser({ first_name: 'Ada', username: 'ada' });
    const group = s.createGroup({ title: 'Bench', type: 'supergroup', creator: admin, bot: 'administrator' });
    const workspaceId = `telegram:${group.id}`;
    await ensureWorkspace(c.pool, workspaceId, 'UTC');
    const creds = yt.addAccount();
    await upsertAccount(c.pool, c.secrets, { workspaceId, platform: 'youtube', handle: 'creator', remoteId: yt.users.get(creds.userId)!.channelId, credentials: creds, expiresAt: new Date(creds.expiresAt) });
    const clip = readFileSync(makeClip(join(c.dir, 'clip.mp4'), { width: 360, height: 640, seconds: 4 }));

    notifier = new ChatNotifier({ pool: c.pool, log: c.log, now: c.now, outboxes: configuredOutboxes(c.config) });
    telegram = await startTelegram(c, { notifier });
    if (place === 'own process') child = spawnWorker(c, env, 'ack');
    else worker = await startWorker(c, { notify: notifier });

    const latencies: number[] = [];
    for (let i = 0; i < messages; i++) {
      const name = `clip-${i}.mp4`;
      const t0 = performance.now();
      const sent = s.sendUserMessage(group, admin, { video: { source: clip, name, mime: 'video/mp4' }, caption: `/post to youtube\nBench ${i}` });
      await s.waitForBotMessage(group, (m) => m.replyTo === sent.message_id && (m.text ?? '').startsWith(`Received ${name}`), 30_000);
      latencies.push(performance.now() - t0);
      // Messages a little apart, as people send them; the background work of the last still runs.
      await sleep(250);
    }
    const { rows: states } = await c.pool.query<{ state: string; n: number }>(`SELECT state, count(*)::int AS n FROM deliveries GROUP BY state ORDER BY state`);
    log(`  worker in its ${place}: deliveries by the last message ${states.map((r) => `${r.state} ${r.n}`).join(', ')}; latencies (ms): ${latencies.map((l) => l.toFixed(0)).join(' ')}`);
    if (child && child.child.exitCode !== null) throw new Error(`the worker exited early: ${child.stderr()}`);
    return latencies;
  } finally {
    await telegram?.stop();
    await child?.stop();
    await worker?.stop();
    await notifier?.close();
    await ctx?.dispose();
    await youtubeSim?.close();
    await telegramSim?.close();
  }
}

export async function ack({ quick, log }: BenchOptions): Promise<Row[]> {
  const messages = quick ? 20 : 60;
  const own = await measure('own process', messages, log);
  const shared = await measure('bot process', messages, log);
  const note = `${messages} videos with /post, Telegram simulator, long polling`;
  return [
    atMost('bot acknowledgement p95', percentile(own, 95), 'ms', 300, `${note}; worker in its own process (reelay start, docker-compose)`),
    info('bot acknowledgement p50', percentile(own, 50), 'ms'),
    info('bot acknowledgement p95, worker in the bot process', percentile(shared, 95), 'ms', 'for comparison: how reelay start ran the worker before'),
    info('bot acknowledgement p50, worker in the bot process', percentile(shared, 50), 'ms'),
  ];
}
