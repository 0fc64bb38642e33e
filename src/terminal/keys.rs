//! Key decoding: bytes from the caller in, keys out, per charset.
//!
//! Owns the meaning of input bytes: line ends (CR, LF, CR LF and CR NUL are one Enter),
//! backspace and delete, ANSI escape sequences of both the SyncTERM and the xterm families
//! (ansi.md §2), cursor-position reports interleaved anywhere with typed keys, CP437 input,
//! and the ATASCII keyboard (atascii.md §4) including icy_term's ESC-prefixed keys. It keeps no
//! clock: a lone ESC stays pending until the driver calls [`KeyDecoder::flush`] after a short
//! pause. It must not echo or buffer lines (see `line`). Its pending state is a few bytes
//! whatever the input: an endless escape sequence is consumed without being stored.

use super::{atascii, cp437, Charset};

/// One key press (or terminal report) from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A printable character.
    Char(char),
    Enter,
    /// Delete the character before the cursor.
    Backspace,
    /// Delete the character under the cursor.
    Delete,
    Tab,
    /// Shift-Tab.
    BackTab,
    Escape,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    Insert,
    PageUp,
    PageDown,
    /// F1 = `Function(1)` … F12.
    Function(u8),
    /// The Atari CLEAR key (0x7D).
    Clear,
    /// A cursor-position report `ESC [ row ; col R`, 1-based as sent.
    CursorPosition {
        row: u16,
        col: u16,
    },
    /// Any other control byte: Ctrl-C is `Control(0x03)`. On ATASCII the Ctrl-letter
    /// graphics keys 0x00–0x1A (0x0D and 0x0A included: they are glyphs there, not line
    /// ends) and the editing keys 0x9C–0x9F and 0xFD keep their byte.
    Control(u8),
}

/// The most parameter bytes of a control sequence that are kept; the rest are consumed.
const MAX_PARAMS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Ground,
    /// CR was the last byte; a following LF or NUL is part of the same Enter.
    AfterCr,
    /// ESC was the last byte.
    Escape,
    /// Inside `ESC [`.
    Csi {
        params: [u8; MAX_PARAMS],
        len: usize,
        overflow: bool,
        private: bool,
    },
    /// Inside `ESC O` (SS3).
    Ss3,
}

/// Turns the caller's bytes into [`Key`]s for one charset.
#[derive(Debug, Clone)]
pub struct KeyDecoder {
    charset: Charset,
    state: State,
}

impl KeyDecoder {
    /// A decoder for `charset`.
    pub fn new(charset: Charset) -> KeyDecoder {
        KeyDecoder {
            charset,
            state: State::Ground,
        }
    }

    /// The charset being decoded.
    pub fn charset(&self) -> Charset {
        self.charset
    }

    /// Switches charset (after detection) and forgets any half-read sequence.
    pub fn set_charset(&mut self, charset: Charset) {
        self.charset = charset;
        self.state = State::Ground;
    }

    /// Whether a partial sequence is waiting; the driver should call [`KeyDecoder::flush`]
    /// if no more bytes arrive within a short pause.
    pub fn has_pending(&self) -> bool {
        matches!(self.state, State::Escape | State::Csi { .. } | State::Ss3)
    }

