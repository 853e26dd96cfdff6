/**
 * Threads (platform reference §8) through the shared Graph container flow in graph.ts: a VIDEO
 * container from the public link (Threads has no upload endpoint), status polled until FINISHED,
 * the publishing limit checked, threads_publish, permalink. Long-lived tokens are refreshed with
 * th_refresh_token before they run out; an un-refreshed token dies after 60 days.
 */
import { z } from 'zod';
import { MESSAGES, PublishError } from '../../core/errors.ts';
import type { Credentials, PlatformAdapter, PlatformDeps, PublishInput, RefreshResult } from '../../core/platforms.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';
import { advanceContainer, graphCall, unexpected } from './graph.ts';
import type { ContainerPlatform, ContainerStatus, ContainerTuning, GraphErrorContext, GraphTarget } from './graph.ts';

const SPEC = PLATFORM_SPECS.threads;
const LABEL = SPEC.label;
const DAY_MS = 86_400_000;
/** Below this much left, a failed refresh is reported instead of riding on the current token. */
const STILL_VALID_MS = 10 * 60_000;
export const THREADS_API_VERSION = 'v1.0';

export const threadsCredentialsSchema = z.object({
  accessToken: z.string().min(1),
  /** Threads has no refresh token: the long-lived access token itself is refreshed. */
  refreshToken: z.string().optional(),
  expiresAt: z.iso.datetime({ offset: true }),
  /** Threads refuses to refresh a token younger than 24 h. */
  issuedAt: z.iso.datetime({ offset: true }).optional(),
  scope: z.string().default(''),
  /** The Threads user id. */
  /** Falls back to the account's remote id. */
  userId: z.string().min(1).optional(),
  username: z.string().optional(),
});
export type ThreadsCredentials = z.infer<typeof threadsCredentialsSchema>;

export interface ThreadsOptions extends Partial<ContainerTuning> {
  version?: string;
  /** Refresh the long-lived token when less than this many days are left (it lasts 60). */
  refreshWithinDays?: number;
}

const DEFAULTS: ContainerTuning & { version: string; refreshWithinDays: number } = {
  version: THREADS_API_VERSION,
  refreshWithinDays: 7,
  requestTimeoutMs: 30_000,
  // The docs: wait about 30 s, then poll about once a minute for at most 5 minutes.
  firstCheckSeconds: 30,
  checkSeconds: 60,
  maxProcessingSeconds: 30 * 60,
  containerMaxAgeSeconds: 23 * 3600,
  maxContainers: 3,
  defaultRetryAfterSeconds: 300,
  publishLimitRetryAfterSeconds: 3600,
  lookupSkewSeconds: 600,
};

const statusSchema = z.object({ status: z.string(), error_message: z.string().optional() });
const tokenSchema = z.object({ access_token: z.string().min(1), expires_in: z.number().positive(), token_type: z.string().optional() });

function parseCredentials(credentials: Credentials): ThreadsCredentials {
  const parsed = threadsCredentialsSchema.safeParse(credentials);
  if (!parsed.success) throw new PublishError('auth', `Stored ${LABEL} credentials are incomplete.`, { retryable: false, detail: 'stored credentials are incomplete' });
  return parsed.data;
}

function baseOf(deps: PlatformDeps): string {
  const base = deps.urls.api;
  if (!base) throw new PublishError('unknown', `${LABEL} API URL is not configured (THREADS_API_URL).`, { retryable: false, detail: 'THREADS_API_URL is not configured' });
  return base;
}

function containerFailed(reason: string | undefined): { error: PublishError; newContainer: boolean } {
  const raw = reason ?? 'UNKNOWN';
  if (raw === 'FAILED_DOWNLOADING_VIDEO') {
    return { error: new PublishError('unavailable', `${LABEL} container failed: ${raw}`, { retryable: true, detail: MESSAGES.metaFetchFailed(LABEL) }), newContainer: true };
  }
  if (raw === 'UNKNOWN') {
    return { error: new PublishError('unavailable', `${LABEL} container failed: ${raw}`, { retryable: true, detail: MESSAGES.metaContainerFailed(LABEL, 'unknown error') }), newContainer: true };
  }
  return { error: new PublishError('invalid_media', `${LABEL} container failed: ${raw}`, { retryable: false, detail: MESSAGES.metaVideoProblem(raw) }), newContainer: false };
}

