/**
 * Runs the bad-input corpus (cases.ts) through the surface each case names: intake in-process,
 * the `reelay` CLI, the Telegram bot (Bot API simulator, no worker: nothing is published) and the
 * HTTP server. A refusal must be exactly its MESSAGES text and leave posts, deliveries, media and
 * large objects as they were; an odd-but-valid video must come out of the real transcode step as
 * h264/yuv420p with even sides, a constant frame rate and no rotation left to apply.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startHttp, type HttpServer } from '../../bot/http.ts';
import { startTelegram, type RunningTelegram } from '../../bot/telegram.ts';
import { upsertAccount } from '../../core/accounts.ts';
import { ChatNotifier } from '../../core/chat/notifier.ts';
import { configuredOutboxes } from '../../core/chat/outboxes.ts';
import { MESSAGES, UserError } from '../../core/errors.ts';
import { submitPost } from '../../core/intake.ts';
import { exportToFile, getRendition } from '../../core/media.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';
import { parseTargets } from '../../core/targets.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { silentNotifier } from '../../worker/notify.ts';
import { handleTranscode } from '../../worker/transcode.ts';
import { runReelay } from '../support/cli.ts';
import { testContext, type TestContext } from '../support/context.ts';
import { startTelegramSim, type SimChat, type SimMessage, type SimUser, type TelegramSim } from '../sim/telegram.ts';
import { CASES, CHAT_WORKSPACE_LINKED, FIVE_GB, INTAKE_LINKED, LINK_MAX_BYTES, MEDIA, type CorpusCase, type MediaName, type RenditionExpectation } from './cases.ts';

let dir: string;
let ctx: TestContext;
let sim: TelegramSim;
let telegram: RunningTelegram;
let notifier: ChatNotifier;
let http: HttpServer;
let links: Server;
let linkBase: string;
let admin: SimUser;
let member: SimUser;
let group: SimChat;
/** Bytes each link-server path wrote, to show a refused download stopped early. */
const served = new Map<string, number>();

const mediaPath = (name: MediaName) => join(dir, MEDIA[name].file);
const text = (m: SimMessage) => m.text ?? m.caption ?? '';
const chatWorkspace = () => `telegram:${group.id}`;

async function counts(): Promise<Record<string, number>> {
  const { rows } = await ctx.pool.query<Record<string, number>>(
    `SELECT (SELECT count(*)::int FROM posts) AS posts, (SELECT count(*)::int FROM deliveries) AS deliveries,
            (SELECT count(*)::int FROM media) AS media, (SELECT count(*)::int FROM renditions) AS renditions,
            (SELECT count(*)::int FROM pg_largeobject_metadata) AS objects, (SELECT count(*)::int FROM accounts) AS accounts`,
  );
  return rows[0]!;
}

function expected(c: CorpusCase, workspace: string): string {
  assert.ok('refused' in c.expect);
  const refused = c.expect.refused;
  return typeof refused === 'function' ? refused({ now: new Date(ctx.now()), workspace }) : refused;
}

