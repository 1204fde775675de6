-- Access keys: ID and a keyed hash of the secret (never the secret), its type, owner (NULL for
-- a tenant key), state, expiry, assignments and last use. A user's personal key count lives on
-- the user row so the two-key limit is one conditional UPDATE inside the creating transaction.

ALTER TABLE users ADD COLUMN personal_key_count BIGINT NOT NULL DEFAULT 0;

CREATE TABLE access_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    key_type TEXT NOT NULL,
    owner_user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    previous_secret_hash TEXT,
    previous_valid_until BIGINT,
    secret_regenerated_at BIGINT,
    active BIGINT NOT NULL DEFAULT 1,
    locked BIGINT NOT NULL DEFAULT 0,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT,
    allowed_networks TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    created_by TEXT,
    created_by_label TEXT NOT NULL,
    modified_at BIGINT NOT NULL,
    modified_by TEXT,
    modified_by_label TEXT NOT NULL,
    last_used_at BIGINT,
    last_used_ip TEXT,
    last_used_agent TEXT
);
CREATE INDEX access_keys_owner ON access_keys (owner_user_id, created_at);
CREATE INDEX access_keys_name ON access_keys (name);
CREATE INDEX access_keys_created ON access_keys (created_at);
CREATE INDEX access_keys_expires ON access_keys (expires_at);
CREATE INDEX access_keys_last_used ON access_keys (last_used_at);

CREATE TABLE key_groups (
    key_id TEXT NOT NULL REFERENCES access_keys (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (key_id, group_id)
);
CREATE INDEX key_groups_group ON key_groups (group_id);

CREATE TABLE key_roles (
    key_id TEXT NOT NULL REFERENCES access_keys (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (key_id, role_id)
);
CREATE INDEX key_roles_role ON key_roles (role_id);
