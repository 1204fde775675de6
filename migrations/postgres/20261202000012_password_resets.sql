-- Password reset links (SPEC §8): a single-use link valid for an hour, emailed sealed through the
-- outbox. Only a SHA-256 of the token is stored. A newer request supersedes the older links of
-- the same person (superseded_at), kept so the audit log can tell a superseded link from an
-- unknown one. user_id is NULL for the row a request for an unknown address writes and rolls
-- back (both answers do the same work).
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    superseded_at BIGINT
);
CREATE INDEX password_resets_user ON password_resets (user_id);
