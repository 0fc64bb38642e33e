//! The game's flow: the market board as home, and the screens its keys lead to.
//!
//! [`App`] fetches what each screen needs through the [`Exchange`] (and the read-only board
//! queries beside it), hands the data to [`super::screens`], and drives prompts through
//! [`GameTerm`]. Orders are built up prompt by prompt and sent with one `place` call only
//! after the player confirms, so a hang-up at any prompt leaves nothing behind; the `place`
//! call itself is never cancelled halfway (it is one exchange transaction either way).

use std::time::Duration;

use tokio::time::Instant;

use crate::exchange::{
    BookTop, Exchange, ExchangeError, Game, Instrument, Intent, OrderRequest, OrderType,
    TimeInForce,
};
use crate::store::exchange::board::{self as boardq, BoardRow};
use crate::store::players::{self, Player};
use crate::terminal::keys::Key;
use crate::terminal::line::{Filter, LineOptions};
use crate::terminal::out::Style;
use crate::terminal::screen::Screen;

use super::format;
use super::live::LiveBoard;
use super::mail;
use super::screens::{self, Status};
use super::term::{GameTerm, Stop, Wake};
use crate::inbox;
use crate::market::Market;

/// The help text; pages are separated by lines of `---`.
const HELP: &str = include_str!("text/help.txt");

/// How long the board waits after an exchange event before it refreshes, to gather a burst.
const REFRESH_DELAY: Duration = Duration::from_millis(250);
/// The shortest time between two live refreshes of the board.
const REFRESH_EVERY: Duration = Duration::from_millis(500);
/// How often the door looks for new headlines (a flash must reach every node within 250 ms).
const NEWS_POLL: Duration = Duration::from_millis(100);

/// Why a screen could not go on.
#[derive(Debug)]
enum Fail {
    /// The call is over.
    Stop(Stop),
    /// The exchange failed; the player sees the message on the board.
    Exchange(ExchangeError),
}

impl From<Stop> for Fail {
    fn from(s: Stop) -> Self {
        Fail::Stop(s)
    }
}

impl From<ExchangeError> for Fail {
    fn from(e: ExchangeError) -> Self {
        Fail::Exchange(e)
    }
}

impl From<crate::store::StoreError> for Fail {
    fn from(e: crate::store::StoreError) -> Self {
        Fail::Exchange(ExchangeError::Store(e))
    }
}

/// A line shown on the board after a screen returns.
type Notice = Option<(String, Style)>;

/// What the board's wait ended with.
enum BoardOut {
    Key(Key),
    /// The screen must be drawn again (charset switched, a warning scrolled it, new listing).
    Redraw,
}

/// One player's game.
pub struct App {
    ex: Exchange,
    game: Game,
    player: Player,
    term: GameTerm,
    instruments: Vec<Instrument>,
    market: Option<Market>,
    /// The latest news line (`screens::news_line`), shown on the board's news row.
    headline: Option<String>,
    /// When the season ends (a season keeps its first dates, so it is read once).
    season_ends_at: Option<i64>,
}

impl App {
    /// A game for `player` in `game` on `term`.
    pub fn new(ex: Exchange, game: Game, player: Player, term: GameTerm) -> App {
        let market = match Market::new(ex.clone(), Default::default()) {
            Ok(market) => Some(market),
            Err(e) => {
                tracing::warn!(error = %e, "market unavailable");
                None
            }
        };
        App {
            ex,
            game,
            player,
            term,
            instruments: Vec::new(),
            market,
            headline: None,
            season_ends_at: None,
        }
    }

    /// The terminal, to say goodbye on and give back.
    pub fn into_term(self) -> GameTerm {
        self.term
    }

    /// Runs the game until the player leaves or the call ends, and says why.
    pub async fn run(&mut self) -> Stop {
        match self.main().await {
            Ok(()) => Stop::Quit,
            Err(stop) => stop,
        }
    }

    async fn main(&mut self) -> Result<(), Stop> {
        self.instruments = self.ex.instruments(self.game.id).await.unwrap_or_default();
        self.follow_news().await;
        self.season_ends_at = match crate::store::seasons::get(self.ex.db(), self.game.id).await {
            Ok(season) => season.map(|s| s.ends_at),
            Err(e) => {
                tracing::warn!(error = %e, "season dates unavailable");
                None
            }
        };
        let mut notice: Notice = None;
        loop {
            let key = match self.board(notice.take()).await {
                Ok(BoardOut::Key(k)) => k,
                Ok(BoardOut::Redraw) => continue,
                Err(Fail::Stop(s)) => return Err(s),
                Err(Fail::Exchange(e)) => {
                    tracing::warn!(error = %e, "board failed");
                    notice = Some((trouble(&e), Style::Error));
                    // Wait for a key so a broken database does not spin.
                    self.term.say(&trouble(&e), Style::Error).await?;
                    self.term.pause().await?;
                    continue;
                }
            };
            let result = match key {
                Key::Char(c) => match c.to_ascii_uppercase() {
                    'B' => self.order(Intent::Buy, None).await,
                    'S' => self.order(Intent::Sell, None).await,
                    'H' => self.order(Intent::Short, None).await,
                    'C' => self.order(Intent::Cover, None).await,
                    'Q' => self.quote(None).await,
                    'O' => self.open_orders().await,
                    'P' => self.portfolio().await,
                    'T' => self.tape().await,
                    'L' => self.leaders().await,
                    'N' => self.news_wire().await,
                    'I' => self.inbox().await,
                    '?' => self.help().await,
                    'G' => return Ok(()),
                    'R' | 'M' => Ok(None),
                    _ => Ok(Some(unknown_key())),
                },
                Key::Enter | Key::Clear => Ok(None),
                Key::Function(1) => self.help().await,
                _ => Ok(Some(unknown_key())),
            };
            notice = match result {
                Ok(n) => n,
                Err(Fail::Stop(s)) => return Err(s),
                Err(Fail::Exchange(e)) => {
                    tracing::warn!(error = %e, "screen failed");
                    Some((trouble(&e), Style::Error))
                }
            };
        }
    }

