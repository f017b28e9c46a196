//! `tracelink.toml`: every `serve` setting in one file. Its keys are the flags' names
//! (`http-listen` or `http_listen`, `read-token` or `read_tokens`); a list is a TOML
//! array, a switch a boolean. Flags override environment variables, which override the
//! file: a setting is taken from the file only when neither names it. The file is
//! `--config FILE` (or `TRACELINK_CONFIG`), else `./tracelink.toml` when there is one.
//!
//! It works by adding the file's settings to the command line as flags before clap
//! reads it, so every setting is checked by the same parser, with the same messages,
//! whichever way it came.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::CommandFactory;

use crate::config::Cli;

/// The default config file, read when present.
pub const DEFAULT_FILE: &str = "tracelink.toml";

/// Settings whose values are never printed.
const SECRETS: [&str; 8] = [
    // A Slack-style webhook URL is a credential.
    "alert_webhook",
    "ingest_tokens",
    "read_tokens",
    "admin_tokens",
    "metrics_token",
    "secret_key",
    "webhook_secrets",
    "github_private_key",
];

/// A command line with a config file's settings added.
#[derive(Debug, Clone)]
pub struct Expanded {
    pub args: Vec<OsString>,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// The settings (argument ids) taken from it.
    pub from_file: BTreeSet<String>,
}

/// Whether the command line runs a command that reads the config file: `serve`,
/// `config check`.
fn reads_config(args: &[OsString]) -> bool {
    match args.get(1).and_then(|a| a.to_str()) {
        Some("serve") => true,
        Some("config") => args.get(2).and_then(|a| a.to_str()) == Some("check"),
        _ => false,
    }
}

/// The value of `--config FILE` / `--config=FILE` on the command line.
fn config_flag(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().map(|v| PathBuf::from(v.as_ref()));
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}

