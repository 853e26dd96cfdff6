/**
 * The Telegram outbox over grammY's Api: plain text (no parse_mode, so nothing in a caption is
 * read as markup), inline keyboards for buttons, files streamed. The worker builds one from the
 * token alone, without polling, so bot and worker can run as separate processes.
 */
import { autoRetry } from '@grammyjs/auto-retry';
import { Api, GrammyError, InputFile } from 'grammy';
import type { InlineKeyboardMarkup } from 'grammy/types';
import type { ChatButton, ChatOutbox, OutMessage } from './outbox.ts';

/** The cloud Bot API's limits; a self-hosted server allows more, but these are safe everywhere. */
export const TELEGRAM_UPLOAD_LIMIT = 50 * 1024 * 1024;
export const TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024;
export const TELEGRAM_CLOUD_ROOT = 'https://api.telegram.org';
const TEXT_LIMIT = 4096;
const CAPTION_LIMIT = 1024;

export function telegramApi(token: string, apiRoot: string): Api {
  const api = new Api(token, { apiRoot });
  // 429s wait out retry_after (up to a minute); longer waits fail so the caller can say so.
  api.config.use(autoRetry({ maxRetryAttempts: 3, maxDelaySeconds: 60 }));
  return api;
}

function keyboard(buttons: ChatButton[][] | undefined): InlineKeyboardMarkup {
  return { inline_keyboard: (buttons ?? []).map((row) => row.map((b) => ({ text: b.label, callback_data: b.data }))) };
}

function clip(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

function replyTo(message: OutMessage) {
  return message.replyTo ? { reply_parameters: { message_id: Number(message.replyTo), allow_sending_without_reply: true } } : {};
}

export function telegramOutbox(api: Api): ChatOutbox {
  return {
    chat: 'telegram',
    maxUploadBytes: TELEGRAM_UPLOAD_LIMIT,
    async send(chatId, message) {
      if (message.photo && message.text.length <= CAPTION_LIMIT) {
        const sent = await api.sendPhoto(chatId, new InputFile(message.photo, 'preview.jpg'), { caption: message.text, reply_markup: keyboard(message.buttons), ...replyTo(message) });
        return String(sent.message_id);
      }
      // A caption holds 1024 characters: a longer preview is the photo, then the text with the buttons.
      if (message.photo) await api.sendPhoto(chatId, new InputFile(message.photo, 'preview.jpg'), replyTo(message));
      const sent = await api.sendMessage(chatId, clip(message.text, TEXT_LIMIT), {
        reply_markup: keyboard(message.buttons),
        link_preview_options: { is_disabled: true },
        ...replyTo(message),
      });
      return String(sent.message_id);
    },
    async edit(chatId, messageId, message) {
      try {
        await api.editMessageText(chatId, Number(messageId), clip(message.text, TEXT_LIMIT), { reply_markup: keyboard(message.buttons), link_preview_options: { is_disabled: true } });
      } catch (error) {
        // Another process made the same edit first: the message already says this.
        if (error instanceof GrammyError && /message is not modified/i.test(error.description)) return;
        throw error;
      }
    },
    async sendFile(chatId, file, caption) {
      const sent = await api.sendDocument(chatId, new InputFile(async () => (await file.open()) as AsyncIterable<Uint8Array>, file.name), { caption: clip(caption, CAPTION_LIMIT) });
      return String(sent.message_id);
    },
    async remove(chatId, messageId) {
      try {
        return await api.deleteMessage(chatId, Number(messageId));
      } catch {
        return false;
      }
    },
    async describe(chatId) {
      const chat = await api.getChat(chatId).catch(() => null);
      if (!chat) return null;
      const name = chat.title ?? ([chat.first_name, chat.last_name].filter(Boolean).join(' ') || (chat.username ? `@${chat.username}` : String(chat.id)));
      // A Telegram workspace is one chat (bot/telegram.ts).
      return { name, workspaceId: `telegram:${chat.id}` };
    },
  };
}
