//! The transactions of the exchange: each placed, cancelled or replaced order, each margin
//! check, fee and dividend is one database transaction run here, through the storage layer.
//!
//! This module owns the order of work inside a transaction (lock, validate, load the crossing
//! orders, ask [`super::matching`], write trades, cash, shares, ledger and events, commit) and
//! every rule that needs the stored state; it holds no SQL. Nothing is written before all
//! validation has passed, and a failed transaction rolls back whole.

use super::matching::{self, Incoming, Resting};
use super::model::{
    CancelReason, Cents, EventKind, Fill, Game, Intent, NewEvent, Order, OrderAck, OrderStatus,
    OrderType, Side, StpMode, TimeInForce,
};
use super::risk::AccountView;
use super::risk::{self, Refusal};
use super::ExchangeError;
use crate::store::exchange::script::{BookWrite, OrderWrite, TradeWrite};
use crate::store::exchange::{
    BookState, Crossing, LedgerEntry, LedgerReason, LoadSpec, Loaded, Locks, RestingRow, WriteTx,
};
use crate::store::{now_ms, Db};

/// The largest quantity one order may have.
pub const MAX_QTY: i64 = 1_000_000_000;
/// The largest price (cents) an order may have.
pub const MAX_PRICE: i64 = 1_000_000_000;
/// Resting orders loaded per query while matching.
const PAGE: i64 = 64;

/// What to place, with everything resolved to ids.
#[derive(Debug, Clone)]
pub(crate) struct PlaceSpec {
    pub game_id: i64,
    pub account_id: i64,
    pub instrument_id: i64,
    pub intent: Intent,
    pub order_type: OrderType,
    pub tif: TimeInForce,
    pub qty: i64,
    pub stp: Option<StpMode>,
    /// A forced liquidation by the house: no balance check, no fee, ledger says so.
    pub liquidation: bool,
}

impl PlaceSpec {
    /// A player's (or NPC's) order as requested; `req.symbol` is not read.
    pub(crate) fn of_request(
        game_id: i64,
        account_id: i64,
        instrument_id: i64,
        req: &super::model::OrderRequest,
    ) -> PlaceSpec {
        PlaceSpec {
            game_id,
            account_id,
            instrument_id,
            intent: req.intent,
            order_type: req.order_type,
            tif: req.tif,
            qty: req.qty,
            stp: req.stp,
            liquidation: false,
        }
    }
}

/// Which order row [`place_in`] writes.
enum Target {
    /// A new order, with the id the transaction handed out.
    New(i64),
    /// An existing order being replaced in a way that loses its priority.
    Requeue(Order),
}

fn refusal(r: Refusal) -> ExchangeError {
    match r {
        Refusal::Funds { needed, available } => ExchangeError::InsufficientFunds {
            needed: Cents(needed),
            available: Cents(available),
        },
        Refusal::Shares { needed, available } => {
            ExchangeError::InsufficientShares { needed, available }
        }
        Refusal::Overflow => ExchangeError::TooLarge,
    }
}

fn checked_mul(a: i64, b: i64) -> Result<i64, ExchangeError> {
    a.checked_mul(b).ok_or(ExchangeError::TooLarge)
}

/// The price band orders must respect: `collar_bp` either side of the last trade, on ticks.
pub(crate) fn collar(last: i64, tick: i64, collar_bp: i64) -> Result<(i64, i64), ExchangeError> {
    let width = risk::bp_floor(last, collar_bp).map_err(|_| ExchangeError::TooLarge)?;
    let high = last.checked_add(width).ok_or(ExchangeError::TooLarge)?;
    let low = last - width;
    // Round inwards onto the tick grid, and never below one tick.
    let high = high - high.rem_euclid(tick);
    let low = (low + (tick - low.rem_euclid(tick)) % tick).max(tick);
    Ok((low, high.max(low)))
}

fn check_qty(qty: i64) -> Result<(), ExchangeError> {
    if qty <= 0 || qty > MAX_QTY {
        return Err(ExchangeError::BadQuantity);
    }
    Ok(())
}

/// Begins a transaction on a book and checks that the game is open.
async fn begin_book(
    db: &Db,
    game_id: i64,
    instrument_id: i64,
    account_id: Option<i64>,
) -> Result<(WriteTx, Game, i64), ExchangeError> {
    let mut tx = WriteTx::begin(
        db,
        Locks {
            instrument: Some(instrument_id),
            account: account_id,
        },
    )
    .await?;
    let (game, house) = tx.game(game_id).await?.ok_or(ExchangeError::UnknownGame)?;
    if !game.open {
        return Err(ExchangeError::GameOver);
    }
    Ok((tx, game, house))
}

