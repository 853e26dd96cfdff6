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
  pictureTooSmall: (name: string, width: number, height: number, min: number) =>
    `${name} is only ${width}x${height} pixels; Reelay needs at least ${min} pixels on each side. Send the original video.`,
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
      ? `No ${label} account @${handle} is linked in workspace ${workspace}. Link it first (/link in chat, or reelay accounts add).`
      : `No ${label} account is linked in workspace ${workspace}. Link it first (/link in chat, or reelay accounts add).`,
  needsPublicUrl: (label: string) =>
    `${label} fetches videos from a public link, and this Reelay has no public address yet (PUBLIC_BASE_URL is not set). Ask whoever runs Reelay to set it; the other platforms work without it.`,
  notAvailable: (label: string) => `${label} publishing is not available yet in this version of Reelay.`,
  captionTooLong: (label: string, length: number, max: number, unit: string) =>
    `The caption is ${length} ${unit} long; ${label} allows at most ${max}. Shorten it and send again.`,
  captionTooManyBytes: (label: string, bytes: number, max: number) =>
    `The caption is ${bytes} bytes; ${label} allows at most ${max} bytes. Shorten it and send again.`,
  timeUnparsed: (text: string) =>
    `I could not read "${text}" as a time. Try "tomorrow 6pm", "fri 9:30", "in 2 hours" or "2026-12-01 18:00".`,
  timeEmpty: () => 'Say when: for example "tomorrow 6pm" or "in 2 hours".',
  timeNoSuchDate: (text: string, month: string, days: number) => `"${text}" is not a date: ${month} has ${days} days. Check the day and send it again.`,
  timeTooFar: (when: string, years: number) => `${when} is more than ${years} years away; Reelay schedules at most ${years} years ahead. Check the year.`,
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
  platformUnavailableRetrying: (label: string, at: string) => `${label} is not answering right now; Reelay tries again at ${at}.`,
  platformUnknown: (label: string, detail: string) => `${label} failed in an unexpected way: ${detail}`,
  transcodeFailed: (detail: string) => `The video could not be converted: ${detail}`,
  unconfirmed: (label: string) =>
    `${label} did not say whether the post went out. Reelay will not post again blindly: check the account.`,
  uploadedUnconfirmed: (label: string, remoteId: string) =>
    `${label} has the upload (${remoteId}) but stopped answering before saying whether it was published. Reelay will not post again blindly: check the account.`,
  cancelled: () => 'Cancelled.',
  // Chat (Telegram and Discord say the same things).
  postIdAmbiguous: (id: string) => `"${id}" matches more than one post; give more of the id.`,
  cannotReschedule: (id: string) => `Post ${id.slice(0, 8)} has already started publishing, so its time cannot change.`,
  cannotEdit: (id: string) => `Post ${id.slice(0, 8)} has already started publishing, so its caption cannot change.`,
  manualLinkInvalid: (url: string) => `"${url}" is not a link. Send the https:// address of the post.`,
  manualNothingFailed: (id: string, label: string) => `Post ${id.slice(0, 8)} has no failed ${label} delivery to mark as posted.`,
  postedByHand: () => 'posted by hand',
  markedByHand: (label: string) => `Noted: the ${label} post was made by hand.`,
  alertFailed: (label: string, handle: string, id: string, reason: string) => `❌ ${label} @${handle} did not get post ${id}: ${reason}`,
  alertUnconfirmed: (label: string, handle: string, id: string, reason: string) =>
    `⚠️ ${label} @${handle}: Reelay cannot tell whether post ${id} went out. ${reason} Check the account before retrying.`,
  chatNotAllowedToPost: () => 'Only members with the posting role can post here. Ask an admin.',
  chatNoVideo: () => 'Send the video with the command: attach it, reply to it with /post, or put a link to it on the caption lines.',
  chatReceived: (name: string) => `Received ${name}. Downloading…`,
  chatDownloading: (name: string, percent: number) => `Received ${name}. Downloading… ${percent}%`,
  chatIntakeFailed: () => 'Something went wrong on Reelay’s side while taking in the video. Nothing was posted; please send it again.',
  chatPhotoNotVideo: () => 'That is a photo. Reelay posts videos: send a video file (MP4, MOV, WebM or MKV).',
  chatDocumentNotVideo: (name: string) => `${name} is not a video file. Send an MP4, MOV, WebM or MKV file.`,
  telegramFileTooBig: (size: string) =>
    `This video is ${size}; Telegram lets bots download only 20 MB. Send a link to the file instead (put it on a caption line), or have whoever runs Reelay set up a self-hosted Bot API server (see the README).`,
  approvalPreview: (author: string, id: string, caption: string, targets: string, when: string, quorum: number) =>
    `Approval needed for post ${id} by ${author}\nTo: ${targets}\nWhen: ${when}\n\n${caption || '(no caption)'}\n\nApprove with 👍 or ✅ (or the button), reject with 👎 or ❌.${quorum > 1 ? ` ${quorum} approvals needed.` : ''}`,
  notAnApprover: () => 'Only approvers can approve or reject posts here.',
  noSelfApproval: () => 'You cannot approve your own post here; another approver has to.',
  approvalNotWaiting: (id: string) => `Post ${id} is not waiting for approval.`,
  approvalCounted: (count: number, quorum: number) => `Approval counted (${count} of ${quorum}).`,
  approvedBy: (name: string) => `Approved by ${name}.`,
  rejectedBy: (name: string) => `Rejected by ${name}.`,
  approvalSlotPassed: (id: string, when: string) => `Post ${id} was approved, but its time (${when}) passed while it waited. Publish it now, or pick a new time with /reschedule ${id} WHEN.`,
  publishingNow: (id: string) => `Publishing post ${id} now.`,
  buttonExpired: () => 'That button no longer applies.',
  retrying: (label: string) => `Trying ${label} again.`,
  retryingPost: (id: string) => `Trying the failed deliveries of post ${id} again.`,
  relinkHint: (command: string) => `Re-link the account with ${command} (an admin of this chat can).`,
  /** The chat command that links (or re-links) a platform, through another's sign-in when `via` is given. */
  linkCommand: (platform: string, via: string | null) => (via === null ? `/link ${platform}` : `/link ${platform} via ${via}`),
  fileNotAvailable: (label: string) => `The ${label} file is no longer kept (videos are deleted some time after publishing).`,
  fileTooBigForChat: (label: string, bytes: number, max: number) => `The ${label} file is ${formatBytes(bytes)}, more than the ${formatBytes(max)} this chat lets a bot upload.`,
  fileForManualPost: (label: string) => `The video as prepared for ${label}. After posting it by hand, tell Reelay the link: /status ID ${label.toLowerCase()} LINK`,
  fileSent: (label: string) => `Sent the ${label} file.`,
  queueEmpty: () => 'Nothing is scheduled.',
  usageId: () => 'Give the post id, e.g. /cancel 1a2b3c4d (see /queue).',
  usageStatus: () => 'Usage: /status ID, or /status ID PLATFORM LINK to record a post you made by hand.',
  usageReschedule: () => 'Usage: /reschedule ID WHEN, e.g. /reschedule 1a2b3c4d tomorrow 6pm',
  usageEdit: () => 'Usage: /edit ID, then the new caption on the following lines.',
  usageLink: (known: readonly string[]) => `Say which platform: /link PLATFORM (one of ${known.join(', ')}). Instagram through Facebook Login: /link instagram via facebook.`,
  linkViaUnsupported: (label: string, viaLabel: string, platform: string) => `${label} cannot be linked through ${viaLabel} sign-in. Send /link ${platform} alone.`,
  /** A platform linked through another's sign-in, as linking messages name it. */
  linkViaLabel: (label: string, viaLabel: string) => `${label} (through ${viaLabel})`,
  cancelledPost: (id: string) => `Cancelled post ${id}.`,
  rescheduled: (id: string, when: string) => `Post ${id} is now scheduled for ${when}.`,
  edited: (id: string) => `Caption of post ${id} updated.`,
  notYourPost: (id: string) => `Post ${id} is someone else's; only its author or an approver can change it.`,
  noAccountsLinked: () => 'No accounts are linked yet. An admin can link one with /link PLATFORM.',
  accountHealth: (state: string, lastError: string | null) =>
    state === 'active' ? 'ok' : state === 'needs_reauth' ? `needs re-linking${lastError ? ` (${lastError})` : ''}` : state,
  adminOnly: (command: string) => `Only admins of this chat can use ${command}.`,
  linkFromCli: (label: string, platform: string, workspace: string) =>
    `Linking ${label} from chat is not available in this version. Whoever runs Reelay can link it now with: reelay accounts add ${platform} --workspace ${workspace}`,
  unlinkWhich: (label: string, handles: readonly string[]) => `More than one ${label} account is linked; say which: ${handles.map((h) => `/unlink ${label.toLowerCase()}:${h}`).join(' or ')}`,
  unlinked: (label: string, handle: string) => `Unlinked ${label} @${handle}. Its post history stays.`,
  timezoneIs: (zone: string, now: string) => `Your timezone is ${zone}; it is ${now} there. Change it with /timezone Europe/Berlin (any IANA name).`,
  timezoneSet: (zone: string, now: string) => `Timezone set to ${zone}. It is now ${now} there.`,
  settingsSaved: () => 'Saved.',
  settingsUsage: () =>
    'Usage: /settings approval on|off · quorum N · selfapproval on|off · approvers add|remove ID… · alerts here|off|CHAT · targets tiktok, youtube|all · split on|off · spacing MINUTES · posterrole ROLE|everyone · approverrole ROLE|off · role MEMBER_ID admin|approver|poster',
  settingsShow: (s: {
    approval: { required: boolean; quorum: number; approvers: readonly string[]; allowSelf: boolean };
    alertsChat: string | null;
    defaultTargets: string | null;
    split: boolean;
    splitSpacingMinutes: number;
  }, pendingAlerts?: { target: string; until: string } | null, alertsChatName?: string | null) =>
    [
      `Approval: ${s.approval.required ? `on, ${s.approval.quorum} needed${s.approval.allowSelf ? ', authors may approve their own' : ''}` : 'off'}`,
      `Approvers: chat admins${s.approval.approvers.length ? ` and ${s.approval.approvers.join(', ')}` : ''}`,
      `Alerts: ${s.alertsChat ? `${alertsChatName ?? s.alertsChat} (set with /settings alerts)` : 'the chat each post came from'}`,
      ...(pendingAlerts ? [`Alerts request: waiting for an admin of ${pendingAlerts.target} to accept (until ${pendingAlerts.until})`] : []),
      `Default targets: ${s.defaultTargets ?? 'every linked account'}`,
      `Split long videos: ${s.split ? `on, parts ${s.splitSpacingMinutes} min apart` : 'off (add "split" to a command to split one post)'}`,
    ].join('\n'),
  alertsRequest: (from: string, by: string, hours: number) =>
    `${from} wants to send its Reelay alerts here (asked by ${by}): failed posts and accounts that need re-linking, with buttons that act on its posts. An admin of this chat can accept or decline within ${hours} hours; nothing changes before that.`,
  alertsRequestSent: (target: string) => `Asked ${target} to take this chat's alerts. An admin there must press Accept; until then alerts go where they went before.`,
  alertsChatUnreachable: (target: string) => `I cannot post in ${target}: add me to that chat with permission to send messages, then try again.`,
  alertsAcceptedHere: (from: string, by: string) => `Accepted by ${by}: Reelay alerts of ${from} come here now.`,
  alertsAcceptedThere: (target: string) => `${target} accepted: this chat's Reelay alerts go there now.`,
  alertsDeclinedHere: (from: string, by: string) => `Declined by ${by}: Reelay alerts of ${from} will not come here.`,
  alertsDeclinedThere: (target: string) => `${target} declined to take this chat's Reelay alerts; they still go where they went before.`,
  alertsRequestClosed: () => 'This request has expired or was already answered. Ask again with /settings alerts.',
  demoUnknownChat: (chat: string) => `Unknown chat "${chat}" for the demo: use --chat telegram or --chat discord.`,
  linkNeedsPublicUrl: () => 'Linking from chat needs Reelay to be reachable on the web: whoever runs it must set PUBLIC_BASE_URL (see the README).',
  linkNotSupported: (label: string, platform: string, workspace: string) =>
    `${label} cannot be linked from chat in this version. Whoever runs Reelay can link it with: reelay accounts add ${platform} --workspace ${workspace}`,
  linkNoClient: (label: string) => `${label} linking is not set up: whoever runs Reelay must configure its ${label} app (client id and secret; see reelay doctor).`,
  linkSent: (label: string) => `I sent you a private message with a one-time link to connect ${label} (valid 10 minutes).`,
  linkStartPrivate: (bot: string) => `I cannot message you privately yet: open a chat with ${bot}, press Start, then send /link again here.`,
  linkPrivateText: (label: string, url: string, workspace: string) => `Connect ${label} to ${workspace}: ${url}\nThe link works once, for 10 minutes.`,
  cliLinkOpen: () => 'Open it in a browser. Reelay\'s HTTP server (reelay start or reelay bot) must be running at PUBLIC_BASE_URL to finish the sign-in.',
  linkExpired: () => 'This link has expired or was already used. Send /link again in the chat for a new one.',
  linkStateInvalid: () => 'This sign-in answer is not one Reelay asked for (expired, used already, or forged). Send /link again in the chat.',
  linkDenied: (label: string, reason: string) => `${label} did not grant access (${reason}). Send /link again to retry.`,
  linkExchangeFailed: (label: string, reason: string) => `${label} refused to finish the sign-in: ${reason}. Send /link again to retry.`,
  linkMissingScopes: (label: string, scopes: readonly string[]) =>
    `${label} did not grant ${scopes.join(', ')}, which Reelay needs to post. Send /link again and allow every permission asked for.`,
  linkProfileFailed: (label: string) => `${label} signed in, but Reelay could not read the account's profile. Send /link again to retry.`,
  linked: (label: string, handle: string) => `Linked ${label} @${handle}.`,
  linkedPage: (label: string, handle: string) => `Linked ${label} @${handle}. You can close this page and go back to the chat.`,
  appPasswordPasted: () => 'That looked like an app password, so I deleted it. Never paste passwords into a chat: use the private form from /link bluesky.',
  appPasswordPastedNotDeleted: () => 'That looks like an app password. Delete your message now and revoke the password in Bluesky settings; use the private form from /link bluesky instead.',
  waitingForRelink: (label: string, handle: string, hours: number, command: string) =>
    `waiting: the ${label} account @${handle} needs re-linking (${command}). It will be posted once it is, or fail after ${hours} h.`,
  alertNeedsReauth: (label: string, handle: string, reason: string) =>
    `🔑 ${label} @${handle} needs re-linking: ${reason || 'the platform no longer accepts its login'}. Posts for it wait up to 24 h.`,
  alertAtRisk: (label: string, handle: string, postId: string, when: string, state: string) =>
    `⚠️ Post ${postId} goes to ${label} @${handle} at ${when}, but that account ${state === 'disabled' ? 'was unlinked' : 'needs re-linking'}. Re-link it before then, or it will wait (and fail after 24 h).`,
  relinkSent: (label: string) => `I sent you a private link to re-link ${label}.`,
  capDeferred: (label: string, limit: number, what: string, when: string) => `${label} allows ${limit} ${what}; this one goes out at ${when}.`,
  publishedLate: (seconds: number) => {
    const minutes = Math.round(seconds / 60);
    const late = minutes < 90 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
    return `(published ${late} after its time: no worker was running then)`;
  },
  unknownMember: (id: string) => `No member ${id} has written here yet; they need to send a message first.`,
  roleSet: (id: string, role: string) => `Member ${id} is now ${role === 'admin' ? 'an admin' : `an ${role}`.replace('an poster', 'a poster')}.`,
  approvalNeedsAdminBot: () => 'Telegram tells bots about reactions only in groups where the bot is an administrator: make me one, or approvers can use the buttons.',
  chatHelp: (chat: 'telegram' | 'discord') =>
    [
      chat === 'telegram' ? 'Send a video with a command as its caption:' : 'Mention me in a message with a video attached (or use /post with an attachment):',
      chat === 'telegram' ? '/post to tiktok, youtube' : '@Reelay post to tiktok, youtube',
      'The caption goes on the lines below.',
      '',
      '/schedule tomorrow 6pm to all',
      '/schedule fri 9:30 to bluesky, x split',
      'Times are in your timezone (/timezone). Targets: a platform, platform:handle, or all; none means the default targets.',
      '',
      'Per-platform text on its own line, starting with >>:',
      '>>youtube title: A title for YouTube',
      '>>x: A shorter text for X',
      '',
      chat === 'telegram'
        ? 'Also: reply to a video with /post, or put a link to a video on a caption line.'
        : 'Also: mention me in a message with a video attached, or use /post with an attachment or url.',
      'Manage: /queue · /status ID · /cancel ID · /retry ID · /reschedule ID WHEN · /edit ID (new caption below) · /accounts · /link PLATFORM · /unlink PLATFORM · /timezone ZONE · /settings',
    ].join('\n'),
  keysRotated: (changed: number, total: number, keyId: string) =>
    changed === 0 ? `Every secret (${total}) is already sealed under the current key ${keyId}; nothing to do.` : `Re-encrypted ${changed} of ${total} secrets under key ${keyId}. REELAY_SECRET_KEY_PREVIOUS can now be removed.`,
  keysUnknownKey: (where: string, kid: string) =>
    `${where} is sealed under key ${kid}, which is neither REELAY_SECRET_KEY nor in REELAY_SECRET_KEY_PREVIOUS. Add that key to REELAY_SECRET_KEY_PREVIOUS and run reelay keys rotate again; nothing was changed.`,
  missingSecretKey: () =>
    'REELAY_SECRET_KEY is not set. Generate one with: node -e "console.log(require(\'crypto\').randomBytes(32).toString(\'base64\'))"',
  // YouTube details, shown after "YouTube refused the post:" / "YouTube rejected the video:".
  facebookNoPage: () => 'this Facebook login manages no Page Reelay may post to. Make sure you chose at least one Page on the consent screen (and have the Create content task on it).',
  instagramNoPageAccount: () =>
    'None of the Facebook Pages this login manages has an Instagram professional account connected. Connect the Instagram account to a Page (in the Page settings: Linked accounts), choose that Page on the consent screen, then send /link instagram via facebook again.',
  youtubeNoChannel: () => 'the linked Google account has no YouTube channel yet. Create one on youtube.com, then retry the post.',
  youtubeUploadLimit: () => 'the channel has reached its daily upload limit. Retry the post in 24 hours.',
  youtubeForbidden: () => 'the linked account may not upload to this channel. Check its permissions in YouTube Studio.',
  youtubeMetadata: (reason: string) => `the title or description taken from the caption was not accepted (${reason}). Edit the caption and send it again.`,
  youtubeQuotaExceeded: (resetAt: string) =>
    `Reelay's daily YouTube upload quota is used up; the post goes out after it resets at ${resetAt} (midnight Pacific time).`,
  youtubeProcessingFailed: (reason: string) =>
    ({
      codec: 'it uses a codec YouTube cannot read.',
      conversion: 'YouTube could not convert it.',
      emptyFile: 'the file arrived empty.',
      invalidFile: 'YouTube could not read the file.',
      tooSmall: 'the file is too small to be a video.',
      uploadAborted: 'the upload was cut off. Retry the post to upload it again.',
    } as Record<string, string | undefined>)[reason] ?? `YouTube could not process it (${reason}).`,
  youtubeVideoRejected: (reason: string) =>
    ({
      duplicate: 'it is a duplicate of a video already on the channel.',
      copyright: 'a copyright claim blocks it.',
      claim: 'a copyright claim blocks it.',
      length: 'it is longer than the channel may upload.',
      termsOfUse: "it breaks YouTube's Terms of Service.",
      inappropriate: "it breaks YouTube's Community Guidelines.",
      trademark: 'a trademark complaint blocks it.',
      legal: 'a legal complaint blocks it.',
      uploaderAccountClosed: 'the channel is closed.',
      uploaderAccountSuspended: 'the channel is suspended.',
    } as Record<string, string | undefined>)[reason] ?? `YouTube rejected it (${reason}).`,
  youtubeVideoDeleted: () => 'the video was deleted on YouTube before it finished processing.',
  // X. captionTooLongWeighted stands alone (intake, and after "X refused the post:" like captionTooLong);
  // the x* details are shown after "X refused the post:" / "X rejected the video:".
  captionTooLongWeighted: (label: string, length: number, max: number) =>
    `The caption counts as ${length} characters on ${label} (every link counts as 23, most emoji and CJK characters as 2); ${label} allows at most ${max}. Shorten it and send again.`,
  xInvalidCharacters: () => 'the caption contains an invisible character X does not accept (a byte-order mark, often left by copy and paste). Remove it and send again.',
  xDuplicate: () => 'it has the same text as a recent post from this account, and X does not accept repeats. Change the caption and send again.',
  xAppLimit: () => "Reelay's X app has used up its API allowance; ask whoever runs Reelay to check the X developer plan.",
  xAppNotAllowed: () => "Reelay's X app is not allowed to post; ask whoever runs Reelay to check its X developer project and access level.",
  xForbidden: (reason: string) => `X does not let this account post right now (${reason}).`,
  xProcessingFailed: (reason: string) => `X could not process it (${reason}).`,
  xMissingScopes: (scopes: string) => `the linked X account did not grant ${scopes}. Re-link the account.`,
  // Pinterest details, shown after "Pinterest refused the post:" / "Pinterest rejected the video:".
  pinterestNoBoard: () => 'no board is chosen for the linked Pinterest account. Re-link the account and pick a board.',
  pinterestBoardNotFound: (board: string) =>
    `the board ${board} was not found on the linked Pinterest account (deleted, or not the account's own). Re-link the account and pick a board.`,
  pinterestForbidden: (reason: string) =>
    `Pinterest does not let this account pin there (${reason}). Check that the board belongs to the linked account; a Trial-access Pinterest app can only make Pins its owner sees.`,
  pinterestMissingScopes: (scopes: string) => `the linked Pinterest account did not grant ${scopes}. Re-link the account.`,
  pinterestProcessingFailed: (reason: string) => `Pinterest could not process it (${reason}). The file may be damaged or in a format Pinterest does not take.`,
  // Operations: retention, alerts, health, doctor, backup.
  mediaExpired: (id: string) =>
    `The video of post ${id} was deleted after its retention period (MEDIA_RETENTION_HOURS), so it cannot be published again. Send the video again.`,
  workersDown: (minutes: number, dueJobs: number) =>
    `No Reelay worker has been running for ${minutes} minutes and ${dueJobs} job${dueJobs === 1 ? ' is' : 's are'} waiting: scheduled posts are not going out. Start a worker (reelay worker) or check the worker service.`,
  workersBack: (minutes: number) => `Reelay workers are running again after ${minutes} minute${minutes === 1 ? '' : 's'}; waiting posts are going out now.`,
  chatNotConfigured: (variable: string) => `not configured (set ${variable} to enable)`,
  chatNoBotYet: (chat: string) => `token set, but this version has no ${chat} bot yet`,
  fixNode: (version: string) => `Install Node.js 22.18 or newer (this is ${version}); see the README's Prerequisites.`,
  fixBinaryMissing: (binary: string, variable: string, debianPackage: string) =>
    `Install ${binary} (Debian/Ubuntu: apt-get install ${debianPackage}) or set ${variable} to its path.`,
  fixEncoders: (missing: string) => `This ffmpeg has no ${missing} encoder. Install a build that has it (Debian's ffmpeg package has libx264 and aac).`,
  fixPgDumpVersion: (client: number, server: number) =>
    `pg_dump ${client} cannot back up a Postgres ${server} server. Install postgresql-client-${server} and set PG_DUMP_PATH and PG_RESTORE_PATH to it.`,
  fixDatabase: (embedded: boolean) =>
    embedded
      ? 'The embedded Postgres did not start. Check that REELAY_DATA_DIR is writable, and the log with LOG_LEVEL=debug.'
      : 'Check DATABASE_URL (host, port, user, password, database name) and that Postgres is running and reachable from here.',
  fixMigrations: () => 'Run reelay migrate (every Reelay process also migrates when it starts).',
  fixNewerDatabase: () => 'The database has migrations this version of Reelay does not know: run the newer Reelay version, or restore a matching backup.',
  fixSecretKeyMismatch: (count: number) =>
    `${count} account${count === 1 ? "'s" : "s'"} credentials cannot be opened with this REELAY_SECRET_KEY. Set the key they were saved with (or re-link the accounts).`,
  fixNoWorker: () => 'No worker is running, so nothing is published. Start one: reelay worker (or reelay start, which includes one).',
  fixChatToken: (variable: string) => `Check ${variable}: the token was refused. Copy it again from the bot's settings (BotFather / Discord developer portal).`,
  fixChatUnreachable: (label: string, variable: string) => `Cannot reach the ${label} API. Check the network, or ${variable} if you use a custom server.`,
  fixDiscordApplicationId: () => 'Set DISCORD_APPLICATION_ID (Discord developer portal, General Information); slash commands need it.',
  fixAccountReauth: (platform: string, handle: string, workspace: string) =>
    `Re-link it: reelay accounts add ${platform} --handle ${handle} --workspace ${workspace} (with a fresh app password or login).`,
  fixAccountRelink: (platform: string, via: string | null, workspace: string) =>
    `Re-link it: reelay accounts link ${platform}${via === null ? '' : ` --via ${via}`} --workspace ${workspace}, and open the link it prints.`,
  fixAccountUnsupported: (label: string) => `${label} is not supported by this version of Reelay; upgrade Reelay or stop posting to this account.`,
  fixOAuthClient: (label: string, variables: string) => `Set ${variables}: without them ${label} tokens cannot be refreshed and posting stops when they expire.`,
  fixPublicBaseUrl: () =>
    'Set PUBLIC_BASE_URL to the public https address of this server (e.g. https://reelay.example.com); platforms that fetch videos by link need it.',
  fixPublicBaseUrlHttps: () => 'Make PUBLIC_BASE_URL https: platforms refuse to fetch media over plain http.',
  backupDone: (file: string, size: string, seconds: string) => `Backed up the database (media included) to ${file}: ${size} in ${seconds} s.`,
  restoreDone: (file: string, seconds: string) => `Restored the database from ${file} in ${seconds} s. Start Reelay again (it applies any newer migrations).`,
  backupFileExists: (file: string) => `${file} already exists; choose another name (a backup is never overwritten).`,
  backupFileMissing: (file: string) => `Cannot read ${file}: no such file.`,
  backupToolFailed: (binary: string, detail: string) => `${binary} failed: ${detail}`,
  restoreWorkersRunning: (count: number) =>
    `${count} worker${count === 1 ? ' is' : 's are'} running on this database. Stop the workers and the bot first (docker compose stop bot worker), or pass --force.`,
  demoUnavailable: () =>
    'reelay demo needs the development dependencies (npm ci, not npm ci --omit=dev); it is not available in the Docker image.',
  cleanupDone: (media: number, renditions: number, size: string) =>
    media === 0 ? 'Nothing to clean up: no expired media.' : `Deleted ${media} video${media === 1 ? '' : 's'} and ${renditions} rendition${renditions === 1 ? '' : 's'}; ${size} freed.`,
  // TikTok. Details are shown after "TikTok refused the post:" / "TikTok rejected the video:"; the
  // tiktok*Note texts stand alone next to a link that is not the video itself.
  tiktokUnaudited: () =>
    'until TikTok has audited Reelay\'s TikTok app, it may only post private videos ("Only me", SELF_ONLY) to private accounts. Set the account\'s privacy level to SELF_ONLY and make the TikTok account private, or ask whoever runs Reelay to have the app audited.',
  tiktokPrivacyNotOffered: (level: string, offered: readonly string[]) =>
    `TikTok does not offer the privacy level ${level} for this account (it offers ${offered.join(', ') || 'none'}). Change the account's TikTok privacy level in Reelay.`,
  tiktokPrivacyMismatch: () =>
    "the privacy level is not one TikTok offers this account (a private account cannot post publicly). Change the account's TikTok privacy level in Reelay.",
  tiktokDailyLimit: (when: string) => `the account has posted as many videos through apps today as TikTok allows; Reelay will try again around ${when}.`,
  tiktokTooManyDrafts: () => "five drafts from apps are already waiting in the account's TikTok inbox. Post or delete them in the TikTok app, then retry.",
  tiktokBanned: () => 'TikTok has blocked this account from posting. Check the account in the TikTok app.',
  tiktokSpamText: () => 'TikTok flagged the caption as spam. Reword it and send it again.',
  tiktokSpam: () => 'TikTok flagged the post as possible spam. Wait a while before posting again.',
  tiktokAppUserCap: () => "Reelay's TikTok app has reached the number of accounts TikTok lets it post for today. Retry tomorrow, or ask whoever runs Reelay.",
  tiktokUpdateApp: () => 'TikTok asks the account owner to update the TikTok app first.',
  tiktokCancelled: () => 'the post was cancelled on TikTok before it went out.',
  tiktokUrlUnverified: () => "the video link's domain is not verified in Reelay's TikTok developer app; ask whoever runs Reelay.",
  tiktokVideoFormat: () => 'TikTok could not read its format (it takes MP4, MOV or WebM with H.264, H.265, VP8 or VP9).',
  tiktokVideoDuration: () => 'it is longer or shorter than TikTok allows this account.',
  tiktokVideoFrameRate: () => 'its frame rate is outside the 23 to 60 frames per second TikTok accepts.',
  tiktokVideoPictureSize: () => 'its picture is outside the 360 to 4096 pixels per side TikTok accepts.',
  tiktokSentToInbox: () => 'Sent to the TikTok inbox as a draft: open TikTok to finish and post it.',
  tiktokPrivatePost: (profileUrl: string) => `Posted privately ("Only me"): TikTok gives private videos no public link, so this is the profile ${profileUrl}.`,
  tiktokAwaitingReview: (profileUrl: string) =>
    `Published on TikTok, awaiting TikTok's review; until the video is public the link is the profile ${profileUrl}.`,
  // LinkedIn details, shown after "LinkedIn refused the post:" / "LinkedIn rejected the video:", and full sentences.
  linkedinTokenExpired: (handle: string) =>
    `The LinkedIn login for ${handle} has expired (LinkedIn logins last 60 days and this app cannot renew them). Re-link the account.`,
  linkedinForbidden: (reason: string) =>
    `the linked LinkedIn account may not post there (${reason}). For a company page it must be a page admin; check that, then re-link the account.`,
  linkedinDuplicate: () => 'it repeats a post already on the account. Change the caption and send it again.',
  linkedinVersion: (version: string) =>
    `Reelay's LinkedIn API version (LINKEDIN_VERSION=${version}) is no longer active; ask whoever runs Reelay to set a current one.`,
  linkedinProcessingFailed: (reason: string) => `LinkedIn could not process it (${reason}).`,
  linkedinDailyLimit: (resetAt: string) =>
    `Reelay has used up today's LinkedIn request limit; the post goes out after it resets at ${resetAt} (midnight UTC).`,
  // Facebook details, shown after "Facebook refused the post:" / "Facebook rejected the video:", and full sentences.
  facebookReelsCap: (when: string) =>
    `The Facebook Page has reached its limit of 30 reels in 24 hours; Reelay will try again around ${when}.`,
  facebookPermission: (reason: string) =>
    `the linked Facebook account may not publish on this Page (${reason}). It needs the Create content task on the Page; check that, then re-link the account.`,
  facebookPagePublishingAuthorization: () =>
    'the Page needs Page Publishing Authorization first. Complete it in the Page settings on Facebook, then retry the post.',
  facebookBlocked: (reason: string) => `Facebook has temporarily blocked the Page from posting (${reason}). Retry the post later.`,
  facebookNoPageAccess: () => 'the linked Facebook account no longer manages the Page. Re-link the account with a Page it manages.',
  facebookProcessingFailed: (reason: string) => `Facebook could not process it (${reason}).`,
  // Meta (Instagram, Threads). meta*Detail texts follow "<label> refused the post:" / "<label> rejected the video:";
  // metaPublishLimit, metaNeedsPublicLink and metaPublishedNoLink stand alone.
  metaNeedsPublicLink: (label: string) =>
    `${label} fetches the video from a public link, and this Reelay has none. Ask whoever runs Reelay to set PUBLIC_BASE_URL, then retry the post.`,
  metaPublishLimit: (label: string, wait: string, total?: number) =>
    `The account has published as many posts through apps in the last 24 hours as ${label} allows${total !== undefined ? ` (${total})` : ''}; Reelay will try again in about ${wait}.`,
  metaPublishedNoLink: (label: string) => `Published on ${label}; it did not give the post's link, so this is the profile.`,
  metaUnsupportedVideo: (label: string) => `${label} does not support this video's format (it takes MP4 or MOV with H.264 or HEVC video and AAC audio).`,
  metaCaptionTooLong: (label: string) => `the caption is longer than ${label} allows. Shorten it and send it again.`,
  metaAccountRestricted: (label: string) => `${label} has restricted this account from posting. Check the account in the app.`,
  metaBlockedAsSpam: (label: string) => `${label} blocked the post as possible spam. Wait a while before posting again, or change the caption.`,
  metaMissingPermission: (label: string) => `the linked ${label} account did not grant Reelay permission to publish. Re-link the account.`,
  metaFetchFailed: (label: string) => `${label} could not download the video from Reelay's public link. Check that PUBLIC_BASE_URL is reachable from the internet.`,
  metaContainerFailed: (label: string, reason: string) => `${label} could not process it (${reason}).`,
  metaVideoProblem: (reason: string) =>
    ({
      INVALID_ASPEC_RATIO: 'its aspect ratio is outside what Threads accepts (0.01:1 to 10:1).',
      INVALID_BIT_RATE: 'its bit rate is higher than Threads accepts (25 Mbps).',
      INVALID_DURATION: 'it is longer than Threads accepts (5 minutes).',
      INVALID_FRAME_RATE: 'its frame rate is outside the 23 to 60 frames per second Threads accepts.',
      INVALID_AUDIO_CHANNELS: 'its audio has more channels than Threads accepts (stereo at most).',
      INVALID_AUDIO_CHANNEL_LAYOUT: 'its audio channel layout is not one Threads accepts.',
      FAILED_PROCESSING_AUDIO: 'Threads could not process its audio.',
      FAILED_PROCESSING_VIDEO: 'Threads could not process it.',
    } as Record<string, string | undefined>)[reason] ?? `Threads could not process it (${reason}).`,
  metaMediaExpired: (label: string) => `${label} let the prepared video expire before it was published (after 24 hours).`,
  // Stands alone (intake) like captionTooLong.
  captionTooLongEmojiBytes: (label: string, length: number, max: number) =>
    `The caption counts as ${length} characters on ${label} (each emoji counts as several: 4 for most, more for flags and combined emoji); ${label} allows at most ${max}. Shorten it and send again.`,
  // Links pasted in chat (core/fetch-link.ts) and multi-part split (core/split.ts); all stand alone.
  linkInvalid: (text: string) => `"${text}" is not a link Reelay can read. Send a full address starting with https:// or http://.`,
  linkScheme: (scheme: string) => `Reelay only downloads http:// and https:// links, not ${scheme} ones. Send a web link to the video, or the video itself.`,
  linkPrivateAddress: (host: string) =>
    `${host} is a private or local network address; Reelay only downloads from the public internet. Send a public link, or the video itself.`,
  linkHostNotFound: (host: string) => `Cannot find the server ${host}. Check the link for typos.`,
  linkUnreachable: (host: string) => `Cannot connect to ${host} (the server did not answer). Check the link, or send the video itself.`,
  linkTooManyRedirects: (max: number) => `The link forwards to another address more than ${max} times. Send the final link to the video file.`,
  linkHttpStatus: (status: number) =>
    `The server answered with error ${status} instead of the video. Check that the link opens in a private browser window (without logging in).`,
  linkTooBig: (max: number) => `The video at the link is larger than ${formatBytes(max)}, the most Reelay downloads. Send a shorter or smaller video.`,
  linkWebPage: () =>
    'The link leads to a web page, not a video file. Send a direct link to the file (one that downloads an .mp4, .mov, .webm or .mkv), or send the video itself.',
  linkNotVideo: (contentType: string) =>
    `The link leads to a file of type ${contentType}, not a video. Send a direct link to an .mp4, .mov, .webm or .mkv file, or the video itself.`,
  linkEmpty: () => 'The link gave an empty file (0 bytes). Check the link, or send the video itself.',
  linkTimeout: (seconds: number) =>
    `Downloading from the link took longer than ${seconds} seconds, so Reelay stopped. Send the video itself, or a link to a faster server.`,
  splitNeedsReencode: (maxSeconds: number, gapSeconds: number) =>
    `This video cannot be cut into parts of at most ${formatDuration(maxSeconds)} without converting it: one stretch of ${formatDuration(gapSeconds)} has no keyframe (a point where a part can start). Export it again with a keyframe at least every few seconds, or shorten it.`,
  // Discord.
  discordRequestEcho: (who: string, request: string, file: string | null) => `${who} asked: ${request}${file ? `\nVideo: ${file}` : ''}`,
  discordLinkInDm: (label: string) => `I sent you a direct message with a one-time link to connect ${label} (valid 10 minutes).`,
  discordDmClosed: () => 'I cannot send you a direct message (your privacy settings block it): use the /link slash command instead, which answers only you.',
  discordCommandsRegistered: (count: number, scope: string) => `Registered ${count} slash commands ${scope}.`,
  discordNeedsApplication: () => 'Set DISCORD_TOKEN and DISCORD_APPLICATION_ID (Discord developer portal) to register the slash commands.',
  discordRegisterFailed: (detail: string) => `Discord refused the slash commands: ${detail}. Check DISCORD_TOKEN, DISCORD_APPLICATION_ID and, with --guild, that the bot is in that server.`,
} as const;

