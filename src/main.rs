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
    /// Places random orders (used by `bench exchange` and the multi-process tests).
    #[command(hide = true)]
    ExchangeWorker(nuggetnet::bench::exchange::WorkerArgs),
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
enum BenchCommand {
    /// Open many telnet sessions, hold them at the login prompt, measure latencies.
    Connect(nuggetnet::bench::connect::ConnectArgs),
    /// Run many virtual-modem lines on pseudo-terminals at once and measure their pacing.
    Lines(nuggetnet::bench::lines::LinesArgs),
    /// Place orders from 1, 8 and 32 client processes; report orders/s and latencies.
    Exchange(nuggetnet::bench::exchange::BenchArgs),
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
    match runtime.block_on(run(cli)) {
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
