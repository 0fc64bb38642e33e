//! Doors: external programs a caller runs from the BBS, with a dropfile, bridged by the node.
//!
//! Owns the node side of a door visit (see `shared/specs/dropfiles.md` §5–§7): the `[[door]]`
//! configuration ([`DoorConfig`]), the per-door concurrency cap ([`DoorSlots`]), and
//! [`run_door`], which writes the dropfile into the node's folder, starts the door in its own
//! process group with stdio pipes, a pseudo-terminal or an inherited socket, pumps bytes both
//! ways between the door and the caller, ends the whole group on carrier loss or time-out
//! (SIGHUP and SIGTERM, then SIGKILL after a short grace), and cleans the folder.
//!
//! It must not touch the caller's wire: the caller side is the [`DoorIo`] trait, so telnet
//! escaping, pacing and carrier watch stay in the session's `Connection`. It knows nothing
//! of menus or users beyond the [`DropInfo`] it is given. Nothing a door does (exit, crash,
//! flood, hang, close its output) can make it panic or leave processes behind.

mod config;
mod process;
mod pty;
mod slots;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use config::{
    expand, placeholders, DoorConfig, DoorConfigError, DoorIoMode, PLACEHOLDERS, SELF_COMMAND,
};
pub use slots::{DoorSlot, DoorSlots};

use crate::dropfile::{self, Comm, DropInfo, DropfileError};
use process::{Prepared, Running};

/// How long a door gets between SIGHUP/SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_millis(500);

/// After a door exits, how long its last output may take to arrive.
const DRAIN_TIME: Duration = Duration::from_millis(500);

/// How much door output is read (and so sent to the caller) at a time: small, so a paced
/// line still notices a time-out or hang-up between chunks.
const READ_CHUNK: usize = 1024;

/// Caller input waiting for a door that does not read; more is dropped.
const INPUT_QUEUE: usize = 64;

/// Lines of a door's standard error copied to the log at most.
const STDERR_LINES: usize = 50;

/// The caller's side of a door visit, implemented by the session over its connection.
pub trait DoorIo: Send {
    /// The next bytes the caller typed, or `None` when the carrier is lost (or the node must
    /// stop). Must be cancel-safe: the bridge drops it when door output arrives first.
    fn recv(&mut self) -> impl Future<Output = Option<Bytes>> + Send;

    /// Sends door output to the caller; an error means the caller is gone.
    fn send(&mut self, data: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
}

/// How a door visit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorEnd {
    /// The door exited by itself (or crashed: see the status).
    Exited(ExitStatus),
    /// The caller hung up; the door was ended.
    CarrierLost,
    /// The time allowed ran out; the door was ended.
    TimedOut,
}

/// What a door visit came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorOutcome {
    pub end: DoorEnd,
    /// From the door's start to the end of its process group.
    pub elapsed: Duration,
    /// Bytes the caller sent to the door.
    pub bytes_to_door: u64,
    /// Bytes the door sent to the caller.
    pub bytes_from_door: u64,
}

impl DoorOutcome {
    /// A one-line message for the caller when the door did not end normally; `None` after a
    /// clean exit (status 0) or a hang-up (nobody to tell).
    pub fn problem(&self) -> Option<String> {
        use std::os::unix::process::ExitStatusExt;
        match self.end {
            DoorEnd::Exited(status) if status.success() => None,
            DoorEnd::Exited(status) => Some(match (status.code(), status.signal()) {
                (Some(code), _) => format!("The door ended with error code {code}."),
                (None, Some(signal)) => format!("The door crashed (signal {signal})."),
                (None, None) => "The door ended abnormally.".to_string(),
            }),
            DoorEnd::TimedOut => Some("Your time in the door is up.".to_string()),
            DoorEnd::CarrierLost => None,
        }
    }
}

