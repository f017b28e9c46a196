//! An incident's root cause: the `root cause: <sha or deployment>` line of its body, and
//! what that names.

use crate::ids::CommitSha;

/// The `root cause: <sha or deployment>` line of an incident's body.
pub fn root_cause(body: &str) -> Option<String> {
    body.lines().find_map(|line| {
        let line = line.trim().trim_start_matches(['-', '*', '>', ' ']);
        let lower = line.to_ascii_lowercase();
        let rest = lower.strip_prefix("root cause")?;
        let rest = rest.trim_start().strip_prefix(':')?;
        let start = line.len() - rest.len();
        let value = line[start..].trim().trim_matches('`');
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// What a root cause names: a commit by full SHA, or a deployment by ID.
pub enum RootCause {
    Commit(CommitSha),
    Deployment(i64),
    Unresolved,
}

pub fn resolve_root_cause(value: &str) -> RootCause {
    if let Ok(sha) = CommitSha::parse(value) {
        return RootCause::Commit(sha);
    }
    let digits = value
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .trim_end_matches(|c: char| !c.is_ascii_digit());
    let lower = value.to_ascii_lowercase();
    let names_deployment = lower.contains("deploy")
        || value.starts_with('#')
        || value.chars().all(|c| c.is_ascii_digit());
    if let (true, Ok(id)) = (names_deployment, digits.parse::<i64>()) {
        return RootCause::Deployment(id);
    }
    RootCause::Unresolved
}
