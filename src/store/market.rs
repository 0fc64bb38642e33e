//! The market simulation's tables (`mk_*`): each simulated game's clock, seed, lease and
//! controls; the hidden state of instruments; NPC accounts; price snapshots per tick and per
//! day; the news wire; the sysop's audit log. It also reads the exchange's tables where the
//! simulator needs a batch view (NPC holdings, new trades), but never writes them: every
//! change of cash, shares or orders goes through the exchange.
//!
//! The tick's writes are conditional on the lease and on the last tick number, so a process
//! that lost its lease cannot write a tick twice or out of turn.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Backend, Db, StoreError};

/// A simulated game's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRow {
    pub game_id: i64,
    pub seed: i64,
    pub tick_ms: i64,
    pub speed: i64,
    pub origin_real: i64,
    pub origin_market: i64,
    pub paused_at: Option<i64>,
    pub stopped: bool,
    pub vol_mult_bp: i64,
    pub liq_mult_bp: i64,
    pub last_tick: i64,
    pub tick_done: bool,
    pub last_trade_id: i64,
    pub holder: Option<String>,
    pub lease_until: i64,
    /// The game's calendar as JSON (`market::settings::CalendarSpec`); empty for games
    /// created before calendars were stored.
    pub calendar: String,
}

/// The hidden state of one instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentState {
    pub instrument_id: i64,
    pub fair_ucents: i64,
    pub drift_bp_day: i64,
    pub vol_bp_day: i64,
    pub hype_bp: i64,
    pub prev_price: i64,
}

/// An NPC account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpcRow {
    pub player_id: i64,
    pub account_id: i64,
    /// `maker` or `retail`.
    pub kind: String,
    pub instrument_id: Option<i64>,
    pub capital: i64,
}

/// An open order of an NPC: (order id, account id, instrument id, side, price, open qty).
pub type NpcOrder = (i64, i64, i64, String, i64, i64);

/// One OHLCV bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub instrument_id: i64,
    /// The tick number (per-tick bars) or the `yyyymmdd` day (daily bars).
    pub key: i64,
    pub market_at: i64,
    pub open: i64,
    pub high: i64,
    pub low: i64,
    pub close: i64,
    pub volume: i64,
    /// The fair value in cents (per-tick bars only; 0 in daily bars).
    pub fair: i64,
}

/// A news item, scheduled or published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewsRow {
    pub id: i64,
    pub instrument_id: Option<i64>,
    pub headline: String,
    pub jump_bp: Option<i64>,
    pub source: String,
    pub due_at: i64,
    pub tick: Option<i64>,
    pub published_at: Option<i64>,
}

/// An entry of the sysop audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub game_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub created_at: i64,
}

/// What a claimed tick writes with its claim.
#[derive(Debug, Clone, Default)]
pub struct TickClaim<'a> {
    pub holder: &'a str,
    pub tick: i64,
    pub now: i64,
    pub lease_ms: i64,
    pub market_at: i64,
    /// (instrument id, fair micro-cents, hype bp, last price now).
    pub fair: Vec<(i64, i64, i64, i64)>,
    /// (scheduled id or none, instrument id, headline, jump bp).
    pub news: Vec<(Option<i64>, i64, String, i64)>,
}

/// A sysop change to a game's simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlChange {
    Pause,
    Resume,
    Stop,
    Volatility(i64),
    Liquidity(i64),
    None,
}

async fn begin(db: &Db) -> Result<Transaction<'static, Any>, StoreError> {
    Ok(match db.backend() {
        Backend::Sqlite => db.pool().begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => db.pool().begin().await?,
    })
}

fn sim_from(r: &AnyRow) -> Result<SimRow, StoreError> {
    Ok(SimRow {
        game_id: r.try_get("game_id")?,
        seed: r.try_get("seed")?,
        tick_ms: r.try_get("tick_ms")?,
        speed: r.try_get("speed")?,
        origin_real: r.try_get("origin_real")?,
        origin_market: r.try_get("origin_market")?,
        paused_at: r.try_get("paused_at")?,
        stopped: r.try_get::<i64, _>("stopped")? != 0,
        vol_mult_bp: r.try_get("vol_mult_bp")?,
        liq_mult_bp: r.try_get("liq_mult_bp")?,
        last_tick: r.try_get("last_tick")?,
        tick_done: r.try_get::<i64, _>("tick_done")? != 0,
        last_trade_id: r.try_get("last_trade_id")?,
        holder: r.try_get("holder")?,
        lease_until: r.try_get("lease_until")?,
        calendar: r.try_get("calendar")?,
    })
}

