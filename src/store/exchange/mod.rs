//! Storage of the exchange: every SQL statement the exchange runs, and nothing else.
//!
//! Tables (migration `0002_exchange`): `ex_games`, `ex_instruments`, `ex_accounts` (one house
//! account per game holds issued shares and receives fees), `ex_positions`, `ex_orders`,
//! `ex_trades`, `ex_ledger` (every movement of cash and shares, with its reason) and
//! `ex_events` (what other processes follow). This module makes no decisions: which orders
//! fill, whether an order is allowed and which rows to write are decided by
//! [`crate::exchange`]; it only imports that module's plain data types.
//!
//! Reads that must be consistent with a write are methods of [`WriteTx`]; stand-alone reads
//! take a [`Db`].

pub mod audit;
pub mod board;
pub mod follow;
mod gate;
pub mod load;
mod mirror;
pub mod script;
pub mod sql;
pub mod tx;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

pub use load::{Crossing, LoadSpec, Loaded};
pub use tx::{Locks, WriteTx};

use crate::exchange::model::{
    Account, BookTop, Event, EventKind, Game, GameRules, Instrument, Intent, Level, NewEvent,
    NewInstrument, Order, OrderStatus, Side, StpMode, TimeInForce, Trade,
};
use crate::exchange::risk::{AccountView, Holding, OpenOrders};
use crate::store::{now_ms, Backend, Db, StoreError};

/// The PostgreSQL channel that wakes event followers; the payload is empty.
pub const NOTIFY_CHANNEL: &str = "nuggetnet_exchange";

/// A stored text column held a value the schema's CHECK constraint does not allow.
fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Sqlx(sqlx::Error::Decode(
        format!("unexpected {what} {value:?} in the exchange tables").into(),
    ))
}

const GAME_COLUMNS: &str = "id, name, status, starting_cash, initial_margin_bp, maint_long_bp, \
     maint_short_bp, borrow_fee_bp_day, fee_bp, collar_bp, stp_default";

fn game_from_row(row: &AnyRow) -> Result<Game, StoreError> {
    let status: String = row.try_get("status")?;
    let stp: String = row.try_get("stp_default")?;
    Ok(Game {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        open: status == "open",
        rules: GameRules {
            starting_cash: row.try_get("starting_cash")?,
            initial_margin_bp: row.try_get("initial_margin_bp")?,
            maint_long_bp: row.try_get("maint_long_bp")?,
            maint_short_bp: row.try_get("maint_short_bp")?,
            borrow_fee_bp_day: row.try_get("borrow_fee_bp_day")?,
            fee_bp: row.try_get("fee_bp")?,
            collar_bp: row.try_get("collar_bp")?,
            stp_default: StpMode::from_name(&stp).ok_or_else(|| corrupt("stp mode", &stp))?,
        },
    })
}

const INSTRUMENT_COLUMNS: &str =
    "id, game_id, symbol, name, profile, tick, shares_issued, last_price";

fn instrument_from_row(row: &AnyRow) -> Result<Instrument, StoreError> {
    Ok(Instrument {
        id: row.try_get("id")?,
        game_id: row.try_get("game_id")?,
        symbol: row.try_get("symbol")?,
        name: row.try_get("name")?,
        profile: row.try_get("profile")?,
        tick: row.try_get("tick")?,
        shares_issued: row.try_get("shares_issued")?,
        last_price: row.try_get("last_price")?,
    })
}

const ACCOUNT_COLUMNS: &str = "id, game_id, player_id, cash, margin_call_at";

fn account_from_row(row: &AnyRow) -> Result<Account, StoreError> {
    Ok(Account {
        id: row.try_get("id")?,
        game_id: row.try_get("game_id")?,
        player_id: row.try_get("player_id")?,
        cash: row.try_get("cash")?,
        margin_call_at: row.try_get("margin_call_at")?,
    })
}

const ORDER_COLUMNS: &str =
    "id, instrument_id, account_id, side, intent, tif, price, qty, filled, status, priority, created_at";

