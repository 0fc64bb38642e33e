//! When reminders go out and what they say, as pure functions of the season's dates.
//!
//! No I/O and no clock: `lifecycle` turns the schedule into jobs and passes `now` in.

/// One reminder of a season.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reminder {
    /// Its place among the season's reminders, longest offset first (0, 1, 2, ...).
    pub index: usize,
    /// How long before the end it goes out, in ms.
    pub offset_ms: i64,
    /// When it goes out (ms since the epoch).
    pub at: i64,
}

/// The reminders of a season ending at `ends_at`: one per positive offset, longest first,
/// leaving out any that would fall before the season starts. Duplicate offsets count once.
pub fn reminder_schedule(starts_at: i64, ends_at: i64, offsets_ms: &[i64]) -> Vec<Reminder> {
    let mut offsets: Vec<i64> = offsets_ms.iter().copied().filter(|o| *o > 0).collect();
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    offsets.dedup();
    offsets
        .into_iter()
        .enumerate()
        .filter_map(|(index, offset_ms)| {
            let at = ends_at.checked_sub(offset_ms)?;
            (at >= starts_at).then_some(Reminder {
                index,
                offset_ms,
                at,
            })
        })
        .collect()
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A span of time the way a person says it: "7 days", "1 day", "23 hours", "1 hour",
/// "5 minutes", "less than a minute" (rounded down to the largest whole unit).
pub fn human_span(ms: i64) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if ms >= DAY {
        plural(ms / DAY, "day")
    } else if ms >= HOUR {
        plural(ms / HOUR, "hour")
    } else if ms >= MINUTE {
        plural(ms / MINUTE, "minute")
    } else {
        "less than a minute".to_string()
    }
}

/// The subject and body of a reminder sent at `now` for a season called `game` ending at
/// `ends_at`.
pub fn reminder_text(game: &str, ends_at: i64, now: i64) -> (String, String) {
    let left = human_span(ends_at.saturating_sub(now));
    let subject = format!("Season ends in {left}");
    let body = format!(
        "{game} closes for good in {left}.\n\
         When the bell rings, trading freezes and the final leaderboard is taken. Holdings \
         are marked at a price no last-minute trade can pump, so square up the honest way.\n\
         Greed is good. Timing is better.\n- The Exchange"
    );
    (subject, body)
}

/// The subject and body of the mail telling a player how a season ended for them.
pub fn final_text(game: &str, rank: i64, of: usize, net_worth_cents: i64) -> (String, String) {
    let dollars = net_worth_cents / 100;
    let cents = (net_worth_cents % 100).abs();
    let sign = if net_worth_cents < 0 { "-" } else { "" };
    let subject = format!("Final standings: #{rank} of {of}");
    let body = format!(
        "{game} is over and the books are closed.\n\
         You finished #{rank} of {of} with a net worth of {sign}${}.{cents:02}.\n\
         A new season opens with fresh accounts; this one stays on the record.\n- The Exchange",
        dollars.abs()
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_offsets_make_three_reminders_longest_first() {
        let end = 30 * DAY;
        let s = reminder_schedule(0, end, &[HOUR, 7 * DAY, DAY]);
        let at: Vec<(usize, i64)> = s.iter().map(|r| (r.index, r.at)).collect();
        assert_eq!(at, vec![(0, 23 * DAY), (1, 29 * DAY), (2, end - HOUR)]);
    }

    #[test]
    fn reminders_before_the_start_are_left_out() {
        // A two-day season gets no seven-day reminder but keeps its index numbering.
        let s = reminder_schedule(0, 2 * DAY, &[7 * DAY, DAY, HOUR, 0, -5, DAY]);
        let idx: Vec<usize> = s.iter().map(|r| r.index).collect();
        assert_eq!(idx, vec![1, 2]);
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(human_span(7 * DAY), "7 days");
        assert_eq!(human_span(DAY + 5 * HOUR), "1 day");
        assert_eq!(human_span(HOUR), "1 hour");
        assert_eq!(human_span(23 * HOUR + 59 * MINUTE), "23 hours");
        assert_eq!(human_span(2 * MINUTE), "2 minutes");
        assert_eq!(human_span(5), "less than a minute");
    }

    #[test]
    fn texts_fit_the_inbox_limits() {
        let (s, b) = reminder_text("Season 3: Greed Is Good", 7 * DAY, 0);
        assert_eq!(s, "Season ends in 7 days");
        assert!(b.starts_with("Season 3: Greed Is Good closes for good in 7 days."));
        assert!(crate::inbox::validate(&s, &b).is_ok());
        let (s, b) = final_text("S", 2, 9, -1_205);
        assert_eq!(s, "Final standings: #2 of 9");
        assert!(b.contains("-$12.05"), "{b}");
    }
}
