//! The matching decision for one incoming order: pure, with no I/O and no clock.
//!
//! The store loads the resting orders that cross the incoming order, best first (best price,
//! then earliest priority), inside the transaction that holds the book's lock; this module
//! decides the fills, the self-trade cancels and what happens to the rest of the incoming
//! order, and the store writes that down. It must never read or write anything itself.
//!
//! Rules: price-time priority; each fill at the resting order's price; a limit order that is
//! good till cancelled or for the day rests with what is left; market, immediate-or-cancel and
//! fill-or-kill orders never rest; fill-or-kill fills completely or not at all (and then
//! changes nothing, not even self-trade cancels); self-trade prevention per [`StpMode`].

use super::model::{CancelReason, Side, StpMode};

/// The incoming order, as far as matching cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub account_id: i64,
    pub side: Side,
    /// The worst price it may trade at: its limit, or the collar bound for a market order.
    pub limit: i64,
    /// Shares still to fill.
    pub qty: i64,
    /// Whether what is left may rest on the book (a GTC or day limit order).
    pub may_rest: bool,
    /// Fill completely or not at all.
    pub fill_or_kill: bool,
    pub stp: StpMode,
}

/// A resting order on the other side of the book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resting {
    pub order_id: i64,
    pub account_id: i64,
    pub price: i64,
    /// Shares still open.
    pub open_qty: i64,
}

/// One fill decided by the matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchFill {
    pub maker_order_id: i64,
    pub maker_account_id: i64,
    pub price: i64,
    pub qty: i64,
}

/// The matching decision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Fills in the order they happen.
    pub fills: Vec<MatchFill>,
    /// Resting orders cancelled by self-trade prevention.
    pub cancelled_resting: Vec<i64>,
    /// Shares of the incoming order not filled.
    pub remaining: i64,
    /// Whether the remaining shares rest on the book.
    pub rests: bool,
    /// Why the remaining shares were cancelled, if they were.
    pub cancel_reason: Option<CancelReason>,
}

/// Whether a resting order at `price` is acceptable to an incoming order on `side` with
/// worst price `limit`.
pub fn crosses(side: Side, limit: i64, price: i64) -> bool {
    match side {
        Side::Buy => price <= limit,
        Side::Sell => price >= limit,
    }
}

/// Whether `a` comes before `b` on a book side (better price first).
pub fn better(side_of_book: Side, a: i64, b: i64) -> bool {
    match side_of_book {
        Side::Buy => a > b,
        Side::Sell => a < b,
    }
}

/// How many shares the incoming order could fill from `resting` (applying self-trade rules as
/// matching would), stopping once `want` is reached.
pub fn fillable(incoming: &Incoming, resting: &[Resting], want: i64) -> i64 {
    let mut total = 0i64;
    for r in resting {
        if total >= want || !crosses(incoming.side, incoming.limit, r.price) {
            break;
        }
        if r.account_id == incoming.account_id {
            match incoming.stp {
                StpMode::CancelResting => continue,
                StpMode::CancelIncoming | StpMode::CancelBoth => break,
            }
        }
        total = total.saturating_add(r.open_qty);
    }
    total.min(want)
}

