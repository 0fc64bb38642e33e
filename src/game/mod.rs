//! NuggetNet, the door: the satirical 1980s trading game played through a BBS.
//!
//! Owns the door side (`nuggetnet door --dropfile PATH`: dropfile, caller I/O on stdio or an
//! inherited socket, player identity, joining the current game, time and carrier limits) and
//! the game's screens (market board with live updates, quote with a chart, order entry, open
//! orders, portfolio, tape, leaderboard, help), each described once and shown at 40 columns
//! ATASCII, 80 columns ANSI or in plain ASCII.
//!
//! Layering: the game sits beside `session`, never on it. It uses `terminal` (screens, keys,
//! line editing), `transport` (the connection and telnet), `dropfile`, `store` (players and
//! read-only board queries) and `exchange` (every trade). It must not depend on `session` or
//! `node`, and it never writes to the exchange's tables except through [`crate::exchange`].
//!
//! Code map:
//! - [`door`]: the entry point and the identity, charset and telnet rules.
//! - [`app`]: the flow between screens; orders are sent only after confirmation.
//! - [`screens`]: pure screen builders; [`live`]: changed-cell updates of the board.
//! - [`term`]: the caller's terminal with deadline, idle and hang-up handling.
//! - [`season`]: the current game, or a default season with the `text/instruments.txt` listings.
//! - [`format`](mod@format): money, prices and typed numbers.
//! - [`mail`]: the inbox screens (list, message, compose); mail itself is [`crate::inbox`].

pub mod app;
pub mod door;
pub mod format;
pub mod live;
pub mod mail;
pub mod screens;
pub mod season;
pub mod term;

pub use door::{read_dropfile, run, DoorEnd, DoorIo, DoorOptions};

/// Why the door could not run a call.
#[derive(Debug, thiserror::Error)]
pub enum GameError {
    /// The dropfile is missing or malformed (the message names the file and the line).
    #[error(transparent)]
    Dropfile(#[from] crate::dropfile::DropfileError),
    /// The database or the exchange failed.
    #[error("exchange: {0}")]
    Exchange(#[from] crate::exchange::ExchangeError),
    /// The caller's connection could not be set up.
    #[error("caller i/o: {0}")]
    Io(std::io::Error),
}
