//! Many orders in one transaction: the simulator's tick carries out all its NPC orders this
//! way, so they cost one commit instead of one each.
//!
//! Each order is still all or nothing: it is validated, matched and decided exactly as a lone
//! order is ([`super::engine`]), against the book as every earlier order of the batch left it,
//! and an order the rules refuse writes nothing and leaves the batch going. The batch commits
//! as a whole, and nothing in it is acknowledged before that. A storage error spoils the batch:
//! every later call fails and dropping it rolls back.
//!
//! On PostgreSQL the batch takes the advisory locks of every account and book it names up
//! front, in the same order as a lone order does (accounts, then books, each by id). On both
//! engines each order then costs one trip to the database, which carries the previous order's
//! write and this order's reads.
//!
//! A planned batch ([`Batch::begin_planned`], the order writer's) names its orders up front
//! instead. Its first trip takes all their locks (on SQLite, the write lock) and reads
//! everything they will read; each order is then decided against that picture in memory, kept
//! true by applying every write to it (`store::exchange::mirror`), and the writes go with the
//! `COMMIT`: two trips for the whole batch. Where the picture does not reach (a sweep deeper than was read,
//! an order nobody named) the batch reads the database as above.

use super::engine::{self, Decided, PlaceSpec};
use super::model::{CancelReason, Order, OrderAck, OrderRequest, OrderStatus};
use super::writer::Op;
use super::ExchangeError;
use crate::store::exchange::load::LoadSpec;
use crate::store::exchange::script::BookWrite;
use crate::store::exchange::WriteTx;
use crate::store::Db;

/// What one order of a batch did, once the batch is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Placed or replaced (a replace to zero is a cancel, reported as one here).
    Ack(OrderAck),
    /// Cancelled: the order as it was.
    Cancelled(Order),
}

/// An open batch; see the module documentation.
pub struct Batch {
    tx: Option<WriteTx>,
    /// What each accepted order did, trade ids still placeholders on PostgreSQL.
    done: Vec<Done>,
}

impl Batch {
    /// Begins a batch that may trade for `accounts` on `instruments`. An order naming an
    /// account or book outside these still works, but takes its lock mid-batch, where
    /// PostgreSQL may find it deadlocked with another writer and fail the batch.
    pub async fn begin(
        db: &Db,
        accounts: &[i64],
        instruments: &[i64],
    ) -> Result<Batch, ExchangeError> {
        Ok(Batch {
            tx: Some(WriteTx::begin_batch(db, accounts, instruments).await?),
            done: Vec::new(),
        })
    }

    /// Begins a batch for the orders `ops`, named up front (the order writer's): its first
    /// trip takes every lock they need and reads everything they will
    /// read, so each order is then decided in memory and the batch costs about two trips in
    /// all (see [`WriteTx::begin_planned`]). Carry them out with [`Batch::run`]; an order
    /// not named here still works, reading the database.
    pub async fn begin_planned(db: &Db, ops: &[Op]) -> Result<Batch, ExchangeError> {
        let plan: Vec<LoadSpec> = ops.iter().map(plan).collect();
        Ok(Batch {
            tx: Some(WriteTx::begin_planned(db, &plan).await?),
            done: Vec::new(),
        })
    }

    /// Checks every answer a planned batch gives from memory against the database, which
    /// undoes its gain: for tests.
    #[doc(hidden)]
    pub fn check_against_database(&mut self) {
        if let Some(tx) = self.tx.as_mut() {
            tx.verify_mirror = true;
        }
    }

    /// For a planned batch: how many of its reads were answered from memory so far, and how
    /// many went to the database.
    pub fn reads_from_memory(&self) -> Option<(u64, u64)> {
        self.tx.as_ref().and_then(|tx| tx.mirror_counts())
    }

