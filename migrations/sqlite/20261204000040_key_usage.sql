-- Usage counts (issue 18, SPEC §10): per key and hour (unix seconds at the start of the UTC
-- hour), how many presentations were accepted and how many refused, by reason. Counted in
-- memory and added in batches: each instance adds its own counts to the row
-- (`count = count + excluded.count`), so nothing is lost when several write at once. Kept
-- KEYWARD_USAGE_RETENTION_DAYS; deleted with the key.
CREATE TABLE key_usage (
    key_id TEXT NOT NULL REFERENCES access_keys (id) ON DELETE CASCADE,
    hour BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (key_id, hour, outcome)
);
-- Retention and the overview read by hour across keys.
CREATE INDEX key_usage_hour ON key_usage (hour);
