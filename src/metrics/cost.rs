//! Whose cost a commit carries, so that nothing is counted twice.
//!
//! A session's cost is split over the commits it is *directly* linked to (evidence
//! `trace`, `event`, `coauthor` or `window`), in proportion to their added lines when
//! every one of them has a known size, else their removed lines, else equally. All
//! shares of a session add up to its cost. A commit whose link is inherited (`merged`: a
//! squash or merge result, a rebased copy, a replacement after an amend) takes over its
//! original's share and never gets one of its own. A pull request's cost is the sum of
//! its commits' shares; a session's shares outside the pull request are not in it.

use std::collections::{BTreeMap, BTreeSet};

/// A commit's size, where its patch is known.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Size {
    pub added: Option<u64>,
    pub removed: Option<u64>,
}

/// Each `(session, commit)`'s share of the session's cost, for every direct link.
pub fn shares(
    costs: &BTreeMap<String, f64>,
    direct: &BTreeSet<(String, String)>,
    sizes: &BTreeMap<String, Size>,
) -> BTreeMap<(String, String), f64> {
    let mut by_session: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (s, c) in direct {
        by_session.entry(s.as_str()).or_default().push(c.as_str());
    }
    let mut out = BTreeMap::new();
    for (session, commits) in by_session {
        let Some(cost) = costs.get(session) else {
            continue;
        };
        let size = |c: &str| sizes.get(c).copied().unwrap_or_default();
        let weights: Vec<f64> = if let Some(w) = all_known(&commits, |c| size(c).added) {
            w
        } else if let Some(w) = all_known(&commits, |c| size(c).removed) {
            w
        } else {
            vec![1.0; commits.len()]
        };
        let total: f64 = weights.iter().sum();
        for (c, w) in commits.iter().zip(&weights) {
            out.insert((session.to_string(), c.to_string()), cost * w / total);
        }
    }
    out
}

/// The weights when every commit has one and they do not all weigh nothing.
fn all_known(commits: &[&str], weight: impl Fn(&str) -> Option<u64>) -> Option<Vec<f64>> {
    let w: Option<Vec<f64>> = commits
        .iter()
        .map(|c| weight(c).map(|v| v as f64))
        .collect();
    w.filter(|w| w.iter().sum::<f64>() > 0.0)
}

/// What each session's shares come to over a set of commits: their own shares, and for
/// a commit whose links are inherited, its original's shares (unless the original is in
/// the set too, so that nothing counts twice). `originals` maps an inheriting commit to
/// the commits it stands for.
pub fn carried<'a>(
    commits: &BTreeSet<String>,
    shares: &'a BTreeMap<(String, String), f64>,
    originals: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<&'a str, f64> {
    let mut counted: BTreeSet<&str> = BTreeSet::new();
    for c in commits {
        counted.insert(c.as_str());
        for o in originals.get(c).into_iter().flatten() {
            counted.insert(o.as_str());
        }
    }
    let mut out: BTreeMap<&str, f64> = BTreeMap::new();
    for ((session, c), v) in shares {
        if counted.contains(c.as_str()) {
            *out.entry(session.as_str()).or_default() += v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_session_is_split_by_added_lines_else_equally() {
        let costs = BTreeMap::from([("s".to_string(), 1.2)]);
        let direct = set(&[("s", "a"), ("s", "b"), ("s", "c")]);
        let sized = |a: u64| Size {
            added: Some(a),
            removed: Some(0),
        };
        let sizes = BTreeMap::from([
            ("a".to_string(), sized(10)),
            ("b".to_string(), sized(30)),
            ("c".to_string(), sized(20)),
        ]);
        let s = shares(&costs, &direct, &sizes);
        assert!((s[&("s".into(), "b".into())] - 0.6).abs() < 1e-9);
        assert!((s.values().sum::<f64>() - 1.2).abs() < 1e-9, "adds up");
        // One size unknown: equal shares.
        let partial = BTreeMap::from([("a".to_string(), sized(10))]);
        let s = shares(&costs, &direct, &partial);
        assert!((s[&("s".into(), "c".into())] - 0.4).abs() < 1e-9);
    }

    #[test]
    fn an_inheriting_commit_carries_its_originals_share_once() {
        let costs = BTreeMap::from([("s".to_string(), 1.0)]);
        let direct = set(&[("s", "a"), ("s", "b")]);
        let s = shares(&costs, &direct, &BTreeMap::new());
        let originals =
            BTreeMap::from([("squash".to_string(), vec!["a".to_string(), "b".to_string()])]);
        let pr_one: BTreeSet<String> = ["a".to_string()].into();
        assert!((carried(&pr_one, &s, &originals)["s"] - 0.5).abs() < 1e-9);
        // The squash commit stands for both, and is not counted beside them.
        let main: BTreeSet<String> = ["squash".to_string(), "a".to_string()].into();
        assert!((carried(&main, &s, &originals)["s"] - 1.0).abs() < 1e-9);
    }
}
