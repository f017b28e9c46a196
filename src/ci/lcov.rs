//! lcov tracefiles (`lcov.info`): records of `SF:<path>`, `DA:<line>,<hits>[,<checksum>]`
//! … `end_of_record`.
//!
//! Only line data is kept: `FN*`, `BR*`, `LF`/`LH` and keys added by later lcov versions
//! are read past (`LF`/`LH` are the writer's own counts of the `DA` lines, so they add
//! nothing). Several records for the same file (one per test name, or concatenated
//! tracefiles) are merged by summing hits. A record left open at the end of the file means
//! the upload was cut short and is an error.

use std::io::BufRead;

use super::{
    CoverageBuilder, Format, LineCoverage, OpenFile, ParseError, parse_u32, parse_u64, shown,
};

const FORMAT: Format = Format::Lcov;

pub(super) fn parse(
    mut reader: impl BufRead,
    mut cov: CoverageBuilder,
) -> Result<LineCoverage, ParseError> {
    let mut line = Vec::with_capacity(256);
    let mut lineno: u64 = 0;
    // The open record: its path and the line where SF was.
    let mut current: Option<(OpenFile, u64)> = None;
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
        let text = trim_eol(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if text == b"end_of_record" {
            match current.take() {
                Some((file, _)) => cov.close(file),
                None => return Err(err("end_of_record without an SF record".into())),
            }
            continue;
        }
        let Some(colon) = text.iter().position(|b| *b == b':') else {
            return Err(err(format!("not an lcov line: {}", shown(text))));
        };
        let (key, value) = (&text[..colon], &text[colon + 1..]);
        match key {
            b"SF" => {
                if let Some((file, at)) = &current {
                    return Err(err(format!(
                        "SF before the end_of_record of {:?} (opened on line {at})",
                        file.path
                    )));
                }
                let path = std::str::from_utf8(value)
                    .map_err(|_| err("SF path is not UTF-8".into()))?
                    .trim();
                if path.is_empty() {
                    return Err(err("SF with an empty path".into()));
                }
                current = Some((cov.open(path.to_owned()), lineno));
            }
            b"DA" => {
                let Some((file, _)) = current.as_mut() else {
                    return Err(err("DA outside an SF record".into()));
                };
                let mut fields = value.split(|b| *b == b',');
                let (Some(l), Some(h)) = (fields.next(), fields.next()) else {
                    return Err(err(format!("DA needs <line>,<hits>: {}", shown(text))));
                };
                let l = parse_u32(l.trim_ascii()).ok_or_else(|| {
                    err(format!("DA line number is not a number: {}", shown(text)))
                })?;
                let h = parse_hits(h.trim_ascii())
                    .ok_or_else(|| err(format!("DA hit count is not a number: {}", shown(text))))?;
                // Some writers emit line 0 for code they cannot place; it is no line.
                if l > 0 {
                    file.add(l, h).map_err(|o| o.at(err(String::new())))?;
                }
            }
            b"LF" | b"LH" | b"FNF" | b"FNH" | b"BRF" | b"BRH" => {
                if parse_u64(value.trim_ascii()).is_none() {
                    return Err(err(format!(
                        "{} is not a number: {}",
                        String::from_utf8_lossy(key),
                        shown(text)
                    )));
                }
            }
            _ if key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') => {}
            _ => return Err(err(format!("not an lcov line: {}", shown(text)))),
        }
    }
    if let Some((OpenFile { path, .. }, at)) = current {
        return Err(ParseError::new(
            FORMAT,
            Some(lineno),
            format!(
                "file ends inside the record of {path:?} opened on line {at} (no end_of_record)"
            ),
        ));
    }
    Ok(cov.finish())
}

