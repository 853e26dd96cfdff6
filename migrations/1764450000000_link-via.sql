-- Up Migration

-- Some platforms link through another platform's sign-in (Instagram through Facebook Login):
-- the link request remembers which, so the consent page, the callback and the profile read
-- follow the same variant. NULL: the platform's own sign-in.
ALTER TABLE link_requests ADD COLUMN via text;

-- Down Migration
ALTER TABLE link_requests DROP COLUMN via;
