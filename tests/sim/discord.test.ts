import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { REST, DiscordAPIError } from '@discordjs/rest';
import {
  Client,
  Events,
  GatewayIntentBits,
  MessageFlags,
  Routes,
  type ChatInputCommandInteraction,
  type Message,
  type MessageReaction,
  type PartialMessageReaction,
  type PartialUser,
  type User,
} from 'discord.js';
import { WebSocket } from 'ws';
import { DiscordSim, INTENTS, PERMISSIONS, startDiscordSim, type SimGuild, type SimUser } from './discord.ts';

const BOT_INTENTS = [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent, GatewayIntentBits.GuildMessageReactions];

let sim: DiscordSim;
let guild: SimGuild;
let general: string;
let alice: SimUser;
let bob: SimUser;
let client: Client;
let rest: REST;

function newClient(s: DiscordSim): Client {
  return new Client({ intents: BOT_INTENTS, rest: { api: s.apiRoot } });
}

function newRest(s: DiscordSim): REST {
  return new REST({ api: s.apiRoot, version: '10' }).setToken(s.token);
}

function closeRest(r: REST): void {
  r.clearHashSweeper();
  r.clearHandlerSweeper();
}

async function apiError(promise: Promise<unknown>): Promise<DiscordAPIError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DiscordAPIError) return error;
    throw error;
  }
  throw new Error('expected a DiscordAPIError');
}

/** A raw gateway connection, for what discord.js does not let a test do (bad tokens, explicit RESUMEs). */
async function rawGateway(s: DiscordSim): Promise<{ ws: WebSocket; frames: Array<{ op: number; t?: string; s?: number; d: unknown }>; closed: Promise<number> }> {
  const ws = new WebSocket(`${s.url.replace('http', 'ws')}/gateway?v=10&encoding=json`);
  const frames: Array<{ op: number; t?: string; s?: number; d: unknown }> = [];
  ws.on('message', (data) => frames.push(JSON.parse(String(data)) as { op: number; d: unknown }));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await once(ws, 'open');
  return { ws, frames, closed };
}

const video = Buffer.alloc(300_000, 7);

before(async () => {
  sim = await startDiscordSim({ heartbeatIntervalMs: 400, interactionAckWindowMs: 1500, rateLimit: { limit: 5, windowMs: 600 } });
  guild = sim.addGuild({ name: 'Studio', channels: ['general', 'alerts'] });
  general = guild.channelIds[0]!;
  const approvers = sim.addRole(guild.id, 'Approvers', PERMISSIONS.MANAGE_GUILD);
  alice = sim.addMember(guild.id, 'alice', [approvers.id]).user;
  bob = sim.addMember(guild.id, 'bob').user;
  rest = newRest(sim);
  await rest.put(Routes.applicationGuildCommands(sim.applicationId, guild.id), { body: COMMANDS });
  await rest.put(Routes.applicationCommands(sim.applicationId), { body: [{ name: 'queue', description: 'The queue' }] });
  client = newClient(sim);
  const ready = once(client, Events.ClientReady);
  await client.login(sim.token);
  await ready;
});

after(async () => {
  await client.destroy();
  closeRest(rest);
  await sim.close();
});

