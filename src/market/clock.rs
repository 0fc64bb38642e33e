//! Market hours and the game clock: a pure calendar (no I/O, no clock of its own; every
//! function is fed `now`).
//!
//! Owns the mapping from real time to the game's market time (an accelerated clock that can be
//! paused), the sessions of each weekday in the exchange's time zone (pre-market, regular,
//! after-hours, closed), closed days, the next opening time and the world-clock text. It must
//! not read the system clock or the database: callers pass `now_ms` and the stored clock.
//!
//! The time zone is a fixed offset from UTC with a label ("ET"); daylight saving time is not
//! modelled.

use std::fmt;

/// Milliseconds in a minute, hour and day.
const MIN_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MIN_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The kind of trading session at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Session {
    /// Before the regular session: thin quotes, limit orders only.
    PreMarket,
    /// Continuous trading with full NPC liquidity.
    Regular,
    /// After the regular session: thin quotes, wide spreads, limit orders only.
    AfterHours,
    /// No trading.
    Closed,
}

impl Session {
    /// The word shown on the world clock.
    pub fn label(self) -> &'static str {
        match self {
            Session::PreMarket => "PRE-MARKET",
            Session::Regular => "OPEN",
            Session::AfterHours => "AFTER HOURS",
            Session::Closed => "CLOSED",
        }
    }

    /// Parses a config name: `pre`, `regular` or `after`.
    pub fn from_name(s: &str) -> Option<Session> {
        match s {
            "pre" => Some(Session::PreMarket),
            "regular" => Some(Session::Regular),
            "after" => Some(Session::AfterHours),
            _ => None,
        }
    }
}

/// One session window on one weekday, in minutes after local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Weekday, 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    pub start_min: u32,
    pub end_min: u32,
    pub session: Session,
}

/// The exchange's calendar: time zone, session windows per weekday and closed days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// Minutes east of UTC (New York standard time is -300).
    pub utc_offset_min: i32,
    /// Shown after times, e.g. "ET".
    pub zone_label: String,
    /// Every session window, any order; windows must not overlap.
    pub windows: Vec<Window>,
    /// Closed days as local day numbers (days since 1970-01-01).
    pub closed_days: Vec<i64>,
}

impl Calendar {
    /// New York hours: pre-market 04:00-09:30, regular 09:30-16:00, after-hours 16:00-20:00,
    /// Monday to Friday, in a fixed UTC-5 zone labelled "ET".
    pub fn new_york() -> Calendar {
        let mut windows = Vec::new();
        for weekday in 0..5 {
            windows.push(Window {
                weekday,
                start_min: 240,
                end_min: 570,
                session: Session::PreMarket,
            });
            windows.push(Window {
                weekday,
                start_min: 570,
                end_min: 960,
                session: Session::Regular,
            });
            windows.push(Window {
                weekday,
                start_min: 960,
                end_min: 1200,
                session: Session::AfterHours,
            });
        }
        Calendar {
            utc_offset_min: -300,
            zone_label: "ET".into(),
            windows,
            closed_days: Vec::new(),
        }
    }

    fn local(&self, market_ms: i64) -> i64 {
        market_ms + i64::from(self.utc_offset_min) * MIN_MS
    }

    /// The local calendar day number (days since 1970-01-01) of a market time.
    pub fn local_day(&self, market_ms: i64) -> i64 {
        self.local(market_ms).div_euclid(DAY_MS)
    }

    /// The local date of a market time as `yyyymmdd`, the key of daily snapshots.
    pub fn day_key(&self, market_ms: i64) -> i64 {
        let (y, m, d) = civil_from_days(self.local_day(market_ms));
        y * 10_000 + i64::from(m) * 100 + i64::from(d)
    }

    /// The window open at a market time, if any.
    fn window_at(&self, market_ms: i64) -> Option<(i64, &Window)> {
        let local = self.local(market_ms);
        let day = local.div_euclid(DAY_MS);
        if self.closed_days.contains(&day) {
            return None;
        }
        let minute = (local.rem_euclid(DAY_MS) / MIN_MS) as u32;
        let weekday = weekday_of(day);
        self.windows
            .iter()
            .find(|w| w.weekday == weekday && w.start_min <= minute && minute < w.end_min)
            .map(|w| (day, w))
    }

    /// The session at a market time.
    pub fn session_at(&self, market_ms: i64) -> Session {
        self.window_at(market_ms)
            .map_or(Session::Closed, |(_, w)| w.session)
    }

    /// When the current window ends (market ms), if one is open.
    pub fn window_end(&self, market_ms: i64) -> Option<i64> {
        self.window_at(market_ms).map(|(day, w)| {
            day * DAY_MS + i64::from(w.end_min) * MIN_MS - i64::from(self.utc_offset_min) * MIN_MS
        })
    }

