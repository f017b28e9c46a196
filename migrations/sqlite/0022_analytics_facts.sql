-- Organisation analytics' facts (GET /api/v1/analytics): each session reduced to what
-- the API sums, so a 90-day view reads compact indexed rows instead of every session's
-- telemetry. Rows are recomputed from the session's facts whenever it changes (never
-- incremented): the OTLP writer queues a session in analytics_queue in the transaction
-- that stores its telemetry, and a change of the identities file or the price table
-- (analytics_basis) queues every session.

-- One row per session and team it counts for; first_team is 1 on exactly one of them
-- (what every grouping but team reads, so a session counts once).
CREATE TABLE analytics_facts (
    started_ns       INTEGER NOT NULL,
    session_id       INTEGER NOT NULL,
    team             TEXT    NOT NULL,
    first_team       INTEGER NOT NULL,
    -- UTC days since 1970-01-01 of started_ns.
    day              INTEGER NOT NULL,
    person           TEXT,
    agent            TEXT,
    repo             TEXT,
    org              TEXT,
    input            INTEGER NOT NULL,
    output           INTEGER NOT NULL,
    cache_read       INTEGER NOT NULL,
    cache_creation   INTEGER NOT NULL,
    reasoning        INTEGER NOT NULL,
    -- NULL: no cost (none reported, no price for its models).
    cost             REAL,
    cost_estimated   INTEGER NOT NULL,
    -- The quantities the agent reports; NULL: not reported.
    requests         REAL,
    errors           REAL,
    prompts          REAL,
    tool_invocations REAL,
    tool_failures    REAL,
    tool_rejections  REAL,
    lines_added      REAL,
    lines_removed    REAL,
    files_modified   REAL,
    active_seconds   REAL,
    PRIMARY KEY (started_ns, session_id, team)
) WITHOUT ROWID;
CREATE INDEX analytics_facts_session ON analytics_facts (session_id);

-- One row per session and model it used ('' when it names none); the session's tokens
-- and cost as the model grouping splits them. cost_how: 0 exact, 1 estimated from the
-- price table, 2 a reported cost split by price, 3 split by tokens.
CREATE TABLE analytics_model_facts (
    started_ns     INTEGER NOT NULL,
    session_id     INTEGER NOT NULL,
    model          TEXT    NOT NULL,
    first_model    INTEGER NOT NULL,
    day            INTEGER NOT NULL,
    person         TEXT,
    input          INTEGER NOT NULL,
    output         INTEGER NOT NULL,
    cache_read     INTEGER NOT NULL,
    cache_creation INTEGER NOT NULL,
    reasoning      INTEGER NOT NULL,
    cost           REAL,
    cost_how       INTEGER NOT NULL,
    PRIMARY KEY (started_ns, session_id, model)
) WITHOUT ROWID;
CREATE INDEX analytics_model_facts_session ON analytics_model_facts (session_id);

-- Sessions whose analytics facts are to be computed again.
CREATE TABLE analytics_queue (
    session_id INTEGER PRIMARY KEY,
    touched_ns INTEGER NOT NULL
);

-- What the stored facts were computed with (identities, prices, rules' version).
CREATE TABLE analytics_basis (
    id          INTEGER PRIMARY KEY,
    fingerprint TEXT    NOT NULL
);

-- One row per pull request: what analytics' impact metrics read, written each time its
-- report is built (so it follows everything that changes the report). Teams are
-- resolved from author and repository when read.
CREATE TABLE pull_facts (
    repo              TEXT    NOT NULL,
    number            INTEGER NOT NULL,
    author            TEXT,
    state             TEXT    NOT NULL,
    merged_ns         INTEGER,
    -- The earliest author time of its commits.
    first_commit_ns   INTEGER,
    -- A commit of it is agent-assisted (a linked session or an agent trailer).
    assisted          INTEGER NOT NULL,
    -- The agents of its sessions and trailers, one per line.
    agents            TEXT    NOT NULL,
    cost              REAL,
    cost_estimated    INTEGER NOT NULL,
    tokens            INTEGER,
    lines_added       INTEGER,
    agent_lines_added INTEGER,
    ci_first_run_pass REAL,
    incidents         INTEGER NOT NULL,
    deployments       INTEGER NOT NULL,
    built_ns          INTEGER NOT NULL,
    PRIMARY KEY (repo, number)
) WITHOUT ROWID;
CREATE INDEX pull_facts_merged ON pull_facts (merged_ns);
