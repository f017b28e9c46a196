//! The one unified-diff reader: the lines a patch adds, with their line numbers in the
//! new file. Line share (which added lines agents wrote, by content) and patch coverage
//! (which added lines tests ran, by number) both read it.

/// One added line of a patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddedLine<'a> {
    /// Its number in the new file.
    pub number: u32,
    /// Its content, without the leading `+`.
    pub text: &'a str,
}

/// The added lines of a unified diff (a GitHub patch: hunks only, or a whole `git diff`
/// of one file), in order. Lines outside hunks (file headers) are not added lines.
pub fn added_lines(patch: &str) -> Vec<AddedLine<'_>> {
    let mut out = Vec::new();
    // (next new-file line, old lines left, new lines left) inside a hunk.
    let mut hunk: Option<(u32, u32, u32)> = None;
    for line in patch.lines() {
        if let Some((next, old_left, new_left)) = hunk.as_mut()
            && (*old_left > 0 || *new_left > 0)
        {
            match line.as_bytes().first() {
                Some(b'+') => {
                    out.push(AddedLine {
                        number: *next,
                        text: &line[1..],
                    });
                    *next = next.saturating_add(1);
                    *new_left = new_left.saturating_sub(1);
                }
                Some(b'-') => *old_left = old_left.saturating_sub(1),
                Some(b'\\') => {}
                // Context (an empty line is a context line whose space was trimmed).
                _ => {
                    *next = next.saturating_add(1);
                    *old_left = old_left.saturating_sub(1);
                    *new_left = new_left.saturating_sub(1);
                }
            }
            continue;
        }
        if line.starts_with("@@") {
            hunk = parse_hunk_header(line);
        }
    }
    out
}

/// The new-file numbers of a patch's added lines.
pub fn added_numbers(patch: &str) -> Vec<u32> {
    added_lines(patch).into_iter().map(|l| l.number).collect()
}

/// `@@ -a[,b] +c[,d] @@ …` → (c, b, d); a count left out is 1.
fn parse_hunk_header(line: &str) -> Option<(u32, u32, u32)> {
    let mut parts = line.split_whitespace().skip(1);
    let old = parts.next()?.strip_prefix('-')?;
    let new = parts.next()?.strip_prefix('+')?;
    let range = |s: &str| -> Option<(u32, u32)> {
        match s.split_once(',') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => Some((s.parse().ok()?, 1)),
        }
    };
    let (_, old_count) = range(old)?;
    let (start, new_count) = range(new)?;
    Some((start, old_count, new_count))
}

/// A commit's patch id: the same for two commits making the same change, whatever their
/// parents, messages or times — a rebased or amended copy of a commit has its
/// original's. Like `git patch-id --stable`: per file, a digest of the path and the
/// changed lines (`+`/`-`, whitespace removed; hunk positions and context ignored); the
/// file digests are combined in path order. `None` when a file has no patch text (binary,
/// or too big for GitHub to send) or there are no files: then nothing can be proven.
pub fn patch_id<'a>(files: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut digests: Vec<(&str, [u8; 32])> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    for (path, patch) in files {
        let patch = patch?;
        buf.clear();
        buf.extend_from_slice(path.as_bytes());
        buf.push(0);
        for line in patch.lines() {
            let bytes = line.as_bytes();
            let changed = matches!(bytes.first(), Some(b'+' | b'-'))
                && !line.starts_with("+++ ")
                && !line.starts_with("--- ");
            if changed {
                buf.push(bytes[0]);
                buf.extend(bytes[1..].iter().filter(|b| !b.is_ascii_whitespace()));
                buf.push(b'\n');
            }
        }
        digests.push((path, Sha256::digest(&buf).into()));
    }
    if digests.is_empty() {
        return None;
    }
    digests.sort();
    let mut all = Sha256::new();
    for (_, d) in &digests {
        all.update(d);
    }
    Some(crate::ids::encode_hex(&all.finalize()[..20]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_lines_follow_the_hunks() {
        let patch = "@@ -1,3 +1,4 @@\n a\n-b\n+B\n+C\n c\n@@ -10 +11,2 @@\n-x\n+y\n+z\n\\ No newline at end of file\n";
        assert_eq!(added_numbers(patch), vec![2, 3, 11, 12]);
        let texts: Vec<&str> = added_lines(patch).iter().map(|l| l.text).collect();
        assert_eq!(texts, vec!["B", "C", "y", "z"]);
        // A whole git diff: headers outside hunks are not added lines.
        let diff = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -0,0 +1,2 @@\n+one\n+two\ndiff --git a/g b/g\n+++ b/g\n@@ -5,2 +5,2 @@\n keep\n-old\n+new\n";
        assert_eq!(added_numbers(diff), vec![1, 2, 6]);
        assert!(added_numbers("").is_empty());
        assert!(added_numbers("@@ garbage @@\n+x\n").is_empty());
    }

    #[test]
    fn an_added_line_that_starts_with_plus_signs_is_still_added() {
        // `++x` added is written `+++x` in the patch: inside a hunk it is a line, not a header.
        let patch = "@@ -1,0 +1,2 @@\n+++x\n+y\n";
        let lines = added_lines(patch);
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].number, lines[0].text), (1, "++x"));
    }

    #[test]
    fn a_patch_id_names_the_change_not_where_or_how_it_was_spaced() {
        let a = "@@ -1,3 +1,4 @@\n fn main() {\n+    retry(3);\n     run();\n-    exit();\n }";
        let moved = "@@ -40,3 +40,4 @@\n fn start() {\n+  retry( 3 );\n   run();\n-  exit();\n }";
        let other = "@@ -1,3 +1,4 @@\n fn main() {\n+    retry(4);\n     run();\n-    exit();\n }";
        let id = patch_id([
            ("src/a.rs", Some(a)),
            ("README.md", Some("@@ -1 +1 @@\n-x\n+y")),
        ]);
        assert!(id.is_some());
        assert_eq!(
            id,
            patch_id([
                ("README.md", Some("@@ -9 +9 @@\n-x\n+y")),
                ("src/a.rs", Some(moved))
            ]),
            "other hunk positions, context, spacing and file order"
        );
        assert_ne!(
            id,
            patch_id([
                ("src/a.rs", Some(other)),
                ("README.md", Some("@@ -1 +1 @@\n-x\n+y"))
            ])
        );
        assert_ne!(
            patch_id([("src/a.rs", Some(a))]),
            patch_id([("src/b.rs", Some(a))]),
            "the same lines in another file are another change"
        );
        assert_eq!(
            patch_id([("logo.png", None), ("src/a.rs", Some(a))]),
            None,
            "a binary file"
        );
        assert_eq!(patch_id(std::iter::empty()), None);
    }
}
