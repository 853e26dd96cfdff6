-- Up Migration

-- `/settings alerts CHAT` naming another chat asks that chat first: an admin there must accept
-- before the workspace's alerts (and the buttons on them) go there. The code travels only in the
-- Accept/Decline buttons posted into that chat; only its hash is stored. One open request per
-- workspace: a newer one (or `here`/`off`) withdraws the older.
CREATE TABLE alerts_requests (
  code_hash     text PRIMARY KEY,
  workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  -- The chat that asked, to hear the answer, and the chat asked (`telegram:<chat id>`, `discord:<channel id>`).
  from_chat     text NOT NULL,
  from_name     text NOT NULL,
  target_chat   text NOT NULL,
  target_name   text NOT NULL,
  requested_by  text NOT NULL,
  expires_at    timestamptz NOT NULL,
  -- Set once: accepted, declined, or withdrawn; a second press is refused.
  decision      text CHECK (decision IN ('accepted', 'declined', 'withdrawn')),
  decided_at    timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alerts_requests_open ON alerts_requests (workspace_id) WHERE decision IS NULL;

-- Down Migration
DROP TABLE alerts_requests;
