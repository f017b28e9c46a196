-- Correlation and PR reports.

-- The installation each repository's deliveries came through (for API calls).
CREATE TABLE repo_installations (
    repo            TEXT    PRIMARY KEY,
    installation_id INTEGER NOT NULL
) WITHOUT ROWID;

-- A pull request's commits as the GitHub API lists them.
CREATE TABLE pull_request_commits (
    repo     TEXT    NOT NULL,
    number   INTEGER NOT NULL,
    sha      TEXT    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (repo, number, sha)
) WITHOUT ROWID;

-- Patches fetched from the GitHub API. A commit's never change: cached by SHA. A pull
-- request's are cached per head SHA.
CREATE TABLE commit_patches (
    repo  TEXT NOT NULL,
    sha   TEXT NOT NULL,
    files TEXT NOT NULL,
    PRIMARY KEY (repo, sha)
) WITHOUT ROWID;

CREATE TABLE pull_request_patches (
    repo     TEXT    NOT NULL,
    number   INTEGER NOT NULL,
    head_sha TEXT    NOT NULL,
    files    TEXT    NOT NULL,
    PRIMARY KEY (repo, number)
) WITHOUT ROWID;

-- The last report published per pull request, to leave an unchanged comment alone.
CREATE TABLE published_reports (
    repo         TEXT    NOT NULL,
    number       INTEGER NOT NULL,
    digest       TEXT    NOT NULL,
    comment_id   INTEGER,
    published_ns INTEGER NOT NULL,
    PRIMARY KEY (repo, number)
) WITHOUT ROWID;

-- Lookups the linker makes.
CREATE INDEX commits_author_email ON commits (author_email, authored_ns);
CREATE INDEX sessions_user_id ON sessions (user_id, started_ns DESC);

-- Pull requests whose report must be rebuilt and published, and not before when.
-- touched_ns is the last time something changed: a publication that started before it
-- leaves the row queued.
CREATE TABLE report_queue (
    repo       TEXT    NOT NULL,
    number     INTEGER NOT NULL,
    due_ns     INTEGER NOT NULL,
    touched_ns INTEGER NOT NULL,
    PRIMARY KEY (repo, number)
) WITHOUT ROWID;
CREATE INDEX report_queue_due ON report_queue (due_ns);
