/**
 * The `reelay` command. Exit codes: 0 done (or scheduled), 1 a delivery failed, 2 bad input or
 * usage — with a clear message and nothing half-written.
 */
import { Command, CommanderError, Option } from 'commander';
import { loadConfig, type Config } from '../core/config.ts';
import { createContext, type Context } from '../core/context.ts';
import { ConfigError, MESSAGES, UserError } from '../core/errors.ts';
import { createLogger } from '../core/log.ts';
import { migrate } from '../core/migrate.ts';
import { isWorkspaceId } from '../core/workspaces.ts';
import { accountsLink, accountsList, accountsRemove, addBluesky } from './accounts.ts';
import { cleanupCommand } from './cleanup.ts';
import { postCommand, postsCancel, postsList, postsRetry, postsShow, type CommandIo } from './posts.ts';

// The long-running roles and the admin commands load their modules (bots, HTTP server, pg_dump
// wrappers) only when chosen: every one-shot command starts faster.
const servers = () => import('./servers.ts');

const io: CommandIo = { out: (text) => process.stdout.write(text + '\n') };

/** Runs a command that needs the database, closing everything afterwards. */
async function withContext(config: Config, defaultLevel: string, fn: (ctx: Context) => Promise<number>): Promise<number> {
  const log = createLogger({ level: config.log.level ?? defaultLevel });
  const ctx = await createContext({ config, log });
  // Ctrl-C mid-command: close the pool, the queue and (if we started it) Postgres, then leave.
  const interrupt = (signal: NodeJS.Signals) => {
    process.stderr.write(`Interrupted (${signal}); stopping cleanly.\n`);
    ctx.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    return await fn(ctx);
  } finally {
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
    await ctx.close();
  }
}

function workspaceOption(): Option {
  return new Option('--workspace <id>', 'workspace: cli, telegram:<chat_id> or discord:<guild_id>').default('cli').argParser((value: string) => {
    if (!isWorkspaceId(value)) throw new UserError(`Unknown workspace "${value}". Use cli, telegram:<chat_id> or discord:<guild_id>.`);
    return value;
  });
}

