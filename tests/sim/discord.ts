/**
 * A wire-level simulator of Discord's HTTP API (v10, under `/api/v10`), its gateway (WebSocket, JSON
 * text frames, no compression) and its attachment CDN, all on one 127.0.0.1 port. A bot that works
 * against it with discord.js / @discordjs/rest got the protocol right. It enforces:
 * - `Authorization: Bot <token>` on every REST route but the interaction callback, the interaction
 *   webhooks and the CDN (401 `{"message":"401: Unauthorized","code":0}`);
 * - the gateway handshake: the URL only from GET /gateway/bot, `?v=10&encoding=json` (close 4012
 *   otherwise), HELLO -> IDENTIFY (4004 bad token, 4013 invalid intents, 4014 a privileged intent the
 *   application has not enabled, 4005 a second IDENTIFY, 4003 anything before it, 4002 bad JSON or
 *   payload compression) -> READY -> one GUILD_CREATE per guild; heartbeats answered with op 11, and a
 *   connection that stops heartbeating closed with 4009; sequence numbers per session; RESUME (op 6)
 *   replays what the session missed, then RESUMED (op 9 `false` for an unknown session);
 * - intents: MESSAGE_* only with GuildMessages (DirectMessages in DMs), reactions only with
 *   GuildMessageReactions, and without MessageContent the content, embeds, attachments and components
 *   of other users' messages are empty unless the message mentions the bot or is a DM; GUILD_CREATE
 *   carries only the bot's own member unless GuildMembers is requested (as on Discord);
 * - interactions: one callback per interaction (40060 after that), within the ack window of the
 *   dispatch (3 s; later: 404 10062 Unknown interaction), webhook token valid 15 min (then 401
 *   50027); a deferred reply is replaced by the first edit or follow-up; ephemeral messages (flags 64)
 *   are not dispatched and cannot be fetched from the channel;
 * - message bodies: 2000 characters, 10 embeds, 5 action rows of 5 buttons, not empty (50006),
 *   Invalid Form Body (50035) with Discord's `errors` tree; only the bot's messages can be edited
 *   (50005); multipart with `files[n]` and `payload_json`, total upload size within the guild's limit
 *   (default 25 MiB; 413 / 40005);
 * - command registration (bulk overwrite): names, descriptions, option types, required before optional;
 * - per-bucket rate limits with X-RateLimit-* headers (429 when exceeded), plus injected 429s (route or
 *   global, with `retry_after` and Retry-After) and connection resets;
 * - 204 responses with no body and no content type;
 * - CDN links signed with `ex`/`is`/`hm` that expire (404 once expired or revoked).
 * Every HTTP request and every gateway frame is logged for assertions.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { MultipartParser } from './multipart.ts';

type Json = Record<string, unknown>;

export const PERMISSIONS = {
  ADMINISTRATOR: 1n << 3n,
  ADD_REACTIONS: 1n << 6n,
  MANAGE_GUILD: 1n << 5n,
  VIEW_CHANNEL: 1n << 10n,
  SEND_MESSAGES: 1n << 11n,
  MANAGE_MESSAGES: 1n << 13n,
  EMBED_LINKS: 1n << 14n,
  ATTACH_FILES: 1n << 15n,
  READ_MESSAGE_HISTORY: 1n << 16n,
  USE_APPLICATION_COMMANDS: 1n << 31n,
} as const;

/** What a member of a fresh guild may do (Discord's @everyone defaults, roughly). */
export const DEFAULT_EVERYONE =
  PERMISSIONS.VIEW_CHANNEL | PERMISSIONS.SEND_MESSAGES | PERMISSIONS.ADD_REACTIONS | PERMISSIONS.EMBED_LINKS |
  PERMISSIONS.ATTACH_FILES | PERMISSIONS.READ_MESSAGE_HISTORY | PERMISSIONS.USE_APPLICATION_COMMANDS;
const ALL_PERMISSIONS = (1n << 50n) - 1n;

export const INTENTS = {
  Guilds: 1 << 0,
  GuildMembers: 1 << 1,
  GuildPresences: 1 << 8,
  GuildMessages: 1 << 9,
  GuildMessageReactions: 1 << 10,
  DirectMessages: 1 << 12,
  DirectMessageReactions: 1 << 13,
  MessageContent: 1 << 15,
} as const;
const VALID_INTENTS = (1 << 26) - 1;

const EPHEMERAL = 64;
const LOADING = 128;
const DISCORD_EPOCH = 1420070400000n;
const MIB = 1024 * 1024;

export interface SimUser {
  id: string;
  username: string;
  globalName: string | null;
  bot: boolean;
}

export interface SimRole {
  id: string;
  name: string;
  permissions: bigint;
  position: number;
}

export interface SimMember {
  user: SimUser;
  roleIds: string[];
  joinedAt: string;
}

export interface SimChannel {
  id: string;
  guildId: string | undefined;
  name: string;
  /** 0 guild text, 1 DM. */
  type: 0 | 1;
  /** The bot cannot see it (50001 Missing Access). */
  hiddenFromBot: boolean;
  recipientId: string | undefined;
}

export interface SimGuild {
  id: string;
  name: string;
  ownerId: string;
  roles: SimRole[];
  members: Map<string, SimMember>;
  channelIds: string[];
  uploadLimit: number;
}

export interface SimAttachment {
  id: string;
  filename: string;
  contentType: string;
  bytes: Buffer | undefined;
  path: string | undefined;
  size: number;
  description: string | undefined;
  /** Links issued before this moment no longer work. */
  revokedBefore: number;
}

export interface SimMessageVersion {
  at: number;
  content: string;
  embeds: Json[];
  components: Json[];
  attachmentIds: string[];
  flags: number;
}

export interface SimMessage {
  id: string;
  channelId: string;
  guildId: string | undefined;
  authorId: string;
  content: string;
  embeds: Json[];
  components: Json[];
  attachments: SimAttachment[];
  flags: number;
  mentionIds: string[];
  replyTo: string | undefined;
  createdAt: number;
  editedAt: number | undefined;
  deleted: boolean;
  /** Every state the message has been in, first to last. */
  history: SimMessageVersion[];
  /** emoji key ('👍' or 'name:id') -> user ids. */
  reactions: Map<string, Set<string>>;
  interactionId: string | undefined;
  ephemeral: boolean;
  /** Discord's message type: 0 default, 19 reply, 20 slash command response. */
  type: number;
}

export type SimCallbackType = 4 | 5 | 6 | 7 | 9;

export interface SimInteraction {
  id: string;
  token: string;
  type: 2 | 3;
  guildId: string;
  channelId: string;
  userId: string;
  commandName: string | undefined;
  customId: string | undefined;
  /** For buttons: the message the button is on. */
  messageId: string | undefined;
  dispatchedAt: number;
  callback: { type: SimCallbackType; at: number; data: Json | undefined } | undefined;
  /** The message the callback created (or, for 6/7, the component's message). */
  originalMessageId: string | undefined;
  followUpIds: string[];
  ephemeral: boolean;
  /** Set when the webhook token has been made to expire. */
  tokenExpired: boolean;
}

export interface SimCommand {
  id: string;
  guildId: string | undefined;
  name: string;
  type: number;
  description: string;
  options: Json[];
  raw: Json;
}

export interface SimRequest {
  at: number;
  method: string;
  path: string;
  /** `METHOD /template`, e.g. `POST /channels/:channel/messages`; `cdn` for attachment downloads. */
  route: string;
  status: number | 'reset';
  auth: string | undefined;
  contentType: string | undefined;
  body?: unknown;
  files?: Array<{ field: string; filename: string; size: number; contentType: string }>;
}

export interface SimGatewayFrame {
  at: number;
  connection: number;
  dir: 'in' | 'out';
  op: number;
  t?: string | null;
  s?: number | null;
  close?: number;
}

export type SimFaultSpec = { status: number; retryAfter?: number; global?: boolean; code?: number; message?: string } | 'reset';

export interface SimFileInput {
  name: string;
  contentType: string;
  bytes?: Buffer | Uint8Array;
  path?: string;
}

export interface DiscordSimOptions {
  token?: string;
  applicationId?: string;
  botUsername?: string;
  /** Privileged intents the application has enabled in the developer portal. */
  privilegedIntents?: { messageContent?: boolean; guildMembers?: boolean; guildPresences?: boolean };
  heartbeatIntervalMs?: number;
  /** How long after the dispatch an interaction may be answered. */
  interactionAckWindowMs?: number;
  interactionTokenTtlMs?: number;
  cdnTtlMs?: number;
  /** Per bucket and major parameter: this many requests per window. */
  rateLimit?: { limit: number; windowMs: number };
  /** Slash commands must be registered before they can be used (as on Discord). */
  requireRegisteredCommands?: boolean;
}

class ApiError extends Error {
  readonly status: number;
  readonly code: number;
  readonly errors: Json | undefined;
  readonly headers: Record<string, string>;
  constructor(status: number, code: number, message: string, errors?: Json, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.errors = errors;
    this.headers = headers;
  }
}

/** Collects field errors into Discord's nested `errors` tree for 50035 Invalid Form Body. */
class FormErrors {
  private readonly tree: Json = {};
  private count = 0;
  add(path: string, code: string, message: string): void {
    let node = this.tree;
    for (const key of path.split('.')) {
      node[key] ??= {};
      node = node[key] as Json;
    }
    const list = (node._errors ??= []) as Json[];
    list.push({ code, message });
    this.count += 1;
  }
  throwIfAny(): void {
    if (this.count > 0) throw new ApiError(400, 50035, 'Invalid Form Body', this.tree);
  }
}

/** A list field of a message body: absent or null is empty, otherwise a list of at most `max`. */
function listOf(errors: FormErrors, field: string, value: unknown, max: number): Json[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    errors.add(field, 'BASE_TYPE_LIST', 'Must be a list.');
    return [];
  }
  if (value.length > max) errors.add(field, 'BASE_TYPE_MAX_LENGTH', `Must be ${max} or fewer in length.`);
  return value as Json[];
}

const unknownChannel = (): ApiError => new ApiError(404, 10003, 'Unknown Channel');
const unknownMessage = (): ApiError => new ApiError(404, 10008, 'Unknown Message');
const unknownInteraction = (): ApiError => new ApiError(404, 10062, 'Unknown interaction');
const unknownWebhook = (): ApiError => new ApiError(404, 10015, 'Unknown Webhook');

interface Route {
  method: string;
  template: string;
  pattern: RegExp;
  auth: boolean;
  /** Which parameter makes the bucket (Discord's "major parameter"). */
  major: string | undefined;
  limited: boolean;
  handler: (ctx: RouteContext) => Promise<void>;
}

interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  entry: SimRequest;
  rate: Record<string, string>;
}

interface Session {
  id: string;
  intents: number;
  seq: number;
  log: Array<{ s: number; t: string; d: Json }>;
  socket: WebSocket | undefined;
  connection: number;
}

interface Connection {
  n: number;
  path: string;
  query: string;
  socket: WebSocket;
  session: Session | undefined;
  lastBeat: number;
  timer: NodeJS.Timeout | undefined;
  serverClosed: boolean;
}

interface Bucket {
  count: number;
  resetAt: number;
}

const COMMAND_NAME = /^[-_\p{Ll}\p{Lo}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$/u;

export class DiscordSim {
  readonly token: string;
  readonly applicationId: string;
  readonly bot: SimUser;
  readonly options: Required<Omit<DiscordSimOptions, 'token' | 'applicationId' | 'botUsername' | 'privilegedIntents'>> & {
    privilegedIntents: { messageContent: boolean; guildMembers: boolean; guildPresences: boolean };
  };
  readonly users = new Map<string, SimUser>();
  readonly guilds = new Map<string, SimGuild>();
  readonly channels = new Map<string, SimChannel>();
  readonly messages = new Map<string, SimMessage>();
  readonly interactions = new Map<string, SimInteraction>();
  readonly commands: SimCommand[] = [];
  readonly requests: SimRequest[] = [];
  readonly gatewayLog: SimGatewayFrame[] = [];
  /** Each gateway connection: which path it used (`/gateway` or `/resume`) and how it authenticated. */
  readonly connections: Array<{ n: number; path: string; query: string; kind: 'identify' | 'resume' | 'none'; closedWith?: number }> = [];
  url = '';
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private readonly routes: Route[] = [];
  private readonly sessions = new Map<string, Session>();
  private readonly live = new Set<Connection>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly attachments = new Map<string, SimAttachment>();
  private readonly cdnSecret = randomBytes(16);
  private faults: Array<{ route: string; spec: SimFaultSpec; times: number }> = [];
  private sequence = 0n;
  private connectionCount = 0;

  constructor(options: DiscordSimOptions = {}) {
    this.token = options.token ?? `${Buffer.from('100000000000000001').toString('base64')}.sim.${randomBytes(16).toString('hex')}`;
    this.applicationId = options.applicationId ?? this.snowflake();
    this.options = {
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 41_250,
      interactionAckWindowMs: options.interactionAckWindowMs ?? 3000,
      interactionTokenTtlMs: options.interactionTokenTtlMs ?? 15 * 60_000,
      cdnTtlMs: options.cdnTtlMs ?? 24 * 3600_000,
      rateLimit: options.rateLimit ?? { limit: 5, windowMs: 1000 },
      requireRegisteredCommands: options.requireRegisteredCommands ?? true,
      privilegedIntents: {
        messageContent: options.privilegedIntents?.messageContent ?? true,
        guildMembers: options.privilegedIntents?.guildMembers ?? false,
        guildPresences: options.privilegedIntents?.guildPresences ?? false,
      },
    };
    // On Discord the bot user shares the application's id.
    this.bot = { id: this.applicationId, username: options.botUsername ?? 'Reelay', globalName: null, bot: true };
    this.users.set(this.bot.id, this.bot);
    this.defineRoutes();
  }

  /** What discord.js takes as `rest.api` / @discordjs/rest as `api`. */
  get apiRoot(): string {
    return `${this.url}/api`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.sendJson(res, 500, { message: error instanceof Error ? error.message : String(error), code: 0 });
      });
    });
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const conn of this.live) {
      clearInterval(conn.timer);
      conn.socket.terminate();
    }
    this.live.clear();
    // Connections the simulator already closed may still be mid-handshake; they go too.
    for (const socket of this.wss?.clients ?? []) socket.terminate();
    if (this.wss) await new Promise((resolve) => this.wss!.close(resolve));
    this.wss = undefined;
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
    this.server = undefined;
  }

  // --- the world ---------------------------------------------------------------------------------

  addUser(username: string, globalName: string | null = null): SimUser {
    const user: SimUser = { id: this.snowflake(), username, globalName, bot: false };
    this.users.set(user.id, user);
    return user;
  }

  /** A guild with @everyone, the bot as a member (with `botPermissions`), and the channels named. */
  addGuild(options: { name?: string; channels?: string[]; everyonePermissions?: bigint; botPermissions?: bigint; uploadLimit?: number; owner?: SimUser } = {}): SimGuild {
    const id = this.snowflake();
    const owner = options.owner ?? this.addUser('owner');
    const guild: SimGuild = {
      id,
      name: options.name ?? 'Sim Guild',
      ownerId: owner.id,
      roles: [{ id, name: '@everyone', permissions: options.everyonePermissions ?? DEFAULT_EVERYONE, position: 0 }],
      members: new Map(),
      channelIds: [],
      uploadLimit: options.uploadLimit ?? 25 * MIB,
    };
    this.guilds.set(id, guild);
    const botRole = this.addRole(id, 'Reelay', options.botPermissions ?? DEFAULT_EVERYONE | PERMISSIONS.MANAGE_MESSAGES);
    this.addMember(id, this.bot, [botRole.id]);
    this.addMember(id, owner);
    for (const name of options.channels ?? ['general']) this.addChannel(id, name);
    for (const session of this.sessions.values()) {
      if (session.intents & INTENTS.Guilds) this.dispatchTo(session, 'GUILD_CREATE', this.guildCreate(guild, session.intents));
    }
    return guild;
  }

  addRole(guildId: string, name: string, permissions: bigint): SimRole {
    const guild = this.guildOf(guildId);
    const role: SimRole = { id: this.snowflake(), name, permissions, position: guild.roles.length };
    guild.roles.push(role);
    return role;
  }

  addChannel(guildId: string, name: string, options: { hiddenFromBot?: boolean } = {}): SimChannel {
    const guild = this.guildOf(guildId);
    const channel: SimChannel = { id: this.snowflake(), guildId, name, type: 0, hiddenFromBot: options.hiddenFromBot ?? false, recipientId: undefined };
    this.channels.set(channel.id, channel);
    guild.channelIds.push(channel.id);
    return channel;
  }

  /** Adds a user (or a new user by that name) to the guild with these roles (ids or names). */
  addMember(guildId: string, user: SimUser | string, roles: string[] = []): SimMember {
    const guild = this.guildOf(guildId);
    const u = typeof user === 'string' ? this.addUser(user) : user;
    const roleIds = roles.map((r) => guild.roles.find((role) => role.id === r || role.name === r)?.id ?? r);
    const member: SimMember = { user: u, roleIds, joinedAt: new Date().toISOString() };
    guild.members.set(u.id, member);
    return member;
  }

  /** The bot's DM channel with this user (one per user, as on Discord). */
  dmChannel(userId: string): SimChannel {
    const user = this.userOf(userId);
    let channel = [...this.channels.values()].find((c) => c.type === 1 && c.recipientId === user.id);
    if (!channel) {
      channel = { id: this.snowflake(), guildId: undefined, name: '', type: 1, hiddenFromBot: false, recipientId: user.id };
      this.channels.set(channel.id, channel);
    }
    return channel;
  }

  /** Guild-wide permissions of a member, as Discord computes them (owner and ADMINISTRATOR get all). */
  permissionsOf(guildId: string, userId: string): bigint {
    const guild = this.guildOf(guildId);
    if (guild.ownerId === userId) return ALL_PERMISSIONS;
    const member = guild.members.get(userId);
    let perms = guild.roles[0]!.permissions;
    for (const role of guild.roles) if (member?.roleIds.includes(role.id)) perms |= role.permissions;
    return perms & PERMISSIONS.ADMINISTRATOR ? ALL_PERMISSIONS : perms;
  }

  // --- the user side -----------------------------------------------------------------------------

  /** A user posts in a channel; `mentionsBot` puts `<@bot>` in front of the content if it is not there. */
  userMessage(channelId: string, userId: string, input: { content?: string; attachments?: SimFileInput[]; mentionsBot?: boolean; replyTo?: string } = {}): SimMessage {
    const channel = this.channelOf(channelId);
    let content = input.content ?? '';
    const tag = `<@${this.bot.id}>`;
    if (input.mentionsBot && !content.includes(tag)) content = `${tag} ${content}`.trimEnd();
    const message = this.createMessage(channel, userId, {
      content,
      attachments: (input.attachments ?? []).map((f) => this.storeFile(f)),
      replyTo: input.replyTo,
    });
    return message;
  }

  /**
   * A user runs a slash command; `name` may be `settings alerts` for a subcommand. Options are checked
   * against the registered command; attachment options come from `attachments` by option name.
   */
  slashCommand(
    guildId: string,
    channelId: string,
    userId: string,
    name: string,
    options: Record<string, string | number | boolean> = {},
    attachments: Record<string, SimFileInput> = {},
  ): { id: string; token: string } {
    const guild = this.guildOf(guildId);
    const channel = this.channelOf(channelId);
    const [commandName, ...path] = name.split(' ');
    const command =
      this.commands.find((c) => c.guildId === guildId && c.name === commandName) ?? this.commands.find((c) => c.guildId === undefined && c.name === commandName);
    if (!command && this.options.requireRegisteredCommands) throw new Error(`/${commandName} is not registered`);
    let defs: Json[] = command?.options ?? [];
    for (const sub of path) {
      const def = defs.find((o) => o.name === sub && (o.type === 1 || o.type === 2));
      if (!def && command) throw new Error(`/${name}: no subcommand ${sub}`);
      defs = (def?.options as Json[] | undefined) ?? [];
    }
    const resolved: { attachments: Json; channels: Json; users: Json; members: Json; roles: Json } = { attachments: {}, channels: {}, users: {}, members: {}, roles: {} };
    const values: Json[] = [];
    for (const def of defs) if (def.required === true && !(String(def.name) in options) && !(String(def.name) in attachments)) throw new Error(`/${name}: option ${String(def.name)} is required`);
    for (const [key, value] of Object.entries(options)) {
      const def = defs.find((o) => o.name === key);
      if (!def && command) throw new Error(`/${name}: no option ${key}`);
      const type = typeof def?.type === 'number' ? def.type : typeof value === 'string' ? 3 : typeof value === 'boolean' ? 5 : 10;
      if (type === 7) resolved.channels[String(value)] = this.channelJson(this.channelOf(String(value)));
      if (type === 6) {
        const member = guild.members.get(String(value));
        resolved.users[String(value)] = this.userJson(this.userOf(String(value)));
        if (member) resolved.members[String(value)] = { ...this.memberJson(member, false), permissions: String(this.permissionsOf(guildId, member.user.id)) };
      }
      if (type === 8) {
        const role = guild.roles.find((r) => r.id === value);
        if (role) resolved.roles[role.id] = this.roleJson(role);
      }
      values.push({ name: key, type, value });
    }
    for (const [key, file] of Object.entries(attachments)) {
      const def = defs.find((o) => o.name === key);
      if (command && def?.type !== 11) throw new Error(`/${name}: ${key} is not an attachment option`);
      const attachment = this.storeFile(file);
      resolved.attachments[attachment.id] = { ...this.attachmentJson(attachment, channel.id), ephemeral: true };
      values.push({ name: key, type: 11, value: attachment.id });
    }
    let optionTree: Json[] = values;
    for (const sub of [...path].reverse()) optionTree = [{ name: sub, type: optionTree === values ? 1 : 2, options: optionTree }];
    const cleaned = Object.fromEntries(Object.entries(resolved).filter(([, v]) => Object.keys(v as Json).length > 0));
    const data: Json = { id: command?.id ?? this.snowflake(), name: commandName, type: 1, options: optionTree, guild_id: command?.guildId };
    if (Object.keys(cleaned).length > 0) data.resolved = cleaned;
    return this.dispatchInteraction({ type: 2, guild, channel, userId, commandName, data });
  }

  /** A user presses a button (by custom_id) on a message of the bot. */
  pressButton(channelId: string, messageId: string, userId: string, customId: string): { id: string; token: string } {
    const channel = this.channelOf(channelId);
    const message = this.messages.get(messageId);
    if (!message || message.deleted || message.channelId !== channelId) throw new Error(`no message ${messageId} in ${channelId}`);
    const buttons = message.components.flatMap((row) => (Array.isArray(row.components) ? (row.components as Json[]) : []));
    if (!buttons.some((b) => b.custom_id === customId && b.disabled !== true)) throw new Error(`message ${messageId} has no enabled button ${customId}`);
    const guild = this.guildOf(channel.guildId ?? '');
    return this.dispatchInteraction({ type: 3, guild, channel, userId, customId, messageId, data: { custom_id: customId, component_type: 2 } });
  }

  react(channelId: string, messageId: string, userId: string, emoji: string): void {
    const message = this.messageIn(channelId, messageId);
    this.addReaction(message, userId, emoji);
  }

  unreact(channelId: string, messageId: string, userId: string, emoji: string): void {
    const message = this.messageIn(channelId, messageId);
    this.removeReaction(message, userId, emoji);
  }

  // --- introspection -----------------------------------------------------------------------------

  /** Messages of a channel, oldest first (ephemeral ones only when asked). */
  channelMessages(channelId: string, options: { includeEphemeral?: boolean; includeDeleted?: boolean } = {}): SimMessage[] {
    return [...this.messages.values()].filter(
      (m) => m.channelId === channelId && (options.includeEphemeral || !m.ephemeral) && (options.includeDeleted || !m.deleted),
    );
  }

  /** The message the interaction's callback created or edited, then its follow-ups. */
  responsesTo(interactionId: string): { original: SimMessage | undefined; followUps: SimMessage[] } {
    const interaction = this.interactions.get(interactionId);
    if (!interaction) throw new Error(`no interaction ${interactionId}`);
    const original = interaction.originalMessageId ? this.messages.get(interaction.originalMessageId) : undefined;
    return { original, followUps: interaction.followUpIds.map((id) => this.messages.get(id)!) };
  }

  commandsOf(guildId?: string): SimCommand[] {
    return this.commands.filter((c) => c.guildId === guildId);
  }

  requestsTo(route: string): SimRequest[] {
    return this.requests.filter((r) => r.route === route || r.route.endsWith(` ${route}`));
  }

  /** Polls `predicate` until it returns something truthy, and returns that. */
  async waitFor<T>(predicate: () => T | undefined | null | false, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = predicate();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`waitFor: timed out after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  // --- faults and time ---------------------------------------------------------------------------

  /**
   * The next `times` requests to `route` (`METHOD /template`, a bare `/template` for any method, or
   * `*`) fail: with this status (429 gets `retry_after`, Retry-After and, if global, X-RateLimit-Global)
   * or by a connection reset.
   */
  fault(route: string, spec: SimFaultSpec, times = 1): void {
    this.faults.push({ route, spec, times });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Closes every gateway connection with this code (default 4000, which clients resume after); the sessions stay resumable. */
  dropGateway(code = 4000): void {
    for (const conn of [...this.live]) this.closeConnection(conn, code);
  }

  /** Cuts every gateway connection without a close frame (clients see 1006). */
  killGateway(): void {
    for (const conn of [...this.live]) {
      clearInterval(conn.timer);
      this.live.delete(conn);
      conn.socket.terminate();
    }
  }

  /** Sends op 7 Reconnect to every connection. */
  requestReconnect(): void {
    for (const conn of this.live) this.sendFrame(conn, { op: 7, d: null, s: null, t: null });
  }

  /** Forgets every session: a RESUME then gets op 9 `false`. */
  invalidateSessions(): void {
    this.sessions.clear();
  }

  /** Every CDN link issued so far stops working (as if it were past `ex`). */
  expireCdnLinks(): void {
    const now = Date.now() + 1;
    for (const attachment of this.attachments.values()) attachment.revokedBefore = now;
  }

  expireInteractionToken(interactionId: string): void {
    const interaction = this.interactions.get(interactionId);
    if (interaction) interaction.tokenExpired = true;
  }

  get gatewaySessions(): number {
    return this.sessions.size;
  }

  // --- plumbing: ids, JSON shapes ----------------------------------------------------------------

  private snowflake(): string {
    this.sequence += 1n;
    return (((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | (1n << 17n) | (this.sequence & 0xfffn)).toString();
  }

  private guildOf(id: string): SimGuild {
    const guild = this.guilds.get(id);
    if (!guild) throw new Error(`no guild ${id}`);
    return guild;
  }

  private channelOf(id: string): SimChannel {
    const channel = this.channels.get(id);
    if (!channel) throw new Error(`no channel ${id}`);
    return channel;
  }

  private userOf(id: string): SimUser {
    const user = this.users.get(id);
    if (!user) throw new Error(`no user ${id}`);
    return user;
  }

  private messageIn(channelId: string, messageId: string): SimMessage {
    const message = this.messages.get(messageId);
    if (!message || message.deleted || message.channelId !== channelId) throw new Error(`no message ${messageId} in ${channelId}`);
    return message;
  }

  private userJson(user: SimUser): Json {
    const json: Json = {
      id: user.id,
      username: user.username,
      discriminator: '0',
      global_name: user.globalName,
      avatar: null,
      public_flags: 0,
      flags: 0,
    };
    if (user.bot) json.bot = true;
    return json;
  }

  private roleJson(role: SimRole): Json {
    return {
      id: role.id,
      name: role.name,
      color: 0,
      colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
      hoist: false,
      icon: null,
      unicode_emoji: null,
      position: role.position,
      permissions: String(role.permissions),
      managed: false,
      mentionable: false,
      flags: 0,
    };
  }

  private memberJson(member: SimMember, withUser: boolean): Json {
    const json: Json = {
      nick: null,
      avatar: null,
      banner: null,
      roles: member.roleIds,
      joined_at: member.joinedAt,
      premium_since: null,
      deaf: false,
      mute: false,
      flags: 0,
      pending: false,
      communication_disabled_until: null,
    };
    if (withUser) json.user = this.userJson(member.user);
    return json;
  }

  private channelJson(channel: SimChannel): Json {
    if (channel.type === 1) {
      return { id: channel.id, type: 1, last_message_id: null, flags: 0, recipients: [this.userJson(this.userOf(channel.recipientId ?? ''))] };
    }
    return {
      id: channel.id,
      type: 0,
      guild_id: channel.guildId,
      name: channel.name,
      position: this.guilds.get(channel.guildId ?? '')?.channelIds.indexOf(channel.id) ?? 0,
      permission_overwrites: [],
      parent_id: null,
      topic: null,
      nsfw: false,
      last_message_id: null,
      rate_limit_per_user: 0,
      flags: 0,
    };
  }

  private guildCreate(guild: SimGuild, intents: number): Json {
    const members = [...guild.members.values()].filter((m) => intents & INTENTS.GuildMembers || m.user.id === this.bot.id);
    return {
      id: guild.id,
      name: guild.name,
      icon: null,
      splash: null,
      discovery_splash: null,
      owner_id: guild.ownerId,
      afk_channel_id: null,
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      roles: guild.roles.map((r) => this.roleJson(r)),
      emojis: [],
      stickers: [],
      features: [],
      mfa_level: 0,
      application_id: null,
      system_channel_id: null,
      system_channel_flags: 0,
      rules_channel_id: null,
      vanity_url_code: null,
      description: null,
      banner: null,
      premium_tier: 0,
      premium_subscription_count: 0,
      preferred_locale: 'en-US',
      public_updates_channel_id: null,
      nsfw_level: 0,
      premium_progress_bar_enabled: false,
      joined_at: guild.members.get(this.bot.id)?.joinedAt,
      large: false,
      unavailable: false,
      member_count: guild.members.size,
      voice_states: [],
      members: members.map((m) => this.memberJson(m, true)),
      channels: guild.channelIds.map((id) => this.channelJson(this.channels.get(id)!)),
      threads: [],
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
    };
  }

  private cdnUrl(attachment: SimAttachment, channelId: string, prefix = 'attachments'): string {
    const now = Date.now();
    const ex = Math.floor((now + this.options.cdnTtlMs) / 1000).toString(16);
    const is = Math.floor(now / 1000).toString(16);
    // Millisecond issue time in the signature so a revocation in the same second still applies.
    const path = `/${prefix}/${channelId}/${attachment.id}/${encodeURIComponent(attachment.filename)}`;
    const hm = this.sign(`${path}|${ex}|${now}`);
    return `${this.url}${path}?ex=${ex}&is=${is}&hm=${hm}&t=${now.toString(36)}&`;
  }

  private sign(text: string): string {
    return createHmac('sha256', this.cdnSecret).update(text).digest('hex');
  }

  private attachmentJson(attachment: SimAttachment, channelId: string): Json {
    const json: Json = {
      id: attachment.id,
      filename: attachment.filename,
      size: attachment.size,
      url: this.cdnUrl(attachment, channelId),
      proxy_url: this.cdnUrl(attachment, channelId, 'media-proxy'),
      content_type: attachment.contentType,
    };
    if (attachment.description !== undefined) json.description = attachment.description;
    return json;
  }

  private messageJson(message: SimMessage, stripContent = false): Json {
    const channel = this.channels.get(message.channelId)!;
    const author = this.userOf(message.authorId);
    const interaction = message.interactionId ? this.interactions.get(message.interactionId) : undefined;
    const reactions = [...message.reactions.entries()]
      .filter(([, users]) => users.size > 0)
      .map(([emoji, users]) => ({
        emoji: this.emojiJson(emoji),
        count: users.size,
        count_details: { burst: 0, normal: users.size },
        burst_colors: [],
        me: users.has(this.bot.id),
        me_burst: false,
      }));
    const json: Json = {
      type: message.type,
      id: message.id,
      channel_id: message.channelId,
      author: this.userJson(author),
      content: stripContent ? '' : message.content,
      timestamp: new Date(message.createdAt).toISOString(),
      edited_timestamp: message.editedAt ? new Date(message.editedAt).toISOString() : null,
      tts: false,
      mention_everyone: false,
      mentions: message.mentionIds.map((id) => this.userJson(this.userOf(id))),
      mention_roles: [],
      attachments: stripContent ? [] : message.attachments.map((a) => this.attachmentJson(a, channel.id)),
      embeds: stripContent ? [] : message.embeds,
      components: stripContent ? [] : message.components,
      pinned: false,
      flags: message.flags,
    };
    if (reactions.length > 0) json.reactions = reactions;
    if (message.replyTo) json.message_reference = { type: 0, message_id: message.replyTo, channel_id: message.channelId, guild_id: message.guildId };
    if (interaction) {
      json.webhook_id = this.applicationId;
      json.application_id = this.applicationId;
      json.interaction_metadata = {
        id: interaction.id,
        type: interaction.type,
        user: this.userJson(this.userOf(interaction.userId)),
        authorizing_integration_owners: { '0': interaction.guildId },
        ...(interaction.type === 2 ? { name: interaction.commandName } : { interacted_message_id: interaction.messageId }),
      };
    }
    return json;
  }

  private emojiJson(key: string): Json {
    const custom = /^(?:a:)?([\w~]+):(\d+)$/.exec(key);
    return custom ? { id: custom[2], name: custom[1] } : { id: null, name: key };
  }

  // --- plumbing: state changes that dispatch ------------------------------------------------------

  private storeFile(input: SimFileInput): SimAttachment {
    const bytes = input.bytes ? Buffer.from(input.bytes) : undefined;
    const size = bytes ? bytes.length : statSync(input.path ?? '').size;
    const attachment: SimAttachment = {
      id: this.snowflake(),
      filename: input.name,
      contentType: input.contentType,
      bytes,
      path: bytes ? undefined : input.path,
      size,
      description: undefined,
      revokedBefore: 0,
    };
    this.attachments.set(attachment.id, attachment);
    return attachment;
  }

  private createMessage(
    channel: SimChannel,
    authorId: string,
    input: {
      content?: string;
      embeds?: Json[];
      components?: Json[];
      attachments?: SimAttachment[];
      flags?: number;
      replyTo?: string | undefined;
      interactionId?: string;
      type?: number;
    },
  ): SimMessage {
    const content = input.content ?? '';
    const mentionIds = [...content.matchAll(/<@!?(\d+)>/g)].map((m) => m[1]!).filter((id, i, all) => this.users.has(id) && all.indexOf(id) === i);
    const flags = input.flags ?? 0;
    const message: SimMessage = {
      id: this.snowflake(),
      channelId: channel.id,
      guildId: channel.guildId,
      authorId,
      content,
      embeds: input.embeds ?? [],
      components: input.components ?? [],
      attachments: input.attachments ?? [],
      flags,
      mentionIds,
      replyTo: input.replyTo,
      createdAt: Date.now(),
      editedAt: undefined,
      deleted: false,
      history: [],
      reactions: new Map(),
      interactionId: input.interactionId,
      ephemeral: (flags & EPHEMERAL) !== 0,
      type: input.type ?? (input.replyTo ? 19 : 0),
    };
    message.history.push(this.version(message));
    this.messages.set(message.id, message);
    if (!message.ephemeral) this.dispatchMessage('MESSAGE_CREATE', message);
    return message;
  }

  private version(message: SimMessage): SimMessageVersion {
    return {
      at: Date.now(),
      content: message.content,
      embeds: message.embeds,
      components: message.components,
      attachmentIds: message.attachments.map((a) => a.id),
      flags: message.flags,
    };
  }

  private editMessage(message: SimMessage, body: Json, files: SimAttachment[]): void {
    if (typeof body.content === 'string' || body.content === null) message.content = (body.content as string | null) ?? '';
    if (Array.isArray(body.embeds)) message.embeds = body.embeds as Json[];
    if (Array.isArray(body.components)) message.components = body.components as Json[];
    if (Array.isArray(body.attachments)) {
      // `attachments` lists what to keep: existing ones by id; new ones refer to the files by index.
      const keep = new Set((body.attachments as Json[]).map((a) => String(a.id)));
      message.attachments = message.attachments.filter((a) => keep.has(a.id));
    }
    message.attachments.push(...files);
    if (typeof body.flags === 'number') message.flags = (message.flags & ~4) | (body.flags & 4);
    message.flags &= ~LOADING;
    message.editedAt = Date.now();
    message.history.push(this.version(message));
    if (!message.ephemeral) this.dispatchMessage('MESSAGE_UPDATE', message);
  }

  private deleteMessage(message: SimMessage): void {
    message.deleted = true;
    if (message.ephemeral) return;
    this.dispatchGuildOrDm(message, 'MESSAGE_DELETE', { id: message.id, channel_id: message.channelId, guild_id: message.guildId }, INTENTS.GuildMessages, INTENTS.DirectMessages);
  }

  private addReaction(message: SimMessage, userId: string, emoji: string): void {
    const users = message.reactions.get(emoji) ?? new Set<string>();
    message.reactions.set(emoji, users);
    if (users.has(userId)) return;
    users.add(userId);
    const d: Json = {
      type: 0,
      user_id: userId,
      channel_id: message.channelId,
      message_id: message.id,
      emoji: this.emojiJson(emoji),
      message_author_id: message.authorId,
      burst: false,
      burst_colors: [],
    };
    if (message.guildId) {
      d.guild_id = message.guildId;
      const member = this.guilds.get(message.guildId)?.members.get(userId);
      if (member) d.member = this.memberJson(member, true);
    }
    this.dispatchGuildOrDm(message, 'MESSAGE_REACTION_ADD', d, INTENTS.GuildMessageReactions, INTENTS.DirectMessageReactions);
  }

  private removeReaction(message: SimMessage, userId: string, emoji: string): void {
    const users = message.reactions.get(emoji);
    if (!users?.delete(userId)) return;
    const d: Json = { type: 0, user_id: userId, channel_id: message.channelId, message_id: message.id, emoji: this.emojiJson(emoji), burst: false };
    if (message.guildId) d.guild_id = message.guildId;
    this.dispatchGuildOrDm(message, 'MESSAGE_REACTION_REMOVE', d, INTENTS.GuildMessageReactions, INTENTS.DirectMessageReactions);
  }

  private dispatchMessage(t: 'MESSAGE_CREATE' | 'MESSAGE_UPDATE', message: SimMessage): void {
    for (const session of this.sessions.values()) {
      const intent = message.guildId ? INTENTS.GuildMessages : INTENTS.DirectMessages;
      if (!(session.intents & intent)) continue;
      const privileged =
        message.authorId === this.bot.id || !message.guildId || message.mentionIds.includes(this.bot.id) || (session.intents & INTENTS.MessageContent) !== 0;
      const d = this.messageJson(message, !privileged);
      if (message.guildId) {
        d.guild_id = message.guildId;
        const member = this.guilds.get(message.guildId)?.members.get(message.authorId);
        if (member) d.member = this.memberJson(member, false);
      }
      this.dispatchTo(session, t, d);
    }
  }

  private dispatchGuildOrDm(message: SimMessage, t: string, d: Json, guildIntent: number, dmIntent: number): void {
    const intent = message.guildId ? guildIntent : dmIntent;
    for (const session of this.sessions.values()) if (session.intents & intent) this.dispatchTo(session, t, d);
  }

  private dispatchInteraction(input: {
    type: 2 | 3;
    guild: SimGuild;
    channel: SimChannel;
    userId: string;
    commandName?: string;
    customId?: string;
    messageId?: string;
    data: Json;
  }): { id: string; token: string } {
    const member = input.guild.members.get(input.userId);
    if (!member) throw new Error(`user ${input.userId} is not a member of ${input.guild.id}`);
    const interaction: SimInteraction = {
      id: this.snowflake(),
      token: `aW50ZXJhY3Rpb246${randomBytes(32).toString('base64url')}`,
      type: input.type,
      guildId: input.guild.id,
      channelId: input.channel.id,
      userId: input.userId,
      commandName: input.commandName,
      customId: input.customId,
      messageId: input.messageId,
      dispatchedAt: Date.now(),
      callback: undefined,
      originalMessageId: undefined,
      followUpIds: [],
      ephemeral: false,
      tokenExpired: false,
    };
    this.interactions.set(interaction.id, interaction);
    const d: Json = {
      id: interaction.id,
      application_id: this.applicationId,
      type: input.type,
      data: input.data,
      guild: { id: input.guild.id, locale: 'en-US', features: [] },
      guild_id: input.guild.id,
      channel: this.channelJson(input.channel),
      channel_id: input.channel.id,
      member: { ...this.memberJson(member, true), permissions: String(this.permissionsOf(input.guild.id, input.userId)) },
      token: interaction.token,
      version: 1,
      app_permissions: String(this.permissionsOf(input.guild.id, this.bot.id)),
      locale: 'en-US',
      guild_locale: 'en-US',
      entitlements: [],
      authorizing_integration_owners: { '0': input.guild.id },
      context: 0,
      attachment_size_limit: input.guild.uploadLimit,
    };
    if (input.messageId) d.message = this.messageJson(this.messages.get(input.messageId)!);
    for (const session of this.sessions.values()) this.dispatchTo(session, 'INTERACTION_CREATE', d);
    return { id: interaction.id, token: interaction.token };
  }

  // --- gateway -----------------------------------------------------------------------------------

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://sim');
    if (url.pathname !== '/gateway' && url.pathname !== '/resume') {
      socket.destroy();
      return;
    }
    this.wss!.handleUpgrade(req, socket, head, (ws) => this.accept(ws, url));
  }

  private accept(socket: WebSocket, url: URL): void {
    const conn: Connection = { n: ++this.connectionCount, path: url.pathname, query: url.search, socket, session: undefined, lastBeat: Date.now(), timer: undefined, serverClosed: false };
    const record: (typeof this.connections)[number] = { n: conn.n, path: url.pathname, query: url.search, kind: 'none' };
    this.connections.push(record);
    this.live.add(conn);
    socket.on('close', (code) => {
      record.closedWith ??= code;
      clearInterval(conn.timer);
      this.live.delete(conn);
      if (conn.session?.socket === socket) conn.session.socket = undefined;
      // A client that closes with 1000/1001 ends its session (Discord's rule); other codes keep it resumable.
      if (!conn.serverClosed && (code === 1000 || code === 1001) && conn.session) this.sessions.delete(conn.session.id);
    });
    socket.on('error', () => undefined);
    if (url.searchParams.get('v') !== '10') return this.closeConnection(conn, 4012);
    if (url.searchParams.get('encoding') !== 'json' || url.searchParams.has('compress')) return this.closeConnection(conn, 4002);
    const interval = this.options.heartbeatIntervalMs;
    this.sendFrame(conn, { op: 10, d: { heartbeat_interval: interval, _trace: ['["sim-gateway",{"micros":0}]'] }, s: null, t: null });
    conn.timer = setInterval(() => {
      // A client gets the interval plus some slack before it counts as gone.
      if (Date.now() - conn.lastBeat > interval * 1.5 + 1000) this.closeConnection(conn, 4009);
    }, Math.min(interval, 1000));
    conn.timer.unref();
    socket.on('message', (data, isBinary) => this.onFrame(conn, data, isBinary));
  }

  private closeConnection(conn: Connection, code: number): void {
    conn.serverClosed = true;
    clearInterval(conn.timer);
    this.live.delete(conn);
    const record = this.connections.find((c) => c.n === conn.n);
    if (record) record.closedWith = code;
    this.gatewayLog.push({ at: Date.now(), connection: conn.n, dir: 'out', op: -1, close: code });
    if (conn.session?.socket === conn.socket) conn.session.socket = undefined;
    if (conn.socket.readyState === WebSocket.OPEN) conn.socket.close(code);
  }

  private sendFrame(conn: Connection, frame: { op: number; d: unknown; s: number | null; t: string | null }): void {
    this.gatewayLog.push({ at: Date.now(), connection: conn.n, dir: 'out', op: frame.op, t: frame.t, s: frame.s });
    if (conn.socket.readyState === WebSocket.OPEN) conn.socket.send(JSON.stringify(frame));
  }

  private dispatchTo(session: Session, t: string, d: Json): void {
    session.seq += 1;
    session.log.push({ s: session.seq, t, d });
    if (session.log.length > 1000) session.log.shift();
    const conn = [...this.live].find((c) => c.session === session && c.socket === session.socket);
    if (conn) this.sendFrame(conn, { op: 0, d, s: session.seq, t });
  }

  private onFrame(conn: Connection, data: unknown, isBinary: boolean): void {
    let payload: Json;
    try {
      if (isBinary) throw new Error('binary');
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data as Buffer[]).toString('utf8') : String(data);
      payload = JSON.parse(text) as Json;
      if (typeof payload !== 'object' || payload === null || typeof payload.op !== 'number') throw new Error('shape');
    } catch {
      return this.closeConnection(conn, 4002);
    }
    const op = payload.op as number;
    this.gatewayLog.push({ at: Date.now(), connection: conn.n, dir: 'in', op });
    const d = (payload.d ?? {}) as Json;
    switch (op) {
      case 1:
        conn.lastBeat = Date.now();
        return this.sendFrame(conn, { op: 11, d: null, s: null, t: null });
      case 2:
        return this.identify(conn, d);
      case 6:
        return this.resume(conn, d);
      case 3:
      case 4:
      case 8:
        if (!conn.session) return this.closeConnection(conn, 4003);
        return;
      default:
        return this.closeConnection(conn, 4001);
    }
  }

  private identify(conn: Connection, d: Json): void {
    if (conn.session) return this.closeConnection(conn, 4005);
    const record = this.connections.find((c) => c.n === conn.n)!;
    record.kind = 'identify';
    if (d.token !== this.token) return this.closeConnection(conn, 4004);
    if (d.compress === true) return this.closeConnection(conn, 4002);
    const intents = d.intents;
    if (typeof intents !== 'number' || !Number.isInteger(intents) || intents < 0 || (intents & ~VALID_INTENTS) !== 0) return this.closeConnection(conn, 4013);
    const { messageContent, guildMembers, guildPresences } = this.options.privilegedIntents;
    if (
      (intents & INTENTS.MessageContent && !messageContent) ||
      (intents & INTENTS.GuildMembers && !guildMembers) ||
      (intents & INTENTS.GuildPresences && !guildPresences)
    ) {
      return this.closeConnection(conn, 4014);
    }
    const session: Session = { id: randomBytes(16).toString('hex'), intents, seq: 0, log: [], socket: conn.socket, connection: conn.n };
    this.sessions.set(session.id, session);
    conn.session = session;
    const guilds = [...this.guilds.values()].filter((g) => g.members.has(this.bot.id));
    this.dispatchTo(session, 'READY', {
      v: 10,
      user: { ...this.userJson(this.bot), verified: true, mfa_enabled: false, email: null },
      user_settings: {},
      guilds: guilds.map((g) => ({ id: g.id, unavailable: true })),
      guild_join_requests: [],
      relationships: [],
      presences: [],
      private_channels: [],
      session_id: session.id,
      session_type: 'normal',
      resume_gateway_url: `${this.url.replace(/^http/, 'ws')}/resume`,
      shard: [0, 1],
      application: { id: this.applicationId, flags: messageContent ? 1 << 19 : 0 },
      geo_ordered_rtc_regions: [],
      auth: {},
      _trace: ['["sim-gateway",{"micros":0}]'],
    });
    for (const guild of guilds) this.dispatchTo(session, 'GUILD_CREATE', this.guildCreate(guild, intents));
  }

  private resume(conn: Connection, d: Json): void {
    if (conn.session) return this.closeConnection(conn, 4005);
    const record = this.connections.find((c) => c.n === conn.n)!;
    record.kind = 'resume';
    if (d.token !== this.token) return this.closeConnection(conn, 4004);
    const session = this.sessions.get(String(d.session_id));
    const seq = typeof d.seq === 'number' ? d.seq : -1;
    if (!session || seq > session.seq) {
      // Discord asks the client to wait 1-5 s before identifying anew; the payload is all it sends.
      return this.sendFrame(conn, { op: 9, d: false, s: null, t: null });
    }
    const oldest = session.log[0]?.s ?? session.seq + 1;
    if (seq + 1 < oldest) return this.sendFrame(conn, { op: 9, d: false, s: null, t: null });
    const previous = [...this.live].find((c) => c !== conn && c.session === session);
    if (previous) this.closeConnection(previous, 4000);
    session.socket = conn.socket;
    session.connection = conn.n;
    conn.session = session;
    for (const entry of session.log) if (entry.s > seq) this.sendFrame(conn, { op: 0, d: entry.d, s: entry.s, t: entry.t });
    this.dispatchTo(session, 'RESUMED', { _trace: ['["sim-gateway",{"micros":0}]'] });
  }

  // --- REST --------------------------------------------------------------------------------------

  private route(method: string, template: string, options: { auth?: boolean; major?: string; limited?: boolean }, handler: (ctx: RouteContext) => Promise<void>): void {
    const pattern = new RegExp(`^${template.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:(\w+)/g, '(?<$1>[^/]+)')}$`);
    this.routes.push({ method, template, pattern, auth: options.auth ?? true, major: options.major, limited: options.limited ?? true, handler });
  }

  private defineRoutes(): void {
    this.route('GET', '/gateway/bot', {}, async ({ res, rate }) => {
      this.sendJson(res, 200, {
        url: `${this.url.replace(/^http/, 'ws')}/gateway`,
        shards: 1,
        session_start_limit: { total: 1000, remaining: 999, reset_after: 86_400_000, max_concurrency: 1 },
      }, rate);
    });
    this.route('GET', '/users/@me', {}, async ({ res, rate }) => this.sendJson(res, 200, { ...this.userJson(this.bot), verified: true, mfa_enabled: false }, rate));
    this.route('POST', '/users/@me/channels', {}, async ({ req, res, rate }) => {
      const body = await this.readJson(req);
      const recipient = this.users.get(String(body.recipient_id));
      if (!recipient) throw new ApiError(400, 50035, 'Invalid Form Body', { recipient_id: { _errors: [{ code: 'NUMBER_TYPE_COERCE', message: 'Value is not snowflake.' }] } });
      this.sendJson(res, 200, this.channelJson(this.dmChannel(recipient.id)), rate);
    });
    this.route('GET', '/channels/:channel', { major: 'channel' }, async ({ res, params, rate }) => {
      this.sendJson(res, 200, this.channelJson(this.botChannel(params.channel!)), rate);
    });
    this.route('GET', '/channels/:channel/messages', { major: 'channel' }, async ({ res, params, url, rate }) => {
      const channel = this.botChannel(params.channel!);
      const limit = Math.min(100, Number(url.searchParams.get('limit') ?? 50));
      const list = this.channelMessages(channel.id).reverse().slice(0, limit);
      this.sendJson(res, 200, list.map((m) => this.restMessage(m)), rate);
    });
    this.route('POST', '/channels/:channel/messages', { major: 'channel' }, async ({ req, res, params, entry, rate }) => {
      const channel = this.botChannel(params.channel!, PERMISSIONS.SEND_MESSAGES);
      const { body, files } = await this.readMessageBody(req, entry, this.uploadLimitOf(channel));
      if (files.length > 0) this.requirePermission(channel, PERMISSIONS.ATTACH_FILES);
      this.validateMessage(body, files.length, true);
      const reference = body.message_reference as Json | undefined;
      let replyTo: string | undefined;
      if (reference?.message_id !== undefined) {
        const target = this.messages.get(String(reference.message_id));
        if (!target || target.deleted || target.channelId !== channel.id) {
          throw new ApiError(400, 50035, 'Invalid Form Body', { message_reference: { _errors: [{ code: 'REPLIES_UNKNOWN_MESSAGE', message: 'Unknown message' }] } });
        }
        replyTo = target.id;
      }
      const message = this.createMessage(channel, this.bot.id, {
        content: typeof body.content === 'string' ? body.content : '',
        embeds: (body.embeds as Json[] | undefined) ?? [],
        components: (body.components as Json[] | undefined) ?? [],
        attachments: this.describe(files, body),
        flags: typeof body.flags === 'number' ? body.flags & 4100 : 0,
        replyTo,
      });
      this.sendJson(res, 200, this.restMessage(message), rate);
    });
    this.route('GET', '/channels/:channel/messages/:message', { major: 'channel' }, async ({ res, params, rate }) => {
      this.botChannel(params.channel!, PERMISSIONS.READ_MESSAGE_HISTORY);
      this.sendJson(res, 200, this.restMessage(this.visibleMessage(params.channel!, params.message!)), rate);
    });
    this.route('PATCH', '/channels/:channel/messages/:message', { major: 'channel' }, async ({ req, res, params, entry, rate }) => {
      const channel = this.botChannel(params.channel!);
      const message = this.visibleMessage(channel.id, params.message!);
      const { body, files } = await this.readMessageBody(req, entry, this.uploadLimitOf(channel));
      if (message.authorId !== this.bot.id) throw new ApiError(403, 50005, 'Cannot edit a message authored by another user');
      this.validateMessage(body, files.length, false);
      this.editMessage(message, body, this.describe(files, body));
      this.sendJson(res, 200, this.restMessage(message), rate);
    });
    this.route('DELETE', '/channels/:channel/messages/:message', { major: 'channel' }, async ({ res, params, rate }) => {
      const channel = this.botChannel(params.channel!);
      const message = this.visibleMessage(channel.id, params.message!);
      if (message.authorId !== this.bot.id) this.requirePermission(channel, PERMISSIONS.MANAGE_MESSAGES);
      this.deleteMessage(message);
      this.sendEmpty(res, rate);
    });
    this.route('PUT', '/channels/:channel/messages/:message/reactions/:emoji/@me', { major: 'channel' }, async ({ res, params, rate }) => {
      const channel = this.botChannel(params.channel!, PERMISSIONS.READ_MESSAGE_HISTORY);
      const message = this.visibleMessage(channel.id, params.message!);
      const emoji = this.parseEmoji(params.emoji!);
      if (!message.reactions.get(emoji)?.size) this.requirePermission(channel, PERMISSIONS.ADD_REACTIONS);
      this.addReaction(message, this.bot.id, emoji);
      this.sendEmpty(res, rate);
    });
    this.route('DELETE', '/channels/:channel/messages/:message/reactions/:emoji/:user', { major: 'channel' }, async ({ res, params, rate }) => {
      const channel = this.botChannel(params.channel!);
      const message = this.visibleMessage(channel.id, params.message!);
      const userId = params.user === '@me' ? this.bot.id : params.user!;
      if (userId !== this.bot.id) this.requirePermission(channel, PERMISSIONS.MANAGE_MESSAGES);
      this.removeReaction(message, userId, this.parseEmoji(params.emoji!));
      this.sendEmpty(res, rate);
    });
    this.route('GET', '/guilds/:guild', { major: 'guild' }, async ({ res, params, rate }) => {
      // The REST Guild object: the gateway's GUILD_CREATE without its gateway-only fields.
      const { joined_at: _j, large: _l, unavailable: _u, member_count: _c, voice_states: _v, members: _m, channels: _ch, threads: _t, presences: _p, stage_instances: _s, guild_scheduled_events: _e, soundboard_sounds: _b, ...rest } =
        this.guildCreate(this.restGuild(params.guild!), 0);
      this.sendJson(res, 200, rest, rate);
    });
    this.route('GET', '/guilds/:guild/members/:user', { major: 'guild' }, async ({ res, params, rate }) => {
      const guild = this.restGuild(params.guild!);
      const member = guild.members.get(params.user!);
      if (!member) throw new ApiError(404, 10007, 'Unknown Member');
      this.sendJson(res, 200, this.memberJson(member, true), rate);
    });
    this.route('GET', '/guilds/:guild/roles', { major: 'guild' }, async ({ res, params, rate }) => {
      this.sendJson(res, 200, this.restGuild(params.guild!).roles.map((r) => this.roleJson(r)), rate);
    });
    this.route('GET', '/guilds/:guild/channels', { major: 'guild' }, async ({ res, params, rate }) => {
      const guild = this.restGuild(params.guild!);
      this.sendJson(res, 200, guild.channelIds.map((id) => this.channelJson(this.channels.get(id)!)), rate);
    });
    for (const scoped of [false, true]) {
      const template = scoped ? '/applications/:app/guilds/:guild/commands' : '/applications/:app/commands';
      this.route('PUT', template, { major: scoped ? 'guild' : undefined }, async ({ req, res, params, rate }) => {
        const guildId = this.commandScope(params);
        const body = await this.readJson(req, true);
        const list = this.validateCommands(body);
        for (let i = this.commands.length - 1; i >= 0; i--) if (this.commands[i]!.guildId === guildId) this.commands.splice(i, 1);
        const created = list.map((raw) => {
          const command: SimCommand = {
            id: this.snowflake(),
            guildId,
            name: String(raw.name),
            type: typeof raw.type === 'number' ? raw.type : 1,
            description: String(raw.description ?? ''),
            options: (raw.options as Json[] | undefined) ?? [],
            raw,
          };
          this.commands.push(command);
          return command;
        });
        this.sendJson(res, 200, created.map((c) => this.commandJson(c)), rate);
      });
      this.route('GET', template, { major: scoped ? 'guild' : undefined }, async ({ res, params, rate }) => {
        const guildId = this.commandScope(params);
        this.sendJson(res, 200, this.commandsOf(guildId).map((c) => this.commandJson(c)), rate);
      });
    }
    this.route('POST', '/interactions/:interaction/:token/callback', { auth: false, limited: false }, async (ctx) => this.callback(ctx));
    this.route('GET', '/webhooks/:app/:token/messages/:message', { auth: false, major: 'token' }, async ({ res, params, rate }) => {
      const { interaction } = this.webhook(params);
      this.sendJson(res, 200, this.restMessage(this.webhookMessage(interaction, params.message!)), rate);
    });
    this.route('PATCH', '/webhooks/:app/:token/messages/:message', { auth: false, major: 'token' }, async ({ req, res, params, entry, rate }) => {
      const { interaction, guild } = this.webhook(params);
      const message = this.webhookMessage(interaction, params.message!);
      const { body, files } = await this.readMessageBody(req, entry, guild.uploadLimit);
      this.validateMessage(body, files.length, false);
      this.editMessage(message, body, this.describe(files, body));
      this.sendJson(res, 200, this.restMessage(message), rate);
    });
    this.route('DELETE', '/webhooks/:app/:token/messages/:message', { auth: false, major: 'token' }, async ({ res, params, rate }) => {
      const { interaction } = this.webhook(params);
      this.deleteMessage(this.webhookMessage(interaction, params.message!));
      this.sendEmpty(res, rate);
    });
    this.route('POST', '/webhooks/:app/:token', { auth: false, major: 'token' }, async ({ req, res, params, url, entry, rate }) => {
      const { interaction, guild } = this.webhook(params);
      if (!interaction.callback) throw unknownWebhook();
      const { body, files } = await this.readMessageBody(req, entry, guild.uploadLimit);
      this.validateMessage(body, files.length, true);
      let message: SimMessage;
      const original = interaction.originalMessageId ? this.messages.get(interaction.originalMessageId) : undefined;
      if (interaction.callback.type === 5 && original && original.history.length === 1 && original.flags & LOADING) {
        // The first follow-up after a deferred reply replaces the "is thinking" message.
        this.editMessage(original, body, this.describe(files, body));
        message = original;
      } else {
        const flags = typeof body.flags === 'number' ? body.flags & (EPHEMERAL | 4 | 4096) : 0;
        message = this.createMessage(this.channels.get(interaction.channelId)!, this.bot.id, {
          content: typeof body.content === 'string' ? body.content : '',
          embeds: (body.embeds as Json[] | undefined) ?? [],
          components: (body.components as Json[] | undefined) ?? [],
          attachments: this.describe(files, body),
          flags,
          interactionId: interaction.id,
        });
        interaction.followUpIds.push(message.id);
      }
      if (url.searchParams.get('wait') === 'true') this.sendJson(res, 200, this.restMessage(message), rate);
      else this.sendEmpty(res, rate);
    });
  }

  private commandScope(params: Record<string, string>): string | undefined {
    if (params.app !== this.applicationId) throw new ApiError(403, 50001, 'Missing Access');
    if (params.guild === undefined) return undefined;
    this.restGuild(params.guild);
    return params.guild;
  }

  private commandJson(command: SimCommand): Json {
    return {
      ...command.raw,
      id: command.id,
      application_id: this.applicationId,
      version: command.id,
      type: command.type,
      description: command.description,
      options: command.options,
      default_member_permissions: command.raw.default_member_permissions ?? null,
      nsfw: false,
      ...(command.guildId ? { guild_id: command.guildId } : {}),
    };
  }

  private validateCommands(body: unknown): Json[] {
    const errors = new FormErrors();
    if (!Array.isArray(body)) throw new ApiError(400, 50035, 'Invalid Form Body', { _errors: [{ code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' }] });
    if (body.length > 100) errors.add('_root', 'BASE_TYPE_MAX_LENGTH', 'Must be 100 or fewer in length.');
    const names = new Set<string>();
    body.forEach((raw: unknown, i) => {
      const command = (raw ?? {}) as Json;
      const type = command.type ?? 1;
      const name = command.name;
      if (typeof name !== 'string' || (type === 1 ? !COMMAND_NAME.test(name) : name.length < 1 || name.length > 32)) {
        errors.add(`${i}.name`, 'APPLICATION_COMMAND_INVALID_NAME', 'Command name is invalid');
      } else if (names.has(`${String(type)}:${name}`)) {
        errors.add(`${i}.name`, 'APPLICATION_COMMANDS_DUPLICATE_NAME', 'Application command names must be unique');
      } else {
        names.add(`${String(type)}:${name}`);
      }
      if (type === 1) {
        const description = command.description;
        if (typeof description !== 'string' || description.length < 1 || description.length > 100) {
          errors.add(`${i}.description`, 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 100 in length.');
        }
      }
      if (command.options !== undefined) this.validateOptions(command.options, `${i}.options`, errors, 0);
    });
    errors.throwIfAny();
    return body as Json[];
  }

  private validateOptions(options: unknown, path: string, errors: FormErrors, depth: number): void {
    if (!Array.isArray(options)) return errors.add(path, 'BASE_TYPE_LIST', 'Must be a list.');
    if (options.length > 25) errors.add(path, 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
    let seenOptional = false;
    options.forEach((raw: unknown, i) => {
      const option = (raw ?? {}) as Json;
      const at = `${path}.${i}`;
      const type = option.type;
      if (typeof type !== 'number' || !Number.isInteger(type) || type < 1 || type > 11) errors.add(`${at}.type`, 'BASE_TYPE_CHOICES', 'Value must be one of {1..11}.');
      if (typeof option.name !== 'string' || !COMMAND_NAME.test(option.name)) errors.add(`${at}.name`, 'APPLICATION_COMMAND_INVALID_NAME', 'Command name is invalid');
      if (typeof option.description !== 'string' || option.description.length < 1 || option.description.length > 100) {
        errors.add(`${at}.description`, 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 100 in length.');
      }
      const isSub = type === 1 || type === 2;
      if (isSub) {
        if (depth >= 2 || (type === 2 && depth >= 1)) errors.add(`${at}.type`, 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID', 'Subcommands cannot be nested this deep');
        if (option.options !== undefined) this.validateOptions(option.options, `${at}.options`, errors, depth + 1);
        return;
      }
      if (option.required === true) {
        if (seenOptional) errors.add(`${at}.required`, 'APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID', 'Required options must be placed before non-required options');
      } else {
        seenOptional = true;
      }
      if (Array.isArray(option.choices) && option.choices.length > 25) errors.add(`${at}.choices`, 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
    });
  }

  private restGuild(id: string): SimGuild {
    const guild = this.guilds.get(id);
    if (!guild) throw new ApiError(404, 10004, 'Unknown Guild');
    if (!guild.members.has(this.bot.id)) throw new ApiError(403, 50001, 'Missing Access');
    return guild;
  }

  private botChannel(id: string, permission?: bigint): SimChannel {
    const channel = this.channels.get(id);
    if (!channel) throw unknownChannel();
    if (channel.type === 1) return channel;
    if (channel.hiddenFromBot || !(this.permissionsOf(channel.guildId!, this.bot.id) & PERMISSIONS.VIEW_CHANNEL)) throw new ApiError(403, 50001, 'Missing Access');
    if (permission !== undefined) this.requirePermission(channel, permission);
    return channel;
  }

  private requirePermission(channel: SimChannel, permission: bigint): void {
    if (channel.type === 1) return;
    if (!(this.permissionsOf(channel.guildId!, this.bot.id) & permission)) throw new ApiError(403, 50013, 'Missing Permissions');
  }

  private uploadLimitOf(channel: SimChannel): number {
    return channel.guildId ? this.guildOf(channel.guildId).uploadLimit : 10 * MIB;
  }

  private visibleMessage(channelId: string, messageId: string): SimMessage {
    const message = this.messages.get(messageId);
    if (!message || message.deleted || message.ephemeral || message.channelId !== channelId) throw unknownMessage();
    return message;
  }

  /** REST answers honour the application's MessageContent setting, not the gateway intents. */
  private restMessage(message: SimMessage): Json {
    const privileged =
      this.options.privilegedIntents.messageContent || message.authorId === this.bot.id || !message.guildId || message.mentionIds.includes(this.bot.id);
    return this.messageJson(message, !privileged);
  }

  /** A unicode emoji or a custom `name:id`; anything else is 10014 Unknown Emoji. */
  private parseEmoji(emoji: string): string {
    if (/^[\w~]+:\d+$/.test(emoji) || /^[^\w\s:]*\p{Extended_Pictographic}/u.test(emoji) || /^\p{Regional_Indicator}{2}$/u.test(emoji)) return emoji;
    throw new ApiError(400, 10014, 'Unknown Emoji');
  }

  private webhook(params: Record<string, string>): { interaction: SimInteraction; guild: SimGuild } {
    if (params.app !== this.applicationId) throw unknownWebhook();
    const interaction = [...this.interactions.values()].find((i) => i.token === params.token);
    if (!interaction) throw unknownWebhook();
    if (interaction.tokenExpired || Date.now() - interaction.dispatchedAt > this.options.interactionTokenTtlMs) {
      throw new ApiError(401, 50027, 'Invalid Webhook Token');
    }
    return { interaction, guild: this.guildOf(interaction.guildId) };
  }

  private webhookMessage(interaction: SimInteraction, id: string): SimMessage {
    const messageId = id === '@original' ? interaction.originalMessageId : interaction.followUpIds.includes(id) || interaction.originalMessageId === id ? id : undefined;
    const message = messageId ? this.messages.get(messageId) : undefined;
    if (!message || message.deleted) throw unknownMessage();
    return message;
  }

  private async callback({ req, res, params, url, entry }: RouteContext): Promise<void> {
    const interaction = this.interactions.get(params.interaction!);
    if (!interaction || interaction.token !== params.token) {
      req.resume();
      throw unknownInteraction();
    }
    const guild = this.guildOf(interaction.guildId);
    const { body, files: uploaded } = await this.readMessageBody(req, entry, guild.uploadLimit);
    const files = uploaded.length;
    if (interaction.callback) throw new ApiError(400, 40060, 'Interaction has already been acknowledged.');
    if (Date.now() - interaction.dispatchedAt > this.options.interactionAckWindowMs) throw unknownInteraction();
    const type = body.type;
    const allowed = interaction.type === 2 ? [4, 5, 9] : [4, 5, 6, 7, 9];
    if (typeof type !== 'number' || !allowed.includes(type)) {
      throw new ApiError(400, 50035, 'Invalid Form Body', { type: { _errors: [{ code: 'BASE_TYPE_CHOICES', message: `Value must be one of (${allowed.join(', ')}).` }] } });
    }
    const data = (body.data ?? undefined) as Json | undefined;
    const channel = this.channels.get(interaction.channelId)!;
    const flags = typeof data?.flags === 'number' ? data.flags : 0;
    const attachments = this.describe(uploaded, data ?? {});
    if (type === 4) this.validateMessage(data ?? {}, files, true);
    if (type === 7) this.validateMessage(data ?? {}, files, false);
    if (type === 9 && (typeof data?.custom_id !== 'string' || typeof data.title !== 'string')) {
      throw new ApiError(400, 50035, 'Invalid Form Body', { data: { custom_id: { _errors: [{ code: 'BASE_TYPE_REQUIRED', message: 'This field is required' }] } } });
    }
    interaction.callback = { type: type as SimCallbackType, at: Date.now(), data };
    interaction.ephemeral = (flags & EPHEMERAL) !== 0;
    let message: SimMessage | undefined;
    if (type === 4 || type === 5) {
      message = this.createMessage(channel, this.bot.id, {
        content: type === 4 && typeof data?.content === 'string' ? data.content : '',
        embeds: type === 4 ? ((data?.embeds as Json[] | undefined) ?? []) : [],
        components: type === 4 ? ((data?.components as Json[] | undefined) ?? []) : [],
        attachments: type === 4 ? attachments : [],
        flags: (flags & (EPHEMERAL | 4 | 4096)) | (type === 5 ? LOADING : 0),
        interactionId: interaction.id,
        type: interaction.type === 2 ? 20 : 0,
      });
      interaction.originalMessageId = message.id;
    } else if (type === 6 || type === 7) {
      message = this.messages.get(interaction.messageId ?? '');
      interaction.originalMessageId = message?.id;
      if (type === 7 && message) this.editMessage(message, data ?? {}, attachments);
    }
    if (url.searchParams.get('with_response') !== 'true') return this.sendEmpty(res, {});
    this.sendJson(res, 200, {
      interaction: {
        id: interaction.id,
        type: interaction.type,
        activity_instance_id: null,
        response_message_id: message?.id ?? null,
        response_message_loading: type === 5,
        response_message_ephemeral: interaction.ephemeral,
      },
      resource: message ? { type, message: this.messageJson(message) } : { type },
    });
  }

  /** Attaches the payload's `attachments[].filename/description` to the uploaded files, by index. */
  private describe(files: SimAttachment[], body: Json): SimAttachment[] {
    const meta = Array.isArray(body.attachments) ? (body.attachments as Json[]) : [];
    return files.map((file, index) => {
      const m = meta.find((a) => String(a.id) === String(index));
      if (typeof m?.filename === 'string') file.filename = m.filename;
      if (typeof m?.description === 'string') file.description = m.description;
      return file;
    });
  }

  private validateMessage(body: Json, fileCount: number, creating: boolean): void {
    const errors = new FormErrors();
    const content = body.content;
    if (content !== undefined && content !== null && typeof content !== 'string') errors.add('content', 'BASE_TYPE_STRING', 'Must be a string.');
    if (typeof content === 'string' && [...content].length > 2000) errors.add('content', 'BASE_TYPE_MAX_LENGTH', 'Must be 2000 or fewer in length.');
    const embeds = body.embeds;
    const components = body.components;
    listOf(errors, 'embeds', embeds, 10).forEach((embed, i) => {
      if (typeof embed.title === 'string' && embed.title.length > 256) errors.add(`embeds.${i}.title`, 'BASE_TYPE_MAX_LENGTH', 'Must be 256 or fewer in length.');
      if (typeof embed.description === 'string' && embed.description.length > 4096) errors.add(`embeds.${i}.description`, 'BASE_TYPE_MAX_LENGTH', 'Must be 4096 or fewer in length.');
      if (Array.isArray(embed.fields) && embed.fields.length > 25) errors.add(`embeds.${i}.fields`, 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
    });
    listOf(errors, 'components', components, 5).forEach((row, i) => {
      if (row.type !== 1) return errors.add(`components.${i}.type`, 'COMPONENT_LAYOUT_WIDTH_EXCEEDED', 'Top-level components must be action rows.');
      const children = Array.isArray(row.components) ? (row.components as Json[]) : [];
      if (children.length < 1 || children.length > 5) errors.add(`components.${i}.components`, 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 5 in length.');
      children.forEach((button, j) => {
        const at = `components.${i}.components.${j}`;
        if (button.type !== 2) return;
        const style = button.style;
        if (typeof style !== 'number' || style < 1 || style > 6) errors.add(`${at}.style`, 'BASE_TYPE_CHOICES', 'Value must be one of (1, 2, 3, 4, 5, 6).');
        if (style === 5 ? typeof button.url !== 'string' : typeof button.custom_id !== 'string' || button.custom_id.length < 1 || button.custom_id.length > 100) {
          errors.add(`${at}.${style === 5 ? 'url' : 'custom_id'}`, 'BASE_TYPE_REQUIRED', 'This field is required');
        }
        if (typeof button.label === 'string' && button.label.length > 80) errors.add(`${at}.label`, 'BASE_TYPE_MAX_LENGTH', 'Must be 80 or fewer in length.');
      });
    });
    errors.throwIfAny();
    const empty =
      !(typeof content === 'string' && content.length > 0) &&
      !(Array.isArray(embeds) && embeds.length > 0) &&
      !(Array.isArray(components) && components.length > 0) &&
      fileCount === 0 &&
      !Array.isArray(body.sticker_ids);
    if (creating && empty) throw new ApiError(400, 50006, 'Cannot send an empty message');
  }

  // --- HTTP plumbing -----------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const entry: SimRequest = {
      at: Date.now(),
      method,
      path: url.pathname,
      route: 'unknown',
      status: 0,
      auth: req.headers.authorization,
      contentType: req.headers['content-type'],
    };
    this.requests.push(entry);
    (res as ServerResponse & { simEntry?: SimRequest }).simEntry = entry;

    if (/^\/(attachments|media-proxy)\//.test(url.pathname) && (method === 'GET' || method === 'HEAD')) {
      entry.route = 'cdn';
      return this.cdn(req, res, url);
    }
    const prefix = '/api/v10';
    // Segments are matched decoded: clients send `%40original` and percent-encoded emoji.
    const path = url.pathname.startsWith(`${prefix}/`) ? this.decodePath(url.pathname.slice(prefix.length)) : undefined;
    let match: { route: Route; params: Record<string, string> } | undefined;
    let pathMatched = false;
    for (const route of path === undefined ? [] : this.routes) {
      const m = route.pattern.exec(path!);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      match = { route, params: { ...m.groups } };
      break;
    }
    req.on('error', () => undefined);
    if (!match) {
      req.resume();
      return pathMatched ? this.sendJson(res, 405, { message: '405: Method Not Allowed', code: 0 }) : this.sendJson(res, 404, { message: '404: Not Found', code: 0 });
    }
    const { route, params } = match;
    entry.route = `${method} ${route.template}`;
    if (route.auth && req.headers.authorization !== `Bot ${this.token}`) {
      req.resume();
      return this.sendJson(res, 401, { message: '401: Unauthorized', code: 0 });
    }
    const fault = this.takeFault(entry.route);
    if (fault === 'reset') {
      entry.status = 'reset';
      // An RST, not a FIN: what a dropped connection looks like to the client (ECONNRESET).
      req.socket.resetAndDestroy();
      return;
    }
    const bucketName = createHmac('sha1', 'bucket').update(entry.route).digest('hex').slice(0, 32);
    if (fault) {
      req.resume();
      await new Promise((resolve) => req.on('end', resolve));
      if (fault.status === 429) {
        const retryAfter = fault.retryAfter ?? 1;
        const headers: Record<string, string> = { 'retry-after': String(Math.ceil(retryAfter)), 'x-ratelimit-scope': fault.global ? 'global' : 'user' };
        if (fault.global) headers['x-ratelimit-global'] = 'true';
        else Object.assign(headers, this.rateHeaders(bucketName, 1, 0, retryAfter * 1000));
        return this.sendJson(res, 429, { message: 'You are being rate limited.', retry_after: retryAfter, global: fault.global ?? false, code: fault.global ? 0 : 20028 }, headers);
      }
      return this.sendJson(res, fault.status, { message: fault.message ?? `${fault.status}: injected`, code: fault.code ?? 0 });
    }
    let rate: Record<string, string> = {};
    if (route.limited) {
      const key = `${entry.route}|${route.major ? (params[route.major] ?? '') : ''}`;
      const now = Date.now();
      const { limit, windowMs } = this.options.rateLimit;
      let bucket = this.buckets.get(key);
      if (!bucket || bucket.resetAt <= now) {
        bucket = { count: 0, resetAt: now + windowMs };
        this.buckets.set(key, bucket);
      }
      bucket.count += 1;
      const resetMs = bucket.resetAt - now;
      rate = this.rateHeaders(bucketName, limit, Math.max(0, limit - bucket.count), resetMs);
      if (bucket.count > limit) {
        req.resume();
        const retryAfter = Math.round(resetMs) / 1000;
        return this.sendJson(res, 429, { message: 'You are being rate limited.', retry_after: retryAfter, global: false }, {
          ...rate,
          'retry-after': String(Math.ceil(retryAfter)),
          'x-ratelimit-scope': 'user',
        });
      }
    }
    try {
      await route.handler({ req, res, url, params, entry, rate });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      req.resume();
      const body: Json = { message: error.message, code: error.code };
      if (error.errors) body.errors = error.errors;
      this.sendJson(res, error.status, body, { ...rate, ...error.headers });
    }
  }

  private decodePath(path: string): string {
    return path
      .split('/')
      .map((segment) => {
        try {
          return decodeURIComponent(segment);
        } catch {
          return segment;
        }
      })
      .join('/');
  }

  private rateHeaders(bucket: string, limit: number, remaining: number, resetMs: number): Record<string, string> {
    return {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(remaining),
      'x-ratelimit-reset': ((Date.now() + resetMs) / 1000).toFixed(3),
      'x-ratelimit-reset-after': (resetMs / 1000).toFixed(3),
      'x-ratelimit-bucket': bucket,
    };
  }

  private takeFault(route: string): SimFaultSpec | undefined {
    const path = route.slice(route.indexOf(' ') + 1);
    const pending = this.faults.find((f) => f.route === '*' || f.route === route || f.route === path);
    if (!pending) return undefined;
    pending.times -= 1;
    if (pending.times <= 0) this.faults.splice(this.faults.indexOf(pending), 1);
    return pending.spec;
  }

  private sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const entry = (res as ServerResponse & { simEntry?: SimRequest }).simEntry;
    if (entry) entry.status = status;
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(status, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  /** 204: no body and, as on Discord, no content type (discord.js would try to parse one). */
  private sendEmpty(res: ServerResponse, headers: Record<string, string>): void {
    const entry = (res as ServerResponse & { simEntry?: SimRequest }).simEntry;
    if (entry) entry.status = 204;
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(204, headers).end();
  }

  private async readText(req: IncomingMessage, limit: number): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    }
    if (size > limit) throw new ApiError(413, 40005, 'Request entity too large');
    return Buffer.concat(chunks).toString('utf8');
  }

  private async readJson(req: IncomingMessage, allowArray = false): Promise<Json> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      req.resume();
      throw new ApiError(400, 50035, 'Invalid Form Body', { _errors: [{ code: 'CONTENT_TYPE_INVALID', message: `Expected "Content-Type" header to be one of {'application/json'}.` }] });
    }
    const text = await this.readText(req, 1 * MIB);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ApiError(400, 50109, 'The request body contains invalid JSON.');
    }
    if (typeof parsed !== 'object' || parsed === null || (Array.isArray(parsed) && !allowArray)) throw new ApiError(400, 50109, 'The request body contains invalid JSON.');
    return parsed as Json;
  }

  /** JSON, or multipart with `payload_json` and `files[n]`; files are kept (they become attachments). */
  private async readMessageBody(req: IncomingMessage, entry: SimRequest, uploadLimit: number): Promise<{ body: Json; files: SimAttachment[] }> {
    const type = req.headers['content-type'] ?? '';
    if (!/^multipart\/form-data/i.test(type)) {
      const body = await this.readJson(req);
      entry.body = body;
      return { body, files: [] };
    }
    const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
    if (!boundary) {
      req.resume();
      throw new ApiError(400, 50035, 'Invalid Form Body');
    }
    const parser = new MultipartParser(boundary, (message) => new ApiError(400, 50035, message));
    const parts: Array<{ field: string; filename: string | undefined; contentType: string; chunks: Buffer[]; size: number }> = [];
    let total = 0;
    parser.onPart = (headers) => {
      const disposition = headers['content-disposition'] ?? '';
      const field = /\bname="([^"]*)"/i.exec(disposition)?.[1] ?? '';
      const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1] ?? /\bfilename=([^;]+)/i.exec(disposition)?.[1];
      parts.push({ field, filename, contentType: headers['content-type'] ?? 'application/octet-stream', chunks: [], size: 0 });
    };
    parser.onData = (data) => {
      const part = parts[parts.length - 1]!;
      part.size += data.length;
      if (part.filename !== undefined) total += data.length;
      // Past the limit the rest is only counted: the answer will be 413 anyway.
      if (total <= uploadLimit || part.filename === undefined) part.chunks.push(Buffer.from(data));
    };
    for await (const chunk of req as AsyncIterable<Buffer>) parser.write(chunk);
    if (!parser.done) throw new ApiError(400, 50035, 'Invalid Form Body', { _errors: [{ code: 'MULTIPART_INCOMPLETE', message: 'Multipart body ended early' }] });
    const fileParts = parts.filter((p) => p.filename !== undefined);
    entry.files = fileParts.map((p) => ({ field: p.field, filename: p.filename!, size: p.size, contentType: p.contentType }));
    if (total > uploadLimit) throw new ApiError(413, 40005, 'Request entity too large');
    const payload = parts.find((p) => p.field === 'payload_json');
    let body: Json = {};
    if (payload) {
      try {
        body = JSON.parse(Buffer.concat(payload.chunks).toString('utf8')) as Json;
      } catch {
        throw new ApiError(400, 50109, 'The request body contains invalid JSON.');
      }
    }
    entry.body = body;
    const files: SimAttachment[] = [];
    for (const part of fileParts) {
      if (!/^files\[\d+\]$/.test(part.field)) continue;
      files[Number(/\d+/.exec(part.field)![0])] = this.storeFile({ name: part.filename!, contentType: part.contentType, bytes: Buffer.concat(part.chunks) });
    }
    return { body, files: files.filter((f): f is SimAttachment => f !== undefined) };
  }

  private async cdn(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    req.resume();
    const gone = (): void => {
      const entry = (res as ServerResponse & { simEntry?: SimRequest }).simEntry;
      if (entry) entry.status = 404;
      res.writeHead(404, { 'content-type': 'text/plain' }).end('This content is no longer available.');
    };
    const m = /^\/(?:attachments|media-proxy)\/(\d+)\/(\d+)\/[^/]+$/.exec(url.pathname);
    const attachment = m ? this.attachments.get(m[2]!) : undefined;
    const ex = url.searchParams.get('ex') ?? '';
    const issued = parseInt(url.searchParams.get('t') ?? '', 36);
    if (!attachment || this.sign(`${url.pathname}|${ex}|${issued}`) !== url.searchParams.get('hm')) return gone();
    if (parseInt(ex, 16) * 1000 <= Date.now() || issued < attachment.revokedBefore) return gone();
    const size = attachment.size;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && (range[1] || range[2])) {
      start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
      end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start > end || start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      status = 206;
    }
    const entry = (res as ServerResponse & { simEntry?: SimRequest }).simEntry;
    if (entry) entry.status = status;
    const headers: Record<string, string> = {
      'content-type': attachment.contentType,
      'content-length': String(end - start + 1),
      'accept-ranges': 'bytes',
    };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return void res.end();
    if (attachment.bytes) return void res.end(attachment.bytes.subarray(start, end + 1));
    createReadStream(attachment.path!, { start, end }).pipe(res);
  }
}

export async function startDiscordSim(options: DiscordSimOptions = {}): Promise<DiscordSim> {
  return new DiscordSim(options).start();
}
