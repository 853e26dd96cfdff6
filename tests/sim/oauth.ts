/**
 * An OAuth 2.0 authorization server per platform, on 127.0.0.1, speaking each platform's documented
 * flavour of the authorization code flow (../shared/reference/platform-apis.md): the consent page
 * (auto-approving as a test user would), the token endpoint (authorization_code and refresh_token
 * grants), revocation, and the one profile read linking does. It enforces:
 * - the registered client id (TikTok's `client_key`) and exact `redirect_uri`;
 * - client authentication as the platform takes it (HTTP Basic for X and Pinterest, form fields
 *   for the others), `application/x-www-form-urlencoded` bodies;
 * - PKCE S256 where the platform requires it (TikTok, X, Google here): a missing or wrong
 *   `code_verifier` is `invalid_grant`;
 * - codes that work once, within 10 minutes, for the redirect_uri they were issued to;
 * - rotating refresh tokens (each works once); revoked tokens are refused by the profile read.
 * Routes are prefixed by platform: `/<platform>/authorize`, and the API paths under `/<platform>`.
 *
 * Meta's flavour (Instagram Login, Facebook Login, Threads) differs: the code buys a short-lived
 * token, which must be traded (GET, client secret in the query: ig_exchange_token,
 * fb_exchange_token, th_exchange_token) for a long-lived one; errors are Graph's
 * `{error: {message, type, code}}`; reads take `access_token` as a query parameter. The profile
 * reads here answer only long-lived tokens, so a product that stored the short one fails its test.
 * Facebook's token answers do not list the granted permissions; `/me/permissions` does (granted and
 * declined, as the consent left them). `/me/accounts` answers only the `fields` asked for, with
 * `instagram_business_account{id,username}` expanded only when asked (bare: just its id), for the
 * Pages in `pages` and their connected Instagram professional accounts, paged as Graph pages
 * edges (`limit`, `after` cursor, `paging.cursors` and `paging.next` while more follow).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type OAuthSimPlatform = 'tiktok' | 'youtube' | 'x' | 'linkedin' | 'pinterest';
export type MetaSimPlatform = 'instagram' | 'facebook' | 'threads';

const META: Record<MetaSimPlatform, { tokenPath: string; exchangePath: string; grant: string; profilePath: string; scopeSeparator: string }> = {
  instagram: { tokenPath: '/oauth/access_token', exchangePath: '/access_token', grant: 'ig_exchange_token', profilePath: '/v23.0/me', scopeSeparator: ',' },
  facebook: { tokenPath: '/v23.0/oauth/access_token', exchangePath: '/v23.0/oauth/access_token', grant: 'fb_exchange_token', profilePath: '/v23.0/me/accounts', scopeSeparator: ',' },
  threads: { tokenPath: '/oauth/access_token', exchangePath: '/access_token', grant: 'th_exchange_token', profilePath: '/v1.0/me', scopeSeparator: ',' },
};

interface Style {
  tokenPath: string;
  revokePath?: string;
  profilePath: string;
  idParam: string;
  clientAuth: 'basic' | 'body';
  pkce: boolean;
  scopeSeparator: string;
}

const STYLES: Record<OAuthSimPlatform, Style> = {
  tiktok: { tokenPath: '/v2/oauth/token/', revokePath: '/v2/oauth/revoke/', profilePath: '/v2/user/info/', idParam: 'client_key', clientAuth: 'body', pkce: true, scopeSeparator: ',' },
  youtube: { tokenPath: '/token', revokePath: '/revoke', profilePath: '/youtube/v3/channels', idParam: 'client_id', clientAuth: 'body', pkce: true, scopeSeparator: ' ' },
  x: { tokenPath: '/2/oauth2/token', revokePath: '/2/oauth2/revoke', profilePath: '/2/users/me', idParam: 'client_id', clientAuth: 'basic', pkce: true, scopeSeparator: ' ' },
  linkedin: { tokenPath: '/oauth/v2/accessToken', profilePath: '/v2/userinfo', idParam: 'client_id', clientAuth: 'body', pkce: false, scopeSeparator: ' ' },
  pinterest: { tokenPath: '/v5/oauth/token', profilePath: '/v5/user_account', idParam: 'client_id', clientAuth: 'basic', pkce: false, scopeSeparator: ',' },
};

export interface OAuthSimClient {
  id: string;
  secret: string;
  redirectUri: string;
}

interface Code {
  platform: OAuthSimPlatform;
  redirectUri: string;
  challenge: string | null;
  scope: string;
  issuedAt: number;
  used: boolean;
}

export interface OAuthSimOptions {
  /** The test user each consent page signs in as. */
  user?: { id: string; username: string; name: string };
}

