//! Line records: which lines of a commit an agent wrote, as the agents' own tools record
//! them, read into one normalised list of [`LineRecord`]s.
//!
//! Two formats:
//!
//! - [`Format::GitAi`]: a git-ai authorship log — the note git-ai attaches to a commit
//!   under `refs/notes/ai` (the Git AI Standard v3.0.0, schema `authorship/3.0.0`). A
//!   note names no commit, so the Action sends each one behind a first line
//!   `git-ai-note <sha>` naming the commit it is attached to ([`GIT_AI_HEADER`]). The
//!   attestation section lists file paths (quoted when they hold whitespace), each
//!   followed by lines `␣␣<key> <ranges>`; after the `---` divider, JSON metadata maps
//!   the keys to agents: `s_<id>::t_<trace>` keys through `sessions` (by the part before
//!   `::`), bare hex keys through `prompts` (notes older than git-ai 1.4), and `h_` keys
//!   are known humans — their lines are not agents'.
//! - [`Format::AgentTrace`]: Cursor's Agent Trace (specification 0.1.0): JSON trace
//!   records — one document, or several one after another as in the reference
//!   implementation's `.agent-trace/traces.jsonl` — each with `vcs.revision` (the commit
//!   the line numbers refer to), `tool.name`, and `files[].conversations[].ranges[]`
//!   (`start_line`, `end_line`) whose `contributor` (on the conversation, overridable per
//!   range) has `type` and `model_id`. Only `ai` contributors' ranges are agents' lines; a
//!   record without a git revision cannot be placed and is skipped.
//!
//! Line numbers are 1-based lines of the commit's version of the file. Everything is
//! bounded ([`MAX_RANGES`], [`MAX_FILES`], [`MAX_LINE`], [`MAX_LINES`]); input that breaks a
//! bound or cannot be read is a [`ParseError`] naming the line of the document.

use std::collections::HashMap;

use super::{Format, ParseError};

mod agent_trace;
mod git_ai;

pub use agent_trace::parse as parse_agent_trace;
pub use git_ai::parse as parse_git_ai;

/// The first line the Action puts before a git-ai note: `git-ai-note <commit sha>`.
pub const GIT_AI_HEADER: &str = "git-ai-note ";
/// Most line ranges in one document.
pub const MAX_RANGES: usize = 100_000;
/// Most file entries in one document.
pub const MAX_FILES: usize = 20_000;
/// Highest line number read.
pub const MAX_LINE: u32 = 5_000_000;
/// Most attributed lines in one document (the ranges' lengths summed).
pub const MAX_LINES: u64 = 5_000_000;
/// Agent, model and session names are cut to this many characters.
const MAX_NAME: usize = 200;

/// Lines of one file of one commit written by one agent (and model, and session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRecord {
    /// The commit, lower-case hex.
    pub commit: String,
    /// As the document wrote it; repository-relative after [`normalise_paths`].
    pub path: String,
    /// Inclusive `(start, end)` line ranges, ascending and not overlapping.
    pub ranges: Vec<(u32, u32)>,
    /// The agent's tool (`claude`, `cursor`, …); `unknown` when the document names none.
    pub agent: String,
    pub model: Option<String>,
    pub session: Option<String>,
}

impl LineRecord {
    /// The line numbers, ascending.
    pub fn lines(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }
}

/// Rewrites every record's path to be repository-relative
/// ([`super::paths::normalise_with`]); records whose paths cannot be placed are dropped
/// and their paths returned, sorted and distinct.
pub fn normalise_paths(
    records: Vec<LineRecord>,
    repo: &str,
    workspace: Option<&str>,
) -> (Vec<LineRecord>, Vec<String>) {
    let mut out = Vec::with_capacity(records.len());
    let mut unmatched = std::collections::BTreeSet::new();
    for mut r in records {
        match super::paths::normalise_with(&r.path, repo, workspace) {
            Ok(rel) => {
                r.path = rel;
                out.push(r);
            }
            Err(_) => {
                unmatched.insert(r.path);
            }
        }
    }
    (out, unmatched.into_iter().collect())
}

