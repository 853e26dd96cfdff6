/**
 * The exactly-once chaos harness (issue #8): every platform simulator (and the real PDS for
 * Bluesky), each behind a fault-injecting proxy (tests/support/chaos.ts) that the upload URLs they
 * hand out and the PDS's DID documents name too, one account per platform plus an Instagram
 * account linked through Facebook Login (graph.facebook.com and rupload.facebook.com are fronts,
 * tests/support/meta-router.ts, that route to the Graph or the Facebook simulator's proxy), N posts
 * spread across them, and a worker child process (tests/support/worker-process.ts) that is
 * SIGKILLed at random crash points (REELAY_CRASH_AT=random:P:SEED) and by a random timer, then
 * restarted until every delivery is terminal. `verifyChaos` then checks each simulator's own store.
 * tests/worker/chaos.test.ts runs N = 20; a benchmark can call `runChaos` with N = 200.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHttp, type HttpServer } from '../../bot/http.ts';
import { upsertAccount } from '../../core/accounts.ts';
import { submitPost } from '../../core/intake.ts';
import { OAUTH_VARIANTS, credentialsFrom } from '../../core/oauth.ts';
import type { PlatformId } from '../../core/platforms.ts';
import { isTerminal, type DeliveryState } from '../../core/posts.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { blueskyCredentialsSchema, blueskyLogin } from '../../worker/platforms/bluesky.ts';
import { instagramCredentialsSchema } from '../../worker/platforms/instagram.ts';
import { tiktokCredentialsSchema } from '../../worker/platforms/tiktok.ts';
import { platformDeps, seededRandom } from '../../worker/publish.ts';
import { startFacebookSim, type FacebookSim } from '../sim/facebook.ts';
import { startGraphSim, type GraphSim } from '../sim/graph.ts';
import { startLinkedInSim, type LinkedInSim } from '../sim/linkedin.ts';
import { startPinterestSim, type PinterestSim } from '../sim/pinterest.ts';
import { startTikTokSim, type TikTokSim } from '../sim/tiktok.ts';
import { startXSim, type XSim } from '../sim/x.ts';
import { startYoutubeSim, type YoutubeSim } from '../sim/youtube.ts';
import { startChaosProxy, type ChaosProxy } from './chaos.ts';
import { makeClip } from './clips.ts';
import { testContext, type TestContext } from './context.ts';
import { startMetaFronts } from './meta-router.ts';
import { freePort } from './net.ts';
import { startPds, type TestPdsHandle } from './pds.ts';

const WORKER = fileURLToPath(new URL('./worker-process.ts', import.meta.url));
/** The linked accounts posts go to: one per platform, named by it, and Instagram through Facebook Login. */
export type ChaosTarget = PlatformId | 'instagram-fb';
export const CHAOS_TARGETS: readonly ChaosTarget[] = ['tiktok', 'youtube', 'x', 'instagram', 'threads', 'facebook', 'linkedin', 'pinterest', 'bluesky', 'instagram-fb'];
const META = { clientId: 'meta-app', clientSecret: 'meta-secret' };
const CLIENT = { clientId: 'reelay-client', clientSecret: 'reelay-secret' };
const LINKEDIN_VERSION = '202510';

export interface ChaosWorld {
  ctx: TestContext;
  seed: number;
  proxies: ChaosProxy[];
  /** Environment for a worker child: database, secret, every platform URL (through its proxy). */
  childEnv: Record<string, string>;
  accounts: Record<ChaosTarget, { id: string; platform: PlatformId; handle: string; remoteId: string | null }>;
  /** Remote post ids on the target's simulator for its account there. */
  remotePosts(target: ChaosTarget): Promise<string[]>;
  clip: string;
  /**
   * Arms each simulator's own token-expiry fault once (the next matching call finds its access token
   * expired): TikTok, YouTube, X, LinkedIn, Pinterest. The Graph and Facebook simulators have no
   * such switch (their tests answer a 190 error by hand), so they are left out.
   */
  expireTokens(): void;
  close(): Promise<void>;
}

const DAILY = 10_000;

