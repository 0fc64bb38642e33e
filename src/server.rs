//! `nuggetnet serve`: the database, the node pool and the listeners, run until a signal.
//!
//! [`Server::start`] binds every listener and spawns one accept loop per listener (the same
//! function for telnet and raw TCP) plus an intake for callers from other transports.
//! Every task is on one [`TaskTracker`] under one root [`CancellationToken`]: shutdown cancels
//! the token, each caller gets a goodbye line, and [`Server::shutdown`] waits for the nodes to
//! finish (up to the configured grace period).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ListenerConfig, ListenerKind};
use crate::node::NodeManager;
use crate::serial::LineRegistry;
use crate::session::{self, art::Art, Context};
use crate::store::{Db, StoreError};
use crate::transport::limit::IpLimiter;
use crate::transport::{Incoming, TelnetMode, TransportKind};

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the database {url}: {error}")]
    Database { url: String, error: StoreError },
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot create folder {path}: {error}")]
    Folder { path: String, error: std::io::Error },
    #[error("cannot install the signal handler: {0}")]
    Signal(std::io::Error),
}

/// A running BBS.
pub struct Server {
    ctx: Arc<Context>,
    lines: LineRegistry,
    tracker: TaskTracker,
    listeners: Vec<(ListenerKind, SocketAddr)>,
    intake: mpsc::Sender<Incoming>,
}

impl Server {
    /// Opens the database (migrating it), binds every listener and starts accepting callers.
    pub async fn start(config: Config) -> Result<Server, ServeError> {
        let db = Db::open(&config.database.url, config.database.max_connections)
            .await
            .map_err(|error| ServeError::Database {
                url: crate::store::redact_url(&config.database.url),
                error,
            })?;
        Server::start_with_db(config, db).await
    }

    /// Like [`Server::start`] with a database that is already open and migrated.
    pub async fn start_with_db(config: Config, db: Db) -> Result<Server, ServeError> {
        let nodes_dir = &config.bbs.nodes_dir;
        std::fs::create_dir_all(nodes_dir).map_err(|error| ServeError::Folder {
            path: nodes_dir.display().to_string(),
            error,
        })?;
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let nodes = NodeManager::new(config.bbs.nodes.min(crate::config::MAX_NODES) as u16);
        let order_writer = if config.database.order_writer {
            start_order_writer(nodes_dir, &db, &tracker, &shutdown).await
        } else {
            None
        };
        let ctx = Arc::new(Context {
            art: Art {
                ansi_dir: config.bbs.ansi_dir.clone(),
                atascii_dir: config.bbs.atascii_dir.clone(),
            },
            lobby: Arc::new(tokio::sync::Semaphore::new(config.limits.lobby as usize)),
            config: Arc::new(config),
            db,
            nodes,
            shutdown: shutdown.clone(),
            door_slots: crate::door::DoorSlots::new(),
            order_writer,
        });
        let limiter = IpLimiter::new(ctx.config.limits.per_ip);

        let mut listeners = Vec::new();
        for listener_config in &ctx.config.listeners {
            let listener = TcpListener::bind(listener_config.bind)
                .await
                .map_err(|error| ServeError::Bind {
                    addr: listener_config.bind,
                    error,
                })?;
            let addr = listener.local_addr().map_err(|error| ServeError::Bind {
                addr: listener_config.bind,
                error,
            })?;
            tracing::info!(kind = listener_config.kind.as_str(), %addr, "listening");
            listeners.push((listener_config.kind, addr));
            tracker.spawn(accept_loop(
                listener,
                listener_config.clone(),
                ctx.clone(),
                limiter.clone(),
                tracker.clone(),
            ));
        }

        // Callers from other transports (serial lines, modems) arrive on this channel.
        let (intake, mut intake_rx) = mpsc::channel::<Incoming>(64);
        {
            let ctx = ctx.clone();
            let calls = tracker.clone();
            tracker.spawn(async move {
                loop {
                    tokio::select! {
                        _ = ctx.shutdown.cancelled() => break,
                        incoming = intake_rx.recv() => match incoming {
                            Some(incoming) => {
                                calls.spawn(session::run_call(ctx.clone(), incoming));
                            }
                            None => break,
                        },
                    }
                }
            });
        }

        // The market simulation of the games `[market] run_games` lists (a lease in the database
        // lets one process at a time tick each game).
        crate::market::spawn_simulators(
            &ctx.config.market,
            &ctx.config.season,
            &ctx.config.database.url,
            &tracker,
            &shutdown,
        );

        // Headlines of the current season flash on every node at a prompt (callers in the
        // NuggetNet door see them from the door itself).
        match crate::market::Market::new(
            crate::exchange::Exchange::new(ctx.db.clone()),
            ctx.config.market.clone(),
        ) {
            Ok(market) => {
                tracker.spawn(relay_news(
                    market,
                    ctx.nodes.clone(),
                    shutdown.child_token(),
                ));
            }
            Err(e) => tracing::warn!(error = %e, "news flashes off"),
        }

        // Deferred work (mail delivery, season reminders and ends) from the job table.
        crate::lifecycle::spawn_runner(&ctx.db, &ctx.config.season, &tracker, &shutdown);

        // Serial lines hand their callers to the same intake.
        let lines = LineRegistry::new();
        if !ctx.config.serial.is_empty() {
            crate::serial::spawn_lines(
                ctx.config.serial.clone(),
                intake.clone(),
                ctx.shutdown.clone(),
                &tracker,
                lines.clone(),
            );
        }

        Ok(Server {
            ctx,
            lines,
            tracker,
            listeners,
            intake,
        })
    }

