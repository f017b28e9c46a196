//! Alerts posted to `--alert-webhook`, each once: claimed before the post, marked sent
//! after it.

use super::{Conn, Result, query, query_scalar};

/// An alert as the webhook ledger knows it.
#[derive(Debug, Clone, Copy)]
pub struct AlertKey<'a> {
    /// `YYYY-MM-DD` (UTC).
    pub day: &'a str,
    pub kind: &'a str,
    pub scope: &'a str,
    pub key: &'a str,
    pub level: &'a str,
}

impl Conn {
    /// Claims an alert for posting at `now_ns`: `true` when it was never claimed, or its
    /// claim is older than `stale_before_ns` and it was not sent (the replica posting it
    /// died, or the post failed).
    pub async fn claim_alert(
        &mut self,
        a: AlertKey<'_>,
        now_ns: i64,
        stale_before_ns: i64,
    ) -> Result<bool> {
        let claimed: Option<String> = query_scalar(
            "INSERT INTO alerts_sent (day, kind, scope, key, level, state, claimed_ns, attempts) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'sending', ?6, 1) \
             ON CONFLICT (day, kind, scope, key, level) DO UPDATE SET claimed_ns = ?6, \
             attempts = alerts_sent.attempts + 1 \
             WHERE alerts_sent.state = 'sending' AND alerts_sent.claimed_ns < ?7 \
             RETURNING day",
        )
        .bind(a.day)
        .bind(a.kind)
        .bind(a.scope)
        .bind(a.key)
        .bind(a.level)
        .bind(now_ns)
        .bind(stale_before_ns)
        .fetch_optional(&mut self.conn)
        .await?;
        Ok(claimed.is_some())
    }

    /// The alert was posted.
    pub async fn alert_sent(&mut self, a: AlertKey<'_>, now_ns: i64) -> Result<()> {
        self.alert_done(a, Some(now_ns), None).await
    }

    /// The post failed: the claim is given up, so the next round tries again.
    pub async fn alert_failed(&mut self, a: AlertKey<'_>, error: &str) -> Result<()> {
        self.alert_done(a, None, Some(error)).await
    }

    async fn alert_done(
        &mut self,
        a: AlertKey<'_>,
        sent_ns: Option<i64>,
        error: Option<&str>,
    ) -> Result<()> {
        query(
            "UPDATE alerts_sent SET state = CASE WHEN ?6 IS NULL THEN 'sending' ELSE 'sent' END, \
             sent_ns = ?6, error = ?7, claimed_ns = CASE WHEN ?6 IS NULL THEN 0 ELSE claimed_ns END \
             WHERE day = ?1 AND kind = ?2 AND scope = ?3 AND key = ?4 AND level = ?5",
        )
        .bind(a.day)
        .bind(a.kind)
        .bind(a.scope)
        .bind(a.key)
        .bind(a.level)
        .bind(sent_ns)
        .bind(error)
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }
}
