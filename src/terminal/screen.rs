//! Screens described once and rendered for any terminal.
//!
//! Owns layout: word wrapping, truncation, menus in one or two columns and tables that drop
//! or shrink columns to fit. A [`Screen`] is a list of elements built with a small builder;
//! [`Screen::render`] lays it out for one [`Caps`] and hands every character to
//! [`Out`], which owns the charset. It must not emit bytes itself.
//!
//! **Invariant:** no rendered row is wider than `caps.width - 1` columns. The last column is
//! never written because ANSI-BBS terminals wrap as soon as it is filled (ansi.md §2) and the
//! Atari screen editor joins the row with the next one (atascii.md §1); either way a full row
//! followed by a line end shows an unexpected blank row.

use super::out::{Out, Style};
use super::{Caps, Charset};

/// Horizontal alignment of a table column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Align {
    #[default]
    Left,
    Right,
}

/// One column of a [`Table`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The heading shown above the column.
    pub header: String,
    /// How cells are aligned.
    pub align: Align,
    /// 0 = always shown; higher numbers are dropped first when the screen is narrow.
    pub priority: u8,
}

/// A simple table: a heading row and rows of cells, laid out to the screen width.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with no columns.
    pub fn new() -> Table {
        Table::default()
    }

    /// Adds a column. Columns with a higher `priority` number are dropped first.
    pub fn column(mut self, header: &str, align: Align, priority: u8) -> Table {
        self.columns.push(Column {
            header: sanitize(header),
            align,
            priority,
        });
        self
    }

    /// Adds a row; missing cells are blank and extra cells are ignored.
    pub fn row<I, S>(mut self, cells: I) -> Table
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.rows
            .push(cells.into_iter().map(|c| sanitize(c.as_ref())).collect());
        self
    }

    /// Adds a row in place, for building tables in a loop.
    pub fn push_row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.rows
            .push(cells.into_iter().map(|c| sanitize(c.as_ref())).collect());
    }

    fn cell(&self, row: usize, col: usize) -> &str {
        self.rows
            .get(row)
            .and_then(|r| r.get(col))
            .map_or("", String::as_str)
    }

    /// Chooses the visible columns and their widths for a line of `width` columns.
    fn layout(&self, width: usize) -> (Vec<(usize, usize)>, usize) {
        let gap = if width >= 60 { 2 } else { 1 };
        let natural = |i: usize| {
            let cells = (0..self.rows.len()).map(|r| char_len(self.cell(r, i)));
            cells
                .chain([char_len(&self.columns[i].header)])
                .max()
                .unwrap_or(0)
        };
        let mut cols: Vec<(usize, usize)> =
            (0..self.columns.len()).map(|i| (i, natural(i))).collect();
        let total = |cols: &[(usize, usize)]| {
            cols.iter().map(|c| c.1).sum::<usize>() + gap * cols.len().saturating_sub(1)
        };
        while total(&cols) > width && cols.len() > 1 {
            // Drop the least important column; among equals, the rightmost. The last column
            // always stays.
            let candidate = cols
                .iter()
                .enumerate()
                .filter(|(_, c)| self.columns[c.0].priority > 0)
                .max_by_key(|(pos, c)| (self.columns[c.0].priority, *pos))
                .map(|(pos, _)| pos);
            match candidate {
                Some(pos) => {
                    cols.remove(pos);
                }
                None => break,
            }
        }
        while total(&cols) > width {
            // Shrink the widest column; the final truncation catches anything left.
            match cols.iter_mut().filter(|c| c.1 > 1).max_by_key(|c| c.1) {
                Some(widest) => widest.1 -= 1,
                None => break,
            }
        }
        (cols, gap)
    }

    fn render(&self, out: &mut Out, width: usize) {
        if self.columns.is_empty() {
            return;
        }
        let (cols, gap) = self.layout(width);
        let line = |cells: &dyn Fn(usize) -> String| {
            let mut s = String::new();
            for (n, &(i, w)) in cols.iter().enumerate() {
                if n > 0 {
                    s.push_str(&" ".repeat(gap));
                }
                let text = truncate(&cells(i), w);
                let pad = " ".repeat(w - char_len(&text));
                match self.columns[i].align {
                    Align::Left => {
                        s.push_str(&text);
                        s.push_str(&pad);
                    }
                    Align::Right => {
                        s.push_str(&pad);
                        s.push_str(&text);
                    }
                }
            }
            truncate(s.trim_end(), width)
        };
        let header = line(&|i| self.columns[i].header.clone());
        out.styled(&header, Style::Heading).newline();
        let rule_len = cols.iter().map(|c| c.1).sum::<usize>() + gap * (cols.len() - 1);
        out.styled(&"─".repeat(rule_len.min(width)), Style::Dim)
            .newline();
        for r in 0..self.rows.len() {
            let text = line(&|i| self.cell(r, i).to_string());
            out.text(&text).newline();
        }
    }
}

