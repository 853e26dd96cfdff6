import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { formatInZone, isValidTimeZone, MAX_AHEAD_YEARS, parseWhen } from '../../core/schedule.ts';
import type { WhenResult } from '../../core/schedule.ts';
import { MESSAGES } from '../../core/errors.ts';

const execFileAsync = promisify(execFile);

function at(text: string, timeZone: string, now: string): { at: Date; display: string; timeZone: string } {
  const result = parseWhen(text, { timeZone, now: new Date(now) });
  assert.ok(result.ok, `expected "${text}" to parse, got ${JSON.stringify(result)}`);
  return result;
}

function failure(text: string, timeZone: string, now: string): Extract<WhenResult, { ok: false }> {
  const result = parseWhen(text, { timeZone, now: new Date(now) });
  assert.ok(!result.ok, `expected "${text}" to be refused, got ${JSON.stringify(result)}`);
  return result;
}

// Mon 23 Nov 2026, 10:00 UTC.
const MONDAY = '2026-11-23T10:00:00Z';

test('tomorrow 6pm in UTC', () => {
  const result = at('tomorrow 6pm', 'UTC', MONDAY);
  assert.equal(result.at.toISOString(), '2026-11-24T18:00:00.000Z');
  assert.equal(result.display, 'Tue 24 Nov 2026, 18:00 UTC');
  assert.equal(result.timeZone, 'UTC');
});

test('tomorrow 6pm in America/New_York is 6pm EST', () => {
  const result = at('tomorrow 6pm', 'America/New_York', '2026-11-23T15:00:00Z');
  assert.equal(result.at.toISOString(), '2026-11-24T23:00:00.000Z');
  assert.equal(result.display, 'Tue 24 Nov 2026, 18:00 EST');
});

test('tomorrow 6pm in Asia/Kolkata (+05:30)', () => {
  assert.equal(at('tomorrow 6pm', 'Asia/Kolkata', MONDAY).at.toISOString(), '2026-11-24T12:30:00.000Z');
});

test('"tomorrow" follows the date in the zone, not in UTC', () => {
  // 20:00 UTC Monday is already 01:30 Tuesday in Kolkata, so tomorrow is Wednesday there.
  const result = at('Tomorrow 6PM', 'Asia/Kolkata', '2026-11-23T20:00:00Z');
  assert.equal(result.at.toISOString(), '2026-11-25T12:30:00.000Z');
  assert.equal(result.display, 'Wed 25 Nov 2026, 18:00 IST');
});

test('fri 9:30 is the coming Friday', () => {
  const result = at('fri 9:30', 'Europe/Berlin', MONDAY);
  assert.equal(result.at.toISOString(), '2026-11-27T08:30:00.000Z');
  assert.equal(result.display, 'Fri 27 Nov 2026, 09:30 CET');
});

test('fri 9:30 on a Friday after 9:30 is next week', () => {
  assert.equal(at('fri 9:30', 'UTC', '2026-11-27T12:00:00Z').at.toISOString(), '2026-12-04T09:30:00.000Z');
  assert.equal(at('fri 9:30', 'UTC', '2026-11-27T08:00:00Z').at.toISOString(), '2026-11-27T09:30:00.000Z');
});

test('a bare time means the next one', () => {
  assert.equal(at('6pm', 'UTC', MONDAY).at.toISOString(), '2026-11-23T18:00:00.000Z');
  assert.equal(at('6pm', 'UTC', '2026-11-23T19:00:00Z').at.toISOString(), '2026-11-24T18:00:00.000Z');
});

test('next monday 10am', () => {
  assert.equal(at('next monday 10am', 'Europe/London', MONDAY).at.toISOString(), '2026-11-30T10:00:00.000Z');
});

test('in 2 hours is elapsed time, also across the autumn DST change', () => {
  // 00:30 EDT; two hours later the clocks have gone back, so it is 01:30 EST.
  const now = '2026-11-01T04:30:00Z';
  for (const text of ['in 2 hours', 'in 2h', 'in 120 minutes']) {
    const result = at(text, 'America/New_York', now);
    assert.equal(result.at.toISOString(), '2026-11-01T06:30:00.000Z', text);
    assert.equal(result.display, 'Sun 1 Nov 2026, 01:30 EST', text);
  }
});

