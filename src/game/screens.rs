//! The game's screens, each described once as a [`Screen`] built from plain data and laid out
//! for the caller's width: 40 columns (ATASCII), 80 (ANSI) or anything between, in any
//! charset. Builders are pure: the app fetches the data, these decide what is shown.
//!
//! The market board is laid out with fixed columns ([`BoardLayout`]) rather than a generic
//! table so that [`super::live`] knows where every cell is and can rewrite only the cells
//! that change.

use crate::exchange::{BookTop, Instrument, Intent, Order, OrderAck, Portfolio, Trade};
use crate::store::exchange::board::BoardRow;
use crate::terminal::out::Style;
use crate::terminal::screen::{line_width, Align, Screen, Table};
use crate::terminal::{Caps, Charset};

use super::format;

/// Screens narrower than this use compact figures and fewer columns.
pub const WIDE: usize = 59;

/// Whether `caps` is a narrow (40-column class) screen.
pub fn narrow(caps: &Caps) -> bool {
    line_width(caps) < WIDE
}

/// What the status line shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub cash: i64,
    pub net_worth: i64,
    /// Whether the market is open for trading.
    pub open: bool,
    /// Minutes left in this call.
    pub minutes_left: u32,
    /// The market's session word ("OPEN", "PRE-MARKET", "AFTER HOURS", "CLOSED", "HALTED")
    /// and world clock ("CLOSED - opens Mon 04:00 ET") when the season runs on the market
    /// simulation's calendar.
    pub session: Option<(String, String)>,
    /// Unread messages in the player's inbox.
    pub unread: i64,
    /// Real time left in the season (ms), when it has an end date; zero or less once over.
    pub season_left_ms: Option<i64>,
}

/// How long a season has left, in the fewest characters: `29d`, `5h`, `40m`.
pub fn season_left(ms: i64) -> String {
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;
    match ms {
        ms if ms >= 2 * DAY => format!("{}d", ms / DAY),
        ms if ms >= 2 * HOUR => format!("{}h", ms / HOUR),
        ms => format!("{}m", (ms.max(0) + MIN - 1) / MIN),
    }
}

impl Status {
    /// The status line's text for a screen of `caps`.
    pub fn text(&self, caps: &Caps) -> String {
        let width = line_width(caps);
        let n = narrow(caps);
        let state = match (&self.session, self.open) {
            (_, false) => "CLOSED",
            (Some((word, _)), true) => word.as_str(),
            (None, true) => "OPEN",
        };
        let mut s = if n {
            // The first that fits: a cut line would show a wrong sum ("$10,00").
            let (cash, worth) = (self.cash, self.net_worth);
            [
                format!(
                    "{state} Cash {} Worth {}",
                    format::money(cash, true),
                    format::money(worth, true)
                ),
                format!(
                    "{state} Cash {} Worth {}",
                    format::dollars(cash),
                    format::dollars(worth)
                ),
                format!("{state} Worth {}", format::dollars(worth)),
            ]
            .into_iter()
            .find(|line| line.chars().count() <= width)
            .unwrap_or_else(|| format!("{state} {}", format::dollars(worth)))
        } else {
            let market = match (&self.session, self.open) {
                (Some((_, clock)), true) => clock.clone(),
                _ => format!("Market {state}"),
            };
            // Whole dollars from $10,000 up, so the season's end and the mail fit too.
            format!(
                "{market}  Cash {}  Worth {}",
                format::money(self.cash, true),
                format::money(self.net_worth, true)
            )
        };
        let mail = match (self.unread, n) {
            (0, _) => String::new(),
            (u, true) => format!(" Mail {u}"),
            (u, false) => format!("  Mail {u}"),
        };
        if s.chars().count() + mail.chars().count() <= width {
            s.push_str(&mail);
        }
        let end = match (self.season_left_ms, n) {
            (None, _) => String::new(),
            (Some(ms), _) if ms <= 0 => " Season over".to_string(),
            (Some(ms), true) => format!(" End {}", season_left(ms)),
            (Some(ms), false) => format!("  Ends {}", season_left(ms)),
        };
        if s.chars().count() + end.chars().count() <= width {
            s.push_str(&end);
        }
        let time = if n {
            format!(" {}m", self.minutes_left)
        } else {
            format!("  Time left {} min", self.minutes_left)
        };
        if s.chars().count() + time.chars().count() <= width {
            s.push_str(&time);
        }
        s
    }
}

/// Starts a screen with the status line and a title.
fn page(status: &Status, caps: &Caps, title: &str) -> Screen {
    Screen::new()
        .line_styled(&status.text(caps), Style::Emphasis)
        .title(title)
}

/// One column of the market board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Symbol,
    Last,
    Change,
    Bid,
    Ask,
    Volume,
}

/// The board's columns for one width: each field with its start column and width. The
/// company name is left to the quote screen, to keep the board small on slow lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardLayout {
    pub cols: Vec<(Field, usize, usize)>,
}

