-- When a commit reached a branch, and each repository's default branch: what the
-- 14-day waste figures read (a session's commits that never reached the default
-- branch). Rows stored before this migration have no push time.
ALTER TABLE commit_refs ADD COLUMN pushed_ns INTEGER;
CREATE TABLE default_branches (
    repo   TEXT NOT NULL PRIMARY KEY,
    branch TEXT NOT NULL
) WITHOUT ROWID;