test('in 2 hours keeps the seconds of now', () => {
  assert.equal(at('in 2 hours', 'Asia/Kolkata', '2026-11-23T10:00:12.345Z').at.toISOString(), '2026-11-23T12:00:12.345Z');
});

test('in 2 days keeps the wall-clock time across the spring DST change', () => {
  const result = at('in 2 days', 'Europe/Berlin', '2026-03-27T10:00:00Z');
  assert.equal(result.display, 'Sun 29 Mar 2026, 11:00 CEST');
  assert.equal(result.at.toISOString(), '2026-03-29T09:00:00.000Z');
});

test('now is now', () => {
  assert.equal(at('now', 'Asia/Kolkata', MONDAY).at.toISOString(), '2026-11-23T10:00:00.000Z');
});

test('ISO with Z is that exact instant, shown in the zone', () => {
  const result = at('2026-12-01T18:00:00Z', 'Europe/Berlin', MONDAY);
  assert.equal(result.at.toISOString(), '2026-12-01T18:00:00.000Z');
  assert.equal(result.display, 'Tue 1 Dec 2026, 19:00 CET');
  assert.equal(at('2026-12-01 18:00Z', 'Europe/Berlin', MONDAY).at.toISOString(), '2026-12-01T18:00:00.000Z');
  assert.equal(at('2026-12-01T18:00:00.250Z', 'UTC', MONDAY).at.toISOString(), '2026-12-01T18:00:00.250Z');
});

test('ISO with an offset is that exact instant', () => {
  assert.equal(at('2026-12-01T18:00:00+05:30', 'Europe/Berlin', MONDAY).at.toISOString(), '2026-12-01T12:30:00.000Z');
  assert.equal(at('2026-12-01T18:00-0500', 'UTC', MONDAY).at.toISOString(), '2026-12-01T23:00:00.000Z');
  assert.equal(at('2026-12-01 18:00 +02:00', 'UTC', MONDAY).at.toISOString(), '2026-12-01T16:00:00.000Z');
});

test('a zone abbreviation in the text wins over the zone', () => {
  assert.equal(at('tomorrow 6pm EST', 'Europe/Berlin', MONDAY).at.toISOString(), '2026-11-24T23:00:00.000Z');
});

test('a date and time without an offset is wall time in the zone', () => {
  assert.equal(at('2026-12-01 18:00', 'Europe/Berlin', MONDAY).at.toISOString(), '2026-12-01T17:00:00.000Z');
  assert.equal(at('2026-12-01T18:00', 'Europe/Berlin', MONDAY).at.toISOString(), '2026-12-01T17:00:00.000Z');
  assert.equal(at('1 Dec 2026 18:00', 'Europe/Berlin', MONDAY).at.toISOString(), '2026-12-01T17:00:00.000Z');
});

test('a time in the spring-forward gap is refused with the time just after the gap', () => {
  const now = '2026-03-01T10:00:00Z';
  for (const text of ['2026-03-29 02:30', '29 March 2026 2:30']) {
    const result = failure(text, 'Europe/Berlin', now);
    assert.equal(result.reason, 'nonexistent', text);
    assert.equal(result.suggestion?.toISOString(), '2026-03-29T01:00:00.000Z', text);
    assert.equal(
      result.message,
      MESSAGES.timeNonexistent('Sun 29 Mar 2026, 02:30', 'Europe/Berlin', 'Sun 29 Mar 2026, 03:00 CEST'),
    );
  }
});

test('a time in the fall-back overlap is refused showing both offsets', () => {
  const result = failure('2026-11-01 01:30', 'America/New_York', '2026-10-01T10:00:00Z');
  assert.equal(result.reason, 'ambiguous');
  assert.equal(
    result.message,
    MESSAGES.timeAmbiguous('Sun 1 Nov 2026, 01:30', 'America/New_York', '01:30 EDT (-04:00)', '01:30 EST (-05:00)'),
  );
});

test('an offset settles an overlap time', () => {
  const now = '2026-10-01T10:00:00Z';
  assert.equal(at('2026-11-01T01:30-04:00', 'America/New_York', now).at.toISOString(), '2026-11-01T05:30:00.000Z');
  assert.equal(at('2026-11-01T01:30-05:00', 'America/New_York', now).at.toISOString(), '2026-11-01T06:30:00.000Z');
});

