-- Usage pictures (issue 18): the overview's busiest keys and refusals by reason, and the key
-- list's "refused lately" filter, read one outcome over a window of hours. This index finds
-- those rows and holds what they need (key and count), so neither reads the accepted rows
-- nor the table. (The number leaves room below it for the other issue-18 branches.)
CREATE INDEX key_usage_outcome ON key_usage (outcome, hour, key_id, count);