/** Streams zeros until the client goes away; `declared` sends a Content-Length of 5 GB first. */
function streamZeros(path: string, response: ServerResponse, declared: boolean): void {
  response.writeHead(200, { 'content-type': 'video/mp4', ...(declared ? { 'content-length': String(FIVE_GB) } : {}) });
  const chunk = Buffer.alloc(256 * 1024);
  let sent = 0;
  const pump = () => {
    while (!response.destroyed && sent < FIVE_GB) {
      sent += chunk.length;
      served.set(path, sent);
      if (!response.write(chunk)) return void response.once('drain', pump);
    }
    if (!response.destroyed) response.end();
  };
  response.on('close', () => served.set(path, sent));
  pump();
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reelay-corpus-'));
  const made = Promise.all(Object.keys(MEDIA).map((name) => MEDIA[name as MediaName].make(mediaPath(name as MediaName))));
  links = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    if (path === '/redirect.mp4') response.writeHead(302, { location: `http://127.0.0.1:${(links.address() as AddressInfo).port}/inside.mp4` }).end();
    else if (path === '/huge.mp4') streamZeros(path, response, true);
    else if (path === '/endless.mp4') streamZeros(path, response, false);
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => links.listen(0, '127.0.0.1', resolve));
  linkBase = `http://localhost:${(links.address() as AddressInfo).port}`;

  sim = await startTelegramSim({ botUsername: 'reelay_bot' });
  ctx = await testContext({
    env: { TELEGRAM_BOT_TOKEN: sim.token, TELEGRAM_API_ROOT: sim.apiRoot, PUBLIC_BASE_URL: 'https://reelay.example', LINK_MAX_BYTES: String(LINK_MAX_BYTES), HTTP_HOST: '127.0.0.1', HTTP_PORT: '0' },
  });
  admin = sim.createUser({ first_name: 'Ada', username: 'ada' });
  member = sim.createUser({ first_name: 'Max', username: 'max' });
  group = sim.createGroup({ title: 'Corpus', type: 'supergroup', creator: admin, members: [member], bot: 'administrator' });
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
  await ensureWorkspace(ctx.pool, chatWorkspace(), 'UTC');
  // Accounts are rows only: nothing here ever publishes (no worker runs).
  for (const platform of INTAKE_LINKED) await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform, handle: `${platform}.corpus`, remoteId: null, credentials: {}, expiresAt: null });
  for (const platform of CHAT_WORKSPACE_LINKED) await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: chatWorkspace(), platform, handle: `${platform}.chat`, remoteId: null, credentials: {}, expiresAt: null });

  notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: configuredOutboxes(ctx.config) });
  telegram = await startTelegram(ctx, { notifier, linkHosts: ['localhost'] });
  http = await startHttp(ctx);
  await made;
});

after(async () => {
  if (process.env.REELAY_TEST_TRANSCRIPT && group) console.log(sim.transcript(group).join('\n'));
  await telegram?.stop();
  await notifier?.close();
  await http?.close();
  await ctx?.dispose();
  await sim?.close();
  links?.closeAllConnections();
  links?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the corpus has at least 40 cases with unique ids, and every surface', () => {
  assert.ok(CASES.length >= 40, `${CASES.length} cases`);
  assert.equal(new Set(CASES.map((c) => c.id)).size, CASES.length);
  assert.deepEqual(new Set(CASES.map((c) => c.surface)), new Set(['intake', 'cli', 'chat', 'http']));
});

// ---------------------------------------------------------------------------------------------
// Intake (in-process, as the CLI and the chats call it)

/** The request as `reelay post` makes it; returns the refusal's text or the post. */
async function intake(c: CorpusCase): Promise<{ refusal: string } | { postId: string }> {
  const targets = parseTargets(c.to ?? 'bluesky');
  if (!targets.ok) return { refusal: targets.message };
  try {
    const { post } = await submitPost(ctx, {
      workspaceId: 'cli',
      authorId: 'corpus',
      filePath: mediaPath(c.media ?? 'good'),
      caption: c.caption ?? `corpus ${c.id}`,
      targets: targets.targets,
      allTargets: targets.all,
      ...(c.when !== undefined ? { when: c.when } : {}),
      ...(c.timeZone !== undefined ? { timeZone: c.timeZone } : {}),
    });
    return { postId: post.id };
  } catch (error) {
    if (error instanceof UserError) return { refusal: error.message };
    throw error;
  }
}

interface Probed {
  streams: Array<{ codec_type: string; codec_name: string; pix_fmt?: string; width?: number; height?: number; r_frame_rate?: string; avg_frame_rate?: string; tags?: Record<string, string>; side_data_list?: Array<{ rotation?: number }> }>;
}

function rate(text: string | undefined): number {
  const [n = 0, d = 1] = (text ?? '0/1').split('/').map(Number);
  return d === 0 ? 0 : n / d;
}

