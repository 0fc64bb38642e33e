//! The market's mail desk: a human's resting order hit by another account's order gives that
//! player exactly one fill letter (none for the aggressor, none for NPCs), and running the desk
//! again (or in a new process) sends nothing twice; a margin call and a forced liquidation are
//! mailed once each; scheduled news within the tip lead sends tips to the players drawn from
//! the seed, once. Runs on SQLite, and on PostgreSQL when `NUGGETNET_TEST_DATABASE_URL` is set.

use nuggetnet::exchange::{Exchange, Intent, OrderRequest, OrderType, TimeInForce};
use nuggetnet::inbox::{self, MailKind, Message};
use nuggetnet::market::{mail, InstrumentConfig, MailReport, Market, MarketConfig, Notifier};
use nuggetnet::store::testing::{fresh_db, TestDb};
use nuggetnet::store::{market as sm, notify as sn, now_ms, players};

fn config() -> MarketConfig {
    MarketConfig {
        tick_ms: 1000,
        speed: 1,
        seed: 42,
        // A Monday, during the regular session.
        start: "2026-11-23 10:00".into(),
        retail_traders: 2,
        tip_players: 2,
        tip_lead_minutes: 30,
        instruments: [("JUNK", 2_500), ("LBO", 4_200)]
            .into_iter()
            .map(|(s, p)| InstrumentConfig {
                symbol: s.into(),
                name: format!("{s} Corp"),
                profile: String::new(),
                price_cents: p,
                tick_cents: 1,
                drift_bp_day: 0,
                vol_bp_day: 200,
            })
            .collect(),
        ..MarketConfig::default()
    }
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

struct World {
    t: TestDb,
    market: Market,
    game: i64,
    /// Human players: (id, handle).
    humans: Vec<(i64, &'static str)>,
}

impl World {
    async fn new() -> World {
        let t = fresh_db().await;
        let market = Market::new(Exchange::new(t.db.clone()), config()).unwrap();
        let game = market.new_game("mail", "tester", now_ms()).await.unwrap();
        let mut humans = Vec::new();
        for handle in ["Gordon", "Bud", "Ivan", "Carl"] {
            let p = players::find_or_create(&t.db, "local", handle)
                .await
                .unwrap();
            market.exchange().open_account(game, p.id).await.unwrap();
            humans.push((p.id, handle));
        }
        World {
            t,
            market,
            game,
            humans,
        }
    }

    fn id(&self, handle: &str) -> i64 {
        self.humans.iter().find(|h| h.1 == handle).unwrap().0
    }

    fn ex(&self) -> &Exchange {
        self.market.exchange()
    }

    async fn mail(&self, handle: &str, kind: MailKind) -> Vec<Message> {
        inbox::list(&self.t.db, self.id(handle))
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.kind == kind)
            .collect()
    }

    /// An NPC maker of `symbol`: (player id, account id, instrument id).
    async fn maker(&self, symbol: &str) -> (i64, i64, i64) {
        let inst = self.ex().instrument(self.game, symbol).await.unwrap();
        let npc = sm::npcs(&self.t.db, self.game)
            .await
            .unwrap()
            .into_iter()
            .find(|n| n.instrument_id == Some(inst.id))
            .unwrap();
        (npc.player_id, npc.account_id, inst.id)
    }

    async fn run(&self, notifier: &mut Notifier) -> MailReport {
        notifier.run_once(now_ms()).await.unwrap()
    }
}

#[tokio::test]
async fn a_resting_order_that_fills_is_mailed_once_to_its_owner_only() {
    let w = World::new().await;
    let ex = w.ex();
    let (gordon, bud) = (w.id("Gordon"), w.id("Bud"));
    ex.grant(w.game, bud, 0, Some(("JUNK", 500))).await.unwrap();

    // Gordon rests a bid; Bud sells into it three times: one letter for the three fills.
    let bid = ex
        .place(w.game, gordon, &limit("JUNK", Intent::Buy, 2_400, 100))
        .await
        .unwrap();
    for (price, qty) in [(2_400, 30), (2_400, 30), (2_390, 40)] {
        let ack = ex
            .place(w.game, bud, &limit("JUNK", Intent::Sell, price, qty))
            .await
            .unwrap();
        assert_eq!(ack.filled, qty);
    }
    // Gordon takes an NPC maker's offer: no letter for him (he saw it) nor for the NPC.
    let (_npc, npc_account, junk) = w.maker("JUNK").await;
    ex.place_for_account(
        w.game,
        npc_account,
        junk,
        &limit("JUNK", Intent::Sell, 2_450, 20),
    )
    .await
    .unwrap();
    let ack = ex
        .place(w.game, gordon, &limit("JUNK", Intent::Buy, 2_450, 20))
        .await
        .unwrap();
    assert_eq!(ack.filled, 20);

    let mut desk = Notifier::new(w.market.clone(), w.game);
    let report = w.run(&mut desk).await;
    assert_eq!(report.fills, 1, "{report:?}");
    let fills = w.mail("Gordon", MailKind::Fill).await;
    assert_eq!(fills.len(), 1);
    assert_eq!(fills[0].subject, "Filled: BUY 100 JUNK");
    assert!(
        fills[0]
            .body
            .contains(&format!("Your order #{}", bid.order_id)),
        "{}",
        fills[0].body
    );
    assert!(
        fills[0].body.contains("Average price: $24.00"),
        "{}",
        fills[0].body
    );
    assert!(
        fills[0].body.contains("Nothing left working."),
        "{}",
        fills[0].body
    );
    assert!(
        w.mail("Bud", MailKind::Fill).await.is_empty(),
        "the aggressor"
    );

    // Again, and in a "new process": nothing more.
    assert_eq!(w.run(&mut desk).await.fills, 0);
    let mut restarted = Notifier::new(w.market.clone(), w.game);
    assert_eq!(w.run(&mut restarted).await, MailReport::default());
    assert_eq!(w.mail("Gordon", MailKind::Fill).await.len(), 1);

    // A partial fill later is a letter of its own that says what is still working.
    ex.place(w.game, gordon, &limit("JUNK", Intent::Buy, 2_300, 50))
        .await
        .unwrap();
    ex.place(w.game, bud, &limit("JUNK", Intent::Sell, 2_300, 20))
        .await
        .unwrap();
    assert_eq!(w.run(&mut restarted).await.fills, 1);
    let fills = w.mail("Gordon", MailKind::Fill).await;
    assert_eq!(fills.len(), 2);
    assert_eq!(fills[0].subject, "Part filled: BUY 20 JUNK");
    assert!(
        fills[0].body.contains("Still working: 30 at $23.00"),
        "{}",
        fills[0].body
    );
}

#[tokio::test]
async fn a_batch_planned_by_a_process_that_died_is_mailed_once() {
    let w = World::new().await;
    let ex = w.ex();
    let (gordon, bud) = (w.id("Gordon"), w.id("Bud"));
    ex.grant(w.game, bud, 0, Some(("JUNK", 500))).await.unwrap();
    // The cursor starts before the game's first event.
    let mut desk = Notifier::new(w.market.clone(), w.game);
    w.run(&mut desk).await;
    let before = sn::cursor(&w.t.db, w.game).await.unwrap().unwrap();

    ex.place(w.game, gordon, &limit("JUNK", Intent::Buy, 2_400, 100))
        .await
        .unwrap();
    ex.place(w.game, bud, &limit("JUNK", Intent::Sell, 2_400, 60))
        .await
        .unwrap();
    // A process planned the batch up to here, then died before writing anything.
    let end = ex.last_event_seq().await.unwrap();
    assert!(
        sn::plan_batch(&w.t.db, w.game, before.done_seq, end, now_ms())
            .await
            .unwrap()
    );
    // More happens meanwhile; it belongs to the next batch.
    ex.place(w.game, bud, &limit("JUNK", Intent::Sell, 2_400, 40))
        .await
        .unwrap();

    let mut heir = Notifier::new(w.market.clone(), w.game);
    let report = w.run(&mut heir).await;
    assert_eq!(report.fills, 2, "the planned batch, then the next one");
    let subjects: Vec<String> = w
        .mail("Gordon", MailKind::Fill)
        .await
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert_eq!(subjects.len(), 2);
    assert!(
        subjects.contains(&"Part filled: BUY 60 JUNK".to_string())
            || subjects.contains(&"Filled: BUY 60 JUNK".to_string()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"Filled: BUY 40 JUNK".to_string()),
        "{subjects:?}"
    );
    assert_eq!(w.run(&mut heir).await, MailReport::default());
    let after = sn::cursor(&w.t.db, w.game).await.unwrap().unwrap();
    assert!(after.pending().is_none() && after.done_seq > end);
}

#[tokio::test]
async fn margin_calls_and_liquidations_are_mailed_once() {
    let w = World::new().await;
    let ex = w.ex();
    let (ivan, bud) = (w.id("Ivan"), w.id("Bud"));
    let (_npc, npc_account, junk) = w.maker("JUNK").await;
    let place_npc = |intent, price, qty| {
        let req = limit("JUNK", intent, price, qty);
        async move {
            ex.place_for_account(w.game, npc_account, junk, &req)
                .await
                .unwrap()
        }
    };
    // Ivan buys $19,500 of JUNK on $10,000 of equity.
    place_npc(Intent::Sell, 2_500, 780).await;
    let ack = ex
        .place(w.game, ivan, &limit("JUNK", Intent::Buy, 2_500, 780))
        .await
        .unwrap();
    assert_eq!(ack.filled, 780);
    // JUNK trades at $15: Ivan's equity is $2,200 against $2,925 of maintenance.
    place_npc(Intent::Buy, 1_500, 10).await;
    ex.grant(w.game, bud, 0, Some(("JUNK", 10))).await.unwrap();
    ex.place(w.game, bud, &limit("JUNK", Intent::Sell, 1_500, 10))
        .await
        .unwrap();

    let report = ex.run_margin_check(w.game).await.unwrap();
    assert_eq!(report.called.len(), 1);
    let mut desk = Notifier::new(w.market.clone(), w.game);
    let mailed = w.run(&mut desk).await;
    assert_eq!(mailed.margin_calls, 1, "{mailed:?}");
    let calls = w.mail("Ivan", MailKind::MarginCall).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].subject, "MARGIN CALL");
    assert!(
        calls[0].body.contains("Equity:      $2,200.00"),
        "{}",
        calls[0].body
    );
    assert!(
        calls[0].body.contains("Maintenance: $2,925.00"),
        "{}",
        calls[0].body
    );
    assert!(
        calls[0].body.contains("(Tue 09:30 ET)"),
        "{}",
        calls[0].body
    );
    assert_eq!(w.run(&mut desk).await, MailReport::default());

    // Still below at the next check: the house sells into the NPC's bid.
    place_npc(Intent::Buy, 1_400, 1_000).await;
    let report = ex.run_margin_check(w.game).await.unwrap();
    assert_eq!(report.liquidated.len(), 1);
    let mailed = w.run(&mut desk).await;
    assert_eq!(mailed.liquidations, 1, "{mailed:?}");
    let calls = w.mail("Ivan", MailKind::MarginCall).await;
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].subject, "Forced liquidation");
    assert!(
        calls[0].body.contains("Sold 780 JUNK\n  at $14.00 average"),
        "{}",
        calls[0].body
    );
    assert_eq!(
        Notifier::new(w.market.clone(), w.game)
            .run_once(now_ms())
            .await
            .unwrap(),
        MailReport::default()
    );
    // Nobody else heard about it.
    for h in ["Gordon", "Bud", "Carl"] {
        assert!(w.mail(h, MailKind::MarginCall).await.is_empty(), "{h}");
    }
}

