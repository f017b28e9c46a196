//! The git-ai authorship log (Git AI Standard v3.0.0, `authorship/3.0.0`), behind the
//! `git-ai-note <sha>` line the Action adds ([`super::GIT_AI_HEADER`]).

use std::collections::HashMap;
use std::io::BufRead;

use serde::Deserialize;

use super::{
    Budget, GIT_AI_HEADER, Groups, LineRecord, Ranges, checked_range, commit_sha, name, records,
};
use crate::ci::{Format, ParseError, shown};

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
            crate::ci::parse_u64(t.as_bytes())
                .ok_or_else(|| format!("{} is not a line range", shown(part.as_bytes())))
        };
        out.push(checked_range(num(a)?, num(b)?)?);
    }
    Ok(out)
}

/// Reads a git-ai authorship log behind its `git-ai-note <sha>` line.
pub fn parse(mut reader: impl BufRead) -> Result<Vec<LineRecord>, ParseError> {
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

#[cfg(test)]
mod tests {
    use super::super::{MAX_RANGES, detect};
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    fn note(body: &str) -> String {
        format!("{GIT_AI_HEADER}{SHA}\n{body}")
    }
    /// The metadata of a git-ai note (shared with the fuzz seeds).
    const META: &str = include_str!("../../../tests/fixtures/lines/git-ai-meta.json");
    #[test]
    fn reads_a_mixed_git_ai_note() {
        let text = note(&format!(
            "src/main.rs\n  s_c9883b05a2487d::t_9f8e7d6c5b4a32 1-10,15\n  s_c9883b05a2487d::t_a1b2c3d4e5f678 11-12\n  h_31dce776f88375 20-30\n\"src/my file.rs\"\n  abcd1234abcd1234 3,1-2\n---\n{META}\n"
        ));
        assert_eq!(detect(text.as_bytes()), Some(Format::GitAi));
        let r = parse(text.as_bytes()).unwrap();
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
        let r = parse(text.as_bytes()).unwrap();
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
            let e = parse(text.as_bytes()).unwrap_err();
            assert_eq!(e.line, Some(line), "{text:?}: {e}");
            assert!(e.message.contains(msg), "{text:?}: {e}");
        }
        // Not UTF-8, or cut anywhere: an error, never a panic.
        let text = note(&format!("a.rs\n  s_x::t_y 1-3\n---\n{META}"));
        for cut in 0..text.len() {
            let _ = parse(&text.as_bytes()[..cut]);
        }
        assert!(parse(&b"git-ai-note \xff\n"[..]).is_err());
    }
    #[test]
    fn too_many_ranges_is_refused_at_the_line() {
        let ranges: Vec<String> = (1..=MAX_RANGES as u32 + 1)
            .map(|i| (i * 2).to_string())
            .collect();
        let text = note(&format!("a.rs\n  k {}\n---\n{META}", ranges.join(",")));
        let e = parse(text.as_bytes()).unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(
            e.to_string().contains("more than 100000 line ranges"),
            "{e}"
        );
    }
}
