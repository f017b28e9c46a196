//! Line records of a report's commits (DESIGN.md: evidence `lines`): for each commit, what
//! its own git-ai notes or Agent Trace records say agents wrote, or — for a commit without
//! records of its own that stands for others (a squash or merge result, a rebased or
//! amended copy) — what theirs say, carried over by file and content
//! ([`crate::metrics::line_records`]). Commits whose patch is not cached are left out:
//! records name line numbers, and only the patch says which lines a commit added — except
//! a merge result, whose pull request's diff (cached for its report) stands in for its
//! patch: a squash commit adds what the pull request's diff adds.

use std::collections::{BTreeMap, BTreeSet};

use crate::metrics::line_records::{self as maths, Contents, RecordedCommit};
use crate::metrics::model::CommitLineRecords;
use crate::metrics::pull::parse_patch;
use crate::store::{self, Db};

/// What records say of one commit: the maths' view and the report's.
pub struct Recorded {
    pub lines: RecordedCommit,
    pub summary: CommitLineRecords,
}

/// The commits among `shas` with line records (their own or carried), by SHA.
pub async fn recorded(
    db: &Db,
    repo: &str,
    shas: &[String],
) -> store::Result<BTreeMap<String, Recorded>> {
    let own = db.line_records(repo, shas).await?;
    let mut out = BTreeMap::new();
    for (sha, rec) in &own {
        let Some(patch) = patch(db, repo, sha).await? else {
            continue;
        };
        let lines = maths::from_records(&patch, &rec.files);
        out.insert(
            sha.clone(),
            summarised(lines, rec.agents.clone(), Vec::new()),
        );
    }

    // What each commit without records stands for.
    let missing: Vec<String> = shas
        .iter()
        .filter(|s| !own.contains_key(*s))
        .cloned()
        .collect();
    let mut stands_for: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // A merge result's pull request: its diff stands in for a squash commit's patch,
    // which is not fetched.
    let mut pull_of: BTreeMap<String, i64> = BTreeMap::new();
    for (merge, number) in db.merged_pulls(repo, &missing).await? {
        pull_of.insert(merge.clone(), number);
        let originals = db.pull_commits(repo, number).await?.shas;
        stands_for
            .entry(merge.clone())
            .or_default()
            .extend(originals.into_iter().filter(|o| *o != merge));
    }
    for (copy, original) in db.copies_of(repo, &missing).await? {
        stands_for.entry(copy).or_default().insert(original);
    }
    let wanted: Vec<String> = stands_for
        .values()
        .flatten()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if wanted.is_empty() {
        return Ok(out);
    }
    let theirs = db.line_records(repo, &wanted).await?;
    for (sha, originals) in stands_for {
        let mut contents = Contents::default();
        let mut agents = BTreeSet::new();
        let mut from = Vec::new();
        for o in &originals {
            let (Some(rec), Some(p)) = (theirs.get(o), patch(db, repo, o).await?) else {
                continue;
            };
            contents.add(maths::from_records(&p, &rec.files).contents);
            agents.extend(rec.agents.iter().cloned());
            from.push(o.clone());
        }
        if from.is_empty() {
            continue;
        }
        let own = patch(db, repo, &sha).await?;
        let p = match (own, pull_of.get(&sha)) {
            (Some(p), _) => p,
            (None, Some(number)) => match db
                .pull_patch(repo, *number)
                .await?
                .and_then(|p| parse_patch(&p))
            {
                Some(p) => p,
                None => continue,
            },
            (None, None) => continue,
        };
        let lines = maths::carried(&p, contents);
        out.insert(sha, summarised(lines, agents.into_iter().collect(), from));
    }
    Ok(out)
}

fn summarised(lines: RecordedCommit, agents: Vec<String>, carried_from: Vec<String>) -> Recorded {
    Recorded {
        summary: CommitLineRecords {
            evidence: "lines",
            added: lines.added,
            agent_added: lines.agent_added(),
            agents,
            carried_from,
        },
        lines,
    }
}

async fn patch(
    db: &Db,
    repo: &str,
    sha: &str,
) -> store::Result<Option<Vec<crate::metrics::pull::PatchFile>>> {
    Ok(db
        .commit_patch(repo, sha)
        .await?
        .and_then(|p| parse_patch(&p)))
}
