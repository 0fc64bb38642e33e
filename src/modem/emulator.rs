//! The virtual modem: a Hayes AT command set shown to a computer on a null-modem cable.
//!
//! Owns [`VirtualModem`], the pure state machine for role B of `../shared/specs/hayes.md` §6,
//! with the defaults of §8: command state with echo, `AT` parsing (chained commands, `A/`),
//! `ATZ`, `AT&F`, `E`, `V`, `Q`, `X`, `I`, `Sn=v`, `Sn?`, `H`, `O`, `A`, `D…` (any number or
//! host connects the caller to this BBS), `&C`/`&D` kept, vendor commands accepted and ignored,
//! verbose (`CR LF text CR LF`) and numeric (`n CR`) results, `CONNECT <speed>` at the
//! configured speed, `+++` with both S12 guard times (no TIES: `+++ATH` inside data does
//! nothing; escape characters that may start an escape are held back, so a completed escape
//! never reaches the session), online-command state with the call held, and `NO CARRIER` when
//! the session ends.
//!
//! Atari terminal programs are first-class, as in FujiNet: ATASCII EOL 0x9B ends a command and
//! 0x7E deletes, and when a command line ended with 0x9B the replies end with 0x9B instead of
//! being framed in CR LF. `ATA` with nothing ringing connects like `ATD` (there is only one
//! place to call: this BBS). Pure: no I/O, no clock; the driver in `crate::serial` feeds bytes
//! and times and carries out the [`Action`]s.

use std::time::{Duration, Instant};

use super::result::numeric_connect_code;
use super::{fiftieths, Action, Event, LineMachine, LineState};

/// ATASCII end of line.
pub const ATASCII_EOL: u8 = 0x9B;
/// ATASCII delete (backspace).
pub const ATASCII_BACKSPACE: u8 = 0x7E;

/// Longest command line kept (after which further characters are dropped).
const MAX_COMMAND: usize = 255;

/// The product string shown by `ATI`; at most 40 columns for 40-column machines.
const PRODUCT: &str = "NuggetNet virtual modem";

/// What the emulator reports and how it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorConfig {
    /// The rate reported in `CONNECT <speed>` (and used for pacing).
    pub connect_bps: u32,
    /// The pause between `ATD` and `CONNECT`, as a real modem would take to connect; gives
    /// slow terminal programs time to get ready (FujiNet's answer delay).
    pub answer_delay: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            connect_bps: 2400,
            answer_delay: Duration::from_millis(1000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Command state, no call.
    Command,
    /// Dialled; CONNECT is due at `until`.
    Connecting { until: Instant },
    /// Data passes between the computer and the session.
    Online,
    /// `+++` was accepted: commands are read, the call is held.
    OnlineCommand,
}

/// Result codes we emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Res {
    Ok,
    Connect,
    NoCarrier,
    Error,
}

/// The settings `ATZ` and `AT&F` restore.
#[derive(Debug, Clone)]
struct Settings {
    echo: bool,
    verbose: bool,
    quiet: bool,
    x: u32,
    amp_c: u32,
    amp_d: u32,
    s: [u8; 256],
}

impl Default for Settings {
    fn default() -> Self {
        let mut s = [0u8; 256];
        s[2] = 43;
        s[3] = 13;
        s[4] = 10;
        s[5] = 8;
        s[6] = 2;
        s[7] = 50;
        s[8] = 2;
        s[9] = 6;
        s[10] = 14;
        s[11] = 95;
        s[12] = 50;
        Settings {
            echo: true,
            verbose: true,
            quiet: false,
            x: 4,
            amp_c: 1,
            amp_d: 2,
            s,
        }
    }
}

/// The virtual-modem state machine for one line. See the module documentation.
#[derive(Debug)]
pub struct VirtualModem {
    config: EmulatorConfig,
    settings: Settings,
    mode: Mode,
    line: Vec<u8>,
    last_command: Vec<u8>,
    /// Whether the last command line ended with ATASCII EOL; replies follow suit.
    atascii: bool,
    /// When the last byte came from the computer in online state.
    last_rx: Option<Instant>,
    /// Escape characters seen in a row, each within the guard time of the one before.
    plus_count: u8,
    last_plus: Option<Instant>,
}

