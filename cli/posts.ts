/** `reelay post` and `reelay posts ...`: submit, wait, list, show, cancel, retry. */
import type { Context } from '../core/context.ts';
import { MESSAGES, UserError } from '../core/errors.ts';
import { submitPost } from '../core/intake.ts';
import { cancelPost, loadPost, retryPost } from '../core/post-actions.ts';
import { getPost, isTerminal, listDeliveries, listPosts, type PostWithDeliveries } from '../core/posts.ts';
import { parseTargets } from '../core/targets.ts';
import { isValidTimeZone } from '../core/schedule.ts';
import { liveWorkerCount } from '../core/workers.ts';
import { startWorker, type RunningWorker } from '../worker/main.ts';
import { postJson, postLine, postText } from './output.ts';

export interface PostOptions {
  to: string;
  at?: string;
  caption?: string;
  wait?: boolean;
  json?: boolean;
  workspace: string;
  tz?: string;
}

export interface CommandIo {
  out(text: string): void;
}

/** Exit code for a post: 1 when any delivery failed, else 0. */
/** Waiting for its account to be re-linked: only a person can move it on, so `--wait` stops there. */
function awaitingRelink(d: PostWithDeliveries['deliveries'][number]): boolean {
  return d.state === 'scheduled' && d.error_code === 'auth';
}

export function exitCodeFor(post: PostWithDeliveries): number {
  return post.media_state === 'failed' || post.deliveries.some((d) => d.state === 'failed' || d.state === 'unconfirmed' || awaitingRelink(d)) ? 1 : 0;
}

function done(post: PostWithDeliveries): boolean {
  return post.media_state === 'failed' || post.deliveries.every((d) => isTerminal(d.state) || awaitingRelink(d));
}

/**
 * Waits until every delivery is terminal or waits for a re-link. With no live worker anywhere, runs one in this process,
 * so `reelay post clip.mp4 --to bluesky --wait` is a complete one-shot command.
 */
export async function waitForPost(ctx: Context, postId: string, options: { pollMs?: number } = {}): Promise<PostWithDeliveries> {
  let worker: RunningWorker | undefined;
  if ((await liveWorkerCount(ctx.pool)) === 0) worker = await startWorker(ctx, { pollingIntervalSeconds: 0.5 });
  try {
    for (;;) {
      const post = await getPost(ctx.pool, postId);
      if (!post) throw new Error(`Post ${postId} vanished.`);
      const full = { ...post, deliveries: await listDeliveries(ctx.pool, postId) };
      if (done(full)) return full;
      await new Promise((r) => setTimeout(r, options.pollMs ?? 250));
    }
  } finally {
    await worker?.stop();
  }
}

export async function postCommand(ctx: Context, file: string, options: PostOptions, io: CommandIo): Promise<number> {
  const targets = parseTargets(options.to);
  if (!targets.ok) throw new UserError(targets.message);
  if (options.tz !== undefined && !isValidTimeZone(options.tz)) throw new UserError(MESSAGES.unknownTimezone(options.tz));
  const { post } = await submitPost(ctx, {
    workspaceId: options.workspace,
    authorId: 'cli',
    filePath: file,
    caption: options.caption ?? '',
    targets: targets.targets,
    allTargets: targets.all,
    ...(options.at !== undefined ? { when: options.at } : {}),
    ...(options.tz !== undefined ? { timeZone: options.tz } : {}),
    origin: { chat: 'cli' },
  });
  const final = options.wait ? await waitForPost(ctx, post.id) : post;
  io.out(options.json ? JSON.stringify(postJson(final)) : postText(final));
  return options.wait ? exitCodeFor(final) : 0;
}

export async function postsList(ctx: Context, options: { workspace: string; json?: boolean }, io: CommandIo): Promise<number> {
  const posts = await listPosts(ctx.pool, options.workspace);
  if (options.json) io.out(JSON.stringify(posts.map(postJson)));
  else io.out(posts.length === 0 ? `No posts in workspace ${options.workspace}.` : posts.map(postLine).join('\n'));
  return 0;
}

export async function postsShow(ctx: Context, id: string, options: { workspace: string; json?: boolean }, io: CommandIo): Promise<number> {
  const post = await loadPost(ctx, options.workspace, id);
  io.out(options.json ? JSON.stringify(postJson(post)) : postText(post));
  return 0;
}

export async function postsCancel(ctx: Context, id: string, options: { workspace: string; json?: boolean }, io: CommandIo): Promise<number> {
  const after = await cancelPost(ctx, await loadPost(ctx, options.workspace, id));
  io.out(options.json ? JSON.stringify(postJson(after)) : postText(after));
  return 0;
}

/** Failed deliveries back on the schedule; see retryPost for why this cannot post twice. */
export async function postsRetry(ctx: Context, id: string, options: { workspace: string; json?: boolean; wait?: boolean }, io: CommandIo): Promise<number> {
  const retried = await retryPost(ctx, await loadPost(ctx, options.workspace, id));
  const after = options.wait ? await waitForPost(ctx, retried.id) : retried;
  io.out(options.json ? JSON.stringify(postJson(after)) : postText(after));
  return options.wait ? exitCodeFor(after) : 0;
}
