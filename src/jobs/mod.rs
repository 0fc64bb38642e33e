//! Deferred work with retries: the role the original seed gave Celery.
//!
//! This module owns the job lifecycle (enqueue, claim under a lease, complete, fail with
//! exponential back-off, dead after the last attempt) and the runner that polls for due jobs
//! and hands each to the [`Handlers`] registered for its kind. It must not know what any job
//! does (mail, reminders and the end of a game register their own handlers) and it holds no
//! SQL (that is `store::jobs`).
//!
//! Nothing is lost when a process stops mid-job: the job stays claimed only until its lease
//! runs out, then any worker claims it again. Handlers must therefore be idempotent (the
//! inbox, for instance, delivers with a unique key per job).
//!
//! Time is passed in: [`run_once`] takes `now`, so tests drive an accelerated clock; only
//! [`run`] reads the wall clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use crate::store::jobs::JobRow as Job;
use crate::store::jobs::{self as sj, NewJob};
use crate::store::{now_ms, Db, StoreError};

/// Errors from the job layer.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A payload could not be turned into JSON or read back.
    #[error("bad job payload: {0}")]
    Payload(#[from] serde_json::Error),
    /// A job expected to be new had a dedupe key that was already used.
    #[error("a job with this key already exists")]
    Duplicate,
    /// A storage failure.
    #[error("internal error")]
    Store(#[from] StoreError),
}

/// How jobs are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure, in ms.
    pub base_ms: i64,
    /// The longest wait, in ms.
    pub cap_ms: i64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 1_000,
            cap_ms: 3_600_000,
        }
    }
}

impl Backoff {
    /// The wait after the `attempt`-th failed attempt (1-based): `base * 2^(attempt - 1)`,
    /// never above the cap. Deterministic, so tests can predict the next run time.
    pub fn delay_ms(&self, attempt: i64) -> i64 {
        let shift = attempt.saturating_sub(1).clamp(0, 40) as u32;
        self.base_ms
            .max(0)
            .saturating_mul(1_i64 << shift)
            .min(self.cap_ms.max(0))
    }

    /// What to do after the `attempt`-th failure out of `max_attempts`: the next run time, or
    /// `None` when the job is dead.
    pub fn retry_at(&self, attempt: i64, max_attempts: i64, now: i64) -> Option<i64> {
        (attempt < max_attempts).then(|| now.saturating_add(self.delay_ms(attempt)))
    }
}

/// How a runner works.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// This worker's name, stored in `locked_by` (host and process id by default).
    pub worker: String,
    /// How long a claim lasts before another worker may take the job again.
    pub lease_ms: i64,
    /// How often to look for due jobs when none were found.
    pub poll: Duration,
    pub backoff: Backoff,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            worker: format!("pid-{}-{}", std::process::id(), rand::random::<u32>()),
            lease_ms: 60_000,
            poll: Duration::from_millis(500),
            backoff: Backoff::default(),
        }
    }
}

/// A job's code: given the job and `now`, succeed or fail with a message that is stored.
pub type HandlerFn =
    Arc<dyn Fn(Job, i64) -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static>;

/// The handlers by job kind.
#[derive(Clone, Default)]
pub struct Handlers {
    by_kind: HashMap<String, HandlerFn>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_kind.keys()).finish()
    }
}

impl Handlers {
    /// No handlers.
    pub fn new() -> Handlers {
        Handlers::default()
    }

    /// Registers the handler for a kind, replacing any earlier one.
    pub fn register<F, Fut>(&mut self, kind: &str, f: F)
    where
        F: Fn(Job, i64) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.by_kind.insert(
            kind.to_string(),
            Arc::new(move |job, now| {
                let f = f.clone();
                Box::pin(async move { f(job, now).await })
            }),
        );
    }

    /// Adds every handler of `other`.
    pub fn extend(&mut self, other: Handlers) {
        self.by_kind.extend(other.by_kind);
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct Enqueue<'a> {
    pub kind: &'a str,
    /// The arguments; stored as JSON.
    pub payload: serde_json::Value,
    /// When set, a second job with the same key is not added.
    pub dedupe_key: Option<String>,
    pub run_at: i64,
    pub max_attempts: i64,
}

impl<'a> Enqueue<'a> {
    /// A job of `kind` due at `run_at` with five attempts and no dedupe key.
    pub fn new(kind: &'a str, payload: serde_json::Value, run_at: i64) -> Enqueue<'a> {
        Enqueue {
            kind,
            payload,
            dedupe_key: None,
            run_at,
            max_attempts: 5,
        }
    }

    /// Sets the dedupe key.
    pub fn dedupe(mut self, key: String) -> Enqueue<'a> {
        self.dedupe_key = Some(key);
        self
    }
}

