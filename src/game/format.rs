//! Numbers as the game shows them and reads them back: money, prices, changes, volumes and
//! quantities, in a full form for wide screens and a compact one for 40 columns.
//!
//! Pure text helpers; they know nothing of charsets (the terminal layer encodes) or of the
//! exchange beyond integer cents.

use crate::exchange::Cents;

/// Money with a dollar sign and thousands separators: `$1,234.56`; on narrow screens whole
/// dollars from $10,000 up (`$12,345`), so the status line fits 40 columns.
pub fn money(cents: i64, narrow: bool) -> String {
    if narrow && cents.unsigned_abs() >= 1_000_000 {
        return dollars(cents);
    }
    Cents(cents).to_string()
}

/// Whole dollars, the cents dropped: `$9,959`.
pub fn dollars(cents: i64) -> String {
    let full = Cents(cents - cents % 100).to_string();
    full.trim_end_matches(".00").to_string()
}

/// A price without the dollar sign: `12.50`.
pub fn price(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A price that fits `width` columns: `1234.56`, else whole dollars, else `*`s.
pub fn price_fit(cents: i64, width: usize) -> String {
    let full = price(cents);
    if full.len() <= width {
        return full;
    }
    let whole = (cents / 100).to_string();
    if whole.len() <= width {
        return whole;
    }
    "*".repeat(width)
}

/// A signed change: `+0.25`, `-1.00`, `0.00`.
pub fn change(cents: i64) -> String {
    if cents > 0 {
        format!("+{}", price(cents))
    } else {
        price(cents)
    }
}

/// A share count that fits `width` columns: `12345`, `123K`, `12.3M`.
pub fn volume(n: i64, width: usize) -> String {
    let plain = n.to_string();
    if plain.len() <= width {
        return plain;
    }
    let candidates = [
        format!("{}K", n / 1_000),
        format!("{:.1}M", n as f64 / 1e6),
        format!("{}M", n / 1_000_000),
        format!("{}B", n / 1_000_000_000),
    ];
    candidates
        .into_iter()
        .find(|c| c.len() <= width)
        .unwrap_or_else(|| "*".repeat(width))
}

/// A quantity with thousands separators: `1,500`.
pub fn qty(n: i64) -> String {
    crate::exchange::thousands(n)
}

/// What was wrong with a typed number; the text is shown to the player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput(pub String);

/// The largest quantity the screens accept (the exchange has its own limit too).
pub const MAX_QTY: i64 = 9_999_999;

/// Reads a share quantity: digits, optionally with commas.
pub fn parse_qty(text: &str) -> Result<i64, BadInput> {
    let t: String = text.trim().chars().filter(|&c| c != ',').collect();
    if t.contains('.') {
        return Err(BadInput(format!(
            "{:?} is not a number of shares: whole shares only, like 100",
            text.trim()
        )));
    }
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit()) {
        return Err(BadInput(format!(
            "{:?} is not a number of shares: type digits only, like 100",
            text.trim()
        )));
    }
    let n: i64 = t
        .parse()
        .map_err(|_| BadInput(format!("at most {} shares at a time", qty(MAX_QTY))))?;
    if n == 0 {
        return Err(BadInput("the quantity must be at least 1 share".into()));
    }
    if n > MAX_QTY {
        return Err(BadInput(format!(
            "at most {} shares at a time",
            qty(MAX_QTY)
        )));
    }
    Ok(n)
}

/// Reads a price in dollars: `12`, `12.5`, `12.50` or `$12.50`, and checks it against the
/// instrument's tick.
pub fn parse_price(text: &str, tick: i64) -> Result<i64, BadInput> {
    let t = text.trim().trim_start_matches('$');
    let bad = || {
        BadInput(format!(
            "{:?} is not a price: type dollars and cents, like 12.50",
            text.trim()
        ))
    };
    let (dollars, cents) = match t.split_once('.') {
        Some((d, c)) => (d, c),
        None => (t, ""),
    };
    if (dollars.is_empty() && cents.is_empty())
        || !dollars.chars().all(|c| c.is_ascii_digit())
        || !cents.chars().all(|c| c.is_ascii_digit())
        || dollars.len() > 7
    {
        return Err(bad());
    }
    if cents.len() > 2 {
        return Err(BadInput("prices have at most two decimals (cents)".into()));
    }
    let d: i64 = if dollars.is_empty() {
        0
    } else {
        dollars.parse().map_err(|_| bad())?
    };
    let c: i64 = match cents.len() {
        0 => 0,
        1 => cents.parse::<i64>().map_err(|_| bad())? * 10,
        _ => cents.parse().map_err(|_| bad())?,
    };
    let value = d * 100 + c;
    if value <= 0 {
        return Err(BadInput("the price must be above zero".into()));
    }
    if tick > 0 && value % tick != 0 {
        let below = value - value % tick;
        let above = below + tick;
        let hint = if below > 0 {
            format!("try {} or {}", price(below), price(above))
        } else {
            format!("try {}", price(above))
        };
        return Err(BadInput(format!(
            "prices move in steps of {}: {hint}",
            price(tick)
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_prices() {
        assert_eq!(money(1_000_000, false), "$10,000.00");
        assert_eq!(money(1_000_050, true), "$10,000");
        assert_eq!(money(99_950, true), "$999.50");
        assert_eq!(price(1250), "12.50");
        assert_eq!(change(25), "+0.25");
        assert_eq!(change(-100), "-1.00");
        assert_eq!(price_fit(123_456, 6), "1234");
        assert_eq!(volume(123_456, 5), "123K");
        assert_eq!(volume(12_345_678, 5), "12.3M");
        assert_eq!(qty(1500), "1,500");
        assert_eq!(qty(-1500), "-1,500");
    }

    #[test]
    fn typed_numbers_are_checked() {
        assert_eq!(parse_qty("1,000"), Ok(1000));
        assert!(parse_qty("0").unwrap_err().0.contains("at least 1"));
        assert!(parse_qty("ten").unwrap_err().0.contains("digits"));
        assert!(parse_qty("11.05").unwrap_err().0.contains("whole shares"));
        assert_eq!(parse_price("$12.5", 5), Ok(1250));
        assert_eq!(parse_price("12", 5), Ok(1200));
        assert!(parse_price("12.53", 5)
            .unwrap_err()
            .0
            .contains("12.50 or 12.55"));
        assert!(parse_price("0", 5).unwrap_err().0.contains("above zero"));
        assert!(parse_price("1.234", 1)
            .unwrap_err()
            .0
            .contains("two decimals"));
        assert!(parse_price("abc", 1).unwrap_err().0.contains("not a price"));
    }
}
