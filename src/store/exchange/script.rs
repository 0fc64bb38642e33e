//! The write phase of one transaction on a book, sent in one trip together with the next
//! statement: its `COMMIT`, or in a batch the next order's load.
//!
//! Once the engine has decided everything (the order row, its trades, the makers' fills,
//! self-trade cancels, cash, shares, ledger and events), there is nothing left to ask the
//! database. On PostgreSQL the rows go as arrays to the function `ex_write` (migration 0009),
//! whose statements the server plans once per connection; the function hands out the trade
//! ids and returns them. Its arguments are inlined as literals: integers formatted here and
//! the exchange's own fixed words and numbers (never text typed by a player), which
//! [`quote`] still quotes properly. A planned batch (the order writer's) keeps its orders'
//! writes instead and sends them together, netted, to `ex_write_batch` (migration 0013; see
//! `Netted`). On SQLite the rows go as a script of statements with
//! bound values ([`Sql`]), so a write of the same shape has the same text and stays prepared;
//! the trade ids were handed out by the load. A planned batch's netted writes go there as one
//! statement per table, each reading its rows from one bound JSON list, a text the same for
//! every batch (`Netted::sqlite`).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::sql::{
    int_array, json_list, literal, opt_text_array, quote, text_array, text_literal, Sql,
};
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
        let planned = self.mirror.is_some();
        // A planned batch stamps all its writes with one time, as they go in one statement.
        let now = if planned {
            *self.batch_now.get_or_insert_with(now_ms)
        } else {
            now_ms()
        };
        if planned {
            // A planned batch keeps its writes until something is sent that could read them
            // or commit, and then writes them all, netted ([`WriteTx::stage_unsent`]).
            self.unsent.push(w.clone());
        } else {
            let backend = self.backend;
            let link = self.link();
            match backend {
                Backend::Postgres => {
                    let mut sql = link.sql();
                    sql.push(&ex_write_call(w, now));
                    link.stage(sql, Some(w.trades.len()));
                }
                Backend::Sqlite => link.stage(sqlite_script(w, now), None),
            }
        }
        if self.backend == Backend::Sqlite {
            // Handed out by the load: known now.
            self.written.push(w.trades.iter().map(|t| t.id).collect());
        }
        if let Some(mirror) = self.mirror.as_mut() {
            mirror.apply(w, now);
        }
        Ok(())
    }

    /// Stages the writes a planned batch kept since this was last called (see
    /// [`WriteTx::write_book`]), netted, before anything is sent that could read them or
    /// commit: on PostgreSQL as one `ex_write_batch`, on SQLite as one script of a statement
    /// per table whose text is the same for every batch.
    pub(crate) fn stage_unsent(&mut self) -> Result<(), StoreError> {
        if self.unsent.is_empty() {
            return Ok(());
        }
        let writes = std::mem::take(&mut self.unsent);
        let now = self.batch_now.unwrap_or_else(now_ms);
        let backend = self.backend;
        let link = self.link();
        let mut sql = link.sql();
        match (backend, writes.as_slice()) {
            // One order alone: `ex_write`'s ten arguments fewer cost less to send and plan
            // (measured: a lone order through the writer a fifth slower with the batch call).
            (Backend::Postgres, [w]) => {
                sql.push(&ex_write_call(w, now));
                link.stage(sql, Some(w.trades.len()));
            }
            (Backend::Postgres, _) => {
                let netted = Netted::of(&writes, true);
                sql.push(&netted.call(now));
                link.stage(sql, netted.counts);
            }
            // Trade ids are real on SQLite: staged with nothing to read back.
            (Backend::Sqlite, [w]) => link.stage(sqlite_script(w, now), None),
            (Backend::Sqlite, _) => link.stage(Netted::of(&writes, false).sqlite(now)?, None),
        }
        Ok(())
    }
}