export async function startChaosWorld(seed: number): Promise<ChaosWorld> {
  const [tiktok, youtube, x, graph, facebook, linkedin, pinterest, pds]: [TikTokSim, YoutubeSim, XSim, GraphSim, FacebookSim, LinkedInSim, PinterestSim, TestPdsHandle] = await Promise.all([
    // Daily caps far above the bench's 200 posts a run: meeting a cap defers a delivery by a day
    // (tested on its own in each platform's tests), which here would only stall the run.
    startTikTokSim({ processingPolls: 0 }),
    startYoutubeSim({ processingPolls: 0, insertsPerDay: DAILY, unitsPerDay: DAILY * 1600, channelUploadsPerDay: DAILY }),
    startXSim({ client: CLIENT, processing: 'none' }),
    startGraphSim({ client: META, processingPolls: 0, igPublishLimit: DAILY, threadsPublishLimit: DAILY }),
    startFacebookSim({ client: META, processingPolls: 0, reelsPerDay: DAILY }),
    startLinkedInSim({ client: CLIENT, processingReads: 0, minFileBytes: 1, dailyPostLimit: DAILY }),
    startPinterestSim({ client: CLIENT, processingPolls: 0 }),
    startPds(),
  ]);
  // Instagram Login and Threads upload nothing: Meta fetches our media link (served by Reelay, not proxied).
  const targets: Array<[ChaosTarget, string, ((method: string, path: string) => boolean)?]> = [
    ['tiktok', tiktok.url, (method, path) => method === 'PUT' && path.startsWith('/upload/')],
    ['youtube', youtube.url, (method, path) => method === 'PUT' && path.startsWith('/upload/')],
    ['x', x.url, (method, path) => method === 'POST' && path.endsWith('/append')],
    ['instagram', graph.urls.ig],
    ['threads', graph.urls.threads],
    ['facebook', facebook.url, (method, path) => method === 'POST' && path.startsWith('/video-upload/')],
    ['linkedin', linkedin.url, (method, path) => method === 'PUT' && path.startsWith('/dms-uploads/')],
    ['pinterest', pinterest.url, (method, path) => method === 'POST' && path.startsWith('/s3-upload/')],
    ['bluesky', pds.url, (method, path) => method === 'POST' && path === '/xrpc/com.atproto.repo.uploadBlob'],
    // Instagram with Facebook Login: both of its hosts' faults count under its own name.
    ['instagram-fb', graph.urls.fb],
    ['instagram-fb', graph.urls.rupload, (method, path) => method === 'POST' && path.startsWith('/ig-api-upload/')],
  ];
  const proxies = await Promise.all(targets.map(([name, target, isUpload], i) => startChaosProxy({ name, target, rate: 0, seed: seed + i + 1, hangMs: 3500, ...(isUpload ? { isUpload } : {}) })));
  const [pTikTok, pYoutube, pX, pIg, pThreads, pFacebook, pLinkedIn, pPinterest, pPds, pIgFb, pIgFbRupload] = proxies as [ChaosProxy, ChaosProxy, ChaosProxy, ChaosProxy, ChaosProxy, ChaosProxy, ChaosProxy, ChaosProxy, ChaosProxy, ChaosProxy, ChaosProxy];
  // graph.facebook.com and rupload.facebook.com serve Facebook Pages and Instagram alike: a front each routes to the right proxy.
  const meta = await startMetaFronts(graph, { instagramGraph: pIgFb.url(graph.urls.fb), instagramRupload: pIgFbRupload.url(graph.urls.rupload), facebook: pFacebook.url(facebook.url) });
  tiktok.publicUrl = pTikTok.url(tiktok.url);
  youtube.publicUrl = pYoutube.url(youtube.url);
  facebook.publicUrl = meta.rupload;
  graph.publicUrls.rupload = meta.rupload;
  linkedin.publicUrl = pLinkedIn.url(linkedin.url);
  pinterest.publicUrl = pPinterest.url(pinterest.url);
  // The adapter sends its calls to the PDS the session's DID document names, not to the login URL.
  pds.publicUrl = pPds.url(pds.url);
  const port = await freePort();
  const env: Record<string, string> = {
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    TIKTOK_API_URL: pTikTok.url(tiktok.url),
    TIKTOK_CLIENT_KEY: tiktok.options.clientKey,
    TIKTOK_CLIENT_SECRET: tiktok.options.clientSecret,
    YOUTUBE_API_URL: pYoutube.url(youtube.urls.api),
    YOUTUBE_UPLOAD_URL: pYoutube.url(youtube.urls.upload),
    GOOGLE_TOKEN_URL: pYoutube.url(youtube.urls.token),
    GOOGLE_CLIENT_ID: youtube.client.clientId,
    GOOGLE_CLIENT_SECRET: youtube.client.clientSecret,
    X_API_URL: pX.url(x.url),
    X_CLIENT_ID: CLIENT.clientId,
    X_CLIENT_SECRET: CLIENT.clientSecret,
    // Instagram Login: containers from our signed media link; Facebook Login: bytes by rupload.
    INSTAGRAM_GRAPH_URL: pIg.url(graph.urls.ig),
    THREADS_API_URL: pThreads.url(graph.urls.threads),
    THREADS_APP_ID: META.clientId,
    THREADS_APP_SECRET: META.clientSecret,
    FACEBOOK_GRAPH_URL: meta.graph,
    FACEBOOK_RUPLOAD_URL: meta.rupload,
    META_APP_ID: META.clientId,
    META_APP_SECRET: META.clientSecret,
    LINKEDIN_API_URL: pLinkedIn.url(linkedin.url),
    LINKEDIN_TOKEN_URL: pLinkedIn.url(linkedin.tokenUrl),
    LINKEDIN_VERSION,
    LINKEDIN_CLIENT_ID: CLIENT.clientId,
    LINKEDIN_CLIENT_SECRET: CLIENT.clientSecret,
    PINTEREST_API_URL: pPinterest.url(pinterest.url),
    PINTEREST_CLIENT_ID: CLIENT.clientId,
    PINTEREST_CLIENT_SECRET: CLIENT.clientSecret,
  };
  const ctx = await testContext({ env });
  // The media links Instagram and Threads fetch are served by Reelay's own HTTP server.
  const http: HttpServer = await startHttp(ctx, { host: '127.0.0.1', port, checks: [] });
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');

  const accounts = {} as ChaosWorld['accounts'];
  const link = async (platform: PlatformId, handle: string, remoteId: string | null, credentials: Record<string, unknown>, expiresAt: Date | null, target: ChaosTarget = platform) => {
    const account = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform, handle, remoteId, credentials, expiresAt });
    accounts[target] = { id: account.id, platform, handle, remoteId };
  };

  const { account: ttAccount, tokens } = tiktok.addAccount({ dailyPostCap: DAILY });
  const now = Date.now();
  await link('tiktok', ttAccount.username, ttAccount.openId, tiktokCredentialsSchema.parse({
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    expiresAt: new Date(now + tokens.expiresIn * 1000).toISOString(),
    refreshExpiresAt: new Date(now + tokens.refreshExpiresIn * 1000).toISOString(),
    scope: tokens.scope,
    openId: tokens.openId,
  }), new Date(now + tokens.expiresIn * 1000));
  const yt = youtube.addAccount();
  await link('youtube', 'chaos-channel', youtube.users.get(yt.userId)!.channelId, yt, new Date(yt.expiresAt));
  const xUser = x.addUser({ username: 'chaos_x' });
  await link('x', xUser.username, xUser.userId, { accessToken: xUser.accessToken, refreshToken: xUser.refreshToken, expiresAt: xUser.expiresAt.toISOString(), scope: xUser.scope }, xUser.expiresAt);
  for (const host of ['ig', 'threads'] as const) {
    const user = graph.addUser({ host, username: `chaos_${host}` });
    const credentials = { accessToken: user.accessToken, expiresAt: user.expiresAt.toISOString(), issuedAt: user.issuedAt.toISOString(), scope: user.scope, userId: user.userId, username: user.username };
    await link(host === 'ig' ? 'instagram' : 'threads', user.username, user.userId, host === 'ig' ? { loginType: 'instagram', ...credentials } : credentials, user.expiresAt);
  }
  const page = facebook.addPage();
  const viaFacebook = instagramViaFacebook(graph, page.pageId);
  await link('instagram', viaFacebook.handle, viaFacebook.remoteId, viaFacebook.credentials, viaFacebook.expiresAt, 'instagram-fb');
  await link('facebook', page.name, page.pageId, { userAccessToken: page.userToken, userTokenExpiresAt: page.userTokenExpiresAt.toISOString(), pageId: page.pageId, pageAccessToken: page.pageToken }, page.userTokenExpiresAt);
  const member = linkedin.addMember({ scopes: ['openid', 'profile', 'w_member_social', 'r_member_social'], refreshToken: true });
  const liCreds: Record<string, unknown> = { accessToken: member.accessToken, expiresAt: member.expiresAt.toISOString(), scope: member.scope, author: member.personUrn };
  if (member.refreshToken) liCreds.refreshToken = member.refreshToken;
  if (member.refreshTokenExpiresAt) liCreds.refreshTokenExpiresAt = member.refreshTokenExpiresAt.toISOString();
  await link('linkedin', 'Chaos Member', member.personUrn, liCreds, member.expiresAt);
  const pinner = pinterest.addUser({ username: 'chaos_pinner' });
  await link('pinterest', pinner.username, pinner.userId, { accessToken: pinner.accessToken, refreshToken: pinner.refreshToken, expiresAt: pinner.expiresAt.toISOString(), scope: pinner.scope, boardId: pinner.boardId }, pinner.expiresAt);
  const bsky = await pds.createAccount(`chaos${seed % 100000}`);
  const login = await blueskyLogin({ identifier: bsky.handle, appPassword: bsky.appPassword, service: pPds.url(pds.url) }, platformDeps(ctx, 'bluesky', ctx.log, AbortSignal.timeout(20_000)));
  if (blueskyCredentialsSchema.parse(login.credentials).session?.pdsUrl !== pds.publicUrl) {
    throw new Error(`The Bluesky session does not name the PDS's proxy (${pds.publicUrl}): its calls would not be faulted`);
  }
  await link('bluesky', login.handle, login.did, login.credentials, login.expiresAt);

  // 1080x1920 H.264/AAC, 5 s: complies with every vertical profile, so the transcode is a remux.
  const clip = makeClip(join(ctx.dir, 'chaos.mp4'), { width: 1080, height: 1920, seconds: 5, fps: 30 });

  return {
    ctx,
    seed,
    proxies,
    accounts,
    clip,
    childEnv: {
      ...env,
      DATABASE_URL: ctx.databaseUrl,
      REELAY_SECRET_KEY: readFileSync(join(ctx.dir, 'data', 'secret.key'), 'utf8').trim(),
      REELAY_DATA_DIR: join(ctx.dir, 'worker-data'),
      LOG_LEVEL: 'warn',
      // Past its attempts a delivery keeps trying a silent platform for two minutes here, not an
      // hour: the window is exercised and a run still settles inside its timeout.
      PUBLISH_RETRY_WINDOW_MINUTES: '2',
    },
    expireTokens() {
      tiktok.inject('init', { kind: 'expire_token' });
      youtube.inject('chunk', { kind: 'expireToken' });
      x.fault({ route: 'create', kind: 'expireToken' });
      linkedin.fault({ route: 'finalize', kind: 'expireToken' });
      pinterest.fault({ route: 'media', kind: 'expireToken' });
    },
    async remotePosts(target) {
      switch (target) {
        case 'tiktok':
          return tiktok.posts(ttAccount.openId).map((p) => p.publishId);
        case 'youtube':
          return youtube.videos.filter((v) => v.userId === yt.userId).map((v) => v.id);
        case 'x':
          return x.postsBy(xUser.userId).map((p) => p.id);
        case 'instagram':
        case 'instagram-fb':
        case 'threads':
          return graph.posts.filter((p) => p.userId === accounts[target].remoteId).map((p) => p.id);
        case 'facebook':
          return facebook.published().map((v) => v.id);
        case 'linkedin':
          return linkedin.posts.map((p) => p.urn);
        case 'pinterest':
          return pinterest.pins.filter((p) => p.ownerId === pinner.userId).map((p) => p.id);
        case 'bluesky':
          return (await pds.listRecords(login.did, 'app.bsky.feed.post')).map((r) => r.uri);
      }
    },
    async close() {
      await http.close().catch(() => undefined);
      await ctx.dispose();
      await Promise.all([meta.close(), ...proxies.map((p) => p.close()), tiktok.close(), youtube.close(), x.close(), graph.close(), facebook.close(), linkedin.close(), pinterest.close(), pds.close()]);
    },
  };
}

