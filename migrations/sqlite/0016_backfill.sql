-- Backfill (tracelink backfill, installation events): what a repository's history
-- fetched from the GitHub API has reached, so a backfill that stops (killed, GitHub
-- failing) resumes where it was, and the ETags that make a second backfill cheap.

-- One row per repository: its latest backfill.
CREATE TABLE backfills (
    repo TEXT PRIMARY KEY,
    -- The App installation that can read it (NULL: looked up when the backfill runs).
    installation_id INTEGER,
    -- What is fetched: pull requests updated, commits made, deployments created and
    -- incidents updated at or after this time.
    since_ns INTEGER NOT NULL,
    -- queued | running | done | failed
    state TEXT NOT NULL,
    requested_ns INTEGER NOT NULL,
    started_ns INTEGER,
    finished_ns INTEGER,
    pages_fetched INTEGER NOT NULL DEFAULT 0,
    pages_not_modified INTEGER NOT NULL DEFAULT 0,
    -- Why it failed, when it did.
    error TEXT,
    -- Held by the process running it until then: a crashed one's lease runs out.
    lease_until_ns INTEGER
);

-- The cursor: every page a backfill has to fetch, in the order found. A page is marked
-- done in the transaction that stores what it held, and the pages it leads to (the next
-- page of a listing, a pull request's commits) are added in that same transaction.
CREATE TABLE backfill_pages (
    repo TEXT NOT NULL,
    route TEXT NOT NULL,
    -- pulls | pull_commits | statuses | check_runs | commits | deployments |
    -- deployment_statuses | incidents
    kind TEXT NOT NULL,
    -- What reading the page needs besides its body (JSON).
    context TEXT NOT NULL,
    seq INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (repo, route)
);
CREATE INDEX backfill_pages_todo ON backfill_pages (repo, done, seq);

-- Conditional requests: the ETag GitHub gave each page fetched, and the pages it led to
-- (so an answer of 304 Not Modified, which has no body, still leads to them).
CREATE TABLE github_etags (
    route TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    -- JSON list of [kind, route, context].
    children TEXT NOT NULL,
    fetched_ns INTEGER NOT NULL
);
