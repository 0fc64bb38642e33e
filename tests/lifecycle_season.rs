//! A season under an accelerated clock (every call is given `now`): reminders arrive on
//! schedule, the end freezes trading and records a leaderboard that a pumped last trade does
//! not flatter, and a new season starts fresh while the old results stay readable.

use nuggetnet::exchange::{
    Exchange, ExchangeError, GameRules, Intent, NewInstrument, OrderRequest, OrderType, TimeInForce,
};
use nuggetnet::inbox::{self, MailKind};
use nuggetnet::jobs::{self, Backoff, Handlers, Ran, RunnerConfig};
use nuggetnet::lifecycle::{self, SeasonConfig};
use nuggetnet::store::players;
use nuggetnet::store::testing::fresh_db;

const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

async fn drain(ex: &Exchange, handlers: &Handlers, now: i64) {
    let cfg = RunnerConfig {
        worker: "test".into(),
        lease_ms: 30_000,
        poll: std::time::Duration::from_millis(10),
        backoff: Backoff::default(),
    };
    loop {
        match jobs::run_once(ex.db(), handlers, &cfg, now).await.unwrap() {
            Ran::Idle => break,
            Ran::Done(_) => {}
            other => panic!("a job did not succeed: {other:?}"),
        }
    }
}

async fn reminders(ex: &Exchange, player: i64) -> Vec<String> {
    inbox::list(ex.db(), player)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == MailKind::Reminder)
        .map(|m| m.subject)
        .collect()
}

fn order(intent: Intent, price: i64, qty: i64, tif: TimeInForce) -> OrderRequest {
    OrderRequest {
        symbol: "BLUE".into(),
        intent,
        order_type: OrderType::Limit { price },
        tif,
        qty,
        stp: None,
    }
}

#[tokio::test]
async fn reminders_arrive_on_schedule() {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    let config = SeasonConfig::default();
    let ends = T0 + 10 * DAY;
    let (game, season) = lifecycle::start_season(
        &ex,
        "Season 1: Greed Is Good",
        &GameRules::default(),
        T0,
        ends,
        &config,
        T0,
    )
    .await
    .unwrap();
    assert_eq!((season.starts_at, season.ends_at), (T0, ends));
    let gordon = players::find_or_create(ex.db(), "Sync", "Gordon")
        .await
        .unwrap();
    let bud = players::find_or_create(ex.db(), "Sync", "Bud")
        .await
        .unwrap();
    let lurker = players::find_or_create(ex.db(), "Sync", "Lurker")
        .await
        .unwrap();
    ex.open_account(game.id, gordon.id).await.unwrap();
    let h = lifecycle::all_handlers(&ex, &config);

    drain(&ex, &h, T0 + 2 * DAY).await;
    assert!(reminders(&ex, gordon.id).await.is_empty());
    drain(&ex, &h, ends - 7 * DAY - 1).await;
    assert!(reminders(&ex, gordon.id).await.is_empty());

    drain(&ex, &h, ends - 7 * DAY).await;
    assert_eq!(reminders(&ex, gordon.id).await, ["Season ends in 7 days"]);

    // A player who joins later gets only the reminders still to come.
    ex.open_account(game.id, bud.id).await.unwrap();
    drain(&ex, &h, ends - DAY - 1).await;
    assert_eq!(reminders(&ex, gordon.id).await.len(), 1);
    drain(&ex, &h, ends - DAY).await;
    drain(&ex, &h, ends - HOUR).await;
    // Running the due jobs again sends nothing twice.
    drain(&ex, &h, ends - HOUR).await;
    assert_eq!(
        reminders(&ex, gordon.id).await,
        [
            "Season ends in 1 hour",
            "Season ends in 1 day",
            "Season ends in 7 days"
        ]
    );
    assert_eq!(
        reminders(&ex, bud.id).await,
        ["Season ends in 1 hour", "Season ends in 1 day"]
    );
    // Nobody without an account is reminded.
    assert!(inbox::list(ex.db(), lurker.id).await.unwrap().is_empty());
    let season = lifecycle::season(ex.db(), game.id).await.unwrap().unwrap();
    assert_eq!(season.reminders_sent, 3);
    assert_eq!(season.ended_at, None);
    assert!(ex.game(game.id).await.unwrap().open);
}

