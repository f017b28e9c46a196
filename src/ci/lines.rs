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
use std::io::BufRead;

use serde::Deserialize;

use super::{Format, ParseError, shown};

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

// ---- git-ai ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct GitAiMeta {
    schema_version: String,
    #[serde(default)]
    prompts: HashMap<String, GitAiSession>,
    #[serde(default)]
    sessions: HashMap<String, GitAiSession>,
}

#[derive(Deserialize)]
struct GitAiSession {
    #[serde(default)]
    agent_id: Option<AgentId>,
}

#[derive(Deserialize)]
struct AgentId {
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

/// Parses a `line ranges` field: `1-4,7,10-12`.
fn git_ai_ranges(s: &str) -> Result<Vec<(u32, u32)>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let num = |t: &str| {
            super::parse_u64(t.as_bytes())
                .ok_or_else(|| format!("{} is not a line range", shown(part.as_bytes())))
        };
        out.push(checked_range(num(a)?, num(b)?)?);
    }
    Ok(out)
}

/// Reads a git-ai authorship log behind its `git-ai-note <sha>` line.
pub fn parse_git_ai(mut reader: impl BufRead) -> Result<Vec<LineRecord>, ParseError> {
    let f = Format::GitAi;
    let err = |line: u64, msg: String| ParseError::new(f, Some(line), msg);
    let mut buf = Vec::new();
    let mut n: u64 = 0;
    let mut next_line = |buf: &mut Vec<u8>, n: &mut u64| -> Result<Option<String>, ParseError> {
        buf.clear();
        let read = reader
            .read_until(b'\n', buf)
            .map_err(|e| ParseError::new(f, Some(*n + 1), e.to_string()))?;
        if read == 0 {
            return Ok(None);
        }
        *n += 1;
        let text = std::str::from_utf8(buf)
            .map_err(|_| ParseError::new(f, Some(*n), "not UTF-8"))?
            .trim_end_matches(['\n', '\r']);
        Ok(Some(text.to_string()))
    };

    let header = next_line(&mut buf, &mut n)?.unwrap_or_default();
    let commit = header
        .strip_prefix(GIT_AI_HEADER)
        .and_then(commit_sha)
        .ok_or_else(|| {
            err(
                1,
                format!(
                    "the first line must be `{GIT_AI_HEADER}<commit sha>`, not {}",
                    shown(header.as_bytes())
                ),
            )
        })?;

    // Attestations: (path, key, ranges).
    let mut attestations: Vec<(String, String, Ranges)> = Vec::new();
    let mut budget = Budget::default();
    let mut file: Option<String> = None;
    let mut divider = None;
    while let Some(line) = next_line(&mut buf, &mut n)? {
        if line == "---" {
            divider = Some(n);
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(entry) = line
            .strip_prefix("  ")
            .filter(|e| !e.starts_with(char::is_whitespace))
        {
            let Some(path) = &file else {
                return Err(err(n, "an attestation before any file path".into()));
            };
            let (key, ranges) = entry.trim().split_once(' ').ok_or_else(|| {
                err(
                    n,
                    format!(
                        "expected `<key> <line ranges>`, got {}",
                        shown(entry.as_bytes())
                    ),
                )
            })?;
            let ranges = git_ai_ranges(ranges.trim()).map_err(|m| err(n, m))?;
            for &(a, b) in &ranges {
                budget.range(f, n, a, b)?;
            }
            attestations.push((path.clone(), key.to_string(), ranges));
        } else if line.starts_with(char::is_whitespace) {
            return Err(err(
                n,
                format!(
                    "attestations are indented by exactly two spaces: {}",
                    shown(line.as_bytes())
                ),
            ));
        } else {
            let path = match line.strip_prefix('"') {
                Some(rest) => rest.strip_suffix('"').ok_or_else(|| {
                    err(
                        n,
                        format!("unterminated quoted path {}", shown(line.as_bytes())),
                    )
                })?,
                None => line.as_str(),
            };
            if path.is_empty() {
                return Err(err(n, "an empty file path".into()));
            }
            budget.file(f, n)?;
            file = Some(path.to_string());
        }
    }
    let Some(divider) = divider else {
        return Err(ParseError::new(
            f,
            Some(n),
            "no `---` line before the metadata",
        ));
    };
    let mut rest = Vec::new();
    reader
        .read_to_end(&mut rest)
        .map_err(|e| ParseError::new(f, Some(divider + 1), e.to_string()))?;
    let meta: GitAiMeta = serde_json::from_slice(&rest)
        .map_err(|e| err(divider + e.line() as u64, format!("metadata: {e}")))?;
    if !meta.schema_version.starts_with("authorship/3.") {
        return Err(err(
            divider + 1,
            format!(
                "schema_version {:?} (tracelink reads authorship/3.x)",
                meta.schema_version
            ),
        ));
    }

    let mut groups: Groups = HashMap::new();
    for (path, key, ranges) in attestations {
        if key.starts_with("h_") {
            continue; // A known human's lines.
        }
        let session = match key.split_once("::") {
            Some((s, _)) => meta.sessions.get(s),
            None => meta.prompts.get(&key),
        };
        let id = session.and_then(|s| s.agent_id.as_ref());
        let agent = name(id.and_then(|a| a.tool.as_deref())).unwrap_or_else(|| "unknown".into());
        let model = name(id.and_then(|a| a.model.as_deref()));
        let session = name(id.and_then(|a| a.id.as_deref()));
        groups
            .entry((commit.clone(), path, agent, model, session))
            .or_default()
            .extend(ranges);
    }
    Ok(records(groups))
}

// ---- Agent Trace ----------------------------------------------------------------------

#[derive(Deserialize)]
struct TraceRecord {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    vcs: Option<Vcs>,
    #[serde(default)]
    tool: Option<Tool>,
    files: Vec<TraceFile>,
}

#[derive(Deserialize)]
struct Vcs {
    #[serde(rename = "type")]
    kind: String,
    revision: String,
}

#[derive(Deserialize)]
struct Tool {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct TraceFile {
    path: String,
    conversations: Vec<Conversation>,
}

#[derive(Deserialize)]
struct Conversation {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    contributor: Option<Contributor>,
    ranges: Vec<TraceRange>,
}

#[derive(Deserialize)]
struct TraceRange {
    start_line: u64,
    end_line: u64,
    #[serde(default)]
    contributor: Option<Contributor>,
}

#[derive(Deserialize, Clone)]
struct Contributor {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    model_id: Option<String>,
}

/// Reads Agent Trace records (one JSON document, or several in a row as JSON Lines).
pub fn parse_agent_trace(mut reader: impl BufRead) -> Result<Vec<LineRecord>, ParseError> {
    let f = Format::AgentTrace;
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| ParseError::new(f, None, e.to_string()))?;
    let line_at = |offset: usize| {
        1 + bytes[..offset.min(bytes.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64
    };
    let mut groups: Groups = HashMap::new();
    let mut budget = Budget::default();
    let mut stream = serde_json::Deserializer::from_slice(&bytes).into_iter::<TraceRecord>();
    let mut start = 0;
    let mut any = false;
    loop {
        // Where the next record starts (after whitespace), for its line number.
        while bytes.get(start).is_some_and(u8::is_ascii_whitespace) {
            start += 1;
        }
        let Some(next) = stream.next() else { break };
        let record = next.map_err(|e| {
            ParseError::new(
                f,
                Some(e.line() as u64),
                format!("not an Agent Trace record: {e}"),
            )
        })?;
        let line = line_at(start);
        start = stream.byte_offset();
        any = true;
        if let Some(v) = &record.version
            && !(v.starts_with("0.") || v.starts_with("1."))
        {
            return Err(ParseError::new(
                f,
                Some(line),
                format!("version {v:?} (tracelink reads Agent Trace 0.x and 1.x)"),
            ));
        }
        let Some(commit) = record
            .vcs
            .as_ref()
            .filter(|v| v.kind == "git")
            .and_then(|v| commit_sha(&v.revision))
        else {
            continue; // Not placed on a git commit.
        };
        let agent = name(record.tool.as_ref().and_then(|t| t.name.as_deref()))
            .unwrap_or_else(|| "unknown".into());
        for file in record.files {
            budget.file(f, line)?;
            for conv in file.conversations {
                let session = name(conv.url.as_deref());
                for r in conv.ranges {
                    let Some(who) = r.contributor.as_ref().or(conv.contributor.as_ref()) else {
                        continue;
                    };
                    if who.kind != "ai" {
                        continue;
                    }
                    let (a, b) = checked_range(r.start_line, r.end_line).map_err(|m| {
                        ParseError::new(f, Some(line), format!("{}: {m}", file.path))
                    })?;
                    budget.range(f, line, a, b)?;
                    groups
                        .entry((
                            commit.clone(),
                            file.path.clone(),
                            agent.clone(),
                            name(who.model_id.as_deref()),
                            session.clone(),
                        ))
                        .or_default()
                        .push((a, b));
                }
            }
        }
    }
    if !any {
        return Err(ParseError::new(f, None, "no trace record"));
    }
    Ok(records(groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn note(body: &str) -> String {
        format!("{GIT_AI_HEADER}{SHA}\n{body}")
    }

    const META: &str = r#"{
  "schema_version": "authorship/3.0.0",
  "base_commit_sha": "0123456789abcdef0123456789abcdef01234567",
  "prompts": {
    "abcd1234abcd1234": {"agent_id": {"tool": "cursor", "id": "old", "model": "gpt-4"},
      "total_additions": 5, "total_deletions": 0, "accepted_lines": 5, "overriden_lines": 0}
  },
  "humans": {"h_31dce776f88375": {"author": "Dev <dev@example.com>"}},
  "sessions": {
    "s_c9883b05a2487d": {"agent_id": {"tool": "claude", "id": "conv_abc", "model": "claude-sonnet-4-5"}}
  }
}"#;

    #[test]
    fn reads_a_mixed_git_ai_note() {
        let text = note(&format!(
            "src/main.rs\n  s_c9883b05a2487d::t_9f8e7d6c5b4a32 1-10,15\n  s_c9883b05a2487d::t_a1b2c3d4e5f678 11-12\n  h_31dce776f88375 20-30\n\"src/my file.rs\"\n  abcd1234abcd1234 3,1-2\n---\n{META}\n"
        ));
        assert_eq!(detect(text.as_bytes()), Some(Format::GitAi));
        let r = parse_git_ai(text.as_bytes()).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].path, "src/main.rs");
        assert_eq!(r[0].commit, SHA);
        assert_eq!(
            r[0].ranges,
            vec![(1, 12), (15, 15)],
            "two traces of one session merge; humans are left out"
        );
        assert_eq!(
            (
                r[0].agent.as_str(),
                r[0].model.as_deref(),
                r[0].session.as_deref()
            ),
            ("claude", Some("claude-sonnet-4-5"), Some("conv_abc"))
        );
        assert_eq!(r[1].path, "src/my file.rs");
        assert_eq!(r[1].ranges, vec![(1, 3)]);
        assert_eq!(r[1].agent, "cursor");
        assert_eq!(r[1].lines().count(), 3);
    }

    #[test]
    fn an_unknown_key_is_an_unknown_agent() {
        let text = note(&format!("a.rs\n  ffffffffffffffff 1\n---\n{META}"));
        let r = parse_git_ai(text.as_bytes()).unwrap();
        assert_eq!(
            (r[0].agent.as_str(), r[0].model.as_deref()),
            ("unknown", None)
        );
    }

    #[test]
    fn malformed_git_ai_notes_name_the_line() {
        let cases = [
            ("a.rs\n  k 1\n---\n{}".to_string(), 1, "first line"),
            (note("  k 1-2\n---\n{}"), 2, "before any file path"),
            (note("a.rs\n  k 1-x\n---\n{}"), 3, "not a line range"),
            (note("a.rs\n  k 0-2\n---\n{}"), 3, "start at 1"),
            (note("a.rs\n  k 5-2\n---\n{}"), 3, "ends before it starts"),
            (note("a.rs\n  k 1-99999999\n---\n{}"), 3, "beyond line"),
            (
                note("a.rs\n  k\n---\n{}"),
                3,
                "expected `<key> <line ranges>`",
            ),
            (note("a.rs\n   k 1\n---\n{}"), 3, "exactly two spaces"),
            (note("\"a.rs\n  k 1\n---\n{}"), 2, "unterminated"),
            (note("a.rs\n  k 1\n"), 3, "no `---`"),
            (
                note("a.rs\n  k 1\n---\n{\"schema_version\": 3"),
                5,
                "metadata",
            ),
            (
                note("a.rs\n  k 1\n---\n{\"schema_version\": \"authorship/2.0\", \"prompts\": {}}"),
                5,
                "schema_version",
            ),
        ];
        for (text, line, msg) in cases {
            let e = parse_git_ai(text.as_bytes()).unwrap_err();
            assert_eq!(e.line, Some(line), "{text:?}: {e}");
            assert!(e.message.contains(msg), "{text:?}: {e}");
        }
        // Not UTF-8, or cut anywhere: an error, never a panic.
        let text = note(&format!("a.rs\n  s_x::t_y 1-3\n---\n{META}"));
        for cut in 0..text.len() {
            let _ = parse_git_ai(&text.as_bytes()[..cut]);
        }
        assert!(parse_git_ai(&b"git-ai-note \xff\n"[..]).is_err());
    }

    #[test]
    fn too_many_ranges_is_refused_at_the_line() {
        let ranges: Vec<String> = (1..=MAX_RANGES as u32 + 1)
            .map(|i| (i * 2).to_string())
            .collect();
        let text = note(&format!("a.rs\n  k {}\n---\n{META}", ranges.join(",")));
        let e = parse_git_ai(text.as_bytes()).unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(
            e.to_string().contains("more than 100000 line ranges"),
            "{e}"
        );
    }

    fn trace(revision: &str) -> String {
        format!(
            r#"{{"version": "0.1.0", "id": "550e8400-e29b-41d4-a716-446655440000", "timestamp": "2026-01-23T14:30:00Z",
  "vcs": {{"type": "git", "revision": "{revision}"}}, "tool": {{"name": "cursor", "version": "2.4.0"}},
  "files": [{{"path": "src/parser.ts", "conversations": [
    {{"url": "https://api.cursor.com/v1/conversations/12345",
      "contributor": {{"type": "ai", "model_id": "anthropic/claude-opus-4-5-20251101"}},
      "ranges": [{{"start_line": 42, "end_line": 67}}, {{"start_line": 1, "end_line": 2, "contributor": {{"type": "human"}}}},
                 {{"start_line": 70, "end_line": 70, "contributor": {{"type": "ai", "model_id": "openai/gpt-4o"}}}}]}},
    {{"contributor": {{"type": "unknown"}}, "ranges": [{{"start_line": 5, "end_line": 6}}]}}]}}]}}"#
        )
    }

    #[test]
    fn reads_agent_trace_records_one_or_many() {
        let one = trace(&SHA.to_uppercase());
        assert_eq!(detect(one.as_bytes()), Some(Format::AgentTrace));
        let r = parse_agent_trace(one.as_bytes()).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].commit, SHA);
        assert_eq!(r[0].agent, "cursor");
        assert_eq!(
            r[0].model.as_deref(),
            Some("anthropic/claude-opus-4-5-20251101")
        );
        assert_eq!(r[0].ranges, vec![(42, 67)]);
        assert_eq!(
            r[0].session.as_deref(),
            Some("https://api.cursor.com/v1/conversations/12345")
        );
        assert_eq!(r[1].model.as_deref(), Some("openai/gpt-4o"));
        assert_eq!(r[1].ranges, vec![(70, 70)]);

        // JSON Lines, one record per commit; a record without a git revision is skipped.
        let other = "fedcba9876543210fedcba9876543210fedcba98";
        let jsonl = format!(
            "{}\n{}\n{{\"version\": \"0.1.0\", \"files\": [{{\"path\": \"x\", \"conversations\": []}}]}}\n",
            trace(SHA).replace('\n', " "),
            trace(other).replace('\n', " ")
        );
        let r = parse_agent_trace(jsonl.as_bytes()).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r.iter().filter(|r| r.commit == other).count(), 2);
    }

    #[test]
    fn malformed_agent_traces_name_the_line() {
        let jsonl = format!(
            "{}\n{{\"version\": \"0.1.0\", \"files\": 3}}\n",
            trace(SHA).replace('\n', " ")
        );
        let e = parse_agent_trace(jsonl.as_bytes()).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let bad_range = trace(SHA).replace("\"start_line\": 42", "\"start_line\": 0");
        let e = parse_agent_trace(bad_range.as_bytes()).unwrap_err();
        assert!(
            e.message.contains("src/parser.ts: line numbers start at 1"),
            "{e}"
        );
        let e = parse_agent_trace(trace(SHA).replace("0.1.0", "2.0.0").as_bytes()).unwrap_err();
        assert!(e.message.contains("version"), "{e}");
        assert_eq!(
            parse_agent_trace(&b"  "[..]).unwrap_err().message,
            "no trace record"
        );
        let text = trace(SHA);
        for cut in 0..text.len() {
            let _ = parse_agent_trace(&text.as_bytes()[..cut]);
        }
        // Too many ranges, named at the record's line.
        let many: Vec<String> = (0..=MAX_RANGES)
            .map(|_| r#"{"start_line": 1, "end_line": 1}"#.to_string())
            .collect();
        let doc = format!(
            "\n\n{{\"version\": \"0.1.0\", \"vcs\": {{\"type\": \"git\", \"revision\": \"{SHA}\"}}, \"files\": [{{\"path\": \"a\", \"conversations\": [{{\"contributor\": {{\"type\": \"ai\"}}, \"ranges\": [{}]}}]}}]}}",
            many.join(",")
        );
        let e = parse_agent_trace(doc.as_bytes()).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("more than 100000 line ranges"), "{e}");
    }

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
