//! Organisation analytics' facts (`analytics_facts`, `analytics_model_facts`): each
//! session reduced to what `GET /api/v1/analytics` sums, recomputed from the session
//! whenever it changes (never incremented), and the sums over them.
//!
//! - The OTLP writer queues a session in `analytics_queue` in the transaction that stores
//!   its telemetry; [`Conn::analytics_on_new_basis`] queues every session when what the
//!   facts are computed with (identities, prices) changed.
//! - A refresher claims queued sessions ([`Tx::claim_analytics_queue`], `SKIP LOCKED`
//!   on PostgreSQL, so replicas take disjoint sessions), replaces their rows and takes
//!   them off the queue unless they were touched again meanwhile.
//! - Reads sum the rows of a time range per (bucket, key) in the database, so a 90-day
//!   view returns a few hundred rows, not every session.

use sqlx::AnyConnection;

use super::links::QueuedSession;
use super::writer::values_sql;
use super::{Conn, Db, Result, Tx, bind_f64, placeholders, query, query_as, query_scalar};

/// The per-session quantities `analytics_facts` holds, in column order.
pub const COUNTED_COLUMNS: [&str; 14] = [
    "requests",
    "errors",
    "prompts",
    "tool_invocations",
    "tool_failures",
    "tool_rejections",
    "lines_added",
    "lines_removed",
    "files_modified",
    "active_seconds",
    "tool_execution_seconds",
    "mcp_tool_invocations",
    "request_seconds",
    "retries",
];

/// One session as it counts for one team.
#[derive(Debug, Clone, PartialEq)]
pub struct FactRow {
    pub started_ns: i64,
    /// The local date (`--timezone`) of `started_ns`, as days since 1970-01-01.
    pub day: i64,
    pub session_id: i64,
    pub team: String,
    /// True on exactly one of a session's rows.
    pub first_team: bool,
    pub person: Option<String>,
    pub agent: Option<String>,
    pub repo: Option<String>,
    pub org: Option<String>,
    /// Input, output, cache read, cache creation, reasoning.
    pub tokens: [i64; 5],
    pub cost: Option<f64>,
    pub cost_estimated: bool,
    /// [`COUNTED_COLUMNS`]' values (`None`: not reported).
    pub counted: [Option<f64>; 14],
    /// From its first record to its last, in seconds (`None`: not known).
    pub duration_seconds: Option<f64>,
    /// Whether it ran headless (`None`: its telemetry does not say).
    pub headless: Option<bool>,
    /// What became of its commits ([`Db::commit_status`]; 0 until computed).
    pub commits: i64,
}

/// How a model's share of a session's cost was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostHow {
    /// The session's own figure, all of it this model's.
    Exact = 0,
    /// Estimated from the price table.
    Estimated = 1,
    /// A reported cost of several models split in proportion to their price-table cost.
    SplitByPrice = 2,
    /// Split in proportion to their tokens (no price for them).
    SplitByTokens = 3,
}

/// One session as it counts for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFactRow {
    pub started_ns: i64,
    /// As [`FactRow::day`].
    pub day: i64,
    pub session_id: i64,
    /// `None`: the session names no model.
    pub model: Option<String>,
    pub first_model: bool,
    pub person: Option<String>,
    pub tokens: [i64; 5],
    pub cost: Option<f64>,
    pub cost_how: CostHow,
}

/// What the rows are summed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKey {
    Org,
    Team,
    Repo,
    Agent,
    Person,
    Model,
    /// Team and agent together ([`split_team_agent`] parts the key).
    TeamAgent,
    /// Each tool, MCP server, skill, sub-agent and slash command the session's telemetry
    /// names (`tool:Bash`, `subagent:code-reviewer`,
    /// `mcp:linear`): a session counts for each.
    Workflow,
}

/// What separates team and agent in a [`FactKey::TeamAgent`] key (the unit separator,
/// which no team or agent name holds).
const TEAM_AGENT_SEPARATOR: char = '\u{1f}';

/// A [`FactKey::TeamAgent`] key's team and agent.
pub fn split_team_agent(key: &str) -> Option<(String, String)> {
    let (team, agent) = key.split_once(TEAM_AGENT_SEPARATOR)?;
    Some((team.to_string(), agent.to_string()))
}

/// What is summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactValue {
    Sessions,
    /// Input plus output.
    Tokens,
    Cost,
    /// One of [`COUNTED_COLUMNS`], by index.
    Counted(usize),
    /// From first record to last, in seconds.
    Duration,
    /// 1 for a session in this mode (headless when true), 0 for one in the other,
    /// nothing when its telemetry does not say.
    Mode {
        headless: bool,
    },
}

/// The buckets rows fall in, by UTC day number (days since 1970-01-01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactBuckets {
    Day,
    /// ISO weeks (from Monday).
    Week,
    /// Buckets starting at these days, ascending (the first holds every earlier day).
    Starting(Vec<i64>),
}

impl FactBuckets {
    /// The SQL giving a row's bucket as its first day.
    fn sql(&self) -> String {
        match self {
            FactBuckets::Day => "day".into(),
            // Day 0 (1970-01-01) was a Thursday, three days after a Monday.
            FactBuckets::Week => "(day - (day + 3) % 7)".into(),
            FactBuckets::Starting(starts) => {
                let mut s = String::from("CAST(CASE");
                for w in starts.windows(2) {
                    s.push_str(&format!(" WHEN day < {} THEN {}", w[1], w[0]));
                }
                s.push_str(&format!(
                    " ELSE {} END AS BIGINT)",
                    starts.last().copied().unwrap_or(0)
                ));
                s
            }
        }
    }
}

