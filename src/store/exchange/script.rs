//! The write phase of one transaction on a book, sent in one trip together with the next
//! statement: its `COMMIT`, or in a batch the next order's load.
//!
//! Once the engine has decided everything (the order row, its trades, the makers' fills,
//! self-trade cancels, cash, shares, ledger and events), there is nothing left to ask the
//! database. On PostgreSQL the rows go as arrays to the function `ex_write` (migration 0009),
//! whose statements the server plans once per connection; the function hands out the trade
//! ids and returns them. Its arguments are inlined as literals: integers formatted here and
//! the exchange's own fixed words and numbers (never text typed by a player), which
//! [`quote`] still quotes properly. On SQLite the rows go as a script of statements with
//! bound values ([`Sql`]), so a write of the same shape has the same text and stays prepared;
//! the trade ids were handed out by the load.

use std::fmt::Write;

use super::sql::{int_array, literal, quote, text_array, text_literal, Sql};
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

/// Adds up deltas with the same key, keeping keys sorted (so row locks are taken in order).
fn net<K: Ord + Copy>(items: impl IntoIterator<Item = (K, i64)>) -> Vec<(K, i64)> {
    let mut map = std::collections::BTreeMap::new();
    for (k, d) in items {
        *map.entry(k).or_insert(0i64) += d;
    }
    map.into_iter().filter(|&(_, d)| d != 0).collect()
}

impl WriteTx {
    /// Writes everything `w` says and commits, in one trip (the write is staged and goes with
    /// the `COMMIT`). Returns the ids of the new trades in the order of `w.trades` (see
    /// [`super::IdHint`]).
    pub async fn commit_book(mut self, w: &BookWrite) -> Result<Vec<i64>, StoreError> {
        self.write_book(w).await?;
        Ok(self.commit_batch().await?.pop().unwrap_or_default())
    }

    /// Writes what `w` says inside a batch (see [`WriteTx::begin_batch`]) without committing:
    /// the write goes with the next statement sent (in a planned batch, where the mirror
    /// answers most reads, usually with the `COMMIT`). Its trade ids land in
    /// `WriteTx::written`: on SQLite now (they were handed out by the load), on PostgreSQL
    /// when the write has run (`ex_write` hands them out).
    pub async fn write_book(&mut self, w: &BookWrite) -> Result<(), StoreError> {
        if !w.events.is_empty() {
            self.wrote_events = true;
        }
        let now = now_ms();
        match self.backend {
            Backend::Postgres => {
                // A planned batch moves all its cash at the end, each account once and in id
                // order, as a lone order does: two batches never wait on each other's account
                // rows in a cycle.
                let planned = self.mirror.is_some();
                if planned {
                    self.deferred_cash.extend_from_slice(&w.cash);
                    self.deferred_at = Some((w.game_id, w.instrument_id, now));
                }
                let link = self.link();
                let mut sql = link.sql();
                sql.push(&ex_write_call(w, now, !planned));
                link.stage(sql, Some(w.trades.len()));
            }
            Backend::Sqlite => {
                let sql = sqlite_script(w, now);
                self.link().stage(sql, None);
                self.written.push(w.trades.iter().map(|t| t.id).collect());
            }
        }
        if let Some(mirror) = self.mirror.as_mut() {
            mirror.apply(w, now);
        }
        Ok(())
    }

    /// Stages the cash a planned batch moved since this was last called (see
    /// [`WriteTx::write_book`]), before anything is sent that could read it or commit.
    pub(crate) fn stage_deferred_cash(&mut self) {
        let Some((game_id, instrument_id, now)) = self.deferred_at.take() else {
            return;
        };
        let mut w = BookWrite::empty(game_id, instrument_id);
        w.cash = std::mem::take(&mut self.deferred_cash);
        let link = self.link();
        let mut sql = link.sql();
        sql.push(&ex_write_call(&w, now, true));
        link.stage(sql, None);
    }
}

