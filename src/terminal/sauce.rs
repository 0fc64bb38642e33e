//! SAUCE records on art files (ansi.md §7).
//!
//! Owns finding and parsing the 128-byte SAUCE trailer and its optional COMNT block, and
//! cutting an art file down to what should be sent. It never panics and never fails: a file
//! with a damaged or truncated record is simply treated as having none. It does not read
//! files or decide how art is shown.

use super::cp437;

/// Size of the SAUCE record.
const RECORD: usize = 128;
/// Size of one comment line.
const COMMENT_LINE: usize = 64;
/// The end-of-file byte that precedes the trailer.
const EOF: u8 = 0x1A;

/// The fields of a SAUCE record a BBS uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sauce {
    pub title: String,
    pub author: String,
    pub group: String,
    /// `CCYYMMDD` as written.
    pub date: String,
    /// Size of the original content as recorded.
    pub file_size: u32,
    pub data_type: u8,
    pub file_type: u8,
    pub tinfo1: u16,
    pub tinfo2: u16,
    pub tinfo3: u16,
    pub tinfo4: u16,
    pub flags: u8,
    /// TInfoS: the font name for text types.
    pub font: String,
    /// The COMNT lines, trimmed.
    pub comments: Vec<String>,
}

impl Sauce {
    /// The width in characters for text types, if recorded.
    pub fn width(&self) -> Option<u16> {
        let w = match self.data_type {
            // Character types whose TInfo1 is the width: ASCII, ANSi, ANSiMation, PCBoard,
            // Avatar, TundraDraw.
            1 if matches!(self.file_type, 0 | 1 | 2 | 4 | 5 | 8) => self.tinfo1,
            // BinaryText stores half the width in the file type.
            5 => u16::from(self.file_type) * 2,
            6 => self.tinfo1,
            _ => 0,
        };
        (w > 0).then_some(w)
    }

    /// The number of lines for text types, if recorded.
    pub fn lines(&self) -> Option<u16> {
        let lines = match self.data_type {
            1 if matches!(self.file_type, 0 | 1 | 2 | 4 | 5 | 8) => self.tinfo2,
            6 => self.tinfo2,
            _ => 0,
        };
        (lines > 0).then_some(lines)
    }

    /// Whether the art expects iCE colours (blink means bright background).
    pub fn ice_colors(&self) -> bool {
        matches!(self.data_type, 1 | 5) && self.flags & 1 != 0
    }
}

/// Splits a CP437 art file into what to send and its SAUCE record: the content ends at the
/// first 0x1A (ansi.md §5), and the trailer is parsed when present.
pub fn strip(bytes: &[u8]) -> (&[u8], Option<Sauce>) {
    let (content, sauce) = strip_record(bytes);
    let end = content
        .iter()
        .position(|&b| b == EOF)
        .unwrap_or(content.len());
    (&content[..end], sauce)
}

/// Like [`strip`] for ATASCII art, where 0x1A is a graphics character: only the trailer (and
/// the 0x1A just before it) is removed.
pub fn strip_record(bytes: &[u8]) -> (&[u8], Option<Sauce>) {
    let Some(start) = bytes.len().checked_sub(RECORD) else {
        return (bytes, None);
    };
    let record = &bytes[start..];
    if !record.starts_with(b"SAUCE00") {
        return (bytes, None);
    }
    let mut sauce = parse_record(record);
    let mut content_end = start;
    let count = usize::from(record[104]);
    if count > 0 {
        let block = 5 + COMMENT_LINE * count;
        if let Some(at) = start.checked_sub(block) {
            if bytes[at..].starts_with(b"COMNT") {
                sauce.comments = bytes[at + 5..start]
                    .chunks(COMMENT_LINE)
                    .map(text)
                    .collect();
                content_end = at;
            }
        }
    }
    if content_end > 0 && bytes[content_end - 1] == EOF {
        content_end -= 1;
    }
    (&bytes[..content_end], Some(sauce))
}

