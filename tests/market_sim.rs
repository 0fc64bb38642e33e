//! The market simulation in one process: the same seed and order script give the same
//! snapshots and trades; an accelerated day with NPCs and scripted strategies leaves the
//! books balanced with sane prices and spreads; the sysop's controls take effect and are
//! audit-logged. Runs on SQLite, and on PostgreSQL when `NUGGETNET_TEST_DATABASE_URL` is set.

use nuggetnet::exchange::{Exchange, Intent, OrderRequest, OrderType, TimeInForce};
use nuggetnet::market::{InstrumentConfig, Market, MarketConfig, Session};
use nuggetnet::store::market as sm;
use nuggetnet::store::testing::{fresh_db, TestDb};

fn instruments() -> Vec<InstrumentConfig> {
    [
        ("JUNK", 2_500, 350),
        ("LBO", 4_200, 250),
        ("BIGB", 12_000, 150),
    ]
    .into_iter()
    .map(|(s, p, v)| InstrumentConfig {
        symbol: s.into(),
        name: format!("{s} Corp"),
        profile: String::new(),
        price_cents: p,
        tick_cents: 1,
        drift_bp_day: 0,
        vol_bp_day: v,
    })
    .collect()
}

/// A Monday at `start`, one market `step_min` minutes per tick.
fn config(start: &str, step_min: u64) -> MarketConfig {
    MarketConfig {
        tick_ms: 1000,
        speed: step_min * 60,
        seed: 42,
        start: format!("2026-11-23 {start}"),
        retail_traders: 4,
        instruments: instruments(),
        ..MarketConfig::default()
    }
}

async fn setup(t: &TestDb, cfg: MarketConfig) -> (Market, i64) {
    let market = Market::new(Exchange::new(t.db.clone()), cfg).unwrap();
    let game = market
        .new_game("test", "tester", nuggetnet::store::now_ms())
        .await
        .unwrap();
    for p in 1..=4 {
        market.exchange().open_account(game, p).await.unwrap();
    }
    (market, game)
}

fn limit(symbol: &str, intent: Intent, price: i64, qty: i64) -> OrderRequest {
    OrderRequest {
        symbol: symbol.into(),
        intent,
        order_type: OrderType::Limit { price },
        tif: TimeInForce::Gtc,
        qty,
        stp: None,
    }
}

/// Runs `ticks` ticks with a fixed script of player orders; returns the per-tick bars, the
/// daily bars and every trade as (symbol, price, qty, taker side).
async fn scripted_run(t: &TestDb, ticks: i64) -> (Vec<sm::Bar>, Vec<sm::Bar>, Vec<String>) {
    let (market, game) = setup(t, config("09:30", 5)).await;
    let ex = market.exchange().clone();
    for n in 1..=ticks {
        market.step(game, "test").await.unwrap();
        if n % 3 == 0 {
            let last = ex.instrument(game, "JUNK").await.unwrap().last_price;
            let intent = if n % 2 == 0 {
                Intent::Buy
            } else {
                Intent::Short
            };
            let price = if intent == Intent::Buy {
                last + 10
            } else {
                last - 10
            };
            ex.place(game, 1, &limit("JUNK", intent, price, 20))
                .await
                .unwrap();
        }
    }
    let mut trades = Vec::new();
    for symbol in ["JUNK", "LBO", "BIGB"] {
        for tr in ex.tape(game, symbol, 100_000).await.unwrap() {
            trades.push(format!(
                "{symbol} {} {} {:?}",
                tr.price, tr.qty, tr.taker_side
            ));
        }
    }
    let bars = sm::tick_bars(&t.db, game).await.unwrap();
    let days = sm::day_bars(&t.db, game).await.unwrap();
    (bars, days, trades)
}

#[tokio::test]
async fn same_seed_and_orders_give_the_same_snapshots_and_trades() {
    let (a, b) = (fresh_db().await, fresh_db().await);
    let (bars_a, days_a, trades_a) = scripted_run(&a, 30).await;
    let (bars_b, days_b, trades_b) = scripted_run(&b, 30).await;
    assert_eq!(bars_a.len(), 30 * 3);
    assert!(!trades_a.is_empty(), "the NPCs and the script traded");
    assert_eq!(bars_a, bars_b);
    assert_eq!(days_a, days_b);
    assert_eq!(trades_a, trades_b);
    assert_eq!(days_a.len(), 3, "one daily bar per instrument");
    assert_eq!(
        days_a[0].volume,
        bars_a
            .iter()
            .filter(|b| b.instrument_id == days_a[0].instrument_id)
            .map(|b| b.volume)
            .sum::<i64>()
    );
}

