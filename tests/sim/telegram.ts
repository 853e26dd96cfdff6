/**
 * A wire-level simulator of the Telegram Bot API (the cloud server at api.telegram.org), on
 * 127.0.0.1, driven by grammY exactly as the real bot is (`apiRoot` = `sim.url`). It enforces what
 * the Bot API documentation and the live server do, so a bot that works against it got the protocol
 * right:
 * - `GET|POST /bot<token>/<method>` (method names case-insensitive) with query, JSON,
 *   form-urlencoded or multipart bodies (parsed leniently: grammY sends `filename=` unquoted);
 *   nested objects as JSON strings in forms; a wrong token -> 401 Unauthorized, an unknown method ->
 *   404 Not Found; every error as `{ok:false, error_code, description[, parameters]}`;
 * - getUpdates long polling: `offset` confirms (and forgets) earlier updates, a negative offset keeps
 *   the last N; `timeout` holds the request until an update arrives (answered promptly on close);
 *   `allowed_updates` is remembered until changed, and filters updates when they are created
 *   (message_reaction, message_reaction_count and chat_member only when listed); a second
 *   getUpdates terminates the pending one with 409 Conflict; getUpdates while a webhook is set -> 409;
 * - setWebhook/deleteWebhook/getWebhookInfo, with real delivery: updates are POSTed one at a time to
 *   the URL (loopback http allowed here, unlike Telegram) with `X-Telegram-Bot-Api-Secret-Token`,
 *   retried until a 2xx; a JSON method call in the webhook answer is executed (webhook reply);
 * - group privacy mode (on by default, as for a new bot): in groups a non-admin bot only sees
 *   commands, replies to its own messages and messages mentioning it;
 * - chat access: unknown chat -> 400 chat not found; a user who never started the bot or blocked it,
 *   a group the bot left or was kicked from -> 403 Forbidden;
 * - sendMessage (4096 chars after entity parsing), sendPhoto/sendVideo/sendDocument (caption 1024;
 *   a file as a multipart upload, `attach://<part>` or a part named after the field, a file_id, or a
 *   loopback http URL), uploads over 50 MB -> 413 Request Entity Too Large; reply_parameters /
 *   reply_to_message_id; inline keyboards (callback_data 1-64 bytes, else BUTTON_DATA_INVALID);
 *   parse_mode HTML validated like Telegram (unknown, unbalanced or unclosed tags -> 400 "can't
 *   parse entities") and turned into entities; bot_command/url/mention/hashtag entities detected in
 *   texts and captions (grammY's `bot.command()` relies on them);
 * - editMessageText/editMessageCaption/editMessageReplyMarkup (only the bot's own messages, 400
 *   "message is not modified" for an identical edit), deleteMessage, setMessageReaction (the standard
 *   reaction set, one reaction for bots), answerCallbackQuery (once per query), sendChatAction,
 *   setMyCommands/getMyCommands/deleteMyCommands (per scope and language), getMe, getChat,
 *   getChatMember, getChatAdministrators, getChatMemberCount;
 * - getFile and `GET /file/bot<token>/<file_path>`: files over 20 MB get 400 "file is too big".
 * The user side is a driver: users, private chats and groups (admins, members, the bot's status,
 * which sends `my_chat_member`), messages with media, reactions from the standard set
 * (`message_reaction` updates; in groups only while the bot is an administrator) and button presses
 * (`callback_query` updates). Every request is logged (params without file bytes); `waitFor`
 * resolves on events, so tests never sleep; `transcript` prints a chat. Faults are injected per
 * method (any status with `retry_after`, or a connection reset).
 * Not simulated: MarkdownV2 validation (accepted as plain text), inline mode and inline messages,
 * media groups, forward/copy, channels, users' edits, real rate limits (inject 429s instead).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, extname } from 'node:path';
import type { Message, Update } from 'grammy/types';
import { MultipartParser } from './multipart.ts';

type Json = Record<string, unknown>;

export type MemberStatus = 'creator' | 'administrator' | 'member' | 'left' | 'kicked';
export type ChatType = 'private' | 'group' | 'supergroup';
export type MediaKind = 'photo' | 'video' | 'document';

export interface SimUser {
  id: number;
  is_bot: boolean;
  first_name: string;
  last_name?: string;
  username?: string;
  language_code?: string;
}

export interface SimChat {
  id: number;
  type: ChatType;
  title?: string;
  /** Private chats: the user on the other side. */
  user?: SimUser;
}

/** A file the simulator holds: from a user, or uploaded by the bot. */
export interface SimFile {
  fileId: string;
  fileUniqueId: string;
  size: number;
  name: string | undefined;
  mime: string | undefined;
  /** Only files of at most 20 MB have one (the cloud API's download cap). */
  filePath: string | undefined;
  bytes(): Buffer;
}

export interface SimEdit {
  at: number;
  text: string | undefined;
  caption: string | undefined;
  replyMarkup: Json | undefined;
}

/** A message as the simulator stores it, for assertions. */
export interface SimMessage {
  chatId: number;
  messageId: number;
  fromBot: boolean;
  from: SimUser;
  text: string | undefined;
  caption: string | undefined;
  replyMarkup: Json | undefined;
  replyTo: number | undefined;
  media: { kind: MediaKind; file: SimFile } | undefined;
  /** Earlier versions, oldest first; the current content is in text/caption/replyMarkup. */
  edits: SimEdit[];
  deleted: boolean;
  /** The bot's own reaction (setMessageReaction). */
  botReaction: string[];
  /** Reactions by user id. */
  reactions: Map<number, string[]>;
  /** The Message object as the Bot API returns it now. */
  raw: Json;
}

export interface SimRequest {
  at: number;
  /** As called (`sendMessage`), or `file` for downloads, `webhook` for deliveries. */
  method: string;
  http: string;
  /** Parameters as sent; uploaded files as `{ file: name, size, mime }`, never their bytes. */
  params: Json;
  /** 'pending' while being read or handled; 'held' for a long poll waiting for updates. */
  status: number | 'reset' | 'pending' | 'held';
  description?: string;
}

export type SimFaultSpec = { status: number; description?: string; retryAfter?: number } | 'reset';

export interface SimFileInput {
  source: Buffer | string;
  name?: string;
  mime?: string;
  duration?: number;
  width?: number;
  height?: number;
}

export interface UserMessageOptions {
  text?: string;
  caption?: string;
  video?: Buffer | string | SimFileInput;
  document?: Buffer | string | SimFileInput;
  photo?: Buffer | string | SimFileInput;
  reply_to_message_id?: number;
}

export interface TelegramSimOptions {
  token?: string;
  botUsername?: string;
  botName?: string;
  /** Group privacy mode (BotFather's default is on). */
  privacyMode?: boolean;
  /** Cloud limits; lower them to test the caps without big buffers. */
  uploadLimit?: number;
  downloadLimit?: number;
  /** Wait before redelivering an update the webhook did not accept. */
  webhookRetryMs?: number;
}

const MB = 1024 * 1024;
const TEXT_LIMIT = 4096;
const CAPTION_LIMIT = 1024;
const FIELD_LIMIT = 1 * MB;
const DEFAULT_ALLOWED = ['message', 'edited_message', 'channel_post', 'edited_channel_post', 'business_connection', 'business_message', 'edited_business_message', 'deleted_business_messages', 'inline_query', 'chosen_inline_result', 'callback_query', 'shipping_query', 'pre_checkout_query', 'purchased_paid_media', 'poll', 'poll_answer', 'my_chat_member', 'chat_join_request', 'chat_boost', 'removed_chat_boost'];
/** The reactions a bot may set (ReactionTypeEmoji in the Bot API docs). */
const REACTIONS = new Set(['❤', '👍', '👎', '🔥', '🥰', '👏', '😁', '🤔', '🤯', '😱', '🤬', '😢', '🎉', '🤩', '🤮', '💩', '🙏', '👌', '🕊', '🤡', '🥱', '🥴', '😍', '🐳', '❤‍🔥', '🌚', '🌭', '💯', '🤣', '⚡', '🍌', '🏆', '💔', '🤨', '😐', '🍓', '🍾', '💋', '🖕', '😈', '😴', '😭', '🤓', '👻', '👨‍💻', '👀', '🎃', '🙈', '😇', '😨', '🤝', '✍', '🤗', '🫡', '🎅', '🎄', '☃', '💅', '🤪', '🗿', '🆒', '💘', '🙉', '🦄', '😘', '💊', '🙊', '😎', '👾', '🤷‍♂', '🤷', '🤷‍♀', '😡']);
const FILE_FIELDS: Record<string, MediaKind> = { sendphoto: 'photo', sendvideo: 'video', senddocument: 'document' };

