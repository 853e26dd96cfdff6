/**
 * Secrets at rest: AES-256-GCM with a random 96-bit nonce per value and the key's id stored beside
 * the ciphertext, so a rotated key can still open values sealed under the previous one.
 *
 * Envelope: version (1 byte) | key id length (1) | key id | nonce (12) | tag (16) | ciphertext.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, MESSAGES } from './errors.ts';

const VERSION = 1;

export interface SecretBox {
  readonly keyId: string;
  /** Ids of the retired keys this box can still open. */
  readonly previousKeyIds: readonly string[];
  seal(value: unknown): Buffer;
  open(envelope: Buffer): unknown;
  /** The id of the key an envelope was sealed with (for rotation). */
  keyIdOf(envelope: Buffer): string;
}

export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

export function createSecretBox(current: Buffer, previous: Buffer[] = []): SecretBox {
  const keys = new Map<string, Buffer>([[keyId(current), current], ...previous.map((k) => [keyId(k), k] as const)]);
  const currentId = keyId(current);

  function parse(envelope: Buffer): { kid: string; nonce: Buffer; tag: Buffer; body: Buffer } {
    if (envelope.length < 2 || envelope[0] !== VERSION) throw new Error('Unknown secret envelope version.');
    const kidLength = envelope[1] ?? 0;
    const kid = envelope.subarray(2, 2 + kidLength).toString('ascii');
    const at = 2 + kidLength;
    return { kid, nonce: envelope.subarray(at, at + 12), tag: envelope.subarray(at + 12, at + 28), body: envelope.subarray(at + 28) };
  }

  return {
    keyId: currentId,
    previousKeyIds: previous.map(keyId).filter((kid) => kid !== currentId),
    seal(value) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', current, nonce);
      const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
      const kid = Buffer.from(currentId, 'ascii');
      return Buffer.concat([Buffer.from([VERSION, kid.length]), kid, nonce, cipher.getAuthTag(), body]);
    },
    open(envelope) {
      const { kid, nonce, tag, body } = parse(envelope);
      const key = keys.get(kid);
      if (!key) throw new Error(`No key with id ${kid} is configured (was REELAY_SECRET_KEY changed without REELAY_SECRET_KEY_PREVIOUS?).`);
      const decipher = createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAuthTag(tag);
      return JSON.parse(Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8')) as unknown;
    },
    keyIdOf(envelope) {
      return parse(envelope).kid;
    },
  };
}

/**
 * The configured key, or — for the embedded default only — one generated once into the data dir
 * with mode 0600. A shared database without a configured key is a startup error.
 */
export function resolveSecretKey(configured: Buffer | undefined, options: { embedded: boolean; dataDir: string }): Buffer {
  if (configured) return configured;
  if (!options.embedded) throw new ConfigError([`REELAY_SECRET_KEY: ${MESSAGES.missingSecretKey()}`]);
  const file = join(options.dataDir, 'secret.key');
  if (existsSync(file)) {
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new ConfigError([`${file} does not hold a 32-byte base64 key.`]);
    return key;
  }
  mkdirSync(options.dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}
