//! NuggetNet BBS: a serial/modem-native bulletin board system whose flagship door is the
//! NuggetNet trading game.
//!
//! The crate is layered; a layer imports only the layers below it (see `ARCHITECTURE.md`):
//!
//! ```text
//! bench, cli (binary)                 wiring and load tools
//! session                             one caller's flow: lobby, detection, login, menus
//! door, dropfile                      door programs bridged to a caller; their dropfiles
//! node                                the fixed pool of nodes, status registry, node messages
//! transport, serial, modem            bytes in and out: telnet/raw TCP listeners, serial lines, Hayes
//! telnet, terminal                    pure protocol and presentation cores (no I/O, no clock)
//! exchange                            the order book and its rules (pure engine + store calls)
//! store                               the database: the only module that knows SQL
//! config                              the configuration file
//! ```
#![forbid(unsafe_code)]

pub mod bench;
pub mod config;
pub mod door;
pub mod dropfile;
pub mod exchange;
pub mod game;
pub mod inbox;
pub mod jobs;
pub mod lifecycle;
pub mod market;
pub mod modem;
pub mod node;
pub mod serial;
pub mod server;
pub mod session;
pub mod store;
pub mod telnet;
pub mod terminal;
pub mod transport;