test('REST refuses a missing or wrong token with Discord\'s 401, and 204s carry no content type', async () => {
  const bare = await fetch(`${sim.apiRoot}/v10/users/@me`);
  assert.equal(bare.status, 401);
  assert.deepEqual(await bare.json(), { message: '401: Unauthorized', code: 0 });
  const wrong = await fetch(`${sim.apiRoot}/v10/users/@me`, { headers: { authorization: `Bot nope` } });
  assert.equal(wrong.status, 401);
  const me = (await rest.get(Routes.user())) as { id: string; bot: boolean };
  assert.equal(me.id, sim.bot.id);
  assert.equal(me.bot, true);
  const sent = await fetch(`${sim.apiRoot}/v10/channels/${general}/messages`, {
    method: 'POST',
    headers: { authorization: `Bot ${sim.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ content: 'to delete' }),
  });
  assert.ok(sent.headers.get('x-ratelimit-bucket'));
  assert.ok(sent.headers.get('x-ratelimit-reset-after'));
  const { id } = (await sent.json()) as { id: string };
  const deleted = await fetch(`${sim.apiRoot}/v10/channels/${general}/messages/${id}`, { method: 'DELETE', headers: { authorization: `Bot ${sim.token}` } });
  assert.equal(deleted.status, 204);
  assert.equal(deleted.headers.get('content-type'), null);
  assert.equal(await deleted.text(), '');
});

test('discord.js logs in through GET /gateway/bot, READY and GUILD_CREATE, and heartbeats are acknowledged', async () => {
  assert.ok(sim.requestsTo('GET /gateway/bot').length >= 1);
  const cached = client.guilds.cache.get(guild.id);
  assert.ok(cached, 'the guild is cached from GUILD_CREATE');
  assert.deepEqual(
    [...cached.channels.cache.values()].map((c) => c.name).sort(),
    ['alerts', 'general'],
  );
  assert.ok(cached.roles.cache.find((r) => r.name === 'Approvers')?.permissions.has('ManageGuild'));
  // Without GuildMembers only the bot's own member comes with the guild, as on Discord.
  assert.deepEqual([...cached.members.cache.keys()], [sim.bot.id]);
  assert.equal(client.user?.id, sim.bot.id);
  await sim.waitFor(() => sim.gatewayLog.some((f) => f.dir === 'in' && f.op === 1) && sim.gatewayLog.some((f) => f.dir === 'out' && f.op === 11), 3000);
  const identify = sim.connections.find((c) => c.kind === 'identify');
  assert.equal(identify?.path, '/gateway');
  assert.match(identify?.query ?? '', /v=10&encoding=json/);
  const member = await cached.members.fetch(alice.id);
  assert.ok(member.permissions.has('ManageGuild'));
  const bobMember = await cached.members.fetch(bob.id);
  assert.equal(bobMember.permissions.has('ManageGuild'), false);
});

const COMMANDS = [
  {
      name: 'post',
      description: 'Post a video',
      options: [
        { type: 3, name: 'to', description: 'Platforms', required: true },
        { type: 11, name: 'video', description: 'The video' },
        { type: 3, name: 'caption', description: 'Caption' },
      ],
    },
    {
      name: 'settings',
      description: 'Settings',
      options: [{ type: 1, name: 'alerts', description: 'Alerts channel', options: [{ type: 7, name: 'channel', description: 'Channel', required: true }] }],
    },
];

test('command registration validates names and options, guild and global', async () => {
  const created = (await rest.put(Routes.applicationGuildCommands(sim.applicationId, guild.id), { body: COMMANDS })) as Array<{ id: string; name: string; guild_id: string }>;
  assert.deepEqual(created.map((c) => c.name), ['post', 'settings']);
  assert.equal(created[0]!.guild_id, guild.id);
  await rest.put(Routes.applicationCommands(sim.applicationId), { body: [{ name: 'queue', description: 'The queue' }] });
  assert.deepEqual(sim.commandsOf().map((c) => c.name), ['queue']);
  assert.deepEqual(sim.commandsOf(guild.id).map((c) => c.name), ['post', 'settings']);

  const bad = await apiError(rest.put(Routes.applicationCommands(sim.applicationId), { body: [{ name: 'Bad Name', description: '' }] }));
  assert.equal(bad.code, 50035);
  assert.equal(bad.status, 400);
  const raw = bad.rawError as { errors: Record<string, Record<string, { _errors: Array<{ code: string }> }>> };
  assert.equal(raw.errors['0']!.name!._errors[0]!.code, 'APPLICATION_COMMAND_INVALID_NAME');
  assert.equal(raw.errors['0']!.description!._errors[0]!.code, 'BASE_TYPE_BAD_LENGTH');
  const order = await apiError(
    rest.put(Routes.applicationCommands(sim.applicationId), {
      body: [{ name: 'x', description: 'x', options: [{ type: 3, name: 'a', description: 'a' }, { type: 3, name: 'b', description: 'b', required: true }] }],
    }),
  );
  assert.equal(order.code, 50035);
  assert.deepEqual(sim.commandsOf().map((c) => c.name), ['queue'], 'a refused overwrite changes nothing');
  assert.throws(() => sim.slashCommand(guild.id, general, alice.id, 'nope'), /not registered/);
});

test('a slash command with an attachment: defer, download from the CDN, edit the original, ephemeral follow-up', async () => {
  const seen: { bytes?: Buffer; to?: string | null; contentType?: string | null } = {};
  const handler = async (interaction: ChatInputCommandInteraction): Promise<void> => {
    await interaction.deferReply();
    const attachment = interaction.options.getAttachment('video', true);
    seen.to = interaction.options.getString('to');
    seen.contentType = attachment.contentType;
    const response = await fetch(attachment.url);
    seen.bytes = Buffer.from(await response.arrayBuffer());
    await interaction.editReply('Queued for bluesky');
    await interaction.followUp({ content: 'only you can see this', flags: MessageFlags.Ephemeral });
  };
  const listener = (interaction: unknown): void => {
    const i = interaction as ChatInputCommandInteraction;
    if (i.isChatInputCommand() && i.commandName === 'post') void handler(i);
  };
  client.on(Events.InteractionCreate, listener);
  try {
    const { id } = sim.slashCommand(guild.id, general, alice.id, 'post', { to: 'bluesky', caption: 'hi' }, { video: { name: 'clip.mp4', contentType: 'video/mp4', bytes: video } });
    const { original, followUps } = await sim.waitFor(() => {
      const r = sim.responsesTo(id);
      return r.followUps.length === 1 && r.original?.content === 'Queued for bluesky' ? r : undefined;
    });
    assert.equal(seen.to, 'bluesky');
    assert.equal(seen.contentType, 'video/mp4');
    assert.deepEqual(seen.bytes, video);
    assert.equal(sim.interactions.get(id)?.callback?.type, 5);
    assert.deepEqual(original!.history.map((v) => [v.content, v.flags]), [['', 128], ['Queued for bluesky', 0]]);
    assert.equal(followUps[0]!.ephemeral, true);
    assert.equal(followUps[0]!.flags & 64, 64);
    assert.ok(sim.channelMessages(general).includes(original!));
    assert.ok(!sim.channelMessages(general).includes(followUps[0]!), 'ephemeral follow-ups are not channel messages');
    assert.ok(sim.requestsTo('POST /interactions/:interaction/:token/callback').every((r) => r.auth === undefined));
  } finally {
    client.off(Events.InteractionCreate, listener);
  }
});

test('interaction callbacks: only once, only within the ack window; subcommands; expired webhook tokens', async () => {
  const parsed = new Promise<{ sub: string; channel: string | undefined; approver: boolean }>((resolve) => {
    const listener = (interaction: unknown): void => {
      const i = interaction as ChatInputCommandInteraction;
      if (!i.isChatInputCommand() || i.commandName !== 'settings') return;
      client.off(Events.InteractionCreate, listener);
      resolve({ sub: i.options.getSubcommand(), channel: i.options.getChannel('channel')?.id, approver: i.memberPermissions?.has('ManageGuild') ?? false });
    };
    client.on(Events.InteractionCreate, listener);
  });
  const a = sim.slashCommand(guild.id, general, bob.id, 'settings alerts', { channel: guild.channelIds[1]! });
  assert.deepEqual(await parsed, { sub: 'alerts', channel: guild.channelIds[1], approver: false });
  const ack = await fetch(`${sim.apiRoot}/v10/interactions/${a.id}/${a.token}/callback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 4, data: { content: 'Alerts go to #alerts' } }),
  });
  assert.equal(ack.status, 204);
  assert.equal(ack.headers.get('content-type'), null);
  const again = await apiError(rest.post(Routes.interactionCallback(a.id, a.token), { body: { type: 4, data: { content: 'x' } }, auth: false }));
  assert.equal(again.code, 40060);
  const wrongToken = await apiError(rest.post(Routes.interactionCallback(a.id, 'nope'), { body: { type: 5 }, auth: false }));
  assert.equal(wrongToken.code, 10062);

  sim.expireInteractionToken(a.id);
  const expired = await apiError(rest.patch(Routes.webhookMessage(sim.applicationId, a.token, '@original'), { body: { content: 'late' }, auth: false }));
  assert.equal(expired.status, 401);
  assert.equal(expired.code, 50027);

  const withResponse = sim.slashCommand(guild.id, general, bob.id, 'queue');
  const answer = (await rest.post(Routes.interactionCallback(withResponse.id, withResponse.token), {
    body: { type: 5, data: { flags: 64 } },
    query: new URLSearchParams({ with_response: 'true' }),
    auth: false,
  })) as { interaction: { id: string; response_message_ephemeral: boolean; response_message_loading: boolean }; resource: { type: number } };
  assert.equal(answer.interaction.id, withResponse.id);
  assert.equal(answer.interaction.response_message_ephemeral, true);
  assert.equal(answer.interaction.response_message_loading, true);
  assert.equal(answer.resource.type, 5);

  const withFile = sim.slashCommand(guild.id, general, bob.id, 'queue');
  await rest.post(Routes.interactionCallback(withFile.id, withFile.token), {
    body: { type: 4, data: { content: 'your file', attachments: [{ id: 0, filename: 'part1.mp4' }] } },
    files: [{ name: 'upload.mp4', data: video, contentType: 'video/mp4' }],
    auth: false,
  });
  const reply = sim.responsesTo(withFile.id).original!;
  assert.equal(reply.type, 20);
  assert.deepEqual(reply.attachments.map((f) => [f.filename, f.size]), [['part1.mp4', video.length]]);

  // Meanwhile a connection that identifies but never heartbeats is closed with 4009.
  const silent = await rawGateway(sim);
  silent.ws.send(JSON.stringify({ op: 2, d: { token: sim.token, intents: INTENTS.Guilds, properties: {} } }));

  const late = sim.slashCommand(guild.id, general, bob.id, 'queue');
  await new Promise((resolve) => setTimeout(resolve, 1600));
  const tooLate = await apiError(rest.post(Routes.interactionCallback(late.id, late.token), { body: { type: 5 }, auth: false }));
  assert.equal(tooLate.status, 404);
  assert.equal(tooLate.code, 10062);
  assert.equal(await silent.closed, 4009);
});

