//! The market's mail desk: turns a game's exchange events into system mail (fills of resting
//! orders, margin calls, forced liquidations) and mails anonymous tips before scheduled news.
//!
//! Run by the process that holds the game's simulation lease ([`super::Market::run`] calls
//! [`Notifier::run_once`] between ticks), so one process sends and another takes over when it
//! dies. Restart-safe without a transaction across the mail and the cursor:
//!
//! * **Cursor.** `mk_mail_cursor` (migration 0008) keeps `done_seq`, the event sequence number
//!   up to which everything is mailed. A run first *plans* a batch `(done_seq, batch_end]`
//!   (a compare-and-set of `batch_end`), then writes the batch's letters, then moves
//!   `done_seq` to `batch_end` (another compare-and-set). A process that dies midway leaves
//!   the plan behind; the next run reads exactly that range again, so it builds the same
//!   letters with the same keys and [`inbox::send_system`] stores none of them twice. The
//!   cursor moves only after every letter of its batch is written, so nothing is lost.
//! * **Gaps.** Sequence numbers are global and, on PostgreSQL, can become visible out of
//!   order. A batch ends before the first missing number until it has been missing for
//!   [`crate::exchange::events::GAP_GRACE`] (a rolled-back transaction), like every follower.
//! * **Keys.** `fill:<order>:<seq of its last fill in the batch>`,
//!   `margin:<seq of the margin call>`, `liq:<account>:<seq of its last liquidation event>`,
//!   `tip:<news id>:<player>`.
//! * **Tips.** A news item whose tips went out is recorded in `mk_tips_sent` after its letters
//!   are written; a run that died before that chooses the same players again (the choice is
//!   drawn from the game's seed and the news id) and their keys stop repeats. The simulator
//!   also runs [`Notifier::tips_once`] just before a tick may fall due, so news scheduled a
//!   tick or more ahead is tipped before it is published. Sysop news injected for the very
//!   next tick can still be published untipped if it lands between that call and the tick,
//!   or if the lease changed hands right then; news already published is never tipped.
//! * **What a fill letter says is left.** The order's quantity, fills so far and what is
//!   still working are read when the letter is written, not as of the batch's last fill; the
//!   desk runs right after each tick, so the two almost always agree.
//!
//! Only human players get mail: accounts with a positive player id that names a row of
//! `players`. A letter the inbox refuses (a bug in its text, not a passing failure) is logged
//! and skipped so it cannot hold the cursor back for ever; storage failures are returned and
//! the whole batch is tried again on the next run.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::clock::Session;
use super::mail::{self, Closed, OrderNow};
use super::{Market, MarketError};
use crate::exchange::events::Cursor;
use crate::exchange::{Event, Instrument};
use crate::inbox::{self, InboxError, MailKind};
use crate::store::{exchange as sx, market as sm, notify as sn, seasons};

/// Events read per batch.
const BATCH: i64 = 500;
/// Batches mailed per run at most, so a long backlog does not hold up the ticks.
const MAX_BATCHES: usize = 8;

/// What one run mailed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailReport {
    /// Events looked at (of this game).
    pub events: usize,
    /// Letters stored now (letters already stored under the same key are not counted).
    pub fills: usize,
    pub margin_calls: usize,
    pub liquidations: usize,
    pub tips: usize,
}

/// The mail desk of one game. Holds only caches and the gap timer; the truth is in the
/// database, so a new `Notifier` in another process continues where this one stopped.
#[derive(Debug)]
pub struct Notifier {
    market: Market,
    game_id: i64,
    gap: Option<Cursor>,
    instruments: HashMap<i64, Instrument>,
    seed: Option<i64>,
}

impl Notifier {
    /// A mail desk for `game_id`.
    pub fn new(market: Market, game_id: i64) -> Notifier {
        Notifier {
            market,
            game_id,
            gap: None,
            instruments: HashMap::new(),
            seed: None,
        }
    }

    /// Mails what the events since the cursor call for, then the tips due within the lead,
    /// at real time `now`. Call it only while holding the game's lease.
    pub async fn run_once(&mut self, now: i64) -> Result<MailReport, MarketError> {
        let mut report = MailReport::default();
        if !self.market.config().mail {
            return Ok(report);
        }
        for _ in 0..MAX_BATCHES {
            if !self.mail_batch(now, &mut report).await? {
                break;
            }
        }
        self.mail_tips(now, &mut report).await?;
        Ok(report)
    }

    /// Mails only the tips due within the lead; returns how many were stored. The simulator
    /// calls it just before a tick as well, so that news published by that tick is tipped
    /// first.
    pub async fn tips_once(&mut self, now: i64) -> Result<usize, MarketError> {
        let mut report = MailReport::default();
        if self.market.config().mail {
            self.mail_tips(now, &mut report).await?;
        }
        Ok(report.tips)
    }

