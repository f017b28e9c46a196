//! JaCoCo XML (`jacoco.xml` of the Maven and Gradle plugins).
//!
//! ```text
//! <report><package name="com/acme"><class …>…</class>
//!   <sourcefile name="Calc.java"><line nr="9" mi="0" ci="2" mb="1" cb="1"/>…
//! ```
//!
//! The path of a source file is `package/name` (`com/acme/Calc.java`): JaCoCo does not
//! write the source root (`src/main/java/`), so these paths are relative to it and the
//! caller must place them in the repository by suffix. JaCoCo counts instructions, not
//! executions: a line is coverable when it has instructions (`mi + ci > 0`) and its
//! "hits" are its covered instructions (`ci`), so hits > 0 means covered and the number
//! is not an execution count. `<group>`s (multi-module reports) are read through.

use std::io::BufRead;

use quick_xml::events::Event;

use super::xml::{Root, XmlReader};
use super::{CoverageBuilder, Format, LineCoverage, OpenFile, ParseError};

const FORMAT: Format = Format::Jacoco;

pub(super) fn parse(
    reader: impl BufRead,
    mut cov: CoverageBuilder,
) -> Result<LineCoverage, ParseError> {
    let mut xml = XmlReader::new(reader, FORMAT);
    let mut buf = Vec::with_capacity(1024);
    let mut package: Option<String> = None;
    let mut sourcefile: Option<OpenFile> = None;
    let mut root = Root::new("report");
    loop {
        let (e, empty) = match xml.next(&mut buf)? {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                root.leave();
                match e.local_name().as_ref() {
                    "package" => package = None,
                    "sourcefile" => {
                        if let Some(file) = sourcefile.take() {
                            cov.close(file);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            Event::GeneralRef(r) => {
                xml.resolve_ref(&r)?;
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = e.local_name();
        let name = name.as_ref();
        root.enter(&xml, name, empty)?;
        match name {
            "package" if !empty => {
                package = Some(xml.required_attr(&e, "name")?.trim().to_owned());
            }
            "sourcefile" => {
                let Some(pkg) = &package else {
                    return Err(xml.error("<sourcefile> outside a <package>"));
                };
                let file = xml.required_attr(&e, "name")?;
                let path = if pkg.is_empty() {
                    file.trim().to_owned()
                } else {
                    format!("{}/{}", pkg.trim_end_matches('/'), file.trim())
                };
                if sourcefile.is_some() {
                    return Err(xml.error("<sourcefile> inside a <sourcefile>"));
                }
                let file = cov.open(path);
                if empty {
                    cov.close(file);
                } else {
                    sourcefile = Some(file);
                }
            }
            "line" => {
                let Some(file) = sourcefile.as_mut() else {
                    // <line> only appears under <sourcefile>.
                    return Err(xml.error("<line> outside a <sourcefile>"));
                };
                let nr = xml
                    .u64_attr(&e, "nr")?
                    .ok_or_else(|| xml.error("<line> has no nr attribute"))?;
                let nr = u32::try_from(nr)
                    .map_err(|_| xml.error(format!("<line nr=\"{nr}\"> is out of range")))?;
                let mi = xml.u64_attr(&e, "mi")?.unwrap_or(0);
                let ci = xml.u64_attr(&e, "ci")?.unwrap_or(0);
                if nr > 0 && mi.saturating_add(ci) > 0 {
                    file.add(nr, ci)
                        .map_err(|o| o.at(xml.error(String::new())))?;
                }
            }
            _ => {}
        }
    }
    root.finish(&xml)?;
    Ok(cov.finish())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{coverage, fixture, parse_err};
    use super::*;

    #[test]
    fn jacoco_matches_its_line_counters() {
        // Hand-written fixture; its own <counter type="LINE"> per sourcefile:
        // Calc.java missed 2 covered 4, Strings.java missed 0 covered 2.
        let cov = coverage(&fixture("jacoco.xml"), FORMAT);
        assert_eq!(cov.file_totals("com/acme/demo/Calc.java"), (4, 6));
        assert_eq!(cov.file_totals("com/acme/demo/util/Strings.java"), (2, 2));
        assert_eq!(cov.totals(), (6, 8));
        let calc = &cov.files["com/acme/demo/Calc.java"];
        assert!(calc.coverable.contains(10) && !calc.covered.contains(10));
        assert!(calc.covered.contains(9));
    }

    #[test]
    fn lines_without_instructions_are_not_coverable() {
        let doc = r#"<report name="r"><package name="p"><sourcefile name="A.java"><line nr="1" mi="0" ci="0" mb="0" cb="0"/><line nr="2" mi="1" ci="0"/></sourcefile></package></report>"#;
        let cov = coverage(doc.as_bytes(), FORMAT);
        assert_eq!(cov.file_totals("p/A.java"), (0, 1));
    }

    #[test]
    fn groups_and_the_default_package_are_read() {
        let doc = r#"<report name="r"><group name="core"><package name=""><sourcefile name="A.java"><line nr="3" mi="0" ci="2"/></sourcefile></package></group></report>"#;
        let cov = coverage(doc.as_bytes(), FORMAT);
        assert_eq!(cov.file_totals("A.java"), (1, 1));
    }

    #[test]
    fn malformed_jacoco_names_format_and_line() {
        let doc = "<report name=\"r\">\n<package name=\"p\">\n<sourcefile name=\"A.java\">\n<line nr=\"3\" mi=\"zero\" ci=\"2\"/>\n</sourcefile></package></report>";
        let e = parse_err(doc.as_bytes(), FORMAT);
        assert_eq!((e.format, e.line), (Format::Jacoco, Some(4)));
        assert!(
            e.to_string().starts_with("jacoco line 4: mi=\"zero\""),
            "{e}"
        );

        let doc = "<report name=\"r\">\n<package name=\"p\">\n<sourcefile name=\"A.java\">\n<line mi=\"0\" ci=\"2\"/>";
        assert_eq!(parse_err(doc.as_bytes(), FORMAT).line, Some(4));

        let full = fixture("jacoco.xml");
        let cut = &full[..full.len() - 200];
        let e = parse_err(cut, FORMAT);
        let last_line = cut.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        assert_eq!(e.line, Some(last_line), "{e}");

        let e = parse_err(b"<coverage/>", FORMAT);
        assert!(e.message.contains("<coverage>"), "{e}");
    }
}
