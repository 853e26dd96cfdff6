/**
 * Webhook mode: the bot registers TELEGRAM_WEBHOOK_URL with its secret, the simulator POSTs updates
 * to the HTTP server's route, and replies go out as usual. A request without the secret is refused.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startHttp, type HttpServer } from '../../bot/http.ts';
import { startTelegram, type RunningTelegram } from '../../bot/telegram.ts';
import { ChatNotifier } from '../../core/chat/notifier.ts';
import { configuredOutboxes } from '../../core/chat/outboxes.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { freePort } from '../support/net.ts';
import { startTelegramSim, type TelegramSim } from '../sim/telegram.ts';

let ctx: TestContext;
let sim: TelegramSim;
let http: HttpServer;
let telegram: RunningTelegram;
let notifier: ChatNotifier;
let port: number;


before(async () => {
  sim = await startTelegramSim({ botUsername: 'reelay_bot' });
  port = await freePort();
  ctx = await testContext({
    env: { TELEGRAM_BOT_TOKEN: sim.token, TELEGRAM_API_ROOT: sim.apiRoot, TELEGRAM_WEBHOOK_URL: `http://127.0.0.1:${port}/telegram/webhook`, TELEGRAM_WEBHOOK_SECRET: 'hook-secret', HTTP_HOST: '127.0.0.1', HTTP_PORT: String(port) },
  });
  http = await startHttp(ctx);
  notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: configuredOutboxes(ctx.config) });
  telegram = await startTelegram(ctx, { notifier, http });
});

after(async () => {
  await telegram?.stop();
  await notifier?.close();
  await http?.close();
  await ctx?.dispose();
  await sim?.close();
});

test('updates arrive by webhook with the secret, and the bot answers', async () => {
  const hook = sim.requestsTo('setWebhook')[0];
  assert.ok(hook, 'the webhook was registered');
  assert.equal(hook.params.secret_token, 'hook-secret');
  assert.deepEqual(hook.params.allowed_updates, ['message', 'message_reaction', 'callback_query']);
  assert.equal(sim.requestsTo('getUpdates').length, 0, 'no long polling in webhook mode');

  const user = sim.createUser({ first_name: 'Ada' });
  const chat = sim.createPrivateChat(user, { started: true });
  const sent = sim.sendUserMessage(chat, user, { text: '/timezone' });
  const reply = await sim.waitForBotMessage(chat, (m) => m.replyTo === sent.message_id, 15_000);
  assert.match(reply.text ?? '', /Your timezone is UTC/);
  assert.ok(sim.requestsTo('webhook').length > 0, 'the update came by webhook');
});

test('a POST without the secret token is refused and changes nothing', async () => {
  const response = await fetch(`http://127.0.0.1:${port}/telegram/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ update_id: 1, message: { message_id: 1, date: 0, chat: { id: 5, type: 'private' }, from: { id: 5, is_bot: false, first_name: 'Eve' }, text: '/settings approval on' } }),
  });
  assert.equal(response.status, 401);
  const { rows } = await ctx.pool.query(`SELECT 1 FROM workspaces WHERE id = 'telegram:5'`);
  assert.equal(rows.length, 0);
});
