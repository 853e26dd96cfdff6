/**
 * /healthz and /metrics over real loopback HTTP: 200 with every part, 503 naming the part that
 * fails, chat reported as not configured (not failing), and the metrics the dashboards need.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chatPlaceholderChecks, coreHealthChecks, startHttp, type HealthReport, type HttpServer } from '../../bot/http.ts';
import { parseConfig } from '../../core/config.ts';
import { createPool } from '../../core/db.ts';
import { MESSAGES } from '../../core/errors.ts';
import { QUEUES } from '../../core/jobs.ts';
import { recordPublish, recordRetry, recordTokenRefreshFailure, recordTranscode } from '../../core/metrics.ts';
import { heartbeat } from '../../core/workers.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { seedMedia } from '../support/seed.ts';

let ctx: TestContext;
let http: HttpServer;

before(async () => {
  ctx = await testContext({ env: { TELEGRAM_BOT_TOKEN: '123:abc' } });
  http = await startHttp(ctx, { host: '127.0.0.1', port: 0 });
});
after(async () => {
  await http?.close();
  await ctx?.dispose();
});

async function health(server: HttpServer): Promise<{ status: number; body: HealthReport }> {
  const response = await fetch(`${server.url}/healthz`);
  return { status: response.status, body: (await response.json()) as HealthReport };
}

test('healthz: 200 with database, queue and ffmpeg ok; chat is "not configured", not a failure', async () => {
  await heartbeat(ctx.pool, { id: '00000000-0000-4000-8000-000000000001', hostname: 'test', pid: 1 });
  const { status, body } = await health(http);
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.ok, true);
  assert.deepEqual(body.failing, []);
  for (const part of ['database', 'queue', 'ffmpeg']) assert.equal(body.checks[part]?.status, 'ok', part);
  assert.deepEqual(body.checks['chat.telegram'], { status: 'not_configured', detail: MESSAGES.chatNoBotYet('Telegram'), ms: body.checks['chat.telegram']?.ms });
  assert.equal(body.checks['chat.discord']?.detail, MESSAGES.chatNotConfigured('DISCORD_TOKEN'));
  assert.equal(body.workers, 1);

  // Latency with ffmpeg's answer cached, as a load balancer polling every few seconds sees it.
  const samples: number[] = [];
  for (let i = 0; i < 20; i++) {
    const started = performance.now();
    assert.equal((await health(http)).status, 200);
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  const p50 = samples[10]!;
  assert.ok(p50 < 250, `/healthz p50 ${p50.toFixed(1)} ms`);
  process.stderr.write(`# /healthz latency p50 ${p50.toFixed(1)} ms, max ${samples.at(-1)!.toFixed(1)} ms\n`);
});

test('healthz: 503 naming the failing parts; a bot can replace its chat placeholder', async () => {
  const broken = { ...ctx, config: parseConfig({ REELAY_DATA_DIR: ctx.config.database.dataDir, FFMPEG_PATH: '/nonexistent/ffmpeg' }) };
  const deadPool = createPool('postgres://nobody:nothing@127.0.0.1:1/none', ctx.log, 1);
  const server = await startHttp({ ...broken, pool: deadPool }, { host: '127.0.0.1', port: 0, checks: [...coreHealthChecks({ ...broken, pool: deadPool }), ...chatPlaceholderChecks(broken.config)] });
  try {
    const { status, body } = await health(server);
    assert.equal(status, 503);
    assert.equal(body.ok, false);
    assert.deepEqual(body.failing.sort(), ['database', 'ffmpeg']);
    assert.match(body.checks.ffmpeg?.detail ?? '', /cannot run \/nonexistent\/ffmpeg/);
    assert.match(body.checks.database?.detail ?? '', /ECONNREFUSED/);
    assert.equal(body.checks.queue?.status, 'ok', 'the queue has its own connections');
    assert.equal(body.workers, null);

    server.addHealthCheck({ name: 'chat.telegram', run: async () => ({ status: 'failing', detail: 'getUpdates: 409 Conflict' }) });
    const again = await health(server);
    assert.ok(again.body.failing.includes('chat.telegram'));
    assert.equal(again.body.checks['chat.telegram']?.detail, 'getUpdates: 409 Conflict');
  } finally {
    await server.close();
    await deadPool.end();
  }
});

test('metrics: deliveries by platform and state, queue depth, heartbeat, durations, retries, refresh failures', async () => {
  await seedMedia(ctx, { states: ['published', 'published', 'failed'] });
  await ctx.boss.send(QUEUES.publish, { deliveryId: '00000000-0000-4000-8000-000000000002' }, { startAfter: new Date(Date.now() - 60_000) });
  recordPublish('bluesky', 'published', 1.2);
  recordPublish('bluesky', 'retry', 0.3);
  recordRetry('bluesky', 'unavailable');
  recordTokenRefreshFailure('tiktok');
  recordTranscode('encode', 4.5);

  const response = await fetch(`${http.url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await response.text();
  const value = (series: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    assert.ok(line, `${series} is exported`);
    return Number(line.slice(series.length + 1));
  };
  assert.equal(value('reelay_deliveries{platform="bluesky",state="published"}'), 2);
  assert.equal(value('reelay_deliveries{platform="bluesky",state="failed"}'), 1);
  assert.equal(value('reelay_deliveries{platform="tiktok",state="scheduled"}'), 0, 'empty series read 0, not missing');
  assert.equal(value(`reelay_queue_depth{queue="${QUEUES.publish}",state="created"}`), 1);
  assert.equal(value(`reelay_queue_due{queue="${QUEUES.publish}"}`), 1);
  assert.ok(Math.abs(value('reelay_worker_last_heartbeat_timestamp_seconds') - Date.now() / 1000) < 60);
  assert.equal(value('reelay_workers_live'), 1);
  assert.equal(value('reelay_publish_duration_seconds_count{platform="bluesky",outcome="published"}'), 1);
  assert.equal(value('reelay_publish_duration_seconds_bucket{le="2.5",platform="bluesky",outcome="published"}'), 1);
  assert.equal(value('reelay_transcode_duration_seconds_count{mode="encode"}'), 1);
  assert.equal(value('reelay_publish_retries_total{platform="bluesky",code="unavailable"}'), 1);
  assert.equal(value('reelay_token_refresh_failures_total{platform="tiktok"}'), 1);
  assert.ok(text.includes('reelay_process_cpu_user_seconds_total'), 'process metrics too');

  assert.equal((await fetch(`${http.url}/nothing-here`)).status, 404);
});