    /// The next start (strictly after `market_ms`, within 30 days) of a window whose session
    /// is one of `wanted`, in market ms.
    pub fn next_start(&self, market_ms: i64, wanted: &[Session]) -> Option<i64> {
        let offset = i64::from(self.utc_offset_min) * MIN_MS;
        let first_day = self.local_day(market_ms);
        for day in first_day..first_day + 30 {
            if self.closed_days.contains(&day) {
                continue;
            }
            let weekday = weekday_of(day);
            let mut starts: Vec<i64> = self
                .windows
                .iter()
                .filter(|w| w.weekday == weekday && wanted.contains(&w.session))
                .map(|w| day * DAY_MS + i64::from(w.start_min) * MIN_MS - offset)
                .filter(|&t| t > market_ms)
                .collect();
            starts.sort_unstable();
            if let Some(&t) = starts.first() {
                return Some(t);
            }
        }
        None
    }

    /// The next time orders are accepted at all (any session but closed).
    pub fn next_open(&self, market_ms: i64) -> Option<i64> {
        self.next_start(
            market_ms,
            &[Session::PreMarket, Session::Regular, Session::AfterHours],
        )
    }

    /// A local time as `HH:MM`, with the weekday when it is not the same local day as `now`.
    pub fn format_time(&self, at_ms: i64, now_ms: i64) -> String {
        let local = self.local(at_ms);
        let minutes = local.rem_euclid(DAY_MS) / MIN_MS;
        let hm = format!("{:02}:{:02}", minutes / 60, minutes % 60);
        if self.local_day(at_ms) == self.local_day(now_ms) {
            format!("{hm} {}", self.zone_label)
        } else {
            const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
            let name = NAMES[usize::from(weekday_of(self.local_day(at_ms)))];
            format!("{name} {hm} {}", self.zone_label)
        }
    }

    /// The world clock line: "OPEN - closes 16:00 ET", "CLOSED - opens Mon 04:00 ET".
    pub fn clock_text(&self, market_ms: i64) -> String {
        let session = self.session_at(market_ms);
        match session {
            Session::Closed => match self.next_open(market_ms) {
                Some(t) => format!("CLOSED - opens {}", self.format_time(t, market_ms)),
                None => "CLOSED".to_string(),
            },
            _ => match self.window_end(market_ms) {
                Some(t) => format!(
                    "{} - closes {}",
                    session.label(),
                    self.format_time(t, market_ms)
                ),
                None => session.label().to_string(),
            },
        }
    }
}

/// A game's clock: market time runs `speed` times faster than real time from an origin and
/// stands still while paused. Tick `n` is due at `origin_real + n * tick_ms` real time and
/// stands for market time `origin_market + n * tick_ms * speed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GameClock {
    pub origin_real: i64,
    pub origin_market: i64,
    /// Market milliseconds per real millisecond (1 = real time, 24 = a day per real hour).
    pub speed: i64,
    pub tick_ms: i64,
    /// Set while paused: the real time the pause began.
    pub paused_at: Option<i64>,
}

impl GameClock {
    /// The market time at real time `now`.
    pub fn market_at(&self, now_real: i64) -> i64 {
        let now = self.paused_at.map_or(now_real, |p| p.min(now_real));
        self.origin_market + (now - self.origin_real).max(0) * self.speed
    }

    /// The market time tick `n` stands for.
    pub fn tick_market_at(&self, tick: i64) -> i64 {
        self.origin_market + tick * self.tick_ms * self.speed
    }

    /// The real time tick `n` is due.
    pub fn tick_due(&self, tick: i64) -> i64 {
        self.origin_real + tick * self.tick_ms
    }

    /// The last tick due at real time `now` (none while paused).
    pub fn due_tick(&self, now_real: i64) -> i64 {
        let now = self.paused_at.map_or(now_real, |p| p.min(now_real));
        if self.tick_ms <= 0 {
            return 0;
        }
        (now - self.origin_real).max(0) / self.tick_ms
    }

    /// A market time converted back to the real time it will be reached (not paused).
    pub fn real_at(&self, market_ms: i64) -> i64 {
        self.origin_real + (market_ms - self.origin_market) / self.speed.max(1)
    }
}

/// Why an order is refused by the calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SessionClosed {
    /// The session in force now.
    pub session: Session,
    /// When an order like this will next be accepted (market ms), if the calendar has one.
    pub next_open: Option<i64>,
    /// The refusal for the player, e.g. "the market is closed; it opens Mon 04:00 ET".
    pub message: String,
}

