//! What each page a backfill fetches means: the REST API's objects turned into the same
//! [`Op`]s a webhook delivery of them would write — a pull request is read as a
//! `pull_request` event's, a deployment as a `deployment` event's, a commit status as a
//! `status` event's, and so on, through the webhook's own parser and plan — and the
//! pages a page leads to. Pure: no I/O.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::github::events::{ApiCommit, Event, PayloadError};
use crate::github::plan;
use crate::ids::url_encode;
use crate::store::backfill::PageRef;
use crate::store::github::Op;

/// Items asked for per page (GitHub's maximum).
const PER_PAGE: usize = 100;

/// The kinds of page, as stored.
pub const PULLS: &str = "pulls";
pub const PULL_COMMITS: &str = "pull_commits";
pub const STATUSES: &str = "statuses";
pub const CHECK_RUNS: &str = "check_runs";
pub const COMMITS: &str = "commits";
pub const DEPLOYMENTS: &str = "deployments";
pub const DEPLOYMENT_STATUSES: &str = "deployment_statuses";
pub const INCIDENTS: &str = "incidents";

/// What a backfill of one repository fetches and how it reads it.
#[derive(Debug, Clone)]
pub struct Scope {
    /// `owner/name`, lowercase.
    pub repo: String,
    /// Pull requests updated, commits made, deployments created and incidents updated
    /// before this are left out.
    pub since_ns: i64,
    pub incident_label: String,
}

/// What one page held.
#[derive(Debug, Default)]
pub struct Read {
    pub ops: Vec<Op>,
    /// Pages it leads to: the next page of its listing, and per pull request and per
    /// deployment the listings under them.
    pub children: Vec<PageRef>,
    /// A pull request's commits listed on this page: its number, the position of the
    /// first, and their SHAs in order.
    pub pull_commits: Option<(i64, i64, Vec<String>)>,
}

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("GitHub {route}: the page is not the documented shape: {source}")]
    Shape {
        route: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("GitHub {route}: {source}")]
    Payload {
        route: String,
        #[source]
        source: PayloadError,
    },
    #[error("backfill page {route}: unknown kind {kind:?}")]
    Kind { route: String, kind: String },
}

/// Whether `repo` is `owner/name` as GitHub spells them (letters, digits, `-`, `_`,
/// `.`), so it can only ever be two segments of a route.
pub fn routable(repo: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    matches!(repo.split_once('/'), Some((owner, name)) if ok(owner) && ok(name))
}

/// The first pages of a backfill: the repository's pull requests, default-branch commits,
/// deployments and incidents.
pub fn seeds(scope: &Scope) -> Vec<PageRef> {
    let repo = &scope.repo;
    let since =
        crate::time::rfc3339(Some(scope.since_ns), chrono::SecondsFormat::Secs).unwrap_or_default();
    vec![
        page(
            PULLS,
            format!(
                "/repos/{repo}/pulls?state=all&sort=updated&direction=desc&per_page={PER_PAGE}"
            ),
            json!({}),
        ),
        page(
            COMMITS,
            format!(
                "/repos/{repo}/commits?since={}&per_page={PER_PAGE}",
                url_encode(&since)
            ),
            json!({}),
        ),
        page(
            DEPLOYMENTS,
            format!("/repos/{repo}/deployments?per_page={PER_PAGE}"),
            json!({}),
        ),
        page(
            INCIDENTS,
            format!(
                "/repos/{repo}/issues?labels={}&state=all&since={}&per_page={PER_PAGE}",
                url_encode(&scope.incident_label),
                url_encode(&since)
            ),
            json!({}),
        ),
    ]
}

