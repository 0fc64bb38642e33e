//! Which game the door plays: the newest open game, or a default season created on the spot.
//!
//! Until the market simulation (issue 6) owns seasons (start and end dates, market makers,
//! news), the door makes sure there is something to trade: when no game is open it creates
//! "Season 1"-style game with the default rules and the satirical '80s listings of
//! `text/instruments.txt`. Two doors starting at the very same moment on an empty database may
//! each create one; both then play the newest, and the older stays empty (a known limit that
//! goes away when the simulation creates seasons).

use crate::exchange::{Exchange, ExchangeError, Game, GameRules, NewInstrument};

/// The default listings: `SYMBOL | name | price cents | shares | tick cents | profile`.
const LISTINGS: &str = include_str!("text/instruments.txt");

/// One listing from the data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub symbol: String,
    pub name: String,
    pub price: i64,
    pub shares: i64,
    pub tick: i64,
    pub profile: String,
}

/// The listings of the data file; a malformed line is a bug in the file, reported by line.
pub fn listings() -> Result<Vec<Listing>, String> {
    let mut out = Vec::new();
    for (i, line) in LISTINGS.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        let bad = || format!("text/instruments.txt line {}: {line:?}", i + 1);
        if f.len() != 6 {
            return Err(bad());
        }
        out.push(Listing {
            symbol: f[0].to_string(),
            name: f[1].to_string(),
            price: f[2].parse().map_err(|_| bad())?,
            shares: f[3].parse().map_err(|_| bad())?,
            tick: f[4].parse().map_err(|_| bad())?,
            profile: f[5].to_string(),
        });
    }
    Ok(out)
}

/// The rules of a default season: the exchange's defaults with a 0.1% taker fee.
pub fn default_rules() -> GameRules {
    GameRules {
        fee_bp: 10,
        ..GameRules::default()
    }
}

/// The newest open game, creating the default season when there is none.
pub async fn current_game(ex: &Exchange) -> Result<Game, ExchangeError> {
    if let Some(game) = ex.games().await?.into_iter().find(|g| g.open) {
        return Ok(game);
    }
    let number = ex.games().await?.len() + 1;
    let game = ex
        .create_game(&format!("Season {number}: Greed Is Good"), &default_rules())
        .await?;
    // The file is checked by a unit test; should it still be broken, the season opens with
    // what could be read rather than not at all.
    let listings = listings().unwrap_or_else(|e| {
        tracing::error!(error = %e, "bad listings file");
        Vec::new()
    });
    for l in &listings {
        ex.list_instrument(
            game.id,
            &NewInstrument {
                symbol: &l.symbol,
                name: &l.name,
                profile: &l.profile,
                tick: l.tick,
                shares_issued: l.shares,
                initial_price: l.price,
            },
        )
        .await?;
    }
    tracing::info!(game = game.id, "created the default season");
    Ok(game)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_parse_and_are_on_the_tick() {
        let l = listings().unwrap();
        assert!(l.len() >= 6);
        for x in &l {
            assert_eq!(x.price % x.tick, 0, "{}", x.symbol);
            assert!(
                x.symbol.len() <= 4,
                "{} must fit the 40-column board",
                x.symbol
            );
            assert!(x.profile.len() <= 78, "{}", x.symbol);
        }
    }
}