export class OAuthSim {
  url = '';
  readonly clients = new Map<OAuthSimPlatform | MetaSimPlatform, OAuthSimClient>();
  /** What the next consent grants instead of what was asked (to test missing scopes), or 'deny'. */
  readonly consent = new Map<OAuthSimPlatform | MetaSimPlatform, { grant?: string[]; deny?: boolean }>();
  readonly codes = new Map<string, Code>();
  readonly metaCodes = new Map<string, { platform: MetaSimPlatform; redirectUri: string; scope: string; asked: string; issuedAt: number; used: boolean }>();
  /** Meta tokens carry what their consent granted (`scope`) and asked for (`asked`), comma-separated. */
  readonly accessTokens = new Map<string, { platform: OAuthSimPlatform | MetaSimPlatform; revoked: boolean; kind?: 'short' | 'long'; scope?: string; asked?: string }>();
  /**
   * The Pages a Facebook login manages (Page tokens are issued per Page), and the Instagram
   * professional account connected to each, if any. Tests replace it to change the mapping.
   */
  pages: Array<{ id: string; name: string; instagram?: { id: string; username: string } }> = [
    { id: '101000000000001', name: 'Casey Cooks', instagram: { id: '17841400000000001', username: 'caseycooks' } },
    { id: '101000000000002', name: 'Casey Travels' },
  ];
  /**
   * Long-lived tokens the next exchanges hand out instead of random ones (first in, first out), so
   * a Graph simulator that issued them accepts the linked account's token.
   */
  readonly nextLongLivedTokens: string[] = [];
  readonly refreshTokens = new Map<string, { platform: OAuthSimPlatform; used: boolean; scope: string }>();
  readonly log: Array<{ platform: string; path: string; status: number; params: Record<string, string> }> = [];
  readonly user: { id: string; username: string; name: string };
  #server: Server | undefined;

  constructor(options: OAuthSimOptions = {}) {
    this.user = options.user ?? { id: '1234567890', username: 'creator', name: 'Casey Creator' };
  }

  async start(): Promise<this> {
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => this.#json(response, 500, { error: 'server_error', error_description: String(error) }));
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    await new Promise((resolve) => this.#server?.close(resolve));
  }

  register(platform: OAuthSimPlatform | MetaSimPlatform, client: OAuthSimClient): void {
    this.clients.set(platform, client);
  }

  /** Base URLs for a platform: what the product's config points at. */
  base(platform: OAuthSimPlatform | MetaSimPlatform): string {
    return `${this.url}/${platform}`;
  }

  #json(response: ServerResponse, status: number, body: unknown): void {
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  async #form(request: IncomingMessage): Promise<Record<string, string>> {
    let body = '';
    for await (const chunk of request) body += String(chunk);
    if (!/^application\/x-www-form-urlencoded/.test(request.headers['content-type'] ?? '')) throw new Error('not a form');
    return Object.fromEntries(new URLSearchParams(body));
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.url);
    const meta = /^\/(instagram|facebook|threads)(\/.*)$/.exec(url.pathname);
    if (meta) return this.#meta(request, response, url, meta[1] as MetaSimPlatform, meta[2]!);
    const match = /^\/(tiktok|youtube|x|linkedin|pinterest)(\/.*)$/.exec(url.pathname);
    if (!match) return this.#json(response, 404, { error: 'not_found' });
    const platform = match[1] as OAuthSimPlatform;
    const path = match[2]!;
    const style = STYLES[platform];
    const client = this.clients.get(platform);
    const record = (status: number, params: Record<string, string>) => this.log.push({ platform, path, status, params });

    if (request.method === 'GET' && path === '/authorize') {
      const params = Object.fromEntries(url.searchParams);
      record(0, params);
      if (!client || params[style.idParam] !== client.id) return this.#json(response, 400, { error: 'invalid_client' });
      if (params.redirect_uri !== client.redirectUri) return this.#json(response, 400, { error: 'invalid_request', error_description: 'redirect_uri mismatch' });
      if (params.response_type !== 'code' || !params.scope || !params.state) return this.#json(response, 400, { error: 'invalid_request' });
      if (style.pkce && (params.code_challenge_method !== 'S256' || !params.code_challenge)) return this.#json(response, 400, { error: 'invalid_request', error_description: 'PKCE S256 required' });
      const back = new URL(client.redirectUri);
      back.searchParams.set('state', params.state);
      const consent = this.consent.get(platform);
      if (consent?.deny) {
        back.searchParams.set('error', 'access_denied');
      } else {
        const code = randomBytes(16).toString('hex');
        const scope = (consent?.grant ?? params.scope.split(style.scopeSeparator)).join(style.scopeSeparator);
        this.codes.set(code, { platform, redirectUri: params.redirect_uri, challenge: params.code_challenge ?? null, scope, issuedAt: Date.now(), used: false });
        back.searchParams.set('code', code);
      }
      response.writeHead(302, { location: back.toString() }).end();
      return;
    }

