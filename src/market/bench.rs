//! `nuggetnet market bench`: how long one tick takes for many instruments with many player
//! accounts in the game.
//!
//! Owns only the benchmark's set-up and timing; it must not be used by the simulator.

use std::time::Instant;

use super::{InstrumentConfig, Market, MarketError, TickPhases};
use crate::exchange::{Intent, OrderRequest, OrderType, TimeInForce};
use crate::store::now_ms;

/// What to measure.
#[derive(Debug, Clone)]
pub struct TickBench {
    pub instruments: usize,
    pub players: usize,
    /// Resting limit orders the players leave on the books.
    pub player_orders: usize,
    pub ticks: usize,
}

/// The result: per-tick times in milliseconds, sorted.
#[derive(Debug, Clone)]
pub struct TickBenchReport {
    pub setup_secs: f64,
    pub tick_ms: Vec<f64>,
    /// NPC order actions (places, replaces, cancels) over the timed ticks.
    pub actions: usize,
    /// Each timed tick's phases.
    pub phases: Vec<TickPhases>,
}

impl TickBenchReport {
    /// The `q` quantile (0.0 to 1.0) of the tick times.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.tick_ms.is_empty() {
            return 0.0;
        }
        let i = ((self.tick_ms.len() - 1) as f64 * q).round() as usize;
        self.tick_ms[i.min(self.tick_ms.len() - 1)]
    }

    /// The median of one phase over the timed ticks, in milliseconds.
    pub fn phase_p50(&self, phase: impl Fn(&TickPhases) -> u64) -> f64 {
        let mut v: Vec<u64> = self.phases.iter().map(phase).collect();
        v.sort_unstable();
        v.get(v.len() / 2).map_or(0.0, |&us| us as f64 / 1000.0)
    }
}

/// Creates a game with `instruments` synthetic instruments and `players` funded accounts,
/// then times `ticks` ticks in the regular session.
pub async fn run(market: &Market, spec: &TickBench) -> Result<TickBenchReport, MarketError> {
    let started = Instant::now();
    let instruments: Vec<InstrumentConfig> = (0..spec.instruments)
        .map(|i| InstrumentConfig {
            symbol: format!("B{i:03}"),
            name: format!("Bench Holdings {i}"),
            profile: String::new(),
            price_cents: 1_000 + 100 * i as i64,
            tick_cents: 1,
            drift_bp_day: 0,
            vol_bp_day: 200,
        })
        .collect();
    let ex = market.exchange();
    let game = market.create_game("bench", &instruments, now_ms()).await?;
    for p in 0..spec.players as i64 {
        ex.open_account(game, p + 1).await?;
    }
    for k in 0..spec.player_orders {
        let inst = &instruments[k % instruments.len()];
        let below = 50 + (k as i64 * 7) % 100;
        let req = OrderRequest {
            symbol: inst.symbol.clone(),
            intent: Intent::Buy,
            order_type: OrderType::Limit {
                price: inst.price_cents - below,
            },
            tif: TimeInForce::Gtc,
            qty: 1 + (k as i64 % 5),
            stp: None,
        };
        ex.place(game, (k % spec.players.max(1)) as i64 + 1, &req)
            .await?;
    }
    // Warm up: the first tick places every maker's quotes. Then fresh statistics, as pgbench
    // takes after its set-up: a server without autovacuum would otherwise plan the tick's
    // reads from the statistics of empty tables.
    market.step(game, "bench").await?;
    let tables = format!(
        "{}, mk_sims, mk_instruments, mk_npcs, mk_ticks, mk_days, mk_news",
        crate::store::exchange::EXCHANGE_TABLES
    );
    crate::store::exchange::vacuum_analyze_tables(ex.db(), &tables).await?;
    let setup_secs = started.elapsed().as_secs_f64();
    let mut tick_ms = Vec::with_capacity(spec.ticks);
    let mut actions = 0;
    let mut phases = Vec::with_capacity(spec.ticks);
    for _ in 0..spec.ticks {
        let t = Instant::now();
        if let super::TickOutcome::Ticked {
            actions: n,
            phases: p,
            ..
        } = market.step(game, "bench").await?
        {
            actions += n;
            phases.push(p);
        }
        tick_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    tick_ms.sort_by(|a, b| a.total_cmp(b));
    Ok(TickBenchReport {
        setup_secs,
        tick_ms,
        actions,
        phases,
    })
}
