//! The write phase of one order as a single script of statements sent in one round trip.
//!
//! Once the engine has decided everything (the order row, its trades, the makers' fills,
//! self-trade cancels, cash, shares, ledger and events), there is nothing left to ask the
//! database, so the statements go together as one `raw_sql` batch instead of one round trip
//! each; that is most of the exchange's speed. Values are inlined as literals: integers
//! formatted here and the exchange's own fixed words and numbers (never text typed by a
//! player), which [`text`] still quotes properly.

use std::fmt::Write;

use sqlx::Row;

use super::{LedgerEntry, WriteTx};
use crate::exchange::model::{Intent, NewEvent, OrderStatus, Side, TimeInForce};
use crate::store::{now_ms, Backend, StoreError};

/// The order row written by a place or a replace.
#[derive(Debug, Clone)]
pub struct OrderWrite {
    /// Insert a new row (place) or update the existing one (replace).
    pub insert: bool,
    pub id: i64,
    pub account_id: i64,
    pub intent: Intent,
    pub market: bool,
    pub tif: TimeInForce,
    pub price: Option<i64>,
    pub qty: i64,
    pub filled: i64,
    pub status: OrderStatus,
    pub reason: Option<&'static str>,
    pub priority: i64,
}

/// A trade to write, with its id already allocated.
#[derive(Debug, Clone)]
pub struct TradeWrite {
    pub id: i64,
    pub price: i64,
    pub qty: i64,
    pub buy_order_id: i64,
    pub sell_order_id: i64,
    pub taker_side: Side,
}

/// Everything one order changes.
#[derive(Debug, Clone)]
pub struct BookWrite {
    pub game_id: i64,
    pub instrument_id: i64,
    pub order: OrderWrite,
    pub trades: Vec<TradeWrite>,
    /// (resting order, shares filled now).
    pub maker_fills: Vec<(i64, i64)>,
    /// (resting order, reason) cancelled by self-trade prevention.
    pub cancels: Vec<(i64, &'static str)>,
    pub last_price: i64,
    pub next_priority: i64,
    /// (account, instrument, delta).
    pub shares: Vec<(i64, i64, i64)>,
    /// (account, delta).
    pub cash: Vec<(i64, i64)>,
    pub ledger: Vec<LedgerEntry>,
    pub events: Vec<NewEvent>,
}

/// A text literal, quoted.
fn text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "NULL".to_string(), |v| v.to_string())
}

fn opt_text(v: Option<&str>) -> String {
    v.map_or_else(|| "NULL".to_string(), text)
}

/// Adds up deltas with the same key, keeping keys sorted (so row locks are taken in order).
fn net<K: Ord + Copy>(items: impl IntoIterator<Item = (K, i64)>) -> Vec<(K, i64)> {
    let mut map = std::collections::BTreeMap::new();
    for (k, d) in items {
        *map.entry(k).or_insert(0i64) += d;
    }
    map.into_iter().filter(|&(_, d)| d != 0).collect()
}

impl WriteTx {
    /// Allocates the ids of a new order (if `new_order`) and of `trades` trades. On SQLite
    /// the write lock is held, so the next rowids are free; on PostgreSQL the identity
    /// sequences hand them out.
    pub async fn allocate_ids(
        &mut self,
        new_order: bool,
        trades: usize,
    ) -> Result<(Option<i64>, Vec<i64>), StoreError> {
        let trades_i = trades as i64;
        match self.backend {
            Backend::Sqlite => {
                let row = sqlx::query(
                    "SELECT (SELECT COALESCE(MAX(id), 0) FROM ex_orders) AS o, \
                            (SELECT COALESCE(MAX(id), 0) FROM ex_trades) AS t",
                )
                .fetch_one(self.conn())
                .await?;
                let o: i64 = row.try_get("o")?;
                let t: i64 = row.try_get("t")?;
                Ok((
                    new_order.then_some(o + 1),
                    (1..=trades_i).map(|k| t + k).collect(),
                ))
            }
            Backend::Postgres => {
                let first = if new_order { 0 } else { 1 };
                if first > trades_i {
                    return Ok((None, vec![]));
                }
                let rows = sqlx::query(
                    "SELECT g, CASE WHEN g = 0 \
                         THEN nextval(pg_get_serial_sequence('ex_orders', 'id')) \
                         ELSE nextval(pg_get_serial_sequence('ex_trades', 'id')) END AS id \
                     FROM generate_series(CAST($1 AS BIGINT), CAST($2 AS BIGINT)) AS g ORDER BY g",
                )
                .bind(first)
                .bind(trades_i)
                .fetch_all(self.conn())
                .await?;
                let mut order = None;
                let mut ids = Vec::with_capacity(trades);
                for r in rows {
                    let g: i64 = r.try_get("g")?;
                    let id: i64 = r.try_get("id")?;
                    if g == 0 {
                        order = Some(id);
                    } else {
                        ids.push(id);
                    }
                }
                ids.sort_unstable();
                Ok((order, ids))
            }
        }
    }

