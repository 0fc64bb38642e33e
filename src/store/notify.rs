//! The market's system mail bookkeeping (`mk_mail_cursor`, `mk_tips_sent`, migration 0008):
//! how far each game's exchange events have been turned into mail, and which scheduled news
//! items have had their anonymous tips sent.
//!
//! This module only stores positions; deciding what to mail is `market::notify`. Every change
//! of the cursor is a compare-and-set on the values the caller read, so two processes that both
//! believe they hold the lease cannot plan different batches or move the cursor twice.

use sqlx::Row;

use super::{Db, StoreError};

/// A game's mail cursor: every event with `seq <= done_seq` is mailed; when `batch_end >
/// done_seq`, the events in `(done_seq, batch_end]` are a planned batch whose mail may be
/// partly written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailCursor {
    pub done_seq: i64,
    pub batch_end: i64,
}

impl MailCursor {
    /// The planned batch's end, if a batch is in progress.
    pub fn pending(&self) -> Option<i64> {
        (self.batch_end > self.done_seq).then_some(self.batch_end)
    }
}

/// The game's cursor, if it has one.
pub async fn cursor(db: &Db, game_id: i64) -> Result<Option<MailCursor>, StoreError> {
    let row = sqlx::query("SELECT done_seq, batch_end FROM mk_mail_cursor WHERE game_id = $1")
        .bind(game_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(r) => Some(MailCursor {
            done_seq: r.try_get("done_seq")?,
            batch_end: r.try_get("batch_end")?,
        }),
        None => None,
    })
}

/// Creates the game's cursor at `done_seq` unless it already has one.
pub async fn init_cursor(db: &Db, game_id: i64, done_seq: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mk_mail_cursor (game_id, done_seq, batch_end, updated_at) \
         VALUES ($1, $2, $2, $3) ON CONFLICT (game_id) DO NOTHING",
    )
    .bind(game_id)
    .bind(done_seq)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The lowest event sequence number of a game, if it has any events. A scan of the event
/// log, used once per game that predates its cursor.
pub async fn first_event_seq(db: &Db, game_id: i64) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query("SELECT MIN(seq) AS s FROM ex_events WHERE game_id = $1")
        .bind(game_id)
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("s")?)
}

/// Plans the batch `(done_seq, batch_end]`; false if the cursor is no longer at `done_seq`
/// with no batch planned (another process got there first).
pub async fn plan_batch(
    db: &Db,
    game_id: i64,
    done_seq: i64,
    batch_end: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE mk_mail_cursor SET batch_end = $1, updated_at = $2 \
         WHERE game_id = $3 AND done_seq = $4 AND batch_end <= done_seq",
    )
    .bind(batch_end)
    .bind(now)
    .bind(game_id)
    .bind(done_seq)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Marks the planned batch `(done_seq, batch_end]` as mailed; false if the cursor had already
/// moved.
pub async fn finish_batch(
    db: &Db,
    game_id: i64,
    done_seq: i64,
    batch_end: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE mk_mail_cursor SET done_seq = $1, updated_at = $2 \
         WHERE game_id = $3 AND done_seq = $4 AND batch_end = $1",
    )
    .bind(batch_end)
    .bind(now)
    .bind(game_id)
    .bind(done_seq)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Which of these exchange accounts belong to human players who can get mail: (account,
/// player) for accounts whose player id is positive and names a row of `players`. NPCs
/// (negative ids), the house and ids from outside the BBS are left out.
pub async fn mailable_accounts(db: &Db, accounts: &[i64]) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut found = Vec::new();
    for chunk in accounts.chunks(500) {
        let list: Vec<String> = chunk.iter().map(|id| id.to_string()).collect();
        // The ids are integers formatted here, not outside text, so inlining them is safe.
        let sql = format!(
            "SELECT a.id, a.player_id FROM ex_accounts a JOIN players p ON p.id = a.player_id \
             WHERE a.id IN ({}) AND a.player_id > 0 ORDER BY a.id",
            list.join(", ")
        );
        for row in sqlx::query(&sql).fetch_all(db.pool()).await? {
            found.push((row.try_get("id")?, row.try_get("player_id")?));
        }
    }
    Ok(found)
}

/// The scheduled news items of a game whose tips were sent.
pub async fn tipped_news(db: &Db, game_id: i64) -> Result<Vec<i64>, StoreError> {
    let rows = sqlx::query("SELECT news_id FROM mk_tips_sent WHERE game_id = $1 ORDER BY news_id")
        .bind(game_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(|r| Ok(r.try_get("news_id")?)).collect()
}

/// Records that a news item's tips went out (once; a second call changes nothing).
pub async fn mark_tipped(
    db: &Db,
    game_id: i64,
    news_id: i64,
    recipients: i64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mk_tips_sent (game_id, news_id, recipients, sent_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (game_id, news_id) DO NOTHING",
    )
    .bind(game_id)
    .bind(news_id)
    .bind(recipients)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::fresh_db;

    #[tokio::test]
    async fn the_cursor_moves_by_compare_and_set() {
        let t = fresh_db().await;
        let db = &t.db;
        assert_eq!(cursor(db, 7).await.unwrap(), None);
        init_cursor(db, 7, 10, 1).await.unwrap();
        init_cursor(db, 7, 99, 1).await.unwrap();
        let c = cursor(db, 7).await.unwrap().unwrap();
        assert_eq!((c.done_seq, c.pending()), (10, None));
        assert!(plan_batch(db, 7, 10, 20, 2).await.unwrap());
        assert!(
            !plan_batch(db, 7, 10, 25, 2).await.unwrap(),
            "already planned"
        );
        assert_eq!(cursor(db, 7).await.unwrap().unwrap().pending(), Some(20));
        assert!(
            !finish_batch(db, 7, 10, 25, 3).await.unwrap(),
            "not that batch"
        );
        assert!(finish_batch(db, 7, 10, 20, 3).await.unwrap());
        assert!(
            !finish_batch(db, 7, 10, 20, 3).await.unwrap(),
            "moved already"
        );
        let c = cursor(db, 7).await.unwrap().unwrap();
        assert_eq!((c.done_seq, c.pending()), (20, None));
        assert_eq!(first_event_seq(db, 7).await.unwrap(), None);

        mark_tipped(db, 7, 3, 2, 4).await.unwrap();
        mark_tipped(db, 7, 3, 5, 4).await.unwrap();
        mark_tipped(db, 8, 1, 1, 4).await.unwrap();
        assert_eq!(tipped_news(db, 7).await.unwrap(), vec![3]);
    }
}
