//! [`TelnetCodec`]: the byte-at-a-time telnet state machine behind a `tokio_util` codec.
//!
//! The decoder compacts application bytes in place inside the read buffer and splits them off as
//! one [`TelnetEvent::Data`] per run, so data costs no allocation per byte. Replies the protocol
//! needs are gathered in an output buffer and handed out as [`TelnetEvent::Send`].

use std::collections::VecDeque;
use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::cmd::{AO, AYT, BRK, DO, DONT, EC, EL, IAC, IP, SB, SE, WILL, WONT};
use super::opt::{BINARY, ECHO, NAWS, NEW_ENVIRON, SGA, TSPEED, TTYPE};
use super::q::{QState, Reply};
use super::{TelnetError, TelnetEvent, NAWS_MAX, PEER_REPLY_BUDGET, SB_MAX, TTYPE_MAX};

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const NUL: u8 = 0;

/// Subnegotiation verbs shared by TTYPE, TSPEED and NEW-ENVIRON.
const SB_IS: u8 = 0;
const SB_SEND: u8 = 1;
const SB_INFO: u8 = 2;

/// NEW-ENVIRON type codes (RFC 1572).
const ENV_VAR: u8 = 0;
const ENV_VALUE: u8 = 1;
const ENV_ESC: u8 = 2;
const ENV_USERVAR: u8 = 3;

/// The variables we ask for when the peer agrees to NEW-ENVIRON: USER is a well-known VAR, the
/// rest are USERVARs.
const ENVIRON_REQUEST: &[u8] = b"\xff\xfa\x27\x01\x00USER\x03TERM\x03COLUMNS\x03ROWS\xff\xf0";

/// Replies gathered while decoding are handed out once they reach this size, so one huge read
/// never builds one huge reply.
const OUT_FLUSH: usize = 1024;

/// Which side of an option a request is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// Our side: we send WILL/WONT.
    Us,
    /// The peer's side: we send DO/DONT.
    Him,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Bytes pass through untouched, for good.
    Raw,
    /// Raw until the first byte arrives; telnet if that byte is IAC.
    Detect,
    /// Full telnet.
    Telnet,
}

/// Where the parser is inside the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parse {
    Data,
    /// After an IAC in data.
    Iac,
    /// After `IAC WILL|WONT|DO|DONT`, waiting for the option byte.
    Negotiate(u8),
    /// After `IAC SB`, waiting for the option byte.
    SbOption,
    /// Inside a subnegotiation payload.
    Sb,
    /// After an IAC inside a subnegotiation payload.
    SbIac,
}

/// Progress of the terminal-type walk (RFC 1091: repeated SENDs until the list repeats).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Walk {
    NotStarted,
    Asked,
    Done,
}

/// What one input byte amounted to.
enum Step {
    Nothing,
    Data(u8),
    Event(TelnetEvent),
}

/// The telnet protocol state of one connection; see the [module docs](super).
pub struct TelnetCodec {
    mode: Mode,
    parse: Parse,
    us: [QState; 256],
    him: [QState; 256],
    /// Replies the peer has drawn from us, per option, for each side.
    us_replies: [u8; 256],
    him_replies: [u8; 256],
    /// The last application byte delivered was a CR outside BINARY: swallow a following LF or NUL.
    cr_pending: bool,
    sb_option: u8,
    sb_buf: Vec<u8>,
    sb_overflow: bool,
    walk: Walk,
    terminal_types: Vec<String>,
    environ_asked: bool,
    tspeed_asked: bool,
    cols: Option<u16>,
    rows: Option<u16>,
    last_size: Option<(u16, u16)>,
    out: BytesMut,
    pending: VecDeque<TelnetEvent>,
}

impl fmt::Debug for TelnetCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelnetCodec")
            .field("mode", &self.mode)
            .field("parse", &self.parse)
            .field("walk", &self.walk)
            .field("window", &self.last_size)
            .finish_non_exhaustive()
    }
}

impl TelnetCodec {
    fn new(mode: Mode) -> Self {
        TelnetCodec {
            mode,
            parse: Parse::Data,
            us: [QState::No; 256],
            him: [QState::No; 256],
            us_replies: [0; 256],
            him_replies: [0; 256],
            cr_pending: false,
            sb_option: 0,
            sb_buf: Vec::new(),
            sb_overflow: false,
            walk: Walk::NotStarted,
            terminal_types: Vec::new(),
            environ_asked: false,
            tspeed_asked: false,
            cols: None,
            rows: None,
            last_size: None,
            out: BytesMut::new(),
            pending: VecDeque::new(),
        }
    }

