/**
 * Bluesky (AT Protocol), publishing by direct blob upload to the account's PDS ("Path B" in the
 * platform reference): uploadBlob, then createRecord of an app.bsky.feed.post with a video embed.
 *
 * Exactly-once: the post's record key is derived from the delivery and saved before createRecord,
 * and a resumed attempt reads that record first. A second createRecord with the same key answers
 * 500 rather than a clean conflict, so the read — not the write — is what prevents duplicates.
 *
 * All HTTP goes through `deps.fetch` (via http.ts); @atproto/api is used only for RichText.
 */
import { createHash } from 'node:crypto';
import type { Facet } from '@atproto/api';
import { z } from 'zod';
import { MESSAGES, PublishError, withOutcomeUnknown } from '../../core/errors.ts';
import type { Checkpoint, Credentials, PlatformAdapter, PlatformDeps, PublishInput, PublishResult, RefreshResult } from '../../core/platforms.ts';
import { PLATFORM_SPECS } from '../../core/platforms.ts';
import { describeBody, json, requestJson, retryAfterSeconds, streamBody } from './http.ts';
import type { HttpRequest, MapError, RequestOptions } from './http.ts';

const SPEC = PLATFORM_SPECS.bluesky;
const LABEL = SPEC.label;
const POST_COLLECTION = 'app.bsky.feed.post';
/** Refresh when the access token has less than this left, so a long upload does not outlive it. */
const REFRESH_MARGIN_MS = 5 * 60_000;
const DEFAULT_WEB_URL = 'https://bsky.app';
/** What the PDS puts in `handle` when the handle no longer resolves to the DID. */
const INVALID_HANDLE = 'handle.invalid';

const httpUrl = z.url({ protocol: /^https?$/ });

export const blueskySessionSchema = z.object({
  did: z.string().startsWith('did:'),
  handle: z.string().min(1),
  accessJwt: z.string().min(1),
  refreshJwt: z.string().min(1),
  /** Where authenticated calls go: the account's PDS, which may differ from `service` (an entryway). */
  pdsUrl: httpUrl,
});

export const blueskyCredentialsSchema = z.object({
  /** Handle, email or DID, as the user typed it. */
  identifier: z.string().min(1),
  appPassword: z.string().min(1),
  /** PDS or entryway URL the account logs in at (e.g. https://bsky.social). */
  service: httpUrl,
  session: blueskySessionSchema.optional(),
});

export type BlueskySession = z.infer<typeof blueskySessionSchema>;
export type BlueskyCredentials = z.infer<typeof blueskyCredentialsSchema>;

const blobRefSchema = z.object({
  $type: z.literal('blob'),
  ref: z.object({ $link: z.string().min(1) }),
  mimeType: z.string().min(1),
  size: z.number().int().nonnegative(),
});
type BlobRef = z.infer<typeof blobRefSchema>;

const sessionResponseSchema = z.object({
  did: z.string().startsWith('did:'),
  handle: z.string().min(1),
  accessJwt: z.string().min(1),
  refreshJwt: z.string().min(1),
  didDoc: z.unknown().optional(),
  active: z.boolean().optional(),
  status: z.string().optional(),
});

const recordResponseSchema = z.object({ uri: z.string().startsWith('at://'), cid: z.string().optional() });

// ---------------------------------------------------------------------------------------------
// Errors

/** The XRPC error name (`{"error": "ExpiredToken", "message": ...}`), if the body has one. */
function errorName(body: unknown): string | undefined {
  if (body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string') {
    return (body as { error: string }).error;
  }
  return undefined;
}

/**
 * Maps a non-2xx XRPC answer to a PublishError. Token errors are matched by name, not status: the
 * PDS answers ExpiredToken and InvalidToken with 400, not 401.
 */