/// An accelerated day (03:30 to 21:00 ET, ten market minutes a tick) with the NPCs and five
/// scripted strategies, each checking the session before it orders, as the door does.
#[tokio::test]
async fn an_accelerated_day_balances() {
    let t = fresh_db().await;
    let cfg = config("03:30", 10);
    let max_spread_bp = cfg.npc.max_spread_bp;
    let (market, game) = setup(&t, cfg).await;
    let ex = market.exchange().clone();
    let clock = market.clock(game).await.unwrap();
    let (mut samples, mut within, mut refused, mut sessions) = (0, 0, 0, Vec::new());
    let mut prev_close = 0;
    for n in 1..=105 {
        market.step(game, "test").await.unwrap();
        let at = clock.tick_market_at(n);
        let session = market.calendar().session_at(at);
        if sessions.last() != Some(&session) {
            sessions.push(session);
        }
        let junk = ex.instrument(game, "JUNK").await.unwrap();
        let last = junk.last_price;
        let mut orders: Vec<(i64, OrderRequest)> = Vec::new();
        // 1: buy and hold. 2: momentum. 3: a small market maker. 4: a wash-trading pair.
        if n == 12 {
            orders.push((1, limit("JUNK", Intent::Buy, last + 20, 100)));
        }
        if n % 4 == 0 && prev_close > 0 {
            let intent = if last > prev_close {
                Intent::Buy
            } else {
                Intent::Short
            };
            let price = if intent == Intent::Buy {
                last + 5
            } else {
                last - 5
            };
            orders.push((2, limit("JUNK", intent, price, 10)));
        }
        if n % 6 == 0 {
            orders.push((
                3,
                limit("LBO", Intent::Buy, last.max(100) / 100 * 99 / 100 * 100, 5),
            ));
            orders.push((3, limit("BIGB", Intent::Short, 12_500, 5)));
        }
        if n % 10 == 0 {
            orders.push((4, limit("JUNK", Intent::Short, last, 10)));
            orders.push((1, limit("JUNK", Intent::Buy, last, 10)));
        }
        prev_close = last;
        for (player, req) in orders {
            let check = market
                .check_session(game, clock.real_at(at), &req.order_type)
                .await
                .unwrap();
            match check {
                Ok(_) => match ex.place(game, player, &req).await {
                    Ok(_) | Err(nuggetnet::exchange::ExchangeError::InsufficientFunds { .. }) => {}
                    Err(nuggetnet::exchange::ExchangeError::OutsideCollar { .. }) => {}
                    Err(e) => panic!("order refused: {e}"),
                },
                Err(_) => refused += 1,
            }
        }
        if session == Session::Regular {
            for symbol in ["JUNK", "LBO", "BIGB"] {
                let book = ex.book(game, symbol, 1).await.unwrap();
                if let (Some(bid), Some(ask)) = (book.bids.first(), book.asks.first()) {
                    samples += 1;
                    let mid = (bid.price + ask.price) / 2;
                    if (ask.price - bid.price) * 10_000 <= max_spread_bp * mid + 10_000 {
                        within += 1;
                    }
                }
            }
        }
    }
    assert_eq!(
        sessions,
        vec![
            Session::Closed,
            Session::PreMarket,
            Session::Regular,
            Session::AfterHours,
            Session::Closed
        ]
    );
    assert!(
        refused > 0,
        "orders at the closed ends of the day were refused"
    );
    assert!(samples > 50, "{samples} spread samples");
    assert!(
        within * 10 >= samples * 9,
        "{within} of {samples} spreads within bounds"
    );
    let violations = ex.audit(Some(game)).await.unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    let bars = sm::tick_bars(&t.db, game).await.unwrap();
    assert!(
        bars.iter().all(|b| b.low > 0 && b.fair > 0),
        "no price went to zero or below"
    );
    let volume: i64 = bars.iter().map(|b| b.volume).sum();
    assert!(volume > 0);
    // Nothing from nothing: the players' combined cash and holdings at the marks are worth
    // what they were given, give or take what they paid to or took from the NPCs.
    let start = 4 * nuggetnet::exchange::GameRules::default().starting_cash;
    let mut worth = 0;
    for p in 1..=4 {
        worth += ex.portfolio(game, p).await.unwrap().net_worth;
    }
    assert!(
        (worth - start).abs() < start / 5,
        "players' worth {worth} from {start}"
    );
}

