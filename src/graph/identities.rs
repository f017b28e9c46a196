//! People across systems: a commit author (GitHub login, email, the noreply form
//! `ID+login@users.noreply.github.com`) and an agent session's user (email, agent user
//! ID) are the same person when they share an email, a login, or an entry of the
//! identities file (`--identities`, TOML):
//!
//! ```toml
//! [[person]]
//! login = "dev"
//! emails = ["dev@acme.example"]
//! agent_ids = ["usr_60ebb16b39a4a540b62e6c3d"]
//! teams = ["payments"]
//!
//! [[team]]
//! name = "payments"
//! repos = ["acme/checkout"]
//! ```
//!
//! Teams (for the analytics API) are a person's `teams`, and the team owning a
//! repository (`[[team]] repos`): each repository is owned by one team at most.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    person: Vec<Entry>,
    #[serde(default)]
    team: Vec<TeamEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    login: String,
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    agent_ids: Vec<String>,
    #[serde(default)]
    teams: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamEntry {
    name: String,
    #[serde(default)]
    repos: Vec<String>,
    /// Spend per calendar month (UTC) that `GET /api/v1/alerts` warns at 80% and 100% of.
    monthly_budget_usd: Option<f64>,
}

/// The team of whatever no person's or repository's team claims.
pub const UNASSIGNED: &str = "unassigned";

/// Lookups from emails and agent user IDs to GitHub logins.
#[derive(Debug, Default, Clone)]
pub struct Identities {
    login_by_email: HashMap<String, String>,
    login_by_agent_id: HashMap<String, String>,
    emails_by_login: HashMap<String, Vec<String>>,
    agent_ids_by_login: HashMap<String, Vec<String>>,
    teams_by_login: HashMap<String, Vec<String>>,
    team_by_repo: HashMap<String, String>,
    budgets: std::collections::BTreeMap<String, f64>,
}

/// A team's name as the file gives it, trimmed; never empty nor [`UNASSIGNED`].
fn team_name(name: &str) -> anyhow::Result<String> {
    let t = name.trim();
    anyhow::ensure!(!t.is_empty(), "a team name is empty");
    anyhow::ensure!(
        t != UNASSIGNED,
        "{UNASSIGNED:?} is the team of those without one; it cannot be named"
    );
    Ok(t.to_string())
}

/// The login of a GitHub noreply address (`12345+login@users.noreply.github.com`).
pub fn noreply_login(email: &str) -> Option<String> {
    let local = email
        .trim()
        .to_ascii_lowercase()
        .strip_suffix("@users.noreply.github.com")?
        .to_string();
    let login = local.split_once('+').map_or(local.as_str(), |(_, l)| l);
    (!login.is_empty()).then(|| login.to_string())
}

impl Identities {
    /// The same people, known by the pseudonyms of their emails and agent user ids
    /// (`--pseudonymize-users`), as telemetry and commits arrive.
    pub fn pseudonymized(self, p: &crate::pseudonym::Pseudonyms) -> Self {
        let mut out = Identities {
            teams_by_login: self.teams_by_login,
            team_by_repo: self.team_by_repo,
            budgets: self.budgets,
            ..Identities::default()
        };
        for (login, emails) in self.emails_by_login {
            for e in emails {
                let e = p.email(&e);
                out.login_by_email.insert(e.clone(), login.clone());
                out.emails_by_login
                    .entry(login.clone())
                    .or_default()
                    .push(e);
            }
        }
        for (login, ids) in self.agent_ids_by_login {
            for a in ids {
                let a = p.user_id(&a);
                out.login_by_agent_id.insert(a.clone(), login.clone());
                out.agent_ids_by_login
                    .entry(login.clone())
                    .or_default()
                    .push(a);
            }
        }
        out
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading identities file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("identities file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: File = toml::from_str(text)?;
        let mut ids = Identities::default();
        for p in file.person {
            let login = p.login.trim().to_ascii_lowercase();
            anyhow::ensure!(!login.is_empty(), "a [[person]] has an empty login");
            for e in &p.emails {
                let e = e.trim().to_ascii_lowercase();
                ids.login_by_email.insert(e.clone(), login.clone());
                ids.emails_by_login
                    .entry(login.clone())
                    .or_default()
                    .push(e);
            }
            for a in &p.agent_ids {
                ids.login_by_agent_id
                    .insert(a.trim().to_string(), login.clone());
                ids.agent_ids_by_login
                    .entry(login.clone())
                    .or_default()
                    .push(a.trim().to_string());
            }
            for t in &p.teams {
                let t = team_name(t).with_context(|| format!("person {login:?}"))?;
                let teams = ids.teams_by_login.entry(login.clone()).or_default();
                if !teams.contains(&t) {
                    teams.push(t);
                }
            }
        }
        for t in file.team {
            let name = team_name(&t.name)?;
            if let Some(b) = t.monthly_budget_usd {
                anyhow::ensure!(
                    b.is_finite() && b > 0.0,
                    "team {name:?}: monthly_budget_usd must be a positive number of dollars, not {b}"
                );
                anyhow::ensure!(
                    ids.budgets.insert(name.clone(), b).is_none(),
                    "team {name:?} has two budgets"
                );
            }
            for r in &t.repos {
                let repo = r.trim().to_ascii_lowercase();
                anyhow::ensure!(
                    crate::ids::RepoName::parse(&repo).is_ok(),
                    "team {name:?}: {r:?} is not a repository (owner/name)"
                );
                if let Some(other) = ids.team_by_repo.insert(repo.clone(), name.clone())
                    && other != name
                {
                    anyhow::bail!(
                        "repository {repo} is owned by two teams: {other:?} and {name:?}"
                    );
                }
            }
        }
        Ok(ids)
    }

    /// The GitHub login an agent session's user is known by: from their email (the
    /// file, or GitHub's noreply form) or agent user ID.
    pub fn login_of(&self, email: Option<&str>, user_id: Option<&str>) -> Option<String> {
        let email = email
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty());
        email
            .as_deref()
            .and_then(|e| noreply_login(e).or_else(|| self.login_by_email.get(e).cloned()))
            .or_else(|| user_id.and_then(|u| self.login_by_agent_id.get(u.trim()).cloned()))
    }