#[tokio::test]
async fn scheduled_news_within_the_lead_is_tipped_once_to_the_drawn_players() {
    let w = World::new().await;
    let market = &w.market;
    // Sysop news for the next tick: well within the lead. Earnings (days away) and an item two
    // market hours away are not.
    let soon = market
        .inject_news(w.game, "JUNK", "", -700, "sysop")
        .await
        .unwrap();
    let clock = market.clock(w.game).await.unwrap();
    let lbo = w.ex().instrument(w.game, "LBO").await.unwrap();
    let later = sm::schedule_news(
        &w.t.db,
        w.game,
        Some(lbo.id),
        "",
        Some(300),
        "earnings",
        clock.market_at(now_ms()) + 2 * 3_600_000,
    )
    .await
    .unwrap();

    let mut desk = Notifier::new(market.clone(), w.game);
    let report = w.run(&mut desk).await;
    assert_eq!(report.tips, 2, "{report:?}");
    let humans: Vec<i64> = w.humans.iter().map(|h| h.0).collect();
    let chosen = mail::choose_tippees(42, soon, &humans, 2);
    for (id, handle) in &w.humans {
        let tips = w.mail(handle, MailKind::Tip).await;
        if chosen.contains(id) {
            assert_eq!(tips.len(), 1, "{handle}");
            assert_eq!(tips[0].subject, "Psst... about JUNK");
            assert_eq!(tips[0].from, "A Friend");
            let bad = mail::tips().bad.iter().any(|b| {
                tips[0]
                    .body
                    .starts_with(&b.replace("{symbol}", "JUNK").replace("{name}", "JUNK Corp"))
            });
            assert!(bad, "a hint that it goes down: {}", tips[0].body);
        } else {
            assert!(tips.is_empty(), "{handle}");
        }
    }
    assert_eq!(w.run(&mut desk).await.tips, 0);
    assert_eq!(
        Notifier::new(market.clone(), w.game)
            .run_once(now_ms())
            .await
            .unwrap()
            .tips,
        0
    );
    assert_eq!(sn::tipped_news(&w.t.db, w.game).await.unwrap(), vec![soon]);
    assert!(later > soon);
}

