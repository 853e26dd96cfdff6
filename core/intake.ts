/**
 * The chat-neutral intake: everything a request is checked against happens before the first write,
 * then the media, the post, its deliveries and the transcode job are written in one transaction.
 * A refused request leaves nothing behind.
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { listAccounts, readCredentials, type AccountRow } from './accounts.ts';
import { captionProblem } from './captions.ts';
import type { Context } from './context.ts';
import { withTransaction } from './db.ts';
import { MESSAGES, UserError } from './errors.ts';
import { probe, ProbeError, type ProbeResult } from './ffmpeg.ts';
import { sendTranscode } from './jobs.ts';
import { importFile, insertMedia } from './media.ts';
import { needsPublicUrl, PLATFORM_SPECS, type PlatformId } from './platforms.ts';
import { insertPost, listDeliveries, type PostWithDeliveries } from './posts.ts';
import { parseWhen } from './schedule.ts';
import { describeProbeFailure, inputProblem, profileProblem } from './video.ts';
import { ensureMember, ensureWorkspace, getWorkspace } from './workspaces.ts';

export interface Target {
  platform: PlatformId;
  handle: string | null;
}

export interface IntakeRequest {
  workspaceId: string;
  authorId: string;
  filePath: string;
  /** The name people know the file by (the chat attachment's name), for messages. */
  filename?: string;
  caption: string;
  targets: Target[];
  /** All linked accounts when true (the `all` target). */
  allTargets?: boolean;
  when?: string;
  /** An exact time instead of `when` (the parts of a split video). */
  at?: Date;
  timeZone?: string;
  origin?: Record<string, unknown>;
  /** The workspace wants an approver's yes before anything is published. */
  requireApproval?: boolean;
  part?: { index: number; count: number };
}

export interface Intake {
  post: PostWithDeliveries;
  probe: ProbeResult;
}

export interface Chosen {
  account: AccountRow;
  options: Record<string, unknown>;
}

/** Facebook Pages are named, not handled ("Casey Cooks"): `facebook:caseycooks` must find them. */
const handleKey = (handle: string): string => handle.toLowerCase().replace(/[\s@]+/g, '');
const sameHandle = (a: string, b: string): boolean => handleKey(a) === handleKey(b);

/**
 * Targets to accounts. `pinterest:<board>` names a board rather than an account when no Pinterest
 * account has that handle and exactly one is linked: a workspace pins to one account's boards.
 */
function resolveAccounts(accounts: AccountRow[], request: Omit<IntakeRequest, 'filePath'>): Chosen[] {
  const live = accounts.filter((a) => a.state !== 'disabled');
  if (request.allTargets) {
    if (live.length === 0) throw new UserError(MESSAGES.noAccount('any platform', request.workspaceId));
    return live.map((account) => ({ account, options: {} }));
  }
  if (request.targets.length === 0) throw new UserError(MESSAGES.noTargets());
  const chosen = new Map<string, Chosen>();
  for (const target of request.targets) {
    const label = PLATFORM_SPECS[target.platform].label;
    const ofPlatform = live.filter((a) => a.platform === target.platform);
    const matches = ofPlatform.filter((a) => target.handle === null || sameHandle(a.handle, target.handle));
    if (matches.length === 0 && target.platform === 'pinterest' && target.handle !== null && ofPlatform.length === 1) {
      chosen.set(ofPlatform[0]!.id, { account: ofPlatform[0]!, options: { board: target.handle } });
      continue;
    }
    if (matches.length === 0) throw new UserError(MESSAGES.noAccount(label, request.workspaceId, target.handle ?? undefined));
    for (const account of matches) chosen.set(account.id, { account, options: chosen.get(account.id)?.options ?? {} });
  }
  return [...chosen.values()];
}

