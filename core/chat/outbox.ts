/**
 * What the chat-neutral core needs from a chat to talk back. Texts are plain (no markup): each
 * outbox sends them so that nothing in a caption can be read as formatting or a mention.
 * Both the bot and the worker hold outboxes (the worker edits status messages over REST), so
 * they live here rather than in either process.
 */
import type { Readable } from 'node:stream';
import type { ChatName } from './records.ts';

export interface ChatButton {
  label: string;
  /** At most 64 bytes (Telegram's callback_data limit); `<action>:<id>`. */
  data: string;
}

export interface OutMessage {
  text: string;
  /** Rows of buttons. An edit without buttons removes them. */
  buttons?: ChatButton[][];
  /** A JPEG shown with the text (approval previews). */
  photo?: Uint8Array;
  replyTo?: string;
}

export interface OutFile {
  name: string;
  size: number;
  open(): Promise<Readable>;
}

export interface ChatOutbox {
  readonly chat: ChatName;
  /** The largest file the chat lets a bot upload. */
  readonly maxUploadBytes: number;
  send(chatId: string, message: OutMessage): Promise<string>;
  edit(chatId: string, messageId: string, message: OutMessage): Promise<void>;
  sendFile(chatId: string, file: OutFile, caption: string): Promise<string>;
  /** Deletes a message where the bot may; false when it may not. */
  remove(chatId: string, messageId: string): Promise<boolean>;
  /**
   * A chat the bot can see: its name and the workspace it belongs to (a Discord channel's guild);
   * null when the bot cannot see it.
   */
  describe?(chatId: string): Promise<ChatInfo | null>;
}

export interface ChatInfo {
  name: string;
  workspaceId: string;
}

export type Outboxes = Partial<Record<ChatName, ChatOutbox>>;

/** `telegram:-100123` -> the chat and its id; null for anything else. */
export function parseChatAddress(address: string | null | undefined): { chat: ChatName; chatId: string } | null {
  const match = /^(telegram|discord):(.+)$/.exec(address ?? '');
  return match ? { chat: match[1] as ChatName, chatId: match[2]! } : null;
}

export const BUTTON_ACTIONS = ['approve', 'reject', 'retry', 'file', 'now', 'relink', 'acceptalerts', 'declinealerts'] as const;
export type ButtonAction = (typeof BUTTON_ACTIONS)[number];

export function button(label: string, action: ButtonAction, id: string): ChatButton {
  return { label, data: `${action}:${id}` };
}

export function parseButton(data: string): { action: ButtonAction; id: string } | null {
  const match = /^([a-z]+):([0-9a-f-]{36})$/.exec(data);
  if (!match || !(BUTTON_ACTIONS as readonly string[]).includes(match[1]!)) return null;
  return { action: match[1] as ButtonAction, id: match[2]! };
}
