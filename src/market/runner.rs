//! The tick driver: takes a game's lease, reads what a tick needs, asks the pure core
//! ([`super::sim::plan_tick`]) what to do, claims the tick in the database, carries the NPC
//! actions out through the exchange and writes the price snapshots.
//!
//! Owns the order of a tick's work and the handover between processes. A tick is claimed by
//! a conditional write (this holder, an unexpired lease, the previous tick finished), so two
//! processes never run the same tick; a tick a dead process claimed but did not finish is
//! finished by the next holder (makers requote and the snapshot is written; the retail orders
//! of that tick are not replayed). Ticks are due on the game clock, so a new holder catches up
//! on any tick that fell due while nobody held the lease: none is skipped. It must not hold
//! state between ticks: everything is read from the database, so any process can continue.

use std::collections::HashMap;

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::clock::Session;
use super::notify::{MailReport, Notifier};
use super::sim::{self, NpcAction, NpcKind, NpcView, Resting, SimInstrument, TickInput};
use super::{clock_of, Market, MarketError};
use crate::exchange::{
    Batch, CancelReason, ExchangeError, Intent, OrderRequest, OrderType, Side, TimeInForce,
};
use crate::store::market as sm;
use crate::store::now_ms;

/// What one call of [`Market::tick_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// Ran this tick (or finished it after a dead holder).
    Ticked {
        tick: i64,
        actions: usize,
        skipped: usize,
        news: usize,
        /// Where the tick's time went.
        phases: TickPhases,
    },
    /// Holds the lease; the next tick is not due yet (or the game is paused).
    Idle { next_due: Option<i64> },
    /// Another process holds the lease.
    NotLeader,
    /// The game's simulation is stopped.
    Stopped,
}

/// Wall-clock time of each part of a tick, in microseconds (for `nuggetnet market bench`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickPhases {
    /// Reading the game's state and planning (fair values, news, NPC decisions).
    pub plan_us: u64,
    /// Claiming the tick under the lease (with its fair values and news) and session edges.
    pub claim_us: u64,
    /// Carrying out the NPCs' orders through the exchange.
    pub orders_us: u64,
    /// Reading the tick's trades and writing the OHLCV bars.
    pub snapshot_us: u64,
}

fn micros_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

impl Market {
    /// Lease length: one and a half ticks, so a dead holder is replaced within two.
    fn lease_ms(tick_ms: i64) -> i64 {
        (tick_ms * 3 / 2).max(tick_ms + 50)
    }

    /// Does at most one tick of work for `holder` at real time `now`: takes or renews the
    /// lease, finishes an interrupted tick, or runs the next tick if it is due.
    pub async fn tick_once(
        &self,
        game_id: i64,
        holder: &str,
        now: i64,
    ) -> Result<TickOutcome, MarketError> {
        let db = self.ex.db();
        let sim = self.sim(game_id).await?;
        if sim.stopped {
            return Ok(TickOutcome::Stopped);
        }
        let lease = Self::lease_ms(sim.tick_ms);
        if !sm::acquire_lease(db, game_id, holder, now, lease).await? {
            return Ok(TickOutcome::NotLeader);
        }
        let clock = clock_of(&sim);
        if !sim.tick_done {
            return self.run_tick(&sim, holder, sim.last_tick, now, true).await;
        }
        if sim.paused_at.is_some() {
            return Ok(TickOutcome::Idle { next_due: None });
        }
        let next = sim.last_tick + 1;
        if clock.tick_due(next) > now {
            return Ok(TickOutcome::Idle {
                next_due: Some(clock.tick_due(next)),
            });
        }
        self.run_tick(&sim, holder, next, now, false).await
    }

    /// Runs tick `n` whatever the wall clock says (tests and benchmarks drive ticks this way).
    /// The game must be idle: its previous tick finished and `holder` able to take the lease.
    pub async fn step(&self, game_id: i64, holder: &str) -> Result<TickOutcome, MarketError> {
        let db = self.ex.db();
        let sim = self.sim(game_id).await?;
        let now = now_ms();
        if !sm::acquire_lease(
            db,
            game_id,
            holder,
            now,
            Self::lease_ms(sim.tick_ms).max(60_000),
        )
        .await?
        {
            return Ok(TickOutcome::NotLeader);
        }
        let recovery = !sim.tick_done;
        let n = if recovery {
            sim.last_tick
        } else {
            sim.last_tick + 1
        };
        self.run_tick(&sim, holder, n, now, recovery).await
    }