impl BoardLayout {
    /// The columns for a screen of `caps`.
    pub fn for_caps(caps: &Caps) -> BoardLayout {
        let width = line_width(caps);
        let (gap, spec): (usize, Vec<(Field, usize)>) = if width >= WIDE {
            (
                2,
                vec![
                    (Field::Symbol, 5),
                    (Field::Last, 9),
                    (Field::Change, 8),
                    (Field::Bid, 9),
                    (Field::Ask, 9),
                    (Field::Volume, 8),
                ],
            )
        } else {
            (
                1,
                vec![
                    (Field::Symbol, 4),
                    (Field::Last, 7),
                    (Field::Change, 6),
                    (Field::Bid, 6),
                    (Field::Ask, 6),
                    (Field::Volume, 5),
                ],
            )
        };
        let mut cols = Vec::new();
        let mut x = 0;
        for (field, w) in spec {
            if x + w > width {
                break;
            }
            cols.push((field, x, w));
            x += w + gap;
        }
        BoardLayout { cols }
    }

    /// The heading row.
    pub fn header(&self) -> String {
        let cells: Vec<(String, Style)> = self
            .cols
            .iter()
            .map(|&(f, _, w)| {
                let name = match f {
                    Field::Symbol => "Sym",
                    Field::Last => "Last",
                    Field::Change => "Chg",
                    Field::Bid => "Bid",
                    Field::Ask => "Ask",
                    Field::Volume => "Vol",
                };
                (pad(name, w, align(f)), Style::Heading)
            })
            .collect();
        self.join(&cells).trim_end().to_string()
    }

    /// Joins padded cells at their start columns.
    fn join(&self, cells: &[(String, Style)]) -> String {
        let mut s = String::new();
        for (&(_, x, _), (text, _)) in self.cols.iter().zip(cells) {
            while s.chars().count() < x {
                s.push(' ');
            }
            s.push_str(text);
        }
        s
    }

    /// The padded, styled cells of one instrument's row, one per column.
    pub fn cells(&self, row: &BoardRow) -> Vec<(String, Style)> {
        let chg = row_change(row);
        self.cols
            .iter()
            .map(|&(f, _, w)| {
                let (text, style) = match f {
                    Field::Symbol => (row.symbol.clone(), Style::Normal),
                    Field::Last => (format::price_fit(row.last, w), Style::Normal),
                    Field::Change => (
                        format::change(chg),
                        match chg.signum() {
                            1 => Style::Success,
                            -1 => Style::Error,
                            _ => Style::Normal,
                        },
                    ),
                    Field::Bid => (
                        row.bid.map_or("-".into(), |p| format::price_fit(p, w)),
                        Style::Normal,
                    ),
                    Field::Ask => (
                        row.ask.map_or("-".into(), |p| format::price_fit(p, w)),
                        Style::Normal,
                    ),
                    Field::Volume => (format::volume(row.volume, w), Style::Normal),
                };
                (pad(&text, w, align(f)), style)
            })
            .collect()
    }

    /// The styled spans of one row with the gaps between cells.
    pub fn spans(&self, row: &BoardRow) -> Vec<(String, Style)> {
        let mut spans = Vec::new();
        let mut x = 0;
        for (&(_, start, w), cell) in self.cols.iter().zip(self.cells(row)) {
            if start > x {
                spans.push((" ".repeat(start - x), Style::Normal));
            }
            spans.push(cell);
            x = start + w;
        }
        spans
    }
}

fn align(f: Field) -> Align {
    match f {
        Field::Symbol => Align::Left,
        _ => Align::Right,
    }
}

/// `text` cut or padded to exactly `w` characters.
pub fn pad(text: &str, w: usize, align: Align) -> String {
    let cut: String = text.chars().take(w).collect();
    let fill = " ".repeat(w - cut.chars().count());
    match align {
        Align::Left => format!("{cut}{fill}"),
        Align::Right => format!("{fill}{cut}"),
    }
}

/// The change shown for a row: last price against the previous close, or against the day's
/// first trade when there was no trade before today.
pub fn row_change(row: &BoardRow) -> i64 {
    match (row.prev_close, row.day_open) {
        (Some(prev), _) => row.last - prev,
        (None, Some(open)) => row.last - open,
        (None, None) => 0,
    }
}

/// Where the market board put things, for live updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardGeometry {
    /// The screen row (from 0) of the first instrument.
    pub first_row: usize,
    /// The row of the latest headline.
    pub news_row: usize,
    /// The row and column where the cursor waits after the prompt.
    pub prompt_row: usize,
    pub prompt_col: usize,
    pub layout: BoardLayout,
}

/// The market board's prompt.
pub const BOARD_PROMPT: &str = "Command: ";

/// The command summary under the board.
pub const BOARD_KEYS: &str = "B Buy  S Sell  H sHort  C Cover  Q Quote  O Orders  \
     P Portfolio  T Tape  N News  L Leaders  I Inbox  ? Help  G Goodbye";

/// How a headline reads on the board's news row and in a flash above a prompt.
pub fn news_line(headline: &str) -> String {
    format!("NEWS: {headline}")
}

/// The board's news row for `caps`: the latest news line (see [`news_line`]) cut to one row.
pub fn news_row(line: Option<&str>, caps: &Caps) -> String {
    let text = match line {
        Some(line) => line.to_string(),
        None => news_line("The wire is quiet. Too quiet."),
    };
    let width = crate::terminal::screen::line_width(caps);
    if text.chars().count() <= width {
        return text;
    }
    let cut: String = text.chars().take(width.saturating_sub(3)).collect();
    format!("{}...", cut.trim_end())
}