/// Whether a document's first bytes are a line-record format.
pub(super) fn detect(head: &[u8]) -> Option<Format> {
    if head.starts_with(GIT_AI_HEADER.as_bytes()) {
        return Some(Format::GitAi);
    }
    if head.starts_with(b"{") && contains(head, b"\"conversations\"") {
        return Some(Format::AgentTrace);
    }
    None
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A commit SHA (40 or 64 hex digits), lower-cased.
fn commit_sha(s: &str) -> Option<String> {
    let s = s.trim();
    ((s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| s.to_ascii_lowercase())
}

fn name(s: Option<&str>) -> Option<String> {
    let s = s?.trim();
    (!s.is_empty()).then(|| s.chars().take(MAX_NAME).collect())
}

/// Counts ranges and lines against the bounds.
#[derive(Default)]
struct Budget {
    ranges: usize,
    lines: u64,
    files: usize,
}

impl Budget {
    fn range(&mut self, format: Format, line: u64, a: u32, b: u32) -> Result<(), ParseError> {
        self.ranges += 1;
        if self.ranges > MAX_RANGES {
            return Err(ParseError::new(
                format,
                Some(line),
                format!("more than {MAX_RANGES} line ranges"),
            ));
        }
        self.lines += u64::from(b - a) + 1;
        if self.lines > MAX_LINES {
            return Err(ParseError::new(
                format,
                Some(line),
                format!("more than {MAX_LINES} attributed lines"),
            ));
        }
        Ok(())
    }

    fn file(&mut self, format: Format, line: u64) -> Result<(), ParseError> {
        self.files += 1;
        if self.files > MAX_FILES {
            return Err(ParseError::new(
                format,
                Some(line),
                format!("more than {MAX_FILES} files"),
            ));
        }
        Ok(())
    }
}

/// Checks one range: `1 <= start <= end <= MAX_LINE`.
fn checked_range(start: u64, end: u64) -> Result<(u32, u32), String> {
    if start == 0 || end == 0 {
        return Err("line numbers start at 1".into());
    }
    if start > end {
        return Err(format!("range {start}-{end} ends before it starts"));
    }
    if end > u64::from(MAX_LINE) {
        return Err(format!("line {end} is beyond line {MAX_LINE}"));
    }
    Ok((start as u32, end as u32))
}

/// Sorts and merges ranges (touching ones too).
fn merged(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    ranges.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Inclusive `(start, end)` line ranges.
type Ranges = Vec<(u32, u32)>;

/// Groups `(commit, path, agent, model, session)` → ranges into records, in a stable order.
type Groups = HashMap<(String, String, String, Option<String>, Option<String>), Vec<(u32, u32)>>;

fn records(groups: Groups) -> Vec<LineRecord> {
    let mut out: Vec<LineRecord> = groups
        .into_iter()
        .map(
            |((commit, path, agent, model, session), ranges)| LineRecord {
                commit,
                path,
                ranges: merged(ranges),
                agent,
                model,
                session,
            },
        )
        .collect();
    out.sort_by(|a, b| {
        (&a.commit, &a.path, &a.agent, &a.model, &a.session)
            .cmp(&(&b.commit, &b.path, &b.agent, &b.model, &b.session))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    #[test]
    fn paths_are_normalised_like_coverage_paths() {
        let r = LineRecord {
            commit: SHA.into(),
            path: "/home/runner/work/demo/demo/src/a.rs".into(),
            ranges: vec![(1, 1)],
            agent: "claude".into(),
            model: None,
            session: None,
        };
        let outside = LineRecord {
            path: "/opt/x.rs".into(),
            ..r.clone()
        };
        let (ok, unmatched) = normalise_paths(vec![r, outside], "acme/demo", None);
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].path, "src/a.rs");
        assert_eq!(unmatched, vec!["/opt/x.rs".to_string()]);
    }
}
