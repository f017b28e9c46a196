-- GitHub team membership read through the App (`--sync-teams`; SQLite 0027).
CREATE TABLE github_team_members (
    org        TEXT COLLATE "C" NOT NULL,
    team       TEXT COLLATE "C" NOT NULL,
    login      TEXT COLLATE "C" NOT NULL,
    fetched_ns BIGINT NOT NULL,
    PRIMARY KEY (org, team, login)
);

CREATE TABLE github_team_syncs (
    org        TEXT COLLATE "C" PRIMARY KEY,
    fetched_ns BIGINT NOT NULL
);