/// The market board: status, every instrument, the command keys, the latest news line and an
/// optional notice.
pub fn board(
    status: &Status,
    game_name: &str,
    rows: &[BoardRow],
    news: Option<&str>,
    notice: Option<(&str, Style)>,
    caps: &Caps,
) -> (Screen, BoardGeometry) {
    let layout = BoardLayout::for_caps(caps);
    // The board is the screen sent most often, so it spends no bytes on padding: a plain
    // title line and no rule (a full board stays under 1,000 bytes in ANSI).
    // On a narrow screen the season's name goes before the exchange's, not its end.
    let title = format!("NuggetNet Exchange: {game_name}");
    let title = if title.chars().count() <= caps.line_width() {
        title
    } else {
        game_name.to_string()
    };
    let mut screen = Screen::new()
        .line_styled(&status.text(caps), Style::Emphasis)
        .line_styled(&title, Style::Title)
        .line_styled(&layout.header(), Style::Heading);
    let first_row = 3;
    if rows.is_empty() {
        screen = screen.line("Nothing is listed. The SEC must have noticed.");
    }
    for row in rows {
        let spans = layout.spans(row);
        let refs: Vec<(&str, Style)> = spans.iter().map(|(t, s)| (t.as_str(), *s)).collect();
        screen = screen.spans(&refs);
    }
    screen = screen.blank().paragraph_styled(BOARD_KEYS, Style::Dim);
    screen = screen.line_styled(&news_row(news, caps), Style::Emphasis);
    let news_row = screen.rows(caps).saturating_sub(1);
    if let Some((text, style)) = notice {
        screen = screen.paragraph_styled(text, style);
    }
    screen = screen.prompt(BOARD_PROMPT);
    let prompt_row = screen.rows(caps).saturating_sub(1);
    let geometry = BoardGeometry {
        first_row,
        news_row,
        prompt_row,
        prompt_col: BOARD_PROMPT.chars().count(),
        layout,
    };
    (screen, geometry)
}

/// Everything the quote screen shows.
#[derive(Debug, Clone)]
pub struct QuoteView<'a> {
    pub status: Status,
    pub instrument: &'a Instrument,
    pub row: &'a BoardRow,
    pub book: &'a BookTop,
    /// Recent trades, newest first.
    pub trades: &'a [Trade],
    /// The player's position (negative when short).
    pub position: i64,
}

/// The prompt under a quote.
pub fn quote_prompt(symbol: &str) -> String {
    format!("B/S/H/C trade {symbol}, other key: back")
}

/// One symbol in detail: figures, the book's top levels and a price chart.
pub fn quote(v: &QuoteView<'_>, caps: &Caps) -> Screen {
    let n = narrow(caps);
    let inst = v.instrument;
    let mut s = page(&v.status, caps, &format!("{}  {}", inst.symbol, inst.name))
        .paragraph_styled(&inst.profile, Style::Dim)
        .line(&format!(
            "Last {}  {}  Vol {}",
            format::price(v.row.last),
            format::change(row_change(v.row)),
            format::qty(v.row.volume)
        ))
        .line(&format!(
            "Bid {}  Ask {}  You: {}",
            v.row.bid.map_or("-".into(), format::price),
            v.row.ask.map_or("-".into(), format::price),
            match v.position {
                0 => "no position".to_string(),
                p if p > 0 => format!("long {}", format::qty(p)),
                p => format!("short {}", format::qty(-p)),
            }
        ));
    let depth = if n { 3 } else { 5 };
    if v.book.bids.is_empty() && v.book.asks.is_empty() {
        s = s.line_styled("The book is empty: nobody is quoting.", Style::Dim);
    } else {
        let mut t = Table::new()
            .column("Bid qty", Align::Right, 0)
            .column("Bid", Align::Right, 0)
            .column("Ask", Align::Right, 0)
            .column("Ask qty", Align::Right, 0);
        for i in 0..depth {
            let b = v.book.bids.get(i);
            let a = v.book.asks.get(i);
            if b.is_none() && a.is_none() {
                break;
            }
            t.push_row([
                b.map_or(String::new(), |l| format::qty(l.qty)),
                b.map_or(String::new(), |l| format::price(l.price)),
                a.map_or(String::new(), |l| format::price(l.price)),
                a.map_or(String::new(), |l| format::qty(l.qty)),
            ]);
        }
        s = s.table(t);
    }
    let height = if n || caps.height < 25 { 5 } else { 7 };
    for line in chart(v.trades, line_width(caps), height, caps.charset) {
        s = s.line(&line);
    }
    s.prompt(&quote_prompt(&inst.symbol))
}

