//! Session → commit links (DESIGN.md §4), strongest evidence first:
//!
//! 1. `trace` (exact): the commit's `Traceparent:` trailer names a trace of the session,
//!    or its `Tracelink-Session:` trailer names the session.
//! 2. `event` (exact): the session's telemetry names the commit's SHA.
//! 3. `coauthor` (strong, 0.9): a known agent's co-author trailer, and a session of that
//!    agent by the commit's author whose active window (plus the grace period) holds the
//!    commit time.
//! 4. `window` (scored, < 0.9): the same person, the commit time inside the session's
//!    window plus grace, scored by repository and by the files both touched.
//!
//! Only the strongest class found for a commit is kept, so a time-window guess never
//! stands beside exact evidence; a commit claimed by several sessions of that class is
//! shared between them. Links are a pure function of the stored facts: whatever order
//! telemetry and webhooks arrived in, the same links come out.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::identities::Identities;
use crate::store::{self, Db};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    Window,
    Coauthor,
    Event,
    Trace,
}

impl Evidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Window => "window",
            Evidence::Coauthor => "coauthor",
            Evidence::Event => "event",
            Evidence::Trace => "trace",
        }
    }

    /// Exact evidence (trace, event) outranks co-author trailers, which outrank windows.
    fn class(self) -> u8 {
        match self {
            Evidence::Trace | Evidence::Event => 2,
            Evidence::Coauthor => 1,
            Evidence::Window => 0,
        }
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
}

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
/// How far below the best `window` link of a commit another may be and still share it.
const WINDOW_MARGIN: f64 = 0.15;

struct Commit {
    login: Option<String>,
    email: Option<String>,
    at: Option<i64>,
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

/// Links every given commit of `repo` to the sessions that produced it.
pub async fn link_commits(
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
                });
            }
        }
    }

    // 2. event: the session's telemetry names the SHA.
    for (sha, row, key) in db.sessions_naming(shas).await? {
        links.push(SessionLink {
            session_key: key,
            session_row: row,
            sha,
            evidence: Evidence::Event,
            confidence: 1.0,
            detail: "the session's telemetry names the commit".into(),
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
            .candidate_sessions(&emails, &agent_ids, min - cfg.grace_ns, max + cfg.grace_ns)
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
            if at < s.start - cfg.grace_ns || at > s.end + cfg.grace_ns {
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
                });
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
                });
            }
        }
    }

    // Keep the strongest class per commit; within it, one link per session (the best).
    let mut best: BTreeMap<&str, u8> = BTreeMap::new();
    for l in &links {
        let e = best.entry(l.sha.as_str()).or_default();
        *e = (*e).max(l.evidence.class());
    }
    let best: BTreeMap<String, u8> = best.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    links.retain(|l| best.get(&l.sha) == Some(&l.evidence.class()));
    // Scored links: below the floor they are noise; well below the best for the same
    // commit they are a worse explanation, not a co-author.
    let mut top: BTreeMap<String, f64> = BTreeMap::new();
    for l in links.iter().filter(|l| l.evidence == Evidence::Window) {
        let t = top.entry(l.sha.clone()).or_insert(0.0);
        *t = t.max(l.confidence);
    }
    links.retain(|l| {
        l.evidence != Evidence::Window
            || (l.confidence >= WINDOW_FLOOR
                && l.confidence >= top.get(&l.sha).copied().unwrap_or(0.0) - WINDOW_MARGIN)
    });
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
    Ok(links)
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
        let overlap = c
            .files
            .iter()
            .filter(|f| {
                s.files
                    .iter()
                    .any(|sf| sf == *f || sf.ends_with(&format!("/{f}")))
            })
            .count();
        if overlap == 0 {
            score -= 0.2;
            why.push("no file in common".into());
        } else {
            score += 0.15 * overlap as f64 / c.files.len() as f64;
            why.push(format!("{overlap} of {} files in common", c.files.len()));
        }
    }
    (
        ((score * 100.0).round() / 100.0).clamp(0.0, 0.85),
        why.join(", "),
    )
}
