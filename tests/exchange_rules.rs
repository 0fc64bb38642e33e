//! The exchange's rules on a real database (SQLite by default, PostgreSQL when
//! `NUGGETNET_TEST_DATABASE_URL` points at a server): matching, order types, bad input,
//! replace, self-trade prevention, shorts, fees, dividends, margin, events and the audit.

use futures::StreamExt;
use nuggetnet::exchange::*;
use nuggetnet::store::testing::{fresh_db, TestDb};

/// Cents in a dollar.
const DOLLAR: i64 = 100;
const ALICE: i64 = 1;
const BOB: i64 = 2;
const CAROL: i64 = 3;

/// Whether an error is the one a case expects.
type IsExpected = fn(&ExchangeError) -> bool;

struct Fixture {
    ex: Exchange,
    game: i64,
    _db: TestDb,
}

async fn setup(rules: GameRules) -> Fixture {
    let db = fresh_db().await;
    let ex = Exchange::new(db.db.clone()).with_listen_url(&db.url);
    let game = ex.create_game("season 1", &rules).await.unwrap();
    for (symbol, name) in [("NUGT", "Nugget Mining"), ("BLUE", "Blue Horseshoe")] {
        ex.list_instrument(
            game.id,
            &NewInstrument {
                symbol,
                name,
                profile: "Digs holes, fills them, calls it growth.",
                tick: 5,
                shares_issued: 1_000_000,
                initial_price: 1_000,
            },
        )
        .await
        .unwrap();
    }
    for p in [ALICE, BOB, CAROL] {
        ex.open_account(game.id, p).await.unwrap();
        ex.grant(game.id, p, 0, Some(("NUGT", 1_000)))
            .await
            .unwrap();
    }
    Fixture {
        ex,
        game: game.id,
        _db: db,
    }
}

fn limit(symbol: &str, intent: Intent, qty: i64, price: i64) -> OrderRequest {
    OrderRequest {
        symbol: symbol.to_string(),
        intent,
        order_type: OrderType::Limit { price },
        tif: TimeInForce::Gtc,
        qty,
        stp: None,
    }
}

fn with_tif(mut r: OrderRequest, tif: TimeInForce) -> OrderRequest {
    r.tif = tif;
    r
}

fn market(symbol: &str, intent: Intent, qty: i64) -> OrderRequest {
    OrderRequest {
        order_type: OrderType::Market,
        tif: TimeInForce::Ioc,
        ..limit(symbol, intent, qty, 0)
    }
}

impl Fixture {
    async fn place(&self, player: i64, req: OrderRequest) -> OrderAck {
        self.ex.place(self.game, player, &req).await.unwrap()
    }

    async fn assert_clean(&self) {
        let v = self.ex.audit(Some(self.game)).await.unwrap();
        assert!(v.is_empty(), "audit: {v:#?}");
    }

    async fn cash(&self, player: i64) -> i64 {
        self.ex.account(self.game, player).await.unwrap().cash
    }