export function mapBlueskyError(status: number, body: unknown, headers: Headers, nowMs: number): PublishError {
  const name = errorName(body);
  const detail = describeBody(body) || `HTTP ${status}`;
  const message = `${LABEL} answered ${status}${name ? ` ${name}` : ''}: ${detail}`;
  if (name === 'ExpiredToken') return new PublishError('auth', message, { status, detail, retryable: true });
  if (
    status === 401 ||
    name === 'InvalidToken' ||
    name === 'AuthenticationRequired' ||
    name === 'AuthFactorTokenRequired' ||
    name === 'AccountTakedown' ||
    name === 'AccountDeactivated'
  ) {
    return new PublishError('auth', message, { status, detail, retryable: false });
  }
  if (status === 429 || name === 'RateLimitExceeded') {
    return new PublishError('rate_limited', message, { status, detail, retryable: true, retryAfterSeconds: retryAfterSeconds(headers, nowMs) });
  }
  if (status === 413 || name === 'PayloadTooLarge' || name === 'BlobTooLarge') {
    return new PublishError('invalid_media', message, { status, detail, retryable: false });
  }
  if (status === 400 && name === 'InvalidRequest') return new PublishError('rejected', message, { status, detail, retryable: false });
  if (status >= 500) return new PublishError('unavailable', message, { status, detail, retryable: true });
  return new PublishError('unknown', message, { status, detail });
}

/** createRecord's answer when the blob it references has expired or was never stored. */
class BlobMissingError extends PublishError {}
/** getRecord's answer for a record that does not exist. */
class RecordNotFoundError extends PublishError {}

// ---------------------------------------------------------------------------------------------
// XRPC over deps.fetch

interface XrpcCall {
  method: 'GET' | 'POST';
  query?: Record<string, string>;
  token?: string;
  body?: HttpRequest['body'];
  headers?: Record<string, string>;
  /** Recognises call-specific error names before the generic mapping. */
  special?: (status: number, name: string | undefined, mapped: PublishError) => PublishError | undefined;
}

async function xrpc<T>(deps: PlatformDeps, base: string, nsid: string, call: XrpcCall, options: RequestOptions = {}): Promise<T> {
  const url = new URL(`xrpc/${nsid}`, base.endsWith('/') ? base : `${base}/`);
  for (const [key, value] of Object.entries(call.query ?? {})) url.searchParams.set(key, value);
  const headers: Record<string, string> = { ...call.headers };
  if (call.token) headers.authorization = `Bearer ${call.token}`;
  const mapError: MapError = (status, body, responseHeaders) => {
    const mapped = mapBlueskyError(status, body, responseHeaders, deps.now());
    return call.special?.(status, errorName(body), mapped) ?? mapped;
  };
  const init: HttpRequest = { method: call.method, headers };
  if (call.body !== undefined) init.body = call.body;
  const response = await requestJson<T>(deps, url.toString(), init, mapError, options);
  return response.body;
}

// ---------------------------------------------------------------------------------------------
// Sessions

/** The JWT's `exp`, read without verifying the signature (we only need to know when to refresh). */
export function jwtExpiry(jwt: string): Date | null {
  const payload = jwt.split('.')[1];
  if (!payload) return null;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : null;
  } catch {
    return null;
  }
}

function jwtScope(jwt: string): string | undefined {
  const payload = jwt.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { scope?: unknown };
    return typeof claims.scope === 'string' ? claims.scope : undefined;
  } catch {
    return undefined;
  }
}

/** The `#atproto_pds` endpoint of a DID document, when the session carried one. */
function pdsFromDidDoc(didDoc: unknown): string | undefined {
  if (!didDoc || typeof didDoc !== 'object') return undefined;
  const services = (didDoc as { service?: unknown }).service;
  if (!Array.isArray(services)) return undefined;
  for (const service of services as unknown[]) {
    if (!service || typeof service !== 'object') continue;
    const { id, type, serviceEndpoint } = service as { id?: unknown; type?: unknown; serviceEndpoint?: unknown };
    if (typeof id !== 'string' || !id.endsWith('#atproto_pds')) continue;
    if (type !== 'AtprotoPersonalDataServer' || typeof serviceEndpoint !== 'string') continue;
    if (httpUrl.safeParse(serviceEndpoint).success) return serviceEndpoint.replace(/\/+$/, '');
  }
  return undefined;
}

