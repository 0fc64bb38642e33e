//! Evidence about a caller's terminal, weighed without I/O.
//!
//! Owns the pure parts of detection (issue 2 item 5, ansi.md §4, atascii.md §5): terminal
//! type names, the first line end, the ANSI size probe and its reply, size clamping, and the
//! final one-key question. The session sends the probes, runs the time-outs and decides; this
//! module must not send anything itself or assume an answer will ever come.

use super::Charset;

/// The charset a telnet TTYPE list (or an rlogin terminal field such as `ATASCII/9600`)
/// names, or `None` when it gives no evidence.
///
/// The names are taken in the order the client sent them and the first decisive one wins.
/// `ATASCII` means ATASCII. ANSI-BBS clients and Unix terminal emulators mean ANSI. `dumb`,
/// `unknown`, `vt52` and the `vt1xx`/`vt2xx` family are *not* evidence: tcpser and FujiNet
/// report `VT100` or `dumb` for Atari callers, and real DEC terminals have no CP437, so for
/// those the session goes on to the line-end test and the ANSI probe.
pub fn charset_from_ttype(names: &[String]) -> Option<Charset> {
    names.iter().find_map(|name| charset_from_name(name))
}

fn charset_from_name(name: &str) -> Option<Charset> {
    let name = name.trim().to_ascii_lowercase();
    // The rlogin terminal field carries a speed after a slash.
    let name = name.split('/').next().unwrap_or("");
    if name.starts_with("atascii") || name == "atari" {
        return Some(Charset::Atascii);
    }
    const ANSI_PREFIXES: [&str; 14] = [
        "ansi",
        "pcansi",
        "syncterm",
        "cterm",
        "xterm",
        "linux",
        "screen",
        "tmux",
        "putty",
        "rxvt",
        "konsole",
        "iterm",
        "netrunner",
        "icyterm",
    ];
    if ANSI_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Some(Charset::Ansi);
    }
    None
}

/// What the byte that ended the caller's first line says: `Some(Charset::Atascii)` for EOL
/// 0x9B; `Some(Charset::Ascii)` for CR or LF, meaning "not ATASCII, probe for ANSI next";
/// `None` for any other byte.
pub fn charset_from_line_end(byte: u8) -> Option<Charset> {
    match byte {
        0x9B => Some(Charset::Atascii),
        b'\r' | b'\n' => Some(Charset::Ascii),
        _ => None,
    }
}

/// The smallest and largest sizes taken from a peer; anything outside is not believed.
const MIN_COLS: u16 = 20;
const MIN_ROWS: u16 = 8;
/// Sizes are clamped to this; 255 columns is wider than any BBS screen is laid out for.
const MAX_SIZE: u16 = 255;
/// A reply of 999 (or more) means the terminal did not clamp the probe's cursor move.
const UNCLAMPED: u16 = 999;

/// A believable (columns, rows) pair, or `None`.
///
/// Accepts 20 or more columns (the 40-column Atari and narrow terminals included) and 8 or
/// more rows, clamps each to at most 255, and rejects 0 (NAWS "unknown"), tiny answers such as
/// NetRunner's 1;1 and 999 or more (a terminal that ignored the probe's cursor move).
pub fn clamp_size(cols: u16, rows: u16) -> Option<(u16, u16)> {
    if !(MIN_COLS..UNCLAMPED).contains(&cols) || !(MIN_ROWS..UNCLAMPED).contains(&rows) {
        return None;
    }
    Some((cols.min(MAX_SIZE), rows.min(MAX_SIZE)))
}

/// The ANSI size probe: save the cursor (DEC `ESC 7`), move to row 999 column 999 (the
/// terminal stops at its bottom-right cell), ask for the cursor position (`ESC [6n`) and
/// restore the cursor (`ESC 8`). Send only to callers that are not ATASCII.
///
/// The reply is a [`Key::CursorPosition`](super::keys::Key::CursorPosition) from the key
/// decoder; pass it to [`size_from_cpr`]. Any reply at all means the terminal speaks ANSI;
/// no reply within the session's time-out means it does not.
pub fn ansi_size_probe() -> &'static [u8] {
    b"\x1b7\x1b[999;999H\x1b[6n\x1b8"
}