    /// Full telnet from the first byte (the telnet listener).
    pub fn telnet() -> Self {
        Self::new(Mode::Telnet)
    }

    /// Raw TCP: bytes pass through untouched and nothing is ever sent, unless the very first byte
    /// from the peer is IAC; then the connection is telnet from that byte on, announced by
    /// [`TelnetEvent::TelnetDetected`]. The driver may then call [`start_negotiation`].
    ///
    /// [`start_negotiation`]: TelnetCodec::start_negotiation
    pub fn raw_autodetect() -> Self {
        Self::new(Mode::Detect)
    }

    /// Whether the connection speaks telnet now.
    pub fn is_telnet(&self) -> bool {
        self.mode == Mode::Telnet
    }

    /// The server's opening requests, to write at connect: WILL ECHO, WILL SGA, DO SGA,
    /// WILL BINARY, DO BINARY, DO TTYPE, DO NAWS, DO NEW-ENVIRON. Options already on or already
    /// requested are skipped, so a second call returns nothing. Empty unless in telnet mode.
    pub fn start_negotiation(&mut self) -> Bytes {
        const OPENING: [(Side, u8); 8] = [
            (Side::Us, ECHO),
            (Side::Us, SGA),
            (Side::Him, SGA),
            (Side::Us, BINARY),
            (Side::Him, BINARY),
            (Side::Him, TTYPE),
            (Side::Him, NAWS),
            (Side::Him, NEW_ENVIRON),
        ];
        let mut out = BytesMut::new();
        if self.is_telnet() {
            for (side, opt) in OPENING {
                self.ask(side, opt, true, &mut out);
            }
        }
        out.freeze()
    }

    /// Asks to turn one of our options on (WILL), for example BINARY before a file transfer.
    /// Returns the bytes to write, empty if nothing needs sending or not in telnet mode.
    pub fn enable_local(&mut self, opt: u8) -> Bytes {
        self.ask_bytes(Side::Us, opt, true)
    }

    /// Asks to turn one of our options off (WONT).
    pub fn disable_local(&mut self, opt: u8) -> Bytes {
        self.ask_bytes(Side::Us, opt, false)
    }

    /// Asks the peer to turn an option on (DO).
    pub fn enable_remote(&mut self, opt: u8) -> Bytes {
        self.ask_bytes(Side::Him, opt, true)
    }

    /// Asks the peer to turn an option off (DONT).
    pub fn disable_remote(&mut self, opt: u8) -> Bytes {
        self.ask_bytes(Side::Him, opt, false)
    }

    /// Whether our side of `opt` is on (state YES).
    pub fn local_enabled(&self, opt: u8) -> bool {
        self.us[usize::from(opt)].is_on()
    }

    /// Whether the peer's side of `opt` is on (state YES).
    pub fn remote_enabled(&self, opt: u8) -> bool {
        self.him[usize::from(opt)].is_on()
    }

    /// The last window size reported by [`TelnetEvent::WindowSize`], as (columns, rows).
    pub fn window_size(&self) -> Option<(u16, u16)> {
        self.last_size
    }

    fn ask_bytes(&mut self, side: Side, opt: u8, enable: bool) -> Bytes {
        let mut out = BytesMut::new();
        if self.is_telnet() {
            self.ask(side, opt, enable, &mut out);
        }
        out.freeze()
    }

    fn ask(&mut self, side: Side, opt: u8, enable: bool, out: &mut BytesMut) {
        let state = match side {
            Side::Us => &mut self.us[usize::from(opt)],
            Side::Him => &mut self.him[usize::from(opt)],
        };
        let reply = if enable {
            state.ask_enable()
        } else {
            state.ask_disable()
        };
        if let Some(reply) = reply {
            out.put_slice(&[IAC, verb(side, reply), opt]);
        }
    }

    /// Runs the parser over `src` until an event other than data or replies comes up, then moves
    /// what it found into `pending`: the data run, the gathered replies, and that event.
    fn process(&mut self, src: &mut BytesMut) {
        // Data bytes are compacted towards the front of `src` in place: `w <= r` always holds,
        // because every input byte yields at most one data byte.
        let mut read = 0;
        let mut write = 0;
        let mut event = None;
        while read < src.len() {
            let byte = src[read];
            read += 1;
            match self.step(byte) {
                Step::Nothing => {}
                Step::Data(d) => {
                    src[write] = d;
                    write += 1;
                }
                Step::Event(ev) => {
                    event = Some(ev);
                    break;
                }
            }
            if self.out.len() >= OUT_FLUSH {
                break;
            }
        }
        if write > 0 {
            let mut run = src.split_to(read);
            run.truncate(write);
            self.pending.push_back(TelnetEvent::Data(run.freeze()));
        } else {
            src.advance(read);
        }
        if !self.out.is_empty() {
            self.pending
                .push_back(TelnetEvent::Send(self.out.split().freeze()));
        }
        if let Some(ev) = event {
            self.pending.push_back(ev);
        }
    }

