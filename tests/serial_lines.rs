//! Serial line drivers on pseudo-terminal pairs: a scripted fake Hayes modem (or a fake
//! terminal program) on the far end, the test itself standing in for the node manager and the
//! session. Modem-control lines, which PTYs lack, come from a mockall mock.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nuggetnet::serial::{
    spawn_lines_with, LineMode, LineRegistry, LineState, ModemLines, NoLines, PortOpener,
    SerialError, SerialIo, SerialPortConfig, WithLines,
};
use nuggetnet::terminal::CharsetSetting;
use nuggetnet::transport::{Incoming, TransportKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_serial::SerialStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mockall::mock! {
    pub Lines {}
    impl ModemLines for Lines {
        fn carrier_detect(&mut self) -> io::Result<bool>;
        fn set_dtr(&mut self, level: bool) -> io::Result<()>;
        fn set_rts(&mut self, level: bool) -> io::Result<()>;
        fn ring_indicator(&mut self) -> io::Result<bool>;
        fn data_set_ready(&mut self) -> io::Result<bool>;
    }
}

/// Hands out prepared ports in order; `None` (or an empty queue) is a failed open.
struct QueueOpener(Mutex<VecDeque<Option<Box<dyn SerialIo + Send>>>>);

impl QueueOpener {
    fn new(ports: Vec<Option<Box<dyn SerialIo + Send>>>) -> Arc<QueueOpener> {
        Arc::new(QueueOpener(Mutex::new(ports.into())))
    }
}

impl PortOpener for QueueOpener {
    fn open(&self, config: &SerialPortConfig) -> Result<Box<dyn SerialIo + Send>, SerialError> {
        match self.0.lock().unwrap().pop_front() {
            Some(Some(port)) => Ok(port),
            _ => Err(SerialError::Open {
                device: config.device.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "no such device"),
            }),
        }
    }
}

/// The far end of a PTY: a fake modem or a fake terminal program.
struct Far {
    port: Box<dyn nuggetnet::transport::Stream>,
    seen: Vec<u8>,
}

impl Far {
    /// Reads until `needle` arrives and consumes everything up to and including it.
    async fn expect(&mut self, needle: &[u8]) {
        self.expect_within(needle, Duration::from_secs(5)).await
    }

