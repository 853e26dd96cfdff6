/**
 * What the chat bot end-to-end tests share: a TikTok stand-in that can be told to fail, the
 * workspace's accounts (a real Bluesky account on the test PDS and that TikTok), a link server for
 * pasted video links, and the row count that proves bad input wrote nothing.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { upsertAccount } from '../../core/accounts.ts';
import { PublishError } from '../../core/errors.ts';
import { PLATFORM_SPECS, type PlatformAdapter } from '../../core/platforms.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { blueskyLogin } from '../../worker/platforms/bluesky.ts';
import { platformDeps } from '../../worker/publish.ts';
import type { TestContext } from './context.ts';
import type { TestPdsHandle } from './pds.ts';

export interface FlakyTiktok {
  adapter: PlatformAdapter;
  /** The next `count` publishes fail for good with a plain reason ("possible spam"). */
  failNext(count: number): void;
  /** Delivery ids published, in order. */
  readonly posts: string[];
}

export function flakyTiktok(): FlakyTiktok {
  let failures = 0;
  const posts: string[] = [];
  const adapter: PlatformAdapter = {
    spec: PLATFORM_SPECS.tiktok,
    async publish(input) {
      if (failures > 0) {
        failures--;
        throw new PublishError('rejected', 'spam check', { retryable: false, userMessage: 'TikTok flagged the post as possible spam.' });
      }
      posts.push(input.deliveryId);
      return { status: 'published', remoteId: `tt-${input.deliveryId}`, url: `https://www.tiktok.com/@creator/video/${posts.length}` };
    },
    async check(remoteId) {
      return { status: 'published', remoteId, url: `https://www.tiktok.com/@creator/video/${remoteId}` };
    },
  };
  return { adapter, failNext: (count) => void (failures = count), posts };
}

/** The workspace with Bluesky @alice.test (on the PDS) and TikTok @creator linked. */
export async function linkChatAccounts(ctx: TestContext, pds: TestPdsHandle, workspaceId: string, timeZone = 'Europe/Berlin'): Promise<void> {
  await ensureWorkspace(ctx.pool, workspaceId, timeZone);
  const alice = await pds.createAccount('alice');
  const login = await blueskyLogin({ identifier: alice.handle, appPassword: alice.appPassword, service: pds.url }, platformDeps(ctx, 'bluesky', ctx.log, AbortSignal.timeout(20_000)));
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId, platform: 'bluesky', handle: login.handle, remoteId: login.did, credentials: login.credentials, expiresAt: login.expiresAt });
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId, platform: 'tiktok', handle: 'creator', remoteId: null, credentials: { token: 'test' }, expiresAt: null });
}

export async function countPostAndMediaRows(ctx: TestContext): Promise<{ posts: number; media: number }> {
  const { rows } = await ctx.pool.query<{ posts: number; media: number }>('SELECT (SELECT count(*)::int FROM posts) AS posts, (SELECT count(*)::int FROM media) AS media');
  return rows[0]!;
}

/** Serves `bytes` as video/mp4 at any path on 127.0.0.1 (reach it as `localhost`). */
export async function startVideoServer(bytes: Buffer): Promise<{ url(path: string): string; close(): void }> {
  const server: Server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'video/mp4', 'content-length': bytes.length }).end(bytes));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: (path) => `http://localhost:${(server.address() as AddressInfo).port}${path}`, close: () => server.close() };
}