export function buildProgram(run: (code: Promise<number>) => void): Command {
  const program = new Command('reelay')
    .description('Post and schedule short videos to every platform, from chat or the command line.')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const config = () => loadConfig();

  const accounts = program.command('accounts').description('linked platform accounts');
  accounts
    .command('add')
    .description('link an account (Bluesky: handle + app password)')
    .argument('<platform>', 'bluesky')
    .requiredOption('--handle <handle>', 'the account handle, e.g. alice.bsky.social')
    .requiredOption('--app-password <password>', 'an app password (Settings > App passwords), never your main password')
    .option('--service <url>', 'PDS or entryway URL (default BLUESKY_SERVICE)')
    .addOption(workspaceOption())
    .action((platform: string, options: { handle: string; appPassword: string; service?: string; workspace: string }) => {
      if (platform !== 'bluesky') {
        throw new UserError(`Linking ${platform} from the CLI is not supported yet; only bluesky can be added here.`);
      }
      run(withContext(config(), 'warn', (ctx) => addBluesky(ctx, options, io)));
    });
  accounts
    .command('list')
    .description('list linked accounts')
    .addOption(workspaceOption())
    .option('--json', 'print JSON')
    .action((options: { workspace: string; json?: boolean }) => run(withContext(config(), 'warn', (ctx) => accountsList(ctx, options, io))));
  accounts
    .command('link')
    .description('print a one-time link (10 minutes) that links an account through the platform\'s sign-in (needs PUBLIC_BASE_URL)')
    .argument('<platform>', 'a platform with OAuth linking set up (client id and secret), or bluesky')
    .option('--via <platform>', "link through another platform's sign-in: instagram --via facebook (Facebook Login, an Instagram account connected to a Page)")
    .addOption(workspaceOption())
    .action((platform: string, options: { workspace: string; via?: string }) => run(withContext(config(), 'warn', (ctx) => accountsLink(ctx, platform, options, io))));
  accounts
    .command('remove')
    .description('unlink an account: its token is revoked where the platform offers that; its posts are kept')
    .argument('<account>', 'platform or platform:handle')
    .addOption(workspaceOption())
    .action((target: string, options: { workspace: string }) => run(withContext(config(), 'warn', (ctx) => accountsRemove(ctx, target, options, io))));

  program
    .command('post')
    .description('post a video now, or at a time with --at')
    .argument('<file>', 'the video file')
    .requiredOption('--to <targets>', 'where to post: bluesky, bluesky:handle, several comma-separated, or all')
    .option('--at <when>', 'when: an ISO time, "tomorrow 6pm", "in 2 hours" (in --tz or the workspace timezone)')
    .option('--caption <text>', 'the caption', '')
    .option('--tz <zone>', 'IANA timezone for --at, e.g. Europe/Berlin')
    .option('--wait', 'return when every delivery is done (runs a worker in-process if none is running)')
    .option('--json', 'print one JSON object')
    .addOption(workspaceOption())
    .action((file: string, options: { to: string; at?: string; caption?: string; tz?: string; wait?: boolean; json?: boolean; workspace: string }) =>
      run(withContext(config(), 'warn', (ctx) => postCommand(ctx, file, options, io))),
    );

  const posts = program.command('posts').description('inspect and manage posts');
  posts
    .command('list')
    .addOption(workspaceOption())
    .option('--json', 'print JSON')
    .action((options: { workspace: string; json?: boolean }) => run(withContext(config(), 'warn', (ctx) => postsList(ctx, options, io))));
  posts
    .command('show')
    .argument('<id>', 'post id (or a unique prefix)')
    .addOption(workspaceOption())
    .option('--json', 'print JSON')
    .action((id: string, options: { workspace: string; json?: boolean }) => run(withContext(config(), 'warn', (ctx) => postsShow(ctx, id, options, io))));
  posts
    .command('cancel')
    .argument('<id>', 'post id (or a unique prefix)')
    .addOption(workspaceOption())
    .option('--json', 'print JSON')
    .action((id: string, options: { workspace: string; json?: boolean }) => run(withContext(config(), 'warn', (ctx) => postsCancel(ctx, id, options, io))));
  posts
    .command('retry')
    .argument('<id>', 'post id (or a unique prefix)')
    .addOption(workspaceOption())
    .option('--wait', 'wait until the retried deliveries are done')
    .option('--json', 'print JSON')
    .action((id: string, options: { workspace: string; json?: boolean; wait?: boolean }) => run(withContext(config(), 'warn', (ctx) => postsRetry(ctx, id, options, io))));

  program
    .command('migrate')
    .description('apply database migrations')
    .action(() =>
      run(
        withContext(config(), 'info', async (ctx) => {
          // createContext already migrated; say so plainly.
          const pending = await migrate(ctx.databaseUrl, ctx.log);
          io.out(pending.length === 0 ? 'Database is up to date.' : `Applied: ${pending.join(', ')}`);
          return 0;
        }),
      ),
    );
  program
    .command('worker')
    .description('run a worker (transcode and publish jobs)')
    .option('--http', 'also serve /healthz and /metrics for this worker on HTTP_HOST:HTTP_PORT')
    .action((options: { http?: boolean }) => run(servers().then(({ runServers }) => runServers(config(), { worker: 'in-process', http: options.http ?? false, bots: false }))));
  program
    .command('bot')
    .description('run the chat bots and the HTTP server (health, metrics, worker alerts) without a worker')
    .action(() => run(servers().then(({ runServers }) => runServers(config(), { worker: false, http: true, bots: true }))));
  program
    .command('doctor')
    .description('check everything Reelay needs and say how to fix what is wrong (exit 1 if anything is)')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => {
      const loaded = config();
      const log = createLogger({ level: loaded.log.level ?? 'warn' });
      run(import('./doctor.ts').then(({ doctorCommand }) => doctorCommand(loaded, { log, fetch: globalThis.fetch, now: () => Date.now() }, options, io)));
    });
  program
    .command('cleanup')
    .description('delete expired media now (the hourly retention sweep)')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => run(withContext(config(), 'warn', (ctx) => cleanupCommand(ctx, options, io))));
  program
    .command('backup')
    .description('back up the whole database, videos included, to FILE (pg_dump custom format)')
    .argument('<file>', 'where to write the backup (must not exist)')
    .action((file: string) => {
      const loaded = config();
      run(import('./backup.ts').then(({ backupCommand }) => backupCommand(loaded, createLogger({ level: loaded.log.level ?? 'warn' }), file, io)));
    });
  program
    .command('restore')
    .description('replace the database with a backup made by reelay backup (stop the bot and workers first)')
    .argument('<file>', 'the backup file')
    .option('--force', 'restore even while workers are running')
    .action((file: string, options: { force?: boolean }) => {
      const loaded = config();
      run(import('./backup.ts').then(({ restoreCommand }) => restoreCommand(loaded, createLogger({ level: loaded.log.level ?? 'warn' }), file, options, io)));
    });
  program
    .command('start')
    .description('run everything from one command: migrations, HTTP server and the configured chat bots, with a worker as a child process')
    .action(() => run(servers().then(({ runServers }) => runServers(config(), { worker: 'child', http: true, bots: true }))));
  program
    .command('discord')
    .description('Discord bot setup')
    .command('register')
    .description('register the slash commands (with --guild: in that server at once; without: globally, which Discord may take up to an hour to show)')
    .option('--guild <id>', 'the server (guild) id')
    .action((options: { guild?: string }) => run(import('./discord.ts').then(({ discordRegister }) => discordRegister(config(), options, io))));
  program
    .command('keys')
    .description('secret key management')
    .command('rotate')
    .description('re-encrypt every stored secret under REELAY_SECRET_KEY (the old key goes in REELAY_SECRET_KEY_PREVIOUS first)')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => run(withContext(config(), 'warn', (ctx) => import('./keys.ts').then(({ keysRotate }) => keysRotate(ctx, options, io)))));
  program
    .command('demo')
    .description('post a generated clip to a local Bluesky PDS through the real pipeline (no accounts needed)')
    .option('--keep', 'keep the demo data dir')
    .option('--chat <chat>', 'run the chat flow against a local chat simulator and print the conversation (telegram or discord)')
    .action((options: { keep?: boolean; chat?: string }) => run(loadDemo(options.chat).then((runDemo) => runDemo(io, options))));
  return program;
}

/**
 * The demo needs the development dependencies (a local PDS from @atproto/dev-env), which a
 * production install (the Docker image: npm ci --omit=dev) does not have; loading it lazily keeps
 * every other command working there.
 */
async function loadDemo(chat: string | undefined): Promise<typeof import('./demo.ts').runDemo> {
  if (chat !== undefined && chat !== 'telegram' && chat !== 'discord') throw new UserError(MESSAGES.demoUnknownChat(chat));
  try {
    if (chat === undefined) return (await import('./demo.ts')).runDemo;
    const demos = await import('./demo-chat.ts');
    return chat === 'telegram' ? demos.runTelegramDemo : demos.runDiscordDemo;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') throw new UserError(MESSAGES.demoUnavailable());
    throw error;
  }
}

function reportError(error: unknown): number {
  if (error instanceof UserError) {
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
  if (error instanceof CommanderError) {
    return error.exitCode === 0 ? 0 : 2;
  }
  process.stderr.write(`Unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return 70;
}

export async function main(argv: string[]): Promise<number> {
  let pending: Promise<number> | undefined;
  const program = buildProgram((code) => {
    pending = code;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return pending ? await pending : 0;
  } catch (error) {
    return reportError(error);
  }
}
