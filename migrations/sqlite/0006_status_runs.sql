-- Commit statuses: one run per (repository, commit, context), the newest status standing
-- (GitHub gives every status its own id; each was its own run before).
DELETE FROM ci_runs WHERE kind = 'status' AND EXISTS (
    SELECT 1 FROM ci_runs n
    WHERE n.kind = 'status' AND n.repo = ci_runs.repo AND n.head_sha = ci_runs.head_sha
      AND coalesce(n.name, 'default') = coalesce(ci_runs.name, 'default')
      AND (n.version > ci_runs.version OR (n.version = ci_runs.version AND n.id > ci_runs.id))
);
UPDATE ci_runs SET name = 'default' WHERE kind = 'status' AND name IS NULL;
-- A status's commit is its run's head_sha; the per-status links said nothing more.
DELETE FROM links WHERE from_kind = 'ci_run' AND relation = 'runs_on' AND from_key LIKE 'status:%';
