//! The live market board: given what the caller's screen shows and fresh figures, the bytes
//! that change only the cells that differ.
//!
//! - **ANSI**: absolute cursor addressing (`CSI row;col H`) to each run of changed cells;
//!   neighbouring changed cells are written as one run with the unchanged gap between them
//!   when that is shorter than another cursor move. The cursor goes back to the prompt.
//! - **ATASCII**: the Atari has no absolute addressing, so the cursor is walked from the
//!   prompt with the screen editor's relative moves (0x1C up, 0x1D down, 0x1E left,
//!   0x1F right), sent unquoted, and walked back afterwards. Cells never reach the last
//!   column, so writing them never wraps.
//! - **ASCII**: no cursor control at all. Each changed row is printed again as a ticker line
//!   below the prompt, and the prompt is shown again under it; the board scrolls up rather
//!   than being reprinted whole, which a 300-baud caller would not thank us for.
//!
//! Pure: no I/O. The app decides when to ask (it coalesces bursts of exchange events).
//! Cursor-control bytes are written here, not in `terminal::out`, because `Out` owns only
//! how characters become bytes; every character still goes through `Out`.

use crate::store::exchange::board::BoardRow;
use crate::terminal::out::{Out, Style};
use crate::terminal::{Caps, Charset};

use super::screens::{pad, BoardGeometry, BOARD_PROMPT};
use crate::terminal::screen::line_width;

/// Unchanged columns worth rewriting to save a cursor move between two changed cells.
const MERGE_GAP: usize = 8;

/// One cell to write: its start column, padded text and style.
type Cell = (usize, String, Style);

/// The changed cells of one board row, grouped into contiguous runs.
#[derive(Debug)]
struct RowChange {
    /// The instrument's index in the board.
    index: usize,
    /// The screen row.
    row: usize,
    runs: Vec<Vec<Cell>>,
}

/// What the caller's board currently shows.
#[derive(Debug, Clone)]
pub struct LiveBoard {
    caps: Caps,
    geometry: BoardGeometry,
    rows: Vec<BoardRow>,
    status: String,
}

impl LiveBoard {
    /// The board as just drawn.
    pub fn new(caps: Caps, geometry: BoardGeometry, rows: Vec<BoardRow>, status: String) -> Self {
        LiveBoard {
            caps,
            geometry,
            rows,
            status,
        }
    }

    /// The bytes that write a news line into the board's news row (ANSI, ATASCII) or print
    /// it with the prompt again under it (ASCII), leaving the cursor at the prompt.
    pub fn flash(&self, line: &str) -> Vec<u8> {
        let text = super::screens::news_row(Some(line), &self.caps);
        let mut out = Out::new(&self.caps);
        let (prompt_row, prompt_col) = (self.geometry.prompt_row, self.geometry.prompt_col);
        match self.caps.charset {
            Charset::Ansi => {
                out.raw(format!("\x1b[{};1H", self.geometry.news_row + 1).as_bytes());
                out.styled(&text, Style::Emphasis);
                out.raw(b"\x1b[K");
                out.raw(format!("\x1b[{};{}H", prompt_row + 1, prompt_col + 1).as_bytes());
            }
            Charset::Atascii => {
                let up = prompt_row.saturating_sub(self.geometry.news_row);
                out.raw(&vec![0x1C; up]);
                out.raw(&vec![0x1E; prompt_col]);
                let width = line_width(&self.caps);
                out.styled(
                    &pad(&text, width, crate::terminal::screen::Align::Left),
                    Style::Emphasis,
                );
                out.raw(&vec![0x1D; up]);
                if width >= prompt_col {
                    out.raw(&vec![0x1E; width - prompt_col]);
                } else {
                    out.raw(&vec![0x1F; prompt_col - width]);
                }
            }
            Charset::Ascii => {
                out.newline();
                out.text(&text).newline();
                out.text(BOARD_PROMPT);
            }
        }
        out.into_bytes()
    }