/// One choice of a menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    /// The key that selects it.
    pub key: char,
    /// What it does.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Element {
    Title(String),
    Paragraph(String, Style),
    Line(Vec<(String, Style)>),
    Menu(Vec<MenuItem>),
    Table(Table),
    Rule,
    Blank,
    Prompt(String),
}

/// A screen described once, rendered to any charset and width.
///
/// ```
/// use nuggetnet::terminal::{Caps, Charset, screen::Screen};
/// let bytes = Screen::new()
///     .title("Main menu")
///     .menu(&[('W', "Who's online"), ('G', "Goodbye")])
///     .prompt("Command: ")
///     .render(&Caps::for_charset(Charset::Atascii));
/// assert_eq!(bytes[0], 0x7D);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    clear: bool,
    elements: Vec<Element>,
}

impl Default for Screen {
    fn default() -> Self {
        Screen::new()
    }
}

impl Screen {
    /// A screen that starts by clearing the caller's screen.
    pub fn new() -> Screen {
        Screen {
            clear: true,
            elements: Vec::new(),
        }
    }

    /// A screen that continues below what is already shown (no clear).
    pub fn continued() -> Screen {
        Screen {
            clear: false,
            elements: Vec::new(),
        }
    }

    /// A title bar.
    pub fn title(mut self, text: &str) -> Screen {
        self.elements.push(Element::Title(sanitize(text)));
        self
    }

    /// A paragraph, word-wrapped to the width. `\n` starts a new line.
    pub fn paragraph(self, text: &str) -> Screen {
        self.paragraph_styled(text, Style::Normal)
    }

    /// A paragraph in one style.
    pub fn paragraph_styled(mut self, text: &str, style: Style) -> Screen {
        self.elements
            .push(Element::Paragraph(sanitize_keep_newlines(text), style));
        self
    }

    /// A single line, truncated to the width.
    pub fn line(self, text: &str) -> Screen {
        self.line_styled(text, Style::Normal)
    }

    /// A single line in one style, truncated to the width.
    pub fn line_styled(mut self, text: &str, style: Style) -> Screen {
        self.elements
            .push(Element::Line(vec![(sanitize(text), style)]));
        self
    }

    /// A single line made of differently styled pieces, truncated to the width.
    pub fn spans(mut self, spans: &[(&str, Style)]) -> Screen {
        let spans = spans.iter().map(|&(t, s)| (sanitize(t), s)).collect();
        self.elements.push(Element::Line(spans));
        self
    }

    /// A menu of hotkeys and labels: two columns on wide screens, one on narrow ones.
    pub fn menu(mut self, items: &[(char, &str)]) -> Screen {
        let items = items
            .iter()
            .map(|&(key, label)| MenuItem {
                key: if key.is_control() { '?' } else { key },
                label: sanitize(label),
            })
            .collect();
        self.elements.push(Element::Menu(items));
        self
    }

    /// A table.
    pub fn table(mut self, table: Table) -> Screen {
        self.elements.push(Element::Table(table));
        self
    }

    /// A horizontal rule across the screen.
    pub fn rule(mut self) -> Screen {
        self.elements.push(Element::Rule);
        self
    }

    /// An empty line.
    pub fn blank(mut self) -> Screen {
        self.elements.push(Element::Blank);
        self
    }

    /// The prompt that ends the screen; the cursor stays after it, on the same line.
    pub fn prompt(mut self, text: &str) -> Screen {
        self.elements.push(Element::Prompt(sanitize(text)));
        self
    }

    /// The bytes that show this screen on a terminal with `caps`.
    pub fn render(&self, caps: &Caps) -> Vec<u8> {
        let mut out = Out::new(caps);
        self.render_into(&mut out);
        out.into_bytes()
    }