function toSession(body: unknown, service: string): BlueskySession {
  const parsed = sessionResponseSchema.safeParse(body);
  if (!parsed.success) {
    throw new PublishError('unknown', `${LABEL} answered a session call with an unexpected body.`, { retryable: true, detail: 'unexpected session answer' });
  }
  if (parsed.data.active === false) {
    const detail = `account is ${parsed.data.status ?? 'inactive'}`;
    throw new PublishError('auth', `${LABEL}: ${detail}`, { retryable: false, detail });
  }
  return {
    did: parsed.data.did,
    handle: parsed.data.handle,
    accessJwt: parsed.data.accessJwt,
    refreshJwt: parsed.data.refreshJwt,
    pdsUrl: pdsFromDidDoc(parsed.data.didDoc) ?? service.replace(/\/+$/, ''),
  };
}

async function createSession(identifier: string, appPassword: string, service: string, deps: PlatformDeps): Promise<BlueskySession> {
  const body = await xrpc<unknown>(deps, service, 'com.atproto.server.createSession', {
    method: 'POST',
    body: json({ identifier, password: appPassword }),
  });
  return toSession(body, service);
}

async function refreshSession(session: BlueskySession, service: string, deps: PlatformDeps): Promise<BlueskySession> {
  const body = await xrpc<unknown>(deps, session.pdsUrl, 'com.atproto.server.refreshSession', { method: 'POST', token: session.refreshJwt });
  const next = toSession(body, service);
  // The refresh answer may omit the DID document; keep the PDS we already knew rather than falling
  // back to the entryway.
  return pdsFromDidDoc((body as { didDoc?: unknown }).didDoc) ? next : { ...next, pdsUrl: session.pdsUrl };
}

function parseCredentials(credentials: Credentials): BlueskyCredentials {
  const parsed = blueskyCredentialsSchema.safeParse(credentials);
  if (!parsed.success) {
    throw new PublishError('auth', `Stored ${LABEL} credentials are incomplete.`, { retryable: false, detail: 'stored credentials are incomplete' });
  }
  return parsed.data;
}

function requireSession(credentials: BlueskyCredentials): BlueskySession {
  if (!credentials.session) {
    // Retryable: the worker answers an auth error by refreshing (which logs in) and trying again.
    throw new PublishError('auth', `No ${LABEL} session yet.`, { retryable: true, detail: 'no session' });
  }
  return credentials.session;
}

/**
 * Logs in with an app password when an account is linked. A wrong password is 'auth' (not
 * retryable); an unreachable service is 'unavailable'. The messages are meant for the person.
 */
export async function blueskyLogin(
  params: { identifier: string; appPassword: string; service: string },
  deps: PlatformDeps,
): Promise<{ credentials: Credentials; handle: string; did: string; expiresAt: Date | null }> {
  const service = params.service.replace(/\/+$/, '');
  const identifier = params.identifier.trim().replace(/^@/, '');
  let session: BlueskySession;
  try {
    session = await createSession(identifier, params.appPassword, service, deps);
  } catch (error) {
    if (error instanceof PublishError && error.code === 'auth') {
      throw new PublishError('auth', MESSAGES.accountAuthFailed(LABEL, identifier), { retryable: false, status: error.status, detail: error.detail });
    }
    if (error instanceof PublishError && error.code === 'unavailable') {
      throw new PublishError('unavailable', MESSAGES.accountUnreachable(LABEL, service), { retryable: true, status: error.status, detail: error.detail });
    }
    throw error;
  }
  if (jwtScope(session.accessJwt) === 'com.atproto.access') {
    // The main password grants full control of the account (email, deletion); Reelay stores only
    // app passwords, which the user can revoke on their own.
    await xrpc<unknown>(deps, session.pdsUrl, 'com.atproto.server.deleteSession', { method: 'POST', token: session.refreshJwt }, { response: 'none', safeToRepeat: true }).catch(
      () => undefined,
    );
    throw new PublishError('auth', MESSAGES.accountAuthFailed(LABEL, identifier), {
      retryable: false,
      detail: 'the account password was given instead of an app password',
    });
  }
  const credentials: BlueskyCredentials = { identifier, appPassword: params.appPassword, service, session };
  return { credentials, handle: session.handle, did: session.did, expiresAt: jwtExpiry(session.accessJwt) };
}

