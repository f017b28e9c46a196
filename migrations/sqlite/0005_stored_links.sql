-- Stored links say everything a reader shows of them (the commit API, reports and DORA
-- read them instead of computing links again): what the evidence was, and for an
-- inherited (`merged`) link the commit it was inherited from.
ALTER TABLE links ADD COLUMN detail TEXT NOT NULL DEFAULT '';
ALTER TABLE links ADD COLUMN original TEXT;

-- Sessions whose facts changed since the commits they may have produced were last
-- linked. The OTLP writer adds them in the transaction that stores the telemetry; the
-- publisher links again and removes them, so a restart never loses a relink.
CREATE TABLE link_queue (
    session_id INTEGER PRIMARY KEY REFERENCES sessions (id),
    touched_ns INTEGER NOT NULL
);

-- Links were stored only for pull requests with a published report before this
-- version: link again everything every session may have produced.
INSERT INTO link_queue (session_id, touched_ns) SELECT id, 0 FROM sessions;

-- A commit's patch id (`metrics::diff::patch_id`): a rebased or amended copy has its
-- original's, whatever its message, so it inherits the original's links.
ALTER TABLE commit_patches ADD COLUMN patch_id TEXT;
CREATE INDEX commit_patches_patch_id ON commit_patches (repo, patch_id);