    /// How many rows the screen takes on a terminal with `caps`, counting the prompt's row
    /// (and ASCII's blank lines in place of a clear). The session uses it to page.
    pub fn rows(&self, caps: &Caps) -> usize {
        let width = line_width(caps);
        let clear_rows = match (self.clear, caps.charset) {
            (true, Charset::Ascii) => 2,
            _ => 0,
        };
        let element_rows = |element: &Element| match element {
            Element::Title(_) if caps.charset == Charset::Ascii => 2,
            Element::Paragraph(text, _) => wrap(text, width).len(),
            Element::Menu(items) => items.len().div_ceil(menu_columns(width)),
            Element::Table(table) if table.columns.is_empty() => 0,
            Element::Table(table) => 2 + table.rows.len(),
            Element::Title(_)
            | Element::Line(_)
            | Element::Rule
            | Element::Blank
            | Element::Prompt(_) => 1,
        };
        clear_rows + self.elements.iter().map(element_rows).sum::<usize>()
    }

    /// Appends this screen to `out`.
    pub fn render_into(&self, out: &mut Out) {
        let caps = *out.caps();
        let width = line_width(&caps);
        if self.clear {
            out.clear();
        }
        for element in &self.elements {
            match element {
                Element::Title(text) => render_title(out, text, width, caps.charset),
                Element::Paragraph(text, style) => {
                    for line in wrap(text, width) {
                        out.styled(&line, *style).newline();
                    }
                }
                Element::Line(spans) => {
                    let mut left = width;
                    for (text, style) in spans {
                        let piece = truncate(text, left);
                        left -= char_len(&piece);
                        out.styled(&piece, *style);
                    }
                    out.newline();
                }
                Element::Menu(items) => render_menu(out, items, width),
                Element::Table(table) => table.render(out, width),
                Element::Rule => {
                    out.styled(&"─".repeat(width), Style::Dim).newline();
                }
                Element::Blank => {
                    out.newline();
                }
                Element::Prompt(text) => {
                    out.styled(&truncate(text, width), Style::Emphasis);
                }
            }
        }
    }
}

/// The widest row a screen may write: one less than the terminal width (see the module docs).
pub fn line_width(caps: &Caps) -> usize {
    usize::from(caps.width.max(2)) - 1
}

fn render_title(out: &mut Out, text: &str, width: usize, charset: Charset) {
    let text = truncate(text, width);
    let left = (width - char_len(&text)) / 2;
    match charset {
        Charset::Ascii => {
            out.spaces(left).text(&text).newline();
            out.spaces(left)
                .text(&"=".repeat(char_len(&text)))
                .newline();
        }
        Charset::Ansi | Charset::Atascii => {
            let right = width - char_len(&text) - left;
            let bar = format!("{}{}{}", " ".repeat(left), text, " ".repeat(right));
            out.styled(&bar, Style::Title).newline();
        }
    }
}

fn render_menu(out: &mut Out, items: &[MenuItem], width: usize) {
    let columns = menu_columns(width);
    let col_width = width / columns;
    let rows = items.len().div_ceil(columns);
    for r in 0..rows {
        for c in 0..columns {
            let Some(item) = items.get(c * rows + r) else {
                continue;
            };
            let is_last = c + 1 == columns || items.get((c + 1) * rows + r).is_none();
            // Leave one space between columns; the last column may use the rest of the row.
            let room = if is_last {
                width - c * col_width
            } else {
                col_width - 1
            };
            let used = render_menu_item(out, item, room);
            if !is_last {
                out.spaces(col_width - used);
            }
        }
        out.newline();
    }
}

/// Two menu columns on screens of 60 columns or more, one on narrower ones.
fn menu_columns(width: usize) -> usize {
    if width >= 59 {
        2
    } else {
        1
    }
}

/// Writes `[K] Label` in at most `room` columns and returns the columns used.
fn render_menu_item(out: &mut Out, item: &MenuItem, room: usize) -> usize {
    if room < 4 {
        let key = truncate(&item.key.to_string(), room);
        out.styled(&key, Style::Hotkey);
        return char_len(&key);
    }
    out.text("[")
        .styled(&item.key.to_string(), Style::Hotkey)
        .text("]");
    let label = truncate(&format!(" {}", item.label), room - 3);
    out.text(&label);
    3 + char_len(&label)
}

