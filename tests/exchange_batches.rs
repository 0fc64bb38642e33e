//! Property test: a batch decides each order exactly as if it were placed alone. Random streams
//! of orders, cancels and replaces run twice from the same start, once order by order (which
//! `exchange_props` checks against a reference model) and once cut into random planned
//! batches, as the order writer runs them, with every answer the batch gives from memory
//! checked against the database; and again with each batch begun in the same trip as the
//! last one's commit, as the writer chains them. Every answer must agree, the audit must pass
//! after every batch, and at the end cash, positions and open orders must agree.

use nuggetnet::exchange::writer::Op;
use nuggetnet::exchange::*;
use nuggetnet::store::testing::fresh_db;
use proptest::prelude::*;

#[path = "common/steps.rs"]
mod steps;
use steps::{list_books, price_of, step, Step};

const PLAYERS: [i64; 3] = [1, 2, 3];
const SYMBOLS: [&str; 2] = ["AAA", "BBB"];

/// One game with its players' accounts and its books.
struct Market {
    game: i64,
    accounts: Vec<i64>,
    books: Vec<i64>,
    /// Ids of the orders placed, in the order they were placed.
    placed: Vec<i64>,
}

/// What an order did, with order ids as their places in `Market::placed`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ack {
        order: usize,
        status: OrderStatus,
        filled: i64,
        open_qty: i64,
        fills: Vec<(usize, i64, i64)>,
        cancel_reason: Option<CancelReason>,
    },
    Cancelled,
    Refused(String),
    /// A cancel or replace before any order was placed.
    Skipped,
}

async fn market(ex: &Exchange) -> Market {
    let rules = GameRules {
        starting_cash: 50_000_000,
        fee_bp: 10,
        collar_bp: 9_000,
        ..GameRules::default()
    };
    let game = ex.create_game("batches", &rules).await.unwrap().id;
    let books = list_books(ex, game, &SYMBOLS).await;
    let mut accounts = Vec::new();
    for player in PLAYERS {
        accounts.push(ex.open_account(game, player).await.unwrap().id);
        for s in SYMBOLS {
            ex.grant(game, player, 0, Some((s, 500))).await.unwrap();
        }
    }
    Market {
        game,
        accounts,
        books,
        placed: Vec::new(),
    }
}

impl Market {
    /// The request `step` makes in this game, or `None` for a cancel or replace with no order
    /// to name yet.
    fn op(&self, step: &Step) -> Option<Op> {
        Some(match *step {
            Step::Place { player, symbol, .. } => Op::Place {
                game_id: self.game,
                account_id: self.accounts[player],
                instrument_id: self.books[symbol],
                req: step.request(&SYMBOLS)?,
            },
            Step::Cancel { player, pick } => Op::Cancel {
                game_id: self.game,
                account_id: self.accounts[player],
                order_id: *self.placed.get(pick % self.placed.len().max(1))?,
            },
            Step::Replace {
                player,
                pick,
                price_ticks,
                qty,
            } => Op::Replace {
                game_id: self.game,
                account_id: self.accounts[player],
                order_id: *self.placed.get(pick % self.placed.len().max(1))?,
                new_price: Some(price_of(price_ticks)),
                new_open_qty: qty,
            },
        })
    }

    fn index(&self, order_id: i64) -> usize {
        self.placed
            .iter()
            .position(|&id| id == order_id)
            .unwrap_or(usize::MAX)
    }

    /// Records what `op` did.
    fn outcome(&mut self, op: &Op, done: Result<Done, ExchangeError>) -> Outcome {
        match done {
            Err(e) => Outcome::Refused(format!("{e:?}")),
            Ok(Done::Cancelled(_)) => Outcome::Cancelled,
            Ok(Done::Ack(ack)) => {
                if matches!(op, Op::Place { .. }) {
                    self.placed.push(ack.order_id);
                }
                Outcome::Ack {
                    order: self.index(ack.order_id),
                    status: ack.status,
                    filled: ack.filled,
                    open_qty: ack.open_qty,
                    fills: ack
                        .fills
                        .iter()
                        .map(|f| (self.index(f.maker_order_id), f.price, f.qty))
                        .collect(),
                    cancel_reason: ack.cancel_reason,
                }
            }
        }
    }
}