async function checkRendition(c: CorpusCase, postId: string, want: RenditionExpectation): Promise<void> {
  const { rows } = await ctx.pool.query<{ rendition_id: string | null; state: string }>('SELECT rendition_id, state FROM deliveries WHERE post_id = $1 AND platform = $2', [postId, want.platform]);
  assert.equal(rows.length, 1, `${c.id}: one ${want.platform} delivery`);
  assert.equal(rows[0]!.state, 'scheduled', `${c.id}: the ${want.platform} delivery is still going out`);
  const rendition = await getRendition(ctx.pool, rows[0]!.rendition_id!);
  assert.ok(rendition, `${c.id}: a ${want.platform} rendition`);
  const file = join(dir, `${c.id}-${want.platform}-out.mp4`);
  await exportToFile(ctx.pool, rendition, file);
  const probe = spawnSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', file], { encoding: 'utf8' });
  assert.equal(probe.status, 0, probe.stderr);
  const { streams } = JSON.parse(probe.stdout) as Probed;
  const video = streams.find((s) => s.codec_type === 'video')!;
  const profile = PLATFORM_SPECS[want.platform].video;
  const where = `${c.id} -> ${want.platform}: ${JSON.stringify(video)}`;
  assert.equal(video.codec_name, 'h264', where);
  assert.equal(video.pix_fmt, 'yuv420p', where);
  assert.ok(video.width! % 2 === 0 && video.height! % 2 === 0, `even sides: ${where}`);
  assert.ok(video.width! <= profile.width && video.height! <= profile.height, `inside ${profile.width}x${profile.height}: ${where}`);
  assert.ok(video.width! >= 32 && video.height! >= 32, where);
  assert.ok(Math.abs(rate(video.r_frame_rate) - rate(video.avg_frame_rate)) / rate(video.r_frame_rate) < 0.02, `constant frame rate: ${where}`);
  assert.ok(rate(video.avg_frame_rate) <= profile.maxFps + 0.01, where);
  assert.ok(!video.tags?.rotate && !(video.side_data_list ?? []).some((d) => d.rotation), `no rotation left: ${where}`);
  if (want.portrait) assert.ok(video.height! > video.width!, `upright: ${where}`);
  const audio = streams.filter((s) => s.codec_type === 'audio');
  assert.deepEqual(audio.map((s) => s.codec_name), want.audio ? ['aac'] : [], where);
}

for (const c of CASES.filter((k) => k.surface === 'intake')) {
  test(`intake: ${c.id}`, async () => {
    const before = await counts();
    const outcome = await intake(c);
    if ('refused' in c.expect) {
      assert.ok('refusal' in outcome, `${c.id} was accepted`);
      assert.equal(outcome.refusal, expected(c, 'cli'));
      assert.deepEqual(await counts(), before, `${c.id}: nothing half-written`);
      return;
    }
    assert.ok('postId' in outcome, `${c.id} was refused: ${'refusal' in outcome ? outcome.refusal : ''}`);
    const { rows } = await ctx.pool.query<{ caption: string; platform: string }>('SELECT p.caption, d.platform FROM posts p JOIN deliveries d ON d.post_id = p.id WHERE p.id = $1 ORDER BY d.platform', [outcome.postId]);
    assert.equal(rows[0]!.caption, c.caption ?? `corpus ${c.id}`, 'the caption is stored byte for byte');
    if ('accepted' in c.expect) {
      assert.deepEqual(rows.map((r) => r.platform), [...c.expect.accepted].sort(), 'one delivery per platform, duplicates merged');
      return;
    }
    assert.ok('renditions' in c.expect);
    await handleTranscode(ctx, silentNotifier, outcome.postId, AbortSignal.timeout(120_000));
    const { rows: post } = await ctx.pool.query<{ media_state: string; media_error: string | null }>('SELECT media_state, media_error FROM posts WHERE id = $1', [outcome.postId]);
    assert.equal(post[0]!.media_state, 'ready', `${c.id}: ${post[0]!.media_error}`);
    for (const want of c.expect.renditions) await checkRendition(c, outcome.postId, want);
  });
}