/// The (columns, rows) a cursor-position reply to [`ansi_size_probe`] reveals, if believable.
pub fn size_from_cpr(row: u16, col: u16) -> Option<(u16, u16)> {
    clamp_size(col, row)
}

/// The last-resort question, readable on every charset: 7-bit text with no line end (CR LF
/// would be graphics on an Atari and EOL garbage on a PC) and no `{`, `}`, `~` or backtick.
pub fn charset_question() -> &'static [u8] {
    b" Press RETURN for ANSI colour, A for Atari, P for plain text: "
}

/// The charset chosen by the byte answering [`charset_question`], if it is an answer.
pub fn charset_from_answer(byte: u8) -> Option<Charset> {
    match byte {
        // The Atari's RETURN is EOL; its inverse key may set bit 7 on letters.
        0x9B | b'A' | b'a' | 0xC1 | 0xE1 => Some(Charset::Atascii),
        b'\r' | b'\n' => Some(Charset::Ansi),
        b'P' | b'p' => Some(Charset::Ascii),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ttype_names() {
        assert_eq!(
            charset_from_ttype(&names(&["ATASCII"])),
            Some(Charset::Atascii)
        );
        assert_eq!(
            charset_from_ttype(&names(&["atascii/9600"])),
            Some(Charset::Atascii)
        );
        assert_eq!(
            charset_from_ttype(&names(&["SyncTERM", "ANSI"])),
            Some(Charset::Ansi)
        );
        assert_eq!(
            charset_from_ttype(&names(&["XTERM-256COLOR"])),
            Some(Charset::Ansi)
        );
        assert_eq!(
            charset_from_ttype(&names(&["ansi-bbs"])),
            Some(Charset::Ansi)
        );
        assert_eq!(charset_from_ttype(&names(&["VT100", "dumb", "vt52"])), None);
        assert_eq!(
            charset_from_ttype(&names(&["dumb", "ANSI"])),
            Some(Charset::Ansi)
        );
        assert_eq!(charset_from_ttype(&[]), None);
    }

    #[test]
    fn line_ends() {
        assert_eq!(charset_from_line_end(0x9B), Some(Charset::Atascii));
        assert_eq!(charset_from_line_end(b'\r'), Some(Charset::Ascii));
        assert_eq!(charset_from_line_end(b'x'), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(clamp_size(80, 24), Some((80, 24)));
        assert_eq!(clamp_size(40, 24), Some((40, 24)));
        assert_eq!(clamp_size(300, 100), Some((255, 100)));
        assert_eq!(clamp_size(0, 0), None);
        assert_eq!(clamp_size(80, 0), None);
        assert_eq!(clamp_size(1, 1), None);
        assert_eq!(clamp_size(999, 999), None);
        assert_eq!(size_from_cpr(25, 80), Some((80, 25)));
    }

    #[test]
    fn probe_reply_decodes_to_a_size() {
        use crate::terminal::keys::{Key, KeyDecoder};
        assert!(ansi_size_probe().ends_with(b"\x1b[6n\x1b8"));
        let keys = KeyDecoder::new(Charset::Ansi).feed(b"\x1b[24;80R");
        assert_eq!(keys, [Key::CursorPosition { row: 24, col: 80 }]);
        assert_eq!(size_from_cpr(24, 80), Some((80, 24)));
    }

    #[test]
    fn question_is_safe_everywhere() {
        let q = charset_question();
        assert!(q.iter().all(|b| (0x20..0x7B).contains(b) && *b != b'`'));
        assert_eq!(charset_from_answer(0x9B), Some(Charset::Atascii));
        assert_eq!(charset_from_answer(b'\r'), Some(Charset::Ansi));
        assert_eq!(charset_from_answer(b'p'), Some(Charset::Ascii));
        assert_eq!(charset_from_answer(b'z'), None);
    }
}