test('buttons: a pressed button is dispatched with its message and answered with an update', async () => {
  const channel = client.channels.cache.get(general);
  assert.ok(channel?.isSendable());
  const sent = await channel.send({
    content: 'Approve this post?',
    components: [{ type: 1, components: [{ type: 2, style: 3, label: 'Approve', custom_id: 'approve:42' }, { type: 2, style: 4, label: 'Reject', custom_id: 'reject:42' }] }],
  });
  const listener = (interaction: unknown): void => {
    const i = interaction as { isButton(): boolean; customId: string; message: Message; update(o: unknown): Promise<unknown> };
    if (i.isButton() && i.customId === 'approve:42' && i.message.id === sent.id) void i.update({ content: 'Approved', components: [] });
  };
  client.on(Events.InteractionCreate, listener);
  try {
    assert.throws(() => sim.pressButton(general, sent.id, alice.id, 'missing'), /no enabled button/);
    const { id } = sim.pressButton(general, sent.id, alice.id, 'approve:42');
    const message = await sim.waitFor(() => (sim.messages.get(sent.id)?.content === 'Approved' ? sim.messages.get(sent.id) : undefined));
    assert.equal(sim.interactions.get(id)?.callback?.type, 7);
    assert.deepEqual(message.components, []);
    assert.deepEqual(message.history.map((v) => v.content), ['Approve this post?', 'Approved']);
  } finally {
    client.off(Events.InteractionCreate, listener);
  }
});

