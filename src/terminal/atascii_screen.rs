//! A model of an Atari 40×24 GRAPHICS 0 screen, fed raw ATASCII bytes.
//!
//! Owns the interpretation of an ATASCII output stream the way the Atari screen editor (and
//! SyncTERM's ATASCII mode) shows it (atascii.md §1–§2): glyphs with an inverse flag, EOL,
//! clear, backspace, tab, cursor moves that wrap, delete/insert line and character, the
//! buzzer and ESC quoting. Writing the last column wraps at once, so a full row followed by
//! EOL shows a blank row, exactly the mistake tests must catch. Tests and the sysop's spy view
//! use it; it must not do I/O and never panics, whatever the bytes.

use super::atascii;

/// Columns of the screen.
pub const COLS: usize = 40;
/// Rows of the screen.
pub const ROWS: usize = 24;

/// The screen: cells hold ATASCII codes, bit 7 meaning inverse video.
#[derive(Debug, Clone)]
pub struct AtasciiScreen {
    cells: [[u8; COLS]; ROWS],
    row: usize,
    col: usize,
    bells: usize,
    quote_next: bool,
}

impl Default for AtasciiScreen {
    fn default() -> Self {
        AtasciiScreen::new()
    }
}

impl AtasciiScreen {
    /// A blank screen with the cursor at the top left.
    pub fn new() -> AtasciiScreen {
        AtasciiScreen {
            cells: [[b' '; COLS]; ROWS],
            row: 0,
            col: 0,
            bells: 0,
            quote_next: false,
        }
    }

