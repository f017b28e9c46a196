//! Cobertura XML, as written by coverage.py (`coverage xml`), istanbul/jest (`cobertura`
//! reporter) and gcovr (`--cobertura`).
//!
//! ```text
//! <coverage><sources><source>/abs/root</source></sources>
//!   <packages><package><classes>
//!     <class filename="src/x.py"><methods>…</methods>
//!       <lines><line number="3" hits="1"/>…</lines>
//! ```
//!
//! A class's lines are the `<line>`s under its own `<lines>`; the copies that istanbul and
//! gcovr also write under `<methods><method><lines>` are skipped, or every line would
//! count twice. A relative `filename` is joined to the first `<source>` (coverage.py writes
//! one per `--source` directory and gives no way to tell which a file belongs to; the
//! writers above write one). The same file in several classes (Java inner classes) sums.

use std::io::BufRead;

use quick_xml::events::Event;

use super::xml::{Root, XmlReader};
use super::{CoverageBuilder, Format, LineCoverage, OpenFile, ParseError, parse_u32, shown};

const FORMAT: Format = Format::Cobertura;

pub(super) fn parse(
    reader: impl BufRead,
    mut cov: CoverageBuilder,
) -> Result<LineCoverage, ParseError> {
    let mut xml = XmlReader::new(reader, FORMAT);
    let mut buf = Vec::with_capacity(1024);
    let mut sources: Vec<String> = Vec::new();
    let mut source_text: Option<String> = None;
    let mut class: Option<OpenFile> = None;
    let mut method_depth = 0u32;
    let mut root = Root::new("coverage");
    loop {
        let event = xml.next(&mut buf)?;
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                root.leave();
                match e.local_name().as_ref() {
                    "source" => {
                        if let Some(s) = source_text.take() {
                            sources.push(s.trim().to_owned());
                        }
                    }
                    "class" => {
                        if let Some(file) = class.take() {
                            cov.close(file);
                        }
                    }
                    "method" => method_depth = method_depth.saturating_sub(1),
                    _ => {}
                }
                continue;
            }
            Event::Text(t) => {
                if let Some(s) = source_text.as_mut() {
                    s.push_str(&t.xml10_content());
                }
                continue;
            }
            Event::GeneralRef(r) => {
                let text = xml.resolve_ref(&r)?;
                if let Some(s) = source_text.as_mut() {
                    s.push_str(&text);
                }
                continue;
            }
            Event::CData(t) => {
                if let Some(s) = source_text.as_mut() {
                    s.push_str(&t.xml10_content());
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = e.local_name();
        let name = name.as_ref();
        root.enter(&xml, name, empty)?;
        match name {
            "source" if !empty => source_text = Some(String::new()),
            "class" => {
                let filename = xml.required_attr(&e, "filename")?;
                let path = join_source(sources.first().map(String::as_str), filename.trim());
                if class.is_some() {
                    return Err(xml.error("<class> inside a <class>"));
                }
                let file = cov.open(path);
                if empty {
                    cov.close(file);
                } else {
                    class = Some(file);
                }
            }
            "method" if !empty => method_depth += 1,
            "line" if method_depth == 0 => {
                let Some(file) = class.as_mut() else {
                    return Err(xml.error("<line> outside a <class>"));
                };
                let (number, hits) = line_attrs(&xml, &e)?;
                if number > 0 {
                    file.add(number, hits)
                        .map_err(|o| o.at(xml.error(String::new())))?;
                }
            }
            _ => {}
        }
    }
    root.finish(&xml)?;
    Ok(cov.finish())
}

/// `number` and `hits` of a `<line>`, in one pass over its attributes.
fn line_attrs<R: BufRead>(
    xml: &XmlReader<R>,
    e: &quick_xml::events::BytesStart<'_>,
) -> Result<(u32, u64), ParseError> {
    let number = xml
        .attr(e, "number")?
        .ok_or_else(|| xml.error("<line> has no number attribute"))?;
    let number = parse_u32(number.trim().as_bytes()).ok_or_else(|| {
        xml.error(format!(
            "<line number={}> is not a line number",
            shown(number.as_bytes())
        ))
    })?;
    let hits = xml
        .u64_attr(e, "hits")?
        .ok_or_else(|| xml.error(format!("<line number=\"{number}\"> has no hits attribute")))?;
    Ok((number, hits))
}

/// `filename` as a path: relative names are joined to the report's source root.
fn join_source(source: Option<&str>, filename: &str) -> String {
    let absolute = filename.starts_with('/')
        || filename.starts_with('\\')
        || filename.as_bytes().get(1) == Some(&b':');
    match source {
        Some(src) if !absolute && !src.is_empty() && src != "." => {
            let src = src.trim_end_matches(['/', '\\']);
            format!("{src}/{filename}")
        }
        _ => filename.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{coverage, fixture, parse_err};
    use super::*;

    #[test]
    fn coverage_py_xml_matches_coverage_report() {
        // `coverage report`: calc/ops.py 17 stmts 6 miss (7, 16, 20-23); calc/text.py 4/1;
        // calc/__init__.py 0 stmts; TOTAL 21 stmts 7 miss. <source> is /tmp/fx/py.
        let cov = coverage(&fixture("coverage.xml"), FORMAT);
        assert_eq!(cov.file_totals("/tmp/fx/py/calc/ops.py"), (11, 17));
        assert_eq!(cov.file_totals("/tmp/fx/py/calc/text.py"), (3, 4));
        assert!(cov.files["/tmp/fx/py/calc/__init__.py"].is_empty());
        assert_eq!(cov.totals(), (14, 21));

        let (rel, unmatched) = cov.normalise_paths("acme/demo", Some("/tmp/fx/py"));
        assert!(unmatched.is_empty());
        assert_eq!(
            rel.files.keys().collect::<Vec<_>>(),
            vec!["calc/__init__.py", "calc/ops.py", "calc/text.py"]
        );
    }

    #[test]
    fn jest_cobertura_skips_method_lines() {
        // jest's text table: cart.js 5/6 lines, strings.js 4/9, all files 9/15 (60 %).
        // Each method's first line is repeated under <methods>; counting it would add lines.
        let cov = coverage(&fixture("jest-cobertura.xml"), FORMAT);
        assert_eq!(cov.file_totals("/tmp/fx/js/src/cart.js"), (5, 6));
        assert_eq!(cov.file_totals("/tmp/fx/js/src/strings.js"), (4, 9));
        assert_eq!(cov.totals(), (9, 15));
        assert!(cov.files["/tmp/fx/js/src/cart.js"].covered.contains(14));
    }

    #[test]
    fn gcovr_cobertura_matches_gcovr_summary() {
        // gcovr --txt: src/main.c 4 lines 4 exec; src/sign.c 8 lines 5 exec (missing 10,13-14);
        // TOTAL 12/9. The file is a single line with <line> elements holding <conditions>.
        let cov = coverage(&fixture("gcovr-cobertura.xml"), FORMAT);
        assert_eq!(cov.file_totals("/tmp/fx/c/src/main.c"), (4, 4));
        assert_eq!(cov.file_totals("/tmp/fx/c/src/sign.c"), (5, 8));
        assert_eq!(cov.totals(), (9, 12));
        assert!(cov.files["/tmp/fx/c/src/sign.c"].covered.contains(3));
        assert_eq!(
            cov.files["/tmp/fx/c/src/sign.c"].missed().encode(),
            "10,13-14"
        );
    }

    #[test]
    fn sources_join_and_absolute_filenames_stay() {
        assert_eq!(join_source(Some("/w/r/"), "a/b.py"), "/w/r/a/b.py");
        assert_eq!(
            join_source(Some("D:\\a\\r\\r"), "a/b.py"),
            "D:\\a\\r\\r/a/b.py"
        );
        assert_eq!(join_source(Some("/w"), "/abs/b.py"), "/abs/b.py");
        assert_eq!(join_source(Some("."), "b.py"), "b.py");
        assert_eq!(join_source(None, "b.py"), "b.py");
    }

    #[test]
    fn truncated_cobertura_is_an_error_at_the_end() {
        let full = fixture("coverage.xml");
        let text = String::from_utf8_lossy(&full);
        // Cut just after the <line number="8"> element: inside <lines> of ops.py.
        let cut = text
            .find("<line number=\"8\"")
            .map(|i| i + 40)
            .unwrap_or(full.len() / 2);
        let cut = &full[..cut];
        let e = parse_err(cut, FORMAT);
        assert_eq!(e.format, Format::Cobertura);
        let last_line = cut.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        assert_eq!(e.line, Some(last_line), "{e}");
    }

    #[test]
    fn malformed_cobertura_names_format_and_line() {
        let doc = "<?xml version=\"1.0\"?>\n<coverage>\n<packages><package><classes>\n<class filename=\"a.py\"><lines>\n<line number=\"1\" hits=\"1\"/>\n<line number=\"2\" hits=\"many\"/>\n</lines></class></classes></package></packages></coverage>\n";
        let e = parse_err(doc.as_bytes(), FORMAT);
        assert_eq!((e.format, e.line), (Format::Cobertura, Some(6)));
        assert!(
            e.to_string().starts_with("cobertura line 6: hits=\"many\""),
            "{e}"
        );

        let doc = "<coverage>\n<class filename=\"a.py\"><lines>\n<line number=\"x\" hits=\"1\"/>\n</lines></class></coverage>";
        assert_eq!(parse_err(doc.as_bytes(), FORMAT).line, Some(3));

        let doc = "<coverage>\n<class><lines/></class></coverage>";
        let e = parse_err(doc.as_bytes(), FORMAT);
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("filename"), "{e}");

        let doc = "<coverage>\n<class filename=\"a.py\">\n</lines></coverage>";
        let e = parse_err(doc.as_bytes(), FORMAT);
        assert_eq!(e.line, Some(3), "{e}");

        let e = parse_err(b"<report name=\"x\"/>", FORMAT);
        assert!(e.message.contains("<report>"), "{e}");

        let doc = "<coverage>\n<class filename=\"&secret;\"/></coverage>";
        let e = parse_err(doc.as_bytes(), FORMAT);
        assert_eq!(e.line, Some(2), "{e}");
    }
}