test('a message that mentions the bot arrives with content and a CDN attachment that expires', async () => {
  const received = new Promise<Message>((resolve) => {
    const listener = (message: Message): void => {
      if (message.author.id !== alice.id) return;
      client.off(Events.MessageCreate, listener);
      resolve(message);
    };
    client.on(Events.MessageCreate, listener);
  });
  sim.userMessage(general, alice.id, { content: 'schedule tomorrow 6pm to tiktok\nMy caption', mentionsBot: true, attachments: [{ name: 'v.mp4', contentType: 'video/mp4', bytes: video }] });
  const message = await received;
  assert.ok(message.mentions.users.has(sim.bot.id));
  assert.ok(message.content.startsWith(`<@${sim.bot.id}> schedule tomorrow`));
  const attachment = message.attachments.first();
  assert.equal(attachment?.contentType, 'video/mp4');
  assert.equal(attachment?.size, video.length);
  const ranged = await fetch(attachment!.url, { headers: { range: 'bytes=0-9' } });
  assert.equal(ranged.status, 206);
  assert.equal((await ranged.arrayBuffer()).byteLength, 10);
  assert.deepEqual(Buffer.from(await (await fetch(attachment!.url)).arrayBuffer()), video);
  sim.expireCdnLinks();
  assert.equal((await fetch(attachment!.url)).status, 404);
  const tampered = attachment!.url.replace(/hm=[0-9a-f]+/, 'hm=00');
  assert.equal((await fetch(tampered)).status, 404);
});

