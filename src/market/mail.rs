//! The letters the market sends (pure): which exchange events make a letter, how partial fills
//! are added up, what a fill, margin call, liquidation or anonymous tip says, and who gets a
//! tip.
//!
//! Owns grouping a batch of events into letters and writing their text; it does no I/O, reads
//! no clock and keeps no state, so [`super::notify`] can run it again over the same batch after
//! a crash and get the same letters (and so the same keys). Every subject fits the 39 columns
//! of an Atari screen line and every body line that is not a wrapped sentence does too; money
//! is shown with [`Cents`], like everywhere else.
//!
//! **Maker or taker.** The engine writes one `Fill` event per order per trade, and its
//! `detail` says which side of the trade the order was on: `maker` for the order that was
//! resting on the book, `taker` for the incoming order, `liquidation` for the house's forced
//! order. A player who sent a taker order saw its fills on the order screen, so only `maker`
//! fills make a fill letter; `liquidation` fills make the liquidation letter.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::exchange::{Cents, Event, EventKind, Intent, OrderStatus};

/// The widest line a letter may hold so it reads well on a 40-column screen.
pub const COLUMNS: usize = 39;

/// Fills of one order within one batch of events, added up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillGroup {
    pub order_id: i64,
    pub account_id: i64,
    pub instrument_id: i64,
    /// Shares filled in this batch.
    pub qty: i64,
    /// Sum of price × quantity, in cents.
    pub value: i128,
    /// How many fills (trades).
    pub fills: usize,
    pub low: i64,
    pub high: i64,
    /// The sequence number of the last fill: with the order id it names the letter.
    pub last_seq: i64,
}

impl FillGroup {
    /// The average price, rounded to the nearest cent.
    pub fn average(&self) -> i64 {
        if self.qty <= 0 {
            return 0;
        }
        let q = i128::from(self.qty);
        i64::try_from((self.value + q / 2) / q).unwrap_or(i64::MAX)
    }
}

/// Adds up the `Fill` events whose `detail` is `which` (`maker` or `liquidation`) per order,
/// in the order each order first filled. Events without an order, account, instrument, price
/// or a positive quantity are left out.
pub fn group_fills(events: &[Event], which: &str) -> Vec<FillGroup> {
    let mut groups: Vec<FillGroup> = Vec::new();
    let mut index: BTreeMap<i64, usize> = BTreeMap::new();
    for e in events {
        if e.kind != EventKind::Fill || e.detail != which {
            continue;
        }
        let (Some(order_id), Some(account_id), Some(instrument_id), Some(price), Some(qty)) =
            (e.order_id, e.account_id, e.instrument_id, e.price, e.qty)
        else {
            continue;
        };
        if qty <= 0 {
            continue;
        }
        let value = i128::from(price) * i128::from(qty);
        match index.get(&order_id) {
            Some(&i) => {
                let g = &mut groups[i];
                g.qty = g.qty.saturating_add(qty);
                g.value += value;
                g.fills += 1;
                g.low = g.low.min(price);
                g.high = g.high.max(price);
                g.last_seq = g.last_seq.max(e.seq);
            }
            None => {
                index.insert(order_id, groups.len());
                groups.push(FillGroup {
                    order_id,
                    account_id,
                    instrument_id,
                    qty,
                    value,
                    fills: 1,
                    low: price,
                    high: price,
                    last_seq: e.seq,
                });
            }
        }
    }
    groups
}

/// A forced liquidation of one account within a batch: the house's orders and how many of the
/// account's own orders it cancelled first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiquidationGroup {
    pub account_id: i64,
    pub orders: Vec<FillGroup>,
    pub cancelled: usize,
    /// The last sequence number of the liquidation's events: it names the letter.
    pub last_seq: i64,
}

