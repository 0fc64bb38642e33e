//! The job table: retries with back-off, safe claims by several workers, and recovery of a job
//! whose worker crashed. Time is passed explicitly; nothing sleeps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nuggetnet::jobs::{self, Backoff, Enqueue, Handlers, Ran, RunnerConfig};
use nuggetnet::store::testing::fresh_db;
use serde_json::json;

const T0: i64 = 1_700_000_000_000;

fn config(worker: &str) -> RunnerConfig {
    RunnerConfig {
        worker: worker.to_string(),
        lease_ms: 30_000,
        poll: std::time::Duration::from_millis(10),
        backoff: Backoff {
            base_ms: 1_000,
            cap_ms: 60_000,
        },
    }
}

#[tokio::test]
async fn failing_job_backs_off_then_dies() {
    let t = fresh_db().await;
    let mut job = Enqueue::new("flaky", json!({"n": 1}), T0);
    job.max_attempts = 3;
    let id = jobs::enqueue(&t.db, job, T0).await.unwrap().unwrap();

    let calls = Arc::new(AtomicUsize::new(0));
    let mut handlers = Handlers::new();
    let c = calls.clone();
    handlers.register("flaky", move |_job, _now| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            Err("the wire is down".to_string())
        }
    });
    let cfg = config("w1");

    assert_eq!(
        jobs::run_once(&t.db, &handlers, &cfg, T0).await.unwrap(),
        Ran::Retry(id, T0 + 1_000)
    );
    // Not due again before the back-off has passed.
    assert_eq!(
        jobs::run_once(&t.db, &handlers, &cfg, T0 + 999)
            .await
            .unwrap(),
        Ran::Idle
    );
    assert_eq!(
        jobs::run_once(&t.db, &handlers, &cfg, T0 + 1_000)
            .await
            .unwrap(),
        Ran::Retry(id, T0 + 1_000 + 2_000)
    );
    let row = jobs::get(&t.db, id).await.unwrap().unwrap();
    assert_eq!(row.attempts, 2);
    assert_eq!(row.run_at, T0 + 3_000);
    assert_eq!(row.last_error.as_deref(), Some("the wire is down"));
    assert_eq!(row.locked_by, None);

    assert_eq!(
        jobs::run_once(&t.db, &handlers, &cfg, T0 + 3_000)
            .await
            .unwrap(),
        Ran::Dead(id)
    );
    let row = jobs::get(&t.db, id).await.unwrap().unwrap();
    assert_eq!(row.dead_at, Some(T0 + 3_000));
    assert_eq!(row.done_at, None);
    // A dead job is never claimed again.
    assert_eq!(
        jobs::run_once(&t.db, &handlers, &cfg, T0 + 10_000_000)
            .await
            .unwrap(),
        Ran::Idle
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn two_claimers_never_take_the_same_job() {
    let t = fresh_db().await;
    for n in 0..20 {
        jobs::enqueue(&t.db, Enqueue::new("work", json!({ "n": n }), T0), T0)
            .await
            .unwrap();
    }
    let claim_all = |worker: &'static str| {
        let db = t.db.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(job) = jobs::claim(&db, worker, T0, 30_000).await.unwrap() {
                assert_eq!(job.locked_by.as_deref(), Some(worker));
                got.push(job.id);
            }
            got
        })
    };
    let (a, b) = (claim_all("a"), claim_all("b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let mut all: Vec<i64> = a.iter().chain(b.iter()).copied().collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a job was claimed twice: {a:?} {b:?}");
    assert_eq!(all.len(), 20);
}

#[tokio::test]
async fn crashed_workers_job_runs_again_after_its_lease() {
    let t = fresh_db().await;
    let id = jobs::enqueue(
        &t.db,
        Enqueue::new("deliver", json!({}), T0).dedupe("once".into()),
        T0,
    )
    .await
    .unwrap()
    .unwrap();
    // The same dedupe key does not add a second job.
    assert_eq!(
        jobs::enqueue(
            &t.db,
            Enqueue::new("deliver", json!({}), T0).dedupe("once".into()),
            T0
        )
        .await
        .unwrap(),
        None
    );

    // Worker "crashed" claims the job and then dies without completing it.
    let claimed = jobs::claim(&t.db, "crashed", T0, 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, id);

    let mut handlers = Handlers::new();
    handlers.register("deliver", |_job, _now| async { Ok(()) });
    let cfg = config("survivor");
    // While the lease holds, nobody else takes it.
    assert_eq!(
        jobs::run_once(&t.db, &handlers, &cfg, T0 + 29_999)
            .await
            .unwrap(),
        Ran::Idle
    );
    // After it runs out, the survivor does.
    assert_eq!(
        jobs::run_once(&t.db, &handlers, &cfg, T0 + 30_000)
            .await
            .unwrap(),
        Ran::Done(id)
    );
    let row = jobs::get(&t.db, id).await.unwrap().unwrap();
    assert_eq!(row.done_at, Some(T0 + 30_000));
    assert_eq!(row.attempts, 2);
    // The crashed worker, coming back late, cannot complete what it no longer holds.
    assert!(!jobs::complete(&t.db, &claimed, "crashed", T0 + 40_000)
        .await
        .unwrap());
}

#[tokio::test]
async fn runner_runs_due_jobs_until_shutdown() {
    let t = fresh_db().await;
    let now = nuggetnet::store::now_ms();
    let id = jobs::enqueue(&t.db, Enqueue::new("ping", json!({}), now), now)
        .await
        .unwrap()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut handlers = Handlers::new();
    handlers.register("ping", move |job, _now| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(job.id);
            Ok(())
        }
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let runner = tokio::spawn(jobs::run(t.db.clone(), handlers, config("r"), stop.clone()));
    assert_eq!(rx.recv().await, Some(id));
    stop.cancel();
    runner.await.unwrap();
    let row = jobs::get(&t.db, id).await.unwrap().unwrap();
    assert!(row.done_at.is_some());
}