/// Why a door could not be run. Once the door has started, every ending is a
/// [`DoorOutcome`], not an error.
#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    /// The door's `max_users` callers are already in it.
    #[error("door {door} is full ({max} callers)")]
    Busy { door: String, max: u32 },
    /// The node folder could not be made ready.
    #[error("door {door}: node folder {path}: {source}")]
    NodeDir {
        door: String,
        path: PathBuf,
        source: io::Error,
    },
    /// The dropfile could not be written.
    #[error("door {door}: {source}")]
    Dropfile { door: String, source: DropfileError },
    /// The pseudo-terminal or socket could not be created.
    #[error("door {door}: cannot set up {mode} I/O: {source}")]
    Setup {
        door: String,
        mode: &'static str,
        source: io::Error,
    },
    /// The program could not be started.
    #[error("door {door}: cannot start {command}: {source}")]
    Spawn {
        door: String,
        command: String,
        source: io::Error,
    },
}

/// Runs `door` for the caller described by `info` with the time the door's limit and the
/// caller's minutes allow. See [`run_door_for`].
pub async fn run_door<I: DoorIo>(
    door: &DoorConfig,
    info: &DropInfo,
    node_dir: &Path,
    slots: &DoorSlots,
    io: &mut I,
) -> Result<DoorOutcome, DoorError> {
    let allowed = door.time_allowed(info.minutes_left);
    run_door_for(door, info, node_dir, slots, allowed, io).await
}

/// Runs `door` for at most `allowed`: takes a place under its `max_users`, writes its dropfile
/// into `node_dir` (created if needed, emptied before and after), starts it in its own
/// process group and bridges it to `io` until it exits, the caller hangs up or the time runs
/// out.
///
/// The dropfile's comm fields follow the I/O actually given, whatever `info` says: comm type 0
/// handle 0 for stdio and pty, comm type 2 with the inherited descriptor for socket mode. Its
/// minutes are the time allowed.
pub async fn run_door_for<I: DoorIo>(
    door: &DoorConfig,
    info: &DropInfo,
    node_dir: &Path,
    slots: &DoorSlots,
    allowed: Duration,
    io: &mut I,
) -> Result<DoorOutcome, DoorError> {
    let _slot = slots
        .try_enter(&door.name, door.max_users)
        .ok_or_else(|| DoorError::Busy {
            door: door.name.clone(),
            max: door.max_users.unwrap_or(0),
        })?;
    // The door runs in another folder, so every path it is given must be absolute.
    let node_dir = &std::path::absolute(node_dir).map_err(|source| DoorError::NodeDir {
        door: door.name.clone(),
        path: node_dir.to_path_buf(),
        source,
    })?;
    let folder = NodeFolder::prepare(node_dir).map_err(|source| DoorError::NodeDir {
        door: door.name.clone(),
        path: node_dir.to_path_buf(),
        source,
    })?;
    let prepared = Prepared::new(door.io, info.width, info.height, door.pty_raw)
        .await
        .map_err(|source| DoorError::Setup {
            door: door.name.clone(),
            mode: door.io.as_str(),
            source,
        })?;
    let fd = prepared.inherited_fd();
    let mut info = info.clone();
    info.comm = match fd {
        Some(fd) => Comm::Socket(i64::from(fd)),
        None => Comm::Local,
    };
    info.minutes_left = u32::try_from(allowed.as_secs().div_ceil(60)).unwrap_or(u32::MAX);
    let dropfile = dropfile::write(
        &folder.path,
        door.dropfile,
        &info,
        door.dropfile_line_ending,
        door.dropfile_lower_case,
    )
    .map_err(|source| DoorError::Dropfile {
        door: door.name.clone(),
        source,
    })?;
    let args = expand_args(door, &info, &dropfile, &folder.path, fd);
    let cwd = door.working_dir.as_deref().unwrap_or(&folder.path);
    let env = door_env(&info, &dropfile);
    let started = Instant::now();
    // A relative program path with a folder in it is meant from the BBS's folder, not the
    // door's working folder; a bare name is looked up in PATH.
    let program = if door.command.contains('/') {
        std::path::absolute(&door.command)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| door.command.clone())
    } else {
        door.command.clone()
    };
    let running = process::spawn(&program, &args, cwd, &env, prepared).map_err(|source| {
        DoorError::Spawn {
            door: door.name.clone(),
            command: door.command.clone(),
            source,
        }
    })?;
    tracing::info!(door = %door.name, io = door.io.as_str(), pid = running.child.id(), "door started");
    let outcome = bridge(running, io, started, allowed, &door.name).await;
    tracing::info!(
        door = %door.name,
        end = ?outcome.end,
        door_ms = outcome.elapsed.as_millis() as u64,
        "door ended"
    );
    drop(folder);
    Ok(outcome)
}

