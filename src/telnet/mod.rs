//! The server side of the telnet protocol as a pure codec: bytes in, [`TelnetEvent`]s out;
//! application bytes in, escaped bytes out.
//!
//! Follows RFC 854 (NVT, commands, CR LF / CR NUL), RFC 855 (option negotiation), RFC 1143 (the
//! Q method, in [`q`]), RFC 856 (BINARY), RFC 857 (ECHO), RFC 858 (SGA), RFC 1091 (TTYPE),
//! RFC 1073 (NAWS), RFC 1079 (TSPEED) and RFC 1572 (NEW-ENVIRON), as summarised for a BBS in
//! `shared/specs/telnet.md`.
//!
//! [`TelnetCodec`] is a `tokio_util` [`Decoder`](tokio_util::codec::Decoder) and
//! [`Encoder`](tokio_util::codec::Encoder), so the transport puts it under a `Framed` over TCP or
//! `tokio::io::duplex`. Whatever the codec wants written to the peer (negotiation replies,
//! subnegotiation requests) comes out of the decoder as [`TelnetEvent::Send`]; the driver writes
//! those bytes unmodified.
//!
//! **Invariant:** no I/O, no clock, no runtime: the codec is a deterministic byte-at-a-time state
//! machine, so a command split across reads at any byte decodes the same as when whole.
//!
//! **Invariant:** memory and replies are bounded whatever the peer sends: a subnegotiation payload
//! keeps at most [`SB_MAX`] bytes, the terminal-type walk at most [`TTYPE_MAX`] names, and the peer
//! can make us answer at most [`PEER_REPLY_BUDGET`] times per option and side.
//!
//! **Invariant:** in raw mode nothing is parsed, escaped or sent; not even one byte.

mod codec;
pub mod q;

pub use codec::TelnetCodec;

/// Telnet command bytes (RFC 854 and the BSD extensions).
pub mod cmd {
    /// Interpret As Command; doubled in data to mean one literal 0xFF.
    pub const IAC: u8 = 255;
    /// The sender wants the receiver not to use an option.
    pub const DONT: u8 = 254;
    /// The sender wants the receiver to use an option.
    pub const DO: u8 = 253;
    /// The sender refuses or stops using an option.
    pub const WONT: u8 = 252;
    /// The sender wants to use or agrees to use an option.
    pub const WILL: u8 = 251;
    /// Start of subnegotiation.
    pub const SB: u8 = 250;
    /// Go Ahead.
    pub const GA: u8 = 249;
    /// Erase Line.
    pub const EL: u8 = 248;
    /// Erase Character.
    pub const EC: u8 = 247;
    /// Are You There.
    pub const AYT: u8 = 246;
    /// Abort Output.
    pub const AO: u8 = 245;
    /// Interrupt Process.
    pub const IP: u8 = 244;
    /// Break.
    pub const BRK: u8 = 243;
    /// Data Mark (the data stream part of a Synch).
    pub const DM: u8 = 242;
    /// No operation.
    pub const NOP: u8 = 241;
    /// End of subnegotiation.
    pub const SE: u8 = 240;
    /// End of record (RFC 885).
    pub const EOR: u8 = 239;
    /// BSD: abort.
    pub const ABORT: u8 = 238;
    /// BSD: suspend.
    pub const SUSP: u8 = 237;
    /// BSD: end of file.
    pub const EOF: u8 = 236;
}

/// Telnet option numbers this codec names.
pub mod opt {
    /// TRANSMIT-BINARY (RFC 856).
    pub const BINARY: u8 = 0;
    /// ECHO (RFC 857).
    pub const ECHO: u8 = 1;
    /// Suppress Go Ahead (RFC 858).
    pub const SGA: u8 = 3;
    /// STATUS (RFC 859).
    pub const STATUS: u8 = 5;
    /// TIMING-MARK (RFC 860).
    pub const TIMING_MARK: u8 = 6;
    /// SEND-LOCATION (RFC 779).
    pub const SEND_LOCATION: u8 = 23;
    /// Terminal type (RFC 1091).
    pub const TTYPE: u8 = 24;
    /// Negotiate About Window Size (RFC 1073).
    pub const NAWS: u8 = 31;
    /// Terminal speed (RFC 1079).
    pub const TSPEED: u8 = 32;
    /// Remote flow control (RFC 1372).
    pub const LFLOW: u8 = 33;
    /// LINEMODE (RFC 1184).
    pub const LINEMODE: u8 = 34;
    /// The old ENVIRON option (RFC 1408).
    pub const ENVIRON: u8 = 36;
    /// NEW-ENVIRON (RFC 1572).
    pub const NEW_ENVIRON: u8 = 39;
    /// Extended options list (RFC 861).
    pub const EXOPL: u8 = 255;
}

/// The most payload bytes one subnegotiation keeps; the excess is discarded and the whole
/// subnegotiation is dropped when `IAC SE` finally arrives.
pub const SB_MAX: usize = 512;

/// The most terminal-type names collected by the TTYPE walk.
pub const TTYPE_MAX: usize = 8;

/// How many times the peer can make us answer a negotiation for one side of one option. Past it
/// the option is treated as refused and nothing more is sent for it, which bounds what a
/// misbehaving or looping peer can get out of us.
pub const PEER_REPLY_BUDGET: u8 = 16;

/// The largest window dimension [`TelnetEvent::WindowSize`] reports; anything above counts as
/// unknown, like 0.
pub const NAWS_MAX: u16 = 999;

/// What the decoder found in the peer's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TelnetEvent {
    /// Application bytes, with `IAC IAC` unescaped. While the peer is not in BINARY, `CR LF` and
    /// `CR NUL` become a single CR, even when split across reads.
    Data(bytes::Bytes),
    /// Protocol bytes the driver must write to the peer now, unmodified.
    Send(bytes::Bytes),
    /// The window size from NAWS, at connect and on every change. A dimension that is 0 or above
    /// [`NAWS_MAX`] is unknown and keeps its last known value; nothing is emitted until both are
    /// known, nor when the size has not changed.
    WindowSize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// The peer's terminal types in its order of preference, emitted once after the TTYPE walk
    /// ends: when a name repeats (case-insensitively), an empty name arrives, [`TTYPE_MAX`] names
    /// are known, or the peer withdraws TTYPE. Names are trimmed; their case is kept.
    TerminalTypes(Vec<String>),
    /// NEW-ENVIRON variables from an IS or INFO reply, ESC-unescaped, in the order received; a
    /// variable without a value has an empty one.
    Environment(Vec<(String, String)>),
    /// The peer's TSPEED reply: transmit and receive rates in bits per second.
    TerminalSpeed {
        /// Transmit speed.
        tx: u32,
        /// Receive speed.
        rx: u32,
    },
    /// A two-byte command the session may act on: AYT, IP, BRK, AO, EC or EL. NOP, DM, GA and the
    /// rest are swallowed by the codec.
    Command(u8),
    /// A raw-autodetect connection switched to telnet because the peer's first byte was IAC.
    /// Always the first event of such a connection.
    TelnetDetected,
}

/// Errors of the telnet layer. Protocol mistakes by the peer are never errors: they are resolved
/// the way the RFCs suggest and decoding goes on.
#[derive(Debug, thiserror::Error)]
pub enum TelnetError {
    /// The underlying stream failed.
    #[error("telnet i/o: {0}")]
    Io(#[from] std::io::Error),
}