    /// The bound address of the first listener of a kind (useful with port 0).
    pub fn local_addr(&self, kind: ListenerKind) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
    }

    /// The node pool, for status displays.
    pub fn nodes(&self) -> &NodeManager {
        &self.ctx.nodes
    }

    /// The serial lines and their states.
    pub fn lines(&self) -> &LineRegistry {
        &self.lines
    }

    /// The database handle.
    pub fn db(&self) -> &Db {
        &self.ctx.db
    }

    /// The order writer's socket, if this node manager runs one.
    pub fn order_writer(&self) -> Option<&std::path::Path> {
        self.ctx.order_writer.as_deref()
    }

    /// Where transports other than the TCP listeners hand over their callers.
    pub fn intake(&self) -> mpsc::Sender<Incoming> {
        self.intake.clone()
    }

    /// The root shutdown token.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.ctx.shutdown.clone()
    }

    /// Stops accepting, tells every caller goodbye, and waits for the nodes to finish.
    pub async fn shutdown(self) {
        tracing::info!(nodes_in_use = self.ctx.nodes.in_use(), "shutting down");
        self.ctx.shutdown.cancel();
        self.tracker.close();
        let grace = Duration::from_secs(self.ctx.config.limits.shutdown_grace_secs);
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some calls did not finish within the grace period");
        }
        self.ctx.db.close().await;
        tracing::info!("stopped");
    }
}

