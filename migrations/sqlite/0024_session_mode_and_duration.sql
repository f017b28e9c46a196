-- Adoption analytics: whether a session ran headless (its agent's `interactive`
-- attribute, Codex's `originator`, a CI run's `cicd.pipeline.*` resource attributes),
-- and each session's duration and mode in its analytics facts. NULL: not known.
ALTER TABLE sessions ADD COLUMN headless INTEGER;
ALTER TABLE analytics_facts ADD COLUMN duration_seconds REAL;
ALTER TABLE analytics_facts ADD COLUMN headless INTEGER;
-- Tool execution time (seconds) and MCP tool calls, as the agent reports them.
ALTER TABLE analytics_facts ADD COLUMN tool_execution_seconds REAL;
ALTER TABLE analytics_facts ADD COLUMN mcp_tool_invocations REAL;
-- Time spent on model API requests (seconds) and retried requests.
ALTER TABLE analytics_facts ADD COLUMN request_seconds REAL;
ALTER TABLE analytics_facts ADD COLUMN retries REAL;
