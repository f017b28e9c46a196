-- When a commit reached a branch, and each repository's default branch (SQLite 0029).
ALTER TABLE commit_refs ADD COLUMN pushed_ns BIGINT;
CREATE TABLE default_branches (
    repo   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    branch TEXT COLLATE "C" NOT NULL
);
