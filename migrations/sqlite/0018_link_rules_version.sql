-- The version of the link rules the stored links were computed with
-- (graph::links::RULES_VERSION). When a release changes a rule, its first start finds an
-- older version here and queues every session to be linked again, in the background.
-- No row: links from before versions were kept, relinked once.
CREATE TABLE link_rules (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
