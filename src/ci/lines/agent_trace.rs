//! Cursor's Agent Trace (specification 0.1.0): trace records, one JSON document or
//! several in a row (JSON Lines).

use std::collections::HashMap;
use std::io::BufRead;

use serde::Deserialize;

use super::{Budget, Groups, LineRecord, checked_range, commit_sha, name, records};
use crate::ci::{Format, ParseError};

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
pub fn parse(mut reader: impl BufRead) -> Result<Vec<LineRecord>, ParseError> {
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
    use super::super::{MAX_RANGES, detect};
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    /// An Agent Trace record of `revision` (the fixture, shared with the fuzz seeds).
    fn trace(revision: &str) -> String {
        include_str!("../../../tests/fixtures/lines/agent-trace.json")
            .trim_end()
            .replace(SHA, revision)
    }
    #[test]
    fn reads_agent_trace_records_one_or_many() {
        let one = trace(&SHA.to_uppercase());
        assert_eq!(detect(one.as_bytes()), Some(Format::AgentTrace));
        let r = parse(one.as_bytes()).unwrap();
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
        let r = parse(jsonl.as_bytes()).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r.iter().filter(|r| r.commit == other).count(), 2);
    }
    #[test]
    fn malformed_agent_traces_name_the_line() {
        let jsonl = format!(
            "{}\n{{\"version\": \"0.1.0\", \"files\": 3}}\n",
            trace(SHA).replace('\n', " ")
        );
        let e = parse(jsonl.as_bytes()).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let bad_range = trace(SHA).replace("\"start_line\": 42", "\"start_line\": 0");
        let e = parse(bad_range.as_bytes()).unwrap_err();
        assert!(
            e.message.contains("src/parser.ts: line numbers start at 1"),
            "{e}"
        );
        let e = parse(trace(SHA).replace("0.1.0", "2.0.0").as_bytes()).unwrap_err();
        assert!(e.message.contains("version"), "{e}");
        assert_eq!(parse(&b"  "[..]).unwrap_err().message, "no trace record");
        let text = trace(SHA);
        for cut in 0..text.len() {
            let _ = parse(&text.as_bytes()[..cut]);
        }
        // Too many ranges, named at the record's line.
        let many: Vec<String> = (0..=MAX_RANGES)
            .map(|_| r#"{"start_line": 1, "end_line": 1}"#.to_string())
            .collect();
        let doc = format!(
            "\n\n{{\"version\": \"0.1.0\", \"vcs\": {{\"type\": \"git\", \"revision\": \"{SHA}\"}}, \"files\": [{{\"path\": \"a\", \"conversations\": [{{\"contributor\": {{\"type\": \"ai\"}}, \"ranges\": [{}]}}]}}]}}",
            many.join(",")
        );
        let e = parse(doc.as_bytes()).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("more than 100000 line ranges"), "{e}");
    }
}
