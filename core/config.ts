/**
 * The environment, read once into one zod-validated, frozen, grouped object. This is the only
 * module that reads process.env; everything else receives a Config.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import type { OAuthClient, PlatformId } from './platforms.ts';

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const url = (fallback: string) => z.url({ protocol: /^https?$/ }).default(fallback);
const optionalUrl = optionalString.pipe(z.url({ protocol: /^https?$/ }).optional());

const base64Key = optionalString.pipe(
  z
    .string()
    .refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 bytes, base64-encoded')
    .optional(),
);

// Retired keys stay readable until `reelay keys rotate` has re-sealed everything under the current one.
const base64Keys = optionalString.pipe(
  z
    .string()
    .refine(
      (v) => v.split(',').every((k) => k.trim() !== '' && Buffer.from(k.trim(), 'base64').length === 32),
      'must be comma-separated keys, each 32 bytes, base64-encoded',
    )
    .optional(),
);

const port = z.coerce.number().int().min(0).max(65535);

/** `random:P[:SEED]`: the crash harness's random form of REELAY_CRASH_AT. */
export const CRASH_RANDOM = /^random:(0(?:\.\d+)?|1(?:\.0*)?)(?::(\d+))?$/;

/**
 * Every variable Reelay reads, with its default. `.env.example` and the README's table mirror this
 * list (a test keeps them in step).
 */