    async fn qty(&self, player: i64, symbol: &str) -> i64 {
        let p = self.ex.portfolio(self.game, player).await.unwrap();
        p.positions
            .iter()
            .find(|x| x.symbol == symbol)
            .map(|x| x.qty)
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn price_time_priority_and_fills_at_the_resting_price() {
    let f = setup(GameRules::default()).await;
    let a1 = f.place(ALICE, limit("NUGT", Intent::Sell, 10, 1_010)).await;
    let b1 = f.place(BOB, limit("NUGT", Intent::Sell, 10, 1_005)).await;
    let a2 = f.place(ALICE, limit("NUGT", Intent::Sell, 10, 1_005)).await;
    assert_eq!(a1.status, OrderStatus::Open);
    let ack = f.place(CAROL, limit("nugt", Intent::Buy, 25, 1_010)).await;
    let got: Vec<_> = ack
        .fills
        .iter()
        .map(|x| (x.maker_order_id, x.price, x.qty))
        .collect();
    assert_eq!(
        got,
        vec![
            (b1.order_id, 1_005, 10),
            (a2.order_id, 1_005, 10),
            (a1.order_id, 1_010, 5)
        ]
    );
    assert_eq!(ack.status, OrderStatus::Filled);
    assert_eq!(f.qty(CAROL, "NUGT").await, 1_025);
    assert_eq!(
        f.cash(CAROL).await,
        10_000 * DOLLAR - 20 * 1_005 - 5 * 1_010
    );
    let book = f.ex.book(f.game, "NUGT", 5).await.unwrap();
    assert_eq!(
        book.asks,
        vec![Level {
            price: 1_010,
            qty: 5,
            orders: 1
        }]
    );
    let tape = f.ex.tape(f.game, "NUGT", 10).await.unwrap();
    assert_eq!(tape.len(), 3);
    assert_eq!(tape[0].price, 1_010);
    assert_eq!(
        f.ex.instrument(f.game, "NUGT").await.unwrap().last_price,
        1_010
    );
    f.assert_clean().await;
}

#[tokio::test]
async fn partial_fill_rests_and_ioc_fok_market_never_rest() {
    let f = setup(GameRules::default()).await;
    f.place(ALICE, limit("NUGT", Intent::Sell, 10, 1_000)).await;
    let ack = f.place(BOB, limit("NUGT", Intent::Buy, 15, 1_000)).await;
    assert_eq!(
        (ack.status, ack.filled, ack.open_qty),
        (OrderStatus::Open, 10, 5)
    );

    f.place(ALICE, limit("NUGT", Intent::Sell, 10, 1_020)).await;
    let ioc = f
        .place(
            CAROL,
            with_tif(limit("NUGT", Intent::Buy, 15, 1_020), TimeInForce::Ioc),
        )
        .await;
    assert_eq!((ioc.status, ioc.filled), (OrderStatus::Cancelled, 10));
    assert_eq!(ioc.cancel_reason, Some(CancelReason::Unfilled));

    f.place(ALICE, limit("NUGT", Intent::Sell, 10, 1_030)).await;
    let fok = f
        .place(
            CAROL,
            with_tif(limit("NUGT", Intent::Buy, 11, 1_030), TimeInForce::Fok),
        )
        .await;
    assert_eq!((fok.status, fok.filled), (OrderStatus::Cancelled, 0));
    assert_eq!(fok.cancel_reason, Some(CancelReason::Killed));
    let fok = f
        .place(
            CAROL,
            with_tif(limit("NUGT", Intent::Buy, 10, 1_030), TimeInForce::Fok),
        )
        .await;
    assert_eq!((fok.status, fok.filled), (OrderStatus::Filled, 10));

    // A market buy sweeps what there is inside the collar and cancels the rest.
    f.place(ALICE, limit("NUGT", Intent::Sell, 3, 1_040)).await;
    let m = f.place(CAROL, market("NUGT", Intent::Buy, 5)).await;
    assert_eq!((m.status, m.filled), (OrderStatus::Cancelled, 3));
    let book = f.ex.book(f.game, "NUGT", 5).await.unwrap();
    assert!(book.asks.is_empty());
    assert_eq!(
        book.bids,
        vec![Level {
            price: 1_000,
            qty: 5,
            orders: 1
        }]
    );
    f.assert_clean().await;
}

#[tokio::test]
async fn bad_input_gets_a_typed_error_and_writes_nothing() {
    let f = setup(GameRules::default()).await;
    let resting = f.place(ALICE, limit("NUGT", Intent::Sell, 10, 1_100)).await;
    let before_seq = f.ex.last_event_seq().await.unwrap();
    let before_orders = f.ex.orders(f.game, BOB, false, 100).await.unwrap().len();
    let cases: Vec<(OrderRequest, IsExpected)> = vec![
        (limit("NUGT", Intent::Buy, 0, 1_000), |e| {
            matches!(e, ExchangeError::BadQuantity)
        }),
        (limit("NUGT", Intent::Buy, -5, 1_000), |e| {
            matches!(e, ExchangeError::BadQuantity)
        }),
        (limit("NUGT", Intent::Buy, 1, 1_003), |e| {
            matches!(e, ExchangeError::OffTick { .. })
        }),
        (limit("NUGT", Intent::Buy, 1, 0), |e| {
            matches!(e, ExchangeError::BadPrice)
        }),
        (limit("NUGT", Intent::Buy, 1, 5_000), |e| {
            matches!(e, ExchangeError::OutsideCollar { .. })
        }),
        (limit("NOPE", Intent::Buy, 1, 1_000), |e| {
            matches!(e, ExchangeError::UnknownSymbol(_))
        }),
        (limit("NUGT", Intent::Buy, 100_000, 1_000), |e| {
            matches!(e, ExchangeError::InsufficientFunds { .. })
        }),
        (limit("NUGT", Intent::Sell, 1_001, 1_000), |e| {
            matches!(
                e,
                ExchangeError::InsufficientShares {
                    needed: 1_001,
                    available: 1_000
                }
            )
        }),
        (limit("BLUE", Intent::Sell, 1, 1_000), |e| {
            matches!(e, ExchangeError::InsufficientShares { .. })
        }),
        (limit("NUGT", Intent::Cover, 1, 1_000), |e| {
            matches!(e, ExchangeError::InsufficientShares { .. })
        }),
    ];
    for (req, ok) in cases {
        let err = f.ex.place(f.game, BOB, &req).await.unwrap_err();
        assert!(ok(&err), "{req:?} gave {err:?}");
        assert!(!err.to_string().is_empty());
    }
    let err =
        f.ex.cancel(f.game, BOB, resting.order_id)
            .await
            .unwrap_err();
    assert!(matches!(err, ExchangeError::NotYourOrder), "{err:?}");
    let err =
        f.ex.place(f.game, 99, &limit("NUGT", Intent::Buy, 1, 1_000))
            .await
            .unwrap_err();
    assert!(matches!(err, ExchangeError::NoAccount));
    assert_eq!(f.ex.last_event_seq().await.unwrap(), before_seq);
    assert_eq!(
        f.ex.orders(f.game, BOB, false, 100).await.unwrap().len(),
        before_orders
    );

    let funds = ExchangeError::InsufficientFunds {
        needed: Cents(150_000 * DOLLAR),
        available: Cents(20_000 * DOLLAR),
    };
    assert_eq!(
        funds.to_string(),
        "not enough buying power: this order needs $150,000.00 but you have $20,000.00"
    );

    f.ex.end_game(f.game).await.unwrap();
    let err =
        f.ex.place(f.game, BOB, &limit("NUGT", Intent::Buy, 1, 1_000))
            .await
            .unwrap_err();
    assert!(matches!(err, ExchangeError::GameOver));
    let err =
        f.ex.cancel(f.game, ALICE, resting.order_id)
            .await
            .unwrap_err();
    assert!(matches!(err, ExchangeError::GameOver));
    f.assert_clean().await;
}

#[tokio::test]
async fn replace_keeps_priority_only_for_a_size_cut() {
    let f = setup(GameRules::default()).await;
    let a = f.place(ALICE, limit("NUGT", Intent::Sell, 10, 1_000)).await;
    let b = f.place(BOB, limit("NUGT", Intent::Sell, 10, 1_000)).await;
    // Alice cuts her size: she stays first.
    let r =
        f.ex.replace(f.game, ALICE, a.order_id, None, 4)
            .await
            .unwrap();
    assert_eq!((r.status, r.open_qty), (OrderStatus::Open, 4));
    let ack = f.place(CAROL, limit("NUGT", Intent::Buy, 2, 1_000)).await;
    assert_eq!(ack.fills[0].maker_order_id, a.order_id);
    // Alice grows it: she goes behind Bob.
    f.ex.replace(f.game, ALICE, a.order_id, None, 6)
        .await
        .unwrap();
    let ack = f.place(CAROL, limit("NUGT", Intent::Buy, 2, 1_000)).await;
    assert_eq!(ack.fills[0].maker_order_id, b.order_id);
    // Bob reprices to where Alice is: behind her now.
    f.ex.replace(f.game, BOB, b.order_id, Some(1_005), 8)
        .await
        .unwrap();
    f.ex.replace(f.game, BOB, b.order_id, Some(1_000), 8)
        .await
        .unwrap();
    let ack = f.place(CAROL, limit("NUGT", Intent::Buy, 7, 1_000)).await;
    let makers: Vec<_> = ack
        .fills
        .iter()
        .map(|x| (x.maker_order_id, x.qty))
        .collect();
    assert_eq!(makers, vec![(a.order_id, 6), (b.order_id, 1)]);
    // A replace that crosses trades at once; zero cancels.
    let c = f.place(CAROL, limit("NUGT", Intent::Buy, 5, 990)).await;
    let r =
        f.ex.replace(f.game, CAROL, c.order_id, Some(1_000), 5)
            .await
            .unwrap();
    assert_eq!((r.status, r.filled), (OrderStatus::Filled, 5));
    let r =
        f.ex.replace(f.game, BOB, b.order_id, None, 0)
            .await
            .unwrap();
    assert_eq!(r.status, OrderStatus::Cancelled);
    let err =
        f.ex.replace(f.game, BOB, b.order_id, None, 3)
            .await
            .unwrap_err();
    assert!(matches!(err, ExchangeError::OrderClosed));
    f.assert_clean().await;
}

#[tokio::test]
async fn self_trade_prevention_modes() {
    let f = setup(GameRules::default()).await;
    let own = f.place(ALICE, limit("NUGT", Intent::Sell, 5, 1_000)).await;
    let other = f.place(BOB, limit("NUGT", Intent::Sell, 5, 1_000)).await;
    let ack = f.place(ALICE, limit("NUGT", Intent::Buy, 5, 1_000)).await;
    assert_eq!(ack.fills.len(), 1);
    assert_eq!(ack.fills[0].maker_order_id, other.order_id);
    let own = f.ex.order(own.order_id).await.unwrap().unwrap();
    assert_eq!(own.status, OrderStatus::Cancelled);

    let own = f.place(ALICE, limit("NUGT", Intent::Sell, 5, 1_000)).await;
    f.place(BOB, limit("NUGT", Intent::Sell, 5, 1_000)).await;
    let mut req = limit("NUGT", Intent::Buy, 5, 1_000);
    req.stp = Some(StpMode::CancelIncoming);
    let ack = f.place(ALICE, req).await;
    assert!(ack.fills.is_empty());
    assert_eq!(ack.cancel_reason, Some(CancelReason::SelfTrade));
    let own = f.ex.order(own.order_id).await.unwrap().unwrap();
    assert_eq!(own.status, OrderStatus::Open);
    f.assert_clean().await;
}

#[tokio::test]
async fn shorts_fees_borrow_fees_dividends_and_day_orders_balance() {
    let rules = GameRules {
        fee_bp: 10,
        borrow_fee_bp_day: 100,
        ..GameRules::default()
    };
    let f = setup(rules).await;
    // Alice shorts BLUE, which she does not hold, to Bob.
    f.place(BOB, limit("BLUE", Intent::Buy, 100, 1_000)).await;
    let ack = f
        .place(ALICE, limit("BLUE", Intent::Short, 100, 1_000))
        .await;
    assert_eq!(ack.status, OrderStatus::Filled);
    assert_eq!(f.qty(ALICE, "BLUE").await, -100);
    assert_eq!(f.cash(ALICE).await, 10_000 * DOLLAR + 100_000 - 100);
    assert_eq!(f.ex.charge_borrow_fees(f.game).await.unwrap(), 1_000);
    f.ex.pay_dividend(f.game, "BLUE", 7).await.unwrap();
    assert_eq!(
        f.cash(ALICE).await,
        10_000 * DOLLAR + 100_000 - 100 - 1_000 - 700
    );
    assert_eq!(f.cash(BOB).await, 10_000 * DOLLAR - 100_000 + 700);
    // Cover half.
    f.ex.grant(f.game, CAROL, 0, Some(("BLUE", 50)))
        .await
        .unwrap();
    f.place(CAROL, limit("BLUE", Intent::Sell, 50, 995)).await;
    let ack = f.place(ALICE, limit("BLUE", Intent::Cover, 50, 995)).await;
    assert_eq!(ack.filled, 50);
    assert_eq!(f.qty(ALICE, "BLUE").await, -50);
    // Day orders expire.
    f.place(
        BOB,
        with_tif(limit("NUGT", Intent::Buy, 1, 950), TimeInForce::Day),
    )
    .await;
    assert_eq!(f.ex.expire_day_orders(f.game).await.unwrap(), 1);
    f.assert_clean().await;
}

#[tokio::test]
async fn margin_call_then_liquidation_largest_first() {
    let rules = GameRules {
        starting_cash: 1_000 * DOLLAR,
        ..GameRules::default()
    };
    let f = setup(rules).await;
    // Dave holds nothing but his cash.
    const DAVE: i64 = 4;
    f.ex.open_account(f.game, DAVE).await.unwrap();
    // Dave buys 200 NUGT at $10 on margin ($2,000 with $1,000 equity) from Alice.
    f.place(ALICE, limit("NUGT", Intent::Sell, 200, 1_000))
        .await;
    let ack = f.place(DAVE, limit("NUGT", Intent::Buy, 200, 1_000)).await;
    assert_eq!(ack.filled, 200);
    assert_eq!(f.cash(DAVE).await, -1_000 * DOLLAR);
    // The price falls to $6: equity 200*6 - 1000 = $200 < 25% of $1,200.
    f.place(CAROL, limit("NUGT", Intent::Sell, 1, 600)).await;
    f.place(ALICE, limit("NUGT", Intent::Buy, 1, 600)).await;
    // Dave's own order on the book is cancelled before liquidation.
    let dave_bid = f.place(DAVE, limit("NUGT", Intent::Sell, 10, 700)).await;
    let mut events = f.ex.subscribe(f.game, 0);
    let r = f.ex.run_margin_check(f.game).await.unwrap();
    let dave = f.ex.account(f.game, DAVE).await.unwrap().id;
    assert_eq!(r.called, vec![dave]);
    // Liquidity for the house to sell into.
    f.place(CAROL, limit("NUGT", Intent::Buy, 300, 600)).await;
    let r = f.ex.run_margin_check(f.game).await.unwrap();
    assert_eq!(r.liquidated, vec![dave]);
    assert_eq!(r.cleared, vec![dave]);
    assert_eq!(f.qty(DAVE, "NUGT").await, 0);
    assert_eq!(f.cash(DAVE).await, -1_000 * DOLLAR + 200 * 600);
    let closed = f.ex.order(dave_bid.order_id).await.unwrap().unwrap();
    assert_eq!(closed.status, OrderStatus::Cancelled);
    let mut kinds = Vec::new();
    while let Some(e) = tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
        .await
        .ok()
        .flatten()
    {
        let e = e.unwrap();
        kinds.push(e.kind);
        if e.kind == EventKind::Liquidation {
            break;
        }
    }
    assert!(kinds.contains(&EventKind::MarginCall), "{kinds:?}");
    assert!(kinds.contains(&EventKind::Liquidation), "{kinds:?}");
    f.assert_clean().await;
}

#[tokio::test]
async fn subscribers_see_every_event_in_order() {
    let f = setup(GameRules::default()).await;
    let from = f.ex.last_event_seq().await.unwrap() + 1;
    let mut sub = f.ex.subscribe(f.game, from);
    f.place(ALICE, limit("NUGT", Intent::Sell, 10, 1_000)).await;
    let ack = f.place(BOB, limit("NUGT", Intent::Buy, 4, 1_000)).await;
    let mut got = Vec::new();
    while got.len() < 4 {
        let e = sub.recv().await.unwrap().unwrap();
        got.push(e);
    }
    let kinds: Vec<_> = got.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Order,
            EventKind::Trade,
            EventKind::Fill,
            EventKind::Fill
        ]
    );
    assert!(got.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(got[1].trade_id, Some(ack.fills[0].trade_id));
    assert_eq!(got[2].order_id, Some(ack.order_id));
}

#[tokio::test]
async fn audit_names_what_was_tampered_with() {
    let f = setup(GameRules::default()).await;
    f.place(ALICE, limit("NUGT", Intent::Sell, 10, 1_000)).await;
    f.place(BOB, limit("NUGT", Intent::Buy, 10, 1_000)).await;
    f.assert_clean().await;
    let pool = f.ex.db().pool();
    sqlx::query("UPDATE ex_accounts SET cash = cash + 1 WHERE player_id = 1")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE ex_positions SET qty = qty - 1 WHERE qty = 1010")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE ex_orders SET status = 'open', filled = 0 WHERE side = 'sell'")
        .execute(pool)
        .await
        .unwrap();
    let rules: Vec<&str> =
        f.ex.audit(Some(f.game))
            .await
            .unwrap()
            .iter()
            .map(|v| v.rule)
            .collect();
    for rule in [
        "ledger-cash",
        "cash-total",
        "ledger-shares",
        "shares-issued",
        "order-fills",
    ] {
        assert!(rules.contains(&rule), "{rule} missing from {rules:?}");
    }
    // Both now rest at 1,000: the buy was filled, so open the buy side too to cross the book.
    sqlx::query("UPDATE ex_orders SET status = 'open', filled = 0")
        .execute(pool)
        .await
        .unwrap();
    let v = f.ex.audit(Some(f.game)).await.unwrap();
    assert!(v.iter().any(|v| v.rule == "crossed-book"), "{v:?}");
}