/// A planned batch's writes netted so that each row is written once, for PostgreSQL's
/// `ex_write_batch` (migration 0013) or SQLite's script ([`Netted::sqlite`]): the same rows,
/// cash and shares as writing them one after the other.
#[derive(Debug, Default)]
struct Netted {
    /// Orders placed or replaced in the batch, as they stand at its end: (game, book, row).
    rows: BTreeMap<i64, (i64, i64, OrderWrite)>,
    /// Orders from before the batch that it filled (shares, summed) or cancelled (the first
    /// reason: a second cancel finds the order no longer open). Fills are applied first.
    fills: BTreeMap<i64, i64>,
    cancels: BTreeMap<i64, &'static str>,
    /// Each book's last price and priority counter at the end.
    books: BTreeMap<i64, (i64, i64)>,
    /// Trades in the order they happened: (game, book, trade).
    trades: Vec<(i64, i64, TradeWrite)>,
    /// Share deltas per (account, book) and cash deltas per account, sorted, none zero.
    shares: Vec<((i64, i64), i64)>,
    cash: Vec<(i64, i64)>,
    /// Ledger rows and events in order, with their game; a trade named by its position in
    /// `trades` (1-based).
    ledger: Vec<(i64, LedgerEntry)>,
    events: Vec<(i64, NewEvent)>,
    /// The number of trades of each write, in order.
    counts: Vec<usize>,
}

impl Netted {
    /// `placeholders`: each write names its trades `1..=k` (PostgreSQL), which here become
    /// positions after the batch's earlier trades; otherwise trade ids are real (SQLite).
    fn of(writes: &[BookWrite], placeholders: bool) -> Netted {
        let mut n = Netted::default();
        let mut shares = Vec::new();
        let mut cash = Vec::new();
        for w in writes {
            let offset = if placeholders {
                n.trades.len() as i64
            } else {
                0
            };
            let shift = |t: Option<i64>| t.map(|t| t + offset);
            if let Some(o) = &w.order {
                match n.rows.get_mut(&o.id) {
                    Some((_, _, row)) => {
                        *row = OrderWrite {
                            insert: row.insert,
                            ..o.clone()
                        }
                    }
                    None => {
                        // A replace says all of the order as it is now, earlier fills included.
                        n.fills.remove(&o.id);
                        n.cancels.remove(&o.id);
                        n.rows.insert(o.id, (w.game_id, w.instrument_id, o.clone()));
                    }
                }
            }
            n.trades.extend(
                w.trades
                    .iter()
                    .map(|t| (w.game_id, w.instrument_id, t.clone())),
            );
            for &(id, q) in &w.maker_fills {
                match n.rows.get_mut(&id) {
                    Some((_, _, row)) => {
                        row.filled += q;
                        if row.filled >= row.qty {
                            row.status = OrderStatus::Filled;
                        }
                    }
                    None => *n.fills.entry(id).or_insert(0) += q,
                }
            }
            for &(id, reason) in &w.cancels {
                match n.rows.get_mut(&id) {
                    Some((_, _, row)) => {
                        if row.status == OrderStatus::Open {
                            row.status = OrderStatus::Cancelled;
                            row.reason = Some(reason);
                        }
                    }
                    None => {
                        n.cancels.entry(id).or_insert(reason);
                    }
                }
            }
            if let Some(book) = w.book {
                n.books.insert(w.instrument_id, book);
            }
            shares.extend(w.shares.iter().map(|&(a, i, d)| ((a, i), d)));
            cash.extend_from_slice(&w.cash);
            n.ledger.extend(w.ledger.iter().map(|l| {
                let mut l = l.clone();
                l.trade_id = shift(l.trade_id);
                (w.game_id, l)
            }));
            n.events.extend(w.events.iter().map(|e| {
                let mut e = e.clone();
                e.trade_id = shift(e.trade_id);
                (w.game_id, e)
            }));
            n.counts.push(w.trades.len());
        }
        n.shares = net(shares);
        n.cash = net(cash);
        n
    }

