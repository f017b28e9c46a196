//! Reads over nodes and links that the graph module traverses: the facts the link rules
//! weigh for a set of commits and the sessions that may have produced them, and commit
//! ancestry (`parent` links) for petgraph.

use super::{query_as, query_scalar};
use std::collections::{BTreeMap, BTreeSet};

use super::{Db, Result, placeholders};
use crate::ids::node;

/// What the link rules read about one commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitFacts {
    pub login: Option<String>,
    pub email: Option<String>,
    pub authored_ns: Option<i64>,
    pub committer_name: Option<String>,
    pub committer_email: Option<String>,
    /// Parent commits known (from `parent` links).
    pub parents: usize,
    /// Agents its trailers name.
    pub agents: Vec<String>,
    pub files: Vec<String>,
    /// Trace IDs its `Traceparent:` trailers name.
    pub traces: Vec<[u8; 16]>,
    /// Session keys its `Tracelink-Session:` trailers name.
    pub named_sessions: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct CommitAuthorRow {
    sha: String,
    author_login: Option<String>,
    author_email: Option<String>,
    authored_ns: Option<i64>,
    committer_name: Option<String>,
    committer_email: Option<String>,
}

/// A session that may have produced a commit: its row, key, agent, people and window.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateSession {
    pub row: i64,
    pub key: String,
    pub agent: Option<String>,
    pub user_email: Option<String>,
    pub user_id: Option<String>,
    pub repository: Option<String>,
    pub started_ns: i64,
    pub ended_ns: Option<i64>,
    /// Files it modified.
    pub files: Vec<String>,
}

/// A session found by a key it is known by: `(session row, session key)`.
pub type SessionRef = (i64, String);