    async fn status(&self) -> Result<Status, Fail> {
        let p = self.ex.portfolio(self.game.id, self.player.id).await?;
        let game = self.ex.game(self.game.id).await?;
        Ok(Status {
            cash: p.cash,
            net_worth: p.net_worth,
            open: game.open,
            minutes_left: self.term.minutes_left(),
            session: self.session_clock().await,
            unread: crate::store::inbox::unread_count(self.ex.db(), self.player.id).await?,
            season_left_ms: self.season_ends_at.map(|t| t - crate::store::now_ms()),
        })
    }

    /// The session word and world clock of a season the market simulation runs; `None` for a
    /// game without a simulation (or when it cannot be read, which is logged).
    async fn session_clock(&self) -> Option<(String, String)> {
        match self
            .market()?
            .session_line(self.game.id, crate::store::now_ms())
            .await
        {
            Ok(line) => Some(line),
            Err(crate::market::MarketError::NoSimulation(_)) => None,
            Err(e) => {
                tracing::warn!(error = %e, "market clock unavailable");
                None
            }
        }
    }

    /// The market of this game. Its hours come from the game's own stored calendar, so the
    /// door needs no `[market]` settings of its own.
    fn market(&self) -> Option<&Market> {
        self.market.as_ref()
    }

    /// Why the game's calendar refuses an order now, if it does; a failure to read the
    /// calendar is logged and the exchange decides alone.
    async fn session_refusal(&self, order_type: &OrderType) -> Option<String> {
        match self
            .market()?
            .check_session(self.game.id, crate::store::now_ms(), order_type)
            .await
        {
            Ok(Ok(_)) | Err(crate::market::MarketError::NoSimulation(_)) => None,
            Ok(Err(closed)) => Some(closed.message),
            Err(e) => {
                tracing::warn!(error = %e, "market session check failed");
                None
            }
        }
    }

    async fn board_rows(&self) -> Result<Vec<BoardRow>, Fail> {
        Ok(boardq::board(self.ex.db(), self.game.id, day_start()).await?)
    }

    async fn board(&mut self, notice: Notice) -> Result<BoardOut, Fail> {
        if let Some(line) = self.term.take_flashed() {
            self.headline = Some(line);
        }
        let seq = self.ex.last_event_seq().await?;
        let mut sub = self.ex.subscribe(self.game.id, seq + 1);
        let rows = self.board_rows().await?;
        let status = self.status().await?;
        let caps = self.term.caps();
        let (screen, geometry) = screens::board(
            &status,
            &self.game.name,
            &rows,
            self.headline.as_deref(),
            notice.as_ref().map(|(t, s)| (t.as_str(), *s)),
            &caps,
        );
        self.term.show(&screen).await?;
        let mut live = LiveBoard::new(caps, geometry, rows, status.text(&caps));
        let mut refresh_at: Option<Instant> = None;
        let mut last_refresh = Instant::now();
        loop {
            let wake = self.term.wait(Some(&mut sub), refresh_at).await?;
            if self.term.take_switched() || self.term.take_warned() {
                return Ok(BoardOut::Redraw);
            }
            match wake {
                Wake::Key(Key::CursorPosition { .. }) => {}
                Wake::Key(k) => return Ok(BoardOut::Key(k)),
                Wake::Flash(text) => {
                    let bytes = live.flash(&text);
                    self.headline = Some(text);
                    self.term.write(&bytes).await?;
                }
                Wake::Event(_) => {
                    if refresh_at.is_none() {
                        let at = (Instant::now() + REFRESH_DELAY).max(last_refresh + REFRESH_EVERY);
                        refresh_at = Some(at);
                    }
                }
                Wake::Tick => {
                    refresh_at = None;
                    last_refresh = Instant::now();
                    let rows = self.board_rows().await?;
                    let status = self.status().await?;
                    match live.update(&rows, &status.text(&caps)) {
                        Some(bytes) if bytes.is_empty() => {}
                        Some(bytes) => self.term.write(&bytes).await?,
                        None => {
                            self.instruments = self.ex.instruments(self.game.id).await?;
                            return Ok(BoardOut::Redraw);
                        }
                    }
                }
            }
        }
    }

