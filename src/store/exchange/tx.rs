//! Write transactions of the exchange and the locks that serialise them.
//!
//! PostgreSQL: `BEGIN` (READ COMMITTED) and, in the same round trip, transaction-scoped
//! advisory locks: one per instrument (so each book has exactly one writer at a time; row locks alone can leave
//! a crossed book) and one per taker account (so one player's two orders on different books
//! cannot both spend the same buying power). Account rows are updated in id order at the end,
//! so two transactions never wait on each other's rows in a cycle.
//!
//! SQLite: one writer at a time by design. SQLite's own busy handler sleeps and retries, which
//! lets a waiting process starve for seconds under contention, so writers queue first, in
//! arrival order across processes ([`super::gate`]: a FIFO mutex in the process, then a ticket
//! and byte-range locks on a file beside the database, then its `flock`), and only then run
//! `BEGIN IMMEDIATE`. The turn is passed on after `COMMIT` or rollback.
//!
//! Event followers on PostgreSQL are woken by NOTIFY, but not from inside the order's
//! transaction: a committing transaction with a pending NOTIFY holds an instance-wide lock
//! through its WAL flush, which would serialise every commit. Instead, a commit that wrote
//! events pokes a per-pool background task that sends one `pg_notify` in its own tiny
//! transaction for any number of pokes that arrived meanwhile.
//!
//! On both engines this type runs `BEGIN`, `COMMIT` and `ROLLBACK` itself (rather than through
//! sqlx's `Transaction`), so that they share a trip to the database with other statements: the
//! order path sends `BEGIN` with its load ([`super::load`]) and its write with `COMMIT`
//! ([`super::script`]), two trips per order; on SQLite a trip is a hop to sqlx's thread for
//! the connection. A transaction starts lazily: nothing is sent until its first statement,
//! which carries the `BEGIN`.
//!
//! The connections come from a small store of their own (`Writers`), not from the pool for
//! each transaction: the pool checks a connection with a round trip when it hands it out (on
//! PostgreSQL) and again when it takes it back, and on SQLite each connection has its own
//! page cache, which a write by another connection makes stale. A connection the server
//! dropped (a restart) shows up at the transaction's first statement, which is then tried
//! again on another connection: nothing was written yet.
//!
//! A [`WriteTx`] that is dropped without `commit` or `rollback` (a cancelled future, a `?` on
//! a rare path) rolls back too: its connection is closed instead of kept, and the database
//! rolls back (and PostgreSQL releases the advisory locks) when it goes; the engine's hot paths
//! call [`WriteTx::rollback`] on their errors, which keeps the connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Connection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::gate::{sqlite_gate, GateGuard};
use super::mirror::Mirror;
use super::sql::{self, SplitError, Sql};
use crate::store::{Backend, Db, StoreError};

/// Advisory lock class for books (first key of the two-key form).
const LOCK_CLASS_BOOK: i32 = 0x4E58_0001;
/// Advisory lock class for accounts.
const LOCK_CLASS_ACCOUNT: i32 = 0x4E58_0002;

/// The connections of one [`Db`]'s write transactions, at most `limit` at a time.
pub(crate) struct Writers {
    idle: Mutex<Vec<AnyConnection>>,
    /// The last committed planned batch's mirror (and on SQLite its connection), for the
    /// next planned batch (see [`WriteTx::begin_planned`]).
    carried: Mutex<Option<Carried>>,
    permits: Arc<Semaphore>,
}

/// A committed planned batch's mirror, kept for the next planned batch: while nobody else has
/// written in between, it still says what the database does. On SQLite with the connection it
/// was read on, whose `data_version` tells; PostgreSQL asks by snapshot, on any connection.
pub(crate) struct Carried {
    pub(crate) conn: Option<AnyConnection>,
    pub(crate) mirror: Box<Mirror>,
}

impl std::fmt::Debug for Writers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writers")
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

