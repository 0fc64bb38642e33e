//! The door test harness shared by `game_door.rs` and `inbox_door.rs`: a DOOR32.SYS, a config
//! file, the real `nuggetnet door` process on stdio, and a caller that reads the screen the way
//! its terminal would (ANSI through `vt100`, ATASCII through `AtasciiScreen`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nuggetnet::terminal::atascii_screen::AtasciiScreen;
use nuggetnet::terminal::cp437;

pub const EXE: &str = env!("CARGO_BIN_EXE_nuggetnet");
/// How long a step waits for its text before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A DOOR32.SYS as Synchronet writes it for a stdio door, with our extension line if given.
pub fn door32(dir: &Path, comm: &str, extension: Option<&str>) -> PathBuf {
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

pub fn config(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("nuggetnet.toml");
    std::fs::write(&path, format!("[database]\nurl = \"{url}\"\n")).unwrap();
    path
}

/// What the caller's terminal shows.
pub enum Screen {
    Ansi(Box<vt100::Parser>),
    Atari(Box<AtasciiScreen>),
}

impl Screen {
    pub fn feed(&mut self, bytes: &[u8]) {
        match self {
            Screen::Ansi(p) => p.process(cp437::to_unicode(bytes).as_bytes()),
            Screen::Atari(s) => s.feed(bytes),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Screen::Ansi(p) => p.screen().contents(),
            Screen::Atari(s) => s.contents(),
        }
    }
}

/// The caller's side of a door: keys in, the screen out.
pub struct Caller {
    input: Option<Box<dyn Write + Send>>,
    /// Every byte the door has written so far.
    pub received: Arc<Mutex<Vec<u8>>>,
    seen: usize,
    screen: Screen,
    /// The caller's RETURN key: CR, or 0x9B on an Atari.
    pub enter: &'static [u8],
}

impl Caller {
    pub fn new(
        input: Box<dyn Write + Send>,
        mut output: Box<dyn Read + Send>,
        atari: bool,
    ) -> Caller {
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

    pub fn pump(&mut self) {
        let data = self.received.lock().unwrap()[self.seen..].to_vec();
        self.seen += data.len();
        self.screen.feed(&data);
    }

    /// Waits until the screen shows `text`.
    pub fn expect(&mut self, text: &str) {
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

    /// Waits until a row starting with `prefix` ends with `suffix`.
    pub fn expect_row(&mut self, prefix: &str, suffix: &str) {
        let start = Instant::now();
        loop {
            self.pump();
            let text = self.screen.text();
            if text
                .lines()
                .any(|l| l.starts_with(prefix) && l.trim_end().ends_with(suffix))
            {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "no row {prefix}...{suffix}; the screen shows:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn keys(&mut self, bytes: &[u8]) {
        let input = self.input.as_mut().expect("input open");
        input.write_all(bytes).unwrap();
        input.flush().unwrap();
    }

    pub fn line(&mut self, text: &str) {
        self.keys(text.as_bytes());
        let enter = self.enter;
        self.keys(enter);
    }

    pub fn hang_up(&mut self) {
        self.input = None;
    }
}

pub fn spawn_stdio(dropfile: &Path, config: &Path) -> Child {
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

pub fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
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