    /// Asks for a symbol until a listed one is typed; `None` when the player gives up.
    async fn ask_symbol(&mut self) -> Result<Option<Instrument>, Fail> {
        loop {
            let options = LineOptions::new(8).filter(Filter::Custom(|c| c.is_ascii_alphanumeric()));
            let Some(text) = self.term.line("Symbol:", options).await? else {
                return Ok(None);
            };
            let symbol = text.trim().to_ascii_uppercase();
            if symbol.is_empty() {
                return Ok(None);
            }
            if !self.instruments.iter().any(|i| i.symbol == symbol) {
                self.instruments = self.ex.instruments(self.game.id).await?;
            }
            if let Some(inst) = self.instruments.iter().find(|i| i.symbol == symbol) {
                return Ok(Some(inst.clone()));
            }
            let listed: Vec<&str> = self.instruments.iter().map(|i| i.symbol.as_str()).collect();
            self.term
                .say(
                    &format!(
                        "There is no stock called {symbol}. Listed: {}.",
                        listed.join(", ")
                    ),
                    Style::Error,
                )
                .await?;
        }
    }

    async fn order(&mut self, intent: Intent, inst: Option<Instrument>) -> Result<Notice, Fail> {
        let cancelled = || Some(("Order cancelled. Nothing was sent.".to_string(), Style::Dim));
        // When no order at all is taken now (closed, halted), say so before the ticket, not
        // after it; the check when sending stays, for a session that ends meanwhile. A limit
        // order is the probe: every session but a closed or halted one takes it (its price
        // plays no part in the calendar's answer).
        if let Some(refusal) = self.session_refusal(&OrderType::Limit { price: 0 }).await {
            return Ok(Some((
                format!("No orders taken now: {refusal}."),
                Style::Error,
            )));
        }
        let status = self.status().await?;
        let caps = self.term.caps();
        self.term
            .show(&screens::order_form(&status, intent, &[], &caps))
            .await?;
        let inst = match inst {
            Some(i) => i,
            None => match self.ask_symbol().await? {
                Some(i) => i,
                None => return Ok(cancelled()),
            },
        };
        let rows = self.board_rows().await?;
        let row = rows.iter().find(|r| r.instrument_id == inst.id).cloned();
        let portfolio = self.ex.portfolio(self.game.id, self.player.id).await?;
        let held: i64 = portfolio
            .positions
            .iter()
            .filter(|p| p.instrument_id == inst.id)
            .map(|p| p.qty)
            .sum();
        if let Some(r) = &row {
            self.term
                .say(
                    &format!(
                        "{} last {}, bid {}, ask {}. You hold {}.",
                        inst.symbol,
                        format::price(r.last),
                        r.bid.map_or("-".into(), format::price),
                        r.ask.map_or("-".into(), format::price),
                        format::qty(held)
                    ),
                    Style::Dim,
                )
                .await?;
        }
        let limit = loop {
            match self.term.hotkey("L)imit or M)arket? [L]").await? {
                Key::Enter => break true,
                Key::Escape => return Ok(cancelled()),
                Key::Char(c) if c.eq_ignore_ascii_case(&'l') => break true,
                Key::Char(c) if c.eq_ignore_ascii_case(&'m') => {
                    // Said now, not after the ticket: this session takes limit orders only.
                    let Some(refusal) = self.session_refusal(&OrderType::Market).await else {
                        break false;
                    };
                    self.term.say("Market", Style::Normal).await?;
                    self.term
                        .say(
                            &format!("Not now: {refusal}. A limit order is taken."),
                            Style::Error,
                        )
                        .await?;
                }
                _ => {
                    self.term.say("", Style::Normal).await?;
                    self.term
                        .say(
                            "Press L for a limit order or M for a market order.",
                            Style::Error,
                        )
                        .await?;
                }
            }
        };
        self.term
            .say(if limit { "Limit" } else { "Market" }, Style::Normal)
            .await?;
        let qty = loop {
            let options = LineOptions::new(10).filter(Filter::Custom(|c| {
                c.is_ascii_digit() || c == ',' || c == '.'
            }));
            let Some(text) = self.term.line("Shares:", options).await? else {
                return Ok(cancelled());
            };
            if text.trim().is_empty() {
                return Ok(cancelled());
            }
            match format::parse_qty(&text) {
                Ok(n) => break n,
                Err(e) => self.term.say(&e.0, Style::Error).await?,
            }
        };
        let price = if limit {
            loop {
                let options = LineOptions::new(11).filter(Filter::Custom(|c| {
                    c.is_ascii_digit() || c == '.' || c == '$'
                }));
                let Some(text) = self.term.line("Limit price $", options).await? else {
                    return Ok(cancelled());
                };
                if text.trim().is_empty() {
                    return Ok(cancelled());
                }
                match format::parse_price(&text, inst.tick) {
                    Ok(p) => break Some(p),
                    Err(e) => self.term.say(&e.0, Style::Error).await?,
                }
            }
        } else {
            None
        };
        let book = self.ex.book(self.game.id, &inst.symbol, 10).await?;
        let last = row.as_ref().map_or(inst.last_price, |r| r.last);
        let est_price = price.unwrap_or_else(|| market_estimate(&book, intent, qty, last));
        let ticket = ticket(
            intent,
            &inst.symbol,
            qty,
            price,
            est_price,
            portfolio.buying_power,
            &self.game,
        );
        let status = self.status().await?;
        self.term
            .show(&screens::confirm(&status, &ticket, &caps))
            .await?;
        if intent.is_opening() && ticket.est_cost > ticket.buying_power {
            self.term
                .say(
                    "That is more than your buying power: the exchange will likely refuse it.",
                    Style::Warning,
                )
                .await?;
        }
        if !self.term.confirm("Send this order?", true).await? {
            return Ok(cancelled());
        }
        let req = OrderRequest {
            symbol: inst.symbol.clone(),
            intent,
            order_type: match price {
                Some(price) => OrderType::Limit { price },
                None => OrderType::Market,
            },
            tif: if price.is_some() {
                TimeInForce::Gtc
            } else {
                TimeInForce::Ioc
            },
            qty,
            stp: None,
        };
        // Market hours: a season run by the simulation refuses what its session does not
        // allow, with the next opening time; a game without a simulation has no hours.
        if let Some(refusal) = self.session_refusal(&req.order_type).await {
            // Said on the board the player returns to, where it stays readable.
            return Ok(Some((format!("Not sent: {refusal}."), Style::Error)));
        }
        // One transaction: done completely or not at all. It is awaited to the end even if
        // the caller hangs up meanwhile; the next wait notices the hang-up.
        let lines = match self.ex.place(self.game.id, self.player.id, &req).await {
            Ok(ack) => screens::ack_words(&ack, price),
            Err(ExchangeError::Store(e)) => {
                tracing::error!(error = %e, "placing an order failed");
                vec![(
                    "The exchange's computer is down (internal error). Check your open orders \
                     before trying again."
                        .to_string(),
                    Style::Error,
                )]
            }
            Err(e) => vec![(format!("The exchange refused: {e}."), Style::Error)],
        };
        let status = self.status().await?;
        self.term
            .show(&screens::order_result(&status, &lines, &caps))
            .await?;
        self.term.pause().await?;
        Ok(None)
    }