/// Creates a game's simulation row and its instruments' hidden state.
pub async fn insert_sim(
    db: &Db,
    sim: &SimRow,
    instruments: &[InstrumentState],
    now: i64,
) -> Result<(), StoreError> {
    let mut tx = begin(db).await?;
    sqlx::query(
        "INSERT INTO mk_sims (game_id, seed, tick_ms, speed, origin_real, origin_market, \
             vol_mult_bp, liq_mult_bp, created_at, calendar) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(sim.game_id)
    .bind(sim.seed)
    .bind(sim.tick_ms)
    .bind(sim.speed)
    .bind(sim.origin_real)
    .bind(sim.origin_market)
    .bind(sim.vol_mult_bp)
    .bind(sim.liq_mult_bp)
    .bind(now)
    .bind(&sim.calendar)
    .execute(&mut *tx)
    .await?;
    for i in instruments {
        sqlx::query(
            "INSERT INTO mk_instruments (game_id, instrument_id, fair_ucents, drift_bp_day, \
                 vol_bp_day, hype_bp, prev_price) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(sim.game_id)
        .bind(i.instrument_id)
        .bind(i.fair_ucents)
        .bind(i.drift_bp_day)
        .bind(i.vol_bp_day)
        .bind(i.hype_bp)
        .bind(i.prev_price)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A game's simulation row.
pub async fn sim(db: &Db, game_id: i64) -> Result<Option<SimRow>, StoreError> {
    let row = sqlx::query("SELECT * FROM mk_sims WHERE game_id = $1")
        .bind(game_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(sim_from).transpose()
}

/// Every simulated game, newest first.
pub async fn sims(db: &Db) -> Result<Vec<SimRow>, StoreError> {
    let rows = sqlx::query("SELECT * FROM mk_sims ORDER BY game_id DESC")
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(sim_from).collect()
}

/// The hidden state of a game's instruments, by instrument id.
pub async fn instrument_states(db: &Db, game_id: i64) -> Result<Vec<InstrumentState>, StoreError> {
    let rows = sqlx::query(
        "SELECT instrument_id, fair_ucents, drift_bp_day, vol_bp_day, hype_bp, prev_price \
         FROM mk_instruments WHERE game_id = $1 ORDER BY instrument_id",
    )
    .bind(game_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(InstrumentState {
                instrument_id: r.try_get("instrument_id")?,
                fair_ucents: r.try_get("fair_ucents")?,
                drift_bp_day: r.try_get("drift_bp_day")?,
                vol_bp_day: r.try_get("vol_bp_day")?,
                hype_bp: r.try_get("hype_bp")?,
                prev_price: r.try_get("prev_price")?,
            })
        })
        .collect()
}

/// Records an NPC account.
pub async fn insert_npc(db: &Db, game_id: i64, npc: &NpcRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mk_npcs (game_id, player_id, account_id, kind, instrument_id, capital) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(game_id)
    .bind(npc.player_id)
    .bind(npc.account_id)
    .bind(npc.kind.as_str())
    .bind(npc.instrument_id)
    .bind(npc.capital)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The NPCs of a game, by player id (descending, so creation order).
pub async fn npcs(db: &Db, game_id: i64) -> Result<Vec<NpcRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT player_id, account_id, kind, instrument_id, capital FROM mk_npcs \
         WHERE game_id = $1 ORDER BY player_id DESC",
    )
    .bind(game_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(NpcRow {
                player_id: r.try_get("player_id")?,
                account_id: r.try_get("account_id")?,
                kind: r.try_get("kind")?,
                instrument_id: r.try_get("instrument_id")?,
                capital: r.try_get("capital")?,
            })
        })
        .collect()
}

/// The NPCs' cash, positions and open orders in three reads of the exchange's tables.
#[allow(clippy::type_complexity)]
pub async fn npc_holdings(
    db: &Db,
    game_id: i64,
) -> Result<(Vec<(i64, i64)>, Vec<(i64, i64, i64)>, Vec<NpcOrder>), StoreError> {
    let cash = sqlx::query(
        "SELECT a.id, a.cash FROM ex_accounts a JOIN mk_npcs n ON n.account_id = a.id \
         WHERE n.game_id = $1",
    )
    .bind(game_id)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| Ok((r.try_get("id")?, r.try_get("cash")?)))
    .collect::<Result<Vec<_>, StoreError>>()?;
    let positions = sqlx::query(
        "SELECT p.account_id, p.instrument_id, p.qty FROM ex_positions p \
         JOIN mk_npcs n ON n.account_id = p.account_id WHERE n.game_id = $1",
    )
    .bind(game_id)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("account_id")?,
            r.try_get("instrument_id")?,
            r.try_get("qty")?,
        ))
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let orders = sqlx::query(
        "SELECT o.id, o.account_id, o.instrument_id, o.side, o.price, o.qty - o.filled AS open_qty \
         FROM ex_orders o JOIN mk_npcs n ON n.account_id = o.account_id \
         WHERE n.game_id = $1 AND o.status = 'open' ORDER BY o.id",
    )
    .bind(game_id)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("id")?,
            r.try_get("account_id")?,
            r.try_get("instrument_id")?,
            r.try_get("side")?,
            r.try_get::<Option<i64>, _>("price")?.unwrap_or(0),
            r.try_get("open_qty")?,
        ))
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((cash, positions, orders))
}

