-- An incident's environment (an `environment:` line or an `env:<name>` label; NULL: the
-- configured default). Root causes are resolved to deployments when read, so an edited
-- root cause replaces the old one: the links stored per delivery go.
ALTER TABLE incidents ADD COLUMN environment TEXT;
-- Incidents posted through the API: where they were declared and their id there.
ALTER TABLE incidents ADD COLUMN source TEXT;
ALTER TABLE incidents ADD COLUMN external_id TEXT;
DELETE FROM links WHERE from_kind = 'incident' AND relation = 'caused_by';
