/**
 * Linking an account from chat: `/link tiktok` hands the admin a one-time link (10 minutes); the
 * HTTP server turns it into the platform's consent page with a single-use `state` bound to the
 * workspace, member and platform (and PKCE where the platform takes it); the callback exchanges
 * the code, reads the profile and stores the tokens encrypted. Bluesky gets a one-time form instead,
 * so an app password is never typed into a chat.
 *
 * Every check-and-consume is one guarded UPDATE, so a replayed link or state loses the race.
 */
import { createHash, randomBytes } from 'node:crypto';
import { listAccounts, readCredentials, setAccountState, upsertAccount, type AccountRow } from './accounts.ts';
import type { Context } from './context.ts';
import { withTransaction } from './db.ts';
import { sendPublish } from './jobs.ts';
import { setJob } from './posts.ts';
import { MESSAGES, UserError } from './errors.ts';
import { credentialsFrom, LinkProblem, missingScopes, OAUTH_PLATFORMS, oauthClient, type Identity, type OAuthPlatform, type TokenResponse } from './oauth.ts';
import { PLATFORM_SPECS, type Credentials, type PlatformId } from './platforms.ts';

export const LINK_TTL_MS = 10 * 60_000;

const hash = (value: string): string => createHash('sha256').update(value).digest('base64url');

export interface LinkRequestRow {
  workspace_id: string;
  member_id: string;
  platform: PlatformId;
  chat: string | null;
  verifier: Buffer | null;
}

/** Whether Reelay can link this platform from chat (an OAuth client, or Bluesky's form). */
export function linkable(ctx: Context, platform: PlatformId): boolean {
  if (platform === 'bluesky') return true;
  return OAUTH_PLATFORMS[platform] !== undefined && ctx.config.platforms[platform].client !== null;
}

export function redirectUri(ctx: Context, platform: PlatformId): string {
  return `${ctx.config.http.publicBaseUrl!.replace(/\/+$/, '')}/oauth/${platform}/callback`;
}

