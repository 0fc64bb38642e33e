//! Hayes modems as pure state machines: driving a real modem in answer mode, and emulating one.
//!
//! Owns the two Hayes roles of `../shared/specs/hayes.md`: [`answer::AnswerMachine`] (role A,
//! §4: reset, init string, RING, ATA or auto-answer, CONNECT parsing, caller ID, carrier watch,
//! hang-up, watchdog), [`emulator::VirtualModem`] (role B, §6: the AT command set shown to a
//! computer on a null-modem cable), [`direct::DirectLine`] (a line with no AT at all), and the
//! result-code parsing they share ([`result`]).
//!
//! Everything here is pure in the quinn style: a machine is fed events with the current time
//! and returns [`Action`]s; it performs no I/O, reads no clock and spawns nothing. The async
//! driver in `crate::serial` owns the port, the timers and the session stream, and carries out
//! the actions. This module must not know about tokio, ports, users or sessions.

pub mod answer;
pub mod direct;
pub mod emulator;
pub mod result;

use std::time::{Duration, Instant};

/// What a line is doing, as shown in the node table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineState {
    /// The port is being opened.
    Opening,
    /// The modem is being reset and initialised.
    Initialising,
    /// Waiting for a call (a RING, an `ATD` from the attached computer, or a key on a direct
    /// line).
    Idle,
    /// The phone is ringing; `rings` counts the RINGs of this call so far.
    Ringing { rings: u32 },
    /// `ATA` was sent (or the modem auto-answers) and we wait for CONNECT.
    Answering,
    /// A caller is connected at this line rate.
    Connected { bps: u32 },
    /// A virtual-modem caller typed `+++` and the call is held in online-command state.
    Held { bps: u32 },
    /// The call is being ended (DTR drop, `+++`, `ATH0`).
    HangingUp,
    /// Something went wrong; the line will be retried.
    Error { msg: String },
    /// Waiting before the next attempt to open or initialise the line.
    Retrying,
}

impl LineState {
    /// A short lower-case label for logs and the node table, e.g. `connected 2400`.
    pub fn label(&self) -> String {
        match self {
            LineState::Opening => "opening".into(),
            LineState::Initialising => "initialising".into(),
            LineState::Idle => "waiting".into(),
            LineState::Ringing { rings } => format!("ringing ({rings})"),
            LineState::Answering => "answering".into(),
            LineState::Connected { bps } => format!("connected {bps}"),
            LineState::Held { bps } => format!("held {bps}"),
            LineState::HangingUp => "hanging up".into(),
            LineState::Error { msg } => format!("error: {msg}"),
            LineState::Retrying => "retrying".into(),
        }
    }
}

/// Caller ID as reported by a modem between the first and second ring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerId {
    /// `NAME = …`.
    pub name: Option<String>,
    /// `NMBR = …` (`P` = private, `O` = out of area).
    pub number: Option<String>,
    /// `DATE = MMDD`.
    pub date: Option<String>,
    /// `TIME = HHMM`.
    pub time: Option<String>,
}

impl CallerId {
    /// Whether no field was reported.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.number.is_none()
    }

    /// `NAME <NUMBER>`, `NAME`, or `NUMBER`, for the call record; `None` if neither is known.
    pub fn display(&self) -> Option<String> {
        match (&self.name, &self.number) {
            (Some(n), Some(m)) => Some(format!("{n} <{m}>")),
            (Some(n), None) => Some(n.clone()),
            (None, Some(m)) => Some(m.clone()),
            (None, None) => None,
        }
    }
}

/// What a machine asks its driver to do. The driver performs actions in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the serial port (to the modem or to the attached computer).
    Send(Vec<u8>),
    /// Set the port's DTR output. On a modem line this resets or hangs up the modem; on a
    /// virtual-modem line with a null-modem cable it is the attached computer's DCD.
    SetDtr(bool),
    /// A call is connected: create the session stream and hand the caller to the node
    /// manager.
    Connect { bps: u32, caller_id: Option<String> },
    /// Pass these bytes from the line to the session.
    Deliver(Vec<u8>),
    /// Stop passing session output to the line (virtual-modem online-command state).
    Hold,
    /// Resume passing session output to the line.
    Resume,
    /// The call is over: close the session stream so the session reads end of file.
    EndCall,
    /// Show this state in the node table.
    Status(LineState),
}

/// Events every line machine understands, fed by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// The port was opened; start the line.
    Start,
    /// Bytes arrived from the serial port.
    Data(&'a [u8]),
    /// The machine's deadline ([`LineMachine::deadline`]) has passed.
    Timer,
    /// The current level of the carrier-detect input (DCD), polled by the driver on lines that
    /// have one.
    Carrier(bool),
    /// The session closed its end of the stream (logoff, time-out, kick).
    SessionClosed,
}

/// The interface the serial driver uses to run any of the three line machines.
pub trait LineMachine: Send {
    /// Feeds one event; returns what the driver must do, in order.
    fn on_event(&mut self, event: Event<'_>, now: Instant) -> Vec<Action>;
    /// When the driver must next feed [`Event::Timer`], if ever.
    fn deadline(&self) -> Option<Instant>;
}

/// Hayes S12 units (1/50 s) as a duration.
pub(crate) fn fiftieths(units: u8) -> Duration {
    Duration::from_millis(u64::from(units) * 20)
}
