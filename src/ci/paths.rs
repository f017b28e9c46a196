//! Paths in reports → paths in the repository.
//!
//! Reports name files as the runner saw them: `/home/runner/work/<name>/<name>/src/x.py`
//! (GitHub-hosted Linux), `/Users/runner/work/…` (macOS), `D:\a\<name>\<name>\…`
//! (Windows), `/__w/<name>/<name>/…` (container jobs), `…/_work/<name>/<name>/…`
//! (self-hosted runners), `/github/workspace/…` (Docker actions), `./src/x.py`, or a Go
//! import path `github.com/<owner>/<name>/…`. [`normalise_with`] strips whichever applies
//! (and `$GITHUB_WORKSPACE`, when the upload says what it was), turns `\` into `/` and
//! resolves `.` and `..`. A path still absolute afterwards, or one that climbs out of the
//! repository, is unmatched: the caller reports it instead of guessing.
//!
//! The checkout directory keeps the repository's own capitalisation while tracelink keys
//! repositories in lower case, so `<name>` is matched without regard to ASCII case.

/// [`normalise_with`] without a workspace prefix.
pub fn normalise(path: &str, repo: &str) -> Result<String, String> {
    normalise_with(path, repo, None)
}

/// A repository-relative path (`src/x.py`) for a path written in a report, or why not.
///
/// `repo` is `owner/name`; `workspace` is the job's `$GITHUB_WORKSPACE`, when known.
pub fn normalise_with(path: &str, repo: &str, workspace: Option<&str>) -> Result<String, String> {
    let original = path;
    let path = path.trim().replace('\\', "/");
    let path = path.strip_prefix("file://").unwrap_or(&path);
    if path.is_empty() {
        return Err("empty path".into());
    }
    let name = repo.rsplit('/').next().unwrap_or(repo);
    let rest = workspace
        .and_then(|ws| strip_workspace(path, ws))
        .or_else(|| strip_runner_prefix(path, name))
        .or_else(|| strip_go_module(path, repo))
        .unwrap_or(path);
    let rel = clean(rest).ok_or_else(|| format!("{original} leaves the repository"))?;
    if is_absolute(&rel) {
        return Err(format!("{original} is outside the repository workspace"));
    }
    if rel.is_empty() {
        return Err(format!("{original} names the repository root, not a file"));
    }
    Ok(rel)
}

fn strip_workspace<'a>(path: &'a str, workspace: &str) -> Option<&'a str> {
    let ws = workspace.trim().replace('\\', "/");
    let ws = ws.trim_end_matches('/');
    if ws.is_empty() {
        return None;
    }
    let rest = strip_prefix_ci_drive(path, ws)?;
    rest.strip_prefix('/')
}

/// `ws` as a prefix of `path`; a Windows drive letter matches in either case.
fn strip_prefix_ci_drive<'a>(path: &'a str, ws: &str) -> Option<&'a str> {
    if let Some(rest) = path.strip_prefix(ws) {
        return Some(rest);
    }
    let (p, w) = (path.as_bytes(), ws.as_bytes());
    if w.len() >= 2
        && w[1] == b':'
        && p.len() >= w.len()
        && p[1] == b':'
        && p[0].eq_ignore_ascii_case(&w[0])
        && path.get(1..w.len()) == ws.get(1..)
    {
        return path.get(w.len()..);
    }
    None
}

/// The hosted and self-hosted runners' checkout directories.
fn strip_runner_prefix<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    if let Some(rest) = path.strip_prefix("/github/workspace/") {
        return Some(rest);
    }
    for base in ["/home/runner/work/", "/Users/runner/work/", "/__w/"] {
        if let Some(rest) = path.strip_prefix(base).and_then(|r| strip_twice(r, name)) {
            return Some(rest);
        }
    }
    // Windows hosted runners: <drive>:/a/<name>/<name>/
    let b = path.as_bytes();
    if b.len() > 5
        && b[0].is_ascii_alphabetic()
        && &b[1..5] == b":/a/"
        && let Some(rest) = strip_twice(&path[5..], name)
    {
        return Some(rest);
    }
    // Self-hosted: <runner dir>/_work/<name>/<name>/
    if is_absolute(path) {
        let mut from = 0;
        while let Some(i) = path[from..].find("/_work/") {
            let at = from + i + "/_work/".len();
            if let Some(rest) = strip_twice(&path[at..], name) {
                return Some(rest);
            }
            from = at;
        }
    }
    None
}

