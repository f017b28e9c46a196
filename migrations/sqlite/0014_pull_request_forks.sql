-- Whether a pull request comes from a fork (its head repository is not the base one):
-- a fork's workflows get no OIDC token, so its report says why coverage is missing.
ALTER TABLE pull_requests ADD COLUMN from_fork INTEGER;
