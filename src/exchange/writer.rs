//! The order writer: one task that owns a database's order transactions and carries out the
//! orders of many processes in batches, so that many orders share one commit.
//!
//! Why: with one transaction per order, every process pays its own commit and its own turn at
//! the book's lock, and a database does only so many of those a second (on SQLite, writers
//! also queue for the file's single write lock). The exchange notes measured about three times
//! the throughput with one writer batching. So a node manager can run a writer
//! ([`serve`]) on a Unix socket, and every process that names the socket
//! ([`super::Exchange::with_writer`]) sends its place, cancel and replace requests there
//! instead of running them itself.
//!
//! Nothing about the rules changes: the writer runs the same engine through a planned
//! [`super::Batch`] (one trip reads for the whole batch and one writes and commits it; see
//! [`super::Batch::begin_planned`]; on PostgreSQL the requests that arrived meanwhile are
//! begun in that same trip, after the `COMMIT`, see [`super::Batch::commit_then`], so that a
//! batch costs one trip); each order is decided against the book
//! as the orders before it left it, a refusal writes nothing, and no answer goes out before
//! the batch has committed, so an acknowledged order is as durable as one placed directly. Processes that do not use the
//! writer (another BBS's door on the same PostgreSQL, the simulator) keep trading directly;
//! the locks keep them correct together.
//!
//! Failure: if a batch fails before its commit (a deadlock with a direct writer, say), or the
//! server refuses a statement of its last trip (where a planned batch's writes go, with the
//! `COMMIT`), nothing of it was written and each of its orders is run again alone. If the
//! connection breaks during the commit, the outcome is unknown, so every order of the batch is
//! answered `Internal` rather than run twice. If the next batch's read, in the same trip, fails
//! after the commit, the commit stands and that batch's orders run alone. A client whose writer is not there at all (not
//! started, restarting) runs its orders directly; one that loses the writer with a request
//! outstanding answers `NoAnswer`.
//!
//! The writer trusts the account ids it is sent, as the database trusts whoever holds its
//! credentials, so its socket is open to its owner only (mode 0600).
//!
//! Protocol: one JSON object per line each way. A request is `{"id": N, "op": {...}}`, an
//! answer `{"id": N, "result": {"Ok": ...} | {"Err": ...}}`, answered in order per connection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_util::sync::CancellationToken;

use super::batch::{Batch, Done};
use super::model::{CancelReason, OrderAck, OrderRequest, OrderStatus};
use super::{Exchange, ExchangeError};

/// Most orders in one batch (one transaction).
const MAX_BATCH: usize = 64;
/// Longest request line accepted, in bytes.
const MAX_LINE: usize = 4096;

/// One request to the writer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Place an order for an account on a book (`req.symbol` is not read).
    Place {
        game_id: i64,
        account_id: i64,
        instrument_id: i64,
        req: OrderRequest,
    },
    /// Cancel an account's open order.
    Cancel {
        game_id: i64,
        account_id: i64,
        order_id: i64,
    },
    /// Change an account's open order (a size of zero cancels it).
    Replace {
        game_id: i64,
        account_id: i64,
        order_id: i64,
        new_price: Option<i64>,
        new_open_qty: i64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    id: u64,
    op: Op,
}

#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    id: u64,
    result: Result<OrderAck, ExchangeError>,
}

/// What an order writer's batches did, for its log line at shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub batches: u64,
    pub orders: u64,
    /// Batches that failed before their commit and were run again order by order.
    pub retried: u64,
    /// Batches begun as soon as the one before committed, with the requests that arrived
    /// meanwhile (on PostgreSQL in the same trip as that commit).
    pub chained: u64,
    /// Reads answered from a planned batch's memory, and reads that went to the database
    /// (see [`super::Batch::begin_planned`]).
    pub memory_reads: u64,
    pub database_reads: u64,
    /// Batches begun on what the batch before them had read (when nobody else wrote
    /// in between; see [`super::Batch::began_on_last_reads`]).
    pub carried: u64,
}

