//! The crate's shape, checked: SQL lives in `src/store/` only, and the top-level modules
//! depend on each other without a cycle (each stage knows only the stages after it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literals of a Rust source file (plain and raw), roughly: enough to find SQL.
fn string_literals(code: &str) -> Vec<String> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            // Line comments are skipped: a doc comment may name a table.
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' => {
                // A char literal ('"' among them) or a lifetime: skip what can be a char.
                if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else if b.get(i + 1) == Some(&b'\\') && b.get(i + 3) == Some(&b'\'') {
                    i += 4;
                } else {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                out.push(String::from_utf8_lossy(&b[start..i.min(b.len())]).into_owned());
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Whether a literal reads as SQL: a statement keyword followed by its companion.
fn is_sql(s: &str) -> bool {
    let s = s.to_ascii_uppercase();
    let words: Vec<&str> = s
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .collect();
    let has = |a: &str, b: &str| {
        words
            .iter()
            .position(|w| *w == a)
            .is_some_and(|i| words[i + 1..].contains(&b))
    };
    has("SELECT", "FROM")
        || has("INSERT", "INTO")
        || has("DELETE", "FROM")
        || (has("UPDATE", "SET") && words.first() == Some(&"UPDATE"))
        || has("CREATE", "TABLE")
        || has("CREATE", "INDEX")
        || has("WITH", "RECURSIVE")
        || words.windows(2).any(|w| w == ["ON", "CONFLICT"])
        || s.trim_start().starts_with("BEGIN ")
        || s.trim_start().starts_with("PRAGMA ")
}

#[test]
fn the_sql_detector_tells_sql_from_prose() {
    assert!(is_sql("SELECT count(*) FROM spans"));
    assert!(is_sql("insert into links (a) values (?)"));
    assert!(is_sql("UPDATE deliveries SET status = ?"));
    assert!(is_sql("BEGIN IMMEDIATE"));
    assert!(!is_sql("*** Begin Patch\n*** Update File: src/a.ts"));
    assert!(!is_sql("update the comment"));
    assert!(!is_sql("queued reports are deleted from the queue"));
    let lits = string_literals("let a = \"SELECT 1 FROM t\"; // \"DELETE FROM x\"\nlet c = '\"';");
    assert_eq!(lits, vec!["SELECT 1 FROM t".to_string()]);
}

#[test]
fn no_sql_outside_the_store() {
    let root = src();
    let store = root.join("store");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(&store)) {
        let code = std::fs::read_to_string(f).expect("readable");
        for lit in string_literals(&code) {
            if is_sql(&lit) {
                found.push(format!("{}: {lit:?}", f.display()));
            }
        }
        // No engine type leaves the store either.
        for needle in ["sqlx::", "SqlitePool", "SqliteConnection", "PgPool"] {
            if code.contains(needle) {
                found.push(format!("{}: uses {needle}", f.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL belongs in src/store/:\n{}",
        found.join("\n")
    );
}

/// The top-level module a file belongs to (`src/store/writer.rs` → `store`).
fn module_of(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).expect("under src");
    let first = rel.components().next().expect("non-empty");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

#[test]
fn top_level_modules_form_no_cycle() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let from = module_of(&root, f);
        if from == "main" || from == "lib" {
            continue;
        }
        let code = std::fs::read_to_string(f).expect("readable");
        let entry = deps.entry(from.clone()).or_default();
        // Comments (doc links among them) are no dependency.
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != from {
                entry.insert(name);
            }
        }
    }
    let names: Vec<&String> = deps.keys().collect();
    let mut graph: DiGraphMap<&str, (), std::hash::RandomState> = DiGraphMap::default();
    for (from, tos) in &deps {
        graph.add_node(from.as_str());
        for to in tos {
            assert!(
                names.contains(&to),
                "{from} names crate::{to}, which is no top-level module"
            );
            graph.add_edge(from.as_str(), to.as_str(), ());
        }
    }
    let cycles: Vec<Vec<&str>> = tarjan_scc(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    assert!(
        cycles.is_empty(),
        "modules that import each other: {cycles:?}\n(dependencies: {deps:#?})"
    );
    // The store knows none of the stages that use it.
    let store = &deps["store"];
    for stage in [
        "agents", "otlp", "ci", "github", "graph", "metrics", "report", "publish", "api", "server",
        "impact",
    ] {
        assert!(!store.contains(stage), "store imports {stage}");
    }
}
