/**
 * Linking by OAuth 2.0 authorization code, as data: per platform the endpoints (all configurable,
 * so simulators work), the minimum scopes the reference lists, PKCE, how the client authenticates,
 * one cheap profile read, and how the token response becomes the adapter's credentials.
 * The protocol itself is simple-oauth2's; only the platforms' documented quirks live here.
 */
import { AuthorizationCode, type ModuleOptions } from 'simple-oauth2';
import { z } from 'zod';
import type { Config } from './config.ts';
import type { Credentials, PlatformId } from './platforms.ts';

export interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  expires_in?: number;
  refresh_expires_in?: number;
  refresh_token_expires_in?: number;
  scope?: string;
  open_id?: string;
  token_type?: string;
  /** Meta: the user id beside a short-lived token. */
  user_id?: string | number;
  /** Instagram Login names the granted scopes `permissions`. */
  permissions?: string | readonly string[];
}

export interface Identity {
  handle: string;
  remoteId: string | null;
  /** Platform-specific fields the adapter's credentials carry (user id, author URN...). */
  extra: Credentials;
}

export interface OAuthPlatform {
  /** The platform the linked accounts belong to. */
  id: PlatformId;
  /** Whose app (OAuth client) signs in, when it is another platform's (Instagram through Facebook Login). */
  app?: PlatformId;
  authorizeUrl(config: Config): string;
  tokenUrl(config: Config): string;
  revokeUrl?(config: Config): string;
  scopes: readonly string[];
  scopeSeparator: ' ' | ',';
  pkce: boolean;
  /** `header`: HTTP Basic client authentication; `body`: client id and secret in the form. */
  clientAuth: 'header' | 'body';
  /** TikTok calls the client id `client_key`. */
  idParamName?: string;
  extraAuthorizeParams?: Record<string, string>;
  /**
   * Meta hands out a short-lived (1 h) token for the code; it must be traded for a long-lived one
   * (60 days) before anything is stored, or the account would break within the hour.
   */
  longLived?(token: TokenResponse, config: Config, fetchFn: typeof fetch): Promise<TokenResponse>;
  /** A variant's: whether stored credentials came from this sign-in (a re-link goes the same way). */
  linkedWith?(credentials: Credentials): boolean;
  /** Usually one account; a Facebook login can bring several Pages, each its own account. */
  identify(accessToken: string, token: TokenResponse, config: Config, fetchFn: typeof fetch, now: number): Promise<Identity | readonly Identity[]>;
}

async function getJson<T>(fetchFn: typeof fetch, url: string, accessToken: string, schema: z.ZodType<T>, init: RequestInit = {}): Promise<T> {
  const response = await fetchFn(url, { ...init, headers: { authorization: `Bearer ${accessToken}`, ...(init.headers ?? {}) } });
  if (!response.ok) throw new Error(`profile read answered ${response.status}`);
  return schema.parse(await response.json());
}

/** Meta's Graph reads take the token as a query parameter (its documented form). */
async function getGraph<T>(fetchFn: typeof fetch, url: string, params: Record<string, string>, schema: z.ZodType<T>): Promise<T> {
  const target = new URL(url);
  for (const [key, value] of Object.entries(params)) target.searchParams.set(key, value);
  const response = await fetchFn(target);
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (body as { error?: { message?: unknown } } | null)?.error;
    throw new Error(typeof error?.message === 'string' ? error.message : `answered ${response.status}`);
  }
  return schema.parse(body);
}

const longLivedSchema = z.object({ access_token: z.string().min(1), token_type: z.string().optional(), expires_in: z.number().optional() });

/** Instagram Login answers the code with `{data: [{access_token, user_id, permissions}]}` (older: the object itself). */
function unwrapData(token: TokenResponse): TokenResponse {
  const data = (token as { data?: unknown }).data;
  return Array.isArray(data) && data[0] && typeof data[0] === 'object' ? (data[0] as TokenResponse) : token;
}

function grantedScope(token: TokenResponse): string | undefined {
  if (token.scope !== undefined) return token.scope;
  if (token.permissions === undefined) return undefined;
  return typeof token.permissions === 'string' ? token.permissions : token.permissions.join(',');
}

