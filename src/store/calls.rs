//! The call log: one row per connection, written when it starts and completed when it ends.

use sqlx::Row;

use super::{now_ms, Db, StoreError};

/// A finished call, as it is written to the log.
#[derive(Debug, Clone, Default)]
pub struct CallRecord<'a> {
    /// When the caller connected, in ms since the epoch.
    pub started_at: i64,
    pub transport: &'a str,
    pub peer: &'a str,
    pub node: Option<u16>,
    pub charset: Option<&'a str>,
    pub user_id: Option<i64>,
    /// Why it ended: `logoff`, `hangup`, `idle`, `busy`, `shutdown`, `login-failed`, ...
    pub end_reason: &'a str,
    /// Time spent in doors, in ms.
    pub door_ms: i64,
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
    /// Time spent in doors, in ms.
    pub door_ms: i64,
}

/// Writes a finished call to the log in one statement (nothing is written while a call is
/// in progress: the node registry shows live calls, and the connect path stays free of
/// database round trips).
pub async fn record(db: &Db, call: &CallRecord<'_>) -> Result<i64, StoreError> {
    let now = now_ms();
    let row = sqlx::query(
        "INSERT INTO calls (started_at, ended_at, duration_ms, transport, peer, node, charset, \
                            user_id, end_reason, door_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(call.started_at)
    .bind(now)
    .bind((now - call.started_at).max(0))
    .bind(call.transport)
    .bind(call.peer)
    .bind(call.node.map(i64::from))
    .bind(call.charset)
    .bind(call.user_id)
    .bind(call.end_reason)
    .bind(call.door_ms)
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get("id")?)
}

/// The most recent calls, newest first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<Call>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, started_at, ended_at, duration_ms, transport, peer, node, charset, user_id, \
                end_reason, door_ms \
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
                door_ms: r.try_get("door_ms")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::fresh_db;

    #[tokio::test]
    async fn a_call_is_logged_when_it_ends() {
        let t = fresh_db().await;
        let started_at = now_ms() - 1500;
        let id = record(
            &t.db,
            &CallRecord {
                started_at,
                transport: "telnet",
                peer: "127.0.0.1:5555",
                node: Some(3),
                charset: Some("atascii"),
                user_id: None,
                end_reason: "hangup",
                door_ms: 1234,
            },
        )
        .await
        .unwrap();
        let done = &recent(&t.db, 10).await.unwrap()[0];
        assert_eq!(done.id, id);
        assert_eq!(done.node, Some(3));
        assert_eq!(done.charset.as_deref(), Some("atascii"));
        assert_eq!(done.end_reason.as_deref(), Some("hangup"));
        assert!(done.duration_ms.unwrap() >= 1500);
        assert_eq!(done.transport, "telnet");
        assert_eq!(done.started_at, started_at);
        assert_eq!(done.door_ms, 1234);
    }
}