/// A bar chart of recent trade prices (oldest on the left), `height` rows tall, with the
/// highest and lowest price as labels. Blocks are CP437/ATASCII graphics; ASCII shows `#`.
pub fn chart(trades: &[Trade], width: usize, height: usize, charset: Charset) -> Vec<String> {
    if trades.len() < 2 {
        return vec!["No chart yet: fewer than two trades. Be the first sucker.".to_string()];
    }
    let labels = trades
        .iter()
        .map(|t| format::price(t.price).len())
        .max()
        .unwrap_or(4);
    let cols = width.saturating_sub(labels + 1).max(1);
    let prices: Vec<i64> = trades.iter().take(cols).rev().map(|t| t.price).collect();
    let (lo, hi) = (
        prices.iter().copied().min().unwrap_or(0),
        prices.iter().copied().max().unwrap_or(0),
    );
    let steps = (height * 2) as i64;
    let level = |p: i64| -> i64 {
        if hi == lo {
            steps / 2
        } else {
            1 + (p - lo) * (steps - 1) / (hi - lo)
        }
    };
    let (full, half) = match charset {
        Charset::Ascii => ('#', '.'),
        Charset::Ansi | Charset::Atascii => ('█', '▄'),
    };
    let mut lines = vec![format!("Last {} trades", prices.len())];
    for r in 0..height {
        let k = (height - 1 - r) as i64;
        let label = if r == 0 {
            format::price(hi)
        } else if r + 1 == height {
            format::price(lo)
        } else {
            String::new()
        };
        let mut line = pad(&label, labels, Align::Right);
        line.push('│');
        for &p in &prices {
            let l = level(p);
            line.push(if l >= 2 * (k + 1) {
                full
            } else if l == 2 * k + 1 {
                half
            } else {
                ' '
            });
        }
        lines.push(line.trim_end().to_string());
    }
    lines
}

/// The verb, a gloss and the key of each order intent.
pub fn intent_words(intent: Intent) -> (&'static str, &'static str) {
    match intent {
        Intent::Buy => ("BUY", "Going long, like a true believer"),
        Intent::Sell => ("SELL", "Cashing out before the music stops"),
        Intent::Short => ("SHORT", "Selling what you borrowed. Bold."),
        Intent::Cover => ("COVER", "Buying back what you owe"),
    }
}

/// The top of the order-entry screen; the prompts follow below it.
pub fn order_form(status: &Status, intent: Intent, facts: &[String], caps: &Caps) -> Screen {
    let (verb, gloss) = intent_words(intent);
    let mut s = page(status, caps, &format!("{verb}: {gloss}"));
    for f in facts {
        s = s.line(f);
    }
    s.line_styled("Empty answer or ESC cancels.", Style::Dim)
        .blank()
}

/// A ticket waiting for confirmation, with the estimates shown to the player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub intent: Intent,
    pub symbol: String,
    pub qty: i64,
    /// `None` for a market order.
    pub limit: Option<i64>,
    /// The price the estimate uses (the limit, or the book / last price for market orders).
    pub est_price: i64,
    pub est_cost: i64,
    pub est_fee: i64,
    pub buying_power: i64,
    pub buying_power_after: i64,
}

/// The confirmation screen for a ticket.
pub fn confirm(status: &Status, t: &Ticket, caps: &Caps) -> Screen {
    let (verb, _) = intent_words(t.intent);
    let how = match t.limit {
        Some(p) => format!("limit {}", format::price(p)),
        None => "at market".to_string(),
    };
    let cost_word = match t.intent {
        Intent::Buy | Intent::Cover => "Cost (est.)",
        Intent::Sell | Intent::Short => "Proceeds (est.)",
    };
    let n = narrow(caps);
    let table = Table::new()
        .column("Ticket", Align::Left, 0)
        .column("Estimate", Align::Right, 0)
        .row([
            cost_word.to_string(),
            format!(
                "{} @ {}",
                format::money(t.est_cost, n),
                format::price(t.est_price)
            ),
        ])
        .row(["Fees (est.)".to_string(), format::money(t.est_fee, n)])
        .row([
            "Buying power now".to_string(),
            format::money(t.buying_power, n),
        ])
        .row([
            "Buying power after".to_string(),
            format::money(t.buying_power_after, n),
        ]);
    let mut s = page(status, caps, "Confirm your order")
        .line_styled(
            &format!("{verb} {} {} {how}", format::qty(t.qty), t.symbol),
            Style::Emphasis,
        )
        .table(table);
    if t.limit.is_none() {
        s = s.paragraph_styled(
            "Market orders take whatever the book offers, within today's collar.",
            Style::Dim,
        );
    }
    s
}

/// What happened to a placed order, in words.
pub fn ack_words(ack: &OrderAck, limit: Option<i64>) -> Vec<(String, Style)> {
    let mut lines = Vec::new();
    let filled_now: i64 = ack.fills.iter().map(|f| f.qty).sum();
    if filled_now > 0 {
        let value: i64 = ack
            .fills
            .iter()
            .map(|f| f.qty.saturating_mul(f.price))
            .sum();
        let avg = value / filled_now.max(1);
        lines.push((
            format!(
                "Filled {} shares, average {} ({} total).",
                format::qty(filled_now),
                format::price(avg),
                format::money(value, false)
            ),
            Style::Success,
        ));
    }
    match ack.status {
        crate::exchange::OrderStatus::Open => lines.push((
            format!(
                "Order #{} rests on the book: {} shares at {}.",
                ack.order_id,
                format::qty(ack.open_qty),
                limit.map_or("market".into(), format::price)
            ),
            Style::Emphasis,
        )),
        crate::exchange::OrderStatus::Filled => {
            lines.push(("Done. The tape will remember you.".to_string(), Style::Dim))
        }
        crate::exchange::OrderStatus::Cancelled => {
            let why = match ack.cancel_reason {
                Some(crate::exchange::CancelReason::Killed) => "it could not be filled completely",
                Some(crate::exchange::CancelReason::SelfTrade) => "it would have traded with you",
                _ => "nobody would trade at that price right now",
            };
            let rest = if filled_now > 0 {
                "The rest"
            } else {
                "The order"
            };
            lines.push((format!("{rest} was cancelled: {why}."), Style::Warning));
        }
    }
    lines
}

