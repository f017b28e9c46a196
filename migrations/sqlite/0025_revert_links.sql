-- Reverts (analytics' revert-rate): a commit whose message says "This reverts commit
-- <sha>." is linked to it (commit --reverts--> commit, evidence `message`). Commits
-- arriving from now on are linked as they are planned (every SHA their message names);
-- this links the commits stored before, by the first full SHA their message names
-- (`tracelink deliveries replay` links the rest).
INSERT INTO links (from_kind, from_key, to_kind, to_key, relation, evidence, confidence, first_seen_ns)
SELECT 'commit', repo || '@' || sha, 'commit',
       repo || '@' || lower(substr(message, instr(message, 'This reverts commit ') + 20, 40)),
       'reverts', 'message', 1.0,
       CAST((julianday('now') - 2440587.5) * 86400.0 AS INTEGER) * 1000000000
FROM commits
WHERE instr(message, 'This reverts commit ') > 0
  AND length(substr(message, instr(message, 'This reverts commit ') + 20, 40)) = 40
  AND substr(message, instr(message, 'This reverts commit ') + 20, 40) NOT GLOB '*[^0-9a-fA-F]*'
  AND substr(message, instr(message, 'This reverts commit ') + 60, 1) NOT GLOB '[0-9a-fA-F]'
ON CONFLICT DO NOTHING;
