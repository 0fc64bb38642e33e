//! Random steps for the exchange's property tests: orders, cancels and replaces by three
//! players on two books, priced in ticks around 1,000 cents; and the books they trade on.

use nuggetnet::exchange::{Exchange, Intent, NewInstrument, OrderRequest, OrderType, TimeInForce};
use proptest::prelude::*;

#[derive(Debug, Clone)]
pub enum Step {
    Place {
        player: usize,
        symbol: usize,
        intent: Intent,
        market: bool,
        tif: TimeInForce,
        price_ticks: i64,
        qty: i64,
    },
    Cancel {
        player: usize,
        pick: usize,
    },
    Replace {
        player: usize,
        pick: usize,
        price_ticks: i64,
        qty: i64,
    },
}

pub fn step() -> impl Strategy<Value = Step> {
    let intent = prop_oneof![
        Just(Intent::Buy),
        Just(Intent::Sell),
        Just(Intent::Short),
        Just(Intent::Cover)
    ];
    let tif = prop_oneof![
        3 => Just(TimeInForce::Gtc),
        1 => Just(TimeInForce::Day),
        1 => Just(TimeInForce::Ioc),
        1 => Just(TimeInForce::Fok)
    ];
    prop_oneof![
        6 => (0..3usize, 0..2usize, intent, prop::bool::weighted(0.1), tif, -4..=4i64, 1..=30i64)
            .prop_map(|(player, symbol, intent, market, tif, price_ticks, qty)| Step::Place {
                player, symbol, intent, market, tif, price_ticks, qty
            }),
        1 => (0..3usize, 0..64usize).prop_map(|(player, pick)| Step::Cancel { player, pick }),
        1 => (0..3usize, 0..64usize, -4..=4i64, 0..=30i64)
            .prop_map(|(player, pick, price_ticks, qty)| Step::Replace { player, pick, price_ticks, qty }),
    ]
}

/// The price of `ticks` ticks of 5 cents from 1,000.
pub fn price_of(ticks: i64) -> i64 {
    1_000 + ticks * 5
}

/// Lists `symbols` in `game`, each with a 5-cent tick at 1,000 cents; returns their ids.
pub async fn list_books(ex: &Exchange, game: i64, symbols: &[&str]) -> Vec<i64> {
    let mut ids = Vec::new();
    for &s in symbols {
        let listed = ex
            .list_instrument(
                game,
                &NewInstrument {
                    symbol: s,
                    name: s,
                    profile: "",
                    tick: 5,
                    shares_issued: 100_000,
                    initial_price: 1_000,
                },
            )
            .await
            .unwrap();
        ids.push(listed.id);
    }
    ids
}

impl Step {
    /// The order a place step sends on the book `symbols[symbol]` (a market order that is not
    /// fill-or-kill is immediate-or-cancel); `None` for a cancel or replace.
    pub fn request(&self, symbols: &[&str]) -> Option<OrderRequest> {
        let Step::Place {
            symbol,
            intent,
            market,
            tif,
            price_ticks,
            qty,
            ..
        } = *self
        else {
            return None;
        };
        Some(OrderRequest {
            symbol: symbols[symbol].to_string(),
            intent,
            order_type: if market {
                OrderType::Market
            } else {
                OrderType::Limit {
                    price: price_of(price_ticks),
                }
            },
            tif: if market && tif != TimeInForce::Fok {
                TimeInForce::Ioc
            } else {
                tif
            },
            qty,
            stp: None,
        })
    }
}
