-- GitHub team membership read through the App (`--sync-teams`): what analytics adds to
-- the identities file's teams. Kept so a start within a day of the last reading, or
-- while GitHub cannot be reached, does not read every team again.
CREATE TABLE github_team_members (
    org        TEXT    NOT NULL,
    team       TEXT    NOT NULL,
    login      TEXT    NOT NULL,
    fetched_ns INTEGER NOT NULL,
    PRIMARY KEY (org, team, login)
) WITHOUT ROWID;

-- When each organisation's teams were last read (an organisation without teams too).
CREATE TABLE github_team_syncs (
    org        TEXT    PRIMARY KEY,
    fetched_ns INTEGER NOT NULL
);