const metaSecret = (c: Config, platform: PlatformId): string => c.platforms[platform].client?.clientSecret ?? '';
const FB_VERSION = 'v23.0';

const api = (config: Config, platform: PlatformId, key = 'api') => (config.platforms[platform].urls[key] ?? '').replace(/\/+$/, '');

const permissionsSchema = z.object({ data: z.array(z.object({ permission: z.string(), status: z.string() })) });

/**
 * Facebook Login's short-lived user token traded for a long-lived one (fb_exchange_token). Its
 * answers do not say what was granted (the person can untick permissions on the consent page);
 * /me/permissions does, so a declined one is named before anything is stored.
 */
async function facebookLongLived(short: TokenResponse, c: Config, fetchFn: typeof fetch): Promise<TokenResponse> {
  const graph = `${api(c, 'facebook', 'graph')}/${FB_VERSION}`;
  const client = c.platforms.facebook.client;
  const long = await getGraph(fetchFn, `${graph}/oauth/access_token`, { grant_type: 'fb_exchange_token', client_id: client?.clientId ?? '', client_secret: client?.clientSecret ?? '', fb_exchange_token: short.access_token }, longLivedSchema);
  const permissions = await getGraph(fetchFn, `${graph}/me/permissions`, { access_token: long.access_token }, permissionsSchema);
  return { ...long, scope: permissions.data.filter((p) => p.status === 'granted').map((p) => p.permission).join(',') };
}

/** Pages per `/me/accounts` read (Graph's default is 25), and how many reads one login may take. */
const PAGES_PER_READ = 100;
const MAX_PAGE_READS = 20;

const pagingSchema = z.object({ cursors: z.object({ after: z.string().optional() }).optional(), next: z.string().optional() }).optional();

/**
 * Every Page the login manages: `/me/accounts` is paged, and Graph gives `paging.next` only while
 * more follow. The `after` cursor is asked of the configured Graph host (not the `next` URL, which
 * carries the token wherever it points); a login with more Pages than the bound allows gets the first ones.
 */
async function facebookPages<T>(fetchFn: typeof fetch, c: Config, token: string, fields: string, page: z.ZodType<T>): Promise<T[]> {
  const schema = z.object({ data: z.array(page), paging: pagingSchema });
  const pages: T[] = [];
  let after: string | undefined;
  for (let read = 0; read < MAX_PAGE_READS; read++) {
    const params: Record<string, string> = { fields, limit: String(PAGES_PER_READ), access_token: token, ...(after !== undefined ? { after } : {}) };
    const body = await getGraph(fetchFn, `${api(c, 'facebook', 'graph')}/${FB_VERSION}/me/accounts`, params, schema);
    pages.push(...body.data);
    after = body.paging?.next ? body.paging.cursors?.after : undefined;
    if (after === undefined || body.data.length === 0) break;
  }
  return pages;
}

