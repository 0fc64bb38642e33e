//! The `nuggetnet` command: thin wiring from the command line to the library.
//!
//! Each subcommand loads what it needs (config, database) and calls one library entry point;
//! `anyhow` lives here and nowhere in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use nuggetnet::config::Config;

#[derive(Parser)]
#[command(
    name = "nuggetnet",
    version,
    about = "NuggetNet BBS: node manager, door and market"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the BBS: listeners, node manager and sessions (Ctrl-C to stop).
    Serve {
        /// Configuration file (default: ./nuggetnet.toml if present, else built-in defaults).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Load tools; results go in BENCHMARKS.md.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Check the exchange's books on the live database; exits non-zero on any violation.
    Audit {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Only this game (default: every game).
        #[arg(long)]
        game: Option<i64>,
    },
    /// Play NuggetNet as a door: read the dropfile and talk to the caller on stdio or the
    /// inherited socket (DOOR32 comm type 2).
    Door {
        /// The dropfile: DOOR32.SYS, DOOR.SYS or DORINFOx.DEF.
        #[arg(long, short)]
        dropfile: PathBuf,
        /// Configuration file (its `[database] url`; default SQLite data/nuggetnet.db).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Database URL; overrides the configuration file's (the BBS passes its own).
        #[arg(long)]
        database: Option<String>,
        /// Serve ATASCII at 40 columns whatever the dropfile says.
        #[arg(long)]
        atascii: bool,
        /// Parse telnet on an inherited socket from the start (the BBS hands over the
        /// caller's raw telnet socket rather than a cleaned passthru one).
        #[arg(long)]
        telnet: bool,
        /// The system players are namespaced by (default: the BBS the dropfile names).
        #[arg(long)]
        system: Option<String>,
        /// Idle time-out in seconds.
        #[arg(long, default_value_t = 300)]
        idle_secs: u64,
        /// The BBS's order writer socket (empty or absent: trade directly).
        #[arg(long)]
        writer: Option<PathBuf>,
    },
    /// The market simulation: run it, start a game, and the sysop's controls.
    Market {
        /// Configuration file (default: ./nuggetnet.toml if present, else built-in defaults).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        /// Who is acting, for the audit log (default: $USER).
        #[arg(long, global = true)]
        actor: Option<String>,
        #[command(subcommand)]
        command: MarketCommand,
    },
    /// Places random orders (used by `bench exchange` and the multi-process tests).
    #[command(hide = true)]
    ExchangeWorker(nuggetnet::bench::exchange::WorkerArgs),
    /// Runs an order writer alone on a Unix socket (used by `bench exchange`).
    #[command(hide = true)]
    ExchangeWriter(nuggetnet::bench::exchange::WriterArgs),
}

