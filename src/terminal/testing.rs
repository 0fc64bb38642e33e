//! Test support: what a caller would see, for each charset.
//!
//! Owns the one `check` helper the terminal tests use instead of pasted escape strings. It
//! renders through a real terminal emulator (`vt100`) for ANSI, through [`AtasciiScreen`] for
//! ATASCII and a plain line splitter for ASCII, and asserts the charset invariants on the way.

use super::atascii_screen::AtasciiScreen;
use super::{cp437, Caps, Charset};

/// Rows of the emulated ANSI and ASCII screens; large so that nothing scrolls away.
const TALL: u16 = 200;

/// The visible text of `bytes` on a terminal with `caps`, after asserting that the bytes obey
/// the charset's rules and that no row is wider than `caps.width - 1`.
pub fn visible(bytes: &[u8], caps: &Caps) -> String {
    let limit = usize::from(caps.width) - 1;
    match caps.charset {
        Charset::Ansi => {
            let text = cp437::to_unicode(bytes);
            for line in strip_csi(&text).split("\r\n") {
                assert!(
                    line.chars().count() <= limit,
                    "ANSI row wider than {limit}: {line:?}"
                );
            }
            let mut parser = vt100::Parser::new(TALL, caps.width, 0);
            parser.process(text.as_bytes());
            let screen = parser.screen();
            for row in 0..TALL {
                assert!(!screen.row_wrapped(row), "ANSI row {row} wrapped");
            }
            screen.contents()
        }
        Charset::Atascii => {
            assert!(!bytes.contains(&0x0D), "CR sent to an Atari");
            assert!(!bytes.contains(&0x0A), "LF sent to an Atari");
            for pair in bytes.windows(2) {
                assert!(pair != b"\x1b[", "escape sequence sent to an Atari");
            }
            let mut quoted = false;
            let mut col = 0;
            for (i, &b) in bytes.iter().enumerate() {
                if quoted {
                    quoted = false;
                    col += 1;
                    continue;
                }
                match b {
                    0x1B => quoted = true,
                    0x9B => col = 0,
                    0x7D => assert_eq!(i, 0, "clear screen in the middle of text"),
                    b'{' | b'~' | b'`' => panic!("raw {:?} sent to an Atari", char::from(b)),
                    _ => col += 1,
                }
                assert!(col <= limit, "ATASCII row wider than {limit}");
            }
            let mut screen = AtasciiScreen::new();
            screen.feed(bytes);
            screen.contents()
        }
        Charset::Ascii => {
            assert!(
                bytes.iter().all(|&b| b < 0x80),
                "8-bit byte in ASCII output"
            );
            assert!(!bytes.contains(&0x1B), "ESC in ASCII output");
            let text = String::from_utf8_lossy(bytes).into_owned();
            for line in text.split("\r\n") {
                assert!(
                    line.len() <= limit,
                    "ASCII row wider than {limit}: {line:?}"
                );
                assert!(
                    line.bytes().all(|b| (0x20..0x7F).contains(&b) || b == 0x08),
                    "control byte in ASCII row {line:?}"
                );
            }
            text.replace("\r\n", "\n")
        }
    }
}

/// Renders with `render` for each charset's usual caps and asserts that every string of
/// `expect` is visible in each.
pub fn check(render: impl Fn(&Caps) -> Vec<u8>, expect: &[&str]) {
    for charset in [Charset::Ansi, Charset::Atascii, Charset::Ascii] {
        check_caps(&render, &Caps::for_charset(charset), expect);
    }
}

/// Like [`check`] for one set of caps; returns the visible text for further assertions.
pub fn check_caps(render: impl Fn(&Caps) -> Vec<u8>, caps: &Caps, expect: &[&str]) -> String {
    let shown = visible(&render(caps), caps);
    for e in expect {
        assert!(
            shown.contains(e),
            "{:?} at {} columns does not show {e:?}; it shows:\n{shown}",
            caps.charset,
            caps.width
        );
    }
    shown
}

/// Removes CSI sequences, leaving the text and the C0 controls.
fn strip_csi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('\x40'..='\x7e').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
