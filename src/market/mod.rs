//! The market simulation: the tick engine, NPC liquidity, news, market hours and the sysop's
//! controls, for games on the exchange.
//!
//! Owns a game's simulated side: the hidden fair value of each instrument (moved every tick by
//! a seeded, reproducible model), the NPC market makers and retail traders (ordinary exchange
//! accounts that trade through [`Exchange`] like any player, so the audit still balances), the
//! news wire, the game clock and calendar, the lease that lets exactly one process tick a
//! game, price snapshots, and an audit log of every sysop action.
//!
//! It must not change the exchange's rules or write the exchange's tables: every order, cash
//! or share movement goes through [`Exchange`]. The door asks [`Market::check_session`] before
//! it calls `Exchange::place`, because the exchange itself knows nothing of market hours. The
//! pure cores ([`clock`], [`sim`], [`news`], [`mail`]) do no I/O and read no clock; [`runner`]
//! is the async driver and is fed `now`, and [`notify`] (run by the lease holder) turns the
//! game's exchange events and scheduled news into system mail through [`crate::inbox`]. SQL
//! lives in [`crate::store::market`] and [`crate::store::notify`].

pub mod bench;
pub mod clock;
pub mod mail;
pub mod news;
pub mod notify;
pub mod runner;
pub mod settings;
pub mod sim;

use std::time::Duration;

use crate::exchange::{Exchange, ExchangeError, GameRules, NewInstrument, OrderType};
use crate::store::market as sm;
use crate::store::{now_ms, StoreError};

pub use clock::{check_session, Calendar, GameClock, Session, SessionClosed};
pub use notify::{MailReport, Notifier};
pub use runner::{TickOutcome, TickPhases};
pub use settings::{InstrumentConfig, MarketConfig};
pub use sim::SimParams;

/// Player ids at or below this are NPCs (real players have positive ids).
pub const NPC_PLAYER_BASE: i64 = -1;

/// What went wrong in the market layer.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    /// The exchange refused or failed.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// A storage failure.
    #[error("market storage error: {0}")]
    Store(#[from] StoreError),
    /// The season's dates could not be scheduled.
    #[error(transparent)]
    Season(#[from] crate::lifecycle::LifecycleError),
    /// The game has no simulation (it was not started with `market new-game`).
    #[error("game {0} has no market simulation")]
    NoSimulation(i64),
    /// The `[market]` section is invalid.
    #[error("market config: key `{0}`: {1}")]
    Config(String, String),
    /// A sysop request that makes no sense (unknown symbol, bad number).
    #[error("{0}")]
    Invalid(String),
}

/// A published news item, as the news wire and node flashes show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewsItem {
    pub id: i64,
    pub instrument_id: Option<i64>,
    pub headline: String,
    /// The fair-value move it caused, in basis points.
    pub jump_bp: i64,
    /// `wire` (random), `earnings`, or `sysop`.
    pub source: String,
    /// Market time it was published (or is due, for upcoming news).
    pub published_at: i64,
    /// The tick that published it (0 while upcoming); follow with
    /// [`Market::news_after_tick`] from the last tick seen.
    pub tick: i64,
}

impl NewsItem {
    fn published(r: sm::NewsRow) -> NewsItem {
        NewsItem {
            id: r.id,
            instrument_id: r.instrument_id,
            headline: r.headline,
            jump_bp: r.jump_bp.unwrap_or(0),
            source: r.source,
            published_at: r.published_at.unwrap_or(r.due_at),
            tick: r.tick.unwrap_or(0),
        }
    }
}

/// The market handle: cheap to clone, shared by the simulator, the door and the sysop tools.
#[derive(Clone, Debug)]
pub struct Market {
    ex: Exchange,
    config: MarketConfig,
    calendar: Calendar,
    /// When set, each new game is a season with an end this long after its start, and its
    /// reminders and end are scheduled.
    season: Option<(crate::lifecycle::SeasonConfig, i64)>,
}

impl Market {
    /// A handle over an exchange with a validated `[market]` section.
    pub fn new(ex: Exchange, config: MarketConfig) -> Result<Market, MarketError> {
        config
            .validate()
            .map_err(|(k, m)| MarketError::Config(k, m))?;
        let calendar = config
            .calendar()
            .map_err(|(k, m)| MarketError::Config(k, m))?;
        Ok(Market {
            ex,
            config,
            calendar,
            season: None,
        })
    }