#[tokio::test]
async fn a_batch_trades_in_order_commits_together_and_refusals_write_nothing() {
    let f = setup(GameRules::default()).await;
    let alice = f.ex.account(f.game, ALICE).await.unwrap().id;
    let bob = f.ex.account(f.game, BOB).await.unwrap().id;
    let nugt = f.ex.instrument(f.game, "NUGT").await.unwrap().id;
    let mut batch = f.ex.begin_batch(&[bob, alice], &[nugt]).await.unwrap();

    // Alice's ask rests; Bob's bid trades against it inside the same batch.
    let sell = limit("NUGT", Intent::Sell, 10, 1_000);
    let ask = match batch.place(f.game, alice, nugt, &sell).await.unwrap() {
        Done::Ack(a) => a.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(ask.status, OrderStatus::Open);
    let buy = limit("NUGT", Intent::Buy, 4, 1_000);
    batch.place(f.game, bob, nugt, &buy).await.unwrap();
    // Refusals write nothing and leave the batch going.
    let wild = limit("NUGT", Intent::Buy, 1, 5_000);
    let err = batch.place(f.game, bob, nugt, &wild).await.unwrap_err();
    assert!(matches!(err, ExchangeError::OutsideCollar { .. }), "{err}");
    let err = batch
        .cancel(f.game, Some(bob), ask.order_id, CancelReason::User)
        .await
        .unwrap_err();
    assert!(matches!(err, ExchangeError::NotYourOrder), "{err}");
    // A size cut of what is left (6 of 10), then a replace that crosses nothing.
    let cut = batch
        .replace(f.game, alice, ask.order_id, None, 3)
        .await
        .unwrap();
    assert_eq!(cut.status(), OrderStatus::Open);
    batch
        .replace(f.game, alice, ask.order_id, Some(1_005), 3)
        .await
        .unwrap();
    assert_eq!(batch.len(), 4);

    // Nothing shows before the commit.
    assert!(f.ex.tape(f.game, "NUGT", 10).await.unwrap().is_empty());
    assert!(f
        .ex
        .orders(f.game, ALICE, false, 10)
        .await
        .unwrap()
        .is_empty());

    let done = batch.commit().await.unwrap();
    assert_eq!(done.len(), 4);
    let tape = f.ex.tape(f.game, "NUGT", 10).await.unwrap();
    assert_eq!(tape.len(), 1);
    match &done[1] {
        Done::Ack(a) => {
            assert_eq!(a.status, OrderStatus::Filled);
            assert_eq!(a.fills.len(), 1);
            // The acknowledgement carries the stored trade id, not a placeholder.
            assert_eq!(a.fills[0].trade_id, tape[0].id);
            assert_eq!((a.fills[0].price, a.fills[0].qty), (1_000, 4));
        }
        other => panic!("{other:?}"),
    }
    let book = f.ex.book(f.game, "NUGT", 5).await.unwrap();
    assert_eq!(
        book.asks,
        vec![Level {
            price: 1_005,
            qty: 3,
            orders: 1
        }]
    );
    assert_eq!(f.qty(BOB, "NUGT").await, 1_004);
    f.assert_clean().await;

    // A batch rolled back leaves no trace.
    let mut batch = f.ex.begin_batch(&[bob], &[nugt]).await.unwrap();
    let lift = limit("NUGT", Intent::Buy, 3, 1_005);
    batch.place(f.game, bob, nugt, &lift).await.unwrap();
    batch.rollback().await;
    assert_eq!(f.ex.tape(f.game, "NUGT", 10).await.unwrap().len(), 1);
    assert_eq!(f.qty(BOB, "NUGT").await, 1_004);
    // And the book takes orders again at once (the batch's locks are gone).
    let ack = f.place(BOB, limit("NUGT", Intent::Buy, 3, 1_005)).await;
    assert_eq!(ack.status, OrderStatus::Filled);
    f.assert_clean().await;
}

#[tokio::test]
async fn orders_go_through_after_the_server_drops_every_connection() {
    let f = setup(GameRules::default()).await;
    if nuggetnet::store::testing::test_backend() != nuggetnet::store::Backend::Postgres {
        return; // SQLite's connections live in the process; nothing can drop them.
    }
    f.place(ALICE, limit("NUGT", Intent::Sell, 5, 1_000)).await;
    // What a server restart does to every pooled connection but the killer's own.
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&sqlx::PgPool::connect(&f._db.url).await.unwrap())
    .await
    .unwrap();
    assert!(killed > 0);
    let ack = f.place(BOB, limit("NUGT", Intent::Buy, 5, 1_000)).await;
    assert_eq!(ack.status, OrderStatus::Filled);
    f.assert_clean().await;
}
