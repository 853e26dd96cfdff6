/**
 * Instagram Reels (platform reference §2) through the shared Graph container flow in graph.ts:
 * a REELS container from the public link, status_code polled until FINISHED, the publishing limit
 * checked, media_publish, permalink. Both login variants live here: Instagram Login on
 * graph.instagram.com and Facebook Login on graph.facebook.com, chosen by `loginType`.
 *
 * How the bytes reach Instagram depends on the login. Facebook Login uses the resumable upload
 * (`upload_type=resumable`, then the bytes POSTed to the rupload host with `offset`/`file_size`),
 * so it needs no public link and an interrupted upload resumes at the session's offset. Instagram
 * Login uses the public link (`video_url`): Meta documents rupload "only for apps that have
 * implemented Facebook Login for Business" (reference §2); `ruploadLogins` can add it once confirmed.
 */
import { z } from 'zod';
import { MESSAGES, PublishError } from '../../core/errors.ts';
import type { Credentials, PlatformAdapter, PlatformDeps, PublishInput, RefreshResult } from '../../core/platforms.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';
import { advanceContainer, graphCall, mapGraphError, RETRY_WITH_NEW_CONTAINER, unexpected } from './graph.ts';
import type { ContainerPlatform, ContainerStatus, ContainerTuning, GraphErrorContext, GraphTarget, ResumableUpload } from './graph.ts';

const SPEC = PLATFORM_SPECS.instagram;
const LABEL = SPEC.label;
const DAY_MS = 86_400_000;
/** Below this much left, a failed refresh is reported instead of riding on the current token. */
const STILL_VALID_MS = 10 * 60_000;
export const INSTAGRAM_GRAPH_VERSION = 'v23.0';

export const instagramCredentialsSchema = z.object({
  /** Which login linked the account: decides the host and the refresh grant. */
  loginType: z.enum(['instagram', 'facebook']),
  accessToken: z.string().min(1),
  /** Meta has no refresh token: the long-lived access token itself is refreshed or exchanged. */
  refreshToken: z.string().optional(),
  /** When the long-lived token expires; absent for a token that does not (Facebook Login, page-linked). */
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  /** When the current token was issued: Instagram refuses to refresh a token younger than 24 h. */
  issuedAt: z.iso.datetime({ offset: true }).optional(),
  scope: z.string().default(''),
  /** The Instagram professional account id (ig_user_id / instagram_business_account). */
  /** Falls back to the account's remote id. */
  userId: z.string().min(1).optional(),
  username: z.string().optional(),
  /** Facebook Login: the Page the Instagram account is linked to, for the record. */
  pageId: z.string().optional(),
  /** Reels also appear in the profile grid unless this is false. */
  shareToFeed: z.boolean().optional(),
});
export type InstagramCredentials = z.infer<typeof instagramCredentialsSchema>;

export type InstagramLogin = InstagramCredentials['loginType'];

export interface InstagramOptions extends Partial<ContainerTuning> {
  version?: string;
  /** The logins whose containers get their bytes by resumable upload instead of the public link. */
  ruploadLogins?: readonly InstagramLogin[];
  /**
   * Bytes per rupload POST. Memory grows with it (200 MB in a 64 MB-heap child, simulator in the
   * same process: RSS +25 MiB at 1 MiB, +32-40 at 2, +42-52 at 4, +72-76 at 32), since fetch
   * reads a chunk ahead of the socket; each POST costs a round trip and a checkpoint write.
   */
  uploadChunkBytes?: number;
  /** Refresh a long-lived token when less than this many days are left (it lasts 60). */
  refreshWithinDays?: number;
}

const DEFAULTS: ContainerTuning & { version: string; refreshWithinDays: number; ruploadLogins: readonly InstagramLogin[]; uploadChunkBytes: number } = {
  version: INSTAGRAM_GRAPH_VERSION,
  ruploadLogins: ['facebook'],
  uploadChunkBytes: 2 * 1024 * 1024,
  refreshWithinDays: 7,
  requestTimeoutMs: 30_000,
  // Clients poll every 5-20 s; Meta's guidance (for Threads) is about once a minute.
  firstCheckSeconds: 15,
  checkSeconds: 20,
  maxProcessingSeconds: 30 * 60,
  containerMaxAgeSeconds: 23 * 3600,
  maxContainers: 3,
  defaultRetryAfterSeconds: 300,
  publishLimitRetryAfterSeconds: 3600,
  lookupSkewSeconds: 600,
};

const REQUIRED_SCOPES = { instagram: ['instagram_business_content_publish'], facebook: ['instagram_content_publish'] } as const;

