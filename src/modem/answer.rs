//! Driving a real Hayes modem in answer mode.
//!
//! Owns [`AnswerMachine`], the pure state machine for role A of `../shared/specs/hayes.md` §4:
//! drop DTR to reset, probe with `AT`, send the init string one command at a time (each must
//! answer `OK`; `~` pauses), wait for `RING` (answer with `ATA` after N rings, or let S0
//! auto-answer), collect caller ID (`NAME =`, `NMBR =`, `DATE =`, `TIME =`), parse `CONNECT`
//! and `CARRIER` lines, watch the carrier (DCD where the port has it, else `NO CARRIER` text in
//! the data), hang up by dropping DTR with a `+++` guard-time `ATH0` fallback, re-initialise
//! after every call, and probe an idle modem with `AT` now and then (the watchdog), resetting it
//! when it stops answering.
//!
//! It performs no I/O and reads no clock: the driver in `crate::serial` feeds [`Event`]s with
//! the time and carries out the returned [`Action`]s. It never gives up: a modem that does not
//! answer is retried after [`AnswerConfig::retry_delay`], forever.

use std::time::{Duration, Instant};

use super::result::{parse_result, ResultCode, DEFAULT_CONNECT_BPS};
use super::{Action, CallerId, Event, LineMachine, LineState};

/// Longest line we keep from a modem in command state; longer lines are cut.
const MAX_LINE: usize = 256;

/// Timing and behaviour of one modem line.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerConfig {
    /// The init string: commands separated by `^M` (or ended by the end of the string), each of
    /// which must answer `OK`; `~` pauses for [`AnswerConfig::tilde_pause`]; `^X` sends a
    /// control character.
    pub init: String,
    /// Answer with `ATA` after this many rings; 0 leaves answering to the modem (S0 > 0 in the
    /// init string).
    pub rings: u32,
    /// Whether the port has a working DCD input to watch. Without it (PTYs, three-wire cables)
    /// the carrier is lost only on `NO CARRIER` text or a port error.
    pub carrier_detect: bool,
    /// Hang up by dropping DTR (then `+++ATH0` if the carrier stays up); when false, only the
    /// `+++ATH0` escape is used.
    pub dtr_hangup: bool,
    /// How long DTR is held low to reset or hang up the modem.
    pub dtr_drop: Duration,
    /// How long to wait after raising DTR before talking to the modem.
    pub settle: Duration,
    /// How long to wait for `OK` after `AT` or an init command.
    pub command_timeout: Duration,
    /// How many `AT` probes (with a DTR toggle between them) before the modem is declared dead.
    pub probe_attempts: u32,
    /// How long to wait for `CONNECT` after `ATA` or the first RING of an auto-answer.
    pub answer_timeout: Duration,
    /// An idle modem is probed with `AT` this often; no `OK` means reset.
    pub watchdog: Duration,
    /// Rings further apart than this belong to different calls.
    pub ring_reset: Duration,
    /// The pause written `~` in the init string.
    pub tilde_pause: Duration,
    /// Silence before and after `+++` when escaping to command state.
    pub guard: Duration,
    /// After CONNECT, how long DCD may stay low before we count the carrier as lost.
    pub carrier_grace: Duration,
    /// How long to wait before trying again after the modem failed.
    pub retry_delay: Duration,
}

impl Default for AnswerConfig {
    fn default() -> Self {
        AnswerConfig {
            init: "ATZ^M~AT E0 V1 Q0 X4 &C1 &D2 S0=0".into(),
            rings: 1,
            carrier_detect: true,
            dtr_hangup: true,
            dtr_drop: Duration::from_millis(1000),
            settle: Duration::from_millis(500),
            command_timeout: Duration::from_secs(5),
            probe_attempts: 3,
            answer_timeout: Duration::from_secs(60),
            watchdog: Duration::from_secs(300),
            ring_reset: Duration::from_secs(8),
            tilde_pause: Duration::from_millis(500),
            guard: Duration::from_millis(1100),
            carrier_grace: Duration::from_secs(2),
            retry_delay: Duration::from_secs(30),
        }
    }
}

/// One step of an init string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Send this command followed by CR and wait for `OK`.
    Command(Vec<u8>),
    /// Wait this long.
    Pause(Duration),
}

