/**
 * The chat-neutral conversation: what a request, a command, a reaction or a button press does,
 * whichever chat it came from. Front ends (bot/telegram.ts, bot/discord.ts) only translate their
 * updates into these calls and hand over an outbox to answer through.
 *
 * A request is answered at once ("received"); the download, the split and the intake run in the
 * background, editing the same status message, so a slow download never holds up other updates.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getAccount, listAccounts, readCredentials } from '../accounts.ts';
import type { Context } from '../context.ts';
import { withTransaction } from '../db.ts';
import { MESSAGES, UserError } from '../errors.ts';
import { probe } from '../ffmpeg.ts';
import { planIntake, submitPost, type IntakeRequest } from '../intake.ts';
import { createLinkRequest, linkedVia, linkLabel, looksLikeAppPassword, unlinkAccount } from '../linking.ts';
import { PLATFORM_IDS, PLATFORM_SPECS, type PlatformId } from '../platforms.ts';
import { cancelPost, editCaption, loadPost, markPublishedByHand, releasePost, rejectPost, reschedulePost, retryPost } from '../post-actions.ts';
import { getDelivery, getPost, listDeliveries, listUpcoming, type PostWithDeliveries } from '../posts.ts';
import { formatInZone, isValidTimeZone } from '../schedule.ts';
import { parseTargets } from '../targets.ts';
import { partCaption, splitVideo } from '../split.ts';
import { extractFrame } from '../video.ts';
import { ensureWorkspace, getWorkspace, setMemberRole, setMemberTimeZone, touchMember, type MemberRow } from '../workspaces.ts';
import { getRendition, renditionOpener } from '../media.ts';
import { parseLinkArgs, parseRequest, type ParsedRequest } from './grammar.ts';
import { statusButtons, type ChatNotifier } from './notifier.ts';
import { ALERTS_REQUEST_TTL_MS, decideAlertsRequest, dropAlertsRequest, findOpenAlertsRequest, openAlertsRequest, pendingAlertsRequest, withdrawAlertsRequests } from './alerts-requests.ts';
import { button, parseButton, parseChatAddress, type ChatButton, type ChatOutbox } from './outbox.ts';
import { findChatMessage, recordApproval, recordChatMessage, type ChatName } from './records.ts';
import { readSettings, updateSettings, type WorkspaceSettings } from './settings.ts';
import { renderStatus, shortId } from './status.ts';

export interface ChatMember {
  id: string;
  name: string;
  /** Telegram chat administrator / Discord Manage Server (or a private chat's only person). */
  chatAdmin: boolean;
  /** Discord role ids. */
  roles?: readonly string[];
}

export interface ChatPlace {
  chat: ChatName;
  chatId: string;
  workspaceId: string;
  /** The message being answered. */
  messageId: string;
}

/** A video the front end can fetch into a file (a chat attachment or a pasted link). */
export interface IncomingMedia {
  name: string;
  size: number | null;
  fetch(path: string, onProgress: (fraction: number) => void): Promise<void>;
}

export interface ChatReply {
  text: string;
  buttons?: ChatButton[][];
  /**
   * For the asker's eyes only (a one-time link): a Telegram private chat, a Discord ephemeral
   * reply. `publicText` is what the chat sees instead.
   */
  private?: { publicText: string; label: string };
}

export interface ChatServiceDeps {
  ctx: Context;
  outbox: ChatOutbox;
  notifier: ChatNotifier;
  /** A pasted link as media; the front end supplies the safe fetcher (core/fetch-link.ts). */
  mediaFromLink?: (url: string) => IncomingMedia;
}

