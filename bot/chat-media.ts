/**
 * A video behind a URL as chat media: a pasted link (checked against private addresses on every
 * hop by fetchLink) or a chat attachment on its CDN. Shared by the chat front ends.
 */
import { rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { IncomingMedia } from '../core/chat/service.ts';
import type { Context } from '../core/context.ts';
import { fetchLink } from '../core/fetch-link.ts';

export interface LinkMediaOptions {
  /** Shown in "Received NAME"; default the last path segment. */
  name?: string;
  size?: number | null;
  /** Hostnames exempt from the private-address check (tests; a chat's own CDN). */
  allowHosts?: readonly string[];
}

export function linkMedia(ctx: Context, url: string, options: LinkMediaOptions = {}): IncomingMedia {
  return {
    name: options.name ?? (new URL(url).pathname.split('/').pop() || 'video'),
    size: options.size ?? null,
    fetch: async (path, onProgress) => {
      const got = await fetchLink(url, {
        dir: dirname(path),
        maxBytes: ctx.config.chat.linkMaxBytes,
        ...(options.allowHosts ? { allowHosts: options.allowHosts } : {}),
        onProgress: (bytes, total) => {
          const known = total ?? options.size ?? null;
          if (known) onProgress(bytes / known);
        },
      });
      await rename(got.path, path);
    },
  };
}