const statusSchema = z.object({ status_code: z.string(), status: z.string().optional() });
const tokenSchema = z.object({ access_token: z.string().min(1), expires_in: z.number().positive().optional(), token_type: z.string().optional() });

function parseCredentials(credentials: Credentials): InstagramCredentials {
  const parsed = instagramCredentialsSchema.safeParse(credentials);
  if (!parsed.success) throw new PublishError('auth', `Stored ${LABEL} credentials are incomplete.`, { retryable: false, detail: 'stored credentials are incomplete' });
  return parsed.data;
}

function baseOf(deps: PlatformDeps, creds: InstagramCredentials): string {
  const base = creds.loginType === 'instagram' ? deps.urls.instagramGraph : deps.urls.facebookGraph;
  if (!base) throw new PublishError('unknown', `${LABEL} Graph URL for ${creds.loginType} login is not configured.`, { retryable: false, detail: 'the Graph API URL is not configured' });
  return base;
}

/** The number in the `status` text ("Error: ... 2207026"), if any. */
function subcodeIn(text: string | undefined): number | undefined {
  const match = text?.match(/\b(2207\d{3})\b/);
  return match ? Number(match[1]) : undefined;
}

/** True when an account with this login publishes without a public link to the video. */
export function instagramUploadsBytes(loginType: InstagramLogin, ruploadLogins: readonly InstagramLogin[] = DEFAULTS.ruploadLogins): boolean {
  return ruploadLogins.includes(loginType);
}