    /// [`Far::expect`] with a chosen time limit.
    async fn expect_within(&mut self, needle: &[u8], limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(pos) = self.seen.windows(needle.len()).position(|w| w == needle) {
                self.seen.drain(..pos + needle.len());
                return;
            }
            let mut buf = [0u8; 256];
            match tokio::time::timeout_at(deadline, self.port.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.seen.extend_from_slice(&buf[..n]),
                other => panic!(
                    "waiting for {:?}, saw {:?} ({other:?})",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.port.write_all(bytes).await.unwrap();
    }

    /// Types one byte at a time, as a person at a terminal program would.
    async fn type_bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.port.write_all(std::slice::from_ref(b)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// A PTY pair: the line end (as a raw serial device) and the far end.
fn pty() -> (SerialStream, Far) {
    let (master, slave) = SerialStream::pair().expect("a pseudo-terminal pair");
    (
        slave,
        Far {
            port: Box::new(master),
            seen: Vec::new(),
        },
    )
}

struct Rig {
    intake: mpsc::Receiver<Incoming>,
    registry: LineRegistry,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Rig {
    fn start(ports: Vec<SerialPortConfig>, opener: Arc<dyn PortOpener>) -> Rig {
        let (tx, rx) = mpsc::channel(4);
        let registry = LineRegistry::new();
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        spawn_lines_with(
            ports,
            opener,
            tx,
            shutdown.clone(),
            &tracker,
            registry.clone(),
        );
        Rig {
            intake: rx,
            registry,
            shutdown,
            tracker,
        }
    }

    async fn call(&mut self) -> Incoming {
        timeout(Duration::from_secs(5), self.intake.recv())
            .await
            .expect("a call within 5 s")
            .expect("the intake is open")
    }

    /// Waits until `line` is in a state matching `pred`.
    async fn wait_state(&self, line: &str, pred: impl Fn(&LineState) -> bool) -> LineState {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(s) = self.registry.state(line) {
                if pred(&s) {
                    return s;
                }
            }
            assert!(
                Instant::now() < deadline,
                "line {line} stuck in {:?}",
                self.registry.state(line)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        timeout(Duration::from_secs(5), self.tracker.wait())
            .await
            .expect("lines stop on shutdown");
    }
}

fn modem_config(name: &str) -> SerialPortConfig {
    SerialPortConfig {
        name: name.into(),
        device: format!("/dev/test-{name}").into(),
        mode: LineMode::Modem,
        baud: 38400,
        init: "ATZ^M~ATE0V1X4S0=0".into(),
        rings: 2,
        carrier_detect: Some(false),
        dtr_drop_ms: 20,
        settle_ms: 20,
        command_timeout_ms: 400,
        tilde_ms: 10,
        guard_ms: 60,
        ..SerialPortConfig::default()
    }
}

/// Plays the modem's side of reset and init.
async fn modem_init(far: &mut Far) {
    far.expect(b"AT\r").await;
    far.send(b"AT\r\r\nOK\r\n").await;
    far.expect(b"ATZ\r").await;
    far.send(b"\r\nOK\r\n").await;
    far.expect(b"ATE0V1X4S0=0\r").await;
    far.send(b"\r\nOK\r\n").await;
}

/// On real PTYs the bound is loose, so a busy machine cannot fail the test; the one-second
/// promise itself is checked on the virtual clock below.
const REAL_TIME_EOF: Duration = Duration::from_secs(3);

/// Reads the session stream until end of file; returns what came before it.
async fn read_to_eof(stream: &mut Box<dyn nuggetnet::transport::Stream>) -> Vec<u8> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await.unwrap_or_default();
    all
}

#[tokio::test]
async fn modem_call_with_caller_id_reaches_login_and_ends_on_no_carrier() {
    let (line, mut modem) = pty();
    let opener = QueueOpener::new(vec![Some(Box::new(line))]);
    let mut rig = Rig::start(vec![modem_config("m1")], opener);

    modem_init(&mut modem).await;
    rig.wait_state("m1", |s| *s == LineState::Idle).await;
    modem.send(b"\r\nRING\r\n").await;
    modem
        .send(b"\r\nDATE = 1122\r\nTIME = 0231\r\nNMBR = 5551234\r\nNAME = JOE ATARI\r\n")
        .await;
    rig.wait_state("m1", |s| *s == LineState::Ringing { rings: 1 })
        .await;
    modem.send(b"\r\nRING\r\n").await;
    modem.expect(b"ATA\r").await;
    modem.send(b"\r\nCONNECT 14400/ARQ/V42BIS\r\n").await;

    let mut call = rig.call().await;
    assert_eq!(call.kind, TransportKind::Modem);
    assert_eq!(call.line_bps, Some(14400));
    assert_eq!(call.caller_id.as_deref(), Some("JOE ATARI <5551234>"));
    assert_eq!(
        rig.registry.snapshot()[0].caller_id.as_deref(),
        Some("JOE ATARI <5551234>")
    );
    call.stream.write_all(b"login: ").await.unwrap();
    modem.expect(b"login: ").await;
    modem.send(b"joe\r").await;
    let mut got = [0u8; 4];
    call.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"joe\r");

    // The caller hangs up: the modem says NO CARRIER (this PTY has no DCD).
    let lost = Instant::now();
    modem.send(b"\r\nNO CARRIER\r\n").await;
    let rest = timeout(REAL_TIME_EOF, read_to_eof(&mut call.stream))
        .await
        .expect("the session sees end of file");
    assert!(rest.ends_with(b"NO CARRIER\r\n") || rest.is_empty());
    assert!(lost.elapsed() < REAL_TIME_EOF);

    // Hang-up without DCD to confirm: the escape fallback, then a fresh init.
    modem.expect(b"+++").await;
    modem.expect(b"ATH0\r").await;
    modem.send(b"\r\nOK\r\n").await;
    modem_init(&mut modem).await;
    rig.wait_state("m1", |s| *s == LineState::Idle).await;
    rig.stop().await;
}

/// Mock lines with a DCD level the test controls and a record of DTR changes; dropping DTR
/// drops the carrier, as a modem with `&D2` does.
fn mock_lines(carrier: Arc<AtomicBool>, dtr: Arc<Mutex<Vec<bool>>>) -> MockLines {
    let mut lines = MockLines::new();
    let c = carrier.clone();
    lines
        .expect_carrier_detect()
        .returning(move || Ok(c.load(Ordering::SeqCst)));
    lines.expect_set_dtr().returning(move |level| {
        dtr.lock().unwrap().push(level);
        if !level {
            carrier.store(false, Ordering::SeqCst);
        }
        Ok(())
    });
    lines.expect_set_rts().returning(|_| Ok(()));
    lines.expect_ring_indicator().returning(|| Ok(false));
    lines.expect_data_set_ready().returning(|| Ok(true));
    lines
}

async fn answered_dcd_call(
    name: &str,
) -> (Rig, Far, Incoming, Arc<AtomicBool>, Arc<Mutex<Vec<bool>>>) {
    let (line, mut modem) = pty();
    let carrier = Arc::new(AtomicBool::new(false));
    let dtr = Arc::new(Mutex::new(Vec::new()));
    let port = WithLines::new(line, mock_lines(carrier.clone(), dtr.clone()));
    let opener = QueueOpener::new(vec![Some(Box::new(port))]);
    let config = SerialPortConfig {
        carrier_detect: Some(true),
        rings: 1,
        ..modem_config(name)
    };
    let mut rig = Rig::start(vec![config], opener);
    modem_init(&mut modem).await;
    assert_eq!(dtr.lock().unwrap().first(), Some(&false), "reset drops DTR");
    rig.wait_state(name, |s| *s == LineState::Idle).await;
    modem.send(b"RING\r\n").await;
    modem.expect(b"ATA\r").await;
    carrier.store(true, Ordering::SeqCst);
    modem.send(b"\r\nCONNECT 2400\r\n").await;
    let call = rig.call().await;
    assert_eq!(call.line_bps, Some(2400));
    rig.wait_state(name, |s| *s == LineState::Connected { bps: 2400 })
        .await;
    // Let the driver's DCD poll (every 200 ms) see the carrier up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (rig, modem, call, carrier, dtr)
}

#[tokio::test]
async fn dcd_drop_mid_login_ends_the_session_on_a_pty() {
    let (rig, mut modem, mut call, carrier, dtr) = answered_dcd_call("dcd").await;
    call.stream.write_all(b"Name: ").await.unwrap();
    modem.expect(b"Name: ").await;
    dtr.lock().unwrap().clear();

    let lost = Instant::now();
    carrier.store(false, Ordering::SeqCst);
    timeout(REAL_TIME_EOF, read_to_eof(&mut call.stream))
        .await
        .expect("the session sees end of file");
    assert!(lost.elapsed() < REAL_TIME_EOF);
    // The driver hangs up with DTR; the carrier is gone, so no escape, just a fresh init.
    modem_init(&mut modem).await;
    assert_eq!(dtr.lock().unwrap().first(), Some(&false));
    rig.wait_state("dcd", |s| *s == LineState::Idle).await;
    rig.stop().await;
}

#[tokio::test]
async fn logoff_flushes_goodbye_then_drops_dtr() {
    let (rig, mut modem, mut call, _carrier, dtr) = answered_dcd_call("bye").await;
    dtr.lock().unwrap().clear();
    call.stream.write_all(b"Goodbye!\r\n").await.unwrap();
    drop(call);
    modem.expect(b"Goodbye!\r\n").await;
    rig.wait_state("bye", |s| *s != LineState::Connected { bps: 2400 })
        .await;
    modem_init(&mut modem).await;
    assert_eq!(dtr.lock().unwrap().as_slice()[..2], [false, true]);
    rig.wait_state("bye", |s| *s == LineState::Idle).await;
    rig.stop().await;
}

#[tokio::test]
async fn modem_that_never_answers_at_is_reported_and_retried() {
    let (line, mut modem) = pty();
    let opener = QueueOpener::new(vec![Some(Box::new(line))]);
    let config = SerialPortConfig {
        command_timeout_ms: 60,
        ..modem_config("dead")
    };
    let rig = Rig::start(vec![config], opener);
    for _ in 0..3 {
        modem.expect(b"AT\r").await;
    }
    let state = rig
        .wait_state("dead", |s| matches!(s, LineState::Error { .. }))
        .await;
    assert_eq!(
        state,
        LineState::Error {
            msg: "the modem does not answer AT".into()
        }
    );
    rig.stop().await;
}

fn virtual_config(name: &str, charset: CharsetSetting) -> SerialPortConfig {
    SerialPortConfig {
        name: name.into(),
        device: format!("/dev/test-{name}").into(),
        mode: LineMode::VirtualModem,
        baud: 19200,
        connect_speed: Some(2400),
        answer_delay_ms: 0,
        charset,
        ..SerialPortConfig::default()
    }
}

#[tokio::test]
async fn virtual_modem_as_an_atari_terminal_with_escape_resume_and_hangup() {
    let (line, mut term) = pty();
    let opener = QueueOpener::new(vec![Some(Box::new(WithLines::new(line, NoLines)))]);
    let mut rig = Rig::start(
        vec![virtual_config("atari", CharsetSetting::Atascii)],
        opener,
    );
    rig.wait_state("atari", |s| *s == LineState::Idle).await;

    term.type_bytes(b"ATZ\x9b").await;
    term.expect(b"ATZ\x9bOK\x9b").await;
    // A short guard time (S12 = 5/50 s) keeps the test quick.
    term.type_bytes(b"ATS12=5\x9b").await;
    term.expect(b"OK\x9b").await;
    term.type_bytes(b"ATDT5551234\x9b").await;
    term.expect(b"CONNECT 2400\x9b").await;

    let mut call = rig.call().await;
    assert_eq!(call.kind, TransportKind::VirtualModem);
    assert_eq!(call.charset, CharsetSetting::Atascii);
    assert_eq!(call.line_bps, Some(2400));
    call.stream.write_all(b"WELCOME\x9b").await.unwrap();
    term.expect(b"WELCOME\x9b").await;
    term.type_bytes(b"X").await;
    let mut got = [0u8; 1];
    call.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"X");

    tokio::time::sleep(Duration::from_millis(150)).await;
    term.send(b"+++").await;
    term.expect(b"OK\x9b").await;
    rig.wait_state("atari", |s| matches!(s, LineState::Held { .. }))
        .await;
    // Output from the session waits while the call is held.
    call.stream.write_all(b"HELD").await.unwrap();
    term.type_bytes(b"ATO\x9b").await;
    term.expect(b"CONNECT 2400\x9b").await;
    term.expect(b"HELD").await;

    tokio::time::sleep(Duration::from_millis(150)).await;
    term.send(b"+++").await;
    term.expect(b"OK\x9b").await;
    term.type_bytes(b"ATH\x9b").await;
    term.expect(b"NO CARRIER\x9b").await;
    let rest = timeout(REAL_TIME_EOF, read_to_eof(&mut call.stream))
        .await
        .expect("the session ends on ATH");
    assert!(rest.is_empty(), "escapes never reach the session: {rest:?}");
    rig.wait_state("atari", |s| *s == LineState::Idle).await;
    rig.stop().await;
}

#[tokio::test]
async fn virtual_modem_as_a_pc_terminal_and_session_logoff() {
    let (line, mut term) = pty();
    let opener = QueueOpener::new(vec![Some(Box::new(WithLines::new(line, NoLines)))]);
    let mut rig = Rig::start(vec![virtual_config("pc", CharsetSetting::Auto)], opener);
    rig.wait_state("pc", |s| *s == LineState::Idle).await;

    term.type_bytes(b"AT\r").await;
    term.expect(b"AT\r\r\nOK\r\n").await;
    term.type_bytes(b"ATS0?\r").await;
    term.expect(b"\r\n000\r\n\r\nOK\r\n").await;
    term.type_bytes(b"ATDT bbs.example.com\r").await;
    term.expect(b"\r\nCONNECT 2400\r\n").await;
    let mut call = rig.call().await;
    term.type_bytes(b"\r").await;
    let mut got = [0u8; 1];
    call.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"\r");
    call.stream.write_all(b"Bye.\r\n").await.unwrap();
    drop(call);
    term.expect(b"Bye.\r\n\r\nNO CARRIER\r\n").await;
    term.type_bytes(b"AT\r").await;
    term.expect(b"OK\r\n").await;
    rig.stop().await;
}

#[tokio::test]
async fn direct_line_first_key_starts_a_call_and_the_next_call_waits_for_a_key() {
    let (line, mut term) = pty();
    let opener = QueueOpener::new(vec![Some(Box::new(line))]);
    let config = SerialPortConfig {
        name: "null".into(),
        device: "/dev/test-null".into(),
        mode: LineMode::Direct,
        baud: 9600,
        ..SerialPortConfig::default()
    };
    let mut rig = Rig::start(vec![config], opener);
    rig.wait_state("null", |s| *s == LineState::Idle).await;
    term.send(b"\x9b").await;
    let mut call = rig.call().await;
    assert_eq!(call.kind, TransportKind::Direct);
    assert_eq!(call.line_bps, Some(9600));
    let mut got = [0u8; 1];
    call.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(got, [0x9B]);
    drop(call);
    rig.wait_state("null", |s| *s == LineState::Idle).await;
    term.send(b"\r").await;
    let mut call = rig.call().await;
    call.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"\r");
    drop(call);
    rig.stop().await;
}

#[tokio::test]
async fn failing_port_is_retried_while_other_lines_work_and_unplug_reopens() {
    let (good, mut term) = pty();
    let (flaky, mut flaky_far) = pty();
    let (flaky_again, mut flaky_far_again) = pty();
    let opener_good = QueueOpener::new(vec![Some(Box::new(WithLines::new(good, NoLines)))]);
    // The flaky line fails once, opens, is unplugged, then opens again.
    let opener_flaky = QueueOpener::new(vec![
        None,
        Some(Box::new(WithLines::new(flaky, NoLines))),
        Some(Box::new(WithLines::new(flaky_again, NoLines))),
    ]);
    let mut rig = Rig::start(
        vec![virtual_config("good", CharsetSetting::Auto)],
        opener_good,
    );
    let flaky_config = SerialPortConfig {
        retry_min_secs: 1,
        retry_max_secs: 1,
        ..virtual_config("flaky", CharsetSetting::Auto)
    };
    spawn_lines_with(
        vec![flaky_config],
        opener_flaky,
        mpsc::channel(1).0,
        rig.shutdown.clone(),
        &rig.tracker,
        rig.registry.clone(),
    );

    let state = rig
        .wait_state("flaky", |s| matches!(s, LineState::Error { .. }))
        .await;
    assert!(matches!(state, LineState::Error { msg } if msg.contains("no such device")));
    // The good line answers while the flaky one waits to retry.
    term.type_bytes(b"ATD\r").await;
    term.expect(b"CONNECT 2400").await;
    let call = rig.call().await;
    drop(call);

    rig.wait_state("flaky", |s| *s == LineState::Idle).await;
    flaky_far.type_bytes(b"AT\r").await;
    flaky_far.expect(b"OK\r\n").await;
    drop(flaky_far);
    rig.wait_state("flaky", |s| matches!(s, LineState::Error { .. }))
        .await;
    rig.wait_state("flaky", |s| *s == LineState::Idle).await;
    flaky_far_again.type_bytes(b"AT\r").await;
    flaky_far_again.expect(b"OK\r\n").await;
    rig.stop().await;
}

#[tokio::test]
async fn thirty_two_virtual_modem_lines_carry_calls_at_once() {
    const LINES: usize = 32;
    let mut configs = Vec::new();
    let mut ports: Vec<Option<Box<dyn SerialIo + Send>>> = Vec::new();
    let mut terms = Vec::new();
    for i in 0..LINES {
        let (line, term) = pty();
        configs.push(virtual_config(&format!("v{i}"), CharsetSetting::Auto));
        ports.push(Some(Box::new(WithLines::new(line, NoLines))));
        terms.push(term);
    }
    // Lines open in any order, so each gets its own opener.
    let (tx, mut intake) = mpsc::channel(LINES);
    let registry = LineRegistry::new();
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    for (config, port) in configs.into_iter().zip(ports) {
        spawn_lines_with(
            vec![config],
            QueueOpener::new(vec![port]),
            tx.clone(),
            shutdown.clone(),
            &tracker,
            registry.clone(),
        );
    }
    let payload: Vec<u8> = (0..4096u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut dialers = Vec::new();
    for mut term in terms {
        let payload = payload.clone();
        dialers.push(tokio::spawn(async move {
            term.send(b"ATD\r").await;
            term.expect(b"CONNECT 2400\r\n").await;
            term.send(b"ping\r").await;
            term.expect(&payload).await;
            term
        }));
    }
    let mut sessions = Vec::new();
    for _ in 0..LINES {
        let mut call = timeout(Duration::from_secs(10), intake.recv())
            .await
            .expect("every line connects")
            .expect("intake open");
        let payload = payload.clone();
        sessions.push(tokio::spawn(async move {
            let mut got = [0u8; 5];
            call.stream.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"ping\r");
            call.stream.write_all(&payload).await.unwrap();
            call
        }));
    }
    let mut calls = Vec::new();
    for s in sessions {
        calls.push(timeout(Duration::from_secs(10), s).await.unwrap().unwrap());
    }
    // Keep the callers' ends open: dropping one hangs its line up, and it would leave the
    // connected state before the count below.
    let mut callers = Vec::new();
    for d in dialers {
        callers.push(timeout(Duration::from_secs(10), d).await.unwrap().unwrap());
    }
    // Each driver records its state a moment after the bytes flow; give a loaded machine time.
    let mut connected = 0;
    for _ in 0..100 {
        connected = registry
            .snapshot()
            .iter()
            .filter(|l| l.state == LineState::Connected { bps: 2400 })
            .count();
        if connected == LINES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(connected, LINES);
    drop(callers);
    drop(calls);
    shutdown.cancel();
    tracker.close();
    timeout(Duration::from_secs(5), tracker.wait())
        .await
        .unwrap();
}

/// An in-memory "port" for tests on the virtual clock: PTY bytes cross the kernel, which a
/// paused clock does not wait for, but a duplex pipe is in-process.
fn memory_port<L: ModemLines + Unpin + 'static>(lines: L) -> (Box<dyn SerialIo + Send>, Far) {
    let (ours, theirs) = tokio::io::duplex(4096);
    (
        Box::new(WithLines::new(ours, lines)),
        Far {
            port: Box::new(theirs),
            seen: Vec::new(),
        },
    )
}

/// Plays reset and the default init string.
async fn default_init(far: &mut Far) {
    far.expect(b"AT\r").await;
    far.send(b"\r\nOK\r\n").await;
    far.expect(b"ATZ\r").await;
    far.send(b"\r\nOK\r\n").await;
    far.expect(b"AT E0 V1 Q0 X4 &C1 &D2 S0=0\r").await;
    far.send(b"\r\nOK\r\n").await;
}

fn default_modem(name: &str) -> SerialPortConfig {
    SerialPortConfig {
        name: name.into(),
        device: format!("/dev/test-{name}").into(),
        mode: LineMode::Modem,
        baud: 38400,
        ..SerialPortConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn carrier_loss_ends_session_within_one_virtual_second_at_default_timings() {
    let carrier = Arc::new(AtomicBool::new(false));
    let dtr = Arc::new(Mutex::new(Vec::new()));
    let (port, mut modem) = memory_port(mock_lines(carrier.clone(), dtr.clone()));
    let mut rig = Rig::start(
        vec![default_modem("vc")],
        QueueOpener::new(vec![Some(port)]),
    );
    default_init(&mut modem).await;
    rig.wait_state("vc", |s| *s == LineState::Idle).await;
    modem.send(b"\r\nRING\r\n").await;
    modem.expect(b"ATA\r").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    carrier.store(true, Ordering::SeqCst);
    modem.send(b"\r\nCONNECT 1200\r\n").await;
    let mut call = rig.call().await;
    assert_eq!(call.line_bps, Some(1200));
    tokio::time::sleep(Duration::from_secs(3)).await;
    call.stream.write_all(b"Password: ").await.unwrap();
    modem.expect(b"Password: ").await;

    let lost = Instant::now();
    carrier.store(false, Ordering::SeqCst);
    read_to_eof(&mut call.stream).await;
    assert!(
        lost.elapsed() < Duration::from_secs(1),
        "session ended {:?} after the carrier dropped",
        lost.elapsed()
    );
    rig.wait_state("vc", |s| *s == LineState::HangingUp).await;
    default_init(&mut modem).await;
    rig.wait_state("vc", |s| *s == LineState::Idle).await;
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn watchdog_resets_a_modem_that_goes_silent_after_five_minutes() {
    let carrier = Arc::new(AtomicBool::new(false));
    let dtr = Arc::new(Mutex::new(Vec::new()));
    let (port, mut modem) = memory_port(mock_lines(carrier, dtr.clone()));
    let rig = Rig::start(
        vec![default_modem("wd")],
        QueueOpener::new(vec![Some(port)]),
    );
    default_init(&mut modem).await;
    rig.wait_state("wd", |s| *s == LineState::Idle).await;
    let idle_since = Instant::now();
    dtr.lock().unwrap().clear();

    // The first probe comes after the watchdog interval; this one is answered.
    modem.expect_within(b"AT\r", Duration::from_secs(400)).await;
    assert!(
        idle_since.elapsed() >= Duration::from_secs(299),
        "{:?} {:?}",
        idle_since.elapsed(),
        rig.registry.snapshot()
    );
    modem.send(b"\r\nOK\r\n").await;
    // The next one is not: the modem is reset (DTR dropped) and initialised again.
    modem.expect_within(b"AT\r", Duration::from_secs(400)).await;
    let probed = Instant::now();
    assert!(dtr.lock().unwrap().is_empty());
    modem.expect_within(b"AT\r", Duration::from_secs(20)).await;
    assert!(
        probed.elapsed() >= Duration::from_secs(5),
        "the probe had its time"
    );
    assert_eq!(dtr.lock().unwrap().first(), Some(&false));
    modem.send(b"\r\nOK\r\n").await;
    modem.expect(b"ATZ\r").await;
    modem.send(b"\r\nOK\r\n").await;
    modem.expect(b"AT E0 V1 Q0 X4 &C1 &D2 S0=0\r").await;
    modem.send(b"\r\nOK\r\n").await;
    rig.wait_state("wd", |s| *s == LineState::Idle).await;
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn session_that_ends_while_the_call_is_held_gives_no_carrier() {
    let (port, mut term) = memory_port(NoLines);
    let config = SerialPortConfig {
        answer_delay_ms: 2000,
        ..virtual_config("hold", CharsetSetting::Auto)
    };
    let mut rig = Rig::start(vec![config], QueueOpener::new(vec![Some(port)]));
    rig.wait_state("hold", |s| *s == LineState::Idle).await;
    term.type_bytes(b"ATE0DT1\r").await;
    term.expect(b"\r\nCONNECT 2400\r\n").await;
    let call = rig.call().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    term.send(b"+++").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    term.expect(b"\r\nOK\r\n").await;
    // The node kicks the caller while the call is held.
    drop(call);
    term.expect(b"\r\nNO CARRIER\r\n").await;
    rig.wait_state("hold", |s| *s == LineState::Idle).await;
    rig.stop().await;
}
