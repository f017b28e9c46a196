//! The single writer: takes decoded batches from a bounded queue, writes as many as are
//! waiting in one transaction (group commit), and acknowledges each request only after
//! that transaction is committed. A full queue is refused at once, never buffered.

use super::{query, query_as, query_scalar};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use sqlx::AnyConnection;
use sqlx::{Any, Connection, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::batch::{Batch, LogRow, PointFact, SpanRow};
use super::deliveries::DeliveryRow;
use super::uploads::UploadBatch;
use super::{Conn, Engine, text};
use crate::facts::{Additive, Counter, Tokens};
use crate::telemetry::Telemetry;

/// Most requests written in one transaction.
const MAX_GROUP: usize = 64;
/// Key rows per multi-row INSERT (3 columns × 300 rows stays far below SQLite's bind
/// limit).
const KEY_CHUNK: usize = 300;

/// What the writer did with one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Records stored for the first time.
    pub inserted: u64,
    /// Records already stored (a re-sent export): accepted, not counted again.
    pub duplicates: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the write queue is full ({0} requests waiting); retry shortly")]
    Overloaded(usize),
    #[error("tracelink is shutting down")]
    ShuttingDown,
    #[error("storing the batch failed: {0}")]
    Storage(String),
}

/// What the writer stores.
pub enum Work {
    Otlp(Batch),
    Delivery(DeliveryRow),
    /// A CI upload's files ([`super::uploads`]).
    Upload(Box<UploadBatch>),
    /// Deliveries marked for replay ([`super::deliveries::replay`]); `inserted` is
    /// how many.
    Replay(super::deliveries::Replay),
    /// Sessions queued for linking again ([`super::links::queue_matching`]);
    /// `inserted` is how many.
    Relink(super::links::RelinkFilter),
}

struct Job {
    work: Work,
    done: oneshot::Sender<Result<Written, String>>,
}

/// The handle request handlers use to submit batches.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Job>,
    capacity: usize,
}

impl WriterHandle {
    /// Queues a batch and waits until it is committed.
    pub async fn submit(&self, mut batch: Batch) -> Result<Written, SubmitError> {
        if self.is_full() {
            return Err(SubmitError::Overloaded(self.capacity));
        }
        // Compressed here, on the request's task, so the single writer only stores it.
        if batch.raw.is_none() && !batch.is_empty() {
            batch.raw = Some(super::raw::seal(&batch));
        }
        self.submit_work(Work::Otlp(batch)).await
    }

    /// Queues any work and waits until it is committed.
    pub async fn submit_work(&self, work: Work) -> Result<Written, SubmitError> {
        let (done, wait) = oneshot::channel();
        match self.tx.try_send(Job { work, done }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(SubmitError::Overloaded(self.capacity));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(SubmitError::ShuttingDown),
        }
        match wait.await {
            Ok(Ok(w)) => Ok(w),
            Ok(Err(e)) => Err(SubmitError::Storage(e)),
            Err(_) => Err(SubmitError::ShuttingDown),
        }
    }

    pub fn depth(&self) -> usize {
        self.capacity - self.tx.capacity()
    }

    /// Whether a request now would be refused for want of queue room.
    pub fn is_full(&self) -> bool {
        self.tx.capacity() == 0
    }
}

/// Starts the writer task. It ends when every handle is dropped and the queue is drained;
/// await the returned join handle to know every acknowledged write is committed.
pub fn spawn(
    conn: Conn,
    capacity: usize,
    telemetry: Arc<Telemetry>,
) -> (WriterHandle, tokio::task::JoinHandle<()>) {
    spawn_with_events(conn, capacity, telemetry, None)
}

/// Like [`spawn`], also telling `sessions` which sessions each commit touched (best
/// effort: when the receiver lags, the notice is dropped, never the write).
pub fn spawn_with_events(
    conn: Conn,
    capacity: usize,
    telemetry: Arc<Telemetry>,
    sessions: Option<mpsc::Sender<Vec<i64>>>,
) -> (WriterHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity);
    let task = tokio::spawn(run(conn, rx, telemetry, sessions));
    (WriterHandle { tx, capacity }, task)
}

