-- Second factors (issue 16): an authenticator app (TOTP) and recovery codes.
-- The app's secret is sealed under the master key (it must be read back to check codes) and
-- re-sealed by `master-key rotate`. A row with no confirmed_at is an enrolment waiting for its
-- first code; it does not count as a second factor. last_step is the time step of the last
-- accepted code: a code for that step or an earlier one is refused (each code is used once).
CREATE TABLE totp_factors (
    user_id TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_step BIGINT NOT NULL DEFAULT 0
);

-- Ten single-use recovery codes per person, stored as a keyed hash (HMAC-SHA-256 under the
-- key-hash key of the vault), never in clear. Generating new ones deletes the old ones.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
