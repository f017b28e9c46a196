//! The saved fuzz corpora, replayed as ordinary tests (no fuzzing here): every input under
//! `fuzz/corpus/<target>/` goes through the same entry points and invariants as its fuzz
//! target (`fuzz/src/lib.rs`, included below), so what the fuzzer once reached — and
//! every crash it found, kept in the corpus — keeps reading without a panic.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;

#[path = "../../fuzz/src/lib.rs"]
mod targets;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

/// Feeds every saved input of `target` through its check; at least one must be a valid
/// document (the seeds are the fixtures), or the corpus has rotted.
fn replay(target: &str) {
    let (_, check) = targets::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz target {target}"));
    let dir = corpus().join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{target}: empty corpus");
    let mut accepted = 0;
    for path in &inputs {
        let bytes = std::fs::read(path).expect("a corpus file");
        match catch_unwind(AssertUnwindSafe(|| check(&bytes))) {
            Ok(ok) => accepted += usize::from(ok),
            Err(panic) => {
                eprintln!("{target}: {} panicked", path.display());
                resume_unwind(panic);
            }
        }
    }
    assert!(
        accepted > 0,
        "{target}: none of the {} inputs is a valid document",
        inputs.len()
    );
}

#[test]
fn every_target_has_a_corpus() {
    let dirs: BTreeSet<String> = std::fs::read_dir(corpus())
        .expect("fuzz/corpus")
        .map(|e| {
            e.expect("a corpus dir")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let targets: BTreeSet<String> = targets::TARGETS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(dirs, targets);
}

macro_rules! replays {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                replay(stringify!($target));
            }
        )*
    };
}

replays!(
    otlp_protobuf,
    otlp_json,
    webhook_event,
    commit_trailers,
    ci_lcov,
    ci_cobertura,
    ci_jacoco,
    ci_gocover,
    ci_junit,
    upload_context,
    upload_multipart,
    lines_git_ai,
    lines_agent_trace,
);