export const COMMAND_NAMES = ['start', 'help', 'post', 'schedule', 'queue', 'status', 'cancel', 'retry', 'reschedule', 'edit', 'accounts', 'link', 'unlink', 'timezone', 'settings'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

const APPROVE_EMOJI = new Set(['👍', '✅', '✔️', '✔']);
const REJECT_EMOJI = new Set(['👎', '❌']);
const LINK = /\bhttps?:\/\/[^\s<>"]+/i;

/** `/cmd@bot args` -> the command and its argument text; null for anything else. */
export function splitCommand(text: string, botUsername?: string): { name: CommandName; args: string } | null {
  const match = /^\/([a-z]+)(?:@(\S+))?(?:[ \t]+|$)([\s\S]*)$/i.exec(text.trim());
  if (!match) return null;
  if (match[2] && botUsername && match[2].toLowerCase() !== botUsername.toLowerCase()) return null;
  const name = match[1]!.toLowerCase();
  return (COMMAND_NAMES as readonly string[]).includes(name) ? { name: name as CommandName, args: match[3] ?? '' } : null;
}

export class ChatService {
  readonly #deps: ChatServiceDeps;
  readonly #tasks = new Set<Promise<void>>();

  constructor(deps: ChatServiceDeps) {
    this.#deps = deps;
  }

  get #ctx(): Context {
    return this.#deps.ctx;
  }

  /** Resolves when every background intake has finished (tests, graceful stop). */
  async idle(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  async #member(place: ChatPlace, member: ChatMember): Promise<MemberRow> {
    await ensureWorkspace(this.#ctx.pool, place.workspaceId, this.#ctx.config.defaults.timeZone);
    return touchMember(this.#ctx.pool, place.workspaceId, member.id, member.name);
  }

  async #timeZone(place: ChatPlace, row: MemberRow): Promise<string> {
    return row.time_zone ?? (await getWorkspace(this.#ctx.pool, place.workspaceId))?.time_zone ?? this.#ctx.config.defaults.timeZone;
  }

  async #reply(place: ChatPlace, reply: ChatReply): Promise<string> {
    return this.#deps.outbox.send(place.chatId, { text: reply.text, replyTo: place.messageId, ...(reply.buttons ? { buttons: reply.buttons } : {}) });
  }

  /**
   * A message that looks like it holds an app password is deleted where the bot may, with a
   * warning either way. True when the message was one (the caller does nothing else with it).
   */
  async screen(place: ChatPlace, text: string): Promise<boolean> {
    if (!looksLikeAppPassword(text)) return false;
    const removed = await this.#deps.outbox.remove(place.chatId, place.messageId);
    await this.#deps.outbox.send(place.chatId, { text: removed ? MESSAGES.appPasswordPasted() : MESSAGES.appPasswordPastedNotDeleted() });
    this.#ctx.log.warn({ component: 'chat', chat: place.chat, removed }, 'a message that looked like an app password was screened');
    return true;
  }

  /** Remembers a video sent without a command, so a later `/post` sent as a reply to it can use it. */
  async rememberVideo(place: ChatPlace, data: Record<string, unknown>): Promise<void> {
    await ensureWorkspace(this.#ctx.pool, place.workspaceId, this.#ctx.config.defaults.timeZone);
    await recordChatMessage(this.#ctx.pool, { chat: place.chat, chatId: place.chatId, messageId: place.messageId, workspaceId: place.workspaceId, kind: 'video', data });
  }

  async rememberedVideo(place: ChatPlace, messageId: string): Promise<Record<string, unknown> | null> {
    const row = await findChatMessage(this.#ctx.pool, place.chat, place.chatId, messageId);
    return row?.kind === 'video' && row.workspace_id === place.workspaceId ? row.data : null;
  }

  /**
   * A `/post` or `/schedule` request. Everything that can be checked without the file is checked
   * first; then "received" goes out and the rest runs in the background.
   */
  async request(place: ChatPlace, member: ChatMember, text: string, media: IncomingMedia | null, options: { botUsername?: string } = {}): Promise<void> {
    const parsed = parseRequest(text, options);
    if (!parsed.ok) {
      if ('message' in parsed) await this.#reply(place, { text: parsed.message });
      return;
    }
    const request = parsed.request;
    try {
      const row = await this.#member(place, member);
      const settings = await readSettings(this.#ctx.pool, place.workspaceId);
      if (settings.posterRole && !member.chatAdmin && !(member.roles ?? []).includes(settings.posterRole)) throw new UserError(MESSAGES.chatNotAllowedToPost());
      let source = media;
      if (!source) {
        const link = LINK.exec(request.caption)?.[0];
        if (link && this.#deps.mediaFromLink) {
          source = this.#deps.mediaFromLink(link);
          request.caption = request.caption.replace(link, '').trim();
        }
      }
      const intake = await this.#intakeRequest(place, member, row, settings, request);
      await planIntake(this.#ctx, intake);
      if (!source) throw new UserError(MESSAGES.chatNoVideo());
      const statusId = await this.#reply(place, { text: MESSAGES.chatReceived(source.name) });
      const task = this.#background(place, member, intake, settings, request, source, statusId).finally(() => this.#tasks.delete(task));
      this.#tasks.add(task);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      await this.#reply(place, { text: error.message });
    }
  }

  async #intakeRequest(place: ChatPlace, member: ChatMember, row: MemberRow, settings: WorkspaceSettings, request: ParsedRequest): Promise<Omit<IntakeRequest, 'filePath'>> {
    let targets = request.targets;
    let allTargets = request.allTargets;
    if (targets.length === 0 && !allTargets) {
      const fallback = settings.defaultTargets ? parseTargets(settings.defaultTargets) : null;
      if (fallback?.ok) {
        targets = fallback.targets;
        allTargets = fallback.all;
      } else allTargets = true;
    }
    return {
      workspaceId: place.workspaceId,
      authorId: member.id,
      caption: request.caption,
      targets,
      allTargets,
      ...(request.when !== null ? { when: request.when } : {}),
      timeZone: await this.#timeZone(place, row),
      origin: { chat: place.chat, chatId: place.chatId, messageId: place.messageId },
      requireApproval: settings.approval.required,
    };
  }

  async #background(
    place: ChatPlace,
    member: ChatMember,
    intake: Omit<IntakeRequest, 'filePath'>,
    settings: WorkspaceSettings,
    request: ParsedRequest,
    source: IncomingMedia,
    statusId: string,
  ): Promise<void> {
    const { ctx, outbox, notifier } = this.#deps;
    const dir = await mkdtemp(join(tmpdir(), 'reelay-chat-'));
    const key = { chat: place.chat, chatId: place.chatId, messageId: statusId };
    await recordChatMessage(ctx.pool, { ...key, workspaceId: place.workspaceId, kind: 'status' });
    const status = (text: string) => {
      notifier.edit(key, { text }, { postId: null }).catch((error: unknown) => ctx.log.warn({ component: 'chat', err: error }, 'status edit failed'));
    };
    try {
      const file = join(dir, 'video');
      await source.fetch(file, (fraction) => status(MESSAGES.chatDownloading(source.name, Math.floor(fraction * 100))));
      const parts = await this.#parts(file, dir, intake, request.split || settings.split);
      const plan = await planIntake(ctx, intake);
      for (const [index, part] of parts.entries()) {
        const at = new Date(plan.scheduledAt.getTime() + index * settings.splitSpacingMinutes * 60_000);
        const messageId = index === 0 ? statusId : await outbox.send(place.chatId, { text: MESSAGES.chatReceived(source.name) });
        const { post } = await submitPost(ctx, {
          ...intake,
          filePath: part,
          filename: source.name,
          at,
          ...(parts.length > 1 ? { caption: partCaption(intake.caption, index + 1, parts.length), part: { index: index + 1, count: parts.length } } : {}),
          origin: { ...intake.origin, statusMessageId: messageId },
        });
        await recordChatMessage(ctx.pool, { chat: place.chat, chatId: place.chatId, messageId, workspaceId: place.workspaceId, kind: 'status', postId: post.id });
        if (post.deliveries.some((d) => d.state === 'awaiting_approval')) await this.#sendPreview(place, member, post, part, dir, settings);
        await notifier.refresh(post.id);
      }
    } catch (error) {
      const text = error instanceof UserError ? error.message : MESSAGES.chatIntakeFailed();
      if (!(error instanceof UserError)) ctx.log.error({ component: 'chat', err: error }, 'chat intake failed');
      await notifier.edit(key, { text }, { postId: null, waitForSlot: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The file itself, or its parts when split is on and it is longer than a target allows. */
  async #parts(file: string, dir: string, intake: Omit<IntakeRequest, 'filePath'>, split: boolean): Promise<string[]> {
    if (!split) return [file];
    const { ctx } = this.#deps;
    const plan = await planIntake(ctx, intake);
    const maxSeconds = Math.min(...plan.chosen.map((c) => PLATFORM_SPECS[c.account.platform].video.maxDurationSeconds));
    const probed = await probe(file, { ffprobePath: ctx.config.media.ffprobePath }).catch(() => null);
    if (!probed?.durationSeconds || probed.durationSeconds <= maxSeconds) return [file];
    const parts = await splitVideo(file, { maxSeconds, dir: join(dir, 'parts'), ffmpegPath: ctx.config.media.ffmpegPath, ffprobePath: ctx.config.media.ffprobePath });
    return parts.map((part) => part.path);
  }

  async #sendPreview(place: ChatPlace, member: ChatMember, post: PostWithDeliveries, file: string, dir: string, settings: WorkspaceSettings): Promise<void> {
    const { ctx, outbox } = this.#deps;
    const probed = await probe(file, { ffprobePath: ctx.config.media.ffprobePath }).catch(() => null);
    const photo = await extractFrame(file, join(dir, `preview-${post.id}.jpg`), probed?.durationSeconds ?? 0, { ffmpegPath: ctx.config.media.ffmpegPath }).catch(() => undefined);
    const targets = post.deliveries.map((d) => `${PLATFORM_SPECS[d.platform].label} @${d.handle}`).join(', ');
    const text = MESSAGES.approvalPreview(member.name, shortId(post.id), post.caption, targets, formatInZone(post.scheduled_at, post.time_zone), settings.approval.quorum);
    const messageId = await outbox.send(place.chatId, { text, buttons: [[button('Approve', 'approve', post.id), button('Reject', 'reject', post.id)]], ...(photo ? { photo } : {}) });
    await recordChatMessage(ctx.pool, { chat: place.chat, chatId: place.chatId, messageId, workspaceId: place.workspaceId, kind: 'preview', postId: post.id });
  }

  /**
   * Whether this chat may act on the workspace's posts: its own chat, or the chat set as the
   * workspace's alerts channel (in Telegram that is another chat, so another workspace id).
   */
  async #speaksFor(place: ChatPlace, workspaceId: string): Promise<boolean> {
    if (workspaceId === place.workspaceId) return true;
    const settings = await readSettings(this.#ctx.pool, workspaceId);
    return settings.alertsChat === `${place.chat}:${place.chatId}`;
  }

  #isApprover(member: ChatMember, row: MemberRow, settings: WorkspaceSettings): boolean {
    return (
      member.chatAdmin ||
      row.role === 'owner' ||
      row.role === 'admin' ||
      row.role === 'approver' ||
      settings.approval.approvers.includes(member.id) ||
      (settings.approverRole !== null && (member.roles ?? []).includes(settings.approverRole))
    );
  }

  #isAdmin(member: ChatMember, row: MemberRow): boolean {
    return member.chatAdmin || row.role === 'owner' || row.role === 'admin';
  }

  /** An approver's decision on a post; returns the words for the person who decided. */
  async decide(place: ChatPlace, member: ChatMember, postId: string, decision: 'approve' | 'reject'): Promise<string> {
    const { ctx, notifier } = this.#deps;
    const post = await getPost(ctx.pool, postId);
    if (!post || post.workspace_id !== place.workspaceId) return MESSAGES.postNotFound(shortId(postId));
    const row = await this.#member(place, member);
    const settings = await readSettings(ctx.pool, place.workspaceId);
    if (!this.#isApprover(member, row, settings)) {
      ctx.log.info({ component: 'chat', postId, member: member.id }, 'approval from a non-approver ignored');
      return MESSAGES.notAnApprover();
    }
    if (post.author_id === member.id && !settings.approval.allowSelf && decision === 'approve') return MESSAGES.noSelfApproval();
    const deliveries = await listDeliveries(ctx.pool, postId);
    if (!deliveries.some((d) => d.state === 'awaiting_approval')) return MESSAGES.approvalNotWaiting(shortId(postId));
    const tally = await recordApproval(ctx.pool, postId, member.id, decision);
    if (decision === 'reject') {
      await rejectPost(ctx, postId, MESSAGES.rejectedBy(member.name));
      await notifier.refresh(postId);
      return MESSAGES.rejectedBy(member.name);
    }
    if (tally.approvals < settings.approval.quorum) return MESSAGES.approvalCounted(tally.approvals, settings.approval.quorum);
    if (post.scheduled_at.getTime() < ctx.now() - 60_000) {
      await this.#deps.outbox.send(place.chatId, {
        text: MESSAGES.approvalSlotPassed(shortId(postId), formatInZone(post.scheduled_at, post.time_zone)),
        buttons: [[button('Publish now', 'now', postId)]],
      });
      return MESSAGES.approvalCounted(tally.approvals, settings.approval.quorum);
    }
    await releasePost(ctx, postId);
    await notifier.refresh(postId);
    return MESSAGES.approvedBy(member.name);
  }

  /** A reaction on a preview: approval emojis from approvers count, everything else is ignored. */
  async reaction(place: ChatPlace, member: ChatMember, messageId: string, emojis: readonly string[]): Promise<void> {
    const row = await findChatMessage(this.#ctx.pool, place.chat, place.chatId, messageId);
    if (row?.kind !== 'preview' || !row.post_id || row.workspace_id !== place.workspaceId) return;
    const decision = emojis.some((e) => REJECT_EMOJI.has(e)) ? 'reject' : emojis.some((e) => APPROVE_EMOJI.has(e)) ? 'approve' : null;
    if (!decision) return;
    const said = await this.decide(place, member, row.post_id, decision);
    this.#ctx.log.info({ component: 'chat', postId: row.post_id, member: member.id, decision, said }, 'reaction handled');
  }

  /** A button press; returns the short answer shown to the presser. */
  async button(place: ChatPlace, member: ChatMember, data: string): Promise<string> {
    const parsed = parseButton(data);
    if (!parsed) return MESSAGES.buttonExpired();
    const { ctx, notifier } = this.#deps;
    try {
      switch (parsed.action) {
        case 'approve':
        case 'reject':
          return await this.decide(place, member, parsed.id, parsed.action);
        case 'now': {
          const row = await this.#member(place, member);
          const post = await getPost(ctx.pool, parsed.id);
          if (!post || post.workspace_id !== place.workspaceId) return MESSAGES.postNotFound(shortId(parsed.id));
          if (!this.#isApprover(member, row, await readSettings(ctx.pool, place.workspaceId))) return MESSAGES.notAnApprover();
          await releasePost(ctx, parsed.id, new Date(ctx.now()));
          await notifier.refresh(parsed.id);
          return MESSAGES.publishingNow(shortId(parsed.id));
        }
        case 'retry':
        case 'file': {
          const delivery = await getDelivery(ctx.pool, parsed.id);
          const post = delivery ? await getPost(ctx.pool, delivery.post_id) : null;
          if (!delivery || !post || !(await this.#speaksFor(place, post.workspace_id))) return MESSAGES.buttonExpired();
          if (parsed.action === 'retry') {
            await retryPost(ctx, await loadPost(ctx, post.workspace_id, post.id), delivery.id);
            await notifier.refresh(post.id);
            return MESSAGES.retrying(PLATFORM_SPECS[delivery.platform].label);
          }
          return await this.#sendFile(place, delivery.platform, delivery.rendition_id);
        }
        case 'relink': {
          const row = await this.#member(place, member);
          const account = await getAccount(ctx.pool, parsed.id);
          if (!account || !(await this.#speaksFor(place, account.workspace_id))) return MESSAGES.buttonExpired();
          if (!this.#isAdmin(member, row)) return MESSAGES.adminOnly('Re-link');
          const label = PLATFORM_SPECS[account.platform].label;
          // Re-linked the way it was linked; credentials that cannot be opened fall back to the platform's own sign-in.
          const via = linkedVia(account.platform, await readCredentials(ctx.pool, ctx.secrets, account.id).catch(() => ({})));
          const link = await createLinkRequest(ctx, { workspaceId: account.workspace_id, memberId: member.id, platform: account.platform, via, chat: `${place.chat}:${place.chatId}` });
          // Telegram: a user's private chat has the user's id. Elsewhere the hint names the command.
          const sent = await this.#deps.outbox.send(member.id, { text: MESSAGES.linkPrivateText(label, link.url, account.workspace_id) }).then(() => true, () => false);
          return sent ? MESSAGES.relinkSent(label) : MESSAGES.relinkHint(MESSAGES.linkCommand(account.platform, via));
        }
        case 'acceptalerts':
        case 'declinealerts':
          return await this.#answerAlertsRequest(place, member, parsed.id, parsed.action === 'acceptalerts' ? 'accepted' : 'declined');
      }
    } catch (error) {
      if (error instanceof UserError) return error.message;
      throw error;
    }
  }

  /** The manual fallback: the rendition made for the platform, uploaded to the chat. */
  async #sendFile(place: ChatPlace, platform: PlatformId, renditionId: string | null): Promise<string> {
    const { ctx, outbox } = this.#deps;
    const rendition = renditionId ? await getRendition(ctx.pool, renditionId) : null;
    const label = PLATFORM_SPECS[platform].label;
    if (!rendition) return MESSAGES.fileNotAvailable(label);
    if (rendition.size > outbox.maxUploadBytes) {
      await this.#reply(place, { text: MESSAGES.fileTooBigForChat(label, rendition.size, outbox.maxUploadBytes) });
      return MESSAGES.fileTooBigForChat(label, rendition.size, outbox.maxUploadBytes);
    }
    const open = renditionOpener(ctx.pool, rendition);
    await outbox.sendFile(place.chatId, { name: `reelay-${platform}.mp4`, size: rendition.size, open: () => open() }, MESSAGES.fileForManualPost(label));
    return MESSAGES.fileSent(label);
  }

  /** Any other command; the reply goes back to the chat. */
  async command(place: ChatPlace, member: ChatMember, name: CommandName, args: string): Promise<ChatReply> {
    const { ctx, notifier } = this.#deps;
    const row = await this.#member(place, member);
    const timeZone = await this.#timeZone(place, row);
    try {
      switch (name) {
        case 'start':
        case 'help':
          return { text: MESSAGES.chatHelp(place.chat) };
        case 'post':
        case 'schedule':
          return { text: MESSAGES.chatNoVideo() };
        case 'queue': {
          const posts = await listUpcoming(ctx.pool, place.workspaceId);
          if (posts.length === 0) return { text: MESSAGES.queueEmpty() };
          return {
            text: posts
              .map((p) => `${shortId(p.id)} · ${formatInZone(p.scheduled_at, timeZone)} · ${p.deliveries.filter((d) => d.state === 'scheduled' || d.state === 'awaiting_approval').map((d) => `${PLATFORM_SPECS[d.platform].label}${d.state === 'awaiting_approval' ? ' (awaiting approval)' : ''}`).join(', ')}${p.caption ? ` · ${p.caption.split('\n')[0]!.slice(0, 40)}` : ''}`)
              .join('\n'),
          };
        }
        case 'status': {
          const [id, platformName, url] = args.trim().split(/\s+/);
          if (!id) return { text: MESSAGES.usageStatus() };
          const post = await loadPost(ctx, place.workspaceId, id);
          if (platformName && url) {
            const platform = parseTargets(platformName);
            const target = platform.ok ? platform.targets[0] : undefined;
            if (!target) return { text: MESSAGES.unknownPlatform(platformName, PLATFORM_IDS) };
            await markPublishedByHand(ctx, post, target.platform, url);
            await notifier.refresh(post.id);
            return { text: MESSAGES.markedByHand(PLATFORM_SPECS[target.platform].label) };
          }
          const rendered = renderStatus(post, post.deliveries, { now: new Date(ctx.now()) });
          return { text: rendered.text, buttons: statusButtons(post.deliveries) };
        }
        case 'cancel': {
          const post = await this.#ownPost(place, member, row, args);
          await cancelPost(ctx, post);
          await notifier.refresh(post.id);
          return { text: MESSAGES.cancelledPost(shortId(post.id)) };
        }
        case 'retry': {
          const post = await this.#ownPost(place, member, row, args);
          await retryPost(ctx, post);
          await notifier.refresh(post.id);
          return { text: MESSAGES.retryingPost(shortId(post.id)) };
        }
        case 'reschedule': {
          const match = /^(\S+)\s+([\s\S]+)$/.exec(args.trim());
          if (!match) return { text: MESSAGES.usageReschedule() };
          const post = await this.#ownPost(place, member, row, match[1]!);
          const after = await reschedulePost(ctx, post, match[2]!.trim(), timeZone);
          await notifier.refresh(post.id);
          return { text: MESSAGES.rescheduled(shortId(post.id), formatInZone(after.scheduled_at, timeZone)) };
        }
        case 'edit': {
          const [first, ...rest] = args.split('\n');
          const caption = rest.join('\n').trim();
          if (!first?.trim() || !caption) return { text: MESSAGES.usageEdit() };
          const post = await this.#ownPost(place, member, row, first.trim());
          await editCaption(ctx, post, caption);
          await notifier.refresh(post.id);
          return { text: MESSAGES.edited(shortId(post.id)) };
        }
        case 'accounts': {
          const accounts = (await listAccounts(ctx.pool, place.workspaceId)).filter((a) => a.state !== 'disabled');
          if (accounts.length === 0) return { text: MESSAGES.noAccountsLinked() };
          return { text: accounts.map((a) => `${PLATFORM_SPECS[a.platform].label} @${a.handle}: ${MESSAGES.accountHealth(a.state, a.last_error)}`).join('\n') };
        }
        case 'link': {
          if (!this.#isAdmin(member, row)) return { text: MESSAGES.adminOnly('/link') };
          const parsed = parseLinkArgs(args);
          if (!parsed.ok) return { text: parsed.message };
          const { platform, via } = parsed;
          const label = linkLabel(platform, via);
          const link = await createLinkRequest(ctx, { workspaceId: place.workspaceId, memberId: member.id, platform, via, chat: `${place.chat}:${place.chatId}` });
          return { text: MESSAGES.linkPrivateText(label, link.url, place.workspaceId), private: { publicText: MESSAGES.linkSent(label), label } };
        }
        case 'unlink': {
          if (!this.#isAdmin(member, row)) return { text: MESSAGES.adminOnly('/unlink') };
          const parsed = parseTargets(args.trim());
          const target = parsed.ok ? parsed.targets[0] : undefined;
          if (!target) return { text: MESSAGES.usageLink(PLATFORM_IDS) };
          const account = await unlinkAccount(ctx, place.workspaceId, target.platform, target.handle);
          return { text: MESSAGES.unlinked(PLATFORM_SPECS[target.platform].label, account.handle) };
        }
        case 'timezone': {
          const zone = args.trim();
          if (!zone) return { text: MESSAGES.timezoneIs(timeZone, formatInZone(new Date(ctx.now()), timeZone)) };
          if (!isValidTimeZone(zone)) return { text: MESSAGES.unknownTimezone(zone) };
          await setMemberTimeZone(ctx.pool, place.workspaceId, member.id, zone);
          return { text: MESSAGES.timezoneSet(zone, formatInZone(new Date(ctx.now()), zone)) };
        }
        case 'settings':
          return await this.#settings(place, member, row, args);
      }
    } catch (error) {
      if (error instanceof UserError) return { text: error.message };
      throw error;
    }
  }

  /** Cancel, retry, reschedule and edit: the author's own posts, or anyone's for admins and approvers. */
  async #ownPost(place: ChatPlace, member: ChatMember, row: MemberRow, id: string): Promise<PostWithDeliveries> {
    if (!id.trim()) throw new UserError(MESSAGES.usageId());
    const post = await loadPost(this.#ctx, place.workspaceId, id.trim());
    const settings = await readSettings(this.#ctx.pool, place.workspaceId);
    if (post.author_id !== member.id && !this.#isApprover(member, row, settings)) throw new UserError(MESSAGES.notYourPost(shortId(post.id)));
    return post;
  }

  async #settings(place: ChatPlace, member: ChatMember, row: MemberRow, args: string): Promise<ChatReply> {
    const { ctx } = this.#deps;
    const words = args.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return { text: await this.#settingsText(place, row, await readSettings(ctx.pool, place.workspaceId)) };
    if (!this.#isAdmin(member, row)) return { text: MESSAGES.adminOnly('/settings') };
    const [key, ...rest] = words;
    const value = rest.join(' ');
    const onOff = (v: string): boolean => {
      if (/^(on|yes|true)$/i.test(v)) return true;
      if (/^(off|no|false)$/i.test(v)) return false;
      throw new UserError(MESSAGES.settingsUsage());
    };
    const change = (fn: (s: WorkspaceSettings) => WorkspaceSettings) => withTransaction(ctx.pool, (tx) => updateSettings(tx, place.workspaceId, fn));
    let next: WorkspaceSettings;
    switch (key?.toLowerCase()) {
      case 'approval':
        next = await change((s) => ({ ...s, approval: { ...s.approval, required: onOff(value) } }));
        break;
      case 'quorum': {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 1 || n > 20) throw new UserError(MESSAGES.settingsUsage());
        next = await change((s) => ({ ...s, approval: { ...s.approval, quorum: n } }));
        break;
      }
      case 'selfapproval':
        next = await change((s) => ({ ...s, approval: { ...s.approval, allowSelf: onOff(value) } }));
        break;
      case 'approvers': {
        const [op, ...ids] = rest;
        if ((op !== 'add' && op !== 'remove') || ids.length === 0) throw new UserError(MESSAGES.settingsUsage());
        next = await change((s) => ({
          ...s,
          approval: { ...s.approval, approvers: op === 'add' ? [...new Set([...s.approval.approvers, ...ids])] : s.approval.approvers.filter((a) => !ids.includes(a)) },
        }));
        break;
      }
      case 'alerts': {
        // `here`, `off`, or another chat by id (a Telegram chat id, a Discord #channel mention).
        const other = /^(?:<#)?(-?\d+)>?$/.exec(value)?.[1];
        const here = /^here$/i.test(value) || other === place.chatId;
        if (!here && !other && !/^off$/i.test(value)) throw new UserError(MESSAGES.settingsUsage());
        if (other && !here) {
          const asked = await this.#askAlertsChat(place, member, other);
          if (asked) return asked;
        }
        // A choice made here replaces a request still waiting elsewhere.
        next = await withTransaction(ctx.pool, async (tx) => {
          await withdrawAlertsRequests(tx, place.workspaceId, new Date(ctx.now()));
          return updateSettings(tx, place.workspaceId, (s) => ({ ...s, alertsChat: here ? `${place.chat}:${place.chatId}` : other ? `${place.chat}:${other}` : null, alertsChatName: null }));
        });
        break;
      }
      case 'targets': {
        const parsed = parseTargets(value);
        if (!parsed.ok) throw new UserError(parsed.message);
        next = await change((s) => ({ ...s, defaultTargets: parsed.all || value === '' ? null : value }));
        break;
      }
      case 'split':
        next = await change((s) => ({ ...s, split: onOff(value) }));
        break;
      case 'spacing': {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 0 || n > 1440) throw new UserError(MESSAGES.settingsUsage());
        next = await change((s) => ({ ...s, splitSpacingMinutes: n }));
        break;
      }
      case 'posterrole':
        next = await change((s) => ({ ...s, posterRole: /^(off|everyone)$/i.test(value) ? null : value.replace(/^<@&(\d+)>$/, '$1') }));
        break;
      case 'approverrole':
        next = await change((s) => ({ ...s, approverRole: /^off$/i.test(value) ? null : value.replace(/^<@&(\d+)>$/, '$1') }));
        break;
      case 'role': {
        // A member's Reelay role on top of what the chat says (chat admins are always admins).
        const [who, role] = rest;
        const id = who?.replace(/^<@!?(\d+)>$/, '$1');
        if (!id || (role !== 'admin' && role !== 'approver' && role !== 'poster')) throw new UserError(MESSAGES.settingsUsage());
        if (!(await setMemberRole(ctx.pool, place.workspaceId, id, role))) throw new UserError(MESSAGES.unknownMember(id));
        return { text: MESSAGES.roleSet(id, role) };
      }
      default:
        throw new UserError(MESSAGES.settingsUsage());
    }
    const saved = `${MESSAGES.settingsSaved()}\n${await this.#settingsText(place, row, next)}`;
    // Telegram sends reactions only to bots that are group administrators.
    return { text: key?.toLowerCase() === 'approval' && next.approval.required && place.chat === 'telegram' ? `${saved}\n${MESSAGES.approvalNeedsAdminBot()}` : saved };
  }

  /** The settings, and an alerts request still waiting for the other chat. */
  async #settingsText(place: ChatPlace, row: MemberRow, settings: WorkspaceSettings): Promise<string> {
    const pending = await pendingAlertsRequest(this.#ctx.pool, place.workspaceId, new Date(this.#ctx.now()));
    return MESSAGES.settingsShow(settings, pending ? { target: pending.target_name, until: formatInZone(pending.expires_at, await this.#timeZone(place, row)) } : null, await this.#alertsChatName(settings));
  }

  /**
   * The alerts chat by name: the one kept when its admin accepted, else what the chat answers to
   * (a chat set directly, or by an older Reelay), else its id.
   */
  async #alertsChatName(settings: WorkspaceSettings): Promise<string | null> {
    if (!settings.alertsChat) return null;
    if (settings.alertsChatName) return settings.alertsChatName;
    const address = parseChatAddress(settings.alertsChat);
    if (!address) return settings.alertsChat;
    const { outbox, ctx } = this.#deps;
    const info = address.chat === outbox.chat && outbox.describe
      ? await outbox.describe(address.chatId).catch((error: unknown) => {
          ctx.log.debug({ component: 'chat', err: error, chat: settings.alertsChat }, 'alerts chat not described');
          return null;
        })
      : null;
    return info?.name ?? address.chatId;
  }

  /**
   * Another chat as the alerts chat. Alerts carry buttons that act on the workspace's posts, so a
   * chat of another workspace must accept first; a channel of the same Discord guild is this
   * workspace already (and the asker its admin), so null: set it at once.
   */
  async #askAlertsChat(place: ChatPlace, member: ChatMember, chatId: string): Promise<ChatReply | null> {
    const { ctx, outbox } = this.#deps;
    const target = outbox.describe ? await outbox.describe(chatId) : { name: chatId, workspaceId: null };
    if (!target) return { text: MESSAGES.alertsChatUnreachable(chatId) };
    if (target.workspaceId === place.workspaceId) return null;
    const from = (await outbox.describe?.(place.chatId))?.name ?? place.chatId;
    const request = { workspaceId: place.workspaceId, fromChat: `${place.chat}:${place.chatId}`, fromName: from, targetChat: `${place.chat}:${chatId}`, targetName: target.name, requestedBy: member.id };
    const { code } = await withTransaction(ctx.pool, (tx) => openAlertsRequest(tx, request, new Date(ctx.now())));
    const hours = Math.round(ALERTS_REQUEST_TTL_MS / 3_600_000);
    const sent = await outbox
      .send(chatId, { text: MESSAGES.alertsRequest(from, member.name, hours), buttons: [[button('Accept', 'acceptalerts', code), button('Decline', 'declinealerts', code)]] })
      .then(
        () => true,
        (error: unknown) => {
          ctx.log.warn({ component: 'chat', err: error, chat: place.chat, target: chatId }, 'alerts request could not be posted');
          return false;
        },
      );
    if (sent) return { text: MESSAGES.alertsRequestSent(target.name) };
    await dropAlertsRequest(ctx.pool, code);
    return { text: MESSAGES.alertsChatUnreachable(target.name) };
  }

  /** Accept or Decline on an alerts request, pressed in the chat that was asked. */
  async #answerAlertsRequest(place: ChatPlace, member: ChatMember, code: string, decision: 'accepted' | 'declined'): Promise<string> {
    const { ctx, outbox } = this.#deps;
    const here = `${place.chat}:${place.chatId}`;
    const now = new Date(ctx.now());
    // A dead code says so to anyone; a live one only an admin of the asked chat can settle.
    if (!(await findOpenAlertsRequest(ctx.pool, code, here, now))) return MESSAGES.alertsRequestClosed();
    if (!this.#isAdmin(member, await this.#member(place, member))) return MESSAGES.adminOnly(decision === 'accepted' ? 'Accept' : 'Decline');
    const request = await withTransaction(ctx.pool, async (tx) => {
      const decided = await decideAlertsRequest(tx, code, here, decision, now);
      if (decided?.decision === 'accepted') await updateSettings(tx, decided.workspace_id, (s) => ({ ...s, alertsChat: here, alertsChatName: decided.target_name }));
      return decided;
    });
    if (!request) return MESSAGES.alertsRequestClosed();
    const accepted = decision === 'accepted';
    const said = accepted ? MESSAGES.alertsAcceptedHere(request.from_name, member.name) : MESSAGES.alertsDeclinedHere(request.from_name, member.name);
    const warn = (error: unknown) => ctx.log.warn({ component: 'chat', err: error, request: request.from_chat }, 'alerts request answer not delivered');
    // The request's buttons go; its message now says how it ended.
    await outbox.edit(place.chatId, place.messageId, { text: said }).catch(warn);
    const from = parseChatAddress(request.from_chat);
    if (from?.chat === outbox.chat) {
      await outbox.send(from.chatId, { text: accepted ? MESSAGES.alertsAcceptedThere(request.target_name) : MESSAGES.alertsDeclinedThere(request.target_name) }).then(() => undefined, warn);
    }
    return said;
  }
}