/// Which sessions a [`FactQuery`] reads, by what became of their commits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Commits {
    /// Every session.
    #[default]
    Any,
    /// Sessions linked to no commit they authored.
    None,
    /// Sessions linked to a commit of a repository whose default branch is known (from
    /// its push and pull request events): those whose landing can be judged.
    Judged,
    /// Of those, the sessions none of whose commits (nor a merge or squash commit
    /// carrying their links) was pushed to the default branch within
    /// [`LANDING_WINDOW_NS`] of the session's start.
    Unlanded,
}

/// How long a session's commits have to reach the default branch: 14 days.
pub const LANDING_WINDOW_NS: i64 = 14 * 86_400 * 1_000_000_000;

/// A commit the session `f` authored (a link `session -authored-> commit`).
const AUTHORED: &str = "SELECT 1 FROM sessions s JOIN links l \
     ON l.from_kind = 'session' AND l.relation = 'authored' AND l.from_key = s.session_key \
     WHERE s.id = f.session_id";

/// The same, of a repository whose default branch is known, as `l` and `b`. A commit's
/// key is `owner/name@<40 hex digits>`.
const AUTHORED_JUDGED: &str = "SELECT 1 FROM sessions s JOIN links l \
     ON l.from_kind = 'session' AND l.relation = 'authored' AND l.from_key = s.session_key \
     JOIN default_branches b ON b.repo = substr(l.to_key, 1, length(l.to_key) - 41) \
     WHERE s.id = f.session_id AND l.to_kind = 'commit'";

/// …whose commit was pushed to the default branch within the window (pushes stored
/// before their time was kept count as in time).
const LANDED: &str = "AND EXISTS (SELECT 1 FROM commit_refs r WHERE r.repo = b.repo \
     AND r.sha = substr(l.to_key, length(l.to_key) - 39) AND r.ref = 'refs/heads/' || b.branch \
     AND (r.pushed_ns IS NULL OR r.pushed_ns < f.started_ns + 1209600000000000))";

/// Only the sessions of one team, repository and/or agent (`team=`, `repo=`, `agent=`
/// of the API and the dashboard's filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Only {
    pub team: Option<String>,
    pub repo: Option<String>,
    pub agent: Option<String>,
}

impl Only {
    pub fn is_empty(&self) -> bool {
        self.team.is_none() && self.repo.is_none() && self.agent.is_none()
    }

    /// The values its conditions bind, in the order [`FactQuery::filter`] writes them.
    fn values(&self) -> impl Iterator<Item = &str> {
        [&self.team, &self.repo, &self.agent]
            .into_iter()
            .filter_map(|v| v.as_deref())
    }
}

/// Which rows to sum, and how.
#[derive(Debug, Clone)]
pub struct FactQuery {
    pub key: FactKey,
    pub value: FactValue,
    pub buckets: FactBuckets,
    /// `[from_ns, to_ns)` of the sessions' starts.
    pub from_ns: i64,
    pub to_ns: i64,
    /// Which sessions, by what became of their commits.
    pub commits: Commits,
    /// Only these sessions (a team's, a repository's, an agent's).
    pub only: Only,
    /// Only sessions whose telemetry names a tool or MCP server (what a workflow
    /// grouping's overall figures count, once each).
    pub with_workflow: bool,
    /// Whether [`Db::analytics_tallies`] sums the token kinds (tokens, the cache-hit
    /// ratio, alerts); else they read 0 — seven sums a row fewer, a third of a cost
    /// view's time.
    pub tokens: bool,
}

impl FactQuery {
    /// Whether `other` reads the same rows, grouped and bucketed the same way (only
    /// the value summed differs): both can be tallied in one scan.
    pub fn same_rows(&self, other: &FactQuery) -> bool {
        self.key == other.key
            && self.buckets == other.buckets
            && (self.from_ns, self.to_ns) == (other.from_ns, other.to_ns)
            && self.commits == other.commits
            && self.only == other.only
            && self.with_workflow == other.with_workflow
    }

    /// Binds [`FactQuery::filter`]'s parameters.
    fn bind<'q, O>(
        &'q self,
        mut query: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments> {
        query = query.bind(self.from_ns).bind(self.to_ns);
        for v in self.only.values() {
            query = query.bind(v);
        }
        query
    }

    /// Binds [`Db::analytics_first_seen`]'s parameters: the range and [`Only::values`]
    /// for the rows in range, then the range's start and the values again for the
    /// earlier ones.
    fn bind_first_seen<'q, O>(
        &'q self,
        query: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments> {
        let mut query = self.bind(query).bind(self.from_ns);
        for v in self.only.values() {
            query = query.bind(v);
        }
        query
    }

