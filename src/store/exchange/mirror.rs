//! What an order writer's batch holds locked, kept in memory for the length of the batch, so
//! that its orders are decided without a read each.
//!
//! A batch begun with [`super::WriteTx::begin_planned`] takes all its locks and reads, in one
//! trip (PostgreSQL: `ex_prefetch`, migration 0012; SQLite: one statement under the write
//! lock, `Prefetch::sqlite` in [`super::load`]), everything its orders will ask for: the game, the
//! books, the accounts' cash, holdings and open orders, the orders named and the first
//! crossing orders of each book side. While the batch holds the locks nobody else changes a
//! book, so this picture stays true if every write of the batch is applied to it
//! ([`Mirror::apply`]) as it is decided. The writes themselves wait and go to the database
//! together with the commit.
//!
//! The mirror answers a read only when its answer is exactly what the database would say after
//! the batch's earlier writes. Whatever it does not know (a book side read too shallowly, an
//! order or account it did not read, an account one of whose orders it lost track of) it
//! declines, and the transaction reads the database instead, after sending the writes that
//! wait. An account's cash and holdings can still change under a batch where another writer's
//! order fills one of its resting orders on a book the batch does not hold, or a fee, grant or
//! dividend lands; the rules already live with that, as a lone order reads the account before
//! it writes too, and every balance moves by deltas, so the ledger stays exact.
//!
//! A committed batch's mirror can serve the next batch too ([`Mirror::carry`],
//! [`super::tx::Carried`]) while nobody else has committed since: on SQLite nobody else could
//! write while the batch held the write lock, and the connection's `PRAGMA data_version`
//! tells whether another connection has committed since; on PostgreSQL the next batch's
//! `ex_prefetch_since` (migration 0018), once it holds its locks, asks whether any other
//! transaction has committed since the last batch's snapshot. If not, the next batch reads
//! only what the mirror does not know and takes it in ([`Mirror::absorb`]).
//!
//! No I/O here: the rows come in as [`Fields`] and the writes as [`BookWrite`]s.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;

use super::load::{apply_row, Fields, LoadSpec, Loaded};
use super::script::BookWrite;
use super::{corrupt, BookState, IdHint, RestingRow};
use crate::exchange::model::{Game, Intent, Order, OrderStatus, Side};
use crate::exchange::risk::{AccountView, Holding, OpenOrders};
use crate::store::StoreError;

/// A place in one side's queue, best first: asks by price, bids by price from the top, then
/// by priority (the order id last, so keys are unique).
type Key = (i64, i64, i64);

fn key(side: Side, price: i64, priority: i64, id: i64) -> Key {
    match side {
        Side::Sell => (price, priority, id),
        Side::Buy => (price.saturating_neg(), priority, id),
    }
}

/// The last place in `side`'s queue that still crosses an order whose worst price is `worst`.
fn worst_key(side: Side, worst: i64) -> Key {
    key(side, worst, i64::MAX, i64::MAX)
}

/// One open order in a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    order_id: i64,
    account_id: i64,
    price: i64,
    priority: i64,
    open_qty: i64,
    intent: Intent,
}

impl Row {
    fn resting(&self) -> RestingRow {
        RestingRow {
            order_id: self.order_id,
            account_id: self.account_id,
            price: self.price,
            priority: self.priority,
            open_qty: self.open_qty,
        }
    }
}

/// The open orders on one side of a book that the mirror knows.
#[derive(Debug, Clone)]
struct Queue {
    side: Side,
    rows: BTreeMap<Key, Row>,
    /// Every open order at or before this place is in `rows`; beyond it, only those the batch
    /// placed.
    known: Key,
}

impl Queue {
    fn find(&self, order_id: i64) -> Option<Key> {
        self.rows
            .iter()
            .find(|(_, r)| r.order_id == order_id)
            .map(|(k, _)| *k)
    }