/// Splits an init string into steps: `^M` (or the end) ends a command, `~` is a pause, `^X`
/// is the control character X, spaces are kept (modems ignore them).
pub fn parse_init(init: &str, tilde: Duration) -> Vec<InitStep> {
    let mut steps = Vec::new();
    let mut cmd: Vec<u8> = Vec::new();
    let flush = |cmd: &mut Vec<u8>, steps: &mut Vec<InitStep>| {
        let trimmed: Vec<u8> = cmd.trim_ascii().to_vec();
        if !trimmed.is_empty() {
            steps.push(InitStep::Command(trimmed));
        }
        cmd.clear();
    };
    let mut chars = init.bytes().peekable();
    while let Some(b) = chars.next() {
        match b {
            b'~' => {
                flush(&mut cmd, &mut steps);
                steps.push(InitStep::Pause(tilde));
            }
            b'^' => match chars.next() {
                Some(c) if c.eq_ignore_ascii_case(&b'M') => flush(&mut cmd, &mut steps),
                Some(c) if c.is_ascii_alphabetic() || b"@[\\]^_".contains(&c) => {
                    cmd.push(c.to_ascii_uppercase() & 0x1F)
                }
                Some(c) => {
                    cmd.push(b'^');
                    cmd.push(c);
                }
                None => cmd.push(b'^'),
            },
            b'\r' | b'\n' => flush(&mut cmd, &mut steps),
            _ => cmd.push(b),
        }
    }
    flush(&mut cmd, &mut steps);
    steps
}

#[derive(Debug, Clone, PartialEq)]
enum Hangup {
    /// DTR is low until then.
    DtrLow { until: Instant },
    /// Silence before `+++`.
    GuardBefore { until: Instant },
    /// Silence after `+++`.
    GuardAfter { until: Instant },
    /// `ATH0` sent; waiting for its result.
    AwaitAth { until: Instant },
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Not started.
    Stopped,
    /// DTR low to reset the modem; `attempt` counts probes of this reset.
    DropDtr { until: Instant, attempt: u32 },
    /// DTR raised again; waiting before the probe.
    Settle { until: Instant, attempt: u32 },
    /// `AT` sent; waiting for `OK`.
    Probe { until: Instant, attempt: u32 },
    /// Running init step `step`; `waiting_ok` is true while a command awaits its `OK`.
    Init {
        step: usize,
        until: Instant,
        waiting_ok: bool,
    },
    /// Waiting for a call.
    Idle {
        rings: u32,
        last_ring: Option<Instant>,
        probe_due: Instant,
        probing: Option<Instant>,
    },
    /// `ATA` sent (or auto-answer under way); waiting for CONNECT.
    Answering { until: Instant },
    /// A caller is on the line.
    Connected {
        bps: u32,
        since: Instant,
        carrier_seen: bool,
    },
    /// Hanging up.
    HangingUp(Hangup),
    /// The modem failed; waiting to start over.
    Failed { until: Instant },
}

/// The answer-mode state machine for one modem. See the module documentation.
#[derive(Debug)]
pub struct AnswerMachine {
    config: AnswerConfig,
    steps: Vec<InitStep>,
    state: State,
    line: Vec<u8>,
    caller_id: CallerId,
    carrier_rate: Option<u32>,
    /// The last DCD level the driver reported.
    dcd: Option<bool>,
    /// The last bytes of call data, to find `NO CARRIER` split across reads.
    tail: Vec<u8>,
    /// Set on CONNECT: the LF that ends the CONNECT line is not call data.
    skip_lf: bool,
}

impl AnswerMachine {
    /// A machine that does nothing until [`Event::Start`].
    pub fn new(config: AnswerConfig) -> AnswerMachine {
        let steps = parse_init(&config.init, config.tilde_pause);
        AnswerMachine {
            config,
            steps,
            state: State::Stopped,
            line: Vec::new(),
            caller_id: CallerId::default(),
            carrier_rate: None,
            dcd: None,
            tail: Vec::new(),
            skip_lf: false,
        }
    }