    async fn quote(&mut self, inst: Option<Instrument>) -> Result<Notice, Fail> {
        let inst = match inst {
            Some(i) => i,
            None => {
                let status = self.status().await?;
                let caps = self.term.caps();
                let listed: Vec<&str> =
                    self.instruments.iter().map(|i| i.symbol.as_str()).collect();
                let screen = Screen::new()
                    .line_styled(&status.text(&caps), Style::Emphasis)
                    .title("Quote")
                    .paragraph(&format!("Listed: {}", listed.join(", ")))
                    .line_styled("Empty answer or ESC goes back.", Style::Dim);
                self.term.show(&screen).await?;
                match self.ask_symbol().await? {
                    Some(i) => i,
                    None => return Ok(None),
                }
            }
        };
        loop {
            let caps = self.term.caps();
            let status = self.status().await?;
            let rows = self.board_rows().await?;
            let Some(row) = rows.iter().find(|r| r.instrument_id == inst.id) else {
                return Ok(None);
            };
            let book = self.ex.book(self.game.id, &inst.symbol, 5).await?;
            let trades = self.ex.tape(self.game.id, &inst.symbol, 80).await?;
            let p = self.ex.portfolio(self.game.id, self.player.id).await?;
            let position = p
                .positions
                .iter()
                .filter(|x| x.instrument_id == inst.id)
                .map(|x| x.qty)
                .sum();
            let view = screens::QuoteView {
                status,
                instrument: &inst,
                row,
                book: &book,
                trades: &trades,
                position,
            };
            self.term.show(&screens::quote(&view, &caps)).await?;
            let key = self.term.key().await?;
            let intent = match key {
                Key::Char(c) => match c.to_ascii_uppercase() {
                    'B' => Intent::Buy,
                    'S' => Intent::Sell,
                    'H' => Intent::Short,
                    'C' => Intent::Cover,
                    'R' | 'Q' => continue,
                    _ => return Ok(None),
                },
                _ => return Ok(None),
            };
            return self.order(intent, Some(inst)).await;
        }
    }

