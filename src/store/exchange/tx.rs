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
//! On PostgreSQL this type runs `BEGIN`, `COMMIT` and `ROLLBACK` itself on a pooled connection
//! (rather than through sqlx's `Transaction`), so that they can share a round trip with other
//! statements: the order path sends `BEGIN; SELECT * FROM ex_load(...)` and then
//! `SELECT * FROM ex_write(...); COMMIT` (see [`super::load`] and [`super::script`]), two round
//! trips per order. A transaction can also start lazily ([`WriteTx::begin_lazy`]): nothing is
//! sent until its first statement, which carries the `BEGIN`.
//!
//! A [`WriteTx`] that is dropped without `commit` or `rollback` (a cancelled future, a `?` on
//! a rare path) rolls back too. On SQLite sqlx's `Transaction` queues the rollback on drop. On
//! PostgreSQL the connection is closed instead of returned to the pool, and the server rolls
//! back (and releases the advisory locks) when it goes; the engine's hot paths call
//! [`WriteTx::rollback`] on their errors, which keeps the connection.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use nix::fcntl::{Flock, FlockArg};
use sqlx::pool::PoolConnection;
use sqlx::{Any, Transaction};

use crate::store::{Backend, Db, StoreError};

/// Advisory lock class for books (first key of the two-key form).
const LOCK_CLASS_BOOK: i32 = 0x4E58_0001;
/// Advisory lock class for accounts.
const LOCK_CLASS_ACCOUNT: i32 = 0x4E58_0002;

/// An open write transaction holding its locks.
pub struct WriteTx {
    inner: Inner,
    pub(crate) backend: Backend,
    /// Whether events were written, so followers need waking after commit.
    pub(crate) wrote_events: bool,
    /// The trade ids each write of a batch got, in the order of the writes; see
    /// [`WriteTx::begin_batch`].
    pub(crate) written: Vec<Vec<i64>>,
    pool: sqlx::AnyPool,
    /// Declared after `inner` so the transaction (and its rollback) goes first on drop.
    _gate: Option<GateGuard>,
}

/// The connection of a [`WriteTx`] and who manages its transaction.
enum Inner {
    /// SQLite: sqlx's transaction (rolled back on drop).
    Sqlite(Transaction<'static, Any>),
    /// PostgreSQL: our own `BEGIN`/`COMMIT` on a pooled connection.
    Pg(PgConn),
}

/// A pooled PostgreSQL connection with the state of the transaction this type runs on it.
pub(crate) struct PgConn {
    conn: PoolConnection<Any>,
    /// Statements (`BEGIN` and lock statements, a batch's last write) not sent yet; they go
    /// with the next query.
    pending: String,
    /// Whether `pending` holds an `ex_write` call whose trade ids are still to be read.
    pub(crate) staged: bool,
    /// Whether a `BEGIN` may have been sent with no `COMMIT` or `ROLLBACK` after it.
    open: bool,
}

impl Drop for PgConn {
    fn drop(&mut self) {
        if self.open {
            // The transaction may still be open on the server: never hand this connection
            // to someone else. Closing it makes the server roll back and drop the locks.
            self.conn.close_on_drop();
        }
    }
}

impl PgConn {
    /// Takes the statements still waiting to be sent (empty if none), to prefix a query
    /// with; from here on the transaction counts as open.
    pub(crate) fn take_pending(&mut self) -> String {
        self.open = true;
        std::mem::take(&mut self.pending)
    }

    /// Sends the waiting statements, if any; returns the trade ids of a staged write among
    /// them (see [`PgConn::written_ids`]).
    pub(crate) async fn flush(&mut self) -> Result<Option<Vec<i64>>, StoreError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let sql = self.take_pending();
        let rows = sqlx::Executor::fetch_all(&mut *self.conn, sqlx::raw_sql(&sql)).await?;
        self.written_ids(&rows)
    }

    /// After the pending statements ran: if they held a staged write, its trade ids (the rows
    /// of the column `ex_write`) from `rows`.
    pub(crate) fn written_ids(
        &mut self,
        rows: &[sqlx::any::AnyRow],
    ) -> Result<Option<Vec<i64>>, StoreError> {
        if !std::mem::take(&mut self.staged) {
            return Ok(None);
        }
        let ids = rows
            .iter()
            .filter(|r| is_write_row(r))
            .map(|row| sqlx::Row::try_get::<i64, _>(row, 0))
            .collect::<Result<Vec<i64>, _>>()?;
        Ok(Some(ids))
    }