class ApiError extends Error {
  readonly status: number;
  readonly parameters: Json | undefined;
  constructor(status: number, description: string, parameters?: Json) {
    super(description);
    this.status = status;
    this.parameters = parameters;
  }
}

const bad = (description: string): ApiError => new ApiError(400, `Bad Request: ${description}`);
const forbidden = (description: string): ApiError => new ApiError(403, `Forbidden: ${description}`);

interface Upload {
  name: string | undefined;
  mime: string | undefined;
  data: Buffer;
}

interface ChatState {
  chat: SimChat;
  members: Map<number, MemberStatus>;
  /** Private chats: whether the user pressed Start / blocked the bot. */
  started: boolean;
  blocked: boolean;
  nextMessageId: number;
  messages: Map<number, SimMessage>;
}

interface Poller {
  res: ServerResponse;
  entry: SimRequest;
  limit: number;
  timer: NodeJS.Timeout;
}

interface Waiter {
  check: () => boolean;
}

/** Entities Telegram finds by itself in any text. */
const AUTO_ENTITIES: Array<[RegExp, string]> = [
  [/(?<=^|\s)\/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?=$|\s)/gu, 'bot_command'],
  [/https?:\/\/[^\s<>"]+/gu, 'url'],
  [/(?<=^|\s)@[A-Za-z0-9_]{4,32}/gu, 'mention'],
  [/(?<=^|\s)#[\p{L}\p{N}_]+/gu, 'hashtag'],
];

function autoEntities(text: string): Json[] {
  const found: Json[] = [];
  for (const [pattern, type] of AUTO_ENTITIES) {
    for (const match of text.matchAll(pattern)) found.push({ type, offset: match.index, length: match[0].length });
  }
  return found;
}

const HTML_TAGS: Record<string, string> = {
  b: 'bold', strong: 'bold', i: 'italic', em: 'italic', u: 'underline', ins: 'underline',
  s: 'strikethrough', strike: 'strikethrough', del: 'strikethrough', span: 'spoiler', 'tg-spoiler': 'spoiler',
  a: 'text_link', code: 'code', pre: 'pre', blockquote: 'blockquote', 'tg-emoji': 'custom_emoji',
};

/** Telegram's HTML parse mode: the tags it knows, strict nesting, four named entities plus numeric ones. */
export function parseHtml(input: string): { text: string; entities: Json[] } {
  const fail = (why: string) => bad(`can't parse entities: ${why}`);
  const byteOffset = (i: number) => Buffer.byteLength(input.slice(0, i));
  let text = '';
  const entities: Json[] = [];
  const stack: Array<{ name: string; start: number; entity: Json }> = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c === '&') {
      const m = /^&(lt|gt|amp|quot|#\d{1,7}|#x[0-9a-f]{1,6});/i.exec(input.slice(i, i + 12));
      if (m) {
        const name = m[1]!.toLowerCase();
        const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"' };
        text += named[name] ?? String.fromCodePoint(name.startsWith('#x') ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10));
        i += m[0].length;
      } else {
        text += c;
        i += 1;
      }
      continue;
    }
    if (c !== '<') {
      text += c;
      i += 1;
      continue;
    }
    const close = input.indexOf('>', i);
    if (close < 0) throw fail(`Can't find end of the tag starting at byte offset ${byteOffset(i)}`);
    const inner = input.slice(i + 1, close);
    if (inner.startsWith('/')) {
      const name = inner.slice(1).trim().toLowerCase();
      const top = stack.pop();
      if (!top) throw fail(`Unexpected end tag at byte offset ${byteOffset(i)}`);
      if (name !== '' && name !== top.name) throw fail(`Unmatched end tag at byte offset ${byteOffset(i)}, expected "</${top.name}>", found "</${name}>"`);
      const length = text.length - top.start;
      if (length > 0) entities.push({ ...top.entity, offset: top.start, length });
    } else {
      const m = /^([a-z][a-z0-9-]*)((?:\s+[a-z-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?)*)\s*$/i.exec(inner);
      const name = m?.[1]?.toLowerCase() ?? '';
      const type = HTML_TAGS[name];
      if (!m || !type) throw fail(`Unsupported start tag "${name || inner.split(/\s/)[0]}" at byte offset ${byteOffset(i)}`);
      const attrs: Record<string, string> = {};
      for (const a of (m[2] ?? '').matchAll(/([a-z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/gi)) {
        attrs[a[1]!.toLowerCase()] = a[2] ?? a[3] ?? a[4] ?? '';
      }
      const entity: Json = { type };
      if (name === 'span' && attrs.class !== 'tg-spoiler') throw fail(`Tag "span" must have class "tg-spoiler" at byte offset ${byteOffset(i)}`);
      if (name === 'a') {
        const href = attrs.href ?? '';
        const mention = /^tg:\/\/user\?id=(\d+)$/.exec(href);
        if (mention) Object.assign(entity, { type: 'text_mention', user: { id: Number(mention[1]), is_bot: false, first_name: '' } });
        else entity.url = href;
      }
      if (name === 'tg-emoji') {
        if (!attrs['emoji-id']) throw fail(`Custom emoji entity must contain a custom emoji identifier at byte offset ${byteOffset(i)}`);
        entity.custom_emoji_id = attrs['emoji-id'];
      }
      if (name === 'blockquote' && 'expandable' in attrs) entity.type = 'expandable_blockquote';
      if (name === 'code' && stack.at(-1)?.name === 'pre' && attrs.class?.startsWith('language-')) {
        stack.at(-1)!.entity.language = attrs.class.slice('language-'.length);
      }
      stack.push({ name, start: text.length, entity });
    }
    i = close + 1;
  }
  const open = stack.pop();
  if (open) throw fail(`Can't find end tag corresponding to start tag "${open.name}"`);
  return { text, entities };
}

function contentType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function mimeFromName(name: string | undefined): string | undefined {
  const ext = extname(name ?? '').toLowerCase();
  const known: Record<string, string> = {
    '.mp4': 'video/mp4', '.mov': 'video/quicktime', '.webm': 'video/webm', '.mkv': 'video/x-matroska',
    '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.txt': 'text/plain', '.pdf': 'application/pdf',
  };
  return known[ext];
}

export class TelegramSim {
  readonly token: string;
  readonly bot: SimUser;
  readonly options: Required<Omit<TelegramSimOptions, 'token' | 'botUsername' | 'botName'>>;
  readonly requests: SimRequest[] = [];
  /** answerCallbackQuery calls by query id. */
  readonly callbackAnswers = new Map<string, Json>();
  url = '';

  private server: Server | undefined;
  private closed = false;
  private readonly users = new Map<number, SimUser>();
  private readonly chats = new Map<number, ChatState>();
  private readonly files = new Map<string, SimFile>();
  private readonly filesByPath = new Map<string, SimFile>();
  private readonly commands = new Map<string, Json[]>();
  private readonly callbackQueries = new Map<string, { answered: boolean }>();
  private queue: Update[] = [];
  private nextUpdateId = 100_000_000 + Math.floor(Math.random() * 1000) * 1000;
  private allowedUpdates: string[] = DEFAULT_ALLOWED;
  private poller: Poller | undefined;
  private webhook: { url: string; secret: string | undefined; maxConnections: number; lastError?: { at: number; message: string } } | undefined;
  private webhookBusy = false;
  private webhookTimer: NodeJS.Timeout | undefined;
  private faults: Array<{ method: string; spec: SimFaultSpec; times: number }> = [];
  private waiters = new Set<Waiter>();
  private counter = 0;
  /** Cuts webhook deliveries still in flight when the simulator closes. */
  private readonly aborter = new AbortController();

  constructor(options: TelegramSimOptions = {}) {
    const botId = 7_000_000_000 + Math.floor(Math.random() * 1e8);
    this.token = options.token ?? `${botId}:AA${randomBytes(16).toString('base64url')}`;
    this.bot = {
      id: Number(this.token.split(':')[0]) || botId,
      is_bot: true,
      first_name: options.botName ?? 'Reelay',
      username: options.botUsername ?? 'reelay_sim_bot',
    };
    this.options = {
      privacyMode: options.privacyMode ?? true,
      uploadLimit: options.uploadLimit ?? 50 * MB,
      downloadLimit: options.downloadLimit ?? 20 * MB,
      webhookRetryMs: options.webhookRetryMs ?? 500,
    };
  }

  /** What grammY calls `apiRoot`. */
  get apiRoot(): string {
    return this.url;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) this.reply(res, 500, { ok: false, error_code: 500, description: `Internal Server Error: ${error instanceof Error ? error.message : String(error)}` });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.aborter.abort();
    clearTimeout(this.webhookTimer);
    this.answerPoller([]);
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
    this.server = undefined;
  }

  // --- the user side ------------------------------------------------------------------------------

  createUser(options: Partial<Omit<SimUser, 'id' | 'is_bot'>> = {}): SimUser {
    const n = ++this.counter;
    const user: SimUser = { ...options, id: 100_000_000 + n * 7919, is_bot: false, first_name: options.first_name ?? `User${n}` };
    this.users.set(user.id, user);
    return user;
  }

  /** The private chat with a user; `started: false` is a user who never pressed Start. */
  createPrivateChat(user: SimUser, options: { started?: boolean } = {}): SimChat {
    const existing = this.chats.get(user.id);
    if (existing) return existing.chat;
    const chat: SimChat = { id: user.id, type: 'private', user };
    this.chats.set(chat.id, {
      chat,
      members: new Map([[user.id, 'member'], [this.bot.id, 'member']]),
      started: options.started ?? true,
      blocked: false,
      nextMessageId: 1,
      messages: new Map(),
    });
    return chat;
  }

  createGroup(options: { title?: string; type?: 'group' | 'supergroup'; creator?: SimUser; admins?: SimUser[]; members?: SimUser[]; bot?: MemberStatus } = {}): SimChat {
    const n = ++this.counter;
    const type = options.type ?? 'supergroup';
    const chat: SimChat = { id: type === 'supergroup' ? -(1_001_000_000_000 + n) : -(400_000_000 + n), type, title: options.title ?? `Group ${n}` };
    const members = new Map<number, MemberStatus>();
    const creator = options.creator ?? this.createUser();
    members.set(creator.id, 'creator');
    for (const user of options.admins ?? []) members.set(user.id, 'administrator');
    for (const user of options.members ?? []) members.set(user.id, 'member');
    members.set(this.bot.id, options.bot ?? 'member');
    this.chats.set(chat.id, { chat, members, started: true, blocked: false, nextMessageId: 1, messages: new Map() });
    return chat;
  }

  /** Sets a member's (or, with 'bot', the bot's) status in a group. */
  setMemberStatus(chat: SimChat | number, who: SimUser | 'bot', status: MemberStatus, by?: SimUser): void {
    const state = this.state(chat);
    const id = who === 'bot' ? this.bot.id : who.id;
    const old = state.members.get(id) ?? 'left';
    state.members.set(id, status);
    if (who === 'bot' && old !== status) {
      const actor = by ?? this.users.get([...state.members].find(([, s]) => s === 'creator')?.[0] ?? 0) ?? this.bot;
      this.pushUpdate('my_chat_member', {
        my_chat_member: { chat: this.chatObject(state), from: actor, date: now(), old_chat_member: this.memberObject(this.bot, old), new_chat_member: this.memberObject(this.bot, status) },
      });
    }
    this.changed();
  }

  blockBot(user: SimUser, blocked = true): void {
    const state = this.chats.get(user.id);
    if (state) state.blocked = blocked;
    this.changed();
  }

  /** A user posts to a chat; the bot gets a `message` update when Telegram would deliver one. */
  sendUserMessage(chat: SimChat | number, from: SimUser, options: UserMessageOptions): Message {
    const state = this.state(chat);
    const status = state.members.get(from.id);
    if (state.chat.type !== 'private' && (status === undefined || status === 'left' || status === 'kicked')) {
      throw new Error(`sim: user ${from.id} is not a member of chat ${state.chat.id}`);
    }
    if (state.chat.type === 'private') {
      state.started = true;
      state.blocked = false;
    }
    const kinds: MediaKind[] = ['video', 'document', 'photo'];
    const kind = kinds.find((k) => options[k] !== undefined);
    let media: SimMessage['media'];
    let extra: Json = {};
    if (kind) {
      const input = this.fileInput(options[kind]!);
      const file = this.storeFile(kind, input);
      media = { kind, file };
      extra = { width: input.width, height: input.height, duration: input.duration };
    }
    const replyTo = options.reply_to_message_id === undefined ? undefined : this.message(state, options.reply_to_message_id, 'message to be replied not found');
    const record = this.createMessage(state, from, false, {
      text: media ? undefined : options.text,
      caption: media ? options.caption : undefined,
      entities: [],
      replyTo,
      media,
      mediaExtra: extra,
      replyMarkup: undefined,
    });
    if (this.delivers(state, record, replyTo)) this.pushUpdate('message', { message: record.raw });
    return record.raw as unknown as Message;
  }

  /** A user's reaction (their complete new list of emoji) to a message. */
  react(chat: SimChat | number, from: SimUser, messageId: number, emoji: string[]): void {
    const state = this.state(chat);
    const record = this.message(state, messageId, 'message not found');
    // Users pick from the standard set too (others exist only as Premium custom emoji): ✅ is not one.
    const odd = emoji.find((e) => !REACTIONS.has(e));
    if (odd !== undefined) throw new Error(`sim: ${odd} is not a standard Telegram reaction; users cannot react with it`);
    const old = record.reactions.get(from.id) ?? [];
    if (emoji.length === 0) record.reactions.delete(from.id);
    else record.reactions.set(from.id, [...emoji]);
    const asTypes = (list: string[]) => list.map((e) => ({ type: 'emoji', emoji: e }));
    // In groups Telegram tells only administrator bots about reactions.
    const visible = state.chat.type === 'private' || this.botStatus(state) === 'administrator' || this.botStatus(state) === 'creator';
    if (visible) {
      this.pushUpdate('message_reaction', {
        message_reaction: { chat: this.chatObject(state), message_id: messageId, user: from, date: now(), old_reaction: asTypes(old), new_reaction: asTypes(emoji) },
      });
    }
    this.changed();
  }

  /** A user presses an inline button; returns the callback query id. */
  pressButton(chat: SimChat | number, from: SimUser, messageId: number, callbackData: string): string {
    const state = this.state(chat);
    const record = this.message(state, messageId, 'message not found');
    const rows = (record.replyMarkup?.inline_keyboard ?? []) as Json[][];
    if (!rows.some((row) => row.some((button) => button.callback_data === callbackData))) {
      throw new Error(`sim: message ${messageId} has no button with callback_data ${JSON.stringify(callbackData)}`);
    }
    const id = `${BigInt(from.id) * 1000n + BigInt(++this.counter)}`;
    this.callbackQueries.set(id, { answered: false });
    this.pushUpdate('callback_query', {
      callback_query: { id, from, message: record.raw, chat_instance: String(Math.abs(state.chat.id) * 31), data: callbackData },
    });
    return id;
  }

  // --- introspection --------------------------------------------------------------------------------

  messages(chat: SimChat | number): SimMessage[] {
    return [...this.state(chat).messages.values()];
  }

  botMessages(chat: SimChat | number): SimMessage[] {
    return this.messages(chat).filter((m) => m.fromBot && !m.deleted);
  }

  getMessage(chat: SimChat | number, messageId: number): SimMessage | undefined {
    return this.state(chat).messages.get(messageId);
  }

  /** The chat as a newcomer would read it: one line per message, edits applied, buttons in brackets. */
  transcript(chat: SimChat | number): string[] {
    return this.messages(chat)
      .filter((m) => !m.deleted)
      .map((m) => {
        const who = m.fromBot ? (this.bot.username ?? 'bot') : (m.from.username ?? m.from.first_name);
        const media = m.media ? `[${m.media.kind}${m.media.file.name ? ` ${m.media.file.name}` : ''}, ${m.media.file.size} bytes] ` : '';
        const rows = (m.replyMarkup?.inline_keyboard ?? []) as Json[][];
        const buttons = rows.flat().map((b) => `[${String(b.text)}]`).join(' ');
        return `${who}: ${media}${m.text ?? m.caption ?? ''}${buttons ? ` ${buttons}` : ''}`;
      });
  }

  requestsTo(method: string): SimRequest[] {
    return this.requests.filter((r) => r.method.toLowerCase() === method.toLowerCase());
  }

  file(fileId: string): SimFile | undefined {
    return this.files.get(fileId);
  }

  myCommands(scope: Json = { type: 'default' }, languageCode = ''): Json[] | undefined {
    return this.commands.get(`${JSON.stringify(scope)}|${languageCode}`);
  }

  pendingUpdates(): Update[] {
    return [...this.queue];
  }

  currentAllowedUpdates(): string[] {
    return [...this.allowedUpdates];
  }

  /** Resolves with the predicate's first truthy value, checked on every change; rejects after timeoutMs. */
  waitFor<T>(predicate: () => T | undefined | null | false, timeoutMs = 5000): Promise<T> {
    const first = predicate();
    if (first) return Promise.resolve(first);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        check: () => {
          const value = predicate();
          if (!value) return false;
          clearTimeout(timer);
          clearInterval(poll);
          this.waiters.delete(waiter);
          resolve(value);
          return true;
        },
      };
      const timer = setTimeout(() => {
        clearInterval(poll);
        this.waiters.delete(waiter);
        reject(new Error(`sim: waitFor timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      // Predicates may also look at the bot's own state, which the simulator never hears about.
      const poll = setInterval(() => waiter.check(), 25);
      this.waiters.add(waiter);
    });
  }

  /** The next (or an already made) request to `method` that answered and satisfies `match`. */
  waitForRequest(method: string, match: (r: SimRequest) => boolean = () => true, timeoutMs = 5000): Promise<SimRequest> {
    return this.waitFor(() => this.requestsTo(method).find((r) => typeof r.status !== 'string' || r.status === 'reset' ? match(r) : false), timeoutMs);
  }

  /** A message from the bot in the chat (current content) that satisfies `match`. */
  waitForBotMessage(chat: SimChat | number, match: (m: SimMessage) => boolean = () => true, timeoutMs = 5000): Promise<SimMessage> {
    return this.waitFor(() => this.botMessages(chat).find(match), timeoutMs);
  }

  /** The next `times` calls to `method` fail this way. */
  fault(method: string, spec: SimFaultSpec, times = 1): void {
    this.faults.push({ method: method.toLowerCase(), spec, times });
  }

  clearFaults(): void {
    this.faults = [];
  }

  // --- plumbing ---------------------------------------------------------------------------------------

  private changed(): void {
    for (const waiter of [...this.waiters]) waiter.check();
  }

  private state(chat: SimChat | number): ChatState {
    const id = typeof chat === 'number' ? chat : chat.id;
    const state = this.chats.get(id);
    if (!state) throw new Error(`sim: no chat ${id}`);
    return state;
  }

  private botStatus(state: ChatState): MemberStatus {
    return state.members.get(this.bot.id) ?? 'left';
  }

  private message(state: ChatState, messageId: number, notFound: string): SimMessage {
    const record = state.messages.get(messageId);
    if (!record || record.deleted) throw bad(notFound);
    return record;
  }

  /** Group privacy mode: what a non-admin bot sees of other people's messages. */
  private delivers(state: ChatState, record: SimMessage, replyTo: SimMessage | undefined): boolean {
    if (state.chat.type === 'private') return true;
    const status = this.botStatus(state);
    if (status === 'left' || status === 'kicked') return false;
    if (!this.options.privacyMode || status === 'administrator' || status === 'creator') return true;
    const body = record.text ?? record.caption ?? '';
    if (body.startsWith('/')) return true;
    if (replyTo?.fromBot) return true;
    return this.bot.username !== undefined && body.includes(`@${this.bot.username}`);
  }

  private chatObject(state: ChatState): Json {
    const { chat } = state;
    if (chat.type === 'private') {
      const user = chat.user!;
      return { id: chat.id, type: 'private', first_name: user.first_name, last_name: user.last_name, username: user.username };
    }
    return { id: chat.id, type: chat.type, title: chat.title };
  }

  private pushUpdate(type: string, body: Json): void {
    // Telegram applies allowed_updates when it creates an update, not when it hands it out.
    if (!this.allowedUpdates.includes(type)) return;
    this.queue.push({ update_id: this.nextUpdateId++, ...body } as unknown as Update);
    setImmediate(() => {
      if (this.poller && this.queue.length > 0) this.answerPoller(this.queue.slice(0, this.poller.limit));
      this.deliverWebhook();
    });
    this.changed();
  }

  private answerPoller(updates: Update[]): void {
    const poller = this.poller;
    if (!poller) return;
    this.poller = undefined;
    clearTimeout(poller.timer);
    this.finish(poller.res, poller.entry, 200, { ok: true, result: updates });
  }

  private fileInput(value: Buffer | string | SimFileInput): SimFileInput {
    if (Buffer.isBuffer(value) || typeof value === 'string') return { source: value };
    return value;
  }

  private storeFile(kind: MediaKind, input: { source: Buffer | string; name?: string | undefined; mime?: string | undefined }): SimFile {
    const n = ++this.counter;
    const source = input.source;
    const size = Buffer.isBuffer(source) ? source.length : statSync(source).size;
    const name = input.name ?? (typeof source === 'string' ? basename(source) : undefined);
    const ext = extname(name ?? '') || (kind === 'photo' ? '.jpg' : kind === 'video' ? '.mp4' : '');
    const folder = { photo: 'photos', video: 'videos', document: 'documents' }[kind];
    const file: SimFile = {
      fileId: `BAACAgIAAxkBAAI${n}${randomBytes(24).toString('base64url')}`,
      fileUniqueId: `AgAD${n}${randomBytes(6).toString('base64url')}`,
      size,
      name,
      mime: input.mime ?? mimeFromName(name) ?? (kind === 'photo' ? 'image/jpeg' : kind === 'video' ? 'video/mp4' : 'application/octet-stream'),
      filePath: size <= this.options.downloadLimit ? `${folder}/file_${n}${ext}` : undefined,
      bytes: () => (Buffer.isBuffer(source) ? source : readFileSync(source)),
    };
    this.files.set(file.fileId, file);
    if (file.filePath) this.filesByPath.set(file.filePath, file);
    return file;
  }

  private mediaObject(kind: MediaKind, file: SimFile, extra: Json): Json | Json[] {
    const base = { file_id: file.fileId, file_unique_id: file.fileUniqueId, file_size: file.size };
    if (kind === 'photo') return [{ ...base, width: Number(extra.width ?? 320), height: Number(extra.height ?? 320) }];
    if (kind === 'video') {
      return { ...base, width: Number(extra.width ?? 0), height: Number(extra.height ?? 0), duration: Number(extra.duration ?? 0), file_name: file.name, mime_type: file.mime };
    }
    return { ...base, file_name: file.name, mime_type: file.mime };
  }

  private createMessage(
    state: ChatState,
    from: SimUser,
    fromBot: boolean,
    content: { text: string | undefined; caption: string | undefined; entities: Json[]; replyTo: SimMessage | undefined; media: SimMessage['media']; mediaExtra: Json; replyMarkup: Json | undefined },
  ): SimMessage {
    const messageId = state.nextMessageId++;
    const record: SimMessage = {
      chatId: state.chat.id,
      messageId,
      fromBot,
      from,
      text: content.text,
      caption: content.caption,
      replyMarkup: content.replyMarkup,
      replyTo: content.replyTo?.messageId,
      media: content.media,
      edits: [],
      deleted: false,
      botReaction: [],
      reactions: new Map(),
      raw: {},
    };
    record.raw = {
      message_id: messageId,
      from,
      chat: this.chatObject(state),
      date: now(),
      ...(content.replyTo ? { reply_to_message: withoutReply(content.replyTo.raw) } : {}),
      ...(content.media ? { [content.media.kind]: this.mediaObject(content.media.kind, content.media.file, content.mediaExtra) } : {}),
      ...this.textFields(content.text, content.caption, content.entities),
      ...(content.replyMarkup ? { reply_markup: content.replyMarkup } : {}),
    };
    state.messages.set(messageId, record);
    this.changed();
    return record;
  }

  private textFields(text: string | undefined, caption: string | undefined, parsed: Json[]): Json {
    const body = text ?? caption;
    if (body === undefined) return {};
    const entities = [...parsed, ...autoEntities(body)].sort((a, b) => Number(a.offset) - Number(b.offset));
    const key = text !== undefined ? 'text' : 'caption';
    return { [key]: body, ...(entities.length > 0 ? { [text !== undefined ? 'entities' : 'caption_entities']: entities } : {}) };
  }

  // --- HTTP -------------------------------------------------------------------------------------------------

  private reply(res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private finish(res: ServerResponse, entry: SimRequest, status: number, body: Json): void {
    entry.status = status;
    if (typeof body.description === 'string') entry.description = body.description;
    this.reply(res, status, body);
    this.changed();
  }

  private errorBody(error: ApiError): Json {
    return { ok: false, error_code: error.status, description: error.message, ...(error.parameters ? { parameters: error.parameters } : {}) };
  }

  private takeFault(method: string): SimFaultSpec | undefined {
    const index = this.faults.findIndex((f) => f.method === method.toLowerCase());
    if (index < 0) return undefined;
    const fault = this.faults[index]!;
    fault.times -= 1;
    if (fault.times <= 0) this.faults.splice(index, 1);
    return fault.spec;
  }

  private async drain(req: IncomingMessage): Promise<void> {
    for await (const _ of req as AsyncIterable<Buffer>) {
      // discard
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const download = /^\/file\/bot([^/]*)\/(.+)$/.exec(url.pathname);
    if (download) return this.download(req, res, download[1]!, decodeURIComponent(download[2]!));
    const route = /^\/bot([^/]*)\/([A-Za-z]+)$/.exec(url.pathname);
    const entry: SimRequest = { at: Date.now(), method: route?.[2] ?? url.pathname, http: req.method ?? 'GET', params: {}, status: 'pending' };
    this.requests.push(entry);
    this.changed();
    if (!route) {
      await this.drain(req);
      return this.finish(res, entry, 404, { ok: false, error_code: 404, description: 'Not Found' });
    }
    if (route[1] !== this.token) {
      await this.drain(req);
      return this.finish(res, entry, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
    }
    const fault = this.takeFault(entry.method);
    if (fault === 'reset') {
      entry.status = 'reset';
      req.socket.destroy();
      this.changed();
      return;
    }
    let params: Json;
    let uploads: Map<string, Upload>;
    try {
      ({ params, uploads } = await this.readParams(req, url, entry));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      return this.finish(res, entry, error.status, this.errorBody(error));
    }
    if (fault) {
      const retry = fault.retryAfter !== undefined ? { retry_after: fault.retryAfter } : undefined;
      const description = fault.description ?? (fault.status === 429 ? `Too Many Requests: retry after ${fault.retryAfter ?? 1}` : 'Internal Server Error');
      return this.finish(res, entry, fault.status, this.errorBody(new ApiError(fault.status, description, retry)));
    }
    const method = entry.method.toLowerCase();
    try {
      if (method === 'getupdates') return this.getUpdates(res, entry, new Params(params));
      const result = await this.call(method, new Params(params), uploads);
      this.finish(res, entry, 200, { ok: true, result });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      this.finish(res, entry, error.status, this.errorBody(error));
    }
  }

  /** Query string and body merged; uploads kept apart and logged by name and size only. */
  private async readParams(req: IncomingMessage, url: URL, entry: SimRequest): Promise<{ params: Json; uploads: Map<string, Upload> }> {
    const params: Json = Object.fromEntries(url.searchParams);
    const uploads = new Map<string, Upload>();
    const type = contentType(req);
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > this.options.uploadLimit) {
      await this.drain(req);
      throw new ApiError(413, 'Request Entity Too Large');
    }
    if (type === 'multipart/form-data') {
      const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(req.headers['content-type'] ?? '');
      if (!boundary) {
        await this.drain(req);
        throw bad('invalid multipart/form-data');
      }
      const parser = new MultipartParser(boundary[1] ?? boundary[2]!, (message) => bad(message));
      let current: { name: string; filename: string | undefined; mime: string | undefined; chunks: Buffer[]; size: number } | undefined;
      let total = 0;
      let tooBig = false;
      parser.onPart = (headers) => {
        const disposition = headers['content-disposition'] ?? '';
        // Lenient like Telegram's parser: grammY leaves filename= unquoted.
        const name = /(?:^|;)\s*name=(?:"([^"]*)"|([^;\s]*))/i.exec(disposition);
        const filename = /(?:^|;)\s*filename=(?:"([^"]*)"|([^;]*))/i.exec(disposition);
        current = {
          name: name?.[1] ?? name?.[2] ?? '',
          filename: filename ? (filename[1] ?? filename[2]!.trim()) : undefined,
          mime: headers['content-type'],
          chunks: [],
          size: 0,
        };
      };
      parser.onData = (data) => {
        if (!current || tooBig) return;
        current.size += data.length;
        if (current.filename === undefined && current.size > FIELD_LIMIT) throw bad(`field ${current.name} is too long`);
        current.chunks.push(Buffer.from(data));
      };
      parser.onPartEnd = () => {
        if (!current || tooBig) return;
        const data = Buffer.concat(current.chunks);
        if (current.filename !== undefined) uploads.set(current.name, { name: current.filename, mime: current.mime, data });
        else params[current.name] = data.toString('utf8');
        current = undefined;
      };
      let failure: unknown;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > this.options.uploadLimit) {
          // Keep reading (and discard): answering before the body ends makes clients see a reset.
          tooBig = true;
          current = undefined;
          continue;
        }
        if (failure === undefined) {
          try {
            parser.write(chunk);
          } catch (error) {
            failure = error;
          }
        }
      }
      if (tooBig) throw new ApiError(413, 'Request Entity Too Large');
      if (failure !== undefined) throw failure;
      if (!parser.done) throw bad('invalid multipart/form-data: no closing boundary');
    } else {
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total <= 10 * MB) chunks.push(chunk);
      }
      if (total > 10 * MB) throw new ApiError(413, 'Request Entity Too Large');
      const text = Buffer.concat(chunks).toString('utf8');
      if (type === 'application/json' && text.trim() !== '') {
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          throw bad("can't parse JSON object");
        }
        if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad("can't parse JSON object");
        Object.assign(params, value);
      } else if (type === 'application/x-www-form-urlencoded') {
        Object.assign(params, Object.fromEntries(new URLSearchParams(text)));
      }
    }
    entry.params = { ...params };
    for (const [name, upload] of uploads) entry.params[name] = { file: upload.name, size: upload.data.length, mime: upload.mime };
    return { params, uploads };
  }

  private download(req: IncomingMessage, res: ServerResponse, token: string, path: string): void {
    const entry: SimRequest = { at: Date.now(), method: 'file', http: req.method ?? 'GET', params: { file_path: path }, status: 'pending' };
    this.requests.push(entry);
    req.resume();
    if (token !== this.token) return this.finish(res, entry, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
    const file = this.filesByPath.get(path);
    if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) return this.finish(res, entry, 404, { ok: false, error_code: 404, description: 'Not Found' });
    entry.status = 200;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': file.size });
    this.changed();
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.end(file.bytes());
  }

  private getUpdates(res: ServerResponse, entry: SimRequest, p: Params): void {
    if (this.webhook) throw new ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
    const allowed = p.json('allowed_updates');
    if (Array.isArray(allowed)) this.allowedUpdates = allowed.length === 0 ? DEFAULT_ALLOWED : allowed.map(String);
    const offset = p.int('offset') ?? 0;
    if (offset > 0) this.queue = this.queue.filter((u) => u.update_id >= offset);
    else if (offset < 0) this.queue = this.queue.slice(offset);
    const limit = Math.min(100, Math.max(1, p.int('limit') ?? 100));
    const timeout = Math.max(0, p.int('timeout') ?? 0);
    // The newer request wins; the one it replaces learns that another instance is polling.
    if (this.poller) {
      const old = this.poller;
      this.poller = undefined;
      clearTimeout(old.timer);
      this.finish(old.res, old.entry, 409, { ok: false, error_code: 409, description: 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running' });
    }
    if (this.queue.length > 0 || timeout === 0 || this.closed) return this.finish(res, entry, 200, { ok: true, result: this.queue.slice(0, limit) });
    const poller: Poller = {
      res,
      entry,
      limit,
      timer: setTimeout(() => {
        if (this.poller === poller) this.answerPoller([]);
      }, timeout * 1000),
    };
    this.poller = poller;
    entry.status = 'held';
    this.changed();
    res.on('close', () => {
      if (this.poller === poller) {
        clearTimeout(poller.timer);
        this.poller = undefined;
      }
    });
  }

  // --- webhook ------------------------------------------------------------------------------------------

  private deliverWebhook(): void {
    const hook = this.webhook;
    if (!hook || this.webhookBusy || this.closed || this.queue.length === 0) return;
    const update = this.queue[0]!;
    this.webhookBusy = true;
    const entry: SimRequest = { at: Date.now(), method: 'webhook', http: 'POST', params: { update_id: update.update_id, url: hook.url }, status: 'pending' };
    this.requests.push(entry);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (hook.secret) headers['x-telegram-bot-api-secret-token'] = hook.secret;
    const done = async (response: Response | undefined, error: string | undefined) => {
      this.webhookBusy = false;
      if (this.closed) return;
      if (response?.ok) {
        entry.status = response.status;
        this.queue = this.queue.filter((u) => u.update_id !== update.update_id);
        await this.webhookReply(response);
        this.changed();
        this.deliverWebhook();
        return;
      }
      entry.status = response?.status ?? 'reset';
      const message = error ?? `Wrong response from the webhook: ${response?.status} ${response?.statusText}`;
      entry.description = message;
      if (this.webhook === hook) hook.lastError = { at: now(), message };
      this.changed();
      this.webhookTimer = setTimeout(() => this.deliverWebhook(), this.options.webhookRetryMs);
    };
    fetch(hook.url, { method: 'POST', headers, body: JSON.stringify(update), signal: AbortSignal.any([this.aborter.signal, AbortSignal.timeout(60_000)]) }).then(
      (response) => done(response, undefined),
      (error: unknown) => done(undefined, error instanceof Error ? error.message : String(error)),
    ).catch(() => undefined);
  }

  /** A webhook answer may carry one method call, which Telegram executes (its result is lost). */
  private async webhookReply(response: Response): Promise<void> {
    const text = await response.text().catch(() => '');
    if (!(response.headers.get('content-type') ?? '').includes('application/json') || text.trim() === '') return;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return;
    }
    if (!body || typeof body !== 'object' || typeof (body as Json).method !== 'string') return;
    const params = { ...(body as Json) };
    const method = String(params.method);
    delete params.method;
    const entry: SimRequest = { at: Date.now(), method, http: 'WEBHOOK-REPLY', params, status: 'pending' };
    this.requests.push(entry);
    try {
      await this.call(method.toLowerCase(), new Params(params), new Map());
      entry.status = 200;
    } catch (error) {
      entry.status = error instanceof ApiError ? error.status : 500;
      entry.description = error instanceof Error ? error.message : String(error);
    }
  }

  // --- methods --------------------------------------------------------------------------------------------

  private async call(method: string, p: Params, uploads: Map<string, Upload>): Promise<unknown> {
    switch (method) {
      case 'getme':
        return { ...this.bot, can_join_groups: true, can_read_all_group_messages: !this.options.privacyMode, supports_inline_queries: false, can_connect_to_business: false, has_main_web_app: false };
      case 'setwebhook': {
        const url = p.str('url') ?? '';
        if (url === '') return this.deleteWebhook(p);
        let parsed: URL;
        try {
          parsed = new URL(url);
        } catch {
          throw bad('bad webhook: Webhook URL is invalid');
        }
        const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname);
        if (parsed.protocol !== 'https:' && !loopback) throw bad('bad webhook: HTTPS url must be provided for webhook');
        const secret = p.str('secret_token');
        if (secret !== undefined && !/^[A-Za-z0-9_-]{1,256}$/.test(secret)) throw bad('bad webhook: secret token contains unallowed characters');
        const allowed = p.json('allowed_updates');
        if (Array.isArray(allowed)) this.allowedUpdates = allowed.length === 0 ? DEFAULT_ALLOWED : allowed.map(String);
        if (p.bool('drop_pending_updates')) this.queue = [];
        this.answerPoller([]);
        this.webhook = { url, secret, maxConnections: p.int('max_connections') ?? 40 };
        setImmediate(() => this.deliverWebhook());
        return true;
      }
      case 'deletewebhook':
        return this.deleteWebhook(p);
      case 'getwebhookinfo': {
        const hook = this.webhook;
        return {
          url: hook?.url ?? '',
          has_custom_certificate: false,
          pending_update_count: this.queue.length,
          ...(hook ? { max_connections: hook.maxConnections, ip_address: '127.0.0.1' } : {}),
          ...(hook?.lastError ? { last_error_date: hook.lastError.at, last_error_message: hook.lastError.message } : {}),
          ...(this.allowedUpdates !== DEFAULT_ALLOWED ? { allowed_updates: this.allowedUpdates } : {}),
        };
      }
      case 'sendmessage': {
        const state = this.writableChat(p);
        const { text, entities } = this.formatted(p, 'text', TEXT_LIMIT);
        if (text === '') throw bad('message text is empty');
        return this.botMessage(state, p, { text, caption: undefined, entities, media: undefined, mediaExtra: {} }).raw;
      }
      case 'sendphoto':
      case 'sendvideo':
      case 'senddocument': {
        const kind = FILE_FIELDS[method]!;
        const state = this.writableChat(p);
        const file = await this.inputFile(p, uploads, kind);
        const { text: caption, entities } = this.formatted(p, 'caption', CAPTION_LIMIT);
        const extra = { width: p.int('width'), height: p.int('height'), duration: p.int('duration') };
        return this.botMessage(state, p, { text: undefined, caption: caption === '' ? undefined : caption, entities, media: { kind, file }, mediaExtra: extra }).raw;
      }
      case 'editmessagetext':
      case 'editmessagecaption':
      case 'editmessagereplymarkup':
        return this.edit(method, p);
      case 'deletemessage': {
        const state = this.writableChat(p);
        const record = state.messages.get(p.requiredInt('message_id', 'message identifier is not specified'));
        if (!record || record.deleted) throw bad('message to delete not found');
        const admin = ['administrator', 'creator'].includes(this.botStatus(state));
        if (!record.fromBot && state.chat.type !== 'private' && !admin) throw bad("message can't be deleted");
        record.deleted = true;
        this.changed();
        return true;
      }
      case 'setmessagereaction': {
        const state = this.writableChat(p);
        const record = this.message(state, p.requiredInt('message_id', 'message identifier is not specified'), 'message to react not found');
        const reaction = p.json('reaction') ?? [];
        if (!Array.isArray(reaction)) throw bad('REACTION_INVALID');
        const emoji = (reaction as Json[]).map((r) => {
          if (r.type !== 'emoji' || typeof r.emoji !== 'string' || !REACTIONS.has(r.emoji)) throw bad('REACTION_INVALID');
          return r.emoji;
        });
        if (emoji.length > 1) throw bad('REACTIONS_TOO_MANY');
        record.botReaction = emoji;
        this.changed();
        return true;
      }
      case 'answercallbackquery': {
        const id = p.str('callback_query_id') ?? '';
        const query = this.callbackQueries.get(id);
        if (!query || query.answered) throw bad('query is too old and response timeout expired or query ID is invalid');
        const text = p.str('text');
        if (text !== undefined && text.length > 200) throw bad('MESSAGE_TOO_LONG');
        query.answered = true;
        this.callbackAnswers.set(id, { text, show_alert: p.bool('show_alert') ?? false, url: p.str('url'), cache_time: p.int('cache_time') });
        this.changed();
        return true;
      }
      case 'sendchataction':
        this.writableChat(p);
        return true;
      case 'setmycommands': {
        const commands = p.json('commands');
        if (!Array.isArray(commands)) throw bad("can't parse commands JSON object");
        if (commands.length > 100) throw bad('too many commands');
        for (const c of commands as Json[]) {
          if (typeof c.command !== 'string' || !/^[a-z0-9_]{1,32}$/.test(c.command)) throw bad('BOT_COMMAND_INVALID');
          if (typeof c.description !== 'string' || c.description.length < 1 || c.description.length > 256) throw bad('command description must be non-empty');
        }
        this.commands.set(this.commandsKey(p), (commands as Json[]).map((c) => ({ command: c.command, description: c.description })));
        return true;
      }
      case 'getmycommands':
        return this.commands.get(this.commandsKey(p)) ?? [];
      case 'deletemycommands':
        this.commands.delete(this.commandsKey(p));
        return true;
      case 'getfile': {
        const file = this.files.get(p.str('file_id') ?? '');
        if (!file) throw bad('invalid file_id');
        if (!file.filePath) throw bad('file is too big');
        return { file_id: file.fileId, file_unique_id: file.fileUniqueId, file_size: file.size, file_path: file.filePath };
      }
      case 'getchat': {
        const state = this.knownChat(p);
        return {
          ...this.chatObject(state),
          accent_color_id: 0,
          max_reaction_count: 11,
          ...(state.chat.type === 'private' ? {} : { permissions: { can_send_messages: true } }),
          accepted_gift_types: { unlimited_gifts: false, limited_gifts: false, unique_gifts: false, premium_subscription: false },
        };
      }
      case 'getchatmember': {
        const state = this.knownChat(p);
        const userId = p.requiredInt('user_id', 'user not found');
        const user = userId === this.bot.id ? this.bot : this.users.get(userId);
        if (!user) throw bad('user not found');
        return this.memberObject(user, state.members.get(userId) ?? 'left');
      }
      case 'getchatadministrators': {
        const state = this.knownChat(p);
        if (state.chat.type === 'private') throw bad('there are no administrators in the private chat');
        const admins = [...state.members].filter(([, s]) => s === 'creator' || s === 'administrator');
        return admins.map(([id, s]) => this.memberObject(id === this.bot.id ? this.bot : this.users.get(id)!, s));
      }
      case 'getchatmembercount': {
        const state = this.knownChat(p);
        return [...state.members.values()].filter((s) => s !== 'left' && s !== 'kicked').length;
      }
      case 'close':
      case 'logout':
        return true;
      default:
        throw new ApiError(404, 'Not Found');
    }
  }

  private deleteWebhook(p: Params): true {
    this.webhook = undefined;
    clearTimeout(this.webhookTimer);
    if (p.bool('drop_pending_updates')) this.queue = [];
    return true;
  }

  private commandsKey(p: Params): string {
    const scope = (p.json('scope') as Json | undefined) ?? { type: 'default' };
    return `${JSON.stringify(scope)}|${p.str('language_code') ?? ''}`;
  }

  private memberObject(user: SimUser, status: MemberStatus): Json {
    if (status === 'creator') return { status, user, is_anonymous: false };
    if (status === 'administrator') {
      return {
        status, user, can_be_edited: false, is_anonymous: false, can_manage_chat: true, can_delete_messages: true, can_manage_video_chats: true,
        can_restrict_members: true, can_promote_members: false, can_change_info: true, can_invite_users: true, can_post_stories: false,
        can_edit_stories: false, can_delete_stories: false, can_pin_messages: true,
      };
    }
    if (status === 'kicked') return { status, user, until_date: 0 };
    return { status, user };
  }

  private knownChat(p: Params): ChatState {
    const raw = p.raw.chat_id;
    if (raw === undefined || raw === '') throw bad('chat_id is empty');
    let state: ChatState | undefined;
    if (typeof raw === 'string' && raw.startsWith('@')) {
      state = [...this.chats.values()].find((s) => s.chat.user?.username === raw.slice(1));
    } else {
      const id = Number(raw);
      if (Number.isSafeInteger(id)) state = this.chats.get(id);
    }
    if (!state) throw bad('chat not found');
    return state;
  }

  /** A chat the bot may write to, refused the way Telegram refuses it. */
  private writableChat(p: Params): ChatState {
    const state = this.knownChat(p);
    if (state.chat.type === 'private') {
      if (!state.started) throw forbidden("bot can't initiate conversation with a user");
      if (state.blocked) throw forbidden('bot was blocked by the user');
      return state;
    }
    const status = this.botStatus(state);
    if (status === 'kicked') throw forbidden(`bot was kicked from the ${state.chat.type === 'group' ? 'group' : 'supergroup'} chat`);
    if (status === 'left') throw forbidden(`bot is not a member of the ${state.chat.type === 'group' ? 'group' : 'supergroup'} chat`);
    return state;
  }

  private formatted(p: Params, field: 'text' | 'caption', limit: number): { text: string; entities: Json[] } {
    const raw = p.str(field) ?? '';
    const mode = (p.str('parse_mode') ?? '').toLowerCase();
    let result: { text: string; entities: Json[] };
    if (mode === 'html') result = parseHtml(raw);
    else if (mode === '' || mode === 'markdown' || mode === 'markdownv2') {
      const given = p.json(field === 'text' ? 'entities' : 'caption_entities');
      result = { text: raw, entities: Array.isArray(given) ? (given as Json[]) : [] };
    } else throw bad(`unsupported parse_mode`);
    if (result.text.length > limit) throw bad(field === 'text' ? 'message is too long' : 'message caption is too long');
    return result;
  }

  private replyMarkup(p: Params): Json | undefined {
    const markup = p.json('reply_markup');
    if (markup === undefined) return undefined;
    if (!markup || typeof markup !== 'object' || Array.isArray(markup)) throw bad("can't parse reply keyboard markup JSON object");
    const keyboard = (markup as Json).inline_keyboard;
    // Only inline keyboards belong to the message; reply keyboards are the client's business.
    if (keyboard === undefined) return undefined;
    if (!Array.isArray(keyboard) || !keyboard.every((row) => Array.isArray(row))) throw bad('field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays');
    for (const row of keyboard as Json[][]) {
      for (const button of row) {
        if (typeof button.text !== 'string' || button.text === '') throw bad('text buttons are unallowed in the inline keyboard');
        if (button.callback_data !== undefined) {
          const size = Buffer.byteLength(String(button.callback_data));
          if (typeof button.callback_data !== 'string' || size < 1 || size > 64) throw bad('BUTTON_DATA_INVALID');
        } else if (typeof button.url === 'string') {
          if (!/^(https?|tg):\/\/\S+$/.test(button.url)) throw bad(`inline keyboard button URL '${button.url}' is invalid: Wrong HTTP URL`);
        } else if (!['switch_inline_query', 'switch_inline_query_current_chat', 'login_url', 'web_app', 'copy_text', 'pay', 'callback_game'].some((k) => k in button)) {
          throw bad("can't find field \"callback_data\" or \"url\" in the inline keyboard button");
        }
      }
    }
    return keyboard.length === 0 ? undefined : { inline_keyboard: keyboard };
  }

  private botMessage(state: ChatState, p: Params, content: { text: string | undefined; caption: string | undefined; entities: Json[]; media: SimMessage['media']; mediaExtra: Json }): SimMessage {
    const params = p.json('reply_parameters') as Json | undefined;
    const replyId = params?.message_id !== undefined ? Number(params.message_id) : p.int('reply_to_message_id');
    let replyTo: SimMessage | undefined;
    if (replyId !== undefined) {
      const target = state.messages.get(replyId);
      const tolerant = params?.allow_sending_without_reply === true || p.bool('allow_sending_without_reply') === true;
      if (target && !target.deleted) replyTo = target;
      else if (!tolerant) throw bad('message to be replied not found');
    }
    const replyMarkup = this.replyMarkup(p);
    return this.createMessage(state, this.bot, true, { ...content, replyTo, replyMarkup });
  }

  private async inputFile(p: Params, uploads: Map<string, Upload>, kind: MediaKind): Promise<SimFile> {
    const value = p.raw[kind];
    const direct = uploads.get(kind);
    if (direct) return this.storeFile(kind, { source: direct.data, name: direct.name, mime: direct.mime === 'application/octet-stream' ? undefined : direct.mime });
    if (typeof value !== 'string' || value === '') throw bad(`there is no ${kind} in the request`);
    if (value.startsWith('attach://')) {
      const upload = uploads.get(value.slice('attach://'.length));
      if (!upload) throw bad(`wrong remote file identifier specified: can't find attached file`);
      return this.storeFile(kind, { source: upload.data, name: upload.name, mime: upload.mime === 'application/octet-stream' ? undefined : upload.mime });
    }
    if (/^https?:\/\//i.test(value)) {
      const url = new URL(value);
      // The simulator only fetches from loopback, as tests must.
      if (!['127.0.0.1', 'localhost'].includes(url.hostname)) throw bad('wrong file identifier/HTTP URL specified');
      const response = await fetch(url).catch(() => undefined);
      if (!response?.ok) throw bad('failed to get HTTP URL content');
      const data = Buffer.from(await response.arrayBuffer());
      if (data.length > this.options.downloadLimit) throw bad('failed to get HTTP URL content');
      return this.storeFile(kind, { source: data, name: basename(url.pathname), mime: response.headers.get('content-type') ?? undefined });
    }
    const file = this.files.get(value);
    if (!file) throw bad('wrong file identifier/HTTP URL specified');
    return file;
  }

  private edit(method: string, p: Params): Json {
    if (p.str('inline_message_id') !== undefined) throw bad('inline messages are not simulated');
    const state = this.writableChat(p);
    const record = this.message(state, p.requiredInt('message_id', 'message identifier is not specified'), 'message to edit not found');
    if (!record.fromBot) throw bad("message can't be edited");
    let text = record.text;
    let caption = record.caption;
    let entities = ((record.raw.entities ?? record.raw.caption_entities ?? []) as Json[]).filter((e) => !isAuto(e));
    if (method === 'editmessagetext') {
      if (record.text === undefined) throw bad('there is no text in the message to edit');
      ({ text, entities } = this.formatted(p, 'text', TEXT_LIMIT));
      if (text === '') throw bad('message text is empty');
    } else if (method === 'editmessagecaption') {
      if (record.media === undefined) throw bad('there is no caption in the message to edit');
      const formatted = this.formatted(p, 'caption', CAPTION_LIMIT);
      caption = formatted.text === '' ? undefined : formatted.text;
      entities = formatted.entities;
    }
    const replyMarkup = this.replyMarkup(p);
    const same = text === record.text && caption === record.caption && JSON.stringify(entities) === JSON.stringify(((record.raw.entities ?? record.raw.caption_entities ?? []) as Json[]).filter((e) => !isAuto(e))) && JSON.stringify(replyMarkup) === JSON.stringify(record.replyMarkup);
    if (same) throw bad('message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message');
    record.edits.push({ at: Date.now(), text: record.text, caption: record.caption, replyMarkup: record.replyMarkup });
    record.text = text;
    record.caption = caption;
    record.replyMarkup = replyMarkup;
    const raw: Json = { ...record.raw };
    for (const key of ['text', 'caption', 'entities', 'caption_entities', 'reply_markup']) delete raw[key];
    Object.assign(raw, this.textFields(text, caption, entities), replyMarkup ? { reply_markup: replyMarkup } : {}, { edit_date: now() });
    record.raw = raw;
    this.changed();
    return raw;
  }
}

const AUTO_TYPES = new Set(AUTO_ENTITIES.map(([, type]) => type));

function isAuto(entity: Json): boolean {
  return AUTO_TYPES.has(String(entity.type));
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}

function withoutReply(raw: Json): Json {
  const copy = { ...raw };
  delete copy.reply_to_message;
  return copy;
}

/** Bot API parameters arrive typed (JSON) or as strings (query, form, multipart); read them either way. */
class Params {
  readonly raw: Json;
  constructor(raw: Json) {
    this.raw = raw;
  }

  str(name: string): string | undefined {
    const value = this.raw[name];
    if (value === undefined || value === null) return undefined;
    return typeof value === 'string' ? value : String(value);
  }

  int(name: string): number | undefined {
    const value = this.raw[name];
    if (value === undefined || value === null || value === '') return undefined;
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw bad(`field "${name}" must be of type Integer`);
    return n;
  }

  requiredInt(name: string, missing: string): number {
    const n = this.int(name);
    if (n === undefined) throw bad(missing);
    return n;
  }

  bool(name: string): boolean | undefined {
    const value = this.raw[name];
    if (value === undefined || value === null) return undefined;
    return value === true || value === 'true' || value === '1' || value === 1;
  }

  /** Objects and arrays: as JSON in a JSON body, JSON-encoded strings elsewhere. */
  json(name: string): unknown {
    const value = this.raw[name];
    if (typeof value !== 'string') return value ?? undefined;
    try {
      return JSON.parse(value) as unknown;
    } catch {
      throw bad(`can't parse ${name} JSON object`);
    }
  }
}

export async function startTelegramSim(options: TelegramSimOptions = {}): Promise<TelegramSim> {
  return new TelegramSim(options).start();
}