async fn run(
    mut writer: Conn,
    mut rx: mpsc::Receiver<Job>,
    telemetry: Arc<Telemetry>,
    sessions: Option<mpsc::Sender<Vec<i64>>>,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    let mut days = super::partitions::Days::default();
    let engine = writer.engine;
    while let Some(first) = rx.recv().await {
        if engine == Engine::Postgres {
            days.ensure(&mut writer.conn, now_ns()).await;
        }
        jobs.push(first);
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let batches: Vec<&Work> = jobs.iter().map(|j| &j.work).collect();
        let result = write_group(&mut writer.conn, engine, &batches).await;
        telemetry.record_commit(jobs.len(), started.elapsed());
        let e = match result {
            Ok((written, touched)) => {
                // The notice goes out before the acknowledgements, so whoever was
                // answered can rely on the report update being under way.
                if let (Some(tx), false) = (&sessions, touched.is_empty()) {
                    let _ = tx.try_send(touched);
                }
                for (job, w) in jobs.drain(..).zip(written) {
                    let _ = job.done.send(Ok(w));
                }
                continue;
            }
            Err(e) => e,
        };
        // A lost connection (PostgreSQL restarted, a failover) is replaced before
        // anything is retried, so the group's requests are written, not refused.
        let reconnected = match writer.recover().await {
            Ok(replaced) => replaced,
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "the database cannot be reached");
                false
            }
        };
        let transient = super::is_transient(&e);
        if jobs.len() > 1 || reconnected || transient {
            // One bad batch must not fail the others: write each on its own. A deadlock
            // with another replica's writer (PostgreSQL) is run again, not refused.
            if transient {
                tracing::info!(error = %e, "group commit lost a deadlock to another replica; writing its requests again");
            } else {
                tracing::warn!(error = %e, "group commit failed; retrying its requests one by one");
            }
            for job in jobs.drain(..) {
                let mut r = write_group(&mut writer.conn, engine, &[&job.work]).await;
                for _ in 1..TRANSIENT_TRIES {
                    match &r {
                        Err(e) if super::is_transient(e) => {
                            r = write_group(&mut writer.conn, engine, &[&job.work]).await;
                        }
                        _ => break,
                    }
                }
                if let (Ok((_, touched)), Some(tx)) = (&r, &sessions) {
                    let _ = tx.try_send(touched.clone());
                }
                let _ = job.done.send(
                    r.map(|(mut w, _)| w.pop().unwrap_or_default())
                        .map_err(|e| e.to_string()),
                );
            }
        } else {
            tracing::error!(error = %e, "storing a batch failed");
            for job in jobs.drain(..) {
                let _ = job.done.send(Err(e.to_string()));
            }
        }
    }
    if let Err(e) = writer.close().await {
        tracing::warn!(error = %e, "closing the writer connection");
    }
}

/// Writes a group in one transaction; returns each request's outcome and the sessions
/// whose facts changed.
async fn write_group(
    conn: &mut AnyConnection,
    engine: Engine,
    work: &[&Work],
) -> Result<(Vec<Written>, Vec<i64>), sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut out = Vec::with_capacity(work.len());
    let mut touched = Vec::new();
    for w in work {
        out.push(match w {
            Work::Otlp(b) => {
                let (written, sessions) = write_batch(&mut tx, engine, b).await?;
                touched.extend(sessions);
                written
            }
            Work::Delivery(d) => super::deliveries::write(&mut tx, d).await?,
            Work::Upload(u) => super::uploads::write(&mut tx, u).await?,
            Work::Replay(r) => Written {
                inserted: super::deliveries::replay(&mut tx, r).await?,
                duplicates: 0,
            },
            Work::Relink(f) => Written {
                inserted: super::links::queue_matching(&mut tx, f, now_ns()).await?,
                duplicates: 0,
            },
        });
    }
    touched.sort_unstable();
    touched.dedup();
    // Durably: the commits these sessions may have produced are linked again even if
    // the process stops before the publisher sees the notice.
    super::links::queue_relink(&mut tx, &touched, now_ns()).await?;
    super::analytics::queue(&mut tx, &touched, now_ns()).await?;
    tx.commit().await?;
    Ok((out, touched))
}

/// Additive facts gathered per session while a batch is written.
#[derive(Default)]
struct Sums {
    counters: BTreeMap<Counter, f64>,
    tokens: BTreeMap<String, Tokens>,
}