    fn step(&mut self, byte: u8) -> Step {
        match self.parse {
            Parse::Data if byte == IAC => {
                self.parse = Parse::Iac;
                Step::Nothing
            }
            Parse::Data => self.data_byte(byte),
            Parse::Iac => self.command(byte),
            Parse::Negotiate(verb) => {
                self.parse = Parse::Data;
                match self.negotiate(verb, byte) {
                    Some(ev) => Step::Event(ev),
                    None => Step::Nothing,
                }
            }
            Parse::SbOption => {
                self.sb_option = byte;
                self.sb_buf.clear();
                self.sb_overflow = false;
                self.parse = Parse::Sb;
                Step::Nothing
            }
            Parse::Sb if byte == IAC => {
                self.parse = Parse::SbIac;
                Step::Nothing
            }
            Parse::Sb => {
                self.sb_push(byte);
                Step::Nothing
            }
            Parse::SbIac => match byte {
                SE => {
                    self.parse = Parse::Data;
                    match self.subnegotiation() {
                        Some(ev) => Step::Event(ev),
                        None => Step::Nothing,
                    }
                }
                IAC => {
                    self.sb_push(IAC);
                    self.parse = Parse::Sb;
                    Step::Nothing
                }
                // A command inside a subnegotiation means the peer never finished it: drop the
                // payload and take the command as if it came after IAC in data.
                other => {
                    tracing::debug!(
                        option = self.sb_option,
                        "unterminated subnegotiation dropped"
                    );
                    self.sb_buf.clear();
                    self.command(other)
                }
            },
        }
    }

    fn sb_push(&mut self, byte: u8) {
        if self.sb_buf.capacity() == 0 {
            self.sb_buf.reserve_exact(SB_MAX);
        }
        if self.sb_buf.len() < SB_MAX {
            self.sb_buf.push(byte);
        } else {
            self.sb_overflow = true;
        }
    }

    /// One application byte, after IAC unescaping: applies the NVT end-of-line rule while the peer
    /// is not in BINARY (CR LF and CR NUL become CR).
    fn data_byte(&mut self, byte: u8) -> Step {
        if self.cr_pending {
            self.cr_pending = false;
            if byte == LF || byte == NUL {
                return Step::Nothing;
            }
        }
        if byte == CR && !self.remote_enabled(BINARY) {
            self.cr_pending = true;
        }
        Step::Data(byte)
    }

    /// The byte after an IAC in data.
    fn command(&mut self, byte: u8) -> Step {
        self.parse = Parse::Data;
        match byte {
            IAC => self.data_byte(IAC),
            WILL | WONT | DO | DONT => {
                self.parse = Parse::Negotiate(byte);
                Step::Nothing
            }
            SB => {
                self.parse = Parse::SbOption;
                Step::Nothing
            }
            AYT | IP | BRK | AO | EC | EL => Step::Event(TelnetEvent::Command(byte)),
            // NOP, DM, GA, EOR, the BSD extensions, a stray SE and unknown bytes are discarded.
            _ => Step::Nothing,
        }
    }

    /// `IAC <verb> <opt>` from the peer, run through the Q method.
    fn negotiate(&mut self, verb_byte: u8, opt: u8) -> Option<TelnetEvent> {
        let i = usize::from(opt);
        let (side, states, replies) = match verb_byte {
            WILL | WONT => (Side::Him, &mut self.him, &mut self.him_replies),
            _ => (Side::Us, &mut self.us, &mut self.us_replies),
        };
        let exhausted = replies[i] >= PEER_REPLY_BUDGET;
        let before = states[i];
        let reply = if verb_byte == WILL || verb_byte == DO {
            let accept = !exhausted && accepts(side, opt);
            states[i].receive_enable(accept)
        } else {
            states[i].receive_disable()
        };
        let after = states[i];
        if let Some(reply) = reply {
            if exhausted {
                tracing::debug!(
                    option = opt,
                    "negotiation reply budget spent; not answering"
                );
            } else {
                replies[i] += 1;
                self.out.put_slice(&[IAC, verb(side, reply), opt]);
            }
        }
        if side == Side::Him && before.is_on() != after.is_on() {
            if after.is_on() {
                self.remote_on(opt);
            } else {
                return self.remote_off(opt);
            }
        }
        None
    }

