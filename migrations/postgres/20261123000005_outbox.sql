-- Expiry notices and the email outbox (SPEC §4).

-- When the current expiry was set: notice stages whose moment came before it are stale.
ALTER TABLE access_keys ADD COLUMN expiry_set_at BIGINT NOT NULL DEFAULT 0;
UPDATE access_keys SET expiry_set_at = modified_at;

-- One row per key, expiry time and stage (days before expiry; 0 = expired): the row is the
-- "exactly once", written in the transaction that queues the emails.
CREATE TABLE expiry_notices (
    key_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    stage BIGINT NOT NULL,
    noticed_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, expires_at, stage)
);

-- Every email keyward sends, one recipient a row. Bodies that carry a credential (invitation
-- links) are sealed with a key derived from the master key and emptied once sent.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    key_id TEXT,
    recipient TEXT NOT NULL,
    recipient_name TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    sealed BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_error TEXT,
    server_response TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_created ON outbox (created_at);
CREATE INDEX outbox_key ON outbox (key_id, state);