/// A request waiting for its batch.
struct Job {
    op: Op,
    reply: oneshot::Sender<Result<OrderAck, ExchangeError>>,
}

/// Serves the order writer on `listener` until `shutdown`; `ex` must trade directly (not
/// through a writer). Requests already queued are carried out before it returns.
pub async fn serve(
    ex: Exchange,
    listener: UnixListener,
    shutdown: CancellationToken,
) -> WriterStats {
    let (queue, jobs) = mpsc::channel::<Job>(4 * MAX_BATCH);
    let writer = tokio::spawn(write_batches(ex, jobs));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, queue.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "order writer: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(queue);
    writer.await.unwrap_or_default()
}

/// Binds the writer's socket at `path`, replacing a stale socket file left by a writer that
/// died (but not one that still answers).
pub async fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("an order writer already answers on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    // Whoever can connect can trade for any account: only this user (the BBS and its doors).
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(listener)
}

/// One client connection: reads requests, queues them, writes the answers in order.
async fn connection(stream: UnixStream, queue: mpsc::Sender<Job>, shutdown: CancellationToken) {
    let (read, mut write) = stream.into_split();
    let (pending_tx, mut pending) =
        mpsc::unbounded_channel::<(u64, oneshot::Receiver<Result<OrderAck, ExchangeError>>)>();
    let answers = tokio::spawn(async move {
        while let Some((id, rx)) = pending.recv().await {
            let result = rx.await.unwrap_or(Err(ExchangeError::NoAnswer));
            let mut line = match serde_json::to_string(&Answer { id, result }) {
                Ok(line) => line,
                Err(e) => {
                    tracing::warn!(error = %e, "order writer: cannot encode an answer");
                    return;
                }
            };
            line.push('\n');
            if write.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(read);
    let mut buf = String::new();
    loop {
        buf.clear();
        let mut limited = (&mut lines).take(MAX_LINE as u64);
        let read = tokio::select! {
            _ = shutdown.cancelled() => break,
            read = limited.read_line(&mut buf) => read,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) if !buf.ends_with('\n') => {
                tracing::warn!("order writer: a request line too long; closing the connection");
                break;
            }
            Ok(_) => {}
        }
        let request: Request = match serde_json::from_str(buf.trim_end()) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "order writer: malformed request; closing the connection");
                break;
            }
        };
        let (reply, rx) = oneshot::channel();
        if queue
            .send(Job {
                op: request.op,
                reply,
            })
            .await
            .is_err()
            || pending_tx.send((request.id, rx)).is_err()
        {
            break;
        }
    }
    drop(pending_tx);
    // Answer what was already queued before closing.
    let _ = answers.await;
}

/// The writer task: takes whatever requests are waiting (at most [`MAX_BATCH`]) and carries
/// them out in one batch, until every sender is gone.
///
/// One batch at a time: measured with two and four batches at once (each on its own
/// connection, sharing the queue), batches got smaller and the orders per second fewer, as
/// each batch pays its first read and its commit whatever its size (BENCHMARKS.md). But the
/// requests that arrived while a batch was decided are begun in the same trip as its commit
/// ([`Batch::commit_then`]), on its connection, so that a batch costs one trip, not two.
/// (Waiting instead for the clients just answered, to begin one batch of all of them, made
/// batches twice as big and the orders per second a fifth fewer: two trips a batch again.
/// Committing each batch on its own connection while the next one reads on another gained
/// nothing: the read waits for the books the commit still holds, and batches get smaller.)
async fn write_batches(ex: Exchange, mut jobs: mpsc::Receiver<Job>) -> WriterStats {
    let mut stats = WriterStats::default();
    let mut next: Option<Begun> = None;
    loop {
        let begun = match next.take() {
            Some(begun) => begun,
            None => {
                let Some(first) = jobs.recv().await else {
                    break;
                };
                let mut batch = vec![first];
                take_waiting(&mut jobs, &mut batch);
                let batch_begun = ex.begin_planned_batch(&ops_of(&batch)).await;
                Begun {
                    jobs: batch,
                    batch: batch_begun,
                }
            }
        };
        stats.batches += 1;
        stats.orders += begun.jobs.len() as u64;
        next = run_batch(&ex, begun, &mut jobs, &mut stats).await;
    }
    stats
}

