//! Fresh, throw-away databases for tests, on whichever backend the test run is pointed at.
//!
//! `NUGGETNET_TEST_DATABASE_URL` chooses the backend: unset (or a `sqlite:` URL) gives each
//! test its own SQLite file in a temporary folder; a `postgres://` URL gives each test its own
//! freshly created PostgreSQL database on that server, dropped again when the test ends.
//! `.ci/run` runs the whole suite once each way.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, Executor};

use super::{Backend, Db};

/// The environment variable that points the test suite at a database server.
pub const TEST_DATABASE_ENV: &str = "NUGGETNET_TEST_DATABASE_URL";

/// A database that exists for one test.
pub struct TestDb {
    /// The migrated database.
    pub db: Db,
    /// Its URL, for tests that start the real binary against it.
    pub url: String,
    cleanup: Cleanup,
}

/// What to remove when a test database is dropped.
pub enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

/// The backend the test suite runs against.
pub fn test_backend() -> Backend {
    match std::env::var(TEST_DATABASE_ENV) {
        Ok(url) if url.starts_with("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

/// Creates and migrates a new empty database. Panics if the test database cannot be reached:
/// this is test-only code and a panic is the clearest failure there.
pub async fn fresh_db() -> TestDb {
    let (url, cleanup) = fresh_url().await;
    let db = Db::open(&url, 8)
        .await
        .expect("open and migrate the test database");
    TestDb { db, url, cleanup }
}

/// Creates a new empty database without connecting to it, for tests whose subject opens it.
pub async fn fresh_url() -> (String, Cleanup) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    match std::env::var(TEST_DATABASE_ENV) {
        Ok(admin_url) if admin_url.starts_with("postgres") => {
            let name = format!(
                "nntest_{}_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                rand::random::<u32>()
            );
            sqlx::any::install_default_drivers();
            let mut admin = sqlx::AnyConnection::connect(&admin_url)
                .await
                .expect("connect to the PostgreSQL test server");
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create a test database");
            admin.close().await.ok();
            let url = super::postgres_url_with_database(&admin_url, &name);
            (url, Cleanup::Postgres { admin_url, name })
        }
        _ => {
            let dir = tempfile::tempdir().expect("temporary folder");
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            (url, Cleanup::Sqlite(dir))
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside or outside a runtime; a thread with its own runtime works in both.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(mut admin) = sqlx::AnyConnection::connect(&admin_url).await {
                        let _ = admin
                            .execute(
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                            )
                            .await;
                        let _ = admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // The pool's connections go when the database does (WITH FORCE); nothing to do here,
        // but keep the field order explicit: `db` drops before `cleanup`.
        let _ = &self.cleanup;
    }
}
