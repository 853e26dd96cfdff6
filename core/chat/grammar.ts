/**
 * The chat command grammar, shared by every chat front end (Telegram captions and text, Discord
 * mentions). Pure: it parses text; intake checks the result against accounts, limits and time.
 *
 *   /schedule tomorrow 6pm to tiktok, youtube:mychannel split
 *   The caption, on as many lines as it takes #tags
 *   >>youtube title: A title only YouTube gets
 *   >>x: A shorter text for X
 *
 * Override lines start with `>>`, which ordinary captions never do, so a caption can hold any text.
 */
import { MESSAGES } from '../errors.ts';
import { PLATFORM_IDS, type PlatformId } from '../platforms.ts';
import { parseTargets, type Target } from '../targets.ts';

export const COMMANDS = ['post', 'schedule'] as const;
export type ChatCommand = (typeof COMMANDS)[number];

export interface CaptionOverride {
  caption?: string;
  title?: string;
}

export interface ParsedRequest {
  command: ChatCommand;
  /** The WHEN text of /schedule, unparsed (intake parses it in the member's timezone). */
  when: string | null;
  targets: Target[];
  allTargets: boolean;
  caption: string;
  overrides: Partial<Record<PlatformId, CaptionOverride>>;
  split: boolean;
}

export type GrammarResult = { ok: true; request: ParsedRequest } | { ok: false; message: string } | { ok: false; notACommand: true };

const OVERRIDE_LINE = /^>>\s*([a-z]+)(?:\s+(title))?\s*:\s*(.*)$/i;

/**
 * Splits `WHEN to TARGETS [split]` at the last " to " after which everything reads as targets,
 * so a time like "tomorrow to 6pm" cannot swallow the platform list by accident.
 */
function splitWhenAndTargets(rest: string): { when: string; targets: string; split: boolean } {
  let text = rest.trim();
  let split = false;
  if (/(^|\s)split$/i.test(text)) {
    split = true;
    text = text.replace(/(^|\s)split$/i, '').trim();
  }
  const matches = [...text.matchAll(/(^|\s)to\s+/gi)];
  for (let i = matches.length - 1; i >= 0; i--) {
    const match = matches[i]!;
    const targets = text.slice((match.index ?? 0) + match[0].length);
    if (parseTargets(targets).ok) return { when: text.slice(0, match.index ?? 0).trim(), targets, split };
  }
  return { when: text, targets: '', split };
}

/**
 * Parses a chat message (or caption). `botUsername` strips `/post@ReelayBot` suffixes; a leading
 * mention (`@Reelay schedule ...`) may stand instead of the slash.
 */
export function parseRequest(text: string, options: { botUsername?: string } = {}): GrammarResult {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let first = (lines[0] ?? '').trim();
  first = first.replace(/^<@!?\d+>\s*/, '').replace(/^@\S+\s+/, '');
  const head = /^\/?(post|schedule)(@\S+)?(?:\s+|$)(.*)$/i.exec(first);
  if (!head) return { ok: false, notACommand: true };
  const mentionedBot = head[2]?.slice(1);
  if (mentionedBot && options.botUsername && mentionedBot.toLowerCase() !== options.botUsername.toLowerCase()) {
    return { ok: false, notACommand: true };
  }
  if (!first.startsWith('/') && !/^(post|schedule)\b/i.test(first)) return { ok: false, notACommand: true };
  const command = head[1]!.toLowerCase() as ChatCommand;
  const rest = head[3] ?? '';

  let when: string | null = null;
  let targetText: string;
  let split: boolean;
  if (command === 'schedule') {
    const parts = splitWhenAndTargets(rest);
    if (parts.when === '') return { ok: false, message: MESSAGES.timeEmpty() };
    when = parts.when;
    targetText = parts.targets;
    split = parts.split;
  } else {
    const match = /^(?:to\s+)?(.*?)(?:\s+split)?$/i.exec(rest.trim());
    targetText = match?.[1] ?? '';
    split = /(^|\s)split$/i.test(rest.trim());
    if (/^split$/i.test(targetText)) targetText = '';
  }
  const targets = parseTargets(targetText);
  if (!targets.ok) return { ok: false, message: targets.message };

  const captionLines: string[] = [];
  const overrides: Partial<Record<PlatformId, CaptionOverride>> = {};
  for (const line of lines.slice(1)) {
    const override = OVERRIDE_LINE.exec(line.trim());
    if (!override) {
      captionLines.push(line);
      continue;
    }
    const parsed = parseTargets(override[1]!);
    const platform = parsed.ok ? parsed.targets[0]?.platform : undefined;
    if (!parsed.ok) return { ok: false, message: parsed.message };
    if (!platform) return { ok: false, message: MESSAGES.unknownPlatform(override[1]!, PLATFORM_IDS) };
    const entry = (overrides[platform] ??= {});
    if (override[2]) entry.title = override[3]!.trim();
    else entry.caption = override[3]!.trim();
  }
  return {
    ok: true,
    request: {
      command,
      when,
      targets: targets.targets,
      allTargets: targets.all,
      caption: captionLines.join('\n').trim(),
      overrides,
      split,
    },
  };
}

export type LinkArgs = { ok: true; platform: PlatformId; via: PlatformId | null } | { ok: false; message: string };

/**
 * `/link PLATFORM [[via] OTHER]`: OTHER is the platform whose sign-in links it (Instagram through
 * Facebook Login: `/link instagram via facebook`). Whether that pairing exists is linking's call.
 */
export function parseLinkArgs(text: string): LinkArgs {
  const words = text.trim().split(/[\s,;]+/).filter(Boolean);
  const usage = { ok: false, message: MESSAGES.usageLink(PLATFORM_IDS) } as const;
  const [first, ...rest] = words;
  if (!first) return usage;
  const viaWords = rest[0]?.toLowerCase() === 'via' ? rest.slice(1) : rest;
  if (viaWords.length > 1 || (rest.length > 0 && viaWords.length === 0)) return usage;
  const platform = parseTargets(first);
  if (!platform.ok) return { ok: false, message: platform.message };
  const target = platform.targets[0];
  if (!target) return usage;
  if (viaWords.length === 0) return { ok: true, platform: target.platform, via: null };
  const via = parseTargets(viaWords[0]!);
  if (!via.ok) return { ok: false, message: via.message };
  const viaTarget = via.targets[0];
  if (!viaTarget || viaTarget.handle !== null) return usage;
  return { ok: true, platform: target.platform, via: viaTarget.platform };
}