    async fn open_orders(&mut self) -> Result<Notice, Fail> {
        let mut notice: Notice = None;
        loop {
            let caps = self.term.caps();
            let status = self.status().await?;
            let orders = self
                .ex
                .orders(self.game.id, self.player.id, true, 50)
                .await?;
            let list: Vec<screens::OpenOrder> = orders
                .into_iter()
                .map(|order| screens::OpenOrder {
                    symbol: self
                        .instruments
                        .iter()
                        .find(|i| i.id == order.instrument_id)
                        .map_or_else(|| "?".to_string(), |i| i.symbol.clone()),
                    order,
                })
                .collect();
            let screen = screens::orders(
                &status,
                &list,
                notice.as_ref().map(|(t, s)| (t.as_str(), *s)),
                &caps,
            );
            self.term.show(&screen).await?;
            let key = self.term.hotkey(screens::ORDERS_PROMPT).await?;
            if !matches!(key, Key::Char(c) if c.eq_ignore_ascii_case(&'c')) {
                return Ok(None);
            }
            self.term.say("Cancel", Style::Normal).await?;
            if list.is_empty() {
                notice = Some(("Nothing to cancel.".into(), Style::Warning));
                continue;
            }
            let prompt = format!("Cancel which # (1-{})?", list.len());
            let options = LineOptions::new(4).filter(Filter::Digits);
            let Some(text) = self.term.line(&prompt, options).await? else {
                notice = Some(("Nothing cancelled.".into(), Style::Dim));
                continue;
            };
            if text.trim().is_empty() {
                notice = Some(("Nothing cancelled.".into(), Style::Dim));
                continue;
            }
            let pick = text.trim().parse::<usize>().unwrap_or(0);
            let Some(o) = pick.checked_sub(1).and_then(|i| list.get(i)) else {
                notice = Some((
                    format!("There is no #{}: pick 1 to {}.", text.trim(), list.len()),
                    Style::Error,
                ));
                continue;
            };
            let (verb, _) = screens::intent_words(o.order.intent);
            let q = format!(
                "Cancel {verb} {} {} @ {}?",
                format::qty(o.order.qty - o.order.filled),
                o.symbol,
                o.order.price.map_or("market".into(), format::price)
            );
            if !self.term.confirm(&q, true).await? {
                notice = Some(("Nothing cancelled.".into(), Style::Dim));
                continue;
            }
            notice = match self
                .ex
                .cancel(self.game.id, self.player.id, o.order.id)
                .await
            {
                Ok(()) => Some((format!("Order #{} cancelled.", o.order.id), Style::Success)),
                Err(e) => Some((format!("Could not cancel: {e}."), Style::Error)),
            };
        }
    }

    async fn portfolio(&mut self) -> Result<Notice, Fail> {
        let caps = self.term.caps();
        let status = self.status().await?;
        let p = self.ex.portfolio(self.game.id, self.player.id).await?;
        let account = self.ex.account(self.game.id, self.player.id).await?;
        self.term
            .show(&screens::portfolio(
                &status,
                &p,
                account.margin_call_at.is_some(),
                &caps,
            ))
            .await?;
        self.term.pause().await?;
        Ok(None)
    }

