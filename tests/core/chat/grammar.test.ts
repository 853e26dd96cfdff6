import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLinkArgs, parseRequest, type ParsedRequest } from '../../../core/chat/grammar.ts';
import { MESSAGES } from '../../../core/errors.ts';
import { PLATFORM_IDS } from '../../../core/platforms.ts';

function ok(text: string, options: { botUsername?: string } = {}): ParsedRequest {
  const result = parseRequest(text, options);
  if (!result.ok) assert.fail(`expected a request from ${JSON.stringify(text)}, got ${JSON.stringify(result)}`);
  return result.request;
}

test('/post with targets and a multi-line caption', () => {
  const r = ok('/post to tiktok, youtube:mychannel\nFirst line #tag\n\nSecond paragraph');
  assert.equal(r.command, 'post');
  assert.equal(r.when, null);
  assert.deepEqual(r.targets, [{ platform: 'tiktok', handle: null }, { platform: 'youtube', handle: 'mychannel' }]);
  assert.equal(r.caption, 'First line #tag\n\nSecond paragraph');
  assert.equal(r.split, false);
});

test('/post without targets means the workspace default', () => {
  const r = ok('/post\nhello');
  assert.deepEqual(r.targets, []);
  assert.equal(r.allTargets, false);
  assert.equal(ok('/post to all').allTargets, true);
});

test('/schedule separates WHEN from the targets at the last "to"', () => {
  const r = ok('/schedule tomorrow 6pm to tiktok, bsky\ncaption');
  assert.equal(r.when, 'tomorrow 6pm');
  assert.deepEqual(r.targets.map((t) => t.platform), ['tiktok', 'bluesky']);
  assert.equal(ok('/schedule fri 9:30').when, 'fri 9:30');
  assert.equal(ok('/schedule 2026-12-01 18:00 to x').when, '2026-12-01 18:00');
  // "to" inside the time does not swallow the list.
  assert.equal(ok('/schedule next monday to 10am to youtube').when, 'next monday to 10am');
});

test('split is a word on the command line', () => {
  assert.equal(ok('/post to youtube split').split, true);
  assert.equal(ok('/post split').split, true);
  const s = ok('/schedule in 2h to tiktok split');
  assert.equal(s.split, true);
  assert.equal(s.when, 'in 2h');
});

test('override lines go to one platform and are not part of the caption', () => {
  const r = ok('/post to youtube, x\nThe long caption >> not an override\n>>youtube title: My <b>title</b>\n>> x : short for X');
  assert.equal(r.caption, 'The long caption >> not an override');
  assert.deepEqual(r.overrides, { youtube: { title: 'My <b>title</b>' }, x: { caption: 'short for X' } });
});

test('group commands addressed to another bot are not ours; mentions stand for the slash', () => {
  assert.equal(ok('/post@ReelayBot to x', { botUsername: 'reelaybot' }).command, 'post');
  assert.deepEqual(parseRequest('/post@OtherBot to x', { botUsername: 'ReelayBot' }), { ok: false, notACommand: true });
  assert.equal(ok('@Reelay schedule tomorrow 6pm to tiktok\nhi').when, 'tomorrow 6pm');
  assert.equal(ok('<@123456> post to bluesky').command, 'post');
});

test('plain chat is not a command; bad parts get the message a person needs', () => {
  assert.deepEqual(parseRequest('just chatting about posts'), { ok: false, notACommand: true });
  assert.deepEqual(parseRequest('/start'), { ok: false, notACommand: true });
  assert.deepEqual(parseRequest('/schedule'), { ok: false, message: MESSAGES.timeEmpty() });
  assert.deepEqual(parseRequest('/post to myspace'), { ok: false, message: MESSAGES.unknownPlatform('myspace', PLATFORM_IDS) });
  assert.deepEqual(parseRequest('/post to x\n>>vine: hi'), { ok: false, message: MESSAGES.unknownPlatform('vine', PLATFORM_IDS) });
});

test('/link PLATFORM [[via] OTHER]: the platform and whose sign-in links it', () => {
  assert.deepEqual(parseLinkArgs('instagram'), { ok: true, platform: 'instagram', via: null });
  assert.deepEqual(parseLinkArgs(' Instagram  via  Facebook '), { ok: true, platform: 'instagram', via: 'facebook' });
  assert.deepEqual(parseLinkArgs('instagram facebook'), { ok: true, platform: 'instagram', via: 'facebook' });
  const usage = { ok: false, message: MESSAGES.usageLink(PLATFORM_IDS) };
  for (const text of ['', 'instagram via', 'instagram via facebook x', 'all', 'instagram via facebook:page']) assert.deepEqual(parseLinkArgs(text), usage, text);
  assert.deepEqual(parseLinkArgs('instagram via myspace'), { ok: false, message: MESSAGES.unknownPlatform('myspace', PLATFORM_IDS) });
  assert.deepEqual(parseLinkArgs('myspace'), { ok: false, message: MESSAGES.unknownPlatform('myspace', PLATFORM_IDS) });
});
