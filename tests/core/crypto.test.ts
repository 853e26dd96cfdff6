import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createSecretBox, keyId, resolveSecretKey } from '../../core/crypto.ts';
import { ConfigError } from '../../core/errors.ts';

const secret = { accessJwt: 'eyJ-secret-token', appPassword: 'abcd-efgh-ijkl-mnop' };

test('sealed values open again and never contain the plaintext', () => {
  const box = createSecretBox(randomBytes(32));
  const sealed = box.seal(secret);
  assert.ok(!sealed.toString('latin1').includes('secret-token'));
  assert.deepEqual(box.open(sealed), secret);
  // A random nonce per value: the same secret seals differently each time.
  assert.notDeepEqual(box.seal(secret), sealed);
});

test('a tampered envelope is refused', () => {
  const box = createSecretBox(randomBytes(32));
  const sealed = box.seal(secret);
  sealed[sealed.length - 1] = (sealed[sealed.length - 1] ?? 0) ^ 1;
  assert.throws(() => box.open(sealed));
});

test('values sealed under the previous key still open after rotation', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const sealed = createSecretBox(oldKey).seal(secret);
  const rotated = createSecretBox(newKey, [oldKey]);
  assert.equal(rotated.keyIdOf(sealed), keyId(oldKey));
  assert.deepEqual(rotated.open(sealed), secret);
  assert.throws(() => createSecretBox(newKey).open(sealed), /No key with id/);
});

test('the embedded default generates a key once, mode 0600; a shared database requires one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'reelay-key-'));
  const first = resolveSecretKey(undefined, { embedded: true, dataDir: dir });
  assert.equal(first.length, 32);
  assert.equal(statSync(join(dir, 'secret.key')).mode & 0o777, 0o600);
  assert.deepEqual(resolveSecretKey(undefined, { embedded: true, dataDir: dir }), first);
  assert.throws(() => resolveSecretKey(undefined, { embedded: false, dataDir: dir }), ConfigError);
});
