//! The line editor: keys in, echo bytes and finished lines out.
//!
//! Owns one input field: what the caller may type (a [`Filter`]), the maximum length,
//! password masking, and the echo for each charset (ATASCII backspace 0x7E, ANSI and ASCII
//! `BS SP BS`). It is a pure state machine fed [`Key`]s by the session; it must not read the
//! clock (idle time-outs belong to the session) and does not print the prompt or the line end
//! after Enter. Keys it has no use for (arrows, Escape, Ctrl-C…) are ignored, so a session that
//! wants Escape to cancel must look at the key before passing it on.

use super::keys::Key;
use super::out::Out;
use super::{Caps, Charset};

/// Which characters a field accepts.
#[derive(Debug, Clone, Copy, Default)]
pub enum Filter {
    /// Any character the caller's charset can show as itself.
    #[default]
    Printable,
    /// Printable 7-bit ASCII only (handles, passwords).
    Ascii,
    /// The digits 0–9.
    Digits,
    /// A rule of the caller's own.
    Custom(fn(char) -> bool),
}

impl Filter {
    fn allows(self, c: char, charset: Charset) -> bool {
        match self {
            Filter::Printable => match charset {
                Charset::Ansi => !c.is_control() && super::cp437::encode_char(c).is_some(),
                Charset::Atascii => matches!(c, ' '..='_' | 'a'..='z' | '|'),
                Charset::Ascii => (' '..='~').contains(&c),
            },
            Filter::Ascii => (' '..='~').contains(&c),
            Filter::Digits => c.is_ascii_digit(),
            Filter::Custom(allows) => !c.is_control() && allows(c),
        }
    }
}

/// How a [`LineEditor`] behaves.
#[derive(Debug, Clone)]
pub struct LineOptions {
    /// The most characters the field holds.
    pub max_len: usize,
    /// Echo `*` instead of what was typed (passwords).
    pub mask: bool,
    /// What may be typed.
    pub filter: Filter,
    /// Text already in the field when it opens.
    pub initial: String,
}

impl Default for LineOptions {
    fn default() -> Self {
        LineOptions {
            max_len: 60,
            mask: false,
            filter: Filter::Printable,
            initial: String::new(),
        }
    }
}

impl LineOptions {
    /// Options for a field of at most `max_len` printable characters.
    pub fn new(max_len: usize) -> LineOptions {
        LineOptions {
            max_len,
            ..LineOptions::default()
        }
    }

    /// Masks the echo (passwords).
    pub fn masked(mut self) -> LineOptions {
        self.mask = true;
        self
    }

    /// Restricts what may be typed.
    pub fn filter(mut self, filter: Filter) -> LineOptions {
        self.filter = filter;
        self
    }

    /// Starts with `text` in the field (cut to the maximum length).
    pub fn initial(mut self, text: &str) -> LineOptions {
        self.initial = text.to_string();
        self
    }
}

/// What the session should do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent {
    /// Nothing to send.
    Nothing,
    /// Send these bytes (the echo, an erase, or a bell when the field is full).
    Echo(Vec<u8>),
    /// Enter was pressed; here is the line. The editor is empty again.
    Done(String),
}

/// One input field being edited.
#[derive(Debug, Clone)]
pub struct LineEditor {
    options: LineOptions,
    text: Vec<char>,
}

/// The character echoed for each masked character.
const MASK: char = '*';

impl LineEditor {
    /// A new field. If `options.initial` is not empty, send [`LineEditor::redraw`] after the
    /// prompt so the caller sees it.
    pub fn new(options: LineOptions) -> LineEditor {
        let text = options
            .initial
            .chars()
            .filter(|c| !c.is_control())
            .take(options.max_len)
            .collect();
        LineEditor { options, text }
    }

    /// The text typed so far.
    pub fn text(&self) -> String {
        self.text.iter().collect()
    }

    /// How many characters have been typed.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Whether nothing has been typed.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Handles one key from a terminal with `caps`.
    pub fn on_key(&mut self, key: Key, caps: &Caps) -> LineEvent {
        let mut out = Out::new(caps);
        match key {
            Key::Enter => {
                let line = self.text();
                self.text.clear();
                return LineEvent::Done(line);
            }
            Key::Char(c) => {
                if !self.options.filter.allows(c, caps.charset) {
                    // Refused, and said so: a key that shows nothing and makes no sound reads
                    // as a key the caller typed.
                    out.bell();
                } else if self.text.len() >= self.options.max_len {
                    out.bell();
                } else {
                    self.text.push(c);
                    out.text(&self.shown(c).to_string());
                }
            }
            Key::Backspace => {
                if self.text.pop().is_none() {
                    return LineEvent::Nothing;
                }
                out.backspace_erase();
            }
            // Ctrl-U and Ctrl-X erase the whole field, as on Unix and many BBSes.
            Key::Control(0x15) | Key::Control(0x18) => {
                if self.text.is_empty() {
                    return LineEvent::Nothing;
                }
                for _ in self.text.drain(..) {
                    out.backspace_erase();
                }
            }
            _ => return LineEvent::Nothing,
        }
        LineEvent::Echo(out.into_bytes())
    }

    /// The bytes that show the current (masked) text again, for redrawing the field after a
    /// message was printed above it. The session prints the prompt first.
    pub fn redraw(&self, caps: &Caps) -> Vec<u8> {
        let shown: String = self.text.iter().map(|&c| self.shown(c)).collect();
        let mut out = Out::new(caps);
        out.text(&shown);
        out.into_bytes()
    }

