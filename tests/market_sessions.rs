//! Market hours on an accelerated clock (one market hour per tick): the clock crosses the
//! pre-market, the open, after-hours and the close; `check_session` accepts and refuses
//! orders by session with the next opening time; day orders expire at the close; NPCs quote
//! only while the market is open.

use nuggetnet::exchange::{Exchange, Intent, OrderRequest, OrderStatus, OrderType, TimeInForce};
use nuggetnet::market::clock::{days_from_civil, market_ms_of};
use nuggetnet::market::{Market, MarketConfig, Session};
use nuggetnet::store::testing::fresh_db;

#[tokio::test]
async fn the_accelerated_clock_crosses_every_session() {
    let t = fresh_db().await;
    let mut cfg = MarketConfig {
        tick_ms: 1000,
        speed: 3600,
        seed: 9,
        start: "2026-11-23 03:00".into(),
        retail_traders: 2,
        ..MarketConfig::default()
    };
    cfg.instruments.truncate(2);
    let market = Market::new(Exchange::new(t.db.clone()), cfg).unwrap();
    let now = nuggetnet::store::now_ms();
    let game = market.new_game("hours", "tester", now).await.unwrap();
    let ex = market.exchange().clone();
    ex.open_account(game, 1).await.unwrap();
    let clock = market.clock(game).await.unwrap();
    let cal = market.calendar().clone();
    let monday = days_from_civil(2026, 11, 23);
    let hour = |h: i64| clock.origin_real + (h * 1000) - 3000;
    let limit = OrderType::Limit { price: 2_500 };

    // 03:30 closed; 04:30 pre-market; 10:30 open; 16:30 after hours; 20:30 closed.
    let at = |h| hour(h) + 500;
    let closed = market
        .check_session(game, at(3), &limit)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(closed.session, Session::Closed);
    assert_eq!(closed.next_open, Some(market_ms_of(&cal, monday, 240)));
    assert!(market
        .check_session(game, at(4), &limit)
        .await
        .unwrap()
        .is_ok());
    let pre = market
        .check_session(game, at(4), &OrderType::Market)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(pre.next_open, Some(market_ms_of(&cal, monday, 570)));
    assert_eq!(
        market
            .check_session(game, at(10), &OrderType::Market)
            .await
            .unwrap(),
        Ok(Session::Regular)
    );
    assert_eq!(
        market.world_clock(game, at(10)).await.unwrap(),
        "OPEN - closes 16:00 ET"
    );
    assert_eq!(
        market.check_session(game, at(16), &limit).await.unwrap(),
        Ok(Session::AfterHours)
    );
    let after = market
        .check_session(game, at(16), &OrderType::Market)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(after.next_open, Some(market_ms_of(&cal, monday + 1, 570)));
    let late = market
        .check_session(game, at(20), &limit)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(late.next_open, Some(market_ms_of(&cal, monday + 1, 240)));
    assert_eq!(
        market.world_clock(game, at(20)).await.unwrap(),
        "CLOSED - opens Tue 04:00 ET"
    );

    // The first earnings reports are scheduled with their surprise already drawn, for tips.
    let soon = market
        .upcoming_news(game, now, 10 * 86_400_000)
        .await
        .unwrap();
    assert!(
        !soon.is_empty() && soon.iter().all(|n| n.source == "earnings"),
        "{soon:?}"
    );
    assert!(soon
        .windows(2)
        .all(|w| w[0].published_at <= w[1].published_at));

    // Tick through the day; a day order placed in the regular session expires at the close.
    let mut day_order = None;
    let mut quoted = Vec::new();
    for n in 1..=18 {
        market.step(game, "test").await.unwrap();
        let session = cal.session_at(clock.tick_market_at(n));
        let book = ex.book(game, "JUNK", 1).await.unwrap();
        quoted.push((session, !book.bids.is_empty() && !book.asks.is_empty()));
        if session == Session::Regular && day_order.is_none() {
            let low = ex.instrument(game, "JUNK").await.unwrap().last_price * 8 / 10;
            let req = OrderRequest {
                symbol: "JUNK".into(),
                intent: Intent::Buy,
                order_type: OrderType::Limit { price: low },
                tif: TimeInForce::Day,
                qty: 1,
                stp: None,
            };
            day_order = Some(ex.place(game, 1, &req).await.unwrap().order_id);
        }
    }
    for (session, both_sides) in &quoted {
        assert_eq!(*both_sides, *session != Session::Closed, "{quoted:?}");
    }
    let order = ex.order(day_order.unwrap()).await.unwrap().unwrap();
    assert_eq!(
        order.status,
        OrderStatus::Cancelled,
        "the day order expired at the close"
    );
    assert!(ex.audit(Some(game)).await.unwrap().is_empty());
}

/// A game keeps the hours it was created with: a door or another BBS reading it with its own
/// (default) `[market]` settings sees the same session and world clock as the simulator.
#[tokio::test]
async fn every_process_reads_the_games_own_calendar() {
    let t = fresh_db().await;
    let mut cfg = MarketConfig {
        start: "2026-11-22 12:00".into(),
        utc_offset_minutes: 60,
        zone: "CET".into(),
        trading_days: vec!["sun".into()],
        pre_market: String::new(),
        regular: "11:00-13:00".into(),
        after_hours: String::new(),
        ..MarketConfig::default()
    };
    cfg.instruments.truncate(1);
    let sim = Market::new(Exchange::new(t.db.clone()), cfg).unwrap();
    let now = nuggetnet::store::now_ms();
    let game = sim.new_game("sunday league", "tester", now).await.unwrap();
    // A process with the default calendar (weekdays, New York) reading the same game.
    let door = Market::new(Exchange::new(t.db.clone()), MarketConfig::default()).unwrap();
    let (word, clock) = door.session_line(game, now).await.unwrap();
    assert_eq!(word, "OPEN", "{clock}");
    assert_eq!(clock, "OPEN - closes 13:00 CET");
    assert_eq!(
        door.check_session(game, now, &OrderType::Market)
            .await
            .unwrap(),
        Ok(Session::Regular)
    );
    assert_eq!(
        door.world_clock(game, now).await.unwrap(),
        sim.world_clock(game, now).await.unwrap()
    );
}