/// Reads a fetched page: its ops and the pages it leads to (`next`: its listing's next
/// page, as a route).
pub fn read(
    scope: &Scope,
    p: &PageRef,
    body: &str,
    next: Option<String>,
) -> Result<Read, ReadError> {
    let shape = |source| ReadError::Shape {
        route: p.route.clone(),
        source,
    };
    let payload = |source| ReadError::Payload {
        route: p.route.clone(),
        source,
    };
    let context: Value = serde_json::from_str(&p.context).map_err(shape)?;
    let repo = &scope.repo;
    let repository = json!({ "full_name": repo });
    let mut out = Read::default();
    let mut next_context = context.clone();
    // Whether the listing goes on past this page (newest-first listings stop at `since`).
    let mut more = true;
    match p.kind.as_str() {
        PULLS => {
            let items: Vec<Value> = serde_json::from_str(body).map_err(shape)?;
            for item in items {
                if time_of(&item, "updated_at").is_some_and(|t| t < scope.since_ns) {
                    more = false;
                    continue;
                }
                let number = item["number"].as_i64();
                let head = item["head"]["sha"].as_str().map(str::to_ascii_lowercase);
                let event =
                    json!({"action": "edited", "pull_request": item, "repository": repository});
                out.ops
                    .extend(parse_plan("pull_request", &event, scope).map_err(payload)?);
                if let (Some(number), Some(head)) = (number, head) {
                    out.children.push(page(
                        PULL_COMMITS,
                        format!("/repos/{repo}/pulls/{number}/commits?per_page={PER_PAGE}"),
                        json!({"number": number, "offset": 0}),
                    ));
                    out.children.push(page(
                        STATUSES,
                        format!("/repos/{repo}/commits/{head}/statuses?per_page={PER_PAGE}"),
                        json!({"sha": head}),
                    ));
                    out.children.push(page(
                        CHECK_RUNS,
                        format!("/repos/{repo}/commits/{head}/check-runs?per_page={PER_PAGE}"),
                        json!({"sha": head}),
                    ));
                }
            }
        }
        PULL_COMMITS | COMMITS => {
            let items: Vec<ApiCommit> = serde_json::from_str(body).map_err(shape)?;
            let mut shas = Vec::with_capacity(items.len());
            for c in &items {
                out.ops.extend(plan::api_commit(repo, c).map_err(payload)?);
                shas.push(c.sha.to_ascii_lowercase());
            }
            if p.kind == PULL_COMMITS {
                let number = context["number"].as_i64().unwrap_or(0);
                let offset = context["offset"].as_i64().unwrap_or(0);
                next_context = json!({"number": number, "offset": offset + shas.len() as i64});
                out.pull_commits = Some((number, offset, shas));
            }
        }
        STATUSES => {
            let items: Vec<Value> = serde_json::from_str(body).map_err(shape)?;
            let sha = context["sha"].as_str().unwrap_or_default();
            for mut item in items {
                item["sha"] = json!(sha);
                item["repository"] = repository.clone();
                out.ops
                    .extend(parse_plan("status", &item, scope).map_err(payload)?);
            }
        }
        CHECK_RUNS => {
            #[derive(Deserialize)]
            struct List {
                check_runs: Vec<Value>,
            }
            let list: List = serde_json::from_str(body).map_err(shape)?;
            for item in list.check_runs {
                let event =
                    json!({"action": "completed", "check_run": item, "repository": repository});
                out.ops
                    .extend(parse_plan("check_run", &event, scope).map_err(payload)?);
            }
        }
        DEPLOYMENTS => {
            let items: Vec<Value> = serde_json::from_str(body).map_err(shape)?;
            for item in items {
                if time_of(&item, "created_at").is_some_and(|t| t < scope.since_ns) {
                    more = false;
                    continue;
                }
                let id = item["id"].as_i64();
                let deployment = json!({
                    "id": item["id"], "sha": item["sha"], "ref": item["ref"],
                    "environment": item["environment"], "created_at": item["created_at"],
                });
                let event =
                    json!({"action": "created", "deployment": item, "repository": repository});
                out.ops
                    .extend(parse_plan("deployment", &event, scope).map_err(payload)?);
                if let Some(id) = id {
                    out.children.push(page(
                        DEPLOYMENT_STATUSES,
                        format!("/repos/{repo}/deployments/{id}/statuses?per_page={PER_PAGE}"),
                        json!({ "deployment": deployment }),
                    ));
                }
            }
        }
        DEPLOYMENT_STATUSES => {
            let items: Vec<Value> = serde_json::from_str(body).map_err(shape)?;
            for item in items {
                let event = json!({"action": "created", "deployment_status": item,
                    "deployment": context["deployment"], "repository": repository});
                out.ops
                    .extend(parse_plan("deployment_status", &event, scope).map_err(payload)?);
            }
        }
        INCIDENTS => {
            let items: Vec<Value> = serde_json::from_str(body).map_err(shape)?;
            // The issues listing holds pull requests too; theirs are not incidents.
            for item in items
                .into_iter()
                .filter(|i| i.get("pull_request").is_none())
            {
                let event = json!({"action": "edited", "issue": item, "repository": repository});
                out.ops
                    .extend(parse_plan("issues", &event, scope).map_err(payload)?);
            }
        }
        other => {
            return Err(ReadError::Kind {
                route: p.route.clone(),
                kind: other.to_string(),
            });
        }
    }
    if let (true, Some(next)) = (more, next) {
        out.children.insert(
            0,
            PageRef {
                kind: p.kind.clone(),
                route: next,
                context: next_context.to_string(),
            },
        );
    }
    Ok(out)
}

