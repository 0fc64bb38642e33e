//! The queue of SQLite write transactions: first come, first served, across processes.
//!
//! SQLite lets one write transaction run at a time, and its own busy handler sleeps and
//! retries, which lets a waiting process starve for seconds. An exclusive `flock` of a file
//! beside the database wakes a waiter as soon as the holder lets go, but the kernel wakes every
//! waiter and whoever runs first wins: the process that just let go is usually still running
//! and takes it again. Measured with 32 processes trading flat out (BENCHMARKS.md): half the
//! orders waited 4 ms and one in a hundred 146 ms, the worst 333 ms.
//!
//! So writers take a ticket and go in ticket order. The lock file (`<database>-writer.lock`)
//! holds the next ticket number in its first eight bytes, read and advanced under a byte-range
//! lock on byte 0. A writer holding ticket `t` holds the byte-range lock of its own slot (byte
//! [`SLOTS_AT`] + `t` mod [`SLOTS`]) from the moment it takes the ticket until it is done, and
//! before it goes in it waits for the slot of ticket `t - 1`: that writer is done (or dead).
//! The locks are open-file-description locks (`F_OFD_SETLKW`, Linux): the kernel drops them
//! when their holder dies, so a killed writer never blocks the queue, and closing another
//! descriptor of the file does not drop them (as it would POSIX record locks). The `flock`
//! stays as the lock that actually excludes: should a writer die while waiting for its turn,
//! the one behind it goes in early and waits on the `flock` for the one still running.
//!
//! Inside a process the writers of one database queue on a FIFO mutex first (the byte-range
//! locks belong to the process's one open file, so they cannot tell its tasks apart). When
//! nobody waits, every step succeeds at once on the caller's thread; otherwise the rest is done
//! on a blocking thread, which keeps the queue's place even if the caller gives up: its turn is
//! then taken and passed on at once.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, Flock, FlockArg};

use crate::store::{Db, StoreError};

/// The byte whose lock guards the ticket counter (bytes 0 to 7 of the file).
const TICKET_LOCK: i64 = 0;
/// Where the slots' bytes begin.
const SLOTS_AT: i64 = 4096;
/// Slots in the ring; more than writers could ever wait at once.
const SLOTS: u64 = 1 << 16;

/// The writer queue of one SQLite database file in this process.
pub(crate) struct Gate {
    /// FIFO among this process's tasks (tokio's mutex is fair).
    local: Arc<tokio::sync::Mutex<()>>,
    /// The lock file shared with other processes; `None` for in-memory databases.
    file: Option<Arc<File>>,
}

/// Held while a SQLite write transaction runs; dropping it lets the next writer in.
pub(crate) struct GateGuard {
    _turn: Turn,
}

/// How far a writer has got in the queue. Dropped, it lets go of what it holds: the `flock`,
/// then its slot (which lets the next ticket in), then the process's mutex.
struct Turn {
    file: Option<Arc<File>>,
    /// The ticket taken (its slot is locked).
    ticket: Option<u64>,
    /// The writer before has let go of its slot.
    predecessor_done: bool,
    flock: Option<Flock<File>>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.flock.take());
        if let (Some(file), Some(ticket)) = (&self.file, self.ticket) {
            if let Err(e) = range_lock(file, slot_of(ticket), Lock::Unlock) {
                // Unreachable in practice; the slot is freed when the file closes anyway.
                tracing::warn!(error = %e, "cannot release the SQLite writer queue slot");
            }
        }
    }
}

impl Turn {
    fn complete(&self) -> bool {
        self.file.is_none() || self.flock.is_some()
    }

