-- Alerts posted to --alert-webhook (SQLite 0021): each (day, kind, scope, key, level)
-- once; claimed ('sending') before the post, 'sent' after it.
CREATE TABLE alerts_sent (
    day        TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    scope      TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    level      TEXT COLLATE "C" NOT NULL,
    state      TEXT COLLATE "C" NOT NULL,
    claimed_ns BIGINT NOT NULL,
    sent_ns    BIGINT,
    attempts   BIGINT NOT NULL DEFAULT 0,
    error      TEXT COLLATE "C",
    PRIMARY KEY (day, kind, scope, key, level)
);
