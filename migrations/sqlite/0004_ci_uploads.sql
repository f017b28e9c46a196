-- CI uploads from the GitHub Action: coverage and test reports (src/ci/store.rs).
-- Times are Unix nanoseconds.

-- One row per uploaded file. A file is stored once per (run, attempt, job, content):
-- the Action retried, or the same step re-run, changes nothing.
-- flags: the upload's flags, sorted, comma-separated ('' for none).
-- covered/coverable for coverage files; passed/failed/skipped for test reports
-- (failed counts errors too).
CREATE TABLE ci_uploads (
    id          INTEGER PRIMARY KEY,
    repo        TEXT    NOT NULL,
    sha         TEXT    NOT NULL,
    ref         TEXT    NOT NULL,
    run_id      INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    job         TEXT    NOT NULL,
    pr_number   INTEGER,
    flags       TEXT    NOT NULL,
    file_name   TEXT    NOT NULL,
    format      TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    size_bytes  INTEGER NOT NULL,
    covered     INTEGER,
    coverable   INTEGER,
    passed      INTEGER,
    failed      INTEGER,
    skipped     INTEGER,
    received_ns INTEGER NOT NULL,
    UNIQUE (repo, run_id, attempt, job, digest)
);
CREATE INDEX ci_uploads_sha ON ci_uploads (repo, sha);

-- Line coverage per uploaded file and source path, as two sets of line numbers written
-- as ascending ranges ("1-5,8,10-20"): covered lines, and coverable lines not covered.
-- Coverage runs in long stretches, so a 100k-line report is a few KB per file here.
CREATE TABLE ci_coverage (
    upload_id INTEGER NOT NULL REFERENCES ci_uploads (id),
    path      TEXT    NOT NULL,
    covered   TEXT    NOT NULL,
    missed    TEXT    NOT NULL,
    PRIMARY KEY (upload_id, path)
) WITHOUT ROWID;

-- Test cases of a JUnit upload, in report order.
CREATE TABLE ci_test_cases (
    upload_id  INTEGER NOT NULL REFERENCES ci_uploads (id),
    position   INTEGER NOT NULL,
    suite      TEXT,
    classname  TEXT,
    name       TEXT    NOT NULL,
    file       TEXT,
    outcome    TEXT    NOT NULL,
    duration_s REAL,
    message    TEXT,
    PRIMARY KEY (upload_id, position)
) WITHOUT ROWID;