    /// Mails one batch of events; false when there was nothing (more) to do.
    async fn mail_batch(&mut self, now: i64, report: &mut MailReport) -> Result<bool, MarketError> {
        let db = self.market.exchange().db().clone();
        let game_id = self.game_id;
        let cursor = match sn::cursor(&db, game_id).await? {
            Some(c) => c,
            None => {
                // A game from before the mail desk: start at its first event.
                let Some(first) = sn::first_event_seq(&db, game_id).await? else {
                    return Ok(false);
                };
                sn::init_cursor(&db, game_id, first - 1, now).await?;
                return Ok(true);
            }
        };
        let done = cursor.done_seq;
        let (end, events, more) = match cursor.pending() {
            Some(end) => {
                // A batch planned by a run that did not finish: the same range again.
                let events = sx::events_since(&db, done + 1, end - done).await?;
                let events: Vec<Event> = events.into_iter().filter(|e| e.seq <= end).collect();
                (end, events, true)
            }
            None => {
                let events = sx::events_since(&db, done + 1, BATCH).await?;
                let full = events.len() as i64 == BATCH;
                let gap = match self.gap.as_mut() {
                    Some(g) if g.next == done + 1 => g,
                    _ => self.gap.insert(Cursor::new(done + 1)),
                };
                let mut end = done;
                let mut taken = Vec::with_capacity(events.len());
                for e in events {
                    if !gap.accept(e.seq, Instant::now()) {
                        break;
                    }
                    end = e.seq;
                    taken.push(e);
                }
                if end == done {
                    return Ok(false);
                }
                if !sn::plan_batch(&db, game_id, done, end, now).await? {
                    // Another process planned one; read the cursor again next time.
                    self.gap = None;
                    return Ok(false);
                }
                let more = full && taken.len() as i64 == BATCH;
                (end, taken, more)
            }
        };
        let mine: Vec<Event> = events
            .into_iter()
            .filter(|e| e.game_id == game_id)
            .collect();
        report.events += mine.len();
        self.mail_events(&mine, now, report).await?;
        let moved = sn::finish_batch(&db, game_id, done, end, now).await?;
        if let Some(g) = self.gap.as_mut() {
            if g.next <= end {
                *g = Cursor::new(end + 1);
            }
        }
        Ok(moved && more)
    }

    /// Writes the letters of one batch (this game's events only).
    async fn mail_events(
        &mut self,
        events: &[Event],
        now: i64,
        report: &mut MailReport,
    ) -> Result<(), MarketError> {
        let fills = mail::group_fills(events, "maker");
        let liquidations = mail::group_liquidations(events);
        let calls = mail::margin_calls(events);
        if fills.is_empty() && liquidations.is_empty() && calls.is_empty() {
            return Ok(());
        }
        let db = self.market.exchange().db().clone();
        let accounts: BTreeSet<i64> = fills
            .iter()
            .map(|f| f.account_id)
            .chain(liquidations.iter().map(|l| l.account_id))
            .chain(calls.iter().map(|&(_, a)| a))
            .collect();
        let accounts: Vec<i64> = accounts.into_iter().collect();
        let players: HashMap<i64, i64> = sn::mailable_accounts(&db, &accounts)
            .await?
            .into_iter()
            .collect();
        if players.is_empty() {
            return Ok(());
        }

        for g in &fills {
            let Some(&player) = players.get(&g.account_id) else {
                continue;
            };
            let Some(order) = self.order_now(g.order_id).await? else {
                continue;
            };
            let (subject, body) = mail::fill_text(g, &order);
            let key = format!("fill:{}:{}", g.order_id, g.last_seq);
            if self
                .send(player, MailKind::Fill, &subject, &body, &key, now)
                .await?
            {
                report.fills += 1;
            }
        }

        for &(seq, account) in &calls {
            let Some(&player) = players.get(&account) else {
                continue;
            };
            let p = self
                .market
                .exchange()
                .portfolio(self.game_id, player)
                .await?;
            let next = self.next_check(now).await?;
            let (subject, body) =
                mail::margin_call_text(p.net_worth, p.maintenance, next.as_deref());
            let key = format!("margin:{seq}");
            if self
                .send(player, MailKind::MarginCall, &subject, &body, &key, now)
                .await?
            {
                report.margin_calls += 1;
            }
        }

        for l in &liquidations {
            let Some(&player) = players.get(&l.account_id) else {
                continue;
            };
            let mut closed = Vec::new();
            for g in &l.orders {
                if let Some(order) = self.order_now(g.order_id).await? {
                    closed.push(Closed {
                        intent: order.intent,
                        symbol: order.symbol,
                        fill: g.clone(),
                    });
                }
            }
            let (subject, body) = mail::liquidation_text(&closed, l.cancelled);
            let key = format!("liq:{}:{}", l.account_id, l.last_seq);
            if self
                .send(player, MailKind::MarginCall, &subject, &body, &key, now)
                .await?
            {
                report.liquidations += 1;
            }
        }
        Ok(())
    }