#[tokio::test]
async fn the_end_freezes_trading_and_records_robust_results() {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    let config = SeasonConfig::default();
    let ends = T0 + 2 * HOUR;
    let (game, _) = lifecycle::start_season(
        &ex,
        "Season 1",
        &GameRules::default(),
        T0,
        ends,
        &config,
        T0,
    )
    .await
    .unwrap();
    ex.list_instrument(
        game.id,
        &NewInstrument {
            symbol: "BLUE",
            name: "Bluestar Airlines",
            profile: "Fly the friendly leveraged skies.",
            tick: 1,
            shares_issued: 1_000_000,
            initial_price: 1_000,
        },
    )
    .await
    .unwrap();
    let p = |h: &'static str| {
        let db = ex.db().clone();
        async move { players::find_or_create(&db, "Sync", h).await.unwrap() }
    };
    let (gordon, bud, carl) = (p("Gordon").await, p("Bud").await, p("Carl").await);
    for pl in [&gordon, &bud, &carl] {
        ex.open_account(game.id, pl.id).await.unwrap();
    }
    ex.grant(game.id, gordon.id, 0, Some(("BLUE", 100)))
        .await
        .unwrap();
    // Four honest trades at 10.00, then one "pump" at 15.00 to lift the last price.
    for price in [1_000, 1_000, 1_000, 1_000, 1_500] {
        ex.place(
            game.id,
            gordon.id,
            &order(Intent::Sell, price, 1, TimeInForce::Gtc),
        )
        .await
        .unwrap();
        let ack = ex
            .place(
                game.id,
                bud.id,
                &order(Intent::Buy, price, 1, TimeInForce::Ioc),
            )
            .await
            .unwrap();
        assert_eq!(ack.filled, 1);
    }
    let h = lifecycle::all_handlers(&ex, &config);
    drain(&ex, &h, ends - 1).await;
    assert!(ex.game(game.id).await.unwrap().open);
    assert!(lifecycle::results(ex.db(), game.id)
        .await
        .unwrap()
        .is_empty());

    drain(&ex, &h, ends).await;
    assert!(!ex.game(game.id).await.unwrap().open);
    let frozen = ex
        .place(
            game.id,
            bud.id,
            &order(Intent::Buy, 1_000, 1, TimeInForce::Gtc),
        )
        .await;
    assert!(matches!(frozen, Err(ExchangeError::GameOver)), "{frozen:?}");

    let results = lifecycle::results(ex.db(), game.id).await.unwrap();
    let board: Vec<(i64, &str, i64)> = results
        .iter()
        .map(|r| (r.rank, r.handle.as_str(), r.net_worth))
        .collect();
    // Holdings are marked at the median 10.00, not the pumped 15.00.
    assert_eq!(
        board,
        [
            (1, "Gordon", 1_005_500 + 95 * 1_000),
            (2, "Carl", 1_000_000),
            (3, "Bud", 994_500 + 5 * 1_000),
        ]
    );
    let season = lifecycle::season(ex.db(), game.id).await.unwrap().unwrap();
    assert_eq!(season.ended_at, Some(ends));
    let mail = inbox::list(ex.db(), gordon.id).await.unwrap();
    assert!(mail.iter().any(|m| m.subject == "Final standings: #1 of 3"));

    // Ending again (a crash after the first run) changes nothing and mails nobody twice.
    let again = lifecycle::end(&ex, game.id, &config.mark, ends + 5)
        .await
        .unwrap();
    assert_eq!(again, results);
    assert_eq!(
        inbox::list(ex.db(), gordon.id).await.unwrap().len(),
        mail.len()
    );

    // A new season starts with fresh accounts; the old results stay.
    let (next, _) = lifecycle::start_season(
        &ex,
        "Season 2",
        &GameRules::default(),
        ends,
        ends + 7 * DAY,
        &config,
        ends,
    )
    .await
    .unwrap();
    let fresh = ex.open_account(next.id, gordon.id).await.unwrap();
    assert_eq!(fresh.cash, GameRules::default().starting_cash);
    assert_eq!(lifecycle::results(ex.db(), game.id).await.unwrap(), results);
    let all = lifecycle::seasons(ex.db()).await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.game_id).collect::<Vec<_>>(),
        [next.id, game.id]
    );
}

