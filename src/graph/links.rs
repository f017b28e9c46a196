//! Session → commit links (DESIGN.md §4), strongest evidence first:
//!
//! 1. `trace` (exact): the commit's `Traceparent:` trailer names a trace of the session,
//!    or its `Tracelink-Session:` trailer names the session.
//! 2. `event` (exact): the session's telemetry names the commit's SHA, and the session's
//!    repository is the commit's (or unknown).
//! 3. `coauthor` (strong, 0.9): a known agent's co-author trailer, and a session of that
//!    agent by the commit's author whose window holds the commit time.
//! 4. `window` (scored, < 0.9): the same person, the commit time inside the session's
//!    window, where both name files at least one file in common, and exactly one such
//!    session; scored by repository and by the share of files in common. Merge commits
//!    and what GitHub itself commits (its merge button, web edits) are never
//!    window-linked.
//!
//! A session's window runs from its first record less two minutes of clock skew to its
//! last record plus the grace period (`--link-grace-secs`).
//!
//! Only the strongest class found for a commit is kept, so a time-window guess never
//! stands beside exact evidence; a commit claimed by several sessions with exact
//! evidence is shared between them. Links are a pure function of the stored facts:
//! whatever order telemetry and webhooks arrived in, the same links come out.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::identities::Identities;
use crate::store::{self, Db};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    Window,
    Coauthor,
    /// Inherited: the commit a merge put on the base branch (a merge or squash commit, a
    /// rebased copy) carries the links of the commits it stands for.
    Merged,
    Event,
    Trace,
}

impl Evidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Window => "window",
            Evidence::Coauthor => "coauthor",
            Evidence::Merged => "merged",
            Evidence::Event => "event",
            Evidence::Trace => "trace",
        }
    }

    pub fn parse(s: &str) -> Option<Evidence> {
        Some(match s {
            "window" => Evidence::Window,
            "coauthor" => Evidence::Coauthor,
            "merged" => Evidence::Merged,
            "event" => Evidence::Event,
            "trace" => Evidence::Trace,
            _ => return None,
        })
    }

    /// Exact evidence (trace, event) outranks co-author trailers and inherited links,
    /// which outrank windows.
    fn class(self) -> u8 {
        match self {
            Evidence::Trace | Evidence::Event => 2,
            Evidence::Coauthor | Evidence::Merged => 1,
            Evidence::Window => 0,
        }
    }

    /// Evidence about the commit itself, not inherited from another.
    pub fn is_direct(self) -> bool {
        self != Evidence::Merged
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionLink {
    pub session_key: String,
    #[serde(skip)]
    pub session_row: i64,
    pub sha: String,
    pub evidence: Evidence,
    pub confidence: f64,
    pub detail: String,
    /// For an inherited (`merged`) link, the commit whose link it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
}

/// The version of the link rules in this file and [`super::linker`]. Bump it with any
/// change that links the same facts differently: the first start of a release with a
/// new version links every session again in the background (stored links are read, not
/// recomputed, so they would otherwise keep the old rules' answer).
pub const RULES_VERSION: i64 = 1;

#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// How far outside a session's active window a commit may fall.
    pub grace_ns: i64,
    pub identities: Identities,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            grace_ns: 30 * 60 * 1_000_000_000,
            identities: Identities::default(),
        }
    }
}

/// The lowest `window` confidence that makes a link.
const WINDOW_FLOOR: f64 = 0.4;
/// How far a commit may precede its session's first record (clocks disagree).
const CLOCK_SKEW_NS: i64 = 2 * 60 * 1_000_000_000;
/// The committer of what GitHub itself commits (merge button, web edits).
const GITHUB_COMMITTER: &str = "noreply@github.com";

struct Commit {
    login: Option<String>,
    email: Option<String>,
    at: Option<i64>,
    /// A merge, or made by GitHub (its merge button, a web edit): never window-linked.
    no_window: bool,
    agents: BTreeSet<String>,
    files: Vec<String>,
    traces: Vec<[u8; 16]>,
    named_sessions: Vec<String>,
}

struct Candidate {
    row: i64,
    key: String,
    agent: Option<String>,
    people: Vec<String>,
    repository: Option<String>,
    start: i64,
    end: i64,
    files: Vec<String>,
}

