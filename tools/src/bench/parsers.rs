//! `tracelink-dev bench parsers`: parse throughput per CI report format, on large
//! generated reports.
//!
//! [`run`] builds one report of about `--size-mb` MB (10^6 bytes) per format in memory,
//! shaped like the real tools' output (many files, a thousand lines each; JUnit with one
//! case in ten failing with a stack trace), parses it with [`tracelink::ci::parse`] and
//! prints MB/s. Each generated report must be detected as its format and parse, or the
//! run fails. Measure an optimised build: `./target/release/tracelink-dev bench parsers`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::bail;
use tracelink::ci::{Format, Report, detect, parse};

#[derive(Debug, Clone, clap::Args)]
pub struct ParserArgs {
    /// Size of the generated report of each format, in MB (10^6 bytes).
    #[arg(long, default_value_t = 32)]
    pub size_mb: usize,
}

const LINES_PER_FILE: u32 = 1000;

pub fn run(args: ParserArgs) -> anyhow::Result<()> {
    for format in Format::ALL {
        let head = generate(format, 4096);
        if detect(&head[..head.len().min(4096)]) != Some(format) {
            bail!("a generated {format} report is not detected as {format}");
        }
    }
    let report = measure(args.size_mb);
    print!("{report}");
    if report.contains("error:") {
        bail!("a generated report did not parse");
    }
    Ok(())
}

/// One line per format: `lcov        32.0 MB    812 MB/s  (32,000 files, 7,100,000 lines)`.
fn measure(size_mb: usize) -> String {
    let target = size_mb.max(1).saturating_mul(1_000_000);
    let mut out = String::new();
    // Line records are bounded by range count, not size: not measured here.
    for format in Format::ALL
        .into_iter()
        .filter(|f| !Format::LINE_RECORDS.contains(f))
    {
        let doc = generate(format, target);
        let started = Instant::now();
        let result = parse(&doc[..], format);
        let elapsed = started.elapsed().max(Duration::from_nanos(1));
        let mb = doc.len() as f64 / 1e6;
        let what = match &result {
            Ok(Report::Coverage(c)) => {
                let (_, lines) = c.totals();
                format!("{} files, {} lines", c.files.len(), lines)
            }
            Ok(Report::Tests(t)) => format!("{} test cases", t.len()),
            Ok(Report::Lines(l)) => format!("{} line records", l.len()),
            Err(e) => format!("error: {e}"),
        };
        let _ = writeln!(
            out,
            "{:<10} {:>7.1} MB {:>7.0} MB/s  ({what})",
            format.as_str(),
            mb,
            mb / elapsed.as_secs_f64(),
        );
    }
    out
}

