//! Many OS processes trading the same books at once, directly and through one order writer,
//! and a trading process or the order writer killed with SIGKILL at random moments: afterwards
//! the audit passes and every acknowledged order is in the database. Runs on SQLite by default
//! and on PostgreSQL when `NUGGETNET_TEST_DATABASE_URL` points at a server.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nuggetnet::bench::exchange::setup_game;
use nuggetnet::exchange::Exchange;
use nuggetnet::store::testing::fresh_db;

const EXE: &str = env!("CARGO_BIN_EXE_nuggetnet");

fn worker(url: &str, game: i64, players: &[i64], seed: u64, orders: u64) -> Child {
    worker_via(url, game, players, seed, orders, None)
}

fn worker_via(
    url: &str,
    game: i64,
    players: &[i64],
    seed: u64,
    orders: u64,
    writer: Option<&Path>,
) -> Child {
    let players: Vec<String> = players.iter().map(|p| p.to_string()).collect();
    let mut command = Command::new(EXE);
    command
        .arg("exchange-worker")
        .args(["--url", url, "--game", &game.to_string()])
        .args(["--players", &players.join(",")])
        .args(["--seed", &seed.to_string(), "--orders", &orders.to_string()]);
    if let Some(socket) = writer {
        command.arg("--writer").arg(socket);
    }
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a worker")
}

/// Starts an order writer on `socket` and waits until it listens.
fn writer(url: &str, socket: &Path) -> Child {
    let mut child = Command::new(EXE)
        .arg("exchange-writer")
        .args(["--url", url])
        .arg("--socket")
        .arg(socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the order writer");
    let out = child.stdout.take().expect("piped stdout");
    let mut first = String::new();
    BufReader::new(out)
        .read_line(&mut first)
        .expect("read the writer");
    assert_eq!(first.trim(), "ready", "the order writer did not start");
    child
}

/// Collects a worker's output lines on a thread until it exits or is killed.
fn collect_lines(child: &mut Child) -> std::thread::JoinHandle<Vec<String>> {
    let out = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || BufReader::new(out).lines().map_while(Result::ok).collect())
}

/// Order ids a worker acknowledged, from its output lines.
fn acked(lines: &[String]) -> Vec<i64> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("ack "))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect()
}

async fn assert_all_present(ex: &Exchange, ids: &[i64]) {
    let mut found = nuggetnet::store::exchange::existing_orders(ex.db(), ids)
        .await
        .unwrap();
    found.sort_unstable();
    let mut want = ids.to_vec();
    want.sort_unstable();
    want.dedup();
    let missing: Vec<_> = want
        .iter()
        .filter(|id| found.binary_search(id).is_err())
        .collect();
    assert!(missing.is_empty(), "acknowledged but missing: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_trade_three_books_at_once() {
    eight_processes_trade(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_trade_through_one_order_writer() {
    eight_processes_trade(true).await;
}

async fn eight_processes_trade(through_writer: bool) {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    let players: Vec<i64> = (1..=16).collect();
    let game = setup_game(&ex, 3, &players).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("writer.sock");
    let mut writer_process = through_writer.then(|| writer(&t.url, &socket));
    let via = through_writer.then_some(socket.as_path());
    let children: Vec<Child> = (0..8)
        .map(|w| {
            worker_via(
                &t.url,
                game,
                &players[w * 2..w * 2 + 2],
                w as u64 + 1,
                1_000,
                via,
            )
        })
        .collect();
    let mut all_acks = Vec::new();
    let mut handles = Vec::new();
    for mut child in children {
        let out = child.stdout.take().expect("piped stdout");
        handles.push(std::thread::spawn(move || {
            let lines: Vec<String> = BufReader::new(out).lines().map_while(Result::ok).collect();
            let status = child.wait().expect("wait for the worker");
            (status, lines)
        }));
    }
    let mut answers = 0;
    for h in handles {
        let (status, lines) = h.join().expect("reader thread");
        assert!(status.success(), "worker failed: {status}");
        assert_eq!(lines.last().map(String::as_str), Some("done 1000"));
        answers += lines.len() - 1;
        all_acks.extend(acked(&lines));
    }
    assert_eq!(answers, 8_000);
    assert!(
        all_acks.len() > 4_000,
        "only {} orders acknowledged",
        all_acks.len()
    );
    let violations = ex.audit(Some(game)).await.unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
    assert_all_present(&ex, &all_acks).await;
    let trades: usize = {
        let mut n = 0;
        for i in ex.instruments(game).await.unwrap() {
            n += ex.tape(game, &i.symbol, 100_000).await.unwrap().len();
        }
        n
    };
    assert!(trades > 500, "only {trades} trades");
    if let Some(mut w) = writer_process.take() {
        // Every order went through the writer: it is still there, serving.
        assert!(w.try_wait().unwrap().is_none(), "the order writer died");
        w.kill().unwrap();
        w.wait().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_traders_lose_no_acknowledged_order() {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    let players = [1, 2];
    let game = setup_game(&ex, 3, &players).await.unwrap();
    let mut acks = Vec::new();
    for round in 0..20u64 {
        let mut child = worker(&t.url, game, &players, 100 + round, 0);
        let reader = collect_lines(&mut child);
        // Let it get going (it has to connect first), then kill it at a random moment.
        let pause = 150 + rand::random::<u64>() % 250;
        std::thread::sleep(Duration::from_millis(pause));
        child.kill().expect("SIGKILL the worker");
        child.wait().expect("reap the worker");
        let lines = reader.join().expect("reader thread");
        let got = acked(&lines);
        eprintln!(
            "round {round}: killed after {pause} ms and {} acknowledgements",
            got.len()
        );
        acks.extend(got);
        let violations = ex.audit(Some(game)).await.unwrap();
        assert!(violations.is_empty(), "round {round}: {violations:#?}");
        assert_all_present(&ex, &acks).await;
    }
    assert!(!acks.is_empty(), "no worker got an order acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_order_writer_loses_no_acknowledged_order() {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    let players = [1, 2, 3, 4];
    let game = setup_game(&ex, 3, &players).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("writer.sock");
    let mut acks = Vec::new();
    for round in 0..10u64 {
        let mut w = writer(&t.url, &socket);
        // Two traders through the writer; it is killed under them at a random moment.
        let mut readers = Vec::new();
        for k in 0..2u64 {
            let mut child = worker_via(
                &t.url,
                game,
                &players[k as usize * 2..k as usize * 2 + 2],
                200 + round * 2 + k,
                0,
                Some(&socket),
            );
            let reader = collect_lines(&mut child);
            readers.push((child, reader));
        }
        let pause = 150 + rand::random::<u64>() % 250;
        std::thread::sleep(Duration::from_millis(pause));
        w.kill().expect("SIGKILL the writer");
        w.wait().expect("reap the writer");
        // The traders go on directly (or stop on the answer they never got); stop them too.
        std::thread::sleep(Duration::from_millis(50));
        let mut got = Vec::new();
        for (mut child, reader) in readers {
            let _ = child.kill();
            child.wait().expect("reap a worker");
            got.extend(acked(&reader.join().expect("reader thread")));
        }
        eprintln!(
            "round {round}: writer killed after {pause} ms; {} acknowledgements",
            got.len()
        );
        acks.extend(got);
        let violations = ex.audit(Some(game)).await.unwrap();
        assert!(violations.is_empty(), "round {round}: {violations:#?}");
        assert_all_present(&ex, &acks).await;
    }
    assert!(!acks.is_empty(), "no order was acknowledged");
}
