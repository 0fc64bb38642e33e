//! Shared helpers for end-to-end tests: a server on port 0 with a fresh database, and callers
//! that connect over real sockets and read the screen the way their terminal would show it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use nuggetnet::bench::client::TelnetClient;
use nuggetnet::config::{Config, ListenerConfig, ListenerKind};
use nuggetnet::server::Server;
use nuggetnet::store::testing::{fresh_db, TestDb};
use nuggetnet::terminal::atascii_screen::AtasciiScreen;
use nuggetnet::terminal::cp437;
use nuggetnet::terminal::CharsetSetting;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for text to appear before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// A BBS running in this test process.
pub struct TestServer {
    pub server: Server,
    pub db: TestDb,
    pub dir: tempfile::TempDir,
}

/// Configuration for tests: both listeners on port 0, short waits.
pub fn test_config(dir: &std::path::Path, nodes: u32) -> Config {
    let mut config = Config::default();
    config.bbs.nodes = nodes;
    config.bbs.nodes_dir = dir.join("nodes");
    config.bbs.ansi_dir = dir.join("ansi");
    config.bbs.atascii_dir = dir.join("atascii");
    config.listeners = vec![
        ListenerConfig {
            kind: ListenerKind::Telnet,
            bind: "127.0.0.1:0".parse().unwrap(),
            charset: CharsetSetting::Auto,
            bps: None,
        },
        ListenerConfig {
            kind: ListenerKind::Raw,
            bind: "127.0.0.1:0".parse().unwrap(),
            charset: CharsetSetting::Auto,
            bps: None,
        },
    ];
    config.limits.telnet_wait_ms = 300;
    config.limits.probe_timeout_ms = 300;
    config.limits.login_failure_delay_secs = 0;
    config.limits.shutdown_grace_secs = 5;
    // Tests seed the markets they need; no simulator runs unless a test starts one.
    config.market.run_current = false;
    config
}

impl TestServer {
    /// Starts a BBS with `nodes` nodes on a fresh database.
    pub async fn start(nodes: u32) -> TestServer {
        Self::start_with(nodes, |_| {}).await
    }

