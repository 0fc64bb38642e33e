//! The pure tick core: given everything a tick needs to know (instruments, NPC holdings and
//! quotes, the session, due news) and the tick's RNG, it returns what the tick does: new fair
//! values, published news and the NPCs' order actions.
//!
//! Owns the price model (geometric Brownian motion with Merton jumps, in `f64`, converted to
//! whole ticks at the edge), the NPC market makers (quotes around fair value, skewed against
//! inventory, wider with volatility, low capital and thin sessions) and the NPC retail traders
//! (noise, momentum, hype). It performs no I/O and reads no clock; the runner executes the plan
//! through the exchange. Money stays integer cents in every action.

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::clock::Session;
use super::news::{headlines, Tone};
use crate::exchange::{Intent, Side, TimeInForce};

/// Fair values are stored in micro-cents.
pub const UCENTS: f64 = 1_000_000.0;

/// Tunable behaviour of the simulation (from `[market]` in the config).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimParams {
    /// The volatility at which makers quote their base spread (bp per market day).
    pub vol_ref_bp_day: i64,
    /// Makers' spread at the reference volatility (bp of fair value).
    pub base_spread_bp: i64,
    /// The narrowest and widest spread a maker quotes in the regular session.
    pub min_spread_bp: i64,
    pub max_spread_bp: i64,
    /// Spread multiplier before and after the regular session (percent).
    pub thin_spread_pct: i64,
    /// Quote size multiplier before and after the regular session (percent).
    pub thin_size_pct: i64,
    /// Shares per maker quote at full liquidity.
    pub quote_size: i64,
    /// How far full inventory (double or none of the starting shares) moves the reservation
    /// price (bp).
    pub inventory_skew_bp: i64,
    /// A quote is moved only when its price is this many ticks off target and also this
    /// percentage of the target spread (fewer order changes per tick).
    pub requote_ticks: i64,
    pub requote_spread_pct: i64,
    /// Chance per instrument per tick that a retail trader acts (percent, regular session).
    pub retail_pct: i64,
    /// Largest retail order in shares.
    pub retail_size: i64,
    /// How far past the last price a retail order reaches (bp).
    pub retail_reach_bp: i64,
    /// Weight of momentum and of hype in a retail trader's decision (percent).
    pub momentum_weight_pct: i64,
    pub hype_weight_pct: i64,
    /// Random jumps of the price model: rate per market day, mean and spread of the log size.
    pub jump_rate_per_day: f64,
    pub jump_mean_bp: i64,
    pub jump_vol_bp: i64,
    /// Random news: rate per market day (whole game) and typical jump (bp).
    pub news_rate_per_day: f64,
    pub news_jump_bp: i64,
    /// How fast hype fades: half-life in market minutes.
    pub hype_half_life_min: i64,
}

impl Default for SimParams {
    fn default() -> Self {
        SimParams {
            vol_ref_bp_day: 200,
            base_spread_bp: 40,
            min_spread_bp: 10,
            max_spread_bp: 300,
            thin_spread_pct: 250,
            thin_size_pct: 30,
            quote_size: 200,
            inventory_skew_bp: 100,
            requote_ticks: 2,
            requote_spread_pct: 25,
            retail_pct: 30,
            retail_size: 50,
            retail_reach_bp: 50,
            momentum_weight_pct: 50,
            hype_weight_pct: 100,
            jump_rate_per_day: 0.5,
            jump_mean_bp: 0,
            jump_vol_bp: 300,
            news_rate_per_day: 4.0,
            news_jump_bp: 500,
            hype_half_life_min: 120,
        }
    }
}

/// One instrument as the tick sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimInstrument {
    pub instrument_id: i64,
    pub symbol: String,
    pub name: String,
    pub tick: i64,
    pub last_price: i64,
    /// The last price one tick ago (0 before the first tick).
    pub prev_price: i64,
    pub fair_ucents: i64,
    pub drift_bp_day: i64,
    pub vol_bp_day: i64,
    pub hype_bp: i64,
}

