-- Organisation analytics' facts (SQLite 0022) (GET /api/v1/analytics): each session reduced to what
-- the API sums, so a 90-day view reads compact indexed rows instead of every session's
-- telemetry. Rows are recomputed from the session's facts whenever it changes (never
-- incremented): the OTLP writer queues a session in analytics_queue in the transaction
-- that stores its telemetry, and a change of the identities file or the price table
-- (analytics_basis) queues every session.

-- One row per session and team it counts for; first_team is 1 on exactly one of them
-- (what every grouping but team reads, so a session counts once).
CREATE TABLE analytics_facts (
    started_ns       BIGINT NOT NULL,
    session_id       BIGINT NOT NULL,
    team             TEXT COLLATE "C" NOT NULL,
    first_team       BIGINT NOT NULL,
    -- UTC days since 1970-01-01 of started_ns.
    day              BIGINT NOT NULL,
    person           TEXT COLLATE "C",
    agent            TEXT COLLATE "C",
    repo             TEXT COLLATE "C",
    org              TEXT COLLATE "C",
    input            BIGINT NOT NULL,
    output           BIGINT NOT NULL,
    cache_read       BIGINT NOT NULL,
    cache_creation   BIGINT NOT NULL,
    reasoning        BIGINT NOT NULL,
    -- NULL: no cost (none reported, no price for its models).
    cost             DOUBLE PRECISION,
    cost_estimated   BIGINT NOT NULL,
    -- The quantities the agent reports; NULL: not reported.
    requests         DOUBLE PRECISION,
    errors           DOUBLE PRECISION,
    prompts          DOUBLE PRECISION,
    tool_invocations DOUBLE PRECISION,
    tool_failures    DOUBLE PRECISION,
    tool_rejections  DOUBLE PRECISION,
    lines_added      DOUBLE PRECISION,
    lines_removed    DOUBLE PRECISION,
    files_modified   DOUBLE PRECISION,
    active_seconds   DOUBLE PRECISION,
    PRIMARY KEY (started_ns, session_id, team)
);
CREATE INDEX analytics_facts_session ON analytics_facts (session_id);

-- One row per session and model it used ('' when it names none); the session's tokens
-- and cost as the model grouping splits them. cost_how: 0 exact, 1 estimated from the
-- price table, 2 a reported cost split by price, 3 split by tokens.
CREATE TABLE analytics_model_facts (
    started_ns     BIGINT NOT NULL,
    session_id     BIGINT NOT NULL,
    model          TEXT COLLATE "C" NOT NULL,
    first_model    BIGINT NOT NULL,
    day            BIGINT NOT NULL,
    person         TEXT COLLATE "C",
    input          BIGINT NOT NULL,
    output         BIGINT NOT NULL,
    cache_read     BIGINT NOT NULL,
    cache_creation BIGINT NOT NULL,
    reasoning      BIGINT NOT NULL,
    cost           DOUBLE PRECISION,
    cost_how       BIGINT NOT NULL,
    PRIMARY KEY (started_ns, session_id, model)
);
CREATE INDEX analytics_model_facts_session ON analytics_model_facts (session_id);

-- Sessions whose analytics facts are to be computed again.
CREATE TABLE analytics_queue (
    session_id BIGINT PRIMARY KEY,
    touched_ns BIGINT NOT NULL
);

-- What the stored facts were computed with (identities, prices, rules' version).
CREATE TABLE analytics_basis (
    id          BIGINT PRIMARY KEY,
    fingerprint TEXT COLLATE "C" NOT NULL
);

-- One row per pull request: what analytics' impact metrics read, written each time its
-- report is built (so it follows everything that changes the report). Teams are
-- resolved from author and repository when read.
CREATE TABLE pull_facts (
    repo              TEXT COLLATE "C" NOT NULL,
    number            BIGINT NOT NULL,
    author            TEXT COLLATE "C",
    state             TEXT COLLATE "C" NOT NULL,
    merged_ns         BIGINT,
    -- The earliest author time of its commits.
    first_commit_ns   BIGINT,
    -- A commit of it is agent-assisted (a linked session or an agent trailer).
    assisted          BIGINT NOT NULL,
    -- The agents of its sessions and trailers, one per line.
    agents            TEXT COLLATE "C" NOT NULL,
    cost              DOUBLE PRECISION,
    cost_estimated    BIGINT NOT NULL,
    tokens            BIGINT,
    lines_added       BIGINT,
    agent_lines_added BIGINT,
    ci_first_run_pass DOUBLE PRECISION,
    incidents         BIGINT NOT NULL,
    deployments       BIGINT NOT NULL,
    built_ns          BIGINT NOT NULL,
    PRIMARY KEY (repo, number)
);
CREATE INDEX pull_facts_merged ON pull_facts (merged_ns);