// ---------------------------------------------------------------------------------------------
// The CLI: the same refusals as a person at a terminal sees them

const reelay = (args: string[]) => runReelay(ctx, args);

for (const c of CASES.filter((k) => k.surface === 'cli')) {
  test(`cli: ${c.id}`, async () => {
    const before = await counts();
    const run = await reelay(['post', mediaPath(c.media ?? 'good'), '--to', c.to ?? 'bluesky', ...(c.when ? ['--at', c.when] : [])]);
    assert.equal(run.code, 2, run.stderr);
    assert.ok(run.stderr.split('\n').includes(expected(c, 'cli')), `expected the line "${expected(c, 'cli')}" in:\n${run.stderr}`);
    assert.ok(!run.stderr.includes('    at '), 'no stack trace');
    assert.deepEqual(await counts(), before, `${c.id}: nothing half-written`);
  });
}

// ---------------------------------------------------------------------------------------------
// Telegram: the reply in the chat, sent as plain text

/** Every message the bot sent or edited carried no parse_mode or entities: markup stays text. */
function assertNoMarkupRendering(): void {
  for (const method of ['sendMessage', 'editMessageText', 'sendPhoto', 'editMessageCaption']) {
    for (const request of sim.requestsTo(method)) {
      assert.equal(request.params.parse_mode, undefined, `${method} sent parse_mode ${String(request.params.parse_mode)}`);
      assert.equal(request.params.entities ?? request.params.caption_entities, undefined, `${method} sent entities`);
    }
  }
}

function sendChat(c: CorpusCase, from: SimUser): { message_id: number } {
  const chat = c.chat!;
  const body = chat.text.replace(/\{link:([a-z]+)\}/g, (_, name: string) => `${linkBase}/${name}.mp4`);
  const attach = chat.attach;
  if (!attach) return sim.sendUserMessage(group, from, { text: body });
  const file = { source: readFileSync(mediaPath(attach.media)), name: attach.name ?? MEDIA[attach.media].file, mime: attach.as === 'photo' ? 'image/jpeg' : attach.media === 'audioOnly' && attach.as === 'document' ? 'audio/mp4' : 'video/mp4' };
  if (attach.as === 'photo') return sim.sendUserMessage(group, from, { photo: file, caption: body });
  if (attach.as === 'document') return sim.sendUserMessage(group, from, { document: file, caption: body });
  return sim.sendUserMessage(group, from, { video: file, caption: body });
}

/** The bot's answer to `sent` (a reply, or the status message edited) once it reads `want`. */
async function answer(sent: { message_id: number }, want: string): Promise<SimMessage> {
  try {
    return await sim.waitForBotMessage(group, (m) => m.replyTo === sent.message_id && text(m) === want, 30_000);
  } catch {
    const said = sim.botMessages(group).filter((m) => m.replyTo === sent.message_id).map(text);
    assert.fail(`expected the reply\n  ${want}\nbut the bot said:\n  ${said.join('\n  ') || '(nothing)'}`);
  }
}

