//! The inbox through the real door at 80 columns (ANSI) and 40 columns (ATASCII): the unread
//! count on the status line, reading (which marks read), answering with the line editor,
//! a refused recipient, and deleting. Delivery runs through the job table afterwards.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nuggetnet::exchange::Exchange;
use nuggetnet::inbox::{self, MailKind};
use nuggetnet::jobs::{self, Ran, RunnerConfig};
use nuggetnet::store::players;
use nuggetnet::store::testing::fresh_db;
use nuggetnet::terminal::atascii_screen::AtasciiScreen;
use nuggetnet::terminal::cp437;

const EXE: &str = env!("CARGO_BIN_EXE_nuggetnet");
/// How long a step waits for its text before the test fails.
const WAIT: Duration = Duration::from_secs(20);

fn door32(dir: &Path, comm: &str, extension: Option<&str>) -> PathBuf {
    let mut text = format!(
        "{comm}\r\n38400\r\nSynchronet BBS for Linux Version 3.19\r\n7\r\nGordon Gekko\r\nGekko\r\n\
         50\r\n30\r\n{}\r\n1\r\n",
        if extension.is_some() { 0 } else { 1 }
    );
    if let Some(e) = extension {
        text.push_str(e);
        text.push_str("\r\n");
    }
    let path = dir.join("DOOR32.SYS");
    std::fs::write(&path, text).unwrap();
    path
}

fn config(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("nuggetnet.toml");
    std::fs::write(&path, format!("[database]\nurl = \"{url}\"\n")).unwrap();
    path
}

/// What the caller's terminal shows.
enum Screen {
    Ansi(Box<vt100::Parser>),
    Atari(Box<AtasciiScreen>),
}

impl Screen {
    fn feed(&mut self, bytes: &[u8]) {
        match self {
            Screen::Ansi(p) => p.process(cp437::to_unicode(bytes).as_bytes()),
            Screen::Atari(s) => s.feed(bytes),
        }
    }

    fn text(&self) -> String {
        match self {
            Screen::Ansi(p) => p.screen().contents(),
            Screen::Atari(s) => s.contents(),
        }
    }
}

/// The caller's side of a door: keys in, the screen out.
struct Caller {
    input: Option<Box<dyn Write + Send>>,
    received: Arc<Mutex<Vec<u8>>>,
    seen: usize,
    screen: Screen,
    enter: &'static [u8],
}

impl Caller {
    fn new(input: Box<dyn Write + Send>, mut output: Box<dyn Read + Send>, atari: bool) -> Caller {
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Caller {
            input: Some(input),
            received,
            seen: 0,
            screen: if atari {
                Screen::Atari(Box::default())
            } else {
                Screen::Ansi(Box::new(vt100::Parser::new(24, 80, 0)))
            },
            enter: if atari { b"\x9b" } else { b"\r" },
        }
    }

    fn pump(&mut self) {
        let data = self.received.lock().unwrap()[self.seen..].to_vec();
        self.seen += data.len();
        self.screen.feed(&data);
    }

    /// Waits until the screen shows `text`.
    fn expect(&mut self, text: &str) {
        let start = Instant::now();
        loop {
            self.pump();
            if self.screen.text().contains(text) {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "the screen never showed {text:?}; it shows:\n{}",
                self.screen.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn keys(&mut self, bytes: &[u8]) {
        let input = self.input.as_mut().expect("input open");
        input.write_all(bytes).unwrap();
        input.flush().unwrap();
    }

    fn line(&mut self, text: &str) {
        self.keys(text.as_bytes());
        let enter = self.enter;
        self.keys(enter);
    }
}

fn spawn_stdio(dropfile: &Path, config: &Path) -> Child {
    Command::new(EXE)
        .args(["door", "--dropfile"])
        .arg(dropfile)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap()
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            panic!("the door did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Mail waiting for Gekko: a margin call from the exchange and a note from Bud.
async fn mailbox() -> (nuggetnet::store::testing::TestDb, Exchange, i64) {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    nuggetnet::game::season::current_game(&ex).await.unwrap();
    let system = "Synchronet BBS for Linux";
    let gekko = players::find_or_create(ex.db(), system, "Gekko")
        .await
        .unwrap();
    let bud = players::find_or_create(ex.db(), system, "Bud")
        .await
        .unwrap();
    let now = nuggetnet::store::now_ms();
    inbox::send_system(
        ex.db(),
        gekko.id,
        MailKind::MarginCall,
        "Margin call",
        "Your account is below maintenance. Pay up.",
        "mc-1",
        now - 60_000,
    )
    .await
    .unwrap();
    inbox::send(
        ex.db(),
        &bud,
        "gekko",
        "Bluestar",
        "The union is in. Buy.",
        now,
    )
    .await
    .unwrap();
    drain(&ex, now).await;
    (t, ex, bud.id)
}

async fn drain(ex: &Exchange, now: i64) {
    let handlers = inbox::handlers(ex.db());
    let cfg = RunnerConfig::default();
    while jobs::run_once(ex.db(), &handlers, &cfg, now).await.unwrap() != Ran::Idle {}
}

async fn read_answer_and_delete(atari: bool) {
    let (t, ex, bud) = mailbox().await;
    let dir = tempfile::tempdir().unwrap();
    let ext = atari.then_some("NUGGETNET charset=atascii cols=40 rows=24");
    let drop = door32(dir.path(), "0\r\n0", ext);
    let cfg = config(dir.path(), &t.url);
    let mut child = spawn_stdio(&drop, &cfg);
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut c = Caller::new(Box::new(stdin), Box::new(stdout), atari);
    tokio::task::block_in_place(|| {
        c.expect("Press RETURN");
        c.expect("You have 2 new messages.");
        let enter = c.enter;
        c.keys(enter);
        c.expect("Command:");
        c.expect(if atari { "Mail 2" } else { "Mail 2 new" });
        c.keys(b"i");
        c.expect("Inbox: 2 messages, 2 new");
        c.expect("Bluestar");
        c.keys(b"r");
        c.expect("Which #");
        c.line("1");
        c.expect("The union is in. Buy.");
        c.keys(b"a");
        c.expect("To: Bud");
        c.expect("Re: Bluestar");
        c.line("Buy it all.");
        c.line("Every share.");
        c.line("");
        c.expect("Send to Bud?");
        c.keys(b"y");
        c.expect("Message to Bud sent.");
        c.expect("1 new");
        c.keys(b"w");
        c.expect("To:");
        c.line("Nobody");
        c.expect("Subject:");
        c.line("Hello");
        c.line("Anyone?");
        c.line("");
        c.keys(b"y");
        c.expect("nobody called");
        c.keys(b"d");
        c.expect("Which #");
        c.line("2");
        c.expect("Delete this message?");
        c.keys(b"y");
        c.expect("Message deleted.");
        c.expect("Inbox: 1 messages, 0 new");
        c.keys(b"q");
        c.expect("Command:");
        c.keys(b"g");
        c.expect("miss your money");
        let status = wait_exit(&mut child, WAIT);
        assert!(status.success(), "{status:?}");
    });
    drain(&ex, nuggetnet::store::now_ms()).await;
    let got = inbox::list(ex.db(), bud).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].subject, "Re: Bluestar");
    assert_eq!(got[0].body, "Buy it all.\nEvery share.");
}

#[tokio::test(flavor = "multi_thread")]
async fn inbox_at_80_columns() {
    read_answer_and_delete(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inbox_at_40_columns() {
    read_answer_and_delete(true).await;
}
