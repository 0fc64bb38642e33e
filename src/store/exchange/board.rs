//! Read-only summaries for the game's screens that the exchange's per-request calls do not
//! give: the whole market board in one query and the game-wide tape. Nothing here writes.

use sqlx::Row;

use crate::exchange::model::{Side, Trade};
use crate::store::{Db, StoreError};

use super::corrupt;

/// One instrument's line on the market board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardRow {
    pub instrument_id: i64,
    pub symbol: String,
    pub name: String,
    /// The last trade price (the listing price before any trade), in cents.
    pub last: i64,
    /// The last trade before `day_start`, if any.
    pub prev_close: Option<i64>,
    /// The first trade at or after `day_start`, if any.
    pub day_open: Option<i64>,
    /// The best bid and ask on the book.
    pub bid: Option<i64>,
    pub ask: Option<i64>,
    /// Shares traded since `day_start`.
    pub volume: i64,
}

/// Every instrument of a game with its board figures; the day starts at `day_start` (ms).
pub async fn board(db: &Db, game_id: i64, day_start: i64) -> Result<Vec<BoardRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT i.id, i.symbol, i.name, i.last_price, \
           (SELECT MAX(o.price) FROM ex_orders o WHERE o.instrument_id = i.id \
              AND o.side = 'buy' AND o.status = 'open') AS bid, \
           (SELECT MIN(o.price) FROM ex_orders o WHERE o.instrument_id = i.id \
              AND o.side = 'sell' AND o.status = 'open') AS ask, \
           (SELECT CAST(COALESCE(SUM(t.qty), 0) AS BIGINT) FROM ex_trades t \
              WHERE t.instrument_id = i.id AND t.created_at >= $2) AS volume, \
           (SELECT t.price FROM ex_trades t WHERE t.instrument_id = i.id \
              AND t.created_at < $2 ORDER BY t.id DESC LIMIT 1) AS prev_close, \
           (SELECT t.price FROM ex_trades t WHERE t.instrument_id = i.id \
              AND t.created_at >= $2 ORDER BY t.id LIMIT 1) AS day_open \
         FROM ex_instruments i WHERE i.game_id = $1 ORDER BY i.symbol",
    )
    .bind(game_id)
    .bind(day_start)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(BoardRow {
                instrument_id: r.try_get("id")?,
                symbol: r.try_get("symbol")?,
                name: r.try_get("name")?,
                last: r.try_get("last_price")?,
                prev_close: r.try_get("prev_close")?,
                day_open: r.try_get("day_open")?,
                bid: r.try_get("bid")?,
                ask: r.try_get("ask")?,
                volume: r.try_get("volume")?,
            })
        })
        .collect()
}

/// The latest trades of every instrument of a game, newest first.
pub async fn recent_trades(db: &Db, game_id: i64, limit: i64) -> Result<Vec<Trade>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, instrument_id, price, qty, buy_order_id, sell_order_id, taker_side, \
             created_at FROM ex_trades WHERE game_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(game_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let side: String = r.try_get("taker_side")?;
            Ok(Trade {
                id: r.try_get("id")?,
                instrument_id: r.try_get("instrument_id")?,
                price: r.try_get("price")?,
                qty: r.try_get("qty")?,
                buy_order_id: r.try_get("buy_order_id")?,
                sell_order_id: r.try_get("sell_order_id")?,
                taker_side: Side::from_name(&side).ok_or_else(|| corrupt("side", &side))?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}