/// An API object read as the webhook event that carries it, planned as that delivery.
fn parse_plan(event: &str, payload: &Value, scope: &Scope) -> Result<Vec<Op>, PayloadError> {
    let e = Event::parse(event, payload.to_string().as_bytes())?;
    plan::plan(&e, &scope.incident_label)
}

fn page(kind: &str, route: String, context: Value) -> PageRef {
    PageRef {
        kind: kind.to_string(),
        route,
        context: context.to_string(),
    }
}

fn time_of(item: &Value, field: &str) -> Option<i64> {
    item[field].as_str().and_then(crate::time::parse_rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            repo: "acme/widgets".into(),
            since_ns: crate::time::parse_rfc3339("2026-11-01T00:00:00Z").unwrap(),
            incident_label: "sev 1".into(),
        }
    }

    #[test]
    fn seeds_name_the_four_listings_with_since_and_label_encoded() {
        let routes: Vec<String> = seeds(&scope()).into_iter().map(|p| p.route).collect();
        assert_eq!(
            routes,
            [
                "/repos/acme/widgets/pulls?state=all&sort=updated&direction=desc&per_page=100",
                "/repos/acme/widgets/commits?since=2026-11-01T00%3A00%3A00Z&per_page=100",
                "/repos/acme/widgets/deployments?per_page=100",
                "/repos/acme/widgets/issues?labels=sev%201&state=all&since=2026-11-01T00%3A00%3A00Z&per_page=100",
            ]
        );
    }

    #[test]
    fn a_newest_first_listing_stops_at_since() {
        let s = scope();
        let p = page(
            DEPLOYMENTS,
            "/repos/acme/widgets/deployments?per_page=100".into(),
            json!({}),
        );
        let body = json!([
            {"id": 2, "sha": "a100000000000000000000000000000000000000", "ref": "main",
             "environment": "production", "created_at": "2026-11-02T00:00:00Z"},
            {"id": 1, "sha": "a200000000000000000000000000000000000000", "ref": "main",
             "environment": "production", "created_at": "2026-10-02T00:00:00Z"},
        ])
        .to_string();
        let read = read(
            &s,
            &p,
            &body,
            Some("/repos/acme/widgets/deployments?page=2".into()),
        )
        .unwrap();
        // Only deployment 2 (its row and its link), its statuses, and no next page.
        assert_eq!(read.ops.len(), 2);
        let routes: Vec<&str> = read.children.iter().map(|c| c.route.as_str()).collect();
        assert_eq!(
            routes,
            ["/repos/acme/widgets/deployments/2/statuses?per_page=100"]
        );
    }

    #[test]
    fn a_commit_names_every_parent() {
        let s = scope();
        let p = page(COMMITS, "/repos/acme/widgets/commits".into(), json!({}));
        let body = json!([{"sha": "c100000000000000000000000000000000000000",
            "commit": {"message": "Merge", "author": {"name": "Dev", "email": "dev@acme.example",
                "date": "2026-11-03T00:00:00Z"}},
            "author": {"login": "dev"},
            "parents": [{"sha": "a100000000000000000000000000000000000000"},
                        {"sha": "b100000000000000000000000000000000000000"}]}])
        .to_string();
        let read = read(&s, &p, &body, None).unwrap();
        let parents: Vec<&str> = read
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Link(l) if l.relation == "parent" => Some(l.to_key.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            parents,
            [
                "acme/widgets@a100000000000000000000000000000000000000",
                "acme/widgets@b100000000000000000000000000000000000000"
            ]
        );
    }
}