    /// Starts following the game's news wire: the latest headline goes on the board, and every
    /// new one flashes on whatever screen the player is on. Games without a simulation have
    /// no wire.
    async fn follow_news(&mut self) {
        let Some(market) = self.market.clone() else {
            return;
        };
        // A game without a simulation has no wire.
        if market.clock(self.game.id).await.is_err() {
            return;
        }
        let latest = match market.latest_news(self.game.id, 1).await {
            Ok(latest) => latest,
            Err(e) => {
                tracing::warn!(error = %e, "news wire unavailable");
                return;
            }
        };
        let after = latest.first().map_or(0, |n| n.tick);
        self.headline = latest
            .into_iter()
            .next()
            .map(|n| screens::news_line(&n.headline));
        let mut wire = market.follow_news(self.game.id, after, NEWS_POLL);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(item) = wire.recv().await {
                if tx.send(screens::news_line(&item.headline)).await.is_err() {
                    return;
                }
            }
        });
        self.term.set_flashes(rx);
    }

    async fn news_wire(&mut self) -> Result<Notice, Fail> {
        let caps = self.term.caps();
        let status = self.status().await?;
        let Some(market) = self.market.clone() else {
            return Ok(Some((
                "There is no news wire in this game.".into(),
                Style::Dim,
            )));
        };
        let items = match market.latest_news(self.game.id, 20).await {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(error = %e, "news wire failed");
                return Ok(Some(("The news wire is down.".into(), Style::Error)));
            }
        };
        let calendar = market.game_calendar(self.game.id).await.ok();
        let now = match market.clock(self.game.id).await {
            Ok(clock) => clock.market_at(crate::store::now_ms()),
            Err(_) => crate::store::now_ms(),
        };
        let list: Vec<screens::WireItem> = items
            .into_iter()
            .map(|n| screens::WireItem {
                when: calendar
                    .as_ref()
                    .map_or_else(String::new, |c| c.format_time(n.published_at, now)),
                headline: n.headline,
            })
            .collect();
        self.term
            .show(&screens::news_wire(&status, &list, &caps))
            .await?;
        self.term.pause().await?;
        Ok(None)
    }

    async fn tape(&mut self) -> Result<Notice, Fail> {
        let caps = self.term.caps();
        let status = self.status().await?;
        let n = i64::from(caps.height).saturating_sub(8).max(5);
        let trades = boardq::recent_trades(self.ex.db(), self.game.id, n).await?;
        if trades
            .iter()
            .any(|t| !self.instruments.iter().any(|i| i.id == t.instrument_id))
        {
            self.instruments = self.ex.instruments(self.game.id).await?;
        }
        let list: Vec<screens::TapeTrade> = trades
            .into_iter()
            .map(|trade| screens::TapeTrade {
                symbol: self
                    .instruments
                    .iter()
                    .find(|i| i.id == trade.instrument_id)
                    .map_or_else(|| "?".to_string(), |i| i.symbol.clone()),
                trade,
            })
            .collect();
        self.term
            .show(&screens::tape(&status, &list, &caps))
            .await?;
        self.term.pause().await?;
        Ok(None)
    }

    async fn leaders(&mut self) -> Result<Notice, Fail> {
        let caps = self.term.caps();
        let status = self.status().await?;
        let all = crate::lifecycle::standings(
            self.ex.db(),
            self.game.id,
            &crate::lifecycle::mark::MarkConfig::default(),
        )
        .await?;
        let top_n = usize::from(caps.height).saturating_sub(9).clamp(3, 10);
        let mut ids: Vec<i64> = all.iter().take(top_n).map(|s| s.player_id).collect();
        ids.push(self.player.id);
        let names = players::by_ids(self.ex.db(), &ids).await?;
        let leader = |rank: usize, s: &crate::lifecycle::mark::Standing| {
            let p = names.iter().find(|p| p.id == s.player_id);
            screens::Leader {
                rank,
                handle: p.map_or_else(|| format!("player {}", s.player_id), |p| p.handle.clone()),
                system: p.map_or_else(String::new, |p| p.system.clone()),
                net_worth: s.net_worth,
                is_you: s.player_id == self.player.id,
            }
        };
        let top: Vec<screens::Leader> = all
            .iter()
            .take(top_n)
            .enumerate()
            .map(|(i, s)| leader(i + 1, s))
            .collect();
        let you = all
            .iter()
            .enumerate()
            .find(|(_, s)| s.player_id == self.player.id)
            .map(|(i, s)| leader(i + 1, s));
        self.term
            .show(&screens::leaders(
                &status,
                &top,
                you.as_ref(),
                all.len(),
                &caps,
            ))
            .await?;
        self.term.pause().await?;
        Ok(None)
    }

    /// The inbox: the list, reading, writing, answering and deleting.
    async fn inbox(&mut self) -> Result<Notice, Fail> {
        let mut notice: Notice = None;
        loop {
            let caps = self.term.caps();
            let status = self.status().await?;
            let messages = match inbox::list(self.ex.db(), self.player.id).await {
                Ok(m) => m,
                Err(e) => return Ok(Some((mail_trouble(&e), Style::Error))),
            };
            let screen = mail::list(
                &status,
                &messages,
                notice.take().as_ref().map(|(t, s)| (t.as_str(), *s)),
                &caps,
            );
            self.term.show(&screen).await?;
            let key = self.term.hotkey(mail::list_prompt(&caps)).await?;
            let Key::Char(c) = key else {
                if key == Key::Escape {
                    return Ok(None);
                }
                continue;
            };
            notice = match c.to_ascii_uppercase() {
                'R' | 'D' => {
                    self.term.say("", Style::Normal).await?;
                    let Some(m) = self.pick_message(&messages).await? else {
                        continue;
                    };
                    if c.eq_ignore_ascii_case(&'r') {
                        self.read_message(m.id).await?
                    } else {
                        self.delete_message(m.id).await?
                    }
                }
                'W' => {
                    self.term.say("", Style::Normal).await?;
                    self.compose(None).await?
                }
                'Q' => return Ok(None),
                _ => Some(("That key does nothing here.".into(), Style::Error)),
            };
        }
    }

    /// Asks which message (by its number on the list).
    async fn pick_message<'m>(
        &mut self,
        messages: &'m [inbox::Message],
    ) -> Result<Option<&'m inbox::Message>, Fail> {
        if messages.is_empty() {
            self.term.say("No messages.", Style::Warning).await?;
            return Ok(None);
        }
        let prompt = format!("Which # (1-{})?", messages.len());
        let options = LineOptions::new(4).filter(Filter::Digits);
        let Some(text) = self.term.line(&prompt, options).await? else {
            return Ok(None);
        };
        let pick = text.trim().parse::<usize>().unwrap_or(0);
        Ok(pick.checked_sub(1).and_then(|i| messages.get(i)))
    }

    /// Shows one message (marking it read) and offers an answer or deletion.
    async fn read_message(&mut self, id: i64) -> Result<Notice, Fail> {
        let now = crate::store::now_ms();
        let m = match inbox::read(self.ex.db(), self.player.id, id, now).await {
            Ok(m) => m,
            Err(e) => return Ok(Some((mail_trouble(&e), Style::Error))),
        };
        let caps = self.term.caps();
        let status = self.status().await?;
        self.term.show(&mail::message(&status, &m, &caps)).await?;
        let can_answer = m.from_player.is_some();
        let key = self
            .term
            .hotkey(mail::message_prompt(can_answer, &caps))
            .await?;
        match key {
            Key::Char(c) if can_answer && c.eq_ignore_ascii_case(&'a') => {
                self.term.say("", Style::Normal).await?;
                self.compose(Some(m)).await
            }
            Key::Char(c) if c.eq_ignore_ascii_case(&'d') => {
                self.term.say("", Style::Normal).await?;
                self.delete_message(m.id).await
            }
            _ => Ok(None),
        }
    }

    async fn delete_message(&mut self, id: i64) -> Result<Notice, Fail> {
        if !self.term.confirm("Delete this message?", false).await? {
            return Ok(Some(("Nothing deleted.".into(), Style::Dim)));
        }
        Ok(Some(
            match inbox::delete(self.ex.db(), self.player.id, id).await {
                Ok(()) => ("Message deleted.".into(), Style::Success),
                Err(e) => (mail_trouble(&e), Style::Error),
            },
        ))
    }

    /// Writes a new message, or an answer to `original`. Nothing is sent until confirmed.
    async fn compose(&mut self, original: Option<inbox::Message>) -> Result<Notice, Fail> {
        let cancelled = || Some(("Message not sent.".to_string(), Style::Dim));
        let caps = self.term.caps();
        let status = self.status().await?;
        let (to, subject) = match &original {
            Some(m) => (Some(m.from.clone()), Some(inbox::reply_subject(&m.subject))),
            None => (None, None),
        };
        self.term
            .show(&mail::compose(
                &status,
                to.as_deref(),
                subject.as_deref(),
                &caps,
            ))
            .await?;
        let to = match to {
            Some(t) => t,
            None => match self.term.line("To:", LineOptions::new(30)).await? {
                Some(t) if !t.trim().is_empty() => t,
                _ => return Ok(cancelled()),
            },
        };
        let subject = match subject {
            Some(s) => s,
            None => match self
                .term
                .line("Subject:", LineOptions::new(inbox::SUBJECT_MAX))
                .await?
            {
                Some(s) => s,
                None => return Ok(cancelled()),
            },
        };
        let mut body: Vec<String> = Vec::new();
        let line_len = mail::body_line_len(&caps);
        loop {
            let used: usize = body.iter().map(|l| l.chars().count() + 1).sum();
            if used >= inbox::BODY_MAX {
                self.term
                    .say("That is as long as a message gets.", Style::Warning)
                    .await?;
                break;
            }
            let max = line_len.min(inbox::BODY_MAX - used);
            match self.term.line(">", LineOptions::new(max)).await? {
                None => return Ok(cancelled()),
                Some(l) if l.trim().is_empty() => break,
                Some(l) => body.push(l),
            }
        }
        let body = body.join("\n");
        if body.trim().is_empty() {
            return Ok(Some((
                "An empty message was not sent.".into(),
                Style::Warning,
            )));
        }
        if !self
            .term
            .confirm(&format!("Send to {}?", to.trim()), true)
            .await?
        {
            return Ok(cancelled());
        }
        let now = crate::store::now_ms();
        let sent = match &original {
            Some(m) => inbox::reply(self.ex.db(), &self.player, m.id, &body, now).await,
            None => inbox::send(self.ex.db(), &self.player, &to, &subject, &body, now).await,
        };
        Ok(Some(match sent {
            Ok(_) => (format!("Message to {} sent.", to.trim()), Style::Success),
            Err(e) => (format!("Not sent: {}.", mail_trouble(&e)), Style::Error),
        }))
    }

    async fn help(&mut self) -> Result<Notice, Fail> {
        let pages: Vec<&str> = HELP.split("\n---\n").map(str::trim).collect();
        for (i, text) in pages.iter().enumerate() {
            let caps = self.term.caps();
            let status = self.status().await?;
            self.term
                .show(&screens::help(&status, text, i + 1, pages.len(), &caps))
                .await?;
            let last = i + 1 == pages.len();
            let prompt = if last {
                "Any key: back"
            } else {
                "Any key: more, Q: back"
            };
            let key = self.term.hotkey(prompt).await?;
            if matches!(key, Key::Char(c) if c.eq_ignore_ascii_case(&'q')) || key == Key::Escape {
                break;
            }
        }
        Ok(None)
    }
}