    /// The same for a scalar query.
    fn bind_scalar<'q, O>(
        &'q self,
        mut query: sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments>,
    ) -> sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments> {
        query = query.bind(self.from_ns).bind(self.to_ns);
        for v in self.only.values() {
            query = query.bind(v);
        }
        query
    }

    /// The rows read, as `f` (and the workflows as `w`).
    fn table(&self) -> &'static str {
        match self.key {
            FactKey::Model => "analytics_model_facts f",
            FactKey::Workflow => {
                "analytics_facts f JOIN session_workflows w ON w.session_id = f.session_id"
            }
            _ => "analytics_facts f",
        }
    }

    fn key_sql(&self) -> &'static str {
        match self.key {
            FactKey::Org => "org",
            FactKey::Team => "team",
            FactKey::Repo => "repo",
            FactKey::Agent => "agent",
            FactKey::Person => "person",
            FactKey::Model => "CASE WHEN model = '' THEN NULL ELSE model END",
            FactKey::TeamAgent => "team || '\u{1f}' || coalesce(agent, 'unknown')",
            FactKey::Workflow => "w.kind || ':' || w.name",
        }
    }

    /// The flag marking the row through which a session counts once.
    fn first(&self) -> &'static str {
        match self.key {
            FactKey::Model => "first_model",
            _ => "first_team",
        }
    }

    fn value_sql(&self) -> &'static str {
        match self.value {
            FactValue::Sessions => "CAST(1 AS DOUBLE PRECISION)",
            FactValue::Tokens => "CAST(input + output AS DOUBLE PRECISION)",
            FactValue::Cost => "cost",
            FactValue::Counted(i) => COUNTED_COLUMNS.get(i).copied().unwrap_or("NULL"),
            FactValue::Duration => "duration_seconds",
            FactValue::Mode { headless: true } => {
                "CAST(CASE WHEN headless = 1 THEN 1 WHEN headless = 0 THEN 0 END AS DOUBLE PRECISION)"
            }
            FactValue::Mode { headless: false } => {
                "CAST(CASE WHEN headless = 0 THEN 1 WHEN headless = 1 THEN 0 END AS DOUBLE PRECISION)"
            }
        }
    }

    /// The conditions of [`Only`] on the rows aliased `a` (parameters: [`Only::values`]),
    /// and which of a session's rows is read: every grouping but team's and model's
    /// reads one row per session, its first team's, or with a team named, that team's.
    fn narrowing(&self, a: &str) -> String {
        let mut s = String::new();
        let model = self.key == FactKey::Model;
        let per_team = matches!(self.key, FactKey::Team | FactKey::TeamAgent);
        match (&self.only.team, model, per_team) {
            (Some(_), true, _) => s.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM analytics_facts t WHERE t.session_id = {a}.session_id AND t.team = ?)"
            )),
            (Some(_), false, _) => s.push_str(&format!(" AND {a}.team = ?")),
            (None, false, false) => s.push_str(&format!(" AND {a}.first_team = 1")),
            (None, _, _) => {}
        }
        for (column, v) in [("repo", &self.only.repo), ("agent", &self.only.agent)] {
            if v.is_none() {
                continue;
            }
            if model {
                s.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM analytics_facts t WHERE t.session_id = {a}.session_id \
                     AND t.first_team = 1 AND t.{column} = ?)"
                ));
            } else {
                s.push_str(&format!(" AND {a}.{column} = ?"));
            }
        }
        s
    }

    /// The WHERE clause (parameters: from, to, then [`Only::values`]; bound by
    /// [`FactQuery::bind`]).
    fn filter(&self) -> String {
        let mut s = String::from("f.started_ns >= ? AND f.started_ns < ?");
        s.push_str(&self.narrowing("f"));
        if self.with_workflow {
            s.push_str(
                " AND EXISTS (SELECT 1 FROM session_workflows w2 WHERE w2.session_id = f.session_id)",
            );
        }
        // What became of the commits, as the facts keep it ([`Db::commit_status`]).
        let status = match self.commits {
            Commits::Any => None,
            Commits::None => Some("commits = 0"),
            Commits::Judged => Some("commits >= 2"),
            Commits::Unlanded => Some("commits = 2"),
        };
        if let Some(status) = status {
            if self.key == FactKey::Model {
                s.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM analytics_facts c WHERE c.session_id = f.session_id \
                     AND c.first_team = 1 AND c.{status})"
                ));
            } else {
                s.push_str(&format!(" AND f.{status}"));
            }
        }
        s
    }
}

/// The sums of one (bucket, key).
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct Tally {
    /// The bucket's first day (UTC day number).
    pub bucket: i64,
    /// `None`: the sessions do not name it.
    #[sqlx(rename = "group_key")]
    pub key: Option<String>,
    /// Rows summed.
    pub rows_summed: i64,
    /// The value summed (`None`: no row had one).
    pub value: Option<f64>,
    /// The value of the rows through which a session counts once.
    pub whole: Option<f64>,
    /// Rows without the value (a counter not reported, no cost).
    pub missing: i64,
    /// Rows whose cost is estimated from the price table.
    pub estimated: i64,
    pub split_by_price: i64,
    pub split_by_tokens: i64,
    pub input: i64,
    pub output: i64,
    pub cache_read: i64,
    pub cache_creation: i64,
    pub reasoning: i64,
    /// Input and cache reads of the rows through which a session counts once.
    pub whole_input: i64,
    pub whole_cache_read: i64,
}

/// The values of a (bucket, key)'s sessions, for quantiles.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValueGroup {
    /// The bucket's first day (local day number).
    pub bucket: i64,
    pub key: Option<String>,
    /// Every row's value.
    pub values: Vec<f64>,
    /// The values of the rows through which a session counts once (what overall
    /// figures take: a session of two teams is one session).
    pub once: Vec<f64>,
}