/// A resting order of an NPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resting {
    pub order_id: i64,
    pub instrument_id: i64,
    pub side: Side,
    pub price: i64,
    pub open_qty: i64,
}

/// What kind of NPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpcKind {
    /// Quotes both sides of one instrument.
    Maker,
    /// Trades any instrument on noise, momentum and hype.
    Retail,
}

/// One NPC with its holdings.
#[derive(Debug, Clone, PartialEq)]
pub struct NpcView {
    pub player_id: i64,
    pub account_id: i64,
    pub kind: NpcKind,
    /// The instrument a maker quotes.
    pub instrument_id: Option<i64>,
    /// Starting shares of a maker (its inventory target).
    pub capital: i64,
    pub cash: i64,
    /// (instrument id, shares), any order.
    pub positions: Vec<(i64, i64)>,
    pub orders: Vec<Resting>,
}

impl NpcView {
    fn position(&self, instrument_id: i64) -> i64 {
        self.positions
            .iter()
            .find(|(i, _)| *i == instrument_id)
            .map_or(0, |(_, q)| *q)
    }
}

/// A scheduled news item that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueNews {
    pub id: i64,
    pub instrument_id: Option<i64>,
    /// Empty: drawn from the table by the sign of the jump.
    pub headline: String,
    /// `None`: drawn (an earnings surprise).
    pub jump_bp: Option<i64>,
}

/// Everything one tick needs.
#[derive(Debug, Clone)]
pub struct TickInput<'a> {
    pub seed: i64,
    pub tick: i64,
    pub session: Session,
    /// The session at the previous tick.
    pub prev_session: Session,
    /// Market milliseconds this tick stands for.
    pub dt_ms: i64,
    /// The length of a regular session (ms): volatility is quoted per such day.
    pub day_ms: i64,
    pub vol_mult_bp: i64,
    pub liq_mult_bp: i64,
    pub instruments: &'a [SimInstrument],
    pub npcs: &'a [NpcView],
    pub due_news: &'a [DueNews],
    pub params: &'a SimParams,
    /// Finishing a tick a dead process began: makers requote, nothing else happens.
    pub recovery: bool,
}

/// A news item the tick publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The scheduled row it came from, or `None` for a random event.
    pub scheduled_id: Option<i64>,
    pub instrument_id: i64,
    pub headline: String,
    pub jump_bp: i64,
}

/// One order action of an NPC, executed in sequence through the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NpcAction {
    Place {
        account_id: i64,
        instrument_id: i64,
        intent: Intent,
        price: i64,
        qty: i64,
        tif: TimeInForce,
    },
    /// Moves a resting quote; if it has filled meanwhile, a new one is placed instead.
    Replace {
        player_id: i64,
        account_id: i64,
        instrument_id: i64,
        intent: Intent,
        order_id: i64,
        price: i64,
        qty: i64,
    },
    Cancel {
        player_id: i64,
        account_id: i64,
        instrument_id: i64,
        order_id: i64,
    },
}

impl NpcAction {
    /// The account the action trades for.
    pub fn account_id(&self) -> i64 {
        match *self {
            NpcAction::Place { account_id, .. }
            | NpcAction::Replace { account_id, .. }
            | NpcAction::Cancel { account_id, .. } => account_id,
        }
    }

    /// The book the action works on.
    pub fn instrument_id(&self) -> i64 {
        match *self {
            NpcAction::Place { instrument_id, .. }
            | NpcAction::Replace { instrument_id, .. }
            | NpcAction::Cancel { instrument_id, .. } => instrument_id,
        }
    }
}

/// What a tick does.
#[derive(Debug, Clone, PartialEq)]
pub struct TickPlan {
    /// New (instrument id, fair value in micro-cents, hype in bp), one per instrument.
    pub fair: Vec<(i64, i64, i64)>,
    pub news: Vec<Published>,
    pub actions: Vec<NpcAction>,
}

