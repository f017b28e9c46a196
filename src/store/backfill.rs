//! Backfills: the durable state of fetching a repository's history from the GitHub API
//! (`tracelink backfill`, installation events). One row per repository says where its
//! latest backfill is; its pages are the cursor (each marked done in the transaction
//! that stores what it held, together with the pages it leads to), so a backfill that
//! stops — killed, GitHub failing — resumes at the first page not done. The ETag of every
//! page fetched is kept for conditional requests.

use super::{query, query_as, query_scalar};
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::reports::PullRef;
use super::{Db, Result, Tx, placeholders};

/// A repository's latest backfill.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct BackfillRow {
    pub repo: String,
    pub installation_id: Option<i64>,
    pub since_ns: i64,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    pub requested_ns: i64,
    pub started_ns: Option<i64>,
    pub finished_ns: Option<i64>,
    /// Pages GitHub answered with a body.
    pub pages_fetched: i64,
    /// Pages GitHub answered 304 Not Modified (free of rate limit).
    pub pages_not_modified: i64,
    pub error: Option<String>,
    /// Pages done, and found so far.
    pub pages_done: i64,
    pub pages_found: i64,
}

/// A page to fetch: what it lists, its route under the API, and what reading it needs
/// besides its body (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct PageRef {
    pub kind: String,
    pub route: String,
    pub context: String,
}

/// What the last fetch of a page left: its ETag and the pages it led to.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedPage {
    pub etag: String,
    pub children: Vec<PageRef>,
}

/// How a page was fetched.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetch {
    /// GitHub answered with a body (and this ETag, if it gave one).
    Fresh { etag: Option<String> },
    /// GitHub answered 304: the page is as it was.
    NotModified,
}

const ROW: &str = "SELECT b.repo, b.installation_id, b.since_ns, b.state, b.requested_ns, b.started_ns, \
     b.finished_ns, b.pages_fetched, b.pages_not_modified, b.error, \
     (SELECT count(*) FROM backfill_pages p WHERE p.repo = b.repo AND p.done = 1) AS pages_done, \
     (SELECT count(*) FROM backfill_pages p WHERE p.repo = b.repo) AS pages_found \
     FROM backfills b";