/// A batch's requests and its transaction (or why it could not begin).
struct Begun {
    jobs: Vec<Job>,
    batch: Result<Batch, ExchangeError>,
}

/// Moves the requests waiting in `queue` into `batch`, up to [`MAX_BATCH`] in all.
fn take_waiting(queue: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// The requests' operations, to plan their batch with.
fn ops_of(jobs: &[Job]) -> Vec<Op> {
    jobs.iter().map(|j| j.op.clone()).collect()
}

/// Carries out a begun batch and answers each of its requests; returns the next batch if it
/// was begun with this one's commit.
async fn run_batch(
    ex: &Exchange,
    begun: Begun,
    queue: &mut mpsc::Receiver<Job>,
    stats: &mut WriterStats,
) -> Option<Begun> {
    let Begun { jobs, batch } = begun;
    let Ok(mut batch) = batch else {
        stats.retried += 1;
        one_by_one(ex, jobs).await;
        return None;
    };
    // For each job: the index of what it did in the batch, or its refusal.
    let mut outcomes: Vec<Result<usize, ExchangeError>> = Vec::with_capacity(jobs.len());
    for job in &jobs {
        match batch.run(&job.op).await {
            Ok(_) => outcomes.push(Ok(batch.len() - 1)),
            Err(ExchangeError::Store(e)) => {
                tracing::debug!(error = %e, "order writer: batch failed; running its orders alone");
                batch.rollback().await;
                stats.retried += 1;
                one_by_one(ex, jobs).await;
                return None;
            }
            Err(refused) => outcomes.push(Err(refused)),
        }
    }
    if let Some((answered, declined)) = batch.reads_from_memory() {
        stats.memory_reads += answered;
        stats.database_reads += declined;
    }
    stats.carried += u64::from(batch.began_on_last_reads());
    let mut waiting = Vec::new();
    take_waiting(queue, &mut waiting);
    if waiting.is_empty() {
        match batch.commit().await {
            Ok(done) => answer(jobs, outcomes, Ok(done)),
            Err(e) => not_committed(ex, jobs, e, stats).await,
        }
        return None;
    }
    let ops = ops_of(&waiting);
    let mut unanswered = Some((jobs, outcomes));
    let chained = batch
        .commit_then(&ops, |done| {
            if let Some((jobs, outcomes)) = unanswered.take() {
                answer(jobs, outcomes, done);
            }
        })
        .await;
    let next = match chained {
        Ok(next) => {
            stats.chained += 1;
            next
        }
        Err(e) => {
            if let Some((jobs, _)) = unanswered.take() {
                not_committed(ex, jobs, e, stats).await;
            }
            ex.begin_planned_batch(&ops).await
        }
    };
    Some(Begun {
        jobs: waiting,
        batch: next,
    })
}

/// Answers the requests of a committed batch: each its own outcome, with what it did.
fn answer(
    jobs: Vec<Job>,
    outcomes: Vec<Result<usize, ExchangeError>>,
    done: Result<Vec<Done>, ExchangeError>,
) {
    let done = match done {
        Ok(done) => done,
        Err(e) => {
            // Committed, but what it wrote cannot be read back (trade ids missing).
            tracing::error!(error = %e, "order writer: a committed batch's answers are lost; its orders are answered as failed");
            Vec::new()
        }
    };
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        let answer = outcome.and_then(|i| done.get(i).map(ack_of).ok_or(ExchangeError::Internal));
        let _ = job.reply.send(answer);
    }
}

