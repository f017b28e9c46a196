//! `tracelink hook install` against real `git` in temporary repositories.
//!
//! Every git command runs with a cleared environment (no system or user config, HOME
//! in the temp dir, no agent variables leaking in from whoever runs the tests). The
//! library's `install` runs `git rev-parse` with this process's environment, so those
//! repositories set `core.hooksPath` locally to keep any global setting out of the way.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tracelink::github::trailers::{self, Trailer};
use tracelink::hook::{self, CHAINED_NAME, HOOK_NAME, Outcome};

const TP: &str = "00-b3334784fc61510ab4e4362d0249eb86-e6e37c671d5284d5-01";
const SESSION: &str = "82c3495f-2f0b-4d55-9c2e-0a4c6bb1d1a7";

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// A new repository whose hooks directory is pinned to `.git/hooks` in local config.
    fn new() -> Repo {
        let repo = Repo::bare_config();
        let hooks = repo.path().join(".git/hooks");
        repo.git_ok(&["config", "core.hooksPath", hooks.to_str().unwrap()]);
        repo
    }

    /// A new repository with only identity settings in its config.
    fn bare_config() -> Repo {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("home")).unwrap();
        fs::create_dir(dir.path().join("work")).unwrap();
        let repo = Repo { dir };
        repo.git_ok(&["init", "-q"]);
        repo.git_ok(&["config", "user.name", "Test Person"]);
        repo.git_ok(&["config", "user.email", "test@example.com"]);
        repo.git_ok(&["config", "commit.gpgsign", "false"]);
        repo
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn hooks(&self) -> PathBuf {
        self.path().join(".git/hooks")
    }

    /// Runs git in the work tree with an isolated environment plus `env`.
    fn git(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        isolated(Command::new("git"), self.dir.path())
            .args(args)
            .current_dir(self.path())
            .envs(env.iter().copied())
            .output()
            .expect("git runs")
    }

    fn git_ok(&self, args: &[&str]) -> String {
        let out = self.git(args, &[]);
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// Commits a change to `file` with message `msg`; returns git's output.
    fn commit(&self, msg: &str, env: &[(&str, &str)]) -> Output {
        let file = self.path().join("file.txt");
        let mut content = fs::read_to_string(&file).unwrap_or_default();
        content.push_str(msg);
        content.push('\n');
        fs::write(&file, content).unwrap();
        self.git_ok(&["add", "file.txt"]);
        self.git(&["commit", "-q", "-m", msg], env)
    }

    fn commit_ok(&self, msg: &str, env: &[(&str, &str)]) {
        let out = self.commit(msg, env);
        assert!(out.status.success(), "commit: {}", text(&out.stderr));
    }

    fn last_message(&self) -> String {
        self.git_ok(&["log", "-1", "--format=%B"])
    }

    fn install(&self) -> Outcome {
        hook::install(&self.path()).expect("install")
    }

    fn write_hook(&self, body: &str) {
        let hooks = self.hooks();
        fs::create_dir_all(&hooks).unwrap();
        let path = hooks.join(HOOK_NAME);
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn isolated(mut cmd: Command, root: &Path) -> Command {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("home"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LC_ALL", "C");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn agent_env() -> [(&'static str, &'static str); 2] {
    [("TRACEPARENT", TP), ("TRACELINK_SESSION_ID", SESSION)]
}

fn count(message: &str, key: &str) -> usize {
    trailers::parse(message)
        .iter()
        .filter(|t: &&Trailer| t.is(key))
        .count()
}

#[test]
fn hook_adds_traceparent_and_session_trailers() {
    let repo = Repo::new();
    let outcome = repo.install();
    assert_eq!(
        outcome,
        Outcome::Installed {
            hook: repo.hooks().join(HOOK_NAME)
        }
    );
    let mode = fs::metadata(repo.hooks().join(HOOK_NAME))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);

    repo.commit_ok("Add the uploader\n\nWith retries.", &agent_env());
    let msg = repo.last_message();
    assert!(msg.contains(&format!("\nTraceparent: {TP}\n")), "{msg}");
    assert!(
        msg.contains(&format!("\nTracelink-Session: {SESSION}\n")),
        "{msg}"
    );
    assert!(
        msg.starts_with("Add the uploader\n\nWith retries.\n\n"),
        "{msg}"
    );

    let attribution = trailers::attribution(&trailers::parse(&msg));
    let (trace, span) = attribution.traceparent.expect("traceparent");
    assert_eq!(trace.to_hex(), "b3334784fc61510ab4e4362d0249eb86");
    assert_eq!(span.to_hex(), "e6e37c671d5284d5");
    assert_eq!(attribution.session.as_deref(), Some(SESSION));
    assert!(attribution.agents.is_empty());
}

#[test]
fn hook_appends_to_an_existing_trailer_block() {
    let repo = Repo::new();
    repo.install();
    repo.commit_ok(
        "Fix the parser\n\nCo-Authored-By: Claude <noreply@anthropic.com>",
        &[("TRACEPARENT", TP), ("CLAUDE_CODE_SESSION_ID", "claude-1")],
    );
    let msg = repo.last_message();
    let attribution = trailers::attribution(&trailers::parse(&msg));
    assert_eq!(attribution.agents, ["claude-code"], "{msg}");
    assert!(attribution.traceparent.is_some(), "{msg}");
    assert_eq!(attribution.session.as_deref(), Some("claude-1"), "{msg}");
}

#[test]
fn hook_without_agent_env_adds_nothing() {
    let repo = Repo::new();
    repo.install();
    repo.commit_ok("Plain commit", &[]);
    assert_eq!(repo.last_message().trim_end(), "Plain commit");
}

#[test]
fn hook_session_env_vars_in_order() {
    let repo = Repo::new();
    repo.install();
    repo.commit_ok(
        "One",
        &[
            ("CODEX_SESSION_ID", "codex-1"),
            ("TRACELINK_SESSION_ID", "tracelink-1"),
        ],
    );
    let a = trailers::attribution(&trailers::parse(&repo.last_message()));
    assert_eq!(a.session.as_deref(), Some("tracelink-1"));
    assert_eq!(a.traceparent, None);
    repo.commit_ok("Two", &[("CODEX_SESSION_ID", "codex-1")]);
    let a = trailers::attribution(&trailers::parse(&repo.last_message()));
    assert_eq!(a.session.as_deref(), Some("codex-1"));
}

#[test]
fn hook_chains_an_existing_hook_which_still_runs() {
    let repo = Repo::new();
    repo.write_hook("#!/bin/sh\nprintf '\\nExisting hook ran.\\n' >> \"$1\"\n");
    let outcome = repo.install();
    let chained = repo.hooks().join(CHAINED_NAME);
    assert_eq!(
        outcome,
        Outcome::Chained {
            hook: repo.hooks().join(HOOK_NAME),
            chained: chained.clone()
        }
    );
    assert!(outcome.to_string().contains(&chained.display().to_string()));
    let mode = fs::metadata(&chained).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "chained hook keeps its executable bit");

    repo.commit_ok("Chained", &agent_env());
    let msg = repo.last_message();
    assert!(msg.contains("Existing hook ran."), "{msg}");
    assert_eq!(count(&msg, "Traceparent"), 1, "{msg}");
    assert_eq!(count(&msg, "Tracelink-Session"), 1, "{msg}");

    repo.commit_ok("Chained without env", &[]);
    let msg = repo.last_message();
    assert!(msg.contains("Existing hook ran."), "{msg}");
    assert!(trailers::parse(&msg).is_empty(), "{msg}");
}

#[test]
fn hook_existing_hook_refusal_still_blocks_the_commit() {
    let repo = Repo::new();
    repo.write_hook("#!/bin/sh\necho 'refused by policy' >&2\nexit 1\n");
    repo.install();
    let before = repo.git_ok(&["rev-list", "--all", "--count"]);
    let out = repo.commit("Should not land", &agent_env());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("refused by policy"));
    assert_eq!(repo.git_ok(&["rev-list", "--all", "--count"]), before);
}