/** The one-time link for `/link PLATFORM`; refused with the reason when linking cannot work. */
export async function createLinkRequest(ctx: Context, request: { workspaceId: string; memberId: string; platform: PlatformId; chat: string | null }): Promise<{ url: string; expiresAt: Date }> {
  const label = PLATFORM_SPECS[request.platform].label;
  if (!ctx.config.http.publicBaseUrl) throw new UserError(MESSAGES.linkNeedsPublicUrl());
  if (request.platform !== 'bluesky' && !OAUTH_PLATFORMS[request.platform]) throw new UserError(MESSAGES.linkNotSupported(label, request.platform, request.workspaceId));
  if (!linkable(ctx, request.platform)) throw new UserError(MESSAGES.linkNoClient(label));
  const token = randomBytes(24).toString('base64url');
  const expiresAt = new Date(ctx.now() + LINK_TTL_MS);
  await ctx.pool.query(
    `INSERT INTO link_requests (token_hash, workspace_id, member_id, platform, chat, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
    [hash(token), request.workspaceId, request.memberId, request.platform, request.chat, expiresAt],
  );
  return { url: `${ctx.config.http.publicBaseUrl.replace(/\/+$/, '')}/link/${token}`, expiresAt };
}

/** What a one-time link shows: the Bluesky form (not yet consumed), or where to send the browser. */
export async function openLink(ctx: Context, token: string): Promise<{ kind: 'form'; platform: 'bluesky' } | { kind: 'redirect'; url: string }> {
  const { rows } = await ctx.pool.query<{ platform: PlatformId }>(
    `SELECT platform FROM link_requests WHERE token_hash = $1 AND used_at IS NULL AND opened_at IS NULL AND expires_at > $2`,
    [hash(token), new Date(ctx.now())],
  );
  const platform = rows[0]?.platform;
  if (!platform) throw new UserError(MESSAGES.linkExpired());
  if (platform === 'bluesky') return { kind: 'form', platform };
  const spec = OAUTH_PLATFORMS[platform];
  if (!spec) throw new UserError(MESSAGES.linkExpired());
  const state = randomBytes(24).toString('base64url');
  const verifier = spec.pkce ? randomBytes(48).toString('base64url') : null;
  const opened = await ctx.pool.query(
    `UPDATE link_requests SET opened_at = $2, state_hash = $3, verifier = $4, key_id = $5
      WHERE token_hash = $1 AND opened_at IS NULL AND used_at IS NULL AND expires_at > $2 RETURNING 1`,
    [hash(token), new Date(ctx.now()), hash(state), verifier ? ctx.secrets.seal(verifier) : null, verifier ? ctx.secrets.keyId : null],
  );
  if (opened.rowCount === 0) throw new UserError(MESSAGES.linkExpired());
  const client = oauthClient(spec, ctx.config);
  const url = client.authorizeURL({
    redirect_uri: redirectUri(ctx, platform),
    scope: spec.scopes.join(spec.scopeSeparator),
    state,
    ...(verifier ? { code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256' } : {}),
    ...(spec.extraAuthorizeParams ?? {}),
  });
  return { kind: 'redirect', url };
}

export interface Linked {
  account: AccountRow;
  /** More accounts the same sign-in brought (a Facebook login's other Pages). */
  also?: readonly AccountRow[];
  workspaceId: string;
  memberId: string;
  chat: string | null;
}

/** Consumes a state (or a Bluesky link token): single use, unexpired, for this platform. */
async function consume(ctx: Context, column: 'state_hash' | 'token_hash', value: string, platform: PlatformId): Promise<LinkRequestRow> {
  const { rows } = await ctx.pool.query<LinkRequestRow>(
    `UPDATE link_requests SET used_at = $3
      WHERE ${column} = $1 AND platform = $2 AND used_at IS NULL AND expires_at > $3
      RETURNING workspace_id, member_id, platform, chat, verifier`,
    [hash(value), platform, new Date(ctx.now())],
  );
  const row = rows[0];
  if (!row) throw new UserError(MESSAGES.linkStateInvalid());
  return row;
}

function tokenFailure(error: unknown, label: string): UserError {
  const payload = (error as { data?: { payload?: unknown } }).data?.payload;
  const body = payload && typeof payload === 'object' ? (payload as Record<string, unknown>) : {};
  // OAuth's `{error, error_description}`, or Meta Graph's `{error: {message}}`.
  const graph = body.error && typeof body.error === 'object' ? (body.error as Record<string, unknown>).message : undefined;
  const reason =
    typeof body.error_description === 'string' ? body.error_description
    : typeof body.error === 'string' ? body.error
    : typeof graph === 'string' ? graph
    : error instanceof Error ? error.message : String(error);
  return new UserError(MESSAGES.linkExchangeFailed(label, reason));
}

/** `/oauth/<platform>/callback`: the code becomes an account. */
export async function completeOAuth(ctx: Context, platform: PlatformId, query: { code?: string | null; state?: string | null; error?: string | null }): Promise<Linked> {
  const spec: OAuthPlatform | undefined = OAUTH_PLATFORMS[platform];
  const label = PLATFORM_SPECS[platform].label;
  if (!spec || !query.state) throw new UserError(MESSAGES.linkStateInvalid());
  const request = await consume(ctx, 'state_hash', query.state, platform);
  if (query.error || !query.code) throw new UserError(MESSAGES.linkDenied(label, query.error ?? 'no code'));
  const verifier = request.verifier ? String(ctx.secrets.open(request.verifier)) : null;
  let token: TokenResponse;
  try {
    const got = await oauthClient(spec, ctx.config).getToken({ code: query.code, redirect_uri: redirectUri(ctx, platform), ...(verifier ? { code_verifier: verifier } : {}) });
    token = got.token as unknown as TokenResponse;
  } catch (error) {
    throw tokenFailure(error, label);
  }
  if (spec.longLived) {
    try {
      token = await spec.longLived(token, ctx.config, ctx.fetch);
    } catch (error) {
      throw tokenFailure(error, label);
    }
  }
  if (typeof token.access_token !== 'string') throw new UserError(MESSAGES.linkExchangeFailed(label, 'no access token in the answer'));
  const missing = missingScopes(spec, token);
  if (missing.length > 0) throw new UserError(MESSAGES.linkMissingScopes(label, missing));
  let identities: readonly Identity[];
  try {
    const found = await spec.identify(token.access_token, token, ctx.config, ctx.fetch, ctx.now());
    identities = Array.isArray(found) ? found : [found as Identity];
  } catch (error) {
    if (error instanceof LinkProblem) throw new UserError(MESSAGES[error.key]());
    throw new UserError(MESSAGES.linkProfileFailed(label));
  }
  const accounts: AccountRow[] = [];
  for (const identity of identities) {
    const { credentials, expiresAt } = credentialsFrom(token, identity, ctx.now());
    const account = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: request.workspace_id, platform, handle: identity.handle, remoteId: identity.remoteId, credentials, expiresAt });
    await wakeWaiting(ctx, account.id);
    accounts.push(account);
  }
  const [account, ...also] = accounts as [AccountRow, ...AccountRow[]];
  return { account, also, workspaceId: request.workspace_id, memberId: request.member_id, chat: request.chat };
}

/** Deliveries that were waiting for this account to be re-linked go now, not at their next check. */
export async function wakeWaiting(ctx: Context, accountId: string): Promise<void> {
  const { rows } = await ctx.pool.query<{ id: string }>(`SELECT id FROM deliveries WHERE account_id = $1 AND state = 'scheduled' AND error_code = 'auth'`, [accountId]);
  for (const row of rows) {
    await withTransaction(ctx.pool, async (tx) => setJob(tx, row.id, await sendPublish(ctx.boss, { deliveryId: row.id }, new Date(ctx.now()), tx)));
  }
}

/** The Bluesky form: the login is checked first, so a typo does not burn the link. */
export async function completeBluesky(
  ctx: Context,
  token: string,
  login: () => Promise<{ handle: string; did: string; credentials: Credentials; expiresAt: Date | null }>,
): Promise<Linked> {
  const { rows } = await ctx.pool.query<{ n: number }>(
    `SELECT 1 AS n FROM link_requests WHERE token_hash = $1 AND platform = 'bluesky' AND used_at IS NULL AND expires_at > $2`,
    [hash(token), new Date(ctx.now())],
  );
  if (rows.length === 0) throw new UserError(MESSAGES.linkExpired());
  const result = await login();
  const request = await consume(ctx, 'token_hash', token, 'bluesky');
  const account = await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: request.workspace_id, platform: 'bluesky', handle: result.handle, remoteId: result.did, credentials: result.credentials, expiresAt: result.expiresAt });
  await wakeWaiting(ctx, account.id);
  return { account, workspaceId: request.workspace_id, memberId: request.member_id, chat: request.chat };
}

/** Best effort: tells the platform to forget the token where it offers revocation. */
export async function revokeAccount(ctx: Context, account: AccountRow): Promise<boolean> {
  const spec = OAUTH_PLATFORMS[account.platform];
  if (!spec?.revokeUrl || !ctx.config.platforms[account.platform].client) return false;
  try {
    const credentials = await readCredentials(ctx.pool, ctx.secrets, account.id);
    const client = oauthClient(spec, ctx.config);
    await client.createToken({ access_token: String(credentials.accessToken ?? '') }).revoke('access_token');
    return true;
  } catch (error) {
    ctx.log.warn({ component: 'linking', platform: account.platform, err: error instanceof Error ? error.message : String(error) }, 'revocation failed; the account is unlinked anyway');
    return false;
  }
}

/**
 * `/unlink PLATFORM[:handle]` and `reelay accounts remove`: the one live account it names in the
 * workspace is revoked with the platform (where it offers that) and disabled; its posts stay.
 */
export async function unlinkAccount(ctx: Context, workspaceId: string, platform: PlatformId, handle: string | null): Promise<AccountRow> {
  const label = PLATFORM_SPECS[platform].label;
  const matches = (await listAccounts(ctx.pool, workspaceId)).filter(
    (a) => a.state !== 'disabled' && a.platform === platform && (handle === null || a.handle.toLowerCase() === handle.toLowerCase()),
  );
  if (matches.length === 0) throw new UserError(MESSAGES.noAccount(label, workspaceId, handle ?? undefined));
  if (matches.length > 1) throw new UserError(MESSAGES.unlinkWhich(label, matches.map((a) => a.handle)));
  const account = matches[0]!;
  await revokeAccount(ctx, account);
  await setAccountState(ctx.pool, account.id, 'disabled', null);
  return account;
}

/** Text that looks like a Bluesky app password (xxxx-xxxx-xxxx-xxxx). */
export function looksLikeAppPassword(text: string): boolean {
  return /(^|[^a-z0-9])[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}($|[^a-z0-9-])/i.test(text);
}
