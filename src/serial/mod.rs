//! Serial lines: ports from `[[serial]]`, opened with tokio-serial, each driving a modem, a
//! virtual modem or a direct line, and handing connected callers to the node manager.
//!
//! Owns the port configuration ([`SerialPortConfig`]), the modem-control-line abstraction
//! ([`ModemLines`], [`SerialIo`]), the live line table ([`LineRegistry`]) and one async task per
//! line ([`spawn_lines`]) that opens the port, retries with capped exponential back-off when it
//! cannot be opened or disappears, and runs the pure machines of `crate::modem` (which follow
//! `../shared/specs/hayes.md`). Every call becomes a [`crate::transport::Incoming`] whose
//! stream is one end of a `tokio::io::duplex` pipe; the call ends when either side closes it.
//!
//! This module must not know about users, menus or screens, and one line's trouble (a port
//! that fails, a modem that does not answer, a slow caller) must never affect another line.

pub mod config;
mod driver;
pub mod lines;
pub mod registry;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::config::{
    FlowControl, HangupMethod, LineMode, Parity, SerialConfigError, SerialPortConfig,
};
pub use self::driver::{PortOpener, TokioSerialOpener};
pub use self::lines::{ModemLines, NoLines, SerialIo, WithLines};
pub use self::registry::{LineRegistry, LineStatus};
pub use crate::modem::LineState;
use crate::transport::Incoming;

/// Why a serial line is not working right now. The line is retried; these are logged and shown
/// in the node table, never fatal.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// The device could not be opened (missing, busy, no permission).
    #[error("cannot open {}: {source}", device.display())]
    Open {
        device: PathBuf,
        source: std::io::Error,
    },
    /// The port failed or vanished while open (USB adapter unplugged, PTY closed).
    #[error("serial port {} failed: {source}", device.display())]
    Io {
        device: PathBuf,
        source: std::io::Error,
    },
}

/// Starts one task per configured line on `tracker`, opening real devices with tokio-serial.
/// Connected callers are sent on `intake`; every line stops when `shutdown` is cancelled (a call
/// in progress gets up to ten seconds to finish). `status` shows each line's state.
pub fn spawn_lines(
    ports: Vec<SerialPortConfig>,
    intake: mpsc::Sender<Incoming>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
    status: LineRegistry,
) {
    spawn_lines_with(
        ports,
        Arc::new(TokioSerialOpener),
        intake,
        shutdown,
        tracker,
        status,
    );
}

/// [`spawn_lines`] with a chosen way of opening ports (tests hand out PTYs).
pub fn spawn_lines_with(
    ports: Vec<SerialPortConfig>,
    opener: Arc<dyn PortOpener>,
    intake: mpsc::Sender<Incoming>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
    status: LineRegistry,
) {
    for config in ports {
        let ctx = driver::LineContext {
            opener: opener.clone(),
            intake: intake.clone(),
            shutdown: shutdown.clone(),
            registry: status.clone(),
        };
        tracker.spawn(driver::run_line(config, ctx));
    }
}
