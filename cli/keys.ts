/** `reelay keys rotate`: re-seal every stored secret under REELAY_SECRET_KEY. */
import type { Context } from '../core/context.ts';
import { MESSAGES } from '../core/errors.ts';
import { rotateSecrets } from '../core/keys.ts';
import type { CommandIo } from './posts.ts';

export async function keysRotate(ctx: Context, options: { json?: boolean }, io: CommandIo): Promise<number> {
  const result = await rotateSecrets(ctx.pool, ctx.secrets);
  io.out(options.json ? JSON.stringify(result) : MESSAGES.keysRotated(result.changed, result.total, result.keyId));
  return 0;
}
