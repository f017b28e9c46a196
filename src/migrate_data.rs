//! `tracelink migrate-data`: moves an installation from SQLite to PostgreSQL and proves
//! the move: row counts per table, and every pull request's report built from both
//! databases compared whole.

use anyhow::{Context, bail};

use crate::ids::{PrNumber, RepoName};
use crate::impact::{ReportContext, pull};
use crate::store::{self, Engine, Location};

/// What a move did, for the command to print.
#[derive(Debug)]
pub struct Moved {
    pub tables: Vec<store::copy::CopiedTable>,
    /// Pull requests whose reports were built from both databases and compared.
    pub reports_compared: usize,
}

/// Copies `from` into `to` and verifies the copy; an error names the first difference.
pub async fn run(
    from: &Location,
    to: &Location,
    progress: impl FnMut(&str, i64),
) -> anyhow::Result<Moved> {
    if from.engine() != Engine::Sqlite || to.engine() != Engine::Postgres {
        bail!(
            "migrate-data moves a SQLite installation (--from FILE) to PostgreSQL (--to postgres://…)"
        );
    }
    if let Some(file) = from.file()
        && !file.exists()
    {
        bail!("no database at {}", file.display());
    }
    // Opening applies pending migrations on both sides, so their schemas are this
    // version's.
    let source = store::open(from).await.context("opening the source")?;
    let mut dest = store::open(to).await.context("opening the destination")?;
    let tables = store::copy::copy_all(&source.db, &dest.db, &mut dest.writer, progress).await?;
    for t in &tables {
        if t.source_rows != t.destination_rows {
            bail!(
                "{}: {} rows in the source, {} in the destination (the source changed while copying? the copy is of one snapshot; compare again with the service stopped)",
                t.table,
                t.source_rows,
                t.destination_rows
            );
        }
    }
    let ctx = ReportContext::default();
    let pulls = source.db.pull_request_keys().await?;
    for (repo, number) in &pulls {
        let Ok(name) = RepoName::parse(repo) else {
            continue;
        };
        let a = pull::build(&source.db, &ctx, &name, PrNumber(*number)).await?;
        let b = pull::build(&dest.db, &ctx, &name, PrNumber(*number)).await?;
        let a = a.map(|b| serde_json::to_value(&b.report)).transpose()?;
        let b = b.map(|b| serde_json::to_value(&b.report)).transpose()?;
        if a != b {
            bail!("the report of {repo}#{number} differs between the source and the destination");
        }
    }
    source.writer.close().await?;
    source.db.close().await;
    dest.writer.close().await?;
    dest.db.close().await;
    Ok(Moved {
        tables,
        reports_compared: pulls.len(),
    })
}