    async fn run_tick(
        &self,
        sim_row: &sm::SimRow,
        holder: &str,
        tick: i64,
        now: i64,
        recovery: bool,
    ) -> Result<TickOutcome, MarketError> {
        let db = self.ex.db();
        let mut phases = TickPhases::default();
        let started = Instant::now();
        let game_id = sim_row.game_id;
        let clock = clock_of(sim_row);
        let market_at = clock.tick_market_at(tick);
        let calendar = self.calendar_of(sim_row);
        let session = calendar.session_at(market_at);
        let prev_session = calendar.session_at(clock.tick_market_at(tick - 1));

        // Read everything the tick needs.
        let instruments = self.ex.instruments(game_id).await?;
        let states = sm::instrument_states(db, game_id).await?;
        let sims: Vec<SimInstrument> = instruments
            .iter()
            .filter_map(|i| {
                let s = states.iter().find(|s| s.instrument_id == i.id)?;
                Some(SimInstrument {
                    instrument_id: i.id,
                    symbol: i.symbol.clone(),
                    name: i.name.clone(),
                    tick: i.tick,
                    last_price: i.last_price,
                    prev_price: s.prev_price,
                    fair_ucents: s.fair_ucents,
                    drift_bp_day: s.drift_bp_day,
                    vol_bp_day: s.vol_bp_day,
                    hype_bp: s.hype_bp,
                })
            })
            .collect();
        let npcs = self.npc_views(game_id).await?;
        let due: Vec<sim::DueNews> = if recovery || session == Session::Closed {
            Vec::new()
        } else {
            sm::due_news(db, game_id, market_at)
                .await?
                .into_iter()
                .map(|n| sim::DueNews {
                    id: n.id,
                    instrument_id: n.instrument_id,
                    headline: n.headline,
                    jump_bp: n.jump_bp,
                })
                .collect()
        };
        let day_ms = calendar
            .windows
            .iter()
            .filter(|w| w.session == Session::Regular)
            .map(|w| i64::from(w.end_min - w.start_min) * 60_000)
            .max()
            .unwrap_or(23_400_000);
        let plan = sim::plan_tick(&TickInput {
            seed: sim_row.seed,
            tick,
            session,
            prev_session,
            dt_ms: sim_row.tick_ms * sim_row.speed,
            day_ms,
            vol_mult_bp: sim_row.vol_mult_bp,
            liq_mult_bp: sim_row.liq_mult_bp,
            instruments: &sims,
            npcs: &npcs,
            due_news: &due,
            params: &self.config.npc,
            recovery,
        });

        phases.plan_us = micros_since(started);
        let started = Instant::now();

        // Claim the tick with its new fair values and news (skipped when finishing one).
        if !recovery {
            let claim = sm::TickClaim {
                holder,
                tick,
                now,
                lease_ms: Self::lease_ms(sim_row.tick_ms),
                market_at,
                fair: plan
                    .fair
                    .iter()
                    .map(|&(id, f, h)| {
                        let last = sims
                            .iter()
                            .find(|s| s.instrument_id == id)
                            .map_or(0, |s| s.last_price);
                        (id, f, h, last)
                    })
                    .collect(),
                news: plan
                    .news
                    .iter()
                    .map(|n| {
                        (
                            n.scheduled_id,
                            n.instrument_id,
                            n.headline.clone(),
                            n.jump_bp,
                        )
                    })
                    .collect(),
            };
            if !sm::claim_tick(db, game_id, &claim).await? {
                return Ok(TickOutcome::NotLeader);
            }
            // Session edges: day orders expire and borrow fees are charged at the close;
            // margin is checked at the open.
            if prev_session != Session::Closed && session == Session::Closed {
                self.ex.expire_day_orders(game_id).await?;
                self.ex.charge_borrow_fees(game_id).await?;
            }
            if prev_session != Session::Regular && session == Session::Regular {
                self.ex.run_margin_check(game_id).await?;
            }
        }

        phases.claim_us = micros_since(started);
        let started = Instant::now();

        // Carry out the NPCs' orders like any player's, in plan order, all in one transaction:
        // one commit for the tick instead of one per order, and either all of them happen or
        // (if the process dies) none, and the tick is finished again.
        let books: Vec<i64> = instruments.iter().map(|i| i.id).collect();
        let skipped = self
            .execute_all(game_id, tick, &plan.actions, &books)
            .await?;

        phases.orders_us = micros_since(started);
        let started = Instant::now();

        // Snapshot: bars from the trades since the last tick.
        let trades = sm::trades_since(db, game_id, sim_row.last_trade_id).await?;
        let last_trade_id = trades.last().map_or(sim_row.last_trade_id, |t| t.0);
        let prices: HashMap<i64, i64> = sm::last_prices(db, game_id).await?.into_iter().collect();
        let mut bars = Vec::new();
        let fair_of: HashMap<i64, i64> = if recovery {
            sims.iter()
                .map(|s| (s.instrument_id, s.fair_ucents))
                .collect()
        } else {
            plan.fair.iter().map(|&(id, f, _)| (id, f)).collect()
        };
        for s in &sims {
            let mine: Vec<&(i64, i64, i64, i64)> =
                trades.iter().filter(|t| t.1 == s.instrument_id).collect();
            if mine.is_empty() && session == Session::Closed {
                continue;
            }
            let close = prices
                .get(&s.instrument_id)
                .copied()
                .unwrap_or(s.last_price);
            let (open, high, low, volume) = match (mine.first(), mine.is_empty()) {
                (Some(first), false) => (
                    first.2,
                    mine.iter().map(|t| t.2).max().unwrap_or(close),
                    mine.iter().map(|t| t.2).min().unwrap_or(close),
                    mine.iter().map(|t| t.3).sum(),
                ),
                _ => (close, close, close, 0),
            };
            bars.push(sm::Bar {
                instrument_id: s.instrument_id,
                key: tick,
                market_at,
                open,
                high,
                low,
                close,
                volume,
                fair: fair_of.get(&s.instrument_id).copied().unwrap_or(0) / sim::UCENTS as i64,
            });
        }
        let day = calendar.day_key(market_at);
        if !sm::finish_tick(db, game_id, holder, tick, &bars, day, last_trade_id).await? {
            return Ok(TickOutcome::NotLeader);
        }
        phases.snapshot_us = micros_since(started);
        Ok(TickOutcome::Ticked {
            tick,
            actions: plan.actions.len(),
            skipped,
            news: plan.news.len(),
            phases,
        })
    }