/// Links every given commit of `repo` to the sessions that produced it: the direct
/// evidence about each, and for what a merge put on the base branch (a merge or squash
/// commit, a rebased copy) the links of the commits it stands for (`merged`).
pub async fn link_commits(
    db: &Db,
    cfg: &LinkConfig,
    repo: &str,
    shas: &[String],
) -> store::Result<Vec<SessionLink>> {
    let mut links = direct_links(db, cfg, repo, shas).await?;
    for (merge, number) in db.merged_pulls(repo, shas).await? {
        let mut originals = db.pull_commits(repo, number).await?.shas;
        originals.retain(|s| *s != merge);
        if is_rebased_copy(db, repo, &merge, &originals).await? {
            // A rebase merge: GitHub names the last rebased copy, which stands for its
            // own original only (the copy rule below), not for the whole PR.
            continue;
        }
        for l in direct_links(db, cfg, repo, &originals).await? {
            links.push(SessionLink {
                detail: format!("merged as #{number}'s merge result; {}", l.detail),
                original: Some(l.sha.clone()),
                sha: merge.clone(),
                evidence: Evidence::Merged,
                ..l
            });
        }
    }
    let copies = db.copies_of(repo, shas).await?;
    if !copies.is_empty() {
        let originals: Vec<String> = copies.iter().map(|(_, o)| o.clone()).collect();
        let direct = direct_links(db, cfg, repo, &originals).await?;
        for (copy, original) in &copies {
            // A copy's own evidence for a session stands where it is as strong as an
            // inherited link; it inherits the rest.
            let own: BTreeSet<String> = links
                .iter()
                .filter(|l| {
                    &l.sha == copy
                        && l.evidence.is_direct()
                        && l.evidence.class() >= Evidence::Merged.class()
                })
                .map(|l| l.session_key.clone())
                .collect();
            for l in direct
                .iter()
                .filter(|l| &l.sha == original && !own.contains(&l.session_key))
            {
                links.push(SessionLink {
                    detail: format!(
                        "a copy of {} (rebased or amended: the same change); {}",
                        &original[..original.len().min(7)],
                        l.detail
                    ),
                    original: Some(l.sha.clone()),
                    sha: copy.clone(),
                    evidence: Evidence::Merged,
                    ..l.clone()
                });
            }
        }
    }
    Ok(strongest(links))
}

/// Whether `merge` (a PR's `merge_commit_sha`) is a rebased copy of one of the PR's
/// commits — a rebase merge — rather than a merge or squash commit.
pub async fn is_rebased_copy(
    db: &Db,
    repo: &str,
    merge: &str,
    pr_commits: &[String],
) -> store::Result<bool> {
    Ok(db
        .copies_of(repo, &[merge.to_string()])
        .await?
        .iter()
        .any(|(_, original)| pr_commits.contains(original)))
}