#[test]
fn hook_install_twice_is_idempotent() {
    let repo = Repo::new();
    repo.write_hook("#!/bin/sh\nprintf '\\nChained-Ran: yes\\n' >> \"$1\"\n");
    assert!(matches!(repo.install(), Outcome::Chained { .. }));
    let second = repo.install();
    assert_eq!(
        second,
        Outcome::Updated {
            hook: repo.hooks().join(HOOK_NAME),
            chained: Some(repo.hooks().join(CHAINED_NAME)),
        }
    );
    assert!(second.to_string().starts_with("updated"), "{second}");
    repo.install();

    let mut names: Vec<String> = fs::read_dir(repo.hooks())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(HOOK_NAME) && !n.ends_with(".sample"))
        .collect();
    names.sort();
    assert_eq!(names, [HOOK_NAME, CHAINED_NAME]);
    let chained = fs::read_to_string(repo.hooks().join(CHAINED_NAME)).unwrap();
    assert!(!chained.contains(hook::MARKER), "never chains to itself");

    repo.commit_ok("Twice", &agent_env());
    let msg = repo.last_message();
    assert_eq!(count(&msg, "Chained-Ran"), 1, "{msg}");
    assert_eq!(count(&msg, "Traceparent"), 1, "{msg}");
    assert_eq!(count(&msg, "Tracelink-Session"), 1, "{msg}");
}

