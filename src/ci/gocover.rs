//! Go coverage profiles (`go test -coverprofile=coverage.out`).
//!
//! ```text
//! mode: count
//! github.com/acme/demo/mathx/mathx.go:4.21,5.11 1 2
//! ```
//!
//! Each line after `mode: set|count|atomic` is a block: `file:startLine.startCol,endLine.endCol
//! numStmts count`. Go counts statements, tracelink counts lines: a block covers each line
//! from its start to its end line, and a line's hits are the largest count among the
//! blocks covering it (a line holding the end of an executed block and the start of a
//! skipped one is covered). Blocks with no statements cover no lines. Paths are Go import
//! paths (`module/dir/file.go`); [`super::paths`] strips a `github.com/<owner>/<repo>/`
//! module prefix. Profiles concatenated from several runs may repeat the `mode:` line.

use std::collections::btree_map::Entry;
use std::io::BufRead;

use super::{Format, LineCoverage, ParseError, parse_u32, parse_u64, shown};

const FORMAT: Format = Format::GoCover;

/// The most lines one block may span (a Go block is a run of statements without a
/// branch); beyond this the profile is taken as hostile.
pub const MAX_BLOCK_LINES: u32 = 10_000;
/// The most line entries a profile may expand to (sum of all blocks' spans): 45 bytes
/// of profile can name a block's lines, so this bounds memory, not the input size.
pub const MAX_EXPANDED_LINES: u64 = 2_000_000;

pub fn parse(mut reader: impl BufRead) -> Result<LineCoverage, ParseError> {
    let mut cov = LineCoverage::default();
    let mut line = Vec::with_capacity(256);
    let mut lineno: u64 = 0;
    let mut seen_mode = false;
    let mut expanded: u64 = 0;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| ParseError::new(FORMAT, Some(lineno + 1), format!("read failed: {e}")))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        let err = |msg: String| ParseError::new(FORMAT, Some(lineno), msg);
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        if let Some(mode) = text.strip_prefix(b"mode:") {
            match mode.trim_ascii() {
                b"set" | b"count" | b"atomic" => seen_mode = true,
                other => return Err(err(format!("unknown mode {}", shown(other)))),
            }
            continue;
        }
        if !seen_mode {
            return Err(err(
                "a profile starts with \"mode: set|count|atomic\"".into()
            ));
        }
        let block = Block::parse(text).ok_or_else(|| {
            err(format!(
                "not a block \"file:line.col,line.col statements count\": {}",
                shown(text)
            ))
        })?;
        if block.end < block.start {
            return Err(err(format!(
                "block ends (line {}) before it starts (line {})",
                block.end, block.start
            )));
        }
        let span = block.end - block.start + 1;
        if span > MAX_BLOCK_LINES {
            return Err(err(format!(
                "block spans {span} lines (more than {MAX_BLOCK_LINES})"
            )));
        }
        let path =
            std::str::from_utf8(block.path).map_err(|_| err("file path is not UTF-8".into()))?;
        let lines = match cov.files.get_mut(path) {
            Some(lines) => lines,
            None => cov.files.entry(path.to_owned()).or_default(),
        };
        if block.statements == 0 || block.start == 0 {
            continue;
        }
        expanded += u64::from(span);
        if expanded > MAX_EXPANDED_LINES {
            return Err(err(format!(
                "profile covers more than {MAX_EXPANDED_LINES} block lines"
            )));
        }
        for l in block.start..=block.end {
            match lines.entry(l) {
                Entry::Vacant(v) => {
                    v.insert(block.count);
                }
                Entry::Occupied(mut o) => {
                    let h = o.get_mut();
                    *h = (*h).max(block.count);
                }
            }
        }
    }
    if !seen_mode {
        return Err(ParseError::new(
            FORMAT,
            Some(lineno.max(1)),
            "no \"mode:\" line: empty profile",
        ));
    }
    Ok(cov)
}

struct Block<'a> {
    path: &'a [u8],
    start: u32,
    end: u32,
    statements: u64,
    count: u64,
}

