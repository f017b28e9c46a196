//! Whole-table reads for tests and tooling: row counts, and every row as text (to check
//! that deliveries and telemetry in any order give the same tables). The product never
//! calls these; they keep the tests' SQL here, beside the schema it depends on.

use super::{query, query_as, query_scalar};

use super::{Db, Result};
use crate::ids::{SpanId, TraceId};

/// Every table of the schema.
pub const TABLES: &[&str] = &[
    "sessions",
    "session_counters",
    "session_tokens",
    "session_commits",
    "session_traces",
    "session_files",
    "session_workflows",
    "raw_records",
    "record_sessions",
    "spans",
    "log_events",
    "metric_points",
    "cumulative_series",
    "deliveries",
    "installations",
    "installation_repositories",
    "commits",
    "commit_trailers",
    "commit_agents",
    "commit_files",
    "commit_refs",
    "default_branches",
    "pull_requests",
    "ci_runs",
    "deployments",
    "deployment_statuses",
    "incidents",
    "links",
    "link_rules",
    "repo_installations",
    "pull_request_commits",
    "commit_patches",
    "pull_request_patches",
    "published_reports",
    "report_queue",
    "ci_uploads",
    "ci_coverage",
    "ci_test_cases",
    "line_records",
    "backfills",
    "backfill_pages",
    "github_etags",
    "github_team_members",
    "github_team_syncs",
    "github_app",
];

fn known(table: &str) -> Result<&'static str> {
    TABLES
        .iter()
        .find(|t| **t == table)
        .copied()
        .ok_or_else(|| sqlx::Error::Protocol(format!("no table {table:?}")))
}

impl Db {
    /// Spans, log records or metric points (`traces`, `logs`, `metrics`) held in raw
    /// records: what was stored, a re-sent request counted once.
    pub async fn stored_rows(&self, signal: &str) -> Result<i64> {
        query_scalar(
            "SELECT CAST(coalesce(sum(rows), 0) AS BIGINT) FROM raw_records WHERE signal = ?",
        )
        .bind(signal)
        .fetch_one(&self.pool)
        .await
    }

    /// Every raw record of a signal (all when `None`), read back, oldest first.
    async fn raw_records_of(&self, signal: Option<&str>) -> Result<Vec<super::raw::pb::RawRecord>> {
        let rows: Vec<super::raw::Stored> = query_as(
            "SELECT id, format, body FROM raw_records WHERE ?1 IS NULL OR signal = ?1 ORDER BY id",
        )
        .bind(signal)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::raw::Stored::open).collect()
    }

    /// The (trace id, span id) of every span held in raw records.
    pub async fn span_ids(&self) -> Result<std::collections::HashSet<(TraceId, SpanId)>> {
        let mut out = std::collections::HashSet::new();
        for r in self.raw_records_of(Some("traces")).await? {
            for s in r.spans {
                if let (Ok(t), Ok(sp)) = (
                    TraceId::try_from(&s.trace_id[..]),
                    SpanId::try_from(&s.span_id[..]),
                ) {
                    out.insert((t, sp));
                }
            }
        }
        Ok(out)
    }

    /// Every raw record, read back ([`super::raw::open`]) and printed field by field.
    pub async fn raw_records(&self) -> Result<Vec<String>> {
        Ok(self
            .raw_records_of(None)
            .await?
            .iter()
            .map(|r| format!("{r:?}"))
            .collect())
    }

    /// Every kept delivery payload, as stored.
    pub async fn delivery_payloads(&self) -> Result<Vec<Vec<u8>>> {
        query_scalar(
            "SELECT payload FROM deliveries WHERE payload IS NOT NULL ORDER BY delivery_id",
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Deliveries whose payload is still kept.
    pub async fn delivery_payloads_kept(&self) -> Result<i64> {
        query_scalar("SELECT count(*) FROM deliveries WHERE payload IS NOT NULL")
            .fetch_one(&self.pool)
            .await
    }

    /// Migrations recorded as applied.
    pub async fn applied_migrations(&self) -> Result<i64> {
        query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await
    }

    /// Rows in a table.
    pub async fn row_count(&self, table: &str) -> Result<i64> {
        self.table_rows(known(table)?).await
    }

    /// Every row of a table as text (`quote(col) | …`, SQLite's quoting on both engines),
    /// sorted, without the given columns.
    pub async fn dump_table(&self, table: &str, skip: &[&str]) -> Result<Vec<String>> {
        let table = known(table)?;
        use super::copy::Kind;
        let cols = self.columns(table).await?;
        let sqlite = self.engine == super::Engine::Sqlite;
        let expr = cols
            .iter()
            .filter(|(c, _)| !skip.contains(&c.as_str()))
            .map(|(c, kind)| match kind {
                _ if sqlite => format!("quote({c})"),
                Kind::Text => format!("quote_nullable({c})"),
                Kind::Bytes => {
                    format!("coalesce('X''' || upper(encode({c}, 'hex')) || '''', 'NULL')")
                }
                Kind::Integer | Kind::Real => format!("coalesce(CAST({c} AS TEXT), 'NULL')"),
            })
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let mut rows: Vec<String> = query_scalar(format!("SELECT {expr} FROM {table}"))
            .fetch_all(&self.pool)
            .await?;
        rows.sort();
        Ok(rows)
    }
}

/// The database's write lock held by another connection, as another process would
/// hold it: the writer stalls until [`WriteLock::release`]. SQLite: the file's write
/// lock; PostgreSQL: an exclusive lock on `raw_records`, which every export writes.
pub struct WriteLock {
    conn: LockConn,
}

enum LockConn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::AnyConnection),
}

