//! `nuggetnet bench news`: how long a headline takes to reach every node in the game.
//!
//! Creates a season with the market simulation on the given database (a temporary SQLite
//! file by default), starts `--doors` NuggetNet door processes (this binary, `door`, each with
//! its own DOOR32.SYS on stdio, as a BBS node runs it), presses RETURN at each welcome and
//! waits until every door shows the market board. Then, `--flashes` times: injects a headline
//! and runs one tick that publishes it, and records when the headline's text appears in each
//! door's output. The clock starts *before* the publishing tick, so the figure includes the
//! tick itself (reported separately) as well as the doors' polling and drawing.
//!
//! Results are printed as Markdown rows for `BENCHMARKS.md`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};

use super::Percentiles;
use crate::dropfile::{self, Comm, DropInfo, DropKind, LineEnding};
use crate::exchange::Exchange;
use crate::market::{Market, MarketConfig};

/// Command-line arguments.
#[derive(Debug, clap::Args)]
pub struct NewsArgs {
    /// Database URL; a temporary SQLite file when not given.
    #[arg(long)]
    pub url: Option<String>,
    /// How many door processes (nodes in the game) watch the board.
    #[arg(long, default_value_t = 32)]
    pub doors: usize,
    /// How many headlines to publish.
    #[arg(long, default_value_t = 20)]
    pub flashes: usize,
}

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Market(#[from] crate::market::MarketError),
    #[error(transparent)]
    Exchange(#[from] crate::exchange::ExchangeError),
    #[error(transparent)]
    Dropfile(#[from] crate::dropfile::DropfileError),
    #[error("{0}")]
    Failed(String),
}

/// How long a door may take to show its board, or a headline to arrive, before the run fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// One door process and everything it has written.
struct Door {
    child: Child,
    stdin: ChildStdin,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Door {
    fn contains(&self, needle: &[u8], from: usize) -> Option<usize> {
        let out = self.output.lock().unwrap_or_else(|e| e.into_inner());
        let hay = out.get(from..)?;
        hay.windows(needle.len())
            .position(|w| w == needle)
            .map(|p| from + p)
    }

    fn len(&self) -> usize {
        self.output.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Runs the bench and prints its report.
pub async fn run(args: NewsArgs) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let url = match &args.url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", dir.path().join("news.db").display()),
    };
    let ex = Exchange::connect(&url, 4).await?;
    // A market day that has started: the headlines go out in the regular session.
    let config = MarketConfig {
        start: "2026-11-23 10:00".into(),
        ..MarketConfig::default()
    };
    let market = Market::new(ex, config)?;
    let game = market
        .new_game("News bench", "bench", crate::store::now_ms())
        .await?;
    let symbol = market
        .exchange()
        .instruments(game)
        .await?
        .first()
        .map(|i| i.symbol.clone())
        .ok_or_else(|| BenchError::Failed("the season lists nothing".into()))?;
    market.step(game, "bench").await?;

    let exe = std::env::current_exe()?;
    let mut doors = Vec::with_capacity(args.doors);
    for n in 0..args.doors {
        doors.push(start_door(&exe, dir.path().join(format!("node{}", n + 1)), n, &url).await?);
    }
    for (n, door) in doors.iter_mut().enumerate() {
        wait_for(door, b"Press RETURN", 0, n).await?;
        door.stdin.write_all(b"\r").await?;
        door.stdin.flush().await?;
    }
    for (n, door) in doors.iter().enumerate() {
        wait_for(door, b"Command:", 0, n).await?;
    }
    println!(
        "{} doors on the board; publishing {} headlines",
        doors.len(),
        args.flashes
    );

    let mut latencies = Vec::new();
    let mut ticks = Vec::new();
    let mut missed = 0usize;
    for k in 0..args.flashes {
        let headline = format!("Bench flash {k}: {symbol} chairman seen buying a Ferrari");
        let marks: Vec<usize> = doors.iter().map(Door::len).collect();
        market
            .inject_news(game, &symbol, &headline, 50, "bench")
            .await?;
        let start = Instant::now();
        market.step(game, "bench").await?;
        ticks.push(start.elapsed());
        let needle = format!("Bench flash {k}:");
        let mut pending: Vec<usize> = (0..doors.len()).collect();
        while !pending.is_empty() && start.elapsed() < STEP_TIMEOUT {
            pending.retain(|&n| {
                if doors[n].contains(needle.as_bytes(), marks[n]).is_some() {
                    latencies.push(start.elapsed());
                    false
                } else {
                    true
                }
            });
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        missed += pending.len();
        // Headlines are minutes apart in a real game; give the doors a breath between them.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for mut door in doors {
        drop(door.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), door.child.wait()).await;
        let _ = door.child.start_kill();
    }

    let flash = Percentiles::of(&mut latencies);
    let tick = Percentiles::of(&mut ticks);
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    println!();
    println!(
        "| backend | doors | headlines | flash p50 ms | p99 ms | max ms | missed | publishing tick p50 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        if url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        args.doors,
        args.flashes,
        ms(flash.p50),
        ms(flash.p99),
        ms(flash.max),
        missed,
        ms(tick.p50),
    );
    if missed > 0 {
        return Err(BenchError::Failed(format!(
            "{missed} flashes did not arrive within {STEP_TIMEOUT:?}"
        )));
    }
    Ok(())
}

async fn start_door(
    exe: &std::path::Path,
    node_dir: PathBuf,
    n: usize,
    url: &str,
) -> Result<Door, BenchError> {
    std::fs::create_dir_all(&node_dir)?;
    let info = DropInfo {
        bbs_name: "Bench BBS".into(),
        bbs_software: "NuggetNet bench".into(),
        alias: format!("Bencher{}", n + 1),
        node: u16::try_from(n + 1).unwrap_or(u16::MAX),
        comm: Comm::Local,
        minutes_left: 60,
        ..DropInfo::default()
    };
    let path = dropfile::write(&node_dir, DropKind::Door32, &info, LineEnding::CrLf, false)?;
    let mut child = Command::new(exe)
        .arg("door")
        .arg("--dropfile")
        .arg(&path)
        .arg("--database")
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| BenchError::Failed("door without stdin".into()))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| BenchError::Failed("door without stdout".into()))?;
    let output = Arc::new(Mutex::new(Vec::new()));
    let sink = output.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&buf[..n]);
        }
    });
    Ok(Door {
        child,
        stdin,
        output,
    })
}

async fn wait_for(door: &Door, needle: &[u8], from: usize, n: usize) -> Result<(), BenchError> {
    let start = Instant::now();
    while door.contains(needle, from).is_none() {
        if start.elapsed() > STEP_TIMEOUT {
            return Err(BenchError::Failed(format!(
                "door {} never showed {:?}",
                n + 1,
                String::from_utf8_lossy(needle)
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