/// Carries out `op` alone, as a player's order outside any batch.
async fn alone(ex: &Exchange, m: &Market, op: &Op) -> Result<Done, ExchangeError> {
    let player = |account: i64| PLAYERS[m.accounts.iter().position(|&a| a == account).unwrap()];
    match op {
        Op::Place {
            account_id, req, ..
        } => ex
            .place(m.game, player(*account_id), req)
            .await
            .map(Done::Ack),
        Op::Cancel {
            account_id,
            order_id,
            ..
        } => ex
            .cancel(m.game, player(*account_id), *order_id)
            .await
            .map(|()| Done::Cancelled(placeholder())),
        Op::Replace {
            account_id,
            order_id,
            new_price,
            new_open_qty,
            ..
        } => {
            let ack = ex
                .replace(
                    m.game,
                    player(*account_id),
                    *order_id,
                    *new_price,
                    *new_open_qty,
                )
                .await?;
            Ok(if *new_open_qty == 0 {
                Done::Cancelled(placeholder())
            } else {
                Done::Ack(ack)
            })
        }
    }
}

/// A cancelled order whose fields the comparison does not read.
fn placeholder() -> Order {
    Order {
        id: 0,
        instrument_id: 0,
        account_id: 0,
        side: Side::Buy,
        intent: Intent::Buy,
        tif: TimeInForce::Gtc,
        price: None,
        qty: 0,
        filled: 0,
        status: OrderStatus::Cancelled,
        priority: 0,
        created_at: 0,
    }
}

/// Runs `steps` cut at `cuts` both ways and compares. `chained`: each batch is begun in the
/// same trip as the last one's commit ([`Batch::commit_then`]), as the order writer does with
/// requests that arrive while a batch is decided; then a batch's requests are made before the
/// answers of the batch just before it are in, and name only orders placed before that one.
async fn run_case(
    ex: &Exchange,
    steps: Vec<Step>,
    cuts: Vec<usize>,
    chained: bool,
) -> Result<(u64, u64), TestCaseError> {
    // Returns the reads answered from memory and the batches begun on the last one's.
    let mut one = market(ex).await;
    let mut many = market(ex).await;
    let mut chunks = Vec::new();
    let mut rest = steps.as_slice();
    let mut cuts = cuts.into_iter().cycle();
    while !rest.is_empty() {
        let n = cuts.next().unwrap_or(1).clamp(1, rest.len());
        let (chunk, more) = rest.split_at(n);
        chunks.push(chunk);
        rest = more;
    }

    // Order by order, each chunk's requests made when the batch's would be.
    let mut expected = Vec::new();
    let mut unrecorded: Option<Ran> = None;
    for chunk in &chunks {
        let mut ran = Vec::new();
        for op in chunk.iter().map(|s| one.op(s)).collect::<Vec<_>>() {
            let done = match &op {
                Some(op) => Some(alone(ex, &one, op).await),
                None => None,
            };
            ran.push((op, done));
        }
        let ready = if chained {
            unrecorded.replace(ran)
        } else {
            Some(ran)
        };
        if let Some(ran) = ready {
            expected.push(record(&mut one, ran)?);
        }
    }
    if let Some(ran) = unrecorded.take() {
        expected.push(record(&mut one, ran)?);
    }

    // In planned batches.
    let mut memory = (0, 0);
    let mut carried = 0;
    let mut expected = expected.into_iter();
    let mut open: Option<(Batch, Ran)> = None;
    for chunk in &chunks {
        let ops: Vec<Option<Op>> = chunk.iter().map(|s| many.op(s)).collect();
        let named: Vec<Op> = ops.iter().flatten().cloned().collect();
        let mut batch = match open.take() {
            Some((last, ran)) => {
                let mut committed = None;
                let next = last
                    .commit_then(&named, |done| committed = Some(done))
                    .await
                    .map_err(|e| TestCaseError::fail(format!("commit_then: {e}")))?;
                match committed {
                    Some(Ok(done)) => prop_assert_eq!(done.len(), count_done(&ran)),
                    other => return Err(TestCaseError::fail(format!("at_commit: {other:?}"))),
                }
                let got = record(&mut many, ran)?;
                prop_assert_eq!(Some(got), expected.next());
                let v = ex.audit(Some(many.game)).await.unwrap();
                prop_assert!(v.is_empty(), "audit: {v:#?}");
                next.map_err(|e| TestCaseError::fail(format!("next batch: {e}")))?
            }
            None => ex.begin_planned_batch(&named).await.unwrap(),
        };
        batch.check_against_database();
        carried += u64::from(batch.began_on_last_reads());
        let mut ran = Vec::new();
        for op in ops {
            let done = match &op {
                Some(op) => Some(batch.run(op).await.cloned()),
                None => None,
            };
            ran.push((op, done));
        }
        if let Some((answered, declined)) = batch.reads_from_memory() {
            memory.0 += answered;
            memory.1 += declined;
        }
        if chained {
            open = Some((batch, ran));
        } else {
            batch.commit().await.unwrap();
            let got = record(&mut many, ran)?;
            prop_assert_eq!(Some(got), expected.next());
            let v = ex.audit(Some(many.game)).await.unwrap();
            prop_assert!(v.is_empty(), "audit: {v:#?}");
        }
    }
    if let Some((last, ran)) = open {
        last.commit().await.unwrap();
        let got = record(&mut many, ran)?;
        prop_assert_eq!(Some(got), expected.next());
        let v = ex.audit(Some(many.game)).await.unwrap();
        prop_assert!(v.is_empty(), "audit: {v:#?}");
    }
    // Most reads come from memory; the rest (deeper books than the batch read ahead) from the
    // database.
    prop_assert!(
        memory.0 >= memory.1,
        "answered from memory {}, read from the database {}",
        memory.0,
        memory.1
    );
    for &player in &PLAYERS {
        let mut seen = Vec::new();
        for m in [&one, &many] {
            let mut open: Vec<usize> = ex
                .orders(m.game, player, true, 1_000)
                .await
                .unwrap()
                .iter()
                .map(|o| m.index(o.id))
                .collect();
            open.sort_unstable();
            let pf = ex.portfolio(m.game, player).await.unwrap();
            let positions: Vec<(String, i64)> = pf
                .positions
                .iter()
                .map(|p| (p.symbol.clone(), p.qty))
                .collect();
            seen.push((pf.cash, positions, open));
        }
        prop_assert_eq!(&seen[0], &seen[1], "player {}", player);
    }
    Ok((memory.0, carried))
}