impl Writers {
    /// At most `limit` write transactions at once in this process (each on its own
    /// connection, besides the pool's).
    pub(crate) fn new(limit: usize) -> Writers {
        Writers {
            idle: Mutex::new(Vec::new()),
            carried: Mutex::new(None),
            permits: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    fn pop_idle(&self) -> Option<AnyConnection> {
        // A std mutex: held only for the pop or push, never across an await.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
    }

    fn keep(&self, conn: AnyConnection) {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(conn);
    }

    /// Takes what the last planned batch left (see [`Carried`]).
    pub(crate) fn take_carried(&self) -> Option<Carried> {
        self.carried
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Keeps `carried` for the next planned batch; what was kept before goes back among the
    /// idle connections.
    fn carry(&self, carried: Carried) {
        let old = self
            .carried
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .replace(carried);
        if let Some(conn) = old.and_then(|old| old.conn) {
            self.keep(conn);
        }
    }

    /// Closes every kept connection; transactions still running keep theirs until they end.
    pub(crate) async fn close(&self) {
        self.permits.close();
        if let Some(conn) = self.take_carried().and_then(|c| c.conn) {
            self.keep(conn);
        }
        let idle = std::mem::take(
            &mut *self
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for conn in idle {
            if let Err(e) = conn.close().await {
                tracing::debug!(error = %e, "closing a write connection failed");
            }
        }
    }
}

/// An open write transaction holding its locks.
pub struct WriteTx {
    link: Link,
    pub(crate) backend: Backend,
    /// Whether events were written, so followers need waking after commit.
    pub(crate) wrote_events: bool,
    /// The trade ids each write of a batch got, in the order of the writes; see
    /// [`WriteTx::begin_batch`].
    pub(crate) written: Vec<Vec<i64>>,
    /// A planned batch's picture of what it locked ([`WriteTx::begin_planned`]).
    pub(crate) mirror: Option<Box<Mirror>>,
    /// Whether each answer of the mirror is checked against the database (tests).
    pub(crate) verify_mirror: bool,
    /// A planned batch's writes not staged yet, and the time they are all stamped with (see
    /// [`WriteTx::write_book`]).
    pub(crate) unsent: Vec<super::script::BookWrite>,
    pub(crate) batch_now: Option<i64>,
    /// Declared after `link` so the transaction (and its rollback) goes first on drop.
    _gate: Option<GateGuard>,
}

/// The connection of a [`WriteTx`] with the state of the transaction on it.
pub(crate) struct Link {
    /// Always `Some` until dropped.
    conn: Option<AnyConnection>,
    db: Db,
    _permit: OwnedSemaphorePermit,
    /// Statements (`BEGIN` and lock statements, a batch's last write) not sent yet; they go
    /// with the next query.
    pending: Sql,
    /// The number of trades of each write in `pending` whose trade ids are still to be read
    /// (PostgreSQL), in order.
    staged: Vec<usize>,
    /// Whether a `BEGIN` may have been sent with no `COMMIT` or `ROLLBACK` after it.
    open: bool,
    /// Whether the connection is the one a [`Carried`] mirror was read on (a connection lost
    /// and replaced at the first statement is not).
    pub(crate) carried: bool,
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.open {
                // The transaction may still be open: never use this connection again.
                // Dropping it closes it, and the database rolls back.
                drop(conn);
            } else {
                self.db.writers().keep(conn);
            }
        }
    }
}

impl Link {
    /// A link on `conn` (a [`Carried`] one), or on a kept or new connection.
    async fn new(db: &Db, begin: Sql, conn: Option<AnyConnection>) -> Result<Link, StoreError> {
        let permit = db
            .writers()
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Sqlx(sqlx::Error::PoolClosed))?;
        let carried = conn.is_some();
        let conn = match conn {
            Some(conn) => conn,
            None => fresh_conn(db).await?,
        };
        Ok(Link {
            conn: Some(conn),
            db: db.clone(),
            _permit: permit,
            pending: begin,
            staged: Vec::new(),
            open: false,
            carried,
        })
    }

    fn conn(&mut self) -> &mut AnyConnection {
        self.conn
            .as_mut()
            .expect("a link has its connection until dropped")
    }

    /// The statements still waiting to be sent (empty if none) followed by `sql`, and the
    /// trade counts of the staged writes among them.
    fn take_pending_then(&mut self, sql: Sql) -> (Sql, Vec<usize>) {
        let staged = std::mem::take(&mut self.staged);
        let mut all = self.pending.take();
        all.append(sql);
        (all, staged)
    }

    /// A new, empty text for this link's engine.
    pub(crate) fn sql(&self) -> Sql {
        Sql::new(self.db.backend())
    }

    /// Runs `sql` (which starts with what was pending) and returns its rows. If it is the
    /// transaction's first statement and finds its connection dead, it runs again on another
    /// connection, up to once per connection the pool may hold.
    async fn send(&mut self, sql: Sql) -> Result<Vec<AnyRow>, StoreError> {
        let first = !self.open;
        self.open = true;
        if !first {
            return sql::fetch_all(self.conn(), sql).await;
        }
        let tries = self.db.pool().options().get_max_connections() + 1;
        let mut attempt = 1;
        loop {
            match sql::fetch_all(self.conn(), sql.clone()).await {
                Err(e) if e.connection_lost() && attempt < tries => {
                    tracing::debug!(error = %e, attempt, "connection lost before the first statement; retrying");
                    attempt += 1;
                    // The dead connection is dropped, not kept.
                    self.conn = Some(fresh_conn(&self.db).await?);
                    self.carried = false;
                }
                other => return other,
            }
        }
    }

    /// Runs the waiting statements and then `sql`; returns the rows and the trade ids of each
    /// staged write that was among the waiting.
    pub(crate) async fn run(
        &mut self,
        sql: Sql,
    ) -> Result<(Vec<AnyRow>, Vec<Vec<i64>>), StoreError> {
        let (all, staged) = self.take_pending_then(sql);
        let rows = self.send(all).await?;
        let ids = written_ids(&staged, &rows)?;
        Ok((rows, ids))
    }

    /// Sends the waiting statements, if any; returns the trade ids of each staged write among
    /// them.
    pub(crate) async fn flush(&mut self) -> Result<Vec<Vec<i64>>, StoreError> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let (_, ids) = self.run(self.sql()).await?;
        Ok(ids)
    }

