/**
 * Keeps chats told: edits each post's status message as the post moves (throttled), and sends
 * alerts — final failures, unconfirmed posts, accounts to re-link — to the workspace's alerts chat
 * (or the chat the post came from). Runs in whichever process changed the rows, the worker
 * included: everything it says is read from the database.
 */
import { getAccount } from '../accounts.ts';
import type { Pool } from '../db.ts';
import { MESSAGES } from '../errors.ts';
import type { Logger } from '../log.ts';
import { PLATFORM_SPECS } from '../platforms.ts';
import { getDelivery, getPost, listDeliveries, type DeliveryView, type PostRow } from '../posts.ts';
import { withTransaction } from '../db.ts';
import { button, parseChatAddress, type ChatButton, type OutMessage, type Outboxes } from './outbox.ts';
import { createHash } from 'node:crypto';
import { claimEdit, claimNotice, listPostMessages, recordChatMessage, type ChatName } from './records.ts';
import { formatInZone } from '../schedule.ts';
import { readSettings } from './settings.ts';
import { renderStatus, shortId, type StatusProgress } from './status.ts';

export interface ChatNotifierDeps {
  pool: Pool;
  log: Logger;
  now(): number;
  outboxes: Outboxes;
}

export interface ProgressUpdate {
  postId: string;
  deliveryId: string | null;
  stage: 'transcoding' | 'uploading';
  fraction: number;
}

/** Buttons under a status message: Retry (and the manual fallback) for each failed delivery. */
export function statusButtons(deliveries: readonly DeliveryView[]): ChatButton[][] {
  return deliveries
    .filter((d) => d.state === 'failed' || d.state === 'unconfirmed')
    .map((d) => {
      const label = PLATFORM_SPECS[d.platform].label;
      return [button(`Retry ${label}`, 'retry', d.id), button(`Send me the ${label} file`, 'file', d.id)];
    });
}

/** Where a workspace's alerts go: the alerts chat when set, else the chat the post came from. */
export async function alertAddress(pool: Pool, workspaceId: string, fallback: { chat: ChatName; chatId: string } | null): Promise<{ chat: ChatName; chatId: string } | null> {
  const settings = await readSettings(pool, workspaceId);
  return parseChatAddress(settings.alertsChat) ?? fallback;
}

export function postOrigin(post: PostRow): { chat: ChatName; chatId: string } | null {
  const { chat, chatId } = post.origin as { chat?: unknown; chatId?: unknown };
  return (chat === 'telegram' || chat === 'discord') && typeof chatId === 'string' ? { chat, chatId } : null;
}

export class ChatNotifier {
  readonly #deps: ChatNotifierDeps;
  readonly #progress = new Map<string, StatusProgress>();
  readonly #pending = new Map<string, { timer: NodeJS.Timeout; postId: string }>();
  #closed = false;

  constructor(deps: ChatNotifierDeps) {
    this.#deps = deps;
  }

  async postChanged(postId: string): Promise<void> {
    await this.refresh(postId);
  }

