-- Single-use form tokens: a form that shows a secret once (Add key, Generate new secret key)
-- carries a random token, spent in the transaction that creates the secret. A second post of
-- the same form (a reload, a double click) finds it spent and creates nothing. Only the token's
-- SHA-256 is kept, with the key it made, for a day.
CREATE TABLE form_submissions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX form_submissions_created ON form_submissions (created_at);