    /// Decodes `bytes`, returning the completed keys.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Key> {
        let mut keys = Vec::new();
        self.feed_into(bytes, &mut keys);
        keys
    }

    /// Decodes `bytes`, appending the completed keys to `keys`.
    pub fn feed_into(&mut self, bytes: &[u8], keys: &mut Vec<Key>) {
        for &b in bytes {
            match self.charset {
                Charset::Atascii => self.atascii_byte(b, keys),
                Charset::Ansi | Charset::Ascii => self.ansi_byte(b, keys),
            }
        }
    }

    /// Ends a pause: a lone pending ESC becomes [`Key::Escape`]; an unfinished sequence is
    /// dropped.
    pub fn flush(&mut self) -> Vec<Key> {
        let state = std::mem::replace(&mut self.state, State::Ground);
        match state {
            State::Escape => vec![Key::Escape],
            _ => Vec::new(),
        }
    }

    fn atascii_byte(&mut self, b: u8, keys: &mut Vec<Key>) {
        if self.state == State::Escape {
            self.state = State::Ground;
            // icy_term prefixes editing keys with ESC; the pair is the key itself.
            if matches!(b, 0x1C..=0x1F | 0x7D..=0x7F | 0x9B..=0x9F | 0xFD..=0xFF) {
                keys.push(atascii_key(b));
                return;
            }
            keys.push(Key::Escape);
        }
        if b == atascii::ESC {
            self.state = State::Escape;
        } else {
            // Any other state cannot arise in ATASCII mode; reset it to be safe.
            self.state = State::Ground;
            keys.push(atascii_key(b));
        }
    }

    fn ansi_byte(&mut self, b: u8, keys: &mut Vec<Key>) {
        let state = std::mem::replace(&mut self.state, State::Ground);
        match state {
            State::Ground => self.ground(b, keys),
            State::AfterCr => {
                if b != b'\n' && b != 0 {
                    self.ground(b, keys);
                }
            }
            State::Escape => match b {
                b'[' => {
                    self.state = State::Csi {
                        params: [0; MAX_PARAMS],
                        len: 0,
                        overflow: false,
                        private: false,
                    }
                }
                b'O' => self.state = State::Ss3,
                0x1B => {
                    keys.push(Key::Escape);
                    self.state = State::Escape;
                }
                _ => {
                    keys.push(Key::Escape);
                    self.ground(b, keys);
                }
            },
            State::Csi {
                mut params,
                mut len,
                mut overflow,
                mut private,
            } => match b {
                0x20..=0x3F => {
                    if matches!(b, b'<'..=b'?') {
                        private = true;
                    }
                    if len < MAX_PARAMS {
                        params[len] = b;
                        len += 1;
                    } else {
                        overflow = true;
                    }
                    self.state = State::Csi {
                        params,
                        len,
                        overflow,
                        private,
                    };
                }
                0x40..=0x7E => {
                    if !overflow && !private {
                        if let Some(key) = csi_key(&params[..len], b) {
                            keys.push(key);
                        }
                    }
                }
                // A control byte breaks off the sequence and counts as itself.
                _ => self.ground(b, keys),
            },
            State::Ss3 => match b {
                0x40..=0x7E => {
                    let key = match b {
                        b'P'..=b'S' => Some(Key::Function(b - b'P' + 1)),
                        b'A' => Some(Key::Up),
                        b'B' => Some(Key::Down),
                        b'C' => Some(Key::Right),
                        b'D' => Some(Key::Left),
                        b'H' => Some(Key::Home),
                        b'F' => Some(Key::End),
                        b'M' => Some(Key::Enter),
                        _ => None,
                    };
                    keys.extend(key);
                }
                _ => self.ground(b, keys),
            },
        }
    }

    fn ground(&mut self, b: u8, keys: &mut Vec<Key>) {
        match b {
            b'\r' => {
                keys.push(Key::Enter);
                self.state = State::AfterCr;
            }
            b'\n' => keys.push(Key::Enter),
            // NUL is telnet padding, not a key.
            0x00 => {}
            0x08 | 0x7F => keys.push(Key::Backspace),
            b'\t' => keys.push(Key::Tab),
            0x1B => self.state = State::Escape,
            0x01..=0x1F => keys.push(Key::Control(b)),
            0x20..=0x7E => keys.push(Key::Char(char::from(b))),
            0x80..=0xFF => match self.charset {
                Charset::Ansi => keys.push(Key::Char(cp437::decode_byte(b))),
                // A plain-ASCII caller has no meaning for 8-bit bytes (UTF-8 or line noise).
                Charset::Ascii | Charset::Atascii => {}
            },
        }
    }
}

/// The key for one ATASCII byte (atascii.md §4).
fn atascii_key(b: u8) -> Key {
    match b {
        atascii::EOL => Key::Enter,
        atascii::BACKSPACE => Key::Backspace,
        atascii::TAB => Key::Tab,
        atascii::CLEAR => Key::Clear,
        atascii::ESC => Key::Escape,
        0x1C => Key::Up,
        0x1D => Key::Down,
        0x1E => Key::Left,
        0x1F => Key::Right,
        0xFE => Key::Delete,
        0xFF => Key::Insert,
        0x9C..=0x9F | 0xFD => Key::Control(b),
        _ => {
            // The inverse key sets bit 7 on printable characters; strip it.
            let base = b & 0x7F;
            match base {
                0x00..=0x1A => Key::Control(base),
                _ => Key::Char(atascii::decode_byte(base).0),
            }
        }
    }
}

