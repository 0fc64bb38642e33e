//! `nuggetnet bench exchange` and the trading worker it (and the multi-process tests) start.
//!
//! The bench creates a game with 20 instruments in the configured database, then for each
//! client count starts that many worker processes (`nuggetnet exchange-worker`, hidden), each
//! placing orders in a loop for a fixed time and printing one line per acknowledgement with its
//! latency. The parent adds them up: orders per second and p50/p99/p99.9/max latency. On
//! PostgreSQL it then runs `pgbench -b tpcb-like` with the same client count for comparison.
//!
//! The worker is also the load of the multi-process and crash tests: it prints `ack ID` only
//! after the order's transaction has committed, so a parent can check that every acknowledged
//! order survived even when the worker is killed the next instant.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::exchange::{
    Exchange, ExchangeError, GameRules, Intent, NewInstrument, OrderRequest, OrderStatus,
    OrderType, TimeInForce,
};

/// Arguments of the hidden worker subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Database URL.
    #[arg(long)]
    pub url: String,
    /// Game to trade in.
    #[arg(long)]
    pub game: i64,
    /// Player ids this worker trades for (comma-separated); their accounts must exist.
    #[arg(long, value_delimiter = ',')]
    pub players: Vec<i64>,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Orders to send; 0 means until `--seconds` pass (or forever if that is 0 too).
    #[arg(long, default_value_t = 0)]
    pub orders: u64,
    /// Seconds to run when `--orders` is 0.
    #[arg(long, default_value_t = 0)]
    pub seconds: u64,
    /// Send the orders to the order writer on this Unix socket.
    #[arg(long)]
    pub writer: Option<std::path::PathBuf>,
}

/// Arguments of the hidden order-writer subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct WriterArgs {
    /// Database URL.
    #[arg(long)]
    pub url: String,
    /// The Unix socket to serve on.
    #[arg(long)]
    pub socket: std::path::PathBuf,
}

/// Runs an order writer until SIGTERM or Ctrl-C; prints `ready` once it listens.
pub async fn run_writer(args: WriterArgs) -> Result<(), BenchError> {
    let ex = Exchange::connect(&args.url, 2).await?;
    let listener = crate::exchange::writer::bind(&args.socket).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        stop.cancel();
    });
    println!("ready");
    std::io::stdout().flush()?;
    let stats = crate::exchange::writer::serve(ex, listener, shutdown).await;
    let _ = std::fs::remove_file(&args.socket);
    eprintln!(
        "order writer: {} orders in {} batches ({:.1} a batch, {} begun with the last one's commit), \
         {} batches run again order by order, {} reads from memory and {} from the database, \
         {} batches begun on the last one's reads",
        stats.orders,
        stats.batches,
        stats.orders as f64 / stats.batches.max(1) as f64,
        stats.chained,
        stats.retried,
        stats.memory_reads,
        stats.database_reads,
        stats.carried
    );
    Ok(())
}

/// Why the worker or the bench stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Failed(String),
}

/// Open orders a worker keeps per player before it cancels the oldest.
const MAX_WORKING: usize = 40;

/// One operation the worker chose.
enum Op {
    Place(OrderRequest),
    Cancel(i64),
    Replace(i64, i64, i64),
}