    /// Whether a caller is connected.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected { .. })
    }

    /// Begins a reset: optionally drop DTR, then probe and init.
    fn reset(&mut self, now: Instant, drop_dtr: bool, attempt: u32, out: &mut Vec<Action>) {
        out.push(Action::Status(LineState::Initialising));
        self.line.clear();
        self.caller_id = CallerId::default();
        self.carrier_rate = None;
        if drop_dtr {
            out.push(Action::SetDtr(false));
            self.state = State::DropDtr {
                until: now + self.config.dtr_drop,
                attempt,
            };
        } else {
            out.push(Action::SetDtr(true));
            self.state = State::Settle {
                until: now + self.config.settle,
                attempt,
            };
        }
    }

    fn fail(&mut self, now: Instant, msg: &str, out: &mut Vec<Action>) {
        out.push(Action::Status(LineState::Error { msg: msg.into() }));
        self.state = State::Failed {
            until: now + self.config.retry_delay,
        };
    }

    fn run_step(&mut self, step: usize, now: Instant, out: &mut Vec<Action>) {
        match self.steps.get(step) {
            None => self.enter_idle(now, out),
            Some(InitStep::Pause(d)) => {
                self.state = State::Init {
                    step,
                    until: now + *d,
                    waiting_ok: false,
                };
            }
            Some(InitStep::Command(cmd)) => {
                let mut bytes = cmd.clone();
                bytes.push(b'\r');
                out.push(Action::Send(bytes));
                self.line.clear();
                self.state = State::Init {
                    step,
                    until: now + self.config.command_timeout,
                    waiting_ok: true,
                };
            }
        }
    }

    fn enter_idle(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.caller_id = CallerId::default();
        self.carrier_rate = None;
        out.push(Action::Status(LineState::Idle));
        self.state = State::Idle {
            rings: 0,
            last_ring: None,
            probe_due: now + self.config.watchdog,
            probing: None,
        };
    }

    fn connect(&mut self, rate: Option<u32>, now: Instant, out: &mut Vec<Action>) {
        let bps = self.carrier_rate.or(rate).unwrap_or(DEFAULT_CONNECT_BPS);
        self.line.clear();
        self.tail.clear();
        self.skip_lf = true;
        self.state = State::Connected {
            bps,
            since: now,
            carrier_seen: false,
        };
        out.push(Action::Status(LineState::Connected { bps }));
        out.push(Action::Connect {
            bps,
            caller_id: self.caller_id.display(),
        });
    }

    fn begin_hangup(&mut self, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::Status(LineState::HangingUp));
        if self.config.dtr_hangup {
            out.push(Action::SetDtr(false));
            self.state = State::HangingUp(Hangup::DtrLow {
                until: now + self.config.dtr_drop,
            });
        } else {
            self.state = State::HangingUp(Hangup::GuardBefore {
                until: now + self.config.guard,
            });
        }
    }

    fn carrier_lost(&mut self, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::EndCall);
        self.begin_hangup(now, out);
    }

    /// Handles one complete line from the modem in a command state.
    fn on_line(&mut self, line: &str, now: Instant, out: &mut Vec<Action>) {
        let result = parse_result(line);
        match self.state.clone() {
            State::Probe { .. } if result == Some(ResultCode::Ok) => self.run_step(0, now, out),
            State::Init {
                step,
                waiting_ok: true,
                ..
            } => match result {
                Some(ResultCode::Ok) => self.run_step(step + 1, now, out),
                Some(ResultCode::Error) => self.fail(now, "the modem refused an init command", out),
                _ => {}
            },
            State::Idle {
                rings, last_ring, ..
            } => {
                if self.read_caller_id(line) {
                    return;
                }
                match result {
                    Some(ResultCode::Ok) => {
                        self.state = State::Idle {
                            rings,
                            last_ring,
                            probe_due: now + self.config.watchdog,
                            probing: None,
                        };
                    }
                    Some(ResultCode::Ring) => {
                        let rings = match last_ring {
                            Some(t)
                                if now.saturating_duration_since(t) > self.config.ring_reset =>
                            {
                                self.caller_id = CallerId::default();
                                1
                            }
                            _ => rings + 1,
                        };
                        out.push(Action::Status(LineState::Ringing { rings }));
                        if self.config.rings == 0 || rings >= self.config.rings {
                            // With `rings = 0` the modem answers by itself (S0); either way,
                            // CONNECT may take many seconds of training.
                            if self.config.rings > 0 {
                                out.push(Action::Send(b"ATA\r".to_vec()));
                            }
                            out.push(Action::Status(LineState::Answering));
                            self.state = State::Answering {
                                until: now + self.config.answer_timeout,
                            };
                        } else {
                            // A RING proves the modem is alive: any probe is settled.
                            self.state = State::Idle {
                                rings,
                                last_ring: Some(now),
                                probe_due: now + self.config.watchdog,
                                probing: None,
                            };
                        }
                    }
                    Some(ResultCode::Carrier(bps)) => self.carrier_rate = Some(bps),
                    Some(ResultCode::Connect(rate)) => self.connect(rate, now, out),
                    Some(ResultCode::NoCarrier) if rings > 0 => self.enter_idle(now, out),
                    _ => {}
                }
            }
            State::Answering { .. } => {
                if self.read_caller_id(line) {
                    return;
                }
                match result {
                    Some(ResultCode::Carrier(bps)) => self.carrier_rate = Some(bps),
                    Some(ResultCode::Connect(rate)) => self.connect(rate, now, out),
                    Some(
                        ResultCode::NoCarrier
                        | ResultCode::Error
                        | ResultCode::Busy
                        | ResultCode::NoAnswer
                        | ResultCode::NoDialtone,
                    ) => self.reset(now, true, 1, out),
                    _ => {}
                }
            }
            State::HangingUp(Hangup::AwaitAth { .. }) => {
                if matches!(
                    result,
                    Some(ResultCode::Ok | ResultCode::NoCarrier | ResultCode::Error)
                ) {
                    self.reset(now, false, 1, out);
                }
            }
            _ => {}
        }
    }

    /// Stores a caller-ID line; returns whether the line was one.
    fn read_caller_id(&mut self, line: &str) -> bool {
        let Some((key, value)) = line.split_once('=') else {
            return false;
        };
        let value = value.trim();
        let value: String = value.chars().filter(|c| !c.is_control()).take(64).collect();
        let slot = match key.trim().to_ascii_uppercase().as_str() {
            "NAME" => &mut self.caller_id.name,
            "NMBR" => &mut self.caller_id.number,
            "DATE" => &mut self.caller_id.date,
            "TIME" => &mut self.caller_id.time,
            "MESG" => return true,
            _ => return false,
        };
        if !value.is_empty() {
            *slot = Some(value);
        }
        true
    }

    fn on_data(&mut self, data: &[u8], now: Instant, out: &mut Vec<Action>) {
        let mut i = 0;
        while i < data.len() {
            if matches!(self.state, State::Connected { .. }) {
                self.on_call_data(&data[i..], now, out);
                return;
            }
            let b = data[i];
            i += 1;
            if matches!(self.state, State::Stopped) {
                continue;
            }
            if b == b'\r' || b == b'\n' {
                if !self.line.is_empty() {
                    let text = String::from_utf8_lossy(&self.line).into_owned();
                    self.line.clear();
                    self.on_line(&text, now, out);
                }
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            }
        }
    }

    fn on_call_data(&mut self, data: &[u8], now: Instant, out: &mut Vec<Action>) {
        let data = if std::mem::take(&mut self.skip_lf) {
            data.strip_prefix(b"\n").unwrap_or(data)
        } else {
            data
        };
        if data.is_empty() {
            return;
        }
        out.push(Action::Deliver(data.to_vec()));
        if self.config.carrier_detect {
            return;
        }
        const TEXT: &[u8] = b"NO CARRIER";
        let mut window = std::mem::take(&mut self.tail);
        window.extend_from_slice(data);
        let found = window.windows(TEXT.len()).any(|w| w == TEXT);
        let keep = window.len().saturating_sub(TEXT.len() - 1);
        self.tail = window.split_off(keep);
        if found {
            self.carrier_lost(now, out);
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state.clone() {
            State::DropDtr { until, attempt } if now >= until => {
                out.push(Action::SetDtr(true));
                self.state = State::Settle {
                    until: now + self.config.settle,
                    attempt,
                };
            }
            State::Settle { until, attempt } if now >= until => {
                self.line.clear();
                out.push(Action::Send(b"AT\r".to_vec()));
                self.state = State::Probe {
                    until: now + self.config.command_timeout,
                    attempt,
                };
            }
            State::Probe { until, attempt } if now >= until => {
                if attempt < self.config.probe_attempts {
                    self.reset(now, true, attempt + 1, out);
                } else {
                    self.fail(now, "the modem does not answer AT", out);
                }
            }
            State::Init {
                step,
                until,
                waiting_ok,
            } if now >= until => {
                if waiting_ok {
                    self.fail(now, "the modem did not answer an init command", out);
                } else {
                    self.run_step(step + 1, now, out);
                }
            }
            State::Idle {
                rings,
                last_ring,
                probe_due,
                probing,
            } => {
                if let Some(deadline) = probing {
                    if now >= deadline {
                        out.push(Action::Status(LineState::Error {
                            msg: "the modem stopped answering AT".into(),
                        }));
                        self.reset(now, true, 1, out);
                        return;
                    }
                }
                if let Some(t) = last_ring {
                    if rings > 0 && now >= t + self.config.ring_reset {
                        self.enter_idle(now, out);
                        return;
                    }
                }
                if probing.is_none() && rings == 0 && now >= probe_due {
                    self.line.clear();
                    out.push(Action::Send(b"AT\r".to_vec()));
                    self.state = State::Idle {
                        rings,
                        last_ring,
                        probe_due,
                        probing: Some(now + self.config.command_timeout),
                    };
                }
            }
            State::Answering { until } if now >= until => self.reset(now, true, 1, out),
            State::Connected {
                bps,
                since,
                carrier_seen: false,
            } if self.config.carrier_detect && now >= since + self.config.carrier_grace => {
                if self.dcd == Some(false) {
                    self.carrier_lost(now, out);
                } else {
                    // DCD was never seen low after the grace time: count it as up.
                    self.state = State::Connected {
                        bps,
                        since,
                        carrier_seen: true,
                    };
                }
            }
            State::HangingUp(phase) => self.on_hangup_timer(phase, now, out),
            State::Failed { until } if now >= until => {
                out.push(Action::Status(LineState::Retrying));
                self.reset(now, true, 1, out);
            }
            _ => {}
        }
    }

    fn on_hangup_timer(&mut self, phase: Hangup, now: Instant, out: &mut Vec<Action>) {
        match phase {
            Hangup::DtrLow { until } if now >= until => {
                out.push(Action::SetDtr(true));
                let carrier_gone = self.config.carrier_detect && self.dcd == Some(false);
                if carrier_gone {
                    self.reset(now, false, 1, out);
                } else {
                    self.state = State::HangingUp(Hangup::GuardBefore {
                        until: now + self.config.guard,
                    });
                }
            }
            Hangup::GuardBefore { until } if now >= until => {
                out.push(Action::Send(b"+++".to_vec()));
                self.state = State::HangingUp(Hangup::GuardAfter {
                    until: now + self.config.guard,
                });
            }
            Hangup::GuardAfter { until } if now >= until => {
                self.line.clear();
                out.push(Action::Send(b"ATH0\r".to_vec()));
                self.state = State::HangingUp(Hangup::AwaitAth {
                    until: now + self.config.command_timeout,
                });
            }
            Hangup::AwaitAth { until } if now >= until => self.reset(now, true, 1, out),
            _ => {}
        }
    }

    fn on_carrier(&mut self, level: bool, now: Instant, out: &mut Vec<Action>) {
        self.dcd = Some(level);
        if !self.config.carrier_detect {
            return;
        }
        if let State::Connected {
            bps,
            since,
            carrier_seen,
        } = self.state
        {
            if level {
                self.state = State::Connected {
                    bps,
                    since,
                    carrier_seen: true,
                };
            } else if carrier_seen || now >= since + self.config.carrier_grace {
                self.carrier_lost(now, out);
            }
        }
    }
}

