//! Moving an installation between engines (`tracelink migrate-data`): every row of
//! every table, read in one read transaction of the source (a consistent snapshot, also
//! while `serve` runs there) and written in one transaction of the destination (all or
//! nothing), then counted on both sides.

use std::collections::HashMap;

use anyhow::{Context, bail};
use futures_util::TryStreamExt;
use sqlx::any::AnyTypeInfoKind;
use sqlx::{Connection, Row, TypeInfo, ValueRef};

use super::{Conn, Db, Engine, query, query_scalar};

/// Values per multi-row INSERT (PostgreSQL takes at most 65,535 parameters).
const VALUES_PER_INSERT: usize = 20_000;

/// One table's rows, as counted on both sides after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    pub table: String,
    pub source_rows: i64,
    pub destination_rows: i64,
}

/// A column's type in the destination, which decides how a value is bound (and what
/// type a NULL has: PostgreSQL does not cast a NULL bigint into a text column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Integer,
    Real,
    Text,
    Bytes,
}

impl Db {
    /// The tables of the schema (not the migrations' own), parents before the tables
    /// whose foreign keys name them.
    pub async fn table_names(&self) -> super::Result<Vec<String>> {
        let mut names: Vec<String> = query_scalar(match self.engine {
            Engine::Sqlite => {
                "SELECT name FROM sqlite_schema WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name"
            }
            // Partitions are their table's (raw_records); copying goes to the table.
            Engine::Postgres => {
                "SELECT CAST(c.relname AS TEXT) FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
                 AND NOT c.relispartition AND c.relname <> '_sqlx_migrations' ORDER BY c.relname"
            }
        })
        .fetch_all(&self.pool)
        .await?;
        // The only tables others reference (their foreign keys) come first.
        names.sort_by_key(|n| (!matches!(n.as_str(), "sessions" | "ci_uploads"), n.clone()));
        Ok(names)
    }

    /// A table's columns in order, with their types.
    pub(super) async fn columns(&self, table: &str) -> super::Result<Vec<(String, Kind)>> {
        let rows: Vec<(String, String)> = match self.engine {
            Engine::Sqlite => {
                super::query_as(format!(
                    "SELECT name, type FROM pragma_table_info('{}') ORDER BY cid",
                    table.replace('\'', "''")
                ))
                .fetch_all(&self.pool)
                .await?
            }
            Engine::Postgres => {
                super::query_as(
                    "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT) \
                     FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = ? \
                     ORDER BY ordinal_position",
                )
                .bind(table)
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(name, ty)| {
                let ty = ty.to_ascii_lowercase();
                let kind = if ty.contains("int") {
                    Kind::Integer
                } else if ty.contains("real") || ty.contains("double") || ty.contains("float") {
                    Kind::Real
                } else if ty.contains("blob") || ty.contains("bytea") {
                    Kind::Bytes
                } else {
                    Kind::Text
                };
                (name, kind)
            })
            .collect())
    }

    /// Rows in one of [`Db::table_names`]' tables (a partitioned table's in all its
    /// partitions).
    pub async fn table_rows(&self, table: &str) -> super::Result<i64> {
        query_scalar(format!("SELECT count(*) FROM {}", ident(table)))
            .fetch_one(&self.pool)
            .await
    }
}

/// A table or column name as an SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One value read from the source.
#[derive(Debug, Clone)]
enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

fn read_value(row: &sqlx::any::AnyRow, i: usize) -> anyhow::Result<Value> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().kind();
    Ok(match kind {
        AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
            Value::Integer(row.try_get::<i64, _>(i)?)
        }
        AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => Value::Real(row.try_get::<f64, _>(i)?),
        AnyTypeInfoKind::Bool => Value::Integer(i64::from(row.try_get::<bool, _>(i)?)),
        AnyTypeInfoKind::Text => Value::Text(row.try_get::<String, _>(i)?),
        AnyTypeInfoKind::Blob => Value::Bytes(row.try_get::<Vec<u8>, _>(i)?),
        other => bail!("a value of type {other:?} ({})", raw.type_info().name()),
    })
}

