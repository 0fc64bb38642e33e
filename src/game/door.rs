//! `nuggetnet door`: the game as a door program started by a BBS with a dropfile.
//!
//! Reads the dropfile (through [`crate::dropfile`]), talks to the caller on standard input
//! and output (DOOR32 comm type 0, or any dropfile whose comm port is local) or on an inherited
//! socket (comm type 2; the binary adopts the descriptor and hands it here as a
//! [`std::net::TcpStream`]), finds or creates the player, joins the current game and runs it.
//!
//! **Player identity.** A player is `(system, handle)`. `system` is `--system` when given,
//! else the dropfile's BBS name (DORINFO and DOOR.SYS carry one), else the BBS software named
//! in DOOR32.SYS line 4 without its version (`Synchronet BBS for Linux Version 3.19` →
//! `Synchronet BBS for Linux`), else `local`. `handle` is the alias, else the real name.
//!
//! **Charset.** ANSI when the dropfile says ANSI (or Avatar/RIP/Max); ATASCII when the
//! NuggetNet extension line says so or `--atascii` is given; plain ASCII otherwise, switching to
//! ATASCII if the caller's first line end is 0x9B.
//!
//! **Telnet.** On stdio bytes pass untouched (the BBS does telnet). On a socket the default is
//! raw with autodetection ([`TelnetMode::RawAutodetect`]: Synchronet's passthru socket has
//! telnet stripped already, and a peer whose first byte is IAC is switched to telnet);
//! `--telnet` parses and escapes telnet from the start, for BBSes that hand over the
//! caller's own telnet socket. The socket is never shut down, only closed.
//!
//! **Ending.** The call ends on time-out (time left from the dropfile), idle, EOF or a write
//! error, SIGHUP or SIGTERM, each within a second; orders are only placed after a
//! confirmation and each is one exchange transaction, so nothing is left half-done.
//!
//! **Deferred work.** A door in its own process runs a job runner for the length of the call
//! (mail delivery, season reminders and ends; see [`crate::jobs`]) on the default `[season]`
//! settings, like the market calendar it checks.

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dropfile::{self, DropInfo, Emulation};
use crate::exchange::{Exchange, ExchangeError};
use crate::store::players;
use crate::terminal::out::Style;
use crate::terminal::{Caps, Charset};
use crate::transport::connection::Connection;

/// Database connections a door process keeps at most.
const DOOR_POOL: u32 = 2;
use crate::transport::{Stream, TelnetMode};

use super::app::App;
use super::screens;
use super::term::{GameTerm, Stop};
use super::GameError;

/// Everything `nuggetnet door` is told on its command line.
#[derive(Debug, Clone)]
pub struct DoorOptions {
    pub dropfile: PathBuf,
    /// The database URL (from the config file).
    pub database_url: String,
    /// The order writer's socket, if the BBS runs one (orders go there; see
    /// [`crate::exchange::writer`]).
    pub writer: Option<PathBuf>,
    /// Serve ATASCII at 40 columns whatever the dropfile says.
    pub atascii: bool,
    /// Parse telnet on an inherited socket from the start.
    pub telnet: bool,
    /// The system players are namespaced by, instead of the one the dropfile names.
    pub system: Option<String>,
    /// Idle time-out.
    pub idle: Duration,
}

/// How the door reaches its caller.
pub enum DoorIo {
    /// Standard input and output.
    Stdio,
    /// An inherited, already adopted socket.
    Socket(std::net::TcpStream),
    /// A byte stream inside the BBS (the game mounted in-process, e.g. for rlogin links):
    /// raw bytes, no telnet.
    Stream(Box<dyn Stream>),
}

/// How a door call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorEnd {
    Quit,
    Hangup,
    TimeUp,
    Idle,
    Signal,
}

impl From<Stop> for DoorEnd {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Quit => DoorEnd::Quit,
            Stop::Hangup => DoorEnd::Hangup,
            Stop::TimeUp => DoorEnd::TimeUp,
            Stop::Idle => DoorEnd::Idle,
            Stop::Signal => DoorEnd::Signal,
        }
    }
}

/// Reads the dropfile; errors name the file and the line.
pub fn read_dropfile(path: &std::path::Path) -> Result<DropInfo, GameError> {
    Ok(dropfile::read(path)?)
}

/// The system a player from this dropfile belongs to (see the module docs).
pub fn system_of(info: &DropInfo, forced: Option<&str>) -> String {
    if let Some(s) = forced.map(str::trim).filter(|s| !s.is_empty()) {
        return s.to_string();
    }
    if !info.bbs_name.trim().is_empty() {
        return info.bbs_name.trim().to_string();
    }
    let words: Vec<&str> = info
        .bbs_software
        .split_whitespace()
        .take_while(|w| {
            !w.eq_ignore_ascii_case("version")
                && !w.eq_ignore_ascii_case("v")
                && !w.chars().any(|c| c.is_ascii_digit())
        })
        .collect();
    if words.is_empty() {
        "local".to_string()
    } else {
        words.join(" ")
    }
}

