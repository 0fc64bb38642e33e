//! Solvency rules: buying power, free shares and maintenance margin. Pure arithmetic over an
//! account's cash, holdings and open orders, with no I/O; every product and sum is checked.
//!
//! Equity is cash plus longs minus shorts at their marks. Gross exposure is the value of all
//! holdings regardless of sign, plus the value of open orders that could add exposure (buys and
//! short sales). A new opening order is accepted when equity still covers the initial margin
//! on the gross exposure including it; closing orders (sell, cover) need free shares only.

use super::model::{GameRules, Intent};

/// Arithmetic overflowed: the numbers are beyond anything a game can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// One holding with the price it is valued at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holding {
    pub instrument_id: i64,
    /// Positive long, negative short.
    pub qty: i64,
    pub mark: i64,
}

/// The account's open orders of one intent on one instrument, added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOrders {
    pub instrument_id: i64,
    pub intent: Intent,
    /// Shares still open.
    pub open_qty: i64,
    /// Open shares times their limit prices.
    pub value: i64,
}

/// What the rules need to know about an account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountView {
    pub cash: i64,
    pub holdings: Vec<Holding>,
    pub open_orders: Vec<OpenOrders>,
}

/// Why an order breaks the solvency rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not enough buying power: `needed` is the order's value, `available` what is left.
    Funds {
        needed: i64,
        available: i64,
    },
    /// Not enough free shares (long for a sale, short for a cover).
    Shares {
        needed: i64,
        available: i64,
    },
    Overflow,
}

impl From<Overflow> for Refusal {
    fn from(_: Overflow) -> Self {
        Refusal::Overflow
    }
}

fn mul(a: i64, b: i64) -> Result<i64, Overflow> {
    a.checked_mul(b).ok_or(Overflow)
}

fn add(a: i64, b: i64) -> Result<i64, Overflow> {
    a.checked_add(b).ok_or(Overflow)
}

/// `value * bp / 10000`, rounded up, without overflowing in between.
pub fn bp_ceil(value: i64, bp: i64) -> Result<i64, Overflow> {
    let v = i128::from(value) * i128::from(bp);
    let q = v.div_euclid(10_000) + i128::from(v.rem_euclid(10_000) != 0);
    i64::try_from(q).map_err(|_| Overflow)
}

/// `value * bp / 10000`, rounded down.
pub fn bp_floor(value: i64, bp: i64) -> Result<i64, Overflow> {
    let v = i128::from(value) * i128::from(bp);
    i64::try_from(v.div_euclid(10_000)).map_err(|_| Overflow)
}

impl AccountView {
    /// Cash plus longs minus shorts at their marks.
    pub fn equity(&self) -> Result<i64, Overflow> {
        let mut e = self.cash;
        for h in &self.holdings {
            e = add(e, mul(h.qty, h.mark)?)?;
        }
        Ok(e)
    }

    /// The value of all holdings regardless of sign.
    pub fn gross(&self) -> Result<i64, Overflow> {
        let mut g = 0i64;
        for h in &self.holdings {
            g = add(g, mul(h.qty.abs(), h.mark)?)?;
        }
        Ok(g)
    }

    /// The value of open orders that could add exposure.
    pub fn pending(&self) -> Result<i64, Overflow> {
        let mut p = 0i64;
        for o in &self.open_orders {
            if o.intent.is_opening() {
                p = add(p, o.value)?;
            }
        }
        Ok(p)
    }

    /// Leaves one open order out (the one being replaced): its shares and value no longer
    /// count against the account.
    pub fn without_order(
        &mut self,
        instrument_id: i64,
        intent: Intent,
        open_qty: i64,
        price: i64,
    ) -> Result<(), Overflow> {
        let value = mul(open_qty, price)?;
        if let Some(o) = self
            .open_orders
            .iter_mut()
            .find(|o| o.instrument_id == instrument_id && o.intent == intent)
        {
            o.open_qty -= open_qty;
            o.value -= value;
        }
        Ok(())
    }

    /// The position in one instrument.
    pub fn position(&self, instrument_id: i64) -> i64 {
        self.holdings
            .iter()
            .filter(|h| h.instrument_id == instrument_id)
            .map(|h| h.qty)
            .sum()
    }

    /// Shares of an instrument the account may still sell (`Intent::Sell`) or cover
    /// (`Intent::Cover`), after its open orders of that intent.
    pub fn free_shares(&self, instrument_id: i64, intent: Intent) -> i64 {
        let pos = self.position(instrument_id);
        let held = match intent {
            Intent::Sell => pos.max(0),
            Intent::Cover => (-pos).max(0),
            Intent::Buy | Intent::Short => return 0,
        };
        let committed: i64 = self
            .open_orders
            .iter()
            .filter(|o| o.instrument_id == instrument_id && o.intent == intent)
            .map(|o| o.open_qty)
            .sum();
        (held - committed).max(0)
    }