export const OAUTH_PLATFORMS: Partial<Record<PlatformId, OAuthPlatform>> = {
  tiktok: {
    id: 'tiktok',
    authorizeUrl: (c) => c.platforms.tiktok.urls.authorize!,
    tokenUrl: (c) => `${api(c, 'tiktok')}/v2/oauth/token/`,
    revokeUrl: (c) => `${api(c, 'tiktok')}/v2/oauth/revoke/`,
    scopes: ['user.info.basic', 'video.publish', 'video.upload'],
    scopeSeparator: ',',
    pkce: true,
    clientAuth: 'body',
    idParamName: 'client_key',
    identify: async (token, response, c, fetchFn) => {
      const body = await getJson(fetchFn, `${api(c, 'tiktok')}/v2/user/info/?fields=open_id,username,display_name`, token, z.object({ data: z.object({ user: z.object({ open_id: z.string(), username: z.string().optional(), display_name: z.string().optional() }) }) }));
      const user = body.data.user;
      return { handle: user.username ?? user.display_name ?? user.open_id, remoteId: user.open_id, extra: { openId: response.open_id ?? user.open_id } };
    },
  },
  youtube: {
    id: 'youtube',
    authorizeUrl: (c) => c.platforms.youtube.urls.authorize!,
    tokenUrl: (c) => c.platforms.youtube.urls.token!,
    revokeUrl: (c) => c.platforms.youtube.urls.revoke!,
    scopes: ['https://www.googleapis.com/auth/youtube.upload', 'https://www.googleapis.com/auth/youtube.readonly'],
    scopeSeparator: ' ',
    pkce: true,
    clientAuth: 'body',
    // A refresh token comes only with offline access, and only on the first consent unless asked again.
    extraAuthorizeParams: { access_type: 'offline', prompt: 'consent' },
    identify: async (token, _response, c, fetchFn) => {
      const body = await getJson(fetchFn, `${api(c, 'youtube')}/youtube/v3/channels?part=snippet&mine=true`, token, z.object({ items: z.array(z.object({ id: z.string(), snippet: z.object({ title: z.string(), customUrl: z.string().optional() }) })).default([]) }));
      const channel = body.items[0];
      if (!channel) throw new LinkProblem('youtubeNoChannel');
      return { handle: (channel.snippet.customUrl ?? channel.snippet.title).replace(/^@/, ''), remoteId: channel.id, extra: { channelId: channel.id } };
    },
  },
  x: {
    id: 'x',
    authorizeUrl: (c) => c.platforms.x.urls.authorize!,
    tokenUrl: (c) => `${api(c, 'x')}/2/oauth2/token`,
    revokeUrl: (c) => `${api(c, 'x')}/2/oauth2/revoke`,
    scopes: ['tweet.read', 'tweet.write', 'users.read', 'media.write', 'offline.access'],
    scopeSeparator: ' ',
    pkce: true,
    clientAuth: 'header',
    identify: async (token, _response, c, fetchFn) => {
      const body = await getJson(fetchFn, `${api(c, 'x')}/2/users/me`, token, z.object({ data: z.object({ id: z.string(), username: z.string() }) }));
      return { handle: body.data.username, remoteId: body.data.id, extra: { userId: body.data.id, username: body.data.username } };
    },
  },
  linkedin: {
    id: 'linkedin',
    authorizeUrl: (c) => c.platforms.linkedin.urls.authorize!,
    tokenUrl: (c) => c.platforms.linkedin.urls.token!,
    scopes: ['openid', 'profile', 'w_member_social'],
    scopeSeparator: ' ',
    pkce: false,
    clientAuth: 'body',
    identify: async (token, _response, c, fetchFn) => {
      const body = await getJson(fetchFn, `${api(c, 'linkedin')}/v2/userinfo`, token, z.object({ sub: z.string(), name: z.string().optional() }));
      return { handle: body.name ?? body.sub, remoteId: body.sub, extra: { author: `urn:li:person:${body.sub}`, authorName: body.name } };
    },
  },
  pinterest: {
    id: 'pinterest',
    authorizeUrl: (c) => c.platforms.pinterest.urls.authorize!,
    tokenUrl: (c) => `${api(c, 'pinterest')}/v5/oauth/token`,
    scopes: ['boards:read', 'pins:read', 'pins:write', 'user_accounts:read'],
    scopeSeparator: ',',
    pkce: false,
    clientAuth: 'header',
    identify: async (token, _response, c, fetchFn) => {
      const body = await getJson(fetchFn, `${api(c, 'pinterest')}/v5/user_account`, token, z.object({ username: z.string(), id: z.string().optional() }));
      return { handle: body.username, remoteId: body.id ?? null, extra: { username: body.username } };
    },
  },
  instagram: {
    // Instagram Login (no Facebook Page needed); the Facebook Login variant is OAUTH_VARIANTS.instagram.facebook.
    id: 'instagram',
    authorizeUrl: (c) => c.platforms.instagram.urls.authorize!,
    tokenUrl: (c) => c.platforms.instagram.urls.token!,
    scopes: ['instagram_business_basic', 'instagram_business_content_publish'],
    scopeSeparator: ',',
    pkce: false,
    clientAuth: 'body',
    longLived: async (short, c, fetchFn) => {
      const token = unwrapData(short);
      const long = await getGraph(fetchFn, `${api(c, 'instagram', 'instagramGraph')}/access_token`, { grant_type: 'ig_exchange_token', client_secret: metaSecret(c, 'instagram'), access_token: token.access_token }, longLivedSchema);
      const scope = grantedScope(token);
      return { ...long, ...(scope !== undefined ? { scope } : {}), ...(token.user_id !== undefined ? { user_id: token.user_id } : {}) };
    },
    identify: async (token, _response, c, fetchFn, now) => {
      const me = await getGraph(fetchFn, `${api(c, 'instagram', 'instagramGraph')}/${FB_VERSION}/me`, { fields: 'user_id,username', access_token: token }, z.object({ user_id: z.union([z.string(), z.number()]).transform(String), username: z.string() }));
      return { handle: me.username, remoteId: me.user_id, extra: { loginType: 'instagram', userId: me.user_id, username: me.username, issuedAt: new Date(now).toISOString() } };
    },
  },
  threads: {
    id: 'threads',
    authorizeUrl: (c) => c.platforms.threads.urls.authorize!,
    tokenUrl: (c) => `${api(c, 'threads')}/oauth/access_token`,
    scopes: ['threads_basic', 'threads_content_publish'],
    scopeSeparator: ',',
    pkce: false,
    clientAuth: 'body',
    longLived: async (short, c, fetchFn) => {
      const long = await getGraph(fetchFn, `${api(c, 'threads')}/access_token`, { grant_type: 'th_exchange_token', client_secret: metaSecret(c, 'threads'), access_token: short.access_token }, longLivedSchema);
      return { ...long, ...(short.scope !== undefined ? { scope: short.scope } : {}) };
    },
    identify: async (token, _response, c, fetchFn, now) => {
      const me = await getGraph(fetchFn, `${api(c, 'threads')}/v1.0/me`, { fields: 'id,username', access_token: token }, z.object({ id: z.union([z.string(), z.number()]).transform(String), username: z.string() }));
      return { handle: me.username, remoteId: me.id, extra: { userId: me.id, username: me.username, issuedAt: new Date(now).toISOString() } };
    },
  },
  facebook: {
    id: 'facebook',
    authorizeUrl: (c) => c.platforms.facebook.urls.authorize!,
    tokenUrl: (c) => `${api(c, 'facebook', 'graph')}/${FB_VERSION}/oauth/access_token`,
    scopes: ['pages_show_list', 'pages_read_engagement', 'pages_manage_posts'],
    scopeSeparator: ',',
    pkce: false,
    clientAuth: 'body',
    longLived: facebookLongLived,
    // Page tokens derived from a long-lived user token do not expire; every Page the login manages
    // becomes an account, so `to facebook:<page name>` picks one.
    identify: async (token, response, c, fetchFn, now) => {
      const pages = await facebookPages(fetchFn, c, token, 'id,name,access_token', z.object({ id: z.string(), name: z.string(), access_token: z.string().optional() }));
      const usable = pages.filter((page) => page.access_token);
      if (usable.length === 0) throw new LinkProblem('facebookNoPage');
      const userTokenExpiresAt = response.expires_in ? { userTokenExpiresAt: new Date(now + response.expires_in * 1000).toISOString() } : {};
      return usable.map((page) => ({
        handle: page.name,
        remoteId: page.id,
        extra: { userAccessToken: token, ...userTokenExpiresAt, pageId: page.id, pageAccessToken: page.access_token!, pageName: page.name },
      }));
    },
  },
};

