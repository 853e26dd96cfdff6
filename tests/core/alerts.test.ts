/**
 * The worker heartbeat alert at explicit times (no sleeps): down once after two quiet minutes with
 * work due, back once when a worker beats again, however many watchers look.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, test } from 'node:test';
import { checkWorkerHeartbeat, type AlertSink, type OpsAlert } from '../../core/alerts.ts';
import { MESSAGES } from '../../core/errors.ts';
import { QUEUES } from '../../core/jobs.ts';
import { testContext, type TestContext } from '../support/context.ts';

const MINUTE = 60_000;
let ctx: TestContext;
const sent: OpsAlert[] = [];
const sink: AlertSink = { alert: async (alert) => void sent.push(alert) };

before(async () => {
  ctx = await testContext();
});
after(async () => ctx?.dispose());
beforeEach(async () => {
  sent.length = 0;
  await ctx.pool.query('DELETE FROM workers');
  await ctx.pool.query('DELETE FROM alerts');
  await ctx.boss.deleteAllJobs();
});

/** A job due at `at` that no worker has taken (none runs in this file). */
async function dueJob(at: Date): Promise<void> {
  await ctx.boss.send(QUEUES.publish, { deliveryId: randomUUID() }, { startAfter: at });
}

async function workerSeen(at: Date): Promise<void> {
  await ctx.pool.query('INSERT INTO workers (id, hostname, pid, seen_at) VALUES ($1, $2, $3, $4)', [randomUUID(), 'test', 1, at]);
}

test('down once after two minutes without a worker while a job is due, back once when one beats', async () => {
  const t0 = new Date(Date.now() - 30 * MINUTE);
  await workerSeen(new Date(t0.getTime() - 10 * MINUTE));
  await dueJob(t0);
  const at = (minutes: number) => new Date(t0.getTime() + minutes * MINUTE);

  assert.equal(await checkWorkerHeartbeat(ctx.pool, at(1), sink), null, 'one minute is not yet an outage');
  const down = await checkWorkerHeartbeat(ctx.pool, at(2), sink);
  assert.equal(down?.kind, 'workers_down');
  assert.equal(down?.message, MESSAGES.workersDown(2, 1));
  assert.equal(down?.since.getTime(), t0.getTime(), 'the outage counts from when the job fell due');
  assert.equal(await checkWorkerHeartbeat(ctx.pool, at(3), sink), null, 'not again a minute later');
  assert.equal(await checkWorkerHeartbeat(ctx.pool, at(10), sink), null, 'nor ten');

  await workerSeen(at(12));
  const back = await checkWorkerHeartbeat(ctx.pool, new Date(at(12).getTime() + 5000), sink);
  assert.equal(back?.kind, 'workers_back');
  assert.equal(back?.message, MESSAGES.workersBack(12));
  assert.equal(await checkWorkerHeartbeat(ctx.pool, at(13), sink), null);
  assert.deepEqual(sent.map((a) => a.kind), ['workers_down', 'workers_back']);
});

test('several watchers checking at the same moment send one alert between them', async () => {
  const t0 = new Date(Date.now() - 30 * MINUTE);
  await dueJob(t0);
  const now = new Date(t0.getTime() + 5 * MINUTE);
  const results = await Promise.all(Array.from({ length: 5 }, () => checkWorkerHeartbeat(ctx.pool, now, sink)));
  assert.equal(results.filter(Boolean).length, 1);
  assert.equal(sent.length, 1);
});

test('no alert without due work, nor while a worker is alive with a backlog', async () => {
  const now = new Date();
  assert.equal(await checkWorkerHeartbeat(ctx.pool, now, sink), null, 'no workers, nothing due');
  await dueJob(new Date(now.getTime() + 60 * MINUTE));
  assert.equal(await checkWorkerHeartbeat(ctx.pool, now, sink), null, 'a job scheduled for later is not due');
  await dueJob(new Date(now.getTime() - 30 * MINUTE));
  await workerSeen(new Date(now.getTime() - 5000));
  assert.equal(await checkWorkerHeartbeat(ctx.pool, now, sink), null, 'a live worker with a backlog is not an outage');
  assert.equal(sent.length, 0);
});

test('an alert that could not be sent is sent at the next check, still only once', async () => {
  const t0 = new Date(Date.now() - 30 * MINUTE);
  await dueJob(t0);
  const failing: AlertSink = { alert: async () => Promise.reject(new Error('chat is down')) };
  await assert.rejects(checkWorkerHeartbeat(ctx.pool, new Date(t0.getTime() + 3 * MINUTE), failing), /chat is down/);
  assert.equal((await checkWorkerHeartbeat(ctx.pool, new Date(t0.getTime() + 4 * MINUTE), sink))?.kind, 'workers_down');
  assert.equal(await checkWorkerHeartbeat(ctx.pool, new Date(t0.getTime() + 5 * MINUTE), sink), null);
  assert.equal(sent.length, 1);
});