    /// How much more exposure (order value) the account can take on; never negative.
    pub fn buying_power(&self, rules: &GameRules) -> Result<i64, Overflow> {
        let equity = self.equity()?;
        if equity <= 0 || rules.initial_margin_bp <= 0 {
            return Ok(0);
        }
        let capacity = i128::from(equity) * 10_000 / i128::from(rules.initial_margin_bp);
        let used = i128::from(self.gross()?) + i128::from(self.pending()?);
        let left = (capacity - used).max(0);
        i64::try_from(left).map_err(|_| Overflow)
    }

    /// The equity maintenance margin requires.
    pub fn maintenance(&self, rules: &GameRules) -> Result<i64, Overflow> {
        let mut m = 0i64;
        for h in &self.holdings {
            let value = mul(h.qty.abs(), h.mark)?;
            let bp = if h.qty >= 0 {
                rules.maint_long_bp
            } else {
                rules.maint_short_bp
            };
            m = add(m, bp_ceil(value, bp)?)?;
        }
        Ok(m)
    }

    /// Whether equity has fallen below maintenance.
    pub fn below_maintenance(&self, rules: &GameRules) -> Result<bool, Overflow> {
        Ok(self.equity()? < self.maintenance(rules)?)
    }
}

/// Checks a new order of `qty` shares at worst price `price` (for a replace, take the old
/// order out of the view first with [`AccountView::without_order`]).
pub fn check_order(
    view: &AccountView,
    rules: &GameRules,
    instrument_id: i64,
    intent: Intent,
    qty: i64,
    price: i64,
) -> Result<(), Refusal> {
    if intent.is_opening() {
        let value = mul(qty, price)?;
        let fee = bp_ceil(value, rules.fee_bp)?;
        let needed = add(value, fee)?;
        let available = view.buying_power(rules)?;
        if needed > available {
            return Err(Refusal::Funds { needed, available });
        }
    } else {
        let available = view.free_shares(instrument_id, intent);
        if qty > available {
            return Err(Refusal::Shares {
                needed: qty,
                available,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> GameRules {
        GameRules::default()
    }

    #[test]
    fn buying_power_is_twice_equity_at_half_margin() {
        let v = AccountView {
            cash: 1_000,
            ..AccountView::default()
        };
        assert_eq!(v.buying_power(&rules()), Ok(2_000));
        assert!(check_order(&v, &rules(), 1, Intent::Buy, 20, 100).is_ok());
        assert_eq!(
            check_order(&v, &rules(), 1, Intent::Buy, 21, 100),
            Err(Refusal::Funds {
                needed: 2_100,
                available: 2_000
            })
        );
    }

    #[test]
    fn open_orders_use_buying_power_unless_replaced() {
        let mut v = AccountView {
            cash: 1_000,
            holdings: vec![],
            open_orders: vec![OpenOrders {
                instrument_id: 1,
                intent: Intent::Short,
                open_qty: 10,
                value: 1_000,
            }],
        };
        assert_eq!(v.buying_power(&rules()), Ok(1_000));
        v.without_order(1, Intent::Short, 10, 100).unwrap();
        assert_eq!(v.buying_power(&rules()), Ok(2_000));
    }

    #[test]
    fn sells_need_free_long_shares_and_covers_free_short_shares() {
        let mut v = AccountView {
            cash: 0,
            holdings: vec![
                Holding {
                    instrument_id: 1,
                    qty: 10,
                    mark: 100,
                },
                Holding {
                    instrument_id: 2,
                    qty: -4,
                    mark: 100,
                },
            ],
            open_orders: vec![OpenOrders {
                instrument_id: 1,
                intent: Intent::Sell,
                open_qty: 6,
                value: 600,
            }],
        };
        assert_eq!(v.free_shares(1, Intent::Sell), 4);
        assert_eq!(v.free_shares(2, Intent::Cover), 4);
        assert_eq!(v.free_shares(2, Intent::Sell), 0);
        assert_eq!(
            check_order(&v, &rules(), 1, Intent::Sell, 5, 100),
            Err(Refusal::Shares {
                needed: 5,
                available: 4
            })
        );
        v.without_order(1, Intent::Sell, 6, 100).unwrap();
        assert_eq!(v.free_shares(1, Intent::Sell), 10);
    }

    #[test]
    fn maintenance_uses_long_and_short_rates() {
        let v = AccountView {
            cash: 500,
            holdings: vec![
                Holding {
                    instrument_id: 1,
                    qty: 10,
                    mark: 100,
                },
                Holding {
                    instrument_id: 2,
                    qty: -10,
                    mark: 100,
                },
            ],
            open_orders: vec![],
        };
        assert_eq!(v.equity(), Ok(500));
        assert_eq!(v.maintenance(&rules()), Ok(250 + 300));
        assert_eq!(v.below_maintenance(&rules()), Ok(true));
    }

    #[test]
    fn overflow_is_refused_not_wrapped() {
        let v = AccountView {
            cash: i64::MAX,
            ..AccountView::default()
        };
        assert_eq!(
            check_order(&v, &rules(), 1, Intent::Buy, i64::MAX, 2),
            Err(Refusal::Overflow)
        );
        assert_eq!(bp_ceil(101, 5_000), Ok(51));
        assert_eq!(bp_floor(101, 5_000), Ok(50));
    }
}
