-- Usage counts by day (issue 18): the same counts as key_usage, added up per UTC day (unix
-- seconds at the start of the day), written in the same transaction as the hourly ones. The
-- overview's busiest keys read whole days here and only the first, partial day of their
-- window by the hour: a key used every hour of a week is 8 rows here instead of 168, which at
-- 100,000 keys is what the grouping costs. Deleted with the key; kept as long as the hours.
CREATE TABLE key_usage_daily (
    key_id TEXT NOT NULL REFERENCES access_keys (id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (key_id, day, outcome)
);
CREATE INDEX key_usage_daily_outcome ON key_usage_daily (outcome, day, key_id, count);
INSERT INTO key_usage_daily (key_id, day, outcome, count)
    SELECT key_id, hour - hour % 86400, outcome, SUM(count) FROM key_usage
    GROUP BY key_id, hour - hour % 86400, outcome;