async function refresh(credentials: Credentials, deps: PlatformDeps, options: { force: boolean }): Promise<RefreshResult | null> {
  const creds = parseCredentials(credentials);
  const current = creds.session;
  if (current && !options.force) {
    const expiry = jwtExpiry(current.accessJwt);
    if (expiry && expiry.getTime() - deps.now() > REFRESH_MARGIN_MS) return null;
  }
  let session: BlueskySession;
  if (current) {
    try {
      session = await refreshSession(current, creds.service, deps);
    } catch (error) {
      // An expired or revoked refresh token: log in again. createSession is limited to 30 per
      // 5 minutes, which is why this is the fallback and not the rule.
      if (!(error instanceof PublishError && error.code === 'auth')) throw error;
      deps.log.info({ platform: SPEC.id, reason: error.detail }, 'bluesky refresh token refused; logging in again');
      session = await createSession(creds.identifier, creds.appPassword, creds.service, deps);
    }
  } else {
    session = await createSession(creds.identifier, creds.appPassword, creds.service, deps);
  }
  const next: BlueskyCredentials = { ...creds, session };
  return { credentials: next, expiresAt: jwtExpiry(session.accessJwt) };
}

// ---------------------------------------------------------------------------------------------
// Record keys

const S32_CHARS = '234567abcdefghijklmnopqrstuvwxyz';
const TID_PATTERN = /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/;

export function isValidTid(value: unknown): value is string {
  return typeof value === 'string' && TID_PATTERN.test(value);
}

/** A TID: 53 bits of microseconds since the epoch and a 10-bit clock id, in sortable base32. */
export function tidFromTime(microseconds: bigint, clockId: number): string {
  if (microseconds < 0n || microseconds >= 1n << 53n) throw new RangeError('TID timestamp out of range');
  let value = (microseconds << 10n) | BigInt(clockId & 0x3ff);
  let out = '';
  for (let i = 0; i < 13; i++) {
    out = S32_CHARS[Number(value & 31n)]! + out;
    value >>= 5n;
  }
  return out;
}

/**
 * The record key of a delivery's post: the same delivery always gets the same key, so a retry
 * can look for its post. The delivery id's hash fills the sub-millisecond digits and the clock id,
 * so two deliveries created in the same millisecond still get different keys.
 */
export function deliveryRecordKey(deliveryId: string, createdAt: Date): string {
  const ms = createdAt.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('Delivery createdAt is not a valid date');
  const hash = createHash('sha256').update(deliveryId).digest();
  const micros = BigInt(ms) * 1000n + BigInt(hash.readUInt16BE(0) % 1000);
  return tidFromTime(micros, hash.readUInt16BE(2) & 0x3ff);
}

// ---------------------------------------------------------------------------------------------
// Publishing

interface BlueskyCheckpoint {
  rkey?: string;
  blob?: BlobRef;
  /** The rendition the blob was uploaded from; a different rendition means a new upload. */
  blobSha256?: string;
}

function readCheckpoint(checkpoint: Checkpoint): BlueskyCheckpoint {
  const out: BlueskyCheckpoint = {};
  if (checkpoint.rkey !== undefined) {
    if (!isValidTid(checkpoint.rkey)) throw new Error(`Bluesky checkpoint holds an invalid record key: ${String(checkpoint.rkey)}`);
    out.rkey = checkpoint.rkey;
  }
  const blob = blobRefSchema.safeParse(checkpoint.blob);
  if (blob.success) out.blob = blob.data;
  if (typeof checkpoint.blobSha256 === 'string') out.blobSha256 = checkpoint.blobSha256;
  return out;
}

type RichTextModule = typeof import('@atproto/api');
let richTextModule: Promise<RichTextModule> | undefined;
/** @atproto/api takes about a second to load (every lexicon); only publishing needs it. */
function loadRichText(): Promise<RichTextModule> {
  richTextModule ??= import('@atproto/api');
  return richTextModule;
}

