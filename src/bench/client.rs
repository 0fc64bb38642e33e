//! A minimal telnet *client* protocol core for load tools and tests: it agrees to TTYPE,
//! NAWS, SGA and BINARY, accepts the server's ECHO, answers TTYPE with a fixed name and
//! reports a fixed window size. Pure: bytes in, (data, reply) out.

use std::collections::HashSet;

use crate::telnet::cmd::{DO, DONT, IAC, SB, SE, WILL, WONT};
use crate::telnet::opt::{BINARY, ECHO, NAWS, SGA, TTYPE};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Data,
    Iac,
    Verb(u8),
    Sb,
    SbIac,
}

/// The client side of telnet, as simple as a well-behaved terminal program.
#[derive(Debug)]
pub struct TelnetClient {
    ttype: String,
    cols: u16,
    rows: u16,
    state: State,
    sb: Vec<u8>,
    answered: HashSet<(u8, u8)>,
}

impl TelnetClient {
    /// A client that calls itself `ttype` and has a `cols` x `rows` window.
    pub fn new(ttype: &str, cols: u16, rows: u16) -> TelnetClient {
        TelnetClient {
            ttype: ttype.to_string(),
            cols,
            rows,
            state: State::Data,
            sb: Vec::new(),
            answered: HashSet::new(),
        }
    }

    /// Processes bytes from the server: returns the application data in them and the
    /// replies to send back.
    pub fn process(&mut self, bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut data = Vec::new();
        let mut reply = Vec::new();
        for &b in bytes {
            self.state = match (self.state, b) {
                (State::Data, IAC) => State::Iac,
                (State::Data, b) => {
                    data.push(b);
                    State::Data
                }
                (State::Iac, IAC) => {
                    data.push(IAC);
                    State::Data
                }
                (State::Iac, SB) => {
                    self.sb.clear();
                    State::Sb
                }
                (State::Iac, v @ WILL..=DONT) => State::Verb(v),
                (State::Iac, _) => State::Data,
                (State::Verb(v), opt) => {
                    self.negotiate(v, opt, &mut reply);
                    State::Data
                }
                (State::Sb, IAC) => State::SbIac,
                (State::Sb, b) => {
                    if self.sb.len() < 64 {
                        self.sb.push(b);
                    }
                    State::Sb
                }
                (State::SbIac, SE) => {
                    if self.sb == [TTYPE, 1] {
                        reply.extend_from_slice(&[IAC, SB, TTYPE, 0]);
                        reply.extend_from_slice(self.ttype.as_bytes());
                        reply.extend_from_slice(&[IAC, SE]);
                    }
                    State::Data
                }
                (State::SbIac, b) => {
                    self.sb.push(b);
                    State::Sb
                }
            };
        }
        (data, reply)
    }

    fn negotiate(&mut self, verb: u8, opt: u8, reply: &mut Vec<u8>) {
        // Answer each request once: a repeat is an acknowledgement, not a new question.
        if !self.answered.insert((verb, opt)) {
            return;
        }
        match verb {
            DO if matches!(opt, BINARY | SGA | TTYPE | NAWS) => {
                reply.extend_from_slice(&[IAC, WILL, opt]);
                if opt == NAWS {
                    let [ch, cl] = self.cols.to_be_bytes();
                    let [rh, rl] = self.rows.to_be_bytes();
                    reply.extend_from_slice(&[IAC, SB, NAWS, ch, cl, rh, rl, IAC, SE]);
                }
            }
            DO => reply.extend_from_slice(&[IAC, WONT, opt]),
            WILL if matches!(opt, BINARY | ECHO | SGA) => reply.extend_from_slice(&[IAC, DO, opt]),
            WILL => reply.extend_from_slice(&[IAC, DONT, opt]),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_ttype_and_naws_once() {
        let mut c = TelnetClient::new("ANSI", 80, 24);
        let (data, reply) = c.process(&[IAC, DO, TTYPE, b'h', b'i', IAC, IAC]);
        assert_eq!(data, b"hi\xff");
        assert_eq!(reply, [IAC, WILL, TTYPE]);
        let (_, reply) = c.process(&[IAC, DO, TTYPE]);
        assert!(reply.is_empty(), "no reply to an acknowledgement");
        let (_, reply) = c.process(&[IAC, SB, TTYPE, 1, IAC, SE]);
        assert_eq!(reply, b"\xff\xfa\x18\x00ANSI\xff\xf0");
        let (_, reply) = c.process(&[IAC, DO, NAWS]);
        assert_eq!(
            reply,
            [IAC, WILL, NAWS, IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE]
        );
        let (_, reply) = c.process(&[IAC, DO, 99, IAC, WILL, 1]);
        assert_eq!(reply, [IAC, WONT, 99, IAC, DO, 1]);
    }
}