    if (request.method === 'POST' && (path === style.tokenPath || path === style.revokePath)) {
      const form = await this.#form(request);
      let id = form[style.idParam];
      let secret = form.client_secret;
      if (style.clientAuth === 'basic') {
        const basic = /^Basic (.+)$/.exec(request.headers.authorization ?? '')?.[1];
        const decoded = basic ? Buffer.from(basic, 'base64').toString() : '';
        [id, secret] = [decodeURIComponent(decoded.split(':')[0] ?? ''), decodeURIComponent(decoded.split(':').slice(1).join(':'))];
      }
      const fail = (status: number, error: string, description: string) => {
        record(status, { grant_type: form.grant_type ?? '' });
        this.#json(response, status, { error, error_description: description });
      };
      if (!client || id !== client.id || secret !== client.secret) return fail(401, 'invalid_client', 'client authentication failed');
      if (path === style.revokePath) {
        const token = this.accessTokens.get(form.token ?? '');
        if (token) token.revoked = true;
        record(200, { revoke: 'token' });
        return this.#json(response, 200, {});
      }
      if (form.grant_type === 'authorization_code') {
        const code = this.codes.get(form.code ?? '');
        if (!code || code.platform !== platform || code.used || Date.now() - code.issuedAt > 600_000) return fail(400, 'invalid_grant', 'authorization code is invalid or expired');
        code.used = true;
        if (form.redirect_uri !== code.redirectUri) return fail(400, 'invalid_grant', 'redirect_uri mismatch');
        if (code.challenge !== null) {
          const verifier = form.code_verifier ?? '';
          if (createHash('sha256').update(verifier).digest('base64url') !== code.challenge) return fail(400, 'invalid_grant', 'code_verifier does not match');
        }
        record(200, { grant_type: 'authorization_code' });
        return this.#json(response, 200, this.#issue(platform, code.scope));
      }
      if (form.grant_type === 'refresh_token') {
        const refresh = this.refreshTokens.get(form.refresh_token ?? '');
        if (!refresh || refresh.used || refresh.platform !== platform) return fail(400, 'invalid_grant', 'refresh token is invalid');
        refresh.used = true;
        record(200, { grant_type: 'refresh_token' });
        return this.#json(response, 200, this.#issue(platform, refresh.scope));
      }
      return fail(400, 'unsupported_grant_type', String(form.grant_type));
    }