/// The RNG of one tick: ChaCha8 seeded from the game's seed and the tick number, so a tick
/// draws the same numbers whichever process runs it.
pub fn tick_rng(seed: i64, tick: i64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&tick.to_le_bytes());
    key[16..24].copy_from_slice(b"nuggetmk");
    ChaCha8Rng::from_seed(key)
}

/// The surprise of scheduled earnings report `n` of a game (bp), drawn when it is scheduled
/// so that tips can be sent before it is published; a stream of its own per report.
pub fn earnings_surprise(seed: i64, n: i64, params: &SimParams) -> i64 {
    let mut rng = tick_rng(seed, -1 - n);
    (params.news_jump_bp as f64 * 0.6 * normal(&mut rng)).round() as i64
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Rounds a price in cents down (or up) to a whole number of ticks, never below one tick.
pub fn to_ticks(cents: f64, tick: i64, up: bool) -> i64 {
    let tick = tick.max(1);
    let steps = cents / tick as f64;
    let steps = if up { steps.ceil() } else { steps.floor() };
    if !steps.is_finite() {
        return tick;
    }
    let steps = steps.clamp(1.0, 1.0e9 / tick as f64) as i64;
    steps * tick
}

fn is_thin(session: Session) -> bool {
    matches!(session, Session::PreMarket | Session::AfterHours)
}

/// Plans one tick.
pub fn plan_tick(input: &TickInput<'_>) -> TickPlan {
    let mut rng = tick_rng(input.seed, input.tick);
    let p = input.params;
    let open = input.session != Session::Closed;
    let dt = input.dt_ms as f64 / input.day_ms.max(1) as f64;
    let variance_scale: f64 = if is_thin(input.session) { 0.25 } else { 1.0 };
    let vol_mult = input.vol_mult_bp as f64 / 10_000.0;
    let decay = 0.5f64.powf(input.dt_ms as f64 / (p.hype_half_life_min.max(1) * 60_000) as f64);

    // Fair values: every instrument draws its numbers whether or not they are used, so the
    // stream does not depend on which branch ran.
    let mut fair: Vec<(i64, f64, f64)> = Vec::with_capacity(input.instruments.len());
    for inst in input.instruments {
        let z = normal(&mut rng);
        let jump_u: f64 = rng.gen();
        let jump_z = normal(&mut rng);
        let mut f = inst.fair_ucents as f64 / UCENTS;
        let mut hype = inst.hype_bp as f64 * decay;
        if open && !input.recovery {
            let mu = inst.drift_bp_day as f64 / 10_000.0;
            let sigma = inst.vol_bp_day as f64 / 10_000.0 * vol_mult * variance_scale.sqrt();
            f *= ((mu - sigma * sigma / 2.0) * dt + sigma * dt.sqrt() * z).exp();
            if jump_u < 1.0 - (-p.jump_rate_per_day * dt * variance_scale).exp() {
                let size =
                    (p.jump_mean_bp as f64 + p.jump_vol_bp as f64 * vol_mult * jump_z) / 10_000.0;
                f *= size.exp();
            }
        } else {
            hype = inst.hype_bp as f64;
        }
        fair.push((inst.instrument_id, f.max(inst.tick as f64 / 2.0), hype));
    }

    // News: due scheduled items first, then a random event at the Poisson rate.
    let mut news = Vec::new();
    let news_u: f64 = rng.gen();
    let news_pick: usize = rng.gen_range(0..usize::MAX);
    let news_z = normal(&mut rng);
    if open && !input.recovery && !input.instruments.is_empty() {
        for due in input.due_news {
            let idx = due
                .instrument_id
                .and_then(|id| input.instruments.iter().position(|i| i.instrument_id == id))
                .unwrap_or(news_pick % input.instruments.len());
            let z = normal(&mut rng);
            let jump_bp = due
                .jump_bp
                .unwrap_or_else(|| (p.news_jump_bp as f64 * 0.6 * z).round() as i64);
            let inst = &input.instruments[idx];
            let headline = if due.headline.trim().is_empty() {
                let tone = if jump_bp >= 0 {
                    Tone::EarningsGood
                } else {
                    Tone::EarningsBad
                };
                headlines().pick(tone, rng.gen_range(0..usize::MAX), &inst.symbol, &inst.name)
            } else {
                due.headline.clone()
            };
            news.push(Published {
                scheduled_id: Some(due.id),
                instrument_id: inst.instrument_id,
                headline,
                jump_bp,
            });
        }
        let rate = p.news_rate_per_day * dt * variance_scale;
        if news_u < 1.0 - (-rate).exp() {
            let inst = &input.instruments[news_pick % input.instruments.len()];
            let size = (p.news_jump_bp as f64 * (1.0 + 0.5 * news_z)).abs().round() as i64;
            let good = (news_pick / input.instruments.len()).is_multiple_of(2);
            let tone = if good { Tone::Good } else { Tone::Bad };
            news.push(Published {
                scheduled_id: None,
                instrument_id: inst.instrument_id,
                headline: headlines().pick(tone, news_pick / 7, &inst.symbol, &inst.name),
                jump_bp: if good { size } else { -size },
            });
        }
    }
    for n in &news {
        if let Some(entry) = fair.iter_mut().find(|(id, _, _)| *id == n.instrument_id) {
            entry.1 *= (n.jump_bp as f64 / 10_000.0).exp();
            entry.2 += n.jump_bp as f64;
        }
    }

    let mut actions = Vec::new();
    let liq = input.liq_mult_bp as f64 / 10_000.0;
    // Each retail trader acts at most once a tick, so the actions of different instruments
    // touch disjoint books and accounts and the runner may carry them out side by side.
    let mut busy: Vec<i64> = Vec::new();
    for (inst, (_, f, hype)) in input.instruments.iter().zip(&fair) {
        for npc in input.npcs.iter().filter(|n| n.kind == NpcKind::Maker) {
            if npc.instrument_id == Some(inst.instrument_id) {
                maker_actions(input, inst, *f, npc, liq, &mut actions);
            }
        }
        let retail: Vec<&NpcView> = input
            .npcs
            .iter()
            .filter(|n| n.kind == NpcKind::Retail)
            .collect();
        let act_u: f64 = rng.gen();
        let who: usize = rng.gen_range(0..usize::MAX);
        let size_u: f64 = rng.gen();
        let noise = normal(&mut rng);
        let activity = match input.session {
            Session::Regular => 1.0,
            Session::PreMarket | Session::AfterHours => p.thin_size_pct as f64 / 100.0,
            Session::Closed => 0.0,
        };
        let chance = p.retail_pct as f64 / 100.0 * liq * activity;
        if input.recovery || retail.is_empty() || act_u >= chance {
            continue;
        }
        let Some(trader) = (0..retail.len())
            .map(|k| retail[(who + k) % retail.len()])
            .find(|r| !busy.contains(&r.account_id))
        else {
            continue;
        };
        busy.push(trader.account_id);
        let momentum = if inst.prev_price > 0 {
            (inst.last_price - inst.prev_price) as f64 / inst.prev_price as f64 * 10_000.0
        } else {
            0.0
        };
        let score = noise
            + p.momentum_weight_pct as f64 / 100.0 * (momentum / 20.0).clamp(-2.0, 2.0)
            + p.hype_weight_pct as f64 / 100.0 * (hype / 500.0).clamp(-2.0, 2.0);
        let mut qty = 1 + (size_u * p.retail_size.max(1) as f64) as i64;
        let reach = p.retail_reach_bp as f64 / 10_000.0;
        let last = inst.last_price as f64;
        if score >= 0.0 {
            let price = to_ticks(last * (1.0 + reach), inst.tick, true);
            qty = qty.min(trader.cash.max(0) / price.max(1) / 2);
            if qty > 0 {
                actions.push(NpcAction::Place {
                    account_id: trader.account_id,
                    instrument_id: inst.instrument_id,
                    intent: Intent::Buy,
                    price,
                    qty,
                    tif: TimeInForce::Ioc,
                });
            }
        } else {
            let held = trader.position(inst.instrument_id);
            qty = qty.min(held);
            if qty > 0 {
                actions.push(NpcAction::Place {
                    account_id: trader.account_id,
                    instrument_id: inst.instrument_id,
                    intent: Intent::Sell,
                    price: to_ticks(last * (1.0 - reach), inst.tick, false),
                    qty,
                    tif: TimeInForce::Ioc,
                });
            }
        }
    }

    TickPlan {
        fair: fair
            .into_iter()
            .map(|(id, f, h)| (id, (f * UCENTS).round() as i64, h.round() as i64))
            .collect(),
        news,
        actions,
    }
}

/// A maker's target quotes: (bid price, bid size, ask price, ask size).
pub fn maker_quotes(
    p: &SimParams,
    session: Session,
    inst: &SimInstrument,
    fair: f64,
    npc: &NpcView,
    vol_mult_bp: i64,
    liq: f64,
) -> (i64, i64, i64, i64) {
    let held = npc.position(inst.instrument_id);
    let target = npc.capital.max(1);
    let q = ((held - target) as f64 / target as f64).clamp(-1.0, 1.0);
    let reservation = fair * (1.0 - p.inventory_skew_bp as f64 / 10_000.0 * q);
    let vol = inst.vol_bp_day as f64 * vol_mult_bp as f64 / 10_000.0;
    let mut spread = p.base_spread_bp as f64 * (vol / p.vol_ref_bp_day.max(1) as f64).max(1.0);
    // Capital running low: equity below half of the starting stake widens the spread.
    let equity = npc.cash as f64 + held as f64 * fair;
    let stake = (2 * target) as f64 * fair;
    if stake > 0.0 && equity < stake / 2.0 {
        spread *= (stake / 2.0 / equity.max(stake / 20.0)).min(3.0);
    }
    let (mut lo, mut hi) = (p.min_spread_bp as f64, p.max_spread_bp as f64);
    let mut size = p.quote_size as f64 * liq;
    if is_thin(session) {
        let widen = p.thin_spread_pct as f64 / 100.0;
        spread *= widen;
        lo *= widen;
        hi *= widen;
        size *= p.thin_size_pct as f64 / 100.0;
    }
    let spread = spread.clamp(lo, hi.max(lo)) / 10_000.0;
    let mut bid = to_ticks(reservation * (1.0 - spread / 2.0), inst.tick, false);
    let mut ask = to_ticks(reservation * (1.0 + spread / 2.0), inst.tick, true);
    if ask <= bid {
        ask = bid + inst.tick;
    }
    // Keep the quoted spread inside the configured bound after rounding to ticks.
    let max_width = to_ticks(fair * hi.max(lo) / 10_000.0, inst.tick, false);
    if ask - bid > max_width && max_width >= inst.tick {
        bid = ask - max_width;
    }
    let size = size.round() as i64;
    let bid_size = size.min(npc.cash.max(0) / bid.max(1) / 2);
    let ask_size = size.min(held.max(0));
    (bid, bid_size.max(0), ask, ask_size.max(0))
}

fn maker_actions(
    input: &TickInput<'_>,
    inst: &SimInstrument,
    fair: f64,
    npc: &NpcView,
    liq: f64,
    actions: &mut Vec<NpcAction>,
) {
    let mine: Vec<&Resting> = npc
        .orders
        .iter()
        .filter(|o| o.instrument_id == inst.instrument_id)
        .collect();
    let (bid, bid_size, ask, ask_size) = if input.session == Session::Closed {
        (0, 0, 0, 0)
    } else {
        maker_quotes(
            input.params,
            input.session,
            inst,
            fair,
            npc,
            input.vol_mult_bp,
            liq,
        )
    };
    for (side, price, size, intent) in [
        (Side::Buy, bid, bid_size, Intent::Buy),
        (Side::Sell, ask, ask_size, Intent::Sell),
    ] {
        let mut existing = mine.iter().filter(|o| o.side == side);
        let first = existing.next();
        for extra in existing {
            actions.push(NpcAction::Cancel {
                player_id: npc.player_id,
                account_id: npc.account_id,
                instrument_id: inst.instrument_id,
                order_id: extra.order_id,
            });
        }
        match first {
            Some(o) if size <= 0 => actions.push(NpcAction::Cancel {
                player_id: npc.player_id,
                account_id: npc.account_id,
                instrument_id: inst.instrument_id,
                order_id: o.order_id,
            }),
            Some(o) => {
                let threshold = (input.params.requote_ticks.max(1) * inst.tick)
                    .max((ask - bid) * input.params.requote_spread_pct / 100);
                let off = (o.price - price).abs() >= threshold;
                if off || o.open_qty * 2 < size || o.open_qty > size {
                    actions.push(NpcAction::Replace {
                        player_id: npc.player_id,
                        account_id: npc.account_id,
                        instrument_id: inst.instrument_id,
                        intent,
                        order_id: o.order_id,
                        price,
                        qty: size,
                    });
                }
            }
            None if size > 0 => actions.push(NpcAction::Place {
                account_id: npc.account_id,
                instrument_id: inst.instrument_id,
                intent,
                price,
                qty: size,
                tif: TimeInForce::Gtc,
            }),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst() -> SimInstrument {
        SimInstrument {
            instrument_id: 1,
            symbol: "JUNK".into(),
            name: "Junk Bond Kings".into(),
            tick: 1,
            last_price: 10_000,
            prev_price: 10_000,
            fair_ucents: 10_000 * 1_000_000,
            drift_bp_day: 0,
            vol_bp_day: 200,
            hype_bp: 0,
        }
    }

    fn maker(held: i64) -> NpcView {
        NpcView {
            player_id: -1,
            account_id: 10,
            kind: NpcKind::Maker,
            instrument_id: Some(1),
            capital: 1000,
            cash: 100_000_000,
            positions: vec![(1, held)],
            orders: vec![],
        }
    }

    #[test]
    fn makers_skew_against_inventory_and_widen_with_volatility() {
        let p = SimParams::default();
        let (b0, _, a0, _) = maker_quotes(
            &p,
            Session::Regular,
            &inst(),
            10_000.0,
            &maker(1000),
            10_000,
            1.0,
        );
        let (b1, _, a1, _) = maker_quotes(
            &p,
            Session::Regular,
            &inst(),
            10_000.0,
            &maker(2000),
            10_000,
            1.0,
        );
        assert!(b1 < b0 && a1 < a0, "long inventory lowers both quotes");
        let (b2, _, a2, _) = maker_quotes(
            &p,
            Session::Regular,
            &inst(),
            10_000.0,
            &maker(1000),
            40_000,
            1.0,
        );
        assert!(a2 - b2 > a0 - b0, "higher volatility widens");
        let (b3, s3, a3, _) = maker_quotes(
            &p,
            Session::AfterHours,
            &inst(),
            10_000.0,
            &maker(1000),
            10_000,
            1.0,
        );
        assert!(
            a3 - b3 > a0 - b0 && s3 < p.quote_size,
            "after hours is thinner and wider"
        );
        assert!((a0 - b0) * 10_000 <= p.max_spread_bp * 10_000);
    }

    #[test]
    fn the_same_seed_plans_the_same_tick() {
        let p = SimParams::default();
        let insts = vec![inst()];
        let npcs = vec![maker(1000)];
        let input = TickInput {
            seed: 7,
            tick: 3,
            session: Session::Regular,
            prev_session: Session::Regular,
            dt_ms: 60_000,
            day_ms: 23_400_000,
            vol_mult_bp: 10_000,
            liq_mult_bp: 10_000,
            instruments: &insts,
            npcs: &npcs,
            due_news: &[],
            params: &p,
            recovery: false,
        };
        assert_eq!(plan_tick(&input), plan_tick(&input));
        let other = TickInput {
            tick: 4,
            ..input.clone()
        };
        assert_ne!(plan_tick(&input).fair, plan_tick(&other).fair);
        assert!(
            to_ticks(-5.0, 5, false) == 5,
            "prices never go below one tick"
        );
    }
}