/// Takes or renews a game's lease: succeeds when nobody holds it, it expired, or `holder`
/// already has it. Returns whether `holder` holds it now.
pub async fn acquire_lease(
    db: &Db,
    game_id: i64,
    holder: &str,
    now: i64,
    lease_ms: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE mk_sims SET holder = $2, lease_until = $3 \
         WHERE game_id = $1 AND stopped = 0 AND (holder IS NULL OR holder = $2 OR lease_until < $4)",
    )
    .bind(game_id)
    .bind(holder)
    .bind(now + lease_ms)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives a lease up (on a clean stop), so a standby takes over at once.
pub async fn release_lease(db: &Db, game_id: i64, holder: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE mk_sims SET holder = NULL, lease_until = 0 WHERE game_id = $1 AND holder = $2",
    )
    .bind(game_id)
    .bind(holder)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Claims tick `claim.tick` and writes its new fair values and news in one transaction.
/// Nothing is written, and `false` returned, unless `holder` still holds an unexpired lease
/// and the previous tick is finished.
pub async fn claim_tick(db: &Db, game_id: i64, claim: &TickClaim<'_>) -> Result<bool, StoreError> {
    let mut tx = begin(db).await?;
    let done = sqlx::query(
        "UPDATE mk_sims SET last_tick = $3, tick_done = 0, lease_until = $4 \
         WHERE game_id = $1 AND holder = $2 AND lease_until >= $5 AND last_tick = $6 \
           AND tick_done = 1 AND stopped = 0 AND paused_at IS NULL",
    )
    .bind(game_id)
    .bind(claim.holder)
    .bind(claim.tick)
    .bind(claim.now + claim.lease_ms)
    .bind(claim.now)
    .bind(claim.tick - 1)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO mk_tick_log (game_id, tick, holder, market_at, started_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(game_id)
    .bind(claim.tick)
    .bind(claim.holder)
    .bind(claim.market_at)
    .bind(claim.now)
    .execute(&mut *tx)
    .await?;
    // One upsert for every instrument instead of a round trip each; the values are integers
    // formatted here. Drift and volatility are not touched by the update.
    for chunk in claim.fair.chunks(100) {
        let mut sql = String::from(
            "INSERT INTO mk_instruments (game_id, instrument_id, fair_ucents, drift_bp_day, \
             vol_bp_day, hype_bp, prev_price) VALUES ",
        );
        for (i, (instrument_id, fair, hype, last)) in chunk.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            sql.push_str(&format!(
                "{sep}({game_id}, {instrument_id}, {fair}, 0, 0, {hype}, {last})"
            ));
        }
        sql.push_str(
            " ON CONFLICT (game_id, instrument_id) DO UPDATE SET \
             fair_ucents = excluded.fair_ucents, hype_bp = excluded.hype_bp, \
             prev_price = excluded.prev_price",
        );
        sqlx::query(&sql).execute(&mut *tx).await?;
    }
    for (scheduled, instrument_id, headline, jump_bp) in &claim.news {
        match scheduled {
            Some(id) => {
                sqlx::query(
                    "UPDATE mk_news SET headline = $2, jump_bp = $3, tick = $4, published_at = $5, \
                         instrument_id = $6 WHERE id = $1",
                )
                .bind(id)
                .bind(headline)
                .bind(jump_bp)
                .bind(claim.tick)
                .bind(claim.market_at)
                .bind(instrument_id)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO mk_news (game_id, instrument_id, headline, jump_bp, source, due_at, \
                         tick, published_at) VALUES ($1, $2, $3, $4, 'wire', $5, $6, $5)",
                )
                .bind(game_id)
                .bind(instrument_id)
                .bind(headline)
                .bind(jump_bp)
                .bind(claim.market_at)
                .bind(claim.tick)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Writes a claimed tick's bars and marks it finished, if `holder` still owns it.
pub async fn finish_tick(
    db: &Db,
    game_id: i64,
    holder: &str,
    tick: i64,
    bars: &[Bar],
    day: i64,
    last_trade_id: i64,
) -> Result<bool, StoreError> {
    let mut tx = begin(db).await?;
    let done = sqlx::query(
        "UPDATE mk_sims SET tick_done = 1, last_trade_id = $4 \
         WHERE game_id = $1 AND holder = $2 AND last_tick = $3 AND tick_done = 0",
    )
    .bind(game_id)
    .bind(holder)
    .bind(tick)
    .bind(last_trade_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    for chunk in bars.chunks(50) {
        if chunk.is_empty() {
            continue;
        }
        let mut ticks = String::from(
            "INSERT INTO mk_ticks (game_id, instrument_id, tick, market_at, open, high, low, \
             close, volume, fair) VALUES ",
        );
        let mut days = String::from(
            "INSERT INTO mk_days (game_id, instrument_id, day, open, high, low, close, volume) \
             VALUES ",
        );
        // Every value is an integer formatted here, so building the text is safe, and one
        // statement per chunk saves a round trip per instrument.
        for (i, b) in chunk.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            ticks.push_str(&format!(
                "{sep}({game_id}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                b.instrument_id,
                b.key,
                b.market_at,
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume,
                b.fair
            ));
            days.push_str(&format!(
                "{sep}({game_id}, {}, {day}, {}, {}, {}, {}, {})",
                b.instrument_id, b.open, b.high, b.low, b.close, b.volume
            ));
        }
        days.push_str(
            " ON CONFLICT (game_id, instrument_id, day) DO UPDATE SET \
             high = CASE WHEN excluded.high > mk_days.high THEN excluded.high ELSE mk_days.high END, \
             low = CASE WHEN excluded.low < mk_days.low THEN excluded.low ELSE mk_days.low END, \
             close = excluded.close, volume = mk_days.volume + excluded.volume",
        );
        // As text, not prepared: their text differs every tick, and preparing them would
        // cost a parse each and push useful statements out of the connection's cache.
        let both = format!("{ticks}; {days};");
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(&both)).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Trades of a game after trade id `after`: (id, instrument id, price, qty), by id.
pub async fn trades_since(
    db: &Db,
    game_id: i64,
    after: i64,
) -> Result<Vec<(i64, i64, i64, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, instrument_id, price, qty FROM ex_trades WHERE game_id = $1 AND id > $2 \
         ORDER BY id",
    )
    .bind(game_id)
    .bind(after)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get("instrument_id")?,
                r.try_get("price")?,
                r.try_get("qty")?,
            ))
        })
        .collect()
}