impl VirtualModem {
    /// A modem in command state with factory settings.
    pub fn new(config: EmulatorConfig) -> VirtualModem {
        VirtualModem {
            config,
            settings: Settings::default(),
            mode: Mode::Command,
            line: Vec::new(),
            last_command: Vec::new(),
            atascii: false,
            last_rx: None,
            plus_count: 0,
            last_plus: None,
        }
    }

    /// Whether a call exists (online, or held in online-command state).
    pub fn in_call(&self) -> bool {
        matches!(self.mode, Mode::Online | Mode::OnlineCommand)
    }

    fn guard(&self) -> Duration {
        fiftieths(self.settings.s[12])
    }

    /// Bytes of one result code, framed for the caller's terminal.
    fn result(&self, res: Res) -> Vec<u8> {
        if self.settings.quiet {
            return Vec::new();
        }
        let bps = self.config.connect_bps;
        let (text, code) = match res {
            Res::Ok => ("OK".to_string(), 0),
            Res::Connect if self.settings.x == 0 => ("CONNECT".to_string(), 1),
            Res::Connect => (format!("CONNECT {bps}"), numeric_connect_code(bps)),
            Res::NoCarrier => ("NO CARRIER".to_string(), 3),
            Res::Error => ("ERROR".to_string(), 4),
        };
        let s3 = self.settings.s[3];
        let s4 = self.settings.s[4];
        let mut out = Vec::new();
        match (self.settings.verbose, self.atascii) {
            (true, true) => {
                out.extend_from_slice(text.as_bytes());
                out.push(ATASCII_EOL);
            }
            (true, false) => {
                out.extend_from_slice(&[s3, s4]);
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(&[s3, s4]);
            }
            (false, atascii) => {
                out.extend_from_slice(code.to_string().as_bytes());
                out.push(if atascii { ATASCII_EOL } else { s3 });
            }
        }
        out
    }

    /// One line of information text (ATI, ATSn?), framed like a verbose result.
    fn info(&self, text: &str, out: &mut Vec<u8>) {
        if self.atascii {
            out.extend_from_slice(text.as_bytes());
            out.push(ATASCII_EOL);
        } else {
            let (s3, s4) = (self.settings.s[3], self.settings.s[4]);
            out.extend_from_slice(&[s3, s4]);
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(&[s3, s4]);
        }
    }

    /// Restores factory settings; on an idle line, DCD follows the new `&C`.
    fn factory(&mut self, actions: &mut Vec<Action>) {
        self.settings = Settings::default();
        if !self.in_call() {
            actions.push(Action::SetDtr(self.settings.amp_c == 0));
        }
    }

    fn connect(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let bps = self.config.connect_bps;
        self.mode = Mode::Online;
        self.last_rx = Some(now);
        self.plus_count = 0;
        actions.push(Action::Send(self.result(Res::Connect)));
        actions.push(Action::SetDtr(true));
        actions.push(Action::Status(LineState::Connected { bps }));
        actions.push(Action::Connect {
            bps,
            caller_id: None,
        });
    }

    fn end_call(&mut self, actions: &mut Vec<Action>) {
        self.mode = Mode::Command;
        self.plus_count = 0;
        actions.push(Action::EndCall);
        if self.settings.amp_c != 0 {
            actions.push(Action::SetDtr(false));
        }
        actions.push(Action::Send(self.result(Res::NoCarrier)));
        actions.push(Action::Status(LineState::Idle));
    }

    /// Bytes typed while in command or online-command state.
    fn on_command_bytes(&mut self, data: &[u8], now: Instant, actions: &mut Vec<Action>) {
        for (i, &b) in data.iter().enumerate() {
            if matches!(self.mode, Mode::Online) {
                // `ATO` put us back online: the rest is call data.
                self.on_online_bytes(&data[i..], now, actions);
                return;
            }
            if let Mode::Connecting { .. } = self.mode {
                // A key pressed while dialling aborts the call, as on a real modem.
                if b != b'\n' && b != 0 {
                    self.mode = Mode::Command;
                    actions.push(Action::Send(self.result(Res::NoCarrier)));
                    actions.push(Action::Status(LineState::Idle));
                }
                continue;
            }
            self.on_command_byte(b, now, actions);
        }
    }

