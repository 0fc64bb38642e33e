//! Plain data of the exchange: sides, order kinds, statuses, requests, acknowledgements and
//! events. No logic beyond names and small conversions lives here, so the storage layer may
//! use these types without depending on the engine.

use std::fmt;

/// An amount of money in integer cents; `Display` shows dollars, e.g. `$1,234.56`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Cents(pub i64);

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:02}", thousands(abs / 100), abs % 100)
    }
}

/// A whole number with thousands separators: `1,500`, `-20,000` (share counts, dollars).
pub fn thousands(n: impl Into<i128>) -> String {
    let n: i128 = n.into();
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The side of the book an order is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }

    /// Parses a stored name.
    pub fn from_name(s: &str) -> Option<Side> {
        match s {
            "buy" => Some(Side::Buy),
            "sell" => Some(Side::Sell),
            _ => None,
        }
    }
}

/// What the player means by an order: it decides the side and which balance check applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Intent {
    /// Buy shares (opens or adds to a long; uses buying power).
    Buy,
    /// Sell shares the account holds (never more than its free long position).
    Sell,
    /// Sell shares borrowed from the house (opens or adds to a short; uses buying power).
    Short,
    /// Buy back shares owed to the house (never more than the free short position).
    Cover,
}

impl Intent {
    /// The book side this intent trades on.
    pub fn side(self) -> Side {
        match self {
            Intent::Buy | Intent::Cover => Side::Buy,
            Intent::Sell | Intent::Short => Side::Sell,
        }
    }

    /// Whether the order can add exposure, and so needs buying power.
    pub fn is_opening(self) -> bool {
        matches!(self, Intent::Buy | Intent::Short)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Buy => "buy",
            Intent::Sell => "sell",
            Intent::Short => "short",
            Intent::Cover => "cover",
        }
    }

    /// Parses a stored name.
    pub fn from_name(s: &str) -> Option<Intent> {
        match s {
            "buy" => Some(Intent::Buy),
            "sell" => Some(Intent::Sell),
            "short" => Some(Intent::Short),
            "cover" => Some(Intent::Cover),
            _ => None,
        }
    }
}

/// Limit or market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OrderType {
    /// At this price (cents, a whole number of ticks) or better.
    Limit { price: i64 },
    /// Now, at any price inside the game's collar; never rests on the book.
    Market,
}

/// How long an order may wait on the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TimeInForce {
    /// Good till cancelled.
    Gtc,
    /// Good for the trading day; the market ends it with `expire_day_orders`.
    Day,
    /// Immediate or cancel: fill what can be filled now, cancel the rest.
    Ioc,
    /// Fill or kill: fill all of it now or nothing.
    Fok,
}

impl TimeInForce {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "gtc",
            TimeInForce::Day => "day",
            TimeInForce::Ioc => "ioc",
            TimeInForce::Fok => "fok",
        }
    }

    /// Parses a stored name.
    pub fn from_name(s: &str) -> Option<TimeInForce> {
        match s {
            "gtc" => Some(TimeInForce::Gtc),
            "day" => Some(TimeInForce::Day),
            "ioc" => Some(TimeInForce::Ioc),
            "fok" => Some(TimeInForce::Fok),
            _ => None,
        }
    }
}

/// What happens when an incoming order would trade with a resting order of the same account.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum StpMode {
    /// Cancel the resting order and keep matching (the default).
    #[default]
    CancelResting,
    /// Cancel the rest of the incoming order; the resting order stays.
    CancelIncoming,
    /// Cancel both.
    CancelBoth,
}

impl StpMode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            StpMode::CancelResting => "cancel_resting",
            StpMode::CancelIncoming => "cancel_incoming",
            StpMode::CancelBoth => "cancel_both",
        }
    }

    /// Parses a stored name.
    pub fn from_name(s: &str) -> Option<StpMode> {
        match s {
            "cancel_resting" => Some(StpMode::CancelResting),
            "cancel_incoming" => Some(StpMode::CancelIncoming),
            "cancel_both" => Some(StpMode::CancelBoth),
            _ => None,
        }
    }
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OrderStatus {
    /// Resting on the book with shares left.
    Open,
    /// Completely filled.
    Filled,
    /// Ended with shares unfilled (cancelled, expired, killed or self-trade prevented).
    Cancelled,
}

