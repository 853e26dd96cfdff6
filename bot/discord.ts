/**
 * The Discord front end: a thin mapping from discord.js events to the chat-neutral ChatService.
 * Slash commands are turned into the same text grammar the Telegram bot reads, so both bots share
 * every rule. The workspace is the guild (`discord:<guild_id>`); a place is a channel.
 *
 * A slash command has no user message to answer, so its deferred reply becomes one: it is edited
 * into an echo of the request ("Ada asked: /post to bluesky"), and the status message the worker
 * keeps editing is an ordinary channel message replying to it (interaction tokens last 15 min,
 * a post can take longer).
 */
import { once } from 'node:events';
import {
  ApplicationCommandOptionType,
  Client,
  Events,
  GatewayIntentBits,
  MessageFlags,
  Partials,
  PermissionFlagsBits,
  Routes,
  type APIApplicationCommandOption,
  type APIApplicationCommandStringOption,
  type APIInteractionGuildMember,
  type Attachment,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type GuildMember,
  type Interaction,
  type Message,
  type MessageReaction,
  type PartialMessageReaction,
  type PartialUser,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
  type User,
} from 'discord.js';
import type { REST } from '@discordjs/rest';
import { discordComponents, discordOutbox, discordRestOptions, discordText } from '../core/chat/discord-outbox.ts';
import { parseRequest } from '../core/chat/grammar.ts';
import type { ChatNotifier } from '../core/chat/notifier.ts';
import type { ChatOutbox } from '../core/chat/outbox.ts';
import { ChatService, splitCommand, type ChatMember, type ChatPlace, type ChatReply, type CommandName, type IncomingMedia } from '../core/chat/service.ts';
import type { Context } from '../core/context.ts';
import { MESSAGES, UserError } from '../core/errors.ts';
import { PLATFORM_IDS } from '../core/platforms.ts';
import { linkMedia } from './chat-media.ts';

const VIDEO_FILE = /\.(mp4|m4v|mov|webm|mkv)$/i;
const IMAGE_FILE = /\.(jpe?g|png|gif|webp|heic)$/i;
const SETTINGS_KEYS = ['approval', 'quorum', 'selfapproval', 'approvers', 'targets', 'split', 'spacing', 'posterrole', 'approverrole'] as const;

export interface DiscordOptions {
  notifier: ChatNotifier;
  /** Tests: fetch pasted links from these loopback hosts. */
  linkHosts?: readonly string[];
}

export interface RunningDiscord {
  client: Client<true>;
  service: ChatService;
  outbox: ChatOutbox;
  stop(): Promise<void>;
}

const S = ApplicationCommandOptionType;
const text = (name: string, description: string, required = false): APIApplicationCommandStringOption => ({ type: S.String, name, description, required });
const choice = (name: string, description: string, values: readonly string[]): APIApplicationCommandStringOption => ({
  type: S.String,
  name,
  description,
  required: true,
  choices: values.map((v) => ({ name: v, value: v })),
});
const media: APIApplicationCommandOption[] = [
  { type: S.Attachment, name: 'attachment', description: 'The video file', required: false },
  text('url', 'Or a link to the video file'),
  text('to', 'Targets: tiktok, youtube:mychannel, all (default: the server’s default targets)'),
  text('caption', 'The caption (per-platform lines start with >>, see /help)'),
  { type: S.Boolean, name: 'split', description: 'Cut a video too long for a target into parts', required: false },
];