    async fn npc_views(&self, game_id: i64) -> Result<Vec<NpcView>, MarketError> {
        let db = self.ex.db();
        let rows = sm::npcs(db, game_id).await?;
        let (cash, positions, orders) = sm::npc_holdings(db, game_id).await?;
        let cash: HashMap<i64, i64> = cash.into_iter().collect();
        let mut views: Vec<NpcView> = rows
            .into_iter()
            .map(|r| NpcView {
                player_id: r.player_id,
                account_id: r.account_id,
                kind: if r.kind == "maker" {
                    NpcKind::Maker
                } else {
                    NpcKind::Retail
                },
                instrument_id: r.instrument_id,
                capital: r.capital,
                cash: cash.get(&r.account_id).copied().unwrap_or(0),
                positions: Vec::new(),
                orders: Vec::new(),
            })
            .collect();
        let index: HashMap<i64, usize> = views
            .iter()
            .enumerate()
            .map(|(i, v)| (v.account_id, i))
            .collect();
        for (account, instrument, qty) in positions {
            if let Some(&i) = index.get(&account) {
                views[i].positions.push((instrument, qty));
            }
        }
        for (order_id, account, instrument_id, side, price, open_qty) in orders {
            if let (Some(&i), Some(side)) = (index.get(&account), Side::from_name(&side)) {
                views[i].orders.push(Resting {
                    order_id,
                    instrument_id,
                    side,
                    price,
                    open_qty,
                });
            }
        }
        for v in &mut views {
            v.positions.sort_unstable();
        }
        Ok(views)
    }

    /// Carries out a tick's actions in order in one batch; returns how many the exchange
    /// refused. Nothing is written if this fails.
    ///
    /// The batch locks every book of the game (`books`), not only those it trades on: no other
    /// order runs beside it. A batch fills accounts in plan order, not in id order as a lone
    /// order's write does, so a transaction on another book that filled the same two accounts
    /// the other way round could deadlock with it. Players wait out one batch (a few tens of
    /// milliseconds) at most once a tick.
    async fn execute_all(
        &self,
        game_id: i64,
        tick: i64,
        actions: &[NpcAction],
        books: &[i64],
    ) -> Result<usize, MarketError> {
        if actions.is_empty() {
            return Ok(0);
        }
        let accounts: Vec<i64> = actions.iter().map(NpcAction::account_id).collect();
        let mut batch = self.ex.begin_batch(&accounts, books).await?;
        let mut skipped = 0;
        for action in actions {
            match execute(&mut batch, game_id, action).await {
                Ok(()) => {}
                Err(ExchangeError::Store(e)) => {
                    batch.rollback().await;
                    return Err(e.into());
                }
                Err(other) => {
                    tracing::debug!(game_id, tick, error = %other, "npc order refused");
                    skipped += 1;
                }
            }
        }
        batch.commit().await?;
        Ok(skipped)
    }