/// When people were first seen (`new-people`): the start of their first session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirstSeen {
    /// `(key, person, start)`: their first session of the key (a team's, an agent's …).
    pub by_key: Vec<(Option<String>, String, i64)>,
    /// `(person, start)`: their first session of all.
    pub overall: Vec<(String, i64)>,
}

/// Distinct people, for `active-people`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeopleTally {
    /// Per (bucket, key).
    pub by_bucket_key: Vec<(i64, Option<String>, i64)>,
    /// Per key over the range.
    pub by_key: Vec<(Option<String>, i64)>,
    /// Per bucket over every key.
    pub by_bucket: Vec<(i64, i64)>,
    /// Over everything.
    pub total: i64,
    /// Sessions naming no person.
    pub nameless: i64,
}

impl Conn {
    /// When the stored facts were computed from another `fingerprint` (identities,
    /// prices, rules), queues every session to be computed again and records it, in one
    /// transaction. `None` when nothing changed, else how many sessions were queued.
    pub async fn analytics_on_new_basis(
        &mut self,
        fingerprint: &str,
        now_ns: i64,
    ) -> Result<Option<u64>> {
        let mut tx = self.begin_write().await?;
        let was: Option<String> =
            query_scalar("SELECT fingerprint FROM analytics_basis WHERE id = 1")
                .fetch_optional(tx.conn())
                .await?;
        if was.as_deref() == Some(fingerprint) {
            return Ok(None);
        }
        let queued = query(
            "INSERT INTO analytics_queue (session_id, touched_ns) SELECT id, ? FROM sessions WHERE true \
             ON CONFLICT (session_id) DO UPDATE SET touched_ns = excluded.touched_ns",
        )
        .bind(now_ns)
        .execute(tx.conn())
        .await?
        .rows_affected();
        query(
            "INSERT INTO analytics_basis (id, fingerprint) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint",
        )
        .bind(fingerprint)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(Some(queued))
    }
}

impl Tx<'_> {
    /// Queued sessions, at most `limit`, by id (the primary key: a queue of every
    /// session after the identities file changed is read in order, not sorted for each
    /// round), locked until this transaction ends (other replicas skip them).
    pub async fn claim_analytics_queue(&mut self, limit: i64) -> Result<Vec<QueuedSession>> {
        let sql = format!(
            "SELECT session_id, touched_ns FROM analytics_queue \
             ORDER BY session_id LIMIT ?{}",
            self.engine().skip_locked()
        );
        query_as(sql).bind(limit).fetch_all(self.conn()).await
    }

    /// Replaces these sessions' facts with `rows` and `models` (a session with no rows
    /// has none: it is gone, or started at no known time) and takes them off the queue
    /// unless they were touched again since they were read.
    pub async fn replace_analytics_facts(
        &mut self,
        done: &[QueuedSession],
        rows: &[FactRow],
        models: &[ModelFactRow],
    ) -> Result<()> {
        for chunk in done.chunks(500) {
            for table in ["analytics_facts", "analytics_model_facts"] {
                let mut q = query(format!(
                    "DELETE FROM {table} WHERE session_id IN ({})",
                    placeholders(chunk.len())
                ));
                for d in chunk {
                    q = q.bind(d.session_id);
                }
                q.execute(self.conn()).await?;
            }
        }
        for chunk in rows.chunks(2_000 / 33) {
            let mut q = query(values_sql(
                "INSERT INTO analytics_facts (started_ns, session_id, team, first_team, day, \
                 person, agent, repo, org, input, output, cache_read, cache_creation, reasoning, \
                 cost, cost_estimated, requests, errors, prompts, tool_invocations, tool_failures, \
                 tool_rejections, lines_added, lines_removed, files_modified, active_seconds, \
                 tool_execution_seconds, mcp_tool_invocations, request_seconds, retries, \
                 duration_seconds, headless, commits) VALUES ",
                33,
                chunk.len(),
            ));
            for r in chunk {
                q = q
                    .bind(r.started_ns)
                    .bind(r.session_id)
                    .bind(r.team.as_str())
                    .bind(i64::from(r.first_team))
                    .bind(r.day)
                    .bind(r.person.as_deref())
                    .bind(r.agent.as_deref())
                    .bind(r.repo.as_deref())
                    .bind(r.org.as_deref());
                for t in r.tokens {
                    q = q.bind(t);
                }
                q = bind_f64(q, r.cost).bind(i64::from(r.cost_estimated));
                for c in r.counted {
                    q = bind_f64(q, c);
                }
                q = bind_f64(q, r.duration_seconds)
                    .bind(r.headless.map(i64::from))
                    .bind(r.commits);
            }
            q.execute(self.conn()).await?;
        }
        for chunk in models.chunks(2_000 / 13) {
            let mut q = query(values_sql(
                "INSERT INTO analytics_model_facts (started_ns, session_id, model, first_model, \
                 day, person, input, output, cache_read, cache_creation, reasoning, cost, cost_how) \
                 VALUES ",
                13,
                chunk.len(),
            ));
            for r in chunk {
                q = q
                    .bind(r.started_ns)
                    .bind(r.session_id)
                    .bind(r.model.as_deref().unwrap_or(""))
                    .bind(i64::from(r.first_model))
                    .bind(r.day)
                    .bind(r.person.as_deref());
                for t in r.tokens {
                    q = q.bind(t);
                }
                q = bind_f64(q, r.cost).bind(r.cost_how as i64);
            }
            q.execute(self.conn()).await?;
        }
        // In one statement per 200 (a round trip each on PostgreSQL).
        for chunk in done.chunks(200) {
            let mut q = query(format!(
                "DELETE FROM analytics_queue WHERE {}",
                vec!["(session_id = ? AND touched_ns <= ?)"; chunk.len()].join(" OR ")
            ));
            for d in chunk {
                q = q.bind(d.session_id).bind(d.touched_ns);
            }
            q.execute(self.conn()).await?;
        }
        Ok(())
    }
}