    /// Mails tips for scheduled news due within the lead that has not been tipped yet.
    async fn mail_tips(&mut self, now: i64, report: &mut MailReport) -> Result<(), MarketError> {
        let cfg = self.market.config();
        let (count, lead_ms) = (
            cfg.tip_players as usize,
            i64::from(cfg.tip_lead_minutes) * 60_000,
        );
        if count == 0 || lead_ms == 0 {
            return Ok(());
        }
        let db = self.market.exchange().db().clone();
        let game_id = self.game_id;
        let upcoming = self.market.upcoming_news(game_id, now, lead_ms).await?;
        if upcoming.is_empty() {
            return Ok(());
        }
        let tipped: BTreeSet<i64> = sn::tipped_news(&db, game_id).await?.into_iter().collect();
        let mut holders: Option<Vec<i64>> = None;
        for news in upcoming.iter().filter(|n| !tipped.contains(&n.id)) {
            let instrument = match news.instrument_id {
                Some(id) if news.jump_bp != 0 => self.instrument(id).await?,
                _ => None,
            };
            let mut sent = 0;
            if let Some(inst) = instrument {
                let seed = self.seed().await?;
                if holders.is_none() {
                    holders = Some(seasons::account_holders(&db, game_id).await?);
                }
                let players = holders.as_deref().unwrap_or_default();
                for player in mail::choose_tippees(seed, news.id, players, count) {
                    let (subject, body) = mail::tip_text(
                        seed,
                        news.id,
                        player,
                        &inst.symbol,
                        &inst.name,
                        news.jump_bp > 0,
                    );
                    let key = format!("tip:{}:{player}", news.id);
                    if self
                        .send(player, MailKind::Tip, &subject, &body, &key, now)
                        .await?
                    {
                        report.tips += 1;
                    }
                    sent += 1;
                }
            }
            sn::mark_tipped(&db, game_id, news.id, sent, now).await?;
        }
        Ok(())
    }

    /// Stores one letter; true if it is new. A letter the inbox refuses is logged and skipped.
    async fn send(
        &self,
        player: i64,
        kind: MailKind,
        subject: &str,
        body: &str,
        key: &str,
        now: i64,
    ) -> Result<bool, MarketError> {
        let db = self.market.exchange().db();
        match inbox::send_system(db, player, kind, subject, body, key, now).await {
            Ok(stored) => Ok(stored.is_some()),
            Err(InboxError::Store(e)) => Err(MarketError::Store(e)),
            Err(e) => {
                tracing::error!(game_id = self.game_id, player, key, error = ?e, "letter refused; skipped");
                Ok(false)
            }
        }
    }

    /// The order as it stands now, with its symbol.
    async fn order_now(&mut self, order_id: i64) -> Result<Option<OrderNow>, MarketError> {
        let Some(order) = sx::order(self.market.exchange().db(), order_id).await? else {
            return Ok(None);
        };
        let symbol = match self.instrument(order.instrument_id).await? {
            Some(i) => i.symbol,
            None => return Ok(None),
        };
        Ok(Some(OrderNow {
            intent: order.intent,
            symbol,
            price: order.price,
            qty: order.qty,
            filled: order.filled,
            status: order.status,
        }))
    }

    async fn instrument(&mut self, id: i64) -> Result<Option<Instrument>, MarketError> {
        if !self.instruments.contains_key(&id) {
            for i in self.market.exchange().instruments(self.game_id).await? {
                self.instruments.insert(i.id, i);
            }
        }
        Ok(self.instruments.get(&id).cloned())
    }

    async fn seed(&mut self) -> Result<i64, MarketError> {
        if let Some(seed) = self.seed {
            return Ok(seed);
        }
        let sim = sm::sim(self.market.exchange().db(), self.game_id)
            .await?
            .ok_or(MarketError::NoSimulation(self.game_id))?;
        Ok(*self.seed.insert(sim.seed))
    }

    /// When the house next checks margin (the next regular open), as the calendar says it.
    async fn next_check(&self, now: i64) -> Result<Option<String>, MarketError> {
        let at = self.market.clock(self.game_id).await?.market_at(now);
        let cal = self.market.game_calendar(self.game_id).await?;
        Ok(cal
            .next_start(at, &[Session::Regular])
            .map(|t| cal.format_time(t, at)))
    }
}