  async deliveryChanged(deliveryId: string): Promise<void> {
    const delivery = await getDelivery(this.#deps.pool, deliveryId);
    if (!delivery) return;
    const uploading = this.#progress.get(delivery.post_id)?.uploading;
    if (uploading && delivery.state !== 'publishing') delete uploading[delivery.id];
    await this.refresh(delivery.post_id);
    if (delivery.state === 'failed' || delivery.state === 'unconfirmed') await this.#alertFinal(delivery);
  }

  progress(event: ProgressUpdate): void {
    const entry = this.#progress.get(event.postId) ?? {};
    if (event.stage === 'transcoding') entry.transcoding = event.fraction;
    else if (event.deliveryId) entry.uploading = { ...entry.uploading, [event.deliveryId]: event.fraction };
    this.#progress.set(event.postId, entry);
    this.refresh(event.postId).catch((error: unknown) => this.#deps.log.warn({ component: 'chat', err: error }, 'status edit failed'));
  }

  /** Re-renders every status message of the post; edits that come too soon are sent later. */
  async refresh(postId: string, options: { force?: boolean } = {}): Promise<void> {
    const { pool } = this.#deps;
    const messages = await listPostMessages(pool, postId, 'status');
    if (messages.length === 0) return;
    const post = await getPost(pool, postId);
    if (!post) return;
    const deliveries = await listDeliveries(pool, postId);
    if (post.media_state !== 'pending') delete this.#progress.get(postId)?.transcoding;
    const progress = this.#progress.get(postId);
    const rendered = renderStatus(post, deliveries, { now: new Date(this.#deps.now()), ...(progress ? { progress } : {}) });
    if (rendered.final) this.#progress.delete(postId);
    const message: OutMessage = { text: rendered.text, buttons: statusButtons(deliveries) };
    for (const row of messages) await this.edit({ chat: row.chat, chatId: row.chat_id, messageId: row.message_id }, message, { postId, ...(options.force ? { force: true } : {}) });
  }

  /**
   * Edits a message through the shared throttle (see claimEdit): now, later (a timer re-renders
   * the post then), or not at all when it already says this. `postId` null: a one-off text edit
   * (download progress) that is dropped rather than deferred.
   */
  async edit(key: { chat: ChatName; chatId: string; messageId: string }, message: OutMessage, options: { postId: string | null; force?: boolean; waitForSlot?: boolean }): Promise<void> {
    const { pool, outboxes, log } = this.#deps;
    const outbox = outboxes[key.chat];
    if (!outbox) return;
    const hash = createHash('sha256').update(message.text).update(JSON.stringify(message.buttons ?? [])).digest('base64url');
    let decision = await claimEdit(pool, key, hash, new Date(this.#deps.now()));
    // A last word (an intake error) waits for its slot instead of being dropped.
    while (decision.action === 'later' && options.waitForSlot) {
      await new Promise((resolve) => setTimeout(resolve, decision.action === 'later' ? decision.waitMs : 0));
      decision = await claimEdit(pool, key, hash, new Date(this.#deps.now()));
    }
    if (decision.action === 'skip') return;
    if (decision.action === 'later' && !options.force) {
      if (options.postId) this.#later(`${key.chat}:${key.chatId}:${key.messageId}`, options.postId, decision.waitMs);
      return;
    }
    try {
      await outbox.edit(key.chatId, key.messageId, message);
    } catch (error) {
      log.warn({ component: 'chat', chat: key.chat, postId: options.postId, err: error }, 'status edit failed');
    }
  }

  #later(key: string, postId: string, waitMs: number): void {
    if (this.#closed || this.#pending.has(key)) return;
    const timer = setTimeout(() => {
      this.#pending.delete(key);
      this.refresh(postId).catch((error: unknown) => this.#deps.log.warn({ component: 'chat', err: error }, 'status edit failed'));
    }, waitMs);
    this.#pending.set(key, { timer, postId });
  }

  /** Sends what is still waiting for its throttle slot, then stops. */
  async close(): Promise<void> {
    this.#closed = true;
    const posts = new Set<string>();
    for (const { timer, postId } of this.#pending.values()) {
      clearTimeout(timer);
      posts.add(postId);
    }
    this.#pending.clear();
    for (const postId of posts) await this.refresh(postId, { force: true }).catch(() => undefined);
  }

  /** Once per loss of login: the alerts chat hears which account, why, and gets a Re-link button. */
  async accountNeedsReauth(accountId: string): Promise<void> {
    const { pool, outboxes, log } = this.#deps;
    const account = await getAccount(pool, accountId);
    if (!account || account.state !== 'needs_reauth') return;
    // A Telegram workspace is a chat, so it can hear its own alerts; a Discord guild needs a channel set.
    const own = account.workspace_id.startsWith('telegram:') ? parseChatAddress(account.workspace_id) : null;
    const address = await alertAddress(pool, account.workspace_id, own);
    const outbox = address ? outboxes[address.chat] : undefined;
    if (!address || !outbox) return;
    const label = PLATFORM_SPECS[account.platform].label;
    try {
      await withTransaction(pool, async (tx) => {
        if (!(await claimNotice(tx, `reauth:${account.id}:${account.updated_at.getTime()}`))) return;
        const messageId = await outbox.send(address.chatId, { text: MESSAGES.alertNeedsReauth(label, account.handle, account.last_error ?? ''), buttons: [[button(`Re-link ${label}`, 'relink', account.id)]] });
        await recordChatMessage(tx, { chat: address.chat, chatId: address.chatId, messageId, workspaceId: account.workspace_id, kind: 'alert' });
      });
    } catch (error) {
      log.warn({ component: 'chat', accountId, err: error }, 'alert not sent');
    }
  }

  /**
   * Once per delivery: a post due soon goes to an account that needs re-linking. Routed like the
   * other alerts, with a Re-link button; the notice key makes every later check (in any process) quiet.
   */
  async deliveryAtRisk(deliveryId: string): Promise<void> {
    const { pool, outboxes, log } = this.#deps;
    const delivery = await getDelivery(pool, deliveryId);
    const post = delivery ? await getPost(pool, delivery.post_id) : null;
    const account = delivery ? await getAccount(pool, delivery.account_id) : null;
    if (!delivery || !post || !account) return;
    const address = await alertAddress(pool, post.workspace_id, postOrigin(post));
    const outbox = address ? outboxes[address.chat] : undefined;
    if (!address || !outbox) return;
    const label = PLATFORM_SPECS[delivery.platform].label;
    try {
      await withTransaction(pool, async (tx) => {
        if (!(await claimNotice(tx, `atrisk:${delivery.id}`))) return;
        const messageId = await outbox.send(address.chatId, {
          text: MESSAGES.alertAtRisk(label, account.handle, shortId(post.id), formatInZone(post.scheduled_at, post.time_zone), account.state),
          buttons: [[button(`Re-link ${label}`, 'relink', account.id)]],
        });
        await recordChatMessage(tx, { chat: address.chat, chatId: address.chatId, messageId, workspaceId: post.workspace_id, postId: post.id, deliveryId: delivery.id, kind: 'alert' });
      });
    } catch (error) {
      log.warn({ component: 'chat', deliveryId, err: error }, 'at-risk alert not sent');
    }
  }

  async #alertFinal(delivery: DeliveryView): Promise<void> {
    const { pool, outboxes, log } = this.#deps;
    const post = await getPost(pool, delivery.post_id);
    if (!post) return;
    const address = await alertAddress(pool, post.workspace_id, postOrigin(post));
    const outbox = address ? outboxes[address.chat] : undefined;
    if (!address || !outbox) return;
    const label = PLATFORM_SPECS[delivery.platform].label;
    const text =
      delivery.state === 'unconfirmed'
        ? MESSAGES.alertUnconfirmed(label, delivery.handle, shortId(post.id), delivery.error ?? '')
        : MESSAGES.alertFailed(label, delivery.handle, shortId(post.id), delivery.error ?? '');
    const buttons: ChatButton[][] = [[button('Retry', 'retry', delivery.id), button('Send me the file', 'file', delivery.id)]];
    if (delivery.error_code === 'auth') buttons.push([button(`Re-link ${label}`, 'relink', delivery.account_id)]);
    try {
      // The key carries the failure's time, so a retried delivery that fails again alerts again.
      await withTransaction(pool, async (tx) => {
        if (!(await claimNotice(tx, `final:${delivery.id}:${delivery.updated_at.getTime()}`))) return;
        const messageId = await outbox.send(address.chatId, { text, buttons });
        await recordChatMessage(tx, { chat: address.chat, chatId: address.chatId, messageId, workspaceId: post.workspace_id, kind: 'alert', postId: post.id, deliveryId: delivery.id });
      });
    } catch (error) {
      log.warn({ component: 'chat', deliveryId: delivery.id, err: error }, 'alert not sent');
    }
  }
}

type LinkedAccount = { platform: keyof typeof PLATFORM_SPECS; handle: string };

/** "Linked TikTok @handle" in the chat that asked for the link (each Page of a Facebook login). */
export function linkAnnouncer(outboxes: Outboxes): (linked: { account: LinkedAccount; also?: readonly LinkedAccount[]; chat: string | null }) => Promise<void> {
  return async (linked) => {
    const address = parseChatAddress(linked.chat);
    const outbox = address ? outboxes[address.chat] : undefined;
    if (!address || !outbox) return;
    for (const account of [linked.account, ...(linked.also ?? [])]) await outbox.send(address.chatId, { text: MESSAGES.linked(PLATFORM_SPECS[account.platform].label, account.handle) });
  };
}