/// Decides how `incoming` trades against `resting`, which must be in priority order (best
/// price first, then earliest). Orders that do not cross end the walk.
pub fn match_incoming(incoming: &Incoming, resting: &[Resting]) -> Outcome {
    let mut out = Outcome {
        remaining: incoming.qty.max(0),
        ..Outcome::default()
    };
    if out.remaining == 0 {
        return out;
    }
    if incoming.fill_or_kill && fillable(incoming, resting, out.remaining) < out.remaining {
        out.cancel_reason = Some(CancelReason::Killed);
        return out;
    }
    let mut stopped_by_stp = false;
    for r in resting {
        if out.remaining == 0 || !crosses(incoming.side, incoming.limit, r.price) {
            break;
        }
        if r.open_qty <= 0 {
            continue;
        }
        if r.account_id == incoming.account_id {
            match incoming.stp {
                StpMode::CancelResting => {
                    out.cancelled_resting.push(r.order_id);
                    continue;
                }
                StpMode::CancelIncoming => {
                    stopped_by_stp = true;
                    break;
                }
                StpMode::CancelBoth => {
                    out.cancelled_resting.push(r.order_id);
                    stopped_by_stp = true;
                    break;
                }
            }
        }
        let qty = out.remaining.min(r.open_qty);
        out.fills.push(MatchFill {
            maker_order_id: r.order_id,
            maker_account_id: r.account_id,
            price: r.price,
            qty,
        });
        out.remaining -= qty;
    }
    if out.remaining > 0 {
        if stopped_by_stp {
            out.cancel_reason = Some(CancelReason::SelfTrade);
        } else if incoming.may_rest {
            out.rests = true;
        } else {
            out.cancel_reason = Some(CancelReason::Unfilled);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buy(qty: i64, limit: i64) -> Incoming {
        Incoming {
            account_id: 1,
            side: Side::Buy,
            limit,
            qty,
            may_rest: true,
            fill_or_kill: false,
            stp: StpMode::CancelResting,
        }
    }

    fn ask(order_id: i64, account_id: i64, price: i64, open_qty: i64) -> Resting {
        Resting {
            order_id,
            account_id,
            price,
            open_qty,
        }
    }

    #[test]
    fn fills_at_resting_price_in_priority_order() {
        let book = [ask(10, 2, 100, 5), ask(11, 3, 100, 5), ask(12, 2, 101, 5)];
        let out = match_incoming(&buy(12, 105), &book);
        let got: Vec<_> = out
            .fills
            .iter()
            .map(|f| (f.maker_order_id, f.price, f.qty))
            .collect();
        assert_eq!(got, vec![(10, 100, 5), (11, 100, 5), (12, 101, 2)]);
        assert_eq!(out.remaining, 0);
        assert!(!out.rests);
        assert_eq!(out.cancel_reason, None);
    }

    #[test]
    fn stops_at_first_price_that_does_not_cross() {
        let book = [ask(10, 2, 100, 5), ask(11, 3, 102, 5)];
        let out = match_incoming(&buy(8, 101), &book);
        assert_eq!(out.fills.len(), 1);
        assert_eq!(out.remaining, 3);
        assert!(out.rests);
    }

    #[test]
    fn sell_side_crosses_downwards() {
        let mut inc = buy(3, 99);
        inc.side = Side::Sell;
        let bids = [ask(10, 2, 101, 1), ask(11, 2, 99, 1), ask(12, 2, 98, 5)];
        let out = match_incoming(&inc, &bids);
        assert_eq!(
            out.fills.iter().map(|f| f.price).collect::<Vec<_>>(),
            vec![101, 99]
        );
        assert_eq!(out.remaining, 1);
        assert!(out.rests);
    }

    #[test]
    fn ioc_and_market_remainder_is_cancelled() {
        let mut inc = buy(10, 100);
        inc.may_rest = false;
        let out = match_incoming(&inc, &[ask(10, 2, 100, 4)]);
        assert_eq!(out.remaining, 6);
        assert!(!out.rests);
        assert_eq!(out.cancel_reason, Some(CancelReason::Unfilled));
    }

    #[test]
    fn fill_or_kill_is_all_or_nothing() {
        let mut inc = buy(10, 100);
        inc.may_rest = false;
        inc.fill_or_kill = true;
        let out = match_incoming(&inc, &[ask(10, 2, 100, 4), ask(11, 1, 100, 9)]);
        assert!(out.fills.is_empty());
        assert!(
            out.cancelled_resting.is_empty(),
            "a killed order changes nothing"
        );
        assert_eq!(out.cancel_reason, Some(CancelReason::Killed));
        let out = match_incoming(&inc, &[ask(10, 2, 100, 4), ask(11, 3, 100, 9)]);
        assert_eq!(out.remaining, 0);
        assert_eq!(out.fills.len(), 2);
    }

    #[test]
    fn self_trade_cancels_resting_by_default() {
        let out = match_incoming(&buy(5, 100), &[ask(10, 1, 99, 5), ask(11, 2, 100, 5)]);
        assert_eq!(out.cancelled_resting, vec![10]);
        assert_eq!(out.fills.len(), 1);
        assert_eq!(out.fills[0].maker_order_id, 11);
    }

    #[test]
    fn self_trade_cancel_incoming_and_both() {
        let book = [ask(9, 2, 98, 1), ask(10, 1, 99, 5), ask(11, 2, 100, 5)];
        let mut inc = buy(5, 100);
        inc.stp = StpMode::CancelIncoming;
        let out = match_incoming(&inc, &book);
        assert_eq!(out.fills.len(), 1);
        assert!(out.cancelled_resting.is_empty());
        assert_eq!(out.remaining, 4);
        assert!(!out.rests);
        assert_eq!(out.cancel_reason, Some(CancelReason::SelfTrade));
        inc.stp = StpMode::CancelBoth;
        let out = match_incoming(&inc, &book);
        assert_eq!(out.cancelled_resting, vec![10]);
        assert_eq!(out.cancel_reason, Some(CancelReason::SelfTrade));
    }

    #[test]
    fn fillable_skips_own_orders_when_cancelling_resting() {
        let book = [ask(10, 1, 99, 5), ask(11, 2, 100, 5)];
        assert_eq!(fillable(&buy(20, 100), &book, 20), 5);
        let mut inc = buy(20, 100);
        inc.stp = StpMode::CancelIncoming;
        assert_eq!(fillable(&inc, &book, 20), 0);
    }

    #[test]
    fn zero_quantity_does_nothing() {
        let out = match_incoming(&buy(0, 100), &[ask(10, 2, 100, 5)]);
        assert_eq!(out, Outcome::default());
    }
}
