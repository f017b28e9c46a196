-- What became of a session's commits, kept with its analytics facts so the waste
-- figures read a column instead of probing links per session: 0 none authored, 1 some
-- but none in a repository whose default branch is known, 2 judged and none reached
-- the default branch within 14 days of the session's start, 3 one did. Computed when
-- the facts are; links, pushes and default branches that change it queue the session.
ALTER TABLE analytics_facts ADD COLUMN commits INTEGER NOT NULL DEFAULT 0;