/// The caller's terminal as the dropfile (and `--atascii`) describe it; the second value says
/// whether a 0x9B line end may still switch it to ATASCII.
pub fn caps_of(info: &DropInfo, atascii: bool) -> (Caps, bool) {
    if atascii || info.emulation == Emulation::Atascii {
        let base = Caps::for_charset(Charset::Atascii);
        // The extension line may give a size; the Atari default is 40x24.
        let caps = if info.emulation == Emulation::Atascii {
            base.with_size(info.width, info.height)
        } else {
            base
        };
        return (caps, false);
    }
    if info.emulation.is_ansi() {
        let caps = Caps::for_charset(Charset::Ansi).with_size(info.width, info.height);
        return (caps, false);
    }
    let caps = Caps::for_charset(Charset::Ascii).with_size(info.width, info.height);
    (caps, true)
}

/// Runs one door call to its end.
pub async fn run(opts: &DoorOptions, info: &DropInfo, io: DoorIo) -> Result<DoorEnd, GameError> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(u64::from(info.minutes_left.max(1)) * 60);
    let (caps, detect) = caps_of(info, opts.atascii);
    // A door in a process of its own also carries out deferred work (mail delivery, season
    // reminders and ends) while its call lasts, so a BBS that runs only doors still gets it;
    // mounted inside `serve`, the server's job runner does it.
    let run_jobs = !matches!(io, DoorIo::Stream(_));
    let (stream, telnet, is_socket): (Box<dyn Stream>, TelnetMode, bool) = match io {
        DoorIo::Stdio => (Box::new(stdio()?), TelnetMode::Never, false),
        DoorIo::Socket(s) => {
            s.set_nonblocking(true).map_err(GameError::Io)?;
            let s = tokio::net::TcpStream::from_std(s).map_err(GameError::Io)?;
            let mode = if opts.telnet {
                TelnetMode::Negotiate
            } else {
                TelnetMode::RawAutodetect
            };
            (Box::new(s), mode, true)
        }
        DoorIo::Stream(s) => (s, TelnetMode::Never, true),
    };
    let _raw = RawMode::enter(!is_socket);
    let mut conn = Connection::new(stream, telnet, None);
    conn.start().await.map_err(GameError::Io)?;
    let stop = CancellationToken::new();
    spawn_signal_watch(stop.clone())?;
    let mut term = GameTerm::new(conn, caps, deadline, opts.idle, stop, detect);

    let setup = async {
        // One caller's door needs few connections (its screens, the event and news followers,
        // the job runner), and on PostgreSQL every door's connections count against the
        // server's max_connections (plus one LISTEN connection per door).
        let mut ex = Exchange::connect(&opts.database_url, DOOR_POOL).await?;
        if let Some(path) = &opts.writer {
            ex = ex.with_writer(path);
        }
        let system = system_of(info, opts.system.as_deref());
        let handle = info.display_name().trim().to_string();
        let player = players::find_or_create(ex.db(), &system, &handle)
            .await
            .map_err(ExchangeError::from)?;
        tracing::info!(player = player.id, %system, %handle, "door call");
        let game = super::season::current_game(&ex).await?;
        let new_player = match ex.open_account(game.id, player.id).await {
            Ok(_) => true,
            Err(ExchangeError::AccountExists) => false,
            Err(e) => return Err(e),
        };
        Ok((ex, player, game, new_player))
    };
    let (ex, player, game, new_player) = match setup.await {
        Ok(v) => v,
        Err(e) => {
            // The caller hears something before the door exits with the error.
            let sorry = crate::terminal::screen::Screen::continued().paragraph_styled(
                "The exchange is closed for repairs (internal error). Back to the BBS.",
                Style::Error,
            );
            let _ = term.show(&sorry).await;
            return Err(e.into());
        }
    };

    let jobs_stop = CancellationToken::new();
    let jobs = tokio_util::task::TaskTracker::new();
    if run_jobs {
        crate::lifecycle::spawn_runner(
            ex.db(),
            &crate::config::SeasonSettings::default(),
            &jobs,
            &jobs_stop,
        );
    }
    jobs.close();

    let welcome = screens::welcome(
        &player.handle,
        &game.name,
        new_player,
        game.rules.starting_cash,
    );
    let welcome = screens::welcome_news(welcome, &login_news(&ex, game.id, player.id).await);
    let end = match async {
        term.show(&welcome).await?;
        term.hotkey("Press RETURN to enter the exchange").await?;
        Ok::<(), Stop>(())
    }
    .await
    {
        Err(stop) => stop,
        Ok(()) => {
            let mut app = App::new(ex.clone(), game, player, term);
            let end = app.run().await;
            term = app.into_term();
            end
        }
    };
    let end = match end {
        Stop::Hangup | Stop::Signal => end,
        other => {
            let words = match other {
                Stop::TimeUp => "Time's up! The closing bell rings for you. Back to the BBS.",
                Stop::Idle => "Asleep at the terminal? The floor clears out. Back to the BBS.",
                _ => "The market will miss your money. Back to the BBS.",
            };
            let bye = crate::terminal::screen::Screen::continued()
                .blank()
                .paragraph_styled(words, Style::Emphasis);
            let _ = term.show(&bye).await;
            other
        }
    };
    let conn = term.into_connection();
    if is_socket {
        // The BBS still owns the caller's connection: close our descriptor, never shut it
        // down.
        drop(conn);
    } else {
        conn.close().await;
    }
    // A job cut short here is taken over by another runner when its lease runs out.
    jobs_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_millis(500), jobs.wait()).await;
    ex.db().close().await;
    Ok(end.into())
}