const pageWithInstagramSchema = z.object({
  id: z.string(),
  name: z.string().optional(),
  instagram_business_account: z.object({ id: z.union([z.string(), z.number()]).transform(String), username: z.string().optional() }).optional(),
});

/**
 * Linking through another platform's sign-in, by account platform and the platform whose login is
 * used: `/link instagram via facebook`.
 */
export const OAUTH_VARIANTS: Partial<Record<PlatformId, Partial<Record<PlatformId, OAuthPlatform>>>> = {
  instagram: {
    // Instagram API with Facebook Login (reference §2): an Instagram professional account connected
    // to a Facebook Page, published on graph.facebook.com with the long-lived *user* token (the IG
    // calls take the user token; the adapter re-exchanges it with fb_exchange_token before it ends).
    facebook: {
      id: 'instagram',
      app: 'facebook',
      authorizeUrl: (c) => c.platforms.facebook.urls.authorize!,
      tokenUrl: (c) => `${api(c, 'facebook', 'graph')}/${FB_VERSION}/oauth/access_token`,
      scopes: ['instagram_basic', 'instagram_content_publish', 'pages_read_engagement', 'pages_show_list'],
      scopeSeparator: ',',
      pkce: false,
      clientAuth: 'body',
      linkedWith: (credentials) => credentials.loginType === 'facebook',
      longLived: facebookLongLived,
      // No Page tokens are asked for: Instagram's calls take the user token, so none is kept.
      identify: async (token, _response, c, fetchFn, now) => {
        const pages = await facebookPages(fetchFn, c, token, 'id,name,instagram_business_account{id,username}', pageWithInstagramSchema);
        const seen = new Set<string>();
        const identities: Identity[] = [];
        for (const page of pages) {
          const ig = page.instagram_business_account;
          if (!ig || seen.has(ig.id)) continue;
          seen.add(ig.id);
          const username = ig.username ?? ig.id;
          identities.push({ handle: username, remoteId: ig.id, extra: { loginType: 'facebook', userId: ig.id, username, pageId: page.id, issuedAt: new Date(now).toISOString() } });
        }
        if (identities.length === 0) throw new LinkProblem('instagramNoPageAccount');
        return identities;
      },
    },
  },
};