#[tokio::test]
async fn bad_dates_and_double_scheduling_are_refused() {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    let config = SeasonConfig::default();
    let err = lifecycle::start_season(&ex, "S", &GameRules::default(), T0, T0, &config, T0)
        .await
        .unwrap_err();
    assert!(matches!(err, lifecycle::LifecycleError::BadDates));
    let (game, _) =
        lifecycle::start_season(&ex, "S", &GameRules::default(), T0, T0 + DAY, &config, T0)
            .await
            .unwrap();
    let err = lifecycle::schedule(ex.db(), game.id, T0, T0 + 2 * DAY, &config, T0)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        lifecycle::LifecycleError::AlreadyScheduled(_)
    ));
}

#[tokio::test]
async fn a_simulated_games_market_stops_and_npcs_stay_off_the_board() {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    let market = nuggetnet::market::Market::new(ex.clone(), Default::default()).unwrap();
    let game = market.new_game("Sim season", "test", T0).await.unwrap();
    let config = SeasonConfig::default();
    lifecycle::schedule(ex.db(), game, T0, T0 + HOUR, &config, T0)
        .await
        .unwrap();
    let gordon = players::find_or_create(ex.db(), "Sync", "Gordon")
        .await
        .unwrap();
    ex.open_account(game, gordon.id).await.unwrap();
    let h = lifecycle::all_handlers(&ex, &config);
    drain(&ex, &h, T0 + HOUR).await;
    let sim = nuggetnet::store::market::sim(ex.db(), game)
        .await
        .unwrap()
        .unwrap();
    assert!(sim.stopped);
    assert!(!ex.game(game).await.unwrap().open);
    let results = lifecycle::results(ex.db(), game).await.unwrap();
    assert_eq!(
        results.len(),
        1,
        "only real players are ranked: {results:?}"
    );
    assert_eq!(results[0].player_id, gordon.id);
}

#[tokio::test]
async fn a_season_the_market_starts_has_its_end_and_reminders() {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    let settings = nuggetnet::config::SeasonSettings {
        length_hours: 48,
        ..Default::default()
    };
    let market = nuggetnet::market::Market::new(ex.clone(), Default::default())
        .unwrap()
        .with_season_settings(&settings);
    let game = market.current_or_new_game("test", T0).await.unwrap();
    let season = lifecycle::season(ex.db(), game).await.unwrap().unwrap();
    assert_eq!((season.starts_at, season.ends_at), (T0, T0 + 2 * DAY));
    // The same season is current on the next call; no second one is started.
    assert_eq!(market.current_or_new_game("test", T0).await.unwrap(), game);
    let gordon = players::find_or_create(ex.db(), "Sync", "Gordon")
        .await
        .unwrap();
    ex.open_account(game, gordon.id).await.unwrap();
    let h = lifecycle::all_handlers(&ex, &SeasonConfig::from_settings(&settings));
    // The 7-day reminder is past at the start (a two-day season); the 1-day one is not.
    drain(&ex, &h, T0 + DAY + HOUR).await;
    assert_eq!(reminders(&ex, gordon.id).await.len(), 1);
    drain(&ex, &h, T0 + 2 * DAY).await;
    assert!(!ex.game(game).await.unwrap().open, "the season ended");
}