test('reactions flow both ways', async () => {
  const channel = client.channels.cache.get(general);
  assert.ok(channel?.isSendable());
  const sent = await channel.send('React to approve');
  const got = new Promise<{ emoji: string | null; user: string; roles: string[] }>((resolve) => {
    const listener = (reaction: MessageReaction | PartialMessageReaction, user: User | PartialUser): void => {
      if (user.id === sim.bot.id) return;
      client.off(Events.MessageReactionAdd, listener);
      const member = reaction.message.guild?.members.cache.get(user.id);
      resolve({ emoji: reaction.emoji.name, user: user.id, roles: member ? [...member.roles.cache.keys()] : [] });
    };
    client.on(Events.MessageReactionAdd, listener);
  });
  sim.react(general, sent.id, alice.id, '👍');
  const reaction = await got;
  assert.equal(reaction.emoji, '👍');
  assert.equal(reaction.user, alice.id);
  assert.ok(reaction.roles.some((id) => guild.roles.find((r) => r.id === id)?.name === 'Approvers'), 'the reacting member comes with the event');
  await sent.react('✅');
  assert.deepEqual([...sim.messages.get(sent.id)!.reactions.get('✅')!], [sim.bot.id]);
  const put = sim.requestsTo('PUT /channels/:channel/messages/:message/reactions/:emoji/@me').at(-1);
  assert.equal(put?.status, 204);
  const unknownEmoji = await apiError(rest.put(Routes.channelMessageOwnReaction(general, sent.id, 'notanemoji')));
  assert.equal(unknownEmoji.code, 10014);
});