/// The liquidations in a batch, one per account, in the order they happened. An account
/// whose orders were cancelled for a liquidation but that had nothing filled still gets one.
pub fn group_liquidations(events: &[Event]) -> Vec<LiquidationGroup> {
    let mut out: Vec<LiquidationGroup> = Vec::new();
    let entry = |out: &mut Vec<LiquidationGroup>, account_id: i64| -> usize {
        match out.iter().position(|l| l.account_id == account_id) {
            Some(i) => i,
            None => {
                out.push(LiquidationGroup {
                    account_id,
                    orders: Vec::new(),
                    cancelled: 0,
                    last_seq: 0,
                });
                out.len() - 1
            }
        }
    };
    for e in events {
        let Some(account_id) = e.account_id else {
            continue;
        };
        let counts = match e.kind {
            EventKind::Cancel => e.detail == "liquidation",
            EventKind::Fill => e.detail == "liquidation",
            EventKind::Liquidation => true,
            _ => false,
        };
        if !counts {
            continue;
        }
        let i = entry(&mut out, account_id);
        out[i].last_seq = out[i].last_seq.max(e.seq);
        if e.kind == EventKind::Cancel {
            out[i].cancelled += 1;
        }
    }
    for g in group_fills(events, "liquidation") {
        let i = entry(&mut out, g.account_id);
        out[i].orders.push(g);
    }
    out
}

/// The margin calls in a batch: (sequence number, account).
pub fn margin_calls(events: &[Event]) -> Vec<(i64, i64)> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::MarginCall)
        .filter_map(|e| Some((e.seq, e.account_id?)))
        .collect()
}

/// How an intent reads in a letter.
pub fn verb(intent: Intent) -> &'static str {
    match intent {
        Intent::Buy => "BUY",
        Intent::Sell => "SELL",
        Intent::Short => "SHORT",
        Intent::Cover => "COVER",
    }
}

fn past(intent: Intent) -> &'static str {
    match intent {
        Intent::Buy => "Bought",
        Intent::Sell => "Sold",
        Intent::Short => "Shorted",
        Intent::Cover => "Covered",
    }
}

/// A whole number with thousands separators: `1,000`.
pub fn shares(n: i64) -> String {
    crate::exchange::thousands(n)
}

/// What a fill letter needs to know about the order, as it stands when the letter is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderNow {
    pub intent: Intent,
    pub symbol: String,
    /// The limit price, `None` for a market order.
    pub price: Option<i64>,
    pub qty: i64,
    pub filled: i64,
    pub status: OrderStatus,
}

/// The subject and body of a fill letter for one order's fills in a batch.
pub fn fill_text(g: &FillGroup, order: &OrderNow) -> (String, String) {
    let v = verb(order.intent);
    let done = order.status == OrderStatus::Filled;
    let subject = format!(
        "{}: {v} {} {}",
        if done { "Filled" } else { "Part filled" },
        shares(g.qty),
        order.symbol
    );
    let mut body = vec![
        format!("Your order #{} traded on the book.", g.order_id),
        String::new(),
        format!("{} {} {}", past(order.intent), shares(g.qty), order.symbol),
        format!("Average price: {}", Cents(g.average())),
    ];
    if g.fills > 1 {
        body.push(format!(
            "In {} fills, {} to {}",
            g.fills,
            Cents(g.low),
            Cents(g.high)
        ));
    }
    let value = i64::try_from(g.value).unwrap_or(i64::MAX);
    body.push(format!("Total: {}", Cents(value)));
    body.push(String::new());
    let limit = match order.price {
        Some(p) => format!(" at {}", Cents(p)),
        None => String::new(),
    };
    body.push(format!(
        "Order: {v} {} {}{limit}",
        shares(order.qty),
        order.symbol
    ));
    body.push(format!("Filled so far: {}", shares(order.filled)));
    let open = order.qty.saturating_sub(order.filled).max(0);
    body.push(match order.status {
        OrderStatus::Open => format!("Still working: {}{limit}", shares(open)),
        OrderStatus::Filled => "Nothing left working.".to_string(),
        OrderStatus::Cancelled => format!("The other {} were cancelled.", shares(open)),
    });
    (subject, body.join("\n"))
}

/// The subject and body of a margin call. `next_check` is when the house looks again (market
/// time, already formatted), if the calendar has one.
pub fn margin_call_text(
    equity: i64,
    maintenance: i64,
    next_check: Option<&str>,
) -> (String, String) {
    let short = maintenance.saturating_sub(equity).max(0);
    let when = match next_check {
        Some(t) => format!("at the next check ({t})"),
        None => "at the next check".to_string(),
    };
    let body = [
        "Your account is below maintenance".to_string(),
        "margin.".to_string(),
        String::new(),
        format!("Equity:      {}", Cents(equity)),
        format!("Maintenance: {}", Cents(maintenance)),
        format!("Short by:    {}", Cents(short)),
        String::new(),
        format!(
            "Sell, cover or pray. If you are still below maintenance {when}, the house \
             cancels your open orders and closes your positions at market, largest first."
        ),
        "Greed is good. Leverage is better, until it isn't.".to_string(),
    ];
    ("MARGIN CALL".to_string(), body.join("\n"))
}