    /// Whether anything was or is to be sent in this transaction.
    pub(crate) fn begun(&self) -> bool {
        self.open || !self.pending.is_empty()
    }

    /// Queues a write to go with the next statement; `returns_ids`: if it returns trade ids as
    /// rows (PostgreSQL's `ex_write` and `ex_write_batch`), the number of trades of each
    /// order's write in it. See [`WriteTx::write_book`].
    pub(crate) fn stage(&mut self, write: Sql, returns_ids: impl IntoIterator<Item = usize>) {
        self.pending.append(write);
        self.staged.extend(returns_ids);
    }

    /// Runs the waiting statements and then `sql`, in which a row with the one column
    /// `marker` follows a `COMMIT`. As soon as that row arrives, `at_marker` gets the trade ids
    /// of each staged write among the waiting (they ran before it); returns the rows after it.
    /// The transaction stays open: `sql` begins the next one after its marker.
    async fn run_split(
        &mut self,
        sql: Sql,
        marker: &str,
        at_marker: impl FnOnce(Result<Vec<Vec<i64>>, StoreError>),
    ) -> Result<Vec<AnyRow>, SplitError> {
        let (all, staged) = self.take_pending_then(sql);
        self.open = true;
        let is_marker = |row: &AnyRow| is_named(row, &[marker]);
        let hand = |rows: Vec<AnyRow>| at_marker(written_ids(&staged, &rows));
        sql::fetch_split(self.conn(), all, is_marker, hand).await
    }

    /// Runs `end` (`COMMIT` or `ROLLBACK`) after whatever is pending and marks the transaction
    /// closed on success; returns the trade ids of each staged write among the pending.
    async fn finish(&mut self, end: &str) -> Result<Vec<Vec<i64>>, StoreError> {
        let mut sql = self.sql();
        sql.push(end);
        let (_, ids) = self.run(sql).await?;
        self.open = false;
        Ok(ids)
    }
}

/// A connection for a write transaction: a kept one, or a new one from the pool's.
async fn fresh_conn(db: &Db) -> Result<AnyConnection, StoreError> {
    match db.writers().pop_idle() {
        Some(conn) => Ok(conn),
        None => Ok(db.pool().acquire().await?.detach()),
    }
}

/// The trade ids of each staged write that ran among `rows`' statements (the rows of the
/// column `ex_write`, in order), split by the writes' trade counts `staged`.
fn written_ids(staged: &[usize], rows: &[AnyRow]) -> Result<Vec<Vec<i64>>, StoreError> {
    if staged.is_empty() {
        return Ok(Vec::new());
    }
    let ids = rows
        .iter()
        .filter(|r| is_write_row(r))
        .map(|row| sqlx::Row::try_get::<i64, _>(row, 0))
        .collect::<Result<Vec<i64>, _>>()?;
    if ids.len() != staged.iter().sum::<usize>() {
        return Err(super::corrupt(
            "ex_write",
            &format!(
                "{} trade ids for {} trades",
                ids.len(),
                staged.iter().sum::<usize>()
            ),
        ));
    }
    let mut rest = ids.as_slice();
    Ok(staged
        .iter()
        .map(|&n| {
            let (these, more) = rest.split_at(n);
            rest = more;
            these.to_vec()
        })
        .collect())
}

/// Whether a row is one of `ex_write`'s or `ex_write_batch`'s (a new trade's id).
pub(crate) fn is_write_row(row: &AnyRow) -> bool {
    is_named(row, &["ex_write", "ex_write_batch"])
}