    /// `SELECT * FROM ex_write_batch(...);`
    fn call(&self, now: i64) -> String {
        let mut s = String::with_capacity(4096);
        let _ = write!(s, "SELECT * FROM ex_write_batch({now}, ");
        let (placed, replaced): (Vec<_>, Vec<_>) =
            self.rows.values().partition(|(_, _, o)| o.insert);
        let p = &placed;
        let _ = write!(
            s,
            "{}, {}, {}, {}, {}, {}, {}, {}, ",
            int_array(p.iter().map(|r| Some(r.2.id))),
            int_array(p.iter().map(|r| Some(r.0))),
            int_array(p.iter().map(|r| Some(r.1))),
            int_array(p.iter().map(|r| Some(r.2.account_id))),
            text_array(p.iter().map(|r| r.2.intent.side().as_str())),
            text_array(p.iter().map(|r| r.2.intent.as_str())),
            text_array(p.iter().map(|r| kind(&r.2))),
            text_array(p.iter().map(|r| r.2.tif.as_str())),
        );
        push_order_state(&mut s, p.iter().map(|r| &r.2));
        let u = &replaced;
        let _ = write!(s, "{}, ", int_array(u.iter().map(|r| Some(r.2.id))));
        push_order_state(&mut s, u.iter().map(|r| &r.2));
        push_fills(
            &mut s,
            self.fills.iter().map(|(&id, &q)| (id, q)),
            self.cancels.iter().map(|(&id, &r)| (id, r)),
        );
        let b = &self.books;
        let _ = write!(
            s,
            "{}, {}, {}, ",
            int_array(b.keys().map(|&i| Some(i))),
            int_array(b.values().map(|&(last, _)| Some(last))),
            int_array(b.values().map(|&(_, next)| Some(next))),
        );
        let t = &self.trades;
        let _ = write!(
            s,
            "{}, {}, ",
            int_array(t.iter().map(|t| Some(t.0))),
            int_array(t.iter().map(|t| Some(t.1))),
        );
        push_trades(&mut s, t.iter().map(|t| &t.2));
        push_moves(&mut s, &self.shares, &self.cash);
        let _ = write!(s, "{}, ", int_array(self.ledger.iter().map(|l| Some(l.0))));
        push_ledger(&mut s, self.ledger.iter().map(|l| &l.1));
        let _ = write!(s, "{}, ", int_array(self.events.iter().map(|e| Some(e.0))));
        push_events(&mut s, self.events.iter().map(|e| &e.1));
        s.push_str(");");
        s
    }