/// What the player is told when mail fails; storage details go to the log only.
fn mail_trouble(e: &inbox::InboxError) -> String {
    if matches!(e, inbox::InboxError::Store(_) | inbox::InboxError::Jobs(_)) {
        tracing::warn!(error = ?e, "inbox failed");
    }
    e.to_string()
}

/// The notice for a key the board does not know.
fn unknown_key() -> (String, Style) {
    (
        "That key does nothing here. Press ? for help.".to_string(),
        Style::Error,
    )
}

/// What the player is told when the exchange fails.
fn trouble(e: &ExchangeError) -> String {
    match e {
        ExchangeError::Store(_) => {
            "The exchange's computer is down (internal error). Try again in a moment.".into()
        }
        other => format!("The exchange says: {other}."),
    }
}

/// The start of the current trading day (midnight UTC) in ms; the market simulation will own
/// sessions later.
fn day_start() -> i64 {
    let now = crate::store::now_ms();
    now - now.rem_euclid(86_400_000)
}

/// The price a market order is expected to trade at: the book walked for `qty`, or the last
/// price when the book is thin.
pub fn market_estimate(book: &BookTop, intent: Intent, qty: i64, last: i64) -> i64 {
    let levels = match intent.side() {
        crate::exchange::Side::Buy => &book.asks,
        crate::exchange::Side::Sell => &book.bids,
    };
    let mut left = qty;
    let mut value: i128 = 0;
    for l in levels {
        let take = left.min(l.qty);
        value += i128::from(take) * i128::from(l.price);
        left -= take;
        if left == 0 {
            break;
        }
    }
    let filled = qty - left;
    if filled == 0 {
        return last;
    }
    // The rest, if any, is assumed to trade at the worst level seen.
    let worst = levels
        .iter()
        .take_while(|_| true)
        .last()
        .map_or(last, |l| l.price);
    value += i128::from(left) * i128::from(worst);
    i64::try_from(value / i128::from(qty.max(1))).unwrap_or(last)
}

