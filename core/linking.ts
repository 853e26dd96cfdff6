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
import { credentialsFrom, LinkProblem, missingScopes, OAUTH_PLATFORMS, OAUTH_VARIANTS, oauthClient, oauthSpec, type Identity, type OAuthPlatform, type TokenResponse } from './oauth.ts';
import { PLATFORM_SPECS, type Credentials, type PlatformId } from './platforms.ts';

export const LINK_TTL_MS = 10 * 60_000;

const hash = (value: string): string => createHash('sha256').update(value).digest('base64url');

export interface LinkRequestRow {
  workspace_id: string;
  member_id: string;
  platform: PlatformId;
  /** Linked through this platform's sign-in (Instagram through Facebook Login); null: its own. */
  via: PlatformId | null;
  chat: string | null;
  verifier: Buffer | null;
}

/** Whether Reelay can link this platform from chat (an OAuth client, or Bluesky's form). */
export function linkable(ctx: Context, platform: PlatformId, via: PlatformId | null = null): boolean {
  if (platform === 'bluesky' && via === null) return true;
  const spec = oauthSpec(platform, via);
  return spec !== undefined && ctx.config.platforms[spec.app ?? spec.id].client !== null;
}

/** How linking messages name the platform: "Instagram", or "Instagram (through Facebook)". */
export function linkLabel(platform: PlatformId, via: PlatformId | null): string {
  const label = PLATFORM_SPECS[platform].label;
  return via === null ? label : MESSAGES.linkViaLabel(label, PLATFORM_SPECS[via].label);
}

/** The sign-in an account was linked with (for re-linking it the same way): null for the platform's own. */
export function linkedVia(platform: PlatformId, credentials: Credentials): PlatformId | null {
  for (const [via, spec] of Object.entries(OAUTH_VARIANTS[platform] ?? {}) as Array<[PlatformId, OAuthPlatform]>) {
    if (spec.linkedWith?.(credentials)) return via;
  }
  return null;
}

/**
 * The command that re-links an account the way it was linked (`/link instagram via facebook` for
 * an Instagram account from Facebook Login); credentials that cannot be opened name the platform's own.
 */
export async function relinkCommand(ctx: Context, account: { id: string; platform: PlatformId }): Promise<string> {
  const credentials = await readCredentials(ctx.pool, ctx.secrets, account.id).catch(() => ({}));
  return MESSAGES.linkCommand(account.platform, linkedVia(account.platform, credentials));
}

export function redirectUri(ctx: Context, platform: PlatformId): string {
  return `${ctx.config.http.publicBaseUrl!.replace(/\/+$/, '')}/oauth/${platform}/callback`;
}

/** The one-time link for `/link PLATFORM`; refused with the reason when linking cannot work. */
export async function createLinkRequest(
  ctx: Context,
  request: { workspaceId: string; memberId: string; platform: PlatformId; via?: PlatformId | null; chat: string | null },
): Promise<{ url: string; expiresAt: Date }> {
  const via = request.via ?? null;
  const label = PLATFORM_SPECS[request.platform].label;
  if (!ctx.config.http.publicBaseUrl) throw new UserError(MESSAGES.linkNeedsPublicUrl());
  if (via !== null && !oauthSpec(request.platform, via)) throw new UserError(MESSAGES.linkViaUnsupported(label, PLATFORM_SPECS[via].label, request.platform));
  if (request.platform !== 'bluesky' && !OAUTH_PLATFORMS[request.platform]) throw new UserError(MESSAGES.linkNotSupported(label, request.platform, request.workspaceId));
  if (!linkable(ctx, request.platform, via)) throw new UserError(MESSAGES.linkNoClient(via === null ? label : PLATFORM_SPECS[via].label));
  const token = randomBytes(24).toString('base64url');
  const expiresAt = new Date(ctx.now() + LINK_TTL_MS);
  await ctx.pool.query(
    `INSERT INTO link_requests (token_hash, workspace_id, member_id, platform, via, chat, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [hash(token), request.workspaceId, request.memberId, request.platform, via, request.chat, expiresAt],
  );
  return { url: `${ctx.config.http.publicBaseUrl.replace(/\/+$/, '')}/link/${token}`, expiresAt };
}

/** What a one-time link shows: the Bluesky form (not yet consumed), or where to send the browser. */
export async function openLink(ctx: Context, token: string): Promise<{ kind: 'form'; platform: 'bluesky' } | { kind: 'redirect'; url: string }> {
  const { rows } = await ctx.pool.query<{ platform: PlatformId; via: PlatformId | null }>(
    `SELECT platform, via FROM link_requests WHERE token_hash = $1 AND used_at IS NULL AND opened_at IS NULL AND expires_at > $2`,
    [hash(token), new Date(ctx.now())],
  );
  const platform = rows[0]?.platform;
  const via = rows[0]?.via ?? null;
  if (!platform) throw new UserError(MESSAGES.linkExpired());
  if (platform === 'bluesky' && via === null) return { kind: 'form', platform };
  const spec = oauthSpec(platform, via);
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
    // The sign-in's own callback: Facebook sends the browser back where Facebook Login is registered.
    redirect_uri: redirectUri(ctx, via ?? platform),
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

/**
 * Consumes a state (or a Bluesky link token): single use, unexpired, for this sign-in (the
 * platform whose callback it reached: `via` when the request links through another's login).
 */
async function consume(ctx: Context, column: 'state_hash' | 'token_hash', value: string, signIn: PlatformId): Promise<LinkRequestRow> {
  const { rows } = await ctx.pool.query<LinkRequestRow>(
    `UPDATE link_requests SET used_at = $3
      WHERE ${column} = $1 AND COALESCE(via, platform) = $2 AND used_at IS NULL AND expires_at > $3
      RETURNING workspace_id, member_id, platform, via, chat, verifier`,
    [hash(value), signIn, new Date(ctx.now())],
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

/**
 * `/oauth/<sign-in>/callback`: the code becomes an account. The state row says which platform the
 * account is for, so Facebook's callback can finish an Instagram link made through Facebook Login.
 */
export async function completeOAuth(ctx: Context, signIn: PlatformId, query: { code?: string | null; state?: string | null; error?: string | null }): Promise<Linked> {
  if (!OAUTH_PLATFORMS[signIn] || !query.state) throw new UserError(MESSAGES.linkStateInvalid());
  const request = await consume(ctx, 'state_hash', query.state, signIn);
  const platform = request.platform;
  const spec: OAuthPlatform | undefined = oauthSpec(platform, request.via);
  const label = linkLabel(platform, request.via);
  if (!spec) throw new UserError(MESSAGES.linkStateInvalid());
  if (query.error || !query.code) throw new UserError(MESSAGES.linkDenied(label, query.error ?? 'no code'));
  const verifier = request.verifier ? String(ctx.secrets.open(request.verifier)) : null;
  let token: TokenResponse;
  try {
    const got = await oauthClient(spec, ctx.config).getToken({ code: query.code, redirect_uri: redirectUri(ctx, signIn), ...(verifier ? { code_verifier: verifier } : {}) });
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