/// The first page of crossing orders read with the transaction's locks: a limit order's
/// price bounds it; a market order's collar is not known before the book is read, so its page
/// is unbounded and [`place_in`] drops what lies beyond the collar.
pub(super) fn first_crossing(spec: &PlaceSpec) -> Crossing {
    let side = spec.intent.side();
    let worst = match spec.order_type {
        OrderType::Limit { price } => price,
        OrderType::Market => match side {
            Side::Buy => MAX_PRICE,
            Side::Sell => 0,
        },
    };
    Crossing {
        side: side.opposite(),
        worst,
        limit: first_page_limit(spec.qty),
    }
}

/// Each resting order holds at least one share, so a small first page usually suffices.
fn first_page_limit(qty: i64) -> i64 {
    qty.saturating_add(1).clamp(2, PAGE)
}

/// Whether a resting order at `price` crosses an incoming order on `side` whose worst
/// acceptable price is `worst`.
fn crosses(side: Side, price: i64, worst: i64) -> bool {
    match side {
        Side::Buy => price <= worst,
        Side::Sell => price >= worst,
    }
}

/// What a new order locks and reads first.
pub(super) fn place_load(spec: &PlaceSpec, crossing: Crossing) -> LoadSpec {
    let taker = (!spec.liquidation).then_some(spec.account_id);
    LoadSpec {
        game_id: spec.game_id,
        instrument_id: Some(spec.instrument_id),
        lock_account: taker,
        view_account: taker,
        order_id: None,
        new_order: true,
        crossing: Some(crossing),
        order_crossing: None,
    }
}

/// Places an order: one transaction from validation to commit.
pub(crate) async fn place(db: &Db, spec: &PlaceSpec) -> Result<OrderAck, ExchangeError> {
    check_qty(spec.qty)?;
    let crossing = first_crossing(spec);
    let (mut tx, loaded) = WriteTx::load(db, &place_load(spec, crossing)).await?;
    match place_loaded(&mut tx, spec, loaded, crossing).await {
        Ok(decided) => commit_decided(tx, decided).await,
        Err(e) => {
            tx.rollback().await;
            Err(e)
        }
    }
}

/// Decides an order inside a batch (see [`super::batch`]); writes nothing.
pub(super) async fn place_next(
    tx: &mut WriteTx,
    spec: &PlaceSpec,
) -> Result<Decided, ExchangeError> {
    check_qty(spec.qty)?;
    let crossing = first_crossing(spec);
    let loaded = tx.load_next(&place_load(spec, crossing)).await?;
    place_loaded(tx, spec, loaded, crossing).await
}

async fn place_loaded(
    tx: &mut WriteTx,
    spec: &PlaceSpec,
    loaded: Loaded,
    crossing: Crossing,
) -> Result<Decided, ExchangeError> {
    let (Some((game, house)), Some(book)) = (loaded.game, loaded.book) else {
        return Err(ExchangeError::UnknownInstrument);
    };
    if !game.open {
        return Err(ExchangeError::GameOver);
    }
    let order_id = loaded
        .hint
        .next_order
        .ok_or_else(|| ExchangeError::Store(missing_id()))?;
    let read = Read {
        view: loaded.view,
        first: Some((crossing, loaded.resting)),
        trade_base: loaded.hint.trade_base,
    };
    place_in(tx, &game, house, book, read, spec, Target::New(order_id)).await
}

/// What [`place_in`] gets besides the game and the book, as read with the locks.
struct Read {
    /// The taker's account (needed unless the house liquidates).
    view: Option<AccountView>,
    /// The first page of crossing orders and how it was bounded.
    first: Option<(Crossing, Vec<RestingRow>)>,
    /// See [`crate::store::exchange::IdHint::trade_base`].
    trade_base: i64,
}

/// What a transaction decided: the rows to write and the answer to give once they are
/// committed (with placeholder trade ids until then).
pub(super) struct Decided {
    pub(super) write: BookWrite,
    pub(super) ack: OrderAck,
}

/// Writes and commits what was decided; the acknowledgement gets the stored trade ids.
async fn commit_decided(tx: WriteTx, decided: Decided) -> Result<OrderAck, ExchangeError> {
    let ids = tx.commit_book(&decided.write).await?;
    let mut ack = decided.ack;
    if ids.len() != ack.fills.len() {
        return Err(ExchangeError::Store(missing_id()));
    }
    for (fill, id) in ack.fills.iter_mut().zip(ids) {
        fill.trade_id = id;
    }
    Ok(ack)
}