    /// The same writes for SQLite: one statement per table, each taking its rows as one
    /// bound JSON list (read with `json_each`, inserted in list order), in the order a lone
    /// write runs them (orders before the trades that name them, fills before cancels). The
    /// text is the same for every batch, so it stays prepared; a table with no rows costs
    /// an empty statement.
    fn sqlite(&self, now: i64) -> Result<Sql, StoreError> {
        let mut s = Sql::new(Backend::Sqlite);
        let (placed, replaced): (Vec<_>, Vec<_>) =
            self.rows.values().partition(|(_, _, o)| o.insert);
        let placed: Vec<_> = placed
            .iter()
            .map(|(game, book, o)| {
                (
                    o.id,
                    game,
                    book,
                    o.account_id,
                    o.intent.side().as_str(),
                    o.intent.as_str(),
                    kind(o),
                    o.tif.as_str(),
                    o.price,
                    o.qty,
                    o.filled,
                    o.status.as_str(),
                    o.reason,
                    o.priority,
                )
            })
            .collect();
        let (t1, t2, rows) = (s.int(now), s.int(now), s.text_value(&json_list(&placed)?));
        s.push(&format!(
            "INSERT INTO ex_orders (id, game_id, instrument_id, account_id, side, intent, kind, \
                 tif, price, qty, filled, status, reason, priority, created_at, updated_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
                 value ->> 5, value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, \
                 value ->> 11, value ->> 12, value ->> 13, {t1}, {t2} \
             FROM json_each({rows}) ORDER BY key;"
        ));
        let replaced: Vec<_> = replaced
            .iter()
            .map(|(_, _, o)| {
                (
                    o.id,
                    o.price,
                    o.qty,
                    o.filled,
                    o.status.as_str(),
                    o.reason,
                    o.priority,
                )
            })
            .collect();
        let (t, rows) = (s.int(now), s.text_value(&json_list(&replaced)?));
        s.push(&format!(
            "UPDATE ex_orders SET price = j.value ->> 1, qty = j.value ->> 2, \
                 filled = j.value ->> 3, status = j.value ->> 4, reason = j.value ->> 5, \
                 priority = j.value ->> 6, updated_at = {t} \
             FROM json_each({rows}) AS j WHERE ex_orders.id = j.value ->> 0;"
        ));
        let fills: Vec<_> = self.fills.iter().collect();
        let (t, rows) = (s.int(now), s.text_value(&json_list(&fills)?));
        s.push(&format!(
            "UPDATE ex_orders SET filled = filled + (j.value ->> 1), \
                 status = CASE WHEN filled + (j.value ->> 1) >= qty THEN 'filled' \
                     ELSE status END, updated_at = {t} \
             FROM json_each({rows}) AS j WHERE ex_orders.id = j.value ->> 0;"
        ));
        let cancels: Vec<_> = self.cancels.iter().collect();
        let (t, rows) = (s.int(now), s.text_value(&json_list(&cancels)?));
        s.push(&format!(
            "UPDATE ex_orders SET status = 'cancelled', reason = j.value ->> 1, \
                 updated_at = {t} \
             FROM json_each({rows}) AS j \
             WHERE ex_orders.id = j.value ->> 0 AND ex_orders.status = 'open';"
        ));
        let books: Vec<_> = self.books.iter().map(|(i, (l, n))| (i, l, n)).collect();
        let rows = s.text_value(&json_list(&books)?);
        s.push(&format!(
            "UPDATE ex_instruments SET last_price = j.value ->> 1, \
                 next_priority = j.value ->> 2 \
             FROM json_each({rows}) AS j WHERE ex_instruments.id = j.value ->> 0;"
        ));
        let trades: Vec<_> = self
            .trades
            .iter()
            .map(|(game, book, t)| {
                (
                    t.id,
                    game,
                    book,
                    t.price,
                    t.qty,
                    t.buy_order_id,
                    t.sell_order_id,
                    t.taker_side.as_str(),
                )
            })
            .collect();
        let (t, rows) = (s.int(now), s.text_value(&json_list(&trades)?));
        s.push(&format!(
            "INSERT INTO ex_trades (id, game_id, instrument_id, price, qty, buy_order_id, \
                 sell_order_id, taker_side, created_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
                 value ->> 5, value ->> 6, value ->> 7, {t} \
             FROM json_each({rows}) ORDER BY key;"
        ));
        let shares: Vec<_> = self.shares.iter().map(|&((a, i), d)| (a, i, d)).collect();
        let rows = s.text_value(&json_list(&shares)?);
        s.push(&format!(
            "INSERT INTO ex_positions (account_id, instrument_id, qty) \
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each({rows}) WHERE true \
             ON CONFLICT (account_id, instrument_id) \
             DO UPDATE SET qty = ex_positions.qty + excluded.qty;"
        ));
        let rows = s.text_value(&json_list(&self.cash)?);
        s.push(&format!(
            "UPDATE ex_accounts SET cash = cash + (j.value ->> 1) \
             FROM json_each({rows}) AS j WHERE ex_accounts.id = j.value ->> 0;"
        ));
        let ledger: Vec<_> = self
            .ledger
            .iter()
            .map(|(game, l)| {
                (
                    game,
                    l.account_id,
                    l.instrument_id,
                    l.cash_delta,
                    l.share_delta,
                    l.reason.as_str(),
                    l.trade_id,
                )
            })
            .collect();
        let (t, rows) = (s.int(now), s.text_value(&json_list(&ledger)?));
        s.push(&format!(
            "INSERT INTO ex_ledger (game_id, account_id, instrument_id, cash_delta, \
                 share_delta, reason, trade_id, created_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
                 value ->> 5, value ->> 6, {t} \
             FROM json_each({rows}) ORDER BY key;"
        ));
        let events: Vec<_> = self
            .events
            .iter()
            .map(|(game, e)| {
                (
                    game,
                    e.kind.as_str(),
                    e.account_id,
                    e.instrument_id,
                    e.order_id,
                    e.trade_id,
                    e.price,
                    e.qty,
                    e.detail.as_str(),
                )
            })
            .collect();
        let (t, rows) = (s.int(now), s.text_value(&json_list(&events)?));
        s.push(&format!(
            "INSERT INTO ex_events (game_id, kind, account_id, instrument_id, order_id, \
                 trade_id, price, qty, detail, created_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
                 value ->> 5, value ->> 6, value ->> 7, value ->> 8, {t} \
             FROM json_each({rows}) ORDER BY key;"
        ));
        Ok(s)
    }
}

