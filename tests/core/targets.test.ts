import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTargets } from '../../core/targets.ts';
import { MESSAGES } from '../../core/errors.ts';
import { PLATFORM_IDS } from '../../core/platforms.ts';

test('platforms with and without handles', () => {
  assert.deepEqual(parseTargets('tiktok, youtube:mychannel, bluesky'), {
    ok: true,
    all: false,
    targets: [
      { platform: 'tiktok', handle: null },
      { platform: 'youtube', handle: 'mychannel' },
      { platform: 'bluesky', handle: null },
    ],
  });
});

test('platform names are case-insensitive; handles keep their case and lose a leading @', () => {
  assert.deepEqual(parseTargets('TikTok:@DanceCo,YouTube'), {
    ok: true,
    all: false,
    targets: [
      { platform: 'tiktok', handle: 'DanceCo' },
      { platform: 'youtube', handle: null },
    ],
  });
});

test('aliases', () => {
  const result = parseTargets('yt, ig, fb, twitter, bsky:me.bsky.social, tt');
  assert.ok(result.ok);
  assert.deepEqual(result.targets, [
    { platform: 'youtube', handle: null },
    { platform: 'instagram', handle: null },
    { platform: 'facebook', handle: null },
    { platform: 'x', handle: null },
    { platform: 'bluesky', handle: 'me.bsky.social' },
    { platform: 'tiktok', handle: null },
  ]);
});

test('spaces separate as well as commas', () => {
  const result = parseTargets('  x   threads,linkedin ');
  assert.ok(result.ok);
  assert.deepEqual(
    result.targets.map((t) => t.platform),
    ['x', 'threads', 'linkedin'],
  );
});

test('a handle may itself contain colons', () => {
  const result = parseTargets('bluesky:did:plc:abc123');
  assert.ok(result.ok);
  assert.deepEqual(result.targets, [{ platform: 'bluesky', handle: 'did:plc:abc123' }]);
});

test('an empty handle means no handle', () => {
  const result = parseTargets('youtube:, youtube:@');
  assert.ok(result.ok);
  assert.deepEqual(result.targets, [{ platform: 'youtube', handle: null }]);
});

test('all', () => {
  assert.deepEqual(parseTargets('all'), { ok: true, all: true, targets: [] });
  assert.deepEqual(parseTargets('ALL'), { ok: true, all: true, targets: [] });
  assert.deepEqual(parseTargets('all, youtube:second'), {
    ok: true,
    all: true,
    targets: [{ platform: 'youtube', handle: 'second' }],
  });
});

test('duplicates collapse, aliases and handle case included', () => {
  const result = parseTargets('tiktok, TIKTOK, tt, youtube:Me, yt:@me, youtube:other');
  assert.ok(result.ok);
  assert.deepEqual(result.targets, [
    { platform: 'tiktok', handle: null },
    { platform: 'youtube', handle: 'Me' },
    { platform: 'youtube', handle: 'other' },
  ]);
});

test('empty text is no targets; the caller picks the default', () => {
  assert.deepEqual(parseTargets(''), { ok: true, all: false, targets: [] });
  assert.deepEqual(parseTargets(' , '), { ok: true, all: false, targets: [] });
});

test('an unknown platform is refused, naming it and the known ones', () => {
  assert.deepEqual(parseTargets('tiktok, MySpace:tom'), {
    ok: false,
    message: MESSAGES.unknownPlatform('MySpace', PLATFORM_IDS),
  });
  assert.equal(parseTargets('myspace').ok, false);
  // Object prototype keys are not aliases.
  assert.equal(parseTargets('constructor').ok, false);
  assert.equal(parseTargets('__proto__').ok, false);
  assert.equal(parseTargets('all:me').ok, false);
});
