/**
 * Reading WHEN: the time a person types ("tomorrow 6pm", "in 2 hours", "2026-12-01 18:00",
 * an ISO instant) turned into one exact instant in their time zone. Pure: `now` comes in, and
 * the answer does not depend on the time zone the process runs in.
 *
 * chrono-node only knows fixed UTC offsets, not zones with DST rules, so it is handed the
 * zone's current wall-clock time dressed up as UTC and its answer is read back as wall-clock
 * components; turning wall time into an instant (and noticing DST gaps and overlaps) happens
 * here with Intl, which carries the IANA rules.
 */
import * as chrono from 'chrono-node';
import { MESSAGES } from './errors.ts';

export type WhenFailureReason = 'empty' | 'unparsed' | 'past' | 'nonexistent' | 'ambiguous' | 'timezone' | 'too_far';

export type WhenResult =
  | { ok: true; at: Date; timeZone: string; display: string }
  | { ok: false; reason: WhenFailureReason; message: string; suggestion?: Date };

export interface WhenOptions {
  /** IANA zone the person's wall-clock times are in, e.g. Europe/Berlin. */
  timeZone: string;
  now: Date;
}

/** A time a few seconds old when it arrives (typed "now", slow chat delivery) still counts. */
const PAST_GRACE_MS = 60_000;
/** Further ahead than this is a typo in the year (2062 for 2026), not a plan. */
export const MAX_AHEAD_YEARS = 10;
const DAY_MS = 86_400_000;

interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
}

/** What the text meant before the zone's rules are applied. */
type Reading = { kind: 'instant'; at: Date } | { kind: 'wall'; wall: WallTime };

export function isValidTimeZone(timeZone: string): boolean {
  if (timeZone.trim() === '') return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** "Mon 23 Nov 2026, 18:00 CET": the instant as a person in `timeZone` reads their clock. */
export function formatInZone(date: Date, timeZone: string): string {
  const wall = wallAt(date.getTime(), timeZone);
  return `${formatWall(wall)} ${zoneName(date, timeZone)}`;
}

export function parseWhen(text: string, options: WhenOptions): WhenResult {
  const { timeZone, now } = options;
  if (!isValidTimeZone(timeZone)) {
    return { ok: false, reason: 'timezone', message: MESSAGES.unknownTimezone(timeZone) };
  }
  const input = text.trim();
  if (input === '') return { ok: false, reason: 'empty', message: MESSAGES.timeEmpty() };

  const iso = readIso(input);
  const reading = iso === undefined ? readNatural(input, timeZone, now) : iso;
  if (!reading) {
    const impossible = impossibleDate(input, now.getUTCFullYear());
    if (impossible) return { ok: false, reason: 'unparsed', message: MESSAGES.timeNoSuchDate(input, impossible.month, impossible.days) };
    return { ok: false, reason: 'unparsed', message: MESSAGES.timeUnparsed(input) };
  }

  const earliest = now.getTime() - PAST_GRACE_MS;

  if (reading.kind === 'instant') {
    if (reading.at.getTime() < earliest) return past(formatInZone(reading.at, timeZone), wallAt(reading.at.getTime(), timeZone), timeZone, now);
    return success(reading.at, timeZone, now);
  }

  const { wall } = reading;
  const instants = instantsForWall(wall, timeZone);
  if (instants.length === 0) {
    const after = gapEnd(wall, timeZone);
    const when = formatWall(wall);
    if (after === null || after.getTime() < earliest) return past(when, wall, timeZone, now);
    return {
      ok: false,
      reason: 'nonexistent',
      message: MESSAGES.timeNonexistent(when, timeZone, formatInZone(after, timeZone)),
      suggestion: after,
    };
  }
  // In an overlap whose first pass is already over, only the second one can be meant.
  const [first, second] = instants.filter((t) => t.getTime() >= earliest);
  if (!first) return past(formatInZone(instants[0] ?? now, timeZone), wall, timeZone, now);
  if (second) {
    return {
      ok: false,
      reason: 'ambiguous',
      message: MESSAGES.timeAmbiguous(formatWall(wall), timeZone, describeChoice(first, timeZone), describeChoice(second, timeZone)),
    };
  }
  return success(first, timeZone, now);
}

function success(at: Date, timeZone: string, now: Date): WhenResult {
  const display = formatInZone(at, timeZone);
  const latest = new Date(now);
  latest.setUTCFullYear(latest.getUTCFullYear() + MAX_AHEAD_YEARS);
  if (at > latest) return { ok: false, reason: 'too_far', message: MESSAGES.timeTooFar(display, MAX_AHEAD_YEARS) };
  return { ok: true, at, timeZone, display };
}

function past(when: string, wall: WallTime, timeZone: string, now: Date): WhenResult {
  const suggestion = nextOccurrence(wall, timeZone, now);
  return { ok: false, reason: 'past', message: MESSAGES.timePast(when, formatInZone(suggestion, timeZone)), suggestion };
}

/** The first time after `now` that the clock in `timeZone` shows `wall`'s time of day. */
function nextOccurrence(wall: WallTime, timeZone: string, now: Date): Date {
  const today = onDateOf(wall, now.getTime() + offsetAt(now.getTime(), timeZone));
  for (let days = 0; days <= 2; days += 1) {
    const candidate = shiftDays(today, days);
    const at = instantsForWall(candidate, timeZone)[0] ?? gapEnd(candidate, timeZone);
    if (at && at.getTime() > now.getTime()) return at;
  }
  // Unreachable with real zone rules (the time of day exists on one of three days); a day from
  // now is still an honest offer.
  return new Date(now.getTime() + DAY_MS);
}

// ---- reading the text ----

const ISO_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})(?:T|\s+)(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * ISO-like date-times are read here rather than by chrono, which reads "2026-12-01 18:00Z" as
 * "2026-12-01 18" and drops the rest. Undefined: not ISO-like; null: ISO-like but no real time.
 */
function readIso(input: string): Reading | null | undefined {
  const match = ISO_PATTERN.exec(input);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second, fraction, offset] = match;
  const wall: WallTime = {
    year: Number(year),
    month: Number(month),
    day: Number(day),
    hour: Number(hour),
    minute: Number(minute),
    second: second ? Number(second) : 0,
    millisecond: fraction ? Number(fraction.slice(0, 3).padEnd(3, '0')) : 0,
  };
  if (!isRealWallTime(wall)) return null;
  if (offset === undefined) return { kind: 'wall', wall };
  const offsetMinutes = parseOffsetMinutes(offset);
  if (offsetMinutes === null) return null;
  return { kind: 'instant', at: new Date(wallToUtcMs(wall) - offsetMinutes * 60_000) };
}