/// The stored kind of an order.
fn kind(o: &OrderWrite) -> &'static str {
    if o.market {
        "market"
    } else {
        "limit"
    }
}

/// What an order is after the batch, `price, qty, filled, status, reason, priority, ` of
/// `ex_write_batch`'s placed (`o_*`) and replaced (`u_*`) orders alike.
fn push_order_state<'a>(s: &mut String, o: impl Iterator<Item = &'a OrderWrite> + Clone) {
    let _ = write!(
        s,
        "{}, {}, {}, {}, {}, {}, ",
        int_array(o.clone().map(|o| o.price)),
        int_array(o.clone().map(|o| Some(o.qty))),
        int_array(o.clone().map(|o| Some(o.filled))),
        text_array(o.clone().map(|o| o.status.as_str())),
        opt_text_array(o.clone().map(|o| o.reason)),
        int_array(o.map(|o| Some(o.priority))),
    );
}

/// `f_order, f_qty, c_order, c_reason, ` of `ex_write` and `ex_write_batch`.
fn push_fills(
    s: &mut String,
    fills: impl Iterator<Item = (i64, i64)> + Clone,
    cancels: impl Iterator<Item = (i64, &'static str)> + Clone,
) {
    let _ = write!(
        s,
        "{}, {}, {}, {}, ",
        int_array(fills.clone().map(|(id, _)| Some(id))),
        int_array(fills.map(|(_, q)| Some(q))),
        int_array(cancels.clone().map(|(id, _)| Some(id))),
        text_array(cancels.map(|(_, r)| r)),
    );
}

/// `t_price, t_qty, t_buy, t_sell, t_side, `.
fn push_trades<'a>(s: &mut String, t: impl Iterator<Item = &'a TradeWrite> + Clone) {
    let _ = write!(
        s,
        "{}, {}, {}, {}, {}, ",
        int_array(t.clone().map(|t| Some(t.price))),
        int_array(t.clone().map(|t| Some(t.qty))),
        int_array(t.clone().map(|t| Some(t.buy_order_id))),
        int_array(t.clone().map(|t| Some(t.sell_order_id))),
        text_array(t.map(|t| t.taker_side.as_str())),
    );
}

/// `s_account, s_instrument, s_delta, m_account, m_delta, ` (netted, sorted).
fn push_moves(s: &mut String, shares: &[((i64, i64), i64)], cash: &[(i64, i64)]) {
    let _ = write!(
        s,
        "{}, {}, {}, {}, {}, ",
        int_array(shares.iter().map(|&((a, _), _)| Some(a))),
        int_array(shares.iter().map(|&((_, i), _)| Some(i))),
        int_array(shares.iter().map(|&(_, d)| Some(d))),
        int_array(cash.iter().map(|&(a, _)| Some(a))),
        int_array(cash.iter().map(|&(_, d)| Some(d))),
    );
}

/// `l_account, l_instrument, l_cash, l_share, l_reason, l_trade, `.
fn push_ledger<'a>(s: &mut String, l: impl Iterator<Item = &'a LedgerEntry> + Clone) {
    let _ = write!(
        s,
        "{}, {}, {}, {}, {}, {}, ",
        int_array(l.clone().map(|l| Some(l.account_id))),
        int_array(l.clone().map(|l| l.instrument_id)),
        int_array(l.clone().map(|l| Some(l.cash_delta))),
        int_array(l.clone().map(|l| Some(l.share_delta))),
        text_array(l.clone().map(|l| l.reason.as_str())),
        int_array(l.map(|l| l.trade_id)),
    );
}

