-- Up Migration
-- The per-account cap check counts recent publish attempts per account (core/caps.ts).
CREATE INDEX events_account_type_at ON events (account_id, type, at) WHERE account_id IS NOT NULL;

-- Down Migration
DROP INDEX events_account_type_at;
