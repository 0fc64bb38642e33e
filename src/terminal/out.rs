//! The output writer: Unicode text and presentation intents in, bytes for one terminal out.
//!
//! Owns every charset decision about output: CP437 encoding and SGR colours for ANSI, the
//! ATASCII translation (EOL 0x9B, clear 0x7D, inverse video instead of colour, no raw `{`,
//! `}`, `~` or backtick) and the 7-bit fallback for plain ASCII. It must not lay text out (see
//! `screen`), must not know about transports (telnet IAC doubling happens below) and never
//! emits a byte the charset would show as garbage.
//!
//! Every character of text becomes exactly one column on the caller's screen (ATASCII arrow
//! glyphs take an ESC prefix but still one column), so callers may count `char`s to measure.

use super::{atascii, cp437, fold, Caps, Charset};

/// What a piece of text means, rendered per charset: colour on ANSI, inverse video on
/// ATASCII, nothing on ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Style {
    /// Plain body text.
    #[default]
    Normal,
    /// A screen title.
    Title,
    /// A section or table heading.
    Heading,
    /// Words that matter in body text.
    Emphasis,
    /// The key to press in a menu.
    Hotkey,
    /// Secondary information.
    Dim,
    /// Something the caller should be careful about.
    Warning,
    /// Something went wrong.
    Error,
    /// Something worked.
    Success,
    /// Text the caller typed, echoed back.
    Input,
    /// A question waiting for the caller's answer.
    Prompt,
}

impl Style {
    /// The SGR parameters for a colour terminal.
    fn sgr_color(self) -> &'static str {
        match self {
            Style::Normal => "0",
            Style::Title => "0;1;33;44",
            Style::Heading => "0;1;36",
            Style::Emphasis => "0;1;37",
            Style::Hotkey => "0;1;33",
            Style::Dim => "0;1;30",
            Style::Warning => "0;33",
            Style::Error => "0;1;31",
            Style::Success => "0;1;32",
            Style::Input => "0;1;37",
            Style::Prompt => "0;1;33",
        }
    }

    /// The SGR parameters for an ANSI terminal without colour: bold and reverse only.
    fn sgr_mono(self) -> &'static str {
        match self {
            Style::Title => "0;7",
            Style::Heading | Style::Emphasis | Style::Hotkey | Style::Error | Style::Warning => {
                "0;1"
            }
            Style::Prompt => "0;1",
            Style::Normal | Style::Dim | Style::Success | Style::Input => "0",
        }
    }

    /// Whether ATASCII shows this style in inverse video.
    pub fn atascii_inverse(self) -> bool {
        matches!(
            self,
            Style::Title | Style::Heading | Style::Emphasis | Style::Hotkey | Style::Error
        )
    }
}

/// A byte builder for one caller's terminal.
#[derive(Debug, Clone)]
pub struct Out {
    caps: Caps,
    buf: Vec<u8>,
    /// ANSI only: everything written since a clear went to blank cells in order, so a run
    /// of spaces can be a cursor move instead (a full market board is sent often, on slow
    /// lines). Any raw bytes or erasing end it.
    on_blank: bool,
    /// Spaces owed on a blank screen: written (or skipped by a cursor move) before the next
    /// character, dropped at a line end.
    owed: usize,
}

/// Spaces on a freshly cleared ANSI screen worth a cursor move (`CSI n C`) instead.
const SKIP_SPACES: usize = 5;

impl Out {
    /// An empty writer for `caps`.
    pub fn new(caps: &Caps) -> Out {
        Out {
            caps: *caps,
            buf: Vec::new(),
            on_blank: false,
            owed: 0,
        }
    }

    /// The capabilities this writer renders for.
    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// Appends text in normal style. `\n` becomes [`Out::newline`]; other control
    /// characters are dropped.
    pub fn text(&mut self, s: &str) -> &mut Out {
        self.encode(s, false, self.on_blank);
        self
    }

    /// Appends text in `style`, returning to normal afterwards.
    pub fn styled(&mut self, s: &str, style: Style) -> &mut Out {
        if style == Style::Normal {
            return self.text(s);
        }
        match self.caps.charset {
            Charset::Ansi => {
                let sgr = if self.caps.color {
                    style.sgr_color()
                } else {
                    style.sgr_mono()
                };
                // Spaces show in a title's background colour or reverse video.
                let skip = self.on_blank && style != Style::Title;
                if sgr == "0" {
                    self.encode(s, false, skip);
                } else {
                    self.csi(sgr, 'm');
                    self.encode(s, false, skip);
                    self.csi("0", 'm');
                }
            }
            Charset::Atascii => self.encode(s, style.atascii_inverse(), false),
            Charset::Ascii => self.encode(s, false, false),
        }
        self
    }

    /// Ends the line: CR LF, or EOL (0x9B) on ATASCII.
    pub fn newline(&mut self) -> &mut Out {
        self.owed = 0;
        match self.caps.charset {
            Charset::Atascii => self.buf.push(atascii::EOL),
            Charset::Ansi | Charset::Ascii => self.buf.extend_from_slice(b"\r\n"),
        }
        self
    }

    /// Clears the screen and homes the cursor.
    ///
    /// ASCII terminals have no reliable clear (form feed is shown as garbage or ignored by
    /// many), so they get a blank line to separate the screens instead.
    pub fn clear(&mut self) -> &mut Out {
        self.owed = 0;
        match self.caps.charset {
            Charset::Ansi => {
                self.buf.extend_from_slice(b"\x1b[0m\x1b[2J\x1b[H");
                self.on_blank = true;
            }
            Charset::Atascii => self.buf.push(atascii::CLEAR),
            Charset::Ascii => self.buf.extend_from_slice(b"\r\n\r\n"),
        }
        self
    }

