//! `tracelink hook install`: a `prepare-commit-msg` hook that writes the agent session a
//! commit was made in into the commit message, as `Traceparent:` and
//! `Tracelink-Session:` trailers (DESIGN.md §4, the `trace` link).
//!
//! The hook is a POSIX `sh` script and never breaks a commit: anything unexpected
//! (no session, an invalid `TRACEPARENT`, git failing) means "add nothing" and exit 0.
//! The only way it refuses a commit is a chained hook refusing it.
//!
//! What it deliberately leaves alone:
//! - merge commits (`$2` = `merge`): their content is the merged commits, which carry
//!   their own trailers; the session that merged is not their author.
//! - commits replayed by rebase or cherry-pick (a `rebase-merge`/`rebase-apply`
//!   directory or `CHERRY_PICK_HEAD` in the git dir): git runs `prepare-commit-msg`
//!   for every replayed commit, and stamping them would claim other sessions' work.
//!   (An amend or conflict resolution during a stopped rebase is not stamped either.)
//! - messages that are empty apart from comments: a trailer would turn git's "empty
//!   message, aborting" into a commit whose message is only the trailer.
//!
//! Squashes (`$2` = `squash`), reverts, amends and `-c/-C` are stamped: the session
//! made them.
//! An amend in the same trace adds nothing (same trace ID, or the same session);
//! one in another trace adds a second `Traceparent:`, and readers take the first.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The hook git runs.
pub const HOOK_NAME: &str = "prepare-commit-msg";
/// Where a hook that was there before tracelink is moved; ours runs it first.
pub const CHAINED_NAME: &str = "prepare-commit-msg.tracelink-chained";
/// The line that marks a hook as tracelink's (any version).
pub const MARKER: &str = "# tracelink-hook v1";
const MARKER_PREFIX: &str = "# tracelink-hook v";
/// Environment variables naming the agent session, most specific first. The first one
/// set to a usable value goes into the `Tracelink-Session:` trailer.
pub const SESSION_ENV_VARS: &[&str] = &[
    "TRACELINK_SESSION_ID",
    "CLAUDE_CODE_SESSION_ID",
    "CODEX_SESSION_ID",
];

const SCRIPT: &str = r#"#!/bin/sh
# tracelink-hook v1
# prepare-commit-msg hook installed by `tracelink hook install`; re-running that
# command rewrites this file. It adds `Traceparent:` and `Tracelink-Session:`
# trailers when an AI coding agent's session is known from the environment.
# Apart from a chained hook's verdict it never fails a commit.

# The hook that was here before tracelink runs first, with the same arguments;
# if it refuses the commit, so do we.
tracelink_chained="$(dirname -- "$0")/prepare-commit-msg.tracelink-chained"
if [ -x "$tracelink_chained" ]; then
	"$tracelink_chained" "$@" || exit $?
fi

tracelink_trailers() {
	msg_file=$1
	commit_source=$2
	[ -n "$msg_file" ] && [ -f "$msg_file" ] && [ -w "$msg_file" ] || return 0
	# Merge commits hold other commits' work.
	case $commit_source in
	merge) return 0 ;;
	esac
	# Commits replayed by rebase or cherry-pick keep the trailers they had.
	git_dir=$(git rev-parse --git-dir) || return 0
	for state in rebase-merge rebase-apply CHERRY_PICK_HEAD; do
		[ -e "$git_dir/$state" ] && return 0
	done
	# An empty message aborts the commit; a trailer alone would not.
	grep -q -v -e '^#' -e '^[[:space:]]*$' "$msg_file" || return 0

	nl='
'
	cr=$(printf '\r')
	set --

	# W3C trace context, version 00, lowercase, non-zero IDs.
	tp=${TRACEPARENT:-}
	h='[0123456789abcdef]'
	h4=$h$h$h$h
	h16=$h4$h4$h4$h4
	case $tp in
	00-00000000000000000000000000000000-* | 00-*-0000000000000000-??) ;;
	00-$h16$h16-$h16-$h$h)
		trace_id=${tp#00-}
		trace_id=${trace_id%%-*}
		# One Traceparent per trace: a later command of the same session (an
		# amend) has another span ID but adds nothing.
		if ! grep -q -i -e "^traceparent[[:space:]]*:[[:space:]]*00-$trace_id-" "$msg_file"; then
			set -- "$@" --trailer "Traceparent: $tp"
		fi
		;;
	esac

	for var in @SESSION_ENV_VARS@; do
		eval "session=\${$var:-}"
		case $session in
		*"$nl"* | *"$cr"*) continue ;;
		*[![:space:]]*) ;;
		*) continue ;;
		esac
		[ "${#session}" -le 256 ] || continue
		set -- "$@" --trailer "Tracelink-Session: $session"
		break
	done

	[ $# -gt 0 ] || return 0
	git interpret-trailers --in-place --where end --if-exists addIfDifferent \
		--if-missing add "$@" "$msg_file"
}