impl Sums {
    fn add(&mut self, a: &Additive) {
        for (c, v) in &a.counters {
            *self.counters.entry(*c).or_default() += v;
        }
        if let Some((model, t)) = &a.tokens {
            match self.tokens.get_mut(model) {
                Some(slot) => slot.merge(t),
                None => {
                    self.tokens.insert(model.clone(), *t);
                }
            }
        }
    }
}

use crate::time::now_ns;

async fn write_batch(
    tx: &mut Transaction<'_, Any>,
    engine: Engine,
    b: &Batch,
) -> Result<(Written, Vec<i64>), sqlx::Error> {
    let mut written = Written::default();
    let session_ids = upsert_sessions(tx, b).await?;
    let mut sums: HashMap<usize, Sums> = HashMap::new();
    if b.is_empty() {
        return Ok((written, session_ids));
    }

    // The request's raw record first: its id is what the key rows point to. When
    // tracelink received it is what retention counts from (agents' own timestamps can
    // be 0).
    let sealed;
    let raw = match &b.raw {
        Some(raw) => raw,
        None => {
            sealed = super::raw::seal(b);
            &sealed
        }
    };
    let rows = b.spans.len() + b.logs.len() + b.points.len();
    let received_ns = now_ns();
    // A request stored before (an exporter's retry) has the same digest and stores
    // nothing. PostgreSQL's raw records are partitioned by day, so the digest lives in a
    // table beside them ([`super::partitions`]), written in the same statement; SQLite's
    // is a unique index on the record itself.
    let record: Option<i64> = query_scalar(match engine {
        Engine::Sqlite => {
            "INSERT INTO raw_records (received_ns, signal, format, rows, body, digest) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING RETURNING id"
        }
        Engine::Postgres => {
            "WITH fresh AS (INSERT INTO raw_digests (digest, received_ns) VALUES (?6, ?1) \
               ON CONFLICT DO NOTHING RETURNING digest) \
             INSERT INTO raw_records (received_ns, signal, format, rows, body, digest) \
             SELECT ?1, ?2, ?3, ?4, ?5, digest FROM fresh RETURNING id"
        }
    })
    .bind(received_ns)
    .bind(b.signal.as_str())
    .bind(super::raw::FORMAT_PROTO_DEFLATE)
    .bind(rows as i64)
    .bind(&raw.body[..])
    .bind(&raw.digest[..])
    .fetch_optional(&mut **tx)
    .await?;
    let Some(record) = record else {
        written.duplicates = rows as u64;
        return Ok((written, session_ids));
    };

    // Spans and log records that carry facts keep a key row each, so an export
    // re-batched differently still counts them once. The others are stored in the
    // record only.
    let spans = keyed(&b.spans);
    let new_spans = store_keys(tx, record, &spans, &mut sums).await?;
    let logs = keyed(&b.logs);
    let new_logs = store_keys(tx, record, &logs, &mut sums).await?;
    written.inserted += spans.plain + new_spans + logs.plain + new_logs;
    written.duplicates +=
        spans.factual.len() as u64 - new_spans + logs.factual.len() as u64 - new_logs;

    for p in &b.points {
        let value = if p.cumulative {
            match cumulative_increment(tx, p).await? {
                Some(inc) => inc,
                None => {
                    written.duplicates += 1;
                    continue;
                }
            }
        } else {
            p.value
        };
        let inserted = query(
            "INSERT INTO metric_points (record_id, series, time_ns) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(record)
        .bind(&p.series[..])
        .bind(p.time_ns)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            written.duplicates += 1;
            continue;
        }
        written.inserted += 1;
        if let (Some(i), Some(fact)) = (p.session, &p.fact) {
            let sums = sums.entry(i).or_default();
            match fact {
                PointFact::Counter(c) => *sums.counters.entry(*c).or_default() += value,
                PointFact::Tokens { model, kinds } => {
                    let mut t = Tokens::default();
                    t.add(*kinds, value.round() as i64);
                    sums.tokens.entry(model.clone()).or_default().merge(&t);
                }
            }
        }
    }

    if written.inserted == 0 {
        // Everything was stored before: the record would hold nothing of its own.
        query("DELETE FROM raw_records WHERE id = ?")
            .bind(record)
            .execute(&mut **tx)
            .await?;
    } else {
        let mut ids = session_ids.clone();
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(KEY_CHUNK) {
            insert_keys(tx, RECORD_SESSIONS, 2, chunk.len(), |q, i| {
                q.bind(record).bind(chunk[i])
            })
            .await?;
        }
    }

    let source = b.signal.as_str();
    for (i, s) in sums {
        let id = session_ids[i];
        for (counter, value) in s.counters {
            query(
                "INSERT INTO session_counters (session_id, source, counter, value) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (session_id, source, counter) DO UPDATE SET value = session_counters.value + excluded.value",
            )
            .bind(id)
            .bind(source)
            .bind(counter.as_str())
            .bind(value)
            .execute(&mut **tx)
            .await?;
        }
        for (model, t) in s.tokens {
            let [input, output, cache_read, cache_creation, reasoning] = t.0;
            query(
                "INSERT INTO session_tokens (session_id, source, model, input, output, cache_read, cache_creation, reasoning) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (session_id, source, model) DO UPDATE SET \
                 input = session_tokens.input + excluded.input, \
                 output = session_tokens.output + excluded.output, \
                 cache_read = session_tokens.cache_read + excluded.cache_read, \
                 cache_creation = session_tokens.cache_creation + excluded.cache_creation, \
                 reasoning = session_tokens.reasoning + excluded.reasoning",
            )
            .bind(id)
            .bind(source)
            .bind(text(&model).as_ref())
            .bind(input)
            .bind(output)
            .bind(cache_read)
            .bind(cache_creation)
            .bind(reasoning)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok((written, session_ids))
}

/// Inserts or widens each session of the batch; returns their row IDs by batch index.
async fn upsert_sessions(
    tx: &mut Transaction<'_, Any>,
    b: &Batch,
) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::with_capacity(b.sessions.len());
    for s in &b.sessions {
        let id: i64 = query_scalar(
            "INSERT INTO sessions (session_key, agent, agent_version, user_id, user_email, organization, \
             repository, branch, headless, started_ns, ended_ns, created_ns) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (session_key) DO UPDATE SET \
             agent = coalesce(sessions.agent, excluded.agent), \
             agent_version = coalesce(sessions.agent_version, excluded.agent_version), \
             user_id = coalesce(sessions.user_id, excluded.user_id), \
             user_email = coalesce(sessions.user_email, excluded.user_email), \
             organization = coalesce(sessions.organization, excluded.organization), \
             repository = coalesce(sessions.repository, excluded.repository), \
             branch = coalesce(sessions.branch, excluded.branch), \
             headless = coalesce(sessions.headless, excluded.headless), \
             started_ns = min(coalesce(sessions.started_ns, excluded.started_ns), coalesce(excluded.started_ns, sessions.started_ns)), \
             ended_ns = max(coalesce(sessions.ended_ns, excluded.ended_ns), coalesce(excluded.ended_ns, sessions.ended_ns)) \
             RETURNING id",
        )
        .bind(text(s.key.as_str()).as_ref())
        .bind(s.agent.as_deref().map(text).as_deref())
        .bind(s.agent_version.as_deref().map(text).as_deref())
        .bind(s.user_id.as_deref().map(text).as_deref())
        .bind(s.user_email.as_deref().map(text).as_deref())
        .bind(s.organization.as_deref().map(text).as_deref())
        .bind(s.repository.as_deref().map(text).as_deref())
        .bind(s.branch.as_deref().map(text).as_deref())
        .bind(s.headless.map(i64::from))
        .bind(s.first_ns)
        .bind(s.last_ns)
        .bind(now_ns())
        .fetch_one(&mut **tx)
        .await?;
        for t in &s.traces {
            query(
                "INSERT INTO session_traces (session_id, trace_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(t.as_bytes())
            .execute(&mut **tx)
            .await?;
        }
        let named = s
            .commits
            .iter()
            .map(|(sha, evidence)| (sha.as_str(), *evidence))
            .chain(s.abbreviated.iter().map(|a| (a.as_str(), "event")));
        for (sha, evidence) in named {
            query(
                "INSERT INTO session_commits (session_id, sha, evidence) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(sha)
            .bind(evidence)
            .execute(&mut **tx)
            .await?;
        }
        for (path, action) in &s.files {
            query(
                "INSERT INTO session_files (session_id, path, action) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(text(path).as_ref())
            .bind(action.as_str())
            .execute(&mut **tx)
            .await?;
        }
        for (kind, name) in &s.workflows {
            query(
                "INSERT INTO session_workflows (session_id, kind, name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(*kind)
            .bind(text(name).as_ref())
            .execute(&mut **tx)
            .await?;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// `head` followed by `rows` groups of `columns` placeholders.
pub(crate) fn values_sql(head: &str, columns: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; columns].join(", "));
    let mut sql = String::with_capacity(head.len() + rows * (one.len() + 2));
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&one);
    }
    sql
}

/// A raw row that may carry additive facts, keyed for deduplication when it does.
trait Keyed: Sync {
    /// The key table's multi-row INSERT head, its columns (`record_id` first), and the
    /// query reading a record's keys back (as two blobs; the second may be empty).
    const INSERT: &'static str;
    const COLUMNS: usize;
    const OWNED: &'static str;
    fn additive(&self) -> Option<&Additive>;
    fn session(&self) -> Option<usize>;
    /// Binds the key columns after `record_id`.
    fn bind_key<'q>(&'q self, q: Query<'q>) -> Query<'q>;
    /// The key as one byte string, as [`Self::OWNED`] reads it back concatenated.
    fn key(&self, out: &mut Vec<u8>);
}

impl Keyed for SpanRow {
    const INSERT: &'static str = "INSERT INTO spans (record_id, trace_id, span_id) VALUES ";
    const COLUMNS: usize = 3;
    const OWNED: &'static str = "SELECT trace_id, span_id FROM spans WHERE record_id = ?";
    fn additive(&self) -> Option<&Additive> {
        self.additive.as_deref()
    }
    fn session(&self) -> Option<usize> {
        self.session
    }
    fn bind_key<'q>(&'q self, q: Query<'q>) -> Query<'q> {
        q.bind(self.trace_id.as_bytes())
            .bind(self.span_id.as_bytes())
    }
    fn key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.trace_id.as_bytes());
        out.extend_from_slice(self.span_id.as_bytes());
    }
}

impl Keyed for LogRow {
    const INSERT: &'static str = "INSERT INTO log_events (record_id, digest) VALUES ";
    const COLUMNS: usize = 2;
    const OWNED: &'static str =
        "SELECT digest, substr(digest, 1, 0) FROM log_events WHERE record_id = ?";
    fn additive(&self) -> Option<&Additive> {
        self.additive.as_deref()
    }
    fn session(&self) -> Option<usize> {
        self.session
    }
    fn bind_key<'q>(&'q self, q: Query<'q>) -> Query<'q> {
        q.bind(&self.digest[..])
    }
    fn key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.digest);
    }
}

