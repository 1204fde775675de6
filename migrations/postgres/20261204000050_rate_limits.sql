-- Per-key rate limits (issue 18, SPEC §10): an optional token bucket on a key, requests per
-- second (fractions allowed) and burst (the bucket's size). Both NULL: no limit.
ALTER TABLE access_keys ADD COLUMN rate_per_second DOUBLE PRECISION;
ALTER TABLE access_keys ADD COLUMN rate_burst BIGINT;

-- The shared bucket of a limited key, for every instance on this database: the tokens left at
-- `updated_ms` (unix milliseconds). Instances take tokens from it in small leases (one short
-- write transaction each) and spend them from memory; see docs/decisions.md.
CREATE TABLE key_rate_buckets (
    key_id TEXT NOT NULL PRIMARY KEY REFERENCES access_keys (id) ON DELETE CASCADE,
    tokens DOUBLE PRECISION NOT NULL,
    updated_ms BIGINT NOT NULL
);