/** The sign-in that links `platform` (through `via`'s login when given); undefined when there is none. */
export function oauthSpec(platform: PlatformId, via: PlatformId | null = null): OAuthPlatform | undefined {
  return via === null ? OAUTH_PLATFORMS[platform] : OAUTH_VARIANTS[platform]?.[via];
}

/** A linking failure with a known cause; the key names its MESSAGES entry. */
export type LinkProblemKey = 'youtubeNoChannel' | 'facebookNoPage' | 'instagramNoPageAccount';

export class LinkProblem extends Error {
  readonly key: LinkProblemKey;
  constructor(key: LinkProblemKey) {
    super(key);
    this.key = key;
  }
}

export function oauthClient(platform: OAuthPlatform, config: Config): AuthorizationCode<string> {
  const app = platform.app ?? platform.id;
  const client = config.platforms[app].client;
  if (!client) throw new Error(`${app} has no OAuth client configured`);
  const authorize = new URL(platform.authorizeUrl(config));
  const token = new URL(platform.tokenUrl(config));
  const options: ModuleOptions<string> = {
    client: { id: client.clientId, secret: client.clientSecret, ...(platform.idParamName ? { idParamName: platform.idParamName } : {}) },
    auth: {
      authorizeHost: authorize.origin,
      authorizePath: authorize.pathname,
      tokenHost: token.origin,
      tokenPath: token.pathname,
      ...(platform.revokeUrl ? { revokePath: new URL(platform.revokeUrl(config)).pathname } : {}),
    },
    options: { authorizationMethod: platform.clientAuth, bodyFormat: 'form', scopeSeparator: platform.scopeSeparator },
  };
  return new AuthorizationCode(options);
}

/** Scopes the platform did not grant, by name (the token response says what was granted). */
export function missingScopes(platform: OAuthPlatform, token: TokenResponse): string[] {
  const granted = grantedScope(token);
  if (granted === undefined) return [];
  const have = new Set(granted.split(/[\s,]+/).filter(Boolean));
  return platform.scopes.filter((scope) => !have.has(scope));
}

/** The adapter's credentials from a token response and the profile read. */
export function credentialsFrom(response: TokenResponse, identity: Identity, now: number): { credentials: Credentials; expiresAt: Date | null } {
  const expiresAt = response.expires_in ? new Date(now + response.expires_in * 1000) : null;
  const refreshIn = response.refresh_expires_in ?? response.refresh_token_expires_in;
  const credentials: Credentials = {
    accessToken: response.access_token,
    ...(response.refresh_token ? { refreshToken: response.refresh_token } : {}),
    ...(expiresAt ? { expiresAt: expiresAt.toISOString() } : {}),
    ...(refreshIn ? { refreshExpiresAt: new Date(now + refreshIn * 1000).toISOString(), refreshTokenExpiresAt: new Date(now + refreshIn * 1000).toISOString() } : {}),
    scope: response.scope ?? '',
    ...(response.token_type ? { tokenType: response.token_type } : {}),
    ...identity.extra,
  };
  return { credentials, expiresAt };
}