/// The body of [`place`] (and of a replace that loses priority) inside an open transaction
/// that holds the book's lock. Decides everything and writes nothing.
async fn place_in(
    tx: &mut WriteTx,
    game: &Game,
    house: i64,
    book: BookState,
    read: Read,
    spec: &PlaceSpec,
    target: Target,
) -> Result<Decided, ExchangeError> {
    let (requeue, new_id) = match target {
        Target::New(id) => (None, Some(id)),
        Target::Requeue(order) => (Some(order), None),
    };
    let rules = &game.rules;
    if book.instrument.game_id != game.id {
        return Err(ExchangeError::UnknownInstrument);
    }
    let tick = book.instrument.tick;
    let (low, high) = collar(book.instrument.last_price, tick, rules.collar_bp)?;
    let side = spec.intent.side();
    let (worst, limit_price) = match spec.order_type {
        OrderType::Limit { price } => {
            if price <= 0 || price > MAX_PRICE {
                return Err(ExchangeError::BadPrice);
            }
            if price % tick != 0 {
                return Err(ExchangeError::OffTick {
                    price: Cents(price),
                    tick: Cents(tick),
                });
            }
            if !spec.liquidation && (price < low || price > high) {
                return Err(ExchangeError::OutsideCollar {
                    price: Cents(price),
                    low: Cents(low),
                    high: Cents(high),
                });
            }
            (price, Some(price))
        }
        OrderType::Market => match side {
            Side::Buy => (high, None),
            Side::Sell => (if spec.liquidation { tick } else { low }, None),
        },
    };
    if !spec.liquidation {
        let mut view = match read.view {
            Some(view) => view,
            None => tx.account_view(spec.account_id).await?,
        };
        if let Some(old) = &requeue {
            view.without_order(
                old.instrument_id,
                old.intent,
                old.qty - old.filled,
                old.price.unwrap_or(0),
            )
            .map_err(|_| ExchangeError::TooLarge)?;
        }
        risk::check_order(
            &view,
            rules,
            spec.instrument_id,
            spec.intent,
            spec.qty,
            worst,
        )
        .map_err(refusal)?;
    }
    let market = matches!(spec.order_type, OrderType::Market);
    let incoming = Incoming {
        account_id: spec.account_id,
        side,
        limit: worst,
        qty: spec.qty,
        may_rest: !market && matches!(spec.tif, TimeInForce::Gtc | TimeInForce::Day),
        fill_or_kill: spec.tif == TimeInForce::Fok,
        stp: spec.stp.unwrap_or(rules.stp_default),
    };
    // Load crossing orders, best first, until they can fill the order or run out. The page
    // read with the locks serves as the first one if it was read on this side, with this
    // size and a bound at least as wide as `worst`.
    let mut page_size = first_page_limit(spec.qty);
    let mut first = read.first.filter(|(c, _)| {
        c.side == side.opposite() && c.limit == page_size && crosses(side, worst, c.worst)
    });
    let mut resting: Vec<Resting> = Vec::new();
    let mut after: Option<(i64, i64)> = None;
    loop {
        let (page, full) = match first.take() {
            Some((c, rows)) => {
                let read_rows = rows.len() as i64;
                // Best first, so the rows beyond `worst` are a tail; if there are any, the
                // book holds nothing more that crosses.
                let page: Vec<RestingRow> = rows
                    .into_iter()
                    .filter(|r| crosses(side, r.price, worst))
                    .collect();
                let full = read_rows == c.limit && page.len() as i64 == read_rows;
                (page, full)
            }
            None => {
                let page = tx
                    .resting(spec.instrument_id, side.opposite(), worst, after, page_size)
                    .await?;
                let full = page.len() as i64 == page_size;
                (page, full)
            }
        };
        page_size = PAGE;
        if let Some(last) = page.last() {
            after = Some((last.price, last.priority));
        }
        resting.extend(page.iter().map(|r| Resting {
            order_id: r.order_id,
            account_id: r.account_id,
            price: r.price,
            open_qty: r.open_qty,
        }));
        if !full || matching::fillable(&incoming, &resting, spec.qty) >= spec.qty {
            break;
        }
    }
    let outcome = matching::match_incoming(&incoming, &resting);

    // Everything is decided. Trade ids follow `trade_base` (placeholders on PostgreSQL, which
    // the write replaces; see `IdHint`).
    let order_id = match (&requeue, new_id) {
        (Some(r), _) => r.id,
        (None, Some(id)) => id,
        (None, None) => return Err(ExchangeError::Store(missing_id())),
    };
    let prior_filled = requeue.as_ref().map_or(0, |r| r.filled);
    let filled_now = spec.qty - outcome.remaining;
    let status = if outcome.rests {
        OrderStatus::Open
    } else if outcome.remaining == 0 {
        OrderStatus::Filled
    } else {
        OrderStatus::Cancelled
    };
    let mut last_price = book.instrument.last_price;
    let mut w = BookWrite {
        game_id: game.id,
        instrument_id: spec.instrument_id,
        order: Some(OrderWrite {
            insert: requeue.is_none(),
            id: order_id,
            account_id: spec.account_id,
            intent: spec.intent,
            market,
            tif: spec.tif,
            price: limit_price,
            qty: prior_filled + spec.qty,
            filled: prior_filled + filled_now,
            status,
            reason: outcome.cancel_reason.map(|r| r.as_str()),
            priority: book.next_priority,
        }),
        trades: Vec::with_capacity(outcome.fills.len()),
        maker_fills: Vec::with_capacity(outcome.fills.len()),
        cancels: Vec::new(),
        book: None,
        shares: Vec::new(),
        cash: Vec::new(),
        ledger: Vec::new(),
        events: Vec::new(),
    };
    let mut fills = Vec::new();
    let taker_reason = if spec.liquidation {
        LedgerReason::Liquidation
    } else {
        LedgerReason::Trade
    };
    let sign = match side {
        Side::Buy => 1,
        Side::Sell => -1,
    };
    for (k, f) in outcome.fills.iter().enumerate() {
        let trade_id = read.trade_base + k as i64 + 1;
        let (buy_order_id, sell_order_id) = match side {
            Side::Buy => (order_id, f.maker_order_id),
            Side::Sell => (f.maker_order_id, order_id),
        };
        w.trades.push(TradeWrite {
            id: trade_id,
            price: f.price,
            qty: f.qty,
            buy_order_id,
            sell_order_id,
            taker_side: side,
        });
        w.maker_fills.push((f.maker_order_id, f.qty));
        let value = checked_mul(f.price, f.qty)?;
        let fee = if spec.liquidation {
            0
        } else {
            risk::bp_floor(value, rules.fee_bp).map_err(|_| ExchangeError::TooLarge)?
        };
        // The taker gets `sign * qty` shares for `-sign * value` cash; the maker the opposite.
        for (account, s, reason) in [
            (spec.account_id, sign, taker_reason),
            (f.maker_account_id, -sign, LedgerReason::Trade),
        ] {
            w.cash.push((account, -s * value));
            w.shares.push((account, spec.instrument_id, s * f.qty));
            w.ledger.push(LedgerEntry {
                account_id: account,
                instrument_id: Some(spec.instrument_id),
                cash_delta: -s * value,
                share_delta: s * f.qty,
                reason,
                trade_id: Some(trade_id),
            });
        }
        if fee > 0 {
            for (account, delta) in [(spec.account_id, -fee), (house, fee)] {
                w.cash.push((account, delta));
                w.ledger.push(LedgerEntry {
                    account_id: account,
                    instrument_id: None,
                    cash_delta: delta,
                    share_delta: 0,
                    reason: LedgerReason::Fee,
                    trade_id: Some(trade_id),
                });
            }
        }
        last_price = f.price;
        let base = NewEvent {
            instrument_id: Some(spec.instrument_id),
            trade_id: Some(trade_id),
            price: Some(f.price),
            qty: Some(f.qty),
            ..NewEvent::new(EventKind::Trade)
        };
        w.events.push(NewEvent {
            detail: side.as_str().to_string(),
            ..base.clone()
        });
        w.events.push(NewEvent {
            kind: EventKind::Fill,
            account_id: Some(spec.account_id),
            order_id: Some(order_id),
            detail: if spec.liquidation {
                "liquidation"
            } else {
                "taker"
            }
            .to_string(),
            ..base.clone()
        });
        w.events.push(NewEvent {
            kind: EventKind::Fill,
            account_id: Some(f.maker_account_id),
            order_id: Some(f.maker_order_id),
            detail: "maker".to_string(),
            ..base
        });
        fills.push(Fill {
            trade_id,
            maker_order_id: f.maker_order_id,
            price: f.price,
            qty: f.qty,
        });
    }
    for &id in &outcome.cancelled_resting {
        // Loaded as open under the book's lock, so the cancel takes effect.
        w.cancels.push((id, CancelReason::SelfTrade.as_str()));
        w.events.push(NewEvent {
            account_id: Some(spec.account_id),
            instrument_id: Some(spec.instrument_id),
            order_id: Some(id),
            detail: CancelReason::SelfTrade.as_str().to_string(),
            ..NewEvent::new(EventKind::Cancel)
        });
    }
    let open_qty = if outcome.rests { outcome.remaining } else { 0 };
    if outcome.rests {
        w.events.push(NewEvent {
            account_id: Some(spec.account_id),
            instrument_id: Some(spec.instrument_id),
            order_id: Some(order_id),
            price: limit_price,
            qty: Some(open_qty),
            detail: side.as_str().to_string(),
            ..NewEvent::new(if requeue.is_some() {
                EventKind::Replace
            } else {
                EventKind::Order
            })
        });
    } else if let Some(r) = outcome.cancel_reason {
        w.events.push(NewEvent {
            account_id: Some(spec.account_id),
            instrument_id: Some(spec.instrument_id),
            order_id: Some(order_id),
            qty: Some(outcome.remaining),
            detail: r.as_str().to_string(),
            ..NewEvent::new(EventKind::Cancel)
        });
    }
    if spec.liquidation && filled_now > 0 {
        w.events.push(NewEvent {
            account_id: Some(spec.account_id),
            instrument_id: Some(spec.instrument_id),
            order_id: Some(order_id),
            qty: Some(filled_now),
            price: Some(last_price),
            ..NewEvent::new(EventKind::Liquidation)
        });
    }
    w.book = Some((last_price, book.next_priority + 1));
    let ack = OrderAck {
        order_id,
        status,
        filled: prior_filled + filled_now,
        open_qty,
        fills,
        cancel_reason: outcome.cancel_reason,
    };
    Ok(Decided { write: w, ack })
}