/// The links of the evidence about each commit itself.
async fn direct_links(
    db: &Db,
    cfg: &LinkConfig,
    repo: &str,
    shas: &[String],
) -> store::Result<Vec<SessionLink>> {
    if shas.is_empty() {
        return Ok(Vec::new());
    }
    let commits: BTreeMap<String, Commit> = db
        .commit_facts(repo, shas)
        .await?
        .into_iter()
        .map(|(sha, f)| {
            (
                sha,
                Commit {
                    login: f.login,
                    email: f.email,
                    at: f.authored_ns,
                    no_window: f.parents >= 2
                        || f.committer_email.as_deref() == Some(GITHUB_COMMITTER)
                        || f.committer_name.as_deref() == Some("GitHub"),
                    agents: f.agents.into_iter().collect(),
                    files: f.files,
                    traces: f.traces,
                    named_sessions: f.named_sessions,
                },
            )
        })
        .collect();
    let mut links: Vec<SessionLink> = Vec::new();

    // 1. trace: trailers naming a session's trace, or the session itself.
    let mut traces: Vec<[u8; 16]> = commits.values().flat_map(|c| c.traces.clone()).collect();
    traces.sort_unstable();
    traces.dedup();
    let sessions_of_trace = db.sessions_of_traces(&traces).await?;
    let mut named: Vec<String> = commits
        .values()
        .flat_map(|c| c.named_sessions.clone())
        .collect();
    named.sort();
    named.dedup();
    let named_rows = db.session_rows(&named).await?;
    for (sha, c) in &commits {
        for t in &c.traces {
            for (row, key) in sessions_of_trace.get(t).into_iter().flatten() {
                links.push(SessionLink {
                    session_key: key.clone(),
                    session_row: *row,
                    sha: sha.clone(),
                    evidence: Evidence::Trace,
                    confidence: 1.0,
                    detail: format!(
                        "Traceparent trailer names trace {}",
                        crate::ids::encode_hex(t)
                    ),
                    original: None,
                });
            }
        }
        for key in &c.named_sessions {
            if let Some(row) = named_rows.get(key) {
                links.push(SessionLink {
                    session_key: key.clone(),
                    session_row: *row,
                    sha: sha.clone(),
                    evidence: Evidence::Trace,
                    confidence: 1.0,
                    detail: "Tracelink-Session trailer names the session".into(),
                    original: None,
                });
            }
        }
    }

    // 2. event: the session's telemetry names the SHA.
    for (sha, row, key) in db.sessions_naming(repo, shas).await? {
        links.push(SessionLink {
            session_key: key,
            session_row: row,
            sha,
            evidence: Evidence::Event,
            confidence: 1.0,
            detail: "the session's telemetry names the commit".into(),
            original: None,
        });
    }

    // 2b. event, abbreviated: the telemetry names the commit by a prefix of its SHA that
    // no other commit of the session's repository has.
    for (sha, row, key, prefix) in db.sessions_naming_abbreviated(repo, shas).await? {
        links.push(SessionLink {
            session_key: key,
            session_row: row,
            sha,
            evidence: Evidence::Event,
            confidence: 1.0,
            detail: format!(
                "the session's telemetry names the commit as {prefix}, the only commit of the repository with that prefix"
            ),
            original: None,
        });
    }

    // 3 and 4: sessions of the commits' authors around the commit times.
    let ids = &cfg.identities;
    let mut emails: BTreeSet<String> = BTreeSet::new();
    let mut agent_ids: BTreeSet<String> = BTreeSet::new();
    let mut times: Vec<i64> = Vec::new();
    for c in commits.values() {
        let Some(at) = c.at else { continue };
        times.push(at);
        for k in ids.commit_keys(c.login.as_deref(), c.email.as_deref()) {
            if let Some(e) = k.strip_prefix("email:") {
                emails.insert(e.to_string());
            } else if let Some(l) = k.strip_prefix("login:") {
                let (es, ais) = ids.aliases(l);
                emails.extend(es);
                agent_ids.extend(ais);
            }
        }
    }
    let mut candidates: Vec<Candidate> = Vec::new();
    if let (Some(min), Some(max)) = (times.iter().min(), times.iter().max()) {
        let emails: Vec<String> = emails.into_iter().collect();
        let agent_ids: Vec<String> = agent_ids.into_iter().collect();
        for s in db
            .candidate_sessions(&emails, &agent_ids, min - cfg.grace_ns, max + CLOCK_SKEW_NS)
            .await?
        {
            candidates.push(Candidate {
                row: s.row,
                people: ids.session_keys(s.user_email.as_deref(), s.user_id.as_deref()),
                key: s.key,
                agent: s.agent,
                repository: s.repository.map(|r| r.to_ascii_lowercase()),
                start: s.started_ns,
                end: s.ended_ns.unwrap_or(s.started_ns),
                files: s.files,
            });
        }
    }
    for (sha, c) in &commits {
        let Some(at) = c.at else { continue };
        let people = ids.commit_keys(c.login.as_deref(), c.email.as_deref());
        for s in &candidates {
            if !s.people.iter().any(|p| people.contains(p)) {
                continue;
            }
            // The session's window: from its start (less clock skew) to its last
            // activity plus the grace period.
            if at < s.start - CLOCK_SKEW_NS || at > s.end + cfg.grace_ns {
                continue;
            }
            if s.repository.as_deref().is_some_and(|r| r != repo) {
                continue;
            }
            if s.agent.as_ref().is_some_and(|a| c.agents.contains(a)) {
                links.push(SessionLink {
                    session_key: s.key.clone(),
                    session_row: s.row,
                    sha: sha.clone(),
                    evidence: Evidence::Coauthor,
                    confidence: 0.9,
                    detail: format!(
                        "co-author trailer of {} and the author's session around the commit",
                        s.agent.as_deref().unwrap_or("?")
                    ),
                    original: None,
                });
                continue;
            }
            if c.no_window || !files_overlap(s, c) {
                continue;
            }
            let (confidence, detail) = window_score(s, c, repo);
            if confidence > 0.0 {
                links.push(SessionLink {
                    session_key: s.key.clone(),
                    session_row: s.row,
                    sha: sha.clone(),
                    evidence: Evidence::Window,
                    confidence,
                    detail,
                    original: None,
                });
            }
        }
    }

    Ok(strongest(links))
}