(tracelink_trailers "$@") >/dev/null 2>&1 || :
exit 0
"#;

/// The hook script, with [`SESSION_ENV_VARS`] filled in.
pub fn script() -> String {
    SCRIPT.replace("@SESSION_ENV_VARS@", &SESSION_ENV_VARS.join(" "))
}

/// What `install` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// There was no `prepare-commit-msg` hook; ours is now there.
    Installed { hook: PathBuf },
    /// Ours was there and has been rewritten; `chained` is the hook it runs first.
    Updated {
        hook: PathBuf,
        chained: Option<PathBuf>,
    },
    /// Another hook was there; it moved to `chained` and ours runs it first.
    Chained { hook: PathBuf, chained: PathBuf },
}

impl Outcome {
    pub fn hook(&self) -> &Path {
        match self {
            Outcome::Installed { hook }
            | Outcome::Updated { hook, .. }
            | Outcome::Chained { hook, .. } => hook,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Installed { hook } => {
                write!(f, "installed {HOOK_NAME} hook at {}", hook.display())
            }
            Outcome::Updated { hook, chained } => {
                write!(f, "updated {HOOK_NAME} hook at {}", hook.display())?;
                if let Some(chained) = chained {
                    write!(f, " (still runs {} first)", chained.display())?;
                }
                Ok(())
            }
            Outcome::Chained { hook, chained } => write!(
                f,
                "installed {HOOK_NAME} hook at {} and chained the existing hook, now at {}",
                hook.display(),
                chained.display()
            ),
        }
    }
}

/// The repository's hooks directory as git resolves it (`core.hooksPath`, worktrees).
pub fn hooks_dir(repo: &Path) -> anyhow::Result<PathBuf> {
    if !repo.is_dir() {
        bail!("{}: not a directory", repo.display());
    }
    let out = Command::new("git")
        .args(["rev-parse", "--git-path", "hooks"])
        .current_dir(repo)
        // The repository is the one named, whatever the environment says.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_COMMON_DIR")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .with_context(|| format!("running git in {}", repo.display()))?;
    if !out.status.success() {
        bail!(
            "{}: cannot find the git hooks directory (git rev-parse --git-path hooks: {})",
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let path = String::from_utf8(out.stdout)
        .with_context(|| format!("{}: hooks path is not UTF-8", repo.display()))?;
    let path = path.trim_end_matches(['\n', '\r']);
    if path.is_empty() {
        bail!("{}: git named no hooks directory", repo.display());
    }
    let dir = repo.join(path);
    Ok(std::path::absolute(&dir).unwrap_or(dir))
}

/// Installs (or updates) the hook in the repository containing `repo`.
pub fn install(repo: &Path) -> anyhow::Result<Outcome> {
    let dir = hooks_dir(repo)?;
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let hook = dir.join(HOOK_NAME);
    let chained = dir.join(CHAINED_NAME);

    // Ours goes to a temporary file first, so a failure leaves the old hook in place.
    let new = dir.join(format!("{HOOK_NAME}.tracelink-new"));
    fs::write(&new, script()).with_context(|| format!("writing {}", new.display()))?;
    make_executable(&new)?;

    let outcome = if fs::symlink_metadata(&hook).is_err() {
        Outcome::Installed { hook: hook.clone() }
    } else if is_ours(&hook) {
        Outcome::Updated {
            hook: hook.clone(),
            chained: fs::symlink_metadata(&chained)
                .is_ok()
                .then(|| chained.clone()),
        }
    } else {
        if fs::symlink_metadata(&chained).is_ok() {
            let _ = fs::remove_file(&new);
            bail!(
                "{} is not tracelink's hook and {} already exists; move one of them aside and run again",
                hook.display(),
                chained.display()
            );
        }
        fs::rename(&hook, &chained)
            .with_context(|| format!("moving {} to {}", hook.display(), chained.display()))?;
        Outcome::Chained {
            hook: hook.clone(),
            chained: chained.clone(),
        }
    };
    if let Err(e) = fs::rename(&new, &hook) {
        if let Outcome::Chained { .. } = outcome {
            let _ = fs::rename(&chained, &hook);
        }
        let _ = fs::remove_file(&new);
        return Err(e).with_context(|| format!("writing {}", hook.display()));
    }
    Ok(outcome)
}

/// Whether the file at `path` is a tracelink hook (of any version).
fn is_ours(path: &Path) -> bool {
    fs::read(path).is_ok_and(|bytes| {
        String::from_utf8_lossy(&bytes)
            .lines()
            .any(|l| l.trim_end().starts_with(MARKER_PREFIX))
    })
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_carries_marker_and_session_vars() {
        let s = script();
        assert!(s.lines().nth(1) == Some(MARKER));
        assert!(!s.contains("@SESSION_ENV_VARS@"), "placeholder filled");
        for var in SESSION_ENV_VARS {
            assert!(s.contains(var));
            // They are expanded through `eval`, so they must be plain names.
            assert!(
                var.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            );
        }
    }
}
