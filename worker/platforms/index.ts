/**
 * The platform registry: every adapter the worker can publish with. A platform without an adapter
 * here cannot be linked, so intake never accepts it.
 */
import type { PlatformAdapter, PlatformId } from '../../core/platforms.ts';
import { bluesky } from './bluesky.ts';
import { facebook } from './facebook.ts';
import { linkedin } from './linkedin.ts';
import { pinterest } from './pinterest.ts';
import { tiktok } from './tiktok.ts';
import { x } from './x.ts';
import { youtube } from './youtube.ts';

export const ADAPTERS: Partial<Record<PlatformId, PlatformAdapter>> = {
  bluesky,
  facebook,
  linkedin,
  pinterest,
  tiktok,
  youtube,
  x,
};
