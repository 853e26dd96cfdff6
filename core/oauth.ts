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
}

export interface Identity {
  handle: string;
  remoteId: string | null;
  /** Platform-specific fields the adapter's credentials carry (user id, author URN...). */
  extra: Credentials;
}

export interface OAuthPlatform {
  id: PlatformId;
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
  identify(accessToken: string, token: TokenResponse, config: Config, fetchFn: typeof fetch): Promise<Identity>;
}

async function getJson<T>(fetchFn: typeof fetch, url: string, accessToken: string, schema: z.ZodType<T>, init: RequestInit = {}): Promise<T> {
  const response = await fetchFn(url, { ...init, headers: { authorization: `Bearer ${accessToken}`, ...(init.headers ?? {}) } });
  if (!response.ok) throw new Error(`profile read answered ${response.status}`);
  return schema.parse(await response.json());
}

const api = (config: Config, platform: PlatformId, key = 'api') => (config.platforms[platform].urls[key] ?? '').replace(/\/+$/, '');

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
};

/** A linking failure with a known cause; the key names its MESSAGES entry. */
export class LinkProblem extends Error {
  readonly key: 'youtubeNoChannel';
  constructor(key: 'youtubeNoChannel') {
    super(key);
    this.key = key;
  }
}

export function oauthClient(platform: OAuthPlatform, config: Config): AuthorizationCode<string> {
  const client = config.platforms[platform.id].client;
  if (!client) throw new Error(`${platform.id} has no OAuth client configured`);
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
export function missingScopes(platform: OAuthPlatform, granted: string | undefined): string[] {
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