/// The result of placing an order (or the exchange's refusal).
pub fn order_result(status: &Status, lines: &[(String, Style)], caps: &Caps) -> Screen {
    let mut s = page(status, caps, "Order result");
    for (text, style) in lines {
        s = s.paragraph_styled(text, *style);
    }
    s.blank()
}

/// One open order with its symbol, as the orders screen lists it.
#[derive(Debug, Clone)]
pub struct OpenOrder {
    pub order: Order,
    pub symbol: String,
}

/// The prompt under the open orders.
pub const ORDERS_PROMPT: &str = "C Cancel one, other key: back";

/// The player's open orders, numbered for cancelling.
pub fn orders(
    status: &Status,
    list: &[OpenOrder],
    notice: Option<(&str, Style)>,
    caps: &Caps,
) -> Screen {
    let mut s = page(status, caps, "Your open orders");
    if list.is_empty() {
        s = s.paragraph("No open orders. The book does not know you exist.");
    } else {
        let mut t = Table::new()
            .column("#", Align::Right, 0)
            .column("Type", Align::Left, 0)
            .column("Sym", Align::Left, 0)
            .column("Open", Align::Right, 0)
            .column("Price", Align::Right, 0)
            .column("Filled", Align::Right, 2)
            .column("Order", Align::Right, 1);
        for (i, o) in list.iter().enumerate() {
            t.push_row([
                (i + 1).to_string(),
                intent_words(o.order.intent).0.to_string(),
                o.symbol.clone(),
                format::qty(o.order.qty - o.order.filled),
                o.order.price.map_or("mkt".into(), format::price),
                format::qty(o.order.filled),
                format!("#{}", o.order.id),
            ]);
        }
        s = s.table(t);
    }
    if let Some((text, style)) = notice {
        s = s.paragraph_styled(text, style);
    }
    s.blank()
}

/// Positions, cash, margin and worth.
pub fn portfolio(status: &Status, p: &Portfolio, margin_call: bool, caps: &Caps) -> Screen {
    let n = narrow(caps);
    let mut s = page(status, caps, "Your portfolio");
    if p.positions.iter().all(|x| x.qty == 0) {
        s = s.paragraph("No positions. Cash is a position too, says your accountant.");
    } else {
        let mut t = Table::new()
            .column("Sym", Align::Left, 0)
            .column("Shares", Align::Right, 0)
            .column("Mark", Align::Right, 0)
            .column("Value", Align::Right, 0);
        for pos in p.positions.iter().filter(|x| x.qty != 0) {
            t.push_row([
                pos.symbol.clone(),
                format::qty(pos.qty),
                format::price(pos.mark),
                format::money(pos.value, n),
            ]);
        }
        s = s.table(t);
    }
    let t = Table::new()
        .column("Account", Align::Left, 0)
        .column("Amount", Align::Right, 0)
        .row(["Cash".to_string(), format::money(p.cash, n)])
        .row(["Net worth".to_string(), format::money(p.net_worth, n)])
        .row([
            "Margin required".to_string(),
            format::money(p.maintenance, n),
        ])
        .row(["Buying power".to_string(), format::money(p.buying_power, n)]);
    s = s.blank().table(t);
    if margin_call {
        s = s.paragraph_styled(
            "MARGIN CALL: add equity or cut positions, or the house will do it for you.",
            Style::Error,
        );
    }
    s.blank()
}

/// A trade on the tape with its symbol.
#[derive(Debug, Clone)]
pub struct TapeTrade {
    pub trade: Trade,
    pub symbol: String,
}

/// The latest trades of the whole exchange, newest first.
pub fn tape(status: &Status, trades: &[TapeTrade], caps: &Caps) -> Screen {
    let mut s = page(status, caps, "The tape");
    if trades.is_empty() {
        return s
            .paragraph("The tape is silent. Somebody has to go first.")
            .blank();
    }
    let mut t = Table::new()
        .column("Time", Align::Left, 1)
        .column("Sym", Align::Left, 0)
        .column("Shares", Align::Right, 0)
        .column("Price", Align::Right, 0)
        .column("", Align::Left, 0);
    for tt in trades {
        let secs = tt.trade.created_at.div_euclid(1000).rem_euclid(86_400);
        t.push_row([
            format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
            tt.symbol.clone(),
            format::qty(tt.trade.qty),
            format::price(tt.trade.price),
            match tt.trade.taker_side {
                crate::exchange::Side::Buy => "↑ buyer".to_string(),
                crate::exchange::Side::Sell => "↓ seller".to_string(),
            },
        ]);
    }
    s = s.table(t);
    s.line_styled(
        "Times are UTC; the arrow shows who took the price.",
        Style::Dim,
    )
}

/// One headline on the news wire.
#[derive(Debug, Clone)]
pub struct WireItem {
    /// Market time, e.g. "Tue 10:32 ET".
    pub when: String,
    pub headline: String,
}