impl OrderStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Open => "open",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn from_name(s: &str) -> Option<OrderStatus> {
        match s {
            "open" => Some(OrderStatus::Open),
            "filled" => Some(OrderStatus::Filled),
            "cancelled" => Some(OrderStatus::Cancelled),
            _ => None,
        }
    }
}

/// Why the unfilled part of an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CancelReason {
    /// The owner cancelled it.
    User,
    /// Immediate-or-cancel or market remainder.
    Unfilled,
    /// Fill-or-kill could not fill completely.
    Killed,
    /// Self-trade prevention.
    SelfTrade,
    /// A day order at the end of the day.
    Expired,
    /// Cancelled by the house before a forced liquidation.
    Liquidation,
}

impl CancelReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::User => "user",
            CancelReason::Unfilled => "unfilled",
            CancelReason::Killed => "killed",
            CancelReason::SelfTrade => "self_trade",
            CancelReason::Expired => "expired",
            CancelReason::Liquidation => "liquidation",
        }
    }
}

/// Rules of one game (one season of the market). Rates are basis points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameRules {
    /// Cash each new account is granted.
    pub starting_cash: i64,
    /// Initial margin: 5000 means an account may hold twice its equity.
    pub initial_margin_bp: i64,
    /// Maintenance margin on long positions.
    pub maint_long_bp: i64,
    /// Maintenance margin on short positions.
    pub maint_short_bp: i64,
    /// Borrow fee per day on the value of short positions.
    pub borrow_fee_bp_day: i64,
    /// Fee the taker pays on each fill's value, to the house.
    pub fee_bp: i64,
    /// Orders must be priced within this distance of the last trade (and market orders fill
    /// no further away than this).
    pub collar_bp: i64,
    /// Self-trade prevention applied when an order does not choose one.
    pub stp_default: StpMode,
}

impl Default for GameRules {
    fn default() -> Self {
        GameRules {
            // $10,000.00.
            starting_cash: 1_000_000,
            initial_margin_bp: 5_000,
            maint_long_bp: 2_500,
            maint_short_bp: 3_000,
            borrow_fee_bp_day: 10,
            fee_bp: 0,
            collar_bp: 5_000,
            stp_default: StpMode::CancelResting,
        }
    }
}

/// A game as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Game {
    pub id: i64,
    pub name: String,
    /// False once the game is over and trading is frozen.
    pub open: bool,
    pub rules: GameRules,
}

/// A new instrument to list.
#[derive(Debug, Clone)]
pub struct NewInstrument<'a> {
    pub symbol: &'a str,
    pub name: &'a str,
    /// A satirical one-line company profile.
    pub profile: &'a str,
    /// Price step in cents.
    pub tick: i64,
    /// Shares issued; the house holds them until it grants them out.
    pub shares_issued: i64,
    /// The first reference price in cents (a whole number of ticks).
    pub initial_price: i64,
}

/// A listed instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    pub id: i64,
    pub game_id: i64,
    pub symbol: String,
    pub name: String,
    pub profile: String,
    pub tick: i64,
    pub shares_issued: i64,
    /// The last trade price (or the initial price before the first trade), in cents.
    pub last_price: i64,
}

/// One player's account in one game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub game_id: i64,
    /// The caller's opaque player identity; `None` for the house.
    pub player_id: Option<i64>,
    pub cash: i64,
    /// When a margin call was issued and not yet cleared.
    pub margin_call_at: Option<i64>,
}

/// An order as the caller asks for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderRequest {
    pub symbol: String,
    pub intent: Intent,
    pub order_type: OrderType,
    pub tif: TimeInForce,
    pub qty: i64,
    /// Self-trade prevention; `None` uses the game's default.
    pub stp: Option<StpMode>,
}

/// One fill of the caller's order against a resting order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fill {
    pub trade_id: i64,
    pub maker_order_id: i64,
    pub price: i64,
    pub qty: i64,
}

/// The answer to a placed or replaced order; once returned, it is committed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderAck {
    pub order_id: i64,
    pub status: OrderStatus,
    /// Shares filled in total so far.
    pub filled: i64,
    /// Shares still open on the book (0 unless `status` is `Open`).
    pub open_qty: i64,
    /// Fills made by this request, in the order they happened.
    pub fills: Vec<Fill>,
    /// Why the rest was cancelled, if it was.
    pub cancel_reason: Option<CancelReason>,
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    pub id: i64,
    pub instrument_id: i64,
    pub account_id: i64,
    pub intent: Intent,
    pub side: Side,
    /// `None` for market orders.
    pub price: Option<i64>,
    pub tif: TimeInForce,
    pub qty: i64,
    pub filled: i64,
    pub status: OrderStatus,
    pub priority: i64,
    pub created_at: i64,
}