/// The error of a batch whose transaction a storage error ended.
pub(super) fn spoiled() -> crate::store::StoreError {
    crate::store::StoreError::Sqlx(sqlx::Error::Protocol(
        "the batch's transaction failed earlier and was rolled back".into(),
    ))
}

pub(super) fn missing_id() -> crate::store::StoreError {
    crate::store::StoreError::Sqlx(sqlx::Error::Protocol(
        "the database allocated no id for a new order or trade".into(),
    ))
}

/// Cancels an open order of `account_id` (any account when `None`, for the house).
pub(crate) async fn cancel(
    db: &Db,
    game_id: i64,
    account_id: Option<i64>,
    order_id: i64,
    reason: CancelReason,
) -> Result<Order, ExchangeError> {
    let (tx, loaded) = WriteTx::load(db, &cancel_load(game_id, order_id)).await?;
    match decide_cancel(&loaded, game_id, account_id, reason) {
        Ok((write, order)) => {
            tx.commit_book(&write).await?;
            Ok(order)
        }
        Err(e) => {
            tx.rollback().await;
            Err(e)
        }
    }
}

/// What a cancel locks (the order's book) and reads.
pub(super) fn cancel_load(game_id: i64, order_id: i64) -> LoadSpec {
    LoadSpec {
        game_id,
        order_id: Some(order_id),
        ..LoadSpec::default()
    }
}

