//! The models stored sessions used, for the start-up check that each has a price.

use super::query_scalar;
use super::{Db, Result};

impl Db {
    /// Every distinct model name in the stored tokens, sorted. One pass over
    /// `session_tokens`, whose rows are per session, signal and model (not per request).
    pub async fn token_models(&self) -> Result<Vec<String>> {
        query_scalar("SELECT DISTINCT model FROM session_tokens ORDER BY model")
            .fetch_all(&self.pool)
            .await
    }
}