test('channel messages: multipart uploads, edits, error codes', async () => {
  const created = (await rest.post(Routes.channelMessages(general), {
    body: { content: 'Here is your file', attachments: [{ id: 0, filename: 'out.mp4' }] },
    files: [{ name: 'out.mp4', data: video, contentType: 'video/mp4' }],
  })) as { id: string; attachments: Array<{ url: string; filename: string }> };
  assert.equal(created.attachments[0]!.filename, 'out.mp4');
  assert.deepEqual(Buffer.from(await (await fetch(created.attachments[0]!.url)).arrayBuffer()), video);
  const request = sim.requestsTo('POST /channels/:channel/messages').at(-1)!;
  assert.deepEqual(request.files?.map((f) => [f.field, f.size]), [['files[0]', video.length]]);

  await rest.patch(Routes.channelMessage(general, created.id), { body: { content: 'Edited', embeds: [{ title: 'Status' }] } });
  const message = sim.messages.get(created.id)!;
  assert.deepEqual(message.history.map((v) => v.content), ['Here is your file', 'Edited']);
  assert.equal(message.embeds[0]!.title, 'Status');
  const fetched = (await rest.get(Routes.channelMessage(general, created.id))) as { content: string; edited_timestamp: string | null };
  assert.equal(fetched.content, 'Edited');
  assert.ok(fetched.edited_timestamp);

  const small = sim.addGuild({ name: 'Small', uploadLimit: 200_000 });
  const tooBig = await apiError(rest.post(Routes.channelMessages(small.channelIds[0]!), { body: {}, files: [{ name: 'big.mp4', data: video }] }));
  assert.equal(tooBig.status, 413);
  assert.equal(tooBig.code, 40005);

  const hidden = sim.addChannel(guild.id, 'secret', { hiddenFromBot: true });
  assert.equal((await apiError(rest.post(Routes.channelMessages(hidden.id), { body: { content: 'x' } }))).code, 50001);
  assert.equal((await apiError(rest.post(Routes.channelMessages('1'), { body: { content: 'x' } }))).code, 10003);
  assert.equal((await apiError(rest.get(Routes.channelMessage(general, '1')))).code, 10008);
  assert.equal((await apiError(rest.post(Routes.channelMessages(general), { body: {} }))).code, 50006);
  const long = await apiError(rest.post(Routes.channelMessages(general), { body: { content: 'x'.repeat(2001) } }));
  assert.equal(long.code, 50035);
  assert.equal((long.rawError as unknown as { errors: { content: { _errors: Array<{ code: string }> } } }).errors.content._errors[0]!.code, 'BASE_TYPE_MAX_LENGTH');
  const users = sim.userMessage(general, bob.id, { content: 'mine' });
  assert.equal((await apiError(rest.patch(Routes.channelMessage(general, users.id), { body: { content: 'x' } }))).code, 50005);
  const reply = (await rest.post(Routes.channelMessages(general), { body: { content: 'noted', message_reference: { message_id: users.id } } })) as {
    type: number;
    message_reference: { message_id: string };
  };
  assert.equal(reply.type, 19);
  assert.equal(reply.message_reference.message_id, users.id);

  const member = (await rest.get(Routes.guildMember(guild.id, alice.id))) as { user: { id: string }; roles: string[] };
  assert.equal(member.user.id, alice.id);
  assert.equal(member.roles.length, 1);
  assert.equal((await apiError(rest.get(Routes.guildMember(guild.id, '1')))).code, 10007);
  const roles = (await rest.get(Routes.guildRoles(guild.id))) as Array<{ name: string; permissions: string }>;
  assert.equal(roles.find((r) => r.name === 'Approvers')?.permissions, String(PERMISSIONS.MANAGE_GUILD));
  const dm = (await rest.post(Routes.userChannels(), { body: { recipient_id: alice.id } })) as { id: string; type: number };
  assert.equal(dm.type, 1);
  await rest.post(Routes.channelMessages(dm.id), { body: { content: 'Your post failed' } });
  assert.equal(sim.channelMessages(dm.id)[0]?.content, 'Your post failed');
});

