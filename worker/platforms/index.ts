/**
 * The platform registry. `satisfies Record<PlatformId, ...>`: a platform id without an adapter
 * fails to compile.
 */
import type { PlatformAdapter, PlatformId } from '../../core/platforms.ts';
import { bluesky } from './bluesky.ts';
import { facebook } from './facebook.ts';
import { instagram } from './instagram.ts';
import { linkedin } from './linkedin.ts';
import { pinterest } from './pinterest.ts';
import { threads } from './threads.ts';
import { tiktok } from './tiktok.ts';
import { x } from './x.ts';
import { youtube } from './youtube.ts';

export const ADAPTERS = {
  bluesky,
  facebook,
  instagram,
  linkedin,
  pinterest,
  threads,
  tiktok,
  youtube,
  x,
} satisfies Record<PlatformId, PlatformAdapter>;