let approvalOn = false;
async function approvalCase(c: CorpusCase): Promise<void> {
  if (!approvalOn) {
    const on = sim.sendUserMessage(group, admin, { text: '/settings approval on' });
    await sim.waitForBotMessage(group, (m) => m.replyTo === on.message_id && /Approval: on/.test(text(m)), 15_000);
    approvalOn = true;
  }
  const caption = c.chat!.text.split('\n').slice(1).join('\n');
  sendChat(c, member);
  const preview = await sim.waitForBotMessage(group, (m) => m.media?.kind === 'photo' && text(m).includes(caption), 30_000);
  // The caption reaches the chat exactly as written: no tag, asterisk or link was interpreted.
  assert.ok(text(preview).includes(caption), text(preview));
  assertNoMarkupRendering();
  const states = async () => (await ctx.pool.query<{ state: string }>(`SELECT d.state FROM deliveries d JOIN posts p ON p.id = d.post_id WHERE p.caption = $1 AND p.workspace_id = $2`, [caption, chatWorkspace()])).rows.map((r) => r.state);
  assert.deepEqual(await states(), ['awaiting_approval']);
  const botMessages = sim.botMessages(group).length;

  if (c.chat!.approval === 'reaction') {
    sim.react(group, member, preview.messageId, ['👍']);
    // Handled once the bot has fetched it and had a moment to act on it.
    for (const deadline = Date.now() + 10_000; sim.pendingUpdates().length > 0 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 100));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await telegram.service.idle();
    assert.equal(sim.botMessages(group).length, botMessages, 'a stray reaction gets no reply in the group');
  } else {
    const buttons = (preview.replyMarkup?.inline_keyboard ?? []) as Array<Array<{ text: string; callback_data: string }>>;
    const approve = buttons.flat().find((b) => b.text === 'Approve');
    assert.ok(approve, 'the preview has an Approve button');
    const queryId = sim.pressButton(group, member, preview.messageId, approve.callback_data);
    await sim.waitFor(() => sim.callbackAnswers.get(queryId), 10_000);
    assert.equal(sim.callbackAnswers.get(queryId)!.text, expected(c, chatWorkspace()));
  }
  assert.deepEqual(await states(), ['awaiting_approval'], 'a non-approver decides nothing');
}

for (const c of CASES.filter((k) => k.surface === 'chat')) {
  test(`chat: ${c.id}`, async (t) => {
    if (c.chat!.approval) return approvalCase(c);
    const before = await counts();
    const sent = sendChat(c, member);
    const want = expected(c, chatWorkspace());
    const reply = await answer(sent, want);
    await telegram.service.idle();
    assert.deepEqual(await counts(), before, `${c.id}: nothing half-written`);
    // Stored as sent: had Telegram parsed HTML or Markdown, the tags and asterisks would be gone.
    assert.equal(text(reply), want);
    assertNoMarkupRendering();
    if (c.id.startsWith('link-5gb')) {
      const path = c.id === 'link-5gb-declared' ? '/huge.mp4' : '/endless.mp4';
      const bytes = served.get(path) ?? 0;
      t.diagnostic(`${path}: ${bytes} bytes served of ${FIVE_GB}`);
      // The declared size is refused before the body; the undeclared one stops at the cap.
      assert.ok(bytes < LINK_MAX_BYTES * 8, `${path}: the server wrote ${bytes} bytes before the client left`);
      if (c.id === 'link-5gb-undeclared') assert.ok(bytes >= LINK_MAX_BYTES, `${path}: read up to the cap (${bytes})`);
    }
  });
}

test('chat: after the whole corpus the bot still answers, and never sent markup', async () => {
  const sent = sim.sendUserMessage(group, member, { text: '/help' });
  await answer(sent, MESSAGES.chatHelp('telegram'));
  assertNoMarkupRendering();
});

// ---------------------------------------------------------------------------------------------
// HTTP: the OAuth callback with a state Reelay never issued

function unescapeHtml(html: string): string {
  return html.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!);
}

for (const c of CASES.filter((k) => k.surface === 'http')) {
  test(`http: ${c.id}`, async () => {
    const before = await counts();
    const response = await fetch(`${http.url}${c.http}`, { redirect: 'manual' });
    const body = await response.text();
    assert.equal(response.status, 400, body);
    const shown = /<p>([\s\S]*?)<\/p>/.exec(body)?.[1];
    assert.equal(unescapeHtml(shown ?? ''), expected(c, 'cli'));
    assert.ok(!/<script|<img/i.test(body), 'nothing from the query is echoed as markup');
    assert.deepEqual(await counts(), before, `${c.id}: nothing half-written`);
  });
}
