//! The database: the only module that knows SQL.
//!
//! [`Db`] is a cheap-clone handle over an `sqlx` pool of the `Any` driver, so the same queries
//! run on SQLite (the embedded default: WAL, foreign keys on, a busy time-out) and PostgreSQL
//! (when the URL says `postgres://`). Where the dialects differ (schema DDL, locking), the code
//! asks [`Db::backend`]. Migrations live in `migrations/sqlite` and `migrations/postgres`, one
//! file per step with the same number in both, and run at start-up.
//!
//! Times are stored as `BIGINT` milliseconds since the Unix epoch; booleans as `0`/`1`
//! integers; money as integer cents. Nothing above this module sees a row or a SQL string.

pub mod calls;
pub mod exchange;
pub mod inbox;
pub mod jobs;
pub mod market;
pub mod notify;
pub mod players;
pub mod seasons;
pub mod users;

#[doc(hidden)]
pub mod testing;

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a SQLite connection waits for a lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Picks the backend from a database URL.
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::BadUrl(url.to_string()))
        }
    }
}

/// Errors from the storage layer.
///
/// The database variants carry the driver's error in their message rather than as a `source`,
/// so an error chain printed with its causes says each thing once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no database we support.
    #[error("unsupported database URL {0:?}: expected sqlite:PATH or postgres://...")]
    BadUrl(String),
    /// The SQLite file's folder could not be created.
    #[error("cannot create database folder {path}: {error}")]
    CreateDir { path: String, error: std::io::Error },
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// A query failed. Callers show players only "internal error" for this.
    #[error("database error: {0}")]
    Sqlx(sqlx::Error),
}

impl StoreError {
    /// Whether the server answered a statement with an error (a deadlock, a constraint), so
    /// that the transaction it ran in did not commit; not when the connection broke, where a
    /// `COMMIT` may have taken effect unseen.
    pub fn rolled_back(&self) -> bool {
        matches!(self, StoreError::Sqlx(sqlx::Error::Database(_))) && !self.connection_lost()
    }

    /// Whether the connection was found dead (the server restarted or dropped it, the socket
    /// broke): the statement did not run, and a fresh connection may well succeed.
    pub fn connection_lost(&self) -> bool {
        match self {
            StoreError::Sqlx(sqlx::Error::Io(_)) => true,
            // PostgreSQL: admin shutdown, crash shutdown, cannot connect now, and the whole
            // connection-exception class.
            StoreError::Sqlx(sqlx::Error::Database(e)) => e.code().is_some_and(|c| {
                matches!(c.as_ref(), "57P01" | "57P02" | "57P03") || c.starts_with("08")
            }),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Sqlx(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e)
    }
}

/// A handle to the database; clones share one pool.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// The exchange's write transactions' connections, kept apart from the pool.
    writers: std::sync::Arc<exchange::tx::Writers>,
}

impl Db {
    /// Connects (creating a SQLite file and its folder if needed) without migrating.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let mut pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            // A ping before each use finds PostgreSQL connections the server dropped (a
            // restart). SQLite's connections live in this process and cannot be dropped, and
            // there the ping is a hop to sqlx's SQLite thread per transaction: a fifth of an
            // order's time (BENCHMARKS.md), so SQLite goes without.
            .test_before_acquire(backend == Backend::Postgres);
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // Set per connection: WAL lets readers run beside the one writer; NORMAL
                    // sync is durable at every commit in WAL mode except on power loss.
                    conn.execute(
                        format!(
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                             PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                             PRAGMA synchronous = NORMAL;"
                        )
                        .as_str(),
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect_with(options).await?;
        // SQLite runs one write transaction at a time anyway (the file has one writer), so
        // one connection serves them and its page cache stays warm. PostgreSQL's may run
        // side by side, up to half the pool's size again.
        let writers = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => (max_connections as usize / 2).max(1),
        };
        Ok(Db {
            pool,
            backend,
            writers: std::sync::Arc::new(exchange::tx::Writers::new(writers)),
        })
    }

    /// Connects and runs every pending migration.
    pub async fn open(url: &str, max_connections: u32) -> Result<Db, StoreError> {
        let db = Db::connect(url, max_connections).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Runs every pending migration for this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// The engine behind this handle.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for the query modules inside `store` (and the exchange's store code).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The connections of the exchange's write transactions.
    pub(crate) fn writers(&self) -> &exchange::tx::Writers {
        &self.writers
    }

    /// Closes every pooled connection and every kept write connection.
    pub async fn close(&self) {
        self.writers.close().await;
        self.pool.close().await;
    }
}

/// Makes sure the SQLite file can be created: its folder exists and `mode=rwc` is set.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path != ":memory:" && !path.is_empty() {
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|error| StoreError::CreateDir {
                    path: parent.display().to_string(),
                    error,
                })?;
            }
        }
    }
    let query = match query {
        Some(q) if q.contains("mode=") => q.to_string(),
        Some(q) => format!("{q}&mode=rwc"),
        None => "mode=rwc".to_string(),
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// The same database URL with a relative SQLite path made absolute against the working
/// folder, so that another process started elsewhere (a door) opens the same file.
pub fn absolute_url(url: &str) -> String {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return url.to_string();
    };
    let rest = rest.trim_start_matches("//");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, format!("?{q}")),
        None => (rest, String::new()),
    };
    if path.is_empty() || path == ":memory:" || path.starts_with('/') {
        return url.to_string();
    }
    match std::env::current_dir() {
        Ok(dir) => format!("sqlite://{}{query}", dir.join(path).display()),
        Err(_) => url.to_string(),
    }
}

/// A database URL fit for logs and error messages: any password is replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let host_start = rest.find('@');
    let path_start = rest.find('/').unwrap_or(rest.len());
    match host_start {
        Some(at) if at < path_start => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end], &rest[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A PostgreSQL URL naming database `name` instead, with the rest kept: user, host, port
/// and parameters such as `?host=/var/run/postgresql` (a Unix socket, whose path has slashes
/// of its own). libpq's tools (psql, pgbench) read the result too.
pub fn postgres_url_with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    match base[scheme_end..].find('/') {
        Some(slash) => format!("{}/{name}{query}", &base[..scheme_end + slash]),
        None => format!("{base}/{name}{query}"),
    }
}

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_name_another_database_and_keep_the_rest() {
        let with = postgres_url_with_database;
        assert_eq!(
            with("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with("postgres:///exb?host=/var/run/postgresql&user=me", "x"),
            "postgres:///x?host=/var/run/postgresql&user=me"
        );
    }

    #[test]
    fn sqlite_url_gets_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.db");
        let url = prepare_sqlite_url(&format!("sqlite://{}", path.display())).unwrap();
        assert!(url.ends_with("?mode=rwc"), "{url}");
        assert!(path.parent().unwrap().is_dir());
    }

    #[test]
    fn relative_sqlite_urls_become_absolute() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            absolute_url("sqlite://data/x.db"),
            format!("sqlite://{}", cwd.join("data/x.db").display())
        );
        assert_eq!(absolute_url("sqlite:///srv/x.db"), "sqlite:///srv/x.db");
        assert_eq!(absolute_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://bbs:hunter2@db:5432/nug"),
            "postgres://bbs:***@db:5432/nug"
        );
        assert_eq!(redact_url("postgres://bbs@db/nug"), "postgres://bbs@db/nug");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn backend_from_url() {
        assert_eq!(Backend::from_url("sqlite:x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::from_url("mysql://x").is_err());
    }

    #[tokio::test]
    async fn migrations_run_twice_without_error() {
        let db = testing::fresh_db().await;
        db.db.migrate().await.unwrap();
    }
}