/// Adds a job; returns its id, or `None` if its dedupe key was already used.
pub async fn enqueue(db: &Db, job: Enqueue<'_>, now: i64) -> Result<Option<i64>, JobError> {
    let payload = serde_json::to_string(&job.payload)?;
    Ok(sj::insert(
        db,
        &NewJob {
            kind: job.kind,
            payload: &payload,
            dedupe_key: job.dedupe_key.as_deref(),
            run_at: job.run_at,
            max_attempts: job.max_attempts,
        },
        now,
    )
    .await?)
}

/// Claims the oldest due job for `worker` until `now + lease_ms`.
pub async fn claim(
    db: &Db,
    worker: &str,
    now: i64,
    lease_ms: i64,
) -> Result<Option<Job>, JobError> {
    Ok(sj::claim(db, worker, now, lease_ms).await?)
}

/// Marks a held job done; false if the lease had been lost to another worker.
pub async fn complete(db: &Db, job: &Job, worker: &str, now: i64) -> Result<bool, JobError> {
    Ok(sj::complete(db, job.id, worker, now).await?)
}

/// Records a failed attempt of a held job: retried after the back-off, or dead after its last
/// attempt. False if the lease had been lost to another worker.
pub async fn fail(
    db: &Db,
    job: &Job,
    worker: &str,
    error: &str,
    backoff: &Backoff,
    now: i64,
) -> Result<bool, JobError> {
    let retry_at = backoff.retry_at(job.attempts, job.max_attempts, now);
    Ok(sj::fail(db, job.id, worker, error, retry_at, now).await?)
}

/// A job by id.
pub async fn get(db: &Db, id: i64) -> Result<Option<Job>, JobError> {
    Ok(sj::get(db, id).await?)
}

/// What [`run_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// No job was due.
    Idle,
    /// The job succeeded.
    Done(i64),
    /// The job failed and will run again at the given time.
    Retry(i64, i64),
    /// The job failed its last attempt.
    Dead(i64),
    /// The job finished but its lease had been taken by another worker meanwhile.
    LeaseLost(i64),
}

/// Claims and runs at most one due job at `now`.
pub async fn run_once(
    db: &Db,
    handlers: &Handlers,
    config: &RunnerConfig,
    now: i64,
) -> Result<Ran, JobError> {
    let Some(job) = claim(db, &config.worker, now, config.lease_ms).await? else {
        return Ok(Ran::Idle);
    };
    let outcome = match handlers.by_kind.get(&job.kind) {
        Some(handler) => handler(job.clone(), now).await,
        // An older or newer process may know this kind; retrying lets it run there.
        None => Err(format!("no handler for job kind {:?}", job.kind)),
    };
    match outcome {
        Ok(()) => {
            if complete(db, &job, &config.worker, now).await? {
                Ok(Ran::Done(job.id))
            } else {
                Ok(Ran::LeaseLost(job.id))
            }
        }
        Err(error) => {
            tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, %error, "job failed");
            let retry_at = config.backoff.retry_at(job.attempts, job.max_attempts, now);
            if !fail(db, &job, &config.worker, &error, &config.backoff, now).await? {
                return Ok(Ran::LeaseLost(job.id));
            }
            Ok(match retry_at {
                Some(at) => Ran::Retry(job.id, at),
                None => Ran::Dead(job.id),
            })
        }
    }
}

/// Runs due jobs until `shutdown` is cancelled, polling when there is nothing to do. A
/// storage error is logged and retried after a poll interval.
pub async fn run(db: Db, handlers: Handlers, config: RunnerConfig, shutdown: CancellationToken) {
    tracing::info!(worker = %config.worker, "job runner started");
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let idle = match run_once(&db, &handlers, &config, now_ms()).await {
            Ok(Ran::Idle) => true,
            Ok(_) => false,
            Err(error) => {
                tracing::error!(%error, "job runner");
                true
            }
        };
        if idle {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(config.poll) => {}
            }
        }
    }
    tracing::info!(worker = %config.worker, "job runner stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            base_ms: 1_000,
            cap_ms: 10_000,
        };
        assert_eq!(b.delay_ms(1), 1_000);
        assert_eq!(b.delay_ms(2), 2_000);
        assert_eq!(b.delay_ms(3), 4_000);
        assert_eq!(b.delay_ms(4), 8_000);
        assert_eq!(b.delay_ms(5), 10_000);
        assert_eq!(b.delay_ms(500), 10_000);
        assert_eq!(b.delay_ms(0), 1_000);
    }

    #[test]
    fn retry_stops_at_max_attempts() {
        let b = Backoff::default();
        assert_eq!(b.retry_at(1, 3, 100), Some(1_100));
        assert_eq!(b.retry_at(2, 3, 100), Some(2_100));
        assert_eq!(b.retry_at(3, 3, 100), None);
    }
}
