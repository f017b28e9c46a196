-- Patch coverage per pull request, and the new-people probe's indexes (SQLite 0028).
ALTER TABLE pull_facts ADD COLUMN patch_covered BIGINT;
ALTER TABLE pull_facts ADD COLUMN patch_coverable BIGINT;
ALTER TABLE pull_facts ADD COLUMN agent_patch_covered BIGINT;
ALTER TABLE pull_facts ADD COLUMN agent_patch_coverable BIGINT;
CREATE INDEX analytics_facts_person ON analytics_facts (person, started_ns);
CREATE INDEX analytics_model_facts_person ON analytics_model_facts (person, started_ns);
