-- Replaced-secret tripwire (issue 17, SPEC §9): the HMAC of every secret a key had before its
-- current one (never the secret), kept as long as the key exists. A presentation of one of them
-- outside its grace period is refused like any wrong secret and recorded here (how often, when
-- last) and in the audit log; `told_at` is when the key's people were last told, so a program
-- that keeps presenting an old secret does not flood their inbox.
CREATE TABLE replaced_secrets (
    key_id TEXT NOT NULL REFERENCES access_keys (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    replaced_at BIGINT NOT NULL,
    presented_count BIGINT NOT NULL DEFAULT 0,
    last_presented_at BIGINT,
    told_at BIGINT,
    PRIMARY KEY (key_id, secret_hash)
);

-- The secret a key replaced before this table existed is the one still kept for its grace.
INSERT INTO replaced_secrets (key_id, secret_hash, replaced_at)
SELECT id, previous_secret_hash, COALESCE(secret_regenerated_at, created_at)
FROM access_keys WHERE previous_secret_hash IS NOT NULL;
