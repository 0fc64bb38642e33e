//! The `[market]` section of the configuration file: clock, calendar, NPC behaviour and the
//! instruments a new game lists.
//!
//! Owns the shape of the section, its defaults and its validation into a [`Calendar`]. It
//! must not touch the database or the clock.

use serde::{Deserialize, Serialize};

use super::clock::{parse_date, parse_hm, parse_weekday, Calendar, Session, Window};
use super::sim::SimParams;

/// `[market]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MarketConfig {
    /// Real milliseconds between ticks.
    pub tick_ms: u64,
    /// Market milliseconds per real millisecond (1 = real time; 24 = a market day per hour).
    pub speed: u64,
    /// Games `nuggetnet serve` runs the simulator for (standing by while another process
    /// holds a game's lease).
    pub run_games: Vec<i64>,
    /// Whether `nuggetnet serve` also runs the current season: the newest open game with a
    /// simulation, which it starts ("Season N: Greed Is Good") when there is none, so a new
    /// board has a live market from its first call.
    pub run_current: bool,
    /// The RNG seed of new games; 0 draws one.
    pub seed: u64,
    /// Where a new game's market clock starts, local time `YYYY-MM-DD HH:MM`; empty = now.
    pub start: String,
    /// Minutes east of UTC of the exchange's time zone (fixed; no daylight saving).
    pub utc_offset_minutes: i32,
    /// Shown after clock times.
    pub zone: String,
    /// Weekdays with sessions.
    pub trading_days: Vec<String>,
    /// Session windows as `HH:MM-HH:MM`; empty for none.
    pub pre_market: String,
    pub regular: String,
    pub after_hours: String,
    /// Closed days, `YYYY-MM-DD`.
    pub closed_dates: Vec<String>,
    /// NPC market makers per instrument, and each one's stake.
    pub makers_per_instrument: u32,
    pub maker_cash_cents: i64,
    pub maker_shares: i64,
    /// NPC retail traders per game, and each one's stake (shares of every instrument).
    pub retail_traders: u32,
    pub retail_cash_cents: i64,
    pub retail_shares: i64,
    /// Market days between an instrument's scheduled earnings reports (0 = none).
    pub earnings_every_days: u32,
    /// Whether the simulator mails players: fills of their resting orders, margin calls,
    /// forced liquidations and anonymous tips.
    pub mail: bool,
    /// How long before a scheduled headline (earnings, sysop news) its anonymous tips go out,
    /// in market minutes (0 = no tips).
    pub tip_lead_minutes: u32,
    /// How many players (humans with an account in the game) get each tip (0 = no tips).
    pub tip_players: u32,
    /// NPC and price-model tuning.
    pub npc: SimParams,
    /// The instruments a new game lists.
    #[serde(rename = "instrument")]
    pub instruments: Vec<InstrumentConfig>,
}

/// One `[[market.instrument]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    pub symbol: String,
    pub name: String,
    #[serde(default)]
    pub profile: String,
    /// The first price, in cents.
    pub price_cents: i64,
    #[serde(default = "one")]
    pub tick_cents: i64,
    /// Drift and volatility of the fair value per regular-session day, in basis points.
    #[serde(default)]
    pub drift_bp_day: i64,
    #[serde(default = "default_vol")]
    pub vol_bp_day: i64,
}

fn one() -> i64 {
    1
}

fn default_vol() -> i64 {
    200
}

fn inst(symbol: &str, name: &str, profile: &str, price: i64, vol: i64) -> InstrumentConfig {
    InstrumentConfig {
        symbol: symbol.into(),
        name: name.into(),
        profile: profile.into(),
        price_cents: price,
        tick_cents: 1,
        drift_bp_day: 2,
        vol_bp_day: vol,
    }
}

impl Default for MarketConfig {
    fn default() -> Self {
        MarketConfig {
            tick_ms: 5000,
            speed: 1,
            run_games: Vec::new(),
            run_current: true,
            seed: 0,
            start: String::new(),
            utc_offset_minutes: -300,
            zone: "ET".into(),
            trading_days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            pre_market: "04:00-09:30".into(),
            regular: "09:30-16:00".into(),
            after_hours: "16:00-20:00".into(),
            closed_dates: Vec::new(),
            makers_per_instrument: 2,
            maker_cash_cents: 50_000_000,
            maker_shares: 5_000,
            retail_traders: 20,
            retail_cash_cents: 5_000_000,
            retail_shares: 200,
            earnings_every_days: 5,
            mail: true,
            tip_lead_minutes: 30,
            tip_players: 3,
            npc: SimParams::default(),
            instruments: vec![
                inst(
                    "JUNK",
                    "Junk Bond Kings",
                    "High yield, higher hopes.",
                    2_500,
                    350,
                ),
                inst(
                    "LBO",
                    "Leveraged Buyout Partners",
                    "We buy your company with your company.",
                    4_200,
                    250,
                ),
                inst(
                    "SNL",
                    "Savings & Loan of the Sunbelt",
                    "Deposits insured; judgment not.",
                    1_100,
                    300,
                ),
                inst(
                    "BIGB",
                    "Big Blue Mainframe",
                    "Nobody got fired for buying us.",
                    12_000,
                    120,
                ),
                inst(
                    "VCR",
                    "Betamax Forever Inc.",
                    "The format of the future, since 1975.",
                    800,
                    400,
                ),
                inst(
                    "CELL",
                    "Brick Phone Telecom",
                    "Two pounds of freedom.",
                    3_300,
                    280,
                ),
                inst(
                    "AERO",
                    "Legwarmer Aerobics",
                    "Feel the burn, sell the tape.",
                    1_500,
                    300,
                ),
                inst(
                    "OIL",
                    "Texas Wildcat Petroleum",
                    "Drilling for dividends.",
                    6_000,
                    180,
                ),
            ],
        }
    }
}