async function probeInput(ctx: Context, path: string, name: string): Promise<ProbeResult> {
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new UserError(MESSAGES.fileNotFound(path));
    size = info.size;
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(MESSAGES.fileNotFound(path));
  }
  if (size === 0) throw new UserError(MESSAGES.fileEmpty(name));
  let result: ProbeResult;
  try {
    result = await probe(path, { ffprobePath: ctx.config.media.ffprobePath });
  } catch (error) {
    if (error instanceof ProbeError) throw new UserError(describeProbeFailure(error, name, size));
    throw error;
  }
  const problem = inputProblem(result, name);
  if (problem) throw new UserError(problem);
  return result;
}

export interface IntakePlan {
  scheduledAt: Date;
  timeZone: string;
  chosen: Chosen[];
}

/**
 * Every check that needs no file: the time, the accounts, public links, caption limits. Chats run
 * it before downloading anything, so a bad request is refused before a byte moves.
 */
export async function planIntake(ctx: Context, request: Omit<IntakeRequest, 'filePath'>): Promise<IntakePlan> {
  const workspace = await getWorkspace(ctx.pool, request.workspaceId);
  const timeZone = request.timeZone ?? workspace?.time_zone ?? ctx.config.defaults.timeZone;
  const now = new Date(ctx.now());

  let scheduledAt = request.at ?? now;
  if (request.when !== undefined && request.at === undefined) {
    const when = parseWhen(request.when, { timeZone, now });
    if (!when.ok) throw new UserError(when.message);
    scheduledAt = when.at;
  }

  const chosen = resolveAccounts(await listAccounts(ctx.pool, request.workspaceId), request);
  const accounts = chosen.map((c) => c.account);
  for (const account of accounts) {
    const spec = PLATFORM_SPECS[account.platform];
    if (ctx.config.http.publicBaseUrl || !('needsPublicUrl' in spec && spec.needsPublicUrl)) continue;
    // Only Instagram's answer depends on the account (its login type), so only it is decrypted.
    const credentials = account.platform === 'instagram' ? await readCredentials(ctx.pool, ctx.secrets, account.id) : {};
    if (needsPublicUrl(spec, credentials)) throw new UserError(MESSAGES.needsPublicUrl(spec.label));
  }
  for (const account of accounts) {
    const problem = captionProblem(request.caption, PLATFORM_SPECS[account.platform]);
    if (problem) throw new UserError(problem);
  }
  return { scheduledAt, timeZone, chosen };
}

export async function submitPost(ctx: Context, request: IntakeRequest): Promise<Intake> {
  const name = request.filename ?? basename(request.filePath);
  const { scheduledAt, timeZone, chosen } = await planIntake(ctx, request);
  const accounts = chosen.map((c) => c.account);

  const probed = await probeInput(ctx, request.filePath, name);
  for (const account of accounts) {
    const spec = PLATFORM_SPECS[account.platform];
    const problem = profileProblem(probed, spec.video, spec.label);
    if (problem) throw new UserError(problem);
  }

  const created = await withTransaction(ctx.pool, async (tx) => {
    await ensureWorkspace(tx, request.workspaceId, ctx.config.defaults.timeZone);
    await ensureMember(tx, request.workspaceId, request.authorId);
    const stored = await importFile(tx, request.filePath);
    const media = await insertMedia(tx, { workspaceId: request.workspaceId, filename: name, contentType: 'video/mp4', probe: probed, stored });
    const { post } = await insertPost(tx, {
      workspaceId: request.workspaceId,
      authorId: request.authorId,
      caption: request.caption,
      mediaId: media.id,
      scheduledAt,
      timeZone,
      origin: request.origin ?? {},
      ...(request.part ? { part: request.part } : {}),
      targets: chosen.map(({ account: a, options }) => ({ accountId: a.id, platform: a.platform, profileKey: PLATFORM_SPECS[a.platform].video.key, caption: null, options })),
      initialState: request.requireApproval ? 'awaiting_approval' : 'scheduled',
    });
    await sendTranscode(ctx.boss, { postId: post.id }, tx);
    return post;
  });
  ctx.log.info({ component: 'intake', postId: created.id, workspaceId: request.workspaceId, targets: accounts.length }, 'post accepted');
  return { post: { ...created, deliveries: await listDeliveries(ctx.pool, created.id) }, probe: probed };
}