/// What the caller is told at login beside the welcome: when the season ends and how much
/// mail waits. A failure to read either is logged and leaves the line out.
async fn login_news(ex: &Exchange, game_id: i64, player_id: i64) -> screens::LoginNews {
    let now = crate::store::now_ms();
    let season = crate::lifecycle::season(ex.db(), game_id)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "season dates unavailable"))
        .ok()
        .flatten();
    let unread = crate::inbox::unread_count(ex.db(), player_id)
        .await
        .inspect_err(|e| tracing::warn!(error = ?e, "unread count unavailable"))
        .unwrap_or(0);
    screens::LoginNews {
        ends_in: season.map(|s| s.ends_at.saturating_sub(now)),
        unread,
    }
}

/// Standard input and output as one unbuffered stream. Both are duplicates of fd 0 and 1 used
/// through `tokio::fs::File`, so output is written as sent (not held by a line buffer) and a
/// write error after the caller hangs up is seen.
fn stdio() -> Result<impl Stream, GameError> {
    use std::os::fd::AsFd;
    let input = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(GameError::Io)?;
    let output = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(GameError::Io)?;
    let input = tokio::fs::File::from_std(std::fs::File::from(input));
    let output = tokio::fs::File::from_std(std::fs::File::from(output));
    Ok(tokio::io::join(input, output))
}

/// Cancels `stop` on SIGHUP or SIGTERM (the BBS dropping carrier or killing the door).
fn spawn_signal_watch(stop: CancellationToken) -> Result<(), GameError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).map_err(GameError::Io)?;
    let mut term = signal(SignalKind::terminate()).map_err(GameError::Io)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = hup.recv() => {}
            _ = term.recv() => {}
        }
        stop.cancel();
    });
    Ok(())
}

/// Raw mode on standard input while it is a terminal (a BBS running the door on a PTY), put
/// back as it was when dropped.
struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    fn enter(stdio: bool) -> RawMode {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        if !stdio || !nix::unistd::isatty(&stdin).unwrap_or(false) {
            return RawMode { saved: None };
        }
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_names_drop_versions() {
        let mut info = DropInfo {
            bbs_software: "Synchronet BBS for Linux Version 3.19".into(),
            ..DropInfo::default()
        };
        assert_eq!(system_of(&info, None), "Synchronet BBS for Linux");
        info.bbs_software = "Mystic 1.12 A48".into();
        assert_eq!(system_of(&info, None), "Mystic");
        info.bbs_name = "The Nugget Mine".into();
        assert_eq!(system_of(&info, None), "The Nugget Mine");
        assert_eq!(system_of(&info, Some("dp")), "dp");
        info.bbs_name.clear();
        info.bbs_software = "2.0".into();
        assert_eq!(system_of(&info, None), "local");
    }

    #[test]
    fn charsets_from_the_dropfile() {
        let mut info = DropInfo::default();
        assert_eq!(caps_of(&info, false).0.charset, Charset::Ansi);
        assert_eq!(caps_of(&info, true).0.charset, Charset::Atascii);
        info.emulation = Emulation::Ascii;
        assert_eq!(
            caps_of(&info, false),
            (Caps::for_charset(Charset::Ascii), true)
        );
        info.emulation = Emulation::Atascii;
        info.width = 40;
        assert_eq!(caps_of(&info, false).0.width, 40);
    }
}