/// A batch's rows of one kind: those carrying facts, and how many do not.
struct Split<'a, R> {
    factual: Vec<&'a R>,
    plain: u64,
}

fn keyed<R: Keyed>(rows: &[R]) -> Split<'_, R> {
    let factual: Vec<&R> = rows.iter().filter(|r| r.additive().is_some()).collect();
    Split {
        plain: (rows.len() - factual.len()) as u64,
        factual,
    }
}

/// Stores the key rows of the rows carrying facts (multi-row statements) and adds the
/// facts of those stored for the first time to `sums`; returns how many were. When some
/// were stored before, the keys this record now owns say which rows are new.
async fn store_keys<R: Keyed>(
    tx: &mut Transaction<'_, Any>,
    record: i64,
    rows: &Split<'_, R>,
    sums: &mut HashMap<usize, Sums>,
) -> Result<u64, sqlx::Error> {
    let mut inserted = 0;
    for chunk in rows.factual.chunks(KEY_CHUNK) {
        inserted += insert_keys(tx, R::INSERT, R::COLUMNS, chunk.len(), |q, i| {
            chunk[i].bind_key(q.bind(record))
        })
        .await?;
    }
    let mut owned: Option<HashSet<Vec<u8>>> = if inserted == rows.factual.len() as u64 {
        None
    } else {
        let keys: Vec<(Vec<u8>, Vec<u8>)> =
            query_as(R::OWNED).bind(record).fetch_all(&mut **tx).await?;
        Some(keys.into_iter().map(|(a, b)| [a, b].concat()).collect())
    };
    let mut key = Vec::with_capacity(24);
    for r in &rows.factual {
        key.clear();
        r.key(&mut key);
        // `is_new` first: it must see every row.
        if is_new(&mut owned, &key)
            && let (Some(i), Some(a)) = (r.session(), r.additive())
        {
            sums.entry(i).or_default().add(a);
        }
    }
    Ok(inserted)
}