/// Adds the config file's settings to `args` (a whole command line, program name
/// first). Commands other than `serve` and `config check` are left as they are.
pub fn expand(args: Vec<OsString>) -> anyhow::Result<Expanded> {
    let mut out = Expanded {
        args,
        file: None,
        from_file: BTreeSet::new(),
    };
    if !reads_config(&out.args) {
        return Ok(out);
    }
    let named =
        config_flag(&out.args).or_else(|| std::env::var_os("TRACELINK_CONFIG").map(PathBuf::from));
    let file = match named {
        Some(f) => f,
        None if Path::new(DEFAULT_FILE).exists() => PathBuf::from(DEFAULT_FILE),
        None => return Ok(out),
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading the config file {}", file.display()))?;
    let added = settings(&text, &out.args, |var| std::env::var_os(var).is_some())
        .with_context(|| format!("the config file {}", file.display()))?;
    for (id, flag) in added {
        out.args.push(flag.into());
        out.from_file.insert(id);
    }
    out.file = Some(file);
    Ok(out)
}

/// The flags a config file's `text` adds to `args` (as `(argument id, flag)`): one
/// per setting that neither the command line nor the environment (`env_set`) gives.
fn settings(
    text: &str,
    args: &[OsString],
    env_set: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<(String, String)>> {
    let table: toml::Table = toml::from_str(text).context("not valid TOML")?;
    let cmd = Cli::command();
    let serve = cmd
        .find_subcommand("serve")
        .context("no serve command")?
        .clone();
    let given: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
    let mut out = Vec::new();
    for (key, value) in &table {
        let wanted = key.replace('_', "-");
        let Some(arg) = serve.get_arguments().find(|a| {
            a.get_long().is_some_and(|l| l == wanted)
                || a.get_id().as_str().replace('_', "-") == wanted
        }) else {
            let known: Vec<&str> = serve
                .get_arguments()
                .filter_map(|a| a.get_long())
                .filter(|l| !matches!(*l, "help" | "config"))
                .collect();
            bail!(
                "unknown setting {key:?}; the settings are serve's flags: {}",
                known.join(", ")
            );
        };
        let Some(long) = arg.get_long() else {
            continue;
        };
        if long == "config" {
            bail!("{key:?}: a config file cannot name another");
        }
        let on_command_line = given
            .iter()
            .any(|a| a == &format!("--{long}") || a.starts_with(&format!("--{long}=")));
        let in_env = arg.get_env().and_then(|e| e.to_str()).is_some_and(&env_set);
        if on_command_line || in_env {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        let id = arg.get_id().to_string();
        let flag = match value {
            toml::Value::Boolean(b) if !takes_value => {
                if *b {
                    format!("--{long}")
                } else {
                    continue;
                }
            }
            toml::Value::Boolean(b) => format!("--{long}={b}"),
            toml::Value::String(s) => format!("--{long}={s}"),
            toml::Value::Integer(i) => format!("--{long}={i}"),
            toml::Value::Float(f) => format!("--{long}={f}"),
            toml::Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    parts.push(match item {
                        toml::Value::String(s) if s.contains(',') => {
                            bail!("{key:?}: an item holds a comma, which separates items: {s:?}")
                        }
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(i) => i.to_string(),
                        other => bail!("{key:?}: items must be strings, not {}", other.type_str()),
                    });
                }
                if parts.is_empty() {
                    continue;
                }
                format!("--{long}={}", parts.join(","))
            }
            other => bail!(
                "{key:?} must be a string, number, boolean or array, not a {}",
                other.type_str()
            ),
        };
        if !takes_value && !matches!(value, toml::Value::Boolean(_)) {
            bail!("{key:?} is a switch: true or false");
        }
        out.push((id, flag));
    }
    Ok(out)
}

/// `tracelink config check`: every `serve` setting with its effective value (secrets
/// masked) and where it came from, one per line.
pub fn describe(expanded: &Expanded) -> anyhow::Result<String> {
    let matches = Cli::command()
        .try_get_matches_from(&expanded.args)
        .map_err(|e| anyhow::anyhow!("{}", e.render().to_string().trim_end()))?;
    let Some(("config", config)) = matches.subcommand() else {
        bail!("not the config command");
    };
    let Some(("check", check)) = config.subcommand() else {
        bail!("not config check");
    };
    let cmd = Cli::command();
    let serve = cmd
        .find_subcommand("serve")
        .context("no serve command")?
        .clone();
    let mut out = String::new();
    match &expanded.file {
        Some(f) => out.push_str(&format!("config file: {}\n", f.display())),
        None => out.push_str(&format!(
            "config file: none (no --config, TRACELINK_CONFIG or ./{DEFAULT_FILE})\n"
        )),
    }
    for arg in serve.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else {
            continue;
        };
        if matches!(long, "help" | "config") {
            continue;
        }
        let raw: Vec<String> = check
            .get_raw(id)
            .map(|vs| vs.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let source = if expanded.from_file.contains(id) {
            "config file"
        } else {
            match check.value_source(id) {
                Some(clap::parser::ValueSource::CommandLine) => "command line",
                Some(clap::parser::ValueSource::EnvVariable) => "environment",
                Some(clap::parser::ValueSource::DefaultValue) => "default",
                _ => "not set",
            }
        };
        let value = if raw.is_empty() {
            "-".to_string()
        } else if SECRETS.contains(&id) {
            format!("******** ({} set)", raw.len())
        } else {
            raw.iter()
                .map(|v| without_password(v))
                .collect::<Vec<_>>()
                .join(",")
        };
        out.push_str(&format!("{long:<28} {value:<40} ({source})\n"));
    }
    Ok(out)
}

/// A URL with its password masked (`postgres://user:***@host/db`).
fn without_password(v: &str) -> String {
    if let Some((scheme, rest)) = v.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            super::without_password("postgres://app:hunter2@db:5432/tracelink"),
            "postgres://app:***@db:5432/tracelink"
        );
        assert_eq!(super::without_password("./tracelink.db"), "./tracelink.db");
    }

    use super::*;

    fn argv(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn settings_become_flags_unless_the_command_line_or_environment_gives_them() {
        let text = r#"
http-listen = "0.0.0.0:4318"
read_tokens = ["a", "b"]
max-connections = 64
allow-unauthenticated = true
pseudonymize-users = false
people = "on"
incident-label = "sev"
"#;
        let got = settings(
            text,
            &argv(&["tracelink", "serve", "--max-connections=9"]),
            |v| v == "TRACELINK_INCIDENT_LABEL",
        )
        .unwrap();
        let flags: Vec<&str> = got.iter().map(|(_, f)| f.as_str()).collect();
        assert_eq!(
            flags,
            [
                "--allow-unauthenticated",
                "--http-listen=0.0.0.0:4318",
                "--people=on",
                "--read-token=a,b",
            ]
        );
    }

    #[test]
    fn a_bad_setting_is_named() {
        let err = |text: &str| {
            format!(
                "{:#}",
                settings(text, &argv(&["tracelink", "serve"]), |_| false).unwrap_err()
            )
        };
        assert!(err("htp-listen = 1").contains("unknown setting \"htp-listen\""));
        assert!(err("htp-listen = 1").contains("http-listen"));
        assert!(err("[db]\nx = 1").contains("\"db\" must be a string, number, boolean or array"));
        assert!(err("allow-unauthenticated = \"yes\"").contains("is a switch"));
        assert!(err("read-token = [\"a,b\"]").contains("holds a comma"));
        assert!(err("not toml = = 1").contains("not valid TOML"));
    }
}