    /// The database's answer to "up to `limit` orders crossing `worst`, best first, after
    /// `after` (price, priority)", if this queue knows it.
    fn answer(&self, worst: i64, after: Option<(i64, i64)>, limit: i64) -> Option<Vec<RestingRow>> {
        let mut out = Vec::new();
        if limit <= 0 {
            return Some(out);
        }
        let last = worst_key(self.side, worst);
        // Every order that crosses is known, or only the first `known` ones are.
        let complete = last <= self.known;
        let from = match after {
            Some((price, priority)) => Bound::Excluded(key(self.side, price, priority, i64::MAX)),
            None => Bound::Unbounded,
        };
        for (k, row) in self.rows.range((from, Bound::Unbounded)) {
            if *k > last {
                break;
            }
            if !complete && *k > self.known {
                return None;
            }
            out.push(row.resting());
            if out.len() as i64 == limit {
                return Some(out);
            }
        }
        complete.then_some(out)
    }
}

/// A crossing read of the prefetch, resolved: its book and side (`None` if it named an order
/// that does not exist), and how far it read.
struct Request {
    index: i64,
    place: Option<(i64, Side)>,
    worst: i64,
    limit: i64,
}

/// An account as the batch read it, with the batch's writes applied.
#[derive(Debug, Clone, Default)]
struct Account {
    cash: i64,
    /// Instrument → shares (never zero).
    holdings: BTreeMap<i64, i64>,
    /// (instrument, intent name) → open shares and their value at the limit prices (shares
    /// never zero).
    open: BTreeMap<(i64, &'static str), (Intent, i64, i64)>,
}

impl Account {
    /// Adds `qty` open shares worth `value` (both negative to take them away).
    fn add_open(&mut self, instrument: i64, intent: Intent, qty: i64, value: i64) {
        let slot = self
            .open
            .entry((instrument, intent.as_str()))
            .or_insert((intent, 0, 0));
        slot.1 += qty;
        slot.2 += value;
        if slot.1 == 0 {
            self.open.remove(&(instrument, intent.as_str()));
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mirror {
    game_id: i64,
    /// The game and its house account (`None`: no such game).
    game: Option<(Game, i64)>,
    /// The books the batch locked.
    books: HashMap<i64, BookState>,
    /// Last prices of the instruments the accounts hold or the batch trades.
    marks: HashMap<i64, i64>,
    /// The accounts the batch locked; `None` once the mirror lost track of one.
    accounts: HashMap<i64, Option<Account>>,
    /// The orders read, and those the batch wrote.
    orders: HashMap<i64, Order>,
    /// Book sides read; `None` once the mirror lost track of one.
    queues: HashMap<(i64, Side), Option<Queue>>,
    /// Ids for new orders, handed out by the prefetch.
    ids: VecDeque<i64>,
    /// SQLite: the last trade id written, the batch's included (new trades take the next
    /// ones, see [`IdHint::trade_base`]). `None` on PostgreSQL, whose trade ids are
    /// placeholders until written.
    pub(super) last_trade: Option<i64>,
    /// What tells a later batch whether anybody else has written since this one began.
    pub(super) stamp: Option<Stamp>,
    /// Whether this batch began with what the one before it left ([`Mirror::carry`]).
    pub(crate) carried: bool,
    /// Reads answered from memory, and reads left to the database.
    pub(crate) answered: u64,
    pub(crate) declined: u64,
}

/// When a batch began, as the next batch can ask whether anybody else has written since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stamp {
    /// SQLite: the connection's `PRAGMA data_version` (another connection's commit changes
    /// it, so an equal one later on the same connection means nobody else wrote).
    DataVersion(i64),
    /// PostgreSQL: the snapshot the batch took after its locks, before its reads, and its
    /// transaction id (`ex_prefetch_since`, migration 0018, asks about them).
    Snapshot { snapshot: String, xid: i64 },
}

/// The most a mirror carried from one batch to the next may hold: open orders, accounts and
/// orders in the queues. Beyond that the next batch reads afresh (a few hundred kilobytes).
const CARRY_ORDERS: usize = 4_096;
const CARRY_ACCOUNTS: usize = 1_024;
const CARRY_QUEUED: usize = 16_384;

impl Mirror {
    /// Builds the mirror from `ex_prefetch`'s rows, each a kind and its fields.
    pub(super) fn from_rows<'a, F: Fields + 'a>(
        game_id: i64,
        rows: impl IntoIterator<Item = (i64, &'a F)>,
    ) -> Result<Mirror, StoreError> {
        let mut m = Mirror {
            game_id,
            ..Mirror::default()
        };
        // Crossing orders per request, and each request's book, side, worst price and limit.
        let mut found: BTreeMap<i64, Vec<Row>> = BTreeMap::new();
        let mut requests: Vec<Request> = Vec::new();
        for (kind, f) in rows {
            match kind {
                0 | 1 | 5 => {
                    let mut loaded = Loaded::default();
                    let mut view = AccountView::default();
                    apply_row(kind, f, &mut loaded, &mut view)?;
                    if let Some(game) = loaded.game {
                        m.game = Some(game);
                    }
                    if let Some(book) = loaded.book {
                        m.marks
                            .insert(book.instrument.id, book.instrument.last_price);
                        m.books.insert(book.instrument.id, book);
                    }
                    if let Some(order) = loaded.order {
                        m.orders.insert(order.id, order);
                    }
                }
                2 => {
                    let account = m
                        .accounts
                        .entry(f.num(2)?)
                        .or_insert(Some(Account::default()));
                    if let Some(a) = account {
                        a.cash = f.num(1)?;
                    }
                }
                3 => {
                    let (instrument, qty, mark) = (f.num(1)?, f.num(2)?, f.num(3)?);
                    m.marks.insert(instrument, mark);
                    if let Some(Some(a)) = m.accounts.get_mut(&f.num(4)?) {
                        a.holdings.insert(instrument, qty);
                    } else {
                        return Err(corrupt("prefetch", "a holding before its account"));
                    }
                }
                4 => {
                    let name = f.word(1)?;
                    let intent =
                        Intent::from_name(&name).ok_or_else(|| corrupt("intent", &name))?;
                    if let Some(Some(a)) = m.accounts.get_mut(&f.num(4)?) {
                        a.add_open(f.num(1)?, intent, f.num(2)?, f.num(3)?);
                    } else {
                        return Err(corrupt("prefetch", "open orders before their account"));
                    }
                }
                6 => {
                    let name = f.word(1)?;
                    found.entry(f.num(6)?).or_default().push(Row {
                        order_id: f.num(1)?,
                        account_id: f.num(2)?,
                        price: f.num(3)?,
                        priority: f.num(4)?,
                        open_qty: f.num(5)?,
                        intent: Intent::from_name(&name).ok_or_else(|| corrupt("intent", &name))?,
                    });
                }
                7 => {
                    let side = match f.t(1)? {
                        Some(name) => {
                            Some(Side::from_name(&name).ok_or_else(|| corrupt("side", &name))?)
                        }
                        None => None,
                    };
                    let book = f.n(2)?;
                    requests.push(Request {
                        index: f.num(1)?,
                        place: book.zip(side),
                        worst: f.num(3)?,
                        limit: f.num(4)?,
                    });
                }
                8 => m.ids.push_back(f.num(1)?),
                k => return Err(corrupt("prefetch row kind", &k.to_string())),
            }
        }
        for Request {
            index,
            place,
            worst,
            limit,
        } in requests
        {
            let Some((book, side)) = place else { continue };
            let rows = found.remove(&index).unwrap_or_default();
            // All that cross were read, or the first `limit`: then up to the last one read.
            let known = if (rows.len() as i64) < limit {
                worst_key(side, worst)
            } else {
                rows.iter()
                    .map(|r| key(side, r.price, r.priority, r.order_id))
                    .max()
                    .unwrap_or_else(|| worst_key(side, worst))
            };
            let queue = m
                .queues
                .entry((book, side))
                .or_insert_with(|| {
                    Some(Queue {
                        side,
                        rows: BTreeMap::new(),
                        known: (i64::MIN, i64::MIN, i64::MIN),
                    })
                })
                .as_mut()
                .ok_or_else(|| corrupt("prefetch", "queue"))?;
            queue.known = queue.known.max(known);
            for r in rows {
                queue
                    .rows
                    .insert(key(side, r.price, r.priority, r.order_id), r);
            }
        }
        Ok(m)
    }

    /// What is left to carry to the next batch once this one has committed (see
    /// [`super::tx::Carried`]): all it knows but the orders no longer open and the new orders'
    /// ids, or nothing if it has grown too big or has nothing to tell a later write by
    /// (SQLite's `data_version`, PostgreSQL's snapshot).
    pub(super) fn carry(mut self: Box<Self>) -> Option<Box<Mirror>> {
        self.stamp.as_ref()?;
        self.orders.retain(|_, o| o.status == OrderStatus::Open);
        let queued: usize = self
            .queues
            .values()
            .map(|q| q.as_ref().map_or(0, |q| q.rows.len()))
            .sum();
        if self.orders.len() > CARRY_ORDERS
            || self.accounts.len() > CARRY_ACCOUNTS
            || queued > CARRY_QUEUED
        {
            return None;
        }
        self.ids.clear();
        self.last_trade = None;
        self.answered = 0;
        self.declined = 0;
        Some(self)
    }

    /// Takes in what a batch read on top of a carried mirror (`fresh`, read in the same
    /// snapshot): its rows replace what was carried for the same game, account, book, order
    /// and book side, and its ids and stamp are the batch's.
    pub(super) fn absorb(&mut self, fresh: Mirror) {
        let Mirror {
            game,
            books,
            marks,
            accounts,
            orders,
            queues,
            ids,
            last_trade,
            stamp,
            ..
        } = fresh;
        self.game = game;
        self.books.extend(books);
        self.marks.extend(marks);
        self.accounts.extend(accounts);
        self.orders.extend(orders);
        self.queues.extend(queues);
        self.ids = ids;
        self.last_trade = last_trade;
        self.stamp = stamp;
        self.carried = true;
    }

    pub(super) fn game_id(&self) -> i64 {
        self.game_id
    }

    /// Whether the mirror knows an account's cash, holdings and open orders.
    pub(super) fn knows_account(&self, account_id: i64) -> bool {
        self.view(account_id).is_some()
    }

    pub(super) fn knows_book(&self, instrument_id: i64) -> bool {
        self.books.contains_key(&instrument_id)
    }

    pub(super) fn order(&self, order_id: i64) -> Option<&Order> {
        self.orders.get(&order_id)
    }

    /// Whether the mirror knows the first `limit` orders of a book side crossing `worst`.
    pub(super) fn answers(&self, instrument_id: i64, side: Side, worst: i64, limit: i64) -> bool {
        self.resting(instrument_id, side, worst, None, limit)
            .is_some()
    }

    /// What [`super::WriteTx::load_next`] would read for `spec`, if the mirror knows it all.
    pub(crate) fn load(&mut self, spec: &LoadSpec) -> Option<Loaded> {
        if spec.game_id != self.game_id {
            return None;
        }
        let game = self.game.clone()?;
        let order = match spec.order_id {
            Some(id) => Some(self.orders.get(&id)?.clone()),
            None => None,
        };
        let book_id = spec
            .instrument_id
            .or(order.as_ref().map(|o| o.instrument_id));
        let book = match book_id {
            Some(id) => Some(self.books.get(&id)?.clone()),
            None => None,
        };
        if let Some(a) = spec.lock_account {
            if !self.accounts.contains_key(&a) {
                return None;
            }
        }
        let view = match spec.view_account {
            Some(a) => Some(self.view(a)?),
            None => None,
        };
        let crossing = match (spec.crossing, spec.order_crossing) {
            (Some(c), _) => Some((c.side, c.worst, c.limit)),
            (None, Some((worst, limit))) => {
                order.as_ref().map(|o| (o.side.opposite(), worst, limit))
            }
            (None, None) => None,
        };
        let resting = match (crossing, book_id) {
            (Some((side, worst, limit)), Some(b)) => self.resting(b, side, worst, None, limit)?,
            _ => Vec::new(),
        };
        let next_order = if spec.new_order {
            Some(self.ids.pop_front()?)
        } else {
            None
        };
        Some(Loaded {
            game: Some(game),
            book,
            hint: IdHint {
                next_order,
                trade_base: self.last_trade.unwrap_or(0),
            },
            view,
            order,
            resting,
        })
    }

    /// Up to `limit` open orders on `side` of a book crossing `worst`, best first, after
    /// `after`, if the mirror knows them (see [`super::WriteTx::resting`]).
    pub(crate) fn resting(
        &self,
        instrument: i64,
        side: Side,
        worst: i64,
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> Option<Vec<RestingRow>> {
        self.queues
            .get(&(instrument, side))?
            .as_ref()?
            .answer(worst, after, limit)
    }

    /// An account's cash, holdings at their marks and open orders, in the order the database
    /// load gives them, if the mirror knows it.
    pub(crate) fn view(&self, account_id: i64) -> Option<AccountView> {
        let a = self.accounts.get(&account_id)?.as_ref()?;
        let mut holdings = Vec::with_capacity(a.holdings.len());
        for (&instrument_id, &qty) in &a.holdings {
            holdings.push(Holding {
                instrument_id,
                qty,
                mark: *self.marks.get(&instrument_id)?,
            });
        }
        Some(AccountView {
            cash: a.cash,
            holdings,
            open_orders: a
                .open
                .iter()
                .map(
                    |(&(instrument_id, _), &(intent, open_qty, value))| OpenOrders {
                        instrument_id,
                        intent,
                        open_qty,
                        value,
                    },
                )
                .collect(),
        })
    }

    /// An id for a new order that an order read from the database takes (SQLite, whose
    /// database hands out the next free id, which may be one the prefetch handed out already),
    /// if the prefetch's ids are not used up.
    pub(crate) fn take_id(&mut self) -> Option<i64> {
        self.ids.pop_front()
    }

    /// Takes in what one order of the batch writes (at `now`, as the write is stamped).
    pub(crate) fn apply(&mut self, w: &BookWrite, now: i64) {
        let instrument = w.instrument_id;
        if let Some(last) = self.last_trade.as_mut() {
            for t in &w.trades {
                *last = (*last).max(t.id);
            }
        }
        if let Some((last, next)) = w.book {
            if let Some(book) = self.books.get_mut(&instrument) {
                book.instrument.last_price = last;
                book.next_priority = next;
            }
            self.marks.insert(instrument, last);
        }
        if let Some(o) = &w.order {
            let side = o.intent.side();
            let old = self.orders.remove(&o.id);
            match &old {
                Some(old) if old.status == OrderStatus::Open => {
                    let open = old.qty - old.filled;
                    self.add_open(
                        old.account_id,
                        old.instrument_id,
                        old.intent,
                        -open,
                        -open * old.price.unwrap_or(0),
                    );
                }
                Some(_) => {}
                None if o.insert => {}
                // An order changed that the mirror never read: its account's open orders
                // are no longer known.
                None => self.lose_account(o.account_id),
            }
            let open = o.qty - o.filled;
            if o.status == OrderStatus::Open {
                self.add_open(
                    o.account_id,
                    instrument,
                    o.intent,
                    open,
                    open * o.price.unwrap_or(0),
                );
            }
            if let Some(Some(q)) = self.queues.get_mut(&(instrument, side)) {
                if let Some(k) = q.find(o.id) {
                    q.rows.remove(&k);
                }
                if let (OrderStatus::Open, Some(price)) = (o.status, o.price) {
                    q.rows.insert(
                        key(side, price, o.priority, o.id),
                        Row {
                            order_id: o.id,
                            account_id: o.account_id,
                            price,
                            priority: o.priority,
                            open_qty: open,
                            intent: o.intent,
                        },
                    );
                }
            }
            let created_at = match &old {
                Some(old) => Some(old.created_at),
                None if o.insert => Some(now),
                None => None,
            };
            if let Some(created_at) = created_at {
                self.orders.insert(
                    o.id,
                    Order {
                        id: o.id,
                        instrument_id: instrument,
                        account_id: o.account_id,
                        side,
                        intent: o.intent,
                        tif: o.tif,
                        price: o.price,
                        qty: o.qty,
                        filled: o.filled,
                        status: o.status,
                        priority: o.priority,
                        created_at,
                    },
                );
            }
        }
        for &(id, qty) in &w.maker_fills {
            self.take_from_resting(instrument, id, Some(qty));
        }
        for &(id, _) in &w.cancels {
            self.take_from_resting(instrument, id, None);
        }
        for &(account, share_instrument, delta) in &w.shares {
            let known_mark = self.marks.contains_key(&share_instrument);
            let mut lost = false;
            if let Some(Some(a)) = self.accounts.get_mut(&account) {
                let qty = a.holdings.entry(share_instrument).or_insert(0);
                *qty += delta;
                if *qty == 0 {
                    a.holdings.remove(&share_instrument);
                } else if !known_mark {
                    lost = true;
                }
            }
            if lost {
                self.lose_account(account);
            }
        }
        for &(account, delta) in &w.cash {
            if let Some(Some(a)) = self.accounts.get_mut(&account) {
                a.cash += delta;
            }
        }
    }

    /// A resting order of the book `instrument` filled by `qty` shares, or cancelled (`None`).
    fn take_from_resting(&mut self, instrument: i64, id: i64, qty: Option<i64>) {
        // What the mirror knows of it: (account, intent, price, open shares).
        let mut known: Option<(i64, Intent, i64, i64)> = None;
        if let Some(o) = self.orders.get_mut(&id) {
            if o.status == OrderStatus::Open {
                let open = o.qty - o.filled;
                known = Some((o.account_id, o.intent, o.price.unwrap_or(0), open));
                match qty {
                    Some(q) => {
                        o.filled += q;
                        if o.filled >= o.qty {
                            o.status = OrderStatus::Filled;
                        }
                    }
                    None => o.status = OrderStatus::Cancelled,
                }
            }
        }
        for side in [Side::Buy, Side::Sell] {
            if let Some(Some(q)) = self.queues.get_mut(&(instrument, side)) {
                if let Some(mut row) = q.find(id).and_then(|k| q.rows.remove(&k)) {
                    let k = key(side, row.price, row.priority, row.order_id);
                    known.get_or_insert((row.account_id, row.intent, row.price, row.open_qty));
                    if let Some(q_filled) = qty {
                        row.open_qty -= q_filled;
                        if row.open_qty > 0 {
                            q.rows.insert(k, row);
                        }
                    }
                }
            }
        }
        match known {
            Some((account, intent, price, open)) => {
                let taken = qty.unwrap_or(open);
                self.add_open(account, instrument, intent, -taken, -taken * price);
            }
            // An order the mirror never read: whose it was is not known, so no account's
            // open orders are.
            None => {
                for a in self.accounts.values_mut() {
                    *a = None;
                }
            }
        }
    }

    fn add_open(&mut self, account: i64, instrument: i64, intent: Intent, qty: i64, value: i64) {
        if let Some(Some(a)) = self.accounts.get_mut(&account) {
            a.add_open(instrument, intent, qty, value);
        }
    }

    fn lose_account(&mut self, account: i64) {
        if let Some(a) = self.accounts.get_mut(&account) {
            *a = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(side: Side, rows: &[(i64, i64, i64)], known: Key) -> Queue {
        let mut q = Queue {
            side,
            rows: BTreeMap::new(),
            known,
        };
        for &(id, price, priority) in rows {
            q.rows.insert(
                key(side, price, priority, id),
                Row {
                    order_id: id,
                    account_id: 1,
                    price,
                    priority,
                    open_qty: 10,
                    intent: Intent::Sell,
                },
            );
        }
        q
    }

    fn ids(rows: Option<Vec<RestingRow>>) -> Option<Vec<i64>> {
        rows.map(|r| r.iter().map(|r| r.order_id).collect())
    }

    #[test]
    fn a_queue_read_whole_up_to_a_price_answers_within_that_price() {
        // Asks at 100, 101, 103, everything up to 105 read.
        let q = queue(
            Side::Sell,
            &[(1, 100, 5), (2, 101, 1), (3, 103, 2)],
            worst_key(Side::Sell, 105),
        );
        assert_eq!(ids(q.answer(102, None, 10)), Some(vec![1, 2]));
        assert_eq!(ids(q.answer(105, None, 10)), Some(vec![1, 2, 3]));
        assert_eq!(ids(q.answer(105, None, 2)), Some(vec![1, 2]));
        assert_eq!(ids(q.answer(105, Some((100, 5)), 10)), Some(vec![2, 3]));
        // Beyond 105 there may be asks nobody read.
        assert_eq!(ids(q.answer(106, None, 10)), None);
        // ... unless the first ones already fill the page.
        assert_eq!(ids(q.answer(106, None, 3)), Some(vec![1, 2, 3]));
    }

    #[test]
    fn a_queue_read_to_a_limit_answers_up_to_its_last_order() {
        // Bids: best is the highest. Two read, the second at 99 priority 7; more may follow.
        let q = queue(
            Side::Buy,
            &[(1, 100, 9), (2, 99, 7)],
            key(Side::Buy, 99, 7, 2),
        );
        assert_eq!(ids(q.answer(100, None, 5)), Some(vec![1]));
        assert_eq!(ids(q.answer(99, None, 2)), Some(vec![1, 2]));
        // Another bid at 99 with a later priority may wait unread.
        assert_eq!(ids(q.answer(99, None, 3)), None);
        assert_eq!(ids(q.answer(1, None, 2)), Some(vec![1, 2]));
    }

    #[test]
    fn orders_placed_beyond_what_was_read_count_only_where_nothing_unread_can_cross() {
        let mut q = queue(Side::Sell, &[(1, 100, 1)], key(Side::Sell, 100, 1, 1));
        q.rows.insert(
            key(Side::Sell, 98, 50, 9),
            Row {
                order_id: 9,
                account_id: 2,
                price: 98,
                priority: 50,
                open_qty: 1,
                intent: Intent::Short,
            },
        );
        q.rows.insert(
            key(Side::Sell, 104, 51, 10),
            Row {
                order_id: 10,
                account_id: 2,
                price: 104,
                priority: 51,
                open_qty: 1,
                intent: Intent::Short,
            },
        );
        assert_eq!(ids(q.answer(99, None, 5)), Some(vec![9]));
        assert_eq!(ids(q.answer(100, None, 2)), Some(vec![9, 1]));
        assert_eq!(ids(q.answer(104, None, 5)), None);
    }

    fn order_write(
        id: i64,
        account: i64,
        intent: Intent,
        price: i64,
        qty: i64,
        filled: i64,
    ) -> super::super::script::OrderWrite {
        super::super::script::OrderWrite {
            insert: true,
            id,
            account_id: account,
            intent,
            market: false,
            tif: crate::exchange::model::TimeInForce::Gtc,
            price: Some(price),
            qty,
            filled,
            status: if filled < qty {
                OrderStatus::Open
            } else {
                OrderStatus::Filled
            },
            reason: None,
            priority: 7,
        }
    }

    #[test]
    fn writes_move_cash_shares_open_orders_and_queues() {
        let mut m = Mirror {
            game_id: 1,
            ..Mirror::default()
        };
        m.marks.insert(5, 100);
        m.accounts.insert(
            10,
            Some(Account {
                cash: 1_000,
                ..Account::default()
            }),
        );
        m.accounts.insert(11, Some(Account::default()));
        m.queues.insert(
            (5, Side::Sell),
            Some(queue(Side::Sell, &[], worst_key(Side::Sell, i64::MAX))),
        );
        // Account 11 rests a sale of 10 at 100.
        let mut w = BookWrite::empty(1, 5);
        w.order = Some(order_write(70, 11, Intent::Sell, 100, 10, 0));
        w.book = Some((100, 8));
        m.apply(&w, 123);
        assert_eq!(m.orders[&70].created_at, 123);
        let v = m.view(11).unwrap();
        assert_eq!(
            v.open_orders,
            vec![OpenOrders {
                instrument_id: 5,
                intent: Intent::Sell,
                open_qty: 10,
                value: 1_000
            }]
        );
        assert_eq!(ids(m.resting(5, Side::Sell, 100, None, 5)), Some(vec![70]));
        // Account 10 buys 4 of them.
        let mut w = BookWrite::empty(1, 5);
        w.order = Some(order_write(71, 10, Intent::Buy, 100, 4, 4));
        w.maker_fills.push((70, 4));
        w.cash.extend([(10, -400), (11, 400)]);
        w.shares.extend([(10, 5, 4), (11, 5, -4)]);
        w.book = Some((100, 9));
        m.apply(&w, 124);
        let buyer = m.view(10).unwrap();
        assert_eq!(buyer.cash, 600);
        assert_eq!(
            buyer.holdings,
            vec![Holding {
                instrument_id: 5,
                qty: 4,
                mark: 100
            }]
        );
        assert!(buyer.open_orders.is_empty());
        let seller = m.view(11).unwrap();
        assert_eq!(seller.open_orders[0].open_qty, 6);
        assert_eq!(seller.open_orders[0].value, 600);
        assert_eq!(m.orders[&70].filled, 4);
        let rest = m.resting(5, Side::Sell, 100, None, 5).unwrap();
        assert_eq!(rest[0].open_qty, 6);
        // The rest is cancelled.
        let mut w = BookWrite::empty(1, 5);
        w.cancels.push((70, "user"));
        m.apply(&w, 125);
        assert!(m.view(11).unwrap().open_orders.is_empty());
        assert_eq!(m.orders[&70].status, OrderStatus::Cancelled);
        assert_eq!(ids(m.resting(5, Side::Sell, 100, None, 5)), Some(vec![]));
    }

    #[test]
    fn an_order_it_never_read_makes_it_decline_rather_than_guess() {
        let mut m = Mirror {
            game_id: 1,
            ..Mirror::default()
        };
        m.accounts.insert(10, Some(Account::default()));
        let mut w = BookWrite::empty(1, 5);
        w.maker_fills.push((999, 1));
        m.apply(&w, 1);
        assert!(m.view(10).is_none());
        // And an order or game it does not know is never made up.
        let spec = LoadSpec {
            game_id: 1,
            order_id: Some(5),
            ..LoadSpec::default()
        };
        assert!(m.load(&spec).is_none());
    }

    #[test]
    fn a_carried_mirror_keeps_what_is_still_open_and_forgets_the_batch() {
        let mut m = Mirror {
            game_id: 1,
            stamp: Some(Stamp::DataVersion(3)),
            last_trade: Some(9),
            answered: 4,
            ..Mirror::default()
        };
        m.accounts.insert(10, Some(Account::default()));
        m.queues.insert(
            (5, Side::Sell),
            Some(queue(Side::Sell, &[], worst_key(Side::Sell, i64::MAX))),
        );
        let mut w = BookWrite::empty(1, 5);
        w.order = Some(order_write(70, 10, Intent::Sell, 100, 10, 0));
        m.apply(&w, 1);
        let mut w = BookWrite::empty(1, 5);
        w.order = Some(order_write(71, 10, Intent::Sell, 100, 10, 10));
        m.apply(&w, 1);
        m.ids.push_back(72);
        let c = Box::new(m.clone()).carry().unwrap();
        assert!(c.order(70).is_some(), "the open order is kept");
        assert!(c.order(71).is_none(), "the filled one goes");
        assert!(c.ids.is_empty() && c.last_trade.is_none() && c.answered == 0);
        assert!(c.answers(5, Side::Sell, 100, 5));
        // Nothing is carried without a stamp to check it by, or once too big.
        let mut blind = m.clone();
        blind.stamp = None;
        assert!(Box::new(blind).carry().is_none());
        let mut big = m;
        for a in 0..=CARRY_ACCOUNTS as i64 {
            big.accounts.insert(1_000 + a, None);
        }
        assert!(Box::new(big).carry().is_none());
    }
}