    /// The bytes that bring the screen up to date with `rows` and `status`, or `None` when
    /// the board's shape changed (an instrument was listed) and must be drawn again whole.
    pub fn update(&mut self, rows: &[BoardRow], status: &str) -> Option<Vec<u8>> {
        if rows.len() != self.rows.len()
            || rows
                .iter()
                .zip(&self.rows)
                .any(|(a, b)| a.instrument_id != b.instrument_id)
        {
            return None;
        }
        let layout = &self.geometry.layout;
        let mut changes: Vec<RowChange> = Vec::new();
        for (i, (new, old)) in rows.iter().zip(&self.rows).enumerate() {
            let a = layout.cells(new);
            let b = layout.cells(old);
            let changed: Vec<usize> = (0..a.len()).filter(|&k| a[k] != b[k]).collect();
            if changed.is_empty() {
                continue;
            }
            let mut runs: Vec<Vec<Cell>> = Vec::new();
            let mut last_end: Option<usize> = None;
            for k in changed {
                let (_, x, w) = layout.cols[k];
                let cell = (x, a[k].0.clone(), a[k].1);
                match (runs.last_mut(), last_end) {
                    (Some(run), Some(end)) if x.saturating_sub(end) <= MERGE_GAP => {
                        // Take in the unchanged cells between, so the run is contiguous.
                        let prev_k = layout
                            .cols
                            .iter()
                            .position(|c| c.1 == run.last().map_or(0, |r| r.0))
                            .unwrap_or(0);
                        for (j, col) in layout.cols.iter().enumerate().take(k).skip(prev_k + 1) {
                            run.push((col.1, a[j].0.clone(), a[j].1));
                        }
                        run.push(cell);
                    }
                    _ => runs.push(vec![cell]),
                }
                last_end = Some(x + w);
            }
            changes.push(RowChange {
                index: i,
                row: self.geometry.first_row + i,
                runs,
            });
        }
        let status_changed = status != self.status;
        self.rows = rows.to_vec();
        self.status = status.to_string();
        if changes.is_empty() && !status_changed {
            return Some(Vec::new());
        }
        let mut out = Out::new(&self.caps);
        match self.caps.charset {
            Charset::Ansi => self.ansi(&mut out, &changes, status_changed),
            Charset::Atascii => self.atascii(&mut out, &changes, status_changed),
            Charset::Ascii => self.ascii(&mut out, &changes, status_changed),
        }
        Some(out.into_bytes())
    }

    fn ansi(&self, out: &mut Out, changes: &[RowChange], status_changed: bool) {
        let goto = |out: &mut Out, row: usize, col: usize| {
            out.raw(format!("\x1b[{};{}H", row + 1, col + 1).as_bytes());
        };
        if status_changed {
            goto(out, 0, 0);
            out.styled(&self.status, Style::Emphasis);
            out.raw(b"\x1b[K");
        }
        for change in changes {
            for run in &change.runs {
                let Some(&(start, _, _)) = run.first() else {
                    continue;
                };
                goto(out, change.row, start);
                write_run(out, run);
            }
        }
        goto(out, self.geometry.prompt_row, self.geometry.prompt_col);
    }

    fn atascii(&self, out: &mut Out, changes: &[RowChange], status_changed: bool) {
        let mut at = (self.geometry.prompt_row, self.geometry.prompt_col);
        let walk = |out: &mut Out, at: &mut (usize, usize), to: (usize, usize)| {
            let (r, c) = *at;
            let v: &[u8] = if to.0 < r { &[0x1C] } else { &[0x1D] };
            for _ in 0..r.abs_diff(to.0) {
                out.raw(v);
            }
            let h: &[u8] = if to.1 < c { &[0x1E] } else { &[0x1F] };
            for _ in 0..c.abs_diff(to.1) {
                out.raw(h);
            }
            *at = to;
        };
        if status_changed {
            walk(out, &mut at, (0, 0));
            let width = line_width(&self.caps);
            let text = pad(&self.status, width, crate::terminal::screen::Align::Left);
            out.styled(&text, Style::Emphasis);
            at = (0, width);
        }
        for change in changes {
            for run in &change.runs {
                let Some(&(start, _, _)) = run.first() else {
                    continue;
                };
                walk(out, &mut at, (change.row, start));
                let end = write_run(out, run);
                at = (change.row, end);
            }
        }
        walk(
            out,
            &mut at,
            (self.geometry.prompt_row, self.geometry.prompt_col),
        );
    }

