/**
 * The HTTP side of linking: `/link/<token>` (the one-time link from chat: a redirect to the
 * platform's consent page, or the Bluesky form) and `/oauth/<platform>/callback`. Pages are tiny,
 * self-contained HTML; every value shown is escaped, and nothing secret is ever echoed back.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../core/context.ts';
import { MESSAGES, PublishError, UserError } from '../core/errors.ts';
import { completeBluesky, completeOAuth, openLink, type Linked } from '../core/linking.ts';
import { isPlatformId, PLATFORM_SPECS } from '../core/platforms.ts';
import { blueskyLogin } from '../worker/platforms/bluesky.ts';
import { platformDeps } from '../worker/publish.ts';

const FORM_LIMIT = 4096;

export type LinkAnnouncer = (linked: Linked) => Promise<void>;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function page(response: ServerResponse, status: number, title: string, body: string): void {
  response.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
  });
  response.end(`<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title>
<style>body{font:16px system-ui;max-width:28rem;margin:2rem auto;padding:0 1rem}input,button{font:inherit;width:100%;margin:.3rem 0;padding:.5rem}</style></head><body>${body}</body></html>`);
}

const message = (response: ServerResponse, status: number, text: string) => page(response, status, 'Reelay', `<p>${escapeHtml(text)}</p>`);

function blueskyForm(response: ServerResponse, error?: string): void {
  page(
    response,
    error ? 400 : 200,
    'Link Bluesky',
    `<h1>Link Bluesky</h1>${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post"><label>Handle<input name="handle" autocomplete="username" required placeholder="you.bsky.social"></label>
<label>App password (Settings → Privacy and security → App passwords)<input name="appPassword" type="password" autocomplete="off" required></label>
<label>PDS URL (only for a self-hosted PDS)<input name="service" type="url" placeholder="https://bsky.social"></label>
<button>Link</button></form>`,
  );
}

async function readForm(request: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of request) {
    body += String(chunk);
    if (body.length > FORM_LIMIT) throw new UserError('The form is too large.');
  }
  return new URLSearchParams(body);
}

/** Handles a linking route; false when the path is not one. */
export function handleLinkRoute(ctx: Context, request: IncomingMessage, response: ServerResponse, url: URL, announce: LinkAnnouncer): boolean {
  const log = ctx.log.child({ component: 'linking' });
  const link = /^\/link\/([A-Za-z0-9_-]{16,64})$/.exec(url.pathname);
  const callback = /^\/oauth\/([a-z]+)\/callback$/.exec(url.pathname);
  if (!link && !callback) return false;

  const fail = (error: unknown) => {
    if (error instanceof UserError) return message(response, 400, error.message);
    log.warn({ err: error instanceof Error ? error.message : String(error) }, 'linking failed');
    message(response, 500, 'Something went wrong while linking. Send /link again in the chat.');
  };
  const done = async (linked: Linked) => {
    const label = PLATFORM_SPECS[linked.account.platform].label;
    await announce(linked).catch((error: unknown) => log.warn({ err: error }, 'could not announce the link in chat'));
    message(response, 200, [linked.account, ...(linked.also ?? [])].map((account) => MESSAGES.linkedPage(label, account.handle)).join('\n'));
  };

  if (link && request.method === 'GET') {
    openLink(ctx, link[1]!)
      .then((opened) => {
        if (opened.kind === 'form') return blueskyForm(response);
        response.writeHead(302, { location: opened.url, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }).end();
      })
      .catch(fail);
    return true;
  }
  if (link && request.method === 'POST') {
    readForm(request)
      .then(async (form) => {
        const handle = (form.get('handle') ?? '').trim().replace(/^@/, '');
        const appPassword = form.get('appPassword') ?? '';
        const service = (form.get('service') ?? '').trim() || ctx.config.platforms.bluesky.urls.service || 'https://bsky.social';
        try {
          const linked = await completeBluesky(ctx, link[1]!, async () => {
            try {
              const login = await blueskyLogin({ identifier: handle, appPassword, service }, platformDeps(ctx, 'bluesky', log, AbortSignal.timeout(30_000)));
              return { handle: login.handle, did: login.did, credentials: login.credentials, expiresAt: login.expiresAt };
            } catch (error) {
              if (error instanceof PublishError && error.code === 'auth') throw new UserError(MESSAGES.accountAuthFailed('Bluesky', handle));
              if (error instanceof PublishError) throw new UserError(MESSAGES.accountUnreachable('Bluesky', service));
              throw error;
            }
          });
          await done(linked);
        } catch (error) {
          // A wrong password shows the form again; the link stays usable until it expires.
          if (error instanceof UserError && error.message !== MESSAGES.linkExpired()) return blueskyForm(response, error.message);
          throw error;
        }
      })
      .catch(fail);
    return true;
  }
  if (callback && request.method === 'GET') {
    const platform = callback[1]!;
    if (!isPlatformId(platform)) {
      message(response, 404, 'Not found');
      return true;
    }
    completeOAuth(ctx, platform, { code: url.searchParams.get('code'), state: url.searchParams.get('state'), error: url.searchParams.get('error') }).then(done).catch(fail);
    return true;
  }
  message(response, 405, 'Method not allowed');
  return true;
}