/// The news wire: the latest headlines, newest first, as many as fit on the screen.
pub fn news_wire(status: &Status, items: &[WireItem], caps: &Caps) -> Screen {
    let mut s = page(status, caps, "The news wire");
    if items.is_empty() {
        return s
            .paragraph("Nothing on the wire yet. The reporters are at lunch.")
            .blank();
    }
    // Leave the last rows for the "Press any key" prompt.
    let room = usize::from(caps.height).saturating_sub(2);
    for item in items {
        let next = s
            .clone()
            .line_styled(&item.when, Style::Dim)
            .paragraph(&item.headline);
        if next.rows(caps) > room {
            break;
        }
        s = next;
    }
    s
}

/// One line of the leaderboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub rank: usize,
    pub handle: String,
    pub system: String,
    pub net_worth: i64,
    pub is_you: bool,
}

/// The players by net worth, with the caller's own rank below.
pub fn leaders(
    status: &Status,
    top: &[Leader],
    you: Option<&Leader>,
    players: usize,
    caps: &Caps,
) -> Screen {
    let n = narrow(caps);
    let mut s = page(status, caps, "Leaderboard: net worth");
    if top.is_empty() {
        return s.paragraph("Nobody has an account yet.").blank();
    }
    let mut t = Table::new()
        .column("#", Align::Right, 0)
        .column("Player", Align::Left, 0)
        .column("BBS", Align::Left, 1)
        .column("Net worth", Align::Right, 0);
    for l in top {
        let name = if l.is_you {
            format!("{} (you)", l.handle)
        } else {
            l.handle.clone()
        };
        t.push_row([
            l.rank.to_string(),
            name,
            l.system.clone(),
            format::money(l.net_worth, n),
        ]);
    }
    s = s.table(t);
    if let Some(y) = you {
        s = s.line_styled(
            &format!(
                "You are #{} of {players} with {}.",
                y.rank,
                format::money(y.net_worth, n)
            ),
            Style::Emphasis,
        );
    }
    // Holdings are valued at the season's final mark, never above recent trading (longs) or
    // below it (shorts), so one pumped trade lifts nobody.
    s.line_styled("Shares marked cautiously: no pump pays.", Style::Dim)
}

/// One page of help.
pub fn help(status: &Status, text: &str, page_no: usize, pages: usize, caps: &Caps) -> Screen {
    page(
        status,
        caps,
        &format!("The NuggetNet Survival Guide {page_no}/{pages}"),
    )
    .paragraph(text)
    .blank()
}

/// What the welcome adds about the season's end and waiting mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginNews {
    /// Time until the season ends (ms), when it has a fixed end.
    pub ends_in: Option<i64>,
    /// Unread messages.
    pub unread: i64,
}

/// The welcome with the season's end and the unread count added.
pub fn welcome_news(s: Screen, news: &LoginNews) -> Screen {
    let mut s = s;
    match news.ends_in {
        Some(ms) if ms > 0 => {
            s = s.paragraph_styled(
                &format!(
                    "This season ends in {}. Then trading freezes and the final board is taken.",
                    crate::lifecycle::schedule::human_span(ms)
                ),
                Style::Warning,
            );
        }
        Some(_) => {
            s = s.paragraph_styled(
                "This season is over; the final board stands.",
                Style::Warning,
            );
        }
        None => {}
    }
    if news.unread > 0 {
        let noun = if news.unread == 1 {
            "message"
        } else {
            "messages"
        };
        s = s.paragraph_styled(
            &format!("You have {} new {noun}. Press I on the board.", news.unread),
            Style::Emphasis,
        );
    }
    s.blank()
}