test('an overlap time whose first pass is over can only mean the second', () => {
  // 01:45 EDT: 01:30 EDT has gone, 01:30 EST is 45 minutes away.
  const result = at('2026-11-01 01:30', 'America/New_York', '2026-11-01T05:45:00Z');
  assert.equal(result.at.toISOString(), '2026-11-01T06:30:00.000Z');
});

test('a time today that has passed is refused, suggesting tomorrow', () => {
  const result = failure('today 9am', 'UTC', MONDAY);
  assert.equal(result.reason, 'past');
  assert.equal(result.suggestion?.toISOString(), '2026-11-24T09:00:00.000Z');
  assert.equal(result.message, MESSAGES.timePast('Mon 23 Nov 2026, 09:00 UTC', 'Tue 24 Nov 2026, 09:00 UTC'));
});

test('a past date is refused, suggesting the next time that clock time comes round', () => {
  const result = failure('2026-11-20 18:00', 'Europe/Berlin', MONDAY);
  assert.equal(result.reason, 'past');
  assert.equal(result.suggestion?.toISOString(), '2026-11-23T17:00:00.000Z');
  assert.match(result.message, /Fri 20 Nov 2026, 18:00 CET is in the past\. Did you mean Mon 23 Nov 2026, 18:00 CET\?/);

  const yesterday = failure('yesterday 6pm', 'UTC', '2026-11-23T19:00:00Z');
  assert.equal(yesterday.reason, 'past');
  assert.equal(yesterday.suggestion?.toISOString(), '2026-11-24T18:00:00.000Z');

  const iso = failure('2026-01-01T10:00:00Z', 'UTC', MONDAY);
  assert.equal(iso.reason, 'past');
  assert.equal(iso.suggestion?.toISOString(), '2026-11-24T10:00:00.000Z');
});

test('a time within the last minute still counts', () => {
  assert.equal(at('2026-11-23T09:59:30Z', 'UTC', MONDAY).at.toISOString(), '2026-11-23T09:59:30.000Z');
  assert.equal(failure('2026-11-23T09:58:59Z', 'UTC', MONDAY).reason, 'past');
});

test('dates that do not exist are unparsed, not rolled over', () => {
  for (const text of ['2026-12-01 24:30', 'tomorrow 25:00']) {
    const result = failure(text, 'UTC', MONDAY);
    assert.equal(result.reason, 'unparsed', text);
    assert.equal(result.message, MESSAGES.timeUnparsed(text));
  }
  // A day the month does not have is named as such, so the person fixes the day, not the format.
  for (const [text, days] of [['31 Feb 2027 10:00', 28], ['2027-02-31 10:00', 28], ['2027-02-29 10:00', 28], ['2028-02-30 10:00', 29], ['apr 31 9am', 30]] as const) {
    const result = failure(text, 'UTC', MONDAY);
    assert.equal(result.reason, 'unparsed', text);
    assert.equal(result.message, MESSAGES.timeNoSuchDate(text, text.includes('apr') ? 'April' : 'February', days));
  }
});

test('a time more than MAX_AHEAD_YEARS ahead is refused as a likely typo in the year', () => {
  const result = failure('3026-01-01 10:00', 'UTC', MONDAY);
  assert.equal(result.reason, 'too_far');
  assert.equal(result.message, MESSAGES.timeTooFar('Sun 1 Jan 3026, 10:00 UTC', MAX_AHEAD_YEARS));
  assert.equal(at('2035-01-01 10:00', 'UTC', MONDAY).at.toISOString(), '2035-01-01T10:00:00.000Z');
});

test('empty text', () => {
  for (const text of ['', '   ']) {
    const result = failure(text, 'UTC', MONDAY);
    assert.equal(result.reason, 'empty');
    assert.equal(result.message, MESSAGES.timeEmpty());
  }
});

test('gibberish, and a time buried in other words, are unparsed', () => {
  for (const text of ['asdf', 'soon-ish', 'asdf 6pm', 'post it tomorrow 6pm please', '6pm and 7pm', '6pm-7pm']) {
    assert.equal(failure(text, 'UTC', MONDAY).reason, 'unparsed', text);
  }
});

test('an unknown time zone', () => {
  const result = failure('tomorrow 6pm', 'Mars/Olympus', MONDAY);
  assert.equal(result.reason, 'timezone');
  assert.equal(result.message, MESSAGES.unknownTimezone('Mars/Olympus'));
  assert.equal(failure('tomorrow 6pm', '', MONDAY).reason, 'timezone');
});

