import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ENV_SCHEMA, parseConfig } from '../../core/config.ts';
import { ConfigError } from '../../core/errors.ts';

test('defaults need no environment at all', () => {
  const config = parseConfig({});
  assert.equal(config.database.url, undefined);
  assert.equal(config.defaults.timeZone, 'UTC');
  assert.equal(config.http.port, 8080);
  assert.ok(Object.isFrozen(config.http));
});

test('every bad variable is reported at once, by name', () => {
  assert.throws(
    () => parseConfig({ HTTP_PORT: 'eighty', REELAY_SECRET_KEY: 'short', LOG_LEVEL: 'loud', PUBLIC_BASE_URL: 'not a url' }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      const names = error.issues.map((i) => i.split(':')[0]);
      assert.deepEqual(names.sort(), ['HTTP_PORT', 'LOG_LEVEL', 'PUBLIC_BASE_URL', 'REELAY_SECRET_KEY']);
      return true;
    },
  );
});

test('an unknown default timezone is refused by name', () => {
  assert.throws(() => parseConfig({ REELAY_DEFAULT_TIMEZONE: 'Mars/Olympus' }), /REELAY_DEFAULT_TIMEZONE/);
});

test('a valid secret key is decoded to 32 bytes', () => {
  const key = Buffer.alloc(32, 7).toString('base64');
  assert.equal(parseConfig({ REELAY_SECRET_KEY: key }).secrets.key?.length, 32);
});

test('.env.example and the README list every variable of the schema', () => {
  const names = Object.keys(ENV_SCHEMA.shape);
  const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const name of names) {
    assert.match(example, new RegExp(`^#? ?${name}=`, 'm'), `.env.example lacks ${name}`);
    assert.match(readme, new RegExp(`\\| \`${name}\` \\|`), `README's table lacks ${name}`);
  }
});

test('REELAY_SECRET_KEY_PREVIOUS: comma-separated keys, a malformed one refused by name', () => {
  const a = Buffer.alloc(32, 1).toString('base64');
  const b = Buffer.alloc(32, 2).toString('base64');
  const previous = parseConfig({ REELAY_SECRET_KEY_PREVIOUS: `${a}, ${b}` }).secrets.previous;
  assert.deepEqual(previous.map((k) => k[0]), [1, 2]);
  assert.deepEqual(parseConfig({}).secrets.previous, []);
  assert.throws(() => parseConfig({ REELAY_SECRET_KEY_PREVIOUS: `${a},not-a-key` }), /REELAY_SECRET_KEY_PREVIOUS: must be comma-separated keys/);
  assert.throws(() => parseConfig({ REELAY_SECRET_KEY_PREVIOUS: `${a},` }), /REELAY_SECRET_KEY_PREVIOUS/);
});