#[tokio::test]
async fn the_mail_desk_can_be_turned_off() {
    let t = fresh_db().await;
    let cfg = MarketConfig {
        mail: false,
        ..config()
    };
    let market = Market::new(Exchange::new(t.db.clone()), cfg).unwrap();
    let game = market.new_game("quiet", "tester", now_ms()).await.unwrap();
    let p = players::find_or_create(&t.db, "local", "Gordon")
        .await
        .unwrap();
    market.exchange().open_account(game, p.id).await.unwrap();
    market
        .inject_news(game, "JUNK", "", 500, "sysop")
        .await
        .unwrap();
    let report = Notifier::new(market.clone(), game)
        .run_once(now_ms())
        .await
        .unwrap();
    assert_eq!(report, MailReport::default());
    assert!(inbox::list(&t.db, p.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_simulator_loop_mails_while_it_holds_the_lease() {
    let t = fresh_db().await;
    let cfg = MarketConfig {
        tick_ms: 100,
        ..config()
    };
    let market = Market::new(Exchange::new(t.db.clone()), cfg).unwrap();
    let game = market.new_game("live", "tester", now_ms()).await.unwrap();
    let p = players::find_or_create(&t.db, "local", "Gordon")
        .await
        .unwrap();
    market.exchange().open_account(game, p.id).await.unwrap();
    // A bid above fair value rests on the empty book; the NPC makers' first offers hit it.
    market
        .exchange()
        .place(game, p.id, &limit("JUNK", Intent::Buy, 2_600, 5))
        .await
        .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let runner = {
        let (market, stop) = (market.clone(), stop.clone());
        tokio::spawn(async move { market.run(game, "loop", stop).await })
    };
    // Once the simulator is running, news is scheduled a few ticks ahead.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sm::sim(&t.db, game).await.unwrap().unwrap().last_tick < 1 {
        assert!(std::time::Instant::now() < deadline, "the simulator ticks");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let lbo = market.exchange().instrument(game, "LBO").await.unwrap();
    let at = market.clock(game).await.unwrap().market_at(now_ms()) + 500;
    sm::schedule_news(&t.db, game, Some(lbo.id), "", Some(400), "earnings", at)
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while std::time::Instant::now() < deadline {
        kinds = inbox::list(&t.db, p.id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.kind)
            .collect();
        if kinds.contains(&MailKind::Fill) && kinds.contains(&MailKind::Tip) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.cancel();
    runner.await.unwrap().unwrap();
    assert!(kinds.contains(&MailKind::Fill), "{kinds:?}");
    assert!(
        kinds.contains(&MailKind::Tip),
        "the only player is tipped: {kinds:?}"
    );
}
