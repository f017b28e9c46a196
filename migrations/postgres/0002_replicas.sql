-- Several replicas on one database (SQLite 0020).
--
-- A pending delivery and a queued report are claimed by one replica at a time
-- (`FOR UPDATE SKIP LOCKED`): the claim names the replica and lasts until
-- `lease_until_ns`, after which (the replica died) any replica may take it again.
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE deliveries ADD COLUMN lease_until_ns BIGINT;
ALTER TABLE report_queue ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE report_queue ADD COLUMN lease_until_ns BIGINT;

-- Named leases for work one replica does for all (organisation-wide figures on
-- /metrics): held by `owner` until `until_ns`, renewed while it lives.
CREATE TABLE leases (
    name     TEXT COLLATE "C" PRIMARY KEY,
    owner    TEXT COLLATE "C" NOT NULL,
    until_ns BIGINT NOT NULL
);

-- GitHub's content-creating requests of the last hour, by all replicas: the App's
-- write budget (80 a minute, 500 an hour) is one, however many replicas write.
CREATE TABLE github_writes (
    at_ns BIGINT NOT NULL,
    n     BIGINT NOT NULL
);
CREATE INDEX github_writes_at ON github_writes (at_ns);