const MONTH_NAMES = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'] as const;

/**
 * "2027-02-31" or "31 feb": a day the month does not have. Said as such, because "could not read"
 * sends the person looking for a typo in the format instead of in the calendar.
 */
function impossibleDate(input: string, thisYear: number): { month: string; days: number } | null {
  const text = input.toLowerCase();
  let found: { year: number; month: number; day: number } | null = null;
  const iso = /\b(\d{4})-(\d{1,2})-(\d{1,2})\b/.exec(text);
  if (iso) found = { year: Number(iso[1]), month: Number(iso[2]), day: Number(iso[3]) };
  const names = MONTH_NAMES.map((m) => m.slice(0, 3)).join('|');
  const dayFirst = new RegExp(`\\b(\\d{1,2})(?:st|nd|rd|th)?\\s+(${names})[a-z]*\\b`).exec(text);
  const monthFirst = new RegExp(`\\b(${names})[a-z]*\\s+(\\d{1,2})(?:st|nd|rd|th)?\\b`).exec(text);
  const year = /\b(\d{4})\b/.exec(text);
  if (!found && dayFirst) found = { year: Number(year?.[1] ?? thisYear), month: MONTH_NAMES.findIndex((m) => m.startsWith(dayFirst[2]!)) + 1, day: Number(dayFirst[1]) };
  if (!found && monthFirst) found = { year: Number(year?.[1] ?? thisYear), month: MONTH_NAMES.findIndex((m) => m.startsWith(monthFirst[1]!)) + 1, day: Number(monthFirst[2]) };
  if (!found || found.month < 1 || found.month > 12 || found.day < 1 || found.day > 31) return null;
  // Day 0 of the next month is the last day of this one.
  const days = new Date(Date.UTC(found.year, found.month, 0)).getUTCDate();
  if (found.day <= days) return null;
  const name = MONTH_NAMES[found.month - 1]!;
  return { month: name[0]!.toUpperCase() + name.slice(1), days };
}

function parseOffsetMinutes(offset: string): number | null {
  if (/^(z|utc)$/i.test(offset)) return 0;
  const match = /^([+-])(\d{2}):?(\d{2})?$/.exec(offset);
  if (!match) return null;
  const hours = Number(match[2]);
  const minutes = Number(match[3] ?? '0');
  if (hours > 14 || minutes > 59) return null;
  return (match[1] === '-' ? -1 : 1) * (hours * 60 + minutes);
}