test('isValidTimeZone', () => {
  assert.equal(isValidTimeZone('Europe/Berlin'), true);
  assert.equal(isValidTimeZone('UTC'), true);
  assert.equal(isValidTimeZone('Asia/Kolkata'), true);
  assert.equal(isValidTimeZone('Mars/Olympus'), false);
  assert.equal(isValidTimeZone(''), false);
});

test('formatInZone', () => {
  const instant = new Date('2026-11-23T17:00:00Z');
  assert.equal(formatInZone(instant, 'Europe/Berlin'), 'Mon 23 Nov 2026, 18:00 CET');
  assert.equal(formatInZone(instant, 'America/New_York'), 'Mon 23 Nov 2026, 12:00 EST');
  assert.equal(formatInZone(instant, 'Asia/Kolkata'), 'Mon 23 Nov 2026, 22:30 IST');
  assert.equal(formatInZone(new Date('2026-07-01T12:00:00Z'), 'Europe/London'), 'Wed 1 Jul 2026, 13:00 BST');
  assert.equal(formatInZone(new Date('2026-11-23T23:30:00Z'), 'UTC'), 'Mon 23 Nov 2026, 23:30 UTC');
  // Midnight is 00:00, never 24:00.
  assert.equal(formatInZone(new Date('2026-11-24T00:00:00Z'), 'UTC'), 'Tue 24 Nov 2026, 00:00 UTC');
});

test('a day and month without a year means the next one', () => {
  assert.equal(at('dec 1 18:00', 'UTC', MONDAY).at.toISOString(), '2026-12-01T18:00:00.000Z');
  assert.equal(at('oct 1 18:00', 'UTC', MONDAY).at.toISOString(), '2027-10-01T18:00:00.000Z');
  assert.equal(at('23 nov 9am', 'UTC', MONDAY).at.toISOString(), '2027-11-23T09:00:00.000Z');
});

test('a weekday that has passed this week is next week, unless the text looks back', () => {
  assert.equal(at('sun 9:30', 'UTC', MONDAY).at.toISOString(), '2026-11-29T09:30:00.000Z');
  assert.equal(failure('last friday 9:30', 'UTC', MONDAY).reason, 'past');
});

test('a bare time with a zone abbreviation that has passed is tomorrow\'s', () => {
  // 10:00 UTC is 05:00 EST: 4am EST has passed.
  assert.equal(at('4am EST', 'Europe/Berlin', MONDAY).at.toISOString(), '2026-11-24T09:00:00.000Z');
});

test('readings do not depend on the time zone of the process', async () => {
  // chrono computes with local Dates; near the process zone's own DST changes its fake-UTC
  // reference is misread unless parseWhen steps around them. Compare a UTC process with others
  // across both 2026 spring-forward weekends.
  const texts = ['in 2 hours', 'now', 'tomorrow', 'tomorrow 6pm', 'fri 9:30', '2:30', 'next monday 10am', 'mar 29 2:30'];
  const script = `
    const { parseWhen } = await import(${JSON.stringify(new URL('../../core/schedule.ts', import.meta.url).href)});
    const texts = ${JSON.stringify(texts)};
    const lines = [];
    for (const zone of ['Europe/Berlin', 'America/New_York', 'UTC']) {
      for (const [from, to] of [['2026-03-07T12:00:00Z', '2026-03-08T18:00:00Z'], ['2026-03-28T12:00:00Z', '2026-03-29T18:00:00Z']]) {
        for (let t = Date.parse(from); t < Date.parse(to); t += 45 * 60000) {
          for (const text of texts) {
            const r = parseWhen(text, { timeZone: zone, now: new Date(t) });
            lines.push(zone + ' ' + new Date(t).toISOString() + ' ' + text + ' ' + (r.ok ? r.at.toISOString() : r.reason));
          }
        }
      }
    }
    process.stdout.write(lines.join('\\n'));
  `;
  const run = async (tz: string): Promise<string[]> => {
    const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '--eval', script], { env: { TZ: tz } });
    return stdout.split('\n');
  };
  const [baseline, ...others] = await Promise.all([run('UTC'), run('Europe/Berlin'), run('America/New_York')]);
  assert.ok(baseline && baseline.length > 1000);
  for (const lines of others) {
    assert.deepEqual(lines.filter((line, i) => line !== baseline[i]).slice(0, 5), []);
  }
});
