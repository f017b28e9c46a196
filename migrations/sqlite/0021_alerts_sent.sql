-- Alerts posted to --alert-webhook: each (day, kind, scope, key, level) once. A row is
-- claimed ('sending') before the post and marked 'sent' after it; a claim left by a
-- replica that died (older than the claim period) is taken again.
CREATE TABLE alerts_sent (
    day        TEXT NOT NULL,
    kind       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL,
    level      TEXT NOT NULL,
    state      TEXT NOT NULL,
    claimed_ns INTEGER NOT NULL,
    sent_ns    INTEGER,
    attempts   INTEGER NOT NULL DEFAULT 0,
    error      TEXT,
    PRIMARY KEY (day, kind, scope, key, level)
);