    fn on_command_byte(&mut self, b: u8, now: Instant, actions: &mut Vec<Action>) {
        let s = &self.settings.s;
        let echo = self.settings.echo;
        if b == s[3] || b == b'\r' || b == b'\n' || b == ATASCII_EOL {
            if b == b'\n' && self.line.is_empty() {
                return;
            }
            if echo {
                actions.push(Action::Send(vec![b]));
            }
            self.atascii = b == ATASCII_EOL;
            let line = std::mem::take(&mut self.line);
            self.execute(&line, now, actions);
            return;
        }
        if b == s[5] || b == 0x08 || b == 0x7F || b == ATASCII_BACKSPACE {
            if self.line.pop().is_some() && echo {
                if b == ATASCII_BACKSPACE {
                    actions.push(Action::Send(vec![ATASCII_BACKSPACE]));
                } else {
                    actions.push(Action::Send(vec![0x08, b' ', 0x08]));
                }
            }
            return;
        }
        if b == b'/' && self.line.len() == 1 && self.line[0].eq_ignore_ascii_case(&b'A') {
            if echo {
                actions.push(Action::Send(vec![b]));
            }
            self.line.clear();
            let last = self.last_command.clone();
            self.execute(&last, now, actions);
            return;
        }
        if self.line.len() < MAX_COMMAND {
            self.line.push(b);
            if echo {
                actions.push(Action::Send(vec![b]));
            }
        }
    }

    /// Runs one command line.
    fn execute(&mut self, line: &[u8], now: Instant, actions: &mut Vec<Action>) {
        let Some(at) = line
            .windows(2)
            .position(|w| w[0].eq_ignore_ascii_case(&b'A') && w[1].eq_ignore_ascii_case(&b'T'))
        else {
            return;
        };
        self.last_command = line[at..].to_vec();
        let body = &line[at + 2..];
        let mut reply = Vec::new();
        let res = self.run_commands(body, now, &mut reply, actions);
        if !reply.is_empty() {
            actions.push(Action::Send(reply));
        }
        if let Some(res) = res {
            actions.push(Action::Send(self.result(res)));
        }
    }

