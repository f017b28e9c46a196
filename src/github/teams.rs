//! `--sync-teams`: GitHub team membership, read through the App at start and added to the
//! identities file's teams (a team is known by its slug). Each organisation the App is
//! installed on is read at most once a day (`github_team_members` keeps the last
//! reading); when GitHub cannot be reached, or the App may not read teams, the last
//! reading is used and the failure is logged.

use crate::github::app::GithubApp;
use crate::store::{Conn, Db};

/// How long a reading of an organisation's teams is used before it is read again.
pub const REFRESH_NS: i64 = 24 * 3_600 * 1_000_000_000;

/// Reads the teams of every organisation whose last reading is older than a day, and
/// returns every membership known: `(org, team slug, login)`.
pub async fn sync(
    app: &GithubApp,
    db: &Db,
    conn: &mut Conn,
    now_ns: i64,
) -> anyhow::Result<Vec<(String, String, String)>> {
    match app.org_installations().await {
        Ok(orgs) => {
            for (installation, org) in orgs {
                let fresh = db
                    .github_teams_read_at(&org)
                    .await?
                    .is_some_and(|at| now_ns - at < REFRESH_NS);
                if fresh {
                    continue;
                }
                match read_org(app, installation, &org).await {
                    Ok(members) => {
                        tracing::info!(org, memberships = members.len(), "read GitHub teams");
                        conn.put_github_teams(&org, &members, now_ns).await?;
                    }
                    Err(e) => tracing::warn!(
                        org,
                        error = %format!("{e:#}"),
                        "reading GitHub teams failed (does the App have the organisation permission \"Members: read\"?); the last reading is used"
                    ),
                }
            }
        }
        Err(e) => tracing::warn!(
            error = %format!("{e:#}"),
            "listing the App's installations failed; the last reading of GitHub teams is used"
        ),
    }
    Ok(db.github_team_members().await?)
}

/// `(team slug, login)` of every member of every team of `org`.
async fn read_org(
    app: &GithubApp,
    installation: u64,
    org: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for slug in app.org_teams(installation, org).await? {
        for login in app.team_members(installation, org, &slug).await? {
            out.push((slug.clone(), login));
        }
    }
    Ok(out)
}