/// Runs the worker: places random orders and prints one line per answer.
pub async fn run_worker(args: WorkerArgs) -> Result<(), BenchError> {
    if args.players.is_empty() {
        return Err(BenchError::Failed("no --players given".into()));
    }
    // One pooled connection, plus the one its write transactions keep: 32 workers then hold
    // 64 of PostgreSQL's default 100 connections. With two pooled each, 32 workers ran out of
    // them and waited out the pool's connect retries (9 s for an order).
    let mut ex = Exchange::connect(&args.url, 1).await?;
    if let Some(path) = &args.writer {
        ex = ex.with_writer(path);
    }
    let instruments = ex.instruments(args.game).await?;
    if instruments.is_empty() {
        return Err(BenchError::Failed("the game has no instruments".into()));
    }
    let mut accounts = Vec::new();
    for &p in &args.players {
        accounts.push(ex.account(args.game, p).await?.id);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut open: Vec<(usize, i64)> = Vec::new();
    let stdout = std::io::stdout();
    let started = Instant::now();
    let deadline = (args.seconds > 0).then(|| started + Duration::from_secs(args.seconds));
    let mut sent = 0u64;
    loop {
        if args.orders > 0 && sent >= args.orders {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        sent += 1;
        let who = rng.gen_range(0..accounts.len());
        let inst = &instruments[rng.gen_range(0..instruments.len())];
        let op = choose(&mut rng, inst.tick, inst.last_price, who, &mut open);
        let t0 = Instant::now();
        let (line, result) = match op {
            Op::Place(req) => {
                match ex
                    .place_for_account(args.game, accounts[who], inst.id, &req)
                    .await
                {
                    Ok(ack) => {
                        if ack.status == OrderStatus::Open {
                            open.push((who, ack.order_id));
                        }
                        (format!("ack {}", ack.order_id), Ok(()))
                    }
                    Err(e) => ("refused".to_string(), Err(e)),
                }
            }
            Op::Cancel(id) => match ex.cancel(args.game, args.players[who], id).await {
                Ok(()) => (format!("cancel {id}"), Ok(())),
                Err(e) => ("refused".to_string(), Err(e)),
            },
            Op::Replace(id, price, qty) => {
                match ex
                    .replace(args.game, args.players[who], id, Some(price), qty)
                    .await
                {
                    Ok(ack) => {
                        if ack.status == OrderStatus::Open {
                            open.push((who, ack.order_id));
                        }
                        (format!("ack {}", ack.order_id), Ok(()))
                    }
                    Err(e) => ("refused".to_string(), Err(e)),
                }
            }
        };
        let us = t0.elapsed().as_micros();
        if let Err(e) = result {
            if matches!(
                e,
                ExchangeError::Store(_) | ExchangeError::Internal | ExchangeError::NoAnswer
            ) {
                return Err(e.into());
            }
        }
        // One write per answer, flushed, so a parent sees it even if this process dies next.
        let mut out = stdout.lock();
        writeln!(out, "{line} {us}")?;
        out.flush()?;
    }
    let mut out = stdout.lock();
    writeln!(out, "done {sent}")?;
    out.flush()?;
    Ok(())
}

/// Picks the next operation: mostly limit orders near the reference price, some market,
/// immediate-or-cancel and fill-or-kill orders, short sales and covers, cancels and replaces.
fn choose(
    rng: &mut ChaCha8Rng,
    tick: i64,
    center: i64,
    who: usize,
    open: &mut Vec<(usize, i64)>,
) -> Op {
    let roll = rng.gen_range(0..100);
    let mine: Vec<usize> = (0..open.len()).filter(|&i| open[i].0 == who).collect();
    // Like a real trader, keep a bounded number of orders working: cancel the oldest.
    if mine.len() > MAX_WORKING {
        let (_, id) = open.remove(mine[0]);
        return Op::Cancel(id);
    }
    if roll < 12 && !mine.is_empty() {
        let (_, id) = open.swap_remove(mine[rng.gen_range(0..mine.len())]);
        return Op::Cancel(id);
    }
    if roll < 18 && !mine.is_empty() {
        let (_, id) = open.swap_remove(mine[rng.gen_range(0..mine.len())]);
        let price = center + tick * rng.gen_range(-8..=8);
        return Op::Replace(id, price.max(tick), rng.gen_range(1..=20));
    }
    let intent = match rng.gen_range(0..10) {
        0..=3 => Intent::Buy,
        4..=7 => Intent::Sell,
        8 => Intent::Short,
        _ => Intent::Cover,
    };
    let qty = rng.gen_range(1..=20);
    let (order_type, tif) = match rng.gen_range(0..20) {
        0..=1 => (OrderType::Market, TimeInForce::Ioc),
        2..=3 => (
            OrderType::Limit {
                price: (center + tick * rng.gen_range(-10..=10)).max(tick),
            },
            TimeInForce::Ioc,
        ),
        4 => (
            OrderType::Limit {
                price: (center + tick * rng.gen_range(-10..=10)).max(tick),
            },
            TimeInForce::Fok,
        ),
        5 => (
            OrderType::Limit {
                price: (center + tick * rng.gen_range(-10..=10)).max(tick),
            },
            TimeInForce::Day,
        ),
        _ => (
            OrderType::Limit {
                price: (center + tick * rng.gen_range(-10..=10)).max(tick),
            },
            TimeInForce::Gtc,
        ),
    };
    Op::Place(OrderRequest {
        symbol: String::new(),
        intent,
        order_type,
        tif,
        qty,
        stp: None,
    })
}

/// Creates a game for load tests: `instruments` symbols and accounts for `players` players,
/// each with plenty of cash and shares. Returns the game id.
pub async fn setup_game(
    ex: &Exchange,
    instruments: usize,
    players: &[i64],
) -> Result<i64, ExchangeError> {
    let rules = GameRules {
        // $100 million each: the bench measures speed, not solvency.
        starting_cash: 10_000_000_000,
        ..GameRules::default()
    };
    let game = ex.create_game("load", &rules).await?;
    let mut symbols = Vec::new();
    for i in 0..instruments {
        let symbol = format!("S{i:03}");
        ex.list_instrument(
            game.id,
            &NewInstrument {
                symbol: &symbol,
                name: "Load Test Holdings",
                profile: "Exists only to be traded very fast.",
                tick: 5,
                shares_issued: 1_000_000_000,
                initial_price: 1_000,
            },
        )
        .await?;
        symbols.push(symbol);
    }
    for &p in players {
        ex.open_account(game.id, p).await?;
        for s in &symbols {
            ex.grant(game.id, p, 0, Some((s, 1_000_000))).await?;
        }
    }
    Ok(game.id)
}

/// Arguments of `nuggetnet bench exchange`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Database URL (a scratch database: the bench adds games to it).
    #[arg(long)]
    pub url: String,
    /// Client process counts to run, one after another.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub clients: Vec<usize>,
    /// Instruments to spread the orders over.
    #[arg(long, default_value_t = 20)]
    pub instruments: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Skip the pgbench comparison.
    #[arg(long)]
    pub no_pgbench: bool,
    /// How the clients' orders reach the database: `direct` (each process runs its own
    /// transactions) and/or `writer` (through one order writer process, batching).
    #[arg(long, value_delimiter = ',', default_value = "direct,writer")]
    pub paths: Vec<String>,
    /// Seconds of trading (8 clients, direct, not measured) before the first run, so that
    /// the tables hold orders and trades when their statistics are taken. 0 skips it.
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
}

/// Results of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    pub clients: usize,
    pub answers: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// The latency at quantile `q` of sorted microsecond samples, in milliseconds.
fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Runs the bench and prints a table (markdown) to stdout.
pub async fn run_bench(args: BenchArgs) -> Result<(), BenchError> {
    let exe = std::env::current_exe()?;
    let ex = Exchange::connect(&args.url, 4).await?;
    let backend = if args.url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    for path in &args.paths {
        if path != "direct" && path != "writer" {
            return Err(BenchError::Failed(format!(
                "unknown path {path:?}: use direct and/or writer"
            )));
        }
    }
    if args.warmup > 0 {
        // On a new database the first run's statistics would say the order and trade
        // tables are empty, and PostgreSQL would keep plans made for empty tables (scans of
        // the whole table) while they fill up. A running exchange has rows there, and
        // autovacuum keeps its statistics current; this puts rows there first.
        let warm = BenchArgs {
            seconds: args.warmup,
            ..args.clone()
        };
        let players: Vec<i64> = (1..=8).collect();
        let game = setup_game(&ex, args.instruments, &players).await?;
        run_clients(&exe, &warm, game, players.len(), None).await?;
    }
    println!("| backend | path | clients | orders/s | p50 ms | p99 ms | p99.9 ms | max ms | pgbench tpcb-like tps |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for &clients in &args.clients {
        let mut pgbench = None;
        for path in &args.paths {
            let players: Vec<i64> = (1..=clients as i64).collect();
            let game = setup_game(&ex, args.instruments, &players).await?;
            // Like pgbench before its own runs: fresh statistics, no dead rows from the last run.
            crate::store::exchange::vacuum_analyze(ex.db())
                .await
                .map_err(ExchangeError::from)?;
            let r = if path == "writer" {
                let writer = Writer::start(&exe, &args.url).await?;
                let r = run_clients(&exe, &args, game, clients, Some(&writer.socket)).await;
                writer.stop().await;
                r?
            } else {
                run_clients(&exe, &args, game, clients, None).await?
            };
            let audit = ex.audit(Some(game)).await?;
            if !audit.is_empty() {
                return Err(BenchError::Failed(format!("audit failed: {:?}", audit)));
            }
            if pgbench.is_none() {
                pgbench = Some(if backend == "PostgreSQL" && !args.no_pgbench {
                    run_pgbench(&args.url, clients, args.seconds)
                        .await
                        .map(|t| format!("{t:.0}"))
                        .unwrap_or_else(|e| format!("n/a ({e})"))
                } else {
                    "-".to_string()
                });
            }
            println!(
                "| {backend} | {path} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} |",
                r.clients,
                r.per_second,
                r.p50_ms,
                r.p99_ms,
                r.p999_ms,
                r.max_ms,
                pgbench.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(())
}

/// An order writer process the bench started, on a socket in a temporary directory.
struct Writer {
    child: tokio::process::Child,
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Writer {
    async fn start(exe: &std::path::Path, url: &str) -> Result<Writer, BenchError> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("writer.sock");
        let mut child = tokio::process::Command::new(exe)
            .arg("exchange-writer")
            .args(["--url", url])
            .arg("--socket")
            .arg(&socket)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Failed("writer has no stdout".into()))?;
        let mut lines = BufReader::new(out).lines();
        match lines.next_line().await? {
            Some(line) if line == "ready" => {}
            other => {
                return Err(BenchError::Failed(format!(
                    "the order writer did not start: {other:?}"
                )))
            }
        }
        Ok(Writer {
            child,
            socket,
            _dir: dir,
        })
    }

    /// Asks the writer to stop (it finishes what it was given) and waits for it.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.child.wait().await;
    }
}

async fn run_clients(
    exe: &std::path::Path,
    args: &BenchArgs,
    game: i64,
    clients: usize,
    writer: Option<&std::path::Path>,
) -> Result<RunResult, BenchError> {
    let mut children = Vec::new();
    for c in 0..clients {
        let mut command = tokio::process::Command::new(exe);
        command
            .arg("exchange-worker")
            .args(["--url", &args.url, "--game", &game.to_string()])
            .args(["--players", &(c + 1).to_string()])
            .args(["--seed", &(c as u64 + 7).to_string()])
            .args(["--seconds", &args.seconds.to_string()]);
        if let Some(socket) = writer {
            command.arg("--writer").arg(socket);
        }
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        children.push(child);
    }
    let started = Instant::now();
    let mut readers = Vec::new();
    for child in &mut children {
        let out = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Failed("worker has no stdout".into()))?;
        readers.push(tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            let mut lat = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("done") {
                    continue;
                }
                if let Some(us) = line.rsplit(' ').next().and_then(|s| s.parse::<u64>().ok()) {
                    lat.push(us);
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await.map_err(|e| BenchError::Failed(e.to_string()))?);
    }
    for mut child in children {
        let status = child.wait().await?;
        if !status.success() {
            return Err(BenchError::Failed(format!("a worker failed: {status}")));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    // Workers start at slightly different times; the run's length is what they were told.
    let secs = (args.seconds as f64).max(1.0).min(elapsed);
    Ok(RunResult {
        clients,
        answers: all.len(),
        per_second: all.len() as f64 / secs,
        p50_ms: quantile_ms(&all, 0.50),
        p99_ms: quantile_ms(&all, 0.99),
        p999_ms: quantile_ms(&all, 0.999),
        max_ms: all.last().map(|&m| m as f64 / 1000.0).unwrap_or(0.0),
    })
}

/// Runs `pgbench -b tpcb-like` against a scratch database beside the bench's; returns tps.
async fn run_pgbench(url: &str, clients: usize, seconds: u64) -> Result<f64, String> {
    let pgbench = find_pgbench().ok_or("pgbench is not installed")?;
    let admin = crate::store::postgres_url_with_database(url, "postgres");
    let scratch = crate::store::postgres_url_with_database(url, "nuggetnet_pgbench");
    let run = |args: Vec<String>| {
        let pgbench = pgbench.clone();
        async move {
            let out = tokio::process::Command::new(&pgbench)
                .args(&args)
                .output()
                .await
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
    };
    let _ = tokio::process::Command::new("psql")
        .args([&admin, "-q", "-c", "CREATE DATABASE nuggetnet_pgbench"])
        .output()
        .await;
    run(vec![
        "-i".into(),
        "-q".into(),
        "-s".into(),
        "10".into(),
        scratch.clone(),
    ])
    .await?;
    let out = run(vec![
        "-b".into(),
        "tpcb-like".into(),
        "-c".into(),
        clients.to_string(),
        "-j".into(),
        clients.min(2).to_string(),
        "-T".into(),
        seconds.to_string(),
        scratch,
    ])
    .await?;
    out.lines()
        .find(|l| l.starts_with("tps ="))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| "no tps in pgbench output".to_string())
}

fn find_pgbench() -> Option<std::path::PathBuf> {
    let candidates = ["/usr/bin/pgbench", "/usr/local/bin/pgbench"];
    for c in candidates {
        if std::path::Path::new(c).exists() {
            return Some(c.into());
        }
    }
    let dir = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    dir.flatten()
        .map(|e| e.path().join("bin/pgbench"))
        .find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_sorted_samples() {
        let v: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.5), 501.0);
        assert_eq!(quantile_ms(&v, 1.0), 1000.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }
}
