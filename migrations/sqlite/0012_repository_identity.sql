-- A served repository's GitHub id (an OIDC token's `repository_id` must match it: a
-- repository deleted and re-created under the same name is another repository) and its
-- visibility (public repositories' comments show less), from every delivery naming it.
ALTER TABLE repo_installations ADD COLUMN repo_id INTEGER;
ALTER TABLE repo_installations ADD COLUMN private INTEGER;
