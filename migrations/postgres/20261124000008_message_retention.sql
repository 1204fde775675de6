-- Finished emails and webhook deliveries are purged by age (KEYWARD_MESSAGE_RETENTION_DAYS);
-- the outbox already has an index on created_at.
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