    /// Whether anything was or is to be sent in this transaction.
    pub(crate) fn begun(&self) -> bool {
        self.open || self.staged
    }

    /// Queues a batch's write to go with the next statement; see [`WriteTx::write_book`].
    pub(crate) fn stage_write(&mut self, sql: &str) {
        self.pending.push_str(sql);
        self.staged = true;
    }

    /// Runs `sql` (which ends the transaction) and marks the transaction closed on success.
    async fn finish(&mut self, sql: &str) -> Result<(), StoreError> {
        let pending = self.take_pending();
        let sql = format!("{pending}{sql}");
        sqlx::Executor::execute(&mut *self.conn, sqlx::raw_sql(&sql)).await?;
        self.open = false;
        Ok(())
    }
}

/// Whether a row is one of `ex_write`'s (a new trade's id).
pub(crate) fn is_write_row(row: &sqlx::any::AnyRow) -> bool {
    use sqlx::{Column, Row};
    row.columns().len() == 1 && row.columns()[0].name() == "ex_write"
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
        let mut tx = WriteTx::begin_lazy(db, locks).await?;
        if let Inner::Pg(pg) = &mut tx.inner {
            pg.flush().await?;
        }
        Ok(tx)
    }

    /// Begins one transaction for a batch of orders on several books (the simulator's tick,
    /// an order writer): on PostgreSQL it takes the advisory locks of `accounts` and then of
    /// `instruments` up front, each in id order, so it never waits for a lock while holding
    /// rows it wrote. Lazily: they go with the first load. Each order then costs one round
    /// trip, [`WriteTx::load_next`], which carries the previous order's write
    /// ([`WriteTx::write_book`]); [`WriteTx::commit_batch`] sends the last write with `COMMIT`.
    pub async fn begin_batch(
        db: &Db,
        accounts: &[i64],
        instruments: &[i64],
    ) -> Result<WriteTx, StoreError> {
        let mut tx = WriteTx::begin_lazy(db, Locks::default()).await?;
        if let Inner::Pg(pg) = &mut tx.inner {
            for (class, ids) in [
                (LOCK_CLASS_ACCOUNT, accounts),
                (LOCK_CLASS_BOOK, instruments),
            ] {
                let mut keys: Vec<i64> = ids
                    .iter()
                    .map(|id| id.rem_euclid(i64::from(i32::MAX)))
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                if !keys.is_empty() {
                    pg.pending.push_str(&advisory_many_sql(class, &keys));
                }
            }
        }
        Ok(tx)
    }

    /// Begins a write transaction whose `BEGIN` and locks (on PostgreSQL) go with its first
    /// statement. On SQLite this is [`WriteTx::begin`].
    pub async fn begin_lazy(db: &Db, locks: Locks) -> Result<WriteTx, StoreError> {
        match db.backend() {
            Backend::Postgres => {
                // Accounts before books, always in this order, so lock waits cannot form a
                // cycle. The keys are integers formatted here.
                let mut pending = String::from("BEGIN;");
                if let Some(account) = locks.account {
                    pending.push_str(&advisory_sql(LOCK_CLASS_ACCOUNT, account));
                }
                if let Some(instrument) = locks.instrument {
                    pending.push_str(&advisory_sql(LOCK_CLASS_BOOK, instrument));
                }
                let conn = db.pool().acquire().await?;
                Ok(WriteTx {
                    inner: Inner::Pg(PgConn {
                        conn,
                        pending,
                        staged: false,
                        open: false,
                    }),
                    backend: Backend::Postgres,
                    wrote_events: false,
                    written: Vec::new(),
                    pool: db.pool().clone(),
                    _gate: None,
                })
            }
            Backend::Sqlite => {
                let gate = sqlite_gate(db).await?;
                let guard = gate.enter().await?;
                let tx = db.pool().begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx {
                    inner: Inner::Sqlite(tx),
                    backend: Backend::Sqlite,
                    wrote_events: false,
                    written: Vec::new(),
                    pool: db.pool().clone(),
                    _gate: Some(guard),
                })
            }
        }
    }

    /// Commits; the locks go with the transaction.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.finish_with("").await
    }

    /// Runs `statements` (PostgreSQL: in the same round trip as the `COMMIT`), then commits.
    pub(crate) async fn finish_with(mut self, statements: &str) -> Result<(), StoreError> {
        match &mut self.inner {
            Inner::Pg(pg) => {
                // A lazy transaction that never sent anything has nothing to commit.
                if pg.open || !statements.is_empty() {
                    pg.finish(&format!("{statements}COMMIT;")).await?;
                }
            }
            Inner::Sqlite(tx) => {
                if !statements.is_empty() {
                    sqlx::Executor::execute(&mut **tx, sqlx::raw_sql(statements)).await?;
                }
            }
        }
        self.committed().await
    }

    /// Marks the end of a transaction whose `COMMIT` (PostgreSQL) was already sent, or
    /// commits (SQLite); then releases the gate and wakes followers.
    pub(crate) async fn committed(self) -> Result<(), StoreError> {
        let WriteTx {
            inner,
            _gate,
            backend,
            wrote_events,
            pool,
            ..
        } = self;
        match inner {
            Inner::Sqlite(tx) => tx.commit().await?,
            Inner::Pg(pg) => drop(pg),
        }
        drop(_gate);
        if wrote_events && backend == Backend::Postgres {
            wake_followers(&pool);
        }
        Ok(())
    }

    /// Rolls back. A failure to roll back is logged: the connection is then closed rather
    /// than reused, which rolls back on the server just the same.
    pub async fn rollback(self) {
        let WriteTx { inner, _gate, .. } = self;
        let result = match inner {
            Inner::Sqlite(tx) => tx.rollback().await.map_err(StoreError::from),
            Inner::Pg(mut pg) => {
                if pg.open {
                    // Whatever was pending never ran; only what was sent needs undoing.
                    pg.pending.clear();
                    pg.staged = false;
                    pg.finish("ROLLBACK;").await
                } else {
                    Ok(())
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "rollback failed; the connection is closed instead");
        }
    }

    /// The connection, for queries. On PostgreSQL a lazily begun transaction must have sent
    /// its first statement already (every statement after [`WriteTx::begin`] may use this).
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        match &mut self.inner {
            Inner::Sqlite(tx) => tx,
            Inner::Pg(pg) => {
                debug_assert!(pg.pending.is_empty(), "a lazy transaction was not begun");
                &mut pg.conn
            }
        }
    }

    /// The PostgreSQL connection state, for statements that carry `BEGIN` or `COMMIT`
    /// themselves; `None` on SQLite.
    pub(crate) fn pg(&mut self) -> Option<&mut PgConn> {
        match &mut self.inner {
            Inner::Pg(pg) => Some(pg),
            Inner::Sqlite(_) => None,
        }
    }
}

impl PgConn {
    /// The connection itself (the caller sends any pending statements with its query).
    pub(crate) fn raw(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.conn
    }

    /// Marks the transaction as ended by a `COMMIT` the caller sent.
    pub(crate) fn mark_ended(&mut self) {
        self.open = false;
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
/// wrap into 31 bits, which at worst makes two books share a lock (slower, never wrong). The
/// function `ex_load` (migration 0009) takes the same locks with the same classes and keys.
fn advisory_sql(class: i32, id: i64) -> String {
    let key = id.rem_euclid(i64::from(i32::MAX));
    format!("SELECT 1 FROM pg_advisory_xact_lock({class}, {key});")
}

/// One statement that takes the advisory locks of `keys` (already wrapped into 31 bits, as in
/// [`advisory_sql`]) one after the other in the order given: the executor walks `unnest`'s
/// rows in array order and the aggregate calls the lock function once per row as it goes.
fn advisory_many_sql(class: i32, keys: &[i64]) -> String {
    let list: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    format!(
        "SELECT count(pg_advisory_xact_lock({class}, k)) FROM unnest(ARRAY[{}]::integer[]) AS u(k);",
        list.join(",")
    )
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