export const ENV_SCHEMA = z.object({
  DATABASE_URL: optionalString.describe('Postgres connection string. Unset: an embedded Postgres in REELAY_DATA_DIR.'),
  REELAY_DATA_DIR: z.string().default('./.reelay').describe('Where the embedded Postgres and the generated secret key live.'),
  REELAY_SECRET_KEY: base64Key.describe(
    'Base64 of 32 random bytes; encrypts account tokens (AES-256-GCM). Generated into the data dir when unset and the database is embedded.',
  ),
  REELAY_SECRET_KEY_PREVIOUS: base64Keys.describe(
    'Comma-separated retired secret keys (base64): values sealed under them stay readable until `reelay keys rotate` re-seals them under REELAY_SECRET_KEY.',
  ),
  REELAY_DEFAULT_TIMEZONE: z.string().default('UTC').describe('Timezone for new workspaces (IANA name).'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .optional()
    .describe('pino log level. Unset: info for servers (start, worker), warn for one-shot CLI commands.'),
  HTTP_HOST: z.string().default('127.0.0.1').describe('Address the HTTP server (health, OAuth callbacks, media links) binds.'),
  HTTP_PORT: port.default(8080).describe('Port of the HTTP server; 0 picks a free one.'),
  PUBLIC_BASE_URL: optionalUrl.describe('Public https URL of the HTTP server, for platforms that fetch media by link.'),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4).describe('Jobs one worker process runs at once.'),
  WORKER_STOP_GRACE_SECONDS: z.coerce.number().min(0).max(3600).default(45).describe('On SIGTERM, how long in-flight jobs may run before they are cancelled and re-queued (keep it under the orchestrator\'s kill timeout).'),
  PUBLISH_RETRY_WINDOW_MINUTES: z.coerce.number().min(0).max(24 * 60).default(60).describe('How long after its first attempt a delivery keeps retrying a platform that does not answer (timeouts, resets, 5xx), past its attempt budget.'),
  FFMPEG_PATH: z.string().default('ffmpeg').describe('ffmpeg binary.'),
  FFPROBE_PATH: z.string().default('ffprobe').describe('ffprobe binary.'),
  PG_DUMP_PATH: z.string().default('pg_dump').describe('pg_dump binary, for `reelay backup` (its major version must be at least the server\'s).'),
  PG_RESTORE_PATH: z.string().default('pg_restore').describe('pg_restore binary, for `reelay restore`.'),
  MEDIA_RETENTION_HOURS: z.coerce
    .number()
    .min(0)
    .max(24 * 366)
    .default(24)
    .describe('Hours a post\'s video and renditions are kept after its last delivery finished (published, failed, cancelled or unconfirmed).'),
  AT_RISK_HOURS: z.coerce
    .number()
    .min(0.25)
    .max(24 * 7)
    .default(2)
    .describe('A post due within this many hours whose account needs re-linking is announced once, with a Re-link button.'),
  BLUESKY_SERVICE: url('https://bsky.social').describe('Default Bluesky PDS or entryway for new accounts.'),
  TIKTOK_API_URL: url('https://open.tiktokapis.com').describe('TikTok API base URL (a simulator in tests).'),
  TIKTOK_AUTHORIZE_URL: url('https://www.tiktok.com/v2/auth/authorize/').describe('TikTok OAuth consent page.'),
  TIKTOK_CLIENT_KEY: optionalString.describe('TikTok app client key (token refresh and linking).'),
  TIKTOK_CLIENT_SECRET: optionalString.describe('TikTok app client secret.'),
  YOUTUBE_API_URL: url('https://www.googleapis.com').describe('YouTube Data API base URL.'),
  YOUTUBE_UPLOAD_URL: url('https://www.googleapis.com/upload').describe('YouTube resumable upload base URL.'),
  GOOGLE_TOKEN_URL: url('https://oauth2.googleapis.com/token').describe('Google OAuth token endpoint.'),
  GOOGLE_AUTHORIZE_URL: url('https://accounts.google.com/o/oauth2/v2/auth').describe('Google OAuth consent page.'),
  GOOGLE_REVOKE_URL: url('https://oauth2.googleapis.com/revoke').describe('Google OAuth token revocation endpoint.'),
  GOOGLE_CLIENT_ID: optionalString.describe('Google OAuth client id (YouTube).'),
  GOOGLE_CLIENT_SECRET: optionalString.describe('Google OAuth client secret.'),
  X_API_URL: url('https://api.x.com').describe('X API base URL (media upload, posts, OAuth token).'),
  X_AUTHORIZE_URL: url('https://x.com/i/oauth2/authorize').describe('X OAuth consent page.'),
  X_CLIENT_ID: optionalString.describe('X OAuth 2.0 client id.'),
  X_CLIENT_SECRET: optionalString.describe('X OAuth 2.0 client secret (confidential clients).'),
  INSTAGRAM_GRAPH_URL: url('https://graph.instagram.com').describe('Instagram Graph API base URL (Instagram Login).'),
  INSTAGRAM_AUTHORIZE_URL: url('https://www.instagram.com/oauth/authorize').describe('Instagram Login consent page.'),
  INSTAGRAM_TOKEN_URL: url('https://api.instagram.com/oauth/access_token').describe('Instagram Login code exchange (short-lived token).'),
  FACEBOOK_AUTHORIZE_URL: url('https://www.facebook.com/v23.0/dialog/oauth').describe('Facebook Login consent page.'),
  FACEBOOK_GRAPH_URL: url('https://graph.facebook.com').describe('Facebook Graph API base URL (Facebook Pages, Instagram with Facebook Login).'),
  FACEBOOK_RUPLOAD_URL: url('https://rupload.facebook.com').describe('Facebook/Instagram resumable upload host.'),
  META_APP_ID: optionalString.describe('Meta app id (Instagram, Facebook).'),
  META_APP_SECRET: optionalString.describe('Meta app secret.'),
  THREADS_API_URL: url('https://graph.threads.net').describe('Threads API base URL.'),
  THREADS_AUTHORIZE_URL: url('https://threads.net/oauth/authorize').describe('Threads consent page.'),
  THREADS_APP_ID: optionalString.describe('Threads app id.'),
  THREADS_APP_SECRET: optionalString.describe('Threads app secret.'),
  LINKEDIN_API_URL: url('https://api.linkedin.com').describe('LinkedIn API base URL (/rest and /v2).'),
  LINKEDIN_TOKEN_URL: url('https://www.linkedin.com/oauth/v2/accessToken').describe('LinkedIn OAuth token endpoint.'),
  LINKEDIN_AUTHORIZE_URL: url('https://www.linkedin.com/oauth/v2/authorization').describe('LinkedIn OAuth consent page.'),
  LINKEDIN_VERSION: z.string().regex(/^\d{6}$/).default('202510').describe('LinkedIn-Version header (YYYYMM).'),
  LINKEDIN_CLIENT_ID: optionalString.describe('LinkedIn OAuth client id.'),
  LINKEDIN_CLIENT_SECRET: optionalString.describe('LinkedIn OAuth client secret.'),
  PINTEREST_API_URL: url('https://api.pinterest.com').describe('Pinterest API base URL (/v5).'),
  PINTEREST_AUTHORIZE_URL: url('https://www.pinterest.com/oauth/').describe('Pinterest OAuth consent page.'),
  PINTEREST_CLIENT_ID: optionalString.describe('Pinterest app id.'),
  PINTEREST_CLIENT_SECRET: optionalString.describe('Pinterest app secret.'),
  TELEGRAM_BOT_TOKEN: optionalString.describe('Enables the Telegram bot.'),
  TELEGRAM_API_ROOT: url('https://api.telegram.org').describe('Telegram Bot API root; a self-hosted Bot API server lifts the 20 MB download limit.'),
  TELEGRAM_WEBHOOK_URL: optionalUrl.describe('Public https URL Telegram should push updates to (webhook mode); long polling when unset.'),
  TELEGRAM_WEBHOOK_SECRET: optionalString.describe('Secret token Telegram sends with each webhook update (X-Telegram-Bot-Api-Secret-Token).'),
  DISCORD_TOKEN: optionalString.describe('Enables the Discord bot (with DISCORD_APPLICATION_ID).'),
  DISCORD_APPLICATION_ID: optionalString.describe('Discord application id, for slash commands.'),
  DISCORD_API_ROOT: url('https://discord.com/api').describe('Discord API root (REST under /v10; the gateway URL is read from it).'),
  LINK_MAX_BYTES: z.coerce.number().int().positive().default(2 * 1024 ** 3).describe('Largest video Reelay downloads from a link pasted in chat, in bytes.'),
  REELAY_CRASH_AT: optionalString
    .refine((v) => v === undefined || !v.startsWith('random:') || CRASH_RANDOM.test(v), 'must be a crash point name or random:P[:SEED] with 0 <= P <= 1')
    .describe('Test hook: kill the process with SIGKILL at this named point, or at every named point with probability P (random:P[:SEED]). Never set in production.'),
});

