-- Up Migration

-- When the current run of attempts began: a platform that does not answer is retried for a while
-- (RETRY_POLICY.transientWindowSeconds), not only a number of times. Cleared with the attempts when
-- someone retries a failed delivery. Deliveries already retrying count from their last change.
ALTER TABLE deliveries ADD COLUMN first_attempt_at timestamptz;
UPDATE deliveries SET first_attempt_at = updated_at WHERE attempts > 0;

-- Down Migration

ALTER TABLE deliveries DROP COLUMN first_attempt_at;