export function createInstagramAdapter(overrides: InstagramOptions = {}): PlatformAdapter {
  const options = { ...DEFAULTS, ...overrides };
  const chunkBytes = Math.floor(options.uploadChunkBytes);
  if (!(chunkBytes >= 1)) throw new RangeError('Instagram upload chunks must be at least 1 byte');
  const context: GraphErrorContext = { label: LABEL, defaultRetryAfterSeconds: options.defaultRetryAfterSeconds, publishLimitRetryAfterSeconds: options.publishLimitRetryAfterSeconds };

  function containerFailed(reason: string | undefined): { error: PublishError; newContainer: boolean } {
    const subcode = subcodeIn(reason);
    const raw = reason ?? 'no reason given';
    if (subcode !== undefined && RETRY_WITH_NEW_CONTAINER.has(subcode)) {
      const detail = subcode === 2207052 || subcode === 2207003 ? MESSAGES.metaFetchFailed(LABEL) : MESSAGES.metaContainerFailed(LABEL, raw);
      return { error: new PublishError('unavailable', `${LABEL} container failed: ${raw}`, { retryable: true, detail }), newContainer: true };
    }
    if (subcode !== undefined) {
      const mapped = mapGraphError(400, { error: { message: raw, code: 100, error_subcode: subcode } }, new Headers(), Date.now(), context);
      if (mapped.code === 'invalid_media' || mapped.code === 'rejected') return { error: mapped, newContainer: false };
    }
    return { error: new PublishError('invalid_media', `${LABEL} container failed: ${raw}`, { retryable: false, detail: MESSAGES.metaContainerFailed(LABEL, raw) }), newContainer: false };
  }

  function platformFor(creds: InstagramCredentials & { userId: string }): ContainerPlatform {
    return {
      spec: SPEC,
      id: 'instagram',
      tuning: options,
      userId: creds.userId,
      target: (deps): GraphTarget => ({ base: baseOf(deps, creds), version: options.version, token: creds.accessToken, timeoutMs: options.requestTimeoutMs, context }),
      createPath: `${creds.userId}/media`,
      createParams: (input, mediaUrl) => ({
        media_type: 'REELS',
        ...(mediaUrl === null ? { upload_type: 'resumable' } : { video_url: mediaUrl }),
        caption: input.caption,
        ...(creds.shareToFeed === false ? { share_to_feed: 'false' } : {}),
      }),
      upload: (deps): ResumableUpload | null => {
        if (!instagramUploadsBytes(creds.loginType, options.ruploadLogins)) return null;
        const base = deps.urls.rupload;
        if (!base) throw new PublishError('unknown', `${LABEL} rupload URL is not configured (FACEBOOK_RUPLOAD_URL).`, { retryable: false, detail: 'FACEBOOK_RUPLOAD_URL is not configured' });
        return { base, chunkBytes };
      },
      statusFields: 'status_code,status',
      readStatus: (body): ContainerStatus | null => {
        const parsed = statusSchema.safeParse(body);
        return parsed.success ? { state: parsed.data.status_code, reason: parsed.data.status } : null;
      },
      publishPath: `${creds.userId}/media_publish`,
      quotaPath: `${creds.userId}/content_publishing_limit`,
      recentPath: `${creds.userId}/media`,
      containerFailed,
      profileUrl: (input: PublishInput) => `https://www.instagram.com/${encodeURIComponent((creds.username ?? input.account.handle).replace(/^@/, ''))}/`,
    };
  }

  function prepare(input: PublishInput): InstagramCredentials & { userId: string } {
    const creds = parseCredentials(input.credentials);
    const granted = new Set(creds.scope.split(/[,\s]+/).filter(Boolean));
    const missing = REQUIRED_SCOPES[creds.loginType].filter((s) => !granted.has(s));
    // Scope strings are not always stored (older links); only a stored list that lacks it is decisive.
    if (granted.size > 0 && missing.length > 0) {
      throw new PublishError('auth', `${LABEL} token lacks ${missing.join(', ')}`, { retryable: false, detail: MESSAGES.metaMissingPermission(LABEL) });
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
    const expiresAt = creds.expiresAt ? Date.parse(creds.expiresAt) : undefined;
    const due = expiresAt !== undefined && expiresAt - now < options.refreshWithinDays * DAY_MS;
    if (!refreshOptions.force && !due) return null;
    if (expiresAt !== undefined && expiresAt <= now) {
      throw new PublishError('auth', `${LABEL} token expired.`, { retryable: false, detail: 'the long-lived token expired; re-link the account' });
    }
    // Instagram refuses to refresh a token younger than 24 h; an unforced refresh waits for it.
    if (!refreshOptions.force && creds.issuedAt && now - Date.parse(creds.issuedAt) < DAY_MS) return null;
    const target: GraphTarget = { base: baseOf(deps, creds), version: '', token: creds.accessToken, timeoutMs: options.requestTimeoutMs, context };
    let body: unknown;
    try {
      if (creds.loginType === 'instagram') {
        body = await graphCall<unknown>(deps, target, 'GET', 'refresh_access_token', { grant_type: 'ig_refresh_token' }, { safeToRepeat: true });
      } else {
        const client = deps.oauthClient;
        if (!client) {
          if (!refreshOptions.force) return null;
          const detail = MESSAGES.fixOAuthClient(LABEL, 'META_APP_ID and META_APP_SECRET');
          throw new PublishError('unknown', detail, { retryable: false, detail });
        }
        // The exchange takes the token as fb_exchange_token, not as the caller's access_token.
        body = await graphCall<unknown>(
          deps,
          { ...target, version: options.version },
          'GET',
          'oauth/access_token',
          { grant_type: 'fb_exchange_token', client_id: client.clientId, client_secret: client.clientSecret, fb_exchange_token: creds.accessToken },
          { safeToRepeat: true },
        );
      }
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
    const nextExpiry = parsed.data.expires_in !== undefined ? new Date(issued + parsed.data.expires_in * 1000) : null;
    const next: InstagramCredentials = { ...creds, accessToken: parsed.data.access_token, issuedAt: new Date(issued).toISOString() };
    if (nextExpiry) next.expiresAt = nextExpiry.toISOString();
    else delete next.expiresAt;
    deps.log.info({ platform: SPEC.id, loginType: creds.loginType, expiresAt: next.expiresAt ?? null }, 'instagram token refreshed');
    return { credentials: next, expiresAt: nextExpiry };
  }

  /**
   * One profile read on the login's own host: `/me?fields=user_id,username` for Instagram Login,
   * the Instagram account node `/{ig-user-id}?fields=id,username` for Facebook Login (its token is
   * a Facebook user's, so `/me` there would be that person; `/me?fields=id` is the fallback for
   * credentials stored without the id).
   */
  async function validate(credentials: Credentials, deps: PlatformDeps): Promise<void> {
    const creds = parseCredentials(credentials);
    const target: GraphTarget = { base: baseOf(deps, creds), version: options.version, token: creds.accessToken, timeoutMs: options.requestTimeoutMs, context };
    const [path, fields] = creds.loginType === 'instagram' ? ['me', 'user_id,username'] : creds.userId ? [creds.userId, 'id,username'] : ['me', 'id'];
    await graphCall<unknown>(deps, target, 'GET', path, { fields }, { safeToRepeat: true });
  }

  const step = async (input: PublishInput, deps: PlatformDeps) => advanceContainer(platformFor(prepare(input)), input, deps);
  return {
    spec: SPEC,
    publish: step,
    // The container id is the remoteId while Meta processes; once FINISHED this publishes, exactly
    // once, as publish does, because the post can only be made after processing.
    check: (_remoteId, input, deps) => step(input, deps),
    refresh,
    validate,
  };
}

export const instagram: PlatformAdapter = createInstagramAdapter();