    /// The peer's side of `opt` just became enabled: ask for what the option carries.
    fn remote_on(&mut self, opt: u8) {
        match opt {
            TTYPE if self.walk == Walk::NotStarted => {
                self.walk = Walk::Asked;
                self.out.put_slice(&[IAC, SB, TTYPE, SB_SEND, IAC, SE]);
            }
            TSPEED if !self.tspeed_asked => {
                self.tspeed_asked = true;
                self.out.put_slice(&[IAC, SB, TSPEED, SB_SEND, IAC, SE]);
            }
            NEW_ENVIRON if !self.environ_asked => {
                self.environ_asked = true;
                self.out.put_slice(ENVIRON_REQUEST);
            }
            BINARY => self.cr_pending = false,
            _ => {}
        }
    }

    /// The peer's side of `opt` just became disabled.
    fn remote_off(&mut self, opt: u8) -> Option<TelnetEvent> {
        if opt == TTYPE && self.walk == Walk::Asked {
            // The peer withdrew TTYPE mid-walk: what we have is all we get.
            return Some(self.finish_walk());
        }
        None
    }

    fn finish_walk(&mut self) -> TelnetEvent {
        self.walk = Walk::Done;
        TelnetEvent::TerminalTypes(std::mem::take(&mut self.terminal_types))
    }

    /// `IAC SE` closed a subnegotiation.
    fn subnegotiation(&mut self) -> Option<TelnetEvent> {
        if self.sb_overflow {
            tracing::debug!(option = self.sb_option, "oversized subnegotiation dropped");
            self.sb_buf.clear();
            return None;
        }
        // Taken out and put back so the payload can be read while `self` changes; the
        // allocation is kept for the next subnegotiation.
        let payload = std::mem::take(&mut self.sb_buf);
        let event = match self.sb_option {
            TTYPE => self.on_ttype(&payload),
            NAWS => self.on_naws(&payload),
            TSPEED => on_tspeed(&payload),
            NEW_ENVIRON => on_environ(&payload),
            _ => None,
        };
        self.sb_buf = payload;
        self.sb_buf.clear();
        event
    }

    /// `SB TTYPE IS <name>`: one step of the walk.
    fn on_ttype(&mut self, payload: &[u8]) -> Option<TelnetEvent> {
        let (&SB_IS, name) = payload.split_first()? else {
            return None;
        };
        if self.walk != Walk::Asked {
            return None;
        }
        let name = String::from_utf8_lossy(name).trim().to_string();
        let repeated = self
            .terminal_types
            .iter()
            .any(|known| known.eq_ignore_ascii_case(&name));
        if name.is_empty() || repeated {
            return Some(self.finish_walk());
        }
        self.terminal_types.push(name);
        if self.terminal_types.len() >= TTYPE_MAX {
            return Some(self.finish_walk());
        }
        self.out.put_slice(&[IAC, SB, TTYPE, SB_SEND, IAC, SE]);
        None
    }

    /// `SB NAWS <cols u16> <rows u16>`. Accepted even before the peer's WILL NAWS, since some
    /// clients send the size as soon as they see DO NAWS.
    fn on_naws(&mut self, payload: &[u8]) -> Option<TelnetEvent> {
        let &[c0, c1, r0, r1] = payload else {
            return None;
        };
        let known = |v: u16| (1..=NAWS_MAX).contains(&v).then_some(v);
        if let Some(cols) = known(u16::from_be_bytes([c0, c1])) {
            self.cols = Some(cols);
        }
        if let Some(rows) = known(u16::from_be_bytes([r0, r1])) {
            self.rows = Some(rows);
        }
        let size = (self.cols?, self.rows?);
        if self.last_size == Some(size) {
            return None;
        }
        self.last_size = Some(size);
        Some(TelnetEvent::WindowSize {
            cols: size.0,
            rows: size.1,
        })
    }
}

/// Which options we let the peer turn on for `side`.
fn accepts(side: Side, opt: u8) -> bool {
    match side {
        Side::Him => matches!(opt, SGA | BINARY | TTYPE | NAWS | NEW_ENVIRON | TSPEED),
        Side::Us => matches!(opt, ECHO | SGA | BINARY),
    }
}

/// The command byte for a Q method reply on `side`.
fn verb(side: Side, reply: Reply) -> u8 {
    match (side, reply) {
        (Side::Us, Reply::Enable) => WILL,
        (Side::Us, Reply::Disable) => WONT,
        (Side::Him, Reply::Enable) => DO,
        (Side::Him, Reply::Disable) => DONT,
    }
}

