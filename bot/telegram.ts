/**
 * The Telegram front end: a thin mapping from grammY updates to the chat-neutral ChatService.
 * grammY's `bot.command()` does not see commands in captions, so every message goes through one
 * handler that reads `text ?? caption` itself.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { isAbsolute } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Bot, GrammyError, webhookCallback, type Context as GrammyContext } from 'grammy';
import type { Message, User } from 'grammy/types';
import { autoRetry } from '@grammyjs/auto-retry';
import type { ChatNotifier } from '../core/chat/notifier.ts';
import { ChatService, splitCommand, type ChatMember, type ChatPlace, type IncomingMedia } from '../core/chat/service.ts';
import { TELEGRAM_CLOUD_ROOT, TELEGRAM_DOWNLOAD_LIMIT, telegramOutbox } from '../core/chat/telegram-outbox.ts';
import { parseRequest } from '../core/chat/grammar.ts';
import type { Context } from '../core/context.ts';
import { formatBytes, MESSAGES, UserError } from '../core/errors.ts';
import { linkMedia } from './chat-media.ts';
import type { HttpServer } from './http.ts';

const VIDEO_DOCUMENT = /\.(mp4|m4v|mov|webm|mkv)$/i;
const ALLOWED_UPDATES = ['message', 'message_reaction', 'callback_query'] as const;
const ADMIN_CACHE_MS = 60_000;

export interface TelegramOptions {
  notifier: ChatNotifier;
  http?: HttpServer;
  /** Tests: fetch links from the loopback simulator. */
  linkHosts?: readonly string[];
}

export interface RunningTelegram {
  bot: Bot;
  service: ChatService;
  username: string;
  stop(): Promise<void>;
}

export const TELEGRAM_COMMANDS = [
  { command: 'post', description: 'Post the attached video now: /post to tiktok, youtube' },
  { command: 'schedule', description: 'Schedule it: /schedule tomorrow 6pm to all' },
  { command: 'queue', description: 'Upcoming posts' },
  { command: 'status', description: 'Where a post stands: /status ID' },
  { command: 'cancel', description: 'Cancel a scheduled post: /cancel ID' },
  { command: 'retry', description: 'Retry failed deliveries: /retry ID' },
  { command: 'reschedule', description: 'Move a post: /reschedule ID WHEN' },
  { command: 'edit', description: 'New caption: /edit ID, caption below' },
  { command: 'accounts', description: 'Linked accounts and their health' },
  { command: 'link', description: 'Link an account: /link tiktok' },
  { command: 'unlink', description: 'Unlink an account: /unlink tiktok' },
  { command: 'timezone', description: 'Your timezone: /timezone Europe/Berlin' },
  { command: 'settings', description: 'Approval, alerts, default targets, split' },
  { command: 'help', description: 'How to post, with examples' },
];

function memberName(user: User): string {
  return user.username ? `@${user.username}` : [user.first_name, user.last_name].filter(Boolean).join(' ');
}

