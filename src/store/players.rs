//! Players of the NuggetNet door: a door user namespaced by the system the call came from.
//!
//! A player is `(system, handle)`: `system` is the BBS named in the dropfile (or a linked
//! system's tag), `handle` the user's alias there, unique within the system ignoring case.
//! The exchange knows a player only by the `id` handed out here. This module must not know the
//! exchange's tables.

use sqlx::Row;

use super::{now_ms, Db, StoreError};

/// A stored player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Player {
    pub id: i64,
    pub system: String,
    pub handle: String,
    pub created_at: i64,
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Player, StoreError> {
    Ok(Player {
        id: row.try_get("id")?,
        system: row.try_get("system")?,
        handle: row.try_get("handle")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The key handles are unique by within a system: trimmed and lower-cased.
pub fn handle_key(handle: &str) -> String {
    handle.trim().to_lowercase()
}

/// Finds the player `(system, handle)`, creating it on first sight, and notes the visit.
pub async fn find_or_create(db: &Db, system: &str, handle: &str) -> Result<Player, StoreError> {
    let now = now_ms();
    let key = handle_key(handle);
    // Two first calls at once both try to insert; the loser's insert does nothing and both
    // read the same row afterwards.
    sqlx::query(
        "INSERT INTO players (system, handle, handle_key, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (system, handle_key) DO NOTHING",
    )
    .bind(system)
    .bind(handle.trim())
    .bind(&key)
    .bind(now)
    .execute(db.pool())
    .await?;
    sqlx::query("UPDATE players SET last_seen_at = $1 WHERE system = $2 AND handle_key = $3")
        .bind(now)
        .bind(system)
        .bind(&key)
        .execute(db.pool())
        .await?;
    let row = sqlx::query(
        "SELECT id, system, handle, created_at FROM players WHERE system = $1 AND handle_key = $2",
    )
    .bind(system)
    .bind(&key)
    .fetch_one(db.pool())
    .await?;
    from_row(&row)
}

/// The players with these ids (missing ids are left out).
pub async fn by_ids(db: &Db, ids: &[i64]) -> Result<Vec<Player>, StoreError> {
    let mut found = Vec::new();
    for chunk in ids.chunks(500) {
        let list: Vec<String> = chunk.iter().map(|id| id.to_string()).collect();
        // The ids are integers formatted here, not outside text, so inlining them is safe.
        let sql = format!(
            "SELECT id, system, handle, created_at FROM players WHERE id IN ({})",
            list.join(", ")
        );
        for row in sqlx::query(&sql).fetch_all(db.pool()).await? {
            found.push(from_row(&row)?);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::fresh_db;

    #[tokio::test]
    async fn players_are_namespaced_by_system_and_found_again() {
        let t = fresh_db().await;
        let a = find_or_create(&t.db, "Synchronet", "Gordon").await.unwrap();
        let again = find_or_create(&t.db, "Synchronet", " gordon ")
            .await
            .unwrap();
        assert_eq!(a.id, again.id);
        assert_eq!(again.handle, "Gordon");
        let other = find_or_create(&t.db, "Mystic", "Gordon").await.unwrap();
        assert_ne!(a.id, other.id);
        let found = by_ids(&t.db, &[a.id, other.id, 999]).await.unwrap();
        assert_eq!(found.len(), 2);
    }
}
