/** `reelay accounts add|list|link|remove`. */
import { listAccounts, upsertAccount } from '../core/accounts.ts';
import { createLinkRequest, linkLabel, unlinkAccount } from '../core/linking.ts';
import { PLATFORM_IDS, PLATFORM_SPECS, type PlatformId } from '../core/platforms.ts';
import { parseTargets } from '../core/targets.ts';
import type { Context } from '../core/context.ts';
import { MESSAGES, PublishError, UserError } from '../core/errors.ts';
import { ensureWorkspace } from '../core/workspaces.ts';
import { blueskyLogin } from '../worker/platforms/bluesky.ts';
import { platformDeps } from '../worker/publish.ts';
import type { CommandIo } from './posts.ts';

export interface AddBlueskyOptions {
  handle: string;
  appPassword: string;
  service?: string;
  workspace: string;
}

export async function addBluesky(ctx: Context, options: AddBlueskyOptions, io: CommandIo): Promise<number> {
  const service = options.service ?? ctx.config.platforms.bluesky.urls.service ?? 'https://bsky.social';
  const deps = platformDeps(ctx, 'bluesky', ctx.log.child({ component: 'accounts' }), AbortSignal.timeout(30_000));
  let login: Awaited<ReturnType<typeof blueskyLogin>>;
  try {
    login = await blueskyLogin({ identifier: options.handle.replace(/^@/, ''), appPassword: options.appPassword, service }, deps);
  } catch (error) {
    if (error instanceof PublishError && error.code === 'auth') throw new UserError(MESSAGES.accountAuthFailed('Bluesky', options.handle));
    if (error instanceof PublishError) throw new UserError(MESSAGES.accountUnreachable('Bluesky', service));
    throw error;
  }
  await ensureWorkspace(ctx.pool, options.workspace, ctx.config.defaults.timeZone);
  const account = await upsertAccount(ctx.pool, ctx.secrets, {
    workspaceId: options.workspace,
    platform: 'bluesky',
    handle: login.handle,
    remoteId: login.did,
    credentials: login.credentials,
    expiresAt: login.expiresAt,
  });
  io.out(`Linked Bluesky @${account.handle} (${login.did}) in workspace ${options.workspace}.`);
  return 0;
}

export async function accountsList(ctx: Context, options: { workspace: string; json?: boolean }, io: CommandIo): Promise<number> {
  const accounts = await listAccounts(ctx.pool, options.workspace);
  if (options.json) {
    io.out(JSON.stringify(accounts.map((a) => ({ id: a.id, platform: a.platform, handle: a.handle, state: a.state, remoteId: a.remote_id }))));
  } else if (accounts.length === 0) {
    io.out(`No accounts linked in workspace ${options.workspace}. Add one: reelay accounts add bluesky --handle H --app-password P`);
  } else {
    io.out(accounts.map((a) => `${a.platform.padEnd(10)} @${a.handle.padEnd(30)} ${a.state}${a.last_error ? ` — ${a.last_error}` : ''}`).join('\n'));
  }
  return 0;
}

function oneTarget(text: string): { platform: PlatformId; handle: string | null } {
  const parsed = parseTargets(text.trim());
  const target = parsed.ok && parsed.targets.length === 1 ? parsed.targets[0] : undefined;
  if (!target) throw new UserError(MESSAGES.unknownPlatform(text, PLATFORM_IDS));
  return target;
}

/** `reelay accounts link PLATFORM`: the same one-time link /link sends, for the browser. */
export async function accountsLink(ctx: Context, platformName: string, options: { workspace: string; via?: string }, io: CommandIo): Promise<number> {
  const { platform } = oneTarget(platformName);
  const via = options.via === undefined ? null : oneTarget(options.via).platform;
  await ensureWorkspace(ctx.pool, options.workspace, ctx.config.defaults.timeZone);
  const link = await createLinkRequest(ctx, { workspaceId: options.workspace, memberId: 'cli', platform, via, chat: null });
  io.out(MESSAGES.linkPrivateText(linkLabel(platform, via), link.url, options.workspace));
  io.out(MESSAGES.cliLinkOpen());
  return 0;
}

/** `reelay accounts remove PLATFORM[:handle]`: unlinks as /unlink does (revoked where possible, history kept). */
export async function accountsRemove(ctx: Context, targetText: string, options: { workspace: string }, io: CommandIo): Promise<number> {
  const target = oneTarget(targetText);
  const account = await unlinkAccount(ctx, options.workspace, target.platform, target.handle);
  io.out(MESSAGES.unlinked(PLATFORM_SPECS[target.platform].label, account.handle));
  return 0;
}
