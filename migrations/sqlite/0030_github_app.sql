-- The GitHub App created from the manifest on /setup: its id and, sealed under a key
-- derived from TRACELINK_SECRET_KEY (XChaCha20-Poly1305), its private key and webhook
-- secret, so every replica reads the same App. One row at most.
CREATE TABLE github_app (
    id                    INTEGER NOT NULL CHECK (id = 1),
    app_id                INTEGER NOT NULL,
    slug                  TEXT    NOT NULL,
    html_url              TEXT    NOT NULL,
    private_key_sealed    BLOB    NOT NULL,
    webhook_secret_sealed BLOB    NOT NULL,
    created_ns            INTEGER NOT NULL,
    PRIMARY KEY (id)
) WITHOUT ROWID;
