-- GitHub App webhooks: deliveries as received, and the nodes and links they imply
-- (DESIGN.md §3–4). Times are Unix nanoseconds.

-- Every verified delivery of a known event, stored before it is acknowledged.
-- status: pending (stored, not yet applied), processed, failed (with the reason).
CREATE TABLE deliveries (
    delivery_id TEXT    PRIMARY KEY,
    event       TEXT    NOT NULL,
    action      TEXT,
    repo        TEXT,
    received_ns INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    error       TEXT,
    payload     BLOB
) WITHOUT ROWID;
CREATE INDEX deliveries_pending ON deliveries (received_ns) WHERE status = 'pending';
CREATE INDEX deliveries_by_status ON deliveries (status, received_ns);

CREATE TABLE installations (
    id        INTEGER PRIMARY KEY,
    account   TEXT,
    state     TEXT    NOT NULL,
    version   TEXT    NOT NULL
);

-- Repositories an installation covers; in_scope flips with added/removed events.
CREATE TABLE installation_repositories (
    installation_id INTEGER NOT NULL,
    repo            TEXT    NOT NULL,
    in_scope        INTEGER NOT NULL,
    version         TEXT    NOT NULL,
    PRIMARY KEY (installation_id, repo)
) WITHOUT ROWID;

-- Commits. Git objects never change, so any delivery's copy fills the gaps of another's.
CREATE TABLE commits (
    repo            TEXT    NOT NULL,
    sha             TEXT    NOT NULL,
    message         TEXT,
    author_name     TEXT,
    author_email    TEXT,
    author_login    TEXT,
    committer_name  TEXT,
    committer_email TEXT,
    authored_ns     INTEGER,
    PRIMARY KEY (repo, sha)
) WITHOUT ROWID;

CREATE TABLE commit_trailers (
    repo     TEXT    NOT NULL,
    sha      TEXT    NOT NULL,
    position INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (repo, sha, position)
) WITHOUT ROWID;

-- Agents a commit's trailers name (agent-assisted before any telemetry arrives).
CREATE TABLE commit_agents (
    repo     TEXT NOT NULL,
    sha      TEXT NOT NULL,
    agent    TEXT NOT NULL,
    evidence TEXT NOT NULL,
    PRIMARY KEY (repo, sha, agent)
) WITHOUT ROWID;

CREATE TABLE commit_files (
    repo   TEXT NOT NULL,
    sha    TEXT NOT NULL,
    path   TEXT NOT NULL,
    change TEXT NOT NULL,
    PRIMARY KEY (repo, sha, path)
) WITHOUT ROWID;

-- Refs a commit was pushed to (refs/heads/<branch>).
CREATE TABLE commit_refs (
    repo TEXT NOT NULL,
    sha  TEXT NOT NULL,
    ref  TEXT NOT NULL,
    PRIMARY KEY (repo, ref, sha)
) WITHOUT ROWID;
CREATE INDEX commit_refs_sha ON commit_refs (repo, sha);

-- Typed rows whose state changes keep a `version` (updated time, then a state rank):
-- an event only overwrites an older version, so arrival order does not matter.
CREATE TABLE pull_requests (
    repo             TEXT    NOT NULL,
    number           INTEGER NOT NULL,
    title            TEXT,
    state            TEXT    NOT NULL,
    draft            INTEGER NOT NULL,
    merged           INTEGER NOT NULL,
    author_login     TEXT,
    head_ref         TEXT,
    head_sha         TEXT,
    base_ref         TEXT,
    base_sha         TEXT,
    merge_commit_sha TEXT,
    created_ns       INTEGER,
    updated_ns       INTEGER,
    closed_ns        INTEGER,
    merged_ns        INTEGER,
    version          TEXT    NOT NULL,
    PRIMARY KEY (repo, number)
) WITHOUT ROWID;

-- CI: workflow runs and jobs (GitHub Actions), check suites and runs (other apps),
-- commit statuses. id + attempt identify a run; attempt is 1 where GitHub has none.
CREATE TABLE ci_runs (
    kind         TEXT    NOT NULL,
    id           INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    repo         TEXT    NOT NULL,
    name         TEXT,
    event        TEXT,
    app          TEXT,
    parent_id    INTEGER,
    head_sha     TEXT    NOT NULL,
    head_branch  TEXT,
    status       TEXT,
    conclusion   TEXT,
    trace_id     BLOB,
    started_ns   INTEGER,
    completed_ns INTEGER,
    updated_ns   INTEGER,
    version      TEXT    NOT NULL,
    PRIMARY KEY (kind, id, attempt)
) WITHOUT ROWID;
CREATE INDEX ci_runs_head ON ci_runs (repo, head_sha);
CREATE INDEX ci_runs_trace ON ci_runs (trace_id) WHERE trace_id IS NOT NULL;

CREATE TABLE deployments (
    id          INTEGER PRIMARY KEY,
    repo        TEXT    NOT NULL,
    sha         TEXT    NOT NULL,
    ref         TEXT,
    environment TEXT    NOT NULL,
    creator     TEXT,
    created_ns  INTEGER
);
CREATE INDEX deployments_sha ON deployments (repo, sha);
CREATE INDEX deployments_env ON deployments (repo, environment, created_ns);

-- A deployment's state is its newest status (by time, then ID).
CREATE TABLE deployment_statuses (
    id            INTEGER PRIMARY KEY,
    deployment_id INTEGER NOT NULL,
    state         TEXT    NOT NULL,
    environment   TEXT,
    created_ns    INTEGER NOT NULL
);
CREATE INDEX deployment_statuses_deployment ON deployment_statuses (deployment_id, created_ns, id);

-- Issues, and whether they carry the incident label (kept for every issue seen, so a
-- late `unlabeled` cannot be overtaken by an earlier `labeled`).
CREATE TABLE incidents (
    repo        TEXT    NOT NULL,
    number      INTEGER NOT NULL,
    title       TEXT,
    state       TEXT    NOT NULL,
    is_incident INTEGER NOT NULL,
    root_cause TEXT,
    opened_ns  INTEGER,
    closed_ns  INTEGER,
    version    TEXT    NOT NULL,
    PRIMARY KEY (repo, number)
) WITHOUT ROWID;

-- Every link of the graph: (from node, to node, relation) with its evidence.
-- Node keys: commit `owner/repo@sha`, pull request `owner/repo#N`, CI run
-- `kind:id:attempt`, deployment `deployment:id`, incident `owner/repo!N`, session key.
CREATE TABLE links (
    from_kind     TEXT    NOT NULL,
    from_key      TEXT    NOT NULL,
    to_kind       TEXT    NOT NULL,
    to_key        TEXT    NOT NULL,
    relation      TEXT    NOT NULL,
    evidence      TEXT    NOT NULL,
    confidence    REAL    NOT NULL,
    first_seen_ns INTEGER NOT NULL,
    PRIMARY KEY (from_kind, from_key, relation, to_kind, to_key)
) WITHOUT ROWID;
CREATE INDEX links_to ON links (to_kind, to_key, relation);