    /// Takes every step not yet taken, in order; with `wait` false, stops at the first one
    /// that would have to wait.
    fn advance(&mut self, wait: bool) -> io::Result<()> {
        let Some(file) = self.file.clone() else {
            return Ok(());
        };
        let mode = if wait { Lock::Wait } else { Lock::Try };
        let ticket = match self.ticket {
            Some(ticket) => ticket,
            None => {
                if !range_lock(&file, TICKET_LOCK, mode)? {
                    return Ok(());
                }
                let taken = take_ticket(&file);
                range_lock(&file, TICKET_LOCK, Lock::Unlock)?;
                *self.ticket.insert(taken?)
            }
        };
        if !self.predecessor_done {
            let before = slot_of(ticket.wrapping_sub(1));
            if !range_lock(&file, before, mode)? {
                return Ok(());
            }
            range_lock(&file, before, Lock::Unlock)?;
            self.predecessor_done = true;
        }
        if self.flock.is_none() {
            let dup = file.try_clone()?;
            let arg = if wait {
                FlockArg::LockExclusive
            } else {
                FlockArg::LockExclusiveNonblock
            };
            match Flock::lock(dup, arg) {
                Ok(lock) => self.flock = Some(lock),
                Err((_, Errno::EWOULDBLOCK)) if !wait => {}
                Err((_, errno)) => return Err(io::Error::from(errno)),
            }
        }
        Ok(())
    }
}

/// Under the ticket lock: reads the next ticket, locks its slot and advances the counter.
fn take_ticket(file: &File) -> io::Result<u64> {
    let ticket = next_ticket(file)?;
    // Free unless 65,536 writers wait at once; if it is not, wait for it (the ring still
    // orders them: its holder waits only on tickets before its own).
    range_lock(file, slot_of(ticket), Lock::Wait)?;
    if let Err(e) = file.write_at(&ticket.wrapping_add(1).to_le_bytes(), 0) {
        let _ = range_lock(file, slot_of(ticket), Lock::Unlock);
        return Err(e);
    }
    Ok(ticket)
}

/// The ticket the next writer will take. A new (empty) or damaged file reads as ticket 0;
/// tickets only order the writers.
fn next_ticket(file: &File) -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    Ok(match file.read_at(&mut bytes, 0)? {
        8 => u64::from_le_bytes(bytes),
        _ => 0,
    })
}

fn slot_of(ticket: u64) -> i64 {
    // Below 2^16, so the conversion cannot fail.
    SLOTS_AT + i64::try_from(ticket % SLOTS).unwrap_or(0)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// Take it, waiting as long as it takes.
    Wait,
    /// Take it if it is free.
    Try,
    Unlock,
}

/// Locks or unlocks the one byte at `at` with an open-file-description lock; `Ok(false)` if
/// `Lock::Try` found it held.
fn range_lock(file: &File, at: i64, how: Lock) -> io::Result<bool> {
    let region = libc::flock {
        l_type: match how {
            Lock::Unlock => libc::F_UNLCK,
            _ => libc::F_WRLCK,
        } as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: at,
        l_len: 1,
        // Must be 0 for open-file-description locks.
        l_pid: 0,
    };
    loop {
        let arg = match how {
            Lock::Wait => FcntlArg::F_OFD_SETLKW(&region),
            Lock::Try | Lock::Unlock => FcntlArg::F_OFD_SETLK(&region),
        };
        return match fcntl(file, arg) {
            Ok(_) => Ok(true),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN | Errno::EACCES) if how == Lock::Try => Ok(false),
            Err(errno) => Err(io::Error::from(errno)),
        };
    }
}

impl Gate {
    /// Waits for this writer's turn.
    pub(crate) async fn enter(self: &Arc<Self>) -> Result<GateGuard, StoreError> {
        let local = self.local.clone().lock_owned().await;
        let mut turn = Turn {
            file: self.file.clone(),
            ticket: None,
            predecessor_done: false,
            flock: None,
            _local: local,
        };
        turn.advance(false).map_err(lock_error)?;
        if !turn.complete() {
            // Someone is ahead: wait in the kernel on a blocking thread. If this future is
            // dropped meanwhile, the thread still gets the turn and drops it at once.
            turn = tokio::task::spawn_blocking(move || turn.advance(true).map(|()| turn))
                .await
                .map_err(|e| lock_error(io::Error::other(e)))?
                .map_err(lock_error)?;
        }
        Ok(GateGuard { _turn: turn })
    }
}

fn lock_error(e: io::Error) -> StoreError {
    StoreError::Sqlx(sqlx::Error::Io(e))
}

