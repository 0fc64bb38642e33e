//! The exchange: one order book per instrument, kept in the database and shared by every
//! process, with cash, positions, a ledger and an event log whose books always balance.
//!
//! [`Exchange`] is the API the door, the market simulation and the sysop tools call. It owns
//! the trading rules: price-time priority and partial fills ([`matching`], a pure core with no
//! I/O and no clock), solvency ([`risk`], equally pure), and the order of work inside each
//! transaction ([`engine`]). It must not contain SQL (that is [`crate::store::exchange`]) and
//! knows nothing of the BBS: a player is an opaque `player_id` chosen by the caller.
//!
//! Money is integer cents, quantities integer shares, and prices integer cents that must be a
//! whole number of the instrument's tick. Every order (validate, match, write trades, move
//! cash and shares, ledger, events) is all or nothing: one transaction, or one step of a
//! [`batch`] whose transaction commits before any of its orders is acknowledged (the
//! simulator's tick, the order [`writer`]). An acknowledged order is committed.

pub mod batch;
pub mod engine;
pub mod events;
pub mod matching;
pub mod model;
pub mod risk;
pub mod writer;

pub use batch::{Batch, Done};
pub use engine::MarginReport;
pub use events::Subscription;
pub use model::*;

use crate::store::exchange as sx;
use crate::store::{Db, StoreError};

