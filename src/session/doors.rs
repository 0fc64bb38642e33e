//! The door menu: lists the configured doors, runs the one the caller picks through
//! [`crate::door::run_door`] over the caller's connection, and comes back to the menu.
//!
//! The caller's bytes go to the door raw (no key decoding); the connection keeps telnet
//! escaping, pacing and the carrier watch. The node shows "in door NAME" meanwhile.

use std::time::Duration;

use bytes::Bytes;

use crate::door::{self, DoorConfig, DoorEnd, DoorError, DoorIo};
use crate::dropfile::{Comm, DropInfo, Emulation};
use crate::node::Activity;
use crate::store::users::User;
use crate::terminal::keys::Key;
use crate::terminal::out::Style;
use crate::terminal::screen::Screen;
use crate::terminal::Charset;
use crate::transport::connection::Input;

use super::term::{End, Term};
use super::Context;

/// Minutes a caller may spend in a door that sets no limit (users have no time bank yet).
pub const DEFAULT_DOOR_MINUTES: u32 = 60;

/// Keys for the doors in the menu, in order.
const DOOR_KEYS: &str = "123456789ABCDEFGHIJKLMNOPRSTUVWXYZ";

/// How long one wait for caller input lasts inside a door; the door itself enforces
/// inactivity, so this only bounds a single wait.
const DOOR_INPUT_WAIT: Duration = Duration::from_secs(3600);

/// The door menu loop; returns when the caller goes back to the main menu.
pub async fn door_menu(term: &mut Term, ctx: &Context, user: &User) -> Result<(), End> {
    let doors = &ctx.config.doors;
    let mut show_menu = true;
    loop {
        if let Some(node) = term.node() {
            node.set_activity(Activity::MainMenu);
        }
        if show_menu {
            term.show(&menu_screen(doors)).await?;
        }
        show_menu = false;
        let key = term.hotkey("Door (Q to go back):").await?;
        let mut out = term.out();
        out.newline();
        term.send(out).await?;
        let choice = match key {
            Key::Char(c) => c.to_ascii_uppercase(),
            Key::Enter | Key::Escape => return Ok(()),
            _ => continue,
        };
        match choice {
            'Q' => return Ok(()),
            '?' => show_menu = true,
            c => match DOOR_KEYS.find(c).and_then(|i| doors.get(i)) {
                Some(door) => {
                    enter(term, ctx, user, door).await?;
                    show_menu = true;
                }
                None => {
                    term.say("No such door. Press ? for the list.", Style::Error)
                        .await?
                }
            },
        }
    }
}

fn menu_screen(doors: &[DoorConfig]) -> Screen {
    let items: Vec<(char, &str)> = DOOR_KEYS
        .chars()
        .zip(doors.iter().map(|d| d.name.as_str()))
        .chain(std::iter::once(('Q', "Back to the main menu")))
        .collect();
    Screen::new().title("Doors").blank().menu(&items).blank()
}

/// Runs one door and reports how it ended.
async fn enter(term: &mut Term, ctx: &Context, user: &User, door: &DoorConfig) -> Result<(), End> {
    let Some(node) = term.node().map(|n| n.number()) else {
        return Err(End::Internal("door menu without a node".into()));
    };
    if let Some(guard) = term.node() {
        guard.set_activity(Activity::InDoor(door.name.clone()));
    }
    let info = drop_info(ctx, user, term, node);
    let node_dir = ctx.config.bbs.nodes_dir.join(format!("node{node}"));
    let writer = ctx
        .order_writer
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let door = &resolve(
        door,
        &ctx.config.database.url,
        &ctx.config.bbs.name,
        &writer,
    );
    let mut io = TermDoorIo { term, ended: None };
    let result = door::run_door(door, &info, &node_dir, &ctx.door_slots, &mut io).await;
    let ended = io.ended.take();
    // The door owned the screen: news flashes sent meanwhile were the door's to show.
    term.skip_broadcasts();
    match result {
        Ok(outcome) => {
            term.add_door_time(outcome.elapsed);
            tracing::info!(
                door = %door.name,
                door_ms = outcome.elapsed.as_millis() as u64,
                end = ?outcome.end,
                "door visit"
            );
            if outcome.end == DoorEnd::CarrierLost {
                return Err(ended.unwrap_or(End::Hangup));
            }
            let mut out = term.out();
            out.newline();
            term.send(out).await?;
            if let Some(problem) = outcome.problem() {
                term.say(&problem, Style::Warning).await?;
                term.pause().await?;
            }
            Ok(())
        }
        Err(DoorError::Busy { max, .. }) => {
            let text = format!("{} is full ({max} at once). Try again later.", door.name);
            term.say(&text, Style::Warning).await
        }
        Err(e) => {
            tracing::error!(door = %door.name, error = %e, "door could not run");
            term.say(
                "That door could not be started. The sysop has been told.",
                Style::Error,
            )
            .await
        }
    }
}

/// Fills in what only the node knows: `{nuggetnet}` as the command means this program,
/// `{database}` is the BBS's database URL with a relative SQLite path made absolute (doors run
/// in their node's folder), `{bbs}` is the board's name (NuggetNet namespaces its players
/// by it), and `{writer}` the order writer's socket (empty when none runs).
fn resolve(door: &DoorConfig, database_url: &str, bbs: &str, writer: &str) -> DoorConfig {
    let mut door = door.clone();
    if door.command == door::SELF_COMMAND {
        if let Ok(exe) = std::env::current_exe() {
            door.command = exe.display().to_string();
        }
    }
    let url = crate::store::absolute_url(database_url);
    for arg in &mut door.args {
        *arg = door::expand(arg, |name| match name {
            "database" => Some(url.clone()),
            "bbs" => Some(bbs.to_string()),
            "writer" => Some(writer.to_string()),
            _ => None,
        });
    }
    door
}

/// What the door is told about the caller.
fn drop_info(ctx: &Context, user: &User, term: &Term, node: u16) -> DropInfo {
    let caps = term.caps();
    let emulation = match caps.charset {
        Charset::Ansi => Emulation::Ansi,
        Charset::Atascii => Emulation::Atascii,
        Charset::Ascii => Emulation::Ascii,
    };
    DropInfo {
        bbs_name: ctx.config.bbs.name.clone(),
        bbs_software: format!("NuggetNet {}", env!("CARGO_PKG_VERSION")),
        sysop: ctx.config.bbs.sysop.clone(),
        user_number: u32::try_from(user.id).unwrap_or(1).max(1),
        real_name: String::new(),
        alias: user.handle.clone(),
        location: String::new(),
        security: if user.is_sysop { 255 } else { 10 },
        minutes_left: DEFAULT_DOOR_MINUTES,
        emulation,
        width: caps.width,
        height: caps.height,
        node,
        // The door module sets the comm fields from the I/O it actually gives the door.
        comm: Comm::Local,
        baud: 0,
    }
}

/// The caller's connection as a door's I/O. Remembers why input ended (hang-up or shutdown).
struct TermDoorIo<'a> {
    term: &'a mut Term,
    ended: Option<End>,
}

impl DoorIo for TermDoorIo<'_> {
    async fn recv(&mut self) -> Option<Bytes> {
        loop {
            match self.term.input(DOOR_INPUT_WAIT).await {
                Ok(Some(Input::Data(data))) => return Some(data),
                // Window-size and terminal-type reports are noted by the terminal.
                Ok(Some(_)) | Ok(None) => continue,
                Err(end) => {
                    self.ended = Some(end);
                    return None;
                }
            }
        }
    }

    async fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.term
            .write(data)
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}