    /// The teams a session or pull request counts for: its person's (a login), else its
    /// repository's owner, else [`UNASSIGNED`].
    pub fn teams_for(&self, login: Option<&str>, repo: Option<&str>) -> Vec<String> {
        let mut teams: Vec<String> = login.map(|l| self.teams_of(l).to_vec()).unwrap_or_default();
        if teams.is_empty() {
            teams.push(
                repo.and_then(|r| self.repo_team(r))
                    .unwrap_or(UNASSIGNED)
                    .to_string(),
            );
        }
        teams
    }

    /// Whether the file names this login as a person (with an email, an agent user ID
    /// or a team).
    pub fn knows(&self, login: &str) -> bool {
        self.emails_by_login.contains_key(login)
            || self.agent_ids_by_login.contains_key(login)
            || self.teams_by_login.contains_key(login)
    }

    /// The teams a person (a login) belongs to, as the file names them.
    pub fn teams_of(&self, login: &str) -> &[String] {
        self.teams_by_login
            .get(login)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Adds the teams GitHub lists (`--sync-teams`): `(org, team slug, login)`; a login
    /// gains each team it is not already in (the file's teams first).
    pub fn with_github_teams(mut self, members: &[(String, String, String)]) -> Self {
        for (_, team, login) in members {
            if team == UNASSIGNED {
                continue;
            }
            let teams = self
                .teams_by_login
                .entry(login.to_ascii_lowercase())
                .or_default();
            if !teams.contains(team) {
                teams.push(team.clone());
            }
        }
        self
    }

    /// Each team's members (logins) as the file lists them, by team name.
    pub fn members(
        &self,
    ) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
        let mut out: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        for (login, teams) in &self.teams_by_login {
            for t in teams {
                out.entry(t.clone()).or_default().insert(login.clone());
            }
        }
        out
    }

    /// Everything that decides whose a session is and which teams it counts for, in a
    /// stable order: what analytics' stored facts were computed from.
    pub fn fingerprint_text(&self) -> String {
        fn sorted<V: std::fmt::Debug>(m: &HashMap<String, V>) -> String {
            let mut v: Vec<_> = m.iter().collect();
            v.sort_by(|a, b| a.0.cmp(b.0));
            format!("{v:?}")
        }
        [
            sorted(&self.login_by_email),
            sorted(&self.login_by_agent_id),
            sorted(&self.teams_by_login),
            sorted(&self.team_by_repo),
        ]
        .join("\n")
    }

    /// Each team's monthly budget in US dollars, by name.
    pub fn budgets(&self) -> &std::collections::BTreeMap<String, f64> {
        &self.budgets
    }

    /// Every team the file names (of people, of repositories, with budgets), sorted.
    pub fn team_names(&self) -> std::collections::BTreeSet<String> {
        let mut out: std::collections::BTreeSet<String> = self.members().into_keys().collect();
        out.extend(self.team_by_repo.values().cloned());
        out.extend(self.budgets.keys().cloned());
        out
    }

    /// The repositories some team owns (lowercase), sorted.
    pub fn owned_repos(&self) -> Vec<String> {
        let mut out: Vec<String> = self.team_by_repo.keys().cloned().collect();
        out.sort();
        out
    }

