-- Exposed secrets (issue 17, SPEC §9): a secret reported as exposed (pasted in the console, sent
-- to the API, or found by GitHub's secret scanning) comes without its key ID, so its key is
-- found by the stored HMAC alone: the current secret, the previous one kept for a grace period,
-- or one of the replaced secrets the tripwire remembers. One index each keeps a batch of a
-- thousand reported tokens to a few indexed reads.
CREATE INDEX access_keys_secret_hash ON access_keys (secret_hash);
CREATE INDEX access_keys_previous_secret_hash ON access_keys (previous_secret_hash);
CREATE INDEX replaced_secrets_secret_hash ON replaced_secrets (secret_hash);
