/** Starts the chat front ends whose tokens are configured. */
import { ChatNotifier } from '../core/chat/notifier.ts';
import type { Outboxes } from '../core/chat/outbox.ts';
import type { Context } from '../core/context.ts';
import { Routes } from 'discord.js';
import { startDiscord, type RunningDiscord } from './discord.ts';
import type { HttpServer } from './http.ts';
import { startTelegram } from './telegram.ts';

export interface RunningBots {
  stop(): Promise<void>;
  enabled: string[];
}

export async function startBots(ctx: Context, options: { http?: HttpServer; outboxes: Outboxes }): Promise<RunningBots> {
  const enabled: string[] = [];
  const stops: Array<() => Promise<void>> = [];
  const notifier = new ChatNotifier({ pool: ctx.pool, log: ctx.log, now: ctx.now, outboxes: options.outboxes });
  if (ctx.config.chat.telegram.token) {
    const telegram = await startTelegram(ctx, { notifier, ...(options.http ? { http: options.http } : {}) });
    stops.push(telegram.stop);
    enabled.push('telegram');
    options.http?.addHealthCheck({
      name: 'chat.telegram',
      run: async () => {
        await telegram.bot.api.getMe();
        return { status: 'ok', detail: `@${telegram.username}` };
      },
    });
  }
  if (ctx.config.chat.discord.token) {
    let discord: RunningDiscord;
    try {
      discord = await startDiscord(ctx, { notifier });
    } catch (error) {
      // A refused Discord login must not leave the Telegram bot polling in a process that exits.
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
      await notifier.close();
      throw error;
    }
    stops.push(discord.stop);
    enabled.push('discord');
    options.http?.addHealthCheck({
      name: 'chat.discord',
      run: async () => {
        await discord.client.rest.get(Routes.user());
        return { status: 'ok', detail: discord.client.user.username };
      },
    });
  }
  const missing: string[] = [];
  if (!ctx.config.chat.telegram.token) missing.push('TELEGRAM_BOT_TOKEN (Telegram)');
  if (!ctx.config.chat.discord.token) missing.push('DISCORD_TOKEN + DISCORD_APPLICATION_ID (Discord)');
  if (enabled.length === 0) ctx.log.info({ component: 'bot' }, `No chat bots running. Set ${missing.join(' or ')} to enable them.`);
  return {
    enabled,
    stop: async () => {
      for (const stop of stops.reverse()) await stop();
      await notifier.close();
    },
  };
}
