//! Code page 437: the byte encoding of ANSI-BBS callers.
//!
//! Owns the CP437 glyph table (ansi.md §6) in both directions. Decoding shows the C0 bytes
//! 0x01–0x1F and 0x7F as their glyphs, except the controls a terminal executes (NUL, BEL, BS,
//! HT, LF, FF, CR, ESC), which pass through unchanged so that escape sequences survive and the
//! result can be fed to a terminal emulator in tests. Encoding never produces C0 glyph bytes
//! or 0x7F (terminals disagree on them) and never produces 0xFF (it collides with telnet IAC);
//! it must not guess: unmappable characters are `None` and callers choose the fallback.

use codepage_437::CP437_CONTROL;

/// Glyphs of the C0 range, indexed by byte; `None` marks a control that is passed through.
const C0_GLYPHS: [Option<char>; 32] = [
    None,             // 00 NUL
    Some('\u{263A}'), // 01 ☺
    Some('\u{263B}'), // 02 ☻
    Some('\u{2665}'), // 03 ♥
    Some('\u{2666}'), // 04 ♦
    Some('\u{2663}'), // 05 ♣
    Some('\u{2660}'), // 06 ♠
    None,             // 07 BEL
    None,             // 08 BS
    None,             // 09 HT
    None,             // 0A LF
    Some('\u{2642}'), // 0B ♂
    None,             // 0C FF
    None,             // 0D CR
    Some('\u{266B}'), // 0E ♫
    Some('\u{263C}'), // 0F ☼
    Some('\u{25BA}'), // 10 ►
    Some('\u{25C4}'), // 11 ◄
    Some('\u{2195}'), // 12 ↕
    Some('\u{203C}'), // 13 ‼
    Some('\u{00B6}'), // 14 ¶
    Some('\u{00A7}'), // 15 §
    Some('\u{25AC}'), // 16 ▬
    Some('\u{21A8}'), // 17 ↨
    Some('\u{2191}'), // 18 ↑
    Some('\u{2193}'), // 19 ↓
    Some('\u{2192}'), // 1A →
    None,             // 1B ESC
    Some('\u{221F}'), // 1C ∟
    Some('\u{2194}'), // 1D ↔
    Some('\u{25B2}'), // 1E ▲
    Some('\u{25BC}'), // 1F ▼
];

/// The house glyph shown for 0x7F in art.
const DEL_GLYPH: char = '\u{2302}';

/// Decodes one CP437 byte to the character a BBS terminal shows for it.
pub fn decode_byte(byte: u8) -> char {
    match byte {
        0x00..=0x1F => C0_GLYPHS[usize::from(byte)].unwrap_or(char::from(byte)),
        0x7F => DEL_GLYPH,
        _ => CP437_CONTROL.decode(byte),
    }
}

/// Decodes CP437 bytes to Unicode glyphs, passing the executed controls (and so escape
/// sequences) through untouched.
pub fn to_unicode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| decode_byte(b)).collect()
}

/// Encodes one character as a printable CP437 byte: 0x20–0x7E or 0x80–0xFE.
///
/// Returns `None` for controls, for characters CP437 lacks, and for the glyphs of the C0
/// range and 0x7F, which are unreliable on output (ansi.md §6).
pub fn encode_char(c: char) -> Option<u8> {
    if (' '..='~').contains(&c) {
        return u8::try_from(c).ok();
    }
    if c == '\u{00A0}' {
        // NBSP would be 0xFF, which telnet must double; a plain space looks the same.
        return Some(b' ');
    }
    match CP437_CONTROL.encode(c) {
        // The crate also accepts look-alikes (the euro sign becomes epsilon); keep only exact
        // glyphs so that what we send is what we meant.
        Some(b) if (0x80..=0xFE).contains(&b) && CP437_CONTROL.decode(b) == c => Some(b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_and_controls() {
        assert_eq!(to_unicode(&[0x01, 0x03, 0x7F, 0xC4, 0xDB]), "☺♥⌂─█");
        assert_eq!(to_unicode(b"\x1b[1;31mHi\r\n"), "\x1b[1;31mHi\r\n");
        assert_eq!(
            to_unicode(&[0x07, 0x08, 0x09, 0x0C, 0x00]),
            "\x07\x08\x09\x0C\x00"
        );
    }

    #[test]
    fn encode_round_trips_the_high_half() {
        for b in 0x80u8..=0xFE {
            assert_eq!(encode_char(decode_byte(b)), Some(b), "byte {b:#04x}");
        }
        assert_eq!(encode_char('é'), Some(0x82));
        assert_eq!(encode_char('♥'), None);
        assert_eq!(encode_char('\u{1b}'), None);
        assert_eq!(encode_char('Ż'), None);
        assert_eq!(encode_char('€'), None);
    }
}