test('rate limits: @discordjs/rest obeys the bucket headers, and waits out injected 429s (route and global)', async () => {
  const r = newRest(sim);
  try {
    const channel = guild.channelIds[1]!;
    const started = Date.now();
    await Promise.all(Array.from({ length: 7 }, (_, i) => r.post(Routes.channelMessages(channel), { body: { content: `burst ${i}` } })));
    const burst = sim.requestsTo('POST /channels/:channel/messages').filter((q) => q.at >= started);
    assert.equal(burst.filter((q) => q.status === 429).length, 0, 'a client that reads X-RateLimit-* never hits the limit');
    assert.ok(Date.now() - started >= 400, 'the sixth request waited for the bucket to reset');

    sim.fault('POST /channels/:channel/messages', { status: 429, retryAfter: 1 }, 1);
    const t0 = Date.now();
    await r.post(Routes.channelMessages(channel), { body: { content: 'after 429' } });
    assert.ok(Date.now() - t0 >= 900, `waited ${Date.now() - t0} ms`);
    const statuses = sim.requestsTo('POST /channels/:channel/messages').filter((q) => q.at >= t0).map((q) => q.status);
    assert.deepEqual(statuses, [429, 200]);

    sim.fault('GET /users/@me', { status: 429, retryAfter: 1, global: true }, 1);
    const t1 = Date.now();
    await r.get(Routes.user());
    assert.ok(Date.now() - t1 >= 900);
    const raw = await fetch(`${sim.apiRoot}/v10/users/@me`, { headers: { authorization: `Bot ${sim.token}` } });
    assert.equal(raw.status, 200);
    sim.fault('/users/@me', { status: 429, retryAfter: 2, global: true }, 1);
    const limited = await fetch(`${sim.apiRoot}/v10/users/@me`, { headers: { authorization: `Bot ${sim.token}` } });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '2');
    assert.equal(limited.headers.get('x-ratelimit-global'), 'true');
    assert.deepEqual(await limited.json(), { message: 'You are being rate limited.', retry_after: 2, global: true, code: 0 });

    sim.fault('GET /users/@me', 'reset', 1);
    await r.get(Routes.user());
    assert.deepEqual(sim.requestsTo('GET /users/@me').slice(-2).map((q) => q.status), ['reset', 200]);
  } finally {
    closeRest(r);
  }
});

test('the gateway resumes after a drop and replays what was missed', async () => {
  const resumed = once(client, Events.ShardResume);
  const missed = new Promise<Message>((resolve) => {
    const listener = (message: Message): void => {
      if (message.content !== 'while you were away') return;
      client.off(Events.MessageCreate, listener);
      resolve(message);
    };
    client.on(Events.MessageCreate, listener);
  });
  const identifies = sim.connections.filter((c) => c.kind === 'identify').length;
  sim.dropGateway(4000);
  sim.userMessage(general, bob.id, { content: 'while you were away' });
  await resumed;
  await missed;
  const resume = sim.connections.filter((c) => c.kind === 'resume').at(-1);
  assert.equal(resume?.path, '/resume', 'the client resumes at resume_gateway_url');
  assert.equal(sim.connections.filter((c) => c.kind === 'identify').length, identifies, 'no new session was started');

  const again = once(client, Events.ShardResume);
  sim.killGateway();
  await again;
  assert.equal(sim.connections.filter((c) => c.kind === 'identify').length, identifies, 'a cut connection (1006) is resumed too');
});