/// What went wrong with a request; the messages are written for the player. Serializable
/// (but for `Store`, which an order writer sends as `Internal`) so that an order writer can
/// hand a refusal back to the process that asked.
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ExchangeError {
    /// The quantity is zero, negative or absurdly large.
    #[error("the quantity must be a whole number of shares above zero")]
    BadQuantity,
    /// The price is zero, negative or absurdly large.
    #[error("the price must be above zero")]
    BadPrice,
    /// The price is not a whole number of ticks.
    #[error("{price} is not on the tick: prices move in steps of {tick}")]
    OffTick { price: Cents, tick: Cents },
    /// The price is too far from the last trade.
    #[error("{price} is outside today's collar of {low} to {high}")]
    OutsideCollar {
        price: Cents,
        low: Cents,
        high: Cents,
    },
    /// No instrument has this symbol in this game.
    #[error("there is no stock called {0:?} on this exchange")]
    UnknownSymbol(String),
    /// An instrument id that does not belong to the game.
    #[error("there is no such stock on this exchange")]
    UnknownInstrument,
    /// No such game.
    #[error("there is no such game")]
    UnknownGame,
    /// The player has no account in this game.
    #[error("you have no account in this game")]
    NoAccount,
    /// The player already has an account in this game.
    #[error("you already have an account in this game")]
    AccountExists,
    /// The symbol is already listed in this game.
    #[error("the symbol {0:?} is already listed")]
    SymbolTaken(String),
    /// The game is over and trading is frozen.
    #[error("this game is over; trading is closed")]
    GameOver,
    /// Not enough buying power for an order that adds exposure.
    #[error("not enough buying power: this order needs {needed} but you have {available}")]
    InsufficientFunds { needed: Cents, available: Cents },
    /// Not enough free shares to sell or to cover.
    #[error("not enough shares: this order needs {needed} but you have {available} free")]
    InsufficientShares { needed: i64, available: i64 },
    /// The order belongs to somebody else.
    #[error("that order is not yours")]
    NotYourOrder,
    /// No such order.
    #[error("there is no such order")]
    UnknownOrder,
    /// The order is no longer open (filled or cancelled already).
    #[error("that order is no longer open")]
    OrderClosed,
    /// The numbers involved overflow what the exchange can hold.
    #[error("those numbers are too large")]
    TooLarge,
    /// A storage failure; the details go to the log, the player sees only this.
    #[error("internal error")]
    #[serde(skip)]
    Store(#[from] StoreError),
    /// A storage failure in the order writer (its log has the details).
    #[error("internal error")]
    Internal,
    /// The order writer stopped answering while it had the request: it may or may not have
    /// been carried out.
    #[error("the exchange did not answer; check your orders before you try again")]
    NoAnswer,
}

/// The exchange handle: cheap to clone, shared by every task of a process.
#[derive(Clone, Debug)]
pub struct Exchange {
    db: Db,
    /// The PostgreSQL URL for LISTEN; without it followers poll.
    listen_url: Option<String>,
    /// The order writer that places, cancels and replaces go through, if any.
    writer: Option<std::sync::Arc<writer::WriterClient>>,
}

impl Exchange {
    /// Uses an open database. Event followers poll the events table.
    pub fn new(db: Db) -> Exchange {
        Exchange {
            db,
            listen_url: None,
            writer: None,
        }
    }

    /// Opens (and migrates) the database at `url`; on PostgreSQL followers are woken by
    /// LISTEN/NOTIFY.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Exchange, ExchangeError> {
        let db = Db::open(url, max_connections).await?;
        let listen_url = url.starts_with("postgres").then(|| url.to_string());
        Ok(Exchange {
            db,
            listen_url,
            writer: None,
        })
    }

    /// Sends places, cancels and replaces to the order writer on the Unix socket `path`
    /// (see [`writer`]); while no writer answers there, they run directly.
    pub fn with_writer(mut self, path: &std::path::Path) -> Exchange {
        self.writer = Some(std::sync::Arc::new(writer::WriterClient::new(path)));
        self
    }

    /// Carries out a place, cancel or replace: through the writer if there is one and it
    /// answers, else here in a transaction of its own.
    async fn submit(&self, op: writer::Op) -> Result<OrderAck, ExchangeError> {
        if let Some(client) = &self.writer {
            if let writer::Route::Answered(answer) = client.call(op.clone()).await {
                return answer;
            }
        }
        self.run_alone(&op).await
    }

    /// One place, cancel or replace in a transaction of its own, here.
    pub(crate) async fn run_alone(&self, op: &writer::Op) -> Result<OrderAck, ExchangeError> {
        let result = match *op {
            writer::Op::Place {
                game_id,
                account_id,
                instrument_id,
                ref req,
            } => {
                let spec = engine::PlaceSpec::of_request(game_id, account_id, instrument_id, req);
                engine::place(&self.db, &spec).await
            }
            writer::Op::Cancel {
                game_id,
                account_id,
                order_id,
            } => engine::cancel(
                &self.db,
                game_id,
                Some(account_id),
                order_id,
                CancelReason::User,
            )
            .await
            .map(|order| writer::ack_of(&Done::Cancelled(order))),
            writer::Op::Replace {
                game_id,
                account_id,
                order_id,
                new_price,
                new_open_qty,
            } => {
                engine::replace(
                    &self.db,
                    game_id,
                    account_id,
                    order_id,
                    new_price,
                    new_open_qty,
                )
                .await
            }
        };
        log_store_error(&result);
        result
    }

    /// Sets the URL event followers LISTEN on (PostgreSQL only).
    pub fn with_listen_url(mut self, url: &str) -> Exchange {
        self.listen_url = url.starts_with("postgres").then(|| url.to_string());
        self
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Starts a new game (season) with its own house account.
    pub async fn create_game(&self, name: &str, rules: &GameRules) -> Result<Game, ExchangeError> {
        let mut tx = sx::WriteTx::begin(&self.db, sx::Locks::default()).await?;
        let game = tx.insert_game(name, rules).await?;
        tx.commit().await?;
        Ok(game)
    }

    /// A game by id.
    pub async fn game(&self, game_id: i64) -> Result<Game, ExchangeError> {
        sx::game(&self.db, game_id)
            .await?
            .ok_or(ExchangeError::UnknownGame)
    }

    /// Every game, newest first.
    pub async fn games(&self) -> Result<Vec<Game>, ExchangeError> {
        Ok(sx::games(&self.db).await?)
    }

    /// Ends a game: trading freezes; open orders stay as they are for the record.
    pub async fn end_game(&self, game_id: i64) -> Result<(), ExchangeError> {
        let mut tx = sx::WriteTx::begin(&self.db, sx::Locks::default()).await?;
        tx.game(game_id).await?.ok_or(ExchangeError::UnknownGame)?;
        tx.end_game(game_id).await?;
        tx.events(game_id, &[NewEvent::new(EventKind::GameOver)])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lists an instrument; the house holds all its issued shares.
    pub async fn list_instrument(
        &self,
        game_id: i64,
        new: &NewInstrument<'_>,
    ) -> Result<Instrument, ExchangeError> {
        if new.tick <= 0 || new.initial_price <= 0 || new.initial_price % new.tick != 0 {
            return Err(ExchangeError::BadPrice);
        }
        if new.shares_issued < 0 {
            return Err(ExchangeError::BadQuantity);
        }
        let mut tx = sx::WriteTx::begin(&self.db, sx::Locks::default()).await?;
        let (_game, house) = tx.game(game_id).await?.ok_or(ExchangeError::UnknownGame)?;
        let inst = tx
            .insert_instrument(game_id, new)
            .await?
            .ok_or_else(|| ExchangeError::SymbolTaken(new.symbol.to_string()))?;
        tx.move_shares(&[(house, inst.id, new.shares_issued)])
            .await?;
        tx.ledger(
            game_id,
            &[sx::LedgerEntry {
                account_id: house,
                instrument_id: Some(inst.id),
                cash_delta: 0,
                share_delta: new.shares_issued,
                reason: sx::LedgerReason::Grant,
                trade_id: None,
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(inst)
    }

    /// The instruments of a game, by symbol.
    pub async fn instruments(&self, game_id: i64) -> Result<Vec<Instrument>, ExchangeError> {
        Ok(sx::instruments(&self.db, game_id).await?)
    }

    /// An instrument by symbol (case does not matter).
    pub async fn instrument(
        &self,
        game_id: i64,
        symbol: &str,
    ) -> Result<Instrument, ExchangeError> {
        let symbol = symbol.trim().to_ascii_uppercase();
        sx::instrument_by_symbol(&self.db, game_id, &symbol)
            .await?
            .ok_or(ExchangeError::UnknownSymbol(symbol))
    }

    /// Opens a player's account in a game with the game's starting cash.
    pub async fn open_account(
        &self,
        game_id: i64,
        player_id: i64,
    ) -> Result<Account, ExchangeError> {
        let mut tx = sx::WriteTx::begin(&self.db, sx::Locks::default()).await?;
        let (game, _house) = tx.game(game_id).await?.ok_or(ExchangeError::UnknownGame)?;
        if !game.open {
            return Err(ExchangeError::GameOver);
        }
        let mut account = tx
            .insert_account(game_id, player_id)
            .await?
            .ok_or(ExchangeError::AccountExists)?;
        let cash = game.rules.starting_cash;
        if cash > 0 {
            tx.move_cash(&[(account.id, cash)]).await?;
            tx.ledger(
                game_id,
                &[sx::LedgerEntry {
                    account_id: account.id,
                    instrument_id: None,
                    cash_delta: cash,
                    share_delta: 0,
                    reason: sx::LedgerReason::Grant,
                    trade_id: None,
                }],
            )
            .await?;
            account.cash = cash;
        }
        tx.commit().await?;
        Ok(account)
    }

    /// A player's account in a game.
    pub async fn account(&self, game_id: i64, player_id: i64) -> Result<Account, ExchangeError> {
        sx::account_by_player(&self.db, game_id, player_id)
            .await?
            .ok_or(ExchangeError::NoAccount)
    }

    /// Grants a player cash (from outside the game) and optionally shares (from the house).
    pub async fn grant(
        &self,
        game_id: i64,
        player_id: i64,
        cash: i64,
        shares: Option<(&str, i64)>,
    ) -> Result<(), ExchangeError> {
        let account = self.account(game_id, player_id).await?;
        let shares = match shares {
            Some((symbol, qty)) => Some((self.instrument(game_id, symbol).await?.id, qty)),
            None => None,
        };
        engine::grant(&self.db, game_id, account.id, cash, shares).await
    }

    /// Places an order for a player. The acknowledgement is returned only after commit.
    pub async fn place(
        &self,
        game_id: i64,
        player_id: i64,
        req: &OrderRequest,
    ) -> Result<OrderAck, ExchangeError> {
        if req.qty <= 0 || req.qty > engine::MAX_QTY {
            return Err(ExchangeError::BadQuantity);
        }
        let instrument = self.instrument(game_id, &req.symbol).await?;
        let account = self.account(game_id, player_id).await?;
        self.place_for_account(game_id, account.id, instrument.id, req)
            .await
    }

    /// Places an order when the caller already knows the account and instrument ids.
    pub async fn place_for_account(
        &self,
        game_id: i64,
        account_id: i64,
        instrument_id: i64,
        req: &OrderRequest,
    ) -> Result<OrderAck, ExchangeError> {
        let op = writer::Op::Place {
            game_id,
            account_id,
            instrument_id,
            req: req.clone(),
        };
        self.submit(op).await
    }

    /// Begins a batch: many orders in one transaction, for a single writer such as the
    /// simulator (see [`batch`]). Name every account and book it will trade on.
    pub async fn begin_batch(
        &self,
        accounts: &[i64],
        instruments: &[i64],
    ) -> Result<Batch, ExchangeError> {
        let result = Batch::begin(&self.db, accounts, instruments).await;
        log_store_error(&result);
        result
    }

    /// Begins a batch for the orders `ops`, named up front, as the order writer does: on
    /// PostgreSQL it reads for all of them at once and decides them in memory (see
    /// [`Batch::begin_planned`]). Carry them out with [`Batch::run`].
    pub async fn begin_planned_batch(&self, ops: &[writer::Op]) -> Result<Batch, ExchangeError> {
        let result = Batch::begin_planned(&self.db, ops).await;
        log_store_error(&result);
        result
    }

    /// Cancels a player's open order.
    pub async fn cancel(
        &self,
        game_id: i64,
        player_id: i64,
        order_id: i64,
    ) -> Result<(), ExchangeError> {
        let account = self.account(game_id, player_id).await?;
        let op = writer::Op::Cancel {
            game_id,
            account_id: account.id,
            order_id,
        };
        self.submit(op).await.map(|_| ())
    }

    /// Changes a player's open order: a new price (`None` keeps it) and a new open size.
    /// A price change or a larger size loses time priority; a size cut keeps it; zero cancels.
    pub async fn replace(
        &self,
        game_id: i64,
        player_id: i64,
        order_id: i64,
        new_price: Option<i64>,
        new_open_qty: i64,
    ) -> Result<OrderAck, ExchangeError> {
        let account = self.account(game_id, player_id).await?;
        let op = writer::Op::Replace {
            game_id,
            account_id: account.id,
            order_id,
            new_price,
            new_open_qty,
        };
        self.submit(op).await
    }

    /// The top `depth` levels of both sides of a book.
    pub async fn book(
        &self,
        game_id: i64,
        symbol: &str,
        depth: i64,
    ) -> Result<BookTop, ExchangeError> {
        let inst = self.instrument(game_id, symbol).await?;
        Ok(sx::book_top(&self.db, inst.id, depth).await?)
    }

    /// The latest `n` trades of an instrument, newest first.
    pub async fn tape(
        &self,
        game_id: i64,
        symbol: &str,
        n: i64,
    ) -> Result<Vec<Trade>, ExchangeError> {
        let inst = self.instrument(game_id, symbol).await?;
        Ok(sx::tape(&self.db, inst.id, n).await?)
    }

    /// A player's orders, newest first (at most `limit`).
    pub async fn orders(
        &self,
        game_id: i64,
        player_id: i64,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<Order>, ExchangeError> {
        let account = self.account(game_id, player_id).await?;
        Ok(sx::orders_of(&self.db, account.id, open_only, limit).await?)
    }

    /// An order by id, if it exists.
    pub async fn order(&self, order_id: i64) -> Result<Option<Order>, ExchangeError> {
        Ok(sx::order(&self.db, order_id).await?)
    }

    /// A player's cash, positions at their marks, net worth and buying power.
    pub async fn portfolio(
        &self,
        game_id: i64,
        player_id: i64,
    ) -> Result<Portfolio, ExchangeError> {
        let game = self.game(game_id).await?;
        let account = self.account(game_id, player_id).await?;
        let view = sx::read_account_view(&self.db, account.id).await?;
        let instruments = self.instruments(game_id).await?;
        let big = |_| ExchangeError::TooLarge;
        let positions = view
            .holdings
            .iter()
            .map(|h| {
                Ok(Position {
                    instrument_id: h.instrument_id,
                    symbol: instruments
                        .iter()
                        .find(|i| i.id == h.instrument_id)
                        .map(|i| i.symbol.clone())
                        .unwrap_or_default(),
                    qty: h.qty,
                    mark: h.mark,
                    value: h.qty.checked_mul(h.mark).ok_or(ExchangeError::TooLarge)?,
                })
            })
            .collect::<Result<Vec<_>, ExchangeError>>()?;
        Ok(Portfolio {
            account_id: account.id,
            cash: view.cash,
            positions,
            net_worth: view.equity().map_err(big)?,
            maintenance: view.maintenance(&game.rules).map_err(big)?,
            buying_power: view.buying_power(&game.rules).map_err(big)?,
        })
    }

    /// Follows the events of a game from sequence number `from_seq` on (use 0 for all, or
    /// [`Exchange::last_event_seq`] + 1 for new ones only). The follower is a task on the
    /// current tokio runtime; it stops when the [`Subscription`] is dropped.
    pub fn subscribe(&self, game_id: i64, from_seq: i64) -> Subscription {
        events::subscribe(self.db.clone(), self.listen_url.clone(), game_id, from_seq)
    }

    /// The highest event sequence number so far.
    pub async fn last_event_seq(&self) -> Result<i64, ExchangeError> {
        Ok(sx::last_event_seq(&self.db).await?)
    }

    /// Checks every account against maintenance margin: a margin call first, liquidation if
    /// the account is still below at the next check.
    pub async fn run_margin_check(&self, game_id: i64) -> Result<MarginReport, ExchangeError> {
        engine::run_margin_check(&self.db, game_id).await
    }

    /// Charges one day's borrow fee on every short position; returns the total charged.
    pub async fn charge_borrow_fees(&self, game_id: i64) -> Result<i64, ExchangeError> {
        engine::charge_borrow_fees(&self.db, game_id).await
    }

    /// Pays a dividend of `per_share` cents on every share of an instrument (shorts pay it).
    pub async fn pay_dividend(
        &self,
        game_id: i64,
        symbol: &str,
        per_share: i64,
    ) -> Result<(), ExchangeError> {
        let inst = self.instrument(game_id, symbol).await?;
        engine::pay_dividend(&self.db, game_id, inst.id, per_share).await
    }

    /// Cancels every open day order of a game; returns how many.
    pub async fn expire_day_orders(&self, game_id: i64) -> Result<usize, ExchangeError> {
        let ids: Vec<i64> = self
            .instruments(game_id)
            .await?
            .iter()
            .map(|i| i.id)
            .collect();
        engine::expire_day_orders(&self.db, game_id, &ids).await
    }

    /// Checks the invariants of one game (or all games) and returns every violation.
    pub async fn audit(&self, game_id: Option<i64>) -> Result<Vec<Violation>, ExchangeError> {
        audit(&self.db, game_id).await
    }
}

/// Checks the invariants of one game (or all games) on a live database; see
/// [`crate::store::exchange::audit`] for the list.
pub async fn audit(db: &Db, game_id: Option<i64>) -> Result<Vec<Violation>, ExchangeError> {
    Ok(sx::audit::audit(db, game_id).await?)
}

fn log_store_error<T>(result: &Result<T, ExchangeError>) {
    if let Err(ExchangeError::Store(e)) = result {
        tracing::error!(error = %e, "exchange storage error");
    }
}

/// A compile-time check: the futures of the exchange's API can be spawned on a multi-thread
/// runtime (the door, the simulator and rlogin links all spawn them). A future that is not
/// `Send` for every lifetime fails to compile here rather than in some caller far away.
#[cfg(test)]
#[allow(dead_code)]
fn exchange_futures_are_send(ex: Exchange, req: OrderRequest) {
    fn is_send<T: Send>(_: T) {}
    is_send(async move {
        let _ = ex.place(1, 1, &req).await;
        let _ = ex.replace(1, 1, 1, None, 1).await;
        let _ = ex.cancel(1, 1, 1).await;
        let _ = ex.run_margin_check(1).await;
    });
}
