-- Key search is case-insensitive for every alphabet: the application stores the name
-- lower-cased by Unicode rules (SQLite's LOWER() only folds ASCII).
ALTER TABLE access_keys ADD COLUMN search_name TEXT NOT NULL DEFAULT '';
UPDATE access_keys SET search_name = LOWER(name);
