//! Starting a door process in its own process group with the I/O its mode asks for, and
//! ending the whole group.
//!
//! Everything here is safe Rust: the process group comes from `Command::process_group`, and
//! the socket a DOOR32 comm-type-2 door inherits is made inheritable in the parent just before
//! the spawn, under [`SPAWN_LOCK`], and closed in the parent right after.
//!
//! Known limit: a door that leaves its process group on purpose (a daemon calling `setsid`)
//! escapes the group signals.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStderr, Command};

use super::pty::{self, PtyMaster};
use super::DoorIoMode;

/// Held while a descriptor is inheritable in this process, so no other door spawned at the
/// same moment inherits it too. Every door spawn takes it; the lock is never held across
/// `.await`. (A process spawned elsewhere in the BBS without this lock could still inherit
/// the socket for the instant it is open; the BBS spawns no other processes.)
static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// The BBS's end of the door's I/O.
pub(crate) type DoorReader = Box<dyn AsyncRead + Send + Unpin>;
pub(crate) type DoorWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// A door's I/O prepared before the spawn: the socket mode must know the descriptor number
/// the door will inherit before the dropfile is written.
pub(crate) enum Prepared {
    Stdio,
    Pty { master: PtyMaster, slave: OwnedFd },
    Socket { ours: TcpStream, theirs: OwnedFd },
}

impl Prepared {
    /// Creates the pseudo-terminal or the socket pair.
    pub(crate) async fn new(
        mode: DoorIoMode,
        cols: u16,
        rows: u16,
        raw: bool,
    ) -> io::Result<Prepared> {
        match mode {
            DoorIoMode::Stdio => Ok(Prepared::Stdio),
            DoorIoMode::Pty => {
                let (master, slave) = pty::open(cols, rows, raw)?;
                Ok(Prepared::Pty { master, slave })
            }
            DoorIoMode::Socket => {
                let (ours, theirs) = loopback_pair().await?;
                Ok(Prepared::Socket { ours, theirs })
            }
        }
    }

    /// The descriptor number the door will find its socket on, in socket mode.
    pub(crate) fn inherited_fd(&self) -> Option<i32> {
        match self {
            Prepared::Socket { theirs, .. } => Some(theirs.as_raw_fd()),
            _ => None,
        }
    }
}

/// A connected loopback TCP pair, as Synchronet's "passthru" socket: doors can use TCP socket
/// calls on their end. The accepted peer is checked to be our own connection.
async fn loopback_pair() -> io::Result<(TcpStream, OwnedFd)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (connected, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let ours = connected?;
    let (theirs, peer) = accepted?;
    if peer != ours.local_addr()? {
        return Err(io::Error::other(
            "a stranger connected to the door's socket",
        ));
    }
    ours.set_nodelay(true)?;
    theirs.set_nodelay(true)?;
    let theirs = theirs.into_std()?;
    // Doors expect an ordinary blocking socket.
    theirs.set_nonblocking(false)?;
    Ok((ours, OwnedFd::from(theirs)))
}

/// A running door.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) group: Group,
    pub(crate) reader: DoorReader,
    pub(crate) writer: DoorWriter,
    pub(crate) stderr: Option<ChildStderr>,
}

/// Starts `program` in its own process group with the prepared I/O and only `env` as its
/// environment.
pub(crate) fn spawn(
    program: &str,
    args: &[String],
    cwd: &Path,
    env: &[(&str, String)],
    prepared: Prepared,
) -> io::Result<Running> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .process_group(0)
        .kill_on_drop(true);
    let (child, reader, writer, stderr): (Child, DoorReader, DoorWriter, _) = match prepared {
        Prepared::Stdio => {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = spawn_locked(&mut cmd, None)?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(io::Error::other("the door's pipes were not created"));
            };
            let stderr = child.stderr.take();
            (child, Box::new(stdout), Box::new(stdin), stderr)
        }
        Prepared::Pty { master, slave } => {
            cmd.stdin(Stdio::from(slave.try_clone()?))
                .stdout(Stdio::from(slave.try_clone()?))
                .stderr(Stdio::from(slave));
            // The command holds the slave copies until it is dropped at the end of this
            // function, so the master sees end of file once the door's copies close.
            let child = spawn_locked(&mut cmd, None)?;
            (
                child,
                Box::new(master.reader),
                Box::new(master.writer),
                None,
            )
        }
        Prepared::Socket { ours, theirs } => {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = spawn_locked(&mut cmd, Some(&theirs))?;
            // Our copy of the door's end closes here; the door keeps its own.
            drop(theirs);
            let stderr = child.stderr.take();
            let (read, write) = ours.into_split();
            (child, Box::new(read), Box::new(write), stderr)
        }
    };
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| io::Error::other("the door exited before it had a process id"))?;
    Ok(Running {
        child,
        group: Group {
            pgid: Pid::from_raw(pid),
            armed: true,
        },
        reader,
        writer,
        stderr,
    })
}

/// Spawns with `inherit` (if any) made inheritable only for the duration of the spawn.
fn spawn_locked(cmd: &mut Command, inherit: Option<&OwnedFd>) -> io::Result<Child> {
    let _lock = SPAWN_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(fd) = inherit {
        set_cloexec(fd.as_fd(), false)?;
    }
    let child = cmd.spawn();
    if let Some(fd) = inherit {
        // Best effort: the descriptor is closed right after anyway.
        let _ = set_cloexec(fd.as_fd(), true);
    }
    child
}

fn set_cloexec(fd: std::os::fd::BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd, FcntlArg::F_SETFD(flags)).map_err(io::Error::from)?;
    Ok(())
}

/// A door's process group. Dropping it while armed kills the group, so no path (a panic, a
/// cancelled session) leaves door processes behind.
pub(crate) struct Group {
    pgid: Pid,
    armed: bool,
}

impl Group {
    /// Sends `signal` to the group; `false` when the group no longer exists.
    fn signal(&self, signal: Signal) -> bool {
        !matches!(killpg(self.pgid, signal), Err(Errno::ESRCH))
    }

    /// Ends the group: SIGHUP and SIGTERM (the carrier-loss signals doors handle), up to
    /// `grace` for the leader to exit, then SIGKILL to whatever is left. The leader is reaped.
    pub(crate) async fn end(&mut self, child: &mut Child, grace: Duration) {
        if self.signal(Signal::SIGHUP) {
            self.signal(Signal::SIGTERM);
            let _ = tokio::time::timeout(grace, child.wait()).await;
            // Helpers the door started may outlive it; the group takes them along.
            self.signal(Signal::SIGKILL);
        }
        let _ = child.wait().await;
        self.armed = false;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.armed {
            self.signal(Signal::SIGKILL);
        }
    }
}