fn window(text: &str) -> Result<Option<(u32, u32)>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("expected HH:MM-HH:MM, found {text:?}"))?;
    match (parse_hm(a), parse_hm(b)) {
        (Some(a), Some(b)) if a < b => Ok(Some((a, b))),
        _ => Err(format!(
            "expected HH:MM-HH:MM with the start first, found {text:?}"
        )),
    }
}

/// The calendar part of `[market]`, stored with each game (as JSON) so every process that
/// reads the game uses the hours it was created with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CalendarSpec {
    pub utc_offset_minutes: i32,
    pub zone: String,
    pub trading_days: Vec<String>,
    pub pre_market: String,
    pub regular: String,
    pub after_hours: String,
    pub closed_dates: Vec<String>,
}

impl CalendarSpec {
    /// The calendar this describes; the error names the `[market]` key and the problem.
    pub fn calendar(&self) -> Result<Calendar, (String, String)> {
        let mut windows = Vec::new();
        let mut days = Vec::new();
        for d in &self.trading_days {
            days.push(parse_weekday(d).ok_or_else(|| {
                (
                    "market.trading_days".to_string(),
                    format!("expected a weekday, found {d:?}"),
                )
            })?);
        }
        let mut spans = Vec::new();
        for (key, text, session) in [
            ("market.pre_market", &self.pre_market, Session::PreMarket),
            ("market.regular", &self.regular, Session::Regular),
            ("market.after_hours", &self.after_hours, Session::AfterHours),
        ] {
            if let Some((a, b)) = window(text).map_err(|m| (key.to_string(), m))? {
                if spans.iter().any(|&(x, y)| a < y && x < b) {
                    return Err((key.to_string(), "overlaps another session".to_string()));
                }
                spans.push((a, b));
                for &weekday in &days {
                    windows.push(Window {
                        weekday,
                        start_min: a,
                        end_min: b,
                        session,
                    });
                }
            }
        }
        let mut closed_days = Vec::new();
        for d in &self.closed_dates {
            closed_days.push(parse_date(d).ok_or_else(|| {
                (
                    "market.closed_dates".to_string(),
                    format!("expected YYYY-MM-DD, found {d:?}"),
                )
            })?);
        }
        Ok(Calendar {
            utc_offset_min: self.utc_offset_minutes,
            zone_label: self.zone.clone(),
            windows,
            closed_days,
        })
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The calendar stored with a game; `None` when there is none or it cannot be read.
    pub fn from_json(text: &str) -> Option<CalendarSpec> {
        if text.trim().is_empty() {
            return None;
        }
        serde_json::from_str(text).ok()
    }
}

impl MarketConfig {
    /// The calendar keys of this section.
    pub fn calendar_spec(&self) -> CalendarSpec {
        CalendarSpec {
            utc_offset_minutes: self.utc_offset_minutes,
            zone: self.zone.clone(),
            trading_days: self.trading_days.clone(),
            pre_market: self.pre_market.clone(),
            regular: self.regular.clone(),
            after_hours: self.after_hours.clone(),
            closed_dates: self.closed_dates.clone(),
        }
    }

    /// The calendar this section describes; the error names the key and the problem.
    pub fn calendar(&self) -> Result<Calendar, (String, String)> {
        self.calendar_spec().calendar()
    }

    /// Checks every key; the error is (key, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.calendar()?;
        let bad = |k: &str, m: &str| Err((format!("market.{k}"), m.to_string()));
        if self.tick_ms == 0 {
            return bad("tick_ms", "expected a number greater than 0");
        }
        if self.speed == 0 {
            return bad("speed", "expected a number greater than 0");
        }
        if self.utc_offset_minutes.abs() > 14 * 60 {
            return bad("utc_offset_minutes", "expected minutes from -840 to 840");
        }
        if !self.start.trim().is_empty() && self.start_local().is_none() {
            return bad("start", "expected YYYY-MM-DD HH:MM or nothing");
        }
        let p = &self.npc;
        if p.min_spread_bp <= 0 || p.max_spread_bp < p.min_spread_bp {
            return bad(
                "npc.max_spread_bp",
                "expected 0 < min_spread_bp <= max_spread_bp",
            );
        }
        for (i, inst) in self.instruments.iter().enumerate() {
            if inst.tick_cents <= 0
                || inst.price_cents <= 0
                || inst.price_cents % inst.tick_cents != 0
            {
                return Err((
                    format!("market.instrument[{i}].price_cents"),
                    "expected a positive price that is a whole number of ticks".into(),
                ));
            }
        }
        Ok(())
    }

    /// The configured start as (local day number, minute), if set.
    pub fn start_local(&self) -> Option<(i64, u32)> {
        let (date, time) = self.start.trim().split_once(' ')?;
        Some((parse_date(date)?, parse_hm(time)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_windows_are_named() {
        assert!(MarketConfig::default().validate().is_ok());
        let bad = MarketConfig {
            regular: "16:00-09:30".into(),
            ..MarketConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "market.regular");
        let overlap = MarketConfig {
            after_hours: "15:00-20:00".into(),
            ..MarketConfig::default()
        };
        assert_eq!(overlap.validate().unwrap_err().0, "market.after_hours");
    }
}
