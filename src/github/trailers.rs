//! Git commit trailers, found the way `git interpret-trailers` finds them, and what they
//! say about agent involvement (DESIGN.md §4: the `trace` and `coauthor` links).
//!
//! The trailer block is the final paragraph of the message: after the last blank line,
//! ignoring a trailing section of `#` comment lines and blank lines (and everything
//! after a `# ---- >8 ----` scissors line). The subject paragraph is never a trailer
//! block. A block is accepted when every line in it is a `Key: value` trailer, a
//! continuation of the previous trailer (leading whitespace), a comment or a
//! `(cherry picked from commit …)` line. Like git, a block that also holds prose is
//! still accepted when it has a git-generated line (`Signed-off-by:` or the cherry-pick
//! note) and at least one trailer line for every three other lines, because that is
//! the block `git interpret-trailers` (and so `tracelink hook`) appends to.

use crate::ids::{SessionId, SpanId, TraceId};

/// One `Key: value` trailer. The key is as written; compare it case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    pub key: String,
    pub value: String,
}

impl Trailer {
    /// Whether this trailer's key is `key`, ignoring ASCII case.
    pub fn is(&self, key: &str) -> bool {
        self.key.eq_ignore_ascii_case(key)
    }
}

/// The trailer carrying W3C trace context (`00-<trace id>-<span id>-<flags>`).
pub const TRACEPARENT_KEY: &str = "Traceparent";
/// The trailer carrying an agent's own session identifier.
pub const SESSION_KEY: &str = "Tracelink-Session";

const CHERRY_PICK_PREFIX: &str = "(cherry picked from commit ";
const SCISSORS: &str = "# ------------------------ >8 ------------------------";
/// Trailer keys git itself writes; their presence lets a mixed block count as trailers.
const GIT_GENERATED: &[&str] = &["signed-off-by"];

/// The trailers of a commit message, in order. Empty when the final paragraph is not a
/// trailer block.
pub fn parse(message: &str) -> Vec<Trailer> {
    let mut lines: Vec<&str> = message
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if let Some(cut) = lines.iter().position(|l| *l == SCISSORS) {
        lines.truncate(cut);
    }
    // Trailing comments and blank lines are not part of the message.
    while lines.last().is_some_and(|l| is_blank(l) || is_comment(l)) {
        lines.pop();
    }
    // The first paragraph is the title and cannot be trailers.
    let Some(title_end) = lines.iter().position(|l| !is_comment(l) && is_blank(l)) else {
        return Vec::new();
    };
    let body = &lines[title_end..];
    let start = body
        .iter()
        .rposition(|l| !is_comment(l) && is_blank(l))
        .map_or(0, |i| i + 1);
    parse_block(&body[start..])
}

fn parse_block(block: &[&str]) -> Vec<Trailer> {
    let mut trailers: Vec<Trailer> = Vec::new();
    // Whether the previous counted line was a trailer (continuations extend it).
    let mut in_trailer = false;
    let mut trailer_lines = 0usize;
    let mut other_lines = 0usize;
    let mut git_generated = false;
    for line in block {
        if is_comment(line) {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if in_trailer {
                let last = trailers.last_mut().expect("a trailer precedes");
                let more = line.trim();
                if last.value.is_empty() {
                    last.value = more.to_string();
                } else {
                    last.value.push(' ');
                    last.value.push_str(more);
                }
                trailer_lines += 1;
            } else {
                other_lines += 1;
            }
            continue;
        }
        if line.starts_with(CHERRY_PICK_PREFIX) {
            git_generated = true;
            in_trailer = false;
            continue;
        }
        match split_trailer(line) {
            Some((key, value)) => {
                if GIT_GENERATED.iter().any(|g| key.eq_ignore_ascii_case(g)) {
                    git_generated = true;
                }
                trailers.push(Trailer {
                    key: key.to_string(),
                    value: value.to_string(),
                });
                in_trailer = true;
                trailer_lines += 1;
            }
            None => {
                in_trailer = false;
                other_lines += 1;
            }
        }
    }
    let accepted = !trailers.is_empty()
        && (other_lines == 0 || (git_generated && trailer_lines * 3 >= other_lines));
    if accepted { trailers } else { Vec::new() }
}