export type Env = z.infer<typeof ENV_SCHEMA>;

export interface Config {
  readonly database: { readonly url: string | undefined; readonly dataDir: string };
  readonly secrets: { readonly key: Buffer | undefined; readonly previous: readonly Buffer[] };
  readonly defaults: { readonly timeZone: string };
  readonly log: { readonly level: string | undefined };
  readonly http: { readonly host: string; readonly port: number; readonly publicBaseUrl: string | undefined };
  readonly worker: { readonly concurrency: number; readonly stopGraceSeconds: number; readonly retryWindowSeconds: number };
  readonly media: { readonly ffmpegPath: string; readonly ffprobePath: string };
  readonly backup: { readonly pgDumpPath: string; readonly pgRestorePath: string };
  /** How long a finished post keeps its media, in hours. */
  readonly retention: { readonly mediaHours: number };
  /** How far ahead a post on an unhealthy account is announced (the at-risk check). */
  readonly accounts: { readonly atRiskHours: number };
  /** Per platform: base URLs (adapters never hard-code hosts) and the app's OAuth client. */
  readonly platforms: Readonly<Record<PlatformId, { readonly urls: Readonly<Record<string, string>>; readonly client: OAuthClient | null }>>;
  readonly chat: {
    readonly telegram: { readonly token: string | undefined; readonly apiRoot: string; readonly webhookUrl: string | undefined; readonly webhookSecret: string | undefined };
    readonly discord: { readonly token: string | undefined; readonly applicationId: string | undefined; readonly apiRoot: string };
    readonly linkMaxBytes: number;
  };
  readonly testing: { readonly crashAt: string | undefined };
}