/// Queues these sessions' facts to be computed again; the OTLP writer calls it in the
/// transaction that stores their telemetry.
pub(super) async fn queue(
    conn: &mut AnyConnection,
    session_ids: &[i64],
    now_ns: i64,
) -> Result<()> {
    super::links::queue_sessions(conn, "analytics_queue", session_ids, now_ns).await
}

impl Db {
    /// What became of these sessions' commits, as [`FactRow::commits`] keeps it: 0 they
    /// authored none; 1 none in a repository whose default branch is known; 2 none of
    /// those reached it within [`LANDING_WINDOW_NS`] of the session's start; 3 one did.
    /// Read from the links (a merge, squash or rebased commit that inherits a link
    /// counts) and the pushes.
    pub async fn commit_status(
        &self,
        session_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, i64>> {
        let mut out = std::collections::HashMap::with_capacity(session_ids.len());
        for chunk in session_ids.chunks(500) {
            let mut q = query_as::<(i64, i64)>(format!(
                "SELECT f.session_id, CASE WHEN NOT EXISTS ({AUTHORED}) THEN 0 \
                 WHEN NOT EXISTS ({AUTHORED_JUDGED}) THEN 1 \
                 WHEN EXISTS ({AUTHORED_JUDGED} {LANDED}) THEN 3 ELSE 2 END \
                 FROM (SELECT id AS session_id, started_ns FROM sessions WHERE id IN ({})) f",
                placeholders(chunk.len())
            ));
            for id in chunk {
                q = q.bind(*id);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// Sessions waiting for their facts to be computed.
    pub async fn analytics_queued(&self) -> Result<i64> {
        query_scalar("SELECT count(*) FROM analytics_queue")
            .fetch_one(&self.pool)
            .await
    }

    /// The sums of `q`'s rows per (bucket, key).
    pub async fn analytics_tallies(&self, q: &FactQuery) -> Result<Vec<Tally>> {
        Ok(self
            .analytics_tallies_of(std::slice::from_ref(q))
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// The sums of several queries of the same rows ([`FactQuery::same_rows`]: only
    /// their values differ), in one scan: sessions, cost, tokens and the counters of a
    /// table are read together. One list of tallies per query, in their order.
    pub async fn analytics_tallies_of(&self, qs: &[FactQuery]) -> Result<Vec<Vec<Tally>>> {
        let Some(q) = qs.first() else {
            return Ok(Vec::new());
        };
        if let Some(other) = qs.iter().find(|o| !o.same_rows(q)) {
            return Err(sqlx::Error::Protocol(format!(
                "analytics_tallies_of: queries of different rows ({:?} and {:?})",
                q.key, other.key
            )));
        }
        let first = q.first();
        let tokens = qs.iter().any(|q| q.tokens);
        let sum = |expr: String| {
            if tokens {
                format!("CAST(sum({expr}) AS BIGINT)")
            } else {
                "CAST(0 AS BIGINT)".to_string()
            }
        };
        let mut sql = format!(
            "SELECT {bucket} AS bucket, {key} AS group_key, count(*) AS rows_summed, \
             {input}, {output}, {cache_read}, {cache_creation}, {reasoning}, {whole_input}, \
             {whole_cache_read}",
            input = sum("input".into()),
            output = sum("output".into()),
            cache_read = sum("cache_read".into()),
            cache_creation = sum("cache_creation".into()),
            reasoning = sum("reasoning".into()),
            whole_input = sum(format!("CASE WHEN {first} = 1 THEN input ELSE 0 END")),
            whole_cache_read = sum(format!("CASE WHEN {first} = 1 THEN cache_read ELSE 0 END")),
            bucket = q.buckets.sql(),
            key = q.key_sql(),
        );
        for q in qs {
            let v = q.value_sql();
            let cost_kind = |how: &str| {
                match (q.value, q.key) {
                (FactValue::Cost, FactKey::Model) => format!(
                    "CAST(sum(CASE WHEN cost IS NOT NULL AND cost_how = {how} THEN 1 ELSE 0 END) AS BIGINT)"
                ),
                (FactValue::Cost, _) if how == "1" => {
                    "CAST(sum(CASE WHEN cost IS NOT NULL AND cost_estimated = 1 THEN 1 ELSE 0 END) AS BIGINT)".into()
                }
                _ => "CAST(0 AS BIGINT)".into(),
            }
            };
            sql.push_str(&format!(
                ", sum({v}), sum(CASE WHEN {first} = 1 THEN {v} END), \
                 CAST(sum(CASE WHEN {v} IS NULL THEN 1 ELSE 0 END) AS BIGINT), {}, {}, {}",
                cost_kind("1"),
                cost_kind("2"),
                cost_kind("3"),
            ));
        }
        sql.push_str(&format!(
            " FROM {table} WHERE {filter} GROUP BY 1, 2",
            table = q.table(),
            filter = q.filter(),
        ));
        let mut query = query(sql).bind(q.from_ns).bind(q.to_ns);
        for v in q.only.values() {
            query = query.bind(v);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut out: Vec<Vec<Tally>> = vec![Vec::with_capacity(rows.len()); qs.len()];
        for row in &rows {
            use sqlx::Row;
            let mut t = Tally {
                bucket: row.try_get(0)?,
                key: row.try_get(1)?,
                rows_summed: row.try_get(2)?,
                input: row.try_get(3)?,
                output: row.try_get(4)?,
                cache_read: row.try_get(5)?,
                cache_creation: row.try_get(6)?,
                reasoning: row.try_get(7)?,
                whole_input: row.try_get(8)?,
                whole_cache_read: row.try_get(9)?,
                ..Default::default()
            };
            for (i, q) in qs.iter().enumerate() {
                let c = 10 + 6 * i;
                t.value = row.try_get(c)?;
                t.whole = row.try_get(c + 1)?;
                t.missing = row.try_get(c + 2)?;
                t.estimated = row.try_get(c + 3)?;
                t.split_by_price = row.try_get(c + 4)?;
                t.split_by_tokens = row.try_get(c + 5)?;
                let mut mine = t.clone();
                if !q.tokens {
                    // As its own query would read them: no token sums.
                    (
                        mine.input,
                        mine.output,
                        mine.cache_read,
                        mine.cache_creation,
                    ) = (0, 0, 0, 0);
                    (mine.reasoning, mine.whole_input, mine.whole_cache_read) = (0, 0, 0);
                }
                out[i].push(mine);
            }
        }
        Ok(out)
    }

    /// The distinct (bucket, key, person) of `q`'s rows naming a person (its value is
    /// not read) — far fewer than sessions: a person active every day of a week is one
    /// triple of that week.
    pub async fn analytics_people_triples(
        &self,
        q: &FactQuery,
    ) -> Result<Vec<(i64, Option<String>, String)>> {
        let (bucket, key, table, filter) = (q.buckets.sql(), q.key_sql(), q.table(), q.filter());
        q.bind(query_as(format!(
            "SELECT DISTINCT {bucket}, {key}, person FROM {table} \
             WHERE {filter} AND f.person IS NOT NULL"
        )))
        .fetch_all(&self.pool)
        .await
    }

    /// `q`'s sessions naming no person.
    pub async fn analytics_nameless(&self, q: &FactQuery) -> Result<i64> {
        q.bind_scalar(query_scalar(format!(
            "SELECT count(*) FROM {table} WHERE {filter} AND f.person IS NULL AND f.{first} = 1",
            table = q.table(),
            filter = q.filter(),
            first = q.first(),
        )))
        .fetch_one(&self.pool)
        .await
    }

    /// Distinct people of `q`'s rows (its value is not read): one scan for the distinct
    /// (bucket, key, person) triples ([`Db::analytics_people_triples`]), counted here
    /// four ways.
    pub async fn analytics_people(&self, q: &FactQuery) -> Result<PeopleTally> {
        use std::collections::{HashMap, HashSet};
        let triples = self.analytics_people_triples(q).await?;
        let nameless = self.analytics_nameless(q).await?;
        let mut by_bucket_key: HashMap<(i64, Option<&str>), i64> = HashMap::new();
        let mut by_key: HashMap<Option<&str>, HashSet<&str>> = HashMap::new();
        let mut by_bucket: HashMap<i64, HashSet<&str>> = HashMap::new();
        let mut everyone: HashSet<&str> = HashSet::new();
        for (b, k, p) in &triples {
            *by_bucket_key.entry((*b, k.as_deref())).or_default() += 1;
            by_key.entry(k.as_deref()).or_default().insert(p);
            by_bucket.entry(*b).or_default().insert(p);
            everyone.insert(p);
        }
        Ok(PeopleTally {
            by_bucket_key: by_bucket_key
                .into_iter()
                .map(|((b, k), n)| (b, k.map(str::to_string), n))
                .collect(),
            by_key: by_key
                .into_iter()
                .map(|(k, p)| (k.map(str::to_string), p.len() as i64))
                .collect(),
            by_bucket: by_bucket
                .into_iter()
                .map(|(b, p)| (b, p.len() as i64))
                .collect(),
            total: everyone.len() as i64,
            nameless,
        })
    }

    /// The values of `q`'s rows that have one, per (bucket, key): what quantiles are
    /// taken over. They come joined as text, one row per (bucket, key) — a few hundred
    /// rows for a 90-day view instead of one per session and team, whose decoding cost
    /// most of the time.
    pub async fn analytics_values(&self, q: &FactQuery) -> Result<Vec<ValueGroup>> {
        let v = q.value_sql();
        let first = q.first();
        // (bucket, key, every value, the values counted once), the values as text.
        type Joined = (i64, Option<String>, Option<String>, Option<String>);
        let rows: Vec<Joined> = q
            .bind(query_as(format!(
                "SELECT {bucket}, {key}, {all}, {once} FROM {table} \
                 WHERE {filter} AND {v} IS NOT NULL GROUP BY 1, 2",
                bucket = q.buckets.sql(),
                key = q.key_sql(),
                all = self.engine.joined(v),
                once = self
                    .engine
                    .joined(&format!("CASE WHEN f.{first} = 1 THEN {v} END")),
                table = q.table(),
                filter = q.filter(),
            )))
            .fetch_all(&self.pool)
            .await?;
        let parse = |text: Option<String>| -> Result<Vec<f64>> {
            text.as_deref()
                .unwrap_or("")
                .split(',')
                .filter(|t| !t.is_empty())
                .map(|t| {
                    t.trim().parse::<f64>().map_err(|_| {
                        sqlx::Error::Protocol(format!("analytics value {t:?} is not a number"))
                    })
                })
                .collect()
        };
        rows.into_iter()
            .map(|(bucket, key, all, once)| {
                Ok(ValueGroup {
                    bucket,
                    key,
                    values: parse(all)?,
                    once: parse(once)?,
                })
            })
            .collect()
    }

    /// When each person was first seen, of those first seen in `q`'s range: per key of
    /// `q`, and over all sessions.
    pub async fn analytics_first_seen(&self, q: &FactQuery) -> Result<FirstSeen> {
        // The (key, person) pairs of the range with their first start in it, less those
        // seen before the range: one probe each into (person, started_ns), instead of
        // the minimum over every row of all time. Narrowed (a team's, a repository's, an
        // agent's sessions), "first" is first within them: new to the agent, say.
        let (table, key) = (q.table(), q.key_sql());
        let earlier = match q.key {
            FactKey::Model => "analytics_model_facts e",
            FactKey::Workflow => {
                "analytics_facts e JOIN session_workflows w ON w.session_id = e.session_id"
            }
            _ => "analytics_facts e",
        };
        // Unnarrowed, any earlier row of the person counts (no need to read which).
        let unless_all = |v: String| if q.only.is_empty() { String::new() } else { v };
        let (in_range, before) = (q.narrowing("f"), unless_all(q.narrowing("e")));
        let by_key = query_as(format!(
            "SELECT g.group_key, g.person, g.first_ns FROM (\
               SELECT {key} AS group_key, f.person AS person, min(f.started_ns) AS first_ns \
               FROM {table} WHERE f.person IS NOT NULL AND f.started_ns >= ? \
               AND f.started_ns < ?{in_range} GROUP BY 1, 2) g \
             WHERE NOT EXISTS (SELECT 1 FROM {earlier} WHERE e.person = g.person \
               AND e.started_ns < ?{before} AND ({key} = g.group_key \
               OR ({key} IS NULL AND g.group_key IS NULL)))"
        ));
        let by_key = q.bind_first_seen(by_key);
        let by_key: Vec<(Option<String>, String, i64)> = by_key.fetch_all(&self.pool).await?;
        let all = FactQuery {
            key: FactKey::Org,
            ..q.clone()
        };
        let (in_range, before) = (
            unless_all(all.narrowing("f")),
            unless_all(all.narrowing("e")),
        );
        let overall = query_as(format!(
            "SELECT g.person, g.first_ns FROM (\
               SELECT f.person AS person, min(f.started_ns) AS first_ns FROM analytics_facts f \
               WHERE f.person IS NOT NULL AND f.started_ns >= ? AND f.started_ns < ?{in_range} \
               GROUP BY 1) g \
             WHERE NOT EXISTS (SELECT 1 FROM analytics_facts e WHERE e.person = g.person \
               AND e.started_ns < ?{before})"
        ));
        let overall = q.bind_first_seen(overall);
        let overall: Vec<(String, i64)> = overall.fetch_all(&self.pool).await?;
        Ok(FirstSeen { by_key, overall })
    }

    /// The agents of `q`'s sessions that lack its value (`None`: unnamed), sorted.
    pub async fn analytics_missing_agents(&self, q: &FactQuery) -> Result<Vec<Option<String>>> {
        let q = FactQuery {
            key: FactKey::Agent,
            ..q.clone()
        };
        q.bind_scalar(query_scalar(format!(
            "SELECT DISTINCT agent FROM analytics_facts f WHERE {} AND {} IS NULL ORDER BY 1",
            q.filter(),
            q.value_sql()
        )))
        .fetch_all(&self.pool)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_buckets_are_a_case_over_their_first_days() {
        assert_eq!(
            FactBuckets::Starting(vec![10, 41, 69]).sql(),
            "CAST(CASE WHEN day < 41 THEN 10 WHEN day < 69 THEN 41 ELSE 69 END AS BIGINT)"
        );
        assert_eq!(FactBuckets::Week.sql(), "(day - (day + 3) % 7)");
    }
}

/// A pull request as analytics' impact metrics count it (`pull_facts`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PullFact {
    pub repo: String,
    pub number: i64,
    /// The author's login.
    pub author: Option<String>,
    pub state: String,
    pub merged_ns: Option<i64>,
    /// The earliest author time of its commits.
    pub first_commit_ns: Option<i64>,
    /// 1: a commit of it is agent-assisted.
    pub assisted: i64,
    /// The agents of its sessions and trailers, one per line.
    pub agents: String,
    pub cost: Option<f64>,
    pub cost_estimated: i64,
    pub tokens: Option<i64>,
    pub lines_added: Option<i64>,
    pub agent_lines_added: Option<i64>,
    /// First attempts of its head's CI runs that passed, as a share.
    pub ci_first_run_pass: Option<f64>,
    /// Incidents its deployments caused.
    pub incidents: i64,
    pub deployments: i64,
    /// Its added lines some upload saw run, of those coverable (`None`: no coverage).
    pub patch_covered: Option<i64>,
    pub patch_coverable: Option<i64>,
    /// The same of its agent-written added lines.
    pub agent_patch_covered: Option<i64>,
    pub agent_patch_coverable: Option<i64>,
}

const PULL_FACT_COLUMNS: &str = "repo, number, author, state, merged_ns, first_commit_ns, \
     assisted, agents, cost, cost_estimated, tokens, lines_added, agent_lines_added, \
     ci_first_run_pass, incidents, deployments, patch_covered, patch_coverable, \
     agent_patch_covered, agent_patch_coverable";

impl Conn {
    /// Stores a pull request's facts as its report was just built (replacing any).
    pub async fn put_pull_fact(&mut self, f: &PullFact, now_ns: i64) -> Result<()> {
        let q = query(format!(
            "INSERT INTO pull_facts ({PULL_FACT_COLUMNS}, built_ns) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (repo, number) DO UPDATE SET author = excluded.author, \
             state = excluded.state, merged_ns = excluded.merged_ns, \
             first_commit_ns = excluded.first_commit_ns, assisted = excluded.assisted, \
             agents = excluded.agents, cost = excluded.cost, \
             cost_estimated = excluded.cost_estimated, tokens = excluded.tokens, \
             lines_added = excluded.lines_added, agent_lines_added = excluded.agent_lines_added, \
             ci_first_run_pass = excluded.ci_first_run_pass, incidents = excluded.incidents, \
             deployments = excluded.deployments, patch_covered = excluded.patch_covered, \
             patch_coverable = excluded.patch_coverable, \
             agent_patch_covered = excluded.agent_patch_covered, \
             agent_patch_coverable = excluded.agent_patch_coverable, built_ns = excluded.built_ns"
        ))
        .bind(f.repo.as_str())
        .bind(f.number)
        .bind(f.author.as_deref())
        .bind(f.state.as_str())
        .bind(f.merged_ns)
        .bind(f.first_commit_ns)
        .bind(f.assisted)
        .bind(f.agents.as_str());
        bind_f64(
            bind_f64(q, f.cost)
                .bind(f.cost_estimated)
                .bind(f.tokens)
                .bind(f.lines_added)
                .bind(f.agent_lines_added),
            f.ci_first_run_pass,
        )
        .bind(f.incidents)
        .bind(f.deployments)
        .bind(f.patch_covered)
        .bind(f.patch_coverable)
        .bind(f.agent_patch_covered)
        .bind(f.agent_patch_coverable)
        .bind(now_ns)
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }
}

impl Db {
    /// The facts of the pull requests merged in `[from_ns, to_ns)`, by merge time.
    pub async fn pull_facts_merged_between(
        &self,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<PullFact>> {
        query_as(format!(
            "SELECT {PULL_FACT_COLUMNS} FROM pull_facts WHERE merged_ns >= ? AND merged_ns < ? \
             ORDER BY merged_ns, repo, number"
        ))
        .bind(from_ns)
        .bind(to_ns)
        .fetch_all(&self.pool)
        .await
    }

    /// Reverts of the pull requests merged in `[from_ns, to_ns)` (whose facts are
    /// stored): `(repo, number, the reverting commit's author time)` for each commit
    /// linked as reverting its merge commit (a squash, a merge) or one of its commits.
    pub async fn pull_reverts_merged_between(
        &self,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<(String, i64, Option<i64>)>> {
        query_as(
            "SELECT p.repo, p.number, c.authored_ns FROM pull_facts p \
             JOIN pull_requests pr ON pr.repo = p.repo AND pr.number = p.number \
             JOIN links l ON l.to_kind = 'commit' AND l.to_key = pr.repo || '@' || pr.merge_commit_sha \
               AND l.relation = 'reverts' \
             JOIN commits c ON c.repo = p.repo AND c.sha = substr(l.from_key, length(p.repo) + 2) \
             WHERE p.merged_ns >= ? AND p.merged_ns < ? \
             UNION ALL \
             SELECT p.repo, p.number, c.authored_ns FROM pull_facts p \
             JOIN pull_request_commits pc ON pc.repo = p.repo AND pc.number = p.number \
             JOIN links l ON l.to_kind = 'commit' AND l.to_key = pc.repo || '@' || pc.sha \
               AND l.relation = 'reverts' \
             JOIN commits c ON c.repo = p.repo AND c.sha = substr(l.from_key, length(p.repo) + 2) \
             WHERE p.merged_ns >= ? AND p.merged_ns < ?",
        )
        .bind(from_ns)
        .bind(to_ns)
        .bind(from_ns)
        .bind(to_ns)
        .fetch_all(&self.pool)
        .await
    }

    /// Pull requests merged in `[from_ns, to_ns)` whose facts are not counted as they
    /// are: no report built since the merge, or one queued to be built again.
    pub async fn pulls_merged_without_facts(&self, from_ns: i64, to_ns: i64) -> Result<i64> {
        query_scalar(
            "SELECT count(*) FROM pull_requests p WHERE p.merged_ns >= ? AND p.merged_ns < ? \
             AND (NOT EXISTS (SELECT 1 FROM pull_facts f WHERE f.repo = p.repo \
                  AND f.number = p.number AND f.merged_ns IS NOT NULL) \
               OR EXISTS (SELECT 1 FROM report_queue r WHERE r.repo = p.repo AND r.number = p.number))",
        )
        .bind(from_ns)
        .bind(to_ns)
        .fetch_one(&self.pool)
        .await
    }
}