    /// The team owning a repository (`owner/name`, any case).
    pub fn repo_team(&self, repo: &str) -> Option<&str> {
        self.team_by_repo
            .get(&repo.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The names a commit author goes by (`login:…`, `email:…`).
    pub fn commit_keys(&self, login: Option<&str>, email: Option<&str>) -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(l) = login.filter(|l| !l.trim().is_empty()) {
            keys.push(format!("login:{}", l.trim().to_ascii_lowercase()));
        }
        if let Some(e) = email
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
        {
            if let Some(l) = noreply_login(&e).or_else(|| self.login_by_email.get(&e).cloned()) {
                keys.push(format!("login:{l}"));
            }
            keys.push(format!("email:{e}"));
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// The names an agent session's user goes by (`login:…`, `email:…`).
    pub fn session_keys(&self, email: Option<&str>, user_id: Option<&str>) -> Vec<String> {
        let mut keys = Vec::new();
        if let Some(e) = email
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
        {
            if let Some(l) = noreply_login(&e).or_else(|| self.login_by_email.get(&e).cloned()) {
                keys.push(format!("login:{l}"));
            }
            keys.push(format!("email:{e}"));
        }
        if let Some(l) = user_id.and_then(|u| self.login_by_agent_id.get(u.trim())) {
            keys.push(format!("login:{l}"));
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Every email and agent user ID a person may appear under in telemetry.
    pub fn aliases(&self, person: &str) -> (Vec<String>, Vec<String>) {
        let mut emails = self
            .emails_by_login
            .get(person)
            .cloned()
            .unwrap_or_default();
        if person.contains('@') {
            emails.push(person.to_string());
        }
        let ids = self
            .agent_ids_by_login
            .get(person)
            .cloned()
            .unwrap_or_default();
        (emails, ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_match_across_systems() {
        let ids = Identities::parse(
            "[[person]]\nlogin = \"Dev\"\nemails = [\"dev@acme.example\"]\nagent_ids = [\"usr_60eb\"]\n",
        )
        .unwrap();
        let shares = |a: &[String], b: &[String]| a.iter().any(|k| b.contains(k));
        let noreply = ids.commit_keys(None, Some("12345+dev@users.noreply.github.com"));
        assert!(noreply.contains(&"login:dev".to_string()));
        let by_email = ids.commit_keys(Some("someone"), Some("DEV@acme.example"));
        assert!(
            shares(&by_email, &ids.session_keys(None, Some("usr_60eb"))),
            "agent id → login"
        );
        assert!(
            shares(&noreply, &ids.session_keys(Some("dev@acme.example"), None)),
            "email → login"
        );
        let stranger = Identities::default();
        assert!(shares(
            &stranger.commit_keys(Some("x"), Some("a@b.io")),
            &stranger.session_keys(Some("A@B.io"), None)
        ));
        assert!(!shares(
            &stranger.commit_keys(Some("x"), Some("a@b.io")),
            &stranger.session_keys(Some("c@b.io"), Some("usr_1"))
        ));
        assert_eq!(
            ids.aliases("dev"),
            (
                vec!["dev@acme.example".to_string()],
                vec!["usr_60eb".to_string()]
            )
        );
        assert!(Identities::parse("[[person]]\nlogin = \"\"\n").is_err());
        assert!(Identities::parse("not toml [").is_err());
    }

    #[test]
    fn teams_of_people_and_repositories() {
        let ids = Identities::parse(
            "[[person]]\nlogin = \"Dev\"\nemails = [\"dev@acme.example\"]\nteams = [\"payments\", \" search \"]\n\n\
             [[team]]\nname = \"platform\"\nrepos = [\"Acme/Infra\"]\n",
        )
        .unwrap();
        assert_eq!(
            ids.login_of(Some("DEV@acme.example"), None).as_deref(),
            Some("dev")
        );
        assert_eq!(ids.teams_of("dev"), ["payments", "search"]);
        assert!(ids.teams_of("stranger").is_empty());
        assert_eq!(ids.repo_team("acme/infra"), Some("platform"));
        let err = |text: &str| format!("{:#}", Identities::parse(text).unwrap_err());
        assert!(err("[[team]]\nname = \"a\"\nrepos = [\"x/y\"]\n[[team]]\nname = \"b\"\nrepos = [\"X/Y\"]\n")
            .contains("repository x/y is owned by two teams"));
        assert!(err("[[team]]\nname = \"unassigned\"\n").contains("cannot be named"));
        assert!(err("[[team]]\nname = \"a\"\nrepos = [\"nope\"]\n").contains("not a repository"));
        assert!(
            err("[[person]]\nlogin = \"a\"\nteam = [\"x\"]\n").contains("unknown field `team`")
        );
    }
}