    /// Runs a game's simulation until `shutdown` is cancelled or the game is stopped: keeps
    /// trying for the lease, and while holding it runs every tick when it falls due. Store
    /// errors are logged and retried after a pause.
    pub async fn run(
        &self,
        game_id: i64,
        holder: &str,
        shutdown: CancellationToken,
    ) -> Result<(), MarketError> {
        let tick_ms = self.sim(game_id).await?.tick_ms.max(1);
        let poll = Duration::from_millis((tick_ms / 4).clamp(5, 1000) as u64);
        tracing::info!(game_id, holder, tick_ms, "market simulator started");
        // The mail desk runs while this process holds the lease: after every tick, and at
        // least once a tick while idle; tips also just before a tick may fall due, so that
        // news the tick publishes is tipped first. Its failures are logged and retried on the
        // next run; they never stop the simulation.
        let mut notifier = Notifier::new(self.clone(), game_id);
        let mut mailed_at: Option<Instant> = None;
        let mut was_idle = false;
        loop {
            if was_idle {
                if let Err(e) = notifier.tips_once(now_ms()).await {
                    tracing::warn!(game_id, error = %e, "tips failed; retrying");
                }
            }
            let outcome = self.tick_once(game_id, holder, now_ms()).await;
            was_idle = matches!(outcome, Ok(TickOutcome::Idle { .. }));
            let leading = matches!(
                outcome,
                Ok(TickOutcome::Ticked { .. } | TickOutcome::Idle { .. })
            );
            let ticked = matches!(outcome, Ok(TickOutcome::Ticked { .. }));
            let due =
                mailed_at.is_none_or(|t| t.elapsed() >= Duration::from_millis(tick_ms as u64));
            if leading && (ticked || due) {
                mailed_at = Some(Instant::now());
                match notifier.run_once(now_ms()).await {
                    Ok(r) if r != MailReport::default() => {
                        tracing::debug!(
                            game_id,
                            events = r.events,
                            fills = r.fills,
                            margin_calls = r.margin_calls,
                            liquidations = r.liquidations,
                            tips = r.tips,
                            "mail"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(game_id, error = %e, "mail failed; retrying"),
                }
            }
            let wait = match outcome {
                Ok(TickOutcome::Ticked {
                    tick,
                    actions,
                    skipped,
                    news,
                    ..
                }) => {
                    tracing::debug!(game_id, tick, actions, skipped, news, "tick");
                    Duration::ZERO
                }
                Ok(TickOutcome::Idle { next_due }) => {
                    let until = next_due.map_or(poll, |t| {
                        Duration::from_millis((t - now_ms()).clamp(0, tick_ms / 3) as u64)
                    });
                    until.min(poll.max(Duration::from_millis(1)))
                }
                Ok(TickOutcome::NotLeader) => poll,
                Ok(TickOutcome::Stopped) => {
                    tracing::info!(game_id, "market simulation stopped");
                    sm::release_lease(self.ex.db(), game_id, holder).await?;
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(game_id, error = %e, "tick failed; retrying");
                    poll
                }
            };
            if wait.is_zero() && !shutdown.is_cancelled() {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    sm::release_lease(self.ex.db(), game_id, holder).await?;
                    return Ok(());
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// One NPC action inside the tick's batch.
async fn execute(batch: &mut Batch, game_id: i64, action: &NpcAction) -> Result<(), ExchangeError> {
    match *action {
        NpcAction::Place {
            account_id,
            instrument_id,
            intent,
            price,
            qty,
            tif,
        } => {
            let req = quote(intent, price, qty, tif);
            batch
                .place(game_id, account_id, instrument_id, &req)
                .await?;
        }
        NpcAction::Replace {
            account_id,
            instrument_id,
            intent,
            order_id,
            price,
            qty,
            ..
        } => match batch
            .replace(game_id, account_id, order_id, Some(price), qty)
            .await
        {
            Err(ExchangeError::OrderClosed) => {
                let req = quote(intent, price, qty, TimeInForce::Gtc);
                batch
                    .place(game_id, account_id, instrument_id, &req)
                    .await?;
            }
            other => {
                other?;
            }
        },
        NpcAction::Cancel {
            account_id,
            order_id,
            ..
        } => match batch
            .cancel(game_id, Some(account_id), order_id, CancelReason::User)
            .await
        {
            Err(ExchangeError::OrderClosed) => {}
            other => {
                other?;
            }
        },
    }
    Ok(())
}

/// An NPC's limit order.
fn quote(intent: Intent, price: i64, qty: i64, tif: TimeInForce) -> OrderRequest {
    OrderRequest {
        symbol: String::new(),
        intent,
        order_type: OrderType::Limit { price },
        tif,
        qty,
        stp: None,
    }
}