    /// Interprets `bytes` as output sent to the Atari.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.feed_byte(b);
        }
    }

    fn feed_byte(&mut self, b: u8) {
        if self.quote_next {
            self.quote_next = false;
            // ESC cannot quote EOL: it stays a line end.
            if b != atascii::EOL {
                self.put(b);
                return;
            }
        }
        match b {
            atascii::ESC => self.quote_next = true,
            atascii::EOL => self.line_feed(),
            atascii::CLEAR => {
                self.cells = [[b' '; COLS]; ROWS];
                self.row = 0;
                self.col = 0;
            }
            atascii::BACKSPACE => {
                if self.col > 0 {
                    self.col -= 1;
                    self.cells[self.row][self.col] = b' ';
                }
            }
            atascii::TAB => {
                let next = (self.col / 8 + 1) * 8;
                if next < COLS {
                    self.col = next;
                } else {
                    self.line_feed();
                }
            }
            0x1C => self.row = (self.row + ROWS - 1) % ROWS,
            0x1D => self.row = (self.row + 1) % ROWS,
            0x1E => self.col = (self.col + COLS - 1) % COLS,
            0x1F => self.col = (self.col + 1) % COLS,
            0x9C => {
                self.cells.copy_within(self.row + 1.., self.row);
                self.cells[ROWS - 1] = [b' '; COLS];
            }
            0x9D => {
                self.cells.copy_within(self.row..ROWS - 1, self.row + 1);
                self.cells[self.row] = [b' '; COLS];
            }
            0x9E | 0x9F => {
                // Tab stops are fixed at every eighth column in this model.
            }
            atascii::BELL => self.bells += 1,
            0xFE => {
                let line = &mut self.cells[self.row];
                line.copy_within(self.col + 1.., self.col);
                line[COLS - 1] = b' ';
            }
            0xFF => {
                let line = &mut self.cells[self.row];
                line.copy_within(self.col..COLS - 1, self.col + 1);
                line[self.col] = b' ';
            }
            _ => self.put(b),
        }
    }

    fn put(&mut self, b: u8) {
        self.cells[self.row][self.col] = b;
        self.col += 1;
        if self.col == COLS {
            self.line_feed();
        }
    }

    fn line_feed(&mut self) {
        self.col = 0;
        if self.row + 1 < ROWS {
            self.row += 1;
        } else {
            self.cells.copy_within(1.., 0);
            self.cells[ROWS - 1] = [b' '; COLS];
        }
    }

    /// Row `r` as Unicode, inverse video stripped; empty for rows off the screen.
    pub fn row_text(&self, r: usize) -> String {
        self.cells
            .get(r)
            .map(|line| line.iter().map(|&b| atascii::decode_byte(b).0).collect())
            .unwrap_or_default()
    }

    /// The whole screen: rows joined by `\n`, trailing spaces and trailing blank rows trimmed.
    pub fn contents(&self) -> String {
        let rows: Vec<String> = (0..ROWS)
            .map(|r| self.row_text(r).trim_end().to_string())
            .collect();
        rows.join("\n").trim_end().to_string()
    }

    /// Whether the cell at row `r`, column `c` is in inverse video.
    pub fn is_inverse(&self, r: usize, c: usize) -> bool {
        self.cells
            .get(r)
            .and_then(|line| line.get(c))
            .is_some_and(|&b| b & 0x80 != 0)
    }

    /// The raw ATASCII code in a cell (bit 7 = inverse).
    pub fn code(&self, r: usize, c: usize) -> Option<u8> {
        self.cells.get(r).and_then(|line| line.get(c)).copied()
    }

    /// The cursor as (row, column), both from 0.
    pub fn cursor(&self) -> (usize, usize) {
        (self.row, self.col)
    }

    /// How many times the buzzer sounded.
    pub fn bells(&self) -> usize {
        self.bells
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_eol_clear_and_inverse() {
        let mut s = AtasciiScreen::new();
        s.feed(b"HELLO\x9b\xd7orld\xfd");
        assert_eq!(s.contents(), "HELLO\nWorld");
        assert!(s.is_inverse(1, 0));
        assert!(!s.is_inverse(1, 1));
        assert_eq!(s.bells(), 1);
        assert_eq!(s.cursor(), (1, 5));
        s.feed(&[0x7D]);
        assert_eq!(s.contents(), "");
        assert_eq!(s.cursor(), (0, 0));
    }

    #[test]
    fn full_row_then_eol_leaves_a_blank_row() {
        let mut s = AtasciiScreen::new();
        s.feed(&[b'x'; 40]);
        s.feed(b"\x9bnext");
        assert_eq!(s.row_text(1).trim_end(), "");
        assert_eq!(s.row_text(2).trim_end(), "next");
    }

    #[test]
    fn editing_controls_and_quoting() {
        let mut s = AtasciiScreen::new();
        s.feed(b"abc\x7e\x7eX\x1b\x1c\x1b\x7d");
        assert_eq!(s.row_text(0).trim_end(), "aX↑\u{1F8B0}");
        s.feed(b"\x1e\x1e\x1e\xfe");
        assert_eq!(s.row_text(0).trim_end(), "a↑\u{1F8B0}");
        s.feed(b"\x1c\x1c");
        assert_eq!(s.cursor().0, 22);
        s.feed(b"\x9b\x7fT");
        assert_eq!(s.row_text(23).trim_end(), "        T");
    }

    #[test]
    fn scrolls_and_edits_lines() {
        let mut s = AtasciiScreen::new();
        for i in 0..30u8 {
            s.feed(&[b'L', b'0' + i % 10, atascii::EOL]);
        }
        assert_eq!(s.row_text(0).trim_end(), "L7");
        assert_eq!(s.row_text(22).trim_end(), "L9");
        s.feed(&[0x1C, 0x9C]);
        assert_eq!(s.row_text(22).trim_end(), "");
        s.feed(&[0x9D]);
        assert_eq!(s.row_text(23).trim_end(), "");
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000)) {
            let mut s = AtasciiScreen::new();
            s.feed(&bytes);
            let (r, c) = s.cursor();
            proptest::prop_assert!(r < ROWS && c < COLS);
            proptest::prop_assert!(s.contents().lines().count() <= ROWS);
        }
    }
}
