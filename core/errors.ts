/**
 * Three error classes by where a failure happened — the user's input, a platform, or our own
 * configuration — and the one table of user-facing messages. Anything else is an internal bug.
 */

export const MESSAGES = {
  usage: (detail: string) => `${detail}`,
  fileNotFound: (path: string) => `Cannot read ${path}: no such file.`,
  fileEmpty: (name: string) => `${name} is empty (0 bytes). Send the video file itself.`,
  notAVideo: (name: string) => `${name} is not a video Reelay can read. Send an MP4, MOV, WebM or MKV file.`,
  noVideoStream: (name: string) => `${name} has no video track (audio only?). Send a video.`,
  corruptVideo: (name: string) => `${name} looks damaged or incomplete (ffprobe could not read it). Re-export or re-send the file.`,
  videoTooLong: (label: string, seconds: number, max: number) =>
    // Rounded up, so a video just over the limit never reads as equal to it.
    `The video is ${formatDuration(Math.max(Math.ceil(seconds), max + 1))} long; ${label} allows at most ${formatDuration(max)}.`,
  videoTooShort: (label: string, seconds: number, min: number) =>
    `The video is ${formatDuration(seconds)} long; ${label} needs at least ${formatDuration(min)}.`,
  videoTooBig: (label: string, bytes: number, max: number) =>
    `The video is ${formatBytes(bytes)} after conversion; ${label} takes at most ${formatBytes(max)}.`,
  unknownPlatform: (name: string, known: readonly string[]) =>
    `Unknown platform "${name}". Reelay knows: ${known.join(', ')}.`,
  noTargets: () => 'Say where to post: --to bluesky (or several, comma-separated).',
  noAccount: (label: string, workspace: string, handle?: string) =>
    handle
      ? `No ${label} account @${handle} is linked in workspace ${workspace}. Link it first (reelay accounts add).`
      : `No ${label} account is linked in workspace ${workspace}. Link it first (reelay accounts add).`,
  notAvailable: (label: string) => `${label} publishing is not available yet in this version of Reelay.`,
  captionTooLong: (label: string, length: number, max: number, unit: string) =>
    `The caption is ${length} ${unit} long; ${label} allows at most ${max}. Shorten it and send again.`,
  captionTooManyBytes: (label: string, bytes: number, max: number) =>
    `The caption is ${bytes} bytes; ${label} allows at most ${max} bytes. Shorten it and send again.`,
  timeUnparsed: (text: string) =>
    `I could not read "${text}" as a time. Try "tomorrow 6pm", "fri 9:30", "in 2 hours" or "2026-12-01 18:00".`,
  timeEmpty: () => 'Say when: for example "tomorrow 6pm" or "in 2 hours".',
  timePast: (when: string, suggestion: string) => `${when} is in the past. Did you mean ${suggestion}?`,
  timeNonexistent: (when: string, tz: string, suggestion: string) =>
    `${when} does not exist in ${tz} (the clocks jump forward then). The nearest valid time is ${suggestion}.`,
  timeAmbiguous: (when: string, tz: string, first: string, second: string) =>
    `${when} happens twice in ${tz} (the clocks go back then): ${first} or ${second}? Send it again with the offset.`,
  unknownTimezone: (tz: string) => `Unknown timezone "${tz}". Use an IANA name such as Europe/Berlin or America/New_York.`,
  postNotFound: (id: string) => `No post ${id} in this workspace.`,
  cannotCancel: (id: string, state: string) => `Post ${id} cannot be cancelled: it is ${state}.`,
  nothingToRetry: (id: string) => `Post ${id} has no failed delivery to retry.`,
  accountAuthFailed: (label: string, handle: string) =>
    `${label} refused the login for ${handle}. Check the handle and the app password (Settings > App passwords).`,
  accountUnreachable: (label: string, service: string) => `Cannot reach ${label} at ${service}. Check the --service URL.`,
  // Delivery outcomes, shown in chat and by the CLI.
  platformAuth: (label: string) => `${label} no longer accepts the linked account's login. Re-link the account.`,
  platformRateLimited: (label: string) => `${label} is limiting requests right now; Reelay will try again later.`,
  platformInvalidMedia: (label: string, detail: string) => `${label} rejected the video: ${detail}`,
  platformRejected: (label: string, detail: string) => `${label} refused the post: ${detail}`,
  platformUnavailable: (label: string) => `${label} is not answering right now; Reelay kept retrying and gave up.`,
  platformUnknown: (label: string, detail: string) => `${label} failed in an unexpected way: ${detail}`,
  transcodeFailed: (detail: string) => `The video could not be converted: ${detail}`,
  unconfirmed: (label: string) =>
    `${label} did not say whether the post went out. Reelay will not post again blindly: check the account.`,
  cancelled: () => 'Cancelled.',
  missingSecretKey: () =>
    'REELAY_SECRET_KEY is not set. Generate one with: node -e "console.log(require(\'crypto\').randomBytes(32).toString(\'base64\'))"',
} as const;

export function formatDuration(seconds: number): string {
  const total = Math.round(seconds);
  const m = Math.floor(total / 60);
  const s = total % 60;
  return m > 0 ? `${m}:${String(s).padStart(2, '0')}` : `${seconds < 10 ? seconds.toFixed(1) : total} s`;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${bytes} bytes`;
}

/** Bad input from a person: shown to them as is; the CLI exits 2. Nothing was written. */
export class UserError extends Error {
  override name = 'UserError';
}

/** The environment is wrong: reported at startup, by variable name. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly issues: string[];
  constructor(issues: string[]) {
    super(`Configuration error:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.issues = issues;
  }
}

export const PUBLISH_ERROR_CODES = ['auth', 'rate_limited', 'invalid_media', 'rejected', 'unavailable', 'unknown'] as const;
export type PublishErrorCode = (typeof PUBLISH_ERROR_CODES)[number];

export interface PublishErrorOptions {
  retryable?: boolean;
  retryAfterSeconds?: number;
  status?: number;
  /** A short, secret-free excerpt of the platform's answer, for logs and plain-words detail. */
  detail?: string;
  /** True when the request may have reached the platform and its effect is unknown. */
  outcomeUnknown?: boolean;
}

/** A platform call failed. `code` decides what the worker does; `detail` is safe to show. */
export class PublishError extends Error {
  override name = 'PublishError';
  readonly code: PublishErrorCode;
  readonly retryable: boolean;
  readonly retryAfterSeconds: number | undefined;
  readonly status: number | undefined;
  readonly detail: string;
  readonly outcomeUnknown: boolean;
  constructor(code: PublishErrorCode, message: string, options: PublishErrorOptions = {}) {
    super(message);
    this.code = code;
    this.retryable = options.retryable ?? (code === 'rate_limited' || code === 'unavailable' || code === 'unknown');
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.status = options.status;
    this.detail = options.detail ?? message;
    this.outcomeUnknown = options.outcomeUnknown ?? false;
  }
}

/** The plain-words reason a person sees for a delivery that failed for good. */
export function describePublishError(label: string, error: PublishError): string {
  switch (error.code) {
    case 'auth':
      return MESSAGES.platformAuth(label);
    case 'rate_limited':
      return MESSAGES.platformRateLimited(label);
    case 'invalid_media':
      return MESSAGES.platformInvalidMedia(label, error.detail);
    case 'rejected':
      return MESSAGES.platformRejected(label, error.detail);
    case 'unavailable':
      return MESSAGES.platformUnavailable(label);
    case 'unknown':
      return MESSAGES.platformUnknown(label, error.detail);
  }
}
