//! Publishing's state: the queue of pull requests whose report must be rebuilt, what
//! may affect a pull request's report, the patches and commit lists fetched from the
//! API (cached), and the digest of the last report published per pull request.

use super::{query, query_as, query_scalar};
use std::collections::BTreeSet;

use super::dora::IncidentFacts;
use super::github::{DeploymentRow, Op};
use super::nodes::pulls_containing;

use super::{Conn, Db, Result, Tx, placeholders};
use sqlx::AnyConnection;

pub use super::nodes::PullRef;

/// What changed sessions may have produced.
#[derive(Debug, Default)]
pub struct SessionReach {
    /// Known commits, `(repository, sha)`.
    pub commits: BTreeSet<(String, String)>,
    /// Pull requests that may contain any of them.
    pub pulls: BTreeSet<PullRef>,
}

/// A queued report that is due.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueReport {
    pub repo: String,
    pub number: i64,
    /// When it was last queued: a publication that started before keeps it queued.
    pub touched_ns: i64,
    pub due_ns: i64,
}

/// The last report published for a pull request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Published {
    pub digest: String,
    pub comment_id: Option<i64>,
}

impl Tx<'_> {
    /// Queues pull requests for publication at `due_ns` (an earlier due time stays).
    ///
    /// A PR already waiting keeps its (earlier) due time; one whose due time has passed
    /// (being published right now) waits a full period again: a PR is written at most
    /// once per debounce window, and no change is left behind.
    pub async fn enqueue_reports(
        &mut self,
        prs: &BTreeSet<PullRef>,
        now_ns: i64,
        due_ns: i64,
    ) -> Result<()> {
        enqueue(self.conn(), prs, now_ns, due_ns).await
    }

    /// Pull requests a delivery's upserts may change, incidents aside: an incident
    /// reaches the pull requests its resolved cause names, before and after the upsert
    /// (`graph::incidents::reach`, over the primitives below).
    pub async fn affected_by(&mut self, ops: &[Op]) -> Result<BTreeSet<PullRef>> {
        let mut prs = BTreeSet::new();
        let mut shas: Vec<(String, String)> = Vec::new();
        let mut deployments: Vec<&super::github::DeploymentRow> = Vec::new();
        for op in ops {
            match op {
                Op::Pull(p) => {
                    prs.insert((p.repo.clone(), p.number));
                }
                Op::CommitRef { repo, sha, .. } => shas.push((repo.clone(), sha.to_string())),
                Op::Commit(c) => shas.push((c.repo.clone(), c.sha.to_string())),
                Op::Run(r) => shas.push((r.repo.clone(), r.head_sha.clone())),
                Op::Deployment(d) => deployments.push(d),
                _ => {}
            }
        }
        let conn = self.conn();
        for (repo, sha) in shas {
            prs.extend(pulls_containing(conn, Some(&repo), &[sha]).await?);
        }
        for d in deployments {
            prs.extend(shipped_by(conn, d).await?);
        }
        Ok(prs)
    }

    /// An incident as stored, when it is one (labelled, not deleted).
    pub async fn live_incident(
        &mut self,
        repo: &str,
        number: i64,
    ) -> Result<Option<IncidentFacts>> {
        query_as(
            "SELECT number, title, state, environment, root_cause, opened_ns, closed_ns FROM incidents \
             WHERE repo = ? AND number = ? AND is_incident = 1 AND state <> 'deleted'",
        )
        .bind(repo)
        .bind(number)
        .fetch_optional(self.conn())
        .await
    }

    /// A deployment of the repository by ID.
    pub async fn deployment(&mut self, repo: &str, id: i64) -> Result<Option<DeploymentRow>> {
        let row: Option<DeploymentFields> = query_as(
            "SELECT id, repo, sha, ref, environment, creator, created_ns FROM deployments \
             WHERE repo = ? AND id = ?",
        )
        .bind(repo)
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        Ok(row.map(DeploymentFields::into_row))
    }

    /// The first successful deployment to `environment` (by its first success) whose
    /// commit is `sha` or descends from it, following parent links down at most
    /// [`MAX_SHIPPED_DEPTH`] generations.
    pub async fn first_successful_deployment_shipping(
        &mut self,
        repo: &str,
        environment: &str,
        sha: &str,
    ) -> Result<Option<i64>> {
        query_scalar(
            "WITH RECURSIVE descendants(key, depth) AS ( \
               SELECT CAST(CAST(?1 || '@' || ?2 AS text_c) AS TEXT), 0 \
               UNION \
               SELECT l.from_key, descendants.depth + 1 FROM descendants JOIN links l \
                 ON l.to_kind = 'commit' AND l.to_key = descendants.key AND l.relation = 'parent' \
                 AND l.from_kind = 'commit' \
               WHERE descendants.depth < ?4 \
             ) \
             SELECT d.id FROM deployments d \
             JOIN deployment_statuses s ON s.deployment_id = d.id AND s.state = 'success' \
             WHERE d.repo = ?1 AND d.environment = ?3 \
               AND d.repo || '@' || d.sha IN (SELECT key FROM descendants) \
             GROUP BY d.id ORDER BY min(s.created_ns), d.id LIMIT 1",
        )
        .bind(repo)
        .bind(sha.to_ascii_lowercase())
        .bind(environment)
        .bind(MAX_SHIPPED_DEPTH)
        .fetch_optional(self.conn())
        .await
    }

    /// The last successful deployment to `environment` whose first success is at or
    /// before `at_ns`.
    pub async fn last_successful_deployment_before(
        &mut self,
        repo: &str,
        environment: &str,
        at_ns: i64,
    ) -> Result<Option<i64>> {
        query_scalar(
            "SELECT d.id FROM deployments d \
             JOIN deployment_statuses s ON s.deployment_id = d.id AND s.state = 'success' \
             WHERE d.repo = ? AND d.environment = ? GROUP BY d.id HAVING min(s.created_ns) <= ? \
             ORDER BY min(s.created_ns) DESC, d.id DESC LIMIT 1",
        )
        .bind(repo)
        .bind(environment)
        .bind(at_ns)
        .fetch_optional(self.conn())
        .await
    }

    /// The merged pull requests whose first successful deployment to its environment is
    /// `d`: merged into its commit or an ancestor, not behind an earlier successful
    /// deployment to the same environment. The pull requests an incident caused by `d`
    /// shows on.
    pub async fn pulls_first_shipped_by(&mut self, d: &DeploymentRow) -> Result<Vec<PullRef>> {
        shipped_by(self.conn(), d).await
    }

    /// The pull requests that may hold the commit: as head, merge result, listed commit
    /// or a commit pushed to their branch.
    pub async fn pulls_with_commit(&mut self, repo: &str, sha: &str) -> Result<BTreeSet<PullRef>> {
        pulls_containing(self.conn(), Some(repo), &[sha.to_ascii_lowercase()]).await
    }

    /// What these sessions (rows) may have produced: the commits they name, those whose
    /// trailers name their traces, and those made in their active windows widened by
    /// `grace_ns` on both sides; and the pull requests that may contain any of them.
    pub async fn reach_of_sessions(
        &mut self,
        session_rows: &[i64],
        grace_ns: i64,
    ) -> Result<SessionReach> {
        let conn = self.conn();
        // `(repository, sha)`; a SHA a session names may not be pushed yet (no repository),
        // but a PR's API list may already hold it.
        let mut found: BTreeSet<(Option<String>, String)> = BTreeSet::new();
        for id in session_rows {
            let named: Vec<(Option<String>, String)> = query_as(
                "SELECT c.repo, sc.sha FROM session_commits sc LEFT JOIN commits c ON c.sha = sc.sha \
                 WHERE sc.session_id = ?",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            found.extend(named);
            let traced: Vec<(Option<String>, String)> = query_as(
                "SELECT substr(l.from_key, 1, instr(l.from_key, '@') - 1), \
                 substr(l.from_key, instr(l.from_key, '@') + 1) FROM links l JOIN session_traces st \
                   ON l.to_key = lower(hex(st.trace_id)) WHERE st.session_id = ? AND l.from_kind = 'commit' \
                   AND l.relation = 'traceparent'",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            found.extend(traced);
            let trailer: Vec<(Option<String>, String)> = query_as(
                "SELECT substr(l.from_key, 1, instr(l.from_key, '@') - 1), \
                 substr(l.from_key, instr(l.from_key, '@') + 1) FROM links l JOIN sessions s \
                   ON l.to_key = s.session_key WHERE s.id = ? AND l.to_kind = 'session' \
                   AND l.relation = 'session' AND l.from_kind = 'commit'",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            found.extend(trailer);
            // Abbreviated SHAs: the commits of the session's repository they prefix.
            let abbreviated: Vec<(Option<String>, String)> = query_as(
                "SELECT c.repo, c.sha FROM session_commits sc JOIN sessions s ON s.id = sc.session_id \
                 JOIN commits c ON c.repo = lower(s.repository) AND c.sha >= sc.sha AND c.sha < sc.sha || 'g' \
                 WHERE sc.session_id = ? AND length(sc.sha) < 40 ORDER BY c.repo, c.sha LIMIT 100",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            found.extend(abbreviated);
            let window: Option<(Option<i64>, Option<i64>, Option<String>)> =
                query_as("SELECT started_ns, ended_ns, repository FROM sessions WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            if let Some((Some(start), end, repo)) = window {
                let near: Vec<(Option<String>, String)> = query_as(
                    "SELECT repo, sha FROM commits WHERE authored_ns BETWEEN ? AND ? \
                     AND (?3 IS NULL OR repo = ?3) ORDER BY repo, sha LIMIT 500",
                )
                .bind(start - grace_ns)
                .bind(end.unwrap_or(start) + grace_ns)
                .bind(repo.map(|r| r.to_ascii_lowercase()))
                .fetch_all(&mut *conn)
                .await?;
                found.extend(near);
            }
        }
        let shas: Vec<String> = found.iter().map(|(_, sha)| sha.clone()).collect();
        let pulls = pulls_containing(conn, None, &shas).await?;
        Ok(SessionReach {
            commits: found
                .into_iter()
                .filter_map(|(repo, sha)| Some((repo?, sha)))
                .collect(),
            pulls,
        })
    }

    /// The earliest time a queued report can be claimed: its due time, or when another
    /// replica's claim on it expires.
    pub async fn next_due(&mut self) -> Result<Option<i64>> {
        query_scalar("SELECT min(max(due_ns, coalesce(lease_until_ns, 0))) FROM report_queue")
            .fetch_one(self.conn())
            .await
    }

    /// Replaces a pull request's API commit list and caches its patch (JSON) for `head_sha`.
    pub async fn cache_pull_request(
        &mut self,
        repo: &str,
        number: i64,
        head_sha: &str,
        commits: &[String],
        files_json: &str,
    ) -> Result<()> {
        // The whole list: one page from position 0.
        self.set_pull_commits_page(repo, number, 0, commits).await?;
        let conn = self.conn();
        query(
            "INSERT INTO pull_request_patches (repo, number, head_sha, files) VALUES (?, ?, ?, ?) \
             ON CONFLICT (repo, number) DO UPDATE SET head_sha = excluded.head_sha, files = excluded.files",
        )
        .bind(repo)
        .bind(number)
        .bind(head_sha)
        .bind(files_json)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Caches a commit's patch (JSON); a commit's never changes.
    pub async fn cache_commit_patch(
        &mut self,
        repo: &str,
        sha: &str,
        files_json: &str,
        patch_id: Option<&str>,
    ) -> Result<()> {
        query(
            "INSERT INTO commit_patches (repo, sha, files, patch_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(repo)
        .bind(sha)
        .bind(files_json)
        .bind(patch_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn set_published(
        &mut self,
        repo: &str,
        number: i64,
        digest: &str,
        comment_id: i64,
        now_ns: i64,
    ) -> Result<()> {
        query(
            "INSERT INTO published_reports (repo, number, digest, comment_id, published_ns) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (repo, number) DO UPDATE SET digest = excluded.digest, \
             comment_id = excluded.comment_id, published_ns = excluded.published_ns",
        )
        .bind(repo)
        .bind(number)
        .bind(digest)
        .bind(comment_id)
        .bind(now_ns)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

impl Db {
    /// The head SHA a pull request's cached patch belongs to.
    pub async fn cached_pull_head(&self, repo: &str, number: i64) -> Result<Option<String>> {
        query_scalar("SELECT head_sha FROM pull_request_patches WHERE repo = ? AND number = ?")
            .bind(repo)
            .bind(number)
            .fetch_optional(&self.pool)
            .await
    }

    /// A pull request's cached patch (JSON list of files).
    pub async fn pull_patch(&self, repo: &str, number: i64) -> Result<Option<String>> {
        query_scalar("SELECT files FROM pull_request_patches WHERE repo = ? AND number = ?")
            .bind(repo)
            .bind(number)
            .fetch_optional(&self.pool)
            .await
    }

    /// The cached patches (JSON lists of files) of those of these commits that have one.
    pub async fn commit_patches(
        &self,
        repo: &str,
        shas: &[String],
    ) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for chunk in shas.chunks(500) {
            let mut q = query_as::<(String, String)>(format!(
                "SELECT sha, files FROM commit_patches WHERE repo = ? AND sha IN ({}) ORDER BY sha",
                placeholders(chunk.len())
            ))
            .bind(repo);
            for s in chunk {
                q = q.bind(s);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// A commit's cached patch (JSON list of files).
    pub async fn commit_patch(&self, repo: &str, sha: &str) -> Result<Option<String>> {
        query_scalar("SELECT files FROM commit_patches WHERE repo = ? AND sha = ?")
            .bind(repo)
            .bind(sha)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn published(&self, repo: &str, number: i64) -> Result<Option<Published>> {
        query_as("SELECT digest, comment_id FROM published_reports WHERE repo = ? AND number = ?")
            .bind(repo)
            .bind(number)
            .fetch_optional(&self.pool)
            .await
    }
}

impl Conn {
    /// Claims up to `limit` reports due at `now_ns` for `owner` until `until_ns`,
    /// oldest due first: those no live claim holds. One replica at a time publishes a
    /// pull request's report; on PostgreSQL rows another replica is claiming are skipped
    /// (`FOR UPDATE SKIP LOCKED`).
    pub async fn claim_reports(
        &mut self,
        owner: &str,
        now_ns: i64,
        until_ns: i64,
        limit: i64,
    ) -> Result<Vec<DueReport>> {
        let sql = format!(
            "UPDATE report_queue SET lease_owner = ?1, lease_until_ns = ?2 WHERE (repo, number) IN ( \
               SELECT repo, number FROM report_queue WHERE due_ns <= ?3 \
               AND coalesce(lease_until_ns, 0) <= ?3 ORDER BY due_ns, repo, number LIMIT ?4{}) \
             RETURNING repo, number, touched_ns, due_ns",
            self.engine.skip_locked()
        );
        let mut claimed: Vec<DueReport> = query_as(&sql)
            .bind(owner)
            .bind(until_ns)
            .bind(now_ns)
            .bind(limit)
            .fetch_all(&mut self.conn)
            .await?;
        claimed.sort_by(|a, b| (a.due_ns, &a.repo, a.number).cmp(&(b.due_ns, &b.repo, b.number)));
        Ok(claimed)
    }

    /// Extends `owner`'s claim on a report to `until_ns`: `false` when the claim is gone
    /// (it expired and another replica took it), and then this replica must not write.
    pub async fn renew_report(
        &mut self,
        repo: &str,
        number: i64,
        owner: &str,
        until_ns: i64,
    ) -> Result<bool> {
        let n = query(
            "UPDATE report_queue SET lease_until_ns = ? WHERE repo = ? AND number = ? AND lease_owner = ?",
        )
        .bind(until_ns)
        .bind(repo)
        .bind(number)
        .bind(owner)
        .execute(&mut self.conn)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Gives `owner`'s claim on a report up, due again at `due_ns`.
    pub async fn defer_report(
        &mut self,
        repo: &str,
        number: i64,
        owner: &str,
        due_ns: i64,
    ) -> Result<()> {
        query(
            "UPDATE report_queue SET due_ns = ?, lease_owner = NULL, lease_until_ns = NULL \
             WHERE repo = ? AND number = ? AND lease_owner = ?",
        )
        .bind(due_ns)
        .bind(repo)
        .bind(number)
        .bind(owner)
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    /// Takes a report `owner` published off the queue, unless it was queued again since
    /// `touched_ns`: then it stays, and the claim is given up.
    pub async fn report_done(
        &mut self,
        repo: &str,
        number: i64,
        owner: &str,
        touched_ns: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        query(
            "DELETE FROM report_queue WHERE repo = ? AND number = ? AND touched_ns = ? AND lease_owner = ?",
        )
        .bind(repo)
        .bind(number)
        .bind(touched_ns)
        .bind(owner)
        .execute(tx.conn())
        .await?;
        query(
            "UPDATE report_queue SET lease_owner = NULL, lease_until_ns = NULL \
             WHERE repo = ? AND number = ? AND lease_owner = ?",
        )
        .bind(repo)
        .bind(number)
        .bind(owner)
        .execute(tx.conn())
        .await?;
        tx.commit().await
    }
}

/// [`Tx::enqueue_reports`] inside a writer transaction.
pub(super) async fn enqueue(
    conn: &mut AnyConnection,
    prs: &BTreeSet<PullRef>,
    now_ns: i64,
    due_ns: i64,
) -> Result<()> {
    for (repo, number) in prs {
        query(
            "INSERT INTO report_queue (repo, number, due_ns, touched_ns) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (repo, number) DO UPDATE SET \
                 touched_ns = max(report_queue.touched_ns + 1, ?4), \
                 due_ns = CASE WHEN report_queue.due_ns <= ?4 THEN ?3 ELSE report_queue.due_ns END",
        )
        .bind(repo)
        .bind(number)
        .bind(due_ns)
        .bind(now_ns)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Commits followed back from a deployment's commit, at most.
const MAX_SHIPPED_DEPTH: i64 = 2000;

/// The merged pull requests a deployment ships first: those whose merge result is its
/// commit or an ancestor of it, not behind an earlier successful deployment to the same
/// environment (the walk stops there; a failed one shipped nothing, as reports read
/// it). However old the merge, and without touching every recent pull request at each
/// deployment.
async fn shipped_by(conn: &mut AnyConnection, d: &DeploymentRow) -> Result<Vec<PullRef>> {
    let numbers: Vec<i64> = query_scalar(
        "WITH RECURSIVE anc(key, depth) AS ( \
           SELECT CAST(CAST(?1 || '@' || ?2 AS text_c) AS TEXT), 0 \
           UNION \
           SELECT l.to_key, anc.depth + 1 FROM anc JOIN links l \
             ON l.from_kind = 'commit' AND l.from_key = anc.key AND l.relation = 'parent' \
           WHERE anc.depth < ?3 AND NOT EXISTS (SELECT 1 FROM deployments e \
             WHERE e.repo = ?1 AND e.environment = ?4 AND e.id <> ?5 \
             AND coalesce(e.created_ns, 0) <= coalesce(?6, 0) AND ?1 || '@' || e.sha = l.to_key \
             AND EXISTS (SELECT 1 FROM deployment_statuses s \
               WHERE s.deployment_id = e.id AND s.state = 'success')) \
         ) \
         SELECT p.number FROM pull_requests p WHERE p.repo = ?1 AND p.merged = 1 \
           AND p.merge_commit_sha IS NOT NULL AND p.repo || '@' || p.merge_commit_sha IN (SELECT key FROM anc) ORDER BY p.number",
    )
    .bind(&d.repo)
    .bind(d.sha.to_ascii_lowercase())
    .bind(MAX_SHIPPED_DEPTH)
    .bind(&d.environment)
    .bind(d.id)
    .bind(d.created_ns)
    .fetch_all(&mut *conn)
    .await?;
    Ok(numbers.into_iter().map(|n| (d.repo.clone(), n)).collect())
}

#[derive(sqlx::FromRow)]
struct DeploymentFields {
    id: i64,
    repo: String,
    sha: String,
    #[sqlx(rename = "ref")]
    git_ref: Option<String>,
    environment: String,
    creator: Option<String>,
    created_ns: Option<i64>,
}

impl DeploymentFields {
    fn into_row(self) -> DeploymentRow {
        DeploymentRow {
            id: self.id,
            repo: self.repo,
            sha: self.sha,
            git_ref: self.git_ref,
            environment: self.environment,
            creator: self.creator,
            created_ns: self.created_ns,
        }
    }
}
