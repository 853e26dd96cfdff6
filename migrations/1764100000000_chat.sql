-- Up Migration

-- Chat messages Reelay sent or read that later events refer to: the status message the worker
-- edits, the approval preview people react to, alerts with buttons. Keyed the way updates name
-- them (chat, chat id, message id), so a reaction or a button press finds its post in one lookup.
CREATE TABLE chat_messages (
  chat         text NOT NULL CHECK (chat IN ('telegram', 'discord')),
  chat_id      text NOT NULL,
  message_id   text NOT NULL,
  workspace_id text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  kind         text NOT NULL CHECK (kind IN ('status', 'preview', 'alert', 'video')),
  post_id      uuid REFERENCES posts (id) ON DELETE CASCADE,
  delivery_id  uuid REFERENCES deliveries (id) ON DELETE CASCADE,
  -- For `video`: how to fetch the file again (a command sent as a reply to an earlier video).
  data         jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- The edit throttle, shared by every process that edits the message (bot and workers):
  -- at most one edit per message every 2 s, never the same text twice.
  edited_at    timestamptz,
  text_hash    text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (chat, chat_id, message_id)
);
CREATE INDEX chat_messages_post ON chat_messages (post_id, kind);

-- One row per approver and post; the latest decision of each approver counts.
CREATE TABLE approvals (
  post_id    uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
  member_id  text NOT NULL,
  decision   text NOT NULL CHECK (decision IN ('approve', 'reject')),
  at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (post_id, member_id)
);

-- Chat notices that must go out once however many workers see the same change (a final failure,
-- an expired slot): the sender inserts the key and sends in one transaction.
CREATE TABLE chat_notices (
  key  text PRIMARY KEY,
  at   timestamptz NOT NULL DEFAULT now()
);

-- Split posts: part i of n of the same request, in order.
ALTER TABLE posts ADD COLUMN part integer, ADD COLUMN parts integer;

-- Down Migration
ALTER TABLE posts DROP COLUMN part, DROP COLUMN parts;
DROP TABLE chat_notices;
DROP TABLE approvals;
DROP TABLE chat_messages;
