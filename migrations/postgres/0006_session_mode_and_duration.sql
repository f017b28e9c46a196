-- Adoption analytics (SQLite 0024): whether a session ran headless, and each session's
-- duration and mode in its analytics facts. NULL: not known.
ALTER TABLE sessions ADD COLUMN headless BIGINT;
ALTER TABLE analytics_facts ADD COLUMN duration_seconds DOUBLE PRECISION;
ALTER TABLE analytics_facts ADD COLUMN headless BIGINT;
ALTER TABLE analytics_facts ADD COLUMN tool_execution_seconds DOUBLE PRECISION;
ALTER TABLE analytics_facts ADD COLUMN mcp_tool_invocations DOUBLE PRECISION;
ALTER TABLE analytics_facts ADD COLUMN request_seconds DOUBLE PRECISION;
ALTER TABLE analytics_facts ADD COLUMN retries DOUBLE PRECISION;