/// A chunk's requests (`None`: nothing to name yet) and what each did.
type Ran = Vec<(Option<Op>, Option<Result<Done, ExchangeError>>)>;

/// Records what a chunk's requests did, in order; a storage error fails the case.
fn record(m: &mut Market, ran: Ran) -> Result<Vec<Outcome>, TestCaseError> {
    let mut got = Vec::new();
    for (op, done) in ran {
        got.push(match (op, done) {
            (Some(op), Some(done)) => {
                if let Err(ExchangeError::Store(e)) = &done {
                    return Err(TestCaseError::fail(format!("{op:?}: {e}")));
                }
                m.outcome(&op, done)
            }
            _ => Outcome::Skipped,
        });
    }
    Ok(got)
}

/// How many of a chunk's requests a batch accepted.
fn count_done(ran: &Ran) -> usize {
    ran.iter().filter(|(_, d)| matches!(d, Some(Ok(_)))).count()
}

#[test]
fn batches_decide_every_order_as_if_it_came_alone() {
    batches_agree_with_orders_alone(false, 24);
}

#[test]
fn chained_batches_decide_every_order_as_if_it_came_alone() {
    batches_agree_with_orders_alone(true, 16);
}

fn batches_agree_with_orders_alone(chained: bool, cases: u32) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(fresh_db());
    let ex = Exchange::new(db.db.clone());
    let from_memory = std::cell::Cell::new(0u64);
    let carried = std::cell::Cell::new(0u64);
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        steps in prop::collection::vec(step(), 1..60),
        cuts in prop::collection::vec(1..12usize, 1..8),
    )| {
        let (answered, on_last) = rt.block_on(run_case(&ex, steps, cuts, chained))?;
        from_memory.set(from_memory.get() + answered);
        carried.set(carried.get() + on_last);
    });
    assert!(from_memory.get() > 0, "no read was answered from memory");
    eprintln!("batches begun on the last one's reads: {}", carried.get());
    // On SQLite nothing else writes between this test's batches; on PostgreSQL other tests'
    // transactions on the same server may (see the next test).
    if nuggetnet::store::testing::test_backend() == nuggetnet::store::Backend::Sqlite {
        assert!(carried.get() > 0, "no batch began on the last one's reads");
    }
}