function oauthClient(clientId: string | undefined, clientSecret: string | undefined): OAuthClient | null {
  return clientId !== undefined && clientSecret !== undefined ? { clientId, clientSecret } : null;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Parses an environment; every bad variable is reported at once, by name. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const parsed = ENV_SCHEMA.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`));
  }
  const e = parsed.data;
  if (!Intl.supportedValuesOf('timeZone').includes(e.REELAY_DEFAULT_TIMEZONE) && e.REELAY_DEFAULT_TIMEZONE !== 'UTC') {
    throw new ConfigError([`REELAY_DEFAULT_TIMEZONE: unknown timezone "${e.REELAY_DEFAULT_TIMEZONE}"`]);
  }
  return deepFreeze({
    database: { url: e.DATABASE_URL, dataDir: resolve(e.REELAY_DATA_DIR) },
    secrets: {
      key: e.REELAY_SECRET_KEY ? Buffer.from(e.REELAY_SECRET_KEY, 'base64') : undefined,
      previous: e.REELAY_SECRET_KEY_PREVIOUS ? e.REELAY_SECRET_KEY_PREVIOUS.split(',').map((k) => Buffer.from(k.trim(), 'base64')) : [],
    },
    defaults: { timeZone: e.REELAY_DEFAULT_TIMEZONE },
    log: { level: e.LOG_LEVEL },
    http: { host: e.HTTP_HOST, port: e.HTTP_PORT, publicBaseUrl: e.PUBLIC_BASE_URL },
    worker: { concurrency: e.WORKER_CONCURRENCY, stopGraceSeconds: e.WORKER_STOP_GRACE_SECONDS, retryWindowSeconds: e.PUBLISH_RETRY_WINDOW_MINUTES * 60 },
    media: { ffmpegPath: e.FFMPEG_PATH, ffprobePath: e.FFPROBE_PATH },
    backup: { pgDumpPath: e.PG_DUMP_PATH, pgRestorePath: e.PG_RESTORE_PATH },
    retention: { mediaHours: e.MEDIA_RETENTION_HOURS },
    accounts: { atRiskHours: e.AT_RISK_HOURS },
    platforms: {
      bluesky: { urls: { service: e.BLUESKY_SERVICE }, client: null },
      tiktok: { urls: { api: e.TIKTOK_API_URL, authorize: e.TIKTOK_AUTHORIZE_URL }, client: oauthClient(e.TIKTOK_CLIENT_KEY, e.TIKTOK_CLIENT_SECRET) },
      youtube: {
        urls: { api: e.YOUTUBE_API_URL, upload: e.YOUTUBE_UPLOAD_URL, token: e.GOOGLE_TOKEN_URL, authorize: e.GOOGLE_AUTHORIZE_URL, revoke: e.GOOGLE_REVOKE_URL },
        client: oauthClient(e.GOOGLE_CLIENT_ID, e.GOOGLE_CLIENT_SECRET),
      },
      x: { urls: { api: e.X_API_URL, authorize: e.X_AUTHORIZE_URL }, client: oauthClient(e.X_CLIENT_ID, e.X_CLIENT_SECRET ?? '') },
      instagram: {
        urls: { instagramGraph: e.INSTAGRAM_GRAPH_URL, facebookGraph: e.FACEBOOK_GRAPH_URL, rupload: e.FACEBOOK_RUPLOAD_URL, authorize: e.INSTAGRAM_AUTHORIZE_URL, token: e.INSTAGRAM_TOKEN_URL },
        client: oauthClient(e.META_APP_ID, e.META_APP_SECRET),
      },
      facebook: { urls: { graph: e.FACEBOOK_GRAPH_URL, rupload: e.FACEBOOK_RUPLOAD_URL, authorize: e.FACEBOOK_AUTHORIZE_URL }, client: oauthClient(e.META_APP_ID, e.META_APP_SECRET) },
      linkedin: {
        urls: { api: e.LINKEDIN_API_URL, token: e.LINKEDIN_TOKEN_URL, authorize: e.LINKEDIN_AUTHORIZE_URL, version: e.LINKEDIN_VERSION },
        client: oauthClient(e.LINKEDIN_CLIENT_ID, e.LINKEDIN_CLIENT_SECRET),
      },
      pinterest: { urls: { api: e.PINTEREST_API_URL, authorize: e.PINTEREST_AUTHORIZE_URL }, client: oauthClient(e.PINTEREST_CLIENT_ID, e.PINTEREST_CLIENT_SECRET) },
      threads: { urls: { api: e.THREADS_API_URL, authorize: e.THREADS_AUTHORIZE_URL }, client: oauthClient(e.THREADS_APP_ID, e.THREADS_APP_SECRET) },
    },
    chat: {
      telegram: { token: e.TELEGRAM_BOT_TOKEN, apiRoot: e.TELEGRAM_API_ROOT.replace(/\/+$/, ''), webhookUrl: e.TELEGRAM_WEBHOOK_URL, webhookSecret: e.TELEGRAM_WEBHOOK_SECRET },
      discord: { token: e.DISCORD_TOKEN, applicationId: e.DISCORD_APPLICATION_ID, apiRoot: e.DISCORD_API_ROOT.replace(/\/+$/, '') },
      linkMaxBytes: e.LINK_MAX_BYTES,
    },
    testing: { crashAt: e.REELAY_CRASH_AT },
  });
}

/**
 * Reads the process environment (and `.env` in the working directory, when present, without
 * overriding variables already set).
 */
export function loadConfig(overrides: Record<string, string | undefined> = {}): Config {
  if (existsSync('.env')) process.loadEnvFile('.env');
  return parseConfig({ ...process.env, ...overrides });
}

/** The environment to hand a child process (the crash harness, `--wait` helpers). */
export function childEnvironment(extra: Record<string, string | undefined>): Record<string, string | undefined> {
  return { ...process.env, ...extra };
}
