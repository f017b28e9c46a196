//! Go coverage profiles (`go test -coverprofile=coverage.out`).
//!
//! ```text
//! mode: count
//! github.com/acme/demo/mathx/mathx.go:4.21,5.11 1 2
//! ```
//!
//! Each line after `mode: set|count|atomic` is a block: `file:startLine.startCol,endLine.endCol
//! numStmts count`. Go counts statements, tracelink counts lines: a block makes each line
//! from its start to its end line coverable, and covered when its count is above 0 (a
//! line holding the end of an executed block and the start of a skipped one is covered).
//! A block is kept as one range, never line by line: 45 bytes may name 100,000 lines.
//! Blocks with no statements cover no lines. Paths are Go import
//! paths (`module/dir/file.go`); [`super::paths`] strips a `github.com/<owner>/<repo>/`
//! module prefix. Profiles concatenated from several runs may repeat the `mode:` line.

use std::io::BufRead;

use super::{
    CoverageBuilder, Format, LineCoverage, OpenFile, ParseError, parse_u32, parse_u64, shown,
};

const FORMAT: Format = Format::GoCover;

/// The highest line a block may end on (as for line records, [`super::lines::MAX_LINE`]).
/// A block is kept as one range, so its span costs nothing; this only keeps numbers no
/// source file reaches out of the totals.
pub const MAX_LINE: u32 = super::lines::MAX_LINE;

pub(super) fn parse(
    mut reader: impl BufRead,
    mut cov: CoverageBuilder,
) -> Result<LineCoverage, ParseError> {
    // The file of the last block: a profile lists a file's blocks together.
    let mut current: Option<OpenFile> = None;
    let mut line = Vec::with_capacity(256);
    let mut lineno: u64 = 0;
    let mut seen_mode = false;
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
        if block.end > MAX_LINE {
            return Err(err(format!(
                "block ends on line {} (beyond line {MAX_LINE})",
                block.end
            )));
        }
        let path =
            std::str::from_utf8(block.path).map_err(|_| err("file path is not UTF-8".into()))?;
        let file = match current.take() {
            Some(f) if f.path == path => f,
            other => {
                if let Some(f) = other {
                    cov.close(f);
                }
                cov.open(path.to_owned())
            }
        };
        let file = current.insert(file);
        if block.statements == 0 || block.start == 0 {
            continue;
        }
        // One range however many lines it spans: a line is covered when any block
        // covering it ran.
        file.add_range(block.start, block.end, block.count)
            .map_err(|o| o.at(err(String::new())))?;
    }
    if !seen_mode {
        return Err(ParseError::new(
            FORMAT,
            Some(lineno.max(1)),
            "no \"mode:\" line: empty profile",
        ));
    }
    if let Some(f) = current {
        cov.close(f);
    }
    Ok(cov.finish())
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
    fn go_profile_blocks_become_line_ranges() {
        // go test: "coverage: 70.0% of statements" (7 of 10 statements; `go tool cover
        // -func`: Abs 100 %, Sum 100 %, Unused 0 %). In lines: Abs 4-8 and Sum 12-17 are
        // covered, Unused 21-25 is not.
        let cov = coverage(&fixture("coverage.out"), FORMAT);
        let file = &cov.files[FILE];
        assert_eq!(file.covered.ranges(), &[(4, 8), (12, 17)]);
        assert_eq!(file.missed().ranges(), &[(21, 25)]);
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
    fn a_block_of_100k_lines_is_one_range() {
        // The reproduction of issue 13: 500 blocks of 100,000 lines each, 24 KB of profile,
        // once 50,000,000 line entries; now one range per block.
        let mut text = String::from("mode: set\n");
        for i in 0..500 {
            text.push_str(&format!(
                "github.com/acme/widgets/f{i}.go:1.1,100000.1 1 1\n"
            ));
        }
        let cov = coverage(text.as_bytes(), FORMAT);
        assert_eq!(cov.files.len(), 500);
        assert_eq!(
            cov.ranges(),
            1000,
            "covered and coverable: one range each per file"
        );
        assert_eq!(cov.totals(), (50_000_000, 50_000_000));

        // Overlapping blocks of one file, in any order, stay a handful of ranges.
        let text = "mode: count\na.go:50.1,90000.2 3 0\na.go:1.1,100000.1 1 2\nb.go:7.1,9.1 1 0\na.go:200000.1,300000.1 1 0\n";
        let cov = coverage(text.as_bytes(), FORMAT);
        assert_eq!(cov.files["a.go"].covered.ranges(), &[(1, 100_000)]);
        assert_eq!(cov.files["a.go"].missed().ranges(), &[(200_000, 300_000)]);
        assert_eq!(cov.file_totals("b.go"), (0, 3));
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

        let e = parse_err(b"mode: set\na.go:1.1,9000000.2 1 1\n", FORMAT);
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("beyond line 5000000"), "{e}");

        let e = parse_err(b"mode: set\na.go:1.x,2.2 1 1\n", FORMAT);
        assert_eq!(e.line, Some(2));

        let e = parse_err(b"", FORMAT);
        assert!(e.message.contains("empty"), "{e}");
    }
}