/// A limit order of `qty` shares of AAA at `price`.
fn limit(intent: Intent, price: i64, qty: i64) -> OrderRequest {
    OrderRequest {
        symbol: SYMBOLS[0].to_string(),
        intent,
        order_type: OrderType::Limit { price },
        tif: TimeInForce::Gtc,
        qty,
        stp: None,
    }
}

/// Runs `ops` as one planned batch, each answer checked against the database; returns what
/// each did and whether the batch began on the reads of the one before.
async fn planned(ex: &Exchange, ops: &[Op]) -> (Vec<Result<Done, ExchangeError>>, bool) {
    let mut batch = ex.begin_planned_batch(ops).await.unwrap();
    batch.check_against_database();
    let carried = batch.began_on_last_reads();
    let mut done = Vec::new();
    for op in ops {
        done.push(batch.run(op).await.cloned());
    }
    batch.commit().await.unwrap();
    (done, carried)
}

/// A planned batch begins on what the last one read while nobody else writes in between, and
/// reads everything again once somebody has: here another connection's order fills a resting
/// order between two batches, and the next batch must see it. (On PostgreSQL "nobody else"
/// means no transaction anywhere on the server, which other tests running at the same time
/// break, so there only the second half is asserted.)
#[tokio::test]
async fn a_batch_after_somebody_elses_write_reads_the_database_again() {
    let db = fresh_db().await;
    let ex = Exchange::new(db.db.clone());
    let m = market(&ex).await;
    let place = |account: usize, req: OrderRequest| Op::Place {
        game_id: m.game,
        account_id: m.accounts[account],
        instrument_id: m.books[0],
        req,
    };
    let sqlite = nuggetnet::store::testing::test_backend() == nuggetnet::store::Backend::Sqlite;

    // Player 1 rests 100 shares at 10.50; player 2 bids below it.
    let (done, _) = planned(
        &ex,
        &[
            place(0, limit(Intent::Sell, 1_050, 100)),
            place(1, limit(Intent::Buy, 1_000, 10)),
        ],
    )
    .await;
    let Ok(Done::Ack(ask)) = &done[0] else {
        panic!("the ask: {done:?}")
    };
    // Nobody else wrote: the next batch starts from memory.
    let (done, carried) = planned(&ex, &[place(2, limit(Intent::Buy, 1_000, 5))]).await;
    assert!(done[0].is_ok(), "{done:?}");
    assert!(
        carried || !sqlite,
        "nobody else wrote, yet the batch read afresh"
    );

    // Player 2 takes 60 of the 100 on a connection of its own.
    let ack = ex
        .place(m.game, PLAYERS[1], &limit(Intent::Buy, 1_050, 60))
        .await
        .unwrap();
    assert_eq!(ack.filled, 60);

    // Player 3 asks for 50: only 40 are left, and player 3's cash must show the 60 went
    // elsewhere.
    let (done, carried) = planned(&ex, &[place(2, limit(Intent::Buy, 1_050, 50))]).await;
    assert!(
        !carried,
        "a batch after somebody else's write began on stale reads"
    );
    let Ok(Done::Ack(ack)) = &done[0] else {
        panic!("player 3's bid: {done:?}")
    };
    assert_eq!(ack.filled, 40);
    assert_eq!(ack.open_qty, 10);
    assert_eq!(ack.fills[0].maker_order_id, ask.order_id);

    // And the batch after that starts from memory again, where the ask is gone.
    let (done, carried) = planned(
        &ex,
        &[
            place(0, limit(Intent::Sell, 1_050, 20)),
            Op::Cancel {
                game_id: m.game,
                account_id: m.accounts[0],
                order_id: ask.order_id,
            },
        ],
    )
    .await;
    assert!(
        carried || !sqlite,
        "nobody else wrote, yet the batch read afresh"
    );
    let Ok(Done::Ack(second)) = &done[0] else {
        panic!("the second ask: {done:?}")
    };
    // Player 3's 10 still open at 10.50 take 10 of the 20.
    assert_eq!(second.filled, 10);
    assert!(done[1].is_err(), "cancelling a filled order: {done:?}");
    let v = ex.audit(Some(m.game)).await.unwrap();
    assert!(v.is_empty(), "audit: {v:#?}");
}
