//! A door's pseudo-terminal: the slave for the door, the master as async byte streams.
//!
//! The master is driven through tokio's `pipe` types, which accept any non-blocking
//! descriptor that works with the reactor (a pty master does), so no `unsafe` is needed.
//! Reading gives an error (EIO) once every slave descriptor is closed, which the bridge takes
//! as the end of the door's output.
//!
//! Known limit: the pseudo-terminal is the door's standard input, output and error but not its
//! controlling terminal (that needs `setsid` and `TIOCSCTTY` between fork and exec, i.e.
//! `unsafe` code), so `/dev/tty` cannot be opened and the kernel sends no SIGHUP when the
//! master closes; the node signals the door's process group itself.

use std::io;
use std::os::fd::OwnedFd;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::{openpty, Winsize};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use tokio::net::unix::pipe;

/// The BBS's end of a pseudo-terminal.
pub(crate) struct PtyMaster {
    pub(crate) reader: pipe::Receiver,
    pub(crate) writer: pipe::Sender,
}

/// A new pseudo-terminal sized `cols` x `rows`: the master, and the slave for the door. In
/// raw mode the slave passes every byte untouched; otherwise it keeps the usual terminal
/// settings (echo, CR to NL), which suits line-reading programs.
pub(crate) fn open(cols: u16, rows: u16, raw: bool) -> io::Result<(PtyMaster, OwnedFd)> {
    let size = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(&size, None).map_err(io::Error::from)?;
    if raw {
        let mut termios = tcgetattr(&pty.slave).map_err(io::Error::from)?;
        cfmakeraw(&mut termios);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &termios).map_err(io::Error::from)?;
    }
    // Both master descriptors share one open file, so this makes both non-blocking.
    let flags = fcntl(&pty.master, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(&pty.master, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    let second = pty.master.try_clone()?;
    Ok((
        PtyMaster {
            reader: pipe::Receiver::from_owned_fd_unchecked(pty.master)?,
            writer: pipe::Sender::from_owned_fd_unchecked(second)?,
        },
        pty.slave,
    ))
}
