/**
 * The Discord outbox over @discordjs/rest: the worker edits status messages and sends alerts
 * through it without a gateway connection, so bot and worker can run as separate processes.
 * Texts go out with Discord markdown escaped and `allowed_mentions: { parse: [] }`, so a caption
 * can neither format the message nor ping anyone (`@everyone` included); links stay clickable.
 */
import { createWriteStream, openAsBlob } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { REST, type RESTOptions } from '@discordjs/rest';
// The wire types and the markdown escaper, not discord.js itself: a worker that only edits
// messages over REST should not carry the gateway client (~45 MB of resident memory).
import { escapeMarkdown } from '@discordjs/formatters';
import { ButtonStyle, ComponentType, MessageFlags, Routes, type APIActionRowComponent, type APIButtonComponent, type APIChannel, type APIGuild, type APIMessage } from 'discord-api-types/v10';
import type { ChatButton, ChatOutbox, OutMessage } from './outbox.ts';

/**
 * What a bot may upload without a boosted guild: 25 MiB per message on Discord since 2024 (a
 * boosted guild allows more, but this is safe everywhere).
 */
export const DISCORD_UPLOAD_LIMIT = 25 * 1024 * 1024;
export const DISCORD_CLOUD_ROOT = 'https://discord.com/api';
const TEXT_LIMIT = 2000;
const LABEL_LIMIT = 80;
const URL_PART = /(https?:\/\/[^\s<>]+)/;

/**
 * REST options for both @discordjs/rest and discord.js. Requests go through the global fetch:
 * @discordjs/rest's default undici `request` ends up on the process-wide dispatcher that our newer
 * undici installs, which refuses the FormData of every upload (a photo, a file).
 */
export function discordRestOptions(apiRoot: string): Partial<RESTOptions> {
  return { api: apiRoot, version: '10', makeRequest: (url, init) => fetch(url, init as RequestInit) };
}

export function discordRest(token: string, apiRoot: string): REST {
  return new REST(discordRestOptions(apiRoot)).setToken(token);
}

/** Escapes everything but links, which escaping would break; then clips to Discord's 2000. */
export function discordText(text: string): string {
  const escaped = text
    .split(URL_PART)
    .map((part, index) => (index % 2 === 1 ? part : escapeMarkdown(part, { heading: true, bulletedList: true, numberedList: true, maskedLink: true })))
    .join('');
  const chars = [...escaped];
  return chars.length <= TEXT_LIMIT ? escaped : `${chars.slice(0, TEXT_LIMIT - 1).join('')}…`;
}

/** Chat buttons as action rows (5 rows of 5 at most); custom_id is the button's data. */
export function discordComponents(buttons: ChatButton[][] | undefined): APIActionRowComponent<APIButtonComponent>[] {
  return (buttons ?? [])
    .filter((row) => row.length > 0)
    .slice(0, 5)
    .map((row) => ({
      type: ComponentType.ActionRow,
      components: row.slice(0, 5).map((b) => ({ type: ComponentType.Button, style: ButtonStyle.Secondary, label: b.label.slice(0, LABEL_LIMIT), custom_id: b.data })),
    }));
}

/** The body every message and edit shares: safe text, buttons, no embeds of the links. */
export function discordBody(message: Pick<OutMessage, 'text' | 'buttons'>) {
  return {
    content: discordText(message.text),
    components: discordComponents(message.buttons),
    allowed_mentions: { parse: [] },
    flags: MessageFlags.SuppressEmbeds,
  };
}

export function discordOutbox(rest: REST): ChatOutbox {
  return {
    chat: 'discord',
    maxUploadBytes: DISCORD_UPLOAD_LIMIT,
    async send(chatId, message) {
      const body = {
        ...discordBody(message),
        ...(message.replyTo ? { message_reference: { message_id: message.replyTo, fail_if_not_exists: false } } : {}),
        ...(message.photo ? { attachments: [{ id: 0, filename: 'preview.jpg' }] } : {}),
      };
      const files = message.photo ? [{ name: 'preview.jpg', data: Buffer.from(message.photo), contentType: 'image/jpeg' }] : undefined;
      const sent = (await rest.post(Routes.channelMessages(chatId), { body, ...(files ? { files } : {}) })) as APIMessage;
      return sent.id;
    },
    async edit(chatId, messageId, message) {
      await rest.patch(Routes.channelMessage(chatId, messageId), { body: discordBody(message) });
    },
    async sendFile(chatId, file, caption) {
      // Spooled to disk, then sent from a file-backed Blob: memory stays flat, and a request
      // @discordjs/rest repeats after a 429 can read the file again (a stream could not).
      const dir = await mkdtemp(join(tmpdir(), 'reelay-discord-'));
      try {
        const path = join(dir, file.name);
        await pipeline(await file.open(), createWriteStream(path));
        const form = new FormData();
        form.append('payload_json', JSON.stringify({ ...discordBody({ text: caption }), attachments: [{ id: 0, filename: file.name }] }));
        form.append('files[0]', await openAsBlob(path, { type: 'video/mp4' }), file.name);
        const sent = (await rest.post(Routes.channelMessages(chatId), { body: form, passThroughBody: true })) as APIMessage;
        return sent.id;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    async remove(chatId, messageId) {
      try {
        await rest.delete(Routes.channelMessage(chatId, messageId));
        return true;
      } catch {
        // Gone already, or the bot lacks Manage Messages here: the caller says so instead.
        return false;
      }
    },
    async describe(chatId) {
      const channel = (await rest.get(Routes.channel(chatId)).catch(() => null)) as APIChannel | null;
      // Only guild channels are places (bot/discord.ts): the workspace is the guild.
      if (!channel || !('guild_id' in channel) || !channel.guild_id) return null;
      // A channel name alone ("#general") does not say which server asks or is asked.
      const guild = (await rest.get(Routes.guild(channel.guild_id)).catch(() => null)) as APIGuild | null;
      return { name: guild?.name ? `#${channel.name} (${guild.name})` : `#${channel.name}`, workspaceId: `discord:${channel.guild_id}` };
    },
  };
}