/// Answers the requests of a batch that is not known to have committed: if the server refused
/// one of its writes (they go with the commit), nothing of it was written and its orders run
/// again alone; if the connection broke during the commit, the outcome is unknown, and each
/// is answered `Internal` rather than run twice.
async fn not_committed(ex: &Exchange, jobs: Vec<Job>, e: ExchangeError, stats: &mut WriterStats) {
    match e {
        ExchangeError::Store(e) if e.rolled_back() => {
            tracing::debug!(error = %e, "order writer: batch refused at its commit; running its orders alone");
            stats.retried += 1;
            one_by_one(ex, jobs).await;
        }
        e => {
            tracing::error!(error = %e, "order writer: commit failed; its orders are answered as failed");
            for job in jobs {
                let _ = job.reply.send(Err(ExchangeError::Internal));
            }
        }
    }
}

/// The acknowledgement a direct call would have given for `op`.
pub(crate) fn ack_of(done: &Done) -> OrderAck {
    match done {
        Done::Ack(ack) => ack.clone(),
        Done::Cancelled(order) => OrderAck {
            order_id: order.id,
            status: OrderStatus::Cancelled,
            filled: order.filled,
            open_qty: 0,
            fills: Vec::new(),
            cancel_reason: Some(CancelReason::User),
        },
    }
}

/// Runs each job in its own transaction, as a direct call would.
async fn one_by_one(ex: &Exchange, jobs: Vec<Job>) {
    for job in jobs {
        let answer = ex.run_alone(&job.op).await.map_err(|e| match e {
            ExchangeError::Store(_) => ExchangeError::Internal,
            other => other,
        });
        let _ = job.reply.send(answer);
    }
}

/// A process's link to an order writer: one connection, many requests in flight.
#[derive(Debug)]
pub(crate) struct WriterClient {
    path: PathBuf,
    link: Mutex<Option<Link>>,
}

/// An open connection: requests go to its task, which matches answers to them by id.
#[derive(Debug)]
struct Link {
    requests: mpsc::Sender<(Op, oneshot::Sender<Result<OrderAck, ExchangeError>>)>,
}

/// Why a request did not go through the writer.
pub(crate) enum Route {
    /// There is no writer to talk to: run it directly.
    Unreachable,
    /// The writer's answer (or `NoAnswer` if it went away holding the request).
    Answered(Result<OrderAck, ExchangeError>),
}

impl WriterClient {
    pub(crate) fn new(path: &Path) -> WriterClient {
        WriterClient {
            path: path.to_path_buf(),
            link: Mutex::new(None),
        }
    }

    /// Sends `op` to the writer and waits for its answer.
    pub(crate) async fn call(&self, op: Op) -> Route {
        let sender = {
            let mut link = self.link.lock().await;
            let alive = link.as_ref().is_some_and(|l| !l.requests.is_closed());
            if !alive {
                match UnixStream::connect(&self.path).await {
                    Ok(stream) => *link = Some(Link::open(stream)),
                    Err(e) => {
                        tracing::debug!(error = %e, path = %self.path.display(),
                            "no order writer; trading directly");
                        *link = None;
                        return Route::Unreachable;
                    }
                }
            }
            match link.as_ref() {
                Some(l) => l.requests.clone(),
                None => return Route::Unreachable,
            }
        };
        let (tx, rx) = oneshot::channel();
        if sender.send((op, tx)).await.is_err() {
            return Route::Answered(Err(ExchangeError::NoAnswer));
        }
        Route::Answered(rx.await.unwrap_or(Err(ExchangeError::NoAnswer)))
    }
}

