//! The lobby: a connected caller who holds no node yet, and terminal detection.
//!
//! The lobby sends one short line of plain text and nothing else until a line ends: no ANSI
//! probe and no art before a vintage machine is ready, and on a raw link no telnet byte. The
//! byte that ends the first line decides ATASCII (0x9B) against the rest; telnet TTYPE/NAWS
//! are used when the peer speaks telnet; an ANSI cursor-position probe is sent only to
//! callers who are not ATASCII; a one-key question settles what is still unsure.

use std::time::{Duration, Instant};

use crate::terminal::detect::{ansi_size_probe, charset_from_ttype, size_from_cpr};
use crate::terminal::keys::Key;
use crate::terminal::{Caps, Charset};
use crate::transport::connection::Input;

use super::term::{End, Term};

/// The lobby's only line, plain ASCII that means the same in every charset. It has no line
/// ending on purpose: CR LF would print two glyphs on an Atari and 0x9B a `¢` on a PC.
pub const LOBBY_PROMPT: &str = "NuggetNet BBS - press RETURN ";

/// What the lobby learned about the caller's terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub caps: Caps,
    /// How the charset was decided, for the log.
    pub evidence: &'static str,
}

/// Limits for the lobby.
#[derive(Debug, Clone, Copy)]
pub struct LobbyTimes {
    pub lobby_timeout: Duration,
    pub telnet_wait: Duration,
    pub probe_timeout: Duration,
}

/// Runs the lobby and detection. The charset is final when this returns.
pub async fn run(
    term: &mut Term,
    forced: Option<Charset>,
    times: LobbyTimes,
) -> Result<Detected, End> {
    term.connection().start().await.map_err(|_| End::Hangup)?;
    term.write(LOBBY_PROMPT.as_bytes()).await?;

    // Wait for the byte that ends the first line; everything typed before it is dropped.
    let deadline = Instant::now() + times.lobby_timeout;
    let terminator = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(End::Idle);
        }
        match term.input(left).await? {
            None => return Err(End::Idle),
            Some(Input::Data(data)) => {
                if let Some(pos) = data.iter().position(|&b| matches!(b, 0x9B | b'\r' | b'\n')) {
                    break data[pos];
                }
            }
            Some(_) => {}
        }
    };

    // A telnet client answers TTYPE within moments of connecting; give a slow one the rest
    // of the telnet wait.
    if term.connection().is_telnet() && term.ttypes().is_empty() {
        let until = Instant::now() + times.telnet_wait;
        while term.ttypes().is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || term.input(left).await?.is_none() {
                break;
            }
        }
    }

    let naws = term.naws();
    let sized = |charset: Charset| {
        let mut caps = Caps::for_charset(charset);
        if let Some((w, h)) = naws {
            caps.width = w;
            caps.height = h;
        }
        caps
    };

    if let Some(charset) = forced {
        return Ok(Detected {
            caps: sized(charset),
            evidence: "listener setting",
        });
    }
    if terminator == 0x9B {
        let mut caps = Caps::for_charset(Charset::Atascii);
        // An XEP80 or an emulator may report 80 columns over telnet; trust a sane NAWS.
        if let Some((w, h)) = naws {
            caps.width = w;
            caps.height = h;
        }
        return Ok(Detected {
            caps,
            evidence: "ATASCII RETURN (0x9B)",
        });
    }
    if let Some(charset) = charset_from_ttype(term.ttypes()) {
        return Ok(Detected {
            caps: sized(charset),
            evidence: "telnet terminal type",
        });
    }

    // Not an Atari: ask an ANSI terminal where the far corner is.
    term.write(ansi_size_probe()).await?;
    let until = Instant::now() + times.probe_timeout;
    // The reply may arrive split across reads; keep a short tail of what came in.
    let mut reply: Vec<u8> = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match term.input(left).await? {
            None => break,
            Some(Input::Data(data)) => {
                reply.extend_from_slice(&data);
                if reply.len() > 64 {
                    reply.drain(..reply.len() - 64);
                }
                if let Some((row, col)) = find_cpr(&reply) {
                    let mut caps = Caps::for_charset(Charset::Ansi);
                    if let Some((w, h)) = naws.or_else(|| size_from_cpr(row, col)) {
                        caps.width = w;
                        caps.height = h;
                    }
                    return Ok(Detected {
                        caps,
                        evidence: "ANSI cursor-position reply",
                    });
                }
            }
            Some(_) => {}
        }
    }

    // Still unsure: one key decides.
    // The question is asked in plain ASCII, which every terminal shows.
    let mut plain = Caps::for_charset(Charset::Ascii);
    if let Some((w, h)) = naws {
        plain.width = w;
        plain.height = h;
    }
    term.set_caps(plain);
    term.discard_typeahead();
    let mut out = term.out();
    out.newline();
    out.text("Press A for ANSI colour, T for Atari ATASCII, or RETURN for plain text.");
    out.newline();
    term.send(out).await?;
    loop {
        let key = term.hotkey("Terminal?").await?;
        let charset = match key {
            Key::Char(c) if c.eq_ignore_ascii_case(&'a') => Charset::Ansi,
            Key::Enter => Charset::Ascii,
            Key::Char(c) if c.eq_ignore_ascii_case(&'p') => Charset::Ascii,
            Key::Char(c) if c.eq_ignore_ascii_case(&'t') => Charset::Atascii,
            _ => continue,
        };
        return Ok(Detected {
            caps: sized(charset),
            evidence: "caller's choice",
        });
    }
}

/// Finds a cursor-position report `ESC [ row ; col R` anywhere in the input.
pub fn find_cpr(data: &[u8]) -> Option<(u16, u16)> {
    let mut i = 0;
    while i + 1 < data.len() {
        if data[i] == 0x1B && data[i + 1] == b'[' {
            let rest = &data[i + 2..];
            let end = rest
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b';'));
            if let Some(end) = end {
                if rest[end] == b'R' {
                    let body = std::str::from_utf8(&rest[..end]).ok()?;
                    let (r, c) = body.split_once(';')?;
                    return Some((r.parse().ok()?, c.parse().ok()?));
                }
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpr_is_found_among_other_bytes() {
        assert_eq!(find_cpr(b"\x1b[24;80R"), Some((24, 80)));
        assert_eq!(find_cpr(b"x\r\x1b[25;132Ry"), Some((25, 132)));
        assert_eq!(find_cpr(b"\x1b[A\x1b[1;1R"), Some((1, 1)));
        assert_eq!(find_cpr(b"\x1b[24;80"), None);
        assert_eq!(find_cpr(b"[24;80R"), None);
    }

    #[test]
    fn lobby_prompt_is_plain_ascii_without_line_ending() {
        assert!(LOBBY_PROMPT
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && !b"{}~`".contains(&b)));
    }
}
