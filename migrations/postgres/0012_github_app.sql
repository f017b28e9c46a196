-- The GitHub App created from the manifest on /setup (SQLite 0030).
CREATE TABLE github_app (
    id                    BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    app_id                BIGINT NOT NULL,
    slug                  TEXT COLLATE "C" NOT NULL,
    html_url              TEXT COLLATE "C" NOT NULL,
    private_key_sealed    BYTEA  NOT NULL,
    webhook_secret_sealed BYTEA  NOT NULL,
    created_ns            BIGINT NOT NULL
);
