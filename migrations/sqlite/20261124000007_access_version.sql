-- A version of the role and group mappings behind every key's permissions. Key checks keep
-- those mappings in memory and read this number with each key: a change made anywhere (any
-- instance, any code path) bumps it in the same transaction, and the next check reloads.
INSERT INTO settings (name, value) VALUES ('access_version', '1');

CREATE TRIGGER role_permissions_inserted AFTER INSERT ON role_permissions
BEGIN UPDATE settings SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE name = 'access_version'; END;
CREATE TRIGGER role_permissions_updated AFTER UPDATE ON role_permissions
BEGIN UPDATE settings SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE name = 'access_version'; END;
CREATE TRIGGER role_permissions_deleted AFTER DELETE ON role_permissions
BEGIN UPDATE settings SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE name = 'access_version'; END;
CREATE TRIGGER group_roles_inserted AFTER INSERT ON group_roles
BEGIN UPDATE settings SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE name = 'access_version'; END;
CREATE TRIGGER group_roles_updated AFTER UPDATE ON group_roles
BEGIN UPDATE settings SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE name = 'access_version'; END;
CREATE TRIGGER group_roles_deleted AFTER DELETE ON group_roles
BEGIN UPDATE settings SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE name = 'access_version'; END;