/// What the house did for one liquidated position, as the letter tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub intent: Intent,
    pub symbol: String,
    pub fill: FillGroup,
}

/// The subject and body of a liquidation letter.
pub fn liquidation_text(closed: &[Closed], cancelled: usize) -> (String, String) {
    let subject = "Forced liquidation".to_string();
    let mut body = vec![
        "You stayed below maintenance margin,".to_string(),
        "so the house stepped in.".to_string(),
        String::new(),
    ];
    if cancelled > 0 {
        body.push(format!(
            "Open orders cancelled: {}",
            shares(cancelled as i64)
        ));
    }
    if closed.is_empty() {
        body.push("Nothing could be closed: the book".to_string());
        body.push("was empty.".to_string());
    }
    for c in closed {
        body.push(format!(
            "{} {} {}",
            past(c.intent),
            shares(c.fill.qty),
            c.symbol
        ));
        body.push(format!("  at {} average", Cents(c.fill.average())));
    }
    body.push(String::new());
    body.push("Margin is a loan. The house always collects.".to_string());
    (subject, body.join("\n"))
}

/// The tip table: phrasings for good and bad news and sign-offs, from `tips.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Tips {
    pub good: Vec<String>,
    pub bad: Vec<String>,
    pub signoff: Vec<String>,
}

const TIPS: &str = include_str!("tips.toml");

/// The compiled-in tip table. A table that fails to parse (caught by a unit test) leaves the
/// lists empty, and [`tip_text`] falls back to a plain hint.
pub fn tips() -> &'static Tips {
    static CELL: OnceLock<Tips> = OnceLock::new();
    CELL.get_or_init(|| toml::from_str(TIPS).unwrap_or_default())
}

/// The RNG of a news item's tips: ChaCha8 seeded from the game's seed and the news id, so any
/// process (and any re-run) chooses the same players and words.
pub fn tip_rng(seed: i64, news_id: i64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&news_id.to_le_bytes());
    key[16..24].copy_from_slice(b"nuggetip");
    ChaCha8Rng::from_seed(key)
}

/// Who gets a tip about news item `news_id`: up to `n` of `players` (human players with an
/// account in the game), chosen reproducibly from the seed and the news id whatever order the
/// players are listed in.
pub fn choose_tippees(seed: i64, news_id: i64, players: &[i64], n: usize) -> Vec<i64> {
    let mut pool: Vec<i64> = players.iter().copied().filter(|&p| p > 0).collect();
    pool.sort_unstable();
    pool.dedup();
    let mut rng = tip_rng(seed, news_id);
    pool.shuffle(&mut rng);
    pool.truncate(n);
    pool.sort_unstable();
    pool
}