/// `SB TSPEED IS "<tx>,<rx>"`.
fn on_tspeed(payload: &[u8]) -> Option<TelnetEvent> {
    let (&SB_IS, text) = payload.split_first()? else {
        return None;
    };
    let text = std::str::from_utf8(text).ok()?;
    let (tx, rx) = text.split_once(',')?;
    Some(TelnetEvent::TerminalSpeed {
        tx: tx.trim().parse().ok()?,
        rx: rx.trim().parse().ok()?,
    })
}

/// `SB NEW-ENVIRON IS|INFO {VAR|USERVAR name [VALUE value]}*`. An IS always yields an event, even
/// an empty one, so the session knows the answer is complete; an empty INFO yields none.
fn on_environ(payload: &[u8]) -> Option<TelnetEvent> {
    let (&kind, mut rest) = payload.split_first()?;
    if kind != SB_IS && kind != SB_INFO {
        return None;
    }
    let mut vars = Vec::new();
    // The variable being read: its name, and its value once VALUE was seen.
    let mut current: Option<(Vec<u8>, Option<Vec<u8>>)> = None;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        let literal = match byte {
            ENV_VAR | ENV_USERVAR => {
                push_var(&mut vars, current.replace((Vec::new(), None)));
                continue;
            }
            ENV_VALUE => {
                if let Some((_, value)) = current.as_mut() {
                    *value = Some(Vec::new());
                }
                continue;
            }
            ENV_ESC => match rest.split_first() {
                Some((&escaped, tail)) => {
                    rest = tail;
                    escaped
                }
                None => break,
            },
            other => other,
        };
        match current.as_mut() {
            Some((_, Some(value))) => value.push(literal),
            Some((name, None)) => name.push(literal),
            // Bytes before the first VAR/USERVAR belong to nothing.
            None => {}
        }
    }
    push_var(&mut vars, current);
    if vars.is_empty() && kind == SB_INFO {
        return None;
    }
    Some(TelnetEvent::Environment(vars))
}

fn push_var(vars: &mut Vec<(String, String)>, var: Option<(Vec<u8>, Option<Vec<u8>>)>) {
    if let Some((name, value)) = var {
        if !name.is_empty() {
            let value = value.unwrap_or_default();
            vars.push((
                String::from_utf8_lossy(&name).into_owned(),
                String::from_utf8_lossy(&value).into_owned(),
            ));
        }
    }
}

impl Decoder for TelnetCodec {
    type Item = TelnetEvent;
    type Error = TelnetError;

    /// Consumes all of `src` before returning `None`: partial commands live in the codec's state,
    /// not in the buffer.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<TelnetEvent>, TelnetError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            if src.is_empty() {
                return Ok(None);
            }
            match self.mode {
                Mode::Raw => return Ok(Some(TelnetEvent::Data(src.split().freeze()))),
                Mode::Detect if src[0] == IAC => {
                    self.mode = Mode::Telnet;
                    return Ok(Some(TelnetEvent::TelnetDetected));
                }
                Mode::Detect => self.mode = Mode::Raw,
                Mode::Telnet => self.process(src),
            }
        }
    }
}

impl TelnetCodec {
    /// Appends application bytes to `dst` as they must go on the wire: IAC doubled in telnet mode,
    /// and, while our side is not in BINARY, a CR that is followed by neither LF nor NUL within
    /// `data` written as CR NUL (so `data` that already holds CR NUL is not changed). A CR at the
    /// end of `data` therefore always becomes CR NUL. Raw mode copies `data` unchanged.
    fn encode_slice(&self, data: &[u8], dst: &mut BytesMut) {
        if !self.is_telnet() {
            dst.extend_from_slice(data);
            return;
        }
        let nvt = !self.local_enabled(BINARY);
        dst.reserve(data.len());
        let mut start = 0;
        for (i, &byte) in data.iter().enumerate() {
            let extra = match byte {
                IAC => IAC,
                CR if nvt && !matches!(data.get(i + 1), Some(&LF) | Some(&NUL)) => NUL,
                _ => continue,
            };
            dst.extend_from_slice(&data[start..=i]);
            dst.put_u8(extra);
            start = i + 1;
        }
        dst.extend_from_slice(&data[start..]);
    }
}

impl Encoder<Bytes> for TelnetCodec {
    type Error = TelnetError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), TelnetError> {
        self.encode_slice(&item, dst);
        Ok(())
    }
}

impl Encoder<&[u8]> for TelnetCodec {
    type Error = TelnetError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), TelnetError> {
        self.encode_slice(item, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