impl WriteLock {
    pub async fn acquire(location: &super::Location) -> Result<WriteLock> {
        use sqlx::{ConnectOptions, Executor};
        let conn = match location {
            super::Location::File(path) => {
                let mut conn = super::options(path).connect().await?;
                conn.execute("BEGIN IMMEDIATE").await?;
                LockConn::Sqlite(conn)
            }
            super::Location::Postgres(_) => {
                let mut conn = super::connect(location, false)
                    .await
                    .map_err(|e| sqlx::Error::Configuration(e.into()))?;
                conn.execute("BEGIN").await?;
                conn.execute("LOCK TABLE raw_records IN EXCLUSIVE MODE")
                    .await?;
                LockConn::Postgres(conn)
            }
        };
        Ok(WriteLock { conn })
    }

    pub async fn release(self) -> Result<()> {
        use sqlx::Executor;
        match self.conn {
            LockConn::Sqlite(mut c) => {
                c.execute("ROLLBACK").await?;
            }
            LockConn::Postgres(mut c) => {
                c.execute("ROLLBACK").await?;
            }
        }
        Ok(())
    }
}

/// A fault injected into the database, as a bug or a broken disk would cause: storing
/// the commit `sha` fails until [`Fault::remove`].
pub struct Fault {
    location: super::Location,
}

impl Fault {
    pub async fn inject(location: &super::Location, sha: &str) -> Result<Fault> {
        let sha: String = sha.chars().filter(char::is_ascii_hexdigit).collect();
        let statements = match location {
            super::Location::File(_) => vec![format!(
                "CREATE TRIGGER injected_fault BEFORE INSERT ON commits WHEN NEW.sha = '{sha}' \
                 BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
            )],
            super::Location::Postgres(_) => vec![
                format!(
                    "CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN IF NEW.sha = '{sha}' THEN RAISE EXCEPTION 'injected fault'; END IF; \
                     RETURN NEW; END $$"
                ),
                "CREATE TRIGGER injected_fault BEFORE INSERT ON commits FOR EACH ROW \
                 EXECUTE FUNCTION injected_fault()"
                    .to_string(),
            ],
        };
        run(location, statements).await?;
        Ok(Fault {
            location: location.clone(),
        })
    }

    pub async fn remove(self) -> Result<()> {
        let statements = match self.location {
            super::Location::File(_) => vec!["DROP TRIGGER injected_fault".to_string()],
            super::Location::Postgres(_) => vec![
                "DROP TRIGGER injected_fault ON commits".to_string(),
                "DROP FUNCTION injected_fault()".to_string(),
            ],
        };
        run(&self.location, statements).await
    }
}

/// Runs statements on a connection of their own.
async fn run(location: &super::Location, statements: Vec<String>) -> Result<()> {
    use sqlx::{Connection, Executor};
    let mut conn = super::connect(location, false)
        .await
        .map_err(|e| sqlx::Error::Configuration(e.into()))?;
    for sql in statements {
        conn.execute(sqlx::AssertSqlSafe(sql)).await?;
    }
    conn.close().await?;
    Ok(())
}

impl super::Conn {
    /// A database an older release with other link rules left behind: its session →
    /// commit links dropped and `version` recorded as the rules they came from.
    pub async fn as_if_linked_by_rules(&mut self, version: i64) -> Result<()> {
        query("DELETE FROM links WHERE from_kind = 'session'")
            .execute(&mut self.conn)
            .await?;
        self.linked_by_rules(version).await
    }

