//! A game's season: its start and fixed end, the reminders before the end, and what happens
//! at the end (trading freezes, the final leaderboard is recorded, players are told).
//!
//! This module owns the rules of a season; the deferred steps run as jobs ([`REMIND`] and
//! [`END`], registered by [`handlers`]), so a restart loses nothing and a step that runs twice
//! does its work once (reminders and final mail carry per-player keys; results are recorded
//! once). A new season is a new exchange game with fresh accounts ([`start_season`]); old
//! results stay readable through [`results`].
//!
//! It must not know SQL (`store::seasons`), touch money other than through `Exchange` (it only
//! calls `end_game`; a simulated game's market is stopped first, written to the sysop's audit
//! log like any stop), or read the clock: every call takes `now`. The pure parts are
//! [`schedule`](mod@schedule) (when reminders go out, what they say) and [`mark`] (the price holdings are
//! marked at, which resists the 1-ISK self-trade exploit).

pub mod mark;
pub mod schedule;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SeasonSettings;

use crate::exchange::{Exchange, ExchangeError, Game, GameRules};
use crate::inbox::{self, InboxError, MailKind};
use crate::jobs::{self, Enqueue, Handlers, JobError, RunnerConfig};
use crate::store::seasons as ss;
use crate::store::{Db, StoreError};

pub use crate::store::seasons::{ResultRow, SeasonRow as Season};
pub use mark::MarkConfig;

/// The job kind that mails one reminder to every player of a season.
pub const REMIND: &str = "season.remind";
/// The job kind that ends a season.
pub const END: &str = "season.end";

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The end is not after the start.
    #[error("a season must end after it starts")]
    BadDates,
    /// The game already has a season with dates.
    #[error("game {0} already has a season")]
    AlreadyScheduled(i64),
    /// The game has no season.
    #[error("game {0} has no season")]
    NoSeason(i64),
    /// The exchange refused or failed.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// Mail could not be written.
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// The job table failed.
    #[error(transparent)]
    Jobs(#[from] JobError),
    /// A storage failure.
    #[error("internal error")]
    Store(#[from] StoreError),
}

/// The `[season]` settings a lifecycle needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeasonConfig {
    /// How long before the end each reminder goes out, in ms.
    pub reminder_offsets_ms: Vec<i64>,
    pub mark: MarkConfig,
}

impl Default for SeasonConfig {
    fn default() -> Self {
        const HOUR: i64 = 3_600_000;
        SeasonConfig {
            reminder_offsets_ms: vec![7 * 24 * HOUR, 24 * HOUR, HOUR],
            mark: MarkConfig::default(),
        }
    }
}

impl SeasonConfig {
    /// The lifecycle settings of a `[season]` table.
    pub fn from_settings(s: &SeasonSettings) -> SeasonConfig {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        SeasonConfig {
            reminder_offsets_ms: s
                .reminder_hours
                .iter()
                .map(|h| clamp(*h).saturating_mul(3_600_000))
                .collect(),
            mark: MarkConfig {
                recent_trades: clamp(s.mark_recent_trades),
                recent_ticks: clamp(s.mark_recent_ticks),
                fair_band_bp: clamp(s.mark_fair_band_bp),
            },
        }
    }
}

/// Starts this process's job runner (mail delivery, reminders, season ends) on `tracker` when
/// `[season] run_jobs` is set; it stops when `shutdown` is cancelled.
pub fn spawn_runner(
    db: &Db,
    settings: &SeasonSettings,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    if !settings.run_jobs {
        return;
    }
    let ex = Exchange::new(db.clone());
    let handlers = all_handlers(&ex, &SeasonConfig::from_settings(settings));
    let config = RunnerConfig {
        lease_ms: i64::try_from(settings.job_lease_secs.saturating_mul(1_000)).unwrap_or(i64::MAX),
        poll: Duration::from_millis(settings.job_poll_ms),
        ..RunnerConfig::default()
    };
    tracker.spawn(jobs::run(
        db.clone(),
        handlers,
        config,
        shutdown.child_token(),
    ));
}