export interface ChaosOptions {
  posts: number;
  /** Per-request fault probability at every proxy. */
  faultRate: number;
  /** Probability of SIGKILL at each named crash point. */
  crashProbability: number;
  /** Worker runs that may be killed (by a crash point or the parent's timer); later runs are left alone so the run ends. */
  disruptedRuns: number;
  /** The parent SIGKILLs a disrupted worker after a random delay in this range. */
  killAfterMs: readonly [number, number];
  timeoutMs: number;
  /** Arm each simulator's token-expiry fault once at the start. */
  expireTokens?: boolean;
}

export interface ChaosReport {
  seed: number;
  runs: number;
  kills: { crashPoint: number; timer: number };
  seconds: number;
  deliveries: Array<{ id: string; platform: PlatformId; target: ChaosTarget; state: DeliveryState; remote_id: string | null; error: string | null; error_code: string | null; attempts: number; account_state: string }>;
  faults: Record<string, number>;
  /** Faults answered per proxy (by the target it fronts; `bluesky` is the PDS's; `instagram-fb` its Graph and rupload proxies'). */
  faultsAt: Record<string, number>;
  /** The requests that carried a video's bytes, per proxy that can tell them. */
  uploads: Record<string, { forwarded: number; faulted: number }>;
  log: string;
}