impl Link {
    fn open(stream: UnixStream) -> Link {
        let (requests, mut inbox) =
            mpsc::channel::<(Op, oneshot::Sender<Result<OrderAck, ExchangeError>>)>(256);
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut waiting: HashMap<u64, oneshot::Sender<Result<OrderAck, ExchangeError>>> =
                HashMap::new();
            let mut next_id = 0u64;
            let mut inbox_open = true;
            loop {
                tokio::select! {
                    req = inbox.recv(), if inbox_open => {
                        let Some((op, reply)) = req else {
                            inbox_open = false;
                            if waiting.is_empty() { break; }
                            continue;
                        };
                        next_id += 1;
                        let line = serde_json::to_string(&Request { id: next_id, op });
                        let Ok(mut line) = line else {
                            let _ = reply.send(Err(ExchangeError::Internal));
                            continue;
                        };
                        line.push('\n');
                        waiting.insert(next_id, reply);
                        if write.write_all(line.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                    line = lines.next_line() => {
                        let Ok(Some(line)) = line else { break };
                        match serde_json::from_str::<Answer>(&line) {
                            Ok(answer) => {
                                if let Some(reply) = waiting.remove(&answer.id) {
                                    let _ = reply.send(answer.result);
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "order writer sent a malformed answer");
                                break;
                            }
                        }
                        if !inbox_open && waiting.is_empty() { break; }
                    }
                }
            }
            // Whatever is still waiting gets `NoAnswer` as its sender drops.
        });
        Link { requests }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{GameRules, Intent, OrderType, TimeInForce};
    use crate::store::testing::fresh_db;

    #[test]
    fn refusals_cross_the_wire_as_themselves() {
        let answer = Answer {
            id: 7,
            result: Err(ExchangeError::InsufficientFunds {
                needed: crate::exchange::Cents(12_345),
                available: crate::exchange::Cents(99),
            }),
        };
        let line = serde_json::to_string(&answer).unwrap();
        let back: Answer = serde_json::from_str(&line).unwrap();
        assert_eq!(back.id, 7);
        let err = back.result.unwrap_err();
        assert_eq!(
            err.to_string(),
            "not enough buying power: this order needs $123.45 but you have $0.99"
        );
        // A storage error is never sent as such.
        let store = Answer {
            id: 1,
            result: Err(ExchangeError::Store(spoil())),
        };
        assert!(serde_json::to_string(&store).is_err());
    }

    fn spoil() -> crate::store::StoreError {
        crate::store::StoreError::Sqlx(sqlx::Error::PoolClosed)
    }

    #[tokio::test]
    async fn a_client_trades_through_the_writer_and_garbage_closes_only_its_connection() {
        let t = fresh_db().await;
        let ex = Exchange::new(t.db.clone());
        let game = ex.create_game("g", &GameRules::default()).await.unwrap();
        ex.open_account(game.id, 1).await.unwrap();
        let account = ex.account(game.id, 1).await.unwrap().id;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sock");
        let listener = bind(&path).await.unwrap();
        // A second writer on the same socket is refused while the first answers.
        assert!(bind(&path).await.is_err());
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(ex.clone(), listener, stop.clone()));

        // Garbage: the writer closes that connection and keeps serving.
        let mut raw = UnixStream::connect(&path).await.unwrap();
        raw.write_all(b"{\"id\": 1, \"op\": \"sell everything\"}\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut raw, &mut rest)
            .await
            .unwrap();
        assert!(rest.is_empty());

        let client = ex.clone().with_writer(&path);
        let req = OrderRequest {
            symbol: String::new(),
            intent: Intent::Buy,
            order_type: OrderType::Limit { price: 100 },
            tif: TimeInForce::Gtc,
            qty: 1,
            stp: None,
        };
        // An unknown book: the engine's refusal comes back through the writer.
        let err = client
            .place_for_account(game.id, account, 999_999, &req)
            .await
            .unwrap_err();
        assert!(matches!(err, ExchangeError::UnknownInstrument), "{err}");
        // A cancel of an order that does not exist, likewise.
        let err = client.cancel(game.id, 1, 424_242).await.unwrap_err();
        assert!(matches!(err, ExchangeError::UnknownOrder), "{err}");

        stop.cancel();
        let stats = server.await.unwrap();
        assert_eq!((stats.orders, stats.retried), (2, 0));
        // With the writer gone (and the client's link seen closed) it trades directly again.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let err = client
            .place_for_account(game.id, account, 999_999, &req)
            .await
            .unwrap_err();
        assert!(matches!(err, ExchangeError::UnknownInstrument), "{err}");
    }
}