/// Greedy word wrap to `width` columns; words longer than a line are split.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    for source in text.split('\n') {
        let mut line = String::new();
        let mut len = 0;
        for word in source.split_whitespace() {
            let mut word: Vec<char> = word.chars().collect();
            if len > 0 && len + 1 + word.len() <= width {
                line.push(' ');
                line.extend(word.iter());
                len += 1 + word.len();
                continue;
            }
            if len > 0 {
                lines.push(std::mem::take(&mut line));
            }
            while word.len() > width {
                let rest = word.split_off(width);
                lines.push(word.iter().collect());
                word = rest;
            }
            line.extend(word.iter());
            len = word.len();
        }
        lines.push(line);
    }
    lines
}

/// The first `width` characters of `s`.
pub fn truncate(s: &str, width: usize) -> String {
    s.chars().take(width).collect()
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Text for one row: controls (including line ends) become spaces.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Text for a paragraph: line ends are kept, other controls become spaces.
fn sanitize_keep_newlines(s: &str) -> String {
    s.replace("\r\n", "\n")
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terminal::testing::{check, check_caps};
    use proptest::prelude::*;

    const LOREM: &str = "NuggetNet is a trading game for callers with modems. Buy low, sell \
        high, and read your inbox before the market closes for the night.";

    #[test]
    fn title_paragraph_and_prompt() {
        let screen = Screen::new()
            .title("Welcome to NuggetNet")
            .paragraph(LOREM)
            .prompt("Press RETURN: ");
        check(
            |c| screen.render(c),
            &["Welcome to NuggetNet", "Press RETURN:", "Buy low"],
        );
        let atari = check_caps(
            |c| screen.render(c),
            &Caps::for_charset(Charset::Atascii),
            &["NuggetNet is a trading game for callers"],
        );
        assert!(atari.lines().all(|l| l.chars().count() < 40));
    }

    #[test]
    fn title_is_inverse_on_atascii() {
        let bytes = Screen::new()
            .title("Hi")
            .render(&Caps::for_charset(Charset::Atascii));
        let mut atari = crate::terminal::atascii_screen::AtasciiScreen::new();
        atari.feed(&bytes);
        assert!(atari.is_inverse(0, 0));
        assert!(atari.is_inverse(0, 38));
        assert!(!atari.is_inverse(0, 39));
    }

    #[test]
    fn dangerous_ascii_is_translated() {
        let screen = Screen::continued().line("{braces} ~tilde~ `tick`");
        check(|c| screen.render(c), &["tilde"]);
        let atari = check_caps(
            |c| screen.render(c),
            &Caps::for_charset(Charset::Atascii),
            &["(braces) -tilde- 'tick'"],
        );
        assert!(!atari.contains('{'));
    }

    #[test]
    fn long_lines_are_truncated() {
        let long = "x".repeat(300);
        let screen = Screen::new()
            .line(&long)
            .spans(&[("Name: ", Style::Dim), (&long, Style::Emphasis)]);
        check(|c| screen.render(c), &["xxxxxxxx", "Name: xxx"]);
    }

    #[test]
    fn menu_has_two_columns_wide_and_one_narrow() {
        let screen = Screen::new().menu(&[
            ('W', "Who's online"),
            ('M', "Message another node"),
            ('S', "Your settings"),
            ('G', "Goodbye"),
        ]);
        let wide = check_caps(
            |c| screen.render(c),
            &Caps::for_charset(Charset::Ansi),
            &["[W] Who's online", "[G] Goodbye"],
        );
        assert_eq!(wide.lines().count(), 2);
        let narrow = check_caps(
            |c| screen.render(c),
            &Caps::for_charset(Charset::Atascii),
            &["[M] Message another node"],
        );
        assert_eq!(narrow.lines().count(), 4);
        check(|c| screen.render(c), &["[S] Your settings"]);
    }

    #[test]
    fn hotkeys_are_highlighted() {
        let screen = Screen::continued().menu(&[('Q', "Quit")]);
        let bytes = screen.render(&Caps::for_charset(Charset::Atascii));
        assert_eq!(bytes, b"[\xd1] Quit\x9b");
        let bytes = screen.render(&Caps::for_charset(Charset::Ansi));
        let mut parser = vt100::Parser::new(5, 80, 0);
        parser.process(&bytes);
        let cell = parser.screen().cell(0, 1).map(|c| c.bold());
        assert_eq!(cell, Some(true));
    }

    #[test]
    fn tables_drop_low_priority_columns_when_narrow() {
        let table = Table::new()
            .column("Node", Align::Right, 0)
            .column("User", Align::Left, 0)
            .column("Doing", Align::Left, 2)
            .column("Where from", Align::Left, 1)
            .row([
                "1",
                "Alice",
                "Trading nuggets at the exchange",
                "telnet 192.168.100.200",
            ])
            .row(["12", "Bob", "Reading mail", "modem 2400"]);
        let screen = Screen::new().table(table);
        check(|c| screen.render(c), &["Node", "Alice", "Bob"]);
        let wide = check_caps(
            |c| screen.render(c),
            &Caps::for_charset(Charset::Ansi),
            &["Trading nuggets at the exchange", "Where from", "  12  Bob"],
        );
        assert!(wide.contains("telnet 192.168.100.200"));
        let narrow = check_caps(
            |c| screen.render(c),
            &Caps::for_charset(Charset::Atascii),
            &["Where from", "modem 2400"],
        );
        assert!(!narrow.contains("Doing"));
    }

    #[test]
    fn tables_shrink_columns_that_cannot_be_dropped() {
        let table = Table::new()
            .column("Name", Align::Left, 0)
            .column("Description", Align::Left, 0)
            .row(["Nuggets", &"very long text ".repeat(10)]);
        let screen = Screen::new().table(table);
        check(|c| screen.render(c), &["Nuggets", "very long text", "Name"]);
    }

    #[test]
    fn rules_and_blanks() {
        let screen = Screen::new().line("above").rule().blank().line("below");
        check(|c| screen.render(c), &["above", "below"]);
        let ansi = check_caps(|c| screen.render(c), &Caps::for_charset(Charset::Ansi), &[]);
        assert!(ansi.contains(&"─".repeat(79)));
        let ascii = check_caps(
            |c| screen.render(c),
            &Caps::for_charset(Charset::Ascii),
            &[],
        );
        assert!(ascii.contains(&"-".repeat(79)));
        let atari = check_caps(
            |c| screen.render(c),
            &Caps::for_charset(Charset::Atascii),
            &[],
        );
        assert!(atari.contains(&"─".repeat(39)));
        assert_eq!(atari.lines().nth(2), Some(""));
    }

    #[test]
    fn odd_widths_fit() {
        for width in [20u16, 32, 38, 40, 64, 80, 132] {
            for charset in [Charset::Ansi, Charset::Atascii, Charset::Ascii] {
                let caps = Caps {
                    width,
                    ..Caps::for_charset(charset)
                };
                let screen = Screen::new()
                    .title("A rather long title for a narrow screen")
                    .paragraph(LOREM)
                    .menu(&[('A', "Alpha"), ('B', "Bravo bravo bravo bravo bravo")])
                    .rule()
                    .prompt("Choice: ");
                // AtasciiScreen is always 40 columns wide; narrower widths are still checked
                // by the row-width assertions.
                check_caps(|c| screen.render(c), &caps, &["Alpha"]);
            }
        }
    }

    #[test]
    fn rows_match_what_is_drawn() {
        let table = Table::new()
            .column("A", Align::Left, 0)
            .row(["1"])
            .row(["2"]);
        let screen = Screen::new()
            .title("T")
            .paragraph(LOREM)
            .menu(&[('A', "a"), ('B', "b"), ('C', "c")])
            .table(table)
            .rule()
            .blank()
            .line("x")
            .prompt("> ");
        for charset in [Charset::Ansi, Charset::Atascii, Charset::Ascii] {
            let caps = Caps::for_charset(charset);
            let bytes = screen.render(&caps);
            let line_ends = match charset {
                Charset::Atascii => bytes.iter().filter(|&&b| b == 0x9B).count(),
                _ => bytes.windows(2).filter(|w| w == b"\r\n").count(),
            };
            assert_eq!(screen.rows(&caps), line_ends + 1, "{charset}");
        }
    }

    #[test]
    fn a_table_keeps_at_least_one_column() {
        let table = Table::new()
            .column("Optional", Align::Left, 3)
            .column("Also optional", Align::Right, 1)
            .row(["x".repeat(100), "y".repeat(100)]);
        let screen = Screen::new().table(table);
        check(|c| screen.render(c), &["Also optional", "yyyy"]);
    }

    proptest! {
        #[test]
        fn random_paragraphs_fit(text in "[ -~é─\n]{0,400}", width in 20u16..140) {
            for charset in [Charset::Ansi, Charset::Atascii, Charset::Ascii] {
                let caps = Caps { width, ..Caps::for_charset(charset) };
                let bytes = Screen::continued().paragraph(&text).render(&caps);
                crate::terminal::testing::visible(&bytes, &caps);
            }
        }
    }
}
