-- Up Migration

-- Operational alerts that must fire once per incident however many processes watch for them:
-- a process raises or clears an alert only by flipping `active` with a guarded UPDATE.
CREATE TABLE alerts (
  name        text PRIMARY KEY,
  active      boolean NOT NULL DEFAULT false,
  since       timestamptz,
  changed_at  timestamptz NOT NULL DEFAULT now(),
  data        jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- The retention sweep looks for finished posts by media.
CREATE INDEX posts_media ON posts (media_id);

-- Down Migration
DROP INDEX posts_media;
DROP TABLE alerts;
