/**
 * `reelay keys rotate` on live data: secrets sealed under key A, the command run as a person runs
 * it with REELAY_SECRET_KEY=B and REELAY_SECRET_KEY_PREVIOUS=A, then everything read with B alone.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readCredentials, upsertAccount } from '../../core/accounts.ts';
import { parseConfig } from '../../core/config.ts';
import { createContext } from '../../core/context.ts';
import { createSecretBox, keyId } from '../../core/crypto.ts';
import { MESSAGES } from '../../core/errors.ts';
import { SEALED_COLUMNS } from '../../core/keys.ts';
import { createMediaLinkSigner } from '../../core/media-links.ts';
import { createLogger } from '../../core/log.ts';
import { ensureWorkspace } from '../../core/workspaces.ts';
import { testContext, type TestContext } from '../support/context.ts';

const BIN = fileURLToPath(new URL('../../bin/reelay.js', import.meta.url));
const keyA = randomBytes(32);
const keyB = randomBytes(32);
const keyC = randomBytes(32);
let ctx: TestContext;

function reelay(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, DATABASE_URL: ctx.databaseUrl, REELAY_DATA_DIR: join(ctx.dir, 'cli-data'), LOG_LEVEL: 'silent', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const rotated = { REELAY_SECRET_KEY: keyB.toString('base64'), REELAY_SECRET_KEY_PREVIOUS: `${randomBytes(32).toString('base64')},${keyA.toString('base64')}` };

/** Per sealed value: the key id in its column and the one inside its envelope. */
async function keyIds(): Promise<Array<{ table: string; id: string; column: string; envelope: string }>> {
  const { rows } = await ctx.pool.query<{ table: string; id: string; column: string; envelope: Buffer }>(
    `SELECT 'accounts' AS table, id::text, key_id AS column, credentials AS envelope FROM accounts
     UNION ALL SELECT 'link_requests', token_hash, key_id, verifier FROM link_requests WHERE verifier IS NOT NULL ORDER BY 1, 2`,
  );
  const box = createSecretBox(keyA);
  return rows.map((r) => ({ ...r, envelope: box.keyIdOf(r.envelope) }));
}

before(async () => {
  ctx = await testContext({ env: { REELAY_SECRET_KEY: keyA.toString('base64') } });
  await ensureWorkspace(ctx.pool, 'cli', 'UTC');
});
after(async () => {
  await ctx?.dispose();
});

test('the rotation knows every bytea column of the schema', async () => {
  const { rows } = await ctx.pool.query<{ table: string; column: string }>(
    `SELECT table_name AS table, column_name AS column FROM information_schema.columns
      WHERE table_schema = 'public' AND data_type = 'bytea' ORDER BY 1, 2`,
  );
  // Thumbnails are public JPEG frames, not secrets.
  const secretColumns = rows.filter((r) => !(r.table === 'renditions' && r.column === 'thumbnail'));
  assert.deepEqual(
    secretColumns.map((r) => `${r.table}.${r.column}`),
    SEALED_COLUMNS.map((c) => `${c.table}.${c.value}`).sort(),
  );
});

test('rotate: A-sealed secrets move to B in one run, a re-run changes nothing, B alone opens them', async () => {
  const creds = [
    { handle: 'one.test', credentials: { accessJwt: 'access-one', refreshJwt: 'refresh-one' } },
    { handle: 'two.test', credentials: { accessJwt: 'access-two', refreshJwt: 'refresh-two' } },
  ];
  const accounts = [];
  for (const c of creds) {
    accounts.push(await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: c.handle, remoteId: null, credentials: c.credentials, expiresAt: null }));
  }
  await ctx.pool.query(
    `INSERT INTO link_requests (token_hash, workspace_id, member_id, platform, verifier, key_id, expires_at) VALUES ('hash-1', 'cli', 'm', 'x', $1, $2, now() + interval '10 minutes')`,
    [ctx.secrets.seal('the-pkce-verifier'), ctx.secrets.keyId],
  );
  const before = await keyIds();
  assert.equal(before.length, 3);
  assert.ok(before.every((r) => r.column === keyId(keyA) && r.envelope === keyId(keyA)));

  const first = await reelay(['keys', 'rotate', '--json'], rotated);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(JSON.parse(first.stdout), { changed: 3, total: 3, keyId: keyId(keyB) });
  const after = await keyIds();
  assert.ok(after.every((r) => r.column === keyId(keyB) && r.envelope === keyId(keyB)), JSON.stringify(after));

  const again = await reelay(['keys', 'rotate'], rotated);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout.trim(), MESSAGES.keysRotated(0, 3, keyId(keyB)));

  // A process started with only the new key reads everything.
  const config = parseConfig({ DATABASE_URL: ctx.databaseUrl, REELAY_SECRET_KEY: keyB.toString('base64'), LOG_LEVEL: 'silent' });
  const onlyB = await createContext({ config, log: createLogger({ level: 'silent' }) });
  try {
    for (const [i, account] of accounts.entries()) assert.deepEqual(await readCredentials(onlyB.pool, onlyB.secrets, account.id), creds[i]!.credentials);
    const { rows } = await onlyB.pool.query<{ verifier: Buffer }>(`SELECT verifier FROM link_requests WHERE token_hash = 'hash-1'`);
    assert.equal(onlyB.secrets.open(rows[0]!.verifier), 'the-pkce-verifier');
  } finally {
    await onlyB.close();
  }
});

test('rotate refuses a value under an unknown key and changes nothing', async () => {
  await upsertAccount(ctx.pool, ctx.secrets, { workspaceId: 'cli', platform: 'bluesky', handle: 'stale.test', remoteId: null, credentials: { accessJwt: 'a' }, expiresAt: null });
  const stranger = await upsertAccount(ctx.pool, createSecretBox(keyC), { workspaceId: 'cli', platform: 'tiktok', handle: 'stranger', remoteId: null, credentials: { accessToken: 't' }, expiresAt: null });
  const before = await keyIds();
  assert.ok(before.some((r) => r.envelope === keyId(keyA)), 'one value still under A');

  const refused = await reelay(['keys', 'rotate'], rotated);
  assert.equal(refused.code, 2, refused.stderr);
  assert.ok(refused.stderr.includes(MESSAGES.keysUnknownKey(`accounts ${stranger.id}`, keyId(keyC))), refused.stderr);
  assert.deepEqual(await keyIds(), before, 'the A-sealed value was not re-sealed either: one transaction');
});

test('a malformed previous key stops the command at startup, by name', async () => {
  const run = await reelay(['keys', 'rotate'], { REELAY_SECRET_KEY: keyB.toString('base64'), REELAY_SECRET_KEY_PREVIOUS: 'bm90IGEga2V5' });
  assert.equal(run.code, 2);
  assert.match(run.stderr, /REELAY_SECRET_KEY_PREVIOUS: must be comma-separated keys/);
});

test('media links signed under the old key keep working while it is listed as previous', () => {
  const id = '00000000-0000-4000-8000-000000000001';
  const now = Date.now();
  const old = new URL(createMediaLinkSigner(keyA, 'https://reelay.example').url(id, now)!);
  const [exp, sig] = [old.searchParams.get('exp'), old.searchParams.get('sig')];
  assert.equal(createMediaLinkSigner(keyB, 'https://reelay.example', [keyA]).verify(id, exp, sig, now), true);
  assert.equal(createMediaLinkSigner(keyB, 'https://reelay.example').verify(id, exp, sig, now), false);
  assert.equal(createMediaLinkSigner(keyB, 'https://reelay.example', [keyA]).verify('00000000-0000-4000-8000-000000000002', exp, sig, now), false);
});