    if (request.method === 'GET' && path === style.profilePath) {
      const token = this.accessTokens.get(/^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '');
      if (!token || token.revoked || token.platform !== platform) return this.#json(response, 401, { error: 'invalid_token' });
      const u = this.user;
      const bodies: Record<OAuthSimPlatform, unknown> = {
        tiktok: { data: { user: { open_id: `oid-${u.id}`, username: u.username, display_name: u.name } }, error: { code: 'ok', message: '' } },
        youtube: { items: [{ id: `UC${u.id}`, snippet: { title: u.name, customUrl: `@${u.username}` } }] },
        x: { data: { id: u.id, username: u.username, name: u.name } },
        linkedin: { sub: `li${u.id}`, name: u.name },
        pinterest: { username: u.username, id: u.id },
      };
      return this.#json(response, 200, bodies[platform]);
    }
    return this.#json(response, 404, { error: 'not_found' });
  }

  #graphError(response: ServerResponse, status: number, message: string, code: number): void {
    this.#json(response, status, { error: { message, type: 'OAuthException', code, fbtrace_id: randomBytes(6).toString('hex') } });
  }

  #token(platform: MetaSimPlatform, kind: 'short' | 'long', grant: { scope: string; asked: string }): string {
    const token = (kind === 'long' ? this.nextLongLivedTokens.shift() : undefined) ?? `${kind === 'short' ? 'st' : 'lt'}-${platform}-${randomBytes(12).toString('hex')}`;
    this.accessTokens.set(token, { platform, revoked: false, kind, ...grant });
    return token;
  }

  /** A Page as `/me/accounts` answers it: only the fields asked for (Graph adds the id). */
  #page(page: OAuthSim['pages'][number], fields: ReadonlyMap<string, readonly string[] | null>): Record<string, unknown> {
    const out: Record<string, unknown> = { id: page.id };
    if (fields.has('name')) out.name = page.name;
    if (fields.has('access_token')) out.access_token = `pt-${page.id}-${randomBytes(8).toString('hex')}`;
    if (fields.has('category')) out.category = 'Creator';
    if (fields.has('tasks')) out.tasks = ['CREATE_CONTENT', 'MODERATE'];
    const ig = fields.get('instagram_business_account');
    if (fields.has('instagram_business_account') && page.instagram) {
      out.instagram_business_account = { id: page.instagram.id, ...(ig?.includes('username') ? { username: page.instagram.username } : {}) };
    }
    return out;
  }

  async #meta(request: IncomingMessage, response: ServerResponse, url: URL, platform: MetaSimPlatform, path: string): Promise<void> {
    const style = META[platform];
    const client = this.clients.get(platform);
    const params = Object.fromEntries(url.searchParams);
    const record = (status: number, logged: Record<string, string>) => this.log.push({ platform, path, status, params: logged });

    if (request.method === 'GET' && path === '/authorize') {
      record(0, params);
      if (!client || params.client_id !== client.id) return this.#graphError(response, 400, 'Invalid App ID', 101);
      if (params.redirect_uri !== client.redirectUri) return this.#graphError(response, 400, "URL blocked: redirect_uri is not whitelisted", 191);
      if (params.response_type !== 'code' || !params.scope || !params.state) return this.#graphError(response, 400, 'Invalid request', 100);
      const back = new URL(client.redirectUri);
      back.searchParams.set('state', params.state);
      const consent = this.consent.get(platform);
      if (consent?.deny) {
        back.searchParams.set('error', 'access_denied');
      } else {
        const code = randomBytes(16).toString('hex');
        const asked = params.scope.split(style.scopeSeparator);
        this.metaCodes.set(code, { platform, redirectUri: params.redirect_uri, scope: (consent?.grant ?? asked).join(','), asked: asked.join(','), issuedAt: Date.now(), used: false });
        back.searchParams.set('code', code);
      }
      // Meta appends a `#_` fragment to the redirect (never sent back by the browser).
      response.writeHead(302, { location: `${back.toString()}#_` }).end();
      return;
    }

    if (request.method === 'POST' && path === style.tokenPath) {
      const form = await this.#form(request);
      if (!client || form.client_id !== client.id || form.client_secret !== client.secret) {
        record(400, { grant_type: form.grant_type ?? '' });
        return this.#graphError(response, 400, 'Error validating client secret.', 1);
      }
      const code = this.metaCodes.get(form.code ?? '');
      if (form.grant_type !== 'authorization_code' || !code || code.platform !== platform || code.used || Date.now() - code.issuedAt > 600_000 || form.redirect_uri !== code.redirectUri) {
        record(400, { grant_type: form.grant_type ?? '' });
        return this.#graphError(response, 400, 'This authorization code has expired or has been used.', 100);
      }
      code.used = true;
      record(200, { grant_type: 'authorization_code' });
      const short = this.#token(platform, 'short', { scope: code.scope, asked: code.asked });
      if (platform === 'instagram') return this.#json(response, 200, { data: [{ access_token: short, user_id: `1784${this.user.id}`, permissions: code.scope }] });
      if (platform === 'threads') return this.#json(response, 200, { access_token: short, user_id: `2${this.user.id}` });
      return this.#json(response, 200, { access_token: short, token_type: 'bearer', expires_in: 3600 });
    }

    if (request.method === 'GET' && path === style.exchangePath && params.grant_type === style.grant) {
      const presented = platform === 'facebook' ? params.fb_exchange_token : params.access_token;
      const token = this.accessTokens.get(presented ?? '');
      if (!client || params.client_secret !== client.secret || (platform === 'facebook' && params.client_id !== client.id)) {
        record(400, { grant_type: style.grant });
        return this.#graphError(response, 400, 'Error validating client secret.', 1);
      }
      if (!token || token.platform !== platform || token.revoked || token.kind !== 'short') {
        record(400, { grant_type: style.grant });
        return this.#graphError(response, 400, 'Invalid OAuth access token.', 190);
      }
      record(200, { grant_type: style.grant });
      return this.#json(response, 200, { access_token: this.#token(platform, 'long', { scope: token.scope ?? '', asked: token.asked ?? '' }), token_type: 'bearer', expires_in: 5_184_000 });
    }

    if (request.method === 'GET' && platform === 'facebook' && path === '/v23.0/me/permissions') {
      const token = this.accessTokens.get(params.access_token ?? '');
      if (!token || token.platform !== platform || token.revoked) return this.#graphError(response, 400, 'Invalid OAuth access token.', 190);
      if (token.kind !== 'long') return this.#graphError(response, 400, 'Error validating access token: Session has expired.', 190);
      record(200, {});
      const granted = new Set((token.scope ?? '').split(',').filter(Boolean));
      const asked = (token.asked ?? '').split(',').filter((p) => p && !granted.has(p));
      return this.#json(response, 200, { data: [...['public_profile', ...granted].map((permission) => ({ permission, status: 'granted' })), ...asked.map((permission) => ({ permission, status: 'declined' }))] });
    }

    if (request.method === 'GET' && path === style.profilePath) {
      const token = this.accessTokens.get(params.access_token ?? '');
      if (!token || token.platform !== platform || token.revoked) return this.#graphError(response, 400, 'Invalid OAuth access token.', 190);
      if (token.kind !== 'long') return this.#graphError(response, 400, 'Error validating access token: Session has expired.', 190);
      if (platform !== 'facebook') record(200, { fields: params.fields ?? '' });
      const u = this.user;
      if (platform === 'instagram') return this.#json(response, 200, { user_id: `1784${u.id}`, username: u.username, id: `9${u.id}` });
      if (platform === 'threads') return this.#json(response, 200, { id: `2${u.id}`, username: u.username });
      const fields = parseFields(params.fields ?? 'id,name');
      // Paged as Graph pages edges: `limit` (default 25, at most 100), opaque `after`/`before`
      // cursors naming the first and last Page of the answer, `next` only while more follow.
      const limit = Math.min(Number(params.limit ?? 25) || 25, 100);
      let start = 0;
      if (params.after !== undefined) {
        const index = this.pages.findIndex((page) => cursor(page.id) === params.after);
        if (index < 0) return this.#graphError(response, 400, 'Invalid cursor', 100);
        start = index + 1;
      }
      const slice = this.pages.slice(start, start + limit);
      const paging: Record<string, unknown> = {};
      if (slice.length > 0) {
        paging.cursors = { before: cursor(slice[0]!.id), after: cursor(slice.at(-1)!.id) };
        if (start + limit < this.pages.length) {
          const next = new URL(url);
          next.searchParams.set('limit', String(limit));
          next.searchParams.set('after', cursor(slice.at(-1)!.id));
          paging.next = next.toString();
        }
      }
      record(200, { fields: params.fields ?? '', ...(params.after !== undefined ? { after: params.after } : {}), limit: String(limit) });
      return this.#json(response, 200, { data: slice.map((page) => this.#page(page, fields)), paging });
    }
    record(404, {});
    return this.#graphError(response, 404, `Unknown path components: ${path}`, 2500);
  }

  #issue(platform: OAuthSimPlatform, scope: string): Record<string, unknown> {
    const access = `at-${platform}-${randomBytes(12).toString('hex')}`;
    const refresh = `rt-${platform}-${randomBytes(12).toString('hex')}`;
    this.accessTokens.set(access, { platform, revoked: false });
    this.refreshTokens.set(refresh, { platform, used: false, scope });
    const base = { access_token: access, refresh_token: refresh, expires_in: 7200, scope, token_type: 'Bearer' };
    if (platform === 'tiktok') return { ...base, open_id: `oid-${this.user.id}`, refresh_expires_in: 15_552_000 };
    if (platform === 'pinterest') return { ...base, refresh_token_expires_in: 5_184_000 };
    if (platform === 'linkedin') return { access_token: access, expires_in: 5_184_000, scope };
    return base;
  }
}

/** An opaque Graph cursor for an edge item. */
function cursor(id: string): string {
  return Buffer.from(`page:${id}`).toString('base64url');
}

/** Graph's `fields`: `a,b,c{d,e}` → a → null, c → [d, e] (one level of expansion is all Reelay asks). */
function parseFields(text: string): Map<string, readonly string[] | null> {
  const fields = new Map<string, readonly string[] | null>();
  for (const match of text.matchAll(/([a-z_]+)(?:\{([^}]*)\})?/g)) fields.set(match[1]!, match[2] === undefined ? null : match[2].split(',').map((f) => f.trim()));
  return fields;
}

export async function startOAuthSim(options: OAuthSimOptions = {}): Promise<OAuthSim> {
  return new OAuthSim(options).start();
}