/// Decides a cancel inside a batch; writes nothing.
pub(super) async fn cancel_next(
    tx: &mut WriteTx,
    game_id: i64,
    account_id: Option<i64>,
    order_id: i64,
    reason: CancelReason,
) -> Result<(BookWrite, Order), ExchangeError> {
    let loaded = tx.load_next(&cancel_load(game_id, order_id)).await?;
    decide_cancel(&loaded, game_id, account_id, reason)
}

/// The checks and rows of a cancel, from what was read under the book's lock.
fn decide_cancel(
    loaded: &Loaded,
    game_id: i64,
    account_id: Option<i64>,
    reason: CancelReason,
) -> Result<(BookWrite, Order), ExchangeError> {
    let order = loaded.order.clone().ok_or(ExchangeError::UnknownOrder)?;
    let (game, _house) = loaded.game.as_ref().ok_or(ExchangeError::UnknownGame)?;
    if !game.open {
        return Err(ExchangeError::GameOver);
    }
    if account_id.is_some_and(|a| a != order.account_id) {
        return Err(ExchangeError::NotYourOrder);
    }
    if order.status != OrderStatus::Open {
        return Err(ExchangeError::OrderClosed);
    }
    // Read as open under the book's lock, so the cancel takes effect.
    let mut write = BookWrite::empty(game_id, order.instrument_id);
    write.cancels.push((order.id, reason.as_str()));
    write.events.push(NewEvent {
        account_id: Some(order.account_id),
        instrument_id: Some(order.instrument_id),
        order_id: Some(order.id),
        qty: Some(order.qty - order.filled),
        detail: reason.as_str().to_string(),
        ..NewEvent::new(EventKind::Cancel)
    });
    Ok((write, order))
}

/// Replaces an open order's price and/or open size. A price change or a larger size sends it
/// to the back of the queue (and it may trade at once); a smaller size keeps its place. A new
/// open size of zero cancels it.
pub(crate) async fn replace(
    db: &Db,
    game_id: i64,
    account_id: i64,
    order_id: i64,
    new_price: Option<i64>,
    new_open_qty: i64,
) -> Result<OrderAck, ExchangeError> {
    if !(0..=MAX_QTY).contains(&new_open_qty) {
        return Err(ExchangeError::BadQuantity);
    }
    if new_open_qty == 0 {
        let order = cancel(db, game_id, Some(account_id), order_id, CancelReason::User).await?;
        return Ok(OrderAck {
            order_id,
            status: OrderStatus::Cancelled,
            filled: order.filled,
            open_qty: 0,
            fills: vec![],
            cancel_reason: Some(CancelReason::User),
        });
    }
    let load = replace_load(game_id, account_id, order_id, new_price, new_open_qty);
    let (mut tx, loaded) = WriteTx::load(db, &load).await?;
    let decided = replace_loaded(
        &mut tx,
        loaded,
        game_id,
        account_id,
        new_price,
        new_open_qty,
    )
    .await;
    match decided {
        Ok(decided) => commit_decided(tx, decided).await,
        Err(e) => {
            tx.rollback().await;
            Err(e)
        }
    }
}