/// Whether a row has one column, named one of `names`.
fn is_named(row: &AnyRow, names: &[&str]) -> bool {
    use sqlx::{Column, Row};
    row.columns().len() == 1 && names.contains(&row.columns()[0].name())
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
        tx.link.flush().await?;
        Ok(tx)
    }

    /// Begins one transaction for a batch of orders on several books (the simulator's tick,
    /// an order writer): on PostgreSQL it takes the advisory locks of `accounts` and then of
    /// `instruments` up front, each in id order, so it never waits for a lock while holding
    /// rows it wrote. Lazily: they go with the first load. Each order then costs one trip,
    /// [`WriteTx::load_next`], which carries the previous order's write
    /// ([`WriteTx::write_book`]); [`WriteTx::commit_batch`] sends the last write with `COMMIT`.
    pub async fn begin_batch(
        db: &Db,
        accounts: &[i64],
        instruments: &[i64],
    ) -> Result<WriteTx, StoreError> {
        let mut tx = WriteTx::begin_lazy(db, Locks::default()).await?;
        if db.backend() == Backend::Postgres {
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
                    tx.link.pending.push(&advisory_many_sql(class, &keys));
                }
            }
        }
        Ok(tx)
    }

    /// Begins a write transaction whose `BEGIN` and locks go with its first statement. On
    /// SQLite the writer gate is entered now.
    pub async fn begin_lazy(db: &Db, locks: Locks) -> Result<WriteTx, StoreError> {
        WriteTx::begin_lazy_on(db, locks, None).await
    }

    /// [`WriteTx::begin_lazy`] on `conn` if given (a [`Carried`] one).
    pub(crate) async fn begin_lazy_on(
        db: &Db,
        locks: Locks,
        conn: Option<AnyConnection>,
    ) -> Result<WriteTx, StoreError> {
        let mut begin = Sql::new(db.backend());
        let gate = match db.backend() {
            Backend::Postgres => {
                // Accounts before books, always in this order, so lock waits cannot form a
                // cycle. The keys are integers formatted here.
                begin.push("BEGIN;");
                if let Some(account) = locks.account {
                    begin.push(&advisory_sql(LOCK_CLASS_ACCOUNT, account));
                }
                if let Some(instrument) = locks.instrument {
                    begin.push(&advisory_sql(LOCK_CLASS_BOOK, instrument));
                }
                None
            }
            Backend::Sqlite => {
                begin.push("BEGIN IMMEDIATE;");
                Some(sqlite_gate(db).await?.enter().await?)
            }
        };
        Ok(WriteTx::on(
            Link::new(db, begin, conn).await?,
            db.backend(),
            gate,
        ))
    }

    /// A transaction on `link`, which has begun it or will with its first statement.
    fn on(link: Link, backend: Backend, gate: Option<GateGuard>) -> WriteTx {
        WriteTx {
            link,
            backend,
            wrote_events: false,
            written: Vec::new(),
            mirror: None,
            verify_mirror: false,
            unsent: Vec::new(),
            batch_now: None,
            _gate: gate,
        }
    }

    /// The database this transaction writes to.
    pub(crate) fn db(&self) -> &Db {
        &self.link.db
    }

    /// Commits; the locks go with the transaction.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.finish_with("").await
    }

    /// Runs `statements` (in the same trip as the `COMMIT`), then commits.
    pub(crate) async fn finish_with(mut self, statements: &str) -> Result<(), StoreError> {
        // A lazy transaction that never sent anything has nothing to commit.
        if self.link.open || !statements.is_empty() {
            self.link.pending.push(statements);
            self.link.finish("COMMIT;").await?;
        }
        self.committed();
        Ok(())
    }

    /// Marks the end of a transaction whose `COMMIT` was sent: releases the gate and wakes
    /// followers. A planned batch leaves its mirror (on SQLite with its connection) for the
    /// next one ([`Carried`]).
    fn committed(self) {
        let WriteTx {
            mut link,
            _gate,
            backend,
            wrote_events,
            mirror,
            ..
        } = self;
        let pool = link.db.pool().clone();
        if let (false, Some(mirror)) = (link.open, mirror) {
            let carried = mirror.carry().and_then(|mirror| match backend {
                // The data_version it is stamped with is this connection's.
                Backend::Sqlite => link.conn.take().map(|conn| Carried {
                    conn: Some(conn),
                    mirror,
                }),
                Backend::Postgres => Some(Carried { conn: None, mirror }),
            });
            if let Some(carried) = carried {
                link.db.writers().carry(carried);
            }
        }
        drop(link);
        drop(_gate);
        if wrote_events && backend == Backend::Postgres {
            wake_followers(&pool);
        }
    }

    /// Rolls back. A failure to roll back is logged: the connection is then closed rather
    /// than reused, which rolls back in the database just the same.
    pub async fn rollback(self) {
        let WriteTx {
            mut link, _gate, ..
        } = self;
        if link.open {
            // Whatever was pending never ran; only what was sent needs undoing.
            link.pending.take();
            link.staged.clear();
            if let Err(e) = link.finish("ROLLBACK;").await {
                tracing::debug!(error = %e, "rollback failed; the connection is closed instead");
            }
        }
    }

    /// The connection, for queries. A lazily begun transaction must have sent its first
    /// statement already (every statement after [`WriteTx::begin`] may use this).
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        debug_assert!(
            self.link.pending.is_empty(),
            "a lazy transaction was not begun"
        );
        self.link.conn()
    }

    /// The connection with the state of its transaction, for statements that carry `BEGIN`
    /// or `COMMIT` themselves.
    pub(crate) fn link(&mut self) -> &mut Link {
        &mut self.link
    }

    /// Commits a batch and, in the same trip, begins the next transaction on this connection
    /// (PostgreSQL only): `next` holds its first statements, which run after the `COMMIT` and
    /// the `BEGIN` this adds, taking its locks there. The trip is the batch's last write,
    /// `COMMIT`, a marker row, `ex_flush()` (migration 0014: a notice, which makes the server
    /// send what it has at once), `BEGIN` and `next`; so when the marker arrives the commit
    /// has succeeded, and `at_commit` gets the trade ids of every [`WriteTx::write_book`] in
    /// order (or why they cannot be read) before `next` is back.
    ///
    /// Returns `Err` if the batch is not known to have committed, and then `at_commit` was
    /// not called: a statement the server refused means nothing of the batch was written
    /// ([`StoreError::rolled_back`]); a lost connection, that the outcome is unknown.
    /// Otherwise the new transaction with the rows of `next`, or why it could not begin (its
    /// connection is closed then, which rolls it back).
    pub(crate) async fn commit_and_begin(
        mut self,
        next: Sql,
        at_commit: impl FnOnce(Result<Vec<Vec<i64>>, StoreError>),
    ) -> Result<Result<(WriteTx, Vec<AnyRow>), StoreError>, StoreError> {
        debug_assert_eq!(self.backend, Backend::Postgres);
        self.stage_unsent()?;
        let mut sql = self.link.sql();
        sql.push("COMMIT;SELECT 1 AS ex_committed;SELECT ex_flush();BEGIN;");
        sql.append(next);
        let WriteTx {
            mut link,
            backend,
            wrote_events,
            mut written,
            _gate,
            ..
        } = self;
        let pool = link.db.pool().clone();
        let committed = |last: Result<Vec<Vec<i64>>, StoreError>| {
            if wrote_events {
                wake_followers(&pool);
            }
            at_commit(last.map(|last| {
                written.extend(last);
                written
            }));
        };
        match link.run_split(sql, "ex_committed", committed).await {
            Ok(rows) => Ok(Ok((WriteTx::on(link, backend, _gate), rows))),
            Err(SplitError {
                passed: true,
                error,
            }) => Ok(Err(error)),
            Err(SplitError {
                passed: false,
                error,
            }) => Err(error),
        }
    }

    /// Sends a batch's last write with `COMMIT`. Returns the trade ids of every
    /// [`WriteTx::write_book`], in order.
    pub async fn commit_batch(mut self) -> Result<Vec<Vec<i64>>, StoreError> {
        let mut last = Vec::new();
        self.stage_unsent()?;
        if self.link.begun() {
            last = self.link.finish("COMMIT;").await?;
        }
        let mut written = std::mem::take(&mut self.written);
        written.extend(last);
        self.committed();
        Ok(written)
    }
}

/// The shortest time between two NOTIFYs of one process. Followers see a commit at most this
/// much later than they could; SQLite's followers poll every 50 ms. With 2 ms, eight processes
/// trading flat out sent a NOTIFY for three orders in four, as many transactions again.
const NOTIFY_GAP: std::time::Duration = std::time::Duration::from_millis(20);

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
            // Each NOTIFY is a transaction of its own that takes the server's notification
            // lock: at most one per NOTIFY_GAP from this process, whatever the order rate.
            tokio::time::sleep(NOTIFY_GAP).await;
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