/// `SELECT * FROM ex_write(...);` for PostgreSQL. Trade ids in `w` are placeholders `1..=n`,
/// which the function reads as positions in its trade arrays. `with_cash`: whether to move
/// `w.cash` (a planned batch moves it later).
fn ex_write_call(w: &BookWrite, now: i64, with_cash: bool) -> String {
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
                quote(o.intent.side().as_str()),
                quote(o.intent.as_str()),
                quote(if o.market { "market" } else { "limit" }),
                quote(o.tif.as_str()),
                literal(o.price),
                o.qty,
                o.filled,
                quote(o.status.as_str()),
                text_literal(o.reason),
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
    let cash = if with_cash {
        net(w.cash.iter().copied())
    } else {
        Vec::new()
    };
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

/// The statements of `w` for SQLite, in one script with bound values (so a write of the same
/// shape, the same number of trades, fills and so on, has the same text and stays prepared).
fn sqlite_script(w: &BookWrite, now: i64) -> Sql {
    let mut s = Sql::new(Backend::Sqlite);
    if let Some(o) = &w.order {
        if o.insert {
            let row = vec![
                s.int(o.id),
                s.int(w.game_id),
                s.int(w.instrument_id),
                s.int(o.account_id),
                s.text_value(o.intent.side().as_str()),
                s.text_value(o.intent.as_str()),
                s.text_value(if o.market { "market" } else { "limit" }),
                s.text_value(o.tif.as_str()),
                s.opt(o.price),
                s.int(o.qty),
                s.int(o.filled),
                s.text_value(o.status.as_str()),
                s.opt_text(o.reason),
                s.int(o.priority),
                s.int(now),
                s.int(now),
            ];
            insert(
                &mut s,
                "ex_orders (id, game_id, instrument_id, account_id, side, intent, kind, tif, \
                 price, qty, filled, status, reason, priority, created_at, updated_at)",
                &[row],
                "",
            );
        } else {
            let v = [
                s.opt(o.price),
                s.int(o.qty),
                s.int(o.filled),
                s.text_value(o.status.as_str()),
                s.opt_text(o.reason),
                s.int(o.priority),
                s.int(now),
                s.int(o.id),
            ];
            s.push(&format!(
                "UPDATE ex_orders SET price = {}, qty = {}, filled = {}, status = {}, \
                     reason = {}, priority = {}, updated_at = {} WHERE id = {};",
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
            ));
        }
    }
    let rows: Vec<Vec<String>> = w
        .trades
        .iter()
        .map(|t| {
            vec![
                s.int(t.id),
                s.int(w.game_id),
                s.int(w.instrument_id),
                s.int(t.price),
                s.int(t.qty),
                s.int(t.buy_order_id),
                s.int(t.sell_order_id),
                s.text_value(t.taker_side.as_str()),
                s.int(now),
            ]
        })
        .collect();
    insert(
        &mut s,
        "ex_trades (id, game_id, instrument_id, price, qty, buy_order_id, sell_order_id, \
         taker_side, created_at)",
        &rows,
        "",
    );
    for &(id, qty) in &w.maker_fills {
        let (q1, q2, t, i) = (s.int(qty), s.int(qty), s.int(now), s.int(id));
        s.push(&format!(
            "UPDATE ex_orders SET filled = filled + {q1}, status = CASE WHEN filled + {q2} \
             >= qty THEN 'filled' ELSE status END, updated_at = {t} WHERE id = {i};"
        ));
    }
    for &(id, reason) in &w.cancels {
        let (r, t, i) = (s.text_value(reason), s.int(now), s.int(id));
        s.push(&format!(
            "UPDATE ex_orders SET status = 'cancelled', reason = {r}, updated_at = {t} \
             WHERE id = {i} AND status = 'open';"
        ));
    }
    if let Some((last, next)) = w.book {
        let (l, n, i) = (s.int(last), s.int(next), s.int(w.instrument_id));
        s.push(&format!(
            "UPDATE ex_instruments SET last_price = {l}, next_priority = {n} WHERE id = {i};"
        ));
    }
    let rows: Vec<Vec<String>> = net(w.shares.iter().map(|&(a, i, d)| ((a, i), d)))
        .into_iter()
        .map(|((a, i), d)| vec![s.int(a), s.int(i), s.int(d)])
        .collect();
    insert(
        &mut s,
        "ex_positions (account_id, instrument_id, qty)",
        &rows,
        " ON CONFLICT (account_id, instrument_id) DO UPDATE SET qty = ex_positions.qty + excluded.qty",
    );
    for (account, d) in net(w.cash.iter().copied()) {
        let (d, a) = (s.int(d), s.int(account));
        s.push(&format!(
            "UPDATE ex_accounts SET cash = cash + {d} WHERE id = {a};"
        ));
    }
    let rows: Vec<Vec<String>> = w
        .ledger
        .iter()
        .map(|l| {
            vec![
                s.int(w.game_id),
                s.int(l.account_id),
                s.opt(l.instrument_id),
                s.int(l.cash_delta),
                s.int(l.share_delta),
                s.text_value(l.reason.as_str()),
                s.opt(l.trade_id),
                s.int(now),
            ]
        })
        .collect();
    insert(
        &mut s,
        "ex_ledger (game_id, account_id, instrument_id, cash_delta, share_delta, reason, \
         trade_id, created_at)",
        &rows,
        "",
    );
    let rows: Vec<Vec<String>> = w
        .events
        .iter()
        .map(|e| {
            vec![
                s.int(w.game_id),
                s.text_value(e.kind.as_str()),
                s.opt(e.account_id),
                s.opt(e.instrument_id),
                s.opt(e.order_id),
                s.opt(e.trade_id),
                s.opt(e.price),
                s.opt(e.qty),
                s.text_value(&e.detail),
                s.int(now),
            ]
        })
        .collect();
    insert(
        &mut s,
        "ex_events (game_id, kind, account_id, instrument_id, order_id, trade_id, price, qty, \
         detail, created_at)",
        &rows,
        "",
    );
    s
}

/// `INSERT INTO {table} VALUES (row), (row), ...{tail};`, if there are rows; each row holds
/// its values' placeholders.
fn insert(s: &mut Sql, table: &str, rows: &[Vec<String>], tail: &str) {
    if !rows.is_empty() {
        let rows: Vec<String> = rows.iter().map(|r| format!("({})", r.join(", "))).collect();
        s.push(&format!(
            "INSERT INTO {table} VALUES {}{tail};",
            rows.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_literals_are_quoted() {
        assert_eq!(literal(None), "NULL");
        assert_eq!(text_literal(Some("x")), "'x'");
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