/** Text, byte-range facets for hashtags and links, or a 'rejected' error for a too-long caption. */
async function buildText(caption: string): Promise<{ text: string; facets: Facet[] }> {
  const { RichText } = await loadRichText();
  const rt = new RichText({ text: caption });
  const max = SPEC.caption.maxLength;
  if (rt.graphemeLength > max) {
    const detail = MESSAGES.captionTooLong(LABEL, rt.graphemeLength, max, 'graphemes');
    throw new PublishError('rejected', detail, { retryable: false, detail });
  }
  if (rt.length > SPEC.caption.maxBytes) {
    const detail = MESSAGES.captionTooManyBytes(LABEL, rt.length, SPEC.caption.maxBytes);
    throw new PublishError('rejected', detail, { retryable: false, detail });
  }
  rt.detectFacetsWithoutResolution();
  // Unresolved mentions carry the handle where the lexicon wants a DID; the PDS would refuse the
  // record, so they are left as plain text.
  const facets: Facet[] = [];
  for (const facet of rt.facets ?? []) {
    const features = facet.features.filter((f) => f.$type !== 'app.bsky.richtext.facet#mention');
    if (features.length > 0) facets.push({ ...facet, features });
  }
  return { text: rt.text, facets };
}

function postUrl(deps: PlatformDeps, actor: string, rkey: string): string {
  const web = (deps.urls.web ?? DEFAULT_WEB_URL).replace(/\/+$/, '');
  // Handles, DIDs and TIDs use only URL-safe characters; bsky.app links show DIDs unescaped.
  return `${web}/profile/${actor}/post/${rkey}`;
}

function actorFor(session: BlueskySession | undefined, did: string, accountHandle: string): string {
  if (session && session.did === did && session.handle !== INVALID_HANDLE) return session.handle;
  return accountHandle && accountHandle !== INVALID_HANDLE ? accountHandle.replace(/^@/, '') : did;
}

/** The record, or null when the PDS says it does not exist. Unauthenticated: records are public. */
async function getRecord(deps: PlatformDeps, pdsUrl: string, did: string, rkey: string): Promise<{ uri: string } | null> {
  try {
    const body = await xrpc<unknown>(
      deps,
      pdsUrl,
      'com.atproto.repo.getRecord',
      {
        method: 'GET',
        query: { repo: did, collection: POST_COLLECTION, rkey },
        special: (status, name, mapped) =>
          status === 400 && name === 'RecordNotFound' ? new RecordNotFoundError('unknown', mapped.message, { status, detail: mapped.detail }) : undefined,
      },
      { safeToRepeat: true },
    );
    const parsed = recordResponseSchema.safeParse(body);
    if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered getRecord with an unexpected body.`, { retryable: true });
    return parsed.data;
  } catch (error) {
    if (error instanceof RecordNotFoundError) return null;
    throw error;
  }
}

async function uploadBlob(input: PublishInput, deps: PlatformDeps, session: BlueskySession): Promise<BlobRef> {
  const { rendition } = input;
  const stream = await rendition.open();
  const body = await xrpc<unknown>(
    deps,
    session.pdsUrl,
    'com.atproto.repo.uploadBlob',
    { method: 'POST', token: session.accessJwt, headers: { 'content-type': 'video/mp4' }, body: streamBody(stream, rendition.size) },
    // An unattached blob is invisible and garbage-collected; a lost answer just means upload again.
    { safeToRepeat: true },
  );
  const parsed = blobRefSchema.safeParse((body as { blob?: unknown } | undefined)?.blob);
  if (!parsed.success) throw new PublishError('unknown', `${LABEL} answered uploadBlob with an unexpected body.`, { retryable: true });
  return parsed.data;
}

async function publish(input: PublishInput, deps: PlatformDeps): Promise<PublishResult> {
  const creds = parseCredentials(input.credentials);
  const session = requireSession(creds);
  const { text, facets } = await buildText(input.caption);
  const checkpoint = readCheckpoint(input.checkpoint);
  const log = deps.log.child({ platform: SPEC.id, deliveryId: input.deliveryId });

  let rkey = checkpoint.rkey;
  if (rkey !== undefined) {
    const existing = await getRecord(deps, session.pdsUrl, session.did, rkey).catch((error: unknown) => {
      // An earlier attempt got as far as choosing the key, so it may have posted: until this read
      // succeeds, whether the post exists is unknown.
      throw error instanceof PublishError ? withOutcomeUnknown(error) : error;
    });
    if (existing) {
      log.info({ rkey }, 'bluesky post already exists; not posting again');
      return { status: 'published', remoteId: existing.uri, url: postUrl(deps, actorFor(session, session.did, input.account.handle), rkey) };
    }
  } else {
    rkey = deliveryRecordKey(input.deliveryId, input.createdAt);
    await input.saveCheckpoint({ rkey });
  }
  const key = rkey;

  const upload = async (): Promise<BlobRef> => {
    const blob = await uploadBlob(input, deps, session);
    await input.saveCheckpoint({ rkey: key, blob, blobSha256: input.rendition.sha256 });
    deps.crashPoint('bluesky.after_upload');
    log.info({ rkey: key, size: blob.size }, 'bluesky blob uploaded');
    return blob;
  };

  let blob = checkpoint.blob && checkpoint.blobSha256 === input.rendition.sha256 ? checkpoint.blob : await upload();
  let reuploaded = false;
  for (;;) {
    const embed: Record<string, unknown> = { $type: 'app.bsky.embed.video', video: blob };
    // The lexicon wants positive integers; an unknown size is better left out than refused.
    const { width, height } = input.rendition;
    if (Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0) embed.aspectRatio = { width, height };
    const record: Record<string, unknown> = { $type: POST_COLLECTION, text, createdAt: new Date(deps.now()).toISOString(), embed };
    if (facets.length > 0) record.facets = facets;
    try {
      const body = await xrpc<unknown>(deps, session.pdsUrl, 'com.atproto.repo.createRecord', {
        method: 'POST',
        token: session.accessJwt,
        body: json({ repo: session.did, collection: POST_COLLECTION, rkey: key, record }),
        special: (status, name, mapped) => {
          if (status === 400 && name === 'BlobNotFound') return new BlobMissingError('unknown', mapped.message, { status, detail: mapped.detail });
          // A 500 may hide a commit that happened; the next attempt reads the record before writing.
          if (status >= 500) return new PublishError('unavailable', mapped.message, { status, detail: mapped.detail, retryable: true, outcomeUnknown: true });
          return undefined;
        },
      });
      deps.crashPoint('bluesky.after_create');
      const parsed = recordResponseSchema.safeParse(body);
      const remoteId = parsed.success ? parsed.data.uri : `at://${session.did}/${POST_COLLECTION}/${key}`;
      log.info({ rkey: key }, 'bluesky post created');
      return { status: 'published', remoteId, url: postUrl(deps, actorFor(session, session.did, input.account.handle), key) };
    } catch (error) {
      // Blob references must be used within minutes of the upload; a resumed attempt may hold a
      // stale one.
      if (error instanceof BlobMissingError && !reuploaded) {
        reuploaded = true;
        log.info({ rkey: key }, 'bluesky blob expired; uploading again');
        blob = await upload();
        continue;
      }
      throw error;
    }
  }
}

