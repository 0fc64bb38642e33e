//! `nuggetnet bench connect`: many concurrent telnet sessions held at the login prompt.
//!
//! Starts a BBS in a child process (this same binary, `serve`, on a temporary SQLite database
//! and port 0) unless `--addr` names a running one, raises the open-file limit, then:
//! 1. opens `--sessions` telnet sessions (answering TTYPE "ANSI" and NAWS 80x24), presses
//!    RETURN in the lobby and holds each at the login prompt;
//! 2. with all of them held, measures connect-to-lobby-line and RETURN-to-login-prompt
//!    latency over fresh probe sessions, and keystroke-echo latency on held sessions;
//! 3. reports the server's resident memory per held session (child server only).
//!
//! Results are printed as Markdown rows for `BENCHMARKS.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

use super::client::TelnetClient;
use super::Percentiles;

/// Command-line arguments.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Address of a running BBS's telnet listener; without it a BBS is started for the run.
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// How many sessions to open and hold at the login prompt.
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// How many sessions are being opened at any moment.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How many latency samples to take of each kind once the sessions are held.
    #[arg(long, default_value_t = 500)]
    pub samples: usize,
}

/// Why the load could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("the BBS under test did not start: {0}")]
    Start(String),
    #[error("session {index}: {what}")]
    Session { index: usize, what: String },
}

const LOBBY_TEXT: &[u8] = b"press RETURN";
const LOGIN_TEXT: &[u8] = b"Your handle";
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// One telnet session driven by the load tool.
struct Session {
    stream: TcpStream,
    client: TelnetClient,
    /// The tail of the application data received, enough to find the next marker.
    tail: Vec<u8>,
}

impl Session {
    async fn connect(addr: SocketAddr) -> std::io::Result<Session> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Session {
            stream,
            client: TelnetClient::new("ANSI", 80, 24),
            tail: Vec::new(),
        })
    }

    /// Reads (answering negotiation) until `marker` has arrived.
    async fn read_until(&mut self, marker: &[u8]) -> std::io::Result<()> {
        let mut buf = [0u8; 4096];
        let work = async {
            loop {
                if self.tail.windows(marker.len()).any(|w| w == marker) {
                    self.tail.clear();
                    return Ok(());
                }
                let n = self.stream.read(&mut buf).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                let (data, reply) = self.client.process(&buf[..n]);
                if !reply.is_empty() {
                    self.stream.write_all(&reply).await?;
                }
                self.tail.extend_from_slice(&data);
                if self.tail.len() > 4096 {
                    let cut = self.tail.len() - 256;
                    self.tail.drain(..cut);
                }
            }
        };
        tokio::time::timeout(STEP_TIMEOUT, work)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))?
    }

    /// Connects, waits for the lobby line and presses RETURN; then waits for the login
    /// prompt. Returns (connect-to-lobby, RETURN-to-login).
    async fn to_login(addr: SocketAddr) -> std::io::Result<(Session, Duration, Duration)> {
        let start = Instant::now();
        let mut s = Session::connect(addr).await?;
        s.read_until(LOBBY_TEXT).await?;
        let lobby = start.elapsed();
        let pressed = Instant::now();
        s.stream.write_all(b"\r\n").await?;
        s.read_until(LOGIN_TEXT).await?;
        Ok((s, lobby, pressed.elapsed()))
    }

    /// Types one key at the login prompt and waits for its echo, then erases it.
    async fn echo_latency(&mut self) -> std::io::Result<Duration> {
        let start = Instant::now();
        self.stream.write_all(b"x").await?;
        self.read_until(b"x").await?;
        let took = start.elapsed();
        self.stream.write_all(b"\x08").await?;
        self.read_until(b"\x08 \x08").await?;
        Ok(took)
    }
}

/// A BBS started for the run; killed when dropped.
struct ChildServer {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl ChildServer {
    async fn start(sessions: usize) -> Result<ChildServer, BenchError> {
        let dir = tempfile::tempdir()?;
        let room = (sessions + 200).min(crate::config::MAX_NODES as usize);
        let config = format!(
            "[bbs]\nnodes = {room}\nnodes_dir = \"{nodes}\"\n\n\
             [database]\nurl = \"sqlite://{db}\"\n\n\
             [[listener]]\nkind = \"telnet\"\nbind = \"127.0.0.1:0\"\n\n\
             [limits]\nper_ip = {room}\nlobby = {room}\n\n\
             [logging]\nfilter = \"nuggetnet::server=info,warn\"\n",
            nodes = dir.path().join("nodes").display(),
            db = dir.path().join("bench.db").display(),
        );
        let path: PathBuf = dir.path().join("bench.toml");
        std::fs::write(&path, config)?;
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| BenchError::Start("no stderr".into()))?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if line.contains("listening") {
                    if let Some(addr) = line
                        .split("addr=")
                        .nth(1)
                        .and_then(|s| s.split_whitespace().next())
                        .and_then(|s| s.parse::<SocketAddr>().ok())
                    {
                        return Ok::<_, std::io::Error>(Some(addr));
                    }
                }
            }
            Ok(None)
        })
        .await
        .map_err(|_| BenchError::Start("no listening line within 30 s".into()))??
        .ok_or_else(|| BenchError::Start("the server exited".into()))?;
        // Keep draining the log so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ChildServer {
            child,
            addr,
            _dir: dir,
        })
    }

    fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.child.id()?)
    }
}