/// A report of `format` of at least `target` bytes.
fn generate(format: Format, target: usize) -> Vec<u8> {
    let mut doc = String::with_capacity(target + 64 * 1024);
    match format {
        Format::GitAi | Format::AgentTrace => {}
        Format::Lcov => {
            let mut n = 0u32;
            while doc.len() < target {
                let _ = writeln!(doc, "TN:\nSF:src/pkg{}/module_{n}.ts", n % 97);
                for l in 1..=LINES_PER_FILE {
                    let _ = writeln!(doc, "DA:{l},{}", hits(n, l));
                }
                let _ = writeln!(
                    doc,
                    "LF:{LINES_PER_FILE}\nLH:0\nBRF:0\nBRH:0\nend_of_record"
                );
                n += 1;
            }
        }
        Format::Cobertura => {
            doc.push_str("<?xml version=\"1.0\" ?>\n<coverage version=\"7.6.1\" line-rate=\"0.5\">\n\t<sources>\n\t\t<source>/home/runner/work/demo/demo</source>\n\t</sources>\n\t<packages>\n\t\t<package name=\"pkg\" line-rate=\"0.5\">\n\t\t\t<classes>\n");
            let mut n = 0u32;
            while doc.len() < target {
                let _ = writeln!(
                    doc,
                    "\t\t\t\t<class name=\"module_{n}.py\" filename=\"pkg/module_{n}.py\" complexity=\"0\" line-rate=\"0.5\" branch-rate=\"0\">\n\t\t\t\t\t<methods/>\n\t\t\t\t\t<lines>"
                );
                for l in 1..=LINES_PER_FILE {
                    let _ = writeln!(
                        doc,
                        "\t\t\t\t\t\t<line number=\"{l}\" hits=\"{}\"/>",
                        hits(n, l)
                    );
                }
                doc.push_str("\t\t\t\t\t</lines>\n\t\t\t\t</class>\n");
                n += 1;
            }
            doc.push_str("\t\t\t</classes>\n\t\t</package>\n\t</packages>\n</coverage>\n");
        }
        Format::Jacoco => {
            doc.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><!DOCTYPE report PUBLIC \"-//JACOCO//DTD Report 1.1//EN\" \"report.dtd\"><report name=\"demo\"><sessioninfo id=\"x\" start=\"1\" dump=\"2\"/>");
            let mut n = 0u32;
            while doc.len() < target {
                let _ = write!(
                    doc,
                    "<package name=\"com/acme/p{n}\"><sourcefile name=\"Module{n}.java\">"
                );
                for l in 1..=LINES_PER_FILE {
                    let ci = hits(n, l);
                    let mi = if ci == 0 { 4 } else { 0 };
                    let _ = write!(
                        doc,
                        "<line nr=\"{l}\" mi=\"{mi}\" ci=\"{ci}\" mb=\"0\" cb=\"0\"/>"
                    );
                }
                doc.push_str(
                    "<counter type=\"LINE\" missed=\"0\" covered=\"0\"/></sourcefile></package>",
                );
                n += 1;
            }
            doc.push_str("</report>");
        }
        Format::GoCover => {
            doc.push_str("mode: count\n");
            let mut n = 0u32;
            while doc.len() < target {
                // Blocks of three lines, one statement a line, like `go test` writes.
                let mut l = 1;
                while l < LINES_PER_FILE {
                    let _ = writeln!(
                        doc,
                        "github.com/acme/demo/pkg{}/file_{n}.go:{l}.24,{}.16 3 {}",
                        n % 97,
                        l + 2,
                        hits(n, l)
                    );
                    l += 3;
                }
                n += 1;
            }
        }
        Format::Junit => {
            doc.push_str(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"jest tests\">\n",
            );
            let mut n = 0u32;
            while doc.len() < target {
                let _ = writeln!(
                    doc,
                    "  <testsuite name=\"suite {n}\" tests=\"100\" time=\"1.5\">"
                );
                for t in 0..100u32 {
                    if t % 10 == 7 {
                        let _ = writeln!(
                            doc,
                            "    <testcase classname=\"suite {n}\" name=\"case {t} &amp; more\" time=\"0.004\">\n      <failure message=\"expected 1 to be 2\" type=\"AssertionError\"><![CDATA[AssertionError: expected 1 to be 2\n    at Object.<anonymous> (src/suite_{n}.test.js:{t}:9)\n    at processTicksAndRejections (node:internal/process/task_queues:95:5)]]></failure>\n      <system-out>log line</system-out>\n    </testcase>"
                        );
                    } else {
                        let _ = writeln!(
                            doc,
                            "    <testcase classname=\"suite {n}\" name=\"case {t}\" time=\"0.001\"/>"
                        );
                    }
                }
                doc.push_str("  </testsuite>\n");
                n += 1;
            }
            doc.push_str("</testsuites>\n");
        }
    }
    doc.into_bytes()
}

/// Deterministic hit counts: about a third of lines uncovered.
fn hits(file: u32, line: u32) -> u64 {
    let x = file.wrapping_mul(31).wrapping_add(line.wrapping_mul(17)) % 9;
    if x < 3 { 0 } else { u64::from(x) }
}