/// Builds the confirmation figures: cost, the taker fee if it trades at once, and buying
/// power before and after (opening orders use it up; closing ones free it).
pub fn ticket(
    intent: Intent,
    symbol: &str,
    qty: i64,
    limit: Option<i64>,
    est_price: i64,
    buying_power: i64,
    game: &Game,
) -> screens::Ticket {
    let cost = qty.saturating_mul(est_price);
    let fee = crate::exchange::risk::bp_ceil(cost, game.rules.fee_bp).unwrap_or(i64::MAX);
    let margin = game.rules.initial_margin_bp.max(1);
    // A fee lowers equity, and each dollar of equity carries 10000/margin dollars of exposure.
    let fee_capacity = fee.saturating_mul(10_000) / margin;
    let after = if intent.is_opening() {
        buying_power
            .saturating_sub(cost)
            .saturating_sub(fee_capacity)
    } else {
        buying_power
            .saturating_add(cost)
            .saturating_sub(fee_capacity)
    };
    screens::Ticket {
        intent,
        symbol: symbol.to_string(),
        qty,
        limit,
        est_price,
        est_cost: cost,
        est_fee: fee,
        buying_power,
        buying_power_after: after.max(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{GameRules, Level};

    #[test]
    fn help_pages_fit_an_atari_screen() {
        let status = Status {
            cash: 1_000_000,
            net_worth: 1_000_000,
            open: true,
            minutes_left: 30,
            session: None,
            unread: 0,
            season_left_ms: None,
        };
        let pages: Vec<&str> = HELP.split("\n---\n").collect();
        assert_eq!(pages.len(), 4);
        for caps in [
            crate::terminal::Caps::for_charset(crate::terminal::Charset::Atascii),
            crate::terminal::Caps::for_charset(crate::terminal::Charset::Ansi),
        ] {
            for (i, p) in pages.iter().enumerate() {
                let rows =
                    screens::help(&status, p.trim(), i + 1, pages.len(), &caps).rows(&caps) + 1;
                assert!(
                    rows <= 24,
                    "page {} takes {rows} rows at {}",
                    i + 1,
                    caps.width
                );
            }
        }
    }

    #[test]
    fn market_estimate_walks_the_book() {
        let book = BookTop {
            bids: vec![],
            asks: vec![
                Level {
                    price: 100,
                    qty: 10,
                    orders: 1,
                },
                Level {
                    price: 110,
                    qty: 10,
                    orders: 1,
                },
            ],
        };
        assert_eq!(market_estimate(&book, Intent::Buy, 20, 90), 105);
        assert_eq!(market_estimate(&book, Intent::Sell, 20, 90), 90);
        assert_eq!(market_estimate(&book, Intent::Buy, 30, 90), 106);
    }

    #[test]
    fn tickets_use_and_free_buying_power() {
        let game = Game {
            id: 1,
            name: "x".into(),
            open: true,
            rules: GameRules {
                fee_bp: 10,
                ..GameRules::default()
            },
        };
        let t = ticket(Intent::Buy, "JUNK", 100, Some(1250), 1250, 2_000_000, &game);
        assert_eq!(t.est_cost, 125_000);
        assert_eq!(t.est_fee, 125);
        assert_eq!(t.buying_power_after, 2_000_000 - 125_000 - 250);
        let t = ticket(Intent::Sell, "JUNK", 100, None, 1250, 0, &game);
        assert_eq!(t.buying_power_after, 125_000 - 250);
    }
}
