-- A fencing token per claim of an email or a webhook delivery: the claim writes a fresh one,
-- and an outcome is written only with the token of the current claim, into a row still queued.
-- A sender whose lease ran out while its conversation stalled (another sender has since taken
-- the row over) can then no longer write its outcome over the newer one.
ALTER TABLE outbox ADD COLUMN lease_token TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN lease_token TEXT;