/** Everything chrono may leave around the time it found without the text meaning something else. */
const FILLER = /^[\s,.;!]*$/;

/** One reading by chrono, as wall-clock components relative to a fake-UTC reference. */
interface ChronoHit {
  wall: WallTime;
  start: chrono.ParsedComponents;
  /** "in 2 hours", "now": elapsed time from the reference, not a wall-clock time. */
  elapsed: boolean;
  /** chrono's instant for the components (meaningful with an offset: elapsed or certain). */
  dateMs: number;
}

function readNatural(input: string, timeZone: string, now: Date): Reading | null {
  // chrono reasons about "tomorrow", "fri" and "6pm" (already passed?) from the reference's
  // clock, so the reference is the zone's wall clock, pretending to be UTC.
  const fakeNowMs = now.getTime() + offsetAt(now.getTime(), timeZone);
  const hit = chronoSteady(input, fakeNowMs);
  if (!hit) return null;
  const { wall: parsed, start } = hit;

  // "in 2 hours" is elapsed time: a DST change on the way must not stretch or shrink it. chrono
  // also marks these with a "certain" offset, the fake reference's 0, so they are caught first.
  if (hit.elapsed) return { kind: 'instant', at: new Date(now.getTime() + (hit.dateMs - fakeNowMs)) };

  const forward = !BACKWARD_WORDS.test(input);
  // The text named its own offset or zone abbreviation ("6pm EST", "+02:00"): a fixed offset, so
  // the components convert to an instant directly.
  const offsetMinutes = start.isCertain('timezoneOffset') ? start.get('timezoneOffset') : null;
  if (offsetMinutes !== null) {
    const toInstant = (wall: WallTime): number => wallToUtcMs(wall) - offsetMinutes * 60_000;
    const wall = forward ? forwardInWallTime(parsed, start, fakeNowMs, (w) => toInstant(w) < now.getTime()) : parsed;
    return wall && { kind: 'instant', at: new Date(toInstant(wall)) };
  }
  const wall = forward ? forwardInWallTime(parsed, start, fakeNowMs, (w) => wallToUtcMs(w) < fakeNowMs) : parsed;
  return wall && { kind: 'wall', wall };
}

function chronoOnce(input: string, referenceMs: number): ChronoHit | null {
  // No forwardDate: chrono's ForwardDateRefiner compares a reference shifted into the process's
  // own zone with a UTC result, so on any machine not set to UTC "fri" and "dec 1" jump a week
  // or a year too far. forwardInWallTime does the same job on wall-clock values.
  const results = chrono.parse(input, { instant: new Date(referenceMs), timezone: 0 });
  // Two times ("6pm and 7pm"), a range, or words chrono skipped ("asdf 6pm", "tomorrow 25:00")
  // mean the text says something other than one time; guessing would schedule the wrong post.
  const [result] = results;
  if (!result || results.length > 1 || result.end) return null;
  const rest = input.slice(0, result.index) + input.slice(result.index + result.text.length);
  if (!FILLER.test(rest)) return null;

  const { start } = result;
  const year = start.get('year');
  const month = start.get('month');
  const day = start.get('day');
  const hour = start.get('hour');
  const minute = start.get('minute');
  if (year === null || month === null || day === null || hour === null || minute === null) return null;
  const wall: WallTime = { year, month, day, hour, minute, second: start.get('second') ?? 0, millisecond: start.get('millisecond') ?? 0 };
  if (!isRealWallTime(wall)) return null;
  const tags = result.tags();
  const elapsed = tags.has('result/relativeDateAndTime') || tags.has('casualReference/now');
  return { wall, start, elapsed, dateMs: result.date().getTime() };
}

const WEEK_MS = 7 * DAY_MS;
/** Around the reference chrono looks back and ahead up to about two weeks ("next monday"). */
const REFERENCE_SPAN_MS = 15 * DAY_MS;

/**
 * chrono does its date arithmetic on JavaScript Dates in the process's own time zone. Where that
 * zone changes its offset near the reference or the result, the fake-UTC wall clock is misread
 * by an hour ("in 2 hours" becomes 1 or 3). Off a UTC host that happens for a few hours twice a
 * year, so then the text is read against references whole weeks away, where the process zone is
 * steady: if two such readings agree, the date came from the text; if they differ by exactly the
 * shift, the reading is relative to the reference and is shifted back. Weekdays survive the shift.
 */