/// One price level of a book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub price: i64,
    pub qty: i64,
    pub orders: i64,
}

/// The top of an instrument's book.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BookTop {
    /// Best (highest) bid first.
    pub bids: Vec<Level>,
    /// Best (lowest) ask first.
    pub asks: Vec<Level>,
}

/// A trade on the tape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub id: i64,
    pub instrument_id: i64,
    pub price: i64,
    pub qty: i64,
    pub buy_order_id: i64,
    pub sell_order_id: i64,
    pub taker_side: Side,
    pub created_at: i64,
}

/// A holding with its mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub instrument_id: i64,
    pub symbol: String,
    /// Positive long, negative short.
    pub qty: i64,
    /// The price it is valued at (the last trade).
    pub mark: i64,
    /// `qty * mark`.
    pub value: i64,
}

/// An account's holdings and worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portfolio {
    pub account_id: i64,
    pub cash: i64,
    pub positions: Vec<Position>,
    /// Cash plus longs minus shorts, at the marks.
    pub net_worth: i64,
    /// What maintenance margin requires of the net worth.
    pub maintenance: i64,
    /// What this account may still add in new exposure.
    pub buying_power: i64,
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An order went onto the book.
    Order,
    /// A trade printed (one per trade).
    Trade,
    /// An order was filled, partly or completely (one per order per trade).
    Fill,
    /// An order was cancelled (any reason; `detail` says which).
    Cancel,
    /// An order was repriced or resized.
    Replace,
    /// An account fell below maintenance margin.
    MarginCall,
    /// The house closed a position of an account that stayed below maintenance.
    Liquidation,
    /// The game ended.
    GameOver,
}

impl EventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Order => "order",
            EventKind::Trade => "trade",
            EventKind::Fill => "fill",
            EventKind::Cancel => "cancel",
            EventKind::Replace => "replace",
            EventKind::MarginCall => "margin_call",
            EventKind::Liquidation => "liquidation",
            EventKind::GameOver => "game_over",
        }
    }

    /// Parses a stored name.
    pub fn from_name(s: &str) -> Option<EventKind> {
        Some(match s {
            "order" => EventKind::Order,
            "trade" => EventKind::Trade,
            "fill" => EventKind::Fill,
            "cancel" => EventKind::Cancel,
            "replace" => EventKind::Replace,
            "margin_call" => EventKind::MarginCall,
            "liquidation" => EventKind::Liquidation,
            "game_over" => EventKind::GameOver,
            _ => return None,
        })
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub seq: i64,
    pub game_id: i64,
    pub kind: EventKind,
    pub account_id: Option<i64>,
    pub instrument_id: Option<i64>,
    pub order_id: Option<i64>,
    pub trade_id: Option<i64>,
    pub price: Option<i64>,
    pub qty: Option<i64>,
    pub detail: String,
    pub created_at: i64,
}

/// An event about to be written (its sequence number comes from the database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub account_id: Option<i64>,
    pub instrument_id: Option<i64>,
    pub order_id: Option<i64>,
    pub trade_id: Option<i64>,
    pub price: Option<i64>,
    pub qty: Option<i64>,
    pub detail: String,
}

impl NewEvent {
    /// An event with only a kind; fill the rest with struct update syntax.
    pub fn new(kind: EventKind) -> NewEvent {
        NewEvent {
            kind,
            account_id: None,
            instrument_id: None,
            order_id: None,
            trade_id: None,
            price: None,
            qty: None,
            detail: String::new(),
        }
    }
}

/// One broken invariant found by the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub game_id: i64,
    /// A short name of the rule, e.g. `ledger-cash`.
    pub rule: &'static str,
    /// What exactly is wrong.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "game {}: {}: {}", self.game_id, self.rule, self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_display_as_dollars() {
        assert_eq!(Cents(0).to_string(), "$0.00");
        assert_eq!(Cents(5).to_string(), "$0.05");
        assert_eq!(Cents(12_345_678).to_string(), "$123,456.78");
        assert_eq!(Cents(-100_000).to_string(), "-$1,000.00");
    }
}