    /// Parses and applies the commands after `AT`. Returns the final result code, or `None`
    /// when the result comes later (dialling) or was already sent.
    fn run_commands(
        &mut self,
        body: &[u8],
        now: Instant,
        reply: &mut Vec<u8>,
        actions: &mut Vec<Action>,
    ) -> Option<Res> {
        let mut p = Cursor { body, i: 0 };
        loop {
            p.skip_spaces();
            let Some(c) = p.next() else {
                return Some(Res::Ok);
            };
            match c.to_ascii_uppercase() {
                b'E' => match p.number() {
                    None | Some(0) => self.settings.echo = false,
                    Some(1) => self.settings.echo = true,
                    Some(_) => return Some(Res::Error),
                },
                b'V' => match p.number() {
                    None | Some(0) => self.settings.verbose = false,
                    Some(1) => self.settings.verbose = true,
                    Some(_) => return Some(Res::Error),
                },
                b'Q' => self.settings.quiet = p.number().unwrap_or(0) == 1,
                b'X' => {
                    let n = p.number().unwrap_or(0);
                    if n > 7 {
                        return Some(Res::Error);
                    }
                    self.settings.x = n;
                }
                b'Z' => {
                    p.number();
                    self.factory(actions);
                    return Some(Res::Ok);
                }
                b'I' => {
                    p.number();
                    self.info(PRODUCT, reply);
                }
                b'H' => {
                    let n = p.number().unwrap_or(0);
                    if n == 0 && self.in_call() {
                        actions.push(Action::Send(std::mem::take(reply)));
                        self.end_call(actions);
                        return None;
                    }
                }
                b'O' => {
                    p.number();
                    if matches!(self.mode, Mode::OnlineCommand) {
                        // CONNECT goes out before any session output held meanwhile.
                        actions.push(Action::Send(std::mem::take(reply)));
                        actions.push(Action::Send(self.result(Res::Connect)));
                        self.mode = Mode::Online;
                        self.last_rx = Some(now);
                        self.plus_count = 0;
                        actions.push(Action::Resume);
                        actions.push(Action::Status(LineState::Connected {
                            bps: self.config.connect_bps,
                        }));
                        return None;
                    }
                    return Some(Res::NoCarrier);
                }
                b'A' | b'D' => {
                    if self.in_call() {
                        return Some(Res::Error);
                    }
                    let dial = p.rest();
                    if c.eq_ignore_ascii_case(&b'D') && dial.trim_ascii_end().ends_with(b";") {
                        return Some(Res::Ok);
                    }
                    actions.push(Action::Send(std::mem::take(reply)));
                    actions.push(Action::Status(LineState::Answering));
                    if self.config.answer_delay.is_zero() {
                        self.connect(now, actions);
                    } else {
                        self.mode = Mode::Connecting {
                            until: now + self.config.answer_delay,
                        };
                    }
                    return None;
                }
                b'S' => {
                    let Some(n) = p.number() else {
                        return Some(Res::Error);
                    };
                    let Ok(reg) = usize::try_from(n) else {
                        return Some(Res::Error);
                    };
                    if reg > 255 {
                        return Some(Res::Error);
                    }
                    p.skip_spaces();
                    match p.peek() {
                        Some(b'=') => {
                            p.next();
                            let v = p.number().unwrap_or(0);
                            let Ok(v) = u8::try_from(v) else {
                                return Some(Res::Error);
                            };
                            self.settings.s[reg] = v;
                        }
                        Some(b'?') => {
                            p.next();
                            let v = self.settings.s[reg];
                            self.info(&format!("{v:03}"), reply);
                        }
                        _ => {}
                    }
                }
                b'&' => {
                    let Some(c2) = p.next() else {
                        return Some(Res::Error);
                    };
                    let n = p.number().unwrap_or(0);
                    match c2.to_ascii_uppercase() {
                        b'F' => self.factory(actions),
                        b'C' => {
                            self.settings.amp_c = n;
                            if !self.in_call() {
                                actions.push(Action::SetDtr(n == 0));
                            }
                        }
                        b'D' => self.settings.amp_d = n,
                        c if c.is_ascii_alphabetic() => {}
                        _ => return Some(Res::Error),
                    }
                }
                b'\\' | b'%' => {
                    p.next();
                    p.number();
                }
                b'+' | b'#' | b'*' | b'$' => {
                    p.rest();
                }
                c if c.is_ascii_alphabetic() => {
                    p.number();
                }
                _ => return Some(Res::Error),
            }
        }
    }

    /// Bytes typed while online: passed to the session, watching for `+++`.
    ///
    /// Escape characters that may begin an escape (typed after a guard time of silence) are
    /// held back until it is clear whether they are one: a completed escape never reaches the
    /// session, and characters that turn out to be data are passed on late but in order.
    fn on_online_bytes(&mut self, data: &[u8], now: Instant, actions: &mut Vec<Action>) {
        let esc = self.settings.s[2];
        let guard = self.guard();
        let mut deliver = Vec::with_capacity(data.len());
        for &b in data {
            if esc <= 127 && b == esc {
                let continues = (1..=2).contains(&self.plus_count)
                    && self
                        .last_plus
                        .is_some_and(|t| now.saturating_duration_since(t) < guard);
                if continues {
                    self.plus_count += 1;
                } else {
                    deliver.resize(deliver.len() + usize::from(self.plus_count), esc);
                    let quiet_before = self
                        .last_rx
                        .is_none_or(|t| now.saturating_duration_since(t) >= guard);
                    if quiet_before {
                        self.plus_count = 1;
                    } else {
                        self.plus_count = 0;
                        deliver.push(b);
                    }
                }
                if self.plus_count > 0 {
                    self.last_plus = Some(now);
                }
            } else {
                deliver.resize(deliver.len() + usize::from(self.plus_count), esc);
                self.plus_count = 0;
                deliver.push(b);
            }
            self.last_rx = Some(now);
        }
        if !deliver.is_empty() {
            actions.push(Action::Deliver(deliver));
        }
    }

