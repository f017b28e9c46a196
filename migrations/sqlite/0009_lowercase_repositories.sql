-- Repository names are compared case-insensitively everywhere (GitHub's are): sessions
-- keep theirs in lower case, as commits, pull requests and deployments do.
UPDATE sessions SET repository = lower(repository) WHERE repository <> lower(repository);