impl Tx<'_> {
    /// Asks for a backfill of `repo`: a new one when none ran or the last finished (its
    /// pages are forgotten, their ETags kept); the unfinished one otherwise (queued,
    /// running, or failed: it resumes where it stopped, with its own `since`).
    pub async fn request_backfill(
        &mut self,
        repo: &str,
        installation_id: Option<i64>,
        since_ns: i64,
        now_ns: i64,
    ) -> Result<BackfillRow> {
        let conn = self.conn();
        let state: Option<String> = query_scalar("SELECT state FROM backfills WHERE repo = ?")
            .bind(repo)
            .fetch_optional(&mut *conn)
            .await?;
        match state.as_deref() {
            None | Some("done") => {
                query("DELETE FROM backfill_pages WHERE repo = ?")
                    .bind(repo)
                    .execute(&mut *conn)
                    .await?;
                query(
                    "INSERT INTO backfills (repo, installation_id, since_ns, state, requested_ns) \
                     VALUES (?1, ?2, ?3, 'queued', ?4) ON CONFLICT (repo) DO UPDATE SET \
                     installation_id = coalesce(?2, backfills.installation_id), since_ns = ?3, \
                     state = 'queued', requested_ns = ?4, started_ns = NULL, finished_ns = NULL, \
                     pages_fetched = 0, pages_not_modified = 0, error = NULL, lease_until_ns = NULL",
                )
                .bind(repo)
                .bind(installation_id)
                .bind(since_ns)
                .bind(now_ns)
                .execute(&mut *conn)
                .await?;
            }
            Some(_) => {
                query(
                    "UPDATE backfills SET installation_id = coalesce(?2, installation_id), \
                     state = CASE WHEN state = 'failed' THEN 'queued' ELSE state END, \
                     error = CASE WHEN state = 'failed' THEN NULL ELSE error END WHERE repo = ?1",
                )
                .bind(repo)
                .bind(installation_id)
                .execute(&mut *conn)
                .await?;
            }
        }
        backfill_row(self, repo)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// Takes the lease of a backfill waiting to run (of `repo`, or the oldest asked for)
    /// until `lease_until_ns`: none when every one is finished or held by a live lease.
    pub async fn claim_backfill(
        &mut self,
        repo: Option<&str>,
        now_ns: i64,
        lease_until_ns: i64,
    ) -> Result<Option<BackfillRow>> {
        let conn = self.conn();
        let claimed: Option<String> = query_scalar(
            "UPDATE backfills SET state = 'running', lease_until_ns = ?3, \
             started_ns = coalesce(started_ns, ?2) \
             WHERE repo = (SELECT repo FROM backfills WHERE state IN ('queued', 'running') \
               AND (?1 IS NULL OR repo = ?1) AND coalesce(lease_until_ns, 0) < ?2 \
               ORDER BY requested_ns, repo LIMIT 1) \
             RETURNING repo",
        )
        .bind(repo)
        .bind(now_ns)
        .bind(lease_until_ns)
        .fetch_optional(&mut *conn)
        .await?;
        match claimed {
            Some(repo) => backfill_row(self, &repo).await,
            None => Ok(None),
        }
    }

    /// Keeps the lease until `lease_until_ns`.
    pub async fn renew_backfill_lease(&mut self, repo: &str, lease_until_ns: i64) -> Result<()> {
        query("UPDATE backfills SET lease_until_ns = ? WHERE repo = ?")
            .bind(lease_until_ns)
            .bind(repo)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Records the installation a backfill reads through.
    pub async fn set_backfill_installation(
        &mut self,
        repo: &str,
        installation_id: i64,
    ) -> Result<()> {
        query("UPDATE backfills SET installation_id = ? WHERE repo = ?")
            .bind(installation_id)
            .bind(repo)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Adds pages to fetch after those found so far (a page already there stays as is).
    pub async fn add_backfill_pages(&mut self, repo: &str, pages: &[PageRef]) -> Result<()> {
        let conn = self.conn();
        let last: i64 =
            query_scalar("SELECT coalesce(max(seq), 0) FROM backfill_pages WHERE repo = ?")
                .bind(repo)
                .fetch_one(&mut *conn)
                .await?;
        for (i, p) in pages.iter().enumerate() {
            query(
                "INSERT INTO backfill_pages (repo, route, kind, context, seq) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (repo, route) DO NOTHING",
            )
            .bind(repo)
            .bind(&p.route)
            .bind(&p.kind)
            .bind(&p.context)
            .bind(last + 1 + i as i64)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// The next page of `repo`'s backfill to fetch, in the order found.
    pub async fn next_backfill_page(&mut self, repo: &str) -> Result<Option<PageRef>> {
        query_as(
            "SELECT kind, route, context FROM backfill_pages WHERE repo = ? AND done = 0 \
             ORDER BY seq LIMIT 1",
        )
        .bind(repo)
        .fetch_optional(self.conn())
        .await
    }

    /// Whether the backfill of `repo` has found any page yet.
    pub async fn backfill_started(&mut self, repo: &str) -> Result<bool> {
        let started: i64 = query_scalar(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM backfill_pages WHERE repo = ?) THEN 1 ELSE 0 END",
        )
        .bind(repo)
        .fetch_one(self.conn())
        .await?;
        Ok(started != 0)
    }

    /// The ETag and the pages a route led to when it was last fetched.
    pub async fn cached_page(&mut self, route: &str) -> Result<Option<CachedPage>> {
        let row: Option<(String, String)> =
            query_as("SELECT etag, children FROM github_etags WHERE route = ?")
                .bind(route)
                .fetch_optional(self.conn())
                .await?;
        Ok(row.map(|(etag, children)| CachedPage {
            etag,
            // A list that cannot be read is as good as none: the page is fetched whole.
            children: serde_json::from_str(&children).unwrap_or_default(),
        }))
    }

    /// Marks a page done, adds the pages it leads to and keeps its ETag (a page with
    /// none given forgets the old one), counting how it was fetched.
    pub async fn backfill_page_done(
        &mut self,
        repo: &str,
        route: &str,
        fetch: &Fetch,
        children: &[PageRef],
        now_ns: i64,
    ) -> Result<()> {
        self.add_backfill_pages(repo, children).await?;
        let conn = self.conn();
        query("UPDATE backfill_pages SET done = 1 WHERE repo = ? AND route = ?")
            .bind(repo)
            .bind(route)
            .execute(&mut *conn)
            .await?;
        let (fetched, not_modified) = match fetch {
            Fetch::Fresh { etag: Some(etag) } => {
                let children = serde_json::to_string(children)
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                query(
                    "INSERT INTO github_etags (route, etag, children, fetched_ns) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (route) DO UPDATE SET etag = excluded.etag, \
                     children = excluded.children, fetched_ns = excluded.fetched_ns",
                )
                .bind(route)
                .bind(etag)
                .bind(children)
                .bind(now_ns)
                .execute(&mut *conn)
                .await?;
                (1, 0)
            }
            Fetch::Fresh { etag: None } => {
                query("DELETE FROM github_etags WHERE route = ?")
                    .bind(route)
                    .execute(&mut *conn)
                    .await?;
                (1, 0)
            }
            Fetch::NotModified => (0, 1),
        };
        query(
            "UPDATE backfills SET pages_fetched = pages_fetched + ?, \
             pages_not_modified = pages_not_modified + ? WHERE repo = ?",
        )
        .bind(fetched)
        .bind(not_modified)
        .bind(repo)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Ends a backfill: `done`, or `failed` with why (it resumes when asked again).
    pub async fn finish_backfill(
        &mut self,
        repo: &str,
        error: Option<&str>,
        now_ns: i64,
    ) -> Result<()> {
        query(
            "UPDATE backfills SET state = CASE WHEN ?2 IS NULL THEN 'done' ELSE 'failed' END, \
             error = ?2, finished_ns = ?3, lease_until_ns = NULL WHERE repo = ?1",
        )
        .bind(repo)
        .bind(error)
        .bind(now_ns)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Gives the lease up, leaving the backfill to resume (the process is stopping).
    pub async fn release_backfill(&mut self, repo: &str) -> Result<()> {
        query("UPDATE backfills SET lease_until_ns = NULL WHERE repo = ?")
            .bind(repo)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Stores one page of a pull request's commits as the API lists them, from
    /// position `offset` (the first page replaces the list).
    pub async fn set_pull_commits_page(
        &mut self,
        repo: &str,
        number: i64,
        offset: i64,
        shas: &[String],
    ) -> Result<()> {
        let conn = self.conn();
        if offset == 0 {
            query("DELETE FROM pull_request_commits WHERE repo = ? AND number = ?")
                .bind(repo)
                .bind(number)
                .execute(&mut *conn)
                .await?;
        }
        for (i, sha) in shas.iter().enumerate() {
            query(
                "INSERT INTO pull_request_commits (repo, number, sha, position) VALUES (?, ?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(repo)
            .bind(number)
            .bind(sha.to_ascii_lowercase())
            .bind(offset + i as i64)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Those of these pull requests that are open.
    pub async fn open_pulls(&mut self, prs: &BTreeSet<PullRef>) -> Result<BTreeSet<PullRef>> {
        let mut out = BTreeSet::new();
        for (repo, number) in prs {
            let open: Option<i64> = query_scalar(
                "SELECT CASE WHEN state = 'open' THEN 1 ELSE 0 END FROM pull_requests \
                 WHERE repo = ? AND number = ?",
            )
            .bind(repo)
            .bind(number)
            .fetch_optional(self.conn())
            .await?;
            if open == Some(1) {
                out.insert((repo.clone(), *number));
            }
        }
        Ok(out)
    }

    /// The installation deliveries named for the repository, when any did.
    pub async fn known_installation(&mut self, repo: &str) -> Result<Option<i64>> {
        query_scalar("SELECT installation_id FROM repo_installations WHERE repo = ?")
            .bind(repo)
            .fetch_optional(self.conn())
            .await
    }
}

async fn backfill_row(tx: &mut Tx<'_>, repo: &str) -> Result<Option<BackfillRow>> {
    query_as(format!("{ROW} WHERE b.repo = ?"))
        .bind(repo)
        .fetch_optional(tx.conn())
        .await
}

impl Db {
    /// A repository's latest backfill.
    pub async fn backfill(&self, repo: &str) -> Result<Option<BackfillRow>> {
        query_as(format!("{ROW} WHERE b.repo = ?"))
            .bind(repo)
            .fetch_optional(&self.pool)
            .await
    }

    /// The latest backfills of these repositories (every one when empty), by repository.
    pub async fn backfills(&self, repos: &[String]) -> Result<Vec<BackfillRow>> {
        let sql = if repos.is_empty() {
            format!("{ROW} ORDER BY b.repo")
        } else {
            format!(
                "{ROW} WHERE b.repo IN ({}) ORDER BY b.repo",
                placeholders(repos.len())
            )
        };
        let mut q = query_as(sql);
        for r in repos {
            q = q.bind(r);
        }
        q.fetch_all(&self.pool).await
    }
}