/// What a replace locks (the account, then the order's book) and reads: with a new price,
/// also the first page of orders crossing it, as a new order's load reads them.
pub(super) fn replace_load(
    game_id: i64,
    account_id: i64,
    order_id: i64,
    new_price: Option<i64>,
    new_open_qty: i64,
) -> LoadSpec {
    LoadSpec {
        game_id,
        instrument_id: None,
        lock_account: Some(account_id),
        view_account: Some(account_id),
        order_id: Some(order_id),
        new_order: false,
        crossing: None,
        order_crossing: new_price.map(|p| (p, first_page_limit(new_open_qty))),
    }
}

/// Decides a replace (to a size above zero) inside a batch; writes nothing.
pub(super) async fn replace_next(
    tx: &mut WriteTx,
    game_id: i64,
    account_id: i64,
    order_id: i64,
    new_price: Option<i64>,
    new_open_qty: i64,
) -> Result<Decided, ExchangeError> {
    if !(1..=MAX_QTY).contains(&new_open_qty) {
        return Err(ExchangeError::BadQuantity);
    }
    let load = replace_load(game_id, account_id, order_id, new_price, new_open_qty);
    let loaded = tx.load_next(&load).await?;
    replace_loaded(tx, loaded, game_id, account_id, new_price, new_open_qty).await
}

async fn replace_loaded(
    tx: &mut WriteTx,
    loaded: Loaded,
    game_id: i64,
    account_id: i64,
    new_price: Option<i64>,
    new_open_qty: i64,
) -> Result<Decided, ExchangeError> {
    let order = loaded.order.ok_or(ExchangeError::UnknownOrder)?;
    if order.account_id != account_id {
        return Err(ExchangeError::NotYourOrder);
    }
    let (game, house) = loaded.game.ok_or(ExchangeError::UnknownGame)?;
    if !game.open {
        return Err(ExchangeError::GameOver);
    }
    if order.status != OrderStatus::Open {
        return Err(ExchangeError::OrderClosed);
    }
    let old_price = order.price.unwrap_or(0);
    let price = new_price.unwrap_or(old_price);
    let old_open = order.qty - order.filled;
    if price == old_price && new_open_qty <= old_open {
        // A size cut keeps its place in the queue; it needs no new balance check.
        let mut write = BookWrite::empty(game_id, order.instrument_id);
        write.order = Some(OrderWrite {
            insert: false,
            id: order.id,
            account_id,
            intent: order.intent,
            market: order.price.is_none(),
            tif: order.tif,
            price: order.price,
            qty: order.filled + new_open_qty,
            filled: order.filled,
            status: OrderStatus::Open,
            reason: None,
            priority: order.priority,
        });
        write.events.push(NewEvent {
            account_id: Some(account_id),
            instrument_id: Some(order.instrument_id),
            order_id: Some(order.id),
            price: order.price,
            qty: Some(new_open_qty),
            detail: "reduce".to_string(),
            ..NewEvent::new(EventKind::Replace)
        });
        let ack = OrderAck {
            order_id: order.id,
            status: OrderStatus::Open,
            filled: order.filled,
            open_qty: new_open_qty,
            fills: vec![],
            cancel_reason: None,
        };
        return Ok(Decided { write, ack });
    }
    let spec = PlaceSpec {
        game_id,
        account_id,
        instrument_id: order.instrument_id,
        intent: order.intent,
        order_type: OrderType::Limit { price },
        tif: order.tif,
        qty: new_open_qty,
        stp: None,
        liquidation: false,
    };
    let book = loaded.book.ok_or(ExchangeError::UnknownInstrument)?;
    // The crossing orders read with the load, if a new price was given (see `replace_load`).
    let first = new_price.map(|worst| {
        let crossing = Crossing {
            side: order.side.opposite(),
            worst,
            limit: first_page_limit(new_open_qty),
        };
        (crossing, loaded.resting)
    });
    let read = Read {
        view: loaded.view,
        first,
        trade_base: loaded.hint.trade_base,
    };
    place_in(tx, &game, house, book, read, &spec, Target::Requeue(order)).await
}