interface WorkerChild {
  child: ChildProcess;
  exited: Promise<NodeJS.Signals | number | null>;
  stderr(): string;
}

/** CHAOS_LOG_DIR: every worker's whole log kept there (the report keeps only a crashed worker's tail). */
const LOG_DIR = process.env.CHAOS_LOG_DIR;

function spawnWorker(world: ChaosWorld, crashAt: string, name: string): WorkerChild {
  const child = spawn(process.execPath, [WORKER], { env: { ...process.env, ...world.childEnv, REELAY_CRASH_AT: crashAt }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const file = LOG_DIR ? createWriteStream(join(LOG_DIR, `${name}.log`)) : null;
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
    file?.write(chunk);
  });
  child.once('exit', () => file?.end());
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  return { child, exited, stderr: () => stderr };
}

/**
 * Nothing more will happen without a person: terminal, or parked until the account is re-linked
 * (a lost answer from a token endpoint that rotates refresh tokens spends ours: see the report).
 */
export function settled(d: ChaosReport['deliveries'][number]): boolean {
  return isTerminal(d.state) || (d.state === 'scheduled' && d.error_code === 'auth' && d.account_state === 'needs_reauth');
}

async function listChaosDeliveries(world: ChaosWorld, postIds: string[]): Promise<ChaosReport['deliveries']> {
  const { rows } = await world.ctx.pool.query<Omit<ChaosReport['deliveries'][number], 'target'> & { account_id: string }>(
    `SELECT d.id, d.account_id, a.platform, d.state, d.remote_id, d.error, d.error_code, d.attempts, a.state AS account_state
       FROM deliveries d JOIN accounts a ON a.id = d.account_id
      WHERE d.post_id = ANY($1::uuid[]) ORDER BY d.created_at`,
    [postIds],
  );
  const targets = new Map(Object.entries(world.accounts).map(([target, account]) => [account.id, target as ChaosTarget]));
  return rows.map(({ account_id, ...d }) => ({ ...d, target: targets.get(account_id)! }));
}

