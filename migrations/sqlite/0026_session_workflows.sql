-- The tools and MCP servers each session's telemetry names (analytics' group_by=workflow:
-- which tools and servers are used, by how many sessions, at what cost). kind: `tool`
-- or `mcp`. Written with the session's other rows as telemetry arrives; sessions stored
-- before name none (nothing reads their raw records again yet).
CREATE TABLE session_workflows (
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    kind       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    PRIMARY KEY (session_id, kind, name)
) WITHOUT ROWID;
