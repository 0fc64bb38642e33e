//! A direct (null-modem) line: no AT commands at all.
//!
//! Owns [`DirectLine`], the trivial machine for issue 4 item 4: the line waits, idle, until
//! the attached computer sends its first byte (the caller presses RETURN); then a call is
//! connected at the port speed and that first byte is passed to the session, so the lobby can
//! tell an Atari (EOL 0x9B) from a PC (CR). The call ends when the session closes, or when the
//! carrier-detect input drops on ports configured to watch it (a cable that brings the
//! computer's DTR to our DCD). Pure: no I/O, no clock.

use std::time::Instant;

use super::{Action, Event, LineMachine, LineState};

/// The direct-line machine.
#[derive(Debug)]
pub struct DirectLine {
    bps: u32,
    carrier_detect: bool,
    connected: bool,
}

impl DirectLine {
    /// A direct line at `bps`; `carrier_detect` makes a DCD drop end the call.
    pub fn new(bps: u32, carrier_detect: bool) -> DirectLine {
        DirectLine {
            bps,
            carrier_detect,
            connected: false,
        }
    }
}

impl LineMachine for DirectLine {
    fn on_event(&mut self, event: Event<'_>, _now: Instant) -> Vec<Action> {
        match event {
            Event::Start => {
                self.connected = false;
                vec![Action::SetDtr(true), Action::Status(LineState::Idle)]
            }
            Event::Data(data) if self.connected => vec![Action::Deliver(data.to_vec())],
            Event::Data(data) if !data.is_empty() => {
                self.connected = true;
                vec![
                    Action::Status(LineState::Connected { bps: self.bps }),
                    Action::Connect {
                        bps: self.bps,
                        caller_id: None,
                    },
                    Action::Deliver(data.to_vec()),
                ]
            }
            Event::Carrier(false) if self.connected && self.carrier_detect => {
                self.connected = false;
                vec![Action::EndCall, Action::Status(LineState::Idle)]
            }
            Event::SessionClosed if self.connected => {
                self.connected = false;
                vec![Action::EndCall, Action::Status(LineState::Idle)]
            }
            _ => Vec::new(),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_key_connects_and_is_delivered() {
        let now = Instant::now();
        let mut d = DirectLine::new(9600, false);
        assert!(d
            .on_event(Event::Start, now)
            .contains(&Action::Status(LineState::Idle)));
        let a = d.on_event(Event::Data(&[0x9B]), now);
        assert_eq!(
            a,
            vec![
                Action::Status(LineState::Connected { bps: 9600 }),
                Action::Connect {
                    bps: 9600,
                    caller_id: None
                },
                Action::Deliver(vec![0x9B]),
            ]
        );
        assert_eq!(
            d.on_event(Event::Data(b"x"), now),
            vec![Action::Deliver(b"x".to_vec())]
        );
        assert!(d.on_event(Event::Carrier(false), now).is_empty());
        assert_eq!(
            d.on_event(Event::SessionClosed, now),
            vec![Action::EndCall, Action::Status(LineState::Idle)]
        );
    }

    #[test]
    fn dcd_drop_ends_call_when_watched() {
        let now = Instant::now();
        let mut d = DirectLine::new(2400, true);
        d.on_event(Event::Start, now);
        d.on_event(Event::Data(b"\r"), now);
        assert_eq!(
            d.on_event(Event::Carrier(false), now),
            vec![Action::EndCall, Action::Status(LineState::Idle)]
        );
    }
}