    /// Rings the bell: BEL (0x07), or the buzzer (0xFD) on ATASCII.
    pub fn bell(&mut self) -> &mut Out {
        self.pay();
        match self.caps.charset {
            Charset::Atascii => self.buf.push(atascii::BELL),
            Charset::Ansi | Charset::Ascii => self.buf.push(0x07),
        }
        self
    }

    /// Moves left one column and erases the character there.
    pub fn backspace_erase(&mut self) -> &mut Out {
        self.pay();
        self.on_blank = false;
        match self.caps.charset {
            Charset::Atascii => self.buf.push(atascii::BACKSPACE),
            Charset::Ansi | Charset::Ascii => self.buf.extend_from_slice(b"\x08 \x08"),
        }
        self
    }

    /// Appends `n` spaces.
    pub fn spaces(&mut self, n: usize) -> &mut Out {
        self.pay();
        self.buf.resize(self.buf.len() + n, b' ');
        self
    }

    /// Appends bytes already encoded for this charset (an art file, say) unchanged.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Out {
        self.pay();
        self.on_blank = false;
        self.buf.extend_from_slice(bytes);
        self
    }

    /// The bytes so far.
    pub fn as_bytes(&mut self) -> &[u8] {
        self.pay();
        &self.buf
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.owed == 0
    }

    /// The finished bytes.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.pay();
        self.buf
    }

    fn csi(&mut self, params: &str, final_byte: char) {
        self.pay();
        self.buf.extend_from_slice(b"\x1b[");
        self.buf.extend_from_slice(params.as_bytes());
        let mut tmp = [0u8; 4];
        self.buf
            .extend_from_slice(final_byte.encode_utf8(&mut tmp).as_bytes());
    }

    /// Appends `s` in the charset; with `skip_spaces`, runs of spaces become cursor moves and
    /// spaces before a line end are left out (the cells are blank already).
    fn encode(&mut self, s: &str, inverse: bool, skip_spaces: bool) {
        if !skip_spaces {
            self.pay();
        }
        for c in s.chars() {
            if skip_spaces && c == ' ' {
                self.owed += 1;
                continue;
            }
            if !c.is_control() {
                self.pay();
            }
            if c == '\n' {
                self.newline();
                continue;
            }
            if c.is_control() {
                continue;
            }
            match self.caps.charset {
                Charset::Ansi => self
                    .buf
                    .push(cp437::encode_char(c).unwrap_or_else(|| ascii_byte(c))),
                Charset::Ascii => self.buf.push(ascii_byte(c)),
                Charset::Atascii => self.push_atascii(c, inverse),
            }
        }
    }

    /// Moves past the owed blank cells: spaces, or a cursor move when that is shorter.
    fn pay(&mut self) {
        let n = std::mem::take(&mut self.owed);
        if n >= SKIP_SPACES {
            self.buf.extend_from_slice(format!("\x1b[{n}C").as_bytes());
        } else {
            self.buf.resize(self.buf.len() + n, b' ');
        }
    }

    fn push_atascii(&mut self, c: char, inverse: bool) {
        let mut code = atascii::encode_lossy(c);
        // ESC cannot quote EOL, so the inverse of the ESC glyph is shown plain.
        if inverse && code != atascii::ESC {
            code ^= 0x80;
        }
        if atascii::is_control(code) {
            self.buf.push(atascii::ESC);
        }
        self.buf.push(code);
    }
}

/// The printable ASCII byte closest to `c`.
fn ascii_byte(c: char) -> u8 {
    u8::try_from(fold::to_ascii(c)).unwrap_or(b'?')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(charset: Charset, f: impl FnOnce(&mut Out)) -> Vec<u8> {
        let mut out = Out::new(&Caps::for_charset(charset));
        f(&mut out);
        out.into_bytes()
    }

    #[test]
    fn ansi_encodes_cp437_and_colours() {
        let b = bytes(Charset::Ansi, |o| {
            o.text("é─").styled("W", Style::Hotkey);
        });
        assert_eq!(b, b"\x82\xc4\x1b[0;1;33mW\x1b[0m");
        let mut caps = Caps::for_charset(Charset::Ansi);
        caps.color = false;
        let mut out = Out::new(&caps);
        out.styled("x", Style::Success).text("€");
        assert_eq!(out.into_bytes(), b"x?");
    }

    #[test]
    fn atascii_translates_and_inverts() {
        let b = bytes(Charset::Atascii, |o| {
            o.text("{a}~`")
                .newline()
                .styled("Hi", Style::Title)
                .text("↑")
                .clear()
                .bell();
        });
        assert_eq!(b, b"(a)-'\x9b\xc8\xe9\x1b\x1c\x7d\xfd");
        let b = bytes(Charset::Atascii, |o| {
            o.backspace_erase().text("─│");
        });
        assert_eq!(b, [0x7E, 0x12, 0x7C]);
    }

    #[test]
    fn ascii_is_seven_bit() {
        let b = bytes(Charset::Ascii, |o| {
            o.text("┌─┐ café\tx")
                .styled("T", Style::Title)
                .newline()
                .backspace_erase();
        });
        assert_eq!(b, b"+-+ cafex\x54\r\n\x08 \x08");
    }
}
