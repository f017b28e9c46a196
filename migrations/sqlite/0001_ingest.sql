-- OTLP ingest: normalised records and the session facts maintained from them.
-- Times are Unix nanoseconds (INTEGER); IDs are raw bytes (BLOB) so a span row stays small.

-- One row per agent session. Identity fields keep the first non-null value seen;
-- started/ended widen to cover every record of the session.
CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY,
    session_key   TEXT    NOT NULL UNIQUE,
    agent         TEXT,
    agent_version TEXT,
    user_id       TEXT,
    user_email    TEXT,
    organization  TEXT,
    repository    TEXT,
    started_ns    INTEGER,
    ended_ns      INTEGER,
    created_ns    INTEGER NOT NULL
);
CREATE INDEX sessions_started ON sessions (started_ns DESC, id DESC);
CREATE INDEX sessions_repository ON sessions (repository, started_ns DESC);
CREATE INDEX sessions_user_email ON sessions (user_email, started_ns DESC);
CREATE INDEX sessions_agent ON sessions (agent, started_ns DESC);

-- Additive session counters, kept per signal that reported them (metrics, logs, traces):
-- agents report the same quantity on several signals, and a reader takes one source per
-- counter (store::facts) instead of adding them up.
CREATE TABLE session_counters (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    source     TEXT    NOT NULL,
    counter    TEXT    NOT NULL,
    value      REAL    NOT NULL,
    PRIMARY KEY (session_id, source, counter)
) WITHOUT ROWID;

-- Tokens per model, normalised to the OpenTelemetry gen_ai semantics (DESIGN.md §3).
CREATE TABLE session_tokens (
    session_id     INTEGER NOT NULL REFERENCES sessions (id),
    source         TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    input          INTEGER NOT NULL DEFAULT 0,
    output         INTEGER NOT NULL DEFAULT 0,
    cache_read     INTEGER NOT NULL DEFAULT 0,
    cache_creation INTEGER NOT NULL DEFAULT 0,
    reasoning      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, source, model)
) WITHOUT ROWID;

-- Commits a session's telemetry names by full SHA.
CREATE TABLE session_commits (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    sha        TEXT    NOT NULL,
    evidence   TEXT    NOT NULL,
    PRIMARY KEY (session_id, sha)
) WITHOUT ROWID;
CREATE INDEX session_commits_sha ON session_commits (sha);

CREATE TABLE session_traces (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    trace_id   BLOB    NOT NULL,
    PRIMARY KEY (session_id, trace_id)
) WITHOUT ROWID;
CREATE INDEX session_traces_trace ON session_traces (trace_id);

-- Files a session read or modified, repository-relative where the agent said so.
CREATE TABLE session_files (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    path       TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    PRIMARY KEY (session_id, path, action)
) WITHOUT ROWID;

-- Spans, keyed by their own IDs so a re-sent export is stored (and counted) once.
-- attrs holds only the attributes tracelink reads (JSON object), never prompt text.
CREATE TABLE spans (
    trace_id   BLOB    NOT NULL,
    span_id    BLOB    NOT NULL,
    parent_id  BLOB,
    session_id INTEGER,
    name       TEXT    NOT NULL,
    kind       INTEGER NOT NULL,
    start_ns   INTEGER NOT NULL,
    end_ns     INTEGER NOT NULL,
    status     INTEGER NOT NULL,
    attrs      TEXT,
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX spans_session ON spans (session_id) WHERE session_id IS NOT NULL;

-- Log events; digest is a SHA-256 prefix of the record's content, so a re-sent record
-- is stored (and counted) once.
CREATE TABLE log_events (
    digest     BLOB    PRIMARY KEY,
    session_id INTEGER,
    time_ns    INTEGER NOT NULL,
    event      TEXT    NOT NULL,
    trace_id   BLOB,
    span_id    BLOB,
    attrs      TEXT
) WITHOUT ROWID;
CREATE INDEX log_events_session ON log_events (session_id, time_ns) WHERE session_id IS NOT NULL;

-- Metric points as increments. A series is (resource, scope, metric, attributes) hashed;
-- a cumulative point is stored as the difference to the previous point of its series.
CREATE TABLE metric_points (
    series     BLOB    NOT NULL,
    time_ns    INTEGER NOT NULL,
    session_id INTEGER,
    metric     TEXT    NOT NULL,
    value      REAL    NOT NULL,
    count      INTEGER,
    attrs      TEXT,
    PRIMARY KEY (series, time_ns)
) WITHOUT ROWID;
CREATE INDEX metric_points_session ON metric_points (session_id) WHERE session_id IS NOT NULL;

-- Last point seen of each cumulative series, to turn running totals into increments.
CREATE TABLE cumulative_series (
    series   BLOB    PRIMARY KEY,
    start_ns INTEGER NOT NULL,
    time_ns  INTEGER NOT NULL,
    value    REAL    NOT NULL,
    count    INTEGER NOT NULL
) WITHOUT ROWID;