/// Cancels every open day order of a game's books; returns how many.
pub(crate) async fn expire_day_orders(
    db: &Db,
    game_id: i64,
    instrument_ids: &[i64],
) -> Result<usize, ExchangeError> {
    let mut n = 0;
    for &instrument_id in instrument_ids {
        let mut tx = WriteTx::begin(
            db,
            Locks {
                instrument: Some(instrument_id),
                account: None,
            },
        )
        .await?;
        let mut events = Vec::new();
        for o in tx.open_day_orders(instrument_id).await? {
            if tx
                .cancel_order(o.id, CancelReason::Expired.as_str())
                .await?
            {
                n += 1;
                events.push(NewEvent {
                    account_id: Some(o.account_id),
                    instrument_id: Some(instrument_id),
                    order_id: Some(o.id),
                    qty: Some(o.qty - o.filled),
                    detail: CancelReason::Expired.as_str().to_string(),
                    ..NewEvent::new(EventKind::Cancel)
                });
            }
        }
        tx.events(game_id, &events).await?;
        tx.commit().await?;
    }
    Ok(n)
}

/// What one margin check did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarginReport {
    /// Accounts that fell below maintenance and got a margin call.
    pub called: Vec<i64>,
    /// Accounts the house liquidated (wholly or partly).
    pub liquidated: Vec<i64>,
    /// Accounts whose margin call was cleared.
    pub cleared: Vec<i64>,
}

/// Checks every account of a game against maintenance margin: first a margin call, then, if
/// still short at the next check, liquidation at market, largest position first.
pub(crate) async fn run_margin_check(db: &Db, game_id: i64) -> Result<MarginReport, ExchangeError> {
    let mut report = MarginReport::default();
    let game = crate::store::exchange::game(db, game_id)
        .await?
        .ok_or(ExchangeError::UnknownGame)?;
    let candidates = crate::store::exchange::margin_candidates(db, game_id).await?;
    if !game.open {
        return Err(ExchangeError::GameOver);
    }
    for account_id in candidates {
        let account = crate::store::exchange::account(db, account_id)
            .await?
            .ok_or(ExchangeError::NoAccount)?;
        let view = crate::store::exchange::read_account_view(db, account_id).await?;
        let below = view
            .below_maintenance(&game.rules)
            .map_err(|_| ExchangeError::TooLarge)?;
        if !below {
            if account.margin_call_at.is_some() {
                set_margin_call(db, game_id, account_id, None).await?;
                report.cleared.push(account_id);
            }
            continue;
        }
        if account.margin_call_at.is_none() {
            set_margin_call(db, game_id, account_id, Some(now_ms())).await?;
            report.called.push(account_id);
            continue;
        }
        liquidate(db, &game, account_id).await?;
        report.liquidated.push(account_id);
        let view = crate::store::exchange::read_account_view(db, account_id).await?;
        if !view
            .below_maintenance(&game.rules)
            .map_err(|_| ExchangeError::TooLarge)?
        {
            set_margin_call(db, game_id, account_id, None).await?;
            report.cleared.push(account_id);
        }
    }
    Ok(report)
}

