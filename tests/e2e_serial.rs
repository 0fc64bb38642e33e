//! End-to-end over a pseudo-terminal: an Atari terminal program on a serial line dials the
//! BBS's virtual modem, gets CONNECT, registers in ATASCII at 40 columns, logs off and hears
//! NO CARRIER. The server runs with a `[[serial]]` line on the PTY's device path, exactly as a
//! sysop would configure a USB-serial adapter.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, WAIT};
use nuggetnet::serial::SerialPortConfig;
use nuggetnet::terminal::atascii_screen::AtasciiScreen;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{SerialPort, SerialStream};

const EOL: u8 = 0x9B;

/// The Atari end of the line.
struct Atari {
    port: SerialStream,
    screen: AtasciiScreen,
    wire: Vec<u8>,
}

impl Atari {
    async fn pump(&mut self, wait: Duration) {
        let mut buf = [0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(wait, self.port.read(&mut buf)).await {
            self.wire.extend_from_slice(&buf[..n]);
            self.screen.feed(&buf[..n]);
        }
    }

    async fn expect(&mut self, text: &str) {
        let until = Instant::now() + WAIT;
        while !self.screen.contents().contains(text) {
            assert!(
                Instant::now() < until,
                "expected {text:?}; the Atari shows:\n{}",
                self.screen.contents()
            );
            self.pump(Duration::from_millis(100)).await;
        }
    }

    async fn line(&mut self, text: &str) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(EOL);
        // A terminal program sends what is typed a key at a time.
        for b in bytes {
            self.port.write_all(&[b]).await.unwrap();
        }
    }
}

#[tokio::test]
async fn atari_dials_the_virtual_modem_registers_and_hears_no_carrier() {
    let (master, slave) = SerialStream::pair().expect("a pseudo-terminal pair");
    let device = slave.name().expect("the PTY has a device path");
    let mut line: SerialPortConfig = toml::from_str(&format!(
        "device = \"{device}\"\nmode = \"virtual-modem\"\nbaud = 19200\nanswer_delay_ms = 100\n"
    ))
    .unwrap();
    line.name = "atari".into();
    let t = TestServer::start_with(2, |c| c.serial = vec![line]).await;

    let mut atari = Atari {
        port: master,
        screen: AtasciiScreen::new(),
        wire: Vec::new(),
    };
    // Wait for the line to be open, then dial as an Atari terminal program does.
    let until = Instant::now() + WAIT;
    loop {
        atari.port.write_all(b"AT\x9b").await.unwrap();
        atari.pump(Duration::from_millis(300)).await;
        if atari.screen.contents().contains("OK") {
            break;
        }
        assert!(Instant::now() < until, "the virtual modem never said OK");
    }
    drop(slave);
    atari.line("ATDT5551987").await;
    atari.expect("CONNECT 19200").await;
    atari.expect("press RETURN").await;
    atari.line("").await;
    atari.expect("Your handle").await;
    t.wait_nodes_in_use(1).await;
    let node = t.server.nodes().snapshot().remove(0);
    assert_eq!(node.transport.as_str(), "virtual-modem");
    assert_eq!(node.line_bps, Some(19200));
    assert_eq!(node.caps.width, 40);

    atari.line("NEW").await;
    atari.expect("New handle").await;
    atari.line("Serial Sam").await;
    atari.expect("Password").await;
    atari.line("850interface").await;
    atari.expect("Same again").await;
    atari.line("850interface").await;
    atari.expect("Keep it?").await;
    atari.line("").await;
    atari.expect("Press any key").await;
    atari.line("").await;
    atari.expect("Main Menu").await;
    atari.port.write_all(b"G").await.unwrap();
    atari.expect("Log off now?").await;
    atari.line("Y").await;
    atari.expect("NO CARRIER").await;
    t.wait_nodes_in_use(0).await;

    // Everything the Atari received, modem talk included, was ATASCII.
    assert!(!atari.wire.contains(&b'\r'), "no CR to an Atari");
    assert!(!atari.wire.contains(&b'\n'), "no LF to an Atari");
    assert!(
        !common::contains(&atari.wire, b"\x1b["),
        "no ANSI sequences"
    );
    let user = nuggetnet::store::users::find_by_handle(t.server.db(), "Serial Sam")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.charset.as_str(), "atascii");
}