export async function startTelegram(ctx: Context, options: TelegramOptions): Promise<RunningTelegram> {
  const { token, apiRoot, webhookUrl, webhookSecret } = ctx.config.chat.telegram;
  if (!token) throw new Error('TELEGRAM_BOT_TOKEN is not set');
  const log = ctx.log.child({ component: 'telegram' });
  const bot = new Bot(token, { client: { apiRoot } });
  bot.api.config.use(autoRetry({ maxRetryAttempts: 3, maxDelaySeconds: 60 }));
  await bot.init();
  const username = bot.botInfo.username;
  const outbox = telegramOutbox(bot.api);

  const mediaFromLink = (url: string): IncomingMedia => linkMedia(ctx, url, options.linkHosts ? { allowHosts: options.linkHosts } : {});
  const service = new ChatService({ ctx, outbox, notifier: options.notifier, mediaFromLink });

  const admins = new Map<string, { admin: boolean; at: number }>();
  const isAdmin = async (chatId: number, chatType: string, user: User): Promise<boolean> => {
    if (chatType === 'private') return true;
    const key = `${chatId}:${user.id}`;
    const cached = admins.get(key);
    if (cached && Date.now() - cached.at < ADMIN_CACHE_MS) return cached.admin;
    const member = await bot.api.getChatMember(chatId, user.id).catch(() => null);
    const admin = member?.status === 'creator' || member?.status === 'administrator';
    admins.set(key, { admin, at: Date.now() });
    return admin;
  };

  const placeOf = (chatId: number, messageId: number): ChatPlace => ({ chat: 'telegram', chatId: String(chatId), workspaceId: `telegram:${chatId}`, messageId: String(messageId) });
  const memberOf = async (chatId: number, chatType: string, user: User): Promise<ChatMember> => ({ id: String(user.id), name: memberName(user), chatAdmin: await isAdmin(chatId, chatType, user) });

  /** The video a message carries (or a UserError for a photo or a non-video document). */
  const mediaOf = (message: Message): IncomingMedia | null => {
    const file = message.video ?? (message.document && (message.document.mime_type?.startsWith('video/') || VIDEO_DOCUMENT.test(message.document.file_name ?? '')) ? message.document : undefined);
    if (!file) {
      if (message.photo) throw new UserError(MESSAGES.chatPhotoNotVideo());
      if (message.document) throw new UserError(MESSAGES.chatDocumentNotVideo(message.document.file_name ?? 'That file'));
      return null;
    }
    const size = file.file_size ?? null;
    if (size !== null && size > TELEGRAM_DOWNLOAD_LIMIT && apiRoot === TELEGRAM_CLOUD_ROOT) throw new UserError(MESSAGES.telegramFileTooBig(formatBytes(size)));
    const name = ('file_name' in file && file.file_name) || 'video.mp4';
    return {
      name,
      size,
      fetch: async (path, onProgress) => {
        const info = await bot.api.getFile(file.file_id).catch((error: unknown) => {
          if (error instanceof GrammyError && /too big/i.test(error.description)) throw new UserError(MESSAGES.telegramFileTooBig(size === null ? 'over 20 MB' : formatBytes(size)));
          throw error;
        });
        if (!info.file_path) throw new UserError(MESSAGES.telegramFileTooBig(size === null ? 'over 20 MB' : formatBytes(size)));
        // A self-hosted Bot API server in --local mode answers with a path on its own disk.
        if (isAbsolute(info.file_path)) {
          await pipeline(createReadStream(info.file_path), createWriteStream(path));
          onProgress(1);
          return;
        }
        const response = await ctx.fetch(`${apiRoot}/file/bot${token}/${info.file_path}`);
        if (!response.ok || !response.body) throw new Error(`Telegram file download answered ${response.status}`);
        const total = Number(response.headers.get('content-length')) || size || 0;
        let received = 0;
        const count = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            received += chunk.length;
            if (total > 0) onProgress(received / total);
            callback(null, chunk);
          },
        });
        await pipeline(response.body as unknown as AsyncIterable<Uint8Array>, count, createWriteStream(path));
      },
    };
  };

  bot.on('message', async (c: GrammyContext) => {
    const message = c.message;
    if (!message?.from) return;
    const text = message.text ?? message.caption ?? '';
    const place = placeOf(message.chat.id, message.message_id);
    const member = await memberOf(message.chat.id, message.chat.type, message.from);
    const parsed = parseRequest(text, { botUsername: username });
    try {
      if (await service.screen(place, text)) return;
      if (!('notACommand' in parsed)) {
        const media = mediaOf(message) ?? (message.reply_to_message ? mediaOf(message.reply_to_message) : null);
        await service.request(place, member, text, media, { botUsername: username });
        return;
      }
      const command = splitCommand(text, username);
      if (!command) return;
      const reply = await service.command(place, member, command.name, command.args);
      if (reply.private && message.chat.type !== 'private') {
        // A user's private chat with the bot has the user's id; it exists once they pressed Start.
        const sent = await outbox.send(String(message.from.id), { text: reply.text }).then(() => true, () => false);
        await outbox.send(place.chatId, { text: sent ? reply.private.publicText : MESSAGES.linkStartPrivate(`@${username}`), replyTo: place.messageId });
        return;
      }
      await outbox.send(place.chatId, { text: reply.text, ...(reply.buttons ? { buttons: reply.buttons } : {}), replyTo: place.messageId });
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      await outbox.send(place.chatId, { text: error.message, replyTo: place.messageId });
    }
  });

  bot.on('message_reaction', async (c) => {
    const update = c.messageReaction;
    if (!update.user) return;
    const emojis = update.new_reaction.flatMap((r) => (r.type === 'emoji' ? [r.emoji] : []));
    const member = await memberOf(update.chat.id, update.chat.type, update.user);
    await service.reaction(placeOf(update.chat.id, update.message_id), member, String(update.message_id), emojis);
  });

  bot.on('callback_query:data', async (c) => {
    const query = c.callbackQuery;
    const message = query.message;
    if (!message) return void (await c.answerCallbackQuery({ text: MESSAGES.buttonExpired() }));
    const member = await memberOf(message.chat.id, message.chat.type, query.from);
    const said = await service.button(placeOf(message.chat.id, message.message_id), member, query.data);
    await c.answerCallbackQuery({ text: said.slice(0, 200) });
  });

  // One failed update is logged and the bot carries on: bad input never stops the process.
  bot.catch((error) => log.error({ err: error.error, update: error.ctx.update.update_id }, 'update failed'));

  await bot.api.setMyCommands(TELEGRAM_COMMANDS);

  let stopPolling: (() => Promise<void>) | null = null;
  if (webhookUrl) {
    if (!options.http) throw new Error('Telegram webhook mode needs the HTTP server');
    const path = new URL(webhookUrl).pathname;
    const handle = webhookCallback(bot, 'http', webhookSecret ? { secretToken: webhookSecret } : {});
    options.http.addPostRoute(path, (request, response) => {
      handle(request, response).catch((error: unknown) => {
        log.warn({ err: error }, 'webhook update failed');
        if (!response.headersSent) response.writeHead(500).end();
      });
    });
    await bot.api.setWebhook(webhookUrl, { allowed_updates: [...ALLOWED_UPDATES], ...(webhookSecret ? { secret_token: webhookSecret } : {}) });
    log.info({ path }, 'Telegram bot receiving updates by webhook');
  } else {
    const started = new Promise<void>((resolve) => {
      void bot.start({ allowed_updates: [...ALLOWED_UPDATES], onStart: () => resolve() }).catch((error: unknown) => log.error({ err: error }, 'Telegram polling stopped'));
    });
    await started;
    stopPolling = () => bot.stop();
    log.info({ username }, 'Telegram bot polling');
  }

  return {
    bot,
    service,
    username,
    stop: async () => {
      if (stopPolling) await stopPolling();
      await service.idle();
    },
  };
}