/// `Key: value` with a key of `[A-Za-z0-9-]+`, optionally followed by spaces before the
/// colon (as git allows).
fn split_trailer(line: &str) -> Option<(&str, &str)> {
    let key_len = line
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-')
        .count();
    if key_len == 0 {
        return None;
    }
    let (key, rest) = line.split_at(key_len);
    let value = rest.trim_start_matches([' ', '\t']).strip_prefix(':')?;
    Some((key, value.trim()))
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_comment(line: &str) -> bool {
    line.starts_with('#')
}

/// Parses a W3C `traceparent` value: `00-<32 hex>-<16 hex>-<2 hex>`, lowercase, with
/// non-zero IDs. Later versions (not `ff`) are read by their version-00 prefix, as the
/// specification asks.
pub fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId)> {
    let v = value.trim();
    let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let version = v.get(..2)?;
    if !lower_hex(version) || version == "ff" {
        return None;
    }
    let fixed = v.get(..55)?;
    let rest = &v[55..];
    if version == "00" && !rest.is_empty()
        || version != "00" && !rest.is_empty() && !rest.starts_with('-')
    {
        return None;
    }
    let mut parts = fixed.split('-');
    let (_, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
        || !lower_hex(trace)
        || !lower_hex(span)
        || !lower_hex(flags)
    {
        return None;
    }
    Some((TraceId::from_hex(trace).ok()?, SpanId::from_hex(span).ok()?))
}

/// How a value names an agent. All comparisons ignore ASCII case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needle {
    /// The value contains this text anywhere (an e-mail address, a bot login).
    Contains(&'static str),
    /// The value starts with this word (`Claude <…>`, `Claude Opus 4 <…>`).
    Leading(&'static str),
    /// The value contains this as a whole word (`GitHub Copilot`, `Claude Code`).
    Word(&'static str),
}

impl Needle {
    pub fn matches(&self, value: &str) -> bool {
        let value = value.trim().to_ascii_lowercase();
        let word_at = |i: usize, w: &str| {
            let before = value[..i].bytes().next_back();
            let after = value[i + w.len()..].bytes().next();
            !before.is_some_and(|b| b.is_ascii_alphanumeric())
                && !after.is_some_and(|b| b.is_ascii_alphanumeric())
        };
        match *self {
            Needle::Contains(s) => value.contains(s),
            Needle::Leading(w) => value.starts_with(w) && word_at(0, w),
            Needle::Word(w) => value.match_indices(w).any(|(i, _)| word_at(i, w)),
        }
    }
}

/// A trailer form that marks a commit as written with a coding agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentTrailer {
    /// Trailer keys (lowercase) this form appears under.
    pub keys: &'static [&'static str],
    /// What to look for in the value (lowercase).
    pub needle: Needle,
    /// The agent name tracelink reports.
    pub agent: &'static str,
}

const CO: &[&str] = &["co-authored-by"];
const MADE_WITH: &[&str] = &["made-with"];
const TOOL: &[&str] = &["generated-by", "assisted-by"];

const fn at(keys: &'static [&'static str], needle: Needle, agent: &'static str) -> AgentTrailer {
    AgentTrailer {
        keys,
        needle,
        agent,
    }
}