/// Checks an order against the calendar at market time `market_ms`: nothing is accepted when
/// closed, and market orders only in the regular session (the notes' after-hours rule).
pub fn check_session(
    calendar: &Calendar,
    market_ms: i64,
    is_market_order: bool,
) -> Result<Session, SessionClosed> {
    let session = calendar.session_at(market_ms);
    match session {
        Session::Regular => Ok(session),
        Session::PreMarket | Session::AfterHours if !is_market_order => Ok(session),
        Session::PreMarket | Session::AfterHours => {
            let next = calendar.next_start(market_ms, &[Session::Regular]);
            let when = next.map_or_else(String::new, |t| {
                format!("; they return {}", calendar.format_time(t, market_ms))
            });
            Err(SessionClosed {
                session,
                next_open: next,
                message: format!(
                    "market orders are not taken {}{when}",
                    match session {
                        Session::PreMarket => "before the open",
                        _ => "after hours",
                    }
                ),
            })
        }
        Session::Closed => {
            let next = calendar.next_open(market_ms);
            let when = next.map_or_else(String::new, |t| {
                format!("; it opens {}", calendar.format_time(t, market_ms))
            });
            Err(SessionClosed {
                session,
                next_open: next,
                message: format!("the market is closed{when}"),
            })
        }
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Weekday of a day number, 0 = Monday (1970-01-01 was a Thursday).
pub fn weekday_of(day: i64) -> u8 {
    (day + 3).rem_euclid(7) as u8
}

/// Day number from a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date from a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses `YYYY-MM-DD` into a day number.
pub fn parse_date(s: &str) -> Option<i64> {
    let mut parts = s.trim().split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Parses `HH:MM` into minutes after midnight (24:00 allowed as the end of a day).
pub fn parse_hm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
}

/// Parses a weekday name (`mon` … `sun`, any case).
pub fn parse_weekday(s: &str) -> Option<u8> {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let s = s.trim().to_ascii_lowercase();
    NAMES.iter().position(|n| s.starts_with(n)).map(|i| i as u8)
}

/// The market time of a local date and time in the calendar's zone.
pub fn market_ms_of(calendar: &Calendar, day: i64, minute: u32) -> i64 {
    day * DAY_MS + i64::from(minute) * MIN_MS - i64::from(calendar.utc_offset_min) * MIN_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monday() -> i64 {
        // 2026-11-23 is a Monday.
        days_from_civil(2026, 11, 23)
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(weekday_of(monday()), 0);
        assert_eq!(civil_from_days(monday()), (2026, 11, 23));
        assert_eq!(parse_date("2026-11-23"), Some(monday()));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_hm("09:30"), Some(570));
        assert_eq!(parse_weekday("Friday"), Some(4));
    }

    #[test]
    fn sessions_follow_the_new_york_day() {
        let cal = Calendar::new_york();
        let at = |min| market_ms_of(&cal, monday(), min);
        assert_eq!(cal.session_at(at(200)), Session::Closed);
        assert_eq!(cal.session_at(at(300)), Session::PreMarket);
        assert_eq!(cal.session_at(at(600)), Session::Regular);
        assert_eq!(cal.session_at(at(1000)), Session::AfterHours);
        assert_eq!(cal.session_at(at(1300)), Session::Closed);
        assert_eq!(cal.clock_text(at(600)), "OPEN - closes 16:00 ET");
        assert_eq!(cal.clock_text(at(1000)), "AFTER HOURS - closes 20:00 ET");
        assert_eq!(cal.clock_text(at(100)), "CLOSED - opens 04:00 ET");
        let saturday = market_ms_of(&cal, monday() + 5, 600);
        assert_eq!(cal.session_at(saturday), Session::Closed);
        assert_eq!(cal.clock_text(saturday), "CLOSED - opens Mon 04:00 ET");
        assert_eq!(cal.day_key(at(600)), 20261123);
    }

    #[test]
    fn closed_days_are_skipped() {
        let mut cal = Calendar::new_york();
        cal.closed_days.push(monday());
        let at = market_ms_of(&cal, monday(), 600);
        assert_eq!(cal.session_at(at), Session::Closed);
        assert_eq!(
            cal.next_open(at),
            Some(market_ms_of(&cal, monday() + 1, 240))
        );
    }

    #[test]
    fn check_session_refuses_with_the_next_opening() {
        let cal = Calendar::new_york();
        let at = |min| market_ms_of(&cal, monday(), min);
        assert!(check_session(&cal, at(600), true).is_ok());
        assert!(check_session(&cal, at(1000), false).is_ok());
        let err = check_session(&cal, at(1000), true).unwrap_err();
        assert_eq!(err.next_open, Some(market_ms_of(&cal, monday() + 1, 570)));
        let err = check_session(&cal, at(1300), false).unwrap_err();
        assert_eq!(err.session, Session::Closed);
        assert_eq!(err.next_open, Some(market_ms_of(&cal, monday() + 1, 240)));
        assert!(err.message.contains("Tue 04:00 ET"), "{}", err.message);
    }

    #[test]
    fn the_accelerated_clock_pauses() {
        let mut clock = GameClock {
            origin_real: 1000,
            origin_market: 0,
            speed: 60,
            tick_ms: 100,
            paused_at: None,
        };
        assert_eq!(clock.market_at(2000), 60_000);
        assert_eq!(clock.due_tick(2050), 10);
        assert_eq!(clock.tick_market_at(10), 60_000);
        clock.paused_at = Some(1500);
        assert_eq!(clock.market_at(5000), 30_000);
        assert_eq!(clock.due_tick(5000), 5);
    }
}