fn parse_record(r: &[u8]) -> Sauce {
    let u16_at = |i: usize| u16::from_le_bytes([r[i], r[i + 1]]);
    let font_field = &r[106..128];
    let font_end = font_field
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(font_field.len());
    Sauce {
        title: text(&r[7..42]),
        author: text(&r[42..62]),
        group: text(&r[62..82]),
        date: text(&r[82..90]),
        file_size: u32::from_le_bytes([r[90], r[91], r[92], r[93]]),
        data_type: r[94],
        file_type: r[95],
        tinfo1: u16_at(96),
        tinfo2: u16_at(98),
        tinfo3: u16_at(100),
        tinfo4: u16_at(102),
        flags: r[105],
        font: text(&font_field[..font_end]),
        comments: Vec::new(),
    }
}

/// A CP437 string field, with space and NUL padding trimmed and controls dropped.
fn text(bytes: &[u8]) -> String {
    let s: String = cp437::to_unicode(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A SAUCE record with the given text fields, size and flags.
    fn record(title: &str, width: u16, lines: u16, flags: u8, comments: u8) -> Vec<u8> {
        let mut r = vec![b' '; RECORD];
        r[..7].copy_from_slice(b"SAUCE00");
        r[7..7 + title.len()].copy_from_slice(title.as_bytes());
        r[42..48].copy_from_slice(b"artist");
        r[62..66].copy_from_slice(b"grp\0");
        r[82..90].copy_from_slice(b"19940101");
        r[90..94].copy_from_slice(&5u32.to_le_bytes());
        r[94] = 1;
        r[95] = 1;
        r[96..98].copy_from_slice(&width.to_le_bytes());
        r[98..100].copy_from_slice(&lines.to_le_bytes());
        r[100..104].fill(0);
        r[104] = comments;
        r[105] = flags;
        r[106..128].fill(0);
        r[106..113].copy_from_slice(b"IBM VGA");
        r
    }

    #[test]
    fn strips_and_parses() {
        let mut file = b"hello".to_vec();
        file.push(EOF);
        file.extend(record("My art", 80, 25, 1, 0));
        let (content, sauce) = strip(&file);
        assert_eq!(content, b"hello");
        let sauce = sauce.unwrap_or_default();
        assert_eq!(sauce.title, "My art");
        assert_eq!(sauce.author, "artist");
        assert_eq!(sauce.group, "grp");
        assert_eq!(sauce.font, "IBM VGA");
        assert_eq!(sauce.width(), Some(80));
        assert_eq!(sauce.lines(), Some(25));
        assert!(sauce.ice_colors());
    }

    #[test]
    fn comment_block() {
        let mut file = b"art".to_vec();
        file.push(EOF);
        file.extend(b"COMNT");
        let mut line = [b' '; 64];
        line[..5].copy_from_slice(b"first");
        file.extend(line);
        line[..6].copy_from_slice(b"second");
        file.extend(line);
        file.extend(record("t", 0, 0, 0, 2));
        let (content, sauce) = strip_record(&file);
        assert_eq!(content, b"art");
        let sauce = sauce.unwrap_or_default();
        assert_eq!(sauce.comments, ["first", "second"]);
        assert_eq!(sauce.width(), None);
        assert!(!sauce.ice_colors());
    }

    #[test]
    fn no_record_cuts_at_eof_for_cp437_only() {
        assert_eq!(strip(b"abc\x1agarbage"), (&b"abc"[..], None));
        assert_eq!(strip_record(b"a\x1ab"), (&b"a\x1ab"[..], None));
        assert_eq!(strip(b""), (&b""[..], None));
    }

    #[test]
    fn bad_comment_count_is_lenient() {
        let mut file = b"x".to_vec();
        file.extend(record("t", 40, 0, 0, 200));
        let (content, sauce) = strip(&file);
        assert_eq!(content, b"x");
        assert!(sauce.is_some_and(|s| s.comments.is_empty()));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..400), sauce in any::<bool>()) {
            if sauce && bytes.len() >= RECORD {
                let at = bytes.len() - RECORD;
                bytes[at..at + 7].copy_from_slice(b"SAUCE00");
            }
            let (content, _) = strip(&bytes);
            prop_assert!(content.len() <= bytes.len());
            let (content, _) = strip_record(&bytes);
            prop_assert!(content.len() <= bytes.len());
        }
    }
}
