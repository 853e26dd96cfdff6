-- Up Migration

-- One-time account-linking links handed out by /link. Only hashes of the link token and of the
-- OAuth `state` are stored, so a database read cannot be turned into a working link; the PKCE
-- verifier is encrypted like every other secret.
CREATE TABLE link_requests (
  token_hash    text PRIMARY KEY,
  state_hash    text UNIQUE,
  workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  member_id     text NOT NULL,
  platform      text NOT NULL,
  -- Where to announce the result (`telegram:<chat id>`, `discord:<channel id>`).
  chat          text,
  verifier      bytea,
  key_id        text,
  expires_at    timestamptz NOT NULL,
  -- The link was opened (the consent page was handed out); a second open is refused.
  opened_at     timestamptz,
  -- The callback (or the Bluesky form) used it; a replay is refused.
  used_at       timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX link_requests_expiry ON link_requests (expires_at);

-- Down Migration
DROP TABLE link_requests;
