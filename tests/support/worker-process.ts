/**
 * `reelay worker` for the chaos harness, run as its own process (`node tests/support/worker-process.ts`):
 * the same startWorker and the same SIGTERM stop as cli/servers.ts, configured from the environment
 * (REELAY_CRASH_AT included), but with adapters tuned for a test run — polls after 1 s, requests
 * that give up after seconds instead of a minute, X and LinkedIn waiting 10 s rather than 2 min for a
 * post to be listed (their simulators list it at once) — and no per-account caps (one test account per
 * platform takes every post). Crash safety does not depend on any of these numbers.
 */
import { loadConfig } from '../../core/config.ts';
import { createContext } from '../../core/context.ts';
import { createLogger } from '../../core/log.ts';
import type { PlatformAdapter, PlatformId } from '../../core/platforms.ts';
import { startWorker } from '../../worker/main.ts';
import { bluesky } from '../../worker/platforms/bluesky.ts';
import { createFacebookAdapter } from '../../worker/platforms/facebook.ts';
import { createInstagramAdapter } from '../../worker/platforms/instagram.ts';
import { createLinkedInAdapter } from '../../worker/platforms/linkedin.ts';
import { createPinterestAdapter } from '../../worker/platforms/pinterest.ts';
import { createThreadsAdapter } from '../../worker/platforms/threads.ts';
import { tiktok, tiktokTuning } from '../../worker/platforms/tiktok.ts';
import { createXAdapter } from '../../worker/platforms/x.ts';
import { createYoutubeAdapter } from '../../worker/platforms/youtube.ts';

const REQUEST_MS = 2500;
const UPLOAD_MS = 15_000;

function fastAdapters(): Record<PlatformId, PlatformAdapter> {
  Object.assign(tiktokTuning, { apiTimeoutMs: REQUEST_MS, firstCheckSeconds: 1, processingCheckSeconds: 1, defaultRetryAfterSeconds: 2 });
  return {
    bluesky,
    tiktok,
    youtube: createYoutubeAdapter({ checkAfterSeconds: 1, minCheckSeconds: 1, requestTimeoutMs: REQUEST_MS, chunkTimeoutMs: UPLOAD_MS }),
    x: createXAdapter({ checkAfterSeconds: 1, requestTimeoutMs: REQUEST_MS, segmentTimeoutMs: UPLOAD_MS, indexGraceSeconds: 10 }),
    instagram: createInstagramAdapter({ firstCheckSeconds: 1, checkSeconds: 1, requestTimeoutMs: REQUEST_MS }),
    threads: createThreadsAdapter({ firstCheckSeconds: 1, checkSeconds: 1, requestTimeoutMs: REQUEST_MS }),
    facebook: createFacebookAdapter({ checkAfterSeconds: 1, requestTimeoutMs: REQUEST_MS, finishGraceSeconds: 3 }),
    linkedin: createLinkedInAdapter({ checkAfterSeconds: 1, requestTimeoutMs: REQUEST_MS, partTimeoutMs: UPLOAD_MS, indexGraceSeconds: 10 }),
    pinterest: createPinterestAdapter({ checkAfterSeconds: 1, requestTimeoutMs: REQUEST_MS }),
  };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ level: config.log.level ?? 'warn' });
  const ctx = await createContext({ config, log });
  const worker = await startWorker(ctx, { adapters: fastAdapters(), caps: {}, pollingIntervalSeconds: 0.5, sweepIntervalSeconds: 5 });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  await worker.stop();
  await ctx.close();
  process.exit(0);
}

await main();
