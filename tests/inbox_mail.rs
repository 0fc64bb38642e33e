//! The inbox: player mail delivered through the job table (also across a restart), reading,
//! replying, deleting, unread counts, system mail and validation.

use nuggetnet::inbox::{self, InboxError, MailKind};
use nuggetnet::jobs::{self, Backoff, Handlers, Ran, RunnerConfig};
use nuggetnet::store::players;
use nuggetnet::store::testing::fresh_db;
use nuggetnet::store::Db;

const T0: i64 = 1_700_000_000_000;

fn worker(name: &str) -> RunnerConfig {
    RunnerConfig {
        worker: name.to_string(),
        lease_ms: 30_000,
        poll: std::time::Duration::from_millis(10),
        backoff: Backoff::default(),
    }
}

/// Runs every due job at `now`.
async fn drain(db: &Db, handlers: &Handlers, now: i64) {
    let cfg = worker("drain");
    while jobs::run_once(db, handlers, &cfg, now).await.unwrap() != Ran::Idle {}
}

#[tokio::test]
async fn mail_is_delivered_read_replied_and_deleted() {
    let t = fresh_db().await;
    let db = &t.db;
    let gordon = players::find_or_create(db, "Synchronet", "Gordon")
        .await
        .unwrap();
    let bud = players::find_or_create(db, "Synchronet", "Bud")
        .await
        .unwrap();
    let h = inbox::handlers(db);

    inbox::send(db, &gordon, "BUD", "Bluestar", "Buy it all.", T0)
        .await
        .unwrap();
    // Nothing arrives before the delivery job runs.
    assert_eq!(inbox::unread_count(db, bud.id).await.unwrap(), 0);
    drain(db, &h, T0).await;
    assert_eq!(inbox::unread_count(db, bud.id).await.unwrap(), 1);

    let list = inbox::list(db, bud.id).await.unwrap();
    assert_eq!(list.len(), 1);
    let m = &list[0];
    assert_eq!(
        (m.from.as_str(), m.subject.as_str()),
        ("Gordon", "Bluestar")
    );
    assert!(m.unread());
    // Only the recipient can read it.
    assert!(matches!(
        inbox::read(db, gordon.id, m.id, T0 + 1).await,
        Err(InboxError::NoSuchMessage)
    ));
    let read = inbox::read(db, bud.id, m.id, T0 + 5).await.unwrap();
    assert_eq!(read.body, "Buy it all.");
    assert_eq!(read.read_at, Some(T0 + 5));
    assert_eq!(inbox::unread_count(db, bud.id).await.unwrap(), 0);

    inbox::reply(db, &bud, m.id, "Yes, Mr. Gekko.", T0 + 10)
        .await
        .unwrap();
    drain(db, &h, T0 + 10).await;
    let back = inbox::list(db, gordon.id).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].subject, "Re: Bluestar");
    assert_eq!(back[0].reply_to, Some(m.id));
    assert_eq!(back[0].from_player, Some(bud.id));

    inbox::delete(db, bud.id, m.id).await.unwrap();
    assert!(inbox::list(db, bud.id).await.unwrap().is_empty());
    assert!(matches!(
        inbox::delete(db, bud.id, m.id).await,
        Err(InboxError::NoSuchMessage)
    ));
}

#[tokio::test]
async fn recipients_are_found_only_on_the_same_system() {
    let t = fresh_db().await;
    let db = &t.db;
    let gordon = players::find_or_create(db, "Synchronet", "Gordon")
        .await
        .unwrap();
    players::find_or_create(db, "Mystic", "Bud").await.unwrap();
    let err = inbox::send(db, &gordon, "Bud", "x", "hello", T0)
        .await
        .unwrap_err();
    assert!(matches!(err, InboxError::UnknownRecipient(ref h) if h == "Bud"));
    assert!(matches!(
        inbox::send(db, &gordon, "Gordon", "x", "   ", T0).await,
        Err(InboxError::EmptyBody)
    ));
}

#[tokio::test]
async fn system_mail_is_stored_once_and_cannot_be_answered() {
    let t = fresh_db().await;
    let db = &t.db;
    let bud = players::find_or_create(db, "Synchronet", "Bud")
        .await
        .unwrap();
    for kind in [
        MailKind::Fill,
        MailKind::MarginCall,
        MailKind::Reminder,
        MailKind::Tip,
    ] {
        let first = inbox::send_system(db, bud.id, kind, "Note", "Body", kind.as_str(), T0)
            .await
            .unwrap();
        assert!(first.is_some());
        let again = inbox::send_system(db, bud.id, kind, "Note", "Body", kind.as_str(), T0)
            .await
            .unwrap();
        assert_eq!(again, None);
    }
    let list = inbox::list(db, bud.id).await.unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(inbox::unread_count(db, bud.id).await.unwrap(), 4);
    let margin = list
        .iter()
        .find(|m| m.kind == MailKind::MarginCall)
        .unwrap();
    assert_eq!(margin.from, "Margin Dept.");
    assert!(matches!(
        inbox::reply(db, &bud, margin.id, "no", T0).await,
        Err(InboxError::CannotReplyToSystem)
    ));
}

#[tokio::test]
async fn mail_survives_a_restart_mid_delivery() {
    let t = fresh_db().await;
    let db = &t.db;
    let gordon = players::find_or_create(db, "Synchronet", "Gordon")
        .await
        .unwrap();
    let bud = players::find_or_create(db, "Synchronet", "Bud")
        .await
        .unwrap();
    let job_id = inbox::send(db, &gordon, "Bud", "Teldar", "Greed is good.", T0)
        .await
        .unwrap();

    // The first process claims the delivery, stores the message, and dies before it can mark
    // the job done.
    let job = jobs::claim(db, "first-process", T0, 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.id, job_id);
    inbox::deliver(db, &job, T0).await.unwrap();

    // A new process starts; until the lease runs out the job is left alone.
    let h = inbox::handlers(db);
    let cfg = worker("second-process");
    assert_eq!(
        jobs::run_once(db, &h, &cfg, T0 + 1_000).await.unwrap(),
        Ran::Idle
    );
    assert_eq!(
        jobs::run_once(db, &h, &cfg, T0 + 30_000).await.unwrap(),
        Ran::Done(job_id)
    );
    // The message arrived exactly once.
    let list = inbox::list(db, bud.id).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].body, "Greed is good.");

    // A delivery claimed and dropped before it stored anything arrives after the lease too.
    let second = inbox::send(
        db,
        &gordon,
        "Bud",
        "Again",
        "Lunch is for wimps.",
        T0 + 40_000,
    )
    .await
    .unwrap();
    let lost = jobs::claim(db, "third-process", T0 + 40_000, 30_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lost.id, second);
    drain(db, &h, T0 + 70_000).await;
    assert_eq!(inbox::list(db, bud.id).await.unwrap().len(), 2);
}
