//! Following the event log: a [`Subscription`] yields a game's events in sequence order.
//!
//! A background task reads the events table from the last sequence number it delivered. On
//! PostgreSQL it sleeps until a NOTIFY wakes it (or half a second passes); on SQLite it polls.
//! Sequence numbers are assigned when rows are inserted, so on PostgreSQL a transaction can
//! commit a higher number before a lower one is visible: the follower never steps over a gap
//! at once, but waits up to [`GAP_GRACE`] for it to fill (a rolled-back transaction leaves a
//! gap for good), so no committed event is skipped.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::model::Event;
use super::ExchangeError;
use crate::store::exchange::follow::Waker;
use crate::store::Db;

/// How long a follower waits for a missing sequence number before stepping over it.
pub const GAP_GRACE: Duration = Duration::from_secs(2);
/// How often a follower without LISTEN looks for new events.
const POLL: Duration = Duration::from_millis(50);
/// The longest a LISTEN follower sleeps without a notification.
const LISTEN_TIMEOUT: Duration = Duration::from_millis(500);
/// Events read per query.
const BATCH: i64 = 500;

/// A stream of one game's events; dropping it stops the follower.
pub struct Subscription {
    rx: mpsc::Receiver<Result<Event, ExchangeError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscription {
    /// The next event; `None` once the follower has stopped after an error.
    pub async fn recv(&mut self) -> Option<Result<Event, ExchangeError>> {
        self.rx.recv().await
    }
}

impl futures::Stream for Subscription {
    type Item = Result<Event, ExchangeError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn subscribe(
    db: Db,
    listen_url: Option<String>,
    game_id: i64,
    from_seq: i64,
) -> Subscription {
    let (tx, rx) = mpsc::channel(1024);
    let task = tokio::spawn(async move {
        if let Err(e) = follow(db, listen_url, game_id, from_seq, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    Subscription { rx, task }
}

/// Tracks the next sequence number and any gap being waited out. Pure, so it can be tested.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub next: i64,
    gap_since: Option<Instant>,
}

impl Cursor {
    pub fn new(from_seq: i64) -> Cursor {
        Cursor {
            next: from_seq.max(1),
            gap_since: None,
        }
    }

    /// Whether the event with `seq` (the lowest one at or after `next`) may be delivered now.
    pub fn accept(&mut self, seq: i64, now: Instant) -> bool {
        if seq > self.next {
            let since = *self.gap_since.get_or_insert(now);
            if now.duration_since(since) < GAP_GRACE {
                return false;
            }
        }
        self.next = seq + 1;
        self.gap_since = None;
        true
    }

    /// Whether a gap is being waited out.
    pub fn waiting(&self) -> bool {
        self.gap_since.is_some()
    }
}

async fn follow(
    db: Db,
    listen_url: Option<String>,
    game_id: i64,
    from_seq: i64,
    out: &mpsc::Sender<Result<Event, ExchangeError>>,
) -> Result<(), ExchangeError> {
    let mut waker = match listen_url {
        Some(url) => match Waker::listen(&url).await {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for exchange events; polling instead");
                None
            }
        },
        None => None,
    };
    let mut cursor = Cursor::new(from_seq);
    loop {
        let events = crate::store::exchange::events_since(&db, cursor.next, BATCH).await?;
        let full = events.len() as i64 == BATCH;
        let mut blocked = false;
        for e in events {
            if !cursor.accept(e.seq, Instant::now()) {
                blocked = true;
                break;
            }
            if e.game_id == game_id && out.send(Ok(e)).await.is_err() {
                return Ok(());
            }
        }
        if full && !blocked {
            continue;
        }
        if out.is_closed() {
            return Ok(());
        }
        match (&mut waker, cursor.waiting()) {
            (Some(w), false) => w.wait(LISTEN_TIMEOUT).await?,
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_waits_out_a_gap_then_steps_over_it() {
        let t0 = Instant::now();
        let mut c = Cursor::new(0);
        assert!(c.accept(1, t0));
        assert!(!c.accept(3, t0), "2 may still commit");
        assert!(c.waiting());
        assert!(c.accept(2, t0 + Duration::from_millis(10)), "2 arrived");
        assert!(c.accept(3, t0 + Duration::from_millis(10)));
        assert!(!c.accept(5, t0 + Duration::from_millis(20)));
        assert!(c.accept(5, t0 + Duration::from_millis(20) + GAP_GRACE));
        assert_eq!(c.next, 6);
    }
}