    /// Writes everything one order changes, in one round trip.
    pub async fn write_book(&mut self, w: &BookWrite) -> Result<(), StoreError> {
        let now = now_ms();
        let mut s = String::with_capacity(2048);
        let o = &w.order;
        // Writing into a String cannot fail; the results are ignored below for that reason.
        if o.insert {
            let _ = writeln!(
                s,
                "INSERT INTO ex_orders (id, game_id, instrument_id, account_id, side, intent, \
                     kind, tif, price, qty, filled, status, reason, priority, created_at, \
                     updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, \
                     {now}, {now});",
                o.id,
                w.game_id,
                w.instrument_id,
                o.account_id,
                text(o.intent.side().as_str()),
                text(o.intent.as_str()),
                text(if o.market { "market" } else { "limit" }),
                text(o.tif.as_str()),
                opt(o.price),
                o.qty,
                o.filled,
                text(o.status.as_str()),
                opt_text(o.reason),
                o.priority,
            );
        } else {
            let _ = writeln!(
                s,
                "UPDATE ex_orders SET price = {}, qty = {}, filled = {}, status = {}, \
                     reason = {}, priority = {}, updated_at = {now} WHERE id = {};",
                opt(o.price),
                o.qty,
                o.filled,
                text(o.status.as_str()),
                opt_text(o.reason),
                o.priority,
                o.id,
            );
        }
        if !w.trades.is_empty() {
            s.push_str(
                "INSERT INTO ex_trades (id, game_id, instrument_id, price, qty, buy_order_id, \
                 sell_order_id, taker_side, created_at) VALUES ",
            );
            for (k, t) in w.trades.iter().enumerate() {
                let _ = write!(
                    s,
                    "{}({}, {}, {}, {}, {}, {}, {}, {}, {now})",
                    if k > 0 { ", " } else { "" },
                    t.id,
                    w.game_id,
                    w.instrument_id,
                    t.price,
                    t.qty,
                    t.buy_order_id,
                    t.sell_order_id,
                    text(t.taker_side.as_str()),
                );
            }
            s.push_str(";\n");
        }
        for &(id, qty) in &w.maker_fills {
            let _ = writeln!(
                s,
                "UPDATE ex_orders SET filled = filled + {qty}, status = CASE WHEN filled + {qty} \
                 >= qty THEN 'filled' ELSE status END, updated_at = {now} WHERE id = {id};"
            );
        }
        for &(id, reason) in &w.cancels {
            let _ = writeln!(
                s,
                "UPDATE ex_orders SET status = 'cancelled', reason = {}, updated_at = {now} \
                 WHERE id = {id} AND status = 'open';",
                text(reason)
            );
        }
        let _ = writeln!(
            s,
            "UPDATE ex_instruments SET last_price = {}, next_priority = {} WHERE id = {};",
            w.last_price, w.next_priority, w.instrument_id
        );
        let shares = net(w.shares.iter().map(|&(a, i, d)| ((a, i), d)));
        if !shares.is_empty() {
            s.push_str("INSERT INTO ex_positions (account_id, instrument_id, qty) VALUES ");
            for (k, ((a, i), d)) in shares.iter().enumerate() {
                let _ = write!(s, "{}({a}, {i}, {d})", if k > 0 { ", " } else { "" });
            }
            s.push_str(
                " ON CONFLICT (account_id, instrument_id) \
                 DO UPDATE SET qty = ex_positions.qty + excluded.qty;",
            );
        }
        for (account, d) in net(w.cash.iter().copied()) {
            let _ = writeln!(
                s,
                "UPDATE ex_accounts SET cash = cash + {d} WHERE id = {account};"
            );
        }
        if !w.ledger.is_empty() {
            s.push_str(
                "INSERT INTO ex_ledger (game_id, account_id, instrument_id, cash_delta, \
                 share_delta, reason, trade_id, created_at) VALUES ",
            );
            for (k, l) in w.ledger.iter().enumerate() {
                let _ = write!(
                    s,
                    "{}({}, {}, {}, {}, {}, {}, {}, {now})",
                    if k > 0 { ", " } else { "" },
                    w.game_id,
                    l.account_id,
                    opt(l.instrument_id),
                    l.cash_delta,
                    l.share_delta,
                    text(l.reason.as_str()),
                    opt(l.trade_id),
                );
            }
            s.push_str(";\n");
        }
        if !w.events.is_empty() {
            s.push_str(
                "INSERT INTO ex_events (game_id, kind, account_id, instrument_id, order_id, \
                 trade_id, price, qty, detail, created_at) VALUES ",
            );
            for (k, e) in w.events.iter().enumerate() {
                let _ = write!(
                    s,
                    "{}({}, {}, {}, {}, {}, {}, {}, {}, {}, {now})",
                    if k > 0 { ", " } else { "" },
                    w.game_id,
                    text(e.kind.as_str()),
                    opt(e.account_id),
                    opt(e.instrument_id),
                    opt(e.order_id),
                    opt(e.trade_id),
                    opt(e.price),
                    opt(e.qty),
                    text(&e.detail),
                );
            }
            s.push_str(";\n");
            self.wrote_events = true;
        }
        // Through `Executor::execute` (a boxed, `Send` future) rather than `RawSql::execute`,
        // whose generic `async fn` makes callers' futures fail the `Send` check when spawned.
        sqlx::Executor::execute(self.conn(), sqlx::raw_sql(&s)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_literals_are_quoted() {
        assert_eq!(text("it's"), "'it''s'");
        assert_eq!(opt(None), "NULL");
        assert_eq!(opt_text(Some("x")), "'x'");
    }

    #[test]
    fn net_adds_up_and_sorts() {
        assert_eq!(net([(3, 5), (1, 2), (3, -5), (1, 1)]), vec![(1, 3)]);
    }
}
