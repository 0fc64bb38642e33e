//! Write transactions of the exchange and the locks that serialise them.
//!
//! PostgreSQL: `BEGIN` (READ COMMITTED) and, in the same round trip, transaction-scoped
//! advisory locks: one per instrument (so each book has exactly one writer at a time; row locks alone can leave
//! a crossed book) and one per taker account (so one player's two orders on different books
//! cannot both spend the same buying power). Account rows are updated in id order at the end,
//! so two transactions never wait on each other's rows in a cycle.
//!
//! SQLite: one writer at a time by design. SQLite's own busy handler sleeps and retries, which
//! lets a waiting process starve for seconds under contention, so writers queue first on a
//! FIFO mutex inside the process and then on an exclusive `flock` of a file beside the database
//! (the kernel wakes a waiter as soon as the holder lets go, no sleeping), and only then run
//! `BEGIN IMMEDIATE`. The lock is released after `COMMIT` or rollback.
//!
//! Event followers on PostgreSQL are woken by NOTIFY, but not from inside the order's
//! transaction: a committing transaction with a pending NOTIFY holds an instance-wide lock
//! through its WAL flush, which would serialise every commit. Instead, a commit that wrote
//! events pokes a per-pool background task that sends one `pg_notify` in its own tiny
//! transaction for any number of pokes that arrived meanwhile.
//!
//! A [`WriteTx`] that is dropped without `commit` (an error, or a cancelled future) rolls back:
//! sqlx's `Transaction` queues the rollback on drop, and the pool flushes it (with a ping)
//! before the connection can be handed out again.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use nix::fcntl::{Flock, FlockArg};
use sqlx::{Any, Transaction};

use crate::store::{Backend, Db, StoreError};

/// Advisory lock class for books (first key of the two-key form).
const LOCK_CLASS_BOOK: i32 = 0x4E58_0001;
/// Advisory lock class for accounts.
const LOCK_CLASS_ACCOUNT: i32 = 0x4E58_0002;

/// An open write transaction holding its locks.
pub struct WriteTx {
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) backend: Backend,
    /// Whether events were written, so followers need waking after commit.
    pub(crate) wrote_events: bool,
    pool: sqlx::AnyPool,
    /// Declared after `tx` so the transaction (and its rollback) goes first on drop.
    _gate: Option<GateGuard>,
}

/// What a write transaction locks besides the rows it touches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Locks {
    /// The book (instrument) to serialise on.
    pub instrument: Option<i64>,
    /// The account whose buying power is checked.
    pub account: Option<i64>,
}

impl WriteTx {
    /// Begins a write transaction and takes the locks.
    pub async fn begin(db: &Db, locks: Locks) -> Result<WriteTx, StoreError> {
        match db.backend() {
            Backend::Postgres => {
                // BEGIN and the locks go in one round trip (a simple query may hold several
                // statements). Accounts before books, always in this order, so lock waits
                // cannot form a cycle. The keys are integers formatted here.
                let mut begin = String::from("BEGIN;");
                if let Some(account) = locks.account {
                    begin.push_str(&advisory_sql(LOCK_CLASS_ACCOUNT, account));
                }
                if let Some(instrument) = locks.instrument {
                    begin.push_str(&advisory_sql(LOCK_CLASS_BOOK, instrument));
                }
                let tx = db.pool().begin_with(begin).await?;
                Ok(WriteTx {
                    tx,
                    backend: Backend::Postgres,
                    wrote_events: false,
                    pool: db.pool().clone(),
                    _gate: None,
                })
            }
            Backend::Sqlite => {
                let gate = sqlite_gate(db).await?;
                let guard = gate.enter().await?;
                let tx = db.pool().begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx {
                    tx,
                    backend: Backend::Sqlite,
                    wrote_events: false,
                    pool: db.pool().clone(),
                    _gate: Some(guard),
                })
            }
        }
    }

    /// Commits; the locks go with the transaction.
    pub async fn commit(self) -> Result<(), StoreError> {
        let WriteTx {
            tx,
            _gate,
            backend,
            wrote_events,
            pool,
        } = self;
        tx.commit().await?;
        drop(_gate);
        if wrote_events && backend == Backend::Postgres {
            wake_followers(&pool);
        }
        Ok(())
    }

    /// The connection, for queries.
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

