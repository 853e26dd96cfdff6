/** Starts the chat front ends whose tokens are configured. */
import type { Context } from '../core/context.ts';

export interface RunningBots {
  stop(): Promise<void>;
  enabled: string[];
}

export async function startBots(ctx: Context): Promise<RunningBots> {
  const enabled: string[] = [];
  const missing: string[] = [];
  if (ctx.config.chat.telegram.token) enabled.push('telegram');
  else missing.push('TELEGRAM_BOT_TOKEN (Telegram)');
  if (ctx.config.chat.discord.token) enabled.push('discord');
  else missing.push('DISCORD_TOKEN + DISCORD_APPLICATION_ID (Discord)');
  for (const chat of enabled) ctx.log.warn({ component: 'bot', chat }, `${chat} token is set, but this version has no ${chat} bot yet`);
  if (missing.length > 0) {
    ctx.log.info({ component: 'bot' }, `No chat bots running. Set ${missing.join(' or ')} to enable them.`);
  }
  return { enabled: [], stop: async () => undefined };
}