/// `<name>/<name>/rest` → `rest`, `name` compared without ASCII case.
fn strip_twice<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let once = strip_segment(path, name)?;
    strip_segment(once, name)
}

fn strip_segment<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let head = path.get(..name.len())?;
    if name.is_empty() || !head.eq_ignore_ascii_case(name) {
        return None;
    }
    path[name.len()..].strip_prefix('/')
}

/// Go import paths of modules hosted in the repository itself.
fn strip_go_module<'a>(path: &'a str, repo: &str) -> Option<&'a str> {
    let rest = path.strip_prefix("github.com/")?;
    let head = rest.get(..repo.len())?;
    if repo.is_empty() || !head.eq_ignore_ascii_case(repo) {
        return None;
    }
    rest[repo.len()..].strip_prefix('/')
}

fn is_absolute(path: &str) -> bool {
    let b = path.as_bytes();
    path.starts_with('/') || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

/// Drops `.` and empty segments and resolves `..`; `None` when `..` climbs above the start
/// of a relative path.
fn clean(path: &str) -> Option<String> {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    Some(if absolute {
        format!("/{joined}")
    } else {
        joined
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "acme/tracelink";

    #[test]
    fn hosted_runner_prefixes_are_stripped() {
        let cases = [
            (
                "/home/runner/work/tracelink/tracelink/src/ci/mod.rs",
                "src/ci/mod.rs",
            ),
            (
                "/Users/runner/work/tracelink/tracelink/src/a.rs",
                "src/a.rs",
            ),
            ("D:\\a\\tracelink\\tracelink\\src\\a.rs", "src/a.rs"),
            ("c:/a/tracelink/tracelink/src/a.rs", "src/a.rs"),
            ("/__w/tracelink/tracelink/lib/x.js", "lib/x.js"),
            ("/github/workspace/pkg/x.go", "pkg/x.go"),
            (
                "/home/ci/actions-runner/_work/tracelink/tracelink/a.py",
                "a.py",
            ),
            ("/home/runner/work/TraceLink/TraceLink/src/a.rs", "src/a.rs"),
            ("./src/a.rs", "src/a.rs"),
            ("src/./b/../a.rs", "src/a.rs"),
            ("src//a.rs", "src/a.rs"),
            ("github.com/acme/tracelink/internal/x.go", "internal/x.go"),
            ("file:///home/runner/work/tracelink/tracelink/a.rs", "a.rs"),
        ];
        for (path, want) in cases {
            assert_eq!(normalise(path, REPO).as_deref(), Ok(want), "{path}");
        }
    }

    #[test]
    fn the_workspace_prefix_is_stripped_first() {
        let ws = Some("/tmp/fx/py/");
        assert_eq!(
            normalise_with("/tmp/fx/py/calc/ops.py", REPO, ws).as_deref(),
            Ok("calc/ops.py")
        );
        assert_eq!(
            normalise_with("/tmp/fx/py/calc/ops.py", REPO, Some("/tmp/fx/py")).as_deref(),
            Ok("calc/ops.py")
        );
        let ws = Some("D:\\work\\tl");
        assert_eq!(
            normalise_with("d:\\work\\tl\\src\\a.rs", REPO, ws).as_deref(),
            Ok("src/a.rs")
        );
        // A prefix that only shares characters is no match.
        let ws = Some("/tmp/fx/py");
        assert!(normalise_with("/tmp/fx/pyx/a.py", REPO, ws).is_err());
    }

    #[test]
    fn unmatched_paths_are_errors() {
        for path in [
            "/opt/build/src/a.rs",
            "/home/runner/work/other/other/src/a.rs",
            "/home/runner/work/tracelink/src/a.rs",
            "C:\\Users\\dev\\a.rs",
            "../outside.rs",
            "src/../../outside.rs",
            "",
            "./",
        ] {
            assert!(normalise(path, REPO).is_err(), "{path:?}");
        }
        let e = normalise("/opt/build/a.rs", REPO).err().unwrap_or_default();
        assert!(e.contains("/opt/build/a.rs"), "{e}");
    }

    #[test]
    fn relative_paths_stay_and_go_modules_of_other_repos_stay() {
        assert_eq!(normalise("src/a.rs", REPO).as_deref(), Ok("src/a.rs"));
        assert_eq!(
            normalise("github.com/other/lib/x.go", REPO).as_deref(),
            Ok("github.com/other/lib/x.go")
        );
        assert_eq!(
            normalise("com/acme/Calc.java", "acme").as_deref(),
            Ok("com/acme/Calc.java")
        );
    }
}
