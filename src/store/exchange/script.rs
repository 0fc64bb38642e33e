//! The write phase of one transaction on a book, sent in one round trip together with its
//! `COMMIT`.
//!
//! Once the engine has decided everything (the order row, its trades, the makers' fills,
//! self-trade cancels, cash, shares, ledger and events), there is nothing left to ask the
//! database. On PostgreSQL the rows go as arrays to the function `ex_write` (migration 0009),
//! whose statements the server plans once per connection, in `SELECT * FROM ex_write(...);
//! COMMIT`; the function hands out the trade ids and returns them. On SQLite they go as one
//! script of statements (`raw_sql`) before the commit. Values are inlined as literals: integers
//! formatted here and the exchange's own fixed words and numbers (never text typed by a
//! player), which [`text`] still quotes properly.

use std::fmt::Write;

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

/// Everything one transaction on a book changes.
#[derive(Debug, Clone)]
pub struct BookWrite {
    pub game_id: i64,
    pub instrument_id: i64,
    /// The order placed or replaced, if any.
    pub order: Option<OrderWrite>,
    pub trades: Vec<TradeWrite>,
    /// (resting order, shares filled now).
    pub maker_fills: Vec<(i64, i64)>,
    /// (resting order, reason) cancelled by self-trade prevention.
    pub cancels: Vec<(i64, &'static str)>,
    /// The book's new last price and priority counter, if they change.
    pub book: Option<(i64, i64)>,
    /// (account, instrument, delta).
    pub shares: Vec<(i64, i64, i64)>,
    /// (account, delta).
    pub cash: Vec<(i64, i64)>,
    pub ledger: Vec<LedgerEntry>,
    pub events: Vec<NewEvent>,
}

impl BookWrite {
    /// Writes nothing yet: no order row, no trades, the book's counters unchanged.
    pub fn empty(game_id: i64, instrument_id: i64) -> BookWrite {
        BookWrite {
            game_id,
            instrument_id,
            order: None,
            trades: Vec::new(),
            maker_fills: Vec::new(),
            cancels: Vec::new(),
            book: None,
            shares: Vec::new(),
            cash: Vec::new(),
            ledger: Vec::new(),
            events: Vec::new(),
        }
    }
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

/// `'{1,NULL,3}'::int8[]`.
fn int_array(items: impl IntoIterator<Item = Option<i64>>) -> String {
    let list: Vec<String> = items.into_iter().map(opt).collect();
    format!("'{{{}}}'::int8[]", list.join(","))
}

/// `ARRAY['a','b']::text[]`.
fn text_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let list: Vec<String> = items.into_iter().map(text).collect();
    if list.is_empty() {
        "'{}'::text[]".to_string()
    } else {
        format!("ARRAY[{}]::text[]", list.join(","))
    }
}

impl WriteTx {
    /// Writes everything `w` says and commits, in one round trip on PostgreSQL (the write is
    /// staged and goes with the `COMMIT`). Returns the ids of the new trades in the order of
    /// `w.trades` (see [`super::IdHint`]).
    pub async fn commit_book(mut self, w: &BookWrite) -> Result<Vec<i64>, StoreError> {
        self.write_book(w).await?;
        Ok(self.commit_batch().await?.pop().unwrap_or_default())
    }

    /// Writes what `w` says inside a batch (see [`WriteTx::begin_batch`]) without committing.
    /// On PostgreSQL the write goes with the next statement sent, and its trade ids land in
    /// [`WriteTx::written`] then; on SQLite it runs now.
    pub async fn write_book(&mut self, w: &BookWrite) -> Result<(), StoreError> {
        if !w.events.is_empty() {
            self.wrote_events = true;
        }
        let now = now_ms();
        match self.backend {
            Backend::Postgres => {
                let pg = self
                    .pg()
                    .ok_or_else(|| super::corrupt("backend", "not PostgreSQL"))?;
                // One staged write at a time, so each flush returns one write's ids.
                let flushed = if pg.staged { pg.flush().await? } else { None };
                pg.stage_write(&ex_write_call(w, now));
                self.written.extend(flushed);
                Ok(())
            }
            Backend::Sqlite => {
                let script = sqlite_script(w, now);
                sqlx::Executor::execute(self.conn(), sqlx::raw_sql(&script)).await?;
                self.written.push(w.trades.iter().map(|t| t.id).collect());
                Ok(())
            }
        }
    }