/** Submits `posts` posts (two targets each, spread over all ten) and runs workers until every delivery is terminal. */
export async function runChaos(world: ChaosWorld, options: ChaosOptions, runSeed: number): Promise<ChaosReport & { postIds: string[]; expectedDeliveries: number }> {
  const started = Date.now();
  const random = seededRandom(runSeed);
  for (const proxy of world.proxies) proxy.setRate(options.faultRate);
  if (options.expireTokens) world.expireTokens();
  const before = world.proxies.map((p) => ({ ...p.counts }));
  const uploadsBefore = world.proxies.map((p) => (p.uploads ? { ...p.uploads } : null));
  const postIds: string[] = [];
  const n = CHAOS_TARGETS.length;
  for (let i = 0; i < options.posts; i++) {
    const targets = [CHAOS_TARGETS[i % n]!, CHAOS_TARGETS[(i + 4) % n]!];
    const { post } = await submitPost(world.ctx, {
      workspaceId: 'cli',
      authorId: 'cli',
      filePath: world.clip,
      caption: `chaos ${runSeed} post ${i} #reelay`,
      targets: targets.map((target) => ({ platform: world.accounts[target].platform, handle: world.accounts[target].handle })),
    });
    postIds.push(post.id);
  }
  const expectedDeliveries = options.posts * 2;
  const kills = { crashPoint: 0, timer: 0 };
  let runs = 0;
  let log = '';
  const deadline = started + options.timeoutMs;
  let deliveries = await listChaosDeliveries(world, postIds);
  while (!deliveries.every(settled)) {
    if (Date.now() > deadline) break;
    const disrupted = runs < options.disruptedRuns;
    const worker = spawnWorker(world, disrupted ? `random:${options.crashProbability}:${runSeed + runs}` : '', `worker-${runSeed}-${runs + 1}`);
    runs++;
    const [min, max] = options.killAfterMs;
    let timerFired = false;
    const timer = disrupted
      ? setTimeout(() => {
          timerFired = true;
          worker.child.kill('SIGKILL');
        }, min + random() * (max - min))
      : undefined;
    let exit: NodeJS.Signals | number | null | undefined;
    void worker.exited.then((value) => (exit = value));
    while (exit === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      deliveries = await listChaosDeliveries(world, postIds);
      if (deliveries.every(settled)) break;
    }
    clearTimeout(timer);
    if (exit === undefined) {
      worker.child.kill('SIGTERM');
      const forced = setTimeout(() => worker.child.kill('SIGKILL'), 30_000);
      exit = await worker.exited;
      clearTimeout(forced);
    } else if (exit === 'SIGKILL') {
      if (timerFired) kills.timer++;
      else kills.crashPoint++;
    } else if (exit !== 0) {
      log += `worker exited with ${String(exit)}:\n${worker.stderr()}\n`;
    }
    deliveries = await listChaosDeliveries(world, postIds);
  }
  const faults: Record<string, number> = {};
  const faultsAt: Record<string, number> = {};
  const uploads: ChaosReport['uploads'] = {};
  world.proxies.forEach((proxy, i) => {
    for (const [kind, count] of Object.entries(proxy.counts)) {
      const delta = count - (before[i]![kind as keyof typeof proxy.counts] ?? 0);
      faults[kind] = (faults[kind] ?? 0) + delta;
      if (kind !== 'forwarded') faultsAt[proxy.name] = (faultsAt[proxy.name] ?? 0) + delta;
    }
    const was = uploadsBefore[i];
    if (!proxy.uploads || !was) return;
    const seen = (uploads[proxy.name] ??= { forwarded: 0, faulted: 0 });
    seen.forwarded += proxy.uploads.forwarded - was.forwarded;
    seen.faulted += proxy.uploads.faulted - was.faulted;
  });
  return { seed: runSeed, runs, kills, seconds: (Date.now() - started) / 1000, deliveries, faults, faultsAt, uploads, log, postIds, expectedDeliveries };
}

