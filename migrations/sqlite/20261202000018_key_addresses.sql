-- Last used addresses (issue 17, SPEC §9): the last five distinct client addresses each key was
-- accepted from, with when each was first and last seen, the latest user agent and how many
-- uses were counted. Written in batches from memory (not once per request); deleted with the key.
CREATE TABLE key_addresses (
    key_id TEXT NOT NULL REFERENCES access_keys (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    uses BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, address)
);
