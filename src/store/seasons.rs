//! Seasons and their final results: the SQL of `seasons` and `season_results`, and the reads
//! the end of a season needs from the exchange's and the market's tables (accounts, positions,
//! recent trades, tick bars, fair values).
//!
//! Nothing here decides anything: which price marks a holding, who gets a reminder and when a
//! season ends are `lifecycle`'s rules. The only write to another module's tables is none: the
//! game is frozen through `Exchange::end_game`.

use sqlx::Row;

use super::{Db, StoreError};

/// A season's dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeasonRow {
    pub game_id: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    /// How many reminder offsets (from the longest) have been mailed.
    pub reminders_sent: i64,
    pub ended_at: Option<i64>,
}

fn season_from_row(row: &sqlx::any::AnyRow) -> Result<SeasonRow, StoreError> {
    Ok(SeasonRow {
        game_id: row.try_get("game_id")?,
        starts_at: row.try_get("starts_at")?,
        ends_at: row.try_get("ends_at")?,
        reminders_sent: row.try_get("reminders_sent")?,
        ended_at: row.try_get("ended_at")?,
    })
}

/// Records a season's dates; false if the game already has a season.
pub async fn insert(
    db: &Db,
    game_id: i64,
    starts_at: i64,
    ends_at: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "INSERT INTO seasons (game_id, starts_at, ends_at) VALUES ($1, $2, $3) \
         ON CONFLICT (game_id) DO NOTHING",
    )
    .bind(game_id)
    .bind(starts_at)
    .bind(ends_at)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A game's season.
pub async fn get(db: &Db, game_id: i64) -> Result<Option<SeasonRow>, StoreError> {
    let row = sqlx::query(
        "SELECT game_id, starts_at, ends_at, reminders_sent, ended_at FROM seasons \
         WHERE game_id = $1",
    )
    .bind(game_id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(season_from_row).transpose()
}

/// Every season, newest first.
pub async fn all(db: &Db) -> Result<Vec<SeasonRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT game_id, starts_at, ends_at, reminders_sent, ended_at FROM seasons \
         ORDER BY starts_at DESC, game_id DESC",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(season_from_row).collect()
}

/// Notes that the reminders up to `count` have been mailed (never lowers the count).
pub async fn reminders_sent(db: &Db, game_id: i64, count: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE seasons SET reminders_sent = $1 WHERE game_id = $2 AND reminders_sent < $1",
    )
    .bind(count)
    .bind(game_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Notes that the season's end has been processed.
pub async fn mark_ended(db: &Db, game_id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE seasons SET ended_at = $1 WHERE game_id = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(game_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The players (in the `players` table, not NPCs, not the house) with an account in a game.
pub async fn account_holders(db: &Db, game_id: i64) -> Result<Vec<i64>, StoreError> {
    let rows = sqlx::query(
        "SELECT a.player_id FROM ex_accounts a JOIN players p ON p.id = a.player_id \
         WHERE a.game_id = $1 AND a.is_house = 0 AND NOT EXISTS \
           (SELECT 1 FROM mk_npcs n WHERE n.game_id = a.game_id AND n.player_id = a.player_id) \
         ORDER BY a.player_id",
    )
    .bind(game_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<i64, _>("player_id")?))
        .collect()
}

/// A player's account with its positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub account_id: i64,
    pub player_id: i64,
    pub cash: i64,
    /// `(instrument_id, signed qty)`, shorts negative.
    pub positions: Vec<(i64, i64)>,
}

/// Every player account of a game (not NPCs, not the house) with its non-zero positions.
pub async fn holdings(db: &Db, game_id: i64) -> Result<Vec<Holding>, StoreError> {
    let rows = sqlx::query(
        "SELECT a.id, a.player_id, a.cash FROM ex_accounts a JOIN players p ON p.id = a.player_id \
         WHERE a.game_id = $1 AND a.is_house = 0 AND NOT EXISTS \
           (SELECT 1 FROM mk_npcs n WHERE n.game_id = a.game_id AND n.player_id = a.player_id) \
         ORDER BY a.id",
    )
    .bind(game_id)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(Holding {
            account_id: r.try_get("id")?,
            player_id: r.try_get("player_id")?,
            cash: r.try_get("cash")?,
            positions: Vec::new(),
        });
    }
    let rows = sqlx::query(
        "SELECT p.account_id, p.instrument_id, p.qty FROM ex_positions p \
         JOIN ex_accounts a ON a.id = p.account_id WHERE a.game_id = $1 AND p.qty <> 0 \
         ORDER BY p.account_id, p.instrument_id",
    )
    .bind(game_id)
    .fetch_all(db.pool())
    .await?;
    for r in &rows {
        let account: i64 = r.try_get("account_id")?;
        if let Some(h) = out.iter_mut().find(|h| h.account_id == account) {
            h.positions
                .push((r.try_get("instrument_id")?, r.try_get("qty")?));
        }
    }
    Ok(out)
}