/// Keeps the strongest class of evidence per commit; within it, one link per session
/// (the best). Window links below the floor, or where several sessions could explain the
/// commit by time alone, go.
fn strongest(mut links: Vec<SessionLink>) -> Vec<SessionLink> {
    // Keep the strongest class per commit; within it, one link per session (the best).
    let mut best: BTreeMap<&str, u8> = BTreeMap::new();
    for l in &links {
        let e = best.entry(l.sha.as_str()).or_default();
        *e = (*e).max(l.evidence.class());
    }
    let best: BTreeMap<String, u8> = best.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    links.retain(|l| best.get(&l.sha) == Some(&l.evidence.class()));
    // Scored links: below the floor they are noise; and a commit that several sessions
    // could explain by time alone is explained by none of them.
    links.retain(|l| l.evidence != Evidence::Window || l.confidence >= WINDOW_FLOOR);
    let mut window_candidates: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for l in links.iter().filter(|l| l.evidence == Evidence::Window) {
        window_candidates
            .entry(l.sha.clone())
            .or_default()
            .insert(l.session_key.as_str());
    }
    let ambiguous: BTreeSet<String> = window_candidates
        .into_iter()
        .filter(|(_, s)| s.len() > 1)
        .map(|(sha, _)| sha)
        .collect();
    links.retain(|l| l.evidence != Evidence::Window || !ambiguous.contains(&l.sha));
    links.sort_by(|a, b| {
        (
            a.sha.as_str(),
            a.session_key.as_str(),
            std::cmp::Reverse(a.evidence),
        )
            .cmp(&(
                b.sha.as_str(),
                b.session_key.as_str(),
                std::cmp::Reverse(b.evidence),
            ))
            .then(b.confidence.total_cmp(&a.confidence))
    });
    links.dedup_by(|a, b| a.sha == b.sha && a.session_key == b.session_key);
    links
}

/// Where both the session and the commit name files, at least one is in both.
fn files_overlap(s: &Candidate, c: &Commit) -> bool {
    s.files.is_empty() || c.files.is_empty() || c.files.iter().any(|f| same_file(&s.files, f))
}

/// A session's path (absolute, or relative to somewhere) names a repository path.
fn same_file(session_files: &[String], path: &str) -> bool {
    session_files
        .iter()
        .any(|sf| sf == path || sf.ends_with(&format!("/{path}")))
}

/// The `window` rule's confidence: same person and time (given), then repository and files.
fn window_score(s: &Candidate, c: &Commit, repo: &str) -> (f64, String) {
    let mut score: f64 = 0.5;
    let mut why = vec!["same person, commit inside the session's window".to_string()];
    match &s.repository {
        Some(r) if r == repo => {
            score += 0.2;
            why.push("same repository".into());
        }
        _ => why.push("session repository unknown".into()),
    }
    if !s.files.is_empty() && !c.files.is_empty() {
        // At least one, or the commit is no candidate ([`files_overlap`]).
        let overlap = c.files.iter().filter(|f| same_file(&s.files, f)).count();
        score += 0.15 * overlap as f64 / c.files.len() as f64;
        why.push(format!("{overlap} of {} files in common", c.files.len()));
    }
    (
        ((score * 100.0).round() / 100.0).clamp(0.0, 0.85),
        why.join(", "),
    )
}