/// The subject and body of a tip to `player` about news that moves `symbol` up (`good`) or
/// down. The wording is drawn from the seed, the news id and the player, so two players may
/// hear it differently but a re-run says the same.
pub fn tip_text(
    seed: i64,
    news_id: i64,
    player: i64,
    symbol: &str,
    name: &str,
    good: bool,
) -> (String, String) {
    let table = tips();
    let mut rng = tip_rng(seed, news_id ^ player.rotate_left(32));
    let list = if good { &table.good } else { &table.bad };
    let line = match list.len() {
        0 if good => "{name} ({symbol}) is about to have a very good day.".to_string(),
        0 => "{name} ({symbol}) is about to have a very bad day.".to_string(),
        len => list[rng.gen_range(0..len)].clone(),
    };
    let signoff = match table.signoff.len() {
        0 => "You didn't hear it from me.".to_string(),
        len => table.signoff[rng.gen_range(0..len)].clone(),
    };
    let fill = |s: &str| s.replace("{symbol}", symbol).replace("{name}", name);
    let subject = format!("Psst... about {symbol}");
    let body = format!(
        "{}\n\nNews is coming. Soon.\n{}",
        fill(&line),
        fill(&signoff)
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(seq: i64, order: i64, account: i64, price: i64, qty: i64, detail: &str) -> Event {
        Event {
            seq,
            game_id: 1,
            kind: EventKind::Fill,
            account_id: Some(account),
            instrument_id: Some(9),
            order_id: Some(order),
            trade_id: Some(seq),
            price: Some(price),
            qty: Some(qty),
            detail: detail.into(),
            created_at: 0,
        }
    }

    fn other(seq: i64, kind: EventKind, account: i64, detail: &str) -> Event {
        Event {
            kind,
            detail: detail.into(),
            price: None,
            qty: None,
            ..fill(seq, 77, account, 0, 0, "")
        }
    }

    /// The subject fits one 39-column line; so does every body line unless `wrap_ok` (the
    /// screen wraps paragraphs at word breaks), and no word is too long to wrap.
    fn fits(subject: &str, body: &str, wrap_ok: bool) {
        assert!(subject.chars().count() <= COLUMNS, "subject {subject:?}");
        for line in body.lines() {
            assert!(wrap_ok || line.chars().count() <= COLUMNS, "{line:?}");
            for word in line.split_whitespace() {
                assert!(word.chars().count() <= 20, "word {word:?}");
            }
        }
        crate::inbox::validate(subject, body).expect("valid mail");
    }

    #[test]
    fn twenty_partial_fills_make_one_letter_per_order() {
        let mut events = Vec::new();
        for k in 0..20 {
            events.push(fill(100 + 2 * k, 5, 1, 1_230 + k % 3, 15, "maker"));
            events.push(fill(101 + 2 * k, 6, 2, 1_230, 15, "taker"));
        }
        events.push(fill(200, 8, 3, 500, 10, "maker"));
        events.push(fill(201, 8, 3, 700, 30, "maker"));
        events.push(fill(202, 8, 3, 700, 0, "maker"));
        let groups = group_fills(&events, "maker");
        assert_eq!(groups.len(), 2, "the taker's fills make no letter");
        let g = &groups[0];
        assert_eq!((g.order_id, g.qty, g.fills, g.last_seq), (5, 300, 20, 138));
        assert_eq!((g.low, g.high), (1_230, 1_232));
        let g = &groups[1];
        assert_eq!((g.order_id, g.qty, g.fills, g.last_seq), (8, 40, 2, 201));
        assert_eq!(g.average(), 650);
    }

    #[test]
    fn a_fill_letter_says_what_traded_and_what_is_left() {
        let groups = group_fills(
            &[
                fill(1, 42, 1, 1_250, 100, "maker"),
                fill(2, 42, 1, 1_240, 200, "maker"),
            ],
            "maker",
        );
        let order = OrderNow {
            intent: Intent::Buy,
            symbol: "JUNK".into(),
            price: Some(1_250),
            qty: 1_000,
            filled: 300,
            status: OrderStatus::Open,
        };
        let (subject, body) = fill_text(&groups[0], &order);
        assert_eq!(subject, "Part filled: BUY 300 JUNK");
        assert!(body.contains("Bought 300 JUNK"), "{body}");
        assert!(body.contains("Average price: $12.43"), "{body}");
        assert!(body.contains("In 2 fills, $12.40 to $12.50"), "{body}");
        assert!(body.contains("Total: $3,730.00"), "{body}");
        assert!(body.contains("Still working: 700 at $12.50"), "{body}");
        fits(&subject, &body, false);
        let done = OrderNow {
            filled: 1_000,
            status: OrderStatus::Filled,
            intent: Intent::Short,
            symbol: "SNL".into(),
            ..order
        };
        let (subject, body) = fill_text(&groups[0], &done);
        assert_eq!(subject, "Filled: SHORT 300 SNL");
        assert!(body.contains("Nothing left working."), "{body}");
        fits(&subject, &body, false);
        // The longest subject there can be still fits.
        let big = FillGroup {
            order_id: 9_999_999,
            qty: 99_999,
            fills: 99,
            low: 999_999,
            high: 999_999,
            ..groups[0].clone()
        };
        let wide = OrderNow {
            symbol: "ABCDE".into(),
            price: Some(123_450),
            qty: 100_000,
            status: OrderStatus::Cancelled,
            intent: Intent::Cover,
            ..done
        };
        let (subject, body) = fill_text(&big, &wide);
        fits(&subject, &body, false);
    }

    #[test]
    fn margin_calls_and_liquidations_are_found_and_told() {
        let events = vec![
            other(1, EventKind::MarginCall, 4, "equity $1.00"),
            other(2, EventKind::Cancel, 5, "liquidation"),
            other(3, EventKind::Cancel, 5, "user"),
            fill(4, 70, 5, 1_000, 50, "liquidation"),
            fill(5, 71, 6, 1_000, 50, "maker"),
            fill(6, 70, 5, 990, 50, "liquidation"),
            other(7, EventKind::Liquidation, 5, ""),
        ];
        assert_eq!(margin_calls(&events), vec![(1, 4)]);
        let liq = group_liquidations(&events);
        assert_eq!(liq.len(), 1);
        assert_eq!(
            (liq[0].account_id, liq[0].cancelled, liq[0].last_seq),
            (5, 1, 7)
        );
        assert_eq!(liq[0].orders.len(), 1);
        assert_eq!(
            (liq[0].orders[0].qty, liq[0].orders[0].average()),
            (100, 995)
        );
        let closed = vec![Closed {
            intent: Intent::Sell,
            symbol: "JUNK".into(),
            fill: liq[0].orders[0].clone(),
        }];
        let (subject, body) = liquidation_text(&closed, 1);
        assert!(body.contains("Sold 100 JUNK\n  at $9.95 average"), "{body}");
        fits(&subject, &body, true);
        let (subject, body) = liquidation_text(&[], 0);
        fits(&subject, &body, true);

        let (subject, body) = margin_call_text(120_000, 250_000, Some("Tue 09:30 ET"));
        assert_eq!(subject, "MARGIN CALL");
        assert!(body.contains("Equity:      $1,200.00"), "{body}");
        assert!(body.contains("Short by:    $1,300.00"), "{body}");
        assert!(body.contains("(Tue 09:30 ET)"), "{body}");
        fits(&subject, &body, true);
    }

    #[test]
    fn tips_go_to_the_same_players_whatever_the_order() {
        let players = [11, 3, 7, 42, 5, 19, -4, 8];
        let a = choose_tippees(99, 12, &players, 3);
        let mut shuffled = players;
        shuffled.reverse();
        assert_eq!(a, choose_tippees(99, 12, &shuffled, 3));
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|p| players.contains(p) && *p > 0), "no NPCs");
        // Another news item (or game) picks independently; over many items everyone is tipped.
        let mut seen = std::collections::BTreeSet::new();
        for news in 0..50 {
            seen.extend(choose_tippees(99, news, &players, 3));
        }
        assert_eq!(seen.len(), 7);
        assert_eq!(choose_tippees(1, 1, &[5, 6], 3), vec![5, 6]);
        assert!(choose_tippees(1, 1, &[], 3).is_empty());
    }

    #[test]
    fn the_tip_table_parses_and_tips_hint_the_direction() {
        let t: Tips = toml::from_str(TIPS).expect("tips.toml parses");
        assert!(t.good.len() >= 4 && t.bad.len() >= 4 && !t.signoff.is_empty());
        let (subject, good) = tip_text(7, 3, 11, "JUNK", "Junk Bond Kings", true);
        assert_eq!(subject, "Psst... about JUNK");
        assert_eq!(
            (subject.clone(), good.clone()),
            tip_text(7, 3, 11, "JUNK", "Junk Bond Kings", true),
            "reproducible"
        );
        assert!(!good.contains('{'));
        assert!(t.good.iter().any(|g| good.starts_with(
            &g.replace("{symbol}", "JUNK")
                .replace("{name}", "Junk Bond Kings")
        )));
        let (_, bad) = tip_text(7, 3, 11, "JUNK", "Junk Bond Kings", false);
        assert!(t.bad.iter().any(|b| bad.starts_with(
            &b.replace("{symbol}", "JUNK")
                .replace("{name}", "Junk Bond Kings")
        )));
        for line in t.good.iter().chain(&t.bad).chain(&t.signoff) {
            let line = line.replace("{name}", "Savings & Loan of the Sunbelt");
            fits("s", &line, true);
        }
        fits(&subject, &good, true);
    }

    #[test]
    fn shares_are_grouped() {
        assert_eq!(shares(0), "0");
        assert_eq!(shares(1_000), "1,000");
        assert_eq!(shares(-1_234_567), "-1,234,567");
    }
}
