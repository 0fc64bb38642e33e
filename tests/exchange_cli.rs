//! `nuggetnet audit` on a live database: silent success on clean books, a non-zero exit that
//! names each violation otherwise.

use std::process::Command;

use nuggetnet::exchange::{Exchange, Intent, OrderRequest, OrderType, TimeInForce};
use nuggetnet::store::testing::fresh_db;

const EXE: &str = env!("CARGO_BIN_EXE_nuggetnet");

#[tokio::test]
async fn audit_command_exits_non_zero_and_names_violations() {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    let game = nuggetnet::bench::exchange::setup_game(&ex, 1, &[1, 2])
        .await
        .unwrap();
    let symbol = ex.instruments(game).await.unwrap()[0].symbol.clone();
    for (player, intent) in [(1, Intent::Sell), (2, Intent::Buy)] {
        let req = OrderRequest {
            symbol: symbol.clone(),
            intent,
            order_type: OrderType::Limit { price: 1_000 },
            tif: TimeInForce::Gtc,
            qty: 10,
            stp: None,
        };
        ex.place(game, player, &req).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nuggetnet.toml");
    std::fs::write(&config, format!("[database]\nurl = \"{}\"\n", t.url)).unwrap();
    let run = || {
        Command::new(EXE)
            .args(["audit", "--config"])
            .arg(&config)
            .args(["--game", &game.to_string()])
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit passed"));

    sqlx::query("UPDATE ex_accounts SET cash = cash + 7 WHERE player_id = 2")
        .execute(ex.db().pool())
        .await
        .unwrap();
    let out = run();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ledger-cash"), "{stdout}");
    assert!(stdout.contains("cash-total"), "{stdout}");
}