export function createThreadsAdapter(overrides: ThreadsOptions = {}): PlatformAdapter {
  const options = { ...DEFAULTS, ...overrides };
  const context: GraphErrorContext = { label: LABEL, defaultRetryAfterSeconds: options.defaultRetryAfterSeconds, publishLimitRetryAfterSeconds: options.publishLimitRetryAfterSeconds };

  function platformFor(creds: ThreadsCredentials & { userId: string }): ContainerPlatform {
    return {
      spec: SPEC,
      id: 'threads',
      tuning: options,
      userId: creds.userId,
      target: (deps): GraphTarget => ({ base: baseOf(deps), version: options.version, token: creds.accessToken, timeoutMs: options.requestTimeoutMs, context }),
      createPath: `${creds.userId}/threads`,
      createParams: (input, mediaUrl) => ({ media_type: 'VIDEO', video_url: mediaUrl ?? '', ...(input.caption !== '' ? { text: input.caption } : {}) }),
      // Threads has no upload endpoint: Meta always fetches the public link.
      upload: () => null,
      statusFields: 'status,error_message',
      readStatus: (body): ContainerStatus | null => {
        const parsed = statusSchema.safeParse(body);
        return parsed.success ? { state: parsed.data.status, reason: parsed.data.error_message } : null;
      },
      publishPath: `${creds.userId}/threads_publish`,
      quotaPath: `${creds.userId}/threads_publishing_limit`,
      recentPath: `${creds.userId}/threads`,
      containerFailed,
      profileUrl: (input: PublishInput) => `https://www.threads.com/@${encodeURIComponent((creds.username ?? input.account.handle).replace(/^@/, ''))}`,
    };
  }

  function prepare(input: PublishInput): ThreadsCredentials & { userId: string } {
    const creds = parseCredentials(input.credentials);
    const granted = new Set(creds.scope.split(/[,\s]+/).filter(Boolean));
    if (granted.size > 0 && !granted.has('threads_content_publish')) {
      throw new PublishError('auth', `${LABEL} token lacks threads_content_publish`, { retryable: false, detail: MESSAGES.metaMissingPermission(LABEL) });
    }
    if (input.rendition.size > SPEC.video.maxBytes) {
      const detail = MESSAGES.videoTooBig(LABEL, input.rendition.size, SPEC.video.maxBytes);
      throw new PublishError('invalid_media', detail, { retryable: false, detail });
    }
    const userId = creds.userId ?? input.account.remoteId;
    if (!userId) throw new PublishError('auth', `Stored ${LABEL} credentials lack the user id.`, { retryable: false, detail: 'the account was linked without its user id' });
    return { ...creds, userId };
  }

  async function refresh(credentials: Credentials, deps: PlatformDeps, refreshOptions: { force: boolean }): Promise<RefreshResult | null> {
    const creds = parseCredentials(credentials);
    const now = deps.now();
    const expiresAt = Date.parse(creds.expiresAt);
    if (!refreshOptions.force && expiresAt - now >= options.refreshWithinDays * DAY_MS) return null;
    if (expiresAt <= now) throw new PublishError('auth', `${LABEL} token expired.`, { retryable: false, detail: 'the long-lived token expired; re-link the account' });
    if (!refreshOptions.force && creds.issuedAt && now - Date.parse(creds.issuedAt) < DAY_MS) return null;
    const target: GraphTarget = { base: baseOf(deps), version: '', token: creds.accessToken, timeoutMs: options.requestTimeoutMs, context };
    let body: unknown;
    try {
      body = await graphCall<unknown>(deps, target, 'GET', 'refresh_access_token', { grant_type: 'th_refresh_token' }, { safeToRepeat: true });
    } catch (error) {
      // Days ahead of expiry the current token still works: a failed renewal is tried again on
      // the next delivery rather than stopping this one.
      if (!refreshOptions.force && expiresAt !== undefined && expiresAt - now > STILL_VALID_MS) {
        deps.log.warn({ platform: SPEC.id, error: error instanceof Error ? error.message : String(error) }, 'token refresh failed; the current token is still valid');
        return null;
      }
      // A refused refresh (a revoked token, or one Meta will not renew) is never cured by
      // refreshing again: the person must re-link.
      if (error instanceof PublishError && (error.code === 'auth' || error.code === 'rejected')) throw new PublishError('auth', error.message, { retryable: false, detail: error.detail, ...(error.status !== undefined ? { status: error.status } : {}) });
      throw error;
    }
    const parsed = tokenSchema.safeParse(body);
    if (!parsed.success) throw unexpected(LABEL, 'the token refresh', false);
    const issued = deps.now();
    const nextExpiry = new Date(issued + parsed.data.expires_in * 1000);
    const next: ThreadsCredentials = { ...creds, accessToken: parsed.data.access_token, expiresAt: nextExpiry.toISOString(), issuedAt: new Date(issued).toISOString() };
    deps.log.info({ platform: SPEC.id, expiresAt: next.expiresAt }, 'threads token refreshed');
    return { credentials: next, expiresAt: nextExpiry };
  }

  const step = async (input: PublishInput, deps: PlatformDeps) => advanceContainer(platformFor(prepare(input)), input, deps);
  return {
    spec: SPEC,
    publish: step,
    // The container id is the remoteId while Threads processes; once FINISHED this publishes,
    // exactly once, as publish does.
    check: (_remoteId, input, deps) => step(input, deps),
    refresh,
    // The daily check: the cheapest read there is, the token's own user id.
    validate: async (credentials, deps) => {
      const creds = parseCredentials(credentials);
      const target: GraphTarget = { base: baseOf(deps), version: options.version, token: creds.accessToken, timeoutMs: options.requestTimeoutMs, context };
      await graphCall<unknown>(deps, target, 'GET', 'me', { fields: 'id' }, { safeToRepeat: true });
    },
  };
}

export const threads: PlatformAdapter = createThreadsAdapter();
