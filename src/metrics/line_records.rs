//! Line records in the line share: where git-ai notes or Agent Trace documents say which
//! of a commit's lines an agent wrote, they — not the commit-level rule — decide which of
//! that commit's added lines are agents' (evidence `lines`).
//!
//! Records name line numbers of the commit's version of each file; a commit's patch says
//! which of those lines it added. What crosses commits (into the PR diff, or from the
//! commits a squash or rebased copy stands for into it) is the *content* of the
//! agent-written added lines, per file, counted: a line is the agents' as many times as
//! the records name it, so a `}` an agent wrote once and a person once counts once.

use std::collections::{BTreeMap, HashMap};

use super::diff;
use super::pull::PatchFile;
use crate::line_set::LineSet;

/// Agent-written added lines by content: path → line text → how many.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contents(pub HashMap<String, HashMap<String, u32>>);

impl Contents {
    /// Takes one line of `text` in `path` if there is one left.
    pub fn take(&mut self, path: &str, text: &str) -> bool {
        match self.0.get_mut(path).and_then(|f| f.get_mut(text)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    pub fn add(&mut self, other: Contents) {
        for (path, lines) in other.0 {
            let mine = self.0.entry(path).or_default();
            for (text, n) in lines {
                *mine.entry(text).or_insert(0) += n;
            }
        }
    }
}

/// What records say of one commit: its added lines, and those agents wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordedCommit {
    pub added: u64,
    /// Path → new-file line numbers of added lines agents wrote.
    pub agent_lines: BTreeMap<String, Vec<u32>>,
    pub contents: Contents,
}

impl RecordedCommit {
    pub fn agent_added(&self) -> u64 {
        self.agent_lines.values().map(|l| l.len() as u64).sum()
    }
}

/// A commit's agent-written added lines from its own records (`lines`: path → line
/// numbers of the commit's version of the file). Recorded lines the commit did not add
/// (context it kept) are not counted.
pub fn from_records(patch: &[PatchFile], lines: &BTreeMap<String, LineSet>) -> RecordedCommit {
    let mut out = RecordedCommit::default();
    for f in patch {
        let added = diff::added_lines(f.patch.as_deref().unwrap_or(""));
        out.added += added.len() as u64;
        let Some(recorded) = lines.get(&f.filename) else {
            continue;
        };
        let mut numbers = Vec::new();
        for l in added {
            if recorded.contains(l.number) {
                numbers.push(l.number);
                *out.contents
                    .0
                    .entry(f.filename.clone())
                    .or_default()
                    .entry(l.text.to_string())
                    .or_insert(0) += 1;
            }
        }
        if !numbers.is_empty() {
            out.agent_lines.insert(f.filename.clone(), numbers);
        }
    }
    out
}

/// A commit's agent-written added lines carried from the records of the commits it
/// stands for (a squash or merge result, a rebased copy): its added lines whose file and
/// content those commits' agents wrote.
pub fn carried(patch: &[PatchFile], mut from: Contents) -> RecordedCommit {
    let mut out = RecordedCommit::default();
    for f in patch {
        let added = diff::added_lines(f.patch.as_deref().unwrap_or(""));
        out.added += added.len() as u64;
        let mut numbers = Vec::new();
        for l in added {
            if from.take(&f.filename, l.text) {
                numbers.push(l.number);
                *out.contents
                    .0
                    .entry(f.filename.clone())
                    .or_default()
                    .entry(l.text.to_string())
                    .or_insert(0) += 1;
            }
        }
        if !numbers.is_empty() {
            out.agent_lines.insert(f.filename.clone(), numbers);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, patch: &str) -> PatchFile {
        PatchFile {
            filename: name.into(),
            patch: Some(patch.into()),
            additions: 0,
            deletions: 0,
        }
    }

    #[test]
    fn records_pick_the_added_lines_they_name() {
        // Lines 10-14 of the new file; 9 is context the commit kept.
        let patch = vec![file(
            "a.rs",
            "@@ -8,2 +8,7 @@\n keep\n keep\n+fn agent() {\n+}\n+fn human() {\n+}\n+// end\n",
        )];
        let lines = BTreeMap::from([("a.rs".to_string(), LineSet::from_ranges([(9, 11)]))]);
        let r = from_records(&patch, &lines);
        assert_eq!(r.added, 5);
        assert_eq!(r.agent_added(), 2);
        assert_eq!(r.agent_lines["a.rs"], vec![10, 11]);
        // The agent's `}` is one line: the person's `}` is not taken with it.
        let mut c = r.contents.clone();
        assert!(c.take("a.rs", "}"));
        assert!(!c.take("a.rs", "}"));
        assert!(!c.take("b.rs", "fn agent() {"));
    }

    #[test]
    fn a_squash_carries_its_originals_lines_by_file_and_content() {
        let one = vec![file("a.rs", "@@ -0,0 +1,2 @@\n+agent one\n+human one\n")];
        let two = vec![file("a.rs", "@@ -2,0 +3,2 @@\n+agent two\n+human two\n")];
        let mut from = from_records(
            &one,
            &BTreeMap::from([("a.rs".to_string(), LineSet::from_lines([1]))]),
        )
        .contents;
        from.add(
            from_records(
                &two,
                &BTreeMap::from([("a.rs".to_string(), LineSet::from_lines([3]))]),
            )
            .contents,
        );
        let squash = vec![file(
            "a.rs",
            "@@ -0,0 +1,4 @@\n+agent one\n+human one\n+agent two\n+human two\n",
        )];
        let r = carried(&squash, from);
        assert_eq!((r.added, r.agent_added()), (4, 2));
        assert_eq!(r.agent_lines["a.rs"], vec![1, 3]);
    }
}
