//! Transports: bytes in and out of a caller, whatever the wire.
//!
//! Owns the listeners (telnet, raw TCP), the per-caller [`Incoming`] description that every
//! transport (TCP here, serial lines and modems in `serial`/`modem`) hands to the node manager,
//! and the connection that turns a byte stream into input events and output bytes (telnet
//! handling, IAC escaping, pacing). Knows nothing of users, menus or the game.

pub mod pace;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::terminal::CharsetSetting;

/// Any byte stream a caller can arrive on: a TCP socket, one end of a `tokio::io::duplex`
/// pipe bridged to a serial port, a PTY.
pub trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Stream for T {}

/// How a caller reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// The telnet listener.
    Telnet,
    /// The raw-TCP listener (FujiNet, WiFi modems, emulators).
    Raw,
    /// A direct serial line (null modem), no AT commands.
    Direct,
    /// A real Hayes modem in answer mode on a serial port.
    Modem,
    /// A serial line on which we emulate a Hayes modem.
    VirtualModem,
    /// The rlogin listener (linked BBSes).
    Rlogin,
}

impl TransportKind {
    /// The lower-case name used in logs, the node table and the call log.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Telnet => "telnet",
            TransportKind::Raw => "raw",
            TransportKind::Direct => "direct",
            TransportKind::Modem => "modem",
            TransportKind::VirtualModem => "virtual-modem",
            TransportKind::Rlogin => "rlogin",
        }
    }
}

/// Whether and how a connection speaks telnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelnetMode {
    /// Negotiate at connect (the telnet listener).
    Negotiate,
    /// Never send a telnet byte first; switch to telnet if the peer's first byte is IAC.
    RawAutodetect,
    /// Pure bytes both ways, never telnet (serial lines, rlogin).
    Never,
}

/// A caller that a transport has connected and now hands to the node manager.
///
/// The call ends when either side closes the stream: the session drops it on logoff, and a
/// line driver closes its end when the carrier is lost, which the session reads as end of file.
pub struct Incoming {
    pub stream: Box<dyn Stream>,
    pub kind: TransportKind,
    /// `IP:port`, a device path, or a caller-ID number.
    pub peer: String,
    /// The address used for per-IP limits, when the caller came over IP.
    pub ip: Option<std::net::IpAddr>,
    pub telnet: TelnetMode,
    /// The listener's or port's charset setting.
    pub charset: CharsetSetting,
    /// The line rate in bits per second (a modem's CONNECT rate, a serial port's speed, or an
    /// emulated rate); output is paced to it. `None` means unpaced.
    pub line_bps: Option<u32>,
    /// Caller ID (name and number) when a modem reported it.
    pub caller_id: Option<String>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("kind", &self.kind)
            .field("peer", &self.peer)
            .field("telnet", &self.telnet)
            .field("charset", &self.charset)
            .field("line_bps", &self.line_bps)
            .field("caller_id", &self.caller_id)
            .finish_non_exhaustive()
    }
}

pub mod connection;
pub mod limit;
pub mod rlogin;
