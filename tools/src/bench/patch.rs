//! `tracelink-dev bench patch`: patch coverage of a large diff over a large merged
//! coverage report, in memory (diff parsing included): what the report's coverage section
//! costs besides its reads.

use std::fmt::Write as _;
use std::time::Instant;

use tracelink::line_set::LineSet;
use tracelink::metrics::coverage::{Merged, patch_coverage};
use tracelink::metrics::diff::added_numbers;
use tracelink::store::uploads::FileLines;

#[derive(Debug, Clone, clap::Args)]
pub struct PatchArgs {
    /// Reports computed (the figure is the mean per report).
    #[arg(long, default_value_t = 20)]
    pub rounds: u32,
}

pub fn run(args: PatchArgs) -> anyhow::Result<()> {
    // 100 files × 1,000 coverable lines at head; a diff adding 5,000 lines over 50 files.
    let mut m = Merged::default();
    let mut lines = FileLines::new();
    for f in 0..100 {
        let covered = LineSet::from_lines((1..=1000).filter(|l| l % 7 != 0));
        let missed = LineSet::from_lines((1..=1000).filter(|l| l % 7 == 0));
        lines.insert(format!("src/m{f}.rs"), (covered, missed));
    }
    m.add(&lines);
    let mut patches = Vec::new();
    for f in 0..50 {
        let mut p = String::from("@@ -1,50 +1,150 @@\n");
        for l in 0..150 {
            let _ = writeln!(p, "{}line {l}", if l % 3 == 0 { ' ' } else { '+' });
        }
        let _ = writeln!(p, "@@ -400,0 +500,0 @@");
        patches.push((format!("src/m{f}.rs"), p));
    }
    let rounds = args.rounds.max(1);
    let started = Instant::now();
    let mut total = 0;
    for _ in 0..rounds {
        let added: Vec<(String, Vec<u32>)> = patches
            .iter()
            .map(|(p, patch)| (p.clone(), added_numbers(patch)))
            .collect();
        total = added.iter().map(|(_, l)| l.len()).sum::<usize>();
        let (c, t, missing) = patch_coverage(&m, &added);
        anyhow::ensure!(
            c > 0 && t > c && !missing.is_empty(),
            "unexpected patch coverage"
        );
    }
    let per = started.elapsed() / rounds;
    println!(
        "tracelink bench patch: patch coverage of a {total}-line diff over 100k coverable lines: {per:?} per report (diff parsing included)"
    );
    Ok(())
}
