-- Who made a key inactive or locked it: 'owner' (the owner of a personal key, or a key acting on
-- itself), 'administrator' (someone managing the tenant's keys) or, for locks, 'lockout' (wrong
-- secrets in a row). The owner of a personal key may reverse only what the owner did (SPEC §11).
ALTER TABLE access_keys ADD COLUMN deactivated_by TEXT;
ALTER TABLE access_keys ADD COLUMN locked_by TEXT;
-- Earlier decisions were not recorded: a lock after failures is the lockout's, anything else is
-- taken as an administrator's, so that an owner cannot undo it.
UPDATE access_keys SET locked_by = 'lockout' WHERE locked = 1 AND failed_attempts > 0;
UPDATE access_keys SET locked_by = 'administrator' WHERE locked = 1 AND locked_by IS NULL;
UPDATE access_keys SET deactivated_by = 'administrator' WHERE active = 0;
