-- Key policy (issue 17, SPEC §9): the inactivity rule's notices. A key unused since `since`
-- (the latest of its creation, its last use and its last change) is warned once and
-- deactivated once per `since`; a use or a change moves `since` and so re-arms both. The
-- primary key makes each notice happen exactly once, however many instances scan at once.
CREATE TABLE inactivity_notices (
    key_id TEXT NOT NULL REFERENCES access_keys (id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    since BIGINT NOT NULL,
    noticed_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, stage, since)
);
