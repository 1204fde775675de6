-- Foundation schema: tenant settings, users, groups, roles, permissions, sessions, audit log,
-- bell notifications, first-run setup tokens and rate-limit counters. Timestamps are unix
-- seconds (BIGINT); flags are 0/1 integers; ids are text.

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT,
    active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_sign_in_at BIGINT
);
CREATE UNIQUE INDEX users_email ON users (email);

CREATE TABLE user_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    builtin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX user_groups_name ON user_groups (name);

CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    builtin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX roles_name ON roles (name);

CREATE TABLE permissions (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL
);

CREATE TABLE role_permissions (
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission TEXT NOT NULL REFERENCES permissions (name),
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE group_roles (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, role_id)
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    user_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id TEXT,
    actor_label TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL DEFAULT '',
    target_id TEXT NOT NULL DEFAULT '',
    target_label TEXT NOT NULL DEFAULT '',
    client_ip TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at);
CREATE INDEX audit_log_action ON audit_log (action, at);
CREATE INDEX audit_log_target ON audit_log (target_id, at);

CREATE TABLE notifications (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    link TEXT NOT NULL DEFAULT '',
    read_at BIGINT
);
CREATE INDEX notifications_user ON notifications (user_id, read_at);

CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE rate_limits (
    bucket TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

-- Built-in permissions, roles and the Administrators group.
INSERT INTO permissions (name, description) VALUES
    ('users:read', 'See users, groups and roles'),
    ('users:write', 'Add, disable and enable users'),
    ('groups:write', 'Create groups and change their members and roles'),
    ('roles:write', 'Create and change custom roles'),
    ('keys:read', 'See access keys and their details'),
    ('keys:write', 'Create, change, regenerate and delete access keys'),
    ('keys:verify', 'Ask whether a presented key is valid'),
    ('config:write', 'Manage secret keys, webhooks and configuration'),
    ('audit:read', 'Read the audit log and the mail log');

INSERT INTO roles (id, name, description, builtin, created_at) VALUES
    ('role_tenant_admin', 'Tenant Administrator', 'Every permission', 1, 0),
    ('role_key_admin', 'Key Administrator', 'Manages every access key', 1, 0),
    ('role_read_only', 'Read Only', 'Sees users, keys and the audit log', 1, 0),
    ('role_integration', 'Integration', 'Verifies keys presented to other services', 1, 0);

INSERT INTO role_permissions (role_id, permission) VALUES
    ('role_tenant_admin', 'users:read'), ('role_tenant_admin', 'users:write'),
    ('role_tenant_admin', 'groups:write'), ('role_tenant_admin', 'roles:write'),
    ('role_tenant_admin', 'keys:read'), ('role_tenant_admin', 'keys:write'),
    ('role_tenant_admin', 'keys:verify'), ('role_tenant_admin', 'config:write'),
    ('role_tenant_admin', 'audit:read'),
    ('role_key_admin', 'users:read'), ('role_key_admin', 'keys:read'),
    ('role_key_admin', 'keys:write'), ('role_key_admin', 'keys:verify'),
    ('role_read_only', 'users:read'), ('role_read_only', 'keys:read'),
    ('role_read_only', 'audit:read'),
    ('role_integration', 'keys:verify');

INSERT INTO user_groups (id, name, description, builtin, created_at) VALUES
    ('grp_administrators', 'Administrators', 'Tenant administrators: manage users, keys and configuration', 1, 0);

INSERT INTO group_roles (group_id, role_id) VALUES ('grp_administrators', 'role_tenant_admin');