    /// Sends a batch's last write with `COMMIT` (PostgreSQL) or commits (SQLite). Returns the
    /// trade ids of every [`WriteTx::write_book`], in order.
    pub async fn commit_batch(mut self) -> Result<Vec<Vec<i64>>, StoreError> {
        let mut last = None;
        if let Some(pg) = self.pg() {
            if pg.begun() {
                let sql = format!("{}COMMIT;", pg.take_pending());
                let rows = sqlx::Executor::fetch_all(pg.raw(), sqlx::raw_sql(&sql)).await?;
                pg.mark_ended();
                last = pg.written_ids(&rows)?;
            }
        }
        let mut written = std::mem::take(&mut self.written);
        written.extend(last);
        self.committed().await?;
        Ok(written)
    }
}

/// `SELECT * FROM ex_write(...);` for PostgreSQL. Trade ids in `w` are placeholders `1..=n`,
/// which the function reads as positions in its trade arrays.
fn ex_write_call(w: &BookWrite, now: i64) -> String {
    let mut s = String::with_capacity(2048);
    let _ = write!(
        s,
        "SELECT * FROM ex_write({}, {}, {now}, ",
        w.game_id, w.instrument_id
    );
    match &w.order {
        Some(o) => {
            let _ = write!(
                s,
                "{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, ",
                if o.insert { 1 } else { 2 },
                o.id,
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
        }
        None => s.push_str(
            "0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ",
        ),
    }
    match w.book {
        Some((last, next)) => {
            let _ = write!(s, "{last}, {next}, ");
        }
        None => s.push_str("NULL, NULL, "),
    }
    let t = &w.trades;
    let _ = write!(
        s,
        "{}, {}, {}, {}, {}, ",
        int_array(t.iter().map(|t| Some(t.price))),
        int_array(t.iter().map(|t| Some(t.qty))),
        int_array(t.iter().map(|t| Some(t.buy_order_id))),
        int_array(t.iter().map(|t| Some(t.sell_order_id))),
        text_array(t.iter().map(|t| t.taker_side.as_str())),
    );
    let fills = net(w.maker_fills.iter().copied());
    let _ = write!(
        s,
        "{}, {}, {}, {}, ",
        int_array(fills.iter().map(|&(id, _)| Some(id))),
        int_array(fills.iter().map(|&(_, q)| Some(q))),
        int_array(w.cancels.iter().map(|&(id, _)| Some(id))),
        text_array(w.cancels.iter().map(|&(_, r)| r)),
    );
    let shares = net(w.shares.iter().map(|&(a, i, d)| ((a, i), d)));
    let cash = net(w.cash.iter().copied());
    let _ = write!(
        s,
        "{}, {}, {}, {}, {}, ",
        int_array(shares.iter().map(|&((a, _), _)| Some(a))),
        int_array(shares.iter().map(|&((_, i), _)| Some(i))),
        int_array(shares.iter().map(|&(_, d)| Some(d))),
        int_array(cash.iter().map(|&(a, _)| Some(a))),
        int_array(cash.iter().map(|&(_, d)| Some(d))),
    );
    let l = &w.ledger;
    let _ = write!(
        s,
        "{}, {}, {}, {}, {}, {}, ",
        int_array(l.iter().map(|l| Some(l.account_id))),
        int_array(l.iter().map(|l| l.instrument_id)),
        int_array(l.iter().map(|l| Some(l.cash_delta))),
        int_array(l.iter().map(|l| Some(l.share_delta))),
        text_array(l.iter().map(|l| l.reason.as_str())),
        int_array(l.iter().map(|l| l.trade_id)),
    );
    let e = &w.events;
    let _ = write!(
        s,
        "{}, {}, {}, {}, {}, {}, {}, {});",
        text_array(e.iter().map(|e| e.kind.as_str())),
        int_array(e.iter().map(|e| e.account_id)),
        int_array(e.iter().map(|e| e.instrument_id)),
        int_array(e.iter().map(|e| e.order_id)),
        int_array(e.iter().map(|e| e.trade_id)),
        int_array(e.iter().map(|e| e.price)),
        int_array(e.iter().map(|e| e.qty)),
        text_array(e.iter().map(|e| e.detail.as_str())),
    );
    s
}

/// The statements of `w` for SQLite, in one script.
fn sqlite_script(w: &BookWrite, now: i64) -> String {
    let mut s = String::with_capacity(2048);
    // Writing into a String cannot fail; the results are ignored below for that reason.
    if let Some(o) = &w.order {
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
    if let Some((last, next)) = w.book {
        let _ = writeln!(
            s,
            "UPDATE ex_instruments SET last_price = {last}, next_priority = {next} WHERE id = {};",
            w.instrument_id
        );
    }
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
    }
    s
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
    fn arrays_are_literals() {
        assert_eq!(
            int_array([Some(1), None, Some(-3)]),
            "'{1,NULL,-3}'::int8[]"
        );
        assert_eq!(int_array([]), "'{}'::int8[]");
        assert_eq!(text_array(["a", "it's"]), "ARRAY['a','it''s']::text[]");
        assert_eq!(text_array([]), "'{}'::text[]");
    }

    #[test]
    fn net_adds_up_and_sorts() {
        assert_eq!(net([(3, 5), (1, 2), (3, -5), (1, 1)]), vec![(1, 3)]);
    }
}