/// What is known about an instrument's price near the end of a game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceEvidence {
    pub instrument_id: i64,
    /// The last trade price (the listing price before any trade).
    pub last: i64,
    /// The latest trade prices, newest first.
    pub recent_trades: Vec<i64>,
    /// Volume-weighted close over the latest tick bars: `(sum of close × volume, volume)`.
    pub tick_value: i64,
    pub tick_volume: i64,
    /// The simulation's hidden fair value in micro-cents, when a simulation runs the game.
    pub fair_ucents: Option<i64>,
}

/// Price evidence for every instrument of a game: the latest `trades` trades and `ticks` tick
/// bars of each.
pub async fn price_evidence(
    db: &Db,
    game_id: i64,
    trades: i64,
    ticks: i64,
) -> Result<Vec<PriceEvidence>, StoreError> {
    let rows = sqlx::query(
        "SELECT i.id, i.last_price, m.fair_ucents FROM ex_instruments i \
         LEFT JOIN mk_instruments m ON m.game_id = i.game_id AND m.instrument_id = i.id \
         WHERE i.game_id = $1 ORDER BY i.id",
    )
    .bind(game_id)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let instrument_id: i64 = r.try_get("id")?;
        let recent = sqlx::query(
            "SELECT price FROM ex_trades WHERE instrument_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(instrument_id)
        .bind(trades)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|t| t.try_get::<i64, _>("price"))
        .collect::<Result<Vec<_>, _>>()?;
        let bars = sqlx::query(
            "SELECT close, volume FROM mk_ticks WHERE game_id = $1 AND instrument_id = $2 \
             ORDER BY tick DESC LIMIT $3",
        )
        .bind(game_id)
        .bind(instrument_id)
        .bind(ticks)
        .fetch_all(db.pool())
        .await?;
        let (mut value, mut volume) = (0_i64, 0_i64);
        for b in &bars {
            let close: i64 = b.try_get("close")?;
            let vol: i64 = b.try_get("volume")?;
            value = value.saturating_add(close.saturating_mul(vol));
            volume = volume.saturating_add(vol);
        }
        out.push(PriceEvidence {
            instrument_id,
            last: r.try_get("last_price")?,
            recent_trades: recent,
            tick_value: value,
            tick_volume: volume,
            fair_ucents: r.try_get("fair_ucents")?,
        });
    }
    Ok(out)
}

/// One line of a season's final leaderboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRow {
    pub game_id: i64,
    pub rank: i64,
    pub player_id: i64,
    /// The player's handle (empty if the player row is gone).
    pub handle: String,
    pub account_id: i64,
    pub cash: i64,
    pub holdings: i64,
    pub net_worth: i64,
    pub recorded_at: i64,
}

/// Stores a season's final leaderboard once: false if it was already recorded.
pub async fn insert_results(db: &Db, rows: &[ResultRow], now: i64) -> Result<bool, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(true);
    };
    let mut tx = db.pool().begin().await?;
    let existing = sqlx::query("SELECT COUNT(*) AS n FROM season_results WHERE game_id = $1")
        .bind(first.game_id)
        .fetch_one(&mut *tx)
        .await?;
    if existing.try_get::<i64, _>("n")? > 0 {
        return Ok(false);
    }
    for r in rows {
        sqlx::query(
            "INSERT INTO season_results (game_id, rank, player_id, account_id, cash, holdings, \
             net_worth, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (game_id, player_id) DO NOTHING",
        )
        .bind(r.game_id)
        .bind(r.rank)
        .bind(r.player_id)
        .bind(r.account_id)
        .bind(r.cash)
        .bind(r.holdings)
        .bind(r.net_worth)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// A season's final leaderboard, best first.
pub async fn results(db: &Db, game_id: i64) -> Result<Vec<ResultRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT r.game_id, r.rank, r.player_id, COALESCE(p.handle, '') AS handle, r.account_id, \
         r.cash, r.holdings, r.net_worth, r.recorded_at FROM season_results r \
         LEFT JOIN players p ON p.id = r.player_id WHERE r.game_id = $1 ORDER BY r.rank",
    )
    .bind(game_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ResultRow {
                game_id: r.try_get("game_id")?,
                rank: r.try_get("rank")?,
                player_id: r.try_get("player_id")?,
                handle: r.try_get("handle")?,
                account_id: r.try_get("account_id")?,
                cash: r.try_get("cash")?,
                holdings: r.try_get("holdings")?,
                net_worth: r.try_get("net_worth")?,
                recorded_at: r.try_get("recorded_at")?,
            })
        })
        .collect()
}