    /// Makes every game this handle starts a season of `length_ms` (real time) with the
    /// reminders and end of `season`.
    pub fn with_season(mut self, season: crate::lifecycle::SeasonConfig, length_ms: i64) -> Market {
        self.season = Some((season, length_ms.max(1)));
        self
    }

    /// [`Market::with_season`] from the `[season]` settings.
    pub fn with_season_settings(self, settings: &crate::config::SeasonSettings) -> Market {
        let hours = i64::try_from(settings.length_hours).unwrap_or(i64::MAX);
        self.with_season(
            crate::lifecycle::SeasonConfig::from_settings(settings),
            hours.saturating_mul(3_600_000),
        )
    }

    /// The exchange.
    pub fn exchange(&self) -> &Exchange {
        &self.ex
    }

    /// The configuration.
    pub fn config(&self) -> &MarketConfig {
        &self.config
    }

    /// The calendar of `[market]`: new games get it, and games created before calendars
    /// were stored use it. A game's own calendar is [`Market::game_calendar`].
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The calendar game `game_id` was created with.
    pub async fn game_calendar(&self, game_id: i64) -> Result<Calendar, MarketError> {
        Ok(self.calendar_of(&self.sim(game_id).await?))
    }

    /// The calendar stored with a simulation row, or this process's when it has none (or
    /// it cannot be read, which is logged).
    fn calendar_of(&self, sim: &sm::SimRow) -> Calendar {
        let Some(spec) = settings::CalendarSpec::from_json(&sim.calendar) else {
            if !sim.calendar.trim().is_empty() {
                tracing::warn!(
                    game = sim.game_id,
                    "stored calendar unreadable; using [market]"
                );
            }
            return self.calendar.clone();
        };
        match spec.calendar() {
            Ok(calendar) => calendar,
            Err((key, message)) => {
                tracing::warn!(game = sim.game_id, key, message, "stored calendar invalid");
                self.calendar.clone()
            }
        }
    }

    /// Starts a new game (season): lists the configured instruments, opens and funds the NPC
    /// accounts, schedules earnings, and starts its clock at `now`; with a season length
    /// ([`Market::with_season`]) it also schedules the reminders and the end. Audit-logged.
    pub async fn new_game(&self, name: &str, actor: &str, now: i64) -> Result<i64, MarketError> {
        let instruments = self.config.instruments.clone();
        let game_id = self.create_game(name, &instruments, now).await?;
        if let Some((season, length_ms)) = &self.season {
            crate::lifecycle::schedule(
                self.ex.db(),
                game_id,
                now,
                now.saturating_add(*length_ms),
                season,
                now,
            )
            .await?;
        }
        sm::control(
            self.ex.db(),
            Some(game_id),
            sm::ControlChange::None,
            actor,
            "new-game",
            &format!("{name}: {} instruments", instruments.len()),
            now,
        )
        .await?;
        Ok(game_id)
    }

    /// The current season: the newest open game whose simulation is not stopped, if any.
    pub async fn current_game(&self) -> Result<Option<i64>, MarketError> {
        let games = self.ex.games().await?;
        let sims = sm::sims(self.ex.db()).await?;
        Ok(games
            .iter()
            .filter(|g| g.open)
            .filter(|g| sims.iter().any(|s| s.game_id == g.id && !s.stopped))
            .map(|g| g.id)
            .max())
    }

    /// The current season, or a new one named "Season N: Greed Is Good" when there is none.
    /// Audit-logged when it starts one.
    pub async fn current_or_new_game(&self, actor: &str, now: i64) -> Result<i64, MarketError> {
        if let Some(game) = self.current_game().await? {
            return Ok(game);
        }
        let name = format!("Season {}: Greed Is Good", self.ex.games().await?.len() + 1);
        self.new_game(&name, actor, now).await
    }

