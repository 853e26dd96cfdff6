/** The outboxes a process can write through, from the configured chat tokens. */
import type { Config } from '../config.ts';
import { discordOutbox, discordRest } from './discord-outbox.ts';
import type { Outboxes } from './outbox.ts';
import { telegramApi, telegramOutbox } from './telegram-outbox.ts';

export function configuredOutboxes(config: Config): Outboxes {
  const outboxes: Outboxes = {};
  const { telegram, discord } = config.chat;
  if (telegram.token) outboxes.telegram = telegramOutbox(telegramApi(telegram.token, telegram.apiRoot));
  if (discord.token) outboxes.discord = discordOutbox(discordRest(discord.token, discord.apiRoot));
  return outboxes;
}