/** The slash commands, in the bulk-overwrite shape `reelay discord register` sends. */
export const DISCORD_COMMANDS: RESTPostAPIChatInputApplicationCommandsJSONBody[] = [
  { name: 'post', description: 'Post a video now', options: media },
  { name: 'schedule', description: 'Schedule a video', options: [text('when', 'When, in your timezone: tomorrow 6pm, fri 9:30, in 2h', true), ...media] },
  { name: 'queue', description: 'Upcoming posts' },
  { name: 'status', description: 'Where a post stands', options: [text('id', 'The post id (see /queue)', true), text('platform', 'To record a post made by hand: the platform'), text('link', '…and the link to it')] },
  { name: 'cancel', description: 'Cancel a scheduled post', options: [text('id', 'The post id (see /queue)', true)] },
  { name: 'retry', description: 'Retry the failed deliveries of a post', options: [text('id', 'The post id', true)] },
  { name: 'reschedule', description: 'Move a post to another time', options: [text('id', 'The post id', true), text('when', 'The new time', true)] },
  { name: 'edit', description: 'Change the caption of a post before it goes out', options: [text('id', 'The post id', true), text('caption', 'The new caption', true)] },
  { name: 'accounts', description: 'Linked accounts and their health' },
  { name: 'link', description: 'Link a platform account (admins)', options: [choice('platform', 'The platform', PLATFORM_IDS)] },
  { name: 'unlink', description: 'Unlink a platform account (admins)', options: [text('platform', 'The platform, or platform:handle', true)] },
  { name: 'timezone', description: 'Show or set your timezone', options: [text('zone', 'An IANA name, e.g. Europe/Berlin')] },
  {
    name: 'settings',
    description: 'Approval, alerts, default targets, split',
    options: [
      { type: S.Subcommand, name: 'show', description: 'Show the settings' },
      {
        type: S.Subcommand,
        name: 'alerts',
        description: 'Where alerts go (default: this channel)',
        options: [
          { type: S.Channel, name: 'channel', description: 'The alerts channel', required: false },
          { type: S.Boolean, name: 'off', description: 'Send alerts to the channel each post came from', required: false },
        ],
      },
      {
        type: S.Subcommand,
        name: 'change',
        description: 'Change a setting (admins)',
        options: [
          choice('setting', 'Which setting', SETTINGS_KEYS),
          text('value', 'on/off, a number, targets, or a role', true),
        ],
      },
    ],
  },
  { name: 'help', description: 'How to post, with examples' },
];

/** Registers the slash commands for one guild (instant) or globally (may take up to an hour). */
export async function registerDiscordCommands(rest: REST, applicationId: string, guildId?: string): Promise<number> {
  const route = guildId ? Routes.applicationGuildCommands(applicationId, guildId) : Routes.applicationCommands(applicationId);
  const created = (await rest.put(route, { body: DISCORD_COMMANDS })) as unknown[];
  return created.length;
}

/** The grammar's text for a `/post` or `/schedule` slash command. */
export function requestText(i: ChatInputCommandInteraction): string {
  const when = i.options.getString('when');
  const to = i.options.getString('to');
  const head = [`/${i.commandName}`, when, to ? `to ${to}` : null, i.options.getBoolean('split') ? 'split' : null].filter(Boolean).join(' ');
  return [head, i.options.getString('caption'), i.options.getString('url')].filter(Boolean).join('\n');
}

/** The argument text ChatService.command reads, from a management slash command's options. */
export function commandArgs(i: ChatInputCommandInteraction): string {
  const o = i.options;
  const join = (...parts: Array<string | null>) => parts.filter(Boolean).join(' ');
  switch (i.commandName) {
    case 'status':
      return join(o.getString('id'), o.getString('platform'), o.getString('link'));
    case 'cancel':
    case 'retry':
      return o.getString('id') ?? '';
    case 'reschedule':
      return join(o.getString('id'), o.getString('when'));
    case 'edit':
      return `${o.getString('id') ?? ''}\n${o.getString('caption') ?? ''}`;
    case 'link':
    case 'unlink':
      return o.getString('platform') ?? '';
    case 'timezone':
      return o.getString('zone') ?? '';
    case 'settings': {
      const sub = o.getSubcommand(false);
      if (sub === 'alerts') {
        const channel = o.getChannel('channel');
        return o.getBoolean('off') ? 'alerts off' : channel ? `alerts <#${channel.id}>` : 'alerts here';
      }
      if (sub === 'change') return join(o.getString('setting'), o.getString('value'));
      return '';
    }
    default:
      return '';
  }
}

function roleIds(member: GuildMember | APIInteractionGuildMember | null | undefined, guildId: string): string[] {
  if (!member) return [];
  const ids = Array.isArray(member.roles) ? member.roles : [...member.roles.cache.keys()];
  return ids.filter((id) => id !== guildId);
}

