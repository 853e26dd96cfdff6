/**
 * `reelay demo`: the whole pipeline with nothing configured. A throwaway data dir holds an
 * embedded Postgres, a local Bluesky PDS stands in for bsky.social, ffmpeg makes a vertical clip,
 * and the post goes queue -> transcode -> publish like any other.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../core/config.ts';
import { createContext, type Context } from '../core/context.ts';
import { createLogger } from '../core/log.ts';
import { startPds, type PdsAccount, type TestPdsHandle } from '../tests/support/pds.ts';
import { addBluesky } from './accounts.ts';
import { postJson } from './output.ts';
import { postCommand, type CommandIo } from './posts.ts';

/** A 6-second 1080x1920 test pattern with a tone: H.264 but 4:4:4 and 25 fps, so it gets encoded. */
export async function makeSampleClip(path: string, ffmpegPath = 'ffmpeg'): Promise<void> {
  const args = [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=1080x1920:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=48000',
    '-t', '6', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv444p', '-c:a', 'aac', '-shortest', path,
  ];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(ffmpegPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg could not make the sample clip: ${stderr}`))));
  });
}

export interface DemoEnvironment {
  ctx: Context;
  pds: TestPdsHandle;
  dir: string;
  account: PdsAccount;
  /** Prints a line with the time since the demo started. */
  step(text: string): void;
}

/**
 * Everything a demo needs, torn down afterwards whatever happens: a throwaway data dir with an
 * embedded Postgres, a local PDS with one account, and the config the demo was given extras for.
 */
export async function withDemoEnvironment(io: CommandIo, options: { keep?: boolean; env?: Record<string, string> }, body: (env: DemoEnvironment) => Promise<number>): Promise<number> {
  const started = Date.now();
  const step = (text: string) => io.out(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${text}`);
  const dir = await mkdtemp(join(tmpdir(), 'reelay-demo-'));
  // The embedded Postgres runs as the postgres user when we are root: it must traverse this dir.
  await chmod(dir, 0o755);
  const config = loadConfig({ REELAY_DATA_DIR: join(dir, 'data'), DATABASE_URL: '', REELAY_SECRET_KEY: '', ...options.env });
  const log = createLogger({ level: config.log.level ?? 'warn' });
  let pds: TestPdsHandle | undefined;
  let ctx: Context | undefined;
  try {
    step('Starting an embedded Postgres and a local Bluesky PDS ...');
    // Both start at once; if either fails, the other must still be stopped or the process hangs.
    const [database, server] = await Promise.allSettled([createContext({ config, log }), startPds({ tmpDir: join(dir, 'pds') })]);
    if (database.status === 'fulfilled') ctx = database.value;
    if (server.status === 'fulfilled') pds = server.value;
    if (database.status === 'rejected') throw database.reason;
    if (server.status === 'rejected') throw server.reason;
    if (!ctx || !pds) throw new Error('unreachable');
    const account = await pds.createAccount('alice.test');
    step(`PDS at ${pds.url}; account @${account.handle} with an app password.`);
    return await body({ ctx, pds, dir, account, step });
  } finally {
    await ctx?.close();
    await pds?.close();
    if (!options.keep) await rm(dir, { recursive: true, force: true });
  }
}

export async function runDemo(io: CommandIo, options: { keep?: boolean } = {}): Promise<number> {
  return withDemoEnvironment(io, options, async ({ ctx, pds, dir, account, step }) => {
    await addBluesky(ctx, { handle: account.handle, appPassword: account.appPassword, service: pds.url, workspace: 'cli' }, { out: (t) => step(t) });

    const clip = join(dir, 'sample.mp4');
    await makeSampleClip(clip, ctx.config.media.ffmpegPath);
    step('Generated a 6 s vertical clip (1080x1920, needs converting to H.264 yuv420p).');

    let json = '';
    const code = await postCommand(
      ctx,
      clip,
      { to: 'bluesky', caption: 'Hello from Reelay 👋 #reelay https://github.com', wait: true, json: true, workspace: 'cli' },
      { out: (t) => (json = t) },
    );
    const result = JSON.parse(json) as ReturnType<typeof postJson>;
    const delivery = result.deliveries[0];
    if (code !== 0 || !delivery || delivery.state !== 'published') {
      io.out(`The demo post did not publish: ${delivery?.error ?? 'unknown reason'}`);
      return 1;
    }
    step('Published through queue -> transcode -> publish.');
    io.out('');
    io.out(`  Post URL: ${delivery.url}`);
    io.out(`  AT-URI:   ${delivery.remoteId}`);
    io.out('');
    io.out('Nothing left this machine: the post lives on the local PDS, which stops now.');
    return 0;
  });
}
