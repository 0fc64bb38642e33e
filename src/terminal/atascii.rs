//! ATASCII, the Atari 8-bit character set, to and from Unicode (atascii.md §3).
//!
//! Owns the house base table (0x00–0x7F), the inverse-video rule (bit 7), the list of screen
//! editor control codes (§2) and the lossy Unicode → ATASCII mapping used for output (box
//! drawing, CP437 fallbacks, `{}~` and backtick replaced). It does not parse byte streams: the
//! screen model and the key decoder do that.

use super::fold;

/// The glyph of each base code 0x00–0x7F. The control codes 0x1B–0x1F and 0x7D–0x7F show the
/// glyph listed here only when quoted by ESC.
const BASE: [char; 128] = [
    '\u{2665}',
    '\u{251C}',
    '\u{1FB87}',
    '\u{2518}',
    '\u{2524}',
    '\u{2510}',
    '\u{2571}',
    '\u{2572}',
    '\u{25E2}',
    '\u{2597}',
    '\u{25E3}',
    '\u{259D}',
    '\u{2598}',
    '\u{1FB82}',
    '\u{2582}',
    '\u{2596}', // 0x00–0x0F
    '\u{2663}',
    '\u{250C}',
    '\u{2500}',
    '\u{253C}',
    '\u{25CF}',
    '\u{2584}',
    '\u{258E}',
    '\u{252C}',
    '\u{2534}',
    '\u{258C}',
    '\u{2514}',
    '\u{241B}',
    '\u{2191}',
    '\u{2193}',
    '\u{2190}',
    '\u{2192}', // 0x10–0x1F
    ' ',
    '!',
    '"',
    '#',
    '$',
    '%',
    '&',
    '\'',
    '(',
    ')',
    '*',
    '+',
    ',',
    '-',
    '.',
    '/', // 0x20
    '0',
    '1',
    '2',
    '3',
    '4',
    '5',
    '6',
    '7',
    '8',
    '9',
    ':',
    ';',
    '<',
    '=',
    '>',
    '?', // 0x30
    '@',
    'A',
    'B',
    'C',
    'D',
    'E',
    'F',
    'G',
    'H',
    'I',
    'J',
    'K',
    'L',
    'M',
    'N',
    'O', // 0x40
    'P',
    'Q',
    'R',
    'S',
    'T',
    'U',
    'V',
    'W',
    'X',
    'Y',
    'Z',
    '[',
    '\\',
    ']',
    '^',
    '_', // 0x50
    '\u{2666}',
    'a',
    'b',
    'c',
    'd',
    'e',
    'f',
    'g',
    'h',
    'i',
    'j',
    'k',
    'l',
    'm',
    'n',
    'o', // 0x60
    'p',
    'q',
    'r',
    's',
    't',
    'u',
    'v',
    'w',
    'x',
    'y',
    'z',
    '\u{2660}',
    '|',
    '\u{1F8B0}',
    '\u{25C0}',
    '\u{25B6}', // 0x70
];

/// End of line (Return).
pub const EOL: u8 = 0x9B;
/// Clear screen and home the cursor.
pub const CLEAR: u8 = 0x7D;
/// Destructive backspace.
pub const BACKSPACE: u8 = 0x7E;
/// Tab.
pub const TAB: u8 = 0x7F;
/// Escape: shows the next byte as a glyph.
pub const ESC: u8 = 0x1B;
/// Buzzer.
pub const BELL: u8 = 0xFD;
/// The horizontal line glyph used for rules.
pub const HLINE: u8 = 0x12;

/// The glyph of `byte` and whether it is drawn in inverse video.
pub fn decode_byte(byte: u8) -> (char, bool) {
    (BASE[usize::from(byte & 0x7F)], byte & 0x80 != 0)
}

/// Decodes ATASCII bytes to Unicode glyphs, dropping the inverse flag. Control codes are
/// decoded as their glyphs, so use this for text known to be printable.
pub fn to_unicode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| decode_byte(b).0).collect()
}

/// Whether `byte` is a screen-editor control code (§2) rather than a printable glyph.
pub fn is_control(byte: u8) -> bool {
    matches!(byte, 0x1B..=0x1F | 0x7D..=0x7F | 0x9B..=0x9F | 0xFD..=0xFF)
}

/// The exact ATASCII code for `c` (bit 7 set when the glyph is an inverse one), if any.
///
/// `{`, `}`, `~` and backtick have no glyph and give `None`. The result may be a control
/// code (arrows, for example); [`is_control`] tells the caller it must be quoted with ESC.
pub fn encode_char(c: char) -> Option<u8> {
    let code = match c {
        ' '..='_' | 'a'..='z' | '|' => return u8::try_from(c).ok(),
        // Alternates of the base glyphs (§3) and CP437 box and block fallbacks (§7).
        '┣' | '╠' | '╞' | '╟' => 0x01,
        '┃' | '▕' | '⎹' => 0x02,
        '┛' | '╝' | '╛' | '╜' => 0x03,
        '┫' | '╣' | '╡' | '╢' => 0x04,
        '┓' | '╗' | '╕' | '╖' => 0x05,
        '▔' | '⎺' => 0x0D,
        '▁' | '⎽' => 0x0E,
        '┏' | '╔' | '╒' | '╓' => 0x11,
        '━' | '═' => 0x12,
        '╋' | '╬' | '╪' | '╫' => 0x13,
        '•' | '∙' => 0x14,
        '⎸' => 0x16,
        '┳' | '╦' | '╤' | '╥' => 0x17,
        '┻' | '╩' | '╧' | '╨' => 0x18,
        '┗' | '╚' | '╘' | '╙' => 0x1A,
        '│' | '║' => 0x7C,
        '↖' => 0x7D,
        '▀' => 0x95,
        '▐' => 0x99,
        '█' | '▒' | '▓' => 0xA0,
        '▛' => 0x89,
        '◤' => 0x88,
        '░' => 0x20,
        _ => {
            return BASE
                .iter()
                .position(|&g| g == c)
                .and_then(|i| u8::try_from(i).ok())
        }
    };
    Some(code)
}

/// The ATASCII code to show for `c`: the exact glyph, else `{}~` and backtick as `()-'`, else
/// the closest ASCII character, else `?`. Never returns an untranslated `{`, `}`, `~` or
/// backtick; may return a control code that needs an ESC prefix (see [`is_control`]).
pub fn encode_lossy(c: char) -> u8 {
    match c {
        '{' => b'(',
        '}' => b')',
        '~' => b'-',
        '`' => b'\'',
        _ => encode_char(c).unwrap_or_else(|| {
            let folded = fold::to_ascii(c);
            match folded {
                '{' => b'(',
                '}' => b')',
                '~' => b'-',
                '`' => b'\'',
                _ => u8::try_from(folded).unwrap_or(b'?'),
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_table_round_trips() {
        for b in 0u8..0x80 {
            let (glyph, inverse) = decode_byte(b);
            assert!(!inverse);
            assert_eq!(encode_char(glyph), Some(b), "code {b:#04x}");
        }
        assert_eq!(decode_byte(0xC1), ('A', true));
    }

    #[test]
    fn lossy_output_never_sends_the_dangerous_ascii() {
        assert_eq!(encode_lossy('{'), b'(');
        assert_eq!(encode_lossy('}'), b')');
        assert_eq!(encode_lossy('~'), b'-');
        assert_eq!(encode_lossy('`'), b'\'');
        assert_eq!(encode_lossy('─'), HLINE);
        assert_eq!(encode_lossy('é'), b'e');
        assert_eq!(encode_lossy('€'), b'?');
        assert!(is_control(encode_lossy('↑')));
    }
}
