//! News flashes: a headline the market publishes reaches callers at the BBS's prompts (through
//! the node manager) and players in the NuggetNet door (through the door's own follower), on
//! whatever screen they are; the door's news wire lists it.

mod common;

#[path = "common/door.rs"]
mod door;

use nuggetnet::exchange::Exchange;
use nuggetnet::market::{Market, MarketConfig};

/// A season whose market day has begun, so injected headlines go out at the next tick. No
/// random news: a tick's chance of one grows with the time since the last tick, so a slow
/// machine would now and then put a headline on the wire before the test's own.
async fn market(db: &nuggetnet::store::Db) -> (Market, i64) {
    let config = MarketConfig {
        start: "2026-11-23 10:00".into(),
        npc: nuggetnet::market::sim::SimParams {
            news_rate_per_day: 0.0,
            ..Default::default()
        },
        ..MarketConfig::default()
    };
    let market = Market::new(Exchange::new(db.clone()), config).unwrap();
    let game = market
        .new_game(
            "Season 1: Greed Is Good",
            "test",
            nuggetnet::store::now_ms(),
        )
        .await
        .unwrap();
    market.step(game, "test").await.unwrap();
    (market, game)
}

async fn publish(market: &Market, game: i64, headline: &str) {
    market
        .inject_news(game, "JUNK", headline, 300, "test")
        .await
        .unwrap();
    market.step(game, "test").await.unwrap();
}

#[tokio::test]
async fn a_caller_at_the_main_menu_sees_the_flash_and_keeps_the_prompt() {
    let t = common::TestServer::start(4).await;
    let (market, game) = market(&t.db.db).await;
    let mut caller = common::Caller::telnet(t.telnet_addr(), "ANSI").await;
    common::leave_lobby(&mut caller).await;
    common::register(&mut caller, "Gordon", "greedisgood").await;
    publish(&market, game, "Junk Bond Kings indicted on 98 counts").await;
    caller
        .expect("NEWS FLASH: Junk Bond Kings indicted on 98 counts")
        .await;
    // The menu still answers: W shows who is online.
    caller.send(b"w").await;
    caller.expect("Gordon").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_player_in_the_door_sees_flashes_on_the_board_and_at_prompts() {
    let t = nuggetnet::store::testing::fresh_db().await;
    let (market, game) = market(&t.db).await;
    let dir = tempfile::tempdir().unwrap();
    let drop = door::door32(dir.path(), "0\r\n0", None);
    let cfg = door::config(dir.path(), &t.url);
    let mut child = door::spawn_stdio(&drop, &cfg);
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut c = door::Caller::new(Box::new(stdin), Box::new(stdout), false);
    tokio::task::block_in_place(|| {
        c.expect("Press RETURN");
        c.keys(b"\r");
        c.expect("NEWS: The wire is quiet");
        c.expect("Command:");
    });
    // On the board the headline is written into the news row, in place.
    publish(&market, game, "Raider files 13D on Junk Bond Kings").await;
    tokio::task::block_in_place(|| {
        c.expect_row("NEWS: Raider files 13D on Junk Bond Kings", "");
        c.keys(b"b");
        c.expect("Symbol:");
    });
    // At a prompt it is shown above the prompt, which is drawn again.
    publish(&market, game, "Regulators' budget cut again").await;
    tokio::task::block_in_place(|| {
        c.expect("NEWS: Regulators' budget cut again");
        c.line("junk");
        c.expect("M)arket?");
        c.keys(b"\x1b");
        c.expect("Command:");
        // The board remembers the latest headline.
        c.expect_row("NEWS: Regulators' budget cut again", "");
        c.keys(b"n");
        c.expect("The news wire");
        c.expect("Raider files 13D on Junk Bond Kings");
        c.keys(b" ");
        c.expect("Command:");
        c.keys(b"g");
        let status = door::wait_exit(&mut child, door::WAIT);
        assert!(status.success(), "{status:?}");
    });
}