fn order_from_row(row: &AnyRow) -> Result<Order, StoreError> {
    let side: String = row.try_get("side")?;
    let intent: String = row.try_get("intent")?;
    let tif: String = row.try_get("tif")?;
    let status: String = row.try_get("status")?;
    Ok(Order {
        id: row.try_get("id")?,
        instrument_id: row.try_get("instrument_id")?,
        account_id: row.try_get("account_id")?,
        side: Side::from_name(&side).ok_or_else(|| corrupt("side", &side))?,
        intent: Intent::from_name(&intent).ok_or_else(|| corrupt("intent", &intent))?,
        tif: TimeInForce::from_name(&tif).ok_or_else(|| corrupt("time in force", &tif))?,
        price: row.try_get("price")?,
        qty: row.try_get("qty")?,
        filled: row.try_get("filled")?,
        status: OrderStatus::from_name(&status).ok_or_else(|| corrupt("status", &status))?,
        priority: row.try_get("priority")?,
        created_at: row.try_get("created_at")?,
    })
}

const EVENT_COLUMNS: &str = "seq, game_id, kind, account_id, instrument_id, order_id, trade_id, \
     price, qty, detail, created_at";

fn event_from_row(row: &AnyRow) -> Result<Event, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(Event {
        seq: row.try_get("seq")?,
        game_id: row.try_get("game_id")?,
        kind: EventKind::from_name(&kind).ok_or_else(|| corrupt("event kind", &kind))?,
        account_id: row.try_get("account_id")?,
        instrument_id: row.try_get("instrument_id")?,
        order_id: row.try_get("order_id")?,
        trade_id: row.try_get("trade_id")?,
        price: row.try_get("price")?,
        qty: row.try_get("qty")?,
        detail: row.try_get("detail")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Why a ledger row moved cash or shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerReason {
    Trade,
    Fee,
    Grant,
    BorrowFee,
    Dividend,
    Liquidation,
}

impl LedgerReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerReason::Trade => "trade",
            LedgerReason::Fee => "fee",
            LedgerReason::Grant => "grant",
            LedgerReason::BorrowFee => "borrow_fee",
            LedgerReason::Dividend => "dividend",
            LedgerReason::Liquidation => "liquidation",
        }
    }
}

/// One ledger row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub account_id: i64,
    pub instrument_id: Option<i64>,
    pub cash_delta: i64,
    pub share_delta: i64,
    pub reason: LedgerReason,
    pub trade_id: Option<i64>,
}

/// A resting order as the matcher sees it, with where it stands in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestingRow {
    pub order_id: i64,
    pub account_id: i64,
    pub price: i64,
    pub priority: i64,
    pub open_qty: i64,
}

/// Ids handed out at the start of a write transaction ([`WriteTx::load`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdHint {
    /// The id a new order in this transaction takes, when one was asked for.
    pub next_order: Option<i64>,
    /// New trades take the ids `trade_base + 1`, `trade_base + 2`, ... On SQLite (the write
    /// lock is held) these are the next free rowids. On PostgreSQL the base is 0 and the ids
    /// are placeholders: [`WriteTx::commit_book`] writes the trades with ids from the
    /// sequence, maps the placeholders in ledger and event rows to them, and returns them.
    pub trade_base: i64,
}

/// An instrument inside a write transaction, with its priority counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookState {
    pub instrument: Instrument,
    pub next_priority: i64,
}

/// `$a, $b, ...` placeholders for a multi-row insert of `rows` rows of `cols` columns.
fn placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::new();
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

/// Rows per multi-row insert, well below either engine's limit on bound parameters.
const INSERT_CHUNK: usize = 50;

