-- Up Migration

-- A workspace is where requests come from: 'cli', 'telegram:<chat_id>', 'discord:<guild_id>'.
CREATE TABLE workspaces (
  id          text PRIMARY KEY,
  time_zone   text NOT NULL DEFAULT 'UTC',
  settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE members (
  workspace_id text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  id           text NOT NULL,
  display_name text,
  role         text NOT NULL DEFAULT 'poster' CHECK (role IN ('owner', 'admin', 'approver', 'poster')),
  time_zone    text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, id)
);

CREATE TABLE accounts (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  platform     text NOT NULL,
  handle       text NOT NULL,
  remote_id    text,
  state        text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'needs_reauth', 'disabled')),
  -- AES-256-GCM envelope (see core/crypto.ts); the key id is inside the envelope too.
  credentials  bytea NOT NULL,
  key_id       text NOT NULL,
  expires_at   timestamptz,
  last_error   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
-- One live account per handle and platform in a workspace; disabled ones keep their history.
CREATE UNIQUE INDEX accounts_live_handle ON accounts (workspace_id, platform, lower(handle)) WHERE state <> 'disabled';

-- Bytes live in large objects and are streamed in and out in chunks (core/media.ts).
CREATE TABLE media (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  filename     text NOT NULL,
  content_type text NOT NULL,
  size         bigint NOT NULL,
  sha256       text NOT NULL,
  oid          oid NOT NULL,
  probe        jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- One physical file per row; a remux serves every profile the input already satisfies.
CREATE TABLE renditions (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  media_id     uuid NOT NULL REFERENCES media (id) ON DELETE CASCADE,
  profile_keys text[] NOT NULL,
  mode         text NOT NULL CHECK (mode IN ('remux', 'encode')),
  size         bigint NOT NULL,
  sha256       text NOT NULL,
  oid          oid NOT NULL,
  probe        jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX renditions_media ON renditions (media_id);

CREATE TABLE posts (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  author_id     text NOT NULL,
  caption       text NOT NULL DEFAULT '',
  media_id      uuid REFERENCES media (id) ON DELETE SET NULL,
  media_state   text NOT NULL DEFAULT 'pending' CHECK (media_state IN ('pending', 'ready', 'failed')),
  media_error   text,
  scheduled_at  timestamptz NOT NULL,
  time_zone     text NOT NULL,
  -- Where the request came from and where replies go (chat, chat id, message ids).
  origin        jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX posts_workspace_created ON posts (workspace_id, created_at DESC);

CREATE TABLE deliveries (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  post_id       uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
  account_id    uuid NOT NULL REFERENCES accounts (id),
  platform      text NOT NULL,
  state         text NOT NULL CHECK (state IN (
                  'awaiting_approval', 'scheduled', 'publishing', 'processing',
                  'published', 'failed', 'cancelled', 'unconfirmed')),
  caption       text,
  profile_key   text NOT NULL,
  rendition_id  uuid REFERENCES renditions (id) ON DELETE SET NULL,
  -- Platform ids saved before the step that depends on them (record key, upload session, ...).
  checkpoint    jsonb NOT NULL DEFAULT '{}'::jsonb,
  remote_id     text,
  url           text,
  error_code    text,
  error         text,
  attempts      integer NOT NULL DEFAULT 0,
  job_id        uuid,
  published_at  timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (post_id, account_id)
);
CREATE INDEX deliveries_open ON deliveries (state) WHERE state IN ('scheduled', 'publishing', 'processing');

-- The audit trail: rows are only ever added.
CREATE TABLE events (
  id           bigserial PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT now(),
  workspace_id text,
  post_id      uuid,
  delivery_id  uuid,
  account_id   uuid,
  type         text NOT NULL,
  data         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX events_post ON events (post_id, id);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'events is append-only';
END;
$$;
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION events_append_only();

-- Live worker processes; `--wait` and the heartbeat alert read it.
CREATE TABLE workers (
  id          uuid PRIMARY KEY,
  hostname    text NOT NULL,
  pid         integer NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  seen_at     timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE workers;
DROP TABLE events;
DROP FUNCTION events_append_only();
DROP TABLE deliveries;
DROP TABLE posts;
DROP TABLE renditions;
DROP TABLE media;
DROP TABLE accounts;
DROP TABLE members;
DROP TABLE workspaces;
