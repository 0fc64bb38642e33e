//! The robust mark and the final leaderboard, as pure functions.
//!
//! A leaderboard that marks holdings at the last trade invites EVE's 1-ISK exploit: trade a
//! share with a friend (or yourself) at a silly price and your holdings are "worth" anything.
//! Following exchange-notes.md section 4, longs are marked at the *lowest* and shorts at the
//! *highest* of the prices we know (the last trade, the median of the latest trades, the
//! volume-weighted close of the latest tick bars), and the simulation's hidden fair value
//! bounds both: longs at most `fair + band`, shorts at least `fair - band`. Moving the mark in
//! your favour therefore needs many trades at volume, and even then stops at the band.
//!
//! No I/O here: the evidence is read by `store::seasons` and passed in.

use crate::store::seasons::{Holding, PriceEvidence};

/// How the mark is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkConfig {
    /// How many of the latest trades the median is taken over.
    pub recent_trades: i64,
    /// How many of the latest tick bars the volume-weighted close is taken over.
    pub recent_ticks: i64,
    /// How far from fair value a mark may be, in basis points.
    pub fair_band_bp: i64,
}

impl Default for MarkConfig {
    fn default() -> Self {
        MarkConfig {
            recent_trades: 21,
            recent_ticks: 60,
            fair_band_bp: 500,
        }
    }
}

/// The prices one instrument's holdings are marked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub instrument_id: i64,
    /// For long positions: the lowest credible price.
    pub long: i64,
    /// For short positions: the highest credible price.
    pub short: i64,
}

/// The median of some prices (the lower middle for an even count).
pub fn median(prices: &[i64]) -> Option<i64> {
    if prices.is_empty() {
        return None;
    }
    let mut p = prices.to_vec();
    p.sort_unstable();
    Some(p[(p.len() - 1) / 2])
}

/// The marks for one instrument from its price evidence.
pub fn robust_mark(e: &PriceEvidence, band_bp: i64) -> Mark {
    let mut candidates = vec![e.last.max(0)];
    if let Some(m) = median(&e.recent_trades) {
        candidates.push(m);
    }
    if e.tick_volume > 0 {
        candidates.push(e.tick_value / e.tick_volume);
    }
    let mut long = candidates.iter().copied().min().unwrap_or(0);
    let mut short = candidates.iter().copied().max().unwrap_or(0);
    if let Some(fair_ucents) = e.fair_ucents {
        // Fair values are micro-cents; round to the nearest cent.
        let fair = (fair_ucents.max(0) + 500_000) / 1_000_000;
        let band = fair.saturating_mul(band_bp.max(0)) / 10_000;
        long = long.min(fair.saturating_add(band));
        short = short.max(fair.saturating_sub(band).max(0));
    }
    Mark {
        instrument_id: e.instrument_id,
        long: long.max(0),
        short: short.max(0),
    }
}

/// One player's final standing, before ranking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub account_id: i64,
    pub player_id: i64,
    pub cash: i64,
    /// Longs minus shorts at the marks.
    pub holdings: i64,
    pub net_worth: i64,
}

/// Every account's net worth at the marks, best first (ties by account id, older first). An
/// instrument with no mark counts as worth nothing.
pub fn leaderboard(holdings: &[Holding], marks: &[Mark]) -> Vec<Standing> {
    let mut out: Vec<Standing> = holdings
        .iter()
        .map(|h| {
            let value = h
                .positions
                .iter()
                .map(|&(instrument, qty)| {
                    let mark = marks.iter().find(|m| m.instrument_id == instrument);
                    let price = match mark {
                        Some(m) if qty >= 0 => m.long,
                        Some(m) => m.short,
                        None => 0,
                    };
                    qty.saturating_mul(price)
                })
                .fold(0_i64, i64::saturating_add);
            Standing {
                account_id: h.account_id,
                player_id: h.player_id,
                cash: h.cash,
                holdings: value,
                net_worth: h.cash.saturating_add(value),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.net_worth
            .cmp(&a.net_worth)
            .then(a.account_id.cmp(&b.account_id))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(last: i64, trades: &[i64], fair_cents: Option<i64>) -> PriceEvidence {
        PriceEvidence {
            instrument_id: 1,
            last,
            recent_trades: trades.to_vec(),
            tick_value: 0,
            tick_volume: 0,
            fair_ucents: fair_cents.map(|c| c * 1_000_000),
        }
    }

    #[test]
    fn one_silly_trade_does_not_move_the_long_mark() {
        // Twenty trades near 10.00, then a self-trade at 1,000.00.
        let mut trades = vec![100_000];
        trades.extend(std::iter::repeat_n(1_000, 20));
        let m = robust_mark(&evidence(100_000, &trades, None), 500);
        assert_eq!(m.long, 1_000);
        // The short mark is the pessimistic one for shorts; the fair band caps it below.
        let m = robust_mark(&evidence(100_000, &trades, Some(1_000)), 500);
        assert_eq!(m.long, 1_000);
        assert_eq!(m.short, 100_000);
    }

    #[test]
    fn fair_value_bounds_a_pumped_market() {
        // Every recent trade was pumped to 20.00, but fair value is 10.00: longs get 10.50.
        let m = robust_mark(&evidence(2_000, &[2_000; 21], Some(1_000)), 500);
        assert_eq!(m.long, 1_050);
        // A dumped market does not flatter shorts below fair - band.
        let m = robust_mark(&evidence(100, &[100; 21], Some(1_000)), 500);
        assert_eq!(m.short, 950);
    }

    #[test]
    fn volume_weighted_ticks_count() {
        let mut e = evidence(1_200, &[1_200], None);
        e.tick_value = 1_000 * 90 + 2_000 * 10;
        e.tick_volume = 100;
        assert_eq!(robust_mark(&e, 500).long, 1_100);
        assert_eq!(robust_mark(&e, 500).short, 1_200);
    }

    #[test]
    fn median_takes_the_lower_middle() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5, 1, 3]), Some(3));
        assert_eq!(median(&[4, 1, 3, 2]), Some(2));
    }

    #[test]
    fn leaderboard_marks_longs_and_shorts_and_ranks() {
        let marks = [Mark {
            instrument_id: 7,
            long: 100,
            short: 120,
        }];
        let h = |account_id, cash, qty| Holding {
            account_id,
            player_id: account_id * 10,
            cash,
            positions: vec![(7, qty)],
        };
        let board = leaderboard(&[h(1, 1_000, 10), h(2, 5_000, -10), h(3, 2_000, 0)], &marks);
        let worth: Vec<(i64, i64)> = board.iter().map(|s| (s.account_id, s.net_worth)).collect();
        assert_eq!(worth, vec![(2, 3_800), (1, 2_000), (3, 2_000)]);
    }
}
