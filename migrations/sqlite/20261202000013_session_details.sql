-- What the sessions list on /account/security shows of each session: a public ID to name it in
-- forms (never the session key or its hash), the device (a short label from the User-Agent),
-- the client address at sign-in, when it signed in and when it was last seen (written at most
-- once a minute).
ALTER TABLE sessions ADD COLUMN public_id TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN device TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN client_ip TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN signed_in_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
-- Sessions from before: named by a part of their key's hash (itself a hash of a random key).
UPDATE sessions SET public_id = substr(id_hash, 1, 32), signed_in_at = created_at,
    last_seen_at = created_at;