/// The environment a door gets: a few harmless variables of ours (the BBS's own environment
/// may hold secrets such as a database URL, so only [`PASSED_ENV`] is passed on), the terminal
/// type and size, and where the dropfile is.
fn door_env(info: &DropInfo, dropfile: &Path) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> = PASSED_ENV
        .iter()
        .filter_map(|&key| std::env::var(key).ok().map(|value| (key, value)))
        .collect();
    let term = if info.emulation.is_ansi() {
        "ansi"
    } else {
        "dumb"
    };
    env.extend([
        ("TERM", term.to_string()),
        ("COLUMNS", info.width.to_string()),
        ("LINES", info.height.to_string()),
        ("NUGGETNET_DROPFILE", dropfile.display().to_string()),
        ("NUGGETNET_NODE", info.node.to_string()),
    ]);
    env
}

/// Variables of the BBS's environment that doors get.
pub const PASSED_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR",
];

fn expand_args(
    door: &DoorConfig,
    info: &DropInfo,
    dropfile: &Path,
    node_dir: &Path,
    fd: Option<i32>,
) -> Vec<String> {
    let value = |name: &str| {
        Some(match name {
            "dropfile" => dropfile.display().to_string(),
            "node" => info.node.to_string(),
            "nodedir" => node_dir.display().to_string(),
            "fd" => fd.unwrap_or(-1).to_string(),
            "alias" => info.alias.clone(),
            "minutes" => info.minutes_left.to_string(),
            "cols" => info.width.to_string(),
            "rows" => info.height.to_string(),
            _ => return None,
        })
    };
    door.args.iter().map(|arg| expand(arg, value)).collect()
}