    fn on_timer(&mut self, now: Instant, actions: &mut Vec<Action>) {
        match self.mode {
            Mode::Connecting { until } if now >= until => self.connect(now, actions),
            Mode::Online if self.plus_count > 0 => {
                let due = self.last_plus.map(|t| t + self.guard());
                if due.is_none_or(|d| now < d) {
                    return;
                }
                if self.plus_count == 3 {
                    self.plus_count = 0;
                    self.mode = Mode::OnlineCommand;
                    self.line.clear();
                    actions.push(Action::Hold);
                    actions.push(Action::Status(LineState::Held {
                        bps: self.config.connect_bps,
                    }));
                    actions.push(Action::Send(self.result(Res::Ok)));
                } else {
                    // Fewer than three: they were data after all.
                    let esc = self.settings.s[2];
                    let held = vec![esc; usize::from(self.plus_count)];
                    self.plus_count = 0;
                    actions.push(Action::Deliver(held));
                }
            }
            _ => {}
        }
    }
}

impl LineMachine for VirtualModem {
    fn on_event(&mut self, event: Event<'_>, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Start => {
                self.mode = Mode::Command;
                self.line.clear();
                actions.push(Action::SetDtr(self.settings.amp_c == 0));
                actions.push(Action::Status(LineState::Idle));
            }
            Event::Data(data) => match self.mode {
                Mode::Online => self.on_online_bytes(data, now, &mut actions),
                _ => self.on_command_bytes(data, now, &mut actions),
            },
            Event::Timer => self.on_timer(now, &mut actions),
            Event::Carrier(_) => {}
            Event::SessionClosed => {
                if self.in_call() {
                    self.end_call(&mut actions);
                }
            }
        }
        actions.retain(|a| !matches!(a, Action::Send(b) if b.is_empty()));
        actions
    }

    fn deadline(&self) -> Option<Instant> {
        match self.mode {
            Mode::Connecting { until } => Some(until),
            Mode::Online if self.plus_count > 0 => self.last_plus.map(|t| t + self.guard()),
            _ => None,
        }
    }
}