#[test]
fn hook_refuses_to_overwrite_an_existing_chained_hook() {
    let repo = Repo::new();
    repo.write_hook("#!/bin/sh\nexit 0\n");
    repo.install();
    // Another tool replaces our hook; the chained one is still there.
    repo.write_hook("#!/bin/sh\necho other\n");
    let err = hook::install(&repo.path()).unwrap_err().to_string();
    assert!(err.contains(CHAINED_NAME), "{err}");
    assert_eq!(
        fs::read_to_string(repo.hooks().join(HOOK_NAME)).unwrap(),
        "#!/bin/sh\necho other\n"
    );
}

#[test]
fn hook_bad_input_never_breaks_the_commit() {
    let repo = Repo::new();
    repo.install();
    let marker = repo.dir.path().join("pwned");
    let injection = format!("$(touch {})", marker.display());
    let two_lines = format!("{TP}\nEvil: trailer");
    let too_long = "x".repeat(300);
    let bad: Vec<Vec<(&str, &str)>> = vec![
        vec![("TRACEPARENT", "garbage")],
        vec![(
            "TRACEPARENT",
            "00-00000000000000000000000000000000-e6e37c671d5284d5-01",
        )],
        vec![(
            "TRACEPARENT",
            "00-b3334784fc61510ab4e4362d0249eb86-0000000000000000-01",
        )],
        vec![(
            "TRACEPARENT",
            "00-B3334784FC61510AB4E4362D0249EB86-e6e37c671d5284d5-01",
        )],
        vec![("TRACEPARENT", &two_lines)],
        vec![("TRACEPARENT", &injection)],
        vec![("TRACELINK_SESSION_ID", "   ")],
        vec![("TRACELINK_SESSION_ID", "two\nlines")],
        vec![("TRACELINK_SESSION_ID", &too_long)],
    ];
    for (i, env) in bad.iter().enumerate() {
        repo.commit_ok(&format!("Bad {i}"), env);
        let msg = repo.last_message();
        assert!(trailers::parse(&msg).is_empty(), "{env:?}: {msg}");
    }
    assert!(!marker.exists(), "TRACEPARENT is never evaluated");

    // A session id with shell metacharacters is written verbatim.
    let odd = "$(touch nope) `x` \"q\" 'y';";
    repo.commit_ok("Odd session", &[("TRACELINK_SESSION_ID", odd)]);
    let a = trailers::attribution(&trailers::parse(&repo.last_message()));
    assert_eq!(a.session.as_deref(), Some(odd));
}

#[test]
fn hook_script_exits_zero_whatever_fails_inside() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("home")).unwrap();
    let script = dir.path().join(HOOK_NAME);
    fs::write(&script, hook::script()).unwrap();
    let msg = dir.path().join("COMMIT_EDITMSG");
    fs::write(&msg, "Subject\n").unwrap();
    let missing = dir.path().join("missing");
    let cases: [&[&Path]; 3] = [
        // No arguments at all.
        &[],
        // A message file that does not exist.
        &[missing.as_path()],
        // Not inside a git repository: `git rev-parse` fails.
        &[msg.as_path()],
    ];
    for args in cases {
        let out = isolated(Command::new("sh"), dir.path())
            .arg(&script)
            .args(args)
            .current_dir(dir.path())
            .env("GIT_CEILING_DIRECTORIES", dir.path().parent().unwrap())
            .envs(agent_env())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "quiet: {}", text(&out.stderr));
    }
    assert_eq!(fs::read_to_string(&msg).unwrap(), "Subject\n");
}

#[test]
fn hook_empty_message_still_aborts() {
    let repo = Repo::new();
    repo.install();
    fs::write(repo.path().join("file.txt"), "x\n").unwrap();
    repo.git_ok(&["add", "file.txt"]);
    // The editor leaves only git's comment lines: git must still refuse.
    let out = repo.git(&["commit"], &[("GIT_EDITOR", "true"), ("TRACEPARENT", TP)]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("empty"), "{}", text(&out.stderr));
}