/// Asks the pool's notifier task to send a NOTIFY soon, starting the task if needed.
fn wake_followers(pool: &sqlx::AnyPool) {
    type Notifiers = HashMap<String, (Arc<tokio::sync::Notify>, tokio::task::JoinHandle<()>)>;
    static NOTIFIERS: OnceLock<Mutex<Notifiers>> = OnceLock::new();
    let key = pool.connect_options().database_url.to_string();
    let map = NOTIFIERS.get_or_init(|| Mutex::new(HashMap::new()));
    // A std mutex: held only for this lookup, never across an await.
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((n, task)) = map.get(&key) {
        // A task of a runtime that has shut down is finished; start a new one then.
        if !task.is_finished() {
            n.notify_one();
            return;
        }
    }
    let notify = Arc::new(tokio::sync::Notify::new());
    notify.notify_one();
    let pool = pool.clone();
    let waiter = notify.clone();
    let task = tokio::spawn(async move {
        loop {
            // A poke while we are busy leaves a permit, so the last commit is never missed.
            waiter.notified().await;
            if pool.is_closed() {
                return;
            }
            let sent = sqlx::query("SELECT 1 AS ok FROM pg_notify($1, '')")
                .bind(super::NOTIFY_CHANNEL)
                .fetch_one(&pool)
                .await;
            if let Err(e) = sent {
                tracing::debug!(error = %e, "cannot wake exchange event followers");
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    });
    map.insert(key, (notify, task));
}

/// One advisory-lock statement. The two-key form keeps our locks apart from anyone else's; ids
/// wrap into 31 bits, which at worst makes two books share a lock (slower, never wrong).
fn advisory_sql(class: i32, id: i64) -> String {
    let key = id.rem_euclid(i64::from(i32::MAX));
    format!("SELECT 1 FROM pg_advisory_xact_lock({class}, {key});")
}

/// The writer queue of one SQLite database file in this process.
struct Gate {
    /// FIFO among this process's tasks (tokio's mutex is fair).
    local: Arc<tokio::sync::Mutex<()>>,
    /// The lock file shared with other processes; `None` for in-memory databases.
    file: Option<File>,
}

/// Held while a SQLite write transaction runs.
struct GateGuard {
    _flock: Option<Flock<File>>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

impl Gate {
    async fn enter(self: &Arc<Self>) -> Result<GateGuard, StoreError> {
        let local = self.local.clone().lock_owned().await;
        let flock = match &self.file {
            None => None,
            Some(file) => {
                let dup = file.try_clone().map_err(lock_error)?;
                match Flock::lock(dup, FlockArg::LockExclusiveNonblock) {
                    Ok(lock) => Some(lock),
                    Err((dup, _busy)) => {
                        // Another process writes now: wait in the kernel's queue on a blocking
                        // thread. If this future is dropped meanwhile, the thread still gets the
                        // lock and its result is dropped, which unlocks it.
                        let lock = tokio::task::spawn_blocking(move || {
                            Flock::lock(dup, FlockArg::LockExclusive)
                                .map_err(|(_, errno)| std::io::Error::from(errno))
                        })
                        .await
                        .map_err(|e| lock_error(std::io::Error::other(e)))?
                        .map_err(lock_error)?;
                        Some(lock)
                    }
                }
            }
        };
        Ok(GateGuard {
            _flock: flock,
            _local: local,
        })
    }
}

fn lock_error(e: std::io::Error) -> StoreError {
    StoreError::Sqlx(sqlx::Error::Io(e))
}

/// Finds (or makes) the gate for the database file behind `db`.
async fn sqlite_gate(db: &Db) -> Result<Arc<Gate>, StoreError> {
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
        Some(open_lock_file(Path::new(&path)).map_err(lock_error)?)
    };
    let gate = Arc::new(Gate {
        local: Arc::new(tokio::sync::Mutex::new(())),
        file,
    });
    map.insert(path, gate.clone());
    Ok(gate)
}

fn open_lock_file(db_path: &Path) -> std::io::Result<File> {
    let mut name = db_path.as_os_str().to_owned();
    name.push("-writer.lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(PathBuf::from(name))
}
