/**
 * Finding lost logins before a post does. Daily, every active account makes one cheap read (its
 * adapter's `validate`, after the refresh a publish would do); a refused login marks the account
 * needs_reauth and alerts once, like a failed publish would. Every few minutes, deliveries due within
 * AT_RISK_HOURS on an account that is not active are announced once each, with a Re-link button.
 */
import { setAccountState, withLockedCredentials } from '../core/accounts.ts';
import type { Context } from '../core/context.ts';
import type { Queryable } from '../core/db.ts';
import { PublishError } from '../core/errors.ts';
import type { PlatformAdapter, PlatformId } from '../core/platforms.ts';
import type { Notifier } from './notify.ts';
import { platformDeps } from './publish.ts';

const VALIDATE_TIMEOUT_MS = 60_000;

export interface ValidationSummary {
  checked: number;
  /** No adapter, or an adapter without `validate`. */
  skipped: number;
  needsReauth: string[];
  /** Unavailable platforms and other errors: tried again tomorrow, the account is left as it is. */
  failed: number;
}

async function listActiveAccounts(db: Queryable): Promise<Array<{ id: string; platform: PlatformId }>> {
  const { rows } = await db.query<{ id: string; platform: PlatformId }>(`SELECT id, platform FROM accounts WHERE state = 'active' ORDER BY platform, id`);
  return rows;
}

/** Deliveries not yet started, due before `until`, whose account is not active. */
export async function listAtRiskDeliveries(db: Queryable, now: Date, until: Date): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT d.id FROM deliveries d
       JOIN posts p ON p.id = d.post_id
       JOIN accounts a ON a.id = d.account_id
      WHERE d.state IN ('scheduled', 'awaiting_approval') AND a.state <> 'active'
        AND p.scheduled_at >= $1 AND p.scheduled_at <= $2
      ORDER BY p.scheduled_at, d.id`,
    [now, until],
  );
  return rows.map((r) => r.id);
}

export async function validateAccounts(ctx: Context, adapters: Partial<Record<PlatformId, PlatformAdapter>>, notify: Notifier): Promise<ValidationSummary> {
  const log = ctx.log.child({ component: 'account-checks' });
  const summary: ValidationSummary = { checked: 0, skipped: 0, needsReauth: [], failed: 0 };
  for (const account of await listActiveAccounts(ctx.pool)) {
    const adapter = adapters[account.platform];
    const validate = adapter?.validate;
    if (!adapter || !validate) {
      summary.skipped += 1;
      continue;
    }
    const deps = platformDeps(ctx, account.platform, log, AbortSignal.timeout(VALIDATE_TIMEOUT_MS));
    const attempt = async (force: boolean): Promise<void> => {
      // The refresh is stored under the row lock before the read, so a rotated refresh token is
      // never lost to a failed check.
      const credentials = await withLockedCredentials(ctx.pool, ctx.secrets, account.id, async (current) => {
        const refreshed = adapter.refresh ? await adapter.refresh(current, deps, { force }) : null;
        return refreshed ? { credentials: refreshed.credentials, expiresAt: refreshed.expiresAt, result: refreshed.credentials } : { result: current };
      });
      await validate(credentials, deps);
    };
    try {
      try {
        await attempt(false);
      } catch (error) {
        // As in a publish: an expired token is cured by one forced refresh; refused again, the login is gone.
        if (!(error instanceof PublishError && error.code === 'auth' && error.retryable && adapter.refresh)) throw error;
        await attempt(true);
      }
      summary.checked += 1;
    } catch (error) {
      if (error instanceof PublishError && error.code === 'auth') {
        await setAccountState(ctx.pool, account.id, 'needs_reauth', error.detail ?? error.message);
        await notify.accountNeedsReauth?.(account.id);
        summary.needsReauth.push(account.id);
        log.warn({ accountId: account.id, platform: account.platform, reason: error.detail }, 'account login no longer works');
      } else {
        summary.failed += 1;
        log.warn({ accountId: account.id, platform: account.platform, err: error instanceof PublishError ? error.detail : String(error) }, 'account check failed; trying again tomorrow');
      }
    }
  }
  log.info({ ...summary, needsReauth: summary.needsReauth.length }, 'accounts validated');
  return summary;
}

/** Announces each at-risk delivery (the notifier dedupes per delivery); returns the ones found. */
export async function checkAtRisk(ctx: Context, notify: Notifier): Promise<string[]> {
  const now = ctx.now();
  const deliveries = await listAtRiskDeliveries(ctx.pool, new Date(now), new Date(now + ctx.config.accounts.atRiskHours * 3600_000));
  for (const id of deliveries) await notify.deliveryAtRisk?.(id);
  return deliveries;
}