async fn set_margin_call(
    db: &Db,
    game_id: i64,
    account_id: i64,
    at: Option<i64>,
) -> Result<(), ExchangeError> {
    let mut tx = WriteTx::begin(
        db,
        Locks {
            instrument: None,
            account: Some(account_id),
        },
    )
    .await?;
    tx.set_margin_call(account_id, at).await?;
    if at.is_some() {
        let view = tx.account_view(account_id).await?;
        let detail = match view.equity() {
            Ok(e) => format!("equity {}", Cents(e)),
            Err(_) => String::new(),
        };
        tx.events(
            game_id,
            &[NewEvent {
                account_id: Some(account_id),
                detail,
                ..NewEvent::new(EventKind::MarginCall)
            }],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Cancels the account's open orders, then closes positions at market, largest first, until
/// the account is back above maintenance or has nothing left to close.
async fn liquidate(db: &Db, game: &Game, account_id: i64) -> Result<(), ExchangeError> {
    let view = crate::store::exchange::read_account_view(db, account_id).await?;
    let open = crate::store::exchange::orders_of(db, account_id, true, i64::MAX).await?;
    for o in &open {
        match cancel(db, game.id, None, o.id, CancelReason::Liquidation).await {
            Ok(_) | Err(ExchangeError::OrderClosed) => {}
            Err(e) => return Err(e),
        }
    }
    let mut holdings = view.holdings.clone();
    holdings.sort_by_key(|h| std::cmp::Reverse(i128::from(h.qty.abs()) * i128::from(h.mark)));
    for h in holdings {
        let view = crate::store::exchange::read_account_view(db, account_id).await?;
        if !view
            .below_maintenance(&game.rules)
            .map_err(|_| ExchangeError::TooLarge)?
        {
            break;
        }
        let qty = view.position(h.instrument_id);
        if qty == 0 {
            continue;
        }
        let spec = PlaceSpec {
            game_id: game.id,
            account_id,
            instrument_id: h.instrument_id,
            intent: if qty > 0 { Intent::Sell } else { Intent::Cover },
            order_type: OrderType::Market,
            tif: TimeInForce::Ioc,
            qty: qty.abs(),
            stp: Some(StpMode::CancelResting),
            liquidation: true,
        };
        place(db, &spec).await?;
    }
    Ok(())
}

/// Charges one day's borrow fee on every short position of a game, to the house.
pub(crate) async fn charge_borrow_fees(db: &Db, game_id: i64) -> Result<i64, ExchangeError> {
    let mut tx = WriteTx::begin(db, Locks::default()).await?;
    let (game, house) = tx.game(game_id).await?.ok_or(ExchangeError::UnknownGame)?;
    let mut total = 0i64;
    let mut cash = Vec::new();
    let mut ledger = Vec::new();
    for (account, instrument, qty, mark) in tx.short_positions(game_id).await? {
        let value = checked_mul(qty.abs(), mark)?;
        let fee = risk::bp_ceil(value, game.rules.borrow_fee_bp_day)
            .map_err(|_| ExchangeError::TooLarge)?;
        if fee == 0 {
            continue;
        }
        total = total.checked_add(fee).ok_or(ExchangeError::TooLarge)?;
        cash.push((account, -fee));
        cash.push((house, fee));
        for (a, d) in [(account, -fee), (house, fee)] {
            ledger.push(LedgerEntry {
                account_id: a,
                instrument_id: Some(instrument),
                cash_delta: d,
                share_delta: 0,
                reason: LedgerReason::BorrowFee,
                trade_id: None,
            });
        }
    }
    tx.move_cash(&cash).await?;
    tx.ledger(game_id, &ledger).await?;
    tx.commit().await?;
    Ok(total)
}

/// Pays a dividend per share to every holder of an instrument; short sellers pay it. The
/// money comes from outside the game (the issuer), so total cash grows by it.
pub(crate) async fn pay_dividend(
    db: &Db,
    game_id: i64,
    instrument_id: i64,
    per_share: i64,
) -> Result<(), ExchangeError> {
    let (mut tx, _game, _house) = begin_book(db, game_id, instrument_id, None).await?;
    let mut cash = Vec::new();
    let mut ledger = Vec::new();
    for (account, qty) in tx.holders(instrument_id).await? {
        let amount = checked_mul(qty, per_share)?;
        cash.push((account, amount));
        ledger.push(LedgerEntry {
            account_id: account,
            instrument_id: Some(instrument_id),
            cash_delta: amount,
            share_delta: 0,
            reason: LedgerReason::Dividend,
            trade_id: None,
        });
    }
    tx.move_cash(&cash).await?;
    tx.ledger(game_id, &ledger).await?;
    tx.commit().await?;
    Ok(())
}

/// Grants cash (from outside the game) and shares (from the house) to an account.
pub(crate) async fn grant(
    db: &Db,
    game_id: i64,
    account_id: i64,
    cash: i64,
    shares: Option<(i64, i64)>,
) -> Result<(), ExchangeError> {
    if cash < 0 || shares.is_some_and(|(_, q)| q < 0) {
        return Err(ExchangeError::BadQuantity);
    }
    let mut tx = WriteTx::begin(
        db,
        Locks {
            instrument: shares.map(|(i, _)| i),
            account: Some(account_id),
        },
    )
    .await?;
    let (_game, house) = tx.game(game_id).await?.ok_or(ExchangeError::UnknownGame)?;
    let mut ledger = Vec::new();
    if cash > 0 {
        tx.move_cash(&[(account_id, cash)]).await?;
        ledger.push(LedgerEntry {
            account_id,
            instrument_id: None,
            cash_delta: cash,
            share_delta: 0,
            reason: LedgerReason::Grant,
            trade_id: None,
        });
    }
    if let Some((instrument, qty)) = shares.filter(|&(_, q)| q > 0) {
        let held = tx
            .holders(instrument)
            .await?
            .into_iter()
            .find(|&(a, _)| a == house)
            .map(|(_, q)| q)
            .unwrap_or(0);
        if held < qty {
            return Err(ExchangeError::InsufficientShares {
                needed: qty,
                available: held,
            });
        }
        tx.move_shares(&[(house, instrument, -qty), (account_id, instrument, qty)])
            .await?;
        for (a, d) in [(house, -qty), (account_id, qty)] {
            ledger.push(LedgerEntry {
                account_id: a,
                instrument_id: Some(instrument),
                cash_delta: 0,
                share_delta: d,
                reason: LedgerReason::Grant,
                trade_id: None,
            });
        }
    }
    tx.ledger(game_id, &ledger).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collar_rounds_inwards_onto_ticks() {
        assert_eq!(collar(1000, 5, 1000).unwrap(), (900, 1100));
        assert_eq!(collar(1003, 5, 1000).unwrap(), (905, 1100));
        assert_eq!(collar(10, 5, 9000).unwrap(), (5, 15));
    }
}
