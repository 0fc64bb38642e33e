//! The headline table: satirical '80s headlines from `headlines.toml`, compiled in.
//!
//! Owns parsing the table and filling a headline in for an instrument. It does no I/O and
//! draws no random numbers itself: callers pass the index they drew.

use std::sync::OnceLock;

use serde::Deserialize;

/// The tone of a headline: it decides the sign of its fair-value jump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    EarningsGood,
    EarningsBad,
}

/// The parsed table.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Headlines {
    pub good: Vec<String>,
    pub bad: Vec<String>,
    pub earnings_good: Vec<String>,
    pub earnings_bad: Vec<String>,
}

const TABLE: &str = include_str!("headlines.toml");

/// The compiled-in table. A table that fails to parse (caught by a unit test) leaves every
/// list empty, and [`Headlines::pick`] then falls back to a plain headline.
pub fn headlines() -> &'static Headlines {
    static CELL: OnceLock<Headlines> = OnceLock::new();
    CELL.get_or_init(|| toml::from_str(TABLE).unwrap_or_default())
}

impl Headlines {
    fn list(&self, tone: Tone) -> &[String] {
        match tone {
            Tone::Good => &self.good,
            Tone::Bad => &self.bad,
            Tone::EarningsGood => &self.earnings_good,
            Tone::EarningsBad => &self.earnings_bad,
        }
    }

    /// How many headlines a tone has.
    pub fn count(&self, tone: Tone) -> usize {
        self.list(tone).len()
    }

    /// The headline at `index` (modulo the list) with the instrument filled in.
    pub fn pick(&self, tone: Tone, index: usize, symbol: &str, name: &str) -> String {
        let list = self.list(tone);
        let template = match list.get(index % list.len().max(1)) {
            Some(t) => t.as_str(),
            None => match tone {
                Tone::Good | Tone::EarningsGood => "{name} ({symbol}) rallies on good news",
                Tone::Bad | Tone::EarningsBad => "{name} ({symbol}) slides on bad news",
            },
        };
        template.replace("{symbol}", symbol).replace("{name}", name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_fills_in() {
        let h: Headlines = toml::from_str(TABLE).expect("headlines.toml parses");
        assert!(h.good.len() >= 5 && h.bad.len() >= 5);
        assert!(!h.earnings_good.is_empty() && !h.earnings_bad.is_empty());
        let line = headlines().pick(Tone::Bad, 0, "JUNK", "Junk Bond Kings");
        assert!(line.contains("Junk Bond Kings"), "{line}");
        assert!(!line.contains('{'));
    }
}
