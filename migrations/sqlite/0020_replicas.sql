-- Several replicas on one database (PostgreSQL). The same tables on SQLite, where one
-- process runs, so the code is one.
--
-- A pending delivery and a queued report are claimed by one replica at a time: the
-- claim names the replica and lasts until `lease_until_ns`, after which (the replica
-- died) any replica may take it again.
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
ALTER TABLE deliveries ADD COLUMN lease_until_ns INTEGER;
ALTER TABLE report_queue ADD COLUMN lease_owner TEXT;
ALTER TABLE report_queue ADD COLUMN lease_until_ns INTEGER;

-- Named leases for work one replica does for all (exporting organisation-wide figures
-- on /metrics): held by `owner` until `until_ns`, renewed while it lives.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    owner    TEXT NOT NULL,
    until_ns INTEGER NOT NULL
);

-- GitHub's content-creating requests of the last hour, by all replicas: the App's
-- write budget (80 a minute, 500 an hour) is one for the installation, however many
-- replicas write.
CREATE TABLE github_writes (
    at_ns INTEGER NOT NULL,
    n     INTEGER NOT NULL
);
CREATE INDEX github_writes_at ON github_writes (at_ns);
