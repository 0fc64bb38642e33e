//! Terminals: what a caller's screen can do, and turning screens into bytes for it.
//!
//! Owns terminal capabilities ([`Caps`]), charsets, rendering of screen descriptions to ANSI
//! (CP437), ATASCII and plain ASCII, key decoding per charset, and the line editor. Everything
//! here is pure: no I/O, no clock, no knowledge of transports, users or the game.
//!
//! Code map:
//! - [`out`]: the only place that turns text into charset bytes ([`out::Out`], [`out::Style`]).
//! - [`screen`]: screens described once and laid out per width ([`screen::Screen`]).
//! - [`keys`]: bytes in, [`keys::Key`]s out, per charset.
//! - [`mod@line`]: the line editor state machine.
//! - [`detect`]: pure detection helpers (TTYPE names, line ends, the ANSI size probe).
//! - [`cp437`], [`atascii`]: the two character tables; [`sauce`]: art file trailers.
//! - [`atascii_screen`]: a 40×24 Atari screen model for tests and the sysop's spy view.
//!
//! **Invariant:** nothing outside [`out`] decides which byte a character becomes, and no
//! rendered row is wider than `width - 1` columns.

pub mod atascii;
pub mod atascii_screen;
pub mod cp437;
pub mod detect;
mod fold;
pub mod keys;
pub mod line;
pub mod out;
pub mod sauce;
pub mod screen;
#[cfg(test)]
pub(crate) mod testing;

use serde::Deserialize;

/// The three charsets a caller can be served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Charset {
    /// ANSI-BBS escape sequences over CP437, 80 columns, colour.
    Ansi,
    /// Atari 8-bit ATASCII: EOL 0x9B, clear 0x7D, inverse video, 40 columns.
    Atascii,
    /// Plain 7-bit ASCII, CR LF line ends, no escape sequences.
    Ascii,
}

impl Charset {
    /// The lower-case name used in config files, the database and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Charset::Ansi => "ansi",
            Charset::Atascii => "atascii",
            Charset::Ascii => "ascii",
        }
    }

    /// Parses the name written by [`Charset::as_str`].
    pub fn from_name(name: &str) -> Option<Charset> {
        match name.trim().to_ascii_lowercase().as_str() {
            "ansi" => Some(Charset::Ansi),
            "atascii" => Some(Charset::Atascii),
            "ascii" => Some(Charset::Ascii),
            _ => None,
        }
    }

    /// The usual screen size for the charset when nothing better is known.
    pub fn default_size(self) -> (u16, u16) {
        match self {
            Charset::Atascii => (40, 24),
            Charset::Ansi | Charset::Ascii => (80, 24),
        }
    }
}

impl std::fmt::Display for Charset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A listener's or a port's charset setting: detect it, or force one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CharsetSetting {
    #[default]
    Auto,
    Ansi,
    Atascii,
    Ascii,
}

impl CharsetSetting {
    /// The forced charset, or `None` for `auto`.
    pub fn forced(self) -> Option<Charset> {
        match self {
            CharsetSetting::Auto => None,
            CharsetSetting::Ansi => Some(Charset::Ansi),
            CharsetSetting::Atascii => Some(Charset::Atascii),
            CharsetSetting::Ascii => Some(Charset::Ascii),
        }
    }
}

/// What one caller's terminal can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub charset: Charset,
    /// Columns, 20..=255 after clamping.
    pub width: u16,
    /// Rows, 8..=255 after clamping.
    pub height: u16,
    /// Whether colour may be sent (ANSI only).
    pub color: bool,
}

impl Caps {
    /// The usual capabilities of a charset: 80x24 colour ANSI, 40x24 ATASCII, 80x24 ASCII.
    pub fn for_charset(charset: Charset) -> Caps {
        let (width, height) = charset.default_size();
        Caps {
            charset,
            width,
            height,
            color: charset == Charset::Ansi,
        }
    }
}

impl Caps {
    /// These caps with a size reported by the peer (NAWS or a cursor-position reply), if
    /// [`detect::clamp_size`] believes it; otherwise unchanged.
    pub fn with_size(self, cols: u16, rows: u16) -> Caps {
        match detect::clamp_size(cols, rows) {
            Some((width, height)) => Caps {
                width,
                height,
                ..self
            },
            None => self,
        }
    }

    /// The widest row a screen may write; see [`screen::line_width`].
    pub fn line_width(&self) -> usize {
        screen::line_width(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_only_taken_when_believable() {
        let caps = Caps::for_charset(Charset::Ansi);
        assert_eq!(caps.with_size(132, 50).width, 132);
        assert_eq!(caps.with_size(0, 0), caps);
        assert_eq!(caps.with_size(999, 999), caps);
        assert_eq!(caps.line_width(), 79);
    }
}
