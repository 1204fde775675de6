-- A version of the role and group mappings behind every key's permissions. Key checks keep
-- those mappings in memory and read this number with each key: a change made anywhere (any
-- instance, any code path) bumps it in the same transaction, and the next check reloads.
INSERT INTO settings (name, value) VALUES ('access_version', '1');

CREATE FUNCTION bump_access_version() RETURNS trigger AS $$
BEGIN
    UPDATE settings SET value = (value::bigint + 1)::text WHERE name = 'access_version';
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER role_permissions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON role_permissions FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();
CREATE TRIGGER group_roles_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON group_roles FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version();
