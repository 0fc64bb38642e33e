//! Mail between players and from the system: the SQL of `messages`.
//!
//! This module stores and reads messages; it does not validate them, decide who may send what,
//! or deliver anything later (that is `inbox` with the job table). A message is seen only by
//! its recipient: every read and change is keyed by `(id, to_player)`.

use sqlx::Row;

use super::players::{handle_key, Player};
use super::{Db, StoreError};

/// A stored message, with the sender's handle when a player sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub id: i64,
    pub to_player: i64,
    pub from_player: Option<i64>,
    pub from_handle: Option<String>,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub sent_at: i64,
    pub read_at: Option<i64>,
    pub reply_to: Option<i64>,
}

const SELECT: &str = "SELECT m.id, m.to_player, m.from_player, p.handle AS from_handle, m.kind, \
                      m.subject, m.body, m.sent_at, m.read_at, m.reply_to \
                      FROM messages m LEFT JOIN players p ON p.id = m.from_player";

fn from_row(row: &sqlx::any::AnyRow) -> Result<MessageRow, StoreError> {
    Ok(MessageRow {
        id: row.try_get("id")?,
        to_player: row.try_get("to_player")?,
        from_player: row.try_get("from_player")?,
        from_handle: row.try_get("from_handle")?,
        kind: row.try_get("kind")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        sent_at: row.try_get("sent_at")?,
        read_at: row.try_get("read_at")?,
        reply_to: row.try_get("reply_to")?,
    })
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub to_player: i64,
    pub from_player: Option<i64>,
    pub kind: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub reply_to: Option<i64>,
    /// Unique per delivery, so a retried delivery stores the message once.
    pub delivery_key: &'a str,
}

/// Stores a message; `None` if a message with the same delivery key already exists.
pub async fn insert(db: &Db, m: &NewMessage<'_>, now: i64) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query(
        "INSERT INTO messages (to_player, from_player, kind, subject, body, sent_at, reply_to, \
         delivery_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (delivery_key) DO NOTHING RETURNING id",
    )
    .bind(m.to_player)
    .bind(m.from_player)
    .bind(m.kind)
    .bind(m.subject)
    .bind(m.body)
    .bind(now)
    .bind(m.reply_to)
    .bind(m.delivery_key)
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("id")?),
        None => None,
    })
}

/// The player `handle` on `system` (ignoring case), if there is one.
pub async fn player_by_handle(
    db: &Db,
    system: &str,
    handle: &str,
) -> Result<Option<Player>, StoreError> {
    let row = sqlx::query(
        "SELECT id, system, handle, created_at FROM players WHERE system = $1 AND handle_key = $2",
    )
    .bind(system)
    .bind(handle_key(handle))
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(row) => Some(Player {
            id: row.try_get("id")?,
            system: row.try_get("system")?,
            handle: row.try_get("handle")?,
            created_at: row.try_get("created_at")?,
        }),
        None => None,
    })
}

/// A player's messages that are not deleted, newest first.
pub async fn list(db: &Db, player: i64, limit: i64) -> Result<Vec<MessageRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE m.to_player = $1 AND m.deleted = 0 ORDER BY m.sent_at DESC, m.id DESC \
         LIMIT $2"
    ))
    .bind(player)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// One of a player's messages, unless it is deleted or addressed to somebody else.
pub async fn get(db: &Db, player: i64, id: i64) -> Result<Option<MessageRow>, StoreError> {
    let row = sqlx::query(&format!(
        "{SELECT} WHERE m.id = $1 AND m.to_player = $2 AND m.deleted = 0"
    ))
    .bind(id)
    .bind(player)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Marks a message read the first time it is read.
pub async fn mark_read(db: &Db, player: i64, id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE messages SET read_at = $1 WHERE id = $2 AND to_player = $3 AND read_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(player)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Deletes one of a player's messages; false if there was no such message.
pub async fn delete(db: &Db, player: i64, id: i64) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE messages SET deleted = 1 WHERE id = $1 AND to_player = $2 AND deleted = 0",
    )
    .bind(id)
    .bind(player)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// How many of a player's messages are unread and not deleted.
pub async fn unread_count(db: &Db, player: i64) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM messages WHERE to_player = $1 AND deleted = 0 \
         AND read_at IS NULL",
    )
    .bind(player)
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get("n")?)
}