#[tokio::test]
async fn sysop_controls_take_effect_and_are_audited() {
    let t = fresh_db().await;
    let (market, game) = setup(&t, config("10:00", 1)).await;
    market.step(game, "test").await.unwrap();
    let before = sm::tick_bars(&t.db, game).await.unwrap();
    let fair_before = before
        .iter()
        .find(|b| b.instrument_id == 1)
        .map(|b| b.fair)
        .unwrap();
    let mut wire = market.follow_news(game, 0, std::time::Duration::from_millis(50));
    market
        .inject_news(game, "JUNK", "Junk Bond Kings indicted", -2_000, "sysop")
        .await
        .unwrap();
    assert!(market.set_volatility(game, 150, "sysop").await.unwrap());
    assert!(market.set_liquidity(game, 50, "sysop").await.unwrap());
    market.step(game, "test").await.unwrap();
    let flash = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let item = wire.recv().await.expect("the follower runs");
            if item.source == "sysop" {
                return item;
            }
        }
    })
    .await
    .expect("the headline reached a follower");
    assert_eq!(flash.headline, "Junk Bond Kings indicted");
    let news = market.news_after_tick(game, 0, 10).await.unwrap();
    assert!(
        news.iter()
            .any(|n| n.headline == "Junk Bond Kings indicted" && n.jump_bp == -2_000),
        "{news:?}"
    );
    let after = sm::tick_bars(&t.db, game).await.unwrap();
    let fair_after = after
        .iter()
        .rfind(|b| b.instrument_id == 1)
        .map(|b| b.fair)
        .unwrap();
    assert!(
        fair_after < fair_before * 9 / 10,
        "{fair_before} -> {fair_after}"
    );

    assert!(market.pause(game, "sysop").await.unwrap());
    let refused = market
        .check_session(
            game,
            nuggetnet::store::now_ms(),
            &OrderType::Limit { price: 100 },
        )
        .await
        .unwrap();
    assert!(refused.is_err());
    assert!(market
        .world_clock(game, nuggetnet::store::now_ms())
        .await
        .unwrap()
        .ends_with("(PAUSED)"));
    assert!(market.resume(game, "sysop").await.unwrap());
    assert!(market.stop(game, "sysop").await.unwrap());
    let outcome = market
        .tick_once(game, "test", nuggetnet::store::now_ms())
        .await
        .unwrap();
    assert_eq!(outcome, nuggetnet::market::TickOutcome::Stopped);
    let log: Vec<String> = market
        .audit_log(20)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    for action in [
        "new-game",
        "inject-news",
        "volatility",
        "liquidity",
        "pause",
        "resume",
        "stop",
    ] {
        assert!(
            log.iter().any(|a| a == action),
            "{action} missing from {log:?}"
        );
    }
    assert!(ex_audit_clean(&market, game).await);
}

async fn ex_audit_clean(market: &Market, game: i64) -> bool {
    market
        .exchange()
        .audit(Some(game))
        .await
        .unwrap()
        .is_empty()
}

/// News is followed in the order it is published, not the order it was scheduled: an
/// earnings report scheduled first (a lower id) but published after a later-scheduled item
/// still reaches a follower that has seen the other one.
#[tokio::test]
async fn followers_see_news_in_publication_order() {
    let t = fresh_db().await;
    let mut cfg = config("10:00", 1);
    cfg.earnings_every_days = 0;
    let (market, game) = setup(&t, cfg).await;
    let clock = market.clock(game).await.unwrap();
    let early = sm::schedule_news(
        &t.db,
        game,
        Some(1),
        "Scheduled first, published second",
        Some(100),
        "earnings",
        clock.tick_market_at(2),
    )
    .await
    .unwrap();
    let late = sm::schedule_news(
        &t.db,
        game,
        Some(1),
        "Scheduled second, published first",
        Some(100),
        "sysop",
        clock.tick_market_at(1),
    )
    .await
    .unwrap();
    assert!(early < late);
    market.step(game, "test").await.unwrap();
    let first = market.news_after_tick(game, 0, 10).await.unwrap();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].headline, "Scheduled second, published first");
    market.step(game, "test").await.unwrap();
    let next = market
        .news_after_tick(game, first[0].tick, 10)
        .await
        .unwrap();
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(next[0].headline, "Scheduled first, published second");
    let wire = market.latest_news(game, 5).await.unwrap();
    assert_eq!(wire[0].id, early, "newest first: {wire:?}");
}