/// Splits `a;b;c` into numbers; empty or unparsable parameters are `None`.
fn numbers(params: &[u8]) -> Vec<Option<u16>> {
    params
        .split(|&b| b == b';')
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
        })
        .collect()
}

/// The key for `ESC [ params final`, or `None` for a sequence we ignore.
fn csi_key(params: &[u8], final_byte: u8) -> Option<Key> {
    let n = numbers(params);
    let first = n.first().copied().flatten();
    let key = match final_byte {
        b'A' => Key::Up,
        b'B' => Key::Down,
        b'C' => Key::Right,
        b'D' => Key::Left,
        b'H' => Key::Home,
        b'F' | b'K' => Key::End,
        b'V' => Key::PageUp,
        b'U' => Key::PageDown,
        b'@' => Key::Insert,
        b'Z' => Key::BackTab,
        b'R' => {
            // A cursor-position report has two parameters (defaults 1); xterm's F3 with
            // modifiers looks the same and loses.
            if n.len() != 2 {
                return None;
            }
            let row = n[0].unwrap_or(1);
            let col = n[1].unwrap_or(1);
            Key::CursorPosition { row, col }
        }
        b'P' => Key::Function(1),
        b'Q' => Key::Function(2),
        b'S' => Key::Function(4),
        b'~' => match first? {
            1 | 7 => Key::Home,
            2 => Key::Insert,
            3 => Key::Delete,
            4 | 8 => Key::End,
            5 => Key::PageUp,
            6 => Key::PageDown,
            11..=15 => Key::Function(u8::try_from(first? - 10).ok()?),
            17..=21 => Key::Function(u8::try_from(first? - 11).ok()?),
            23 | 24 => Key::Function(u8::try_from(first? - 12).ok()?),
            _ => return None,
        },
        _ => return None,
    };
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Key::*;

    /// Feeds each chunk in turn, then flushes, and returns every key.
    fn script(charset: Charset, chunks: &[&[u8]]) -> Vec<Key> {
        let mut d = KeyDecoder::new(charset);
        let mut keys = Vec::new();
        for chunk in chunks {
            d.feed_into(chunk, &mut keys);
        }
        keys.extend(d.flush());
        keys
    }

    #[test]
    fn line_ends_are_one_enter() {
        let keys = script(Charset::Ansi, &[b"a\r\nb\r\0c\rd\ne\n\r"]);
        let expect = [
            Char('a'),
            Enter,
            Char('b'),
            Enter,
            Char('c'),
            Enter,
            Char('d'),
            Enter,
            Char('e'),
            Enter,
            Enter,
        ];
        assert_eq!(keys, expect);
        // The LF of a CR LF may arrive in the next read.
        assert_eq!(script(Charset::Ascii, &[b"x\r", b"\n"]), [Char('x'), Enter]);
    }

    #[test]
    fn backspace_delete_and_controls() {
        let keys = script(Charset::Ansi, &[b"\x08\x7f\x1b[3~\x03\t"]);
        assert_eq!(keys, [Backspace, Backspace, Delete, Control(3), Tab]);
    }

    #[test]
    fn both_escape_families() {
        let keys = script(
            Charset::Ansi,
            &[b"\x1b[A\x1b[B\x1b[C\x1b[D\x1b[H\x1b[K\x1b[V\x1b[U\x1b[@\x1b[Z"],
        );
        let expect = [
            Up, Down, Right, Left, Home, End, PageUp, PageDown, Insert, BackTab,
        ];
        assert_eq!(keys, expect);
        let keys = script(
            Charset::Ansi,
            &[b"\x1bOP\x1bOS\x1b[F\x1b[4~\x1b[11~\x1b[24~\x1b[1;5A\x1b[5;2~\x1bOA"],
        );
        let expect = [
            Function(1),
            Function(4),
            End,
            End,
            Function(1),
            Function(12),
            Up,
            PageUp,
            Up,
        ];
        assert_eq!(keys, expect);
    }

    #[test]
    fn sequences_split_across_reads() {
        let keys = script(
            Charset::Ansi,
            &[b"\x1b", b"[", b"2", b"4", b"~", b"\x1b[1", b"5~"],
        );
        assert_eq!(keys, [Function(12), Function(5)]);
    }

    #[test]
    fn unknown_sequences_are_consumed() {
        let keys = script(
            Charset::Ansi,
            &[b"\x1b[?1;2c\x1b[=67;84;101c\x1b[99~\x1b[5nok"],
        );
        assert_eq!(keys, [Char('o'), Char('k')]);
    }

    #[test]
    fn cursor_reports_interleaved_with_keys() {
        let keys = script(Charset::Ansi, &[b"ab\x1b[24;8", b"0Rc\x1b[;R\x1b[12R"]);
        let expect = [
            Char('a'),
            Char('b'),
            CursorPosition { row: 24, col: 80 },
            Char('c'),
            CursorPosition { row: 1, col: 1 },
        ];
        assert_eq!(keys, expect);
    }

    #[test]
    fn lone_escape_waits_for_flush() {
        let mut d = KeyDecoder::new(Charset::Ansi);
        assert_eq!(d.feed(b"\x1b"), []);
        assert!(d.has_pending());
        assert_eq!(d.flush(), [Escape]);
        assert!(!d.has_pending());
        assert_eq!(d.feed(b"\x1bx\x1b\x1b"), [Escape, Char('x'), Escape]);
        assert_eq!(d.flush(), [Escape]);
    }

    #[test]
    fn cp437_input_and_ascii_high_bytes() {
        assert_eq!(
            script(Charset::Ansi, &[b"\x82\x9b"]),
            [Char('é'), Char('¢')]
        );
        assert_eq!(script(Charset::Ascii, &[b"\x82a"]), [Char('a')]);
    }

    #[test]
    fn unterminated_sequence_is_bounded() {
        let mut d = KeyDecoder::new(Charset::Ansi);
        d.feed(b"\x1b[");
        let digits = vec![b'9'; 1 << 20];
        assert_eq!(d.feed(&digits), []);
        assert!(std::mem::size_of_val(&d) < 64);
        // The overlong sequence ends and is ignored; typing works again.
        assert_eq!(d.feed(b"Rhi"), [Char('h'), Char('i')]);
        // A control byte breaks off an unfinished sequence.
        assert_eq!(d.feed(b"\x1b[12\r"), [Enter]);
    }

    #[test]
    fn atascii_keys() {
        let keys = script(
            Charset::Atascii,
            &[b"Hi\x9b\x7e\x7f\x7d\x1c\x1d\x1e\x1f\x0d\x0a\xc1\xe1\xfe\xff\x9d"],
        );
        let expect = [
            Char('H'),
            Char('i'),
            Enter,
            Backspace,
            Tab,
            Clear,
            Up,
            Down,
            Left,
            Right,
            Control(0x0D),
            Control(0x0A),
            Char('A'),
            Char('a'),
            Delete,
            Insert,
            Control(0x9D),
        ];
        assert_eq!(keys, expect);
    }

    #[test]
    fn atascii_escape_prefixed_keys() {
        let keys = script(
            Charset::Atascii,
            &[b"\x1b\x1c\x1b", b"\x7e\x1b\x9bA\x1bA\x1b"],
        );
        assert_eq!(
            keys,
            [Up, Backspace, Enter, Char('A'), Escape, Char('A'), Escape]
        );
        assert_eq!(
            script(Charset::Atascii, &[b"\x60\x7b|"]),
            [Char('♦'), Char('♠'), Char('|')]
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_small(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
            atari in any::<bool>(),
        ) {
            let charset = if atari { Charset::Atascii } else { Charset::Ansi };
            let mut d = KeyDecoder::new(charset);
            let mut total = 0;
            for chunk in &chunks {
                total += d.feed(chunk).len();
                prop_assert!(total <= chunks.iter().map(Vec::len).sum::<usize>());
            }
            d.flush();
            prop_assert!(!d.has_pending());
        }

        #[test]
        fn printable_ascii_passes_through(text in "[ -~]{0,100}") {
            let keys = KeyDecoder::new(Charset::Ascii).feed(text.as_bytes());
            let expect: Vec<Key> = text.chars().map(Char).collect();
            prop_assert_eq!(keys, expect);
        }
    }
}