#[test]
fn hook_amend_does_not_duplicate_trailers() {
    let repo = Repo::new();
    repo.install();
    repo.commit_ok("Amend me", &agent_env());
    let amend = |env: &[(&str, &str)]| {
        let out = repo.git(&["commit", "-q", "--amend", "--no-edit"], env);
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    amend(&agent_env());
    // A later command of the same session: same trace, another span.
    amend(&[
        (
            "TRACEPARENT",
            "00-b3334784fc61510ab4e4362d0249eb86-1111111111111111-01",
        ),
        ("TRACELINK_SESSION_ID", SESSION),
    ]);
    amend(&[]);
    let msg = repo.last_message();
    assert_eq!(count(&msg, "Traceparent"), 1, "{msg}");
    assert_eq!(count(&msg, "Tracelink-Session"), 1, "{msg}");
    let a = trailers::attribution(&trailers::parse(&msg));
    assert_eq!(a.traceparent.unwrap().1.to_hex(), "e6e37c671d5284d5");

    // Another session amending adds its own; the first stays first.
    amend(&[
        (
            "TRACEPARENT",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("TRACELINK_SESSION_ID", "other"),
    ]);
    let msg = repo.last_message();
    assert_eq!(count(&msg, "Traceparent"), 2, "{msg}");
    let a = trailers::attribution(&trailers::parse(&msg));
    assert_eq!(
        a.traceparent.unwrap().0.to_hex(),
        "b3334784fc61510ab4e4362d0249eb86"
    );
    assert_eq!(a.session.as_deref(), Some(SESSION));
}

#[test]
fn hook_leaves_merges_and_cherry_picks_alone() {
    let repo = Repo::new();
    repo.install();
    repo.commit_ok("Base", &[]);
    repo.git_ok(&["checkout", "-q", "-b", "side"]);
    fs::write(repo.path().join("side.txt"), "side\n").unwrap();
    repo.git_ok(&["add", "side.txt"]);
    repo.git_ok(&["commit", "-q", "-m", "Side work"]);
    repo.git_ok(&["checkout", "-q", "-"]);
    repo.commit_ok("Main work", &[]);

    let out = repo.git(&["merge", "--no-edit", "side"], &agent_env());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(trailers::parse(&repo.last_message()).is_empty());

    repo.git_ok(&["checkout", "-q", "-b", "picked", "HEAD~1"]);
    let out = repo.git(&["cherry-pick", "side"], &agent_env());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(repo.last_message().trim_end(), "Side work");
}

#[test]
fn hook_follows_a_relative_core_hooks_path() {
    let repo = Repo::bare_config();
    repo.git_ok(&["config", "core.hooksPath", ".githooks"]);
    fs::create_dir(repo.path().join("sub")).unwrap();
    let outcome = hook::install(&repo.path().join("sub")).expect("install");
    let hook_path = outcome.hook().canonicalize().unwrap();
    assert_eq!(
        hook_path,
        repo.path()
            .join(".githooks")
            .join(HOOK_NAME)
            .canonicalize()
            .unwrap()
    );
    repo.commit_ok("Via hooksPath", &agent_env());
    assert_eq!(count(&repo.last_message(), "Traceparent"), 1);
}

#[test]
fn hook_outside_a_repository_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = format!("{:#}", hook::install(dir.path()).unwrap_err());
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    let missing = dir.path().join("missing");
    let err = format!("{:#}", hook::install(&missing).unwrap_err());
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn hook_binary_installs_and_prints_what_it_did() {
    // No hooksPath in the repository: the binary runs fully isolated, so this checks
    // the default `.git/hooks` location.
    let repo = Repo::bare_config();
    let run = || {
        let out = isolated(
            Command::new(env!("CARGO_BIN_EXE_tracelink")),
            repo.dir.path(),
        )
        .args(["hook", "install", "--repo"])
        .arg(repo.path())
        .output()
        .expect("tracelink runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let hook_path = repo.hooks().join(HOOK_NAME);
    let first = run();
    assert_eq!(
        first.trim_end(),
        format!(
            "installed prepare-commit-msg hook at {}",
            hook_path.display()
        )
    );
    let second = run();
    assert!(
        second.starts_with("updated prepare-commit-msg hook at "),
        "{second}"
    );
    repo.commit_ok("From the binary", &agent_env());
    assert_eq!(count(&repo.last_message(), "Traceparent"), 1);
}

#[test]
fn hook_script_is_valid_posix_sh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(HOOK_NAME);
    fs::write(&path, hook::script()).unwrap();
    for shell in ["sh", "dash", "bash"] {
        let Ok(out) = Command::new(shell).arg("-n").arg(&path).output() else {
            continue; // that shell is not installed
        };
        assert!(out.status.success(), "{shell} -n: {}", text(&out.stderr));
    }
}