impl<'a> Block<'a> {
    /// `path:L1.C1,L2.C2 N C`, read from the right because paths may hold `:` and spaces.
    fn parse(text: &'a [u8]) -> Option<Block<'a>> {
        let (rest, count) = rsplit_once(text, b' ')?;
        let (rest, statements) = rsplit_once(rest, b' ')?;
        let (path, range) = rsplit_once(rest, b':')?;
        let (from, to) = split_once(range, b',')?;
        let (start, start_col) = split_once(from, b'.')?;
        let (end, end_col) = split_once(to, b'.')?;
        parse_u32(start_col)?;
        parse_u32(end_col)?;
        if path.is_empty() {
            return None;
        }
        Some(Block {
            path,
            start: parse_u32(start)?,
            end: parse_u32(end)?,
            statements: parse_u64(statements)?,
            count: parse_u64(count)?,
        })
    }
}

fn rsplit_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().rposition(|b| *b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|b| *b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{coverage, fixture, parse_err};
    use super::*;

    const FILE: &str = "github.com/acme/demo/mathx/mathx.go";

    #[test]
    fn go_profile_expands_blocks_to_lines() {
        // go test: "coverage: 70.0% of statements" (7 of 10 statements; `go tool cover
        // -func`: Abs 100 %, Sum 100 %, Unused 0 %). In lines: Abs 4-8 and Sum 12-17 are
        // covered, Unused 21-25 is not.
        let cov = coverage(&fixture("coverage.out"), FORMAT);
        let lines = &cov.files[FILE];
        let covered: Vec<u32> = lines
            .iter()
            .filter(|(_, h)| **h > 0)
            .map(|(l, _)| *l)
            .collect();
        let missed: Vec<u32> = lines
            .iter()
            .filter(|(_, h)| **h == 0)
            .map(|(l, _)| *l)
            .collect();
        assert_eq!(covered, vec![4, 5, 6, 7, 8, 12, 13, 14, 15, 16, 17]);
        assert_eq!(missed, vec![21, 22, 23, 24, 25]);
        // Line 5 ends a block run twice and starts one run once; 14 starts the loop body (3).
        assert_eq!(lines[&5], 2);
        assert_eq!(lines[&14], 3);
        assert_eq!(cov.totals(), (11, 16));

        let (rel, unmatched) = cov.normalise_paths("acme/demo", None);
        assert!(unmatched.is_empty());
        assert_eq!(rel.file_totals("mathx/mathx.go"), (11, 16));
    }

    #[test]
    fn repeated_mode_lines_and_windows_paths_are_read() {
        let text = b"mode: set\nC:\\src\\a.go:1.1,2.2 1 1\nmode: set\nC:\\src\\a.go:3.1,3.9 0 1\nmy dir/b.go:2.1,2.5 1 0\n";
        let cov = coverage(text, FORMAT);
        assert_eq!(cov.file_totals("C:\\src\\a.go"), (2, 2));
        assert_eq!(cov.file_totals("my dir/b.go"), (0, 1));
    }

    #[test]
    fn malformed_profiles_name_format_and_line() {
        let e = parse_err(b"mode: count\na.go:1.1,2.2 1 1\na.go:3.1,4.2 1\n", FORMAT);
        assert_eq!((e.format, e.line), (Format::GoCover, Some(3)));
        assert!(e.to_string().starts_with("go line 3: not a block"), "{e}");

        let e = parse_err(b"a.go:1.1,2.2 1 1\n", FORMAT);
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("mode"), "{e}");

        let e = parse_err(b"mode: sometimes\n", FORMAT);
        assert_eq!(e.line, Some(1));

        let e = parse_err(b"mode: set\n\na.go:9.1,2.2 1 1\n", FORMAT);
        assert_eq!(e.line, Some(3));

        let e = parse_err(b"mode: set\na.go:1.1,900000.2 1 1\n", FORMAT);
        assert!(e.message.contains("spans"), "{e}");

        let e = parse_err(b"mode: set\na.go:1.x,2.2 1 1\n", FORMAT);
        assert_eq!(e.line, Some(2));

        let e = parse_err(b"", FORMAT);
        assert!(e.message.contains("empty"), "{e}");
    }
}
