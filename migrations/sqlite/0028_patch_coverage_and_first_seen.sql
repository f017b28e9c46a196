-- Patch coverage of each pull request (all added lines, and the agent-written ones),
-- as its report gives it (analytics' patch-coverage metrics).
ALTER TABLE pull_facts ADD COLUMN patch_covered INTEGER;
ALTER TABLE pull_facts ADD COLUMN patch_coverable INTEGER;
ALTER TABLE pull_facts ADD COLUMN agent_patch_covered INTEGER;
ALTER TABLE pull_facts ADD COLUMN agent_patch_coverable INTEGER;
-- New people (`new-people`): whether a person was seen before a range is one probe,
-- not a minimum over every row of all time.
CREATE INDEX analytics_facts_person ON analytics_facts (person, started_ns);
CREATE INDEX analytics_model_facts_person ON analytics_model_facts (person, started_ns);