/// Runs the BBS until SIGINT or SIGTERM, then shuts down gracefully.
/// Starts the order writer on `exchange.sock` in the nodes folder; returns its socket. A
/// writer that cannot start is logged and left out: doors then trade directly.
async fn start_order_writer(
    nodes_dir: &std::path::Path,
    db: &Db,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Option<std::path::PathBuf> {
    let path = std::path::absolute(nodes_dir.join("exchange.sock")).ok()?;
    match crate::exchange::writer::bind(&path).await {
        Ok(listener) => {
            tracing::info!(socket = %path.display(), "order writer listening");
            let ex = crate::exchange::Exchange::new(db.clone());
            let stop = shutdown.child_token();
            let socket = path.clone();
            tracker.spawn(async move {
                let stats = crate::exchange::writer::serve(ex, listener, stop).await;
                let _ = std::fs::remove_file(&socket);
                tracing::info!(
                    orders = stats.orders,
                    batches = stats.batches,
                    retried = stats.retried,
                    memory_reads = stats.memory_reads,
                    database_reads = stats.database_reads,
                    carried = stats.carried,
                    "order writer stopped"
                );
            });
            Some(path)
        }
        Err(e) => {
            tracing::warn!(socket = %path.display(), error = %e,
                "no order writer; doors trade directly");
            None
        }
    }
}

pub async fn serve(config: Config) -> Result<(), ServeError> {
    let server = Server::start(config).await?;
    wait_for_signal().await?;
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> Result<(), ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    Ok(())
}

/// Accepts callers on one TCP listener until shutdown.
async fn accept_loop(
    listener: TcpListener,
    config: ListenerConfig,
    ctx: Arc<Context>,
    limiter: IpLimiter,
    calls: TaskTracker,
) {
    let (kind, telnet) = match config.kind {
        ListenerKind::Telnet => (TransportKind::Telnet, TelnetMode::Negotiate),
        ListenerKind::Raw => (TransportKind::Raw, TelnetMode::RawAutodetect),
        ListenerKind::Rlogin => (TransportKind::Rlogin, TelnetMode::Never),
    };
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(permit) = limiter.try_acquire(peer.ip()) else {
            tracing::info!(%peer, "refused: too many connections from this address");
            calls.spawn(refuse(stream, "Too many connections from your address."));
            continue;
        };
        let incoming = Incoming {
            stream: Box::new(stream),
            kind,
            peer: peer.to_string(),
            ip: Some(peer.ip()),
            telnet,
            charset: config.charset,
            line_bps: config.bps,
            caller_id: None,
        };
        let ctx = ctx.clone();
        calls.spawn(async move {
            let _permit = permit;
            session::run_call(ctx, incoming).await;
        });
    }
}

/// Tells a refused caller why, in plain text, and closes.
async fn refuse(mut stream: TcpStream, why: &str) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(why.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// How often the node manager looks for new headlines of the current season.
const NEWS_POLL: Duration = Duration::from_millis(100);
/// How often it checks which season is current (more often while there is none).
const SEASON_CHECK: Duration = Duration::from_secs(10);
const SEASON_WAIT: Duration = Duration::from_secs(1);

/// Broadcasts every new headline of the current season to the nodes until `shutdown`.
async fn relay_news(
    market: crate::market::Market,
    nodes: crate::node::NodeManager,
    shutdown: CancellationToken,
) {
    let mut game: Option<i64> = None;
    let mut wire: Option<mpsc::Receiver<crate::market::NewsItem>> = None;
    // At start-up the wire's old news is not news; a season that begins later is followed
    // from its first headline.
    let mut startup = true;
    loop {
        match market.current_game().await {
            Ok(current) if current != game => {
                wire = None;
                game = None;
                if let Some(g) = current {
                    let after = if startup {
                        market
                            .latest_news(g, 1)
                            .await
                            .map(|l| l.first().map_or(0, |n| n.tick))
                    } else {
                        Ok(0)
                    };
                    match after {
                        Ok(after) => {
                            wire = Some(market.follow_news(g, after, NEWS_POLL));
                            game = current;
                            startup = false;
                        }
                        Err(e) => tracing::warn!(error = %e, "news relay: read failed"),
                    }
                } else {
                    startup = false;
                }
            }
            Ok(_) => startup = false,
            Err(e) => tracing::warn!(error = %e, "news relay: no current season"),
        }
        let recheck = tokio::time::sleep(if game.is_some() {
            SEASON_CHECK
        } else {
            SEASON_WAIT
        });
        tokio::pin!(recheck);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = &mut recheck => break,
                Some(item) = next_news(wire.as_mut()) => {
                    nodes.broadcast("NEWS FLASH", &item.headline);
                }
            }
        }
    }
}

/// The next headline, or never without a wire.
async fn next_news(
    wire: Option<&mut mpsc::Receiver<crate::market::NewsItem>>,
) -> Option<crate::market::NewsItem> {
    match wire {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