/// Finds (or makes) the gate for the database file behind `db`.
pub(crate) async fn sqlite_gate(db: &Db) -> Result<Arc<Gate>, StoreError> {
    static GATES: OnceLock<Mutex<HashMap<String, Arc<Gate>>>> = OnceLock::new();
    // The path as the pool opened it: `sqlite://PATH?options` (PATH may be relative).
    let url = db.pool().connect_options().database_url.to_string();
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or("").to_string();
    let in_memory = path.is_empty() || path == ":memory:" || url.contains("mode=memory");
    let gates = GATES.get_or_init(|| Mutex::new(HashMap::new()));
    // A std mutex: held only for this lookup, never across an await.
    let mut map = gates
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(gate) = map.get(&path) {
        return Ok(gate.clone());
    }
    let file = if in_memory {
        None
    } else {
        Some(Arc::new(
            open_lock_file(Path::new(&path)).map_err(lock_error)?,
        ))
    };
    let gate = Arc::new(Gate {
        local: Arc::new(tokio::sync::Mutex::new(())),
        file,
    });
    map.insert(path, gate.clone());
    Ok(gate)
}

fn open_lock_file(db_path: &Path) -> io::Result<File> {
    let mut name = db_path.as_os_str().to_owned();
    name.push("-writer.lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(PathBuf::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate_on(path: &Path) -> Arc<Gate> {
        Arc::new(Gate {
            local: Arc::new(tokio::sync::Mutex::new(())),
            file: Some(Arc::new(open_lock_file(path).expect("lock file"))),
        })
    }

    #[tokio::test]
    async fn an_uncontended_turn_is_taken_at_once_and_tickets_advance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("x.db");
        let gate = gate_on(&db);
        for expected in 1..=3u64 {
            let guard = gate.enter().await.expect("turn");
            drop(guard);
            let file = open_lock_file(&db).expect("lock file");
            assert_eq!(next_ticket(&file).expect("read"), expected);
        }
    }

    #[tokio::test]
    async fn writers_of_two_open_files_go_in_ticket_order() {
        // Two gates on one file stand for two processes: each has its own open file, so
        // their byte-range locks and flocks conflict as another process's would.
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("x.db");
        let (a, b, c) = (gate_on(&db), gate_on(&db), gate_on(&db));
        let first = a.enter().await.expect("a's turn");
        let order = Arc::new(Mutex::new(Vec::new()));
        let second = record_turn(&b, &order, 'b');
        // b is queued (holding ticket 1) before c asks.
        wait_for_ticket(&db, 2).await;
        let third = record_turn(&c, &order, 'c');
        wait_for_ticket(&db, 3).await;
        assert!(
            order.lock().expect("order").is_empty(),
            "nobody passes the holder"
        );
        drop(first);
        second.await.expect("b");
        third.await.expect("c");
        assert_eq!(*order.lock().expect("order"), vec!['b', 'c']);
    }

    #[tokio::test]
    async fn a_writer_that_gives_up_waiting_passes_its_turn_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("x.db");
        let (a, b, c) = (gate_on(&db), gate_on(&db), gate_on(&db));
        let first = a.enter().await.expect("a's turn");
        let gb = b.clone();
        let quitter = tokio::spawn(async move { gb.enter().await.map(drop) });
        wait_for_ticket(&db, 2).await;
        quitter.abort();
        let gc = c.clone();
        let third = tokio::spawn(async move { gc.enter().await.map(drop) });
        wait_for_ticket(&db, 3).await;
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(10), third)
            .await
            .expect("c gets its turn")
            .expect("c")
            .expect("c's turn");
    }

    /// Waits for `gate`'s turn on a task of its own and notes `tag` in `order` when it comes.
    fn record_turn(
        gate: &Arc<Gate>,
        order: &Arc<Mutex<Vec<char>>>,
        tag: char,
    ) -> tokio::task::JoinHandle<()> {
        let (gate, order) = (gate.clone(), order.clone());
        tokio::spawn(async move {
            let turn = gate.enter().await.expect("turn");
            order.lock().expect("order").push(tag);
            drop(turn);
        })
    }

    async fn wait_for_ticket(db: &Path, next: u64) {
        let file = open_lock_file(db).expect("lock file");
        for _ in 0..500 {
            if next_ticket(&file).is_ok_and(|t| t >= next) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no writer took ticket {}", next - 1);
    }
}
