-- Up Migration
-- A JPEG frame of each rendition: the Pinterest cover, and the chat's approval preview.
ALTER TABLE renditions ADD COLUMN thumbnail bytea;
-- Per-delivery choices made at intake (e.g. the Pinterest board named in `to pinterest:<board>`).
ALTER TABLE deliveries ADD COLUMN options jsonb NOT NULL DEFAULT '{}'::jsonb;

-- Down Migration
ALTER TABLE deliveries DROP COLUMN options;
ALTER TABLE renditions DROP COLUMN thumbnail;
