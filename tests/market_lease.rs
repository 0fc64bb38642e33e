//! One simulator at a time: two real `nuggetnet market run` processes against one database
//! never run the same tick, and killing the leader hands the game to the other without a
//! skipped or doubled tick. `market stop` ends the survivor. Runs on SQLite, and on
//! PostgreSQL when `NUGGETNET_TEST_DATABASE_URL` is set.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nuggetnet::exchange::Exchange;
use nuggetnet::market::{Market, MarketConfig};
use nuggetnet::store::market as sm;
use nuggetnet::store::testing::fresh_db;

const EXE: &str = env!("CARGO_BIN_EXE_nuggetnet");
const TICK_MS: i64 = 200;

fn simulator(config: &std::path::Path, game: i64, holder: &str) -> Child {
    Command::new(EXE)
        .args([
            "market",
            "run",
            "--game",
            &game.to_string(),
            "--holder",
            holder,
        ])
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a simulator")
}

async fn wait_for_tick(db: &nuggetnet::store::Db, game: i64, tick: i64) -> sm::SimRow {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sim = sm::sim(db, game).await.unwrap().unwrap();
        if sim.last_tick >= tick && sim.tick_done {
            return sim;
        }
        assert!(Instant::now() < deadline, "no tick {tick} in time: {sim:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_hands_over_without_a_gap_or_a_double_tick() {
    let t = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nuggetnet.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n\n[market]\ntick_ms = {TICK_MS}\nspeed = 30\nseed = 5\n\
             start = \"2026-11-23 10:00\"\nretail_traders = 2\nmakers_per_instrument = 1\n\n\
             [[market.instrument]]\nsymbol = \"JUNK\"\nname = \"Junk Bond Kings\"\nprice_cents = 2500\n",
            t.url
        ),
    )
    .unwrap();
    let (cfg, _) = nuggetnet::config::Config::load(Some(&config)).unwrap();
    let market = Market::new(Exchange::new(t.db.clone()), cfg.market.clone()).unwrap();
    let _: &MarketConfig = market.config();
    let game = market
        .new_game("lease", "tester", nuggetnet::store::now_ms())
        .await
        .unwrap();

    let mut a = simulator(&config, game, "alpha");
    let mut b = simulator(&config, game, "beta");
    let sim = wait_for_tick(&t.db, game, 8).await;
    let leader = sim.holder.clone().unwrap();
    let (victim, survivor) = if leader == "alpha" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    victim.kill().unwrap();
    victim.wait().unwrap();
    let killed_at = nuggetnet::store::now_ms();
    let killed_tick = sm::sim(&t.db, game).await.unwrap().unwrap().last_tick;
    wait_for_tick(&t.db, game, killed_tick + 8).await;

    let log = sm::tick_log(&t.db, game).await.unwrap();
    let ticks: Vec<i64> = log.iter().map(|(n, _, _)| *n).collect();
    let expected: Vec<i64> = (1..=ticks.len() as i64).collect();
    assert_eq!(ticks, expected, "every tick ran exactly once, none skipped");
    assert!(
        log.iter()
            .all(|(n, h, _)| *n <= killed_tick || h != &leader),
        "the dead leader ran nothing more"
    );
    let first_new = log
        .iter()
        .find(|(n, h, _)| *n > killed_tick && h != &leader)
        .unwrap();
    let handover = first_new.2 - killed_at;
    eprintln!("handover after {handover} ms (tick {TICK_MS} ms)");
    // The lease lasts one and a half ticks; allow the machine's scheduling on top.
    assert!(
        handover <= 2 * TICK_MS + 1_000,
        "handover took {handover} ms"
    );
    let bars = sm::tick_bars(&t.db, game).await.unwrap();
    assert!(
        ticks.iter().all(|n| bars.iter().any(|b| b.key == *n)),
        "every tick has its snapshot"
    );

    // `market stop` makes the survivor exit.
    let status = Command::new(EXE)
        .args(["market", "stop", "--game", &game.to_string(), "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if survivor.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            survivor.kill().ok();
            panic!("the survivor did not stop");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(market
        .exchange()
        .audit(Some(game))
        .await
        .unwrap()
        .is_empty());
}