test('raw gateway: close codes 4004, 4013, 4003, intent gating, explicit RESUME replay and op 9', async () => {
  const bad = await rawGateway(sim);
  await sim.waitFor(() => bad.frames.length > 0);
  assert.equal(bad.frames[0]!.op, 10);
  bad.ws.send(JSON.stringify({ op: 2, d: { token: 'wrong', intents: 513, properties: {} } }));
  assert.equal(await bad.closed, 4004);

  const invalid = await rawGateway(sim);
  invalid.ws.send(JSON.stringify({ op: 2, d: { token: sim.token, intents: 1 << 30, properties: {} } }));
  assert.equal(await invalid.closed, 4013);

  const garbage = await rawGateway(sim);
  garbage.ws.send('{not json');
  assert.equal(await garbage.closed, 4002);

  const early = await rawGateway(sim);
  early.ws.send(JSON.stringify({ op: 3, d: { status: 'online' } }));
  assert.equal(await early.closed, 4003);

  // Guilds + GuildMessages, no MessageContent, no reactions.
  const g = await rawGateway(sim);
  g.ws.send(JSON.stringify({ op: 2, d: { token: sim.token, intents: INTENTS.Guilds | INTENTS.GuildMessages, properties: { os: 'linux', browser: 'test', device: 'test' } } }));
  const ready = await sim.waitFor(() => g.frames.find((f) => f.t === 'READY'));
  const { session_id: sessionId } = ready.d as { session_id: string };
  await sim.waitFor(() => g.frames.find((f) => f.t === 'GUILD_CREATE'));
  sim.userMessage(general, bob.id, { content: 'secret words', attachments: [{ name: 'a.mp4', contentType: 'video/mp4', bytes: video }] });
  sim.userMessage(general, bob.id, { content: 'hello bot', mentionsBot: true });
  const creates = await sim.waitFor(() => {
    const list = g.frames.filter((f) => f.t === 'MESSAGE_CREATE');
    return list.length >= 2 ? list : undefined;
  });
  const [plain, mention] = creates.map((f) => f.d as { content: string; attachments: unknown[] });
  assert.equal(plain!.content, '', 'no MessageContent: content withheld');
  assert.deepEqual(plain!.attachments, []);
  assert.equal(mention!.content, `<@${sim.bot.id}> hello bot`, 'a mention of the bot still carries its content');
  sim.react(general, (creates[0]!.d as { id: string }).id, alice.id, '👍');
  const lastSeq = g.frames.filter((f) => typeof f.s === 'number').at(-1)!.s!;

  g.ws.close(4000);
  await g.closed;
  sim.userMessage(general, bob.id, { content: 'missed one', mentionsBot: true });
  const r = await rawGateway(sim);
  r.ws.send(JSON.stringify({ op: 6, d: { token: sim.token, session_id: sessionId, seq: lastSeq } }));
  const resumed = await sim.waitFor(() => r.frames.find((f) => f.t === 'RESUMED'));
  const replayed = r.frames.filter((f) => f.op === 0 && f.t !== 'RESUMED');
  assert.deepEqual(replayed.map((f) => [f.t, f.s]), [['MESSAGE_CREATE', lastSeq + 1]]);
  assert.equal(resumed.s, lastSeq + 2);
  assert.ok(!g.frames.some((f) => f.t === 'MESSAGE_REACTION_ADD'), 'no reactions without GuildMessageReactions');
  r.ws.close(1000);
  await r.closed;

  const stale = await rawGateway(sim);
  stale.ws.send(JSON.stringify({ op: 6, d: { token: sim.token, session_id: sessionId, seq: lastSeq } }));
  const nine = await sim.waitFor(() => stale.frames.find((f) => f.op === 9));
  assert.equal(nine.d, false, 'a session closed with 1000 cannot be resumed');
  stale.ws.close(1000);
  await stale.closed;
});

test('discord.js is refused with 4014 when the app has not enabled MessageContent', async () => {
  const strict = await startDiscordSim({ privilegedIntents: { messageContent: false } });
  strict.addGuild();
  const c = newClient(strict);
  try {
    await assert.rejects(c.login(strict.token), /disallowed intents/i);
    assert.equal(strict.connections[0]?.closedWith, 4014);
    const unauth = newClient(strict);
    await assert.rejects(unauth.login('wrong-token'), (error: Error) => /token/i.test(error.message));
    await unauth.destroy();
  } finally {
    await c.destroy();
    await strict.close();
  }
});