/// Hit counts are integers; a few writers (istanbul on very hot lines) print them in
/// floating-point notation, such as `1e+21`.
fn parse_hits(s: &[u8]) -> Option<u64> {
    if let Some(n) = parse_u64(s) {
        return Some(n);
    }
    let f: f64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0).then(|| f.min(u64::MAX as f64) as u64)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{coverage, fixture, parse_err};
    use super::*;

    #[test]
    fn coverage_py_lcov_matches_coverage_report() {
        // `coverage report`: calc/ops.py 17 stmts 6 miss; calc/text.py 4 stmts 1 miss;
        // calc/__init__.py 0 stmts; TOTAL 21 stmts 7 miss.
        let cov = coverage(&fixture("coverage.lcov"), FORMAT);
        assert_eq!(cov.file_totals("calc/ops.py"), (11, 17));
        assert_eq!(cov.file_totals("calc/text.py"), (3, 4));
        assert!(cov.files["calc/__init__.py"].is_empty());
        assert_eq!(cov.totals(), (14, 21));
        let missing: Vec<u32> = cov.files["calc/ops.py"].missed().lines().collect();
        assert_eq!(missing, vec![7, 16, 20, 21, 22, 23]);
    }

    #[test]
    fn jest_lcov_matches_jest_summary() {
        // jest --coverage text table: cart.js 83.33 % lines (5/6), strings.js 44.44 % (4/9),
        // all files 60 % (9/15); uncovered lines cart.js 8, strings.js 3,13-17.
        let cov = coverage(&fixture("jest-lcov.info"), FORMAT);
        assert_eq!(cov.file_totals("src/cart.js"), (5, 6));
        assert_eq!(cov.file_totals("src/strings.js"), (4, 9));
        assert_eq!(cov.totals(), (9, 15));
        assert!(cov.files["src/cart.js"].covered.contains(7));
    }

    #[test]
    fn records_for_the_same_file_merge() {
        let text = b"TN:unit\nSF:a.c\nDA:1,1\nDA:2,0\nend_of_record\nTN:it\nSF:a.c\nDA:2,4\nDA:3,0\nend_of_record\n";
        let cov = coverage(text, FORMAT);
        // Line 2 is missed in one record and hit in the other: covered.
        assert_eq!(cov.files["a.c"].covered.ranges(), &[(1, 2)]);
        assert_eq!(cov.files["a.c"].missed().ranges(), &[(3, 3)]);
    }

    #[test]
    fn crlf_checksums_and_big_hits_are_read() {
        let text = b"SF:a.c\r\nDA:1,3,abc123\r\nDA:2,1e+21\r\nBRDA:1,0,0,-\r\nend_of_record\r\n";
        let cov = coverage(text, FORMAT);
        assert_eq!(cov.file_totals("a.c"), (2, 2));
    }

    #[test]
    fn malformed_lcov_names_format_and_line() {
        let e = parse_err(b"SF:a.c\nDA:1,1\nDA:x2,1\nend_of_record\n", FORMAT);
        assert_eq!((e.format, e.line), (Format::Lcov, Some(3)));
        assert!(e.message.contains("DA line number"), "{e}");
        assert!(e.to_string().starts_with("lcov line 3: "), "{e}");

        let e = parse_err(b"SF:a.c\nDA:1,lots\nend_of_record\n", FORMAT);
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("hit count"), "{e}");

        let e = parse_err(b"SF:a.c\nDA:1\nend_of_record\n", FORMAT);
        assert_eq!(e.line, Some(2));

        let e = parse_err(b"DA:1,1\n", FORMAT);
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("outside"), "{e}");

        let e = parse_err(b"SF:a.c\nDA:1,1\nSF:b.c\n", FORMAT);
        assert_eq!(e.line, Some(3));

        let e = parse_err(b"SF:a.c\nDA:1,-4\nend_of_record\n", FORMAT);
        assert_eq!(e.line, Some(2));

        let e = parse_err(b"SF:a.c\nthis is not lcov\n", FORMAT);
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn truncated_lcov_is_an_error_at_its_last_line() {
        let full = fixture("coverage.lcov");
        // Cut after the 10th line, inside the record of calc/ops.py.
        let end = full
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(9)
            .map(|(i, _)| i + 1)
            .unwrap_or(full.len());
        let e = parse_err(&full[..end], FORMAT);
        assert_eq!(e.format, Format::Lcov);
        assert_eq!(e.line, Some(10));
        assert!(e.message.contains("calc/ops.py"), "{e}");
        assert!(e.message.contains("end_of_record"), "{e}");
    }
}