    /// Creates a game with the given instruments (the benchmark lists its own).
    pub async fn create_game(
        &self,
        name: &str,
        instruments: &[InstrumentConfig],
        now: i64,
    ) -> Result<i64, MarketError> {
        let cfg = &self.config;
        // Nothing of the new game can be in the event log yet, so its mail starts after the
        // last event so far.
        let mail_from = self.ex.last_event_seq().await?;
        let game = self.ex.create_game(name, &GameRules::default()).await?;
        crate::store::notify::init_cursor(self.ex.db(), game.id, mail_from, now).await?;
        let mut states = Vec::new();
        let mut listed = Vec::new();
        for (idx, spec) in instruments.iter().enumerate() {
            let holders = i64::from(cfg.makers_per_instrument) * cfg.maker_shares
                + i64::from(cfg.retail_traders) * cfg.retail_shares;
            let inst = self
                .ex
                .list_instrument(
                    game.id,
                    &NewInstrument {
                        symbol: &spec.symbol,
                        name: &spec.name,
                        profile: &spec.profile,
                        tick: spec.tick_cents,
                        shares_issued: (holders * 4).max(1_000_000),
                        initial_price: spec.price_cents,
                    },
                )
                .await?;
            states.push(sm::InstrumentState {
                instrument_id: inst.id,
                fair_ucents: spec.price_cents * sim::UCENTS as i64,
                drift_bp_day: spec.drift_bp_day,
                vol_bp_day: spec.vol_bp_day,
                hype_bp: 0,
                prev_price: spec.price_cents,
            });
            listed.push((idx as i64, inst));
        }
        // NPC accounts: makers quote one instrument; retail traders hold some of everything.
        for (idx, inst) in &listed {
            for k in 0..i64::from(cfg.makers_per_instrument) {
                let player_id = -(100_000 + idx * 10 + k);
                let account = self.ex.open_account(game.id, player_id).await?;
                self.ex
                    .grant(
                        game.id,
                        player_id,
                        cfg.maker_cash_cents,
                        Some((&inst.symbol, cfg.maker_shares)),
                    )
                    .await?;
                sm::insert_npc(
                    self.ex.db(),
                    game.id,
                    &sm::NpcRow {
                        player_id,
                        account_id: account.id,
                        kind: "maker".into(),
                        instrument_id: Some(inst.id),
                        capital: cfg.maker_shares,
                    },
                )
                .await?;
            }
        }
        for r in 0..i64::from(cfg.retail_traders) {
            let player_id = NPC_PLAYER_BASE - r;
            let account = self.ex.open_account(game.id, player_id).await?;
            self.ex
                .grant(game.id, player_id, cfg.retail_cash_cents, None)
                .await?;
            for (_, inst) in &listed {
                self.ex
                    .grant(
                        game.id,
                        player_id,
                        0,
                        Some((&inst.symbol, cfg.retail_shares)),
                    )
                    .await?;
            }
            sm::insert_npc(
                self.ex.db(),
                game.id,
                &sm::NpcRow {
                    player_id,
                    account_id: account.id,
                    kind: "retail".into(),
                    instrument_id: None,
                    capital: cfg.retail_shares,
                },
            )
            .await?;
        }
        let origin_market = match cfg.start_local() {
            Some((day, minute)) => clock::market_ms_of(&self.calendar, day, minute),
            None => now,
        };
        let seed = if cfg.seed == 0 {
            i64::from(rand::random::<u32>()) + 1
        } else {
            cfg.seed as i64
        };
        sm::insert_sim(
            self.ex.db(),
            &sm::SimRow {
                game_id: game.id,
                seed,
                tick_ms: cfg.tick_ms as i64,
                speed: cfg.speed as i64,
                origin_real: now,
                origin_market,
                paused_at: None,
                stopped: false,
                vol_mult_bp: 10_000,
                liq_mult_bp: 10_000,
                last_tick: 0,
                tick_done: true,
                last_trade_id: 0,
                holder: None,
                lease_until: 0,
                calendar: cfg.calendar_spec().to_json(),
            },
            &states,
            now,
        )
        .await?;
        // Earnings: each instrument reports every `earnings_every_days` market days at the
        // regular open, staggered, for the next 60 days.
        if cfg.earnings_every_days > 0 {
            let every = i64::from(cfg.earnings_every_days);
            let first = self.calendar.local_day(origin_market);
            let mut open_days = (first + 1..first + 90)
                .filter_map(|d| {
                    let t = clock::market_ms_of(&self.calendar, d, 0);
                    self.calendar
                        .next_start(t - 1, &[Session::Regular])
                        .filter(|&s| self.calendar.local_day(s) == d)
                })
                .collect::<Vec<_>>();
            open_days.truncate(60);
            let mut report = 0;
            for (idx, inst) in &listed {
                for (n, at) in open_days.iter().enumerate() {
                    if (n as i64 + idx) % every == every - 1 {
                        let jump = sim::earnings_surprise(seed, report, &cfg.npc);
                        report += 1;
                        sm::schedule_news(
                            self.ex.db(),
                            game.id,
                            Some(inst.id),
                            "",
                            Some(jump),
                            "earnings",
                            *at,
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(game.id)
    }

    /// The simulation row of a game.
    async fn sim(&self, game_id: i64) -> Result<sm::SimRow, MarketError> {
        sm::sim(self.ex.db(), game_id)
            .await?
            .ok_or(MarketError::NoSimulation(game_id))
    }

    /// A game's clock as stored.
    pub async fn clock(&self, game_id: i64) -> Result<GameClock, MarketError> {
        Ok(clock_of(&self.sim(game_id).await?))
    }

    /// The world clock line for a game at real time `now`, e.g. "OPEN - closes 16:00 ET".
    pub async fn world_clock(&self, game_id: i64, now: i64) -> Result<String, MarketError> {
        let sim = self.sim(game_id).await?;
        let clock = clock_of(&sim);
        let mut text = self.calendar_of(&sim).clock_text(clock.market_at(now));
        if clock.paused_at.is_some() {
            text.push_str(" (PAUSED)");
        }
        Ok(text)
    }

    /// The session word and world-clock line the game's status line shows at real time
    /// `now`: ("OPEN", "OPEN - closes 16:00 ET"), or "HALTED" while the sysop has paused it.
    pub async fn session_line(
        &self,
        game_id: i64,
        now: i64,
    ) -> Result<(String, String), MarketError> {
        let sim = self.sim(game_id).await?;
        if sim.paused_at.is_some() {
            return Ok(("HALTED".into(), "HALTED by the sysop".into()));
        }
        let at = clock_of(&sim).market_at(now);
        let calendar = self.calendar_of(&sim);
        Ok((
            calendar.session_at(at).label().to_string(),
            calendar.clock_text(at),
        ))
    }

    /// Checks an order against the calendar before the door places it: `Ok` with the session,
    /// or `SessionClosed` with the next time such an order is taken (market time). While the
    /// simulation is paused, the market is treated as closed.
    pub async fn check_session(
        &self,
        game_id: i64,
        now: i64,
        order_type: &OrderType,
    ) -> Result<Result<Session, SessionClosed>, MarketError> {
        let sim = self.sim(game_id).await?;
        let clock = clock_of(&sim);
        if clock.paused_at.is_some() {
            return Ok(Err(SessionClosed {
                session: Session::Closed,
                next_open: None,
                message: "trading is halted by the sysop".into(),
            }));
        }
        let at = clock.market_at(now);
        Ok(clock::check_session(
            &self.calendar_of(&sim),
            at,
            matches!(order_type, OrderType::Market),
        ))
    }

    /// News published by ticks after `after_tick` (0 for all), in publication order.
    pub async fn news_after_tick(
        &self,
        game_id: i64,
        after_tick: i64,
        limit: i64,
    ) -> Result<Vec<NewsItem>, MarketError> {
        let rows = sm::news_after_tick(self.ex.db(), game_id, after_tick, limit).await?;
        Ok(rows.into_iter().map(NewsItem::published).collect())
    }

    /// The latest `limit` headlines, newest first: the news wire.
    pub async fn latest_news(
        &self,
        game_id: i64,
        limit: i64,
    ) -> Result<Vec<NewsItem>, MarketError> {
        let rows = sm::latest_news(self.ex.db(), game_id, limit).await?;
        Ok(rows.into_iter().map(NewsItem::published).collect())
    }

    /// Scheduled news that will be published within `horizon_ms` of market time after real
    /// time `now` (earnings with their drawn surprise, sysop injections), soonest first: what
    /// an insider could be tipped about. The headline of an earnings report is empty until it
    /// is published; the sign of `jump_bp` tells which way it goes.
    pub async fn upcoming_news(
        &self,
        game_id: i64,
        now: i64,
        horizon_ms: i64,
    ) -> Result<Vec<NewsItem>, MarketError> {
        let clock = self.clock(game_id).await?;
        let until = clock.market_at(now).saturating_add(horizon_ms.max(0));
        let rows = sm::due_news(self.ex.db(), game_id, until).await?;
        Ok(rows
            .into_iter()
            .map(|r| NewsItem {
                id: r.id,
                instrument_id: r.instrument_id,
                headline: r.headline,
                jump_bp: r.jump_bp.unwrap_or(0),
                source: r.source,
                published_at: r.due_at,
                tick: 0,
            })
            .collect())
    }

    /// Follows a game's news published after tick `after_tick`: a task polls every `every`
    /// and sends each new item; it ends when the receiver is dropped.
    pub fn follow_news(
        &self,
        game_id: i64,
        mut after: i64,
        every: Duration,
    ) -> tokio::sync::mpsc::Receiver<NewsItem> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let market = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            loop {
                interval.tick().await;
                if tx.is_closed() {
                    return;
                }
                match market.news_after_tick(game_id, after, 100).await {
                    Ok(items) => {
                        for item in items {
                            after = item.tick;
                            if tx.send(item).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "news follower: read failed"),
                }
            }
        });
        rx
    }

    async fn control(
        &self,
        game_id: i64,
        change: sm::ControlChange,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<bool, MarketError> {
        self.sim(game_id).await?;
        Ok(sm::control(
            self.ex.db(),
            Some(game_id),
            change,
            actor,
            action,
            detail,
            now_ms(),
        )
        .await?)
    }

    /// Pauses a game: no ticks, the clock stands still, orders are refused. Audit-logged.
    pub async fn pause(&self, game_id: i64, actor: &str) -> Result<bool, MarketError> {
        self.control(game_id, sm::ControlChange::Pause, actor, "pause", "")
            .await
    }

    /// Resumes a paused or stopped game; the clock continues where it stood. Audit-logged.
    pub async fn resume(&self, game_id: i64, actor: &str) -> Result<bool, MarketError> {
        self.control(game_id, sm::ControlChange::Resume, actor, "resume", "")
            .await
    }

    /// Stops a game's simulation: running simulators give up its lease and exit. Audit-logged.
    pub async fn stop(&self, game_id: i64, actor: &str) -> Result<bool, MarketError> {
        self.control(game_id, sm::ControlChange::Stop, actor, "stop", "")
            .await
    }

    /// Sets the volatility multiplier (percent of the configured volatility). Audit-logged.
    pub async fn set_volatility(
        &self,
        game_id: i64,
        pct: i64,
        actor: &str,
    ) -> Result<bool, MarketError> {
        if !(0..=10_000).contains(&pct) {
            return Err(MarketError::Invalid(
                "volatility must be 0 to 10000 percent".into(),
            ));
        }
        self.control(
            game_id,
            sm::ControlChange::Volatility(pct * 100),
            actor,
            "volatility",
            &format!("{pct}%"),
        )
        .await
    }

    /// Sets the NPC liquidity multiplier (percent of the configured quote size and retail
    /// activity). Audit-logged.
    pub async fn set_liquidity(
        &self,
        game_id: i64,
        pct: i64,
        actor: &str,
    ) -> Result<bool, MarketError> {
        if !(0..=10_000).contains(&pct) {
            return Err(MarketError::Invalid(
                "liquidity must be 0 to 10000 percent".into(),
            ));
        }
        self.control(
            game_id,
            sm::ControlChange::Liquidity(pct * 100),
            actor,
            "liquidity",
            &format!("{pct}%"),
        )
        .await
    }

    /// Injects a news event: published at the next tick (or the next open tick), moving the symbol's fair value by
    /// `jump_bp` basis points. An empty headline is drawn from the table. Audit-logged.
    pub async fn inject_news(
        &self,
        game_id: i64,
        symbol: &str,
        headline: &str,
        jump_bp: i64,
        actor: &str,
    ) -> Result<i64, MarketError> {
        if jump_bp.abs() > 9_000 {
            return Err(MarketError::Invalid(
                "the jump must be within ±9000 basis points".into(),
            ));
        }
        let inst = self.ex.instrument(game_id, symbol).await?;
        let sim = self.sim(game_id).await?;
        let headline = if headline.trim().is_empty() {
            let tone = if jump_bp >= 0 {
                news::Tone::Good
            } else {
                news::Tone::Bad
            };
            news::headlines().pick(
                tone,
                jump_bp.unsigned_abs() as usize,
                &inst.symbol,
                &inst.name,
            )
        } else {
            headline.trim().to_string()
        };
        let now = now_ms();
        let id = sm::schedule_news(
            self.ex.db(),
            game_id,
            Some(inst.id),
            &headline,
            Some(jump_bp),
            "sysop",
            clock_of(&sim).tick_market_at(sim.last_tick + 1),
        )
        .await?;
        sm::control(
            self.ex.db(),
            Some(game_id),
            sm::ControlChange::None,
            actor,
            "inject-news",
            &format!("{}: {jump_bp}bp: {headline}", inst.symbol),
            now,
        )
        .await?;
        Ok(id)
    }

    /// A one-line status of a game's simulation.
    pub async fn status(&self, game_id: i64, now: i64) -> Result<String, MarketError> {
        let sim = self.sim(game_id).await?;
        let clock = clock_of(&sim);
        Ok(format!(
            "game {game_id}: tick {} ({}), {}; volatility {}%, liquidity {}%, leader {}{}",
            sim.last_tick,
            if sim.tick_done { "done" } else { "in progress" },
            self.calendar_of(&sim).clock_text(clock.market_at(now)),
            sim.vol_mult_bp / 100,
            sim.liq_mult_bp / 100,
            sim.holder
                .as_deref()
                .filter(|_| sim.lease_until >= now)
                .unwrap_or("none"),
            if sim.stopped {
                ", STOPPED"
            } else if sim.paused_at.is_some() {
                ", PAUSED"
            } else {
                ""
            },
        ))
    }

    /// The sysop audit log, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<sm::AuditRow>, MarketError> {
        Ok(sm::audit_log(self.ex.db(), limit).await?)
    }
}

/// Starts a simulator for each game in `config.run_games`, each ending when `shutdown` is
/// cancelled or its game is stopped. Used by `nuggetnet serve`; failures are logged, not fatal.
/// Each simulator is a task with a database pool of its own, so its bursts of NPC orders do
/// not take connections from callers' sessions.
pub fn spawn_simulators(
    config: &MarketConfig,
    season: &crate::config::SeasonSettings,
    database_url: &str,
    tracker: &tokio_util::task::TaskTracker,
    shutdown: &tokio_util::sync::CancellationToken,
) {
    let holder = format!("serve:{}", std::process::id());
    let mut games: Vec<Option<i64>> = config.run_games.iter().copied().map(Some).collect();
    if config.run_current {
        // `None` stands for the current season, found (or started) once the database is open.
        games.push(None);
    }
    for game in games {
        let (config, url, holder) = (config.clone(), database_url.to_string(), holder.clone());
        let season = season.clone();
        let token = shutdown.child_token();
        tracker.spawn(async move {
            let result = async {
                let market = Market::new(Exchange::connect(&url, 8).await?, config)?
                    .with_season_settings(&season);
                let game = match game {
                    Some(game) => game,
                    None => {
                        market
                            .current_or_new_game(&holder, crate::store::now_ms())
                            .await?
                    }
                };
                tracing::info!(game, "market simulator started");
                market.run(game, &holder, token).await
            }
            .await;
            if let Err(e) = result {
                tracing::error!(?game, error = %e, "market simulator ended");
            }
        });
    }
}

fn clock_of(sim: &sm::SimRow) -> GameClock {
    GameClock {
        origin_real: sim.origin_real,
        origin_market: sim.origin_market,
        speed: sim.speed,
        tick_ms: sim.tick_ms,
        paused_at: sim.paused_at,
    }
}
