//! The job table: deferred work that survives a restart.
//!
//! This module owns the SQL of `jobs` and nothing else: it does not know what a job does,
//! how long to back off (the caller passes the next run time) or when to poll. A claim is a
//! lease: a conditional `UPDATE ... WHERE locked_until IS NULL OR locked_until <= now`, which
//! both SQLite (one writer at a time) and PostgreSQL (the `WHERE` is re-checked after a row
//! lock wait) apply to at most one claimer per job. A worker that dies simply lets its lease
//! run out.

use sqlx::Row;

use super::{Db, StoreError};

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    /// The job's arguments as JSON text.
    pub payload: String,
    pub run_at: i64,
    /// How many times the job has been claimed, this claim included.
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
    pub locked_by: Option<String>,
    pub locked_until: Option<i64>,
    pub done_at: Option<i64>,
    pub dead_at: Option<i64>,
}

const COLUMNS: &str = "id, kind, payload, run_at, attempts, max_attempts, last_error, \
                       locked_by, locked_until, done_at, dead_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<JobRow, StoreError> {
    Ok(JobRow {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        run_at: row.try_get("run_at")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        last_error: row.try_get("last_error")?,
        locked_by: row.try_get("locked_by")?,
        locked_until: row.try_get("locked_until")?,
        done_at: row.try_get("done_at")?,
        dead_at: row.try_get("dead_at")?,
    })
}

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub payload: &'a str,
    /// When set, a second job with the same key is not added.
    pub dedupe_key: Option<&'a str>,
    pub run_at: i64,
    pub max_attempts: i64,
}

/// Adds a job. Returns its id, or `None` when a job with the same dedupe key already exists.
pub async fn insert(db: &Db, job: &NewJob<'_>, now: i64) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query(
        "INSERT INTO jobs (kind, payload, dedupe_key, run_at, max_attempts, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
    )
    .bind(job.kind)
    .bind(job.payload)
    .bind(job.dedupe_key)
    .bind(job.run_at)
    .bind(job.max_attempts.max(1))
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("id")?),
        None => None,
    })
}

/// Claims the oldest due job for `worker` until `now + lease_ms`, counting an attempt.
/// Returns `None` when no job is due and free.
pub async fn claim(
    db: &Db,
    worker: &str,
    now: i64,
    lease_ms: i64,
) -> Result<Option<JobRow>, StoreError> {
    // Another worker may win the race for the candidate; then look again. The loop ends
    // because every lost race means some other worker made progress.
    for _ in 0..16 {
        let candidate = sqlx::query(
            "SELECT id FROM jobs WHERE done_at IS NULL AND dead_at IS NULL AND run_at <= $1 \
             AND (locked_until IS NULL OR locked_until <= $1) ORDER BY run_at, id LIMIT 1",
        )
        .bind(now)
        .fetch_optional(db.pool())
        .await?;
        let Some(candidate) = candidate else {
            return Ok(None);
        };
        let id: i64 = candidate.try_get("id")?;
        let taken = sqlx::query(
            "UPDATE jobs SET locked_by = $1, locked_until = $2, attempts = attempts + 1 \
             WHERE id = $3 AND done_at IS NULL AND dead_at IS NULL \
             AND (locked_until IS NULL OR locked_until <= $4)",
        )
        .bind(worker)
        .bind(now + lease_ms)
        .bind(id)
        .bind(now)
        .execute(db.pool())
        .await?
        .rows_affected();
        if taken == 1 {
            return get(db, id).await;
        }
    }
    Ok(None)
}

/// Marks a job this worker holds as done. Returns false if the worker no longer held it
/// (its lease ran out and another worker took the job).
pub async fn complete(db: &Db, id: i64, worker: &str, now: i64) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE jobs SET done_at = $1, locked_by = NULL, locked_until = NULL, last_error = NULL \
         WHERE id = $2 AND locked_by = $3 AND done_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(worker)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records a failed attempt: the job runs again at `retry_at`, or, when `retry_at` is `None`,
/// it is dead. Returns false if the worker no longer held the job.
pub async fn fail(
    db: &Db,
    id: i64,
    worker: &str,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE jobs SET last_error = $1, locked_by = NULL, locked_until = NULL, \
         run_at = COALESCE($2, run_at), dead_at = CASE WHEN $3 = 1 THEN $4 ELSE NULL END \
         WHERE id = $5 AND locked_by = $6 AND done_at IS NULL",
    )
    .bind(error)
    .bind(retry_at)
    .bind(i64::from(retry_at.is_none()))
    .bind(now)
    .bind(id)
    .bind(worker)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A job by id.
pub async fn get(db: &Db, id: i64) -> Result<Option<JobRow>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every job of a kind, oldest first (for tools and tests).
pub async fn by_kind(db: &Db, kind: &str) -> Result<Vec<JobRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE kind = $1 ORDER BY id"
    ))
    .bind(kind)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// The earliest run time of a job that is neither done nor dead, if any.
pub async fn next_run_at(db: &Db) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query(
        "SELECT MIN(run_at) AS next FROM jobs WHERE done_at IS NULL AND dead_at IS NULL",
    )
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get("next")?)
}