/// The first screen of a call: the welcome, and a key to go on.
pub fn welcome(handle: &str, game_name: &str, new_player: bool, starting_cash: i64) -> Screen {
    let mut s = Screen::new()
        .title("NuggetNet")
        .paragraph_styled(
            "The 1980s trading floor that never closes (unless it does).",
            Style::Dim,
        )
        .blank()
        .paragraph(&format!("Welcome, {handle}. Season: {game_name}."));
    if new_player {
        s = s.paragraph(&format!(
            "First time? The house has wired {} into your account. Try not to lose it \
             all before lunch.",
            format::money(starting_cash, false)
        ));
    }
    s.blank()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Level, OrderStatus, Position, Side, TimeInForce};
    use crate::terminal::testing::check;

    fn status() -> Status {
        Status {
            cash: 987_654,
            net_worth: 1_234_567,
            open: true,
            minutes_left: 42,
            session: None,
            unread: 0,
            season_left_ms: None,
        }
    }

    fn rows() -> Vec<BoardRow> {
        vec![
            BoardRow {
                instrument_id: 1,
                symbol: "JUNK".into(),
                name: "Drexel Burnout Junk Bond Trust".into(),
                last: 1250,
                prev_close: Some(1200),
                day_open: Some(1210),
                bid: Some(1245),
                ask: Some(1255),
                volume: 12_345,
            },
            BoardRow {
                instrument_id: 2,
                symbol: "COLA".into(),
                name: "New Coke Classic Holdings".into(),
                last: 4_500,
                prev_close: None,
                day_open: Some(4_600),
                bid: None,
                ask: None,
                volume: 0,
            },
        ]
    }

    #[test]
    fn status_line_fits_and_says_the_money() {
        let s = Screen::new().line(&status().text(&Caps::for_charset(Charset::Atascii)));
        check(|c| s.render(c), &["OPEN", "Cash $9,876.54"]);
        let wide = status().text(&Caps::for_charset(Charset::Ansi));
        assert!(
            wide.contains("Worth $12,345") && wide.contains("42 min"),
            "{wide}"
        );
    }

    #[test]
    fn status_line_shows_the_seasons_end_and_the_mail() {
        let mut st = status();
        st.session = Some(("CLOSED".into(), "CLOSED - opens Mon 04:00 ET".into()));
        st.season_left_ms = Some(29 * 86_400_000 + 5);
        st.unread = 3;
        let wide = st.text(&Caps::for_charset(Charset::Ansi));
        assert!(
            wide.contains("Ends 29d") && wide.contains("Mail 3"),
            "{wide}"
        );
        assert!(wide.chars().count() <= 79, "{wide}");
        st.unread = 0;
        st.cash = 1_500_000;
        st.session = Some(("OPEN".into(), "OPEN - closes 16:00 ET".into()));
        let narrow = st.text(&Caps::for_charset(Charset::Atascii));
        assert!(narrow.contains("End 29d"), "{narrow}");
        assert_eq!(season_left(5 * 3_600_000 + 1), "5h");
        assert_eq!(season_left(90_000), "2m");
        st.season_left_ms = Some(-5);
        assert!(st
            .text(&Caps::for_charset(Charset::Ansi))
            .contains("Season over"));
    }

    #[test]
    fn status_line_shows_the_market_session_and_clock() {
        let mut st = status();
        st.session = Some(("AFTER HOURS".into(), "AFTER HOURS - closes 20:00 ET".into()));
        let narrow = st.text(&Caps::for_charset(Charset::Atascii));
        assert!(narrow.starts_with("AFTER HOURS Cash"), "{narrow}");
        let wide = st.text(&Caps::for_charset(Charset::Ansi));
        assert!(
            wide.starts_with("AFTER HOURS - closes 20:00 ET  Cash"),
            "{wide}"
        );
        st.open = false;
        assert!(st
            .text(&Caps::for_charset(Charset::Ansi))
            .contains("Market CLOSED"));
    }

    #[test]
    fn a_narrow_status_line_drops_cents_before_it_would_cut_a_sum() {
        let atari = Caps::for_charset(Charset::Atascii);
        let mut st = status();
        st.session = Some(("AFTER HOURS".into(), "AFTER HOURS - closes 20:00 ET".into()));
        st.season_left_ms = None;
        st.cash = 995_955;
        st.net_worth = 1_000_000;
        let line = st.text(&atari);
        assert_eq!(line, "AFTER HOURS Cash $9,959 Worth $10,000");
        st.cash = 99_999_999;
        st.net_worth = 99_999_999;
        let line = st.text(&atari);
        assert!(line.chars().count() <= line_width(&atari), "{line}");
        assert!(line.starts_with("AFTER HOURS Worth $999,999"), "{line}");
        // Short enough: cents stay.
        st.session = Some(("OPEN".into(), "OPEN - closes 16:00 ET".into()));
        st.cash = 995_955;
        st.net_worth = 1_000_000;
        assert!(st
            .text(&atari)
            .starts_with("OPEN Cash $9,959.55 Worth $10,000"));
    }

    #[test]
    fn board_fits_40_and_80_columns() {
        let r = rows();
        let render = |c: &Caps| board(&status(), "Season 1", &r, None, None, c).0.render(c);
        check(
            render,
            &["JUNK", "12.50", "+0.50", "12.45", "12.55", "COLA", "-1.00"],
        );
        let ansi = Caps::for_charset(Charset::Ansi);
        let shown = crate::terminal::testing::visible(&render(&ansi), &ansi);
        assert!(!shown.contains("Drexel Burnout"), "{shown}");
        assert!(shown.contains("12345"), "{shown}");
        let atari = Caps::for_charset(Charset::Atascii);
        let shown = crate::terminal::testing::visible(&render(&atari), &atari);
        assert!(shown.contains("12345"), "{shown}");
        let (_, g) = board(&status(), "Season 1", &r, None, None, &atari);
        assert_eq!(g.first_row, 3);
        assert_eq!(
            shown
                .lines()
                .nth(g.first_row)
                .map(|l| l.starts_with("JUNK")),
            Some(true)
        );
        assert_eq!(
            shown.lines().nth(g.prompt_row).map(|l| l.trim()),
            Some("Command:")
        );
    }

    #[test]
    fn a_long_season_name_keeps_its_end_on_a_narrow_board() {
        let title = |c: &Caps| {
            let shown = crate::terminal::testing::visible(
                &board(&status(), "Season 1: Greed Is Good", &rows(), None, None, c)
                    .0
                    .render(c),
                c,
            );
            shown
                .lines()
                .nth(1)
                .unwrap_or_default()
                .trim_end()
                .to_string()
        };
        assert_eq!(
            title(&Caps::for_charset(Charset::Ansi)),
            "NuggetNet Exchange: Season 1: Greed Is Good"
        );
        assert_eq!(
            title(&Caps::for_charset(Charset::Atascii)),
            "Season 1: Greed Is Good"
        );
    }

    fn trade(id: i64, price: i64) -> Trade {
        Trade {
            id,
            instrument_id: 1,
            price,
            qty: 10,
            buy_order_id: 1,
            sell_order_id: 2,
            taker_side: Side::Buy,
            created_at: 3_600_000,
        }
    }

    #[test]
    fn quote_shows_book_and_chart() {
        let r = rows();
        let inst = Instrument {
            id: 1,
            game_id: 1,
            symbol: "JUNK".into(),
            name: "Drexel Burnout Junk Bond Trust".into(),
            profile: "High yield, higher hopes.".into(),
            tick: 5,
            shares_issued: 1_000_000,
            last_price: 1250,
        };
        let book = BookTop {
            bids: vec![Level {
                price: 1245,
                qty: 300,
                orders: 2,
            }],
            asks: vec![Level {
                price: 1255,
                qty: 1_500,
                orders: 1,
            }],
        };
        let trades: Vec<Trade> = (0..60)
            .map(|i| trade(60 - i, 1200 + (i % 7) * 10))
            .collect();
        let v = QuoteView {
            status: status(),
            instrument: &inst,
            row: &r[0],
            book: &book,
            trades: &trades,
            position: -200,
        };
        check(
            |c| quote(&v, c).render(c),
            &[
                "JUNK",
                "Bid qty",
                "12.45",
                "1,500",
                "short 200",
                " trades",
                "12.60",
            ],
        );
        for charset in [Charset::Atascii, Charset::Ansi] {
            let caps = Caps::for_charset(charset);
            assert!(quote(&v, &caps).rows(&caps) <= 24, "{charset}");
            let (b, _) = board(&status(), "Season 1", &r, None, None, &caps);
            assert!(b.rows(&caps) <= 24, "{charset}");
        }
        let chart_ascii = chart(&trades, 39, 5, Charset::Ascii);
        assert!(chart_ascii.iter().any(|l| l.contains('#')));
        assert!(chart_ascii.iter().all(|l| l.chars().count() <= 39));
        assert_eq!(chart(&trades[..1], 39, 5, Charset::Ansi).len(), 1);
    }

    #[test]
    fn confirmation_and_results_say_the_numbers() {
        let t = Ticket {
            intent: Intent::Buy,
            symbol: "JUNK".into(),
            qty: 100,
            limit: Some(1250),
            est_price: 1250,
            est_cost: 125_000,
            est_fee: 125,
            buying_power: 2_000_000,
            buying_power_after: 1_874_750,
        };
        check(
            |c| confirm(&status(), &t, c).render(c),
            &[
                "BUY 100 JUNK limit 12.50",
                "$1,250.00",
                "$1.25",
                "Buying power after",
            ],
        );
        let ack = OrderAck {
            order_id: 7,
            status: OrderStatus::Open,
            filled: 40,
            open_qty: 60,
            fills: vec![crate::exchange::Fill {
                trade_id: 1,
                maker_order_id: 3,
                price: 1250,
                qty: 40,
            }],
            cancel_reason: None,
        };
        let words = ack_words(&ack, Some(1250));
        check(
            |c| order_result(&status(), &words, c).render(c),
            &["Filled 40 shares", "Order #7 rests", "60 shares"],
        );
    }

    #[test]
    fn lists_fit_both_widths() {
        let o = OpenOrder {
            order: Order {
                id: 42,
                instrument_id: 1,
                account_id: 1,
                intent: Intent::Short,
                side: Side::Sell,
                price: Some(1300),
                tif: TimeInForce::Gtc,
                qty: 500,
                filled: 100,
                status: OrderStatus::Open,
                priority: 1,
                created_at: 0,
            },
            symbol: "JUNK".into(),
        };
        check(
            |c| orders(&status(), std::slice::from_ref(&o), None, c).render(c),
            &["SHORT", "JUNK", "400", "13.00"],
        );
        let p = Portfolio {
            account_id: 1,
            cash: 500_000,
            positions: vec![Position {
                instrument_id: 1,
                symbol: "JUNK".into(),
                qty: -200,
                mark: 1250,
                value: -250_000,
            }],
            net_worth: 250_000,
            maintenance: 75_000,
            buying_power: 100_000,
        };
        check(
            |c| portfolio(&status(), &p, true, c).render(c),
            &["JUNK", "-200", "Margin required", "$750.00", "MARGIN CALL"],
        );
        let tt = vec![TapeTrade {
            trade: trade(1, 1250),
            symbol: "JUNK".into(),
        }];
        check(
            |c| tape(&status(), &tt, c).render(c),
            &["01:00:00", "JUNK", "12.50"],
        );
        let l = Leader {
            rank: 1,
            handle: "Gekko".into(),
            system: "Synchronet".into(),
            net_worth: 5_000_000,
            is_you: true,
        };
        check(
            |c| leaders(&status(), std::slice::from_ref(&l), Some(&l), 3, c).render(c),
            &["Gekko (you)", "You are #1 of 3"],
        );
        check(
            |c| help(&status(), "Buy low.", 1, 2, c).render(c),
            &["Survival Guide 1/2", "Buy low."],
        );
        check(
            |c| welcome("Gekko", "Season 1", true, 1_000_000).render(c),
            &["Welcome, Gekko", "$10,000.00"],
        );
    }
}