/// Every known agent trailer form. Reported agents follow this table's order.
pub static AGENT_TRAILERS: &[AgentTrailer] = &[
    // Claude Code: `Co-Authored-By: Claude <noreply@anthropic.com>` (also "Claude Opus 4.1").
    at(CO, Needle::Contains("noreply@anthropic.com"), "claude-code"),
    at(CO, Needle::Leading("claude"), "claude-code"),
    at(TOOL, Needle::Word("claude"), "claude-code"),
    // Factory Droid: `Co-authored-by: factory-droid[bot] <138933559+factory-droid[bot]@…>`.
    at(CO, Needle::Contains("factory-droid[bot]"), "droid"),
    at(TOOL, Needle::Word("droid"), "droid"),
    // GitHub Copilot: `Co-authored-by: Copilot <…+Copilot@users.noreply.github.com>`.
    at(CO, Needle::Leading("copilot"), "copilot"),
    at(CO, Needle::Contains("copilot-swe-agent[bot]"), "copilot"),
    at(CO, Needle::Contains("github-copilot"), "copilot"),
    at(TOOL, Needle::Word("copilot"), "copilot"),
    // Cursor: `Made-with: Cursor`; its background agent co-authors as Cursor Agent.
    at(MADE_WITH, Needle::Leading("cursor"), "cursor"),
    at(CO, Needle::Contains("cursoragent@cursor.com"), "cursor"),
    at(TOOL, Needle::Word("cursor"), "cursor"),
    // Gemini CLI and Gemini Code Assist.
    at(CO, Needle::Leading("gemini"), "gemini-cli"),
    at(
        CO,
        Needle::Contains("gemini-code-assist[bot]"),
        "gemini-cli",
    ),
    at(TOOL, Needle::Word("gemini"), "gemini-cli"),
    // Jules.
    at(CO, Needle::Contains("google-labs-jules[bot]"), "jules"),
    at(TOOL, Needle::Word("jules"), "jules"),
    // OpenAI Codex.
    at(CO, Needle::Leading("codex"), "codex"),
    at(
        CO,
        Needle::Contains("chatgpt-codex-connector[bot]"),
        "codex",
    ),
    at(CO, Needle::Contains("codex@openai.com"), "codex"),
    at(TOOL, Needle::Word("codex"), "codex"),
    // Aider: `Co-authored-by: aider (<model>) <noreply@aider.chat>`.
    at(CO, Needle::Contains("noreply@aider.chat"), "aider"),
    at(CO, Needle::Leading("aider"), "aider"),
    at(TOOL, Needle::Word("aider"), "aider"),
];

/// What the trailers say about agent involvement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Agents named by known co-author trailers, de-duplicated, in table order.
    pub agents: Vec<&'static str>,
    /// The first valid `Traceparent:` trailer (the session that first made the commit;
    /// an amend from another trace adds a second one, which is not reported here).
    pub traceparent: Option<(TraceId, SpanId)>,
    /// The first valid `Tracelink-Session:` trailer, trimmed.
    pub session: Option<String>,
}

pub fn attribution(trailers: &[Trailer]) -> Attribution {
    let mut agents: Vec<&'static str> = Vec::new();
    for form in AGENT_TRAILERS {
        if agents.contains(&form.agent) {
            continue;
        }
        let named = trailers
            .iter()
            .any(|t| form.keys.iter().any(|k| t.is(k)) && form.needle.matches(&t.value));
        if named {
            agents.push(form.agent);
        }
    }
    let traceparent = trailers
        .iter()
        .filter(|t| t.is(TRACEPARENT_KEY))
        .find_map(|t| parse_traceparent(&t.value));
    let session = trailers
        .iter()
        .filter(|t| t.is(SESSION_KEY))
        .find_map(|t| SessionId::parse(&t.value))
        .map(|s| s.as_str().to_string());
    Attribution {
        agents,
        traceparent,
        session,
    }
}

