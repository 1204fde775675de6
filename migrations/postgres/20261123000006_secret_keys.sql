-- Service secret keys (SPEC §2.4): webhook signing keys, stored sealed under the master key, and
-- the bridge key, whose secret is stored as an HMAC like an access key's. Webhook endpoints and
-- their deliveries, sent from an outbox like the mail one, with one row per attempt.

CREATE TABLE secret_keys (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    client_id TEXT,
    secret_hash TEXT,
    sealed_secret TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    regenerated_at BIGINT,
    regenerated_by TEXT,
    last_used_at BIGINT
);
CREATE UNIQUE INDEX secret_keys_name ON secret_keys (name);
CREATE UNIQUE INDEX secret_keys_client_id ON secret_keys (client_id);

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    signing_key_id TEXT NOT NULL REFERENCES secret_keys (id),
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);

CREATE TABLE webhook_attempts (
    id BIGSERIAL PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL,
    attempted_at BIGINT NOT NULL,
    status BIGINT,
    latency_ms BIGINT NOT NULL,
    error TEXT
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