    /// Whether this planned batch began with what the one before it had read (nobody else
    /// wrote in between, so its first trip read only what that did not know).
    pub fn began_on_last_reads(&self) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.mirror_carried())
    }

    /// Carries out one order (see [`Batch::place`], [`Batch::cancel`], [`Batch::replace`]).
    pub async fn run(&mut self, op: &Op) -> Result<&Done, ExchangeError> {
        match op {
            Op::Place {
                game_id,
                account_id,
                instrument_id,
                req,
            } => self.place(*game_id, *account_id, *instrument_id, req).await,
            Op::Cancel {
                game_id,
                account_id,
                order_id,
            } => {
                self.cancel(*game_id, Some(*account_id), *order_id, CancelReason::User)
                    .await
            }
            Op::Replace {
                game_id,
                account_id,
                order_id,
                new_price,
                new_open_qty,
            } => {
                self.replace(*game_id, *account_id, *order_id, *new_price, *new_open_qty)
                    .await
            }
        }
    }

    /// How many orders the batch has accepted so far.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// Whether the batch has accepted no order yet.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    fn tx(&mut self) -> Result<&mut WriteTx, ExchangeError> {
        self.tx
            .as_mut()
            .ok_or_else(|| ExchangeError::Store(engine::spoiled()))
    }

    /// Keeps what an order decided, or passes its refusal on; a storage error spoils the batch.
    async fn keep(
        &mut self,
        decided: Result<(BookWrite, Done), ExchangeError>,
    ) -> Result<&Done, ExchangeError> {
        match decided {
            Ok((write, done)) => {
                let written = self.tx()?.write_book(&write).await;
                if let Err(e) = written {
                    self.tx = None;
                    return Err(e.into());
                }
                self.done.push(done);
                Ok(&self.done[self.done.len() - 1])
            }
            Err(e) => {
                if matches!(e, ExchangeError::Store(_)) {
                    self.tx = None;
                }
                Err(e)
            }
        }
    }

    /// Places an order for an account on a book, both given by id (see
    /// [`super::Exchange::place_for_account`]; `req.symbol` is not read).
    pub async fn place(
        &mut self,
        game_id: i64,
        account_id: i64,
        instrument_id: i64,
        req: &OrderRequest,
    ) -> Result<&Done, ExchangeError> {
        let spec = PlaceSpec::of_request(game_id, account_id, instrument_id, req);
        let tx = self.tx()?;
        let decided = engine::place_next(tx, &spec).await;
        self.keep(decided.map(ack)).await
    }

    /// Changes an open order of `account_id` (see [`super::Exchange::replace`]); a new size
    /// of zero cancels it.
    pub async fn replace(
        &mut self,
        game_id: i64,
        account_id: i64,
        order_id: i64,
        new_price: Option<i64>,
        new_open_qty: i64,
    ) -> Result<&Done, ExchangeError> {
        if new_open_qty == 0 {
            return self
                .cancel(game_id, Some(account_id), order_id, CancelReason::User)
                .await;
        }
        let tx = self.tx()?;
        let decided =
            engine::replace_next(tx, game_id, account_id, order_id, new_price, new_open_qty).await;
        self.keep(decided.map(ack)).await
    }

    /// Cancels an open order of `account_id` (any account's when `None`).
    pub async fn cancel(
        &mut self,
        game_id: i64,
        account_id: Option<i64>,
        order_id: i64,
        reason: CancelReason,
    ) -> Result<&Done, ExchangeError> {
        let tx = self.tx()?;
        let decided = engine::cancel_next(tx, game_id, account_id, order_id, reason).await;
        self.keep(decided.map(|(write, order)| (write, Done::Cancelled(order))))
            .await
    }

    /// Commits every accepted order; returns what each did, in order, with the stored trade
    /// ids. Nothing is committed if this fails.
    pub async fn commit(mut self) -> Result<Vec<Done>, ExchangeError> {
        let tx = self.tx.take().ok_or_else(engine::spoiled)?;
        let written = tx.commit_batch().await?;
        with_trade_ids(self.done, written)
    }

    /// Commits every accepted order and begins a planned batch for `next` (as
    /// [`Batch::begin_planned`] would) on the same connection: on PostgreSQL the next batch's
    /// first trip goes with this one's `COMMIT`, one trip where there were two. As soon as the
    /// commit is known to have succeeded, before the next batch's reads are back, `at_commit`
    /// gets what each order did, as [`Batch::commit`] would return it.
    ///
    /// Returns `Err` if this batch is not known to have committed; then `at_commit` was not
    /// called and the next batch not begun (an error that
    /// [`rolled_back`](crate::store::StoreError::rolled_back) means nothing of it was
    /// written). Otherwise the next batch, or why it could not begin.
    pub async fn commit_then(
        mut self,
        next: &[Op],
        at_commit: impl FnOnce(Result<Vec<Done>, ExchangeError>),
    ) -> Result<Result<Batch, ExchangeError>, ExchangeError> {
        let tx = self.tx.take().ok_or_else(engine::spoiled)?;
        let next: Vec<LoadSpec> = next.iter().map(plan).collect();
        let done = self.done;
        let committed = |written: Result<Vec<Vec<i64>>, crate::store::StoreError>| {
            at_commit(
                written
                    .map_err(ExchangeError::from)
                    .and_then(|written| with_trade_ids(done, written)),
            )
        };
        let begun = tx.commit_then_plan(&next, committed).await?;
        Ok(begun.map_err(ExchangeError::from).map(|tx| Batch {
            tx: Some(tx),
            done: Vec::new(),
        }))
    }

    /// Abandons the batch: nothing in it is written.
    pub async fn rollback(mut self) {
        if let Some(tx) = self.tx.take() {
            tx.rollback().await;
        }
    }
}

/// What carrying out `op` will load first.
fn plan(op: &Op) -> LoadSpec {
    match op {
        Op::Place {
            game_id,
            account_id,
            instrument_id,
            req,
        } => {
            let spec = PlaceSpec::of_request(*game_id, *account_id, *instrument_id, req);
            engine::place_load(&spec, engine::first_crossing(&spec))
        }
        Op::Cancel {
            game_id, order_id, ..
        } => engine::cancel_load(*game_id, *order_id),
        Op::Replace {
            game_id,
            order_id,
            new_open_qty: 0,
            ..
        } => engine::cancel_load(*game_id, *order_id),
        Op::Replace {
            game_id,
            account_id,
            order_id,
            new_price,
            new_open_qty,
        } => engine::replace_load(*game_id, *account_id, *order_id, *new_price, *new_open_qty),
    }
}

/// What each order of a committed batch did, with the trade ids its writes got (`written`, one
/// list per accepted order, in order).
fn with_trade_ids(mut done: Vec<Done>, written: Vec<Vec<i64>>) -> Result<Vec<Done>, ExchangeError> {
    if written.len() != done.len() {
        return Err(ExchangeError::Store(engine::missing_id()));
    }
    for (done, ids) in done.iter_mut().zip(written) {
        if let Done::Ack(ack) = done {
            if ack.fills.len() != ids.len() {
                return Err(ExchangeError::Store(engine::missing_id()));
            }
            for (fill, id) in ack.fills.iter_mut().zip(ids) {
                fill.trade_id = id;
            }
        }
    }
    Ok(done)
}

/// A placed or replaced order's rows and answer.
fn ack(d: Decided) -> (BookWrite, Done) {
    (d.write, Done::Ack(d.ack))
}

impl Done {
    /// The order's status after it.
    pub fn status(&self) -> OrderStatus {
        match self {
            Done::Ack(a) => a.status,
            Done::Cancelled(_) => OrderStatus::Cancelled,
        }
    }
}
