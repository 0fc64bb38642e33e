//! Property test: random streams of orders, cancels and replaces go through the real exchange
//! and through a small reference model written for obviousness rather than speed (a flat list
//! of orders scanned for the best price, then the earliest). Every answer must agree, the
//! audit must pass after every step, and at the end cash, positions and books must agree.

use std::collections::HashMap;

use nuggetnet::exchange::*;
use nuggetnet::store::testing::fresh_db;
use proptest::prelude::*;

#[path = "common/steps.rs"]
mod steps;
use steps::{list_books, price_of, step, Step};

const PLAYERS: [i64; 3] = [1, 2, 3];
const SYMBOLS: [&str; 2] = ["AAA", "BBB"];
const START_CASH: i64 = 1_000_000_000;
const START_SHARES: i64 = 1_000;
const FEE_BP: i64 = 10;

/// One order in the model.
#[derive(Debug, Clone)]
struct MOrder {
    id: i64,
    player: usize,
    symbol: usize,
    intent: Intent,
    tif: TimeInForce,
    price: i64,
    open: i64,
    filled: i64,
    priority: u64,
    is_open: bool,
}

#[derive(Debug, Default)]
struct Model {
    orders: Vec<MOrder>,
    cash: HashMap<usize, i64>,
    pos: HashMap<(usize, usize), i64>,
    next_priority: u64,
}

/// What the model expects from an order.
#[derive(Debug, PartialEq)]
enum Expect {
    Ack {
        status: OrderStatus,
        filled: i64,
        fills: Vec<(i64, i64, i64)>,
    },
    Closed,
    NotYours,
}

impl Model {
    fn free(&self, player: usize, symbol: usize, intent: Intent, except: Option<i64>) -> i64 {
        let pos = *self.pos.get(&(player, symbol)).unwrap_or(&0);
        let held = if intent == Intent::Sell {
            pos.max(0)
        } else {
            (-pos).max(0)
        };
        let committed: i64 = self
            .orders
            .iter()
            .filter(|o| o.is_open && o.player == player && o.symbol == symbol)
            .filter(|o| o.intent == intent && Some(o.id) != except)
            .map(|o| o.open)
            .sum();
        (held - committed).max(0)
    }

    /// Index of the best resting order an incoming order could meet, ignoring `skip`.
    fn best(&self, symbol: usize, side: Side, limit: Option<i64>, skip: &[i64]) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, o) in self.orders.iter().enumerate() {
            if !o.is_open || o.symbol != symbol || o.intent.side() == side || skip.contains(&o.id) {
                continue;
            }
            let crosses = match (side, limit) {
                (_, None) => true,
                (Side::Buy, Some(l)) => o.price <= l,
                (Side::Sell, Some(l)) => o.price >= l,
            };
            if !crosses {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let ob = &self.orders[b];
                    let better = match side {
                        Side::Buy => (o.price, o.priority) < (ob.price, ob.priority),
                        Side::Sell => (-o.price, o.priority) < (-ob.price, ob.priority),
                    };
                    Some(if better { i } else { b })
                }
            };
        }
        best
    }

    /// Matches an incoming order; returns (fills, remaining).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        id: i64,
        player: usize,
        symbol: usize,
        intent: Intent,
        limit: Option<i64>,
        qty: i64,
        fok: bool,
    ) -> (Vec<(i64, i64, i64)>, i64) {
        let side = intent.side();
        if fok {
            // Count what other players offer; own orders would be cancelled, not traded.
            let mut avail = 0;
            let mut seen = vec![id];
            while let Some(i) = self.best(symbol, side, limit, &seen) {
                seen.push(self.orders[i].id);
                if self.orders[i].player != player {
                    avail += self.orders[i].open;
                }
            }
            if avail < qty {
                return (vec![], qty);
            }
        }
        let mut left = qty;
        let mut fills = vec![];
        while left > 0 {
            let Some(i) = self.best(symbol, side, limit, &[id]) else {
                break;
            };
            if self.orders[i].player == player {
                self.orders[i].is_open = false;
                continue;
            }
            let q = left.min(self.orders[i].open);
            let price = self.orders[i].price;
            let maker = self.orders[i].player;
            self.orders[i].open -= q;
            self.orders[i].filled += q;
            if self.orders[i].open == 0 {
                self.orders[i].is_open = false;
            }
            left -= q;
            fills.push((self.orders[i].id, price, q));
            let value = price * q;
            let fee = value * FEE_BP / 10_000;
            let (buyer, seller) = if side == Side::Buy {
                (player, maker)
            } else {
                (maker, player)
            };
            *self.cash.entry(buyer).or_default() -= value;
            *self.cash.entry(seller).or_default() += value;
            *self.cash.entry(player).or_default() -= fee;
            *self.pos.entry((buyer, symbol)).or_default() += q;
            *self.pos.entry((seller, symbol)).or_default() -= q;
        }
        (fills, left)
    }
}