impl Db {
    /// The facts of each given commit of `repo` (commits not stored get empty facts).
    pub async fn commit_facts(
        &self,
        repo: &str,
        shas: &[String],
    ) -> Result<BTreeMap<String, CommitFacts>> {
        let mut out: BTreeMap<String, CommitFacts> = shas
            .iter()
            .map(|s| (s.clone(), CommitFacts::default()))
            .collect();
        for chunk in shas.chunks(500) {
            let ph = placeholders(chunk.len());
            let mut q = query_as::<CommitAuthorRow>(format!(
                "SELECT sha, author_login, author_email, authored_ns, committer_name, committer_email \
                 FROM commits WHERE repo = ? AND sha IN ({ph})"
            ))
            .bind(repo);
            for s in chunk {
                q = q.bind(s);
            }
            for r in q.fetch_all(&self.pool).await? {
                if let Some(c) = out.get_mut(&r.sha) {
                    (c.login, c.email, c.authored_ns) =
                        (r.author_login, r.author_email, r.authored_ns);
                    (c.committer_name, c.committer_email) = (r.committer_name, r.committer_email);
                }
            }
            let mut q = query_as::<(String, String)>(format!(
                "SELECT sha, agent FROM commit_agents WHERE repo = ? AND sha IN ({ph}) ORDER BY agent"
            ))
            .bind(repo);
            for s in chunk {
                q = q.bind(s);
            }
            for (sha, agent) in q.fetch_all(&self.pool).await? {
                if let Some(c) = out.get_mut(&sha) {
                    c.agents.push(agent);
                }
            }
            let mut q = query_as::<(String, String)>(format!(
                "SELECT sha, path FROM commit_files WHERE repo = ? AND sha IN ({ph}) ORDER BY sha, path"
            ))
            .bind(repo);
            for s in chunk {
                q = q.bind(s);
            }
            for (sha, path) in q.fetch_all(&self.pool).await? {
                if let Some(c) = out.get_mut(&sha) {
                    c.files.push(path);
                }
            }
            let mut q = query_as::<(String, String, String)>(format!(
                "SELECT from_key, relation, to_key FROM links WHERE from_kind = 'commit' \
                 AND relation IN ('traceparent', 'session', 'parent') AND from_key IN ({ph}) \
                 ORDER BY from_key, relation, to_key"
            ));
            for s in chunk {
                q = q.bind(node::commit_str(repo, s));
            }
            for (from, relation, to) in q.fetch_all(&self.pool).await? {
                if let Some(c) = out.get_mut(node::commit_sha(&from)) {
                    if relation == "parent" {
                        c.parents += 1;
                    } else if relation == "traceparent" {
                        if let Ok(id) = crate::ids::TraceId::from_hex(&to) {
                            c.traces.push(id.0);
                        }
                    } else {
                        c.named_sessions.push(to);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Sessions that exported any of these traces: trace → sessions.
    pub async fn sessions_of_traces(
        &self,
        traces: &[[u8; 16]],
    ) -> Result<BTreeMap<[u8; 16], Vec<SessionRef>>> {
        let mut out: BTreeMap<[u8; 16], Vec<SessionRef>> = BTreeMap::new();
        for chunk in traces.chunks(500) {
            let mut q = query_as::<(Vec<u8>, i64, String)>(format!(
                "SELECT st.trace_id, s.id, s.session_key FROM session_traces st \
                 JOIN sessions s ON s.id = st.session_id WHERE st.trace_id IN ({}) \
                 ORDER BY st.trace_id, s.id",
                placeholders(chunk.len())
            ));
            for t in chunk {
                q = q.bind(&t[..]);
            }
            for (t, row, key) in q.fetch_all(&self.pool).await? {
                if let Ok(t) = <[u8; 16]>::try_from(&t[..]) {
                    out.entry(t).or_default().push((row, key));
                }
            }
        }
        Ok(out)
    }

    /// The row of each known session key.
    pub async fn session_rows(&self, keys: &[String]) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        for chunk in keys.chunks(500) {
            let mut q = query_as::<(i64, String)>(format!(
                "SELECT id, session_key FROM sessions WHERE session_key IN ({})",
                placeholders(chunk.len())
            ));
            for k in chunk {
                q = q.bind(k);
            }
            for (row, key) in q.fetch_all(&self.pool).await? {
                out.insert(key, row);
            }
        }
        Ok(out)
    }

    /// Sessions whose telemetry names any of these SHAs and whose repository is `repo`
    /// or unknown (a fork holds the same SHAs): `(sha, row, key)`.
    pub async fn sessions_naming(
        &self,
        repo: &str,
        shas: &[String],
    ) -> Result<Vec<(String, i64, String)>> {
        let mut out = Vec::new();
        for chunk in shas.chunks(500) {
            let mut q = query_as::<(String, i64, String)>(format!(
                "SELECT sc.sha, s.id, s.session_key FROM session_commits sc \
                 JOIN sessions s ON s.id = sc.session_id WHERE sc.sha IN ({}) \
                 AND (s.repository IS NULL OR lower(s.repository) = ?) ORDER BY sc.sha, s.id",
                placeholders(chunk.len())
            ));
            for s in chunk {
                q = q.bind(s);
            }
            out.extend(q.bind(repo).fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// Sessions of `repo` whose telemetry names one of these commits by an abbreviated
    /// SHA that no other commit of the repository shares: `(sha, row, key, prefix)`. A
    /// session of unknown repository never links this way.
    pub async fn sessions_naming_abbreviated(
        &self,
        repo: &str,
        shas: &[String],
    ) -> Result<Vec<(String, i64, String, String)>> {
        let mut out = Vec::new();
        for (prefix, row, key) in self.abbreviations_of(repo, shas).await? {
            let (first, n) = self.commits_with_prefix(repo, &prefix).await?;
            if n == 1
                && let Some(sha) = first
                && shas.contains(&sha)
            {
                out.push((sha, row, key, prefix));
            }
        }
        Ok(out)
    }

    /// Every commit of `repo` sharing an abbreviated SHA that a session of the
    /// repository names with one of these commits (when a second commit with the prefix
    /// arrives, the first one's link must go).
    pub async fn commits_sharing_abbreviations(
        &self,
        repo: &str,
        shas: &[String],
    ) -> Result<Vec<String>> {
        let mut out = BTreeSet::new();
        let prefixes: BTreeSet<String> = self
            .abbreviations_of(repo, shas)
            .await?
            .into_iter()
            .map(|(p, _, _)| p)
            .collect();
        for p in prefixes {
            let hi = format!("{p}g");
            let rows: Vec<String> = query_scalar(
                "SELECT sha FROM commits WHERE repo = ? AND sha >= ? AND sha < ? ORDER BY sha LIMIT 50",
            )
            .bind(repo)
            .bind(&p)
            .bind(&hi)
            .fetch_all(&self.pool)
            .await?;
            out.extend(rows);
        }
        Ok(out.into_iter().collect())
    }

    /// Abbreviated SHAs that sessions of `repo` name and that prefix one of these
    /// commits: `(prefix, session row, session key)`.
    async fn abbreviations_of(
        &self,
        repo: &str,
        shas: &[String],
    ) -> Result<Vec<(String, i64, String)>> {
        let mut out = Vec::new();
        // Every prefix of 7 to 39 digits of each commit: 33 binds a commit.
        for chunk in shas.chunks(15) {
            let prefixes: Vec<&str> = chunk
                .iter()
                .flat_map(|s| (7..s.len().min(40)).map(move |n| &s[..n]))
                .collect();
            if prefixes.is_empty() {
                continue;
            }
            let mut q = query_as::<(String, i64, String)>(format!(
                "SELECT sc.sha, s.id, s.session_key FROM session_commits sc \
                 JOIN sessions s ON s.id = sc.session_id WHERE sc.sha IN ({}) \
                 AND lower(s.repository) = ?",
                placeholders(prefixes.len())
            ));
            for p in &prefixes {
                q = q.bind(*p);
            }
            out.extend(q.bind(repo).fetch_all(&self.pool).await?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The first commit of `repo` whose SHA starts with `prefix`, and how many there are
    /// (at most 2 counted).
    async fn commits_with_prefix(
        &self,
        repo: &str,
        prefix: &str,
    ) -> Result<(Option<String>, usize)> {
        let hi = format!("{prefix}g");
        let rows: Vec<String> = query_scalar(
            "SELECT sha FROM commits WHERE repo = ? AND sha >= ? AND sha < ? ORDER BY sha LIMIT 2",
        )
        .bind(repo)
        .bind(prefix)
        .bind(&hi)
        .fetch_all(&self.pool)
        .await?;
        Ok((rows.first().cloned(), rows.len()))
    }

    /// Sessions of these people (lowercase emails, agent user IDs) active in
    /// `[from_ns, to_ns]`, with the files each modified.
    pub async fn candidate_sessions(
        &self,
        emails: &[String],
        agent_ids: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<CandidateSession>> {
        if emails.is_empty() && agent_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = query_as::<(
            i64,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
        )>(format!(
            "SELECT id, session_key, agent, user_email, user_id, repository, started_ns, ended_ns \
             FROM sessions WHERE (lower(user_email) IN ({}) OR user_id IN ({})) \
             AND started_ns <= ? AND coalesce(ended_ns, started_ns) >= ? ORDER BY id",
            placeholders(emails.len()),
            placeholders(agent_ids.len())
        ));
        for e in emails {
            q = q.bind(e);
        }
        if emails.is_empty() {
            q = q.bind("");
        }
        for a in agent_ids {
            q = q.bind(a);
        }
        if agent_ids.is_empty() {
            q = q.bind("");
        }
        q = q.bind(to_ns).bind(from_ns);
        let mut out: Vec<CandidateSession> = Vec::new();
        for (row, key, agent, user_email, user_id, repository, start, end) in
            q.fetch_all(&self.pool).await?
        {
            let Some(started_ns) = start else { continue };
            out.push(CandidateSession {
                row,
                key,
                agent,
                user_email,
                user_id,
                repository,
                started_ns,
                ended_ns: end,
                files: Vec::new(),
            });
        }
        for chunk in out.iter().map(|c| c.row).collect::<Vec<_>>().chunks(500) {
            let mut q = query_as::<(i64, String)>(format!(
                "SELECT session_id, path FROM session_files WHERE action = 'modified' AND session_id IN ({}) \
                 ORDER BY session_id, path",
                placeholders(chunk.len())
            ));
            for r in chunk {
                q = q.bind(r);
            }
            for (row, path) in q.fetch_all(&self.pool).await? {
                if let Some(c) = out.iter_mut().find(|c| c.row == row) {
                    c.files.push(path);
                }
            }
        }
        Ok(out)
    }

    /// The merged pull requests whose merge result (merge or squash commit) is one of
    /// these commits: `(merge sha, number)`.
    pub async fn merged_pulls(&self, repo: &str, shas: &[String]) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        for chunk in shas.chunks(500) {
            let mut q = query_as::<(String, i64)>(format!(
                "SELECT merge_commit_sha, number FROM pull_requests \
                 WHERE repo = ? AND merged = 1 AND merge_commit_sha IN ({}) ORDER BY number",
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

    /// Other commits of the repository that are copies of one of these (a rebased copy,
    /// or what a force-push replaced): the same patch id, or the same author, author time
    /// and message. `(sha, original)`, sorted.
    pub async fn copies_of(&self, repo: &str, shas: &[String]) -> Result<Vec<(String, String)>> {
        let mut out = BTreeSet::new();
        for chunk in shas.chunks(500) {
            let ph = placeholders(chunk.len());
            for sql in [
                format!(
                    "SELECT c.sha, o.sha FROM commits c JOIN commits o \
                       ON o.repo = c.repo AND o.sha <> c.sha AND o.author_email = c.author_email \
                       AND o.authored_ns = c.authored_ns AND o.message = c.message \
                     WHERE c.repo = ? AND c.sha IN ({ph})"
                ),
                format!(
                    "SELECT c.sha, o.sha FROM commit_patches c JOIN commit_patches o \
                       ON o.repo = c.repo AND o.patch_id = c.patch_id AND o.sha <> c.sha \
                     WHERE c.repo = ? AND c.patch_id IS NOT NULL AND c.sha IN ({ph})"
                ),
            ] {
                let mut q = query_as::<(String, String)>(sql).bind(repo);
                for s in chunk {
                    q = q.bind(s);
                }
                out.extend(q.fetch_all(&self.pool).await?);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// `(child, parent)` commit-key edges reachable from `tip` through `parent` links,
    /// `depth` parents deep.
    pub async fn ancestry_edges(&self, tip: &str, depth: u32) -> Result<Vec<(String, String)>> {
        query_as(
            "WITH RECURSIVE anc(key, depth) AS ( \
               SELECT CAST(CAST(? AS text_c) AS TEXT), 0 \
               UNION SELECT l.to_key, anc.depth + 1 FROM links l JOIN anc \
                 ON l.from_kind = 'commit' AND l.from_key = anc.key AND l.relation = 'parent' \
               WHERE anc.depth < ? \
             ) \
             SELECT DISTINCT l.from_key, l.to_key FROM links l JOIN anc \
               ON l.from_kind = 'commit' AND l.from_key = anc.key AND l.relation = 'parent' \
             ORDER BY l.from_key, l.to_key",
        )
        .bind(tip)
        .bind(i64::from(depth))
        .fetch_all(&self.pool)
        .await
    }
}