const RECORD_SESSIONS: &str = "INSERT INTO record_sessions (record_id, session_id) VALUES ";

type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// One multi-row `INSERT … ON CONFLICT DO NOTHING` of `rows` key rows; `bind` binds row
/// `i`. Returns the rows stored.
async fn insert_keys<'q>(
    tx: &mut Transaction<'_, Any>,
    head: &str,
    columns: usize,
    rows: usize,
    bind: impl Fn(Query<'q>, usize) -> Query<'q>,
) -> Result<u64, sqlx::Error> {
    let mut sql = values_sql(head, columns, rows);
    sql.push_str(" ON CONFLICT DO NOTHING");
    let mut q = query(sql);
    for i in 0..rows {
        q = bind(q, i);
    }
    Ok(q.execute(&mut **tx).await?.rows_affected())
}

/// Whether a row is stored for the first time by this record: always when every key
/// was new (`None`); otherwise when its key is among those the record holds, each
/// counting once (a request can repeat a row).
fn is_new(owned: &mut Option<HashSet<Vec<u8>>>, key: &[u8]) -> bool {
    owned.as_mut().is_none_or(|keys| keys.remove(key))
}

/// The increment a cumulative point adds to its series, updating the series' last point.
/// `None` when the point is not newer than the last one seen (a repeat or a late arrival).
///
/// The last point is replaced by compare-and-set: written only if it is still the one
/// read, else read again. Replicas writing points of one series at once (an exporter's
/// requests spread by a load balancer) so give the increments one process gives, never
/// counting a stretch of the series twice. (For a session's series the session row,
/// upserted first in every write, already orders the writers; this holds without it.)
async fn cumulative_increment(
    tx: &mut Transaction<'_, Any>,
    p: &super::batch::PointRow,
) -> Result<Option<f64>, sqlx::Error> {
    let count = p.count.unwrap_or(0);
    for _ in 0..MAX_CAS_ROUNDS {
        let last: Option<(i64, i64, f64)> =
            query_as("SELECT start_ns, time_ns, value FROM cumulative_series WHERE series = ?")
                .bind(&p.series[..])
                .fetch_optional(&mut **tx)
                .await?;
        let inc = match last {
            None => p.value,
            // A newer start time is a restarted process: its running total starts over.
            Some((start, _, _)) if p.start_ns > start => p.value,
            Some((start, _, _)) if p.start_ns < start => return Ok(None),
            Some((_, time, _)) if p.time_ns <= time => return Ok(None),
            // A total that went down is a reset without a new start time.
            Some((_, _, value)) if p.value < value => p.value,
            Some((_, _, value)) => p.value - value,
        };
        let set = match last {
            None => query(
                "INSERT INTO cumulative_series (series, start_ns, time_ns, value, count) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (series) DO NOTHING",
            )
            .bind(&p.series[..])
            .bind(p.start_ns)
            .bind(p.time_ns)
            .bind(p.value)
            .bind(count),
            Some((start, time, value)) => query(
                "UPDATE cumulative_series SET start_ns = ?, time_ns = ?, value = ?, count = ? \
                 WHERE series = ? AND start_ns = ? AND time_ns = ? AND value = ?",
            )
            .bind(p.start_ns)
            .bind(p.time_ns)
            .bind(p.value)
            .bind(count)
            .bind(&p.series[..])
            .bind(start)
            .bind(time)
            .bind(value),
        };
        if set.execute(&mut **tx).await?.rows_affected() == 1 {
            return Ok(Some(inc));
        }
    }
    Err(sqlx::Error::Protocol(format!(
        "the last point of a cumulative series kept changing under this write ({MAX_CAS_ROUNDS} tries)"
    )))
}

/// Writes of one request that lost a deadlock before it is refused.
const TRANSIENT_TRIES: usize = 4;

/// Reads of a cumulative series' last point before a write gives up (each retry follows
/// another replica's committed write of the same series).
const MAX_CAS_ROUNDS: usize = 64;
