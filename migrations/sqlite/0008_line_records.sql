-- Line records: which lines of a commit an agent wrote, as git-ai notes and Cursor's
-- Agent Trace record them (src/ci/lines.rs), uploaded through the CI upload endpoint.
-- Times are Unix nanoseconds.
--
-- One row per (repository, commit, file, agent, model): a file may hold lines of several
-- agents or models. lines: the file's agent-written lines of the commit's version of the
-- file, as ascending ranges ("1-5,8,10-20", src/facts.rs). sessions: the sessions or
-- conversations named, sorted, comma-separated ('' for none). source: 'git-ai' or
-- 'agent-trace'; upload_id: the upload that stored the row.
--
-- A newer upload of a commit's records from the same source replaces that source's rows
-- of the commit; the same document uploaded again changes nothing.
CREATE TABLE line_records (
    repo        TEXT    NOT NULL,
    sha         TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    agent       TEXT    NOT NULL,
    model       TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    sessions    TEXT    NOT NULL,
    lines       TEXT    NOT NULL,
    upload_id   INTEGER NOT NULL REFERENCES ci_uploads (id),
    received_ns INTEGER NOT NULL,
    PRIMARY KEY (repo, sha, path, agent, model)
) WITHOUT ROWID;
