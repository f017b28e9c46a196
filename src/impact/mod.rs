//! Where the stages meet for a query: loads a neighbourhood through the store, links it
//! ([`crate::graph`]), computes the metrics ([`crate::metrics`]) and returns the model
//! the outputs render. The API, the gRPC service, the publisher and the CLI all build
//! their reports here, so they agree.

pub mod analytics;
pub mod ci;
pub mod dora;
pub mod lines;
pub mod pull;
pub mod session;

use std::collections::BTreeMap;

use crate::graph::links::LinkConfig;
use crate::metrics::cost::Size;
use crate::metrics::pull::parse_patch;
use crate::pricing::PriceTable;
use crate::store::{self, Db};

/// What building a report needs besides the database.
#[derive(Clone, Debug)]
pub struct ReportContext {
    pub prices: PriceTable,
    pub links: LinkConfig,
    /// The environment of an incident that names none (`--incident-environment`).
    pub incident_environment: String,
    /// Whom comments name (`--comment-people`).
    pub comment_people: crate::report::markdown::CommentPeople,
    /// What comments show of cost (`--comment-cost`; unset: by visibility).
    pub comment_cost: Option<crate::report::markdown::CostShown>,
    /// Where analytics' and alerts' days begin (`--timezone`).
    pub zone: crate::time::Zone,
}

impl ReportContext {
    /// What `repo`'s comments and job summaries show of people and cost (its
    /// visibility as deliveries said; unknown counts as public).
    pub async fn comment_view(&self, db: &Db, repo: &str) -> crate::report::markdown::View {
        let private = match db.served_repo(repo).await {
            Ok(r) => r.and_then(|r| r.private),
            Err(e) => {
                tracing::warn!(repo, error = %e, "reading a repository's visibility");
                None
            }
        };
        crate::report::markdown::View::of(self.comment_people, self.comment_cost, private)
    }
}

impl Default for ReportContext {
    fn default() -> Self {
        Self {
            prices: PriceTable::default(),
            links: LinkConfig::default(),
            incident_environment: "production".into(),
            comment_people: crate::report::markdown::CommentPeople::Logins,
            comment_cost: None,
            zone: crate::time::Zone::UTC,
        }
    }
}

/// The sizes of these commits (keys `owner/repo@sha`) whose patches are cached.
pub(crate) async fn commit_sizes<'a>(
    db: &Db,
    commits: impl Iterator<Item = &'a str>,
) -> store::Result<BTreeMap<String, Size>> {
    let mut by_repo: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for key in commits {
        if let Some((r, sha)) = key.rsplit_once('@') {
            by_repo.entry(r).or_default().push(sha.to_string());
        }
    }
    let mut sizes = BTreeMap::new();
    for (r, shas) in by_repo {
        for (sha, json) in db.commit_patches(r, &shas).await? {
            if let Some(files) = parse_patch(&json) {
                sizes.insert(
                    crate::ids::node::commit_str(r, &sha),
                    Size {
                        added: Some(files.iter().map(|f| f.additions).sum()),
                        removed: Some(files.iter().map(|f| f.deletions).sum()),
                    },
                );
            }
        }
    }
    Ok(sizes)
}
