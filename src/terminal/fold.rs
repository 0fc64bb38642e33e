//! Folding Unicode to the closest printable 7-bit ASCII character.
//!
//! Owns the one-character fallback used by the ASCII and ATASCII writers. It always returns
//! exactly one printable ASCII character (0x20–0x7E) so that layout widths never change; it
//! must not return controls, and it returns `?` when nothing is close.

/// The closest printable ASCII character to `c`, or `?`.
pub fn to_ascii(c: char) -> char {
    if (' '..='~').contains(&c) {
        return c;
    }
    match c {
        // Box drawing: horizontal lines, vertical lines, everything else is a corner or a tee.
        '─' | '━' | '═' | '╌' | '╍' | '┄' | '┅' | '▬' | '▔' | '▁' | '⎺' | '⎽' => {
            '-'
        }
        '│' | '┃' | '║' | '╎' | '╏' | '┆' | '┇' | '▕' | '⎹' | '⎸' | '▏' | '▎' => {
            '|'
        }
        '\u{2500}'..='\u{257F}' => '+',
        '█' | '▓' | '▒' | '▀' | '▄' | '▌' | '▐' | '■' => '#',
        '░' => ':',
        '\u{00A0}' | '\u{2002}'..='\u{200A}' => ' ',
        '‘' | '’' | '‚' | '′' | '´' => '\'',
        '“' | '”' | '„' | '″' | '«' | '»' => '"',
        '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | '¬' => '-',
        '•' | '●' | '∙' | '×' | '☼' => '*',
        '·' | '…' => '.',
        '÷' => '/',
        '¦' => '|',
        '←' | '◄' | '◀' => '<',
        '→' | '►' | '▶' => '>',
        '↑' | '▲' => '^',
        '↓' | '▼' => 'v',
        '¡' => '!',
        '¿' => '?',
        '¢' => 'c',
        '£' => 'L',
        '¥' => 'Y',
        '©' => 'C',
        '®' => 'R',
        '°' | 'º' => 'o',
        'ª' => 'a',
        '±' => '+',
        '²' => '2',
        '³' => '3',
        '¹' => '1',
        'µ' => 'u',
        'ß' => 's',
        'ƒ' => 'f',
        'À'..='Å' => 'A',
        'Æ' => 'A',
        'Ç' => 'C',
        'È'..='Ë' => 'E',
        'Ì'..='Ï' => 'I',
        'Ð' => 'D',
        'Ñ' => 'N',
        'Ò'..='Ö' | 'Ø' => 'O',
        'Ù'..='Ü' => 'U',
        'Ý' => 'Y',
        'Þ' => 'P',
        'à'..='å' | 'æ' => 'a',
        'ç' => 'c',
        'è'..='ë' => 'e',
        'ì'..='ï' => 'i',
        'ð' => 'd',
        'ñ' => 'n',
        'ò'..='ö' | 'ø' => 'o',
        'ù'..='ü' => 'u',
        'ý' | 'ÿ' => 'y',
        'þ' => 'p',
        _ => '?',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_to_one_printable_ascii_character() {
        let folded: String = "┌─┐│é€—“x”".chars().map(to_ascii).collect();
        assert_eq!(folded, "+-+|e?-\"x\"");
        assert_eq!(to_ascii('\u{7}'), '?');
    }
}