function chatMember(user: User | PartialUser, member: GuildMember | APIInteractionGuildMember | null | undefined, guildId: string, manageGuild: boolean): ChatMember {
  const name = (member && 'displayName' in member ? member.displayName : null) ?? user.globalName ?? user.username ?? user.id;
  return { id: user.id, name, chatAdmin: manageGuild, roles: roleIds(member, guildId) };
}

const place = (guildId: string, channelId: string, messageId: string): ChatPlace => ({ chat: 'discord', chatId: channelId, workspaceId: `discord:${guildId}`, messageId });

export async function startDiscord(ctx: Context, options: DiscordOptions): Promise<RunningDiscord> {
  const { token, apiRoot } = ctx.config.chat.discord;
  if (!token) throw new Error('DISCORD_TOKEN is not set');
  const log = ctx.log.child({ component: 'discord' });
  const client = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent, GatewayIntentBits.GuildMessageReactions],
    // Reactions on previews sent before a restart (or by the worker) arrive for uncached messages.
    partials: [Partials.Message, Partials.Reaction, Partials.User],
    rest: discordRestOptions(apiRoot),
  });
  const outbox = discordOutbox(client.rest);
  const service = new ChatService({ ctx, outbox, notifier: options.notifier, mediaFromLink: (url) => linkMedia(ctx, url, options.linkHosts ? { allowHosts: options.linkHosts } : {}) });

  /** A video attachment as media; a photo or another file is a UserError with the reason. */
  const attachmentMedia = (attachment: Attachment): IncomingMedia => {
    const type = attachment.contentType ?? '';
    if (!type.startsWith('video/') && !VIDEO_FILE.test(attachment.name)) {
      throw new UserError(type.startsWith('image/') || IMAGE_FILE.test(attachment.name) ? MESSAGES.chatPhotoNotVideo() : MESSAGES.chatDocumentNotVideo(attachment.name));
    }
    // The link comes from Discord itself (its CDN), so its host is trusted; redirects are still checked.
    return linkMedia(ctx, attachment.url, { name: attachment.name, size: attachment.size, allowHosts: [new URL(attachment.url).hostname] });
  };

  const replyBody = (reply: Pick<ChatReply, 'text' | 'buttons'>) => ({ content: discordText(reply.text), components: discordComponents(reply.buttons), allowedMentions: { parse: [] } });

  /** `/post`, `/schedule`: echo the request in the deferred reply, then let ChatService answer it. */
  const onRequest = async (i: ChatInputCommandInteraction<'cached' | 'raw'>, member: ChatMember): Promise<void> => {
    await i.deferReply();
    const request = requestText(i);
    const attachment = i.options.getAttachment('attachment');
    const echo = await i.editReply(replyBody({ text: MESSAGES.discordRequestEcho(member.name, request, attachment?.name ?? null) }));
    const at = place(i.guildId, i.channelId, echo.id);
    try {
      await service.request(at, member, request, attachment ? attachmentMedia(attachment) : null);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      await outbox.send(at.chatId, { text: error.message, replyTo: at.messageId });
    }
  };

  const onCommand = async (i: ChatInputCommandInteraction): Promise<void> => {
    if (!i.inGuild()) return void (await i.reply({ content: MESSAGES.chatHelp('discord'), flags: MessageFlags.Ephemeral }));
    const member = chatMember(i.user, i.member, i.guildId, i.memberPermissions.has(PermissionFlagsBits.ManageGuild));
    if (i.commandName === 'post' || i.commandName === 'schedule') return onRequest(i, member);
    const name = i.commandName as CommandName;
    // A one-time link is for the asker only: the whole answer is ephemeral.
    await i.deferReply(name === 'link' ? { flags: MessageFlags.Ephemeral } : {});
    const reply = await service.command(place(i.guildId, i.channelId, i.id), member, name, commandArgs(i));
    await i.editReply(replyBody(reply));
  };

  const onButton = async (i: ButtonInteraction): Promise<void> => {
    if (!i.inGuild()) return;
    await i.deferReply({ flags: MessageFlags.Ephemeral });
    const member = chatMember(i.user, i.member, i.guildId, i.memberPermissions.has(PermissionFlagsBits.ManageGuild));
    const said = await service.button(place(i.guildId, i.channelId, i.message.id), member, i.customId);
    await i.editReply(replyBody({ text: said }));
  };

  /** A message that mentions the bot: a request in the grammar, or a management command. */
  const onMessage = async (message: Message): Promise<void> => {
    if (message.author.bot || !message.inGuild()) return;
    const at = place(message.guildId, message.channelId, message.id);
    const content = message.content;
    if (await service.screen(at, content)) return;
    if (!new RegExp(`<@!?${client.user?.id ?? '-'}>`).test(content)) return;
    const manageGuild = message.member?.permissions.has(PermissionFlagsBits.ManageGuild) ?? false;
    const member = chatMember(message.author, message.member, message.guildId, manageGuild);
    try {
      if (!('notACommand' in parseRequest(content))) {
        const own = message.attachments.first();
        const replied = !own && message.reference?.messageId ? await message.fetchReference().catch(() => null) : null;
        const attachment = own ?? replied?.attachments.first();
        await service.request(at, member, content, attachment ? attachmentMedia(attachment) : null);
        return;
      }
      const stripped = content.replace(/<@!?\d+>/, '').trim();
      const command = splitCommand(stripped.startsWith('/') ? stripped : `/${stripped}`);
      if (!command) return;
      const reply = await service.command(at, member, command.name, command.args);
      if (reply.private) {
        const sent = await message.author.send({ content: discordText(reply.text), allowedMentions: { parse: [] } }).then(
          () => true,
          () => false,
        );
        await outbox.send(at.chatId, { text: sent ? MESSAGES.discordLinkInDm(reply.private.label) : MESSAGES.discordDmClosed(), replyTo: at.messageId });
        return;
      }
      await outbox.send(at.chatId, { text: reply.text, ...(reply.buttons ? { buttons: reply.buttons } : {}), replyTo: at.messageId });
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      await outbox.send(at.chatId, { text: error.message, replyTo: at.messageId });
    }
  };

  const onReaction = async (reaction: MessageReaction | PartialMessageReaction, user: User | PartialUser): Promise<void> => {
    const { message } = reaction;
    if (user.id === client.user?.id || !message.guildId || !reaction.emoji.name) return;
    const guild = client.guilds.cache.get(message.guildId);
    if (!guild) return;
    // Without the GuildMembers intent the reaction event's member is what is cached; fetch otherwise.
    const member = guild.members.cache.get(user.id) ?? (await guild.members.fetch(user.id).catch(() => null));
    if (!member) return;
    const who = chatMember(member.user, member, guild.id, member.permissions.has(PermissionFlagsBits.ManageGuild));
    await service.reaction(place(guild.id, message.channelId, message.id), who, message.id, [reaction.emoji.name]);
  };

  // One failed event is logged and the bot carries on: bad input never stops the process.
  const safely =
    <A extends unknown[]>(what: string, handler: (...args: A) => Promise<void>) =>
    (...args: A): void => {
      handler(...args).catch((error: unknown) => log.error({ err: error, event: what }, 'Discord event failed'));
    };
  client.on(
    Events.InteractionCreate,
    safely('interaction', async (i: Interaction) => {
      if (i.isChatInputCommand()) await onCommand(i);
      else if (i.isButton()) await onButton(i);
    }),
  );
  client.on(Events.MessageCreate, safely('message', onMessage));
  client.on(Events.MessageReactionAdd, safely('reaction', onReaction));
  client.on(Events.Error, (error) => log.error({ err: error }, 'Discord client error'));

  const ready = once(client, Events.ClientReady);
  await client.login(token);
  await ready;
  const running = client as Client<true>;
  log.info({ username: running.user.username, guilds: running.guilds.cache.size }, 'Discord bot connected');

  return {
    client: running,
    service,
    outbox,
    stop: async () => {
      await service.idle();
      await client.destroy();
      await service.idle();
    },
  };
}