/// Binds `v` as the destination column's type wants it; a mismatch is an error naming
/// the value, never a silent conversion.
fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    v: Value,
    kind: Kind,
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>, String> {
    Ok(match (kind, v) {
        (Kind::Integer, Value::Null) => q.bind(None::<i64>),
        (Kind::Real, Value::Null) => q.bind(None::<f64>),
        (Kind::Text, Value::Null) => q.bind(None::<String>),
        (Kind::Bytes, Value::Null) => q.bind(None::<Vec<u8>>),
        (Kind::Integer, Value::Integer(i)) => q.bind(i),
        (Kind::Integer, Value::Real(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => q.bind(f as i64),
        (Kind::Real, Value::Real(f)) => q.bind(f),
        (Kind::Real, Value::Integer(i)) => q.bind(i as f64),
        (Kind::Text, Value::Text(s)) => q.bind(s),
        (Kind::Bytes, Value::Bytes(b)) => q.bind(b),
        (Kind::Bytes, Value::Text(s)) => q.bind(s.into_bytes()),
        (kind, v) => return Err(format!("{v:?} cannot go into a {kind:?} column")),
    })
}

/// Copies every row of `from` into `to`, which must hold no rows yet (its schema
/// migrated). Returns each table's counts on both sides, which the caller compares.
pub async fn copy_all(
    from: &Db,
    to_db: &Db,
    to: &mut Conn,
    mut progress: impl FnMut(&str, i64),
) -> anyhow::Result<Vec<CopiedTable>> {
    let tables = from
        .table_names()
        .await
        .context("listing the source's tables")?;
    let dest_tables = to_db
        .table_names()
        .await
        .context("listing the destination's tables")?;
    for t in &tables {
        if !dest_tables.contains(t) {
            bail!(
                "the destination has no table {t}: are both at the same tracelink version? (run `tracelink migrate` on each)"
            );
        }
    }
    for t in &dest_tables {
        let n = to_db.table_rows(t).await?;
        if n > 0 {
            bail!(
                "the destination already holds data ({n} rows in {t}): migrate-data copies into an empty database only"
            );
        }
    }
    let mut reader = from.pool.acquire().await?;
    let mut snapshot = reader.begin().await.context("starting the source's read")?;
    let mut tx = to.conn.begin().await?;
    for table in &tables {
        let src_cols = from.columns(table).await?;
        let dest_cols: HashMap<String, Kind> = to_db.columns(table).await?.into_iter().collect();
        let mut kinds = Vec::with_capacity(src_cols.len());
        for (c, _) in &src_cols {
            match dest_cols.get(c) {
                Some(k) => kinds.push(*k),
                None => bail!("the destination's {table} has no column {c}"),
            }
        }
        let names: Vec<String> = src_cols.iter().map(|(c, _)| ident(c)).collect();
        let select = format!("SELECT {} FROM {}", names.join(", "), ident(table));
        let per_insert = (VALUES_PER_INSERT / names.len().max(1)).max(1);
        let mut pending: Vec<Vec<Value>> = Vec::with_capacity(per_insert);
        let mut copied = 0i64;
        {
            let mut rows = query(&select).fetch(&mut *snapshot);
            while let Some(row) = rows.try_next().await? {
                let mut values = Vec::with_capacity(names.len());
                for (i, (col, _)) in src_cols.iter().enumerate() {
                    values.push(
                        read_value(&row, i).with_context(|| format!("reading {table}.{col}"))?,
                    );
                }
                pending.push(values);
                if pending.len() == per_insert {
                    copied += insert(&mut tx, table, &names, &kinds, &mut pending).await?;
                    progress(table, copied);
                }
            }
        }
        copied += insert(&mut tx, table, &names, &kinds, &mut pending).await?;
        progress(table, copied);
    }
    if to.engine == Engine::Postgres {
        advance_identities(&mut tx).await?;
        // The digests that recognise a re-sent request live beside the records there
        // (super::partitions).
        query(
            "INSERT INTO raw_digests (digest, received_ns) \
             SELECT digest, min(received_ns) FROM raw_records WHERE digest IS NOT NULL \
             GROUP BY digest ON CONFLICT DO NOTHING",
        )
        .execute(&mut *tx)
        .await
        .context("recording the copied requests' digests")?;
    }
    tx.commit().await.context("committing the copy")?;
    snapshot.rollback().await.ok();
    drop(reader);
    let mut out = Vec::with_capacity(tables.len());
    for table in tables {
        out.push(CopiedTable {
            source_rows: from.table_rows(&table).await?,
            destination_rows: to_db.table_rows(&table).await?,
            table,
        });
    }
    Ok(out)
}

async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    names: &[String],
    kinds: &[Kind],
    rows: &mut Vec<Vec<Value>>,
) -> anyhow::Result<i64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let one = format!("({})", vec!["?"; names.len()].join(", "));
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        ident(table),
        names.join(", "),
        vec![one.as_str(); rows.len()].join(", ")
    );
    let n = rows.len() as i64;
    let mut q = query(&sql);
    for row in rows.drain(..) {
        for (v, (kind, col)) in row.into_iter().zip(kinds.iter().zip(names)) {
            q = bind(q, v, *kind).map_err(|e| anyhow::anyhow!("{table}.{col}: {e}"))?;
        }
    }
    q.execute(&mut **tx)
        .await
        .with_context(|| format!("writing rows of {table}"))?;
    Ok(n)
}

/// Moves every identity column's sequence past the largest id copied in, so the next
/// generated id does not collide with a copied one.
async fn advance_identities(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> anyhow::Result<()> {
    let columns: Vec<(String, String)> = super::query_as(
        "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) FROM information_schema.columns \
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
    )
    .fetch_all(&mut **tx)
    .await?;
    for (table, column) in columns {
        query(format!(
            "SELECT setval(pg_get_serial_sequence(?, ?), max({c})) FROM {t} HAVING max({c}) IS NOT NULL",
            c = ident(&column),
            t = ident(&table)
        ))
        .bind(table.clone())
        .bind(column.clone())
        .execute(&mut **tx)
        .await
        .with_context(|| format!("advancing {table}.{column}'s sequence"))?;
    }
    Ok(())
}