/**
 * An Instagram account linked through Facebook Login (to `pageId`'s Page), in the shape
 * `/link instagram via facebook` stores (OAUTH_VARIANTS.instagram.facebook: the long-lived user
 * token with the granted permissions, and the identity it reads for each Page's Instagram account).
 */
function instagramViaFacebook(graph: GraphSim, pageId: string): { handle: string; remoteId: string; credentials: Record<string, unknown>; expiresAt: Date | null } {
  const signIn = OAUTH_VARIANTS.instagram!.facebook!;
  const user = graph.addUser({ host: 'fb', username: 'chaos_ig_fb', scope: signIn.scopes.join(',') });
  const now = Date.now();
  const token = { access_token: user.accessToken, token_type: 'bearer', expires_in: Math.floor((user.expiresAt.getTime() - now) / 1000), scope: user.scope };
  const identity = { handle: user.username, remoteId: user.userId, extra: { loginType: 'facebook', userId: user.userId, username: user.username, pageId, issuedAt: new Date(now).toISOString() } };
  const { credentials, expiresAt } = credentialsFrom(token, identity, now);
  if (!instagramCredentialsSchema.safeParse(credentials).success || !signIn.linkedWith?.(credentials)) throw new Error('The Facebook Login Instagram credentials are not what the adapter reads');
  return { handle: identity.handle, remoteId: identity.remoteId, credentials, expiresAt };
}