    /// **Bench-only**: records that the stored links were computed with the rules of
    /// `version` (the seeded ones were), so a start does not link every session again.
    pub async fn linked_by_rules(&mut self, version: i64) -> Result<()> {
        query(
            "INSERT INTO link_rules (id, version) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        )
        .bind(version)
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }
}

/// Makes every raw record (and its digest) look received `by_ns` earlier, as if the
/// telemetry had arrived then. On PostgreSQL the day partition of the new time is made
/// first, so the records move into it.
pub async fn age_raw_records(location: &super::Location, by_ns: i64) -> Result<()> {
    use sqlx::Connection;
    let mut conn = super::connect(location, false)
        .await
        .map_err(|e| sqlx::Error::Configuration(e.into()))?;
    if location.engine() == super::Engine::Postgres {
        let oldest: Option<i64> = query_scalar("SELECT min(received_ns) FROM raw_records")
            .fetch_one(&mut conn)
            .await?;
        let mut days = super::partitions::Days::default();
        if let Some(oldest) = oldest {
            days.ensure(&mut conn, oldest - by_ns).await;
        }
        query("UPDATE raw_digests SET received_ns = received_ns - ?")
            .bind(by_ns)
            .execute(&mut conn)
            .await?;
    }
    query("UPDATE raw_records SET received_ns = received_ns - ?")
        .bind(by_ns)
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

impl Db {
    /// The day partitions of raw records (PostgreSQL; none on SQLite), by name.
    pub async fn raw_partitions(&self) -> Result<Vec<String>> {
        if self.engine == super::Engine::Sqlite {
            return Ok(Vec::new());
        }
        query_scalar(
            "SELECT CAST(c.relname AS TEXT) FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
             WHERE p.relname = 'raw_records' ORDER BY c.relname",
        )
        .fetch_all(&self.pool)
        .await
    }
}

impl super::Conn {
    /// Records a migration this release does not know, as a newer release would.
    pub async fn record_newer_migration(&mut self, version: i64) -> Result<()> {
        query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?, 'from a newer release', TRUE, ?, 0)",
        )
        .bind(version)
        .bind(vec![0u8; 48])
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    /// Forgets that a migration was applied.
    pub async fn forget_migration(&mut self, version: i64) -> Result<()> {
        query("DELETE FROM _sqlx_migrations WHERE version = ?")
            .bind(version)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }
}

/// A session as `tracelink-dev bench analytics` seeds it. **Bench-only**: see
/// [`super::Conn::seed_sessions`].
#[derive(Debug, Clone)]
pub struct SeedSession {
    pub key: String,
    pub agent: String,
    pub user_email: String,
    pub repository: String,
    pub started_ns: i64,
    pub ended_ns: i64,
    /// `(model, [input, output, cache_read, cache_creation, reasoning])`, as the
    /// metrics signal reports them.
    pub tokens: Vec<(String, [i64; 5])>,
    /// Counters, as the metrics signal reports them.
    pub counters: Vec<(crate::facts::Counter, f64)>,
    /// Commits it authored (links `session -authored-> commit` in its repository).
    pub commits: Vec<SeedCommit>,
}

/// A commit a seeded session authored.
#[derive(Debug, Clone)]
pub struct SeedCommit {
    /// 40 hex digits.
    pub sha: String,
    /// When it was pushed to the repository's default branch (`main`, which every
    /// seeded repository has); `None`: never.
    pub pushed_ns: Option<i64>,
}

/// Sessions per multi-row statement (8 columns × 300 rows, far below both engines'
/// bind limits).
const SEED_CHUNK: usize = 300;

impl super::Conn {
    /// **Bench-only** (`tracelink-dev bench analytics`; the product never calls it):
    /// stores sessions with their tokens and counters (source `metrics`) and the links
    /// to the commits they authored (with those commits' pushes to `main`) in one
    /// transaction by multi-row INSERTs, bypassing the writer — no raw records, no
    /// metric points, no relink queue, so only the tables the analytics API reads are
    /// filled; the sessions are queued for analytics' facts (computed by
    /// `tracelink::impact::analytics::refresh`). A key already stored is an error.
    pub async fn seed_sessions(&mut self, sessions: &[SeedSession]) -> Result<()> {
        use super::writer::values_sql;
        let mut tx = self.begin().await?;
        let now = crate::time::now_ns();
        for chunk in sessions.chunks(SEED_CHUNK) {
            let mut q = query(values_sql(
                "INSERT INTO sessions (session_key, agent, user_email, organization, repository, \
                 started_ns, ended_ns, created_ns) VALUES ",
                8,
                chunk.len(),
            ));
            for s in chunk {
                let org = s.repository.split('/').next().unwrap_or_default();
                q = q
                    .bind(s.key.as_str())
                    .bind(s.agent.as_str())
                    .bind(s.user_email.as_str())
                    .bind(org)
                    .bind(s.repository.as_str())
                    .bind(s.started_ns)
                    .bind(s.ended_ns)
                    .bind(now);
            }
            q.execute(tx.conn()).await?;
            let mut q = query_as::<(i64, String)>(format!(
                "SELECT id, session_key FROM sessions WHERE session_key IN ({})",
                super::placeholders(chunk.len())
            ));
            for s in chunk {
                q = q.bind(s.key.as_str());
            }
            let ids: std::collections::HashMap<String, i64> = q
                .fetch_all(tx.conn())
                .await?
                .into_iter()
                .map(|(id, k)| (k, id))
                .collect();
            let id_of = |s: &SeedSession| {
                ids.get(&s.key).copied().ok_or_else(|| {
                    sqlx::Error::Protocol(format!("seeded session {} not found", s.key))
                })
            };
            let mut tokens = Vec::new();
            let mut counters = Vec::new();
            for s in chunk {
                let id = id_of(s)?;
                tokens.extend(s.tokens.iter().map(|(m, t)| (id, m.as_str(), *t)));
                counters.extend(s.counters.iter().map(|(c, v)| (id, c.as_str(), *v)));
            }
            for part in tokens.chunks(SEED_CHUNK) {
                let mut q = query(values_sql(
                    "INSERT INTO session_tokens (session_id, source, model, input, output, \
                     cache_read, cache_creation, reasoning) VALUES ",
                    8,
                    part.len(),
                ));
                for (id, model, [i, o, cr, cc, r]) in part {
                    q = q
                        .bind(*id)
                        .bind("metrics")
                        .bind(*model)
                        .bind(*i)
                        .bind(*o)
                        .bind(*cr)
                        .bind(*cc)
                        .bind(*r);
                }
                q.execute(tx.conn()).await?;
            }
            for part in counters.chunks(SEED_CHUNK) {
                let mut q = query(values_sql(
                    "INSERT INTO session_counters (session_id, source, counter, value) VALUES ",
                    4,
                    part.len(),
                ));
                for (id, counter, value) in part {
                    q = q.bind(*id).bind("metrics").bind(*counter).bind(*value);
                }
                q.execute(tx.conn()).await?;
            }
            // Their commits: the links linking would have stored, the pushes of those
            // that reached `main`, and `main` as every repository's default branch.
            let authored: Vec<(&SeedSession, &SeedCommit)> = chunk
                .iter()
                .flat_map(|s| s.commits.iter().map(move |c| (s, c)))
                .collect();
            for part in authored.chunks(SEED_CHUNK) {
                let mut q = query(values_sql(
                    "INSERT INTO links (from_kind, from_key, to_kind, to_key, relation, evidence, \
                     confidence, first_seen_ns) VALUES ",
                    8,
                    part.len(),
                ));
                for (s, c) in part {
                    q = q
                        .bind("session")
                        .bind(s.key.as_str())
                        .bind("commit")
                        .bind(format!("{}@{}", s.repository, c.sha))
                        .bind("authored")
                        .bind("trace")
                        .bind(1.0_f64)
                        .bind(now);
                }
                q.execute(tx.conn()).await?;
            }
            let pushed: Vec<(&str, &str, i64)> = authored
                .iter()
                .filter_map(|(s, c)| Some((s.repository.as_str(), c.sha.as_str(), c.pushed_ns?)))
                .collect();
            for part in pushed.chunks(SEED_CHUNK) {
                let mut q = query(values_sql(
                    "INSERT INTO commit_refs (repo, sha, ref, pushed_ns) VALUES ",
                    4,
                    part.len(),
                ));
                for (repo, sha, at) in part {
                    q = q.bind(*repo).bind(*sha).bind("refs/heads/main").bind(*at);
                }
                q.execute(tx.conn()).await?;
            }
            let repos: std::collections::BTreeSet<&str> =
                chunk.iter().map(|s| s.repository.as_str()).collect();
            for repo in repos {
                query(
                    "INSERT INTO default_branches (repo, branch) VALUES (?, 'main') \
                     ON CONFLICT (repo) DO NOTHING",
                )
                .bind(repo)
                .execute(tx.conn())
                .await?;
            }
            // Counted by analytics as the writer's sessions are.
            let seeded: Vec<i64> = ids.values().copied().collect();
            super::analytics::queue(tx.conn(), &seeded, now).await?;
        }
        tx.commit().await
    }

    /// **Bench-only**: after [`super::Conn::seed_sessions`], refreshes PostgreSQL's
    /// planner statistics (`ANALYZE`, what autovacuum would do after a bulk load);
    /// nothing on SQLite, where tracelink never gathers statistics either.
    pub async fn seeded(&mut self) -> Result<()> {
        if self.engine == super::Engine::Postgres {
            query("ANALYZE").execute(&mut self.conn).await?;
        }
        Ok(())
    }
}
