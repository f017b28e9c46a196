//! Reads for `tracelink sessions`: what arrived recently and what it was linked to.

use super::query_as;
use std::collections::HashMap;

use super::{Db, Result, placeholders};

impl Db {
    /// How many commits each of these sessions is linked to (its stored `authored`
    /// links, inherited ones included); sessions without links are absent.
    pub async fn authored_link_counts(&self, keys: &[&str]) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        for chunk in keys.chunks(500) {
            let mut q = query_as::<(String, i64)>(format!(
                "SELECT from_key, count(*) FROM links WHERE from_kind = 'session' \
                 AND relation = 'authored' AND from_key IN ({}) GROUP BY from_key",
                placeholders(chunk.len())
            ));
            for k in chunk {
                q = q.bind(*k);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }
}