/// The last trade price of each instrument of a game: (instrument id, price).
pub async fn last_prices(db: &Db, game_id: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    let rows =
        sqlx::query("SELECT id, last_price FROM ex_instruments WHERE game_id = $1 ORDER BY id")
            .bind(game_id)
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("last_price")?)))
        .collect()
}

/// Schedules a news item.
pub async fn schedule_news(
    db: &Db,
    game_id: i64,
    instrument_id: Option<i64>,
    headline: &str,
    jump_bp: Option<i64>,
    source: &str,
    due_at: i64,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO mk_news (game_id, instrument_id, headline, jump_bp, source, due_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(game_id)
    .bind(instrument_id)
    .bind(headline)
    .bind(jump_bp)
    .bind(source)
    .bind(due_at)
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get("id")?)
}

fn news_from(r: &AnyRow) -> Result<NewsRow, StoreError> {
    Ok(NewsRow {
        id: r.try_get("id")?,
        instrument_id: r.try_get("instrument_id")?,
        headline: r.try_get("headline")?,
        jump_bp: r.try_get("jump_bp")?,
        source: r.try_get("source")?,
        due_at: r.try_get("due_at")?,
        tick: r.try_get("tick")?,
        published_at: r.try_get("published_at")?,
    })
}

/// Scheduled news due by market time `at`, oldest first.
pub async fn due_news(db: &Db, game_id: i64, at: i64) -> Result<Vec<NewsRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM mk_news WHERE game_id = $1 AND published_at IS NULL AND due_at <= $2 \
         ORDER BY due_at, id",
    )
    .bind(game_id)
    .bind(at)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(news_from).collect()
}

/// News published by ticks after `after_tick`, in publication order (tick, then id), at most
/// `limit`. Followers keep the last tick they saw: ticks are published in order, and all of a
/// tick's news in one transaction, so nothing is skipped.
pub async fn news_after_tick(
    db: &Db,
    game_id: i64,
    after_tick: i64,
    limit: i64,
) -> Result<Vec<NewsRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM mk_news WHERE game_id = $1 AND tick > $2 AND published_at IS NOT NULL \
         ORDER BY tick, id LIMIT $3",
    )
    .bind(game_id)
    .bind(after_tick)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(news_from).collect()
}