function chronoSteady(input: string, fakeNowMs: number): ChronoHit | null {
  const plain = chronoOnce(input, fakeNowMs);
  if (!plain || (processZoneSteady(fakeNowMs, REFERENCE_SPAN_MS) && processZoneSteady(wallToUtcMs(plain.wall), DAY_MS))) {
    return plain;
  }
  const steadyReadings: Array<{ weeks: number; hit: ChronoHit }> = [];
  for (const weeks of [-1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6]) {
    const referenceMs = fakeNowMs + weeks * WEEK_MS;
    if (!processZoneSteady(referenceMs, REFERENCE_SPAN_MS)) continue;
    const hit = chronoOnce(input, referenceMs);
    if (!hit || !processZoneSteady(wallToUtcMs(hit.wall), DAY_MS)) continue;
    steadyReadings.push({ weeks, hit });
    if (steadyReadings.length === 2) break;
  }
  const [a, b] = steadyReadings;
  if (!a || !b) return plain;
  const difference = wallToUtcMs(a.hit.wall) - wallToUtcMs(b.hit.wall);
  if (difference === 0) return a.hit;
  if (difference === (a.weeks - b.weeks) * WEEK_MS) {
    return { ...a.hit, wall: shiftDays(a.hit.wall, -7 * a.weeks), dateMs: a.hit.dateMs - a.weeks * WEEK_MS };
  }
  // Readings that move with the reference but not by whole weeks ("in 1 month"): keep the plain one.
  return plain;
}

/** True when the process's zone keeps one offset around the fake-UTC wall time `ms`. */
function processZoneSteady(ms: number, spanMs: number): boolean {
  // chrono's local Date for a wall time sits within 14 hours of it, whatever the process zone.
  const margin = spanMs + 14 * 3_600_000;
  return new Date(ms - margin).getTimezoneOffset() === new Date(ms + margin).getTimezoneOffset();
}

/** "last friday" asks for the past on purpose; moving it to next Friday would hide that. */
const BACKWARD_WORDS = /\b(last|past|previous|ago|yesterday)\b/i;

/**
 * What chrono's forwardDate means, in wall-clock terms: a bare time that has passed today is
 * tomorrow's, a bare weekday that has passed is next week's, a day and month without a year that
 * has passed is next year's. Anything that named its date stays put (and may turn out past).
 */
function forwardInWallTime(
  wall: WallTime,
  start: chrono.ParsedComponents,
  fakeNowMs: number,
  isPast: (wall: WallTime) => boolean,
): WallTime | null {
  if (!isPast(wall)) return wall;
  const certain = (component: chrono.Component): boolean => start.isCertain(component);

  if (!certain('weekday') && !certain('day') && !certain('month') && !certain('year')) {
    return shiftDays(wall, 1);
  }
  if (certain('weekday') && !certain('day') && !certain('month')) {
    const nowWeekday = new Date(fakeNowMs).getUTCDay();
    const weekday = new Date(wallToUtcMs(wall)).getUTCDay();
    const ahead = (weekday - nowWeekday + 7) % 7 || 7;
    return shiftDays(onDateOf(wall, fakeNowMs), ahead);
  }
  if (certain('month') && !certain('year')) {
    // Up to four years on, so that 29 Feb finds its next leap year.
    for (let years = 1; years <= 4; years += 1) {
      const later = { ...wall, year: wall.year + years };
      if (isRealWallTime(later) && !isPast(later)) return later;
    }
    return null;
  }
  return wall;
}

