-- Passkeys (WebAuthn, issue 16). Each person has one random WebAuthn user handle, which their
-- authenticators keep with every passkey and hand back when a passkey signs in on its own.
CREATE TABLE passkey_handles (
    user_id TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle TEXT NOT NULL UNIQUE
);

-- A person's passkeys. `credential` is webauthn-rs's record of the passkey as JSON: the public
-- key, the signature counter and the backup state (public material only, so not sealed); it is
-- rewritten after a sign-in that changes the counter or backup state.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- Ceremonies under way: the challenge state webauthn-rs keeps between the options and the
-- browser's answer, found by the SHA-256 of a random token the browser sends back, used once,
-- and good for five minutes. `purpose` is 'register', 'sign_in' or 'second_factor'; `user_id` is
-- empty for a sign-in by passkey alone, whose person is not known until the answer.
CREATE TABLE passkey_ceremonies (
    token_hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX passkey_ceremonies_expires ON passkey_ceremonies (expires_at);
