-- The tools and MCP servers each session's telemetry names (SQLite 0026).
CREATE TABLE session_workflows (
    session_id BIGINT NOT NULL REFERENCES sessions (id),
    kind       TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (session_id, kind, name)
);
