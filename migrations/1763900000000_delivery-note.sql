-- Up Migration
-- Plain words an adapter adds beside the link ("awaiting TikTok review", "sent to your drafts").
ALTER TABLE deliveries ADD COLUMN note text;

-- Down Migration
ALTER TABLE deliveries DROP COLUMN note;
