/** `reelay cleanup`: the retention sweep the hourly schedule runs, now. */
import type { Context } from '../core/context.ts';
import { formatBytes, MESSAGES } from '../core/errors.ts';
import { runCleanup } from '../core/retention.ts';
import type { CommandIo } from './posts.ts';

export async function cleanupCommand(ctx: Context, options: { json?: boolean }, io: CommandIo): Promise<number> {
  const result = await runCleanup(ctx, { now: new Date(ctx.now()), graceHours: ctx.config.retention.mediaHours });
  io.out(options.json ? JSON.stringify(result) : MESSAGES.cleanupDone(result.media, result.renditions, formatBytes(result.bytes)));
  return 0;
}