async fn run_case(ex: &Exchange, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let rules = GameRules {
        starting_cash: START_CASH,
        fee_bp: FEE_BP,
        collar_bp: 9_000,
        ..GameRules::default()
    };
    let game = ex.create_game("prop", &rules).await.unwrap().id;
    let mut model = Model::default();
    list_books(ex, game, &SYMBOLS).await;
    for (i, s) in SYMBOLS.iter().enumerate() {
        for (p, &player) in PLAYERS.iter().enumerate() {
            if i == 0 {
                ex.open_account(game, player).await.unwrap();
                model.cash.insert(p, START_CASH);
            }
            ex.grant(game, player, 0, Some((s, START_SHARES)))
                .await
                .unwrap();
            model.pos.insert((p, i), START_SHARES);
        }
    }
    for step in steps {
        let req = step.request(&SYMBOLS);
        match step {
            Step::Place {
                player,
                symbol,
                intent,
                market,
                price_ticks,
                qty,
                ..
            } => {
                let Some(req) = req else { continue };
                let tif = req.tif;
                let got = ex.place(game, PLAYERS[player], &req).await;
                let needs_shares = matches!(intent, Intent::Sell | Intent::Cover);
                if needs_shares && model.free(player, symbol, intent, None) < qty {
                    prop_assert!(
                        matches!(got, Err(ExchangeError::InsufficientShares { .. })),
                        "{req:?} gave {got:?}"
                    );
                    continue;
                }
                let ack = match got {
                    Ok(a) => a,
                    Err(e) => return Err(TestCaseError::fail(format!("{req:?}: {e:?}"))),
                };
                let limit = (!market).then(|| price_of(price_ticks));
                let (fills, left) = model.run(
                    ack.order_id,
                    player,
                    symbol,
                    intent,
                    limit,
                    qty,
                    tif == TimeInForce::Fok,
                );
                let rests =
                    left > 0 && !market && matches!(tif, TimeInForce::Gtc | TimeInForce::Day);
                let status = if rests {
                    OrderStatus::Open
                } else if left == 0 {
                    OrderStatus::Filled
                } else {
                    OrderStatus::Cancelled
                };
                model.next_priority += 1;
                model.orders.push(MOrder {
                    id: ack.order_id,
                    player,
                    symbol,
                    intent,
                    tif,
                    price: limit.unwrap_or(0),
                    open: if rests { left } else { 0 },
                    filled: qty - left,
                    priority: model.next_priority,
                    is_open: rests,
                });
                let got: Vec<_> = ack
                    .fills
                    .iter()
                    .map(|f| (f.maker_order_id, f.price, f.qty))
                    .collect();
                prop_assert_eq!(
                    Expect::Ack {
                        status: ack.status,
                        filled: ack.filled,
                        fills: got
                    },
                    Expect::Ack {
                        status,
                        filled: qty - left,
                        fills
                    }
                );
            }
            Step::Cancel { player, pick } => {
                if model.orders.is_empty() {
                    continue;
                }
                let o = model.orders[pick % model.orders.len()].clone();
                let got = ex.cancel(game, PLAYERS[player], o.id).await;
                let expect = if o.player != player {
                    Expect::NotYours
                } else if !o.is_open {
                    Expect::Closed
                } else {
                    Expect::Ack {
                        status: OrderStatus::Cancelled,
                        filled: o.filled,
                        fills: vec![],
                    }
                };
                let got = match got {
                    Ok(()) => Expect::Ack {
                        status: OrderStatus::Cancelled,
                        filled: o.filled,
                        fills: vec![],
                    },
                    Err(ExchangeError::NotYourOrder) => Expect::NotYours,
                    Err(ExchangeError::OrderClosed) => Expect::Closed,
                    Err(e) => return Err(TestCaseError::fail(format!("cancel: {e:?}"))),
                };
                prop_assert_eq!(&got, &expect);
                if got == expect && o.player == player && o.is_open {
                    let m = model.orders.iter_mut().find(|m| m.id == o.id).unwrap();
                    m.is_open = false;
                }
            }
            Step::Replace {
                player,
                pick,
                price_ticks,
                qty,
            } => {
                if model.orders.is_empty() {
                    continue;
                }
                let o = model.orders[pick % model.orders.len()].clone();
                if o.price == 0 {
                    continue;
                }
                let price = price_of(price_ticks);
                let got = ex
                    .replace(game, PLAYERS[player], o.id, Some(price), qty)
                    .await;
                if o.player != player {
                    prop_assert!(matches!(got, Err(ExchangeError::NotYourOrder)), "{got:?}");
                    continue;
                }
                if !o.is_open {
                    prop_assert!(matches!(got, Err(ExchangeError::OrderClosed)), "{got:?}");
                    continue;
                }
                let idx = model.orders.iter().position(|m| m.id == o.id).unwrap();
                if qty == 0 {
                    prop_assert_eq!(got.map(|a| a.status).ok(), Some(OrderStatus::Cancelled));
                    model.orders[idx].is_open = false;
                    continue;
                }
                if price == o.price && qty <= o.open {
                    prop_assert_eq!(
                        got.map(|a| (a.status, a.open_qty)).ok(),
                        Some((OrderStatus::Open, qty))
                    );
                    model.orders[idx].open = qty;
                    continue;
                }
                let needs_shares = matches!(o.intent, Intent::Sell | Intent::Cover);
                if needs_shares && model.free(player, o.symbol, o.intent, Some(o.id)) < qty {
                    prop_assert!(
                        matches!(got, Err(ExchangeError::InsufficientShares { .. })),
                        "{got:?}"
                    );
                    continue;
                }
                let ack = match got {
                    Ok(a) => a,
                    Err(e) => return Err(TestCaseError::fail(format!("replace: {e:?}"))),
                };
                model.orders[idx].is_open = false;
                let (fills, left) =
                    model.run(o.id, player, o.symbol, o.intent, Some(price), qty, false);
                model.next_priority += 1;
                let m = &mut model.orders[idx];
                m.price = price;
                m.filled += qty - left;
                m.open = left;
                m.is_open = left > 0;
                m.priority = model.next_priority;
                let status = if left > 0 {
                    OrderStatus::Open
                } else {
                    OrderStatus::Filled
                };
                let got: Vec<_> = ack
                    .fills
                    .iter()
                    .map(|f| (f.maker_order_id, f.price, f.qty))
                    .collect();
                prop_assert_eq!(
                    Expect::Ack {
                        status: ack.status,
                        filled: ack.filled,
                        fills: got
                    },
                    Expect::Ack {
                        status,
                        filled: m.filled,
                        fills
                    }
                );
                let _ = o.tif;
            }
        }
        let v = ex.audit(Some(game)).await.unwrap();
        prop_assert!(v.is_empty(), "audit: {v:#?}");
    }
    for (p, &player) in PLAYERS.iter().enumerate() {
        let pf = ex.portfolio(game, player).await.unwrap();
        prop_assert_eq!(pf.cash, model.cash[&p], "cash of player {}", player);
        for (i, s) in SYMBOLS.iter().enumerate() {
            let q = pf
                .positions
                .iter()
                .find(|x| &x.symbol == s)
                .map(|x| x.qty)
                .unwrap_or(0);
            prop_assert_eq!(q, model.pos[&(p, i)], "{} of player {}", s, player);
        }
        let mut open: Vec<i64> = ex
            .orders(game, player, true, 1_000)
            .await
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect();
        open.sort_unstable();
        let want: Vec<i64> = model
            .orders
            .iter()
            .filter(|o| o.is_open && o.player == p)
            .map(|o| o.id)
            .collect();
        prop_assert_eq!(open, want);
    }
    Ok(())
}

#[test]
fn random_order_streams_match_the_reference_model() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(fresh_db());
    let ex = Exchange::new(db.db.clone());
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(steps in prop::collection::vec(step(), 1..40))| {
        rt.block_on(run_case(&ex, steps))?;
    });
}