/// The latest `limit` published news items, newest first.
pub async fn latest_news(db: &Db, game_id: i64, limit: i64) -> Result<Vec<NewsRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT * FROM mk_news WHERE game_id = $1 AND tick IS NOT NULL \
           AND published_at IS NOT NULL ORDER BY tick DESC, id DESC LIMIT $2",
    )
    .bind(game_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(news_from).collect()
}

/// Applies a sysop change and writes the audit entry in one transaction.
pub async fn control(
    db: &Db,
    game_id: Option<i64>,
    change: ControlChange,
    actor: &str,
    action: &str,
    detail: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let mut tx = begin(db).await?;
    let sql = match change {
        ControlChange::Pause => {
            Some("UPDATE mk_sims SET paused_at = $2 WHERE game_id = $1 AND paused_at IS NULL")
        }
        ControlChange::Resume => Some(
            "UPDATE mk_sims SET origin_real = origin_real + ($2 - COALESCE(paused_at, $2)), \
             paused_at = NULL, stopped = 0 WHERE game_id = $1",
        ),
        ControlChange::Stop => {
            Some("UPDATE mk_sims SET stopped = 1 WHERE game_id = $1 AND $2 >= 0")
        }
        ControlChange::Volatility(_) => {
            Some("UPDATE mk_sims SET vol_mult_bp = $2 WHERE game_id = $1")
        }
        ControlChange::Liquidity(_) => {
            Some("UPDATE mk_sims SET liq_mult_bp = $2 WHERE game_id = $1")
        }
        ControlChange::None => None,
    };
    let mut changed = true;
    if let (Some(sql), Some(game)) = (sql, game_id) {
        let value = match change {
            ControlChange::Volatility(v) | ControlChange::Liquidity(v) => v,
            _ => now,
        };
        let done = sqlx::query(sql)
            .bind(game)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        changed = done.rows_affected() == 1;
    }
    sqlx::query(
        "INSERT INTO mk_audit (game_id, actor, action, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(game_id)
    .bind(actor)
    .bind(action)
    .bind(detail)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(changed)
}

/// The audit log, newest first.
pub async fn audit_log(db: &Db, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, game_id, actor, action, detail, created_at FROM mk_audit \
         ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                id: r.try_get("id")?,
                game_id: r.try_get("game_id")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                detail: r.try_get("detail")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Per-tick bars of a game (all instruments), by tick then instrument.
pub async fn tick_bars(db: &Db, game_id: i64) -> Result<Vec<Bar>, StoreError> {
    bars(
        db,
        "SELECT instrument_id, tick AS bar_key, market_at, open, high, low, close, volume, fair \
         FROM mk_ticks WHERE game_id = $1 ORDER BY tick, instrument_id",
        game_id,
    )
    .await
}

/// Daily bars of a game, by day then instrument (no market time or fair value: zero).
pub async fn day_bars(db: &Db, game_id: i64) -> Result<Vec<Bar>, StoreError> {
    bars(
        db,
        "SELECT instrument_id, day AS bar_key, CAST(0 AS BIGINT) AS market_at, open, high, low, \
                close, volume, CAST(0 AS BIGINT) AS fair \
         FROM mk_days WHERE game_id = $1 ORDER BY day, instrument_id",
        game_id,
    )
    .await
}

/// Runs a bar query whose columns are named as [`Bar`]'s fields (`bar_key` for the key).
async fn bars(db: &Db, sql: &str, game_id: i64) -> Result<Vec<Bar>, StoreError> {
    let rows = sqlx::query(sql).bind(game_id).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(Bar {
                instrument_id: r.try_get("instrument_id")?,
                key: r.try_get("bar_key")?,
                market_at: r.try_get("market_at")?,
                open: r.try_get("open")?,
                high: r.try_get("high")?,
                low: r.try_get("low")?,
                close: r.try_get("close")?,
                volume: r.try_get("volume")?,
                fair: r.try_get("fair")?,
            })
        })
        .collect()
}

/// Who ran each tick: (tick, holder, started_at), by tick.
pub async fn tick_log(db: &Db, game_id: i64) -> Result<Vec<(i64, String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT tick, holder, started_at FROM mk_tick_log WHERE game_id = $1 ORDER BY tick",
    )
    .bind(game_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("tick")?,
                r.try_get("holder")?,
                r.try_get("started_at")?,
            ))
        })
        .collect()
}