    fn shown(&self, c: char) -> char {
        if self.options.mask {
            MASK
        } else {
            c
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terminal::keys::KeyDecoder;

    /// Types `bytes` through a key decoder into an editor and returns every event.
    fn typed(charset: Charset, options: LineOptions, bytes: &[u8]) -> Vec<LineEvent> {
        let caps = Caps::for_charset(charset);
        let mut editor = LineEditor::new(options);
        KeyDecoder::new(charset)
            .feed(bytes)
            .into_iter()
            .map(|k| editor.on_key(k, &caps))
            .filter(|e| *e != LineEvent::Nothing)
            .collect()
    }

    fn echo(b: &[u8]) -> LineEvent {
        LineEvent::Echo(b.to_vec())
    }

    #[test]
    fn types_erases_and_finishes() {
        let events = typed(Charset::Ansi, LineOptions::new(10), b"ab\x08c\r\n");
        assert_eq!(
            events,
            [
                echo(b"a"),
                echo(b"b"),
                echo(b"\x08 \x08"),
                echo(b"c"),
                LineEvent::Done("ac".into())
            ]
        );
    }

    #[test]
    fn maximum_length_rings_the_bell() {
        let events = typed(Charset::Ascii, LineOptions::new(2), b"abc\r");
        assert_eq!(
            events,
            [
                echo(b"a"),
                echo(b"b"),
                echo(b"\x07"),
                LineEvent::Done("ab".into())
            ]
        );
        let events = typed(Charset::Atascii, LineOptions::new(1), b"ab\x9b");
        assert_eq!(
            events,
            [echo(b"a"), echo(&[0xFD]), LineEvent::Done("a".into())]
        );
    }

    #[test]
    fn passwords_are_masked() {
        let events = typed(
            Charset::Ansi,
            LineOptions::new(8).masked(),
            b"pw\x7f\x7fx\r",
        );
        let expect = [
            echo(b"*"),
            echo(b"*"),
            echo(b"\x08 \x08"),
            echo(b"\x08 \x08"),
            echo(b"*"),
            LineEvent::Done("x".into()),
        ];
        assert_eq!(events, expect);
    }

    #[test]
    fn backspace_on_empty_and_non_printables_are_ignored() {
        let events = typed(
            Charset::Ansi,
            LineOptions::new(8),
            b"\x08\x7f\x01\x1b[A\tq\r",
        );
        assert_eq!(events, [echo(b"q"), LineEvent::Done("q".into())]);
    }

    #[test]
    fn atascii_echo() {
        let events = typed(
            Charset::Atascii,
            LineOptions::new(8),
            b"ab\x7e\x1b\x7e\xc3\x9b",
        );
        let expect = [
            echo(b"a"),
            echo(b"b"),
            echo(&[0x7E]),
            echo(&[0x7E]),
            echo(b"C"),
            LineEvent::Done("C".into()),
        ];
        assert_eq!(events, expect);
        // Atari graphics characters are not text: each is refused with the buzzer.
        assert_eq!(
            typed(Charset::Atascii, LineOptions::new(8), b"\x60\x7b\x01"),
            [echo(&[0xFD]), echo(&[0xFD])]
        );
    }

    #[test]
    fn filters() {
        let digits = LineOptions::new(4).filter(Filter::Digits);
        assert_eq!(
            typed(Charset::Ascii, digits.clone(), b"a1b2\r").last(),
            Some(&LineEvent::Done("12".into()))
        );
        // A refused key rings the bell rather than vanish without a sound.
        assert_eq!(
            typed(Charset::Ascii, digits, b"a1"),
            [echo(b"\x07"), echo(b"1")]
        );
        let ascii = LineOptions::new(4).filter(Filter::Ascii);
        assert_eq!(
            typed(Charset::Ansi, ascii, b"\x82z\r").last(),
            Some(&LineEvent::Done("z".into()))
        );
        let any = LineOptions::new(4);
        assert_eq!(
            typed(Charset::Ansi, any, b"\x82\r"),
            [echo(&[0x82]), LineEvent::Done("é".into())]
        );
        let vowels = LineOptions::new(4).filter(Filter::Custom(|c| "aeiou".contains(c)));
        assert_eq!(
            typed(Charset::Ascii, vowels, b"bad\r").last(),
            Some(&LineEvent::Done("a".into()))
        );
    }

    #[test]
    fn initial_text_kill_and_redraw() {
        let caps = Caps::for_charset(Charset::Ansi);
        let mut editor = LineEditor::new(LineOptions::new(5).initial("hello world"));
        assert_eq!(editor.text(), "hello");
        assert_eq!(editor.redraw(&caps), b"hello");
        assert_eq!(
            editor.on_key(Key::Control(0x15), &caps),
            echo(&b"\x08 \x08".repeat(5))
        );
        assert!(editor.is_empty());
        let mut masked = LineEditor::new(LineOptions::new(5).masked().initial("abc"));
        assert_eq!(masked.redraw(&Caps::for_charset(Charset::Atascii)), b"***");
        assert_eq!(
            masked.on_key(Key::Enter, &caps),
            LineEvent::Done("abc".into())
        );
        assert_eq!(masked.len(), 0);
    }
}
