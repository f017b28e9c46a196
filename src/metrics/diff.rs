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
}