/// A read position in a command line.
struct Cursor<'a> {
    body: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.body.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }
    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }
    /// A decimal number (saturating), or `None` if no digit follows.
    fn number(&mut self) -> Option<u32> {
        let start = self.i;
        let mut n: u32 = 0;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            n = n.saturating_mul(10).saturating_add(u32::from(d - b'0'));
            self.i += 1;
        }
        (self.i > start).then_some(n)
    }
    /// Everything left on the line.
    fn rest(&mut self) -> &[u8] {
        let r = &self.body[self.i..];
        self.i = self.body.len();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Term {
        m: VirtualModem,
        now: Instant,
        /// Everything sent to the terminal.
        screen: Vec<u8>,
        /// Everything delivered to the session.
        session: Vec<u8>,
        actions: Vec<Action>,
    }

    impl Term {
        fn new(delay_ms: u64) -> Term {
            let mut t = Term {
                m: VirtualModem::new(EmulatorConfig {
                    connect_bps: 2400,
                    answer_delay: Duration::from_millis(delay_ms),
                }),
                now: Instant::now(),
                screen: Vec::new(),
                session: Vec::new(),
                actions: Vec::new(),
            };
            t.apply(Event::Start);
            t
        }
        fn apply(&mut self, e: Event<'_>) {
            for a in self.m.on_event(e, self.now) {
                match &a {
                    Action::Send(b) => self.screen.extend_from_slice(b),
                    Action::Deliver(b) => self.session.extend_from_slice(b),
                    _ => {}
                }
                self.actions.push(a);
            }
        }
        /// Types bytes one at a time, 50 ms apart.
        fn type_bytes(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.now += Duration::from_millis(50);
                self.apply(Event::Data(std::slice::from_ref(b)));
            }
        }
        fn wait(&mut self, ms: u64) {
            let until = self.now + Duration::from_millis(ms);
            while let Some(d) = self.m.deadline().filter(|d| *d <= until) {
                self.now = d;
                self.apply(Event::Timer);
            }
            self.now = until;
        }
        fn take_screen(&mut self) -> Vec<u8> {
            std::mem::take(&mut self.screen)
        }
        fn saw(&self, a: &Action) -> bool {
            self.actions.contains(a)
        }
    }

    #[test]
    fn pc_terminal_session_with_escape_hangup() {
        let mut t = Term::new(1000);
        t.type_bytes(b"AT\r");
        assert_eq!(t.take_screen(), b"AT\r\r\nOK\r\n");
        t.type_bytes(b"ATDT5551234\r");
        assert_eq!(t.take_screen(), b"ATDT5551234\r");
        t.wait(1000);
        assert_eq!(t.take_screen(), b"\r\nCONNECT 2400\r\n");
        assert!(t.saw(&Action::Connect {
            bps: 2400,
            caller_id: None
        }));
        assert!(t.saw(&Action::SetDtr(true)));
        t.type_bytes(b"hello\r");
        assert_eq!(t.session, b"hello\r");
        assert!(t.take_screen().is_empty(), "no echo online");
        t.wait(1100);
        t.type_bytes(b"+++");
        assert!(t.m.deadline().is_some());
        t.wait(1100);
        assert_eq!(t.take_screen(), b"\r\nOK\r\n");
        assert!(t.saw(&Action::Hold));
        t.type_bytes(b"ATH\r");
        assert_eq!(t.take_screen(), b"ATH\r\r\nNO CARRIER\r\n");
        assert!(t.saw(&Action::EndCall));
        assert!(t.saw(&Action::SetDtr(false)));
        assert!(!t.m.in_call());
    }

    #[test]
    fn atascii_terminal_session_with_escape_and_resume() {
        let mut t = Term::new(0);
        t.type_bytes(b"ATZ\x9b");
        assert_eq!(t.take_screen(), b"ATZ\x9bOK\x9b");
        t.type_bytes(b"ATXX\x7e\x7eE1\x9b");
        assert_eq!(t.take_screen(), b"ATXX\x7e\x7eE1\x9bOK\x9b");
        t.type_bytes(b"ATDT BBS.EXAMPLE.COM:23\x9b");
        assert_eq!(
            t.take_screen(),
            b"ATDT BBS.EXAMPLE.COM:23\x9bCONNECT 2400\x9b"
        );
        t.type_bytes(b"\x9b");
        assert_eq!(t.session, b"\x9b");
        t.wait(2000);
        t.type_bytes(b"+++");
        t.wait(1100);
        assert_eq!(t.take_screen(), b"OK\x9b");
        t.type_bytes(b"ATO\x9b");
        assert_eq!(t.take_screen(), b"ATO\x9bCONNECT 2400\x9b");
        assert!(t.saw(&Action::Resume));
        t.type_bytes(b"Q");
        assert_eq!(t.session, b"\x9bQ", "the escape never reaches the session");
        t.apply(Event::SessionClosed);
        assert_eq!(t.take_screen(), b"NO CARRIER\x9b");
    }

    #[test]
    fn plus_signs_without_guard_time_are_data() {
        let mut t = Term::new(0);
        t.type_bytes(b"ATD\r");
        t.take_screen();
        t.type_bytes(b"x+++ATH\r");
        t.wait(3000);
        assert!(t.take_screen().is_empty());
        assert!(t.m.in_call());
        assert_eq!(t.session, b"x+++ATH\r");
        // A fourth plus cancels the escape, and all four are data.
        t.wait(2000);
        t.session.clear();
        t.type_bytes(b"++++");
        t.wait(3000);
        assert!(t.take_screen().is_empty());
        assert_eq!(t.session, b"++++");
        // Two pluses after a pause are held back, then passed on when nothing follows.
        t.wait(2000);
        t.session.clear();
        t.type_bytes(b"++");
        assert!(t.session.is_empty());
        t.wait(1100);
        assert_eq!(t.session, b"++");
        // A byte inside the trailing guard cancels it too.
        t.wait(2000);
        t.type_bytes(b"+++");
        t.wait(500);
        t.type_bytes(b"a");
        t.wait(3000);
        assert!(t.take_screen().is_empty());
        assert!(t.m.in_call());
    }

    #[test]
    fn numeric_and_quiet_results() {
        let mut t = Term::new(0);
        t.type_bytes(b"ATE0V0\r");
        assert_eq!(t.take_screen(), b"ATE0V0\r0\r");
        t.type_bytes(b"AT?\r");
        assert_eq!(t.take_screen(), b"4\r");
        t.type_bytes(b"ATQ1\r");
        assert!(t.take_screen().is_empty());
        t.type_bytes(b"ATQ0 D\r");
        assert_eq!(t.take_screen(), b"10\r");
    }

    #[test]
    fn x0_connect_has_no_speed() {
        let mut t = Term::new(0);
        t.type_bytes(b"ATX0D\r");
        assert!(t.take_screen().ends_with(b"\r\nCONNECT\r\n"));
    }

    #[test]
    fn s_registers_set_query_and_errors() {
        let mut t = Term::new(0);
        t.type_bytes(b"ATE0\r");
        t.take_screen();
        t.type_bytes(b"ATS0=2 S0? S12?\r");
        assert_eq!(t.take_screen(), b"\r\n002\r\n\r\n050\r\n\r\nOK\r\n");
        t.type_bytes(b"ATS=\r");
        assert_eq!(t.take_screen(), b"\r\nERROR\r\n");
        t.type_bytes(b"ATS0=300\r");
        assert_eq!(t.take_screen(), b"\r\nERROR\r\n");
        t.type_bytes(b"ATS999?\r");
        assert_eq!(t.take_screen(), b"\r\nERROR\r\n");
        t.type_bytes(b"AT&F\r");
        t.take_screen();
        t.type_bytes(b"ATS0?\r");
        assert_eq!(t.take_screen(), b"ATS0?\r\r\n000\r\n\r\nOK\r\n");
    }

    #[test]
    fn vendor_commands_info_and_repeat() {
        let mut t = Term::new(0);
        t.type_bytes(b"ATE0\r");
        t.take_screen();
        t.type_bytes(b"AT&K3 \\N3 %C1 M0 L1 &W +VCID=1\r");
        assert_eq!(t.take_screen(), b"\r\nOK\r\n");
        t.type_bytes(b"ATI\r");
        assert_eq!(
            t.take_screen(),
            b"\r\nNuggetNet virtual modem\r\n\r\nOK\r\n"
        );
        t.type_bytes(b"A/");
        assert_eq!(
            t.take_screen(),
            b"\r\nNuggetNet virtual modem\r\n\r\nOK\r\n"
        );
        t.type_bytes(b"hello world\r");
        assert!(t.take_screen().is_empty());
        t.type_bytes(b"ATO\r");
        assert_eq!(t.take_screen(), b"\r\nNO CARRIER\r\n");
        t.type_bytes(b"ATH\r");
        assert_eq!(t.take_screen(), b"\r\nOK\r\n");
    }

    #[test]
    fn backspace_edits_with_echo() {
        let mut t = Term::new(0);
        t.type_bytes(b"ATX\x08E0\r");
        assert_eq!(t.take_screen(), b"ATX\x08 \x08E0\r\r\nOK\r\n");
    }

    #[test]
    fn dial_with_semicolon_stays_in_command_state_and_keypress_aborts_dial() {
        let mut t = Term::new(1000);
        t.type_bytes(b"ATDT123;\r");
        assert!(t.take_screen().ends_with(b"\r\nOK\r\n"));
        t.type_bytes(b"ATDT123\r\n");
        t.take_screen();
        assert!(t.m.deadline().is_some());
        t.type_bytes(b"x");
        assert_eq!(t.take_screen(), b"\r\nNO CARRIER\r\n");
        t.wait(2000);
        assert!(!t.m.in_call());
    }

    #[test]
    fn data_after_ato_in_same_chunk_is_delivered() {
        let mut t = Term::new(0);
        t.type_bytes(b"ATE0D\r");
        t.wait(1100);
        t.type_bytes(b"+++");
        t.wait(1100);
        t.session.clear();
        t.now += Duration::from_millis(10);
        t.apply(Event::Data(b"ATO\rabc"));
        assert_eq!(t.session, b"abc");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut t = Term::new(0);
        let junk: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(97) % 256) as u8)
            .collect();
        for chunk in junk.chunks(7) {
            t.now += Duration::from_millis(30);
            t.apply(Event::Data(chunk));
            t.wait(10);
        }
        t.type_bytes(b"ATS999999999999?\r");
    }
}