/// Resident memory of a process in KiB, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Raises this process's open-file limit to its hard limit (children inherit it).
fn raise_nofile() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("warning: cannot raise the open-file limit: {e}");
            0
        }
    }
}

/// Runs the load and prints the report.
pub async fn run(args: ConnectArgs) -> Result<(), BenchError> {
    // Each side (this tool, and the server it starts, which inherits the limit) holds one
    // descriptor per session plus a few of its own.
    let nofile = raise_nofile();
    let needed = args.sessions as u64 + 100;
    if nofile < needed {
        eprintln!(
            "warning: open-file limit {nofile} is below the {needed} this run needs; expect \
             failures"
        );
    }
    let child = match args.addr {
        Some(_) => None,
        None => Some(ChildServer::start(args.sessions).await?),
    };
    let addr = args
        .addr
        .or(child.as_ref().map(|c| c.addr))
        .ok_or_else(|| BenchError::Start("no address".into()))?;
    let rss_before = child.as_ref().and_then(|c| c.rss_kib());

    // Phase 1: open and hold.
    let opening = Instant::now();
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::with_capacity(args.sessions);
    for index in 0..args.sessions {
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            Session::to_login(addr)
                .await
                .map(|(s, _, _)| s)
                .map_err(|e| BenchError::Session {
                    index,
                    what: e.to_string(),
                })
        }));
    }
    let mut held = Vec::with_capacity(args.sessions);
    let mut failures = 0usize;
    for task in tasks {
        match task.await {
            Ok(Ok(session)) => held.push(session),
            Ok(Err(e)) => {
                failures += 1;
                if failures <= 5 {
                    eprintln!("{e}");
                }
            }
            Err(e) => {
                failures += 1;
                eprintln!("session task failed: {e}");
            }
        }
    }
    let open_time = opening.elapsed();
    // Let the server settle before reading its memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_held = child.as_ref().and_then(|c| c.rss_kib());

    // Phase 2: latencies with everything held.
    let mut lobby = Vec::with_capacity(args.samples);
    let mut login = Vec::with_capacity(args.samples);
    for _ in 0..args.samples {
        match Session::to_login(addr).await {
            Ok((s, l, p)) => {
                lobby.push(l);
                login.push(p);
                drop(s);
            }
            Err(e) => {
                failures += 1;
                eprintln!("probe session: {e}");
            }
        }
    }
    let mut echo = Vec::with_capacity(args.samples);
    let count = held.len();
    for i in 0..args.samples.min(count) {
        // Spread the samples over the held sessions.
        let index = i * count / args.samples.min(count).max(1);
        match held[index].echo_latency().await {
            Ok(d) => echo.push(d),
            Err(e) => {
                failures += 1;
                eprintln!("echo on session {index}: {e}");
            }
        }
    }

    let lobby = Percentiles::of(&mut lobby);
    let login = Percentiles::of(&mut login);
    let echo = Percentiles::of(&mut echo);
    println!("## bench connect");
    println!();
    println!(
        "sessions held at the login prompt: {} of {} (failures: {failures}), opened in {:.1} s",
        held.len(),
        args.sessions,
        open_time.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (rss_before, rss_held) {
        let per = (after.saturating_sub(before) as f64) / (held.len().max(1) as f64);
        println!(
            "server RSS: {before} KiB before, {after} KiB with the sessions held: {per:.1} KiB per session"
        );
    }
    println!();
    println!(
        "| latency, {} sessions held | n | p50 | p99 | max |",
        held.len()
    );
    println!("|---|---|---|---|---|");
    for (name, p) in [
        ("connect to lobby line", lobby),
        ("RETURN to login prompt", login),
        ("keystroke echo", echo),
    ] {
        println!(
            "| {name} | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
            p.n,
            ms(p.p50),
            ms(p.p99),
            ms(p.max)
        );
    }
    drop(held);
    drop(child);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