    fn ascii(&self, out: &mut Out, changes: &[RowChange], status_changed: bool) {
        out.newline();
        if status_changed {
            out.text(&self.status).newline();
        }
        for change in changes {
            if let Some(row) = self.rows.get(change.index) {
                let spans = self.geometry.layout.spans(row);
                let text: String = spans.iter().map(|(t, _)| t.as_str()).collect();
                out.text(text.trim_end()).newline();
            }
        }
        out.text(BOARD_PROMPT);
    }
}

/// Writes a contiguous run of cells (with the spaces between them); returns the column after.
fn write_run(out: &mut Out, run: &[Cell]) -> usize {
    let mut x = run.first().map_or(0, |c| c.0);
    for (start, text, style) in run {
        if *start > x {
            out.spaces(start - x);
        }
        out.styled(text, *style);
        x = start + text.chars().count();
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::screens::{board, Status};
    use crate::terminal::atascii_screen::AtasciiScreen;

    const HEADLINE: &str = "NEWS: Junk Bond Kings to be taken private by men in red suspenders";
    const FLASH: &str =
        "NEWS: Leveraged Buyout Partners CEO indicted; lawyers cite 'creative accounting'";

    fn status() -> Status {
        Status {
            cash: 1_000_000,
            net_worth: 1_000_000,
            open: true,
            minutes_left: 30,
            session: None,
            unread: 0,
            season_left_ms: None,
        }
    }

    fn rows() -> Vec<BoardRow> {
        // As many listings as the default season, with figures in every column.
        [
            "AERO", "CELL", "COLA", "JUNK", "LBO", "PCJR", "SAVL", "YUPI",
        ]
        .iter()
        .enumerate()
        .map(|(i, s)| BoardRow {
            instrument_id: i as i64 + 1,
            symbol: s.to_string(),
            name: format!("{s} Leveraged Holdings Inc."),
            last: 1000 + i as i64 * 100,
            prev_close: Some(1000),
            day_open: None,
            bid: Some(990),
            ask: Some(1010),
            volume: 12_345,
        })
        .collect()
    }

    /// A trade in COLA: last, change, volume and the bid move.
    fn traded(mut r: Vec<BoardRow>) -> Vec<BoardRow> {
        r[2].last = 1125;
        r[2].day_open = Some(1100);
        r[2].volume = 300;
        r[2].bid = Some(1120);
        r
    }

    fn draw(caps: &Caps) -> (Vec<u8>, LiveBoard) {
        let r = rows();
        let (screen, g) = board(&status(), "Test", &r, Some(HEADLINE), None, caps);
        let live = LiveBoard::new(*caps, g, r, status().text(caps));
        (screen.render(caps), live)
    }

    #[test]
    fn ansi_update_changes_only_the_cells_and_is_small() {
        let caps = Caps::for_charset(Charset::Ansi);
        let (first, mut live) = draw(&caps);
        let bytes = live.update(&traded(rows()), &status().text(&caps)).unwrap();
        assert!(
            bytes.len() < 120,
            "{} bytes: {:?}",
            bytes.len(),
            String::from_utf8_lossy(&bytes)
        );
        assert!(first.len() < 1000, "full board {} bytes", first.len());
        let mut vt = vt100::Parser::new(24, 80, 0);
        vt.process(crate::terminal::cp437::to_unicode(&first).as_bytes());
        let before = vt.screen().contents();
        vt.process(crate::terminal::cp437::to_unicode(&bytes).as_bytes());
        let after = vt.screen().contents();
        let (redrawn, g) = board(
            &status(),
            "Test",
            &traded(rows()),
            Some(HEADLINE),
            None,
            &caps,
        );
        let expected = redrawn.render(&caps);
        let mut vt2 = vt100::Parser::new(24, 80, 0);
        vt2.process(crate::terminal::cp437::to_unicode(&expected).as_bytes());
        assert_eq!(after, vt2.screen().contents());
        assert_ne!(before, after);
        assert_eq!(
            vt.screen().cursor_position(),
            (g.prompt_row as u16, g.prompt_col as u16)
        );
        assert_eq!(
            live.update(&traded(rows()), &status().text(&caps)),
            Some(Vec::new())
        );
    }

    #[test]
    fn atascii_update_walks_the_cursor_and_matches_a_redraw() {
        let caps = Caps::for_charset(Charset::Atascii);
        let (first, mut live) = draw(&caps);
        let mut s = status();
        s.net_worth = 1_000_500;
        let bytes = live.update(&traded(rows()), &s.text(&caps)).unwrap();
        assert!(first.len() < 960, "full board {} bytes", first.len());
        assert!(!bytes.contains(&0x7D), "no clear");
        let mut atari = AtasciiScreen::new();
        atari.feed(&first);
        atari.feed(&bytes);
        let mut redrawn = AtasciiScreen::new();
        let (screen, g) = board(&s, "Test", &traded(rows()), Some(HEADLINE), None, &caps);
        redrawn.feed(&screen.render(&caps));
        assert_eq!(atari.contents(), redrawn.contents());
        assert_eq!(atari.cursor(), (g.prompt_row, g.prompt_col));
    }

    #[test]
    fn a_flash_rewrites_the_news_row_like_a_redraw_would() {
        for charset in [Charset::Ansi, Charset::Atascii] {
            let caps = Caps::for_charset(charset);
            let (first, live) = draw(&caps);
            let bytes = live.flash(FLASH);
            assert!(bytes.len() < 140, "{charset:?}: {} bytes", bytes.len());
            let (screen, g) = board(&status(), "Test", &rows(), Some(FLASH), None, &caps);
            let expected = screen.render(&caps);
            match charset {
                Charset::Ansi => {
                    let shown = |parts: &[&[u8]]| {
                        let mut vt = vt100::Parser::new(24, 80, 0);
                        for p in parts {
                            vt.process(crate::terminal::cp437::to_unicode(p).as_bytes());
                        }
                        (vt.screen().contents(), vt.screen().cursor_position())
                    };
                    let (after, cursor) = shown(&[&first, &bytes]);
                    assert_eq!(after, shown(&[&expected]).0);
                    assert!(after.contains("NEWS: Leveraged Buyout"), "{after}");
                    assert_eq!(cursor, (g.prompt_row as u16, g.prompt_col as u16));
                }
                _ => {
                    let mut atari = AtasciiScreen::new();
                    atari.feed(&first);
                    atari.feed(&bytes);
                    let mut redrawn = AtasciiScreen::new();
                    redrawn.feed(&expected);
                    assert_eq!(atari.contents(), redrawn.contents());
                    assert_eq!(atari.cursor(), (g.prompt_row, g.prompt_col));
                }
            }
        }
        let caps = Caps::for_charset(Charset::Ascii);
        let (_, live) = draw(&caps);
        let text = String::from_utf8(live.flash(FLASH)).unwrap();
        assert!(
            text.contains("NEWS: Leveraged") && text.ends_with(BOARD_PROMPT),
            "{text}"
        );
    }

    #[test]
    fn ascii_reprints_changed_rows_and_the_prompt() {
        let caps = Caps::for_charset(Charset::Ascii);
        let (_, mut live) = draw(&caps);
        let bytes = live.update(&traded(rows()), &status().text(&caps)).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("COLA") && text.contains("11.25") && !text.contains("JUNK"));
        assert!(text.ends_with(BOARD_PROMPT));
        let mut more = rows();
        more.push(rows()[0].clone());
        assert_eq!(live.update(&more, ""), None);
    }
}