#[derive(Debug, Serialize, Deserialize)]
struct RemindArgs {
    game: i64,
    index: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct EndArgs {
    game: i64,
}

/// Gives game `game_id` its dates and enqueues its reminders and its end. Enqueuing twice is
/// harmless (the jobs carry dedupe keys), but a game keeps its first dates.
pub async fn schedule(
    db: &Db,
    game_id: i64,
    starts_at: i64,
    ends_at: i64,
    config: &SeasonConfig,
    now: i64,
) -> Result<Season, LifecycleError> {
    if ends_at <= starts_at {
        return Err(LifecycleError::BadDates);
    }
    if !ss::insert(db, game_id, starts_at, ends_at).await? {
        return Err(LifecycleError::AlreadyScheduled(game_id));
    }
    for r in schedule::reminder_schedule(starts_at, ends_at, &config.reminder_offsets_ms) {
        let args = serde_json::to_value(RemindArgs {
            game: game_id,
            index: r.index,
        })
        .map_err(JobError::from)?;
        let job =
            Enqueue::new(REMIND, args, r.at).dedupe(format!("season:{game_id}:remind:{}", r.index));
        jobs::enqueue(db, job, now).await?;
    }
    let args = serde_json::to_value(EndArgs { game: game_id }).map_err(JobError::from)?;
    let mut job = Enqueue::new(END, args, ends_at).dedupe(format!("season:{game_id}:end"));
    job.max_attempts = 20;
    jobs::enqueue(db, job, now).await?;
    ss::get(db, game_id)
        .await?
        .ok_or(LifecycleError::NoSeason(game_id))
}

/// Starts a new season: a new exchange game (so every player starts with a fresh account)
/// with the given dates, reminders and end scheduled.
pub async fn start_season(
    ex: &Exchange,
    name: &str,
    rules: &GameRules,
    starts_at: i64,
    ends_at: i64,
    config: &SeasonConfig,
    now: i64,
) -> Result<(Game, Season), LifecycleError> {
    if ends_at <= starts_at {
        return Err(LifecycleError::BadDates);
    }
    let game = ex.create_game(name, rules).await?;
    let season = schedule(ex.db(), game.id, starts_at, ends_at, config, now).await?;
    Ok((game, season))
}

/// A game's season, if it has dates.
pub async fn season(db: &Db, game_id: i64) -> Result<Option<Season>, LifecycleError> {
    Ok(ss::get(db, game_id).await?)
}

/// Every season, newest first (ended ones included).
pub async fn seasons(db: &Db) -> Result<Vec<Season>, LifecycleError> {
    Ok(ss::all(db).await?)
}

/// A season's final leaderboard, best first; empty until the season has ended.
pub async fn results(db: &Db, game_id: i64) -> Result<Vec<ResultRow>, LifecycleError> {
    Ok(ss::results(db, game_id).await?)
}

/// Mails reminder `index` of game `game_id` to every player with an account in it. Each
/// player gets it once however often this runs. Returns how many were written now.
pub async fn remind(
    ex: &Exchange,
    game_id: i64,
    index: usize,
    now: i64,
) -> Result<usize, LifecycleError> {
    let db = ex.db();
    let season = ss::get(db, game_id)
        .await?
        .ok_or(LifecycleError::NoSeason(game_id))?;
    if season.ended_at.is_some() || now >= season.ends_at {
        return Ok(0);
    }
    let game = ex.game(game_id).await?;
    let (subject, body) = schedule::reminder_text(&game.name, season.ends_at, now);
    let mut sent = 0;
    for player in ss::account_holders(db, game_id).await? {
        let key = format!("season:{game_id}:remind:{index}:{player}");
        if inbox::send_system(db, player, MailKind::Reminder, &subject, &body, &key, now)
            .await?
            .is_some()
        {
            sent += 1;
        }
    }
    ss::reminders_sent(db, game_id, index as i64 + 1).await?;
    Ok(sent)
}

/// Ends game `game_id`: freezes trading, records the final leaderboard at the robust mark and
/// mails every player their place. Safe to run again after a crash part-way.
pub async fn end(
    ex: &Exchange,
    game_id: i64,
    config: &MarkConfig,
    now: i64,
) -> Result<Vec<ResultRow>, LifecycleError> {
    let db = ex.db();
    let game = ex.game(game_id).await?;
    // A simulated game's market stops first, so no tick tries to trade in a frozen game.
    if let Some(sim) = crate::store::market::sim(db, game_id).await? {
        if !sim.stopped {
            crate::store::market::control(
                db,
                Some(game_id),
                crate::store::market::ControlChange::Stop,
                "season",
                "stop",
                "the season ended",
                now,
            )
            .await?;
        }
    }
    if game.open {
        ex.end_game(game_id).await?;
    }
    // Trading is frozen from here on, so a second run computes the same board.
    let board = standings(db, game_id, config).await?;
    let rows: Vec<ResultRow> = board
        .iter()
        .enumerate()
        .map(|(i, s)| ResultRow {
            game_id,
            rank: i as i64 + 1,
            player_id: s.player_id,
            handle: String::new(),
            account_id: s.account_id,
            cash: s.cash,
            holdings: s.holdings,
            net_worth: s.net_worth,
            recorded_at: now,
        })
        .collect();
    ss::insert_results(db, &rows, now).await?;
    let recorded = ss::results(db, game_id).await?;
    for r in &recorded {
        let (subject, body) = schedule::final_text(&game.name, r.rank, recorded.len(), r.net_worth);
        let key = format!("season:{game_id}:final:{}", r.player_id);
        inbox::send_system(
            db,
            r.player_id,
            MailKind::Reminder,
            &subject,
            &body,
            &key,
            now,
        )
        .await?;
    }
    ss::mark_ended(db, game_id, now).await?;
    tracing::info!(game = game_id, players = recorded.len(), "season ended");
    Ok(recorded)
}

/// Every player's net worth now, best first, with holdings at the manipulation-resistant mark
/// the final leaderboard uses (NPCs are not ranked). The game's live leaderboard shows this,
/// so a pumped last trade flatters nobody there either.
pub async fn standings(
    db: &Db,
    game_id: i64,
    config: &MarkConfig,
) -> Result<Vec<mark::Standing>, StoreError> {
    let evidence =
        ss::price_evidence(db, game_id, config.recent_trades, config.recent_ticks).await?;
    let marks: Vec<mark::Mark> = evidence
        .iter()
        .map(|e| mark::robust_mark(e, config.fair_band_bp))
        .collect();
    let holdings = ss::holdings(db, game_id).await?;
    Ok(mark::leaderboard(&holdings, &marks))
}

/// The job handlers of the lifecycle: [`REMIND`] and [`END`].
pub fn handlers(ex: &Exchange, config: &SeasonConfig) -> Handlers {
    let mut h = Handlers::new();
    let remind_ex = ex.clone();
    h.register(REMIND, move |job, now| {
        let ex = remind_ex.clone();
        async move {
            let args: RemindArgs = serde_json::from_str(&job.payload).map_err(|e| e.to_string())?;
            remind(&ex, args.game, args.index, now)
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:?}"))
        }
    });
    let end_ex = ex.clone();
    let mark = config.mark;
    h.register(END, move |job, now| {
        let ex = end_ex.clone();
        async move {
            let args: EndArgs = serde_json::from_str(&job.payload).map_err(|e| e.to_string())?;
            end(&ex, args.game, &mark, now)
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:?}"))
        }
    });
    h
}

/// Every handler the deferred work of a process needs: mail delivery, reminders, season ends.
pub fn all_handlers(ex: &Exchange, config: &SeasonConfig) -> Handlers {
    let mut h = inbox::handlers(ex.db());
    h.extend(handlers(ex, config));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_settings_are_the_default_lifecycle() {
        assert_eq!(
            SeasonConfig::from_settings(&SeasonSettings::default()),
            SeasonConfig::default()
        );
    }
}