/// `e_kind, ..., e_detail` (the last arguments: no comma after).
fn push_events<'a>(s: &mut String, e: impl Iterator<Item = &'a NewEvent> + Clone) {
    let _ = write!(
        s,
        "{}, {}, {}, {}, {}, {}, {}, {}",
        text_array(e.clone().map(|e| e.kind.as_str())),
        int_array(e.clone().map(|e| e.account_id)),
        int_array(e.clone().map(|e| e.instrument_id)),
        int_array(e.clone().map(|e| e.order_id)),
        int_array(e.clone().map(|e| e.trade_id)),
        int_array(e.clone().map(|e| e.price)),
        int_array(e.clone().map(|e| e.qty)),
        text_array(e.map(|e| e.detail.as_str())),
    );
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
                quote(o.intent.side().as_str()),
                quote(o.intent.as_str()),
                quote(kind(o)),
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
    push_trades(&mut s, w.trades.iter());
    let fills = net(w.maker_fills.iter().copied());
    push_fills(&mut s, fills.iter().copied(), w.cancels.iter().copied());
    let shares = net(w.shares.iter().map(|&(a, i, d)| ((a, i), d)));
    push_moves(&mut s, &shares, &net(w.cash.iter().copied()));
    push_ledger(&mut s, w.ledger.iter());
    push_events(&mut s, w.events.iter());
    s.push_str(");");
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

    fn order(id: i64, insert: bool, qty: i64) -> OrderWrite {
        OrderWrite {
            insert,
            id,
            account_id: 7,
            intent: Intent::Buy,
            market: false,
            tif: TimeInForce::Gtc,
            price: Some(100),
            qty,
            filled: 0,
            status: OrderStatus::Open,
            reason: None,
            priority: id,
        }
    }

    fn trade(buy: i64, sell: i64, qty: i64) -> TradeWrite {
        TradeWrite {
            id: 1,
            price: 100,
            qty,
            buy_order_id: buy,
            sell_order_id: sell,
            taker_side: Side::Sell,
        }
    }

    #[test]
    fn a_batch_nets_each_order_row_to_how_it_ends() {
        // 1: order 10 rests. 2: order 11 fills 4 of it and 3 of order 5 (from before the
        // batch). 3: order 12 fills the rest of 10 and cancels order 6 (self-trade). 4: order
        // 5 is replaced. 5: order 13 rests and 6 cancels it; 7: order 6 again, already gone.
        let mut w1 = BookWrite::empty(1, 2);
        w1.order = Some(order(10, true, 6));
        w1.book = Some((100, 11));
        w1.cash = vec![(7, -10), (3, 5)];
        let mut w2 = BookWrite::empty(1, 2);
        w2.order = Some(OrderWrite {
            intent: Intent::Sell,
            filled: 7,
            status: OrderStatus::Filled,
            ..order(11, true, 7)
        });
        w2.trades = vec![trade(10, 11, 4), trade(5, 11, 3)];
        w2.maker_fills = vec![(10, 4), (5, 3)];
        w2.shares = vec![(7, 2, 4), (8, 2, -4)];
        w2.cash = vec![(7, 10)];
        w2.ledger = vec![LedgerEntry {
            account_id: 7,
            instrument_id: Some(2),
            cash_delta: -400,
            share_delta: 4,
            reason: crate::store::exchange::LedgerReason::Trade,
            trade_id: Some(2),
        }];
        let mut w3 = BookWrite::empty(1, 3);
        w3.order = Some(order(12, true, 2));
        w3.trades = vec![trade(10, 12, 2)];
        w3.maker_fills = vec![(10, 2)];
        w3.cancels = vec![(6, "self_trade")];
        w3.book = Some((101, 13));
        w3.shares = vec![(7, 2, -4)];
        w3.events = vec![NewEvent {
            trade_id: Some(1),
            ..NewEvent::new(crate::exchange::model::EventKind::Trade)
        }];
        let mut w4 = BookWrite::empty(1, 2);
        w4.order = Some(OrderWrite {
            filled: 3,
            price: Some(90),
            ..order(5, false, 9)
        });
        w4.book = Some((100, 14));
        let mut w5 = BookWrite::empty(1, 2);
        w5.order = Some(order(13, true, 1));
        let mut w6 = BookWrite::empty(1, 2);
        w6.cancels = vec![(13, "user")];
        let mut w7 = BookWrite::empty(1, 2);
        w7.cancels = vec![(6, "user")];
        let writes = [w1, w2, w3, w4, w5, w6, w7];
        let n = Netted::of(&writes, true);

        let row = |id: i64| &n.rows[&id].2;
        assert_eq!((row(10).filled, row(10).status), (6, OrderStatus::Filled));
        assert!(row(10).insert && row(11).insert && !row(5).insert);
        // The replace says all of order 5, so its earlier fill is not added again.
        assert_eq!((row(5).filled, row(5).price), (3, Some(90)));
        assert!(n.fills.is_empty());
        assert_eq!(
            (row(13).status, row(13).reason),
            (OrderStatus::Cancelled, Some("user"))
        );
        // A cancel of an order from before the batch keeps its first reason.
        assert_eq!(n.cancels.iter().collect::<Vec<_>>(), [(&6, &"self_trade")]);
        // Each book's counters as its last write left them; one book per write's instrument.
        assert_eq!(n.books[&2], (100, 14));
        assert_eq!(n.books[&3], (101, 13));
        // Shares and cash net to their sums, zero sums dropped.
        assert_eq!(n.shares, vec![((8, 2), -4)]);
        assert_eq!(n.cash, vec![(3, 5)]);
        // Trades in order with their book; each write's trade numbers follow the earlier ones.
        assert_eq!(n.counts, vec![0, 2, 1, 0, 0, 0, 0]);
        assert_eq!(n.trades.iter().map(|t| t.1).collect::<Vec<_>>(), [2, 2, 3]);
        assert_eq!(n.ledger[0].1.trade_id, Some(2));
        assert_eq!(n.events[0].1.trade_id, Some(3));
        let call = n.call(99);
        assert!(call.starts_with("SELECT * FROM ex_write_batch(99, '{10,11,12,13}'::int8[]"));
        assert!(call.ends_with(");"));

        // SQLite's trade ids are real: nothing is shifted.
        let real = Netted::of(&writes, false);
        assert_eq!(real.ledger[0].1.trade_id, Some(2));
        assert_eq!(real.events[0].1.trade_id, Some(1));
    }

    #[test]
    fn sqlite_writes_a_batch_of_any_size_with_one_text() {
        let mut one = BookWrite::empty(1, 2);
        one.order = Some(order(10, true, 6));
        let mut other = BookWrite::empty(1, 3);
        other.order = Some(order(11, true, 5));
        other.trades = vec![trade(10, 11, 5)];
        other.maker_fills = vec![(10, 5)];
        other.cancels = vec![(4, "self_trade")];
        other.shares = vec![(7, 3, 5), (8, 3, -5)];
        other.cash = vec![(7, -500), (8, 500)];
        let small = Netted::of(std::slice::from_ref(&one), false);
        let large = Netted::of(&[one, other.clone(), other], false);
        let (a, a_args) = small.sqlite(1).unwrap().into_parts().unwrap();
        let (b, b_args) = large.sqlite(2).unwrap().into_parts().unwrap();
        assert_eq!(a, b);
        assert!(a_args.is_some() && b_args.is_some());
        // One statement per table, each reading one JSON list.
        assert_eq!(a.matches("json_each(?)").count(), 10);
    }

    #[test]
    fn net_adds_up_and_sorts() {
        assert_eq!(net([(3, 5), (1, 2), (3, -5), (1, 1)]), vec![(1, 3)]);
    }
}