function parseRecordUri(uri: string): { did: string; collection: string; rkey: string } {
  const match = /^at:\/\/(did:[^/]+)\/([^/]+)\/([^/]+)$/.exec(uri);
  if (!match) throw new Error(`Not a Bluesky record URI: ${uri}`);
  return { did: match[1]!, collection: match[2]!, rkey: match[3]! };
}

async function check(remoteId: string, input: PublishInput, deps: PlatformDeps): Promise<PublishResult> {
  const { did, rkey } = parseRecordUri(remoteId);
  const creds = parseCredentials(input.credentials);
  const pdsUrl = creds.session?.did === did ? creds.session.pdsUrl : creds.service.replace(/\/+$/, '');
  const record = await getRecord(deps, pdsUrl, did, rkey);
  if (!record) {
    throw new PublishError('unknown', `${LABEL} has no post ${remoteId}: it was never created.`, { retryable: true, detail: 'post not found' });
  }
  return { status: 'published', remoteId: record.uri, url: postUrl(deps, actorFor(creds.session, did, input.account.handle), rkey) };
}

/** `com.atproto.server.getSession`: a read that needs a live access token, nothing else. */
async function validate(credentials: Credentials, deps: PlatformDeps): Promise<void> {
  const session = requireSession(parseCredentials(credentials));
  await xrpc<unknown>(deps, session.pdsUrl, 'com.atproto.server.getSession', { method: 'GET', token: session.accessJwt }, { safeToRepeat: true });
}

export const bluesky: PlatformAdapter = {
  spec: SPEC,
  publish,
  check,
  refresh,
  validate,
};