/// Pumps bytes between the door and the caller until one of them ends, then ends the
/// process group.
async fn bridge<I: DoorIo>(
    running: Running,
    io: &mut I,
    started: Instant,
    allowed: Duration,
    door: &str,
) -> DoorOutcome {
    let Running {
        mut child,
        mut group,
        mut reader,
        writer,
        stderr,
    } = running;
    // A limit too far away to represent is no limit in practice: a century.
    let deadline = started
        .checked_add(allowed)
        .unwrap_or_else(|| started + Duration::from_secs(100 * 365 * 24 * 3600));
    let (input_tx, input_rx) = mpsc::channel::<Bytes>(INPUT_QUEUE);
    // Input goes to the door through a queue, so a door that stops reading cannot stop us
    // from watching the carrier and the clock.
    let input_pump = pump_input(writer, input_rx);
    tokio::pin!(input_pump);
    let stderr_log = log_stderr(stderr, door);
    tokio::pin!(stderr_log);
    let mut buf = vec![0u8; READ_CHUNK];
    let (mut to_door, mut from_door) = (0u64, 0u64);
    let (mut output_open, mut input_open, mut log_open) = (true, true, true);
    let end = loop {
        // Unbiased on purpose: a door that floods output must not starve the carrier watch,
        // nor a caller who pastes a lot starve the door's output.
        tokio::select! {
            status = child.wait() => {
                match status {
                    Ok(status) => break DoorEnd::Exited(status),
                    // The door cannot be waited for: treat it as gone and end its group.
                    Err(_) => break DoorEnd::CarrierLost,
                }
            }
            _ = tokio::time::sleep_until(deadline) => break DoorEnd::TimedOut,
            read = reader.read(&mut buf), if output_open => match read {
                Ok(0) | Err(_) => output_open = false,
                Ok(n) => {
                    from_door += n as u64;
                    if io.send(&buf[..n]).await.is_err() {
                        break DoorEnd::CarrierLost;
                    }
                }
            },
            input = io.recv() => match input {
                None => break DoorEnd::CarrierLost,
                Some(data) => {
                    if input_open {
                        let len = data.len() as u64;
                        if input_tx.try_send(data).is_ok() {
                            to_door += len;
                        }
                    }
                }
            },
            _ = &mut input_pump, if input_open => input_open = false,
            _ = &mut stderr_log, if log_open => log_open = false,
        }
    };
    if let DoorEnd::Exited(_) = end {
        // Show what the door wrote just before it exited.
        let drain = async {
            while output_open {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => output_open = false,
                    Ok(n) => {
                        from_door += n as u64;
                        if io.send(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    }
    group.end(&mut child, KILL_GRACE).await;
    DoorOutcome {
        end,
        elapsed: started.elapsed(),
        bytes_to_door: to_door,
        bytes_from_door: from_door,
    }
}

/// Writes queued caller input to the door until the door stops reading.
async fn pump_input(mut writer: process::DoorWriter, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(data) = rx.recv().await {
        if writer.write_all(&data).await.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
}

/// Copies the first lines of a door's standard error to the log, then discards the rest.
async fn log_stderr(stderr: Option<tokio::process::ChildStderr>, door: &str) {
    let Some(stderr) = stderr else {
        return;
    };
    let mut lines = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut count = 0;
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if count < STDERR_LINES {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end();
                    // A log line keeps its own level (our door logs to stderr); anything
                    // else a door prints there is worth a look.
                    match stderr_level(text) {
                        Some(tracing::Level::ERROR) => {
                            tracing::error!(door, stderr = %text, "door wrote to stderr")
                        }
                        Some(tracing::Level::INFO) => {
                            tracing::info!(door, stderr = %text, "door wrote to stderr")
                        }
                        Some(tracing::Level::DEBUG | tracing::Level::TRACE) => {
                            tracing::debug!(door, stderr = %text, "door wrote to stderr")
                        }
                        Some(tracing::Level::WARN) | None => {
                            tracing::warn!(door, stderr = %text, "door wrote to stderr")
                        }
                    }
                }
                count += 1;
            }
        }
    }
}

/// The level of a line a door wrote to standard error, if it is a log line of the usual form
/// (`<timestamp> <LEVEL> ...`, as our own door and most `tracing` programs write them).
fn stderr_level(line: &str) -> Option<tracing::Level> {
    let mut words = line.split_whitespace();
    let stamp = words.next()?;
    if !stamp.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    match words.next()? {
        "ERROR" => Some(tracing::Level::ERROR),
        "WARN" => Some(tracing::Level::WARN),
        "INFO" => Some(tracing::Level::INFO),
        "DEBUG" => Some(tracing::Level::DEBUG),
        "TRACE" => Some(tracing::Level::TRACE),
        _ => None,
    }
}

/// The node's folder for one visit: emptied before the door starts and again when dropped.
struct NodeFolder {
    path: PathBuf,
}

impl NodeFolder {
    fn prepare(path: &Path) -> io::Result<NodeFolder> {
        std::fs::create_dir_all(path)?;
        empty_folder(path)?;
        Ok(NodeFolder {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for NodeFolder {
    fn drop(&mut self) {
        if let Err(e) = empty_folder(&self.path) {
            tracing::warn!(folder = %self.path.display(), error = %e, "cannot clean node folder");
        }
    }
}

/// Removes everything inside `path`, keeping the folder itself.
fn empty_folder(path: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_on_stderr_keep_their_level() {
        let info = "2026-11-22T13:00:55.338610Z  INFO nuggetnet::game::door: door call player=1";
        assert_eq!(stderr_level(info), Some(tracing::Level::INFO));
        let error = "2026-11-22T13:00:55Z ERROR door: the database is gone";
        assert_eq!(stderr_level(error), Some(tracing::Level::ERROR));
        assert_eq!(stderr_level("thread 'main' panicked at src/x.rs:1:1"), None);
        assert_eq!(stderr_level("1 INFOS"), None);
        assert_eq!(stderr_level(""), None);
    }
}