/// The commits a message says it reverts: `git revert`'s "This reverts commit <sha>."
/// lines (GitHub's revert button writes them too), each full SHA once, in order. An
/// abbreviated SHA names nothing for sure and is passed over.
pub fn reverted(message: &str) -> Vec<crate::ids::CommitSha> {
    const SAYS: &str = "This reverts commit ";
    let mut out: Vec<crate::ids::CommitSha> = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find(SAYS) {
        rest = &rest[at + SAYS.len()..];
        let hex = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex == 40
            && let Ok(sha) = crate::ids::CommitSha::parse(&rest[..hex])
            && !out.contains(&sha)
        {
            out.push(sha);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-b3334784fc61510ab4e4362d0249eb86-e6e37c671d5284d5-01";

    fn kv(message: &str) -> Vec<(String, String)> {
        parse(message)
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn agents(message: &str) -> Vec<&'static str> {
        attribution(&parse(message)).agents
    }

    #[test]
    fn trailers_are_the_final_paragraph_only() {
        let msg = "Fix the parser\n\nSee: the middle paragraph\nIt explains things.\n\nReviewed-by: Ann <ann@example.com>\nRefs: #12\n";
        assert_eq!(
            kv(msg),
            pairs(&[("Reviewed-by", "Ann <ann@example.com>"), ("Refs", "#12")])
        );
        // A `Key: value` line in the middle paragraph alone is not a trailer.
        let msg = "Fix\n\nNote: this is prose\n\nAnd this is the end.\n";
        assert!(parse(msg).is_empty());
    }

    #[test]
    fn trailers_keys_compare_case_insensitively() {
        let ts = parse(&format!(
            "Subject\n\ntraceparent: {TP}\nTRACELINK-SESSION: abc\n"
        ));
        assert_eq!(ts[0].key, "traceparent", "key kept as written");
        assert!(ts[0].is("Traceparent") && ts[1].is(SESSION_KEY));
        let a = attribution(&ts);
        assert!(a.traceparent.is_some());
        assert_eq!(a.session.as_deref(), Some("abc"));
    }

    #[test]
    fn trailers_continuation_lines_join_with_one_space() {
        let msg = "Subject\n\nBody.\n\nLong-Key: first part\n   second part\n\tthird\nOther: x\n";
        assert_eq!(
            kv(msg),
            pairs(&[("Long-Key", "first part second part third"), ("Other", "x")])
        );
        // A continuation with nothing to continue makes the block prose.
        assert!(parse("Subject\n\n  indented\nKey: v\n").is_empty());
    }

    #[test]
    fn trailers_ignore_trailing_comments_and_blank_lines() {
        let msg = format!(
            "Subject\n\nBody\n\nTraceparent: {TP}\n\n# Please enter the commit message.\n#\n# On branch main\n\n\n"
        );
        assert_eq!(kv(&msg), pairs(&[("Traceparent", TP)]));
        // Everything after the scissors line is ignored (`git commit -v`).
        let msg = "Subject\n\nKey: v\n# ------------------------ >8 ------------------------\ndiff --git a/x b/x\n\n+Other: y\n";
        assert_eq!(kv(msg), pairs(&[("Key", "v")]));
        // Comment lines inside the block are skipped.
        assert_eq!(
            kv("Subject\n\nA: 1\n# note\nB: 2\n"),
            pairs(&[("A", "1"), ("B", "2")])
        );
    }

    #[test]
    fn trailers_subject_only_message_has_none() {
        assert!(parse("Subject: looks like a trailer").is_empty());
        assert!(parse("Subject: looks like a trailer\n\n# comment\n").is_empty());
        assert!(parse("").is_empty());
        assert!(parse("\n\n").is_empty());
    }

    #[test]
    fn trailers_accept_crlf_line_endings() {
        let msg =
            format!("Subject\r\n\r\nBody\r\n\r\nTraceparent: {TP}\r\nTracelink-Session: s-1\r\n");
        let a = attribution(&parse(&msg));
        assert_eq!(a.session.as_deref(), Some("s-1"));
        let (t, s) = a.traceparent.expect("traceparent");
        assert_eq!(t.to_hex(), "b3334784fc61510ab4e4362d0249eb86");
        assert_eq!(s.to_hex(), "e6e37c671d5284d5");
    }

    #[test]
    fn trailers_block_with_prose_is_not_trailers() {
        assert!(parse("Subject\n\nThis is prose.\nKey: value\n").is_empty());
        assert!(parse("Subject\n\nKey: value\nmore prose here\n").is_empty());
        assert!(parse("Subject\n\nKey with space: value\n").is_empty());
        assert!(parse("Subject\n\n: no key\n").is_empty());
        // Git's own rule: a git-generated trailer and ≥ 1 trailer per 3 other lines.
        let msg = format!("Subject\n\nSome prose.\nSigned-off-by: A <a@x>\nTraceparent: {TP}\n");
        assert_eq!(
            kv(&msg),
            pairs(&[("Signed-off-by", "A <a@x>"), ("Traceparent", TP)])
        );
    }

    #[test]
    fn trailers_cherry_pick_lines_are_allowed() {
        let msg = "Subject\n\nBody\n\n(cherry picked from commit 0123456789abcdef0123456789abcdef01234567)\nCo-authored-by: Claude <noreply@anthropic.com>\n";
        assert_eq!(
            kv(msg),
            pairs(&[("Co-authored-by", "Claude <noreply@anthropic.com>")])
        );
        assert!(parse("Subject\n\n(cherry picked from commit abc)\n").is_empty());
    }

    #[test]
    fn trailers_key_may_have_spaces_before_the_colon() {
        assert_eq!(kv("S\n\nKey : v\n"), pairs(&[("Key", "v")]));
        assert_eq!(kv("S\n\nEmpty:\n"), pairs(&[("Empty", "")]));
    }

    #[test]
    fn trailers_invalid_traceparents_are_refused() {
        let bad = [
            "00-00000000000000000000000000000000-e6e37c671d5284d5-01",
            "00-b3334784fc61510ab4e4362d0249eb86-0000000000000000-01",
            "00-b3334784fc61510ab4e4362d0249eb8-e6e37c671d5284d5-01",
            "00-b3334784fc61510ab4e4362d0249eb866-e6e37c671d5284d5-01",
            "00-b3334784fc61510ab4e4362d0249eb86-e6e37c671d5284d-01",
            "00-b3334784fc61510ab4e4362d0249eb8g-e6e37c671d5284d5-01",
            "00-B3334784FC61510AB4E4362D0249EB86-e6e37c671d5284d5-01",
            "ff-b3334784fc61510ab4e4362d0249eb86-e6e37c671d5284d5-01",
            "00-b3334784fc61510ab4e4362d0249eb86-e6e37c671d5284d5-1",
            "00-b3334784fc61510ab4e4362d0249eb86-e6e37c671d5284d5-01-extra",
            "00_b3334784fc61510ab4e4362d0249eb86_e6e37c671d5284d5_01",
            "0-b3334784fc61510ab4e4362d0249eb86-e6e37c671d5284d5-01",
            "",
            "garbage",
        ];
        for v in bad {
            assert_eq!(parse_traceparent(v), None, "{v:?}");
            let msg = format!("S\n\nTraceparent: {v}\n");
            assert_eq!(attribution(&parse(&msg)).traceparent, None, "{v:?}");
        }
        assert!(parse_traceparent(TP).is_some());
        // A later version is read by its version-00 prefix.
        assert!(
            parse_traceparent("01-b3334784fc61510ab4e4362d0249eb86-e6e37c671d5284d5-01-xyz")
                .is_some()
        );
        // The first valid one wins.
        let msg = format!("S\n\nTraceparent: nope\nTraceparent: {TP}\n");
        assert!(attribution(&parse(&msg)).traceparent.is_some());
    }

    #[test]
    fn trailers_session_must_be_short_and_non_empty() {
        let long = "x".repeat(257);
        let msg = format!("S\n\nTracelink-Session:  \nTracelink-Session: {long}\n");
        assert_eq!(attribution(&parse(&msg)).session, None);
        let msg = "S\n\nTracelink-Session: 82c3495f-2f0b-4d55-9c2e-0a4c6bb1d1a7\n";
        assert_eq!(
            attribution(&parse(msg)).session.as_deref(),
            Some("82c3495f-2f0b-4d55-9c2e-0a4c6bb1d1a7")
        );
    }

    #[test]
    fn trailers_real_claude_code_form() {
        let msg = "Add retry to the uploader\n\nRetries 5xx with backoff.\n\n🤖 Generated with [Claude Code](https://claude.com/claude-code)\n\nCo-Authored-By: Claude <noreply@anthropic.com>\n";
        assert_eq!(agents(msg), ["claude-code"]);
        let msg = "Fix\n\nCo-Authored-By: Claude Opus 4.1 <noreply@anthropic.com>\n";
        assert_eq!(agents(msg), ["claude-code"]);
        // A person whose name merely starts with the letters is not Claude.
        assert!(agents("Fix\n\nCo-authored-by: Claudette Doe <cd@example.com>\n").is_empty());
    }

    #[test]
    fn trailers_real_droid_copilot_cursor_forms() {
        let droid = "Fix\n\nCo-authored-by: factory-droid[bot] <138933559+factory-droid[bot]@users.noreply.github.com>\n";
        assert_eq!(agents(droid), ["droid"]);
        let copilot =
            "Fix\n\nCo-authored-by: Copilot <175728472+Copilot@users.noreply.github.com>\n";
        assert_eq!(agents(copilot), ["copilot"]);
        let swe = "Fix\n\nCo-authored-by: copilot-swe-agent[bot] <198982749+Copilot@users.noreply.github.com>\n";
        assert_eq!(agents(swe), ["copilot"]);
        assert_eq!(agents("Fix\n\nMade-with: Cursor\n"), ["cursor"]);
        assert_eq!(
            agents("Fix\n\nCo-authored-by: Cursor Agent <cursoragent@cursor.com>\n"),
            ["cursor"]
        );
    }

    #[test]
    fn trailers_other_agents_and_tool_trailers() {
        let cases = [
            (
                "Co-authored-by: gemini-code-assist[bot] <176961590+gemini-code-assist[bot]@users.noreply.github.com>",
                "gemini-cli",
            ),
            ("Co-authored-by: Gemini <gemini@google.com>", "gemini-cli"),
            (
                "Co-authored-by: google-labs-jules[bot] <161369871+google-labs-jules[bot]@users.noreply.github.com>",
                "jules",
            ),
            ("Co-authored-by: Codex <codex@openai.com>", "codex"),
            (
                "Co-authored-by: chatgpt-codex-connector[bot] <199175422+chatgpt-codex-connector[bot]@users.noreply.github.com>",
                "codex",
            ),
            (
                "Co-authored-by: aider (anthropic/claude-3-7-sonnet) <noreply@aider.chat>",
                "aider",
            ),
            ("Generated-by: GitHub Copilot", "copilot"),
            (
                "Assisted-by: Claude Code (claude-sonnet-4-5)",
                "claude-code",
            ),
            ("assisted-by: OpenAI Codex", "codex"),
        ];
        for (line, want) in cases {
            assert_eq!(agents(&format!("Fix\n\n{line}\n")), [want], "{line}");
        }
        assert!(agents("Fix\n\nGenerated-by: a script\nAssisted-by: Dana\n").is_empty());
        assert!(agents("Fix\n\nReviewed-by: Claude <noreply@anthropic.com>\n").is_empty());
    }

    #[test]
    fn trailers_agents_deduplicated_in_table_order() {
        let msg = "Fix\n\nMade-with: Cursor\nCo-authored-by: Claude <noreply@anthropic.com>\nCo-Authored-By: Claude Sonnet 4.5 <noreply@anthropic.com>\nAssisted-by: Cursor\n";
        assert_eq!(agents(msg), ["claude-code", "cursor"]);
    }

    #[test]
    fn reverts_name_the_full_shas_git_revert_writes() {
        let a = "0123456789abcdef0123456789abcdef01234567";
        let b = "89abcdef0123456789abcdef0123456789ABCDEF";
        let msg = format!(
            "Revert \"Add retries\"\n\nThis reverts commit {a}.\n\nThis reverts commit {b}, reversing\nchanges made to {a}.\n"
        );
        let got: Vec<String> = reverted(&msg).iter().map(|s| s.to_string()).collect();
        assert_eq!(got, [a.to_string(), b.to_ascii_lowercase()]);
        assert!(
            reverted("This reverts commit 0123abc.").is_empty(),
            "abbreviated"
        );
        assert!(
            reverted(&format!("This reverts commit {a}0.")).is_empty(),
            "41 digits"
        );
        assert!(reverted("Fix the revert button").is_empty());
    }
}
