/** `reelay discord register [--guild ID]`: the slash commands, guild-scoped (instant) or global. */
import { DiscordAPIError } from '@discordjs/rest';
import { registerDiscordCommands } from '../bot/discord.ts';
import { discordRest } from '../core/chat/discord-outbox.ts';
import type { Config } from '../core/config.ts';
import { MESSAGES, UserError } from '../core/errors.ts';
import type { CommandIo } from './posts.ts';

export async function discordRegister(config: Config, options: { guild?: string }, io: CommandIo): Promise<number> {
  const { token, applicationId, apiRoot } = config.chat.discord;
  if (!token || !applicationId) throw new UserError(MESSAGES.discordNeedsApplication());
  let count: number;
  try {
    count = await registerDiscordCommands(discordRest(token, apiRoot), applicationId, options.guild);
  } catch (error) {
    if (error instanceof DiscordAPIError) throw new UserError(MESSAGES.discordRegisterFailed(error.message), { cause: error });
    // fetch's "fetch failed" (refused, DNS, TLS): the reason is in the cause.
    if (error instanceof TypeError) throw new UserError(MESSAGES.fixChatUnreachable('Discord', 'DISCORD_API_ROOT'), { cause: error });
    throw error;
  }
  io.out(MESSAGES.discordCommandsRegistered(count, options.guild ? `in server ${options.guild} (usable now)` : 'globally (Discord can take up to an hour to show them)'));
  return 0;
}