/** `wall`'s time of day on the (UTC) date of `ms`. */
function onDateOf(wall: WallTime, ms: number): WallTime {
  const date = new Date(ms);
  return { ...wall, year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

function shiftDays(wall: WallTime, days: number): WallTime {
  return onDateOf(wall, wallToUtcMs(wall) + days * DAY_MS);
}

// ---- wall time and zones ----

function wallToUtcMs(wall: WallTime): number {
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 onto 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(wall.year, wall.month - 1, wall.day);
  date.setUTCHours(wall.hour, wall.minute, wall.second, wall.millisecond);
  return date.getTime();
}

/** False for dates a calendar does not have (31 Feb, 25:00), which Date would roll over. */
function isRealWallTime(wall: WallTime): boolean {
  const ms = wallToUtcMs(wall);
  if (Number.isNaN(ms)) return false;
  const date = new Date(ms);
  return (
    date.getUTCFullYear() === wall.year &&
    date.getUTCMonth() + 1 === wall.month &&
    date.getUTCDate() === wall.day &&
    date.getUTCHours() === wall.hour &&
    date.getUTCMinutes() === wall.minute &&
    date.getUTCSeconds() === wall.second &&
    date.getUTCMilliseconds() === wall.millisecond
  );
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(locale: string, timeZone: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${locale}|${timeZone}|${JSON.stringify(options)}`;
  let cached = formatters.get(key);
  if (!cached) {
    cached = new Intl.DateTimeFormat(locale, { ...options, timeZone });
    formatters.set(key, cached);
  }
  return cached;
}

const NUMERIC_PARTS: Intl.DateTimeFormatOptions = {
  year: 'numeric',
  month: 'numeric',
  day: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
  // h23: with hour12 false some ICU versions print midnight as 24.
  hourCycle: 'h23',
};

function wallAt(ms: number, timeZone: string): WallTime {
  const parts = formatter('en-US', timeZone, NUMERIC_PARTS).formatToParts(new Date(ms));
  const part = (type: Intl.DateTimeFormatPartTypes): number => Number(parts.find((p) => p.type === type)?.value);
  return {
    year: part('year'),
    month: part('month'),
    day: part('day'),
    hour: part('hour'),
    minute: part('minute'),
    second: part('second'),
    millisecond: ((ms % 1000) + 1000) % 1000,
  };
}

/** Milliseconds the zone's clock is ahead of UTC at that instant. */
function offsetAt(ms: number, timeZone: string): number {
  return wallToUtcMs(wallAt(ms, timeZone)) - ms;
}

/**
 * The instants at which the zone's clock shows `wall`: one normally, none in a DST gap, two in a
 * DST overlap (earlier first). Assumes at most one offset change within a day either side.
 */
function instantsForWall(wall: WallTime, timeZone: string): Date[] {
  const local = wallToUtcMs(wall);
  const offsets = new Set([offsetAt(local - DAY_MS, timeZone), offsetAt(local, timeZone), offsetAt(local + DAY_MS, timeZone)]);
  const found = new Set<number>();
  for (const offset of offsets) {
    const candidate = local - offset;
    if (offsetAt(candidate, timeZone) === offset) found.add(candidate);
  }
  return [...found].sort((a, b) => a - b).map((ms) => new Date(ms));
}

/** The instant the clocks jump to when `wall` falls into a gap: the first time that exists after it. */
function gapEnd(wall: WallTime, timeZone: string): Date | null {
  const local = wallToUtcMs(wall);
  let low = local - DAY_MS;
  let high = local + DAY_MS;
  const before = offsetAt(low, timeZone);
  if (offsetAt(high, timeZone) === before) return null;
  // Offsets change on whole seconds, so a search down to one second finds the change exactly.
  while (high - low > 1000) {
    const middle = low + Math.floor((high - low) / 2000) * 1000;
    if (offsetAt(middle, timeZone) === before) low = middle;
    else high = middle;
  }
  return new Date(high);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;

/** "Mon 23 Nov 2026, 18:00", with no zone: also used for wall times that never happen. */
function formatWall(wall: WallTime): string {
  const weekday = WEEKDAYS[new Date(wallToUtcMs(wall)).getUTCDay()] ?? '';
  const month = MONTHS[wall.month - 1] ?? '';
  return `${weekday} ${wall.day} ${month} ${wall.year}, ${pad(wall.hour)}:${pad(wall.minute)}`;
}

/**
 * ICU gives a zone's abbreviation only in the locales where it is in common use (CET in en-GB,
 * EST in en-US, IST in en-IN), and "GMT+1" elsewhere; the first real abbreviation wins.
 */
const ZONE_NAME_LOCALES = ['en-US', 'en-GB', 'en-IN', 'en-AU', 'en-CA', 'en-ZA'] as const;

function zoneName(date: Date, timeZone: string): string {
  let fallback = '';
  for (const locale of ZONE_NAME_LOCALES) {
    const parts = formatter(locale, timeZone, { timeZoneName: 'short' }).formatToParts(date);
    const name = parts.find((p) => p.type === 'timeZoneName')?.value ?? '';
    if (!/^(GMT|UTC)[+\-\u2212]/.test(name)) return name;
    fallback ||= name;
  }
  return fallback;
}

/** "01:30 EDT (-04:00)": one of the two readings of a time in a DST overlap. */
function describeChoice(at: Date, timeZone: string): string {
  const wall = wallAt(at.getTime(), timeZone);
  const offsetMinutes = Math.round(offsetAt(at.getTime(), timeZone) / 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${pad(wall.hour)}:${pad(wall.minute)} ${zoneName(at, timeZone)} (${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)})`;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