impl LineMachine for AnswerMachine {
    fn on_event(&mut self, event: Event<'_>, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.reset(now, true, 1, &mut out),
            Event::Data(data) => self.on_data(data, now, &mut out),
            Event::Timer => self.on_timer(now, &mut out),
            Event::Carrier(level) => self.on_carrier(level, now, &mut out),
            Event::SessionClosed => {
                if matches!(self.state, State::Connected { .. }) {
                    out.push(Action::EndCall);
                    self.begin_hangup(now, &mut out);
                }
            }
        }
        out
    }

    fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Stopped => None,
            State::DropDtr { until, .. }
            | State::Settle { until, .. }
            | State::Probe { until, .. }
            | State::Init { until, .. }
            | State::Answering { until }
            | State::Failed { until } => Some(*until),
            State::Idle {
                rings,
                last_ring,
                probe_due,
                probing,
            } => {
                let ring_end = last_ring
                    .filter(|_| *rings > 0)
                    .map(|t| t + self.config.ring_reset);
                // No routine probe while the phone rings; a probe already sent still times out.
                let probe = if *rings > 0 {
                    *probing
                } else {
                    Some(probing.unwrap_or(*probe_due))
                };
                match (ring_end, probe) {
                    (Some(r), Some(p)) => Some(r.min(p)),
                    (r, p) => r.or(p),
                }
            }
            State::Connected {
                since,
                carrier_seen: false,
                ..
            } if self.config.carrier_detect => Some(*since + self.config.carrier_grace),
            State::Connected { .. } => None,
            State::HangingUp(
                Hangup::DtrLow { until }
                | Hangup::GuardBefore { until }
                | Hangup::GuardAfter { until }
                | Hangup::AwaitAth { until },
            ) => Some(*until),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a machine with a virtual clock.
    struct Rig {
        m: AnswerMachine,
        now: Instant,
    }

    impl Rig {
        fn new(config: AnswerConfig) -> Rig {
            Rig {
                m: AnswerMachine::new(config),
                now: Instant::now(),
            }
        }
        fn ev(&mut self, e: Event<'_>) -> Vec<Action> {
            self.m.on_event(e, self.now)
        }
        fn data(&mut self, d: &[u8]) -> Vec<Action> {
            self.ev(Event::Data(d))
        }
        /// Advances to the machine's deadline and fires the timer.
        fn fire(&mut self) -> Vec<Action> {
            let d = self.m.deadline().expect("a deadline");
            self.now = self.now.max(d);
            self.ev(Event::Timer)
        }
        fn sent(actions: &[Action]) -> Vec<u8> {
            actions
                .iter()
                .filter_map(|a| match a {
                    Action::Send(b) => Some(b.clone()),
                    _ => None,
                })
                .flatten()
                .collect()
        }
        /// Runs reset and init to idle, answering every command with OK.
        fn run_to_idle(&mut self) {
            let mut last = self.ev(Event::Start);
            for _ in 0..50 {
                if last.contains(&Action::Status(LineState::Idle)) {
                    return;
                }
                last = if Self::sent(&last).is_empty() {
                    self.fire()
                } else {
                    self.data(b"\r\nOK\r\n")
                };
            }
            panic!("never reached idle");
        }
    }

    fn config() -> AnswerConfig {
        AnswerConfig {
            init: "ATZ^M~AT E0 V1 X4 S0=0".into(),
            rings: 2,
            ..AnswerConfig::default()
        }
    }

    #[test]
    fn init_string_splits_on_caret_m_and_tilde() {
        let steps = parse_init("ATZ^M~~AT&F^MATE0 V1^X", Duration::from_millis(500));
        assert_eq!(
            steps,
            vec![
                InitStep::Command(b"ATZ".to_vec()),
                InitStep::Pause(Duration::from_millis(500)),
                InitStep::Pause(Duration::from_millis(500)),
                InitStep::Command(b"AT&F".to_vec()),
                InitStep::Command(b"ATE0 V1\x18".to_vec()),
            ]
        );
        assert!(parse_init("", Duration::ZERO).is_empty());
    }

    #[test]
    fn start_resets_with_dtr_then_probes_and_inits() {
        let mut r = Rig::new(config());
        let a = r.ev(Event::Start);
        assert!(a.contains(&Action::SetDtr(false)));
        let a = r.fire();
        assert_eq!(a, vec![Action::SetDtr(true)]);
        let a = r.fire();
        assert_eq!(Rig::sent(&a), b"AT\r");
        let a = r.data(b"AT\r\r\nOK\r\n");
        assert_eq!(Rig::sent(&a), b"ATZ\r");
        let a = r.data(b"OK\r\n");
        assert!(Rig::sent(&a).is_empty(), "pause before the next command");
        let a = r.fire();
        assert_eq!(Rig::sent(&a), b"AT E0 V1 X4 S0=0\r");
        let a = r.data(b"\r\nOK\r\n");
        assert_eq!(a, vec![Action::Status(LineState::Idle)]);
    }

    #[test]
    fn answers_after_n_rings_with_caller_id() {
        let mut r = Rig::new(config());
        r.run_to_idle();
        let a = r.data(b"\r\nRING\r\n");
        assert_eq!(a, vec![Action::Status(LineState::Ringing { rings: 1 })]);
        r.data(b"\r\nDATE = 1122\r\nTIME = 0230\r\nNMBR = 5551234\r\nNAME = JOE ATARI\r\n");
        r.now += Duration::from_secs(4);
        let a = r.data(b"\r\nRING\r\n");
        assert_eq!(Rig::sent(&a), b"ATA\r");
        assert!(a.contains(&Action::Status(LineState::Answering)));
        r.now += Duration::from_secs(10);
        let a = r.data(b"\r\nCONNECT 2400\r\nhello");
        assert_eq!(
            a,
            vec![
                Action::Status(LineState::Connected { bps: 2400 }),
                Action::Connect {
                    bps: 2400,
                    caller_id: Some("JOE ATARI <5551234>".into())
                },
                Action::Deliver(b"hello".to_vec()),
            ]
        );
        assert!(r.m.is_connected());
    }

    #[test]
    fn rings_far_apart_start_a_new_count() {
        let mut r = Rig::new(config());
        r.run_to_idle();
        r.data(b"RING\r");
        r.now += Duration::from_secs(9);
        let a = r.data(b"RING\r");
        assert_eq!(a, vec![Action::Status(LineState::Ringing { rings: 1 })]);
    }

    #[test]
    fn ringing_that_stops_returns_to_idle() {
        let mut r = Rig::new(config());
        r.run_to_idle();
        r.data(b"RING\r");
        let a = r.fire();
        assert_eq!(a, vec![Action::Status(LineState::Idle)]);
    }

    #[test]
    fn auto_answer_takes_unsolicited_connect_and_carrier_rate() {
        let mut r = Rig::new(AnswerConfig {
            rings: 0,
            ..config()
        });
        r.run_to_idle();
        let a = r.data(b"RING\r\n");
        assert!(Rig::sent(&a).is_empty());
        assert!(a.contains(&Action::Status(LineState::Answering)));
        r.now += Duration::from_secs(15);
        assert!(r.m.deadline().unwrap() > r.now, "training may take a while");
        let a = r.data(b"CARRIER 28800\r\nPROTOCOL: LAP-M\r\nCONNECT 115200\r\n");
        assert!(a.contains(&Action::Connect {
            bps: 28800,
            caller_id: None
        }));
    }

    #[test]
    fn connect_variants_reach_connected() {
        for (line, bps) in [
            (&b"CONNECT\r\n"[..], 300),
            (b"CONNECT 14400/ARQ/V42BIS\r\n", 14400),
            (b"10\r", 2400),
            (b"5\r", 1200),
        ] {
            let mut r = Rig::new(AnswerConfig {
                rings: 1,
                ..config()
            });
            r.run_to_idle();
            r.data(b"RING\r\n");
            let a = r.data(line);
            assert!(
                a.contains(&Action::Status(LineState::Connected { bps })),
                "{line:?}: {a:?}"
            );
        }
    }

    #[test]
    fn failed_answer_resets_the_modem() {
        let mut r = Rig::new(AnswerConfig {
            rings: 1,
            ..config()
        });
        r.run_to_idle();
        r.data(b"RING\r\n");
        let a = r.data(b"NO CARRIER\r\n");
        assert!(a.contains(&Action::SetDtr(false)));
        assert!(a.contains(&Action::Status(LineState::Initialising)));
    }

    #[test]
    fn dcd_drop_ends_call_and_hangs_up_by_dtr() {
        let mut r = Rig::new(AnswerConfig {
            rings: 1,
            ..config()
        });
        r.run_to_idle();
        r.data(b"RING\r\n");
        r.data(b"CONNECT 2400\r\n");
        assert!(r.ev(Event::Carrier(true)).is_empty());
        let a = r.data(b"NO CARRIER typed by a caller");
        assert_eq!(a.len(), 1, "text is data while DCD is watched");
        let a = r.ev(Event::Carrier(false));
        assert_eq!(
            a,
            vec![
                Action::EndCall,
                Action::Status(LineState::HangingUp),
                Action::SetDtr(false)
            ]
        );
        let a = r.fire();
        assert!(a.contains(&Action::SetDtr(true)));
        assert!(a.contains(&Action::Status(LineState::Initialising)));
        let a = r.fire();
        assert_eq!(Rig::sent(&a), b"AT\r");
    }

    #[test]
    fn dcd_that_never_rises_counts_as_lost_after_grace() {
        let mut r = Rig::new(AnswerConfig {
            rings: 1,
            ..config()
        });
        r.run_to_idle();
        r.data(b"RING\r\n");
        r.data(b"CONNECT 2400\r\n");
        assert!(r.ev(Event::Carrier(false)).is_empty());
        let a = r.fire();
        assert_eq!(a.first(), Some(&Action::EndCall));
    }

    #[test]
    fn no_carrier_text_split_across_reads_ends_call_without_dcd() {
        let mut r = Rig::new(AnswerConfig {
            rings: 1,
            carrier_detect: false,
            ..config()
        });
        r.run_to_idle();
        r.data(b"RING\r\n");
        r.data(b"CONNECT 2400\r\n");
        assert_eq!(r.data(b"abc\r\nNO CAR").len(), 1);
        let a = r.data(b"RIER\r\n");
        assert!(a.contains(&Action::EndCall));
    }

    #[test]
    fn session_close_hangs_up_with_escape_fallback_when_carrier_stays() {
        let mut r = Rig::new(AnswerConfig {
            rings: 1,
            ..config()
        });
        r.run_to_idle();
        r.data(b"RING\r\n");
        r.data(b"CONNECT 2400\r\n");
        r.ev(Event::Carrier(true));
        let a = r.ev(Event::SessionClosed);
        assert!(a.contains(&Action::SetDtr(false)));
        let a = r.fire();
        assert_eq!(a, vec![Action::SetDtr(true)], "carrier still up");
        let a = r.fire();
        assert_eq!(Rig::sent(&a), b"+++");
        let a = r.fire();
        assert_eq!(Rig::sent(&a), b"ATH0\r");
        let a = r.data(b"\r\nOK\r\n");
        assert!(a.contains(&Action::Status(LineState::Initialising)));
        assert!(!a.contains(&Action::SetDtr(false)), "no second DTR drop");
    }

    #[test]
    fn escape_only_hangup_when_dtr_is_not_used() {
        let mut r = Rig::new(AnswerConfig {
            rings: 1,
            dtr_hangup: false,
            ..config()
        });
        r.run_to_idle();
        r.data(b"RING\r\n");
        r.data(b"CONNECT 9600\r\n");
        let a = r.ev(Event::SessionClosed);
        assert!(!a.contains(&Action::SetDtr(false)));
        assert_eq!(Rig::sent(&r.fire()), b"+++");
    }

    #[test]
    fn modem_that_never_answers_at_is_retried_then_reported() {
        let mut r = Rig::new(config());
        r.ev(Event::Start);
        let mut probes = 0;
        let mut error = None;
        for _ in 0..20 {
            let a = r.fire();
            if Rig::sent(&a) == b"AT\r" {
                probes += 1;
            }
            if let Some(Action::Status(LineState::Error { msg })) = a
                .iter()
                .find(|x| matches!(x, Action::Status(LineState::Error { .. })))
            {
                error = Some(msg.clone());
                break;
            }
        }
        assert_eq!(probes, 3);
        assert_eq!(error.as_deref(), Some("the modem does not answer AT"));
        let a = r.fire();
        assert!(a.contains(&Action::Status(LineState::Retrying)));
        assert!(a.contains(&Action::SetDtr(false)));
    }

    #[test]
    fn watchdog_probes_idle_modem_and_resets_when_silent() {
        let mut r = Rig::new(config());
        r.run_to_idle();
        let start = r.now;
        let a = r.fire();
        assert_eq!(Rig::sent(&a), b"AT\r");
        assert!(r.now >= start + Duration::from_secs(300));
        assert!(r.data(b"OK\r\n").is_empty());
        let a = r.fire();
        assert_eq!(Rig::sent(&a), b"AT\r");
        let a = r.fire();
        assert!(a.contains(&Action::Status(LineState::Error {
            msg: "the modem stopped answering AT".into()
        })));
        assert!(a.contains(&Action::SetDtr(false)));
    }

    #[test]
    fn init_error_fails_and_retries() {
        let mut r = Rig::new(config());
        r.ev(Event::Start);
        r.fire();
        r.fire();
        r.data(b"OK\r\n");
        let a = r.data(b"ERROR\r\n");
        assert!(matches!(
            a.as_slice(),
            [Action::Status(LineState::Error { .. })]
        ));
        assert!(r.m.deadline().is_some());
    }

    #[test]
    fn ringing_past_the_probe_time_does_not_spin_or_probe() {
        let mut r = Rig::new(AnswerConfig {
            rings: 3,
            ..config()
        });
        r.run_to_idle();
        r.now += Duration::from_secs(299);
        r.data(b"RING\r\n");
        r.now += Duration::from_secs(2);
        // The watchdog time has passed while ringing: the next deadline is the ring reset.
        let d = r.m.deadline().unwrap();
        assert!(d > r.now, "deadline in the past would spin the driver");
        let a = r.fire();
        assert_eq!(a, vec![Action::Status(LineState::Idle)]);
        assert!(r.m.deadline().unwrap() > r.now);
    }

    #[test]
    fn dcd_that_stays_unknown_through_grace_stops_the_grace_timer() {
        let mut r = Rig::new(AnswerConfig {
            rings: 1,
            ..config()
        });
        r.run_to_idle();
        r.data(b"RING\r\nCONNECT 2400\r\n");
        assert!(r.fire().is_empty());
        assert_eq!(r.m.deadline(), None);
        assert!(r.m.is_connected());
    }

    #[test]
    fn garbage_and_long_lines_never_panic() {
        let mut r = Rig::new(config());
        r.run_to_idle();
        let junk: Vec<u8> = (0..2000u32).map(|i| (i * 37 % 256) as u8).collect();
        r.data(&junk);
        r.data(&[0xFF; 600]);
        r.data(b"NAME=\r\n=\r\n");
        assert!(!r.m.is_connected());
    }
}