    /// Starts a BBS after letting the test adjust the configuration.
    pub async fn start_with(nodes: u32, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let db = fresh_db().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), nodes);
        config.database.url = db.url.clone();
        adjust(&mut config);
        let server = Server::start_with_db(config, db.db.clone()).await.unwrap();
        TestServer { server, db, dir }
    }

    pub fn telnet_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr(ListenerKind::Telnet).unwrap()
    }

    pub fn raw_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr(ListenerKind::Raw).unwrap()
    }

    /// Waits until `n` nodes are in use.
    pub async fn wait_nodes_in_use(&self, n: usize) {
        let until = Instant::now() + WAIT;
        while self.server.nodes().in_use() != n {
            assert!(
                Instant::now() < until,
                "expected {n} nodes in use, have {}",
                self.server.nodes().in_use()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How the test caller's terminal interprets what arrives.
enum Display {
    /// An ANSI terminal: CP437 bytes through a VT emulator.
    Ansi(Box<vt100::Parser>),
    /// An Atari in GRAPHICS 0.
    Atascii(Box<AtasciiScreen>),
}

/// A caller connected over TCP.
pub struct Caller {
    stream: TcpStream,
    display: Display,
    /// Every byte received, before telnet handling.
    pub wire: Vec<u8>,
    /// Application bytes (telnet removed), for byte-level assertions.
    pub data: Vec<u8>,
    telnet: Option<TelnetClient>,
    pub closed: bool,
}

const IAC: u8 = 255;

impl Caller {
    /// A telnet client reporting `ttype` and an 80x24 window, showing an ANSI screen.
    pub async fn telnet(addr: std::net::SocketAddr, ttype: &str) -> Caller {
        let stream = TcpStream::connect(addr).await.unwrap();
        Caller {
            stream,
            display: Display::Ansi(Box::new(vt100::Parser::new(24, 80, 0))),
            wire: Vec::new(),
            data: Vec::new(),
            telnet: Some(TelnetClient::new(ttype, 80, 24)),
            closed: false,
        }
    }

    /// A raw-TCP caller with an ANSI terminal that speaks no telnet.
    pub async fn raw_ansi(addr: std::net::SocketAddr) -> Caller {
        let stream = TcpStream::connect(addr).await.unwrap();
        Caller {
            stream,
            display: Display::Ansi(Box::new(vt100::Parser::new(24, 80, 0))),
            wire: Vec::new(),
            data: Vec::new(),
            telnet: None,
            closed: false,
        }
    }

    /// A raw-TCP Atari (FujiNet, emulator) with a 40x24 ATASCII screen.
    pub async fn atari(addr: std::net::SocketAddr) -> Caller {
        let stream = TcpStream::connect(addr).await.unwrap();
        Caller {
            stream,
            display: Display::Atascii(Box::new(AtasciiScreen::new())),
            wire: Vec::new(),
            data: Vec::new(),
            telnet: None,
            closed: false,
        }
    }

    /// Sends bytes as typed.
    pub async fn send(&mut self, bytes: &[u8]) {
        let mut out = Vec::new();
        for &b in bytes {
            out.push(b);
            if b == IAC && self.telnet.is_some() {
                out.push(IAC);
            }
        }
        let _ = self.stream.write_all(&out).await;
    }

    /// Sends bytes exactly as given (telnet commands included).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Types a line and the RETURN key of this caller's terminal.
    pub async fn line(&mut self, text: &str) {
        let mut bytes = text.as_bytes().to_vec();
        match self.display {
            Display::Atascii(_) => bytes.push(0x9B),
            Display::Ansi(_) if self.telnet.is_some() => bytes.extend_from_slice(b"\r\n"),
            Display::Ansi(_) => bytes.push(b'\r'),
        }
        self.send(&bytes).await;
    }

    /// Reads whatever arrives within `wait`. Returns false once the server has closed.
    pub async fn pump(&mut self, wait: Duration) -> bool {
        if self.closed {
            return false;
        }
        let mut buf = [0u8; 8192];
        match tokio::time::timeout(wait, self.stream.read(&mut buf)).await {
            Err(_) => true,
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.closed = true;
                false
            }
            Ok(Ok(n)) => {
                let bytes = buf[..n].to_vec();
                self.wire.extend_from_slice(&bytes);
                let data = match self.telnet.as_mut() {
                    Some(t) => {
                        let (data, reply) = t.process(&bytes);
                        if !reply.is_empty() {
                            let _ = self.stream.write_all(&reply).await;
                        }
                        data
                    }
                    None => bytes,
                };
                // A plain terminal answers the cursor-position probe like a real one would
                // only if it is ANSI; the Atari screen ignores it.
                self.data.extend_from_slice(&data);
                match &mut self.display {
                    Display::Ansi(parser) => {
                        parser.process(cp437::to_unicode(&data).as_bytes());
                    }
                    Display::Atascii(screen) => screen.feed(&data),
                }
                true
            }
        }
    }

    /// The visible screen, rows joined by newlines.
    pub fn screen(&self) -> String {
        match &self.display {
            Display::Ansi(parser) => parser.screen().contents(),
            Display::Atascii(screen) => screen.contents(),
        }
    }

    /// The ATASCII screen, for cell-level checks.
    pub fn atascii(&self) -> &AtasciiScreen {
        match &self.display {
            Display::Atascii(s) => s,
            Display::Ansi(_) => panic!("not an Atari caller"),
        }
    }

    /// Reads until `text` is on screen (or fails the test after [`WAIT`]).
    pub async fn expect(&mut self, text: &str) {
        let until = Instant::now() + WAIT;
        loop {
            if self.screen().contains(text) {
                return;
            }
            if Instant::now() > until || !self.pump(Duration::from_millis(100)).await {
                if self.screen().contains(text) {
                    return;
                }
                panic!(
                    "expected {text:?} on screen; screen is:\n{}\n(closed: {})",
                    self.screen(),
                    self.closed
                );
            }
        }
    }

    /// Reads until the application data received contains `text` (for text that may have
    /// scrolled off the screen).
    pub async fn expect_data(&mut self, text: &str) {
        let until = Instant::now() + WAIT;
        loop {
            if contains(&self.data, text.as_bytes()) {
                return;
            }
            if Instant::now() > until || !self.pump(Duration::from_millis(100)).await {
                assert!(
                    contains(&self.data, text.as_bytes()),
                    "expected {text:?} in the output; screen is:\n{}",
                    self.screen()
                );
                return;
            }
        }
    }

    /// Reads until the server closes the connection.
    pub async fn expect_closed(&mut self) {
        let until = Instant::now() + WAIT;
        while self.pump(Duration::from_millis(100)).await {
            assert!(
                Instant::now() < until,
                "expected the server to hang up; screen is:\n{}",
                self.screen()
            );
        }
    }

    /// Reads until `text` is on screen or the server hangs up, whichever comes first.
    pub async fn expect_closed_or(&mut self, text: &str) {
        let until = Instant::now() + WAIT;
        while !self.screen().contains(text) && self.pump(Duration::from_millis(100)).await {
            assert!(Instant::now() < until, "neither {text:?} nor a hang-up");
        }
    }

    /// Answers the ANSI probe the way an ANSI terminal would (for raw ANSI callers).
    pub async fn answer_cpr(&mut self, rows: u16, cols: u16) {
        self.send(format!("\x1b[{rows};{cols}R").as_bytes()).await;
    }
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Registers a new user from the login prompt, accepting the detected terminal.
pub async fn register(caller: &mut Caller, handle: &str, password: &str) {
    caller.expect("NEW").await;
    caller.line("NEW").await;
    caller.expect("New handle").await;
    caller.line(handle).await;
    caller.expect("Password").await;
    caller.line(password).await;
    caller.expect("Same again").await;
    caller.line(password).await;
    caller.expect("Keep it?").await;
    caller.line("").await;
    caller.expect("Press any key").await;
    caller.line("").await;
    caller.expect("Main Menu").await;
}

/// Logs in from the login prompt.
pub async fn login(caller: &mut Caller, handle: &str, password: &str) {
    caller.expect("Your handle").await;
    caller.line(handle).await;
    caller.expect("Password").await;
    caller.line(password).await;
    caller.expect("Press any key").await;
    caller.line("").await;
    caller.expect("Main Menu").await;
}

/// Presses RETURN in the lobby.
pub async fn leave_lobby(caller: &mut Caller) {
    caller.expect("press RETURN").await;
    caller.line("").await;
}