impl WriteTx {
    /// The game and its house account.
    pub async fn game(&mut self, game_id: i64) -> Result<Option<(Game, i64)>, StoreError> {
        let sql = format!(
            "SELECT {GAME_COLUMNS}, (SELECT a.id FROM ex_accounts a \
                 WHERE a.game_id = g.id AND a.is_house = 1) AS house_id \
             FROM ex_games g WHERE g.id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(game_id)
            .fetch_optional(self.conn())
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let house: Option<i64> = row.try_get("house_id")?;
                let house = house.ok_or_else(|| corrupt("house account", "missing"))?;
                Ok(Some((game_from_row(&row)?, house)))
            }
        }
    }

    /// Saves the last trade price and the priority counter.
    pub async fn save_book(
        &mut self,
        instrument_id: i64,
        last_price: i64,
        next_priority: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE ex_instruments SET last_price = $1, next_priority = $2 WHERE id = $3")
            .bind(last_price)
            .bind(next_priority)
            .bind(instrument_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// An account by id.
    pub async fn account(&mut self, account_id: i64) -> Result<Option<Account>, StoreError> {
        account_by_id(self.conn(), account_id).await
    }

    /// Cash, holdings at their marks, and open orders of an account.
    pub async fn account_view(&mut self, account_id: i64) -> Result<AccountView, StoreError> {
        let known = self.mirror.as_ref().and_then(|m| m.view(account_id));
        self.settle_unless(known.is_some()).await?;
        let Some(known) = known else {
            return account_view(self.conn(), account_id).await;
        };
        if self.verify_mirror {
            let read = account_view(self.conn(), account_id).await?;
            load::mirror_agrees("account", &account_id, &known, &read)?;
        }
        Ok(known)
    }

    /// Counts a read of a planned batch and, unless its mirror answered it (and nobody checks
    /// that answer), sends the writes that wait, so the database can be read directly.
    async fn settle_unless(&mut self, answered: bool) -> Result<(), StoreError> {
        self.count_read(answered);
        if !answered || self.verify_mirror {
            self.settle().await?;
        }
        Ok(())
    }

    /// Up to `limit` open orders on `side` of a book that an order with worst price `worst`
    /// would trade with, best first, after position `after` (price, priority) if given.
    pub async fn resting(
        &mut self,
        instrument_id: i64,
        side: Side,
        worst: i64,
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<RestingRow>, StoreError> {
        let known = self
            .mirror
            .as_ref()
            .and_then(|m| m.resting(instrument_id, side, worst, after, limit));
        self.settle_unless(known.is_some()).await?;
        let Some(known) = known else {
            return self
                .read_resting(instrument_id, side, worst, after, limit)
                .await;
        };
        if self.verify_mirror {
            let read = self
                .read_resting(instrument_id, side, worst, after, limit)
                .await?;
            let asked = (instrument_id, side, worst, after, limit);
            load::mirror_agrees("crossing orders", &asked, &known, &read)?;
        }
        Ok(known)
    }

    /// [`WriteTx::resting`] from the database.
    async fn read_resting(
        &mut self,
        instrument_id: i64,
        side: Side,
        worst: i64,
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<RestingRow>, StoreError> {
        let (cmp, order, beyond) = match side {
            Side::Sell => ("price <= $3", "price ASC, priority ASC", "price > $4"),
            Side::Buy => ("price >= $3", "price DESC, priority ASC", "price < $4"),
        };
        let after_clause = if after.is_some() {
            format!("AND ({beyond} OR (price = $4 AND priority > $5))")
        } else {
            // Both forms bind the same parameters, so the unused ones are mentioned harmlessly.
            "AND $4 = $4 AND $5 = $5".to_string()
        };
        let sql = format!(
            "SELECT id, account_id, price, priority, qty - filled AS open_qty FROM ex_orders \
             WHERE instrument_id = $1 AND side = $2 AND status = 'open' AND {cmp} {after_clause} \
             ORDER BY {order} LIMIT $6"
        );
        let (ap, aq) = after.unwrap_or((0, 0));
        let rows = sqlx::query(&sql)
            .bind(instrument_id)
            .bind(side.as_str())
            .bind(worst)
            .bind(ap)
            .bind(aq)
            .bind(limit)
            .fetch_all(self.conn())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(RestingRow {
                    order_id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    price: row.try_get::<Option<i64>, _>("price")?.unwrap_or(0),
                    priority: row.try_get("priority")?,
                    open_qty: row.try_get("open_qty")?,
                })
            })
            .collect()
    }

    /// Open orders of an account on one instrument, or on all when `instrument_id` is `None`.
    pub async fn open_orders_of(
        &mut self,
        account_id: i64,
        instrument_id: Option<i64>,
    ) -> Result<Vec<Order>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM ex_orders WHERE account_id = $1 AND status = 'open' \
             AND ($2 = 0 OR instrument_id = $2) ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(account_id)
            .bind(instrument_id.unwrap_or(0))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Open day orders of one book.
    pub async fn open_day_orders(&mut self, instrument_id: i64) -> Result<Vec<Order>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM ex_orders \
             WHERE instrument_id = $1 AND status = 'open' AND tif = 'day' ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(instrument_id)
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Rewrites an existing order's price, size, fill, status and priority (a replace).
    #[allow(clippy::too_many_arguments)]
    pub async fn update_order(
        &mut self,
        order_id: i64,
        price: Option<i64>,
        qty: i64,
        filled: i64,
        status: OrderStatus,
        reason: Option<&'static str>,
        priority: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE ex_orders SET price = $1, qty = $2, filled = $3, status = $4, reason = $5, \
                 priority = $6, updated_at = $7 WHERE id = $8",
        )
        .bind(price)
        .bind(qty)
        .bind(filled)
        .bind(status.as_str())
        .bind(reason)
        .bind(priority)
        .bind(now_ms())
        .bind(order_id)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Cancels an open order; returns whether it was open.
    pub async fn cancel_order(
        &mut self,
        order_id: i64,
        reason: &'static str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE ex_orders SET status = 'cancelled', reason = $1, updated_at = $2 \
             WHERE id = $3 AND status = 'open'",
        )
        .bind(reason)
        .bind(now_ms())
        .bind(order_id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds `delta` shares to positions; `moves` is (account, instrument, delta).
    pub async fn move_shares(&mut self, moves: &[(i64, i64, i64)]) -> Result<(), StoreError> {
        for &(account_id, instrument_id, delta) in moves {
            if delta == 0 {
                continue;
            }
            sqlx::query(
                "INSERT INTO ex_positions (account_id, instrument_id, qty) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id, instrument_id) \
                 DO UPDATE SET qty = ex_positions.qty + excluded.qty",
            )
            .bind(account_id)
            .bind(instrument_id)
            .bind(delta)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// Adds cash to accounts; `moves` is (account, delta). Rows are updated in account order
    /// so that concurrent transactions cannot deadlock on them.
    pub async fn move_cash(&mut self, moves: &[(i64, i64)]) -> Result<(), StoreError> {
        let mut sorted: Vec<(i64, i64)> = Vec::with_capacity(moves.len());
        for &(account, delta) in moves {
            match sorted.iter_mut().find(|(a, _)| *a == account) {
                Some((_, d)) => *d += delta,
                None => sorted.push((account, delta)),
            }
        }
        sorted.sort_unstable();
        for (account, delta) in sorted {
            if delta == 0 {
                continue;
            }
            sqlx::query("UPDATE ex_accounts SET cash = cash + $1 WHERE id = $2")
                .bind(delta)
                .bind(account)
                .execute(self.conn())
                .await?;
        }
        Ok(())
    }

    /// Writes ledger rows.
    pub async fn ledger(&mut self, game_id: i64, rows: &[LedgerEntry]) -> Result<(), StoreError> {
        let now = now_ms();
        for chunk in rows.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO ex_ledger (game_id, account_id, instrument_id, cash_delta, \
                     share_delta, reason, trade_id, created_at) VALUES {}",
                placeholders(chunk.len(), 8)
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(game_id)
                    .bind(r.account_id)
                    .bind(r.instrument_id)
                    .bind(r.cash_delta)
                    .bind(r.share_delta)
                    .bind(r.reason.as_str())
                    .bind(r.trade_id)
                    .bind(now);
            }
            q.execute(self.conn()).await?;
        }
        Ok(())
    }

    /// Writes events and, on PostgreSQL, wakes the followers once at commit.
    pub async fn events(&mut self, game_id: i64, events: &[NewEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        for chunk in events.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO ex_events (game_id, kind, account_id, instrument_id, order_id, \
                     trade_id, price, qty, detail, created_at) VALUES {}",
                placeholders(chunk.len(), 10)
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(game_id)
                    .bind(e.kind.as_str())
                    .bind(e.account_id)
                    .bind(e.instrument_id)
                    .bind(e.order_id)
                    .bind(e.trade_id)
                    .bind(e.price)
                    .bind(e.qty)
                    .bind(e.detail.as_str())
                    .bind(now);
            }
            q.execute(self.conn()).await?;
        }
        self.wrote_events = true;
        Ok(())
    }

    /// Sets or clears an account's margin-call time.
    pub async fn set_margin_call(
        &mut self,
        account_id: i64,
        at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE ex_accounts SET margin_call_at = $1 WHERE id = $2")
            .bind(at)
            .bind(account_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Every nonzero position in one instrument: (account, qty).
    pub async fn holders(&mut self, instrument_id: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_id, qty FROM ex_positions WHERE instrument_id = $1 AND qty <> 0 \
             ORDER BY account_id",
        )
        .bind(instrument_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("account_id")?, r.try_get("qty")?)))
            .collect()
    }

    /// Inserts a game and its house account.
    pub async fn insert_game(&mut self, name: &str, rules: &GameRules) -> Result<Game, StoreError> {
        let now = now_ms();
        let sql = format!(
            "INSERT INTO ex_games (name, status, starting_cash, initial_margin_bp, maint_long_bp, \
                 maint_short_bp, borrow_fee_bp_day, fee_bp, collar_bp, stp_default, created_at) \
             VALUES ($1, 'open', $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {GAME_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .bind(rules.starting_cash)
            .bind(rules.initial_margin_bp)
            .bind(rules.maint_long_bp)
            .bind(rules.maint_short_bp)
            .bind(rules.borrow_fee_bp_day)
            .bind(rules.fee_bp)
            .bind(rules.collar_bp)
            .bind(rules.stp_default.as_str())
            .bind(now)
            .fetch_one(self.conn())
            .await?;
        let game = game_from_row(&row)?;
        sqlx::query(
            "INSERT INTO ex_accounts (game_id, player_id, is_house, cash, created_at) \
             VALUES ($1, NULL, 1, 0, $2)",
        )
        .bind(game.id)
        .bind(now)
        .execute(self.conn())
        .await?;
        Ok(game)
    }

    /// Marks a game over.
    pub async fn end_game(&mut self, game_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE ex_games SET status = 'over' WHERE id = $1")
            .bind(game_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Inserts an instrument; `None` if the symbol is taken in this game.
    pub async fn insert_instrument(
        &mut self,
        game_id: i64,
        new: &NewInstrument<'_>,
    ) -> Result<Option<Instrument>, StoreError> {
        let sql = format!(
            "INSERT INTO ex_instruments (game_id, symbol, name, profile, tick, shares_issued, \
                 last_price, next_priority) \
             SELECT $1, $2, $3, $4, $5, $6, $7, 1 \
             WHERE NOT EXISTS (SELECT 1 FROM ex_instruments WHERE game_id = $1 AND symbol = $2) \
             RETURNING {INSTRUMENT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(game_id)
            .bind(new.symbol)
            .bind(new.name)
            .bind(new.profile)
            .bind(new.tick)
            .bind(new.shares_issued)
            .bind(new.initial_price)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(instrument_from_row).transpose()
    }

    /// Inserts a player's account; `None` if the player already has one in this game.
    pub async fn insert_account(
        &mut self,
        game_id: i64,
        player_id: i64,
    ) -> Result<Option<Account>, StoreError> {
        let sql = format!(
            "INSERT INTO ex_accounts (game_id, player_id, is_house, cash, created_at) \
             SELECT $1, $2, 0, 0, $3 \
             WHERE NOT EXISTS (SELECT 1 FROM ex_accounts WHERE game_id = $1 AND player_id = $2) \
             RETURNING {ACCOUNT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(game_id)
            .bind(player_id)
            .bind(now_ms())
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Every short position in a game with its mark: (account, instrument, qty, mark).
    pub async fn short_positions(
        &mut self,
        game_id: i64,
    ) -> Result<Vec<(i64, i64, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.account_id, p.instrument_id, p.qty, i.last_price FROM ex_positions p \
             JOIN ex_instruments i ON i.id = p.instrument_id \
             WHERE i.game_id = $1 AND p.qty < 0 ORDER BY p.account_id, p.instrument_id",
        )
        .bind(game_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("account_id")?,
                    r.try_get("instrument_id")?,
                    r.try_get("qty")?,
                    r.try_get("last_price")?,
                ))
            })
            .collect()
    }
}

async fn account_by_id(
    conn: &mut AnyConnection,
    account_id: i64,
) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM ex_accounts WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(account_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(account_from_row).transpose()
}

async fn account_view(
    conn: &mut AnyConnection,
    account_id: i64,
) -> Result<AccountView, StoreError> {
    // Cash (k = 0), holdings at their marks (k = 1) and open orders (k = 2) in one query.
    let rows = sqlx::query(
        "SELECT CAST(0 AS BIGINT) AS k, cash AS a, CAST(0 AS BIGINT) AS b, \
                CAST(0 AS BIGINT) AS c, '' AS t \
         FROM ex_accounts WHERE id = $1 \
         UNION ALL \
         SELECT 1, p.instrument_id, p.qty, i.last_price, '' FROM ex_positions p \
         JOIN ex_instruments i ON i.id = p.instrument_id \
         WHERE p.account_id = $1 AND p.qty <> 0 \
         UNION ALL \
         SELECT 2, instrument_id, CAST(SUM(qty - filled) AS BIGINT), \
                CAST(SUM((qty - filled) * COALESCE(price, 0)) AS BIGINT), intent \
         FROM ex_orders WHERE account_id = $1 AND status = 'open' \
         GROUP BY instrument_id, intent",
    )
    .bind(account_id)
    .fetch_all(conn)
    .await?;
    let mut view = AccountView::default();
    for r in &rows {
        let k: i64 = r.try_get("k")?;
        let (a, b, c): (i64, i64, i64) = (r.try_get("a")?, r.try_get("b")?, r.try_get("c")?);
        match k {
            0 => view.cash = a,
            1 => view.holdings.push(Holding {
                instrument_id: a,
                qty: b,
                mark: c,
            }),
            _ => {
                let intent: String = r.try_get("t")?;
                view.open_orders.push(OpenOrders {
                    instrument_id: a,
                    intent: Intent::from_name(&intent).ok_or_else(|| corrupt("intent", &intent))?,
                    open_qty: b,
                    value: c,
                });
            }
        }
    }
    view.holdings.sort_by_key(|h| h.instrument_id);
    view.open_orders
        .sort_by_key(|o| (o.instrument_id, o.intent.as_str()));
    Ok(view)
}

/// A game by id.
pub async fn game(db: &Db, game_id: i64) -> Result<Option<Game>, StoreError> {
    let sql = format!("SELECT {GAME_COLUMNS} FROM ex_games WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(game_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(game_from_row).transpose()
}

/// Every game, newest first.
pub async fn games(db: &Db) -> Result<Vec<Game>, StoreError> {
    let sql = format!("SELECT {GAME_COLUMNS} FROM ex_games ORDER BY id DESC");
    let rows = sqlx::query(&sql).fetch_all(db.pool()).await?;
    rows.iter().map(game_from_row).collect()
}

/// The instruments of a game, by symbol.
pub async fn instruments(db: &Db, game_id: i64) -> Result<Vec<Instrument>, StoreError> {
    let sql = format!(
        "SELECT {INSTRUMENT_COLUMNS} FROM ex_instruments WHERE game_id = $1 ORDER BY symbol"
    );
    let rows = sqlx::query(&sql).bind(game_id).fetch_all(db.pool()).await?;
    rows.iter().map(instrument_from_row).collect()
}

/// An instrument by symbol (exact, upper case).
pub async fn instrument_by_symbol(
    db: &Db,
    game_id: i64,
    symbol: &str,
) -> Result<Option<Instrument>, StoreError> {
    let sql = format!(
        "SELECT {INSTRUMENT_COLUMNS} FROM ex_instruments WHERE game_id = $1 AND symbol = $2"
    );
    let row = sqlx::query(&sql)
        .bind(game_id)
        .bind(symbol)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(instrument_from_row).transpose()
}

/// A player's account in a game.
pub async fn account_by_player(
    db: &Db,
    game_id: i64,
    player_id: i64,
) -> Result<Option<Account>, StoreError> {
    let sql =
        format!("SELECT {ACCOUNT_COLUMNS} FROM ex_accounts WHERE game_id = $1 AND player_id = $2");
    let row = sqlx::query(&sql)
        .bind(game_id)
        .bind(player_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(account_from_row).transpose()
}

/// Accounts of a game (not the house) that hold positions or have a margin call open.
pub async fn margin_candidates(db: &Db, game_id: i64) -> Result<Vec<i64>, StoreError> {
    let rows = sqlx::query(
        "SELECT a.id FROM ex_accounts a WHERE a.game_id = $1 AND a.is_house = 0 AND \
             (a.margin_call_at IS NOT NULL OR EXISTS \
                 (SELECT 1 FROM ex_positions p WHERE p.account_id = a.id AND p.qty <> 0)) \
         ORDER BY a.id",
    )
    .bind(game_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

/// An account by id.
pub async fn account(db: &Db, account_id: i64) -> Result<Option<Account>, StoreError> {
    let mut conn = db.pool().acquire().await?;
    account_by_id(&mut conn, account_id).await
}

/// An account's cash, holdings and open orders, read outside any write transaction.
pub async fn read_account_view(db: &Db, account_id: i64) -> Result<AccountView, StoreError> {
    let mut conn = db.pool().acquire().await?;
    account_view(&mut conn, account_id).await
}

/// An order by id.
pub async fn order(db: &Db, order_id: i64) -> Result<Option<Order>, StoreError> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM ex_orders WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(order_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(order_from_row).transpose()
}

/// Orders of an account, newest first; only open ones if `open_only`.
pub async fn orders_of(
    db: &Db,
    account_id: i64,
    open_only: bool,
    limit: i64,
) -> Result<Vec<Order>, StoreError> {
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM ex_orders WHERE account_id = $1 \
         AND ($2 = 0 OR status = 'open') ORDER BY id DESC LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(account_id)
        .bind(i64::from(open_only))
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(order_from_row).collect()
}

/// Which of `ids` exist as orders.
pub async fn existing_orders(db: &Db, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
    let mut found = Vec::new();
    for chunk in ids.chunks(500) {
        let list: Vec<String> = chunk.iter().map(|id| id.to_string()).collect();
        // The ids are integers formatted here, not outside text, so inlining them is safe.
        let sql = format!("SELECT id FROM ex_orders WHERE id IN ({})", list.join(", "));
        for row in sqlx::query(&sql).fetch_all(db.pool()).await? {
            found.push(row.try_get("id")?);
        }
    }
    Ok(found)
}

/// The top `depth` price levels of each side of a book.
pub async fn book_top(db: &Db, instrument_id: i64, depth: i64) -> Result<BookTop, StoreError> {
    let mut top = BookTop::default();
    for (side, order) in [(Side::Buy, "DESC"), (Side::Sell, "ASC")] {
        let sql = format!(
            "SELECT price, CAST(SUM(qty - filled) AS BIGINT) AS q, COUNT(*) AS n FROM ex_orders \
             WHERE instrument_id = $1 AND side = $2 AND status = 'open' \
             GROUP BY price ORDER BY price {order} LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(instrument_id)
            .bind(side.as_str())
            .bind(depth)
            .fetch_all(db.pool())
            .await?;
        let levels = rows
            .iter()
            .map(|r| {
                Ok(Level {
                    price: r.try_get::<Option<i64>, _>("price")?.unwrap_or(0),
                    qty: r.try_get("q")?,
                    orders: r.try_get("n")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        match side {
            Side::Buy => top.bids = levels,
            Side::Sell => top.asks = levels,
        }
    }
    Ok(top)
}

/// The latest trades of an instrument, newest first.
pub async fn tape(db: &Db, instrument_id: i64, limit: i64) -> Result<Vec<Trade>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, instrument_id, price, qty, buy_order_id, sell_order_id, taker_side, \
             created_at FROM ex_trades WHERE instrument_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(instrument_id)
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

/// Events of every game with sequence numbers from `from_seq` on, oldest first. Followers
/// filter by game themselves, so that another game's events never look like a gap.
pub async fn events_since(db: &Db, from_seq: i64, limit: i64) -> Result<Vec<Event>, StoreError> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} FROM ex_events WHERE seq >= $1 ORDER BY seq LIMIT $2");
    let rows = sqlx::query(&sql)
        .bind(from_seq)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(event_from_row).collect()
}

/// The highest event sequence number so far (0 if none).
pub async fn last_event_seq(db: &Db) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM ex_events")
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("s")?)
}

/// Refreshes the exchange tables' planner statistics and, on PostgreSQL, clears their dead
/// rows, as `pgbench` does to its own tables before a run. For load tools: a server with
/// autovacuum off (or lagging) otherwise plans a fresh book from an empty table's statistics.
pub async fn vacuum_analyze(db: &Db) -> Result<(), StoreError> {
    vacuum_analyze_tables(db, EXCHANGE_TABLES).await
}

/// The exchange's tables, for [`vacuum_analyze_tables`].
pub const EXCHANGE_TABLES: &str =
    "ex_games, ex_instruments, ex_accounts, ex_positions, ex_orders, ex_trades, ex_ledger, \
     ex_events";

/// `VACUUM ANALYZE` of the named tables (comma-separated) on PostgreSQL. For benchmarks,
/// which must not measure plans made from the statistics of empty tables on a server without
/// autovacuum.
///
/// Nothing on SQLite: its planner does well on these tables without statistics, and with
/// them it does worse here. Our SQLite is built with STAT4, and once `ANALYZE` has written
/// samples, a prepared statement whose plan might depend on a bound value is prepared again
/// every time a new value is bound, which made the exchange's statements, kept prepared for
/// speed, cost a fresh parse on every order (a sixth of the order writer's time in a profile).
pub async fn vacuum_analyze_tables(db: &Db, tables: &str) -> Result<(), StoreError> {
    if db.backend() == Backend::Postgres {
        sqlx::raw_sql(&format!("VACUUM ANALYZE {tables}"))
            .execute(db.pool())
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_and_columns() {
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }

    /// Migrations 0015-0017 (PostgreSQL): each exchange function plans its statements by key
    /// and index scan whatever the tables held at its first call, and draws new ids from
    /// sequences named when it is planned. SQLite has no such functions.
    #[tokio::test]
    async fn exchange_functions_plan_by_index_and_name_their_sequences() {
        let t = crate::store::testing::fresh_db().await;
        if t.db.backend() != Backend::Postgres {
            return;
        }
        let rows = sqlx::query(
            "SELECT CAST(proname AS TEXT) AS name, array_to_string(proconfig, ',') AS config, \
                    prosrc AS src \
             FROM pg_proc \
             WHERE proname IN ('ex_load', 'ex_write', 'ex_prefetch', 'ex_write_batch') \
             ORDER BY proname",
        )
        .fetch_all(t.db.pool())
        .await
        .unwrap();
        let names: Vec<String> = rows.iter().map(|r| r.get("name")).collect();
        assert_eq!(
            names,
            ["ex_load", "ex_prefetch", "ex_write", "ex_write_batch"]
        );
        for row in &rows {
            let (name, config, src): (String, String, String) =
                (row.get("name"), row.get("config"), row.get("src"));
            for setting in [
                "plan_cache_mode=force_generic_plan",
                "enable_seqscan=off",
                "enable_hashjoin=off",
                "enable_mergejoin=off",
                "enable_bitmapscan=off",
            ] {
                assert!(config.split(',').any(|c| c == setting), "{name}: {config}");
            }
            assert!(!src.contains("pg_get_serial_sequence"), "{name}");
            assert!(src.contains("_id_seq'::regclass)"), "{name}");
        }
    }
}
