//! The call log: one row per connection, written when it starts and completed when it ends.

use sqlx::Row;

use super::{now_ms, Db, StoreError};

/// How a finished call is summed up.
#[derive(Debug, Clone, Default)]
pub struct CallSummary<'a> {
    pub node: Option<u16>,
    pub charset: Option<&'a str>,
    pub user_id: Option<i64>,
    /// Why it ended: `logoff`, `hangup`, `idle`, `busy`, `shutdown`, `login-failed`, ...
    pub end_reason: &'a str,
}

/// A stored call, as the sysop tools read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub id: i64,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub transport: String,
    pub peer: String,
    pub node: Option<i64>,
    pub charset: Option<String>,
    pub user_id: Option<i64>,
    pub end_reason: Option<String>,
}

/// Records the start of a call and returns its id.
pub async fn start(db: &Db, transport: &str, peer: &str) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO calls (started_at, transport, peer) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(now_ms())
    .bind(transport)
    .bind(peer)
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get("id")?)
}

/// Completes a call's row: end time, duration and what became known during it.
pub async fn finish(db: &Db, id: i64, summary: &CallSummary<'_>) -> Result<(), StoreError> {
    let now = now_ms();
    sqlx::query(
        "UPDATE calls SET ended_at = $1, duration_ms = $1 - started_at, node = $2, charset = $3, \
                          user_id = $4, end_reason = $5 \
         WHERE id = $6",
    )
    .bind(now)
    .bind(summary.node.map(i64::from))
    .bind(summary.charset)
    .bind(summary.user_id)
    .bind(summary.end_reason)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The most recent calls, newest first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<Call>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, started_at, ended_at, duration_ms, transport, peer, node, charset, user_id, \
                end_reason \
         FROM calls ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Call {
                id: r.try_get("id")?,
                started_at: r.try_get("started_at")?,
                ended_at: r.try_get("ended_at")?,
                duration_ms: r.try_get("duration_ms")?,
                transport: r.try_get("transport")?,
                peer: r.try_get("peer")?,
                node: r.try_get("node")?,
                charset: r.try_get("charset")?,
                user_id: r.try_get("user_id")?,
                end_reason: r.try_get("end_reason")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::fresh_db;

    #[tokio::test]
    async fn a_call_is_logged_from_start_to_finish() {
        let t = fresh_db().await;
        let id = start(&t.db, "telnet", "127.0.0.1:5555").await.unwrap();
        let open = recent(&t.db, 10).await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].ended_at, None);
        finish(
            &t.db,
            id,
            &CallSummary {
                node: Some(3),
                charset: Some("atascii"),
                user_id: None,
                end_reason: "hangup",
            },
        )
        .await
        .unwrap();
        let done = &recent(&t.db, 10).await.unwrap()[0];
        assert_eq!(done.node, Some(3));
        assert_eq!(done.charset.as_deref(), Some("atascii"));
        assert_eq!(done.end_reason.as_deref(), Some("hangup"));
        assert!(done.duration_ms.unwrap() >= 0);
        assert_eq!(done.transport, "telnet");
    }
}
