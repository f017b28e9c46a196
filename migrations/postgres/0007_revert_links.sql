-- Reverts (SQLite 0025): a commit whose message says "This reverts commit <sha>." is
-- linked to it (commit --reverts--> commit, evidence `message`); this links the commits
-- stored before, by the first full SHA their message names.
INSERT INTO links (from_kind, from_key, to_kind, to_key, relation, evidence, confidence, first_seen_ns)
SELECT 'commit', repo || '@' || sha, 'commit',
       repo || '@' || lower(substr(message, strpos(message, 'This reverts commit ') + 20, 40)),
       'reverts', 'message', 1.0,
       CAST(extract(epoch FROM now()) AS BIGINT) * 1000000000
FROM commits
WHERE strpos(message, 'This reverts commit ') > 0
  AND substr(message, strpos(message, 'This reverts commit ') + 20, 41) ~ '^[0-9a-fA-F]{40}([^0-9a-fA-F]|$)'
ON CONFLICT DO NOTHING;