#[derive(Subcommand)]
enum DbCommand {
    /// Create the database if needed and run every pending migration.
    Migrate {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum MarketCommand {
    /// Run the simulator for a game until Ctrl-C (or `market stop`); standby while another
    /// process holds the game's lease.
    Run {
        #[arg(long)]
        game: i64,
        /// The name this process holds the lease under (default: host and process id).
        #[arg(long)]
        holder: Option<String>,
    },
    /// Start a new game (season) with the configured instruments and NPCs; prints its id.
    NewGame {
        #[arg(long, default_value = "NuggetNet")]
        name: String,
    },
    /// Pause a game: no ticks, the clock stands still, orders are refused.
    Pause {
        #[arg(long)]
        game: i64,
    },
    /// Resume a paused or stopped game (a stopped game needs `market run` again).
    Resume {
        #[arg(long)]
        game: i64,
    },
    /// Stop a game's simulation; running simulators exit.
    Stop {
        #[arg(long)]
        game: i64,
    },
    /// Inject a news event, published at the next tick.
    News {
        #[arg(long)]
        game: i64,
        #[arg(long)]
        symbol: String,
        /// The fair-value move in basis points (e.g. -1500 for a 15% fall).
        #[arg(long, allow_hyphen_values = true)]
        jump_bp: i64,
        /// The headline (default: drawn from the table).
        #[arg(long, default_value = "")]
        headline: String,
    },
    /// Set volatility, in percent of the configured volatility.
    Volatility {
        #[arg(long)]
        game: i64,
        #[arg(long)]
        percent: i64,
    },
    /// Set NPC liquidity, in percent of the configured quote size and retail activity.
    Liquidity {
        #[arg(long)]
        game: i64,
        #[arg(long)]
        percent: i64,
    },
    /// Show a game's simulation status and world clock.
    Status {
        #[arg(long)]
        game: i64,
    },
    /// Show the sysop audit log, newest first.
    Log {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Time ticks of a game with many instruments and player accounts.
    Bench {
        #[arg(long, default_value_t = 50)]
        instruments: usize,
        #[arg(long, default_value_t = 10_000)]
        players: usize,
        #[arg(long, default_value_t = 1_000)]
        player_orders: usize,
        #[arg(long, default_value_t = 50)]
        ticks: usize,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Open many telnet sessions, hold them at the login prompt, measure latencies.
    Connect(nuggetnet::bench::connect::ConnectArgs),
    /// Run many virtual-modem lines on pseudo-terminals at once and measure their pacing.
    Lines(nuggetnet::bench::lines::LinesArgs),
    /// Place orders from 1, 8 and 32 client processes; report orders/s and latencies.
    Exchange(nuggetnet::bench::exchange::BenchArgs),
    /// Start many NuggetNet door processes and time a headline's flash on every one.
    News(nuggetnet::bench::news::NewsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The exchange worker is one sequential client: a single-threaded runtime spares it the
    // cross-thread wake-ups that would otherwise dominate its CPU time.
    let mut builder = match cli.command {
        Command::ExchangeWorker(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nuggetnet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // A door's standard input is read on a blocking thread that cannot be interrupted; do
    // not wait for it (or anything else) once the work is done.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nuggetnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let (config, path) = Config::load(config.as_deref())?;
            init_tracing(&config.logging.filter);
            match &path {
                Some(p) => tracing::info!(config = %p.display(), "configuration loaded"),
                None => tracing::info!("no configuration file; running on defaults"),
            }
            nuggetnet::server::serve(config).await?;
        }
        Command::Db {
            command: DbCommand::Migrate { config },
        } => {
            let (config, _) = Config::load(config.as_deref())?;
            let db = nuggetnet::store::Db::open(&config.database.url, 1)
                .await
                .with_context(|| format!("database {}", config.database.url))?;
            db.close().await;
            println!("database {} is up to date", config.database.url);
        }
        Command::Bench {
            command: BenchCommand::Connect(args),
        } => {
            nuggetnet::bench::connect::run(args).await?;
        }
        Command::Bench {
            command: BenchCommand::Lines(args),
        } => {
            nuggetnet::bench::lines::run(args).await?;
        }
        Command::Bench {
            command: BenchCommand::Exchange(args),
        } => nuggetnet::bench::exchange::run_bench(args).await?,
        Command::Bench {
            command: BenchCommand::News(args),
        } => nuggetnet::bench::news::run(args).await?,
        Command::Audit { config, game } => {
            let (config, _) = Config::load(config.as_deref())?;
            let db = nuggetnet::store::Db::open(&config.database.url, 2)
                .await
                .with_context(|| format!("database {}", config.database.url))?;
            let violations = nuggetnet::exchange::audit(&db, game).await?;
            for v in &violations {
                println!("{v}");
            }
            if !violations.is_empty() {
                anyhow::bail!("the audit found {} violation(s)", violations.len());
            }
            println!("audit passed");
        }
        Command::ExchangeWorker(args) => nuggetnet::bench::exchange::run_worker(args).await?,
        Command::ExchangeWriter(args) => nuggetnet::bench::exchange::run_writer(args).await?,
        Command::Door {
            dropfile,
            config,
            database,
            atascii,
            telnet,
            system,
            idle_secs,
            writer,
        } => {
            // The dropfile first: a bad one must be reported before anything else happens.
            let info = nuggetnet::game::read_dropfile(&dropfile)?;
            let (config, _) = Config::load(config.as_deref())?;
            init_tracing(&config.logging.filter);
            let io = match info.comm {
                nuggetnet::dropfile::Comm::Socket(fd) => nuggetnet::game::DoorIo::Socket(
                    adopt_socket(fd)
                        .with_context(|| format!("dropfile {}: line 2", dropfile.display()))?,
                ),
                _ => nuggetnet::game::DoorIo::Stdio,
            };
            let opts = nuggetnet::game::DoorOptions {
                dropfile,
                database_url: database.unwrap_or_else(|| config.database.url.clone()),
                atascii,
                telnet,
                system,
                idle: std::time::Duration::from_secs(idle_secs.max(10)),
                writer: writer.filter(|p| !p.as_os_str().is_empty()),
            };
            let end = nuggetnet::game::run(&opts, &info, io).await?;
            tracing::info!(?end, "door call ended");
        }
        Command::Market {
            config,
            actor,
            command,
        } => market(config, actor, command).await?,
    }
    Ok(())
}

/// The `market` subcommands: each is one library call on [`nuggetnet::market::Market`].
async fn market(
    config: Option<PathBuf>,
    actor: Option<String>,
    command: MarketCommand,
) -> anyhow::Result<()> {
    use nuggetnet::market::Market;
    let (mut config, _) = Config::load(config.as_deref())?;
    init_tracing(&config.logging.filter);
    if let MarketCommand::Bench { .. } = command {
        // A Monday in the regular session, in real time, whatever the config says.
        config.market.start = "2026-11-23 10:00".into();
        config.market.speed = 1;
    }
    let ex = nuggetnet::exchange::Exchange::connect(&config.database.url, 8)
        .await
        .with_context(|| format!("database {}", config.database.url))?;
    let market = Market::new(ex, config.market.clone())?.with_season_settings(&config.season);
    let actor = actor
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "sysop".into());
    let now = nuggetnet::store::now_ms();
    let done = |changed: bool, what: &str| {
        if changed {
            println!("{what}");
        } else {
            println!("{what} (no change)");
        }
    };
    match command {
        MarketCommand::Run { game, holder } => {
            let holder = holder.unwrap_or_else(|| {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
                format!("{host}:{}", std::process::id())
            });
            let shutdown = tokio_util::sync::CancellationToken::new();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                }
                stop.cancel();
            });
            market.run(game, &holder, shutdown).await?;
        }
        MarketCommand::NewGame { name } => {
            let id = market.new_game(&name, &actor, now).await?;
            println!("game {id} started: {}", market.status(id, now).await?);
            if let Some(season) = nuggetnet::lifecycle::season(market.exchange().db(), id).await? {
                let (day, ms) = (
                    season.ends_at.div_euclid(86_400_000),
                    season.ends_at.rem_euclid(86_400_000),
                );
                let (y, m, d) = nuggetnet::market::clock::civil_from_days(day);
                println!(
                    "the season ends {y:04}-{m:02}-{d:02} {:02}:{:02} UTC ({} hours from now)",
                    ms / 3_600_000,
                    ms / 60_000 % 60,
                    config.season.length_hours
                );
            }
        }
        MarketCommand::Pause { game } => done(market.pause(game, &actor).await?, "paused"),
        MarketCommand::Resume { game } => done(market.resume(game, &actor).await?, "resumed"),
        MarketCommand::Stop { game } => done(market.stop(game, &actor).await?, "stopped"),
        MarketCommand::News {
            game,
            symbol,
            jump_bp,
            headline,
        } => {
            let id = market
                .inject_news(game, &symbol, &headline, jump_bp, &actor)
                .await?;
            println!("news {id} scheduled for the next tick");
        }
        MarketCommand::Volatility { game, percent } => done(
            market.set_volatility(game, percent, &actor).await?,
            &format!("volatility {percent}%"),
        ),
        MarketCommand::Liquidity { game, percent } => done(
            market.set_liquidity(game, percent, &actor).await?,
            &format!("liquidity {percent}%"),
        ),
        MarketCommand::Status { game } => println!("{}", market.status(game, now).await?),
        MarketCommand::Log { limit } => {
            for row in market.audit_log(limit).await? {
                let game = row
                    .game_id
                    .map_or_else(|| "-".to_string(), |g| g.to_string());
                println!(
                    "{} game {game} {} {} {}",
                    row.created_at, row.actor, row.action, row.detail
                );
            }
        }
        MarketCommand::Bench {
            instruments,
            players,
            player_orders,
            ticks,
        } => {
            let spec = nuggetnet::market::bench::TickBench {
                instruments,
                players,
                player_orders,
                ticks,
            };
            let report = nuggetnet::market::bench::run(&market, &spec).await?;
            println!(
                "{} instruments, {} players, {} resting player orders on {}: set-up {:.1} s; \
                 tick p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms over {} ticks \
                 ({:.1} NPC order actions a tick)",
                instruments,
                players,
                player_orders,
                config.database.url.split(':').next().unwrap_or("?"),
                report.setup_secs,
                report.quantile(0.5),
                report.quantile(0.9),
                report.quantile(1.0),
                report.tick_ms.len(),
                report.actions as f64 / report.tick_ms.len().max(1) as f64
            );
            println!(
                "phase p50: plan {:.1} ms, claim {:.1} ms, NPC orders {:.1} ms, snapshot {:.1} ms",
                report.phase_p50(|p| p.plan_us),
                report.phase_p50(|p| p.claim_us),
                report.phase_p50(|p| p.orders_us),
                report.phase_p50(|p| p.snapshot_us),
            );
        }
    }
    Ok(())
}

/// Logs to stderr; `RUST_LOG` overrides the configured filter.
fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Takes over the socket a BBS handed to the door (DOOR32.SYS comm type 2, line 2).
///
/// The library forbids `unsafe`; adopting a numbered descriptor cannot be done without it, so
/// it happens here, after checking that the number is an open stream socket.
fn adopt_socket(fd: i64) -> anyhow::Result<std::net::TcpStream> {
    use std::os::fd::FromRawFd;
    let fd = i32::try_from(fd)
        .ok()
        .filter(|&fd| fd >= 0)
        .with_context(|| format!("expected a socket handle, found {fd}"))?;
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt only writes `len` bytes into `kind`, which is that large; an invalid
    // descriptor makes it fail with EBADF or ENOTSOCK, which is reported.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        anyhow::bail!(
            "handle {fd} is not an open socket: {}",
            std::io::Error::last_os_error()
        );
    }
    if kind != libc::SOCK_STREAM {
        anyhow::bail!("handle {fd} is not a stream socket");
    }
    // SAFETY: the descriptor is open and a stream socket (checked above), and the BBS handed
    // it to this process for the door's sole use; nothing else in the process owns it, so the
    // TcpStream becomes its one owner and closes it when dropped.
    Ok(unsafe { std::net::TcpStream::from_raw_fd(fd) })
}