export function formatDuration(seconds: number): string {
  const total = Math.round(seconds);
  const m = Math.floor(total / 60);
  const s = total % 60;
  // "10:00:00", not "600:00", for a recording left running.
  if (m >= 60) return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
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
  /** A complete sentence from MESSAGES for the person, replacing the generic one for the code. */
  userMessage?: string;
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
  readonly userMessage: string | undefined;
  constructor(code: PublishErrorCode, message: string, options: PublishErrorOptions = {}) {
    super(message);
    this.code = code;
    this.retryable = options.retryable ?? (code === 'rate_limited' || code === 'unavailable' || code === 'unknown');
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.status = options.status;
    this.detail = options.detail ?? message;
    this.outcomeUnknown = options.outcomeUnknown ?? false;
    this.userMessage = options.userMessage;
  }
}

/**
 * The same error, marked as one whose call may have taken effect: the next attempt must ask the
 * platform before repeating it.
 */
export function withOutcomeUnknown(error: PublishError): PublishError {
  if (error.outcomeUnknown) return error;
  const copy = new PublishError(error.code, error.message, {
    retryable: error.retryable,
    ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
    ...(error.status !== undefined ? { status: error.status } : {}),
    ...(error.userMessage !== undefined ? { userMessage: error.userMessage } : {}),
    detail: error.detail,
    outcomeUnknown: true,
  });
  if (error.stack) copy.stack = error.stack;
  return copy;
}

/** The plain-words reason a person sees for a delivery that failed for good. */
export function describePublishError(label: string, error: PublishError): string {
  if (error.userMessage) return error.userMessage;
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
