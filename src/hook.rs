//! `tracelink hook install` (not yet written).

use std::path::Path;

pub fn install(_repo: &Path) -> anyhow::Result<String> {
    anyhow::bail!("tracelink hook install is not written yet")
}
