//! The start of a book's write transaction: take its locks and read everything the engine
//! needs to decide (the game, the book, the account's buying power, the order being changed,
//! the first crossing orders) before anything is written.
//!
//! One trip on both engines, with `BEGIN` (or a batch's previous write) in front. PostgreSQL:
//! `SELECT * FROM ex_load(...)`, where the function (migration 0009) takes the advisory locks
//! and runs the reads with plans cached per connection; its arguments are inlined as literals
//! (integers formatted here and the fixed side names). SQLite: the writer gate was entered
//! and `BEGIN IMMEDIATE` takes the file's write lock; then the same reads in one statement
//! with bound arguments, which sqlx keeps prepared (`load_script`). Both give load rows of one
//! shape, a kind `k` and values `n1..n10`, `t1..t4` (PostgreSQL as rows, SQLite as JSON lists
//! in one row, a column per kind), read by one parser (`apply_row`).
//!
//! A planned batch (the order writer's) reads for all its orders at once instead
//! ([`WriteTx::begin_planned`], `Prefetch`): PostgreSQL's `ex_prefetch` and an SQLite
//! statement of the same reads give the rows its [`Mirror`] is built from. While nobody else
//! writes between batches, a batch reads only what the last one's mirror does not know
//! (PostgreSQL: `ex_prefetch_since`, migration 0018, which calls `ex_prefetch` with the lists
//! left; SQLite: `begin_planned_sqlite`).

use sqlx::any::AnyRow;
use sqlx::Row;

use super::mirror::{Mirror, Stamp};
use super::sql::{int_array, json_list, literal, text_array, Sql};
use super::{corrupt, BookState, IdHint, Locks, RestingRow, WriteTx};
use crate::exchange::model::{
    Game, GameRules, Instrument, Intent, Order, OrderStatus, Side, StpMode, TimeInForce,
};
use crate::exchange::risk::{AccountView, Holding, OpenOrders};
use crate::store::{Backend, Db, StoreError};

/// Crossing orders to read: on `side`, at `worst` or better, best first, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crossing {
    pub side: Side,
    pub worst: i64,
    pub limit: i64,
}

/// What a write transaction on one book locks and reads first.
#[derive(Debug, Clone, Default)]
pub struct LoadSpec {
    pub game_id: i64,
    /// The book; `None` takes the book of `order_id`.
    pub instrument_id: Option<i64>,
    /// The account to lock (before the book).
    pub lock_account: Option<i64>,
    /// The account whose cash, holdings and open orders to read.
    pub view_account: Option<i64>,
    /// An order to read (under the book's lock).
    pub order_id: Option<i64>,
    /// Whether to hand out the id of a new order.
    pub new_order: bool,
    pub crossing: Option<Crossing>,
    /// For a replace: crossing orders against `order_id`'s side, `(worst, limit)` (the order's
    /// side is not known before the load).
    pub order_crossing: Option<(i64, i64)>,
}

/// What [`WriteTx::load`] read, under the locks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// The game and its house account, if the game exists.
    pub game: Option<(Game, i64)>,
    /// The book, if it exists (the caller checks that it belongs to the game).
    pub book: Option<BookState>,
    pub hint: IdHint,
    /// The viewed account, when asked for.
    pub view: Option<AccountView>,
    /// The order, when asked for and it exists.
    pub order: Option<Order>,
    /// Crossing orders, best first, when asked for.
    pub resting: Vec<RestingRow>,
}

impl WriteTx {
    /// Begins a write transaction on a book, takes its locks and reads what `spec` asks for.
    /// If this first trip finds its connection dead (dropped by the server since it was last
    /// used), it is tried again on another: nothing was written yet.
    pub async fn load(db: &Db, spec: &LoadSpec) -> Result<(WriteTx, Loaded), StoreError> {
        let mut tx = WriteTx::begin_lazy(db, Locks::default()).await?;
        let loaded = tx.load_next(spec).await?;
        Ok((tx, loaded))
    }

    /// Begins one transaction for a batch whose every load is known up front (the order
    /// writer's): `plan` holds the load of each of its orders, in any order. The first trip
    /// takes all the batch's locks and reads everything those loads need (PostgreSQL:
    /// `ex_prefetch`, migration 0012; SQLite: `BEGIN IMMEDIATE` and one statement,
    /// `Prefetch::sqlite`); from then on [`WriteTx::load_next`] answers from memory whatever
    /// it can ([`super::mirror`]) and the batch's writes wait for the commit, so a batch costs
    /// about two trips however many orders it holds. The first trip reads only what the last
    /// planned batch's mirror does not know, while nobody else has written since
    /// (`ex_prefetch_since`; `begin_planned_sqlite`). An empty plan begins a
    /// [`WriteTx::begin_batch`].
    pub async fn begin_planned(db: &Db, plan: &[LoadSpec]) -> Result<WriteTx, StoreError> {
        let Some(first) = plan.first() else {
            return WriteTx::begin_batch(db, &[], &[]).await;
        };
        let prefetch = Prefetch::of(first.game_id, plan);
        if db.backend() == Backend::Sqlite {
            return begin_planned_sqlite(db, prefetch).await;
        }
        let known = carried_for(db, prefetch.game_id).map(|c| c.mirror);
        let mut tx = WriteTx::begin_lazy(db, Locks::default()).await?;
        let link = tx.link();
        let mut sql = link.sql();
        sql.push(&prefetch.call_since(known.as_deref()));
        let (rows, _) = link.run(sql).await?;
        tx.mirror = Some(prefetched(first.game_id, known, &rows)?);
        Ok(tx)
    }

    /// Commits this planned batch and begins the one for `plan` on the same connection. On
    /// PostgreSQL the next batch's locks and reads go in the same trip, right after the
    /// `COMMIT` ([`WriteTx::commit_and_begin`]); elsewhere this commits and then runs
    /// [`WriteTx::begin_planned`]. `at_commit` gets the trade ids of each write of this batch
    /// as soon as the commit is known to have succeeded, before the next batch's reads are
    /// back.
    ///
    /// Returns `Err` if this batch is not known to have committed (`at_commit` was not
    /// called); otherwise the next batch, or why it could not begin.
    pub async fn commit_then_plan(
        mut self,
        plan: &[LoadSpec],
        at_commit: impl FnOnce(Result<Vec<Vec<i64>>, StoreError>),
    ) -> Result<Result<WriteTx, StoreError>, StoreError> {
        let (Some(first), Backend::Postgres) = (plan.first(), self.backend) else {
            let db = self.db().clone();
            at_commit(Ok(self.commit_batch().await?));
            return Ok(WriteTx::begin_planned(&db, plan).await);
        };
        // This batch's picture, as its writes leave it, for the next one to begin on.
        let known = self
            .mirror
            .take()
            .and_then(|m| m.carry())
            .filter(|m| m.game_id() == first.game_id);
        let mut next = Sql::new(Backend::Postgres);
        next.push(&Prefetch::of(first.game_id, plan).call_since(known.as_deref()));
        let begun = self.commit_and_begin(next, at_commit).await?;
        Ok(begun.and_then(|(mut tx, rows)| {
            tx.mirror = Some(prefetched(first.game_id, known, &rows)?);
            Ok(tx)
        }))
    }

    /// How many reads of a planned batch its mirror answered, and how many it left to the
    /// database.
    pub fn mirror_counts(&self) -> Option<(u64, u64)> {
        self.mirror.as_ref().map(|m| (m.answered, m.declined))
    }

    /// Whether this planned batch's mirror is the last one's, carried over.
    pub fn mirror_carried(&self) -> bool {
        self.mirror.as_ref().is_some_and(|m| m.carried)
    }

    /// Counts a read of a planned batch: answered by its mirror, or left to the database.
    pub(super) fn count_read(&mut self, answered: bool) {
        if let Some(m) = self.mirror.as_mut() {
            if answered {
                m.answered += 1;
            } else {
                m.declined += 1;
            }
        }
    }

    /// Sends the writes that wait (a planned batch's), so the database can be read directly.
    pub(crate) async fn settle(&mut self) -> Result<(), StoreError> {
        self.stage_unsent()?;
        let written = self.link().flush().await?;
        self.written.extend(written);
        Ok(())
    }

    /// Locks and reads what `spec` asks for inside a transaction begun with
    /// [`WriteTx::begin_batch`], in one trip with the previous write; in a planned batch,
    /// from its mirror when that knows it all.
    pub async fn load_next(&mut self, spec: &LoadSpec) -> Result<Loaded, StoreError> {
        let known = self.mirror.as_mut().and_then(|m| m.load(spec));
        self.count_read(known.is_some());
        let Some(known) = known else {
            let mut loaded = self.read(spec).await?;
            // SQLite hands out the next free id, which the prefetch may have handed out
            // already; its own come first.
            if spec.new_order && self.backend == Backend::Sqlite {
                if let Some(id) = self.mirror.as_mut().and_then(|m| m.take_id()) {
                    loaded.hint.next_order = Some(id);
                }
            }
            return Ok(loaded);
        };
        if self.verify_mirror {
            let read = self.read(spec).await?;
            let mut mine = known.clone();
            let mut theirs = read;
            // The database's load handed out another id.
            mine.hint.next_order = None;
            theirs.hint.next_order = None;
            mirror_agrees("load", spec, &mine, &theirs)?;
        }
        Ok(known)
    }

    /// [`WriteTx::load_next`] from the database.
    async fn read(&mut self, spec: &LoadSpec) -> Result<Loaded, StoreError> {
        self.stage_unsent()?;
        let backend = self.backend;
        let link = self.link();
        let mut sql = link.sql();
        match backend {
            Backend::Postgres => sql.push(&ex_load_call(spec)),
            Backend::Sqlite => load_script(&mut sql, spec),
        }
        let (rows, written) = link.run(sql).await?;
        self.written.extend(written);
        let mut loaded = match backend {
            Backend::Postgres => parse_rows(&rows)?,
            Backend::Sqlite => {
                let row = rows
                    .iter()
                    .rev()
                    .find(|r| r.columns().len() > 1)
                    .ok_or_else(|| corrupt("load", "no row"))?;
                parse_sqlite_row(row)?
            }
        };
        if spec.view_account.is_none() {
            loaded.view = None;
        }
        if !spec.new_order {
            loaded.hint.next_order = None;
        }
        Ok(loaded)
    }
}

/// [`WriteTx::begin_planned`] on SQLite. If the last planned batch left its mirror
/// ([`super::tx::Carried`]) for the same game, the batch begins on that mirror's connection
/// and its first trip reads only what the mirror does not know, with the connection's
/// `data_version`: unchanged, nobody else has committed since that batch began, so the mirror
/// is still exact and takes in the new rows. Changed, a second trip (still under the write
/// lock) reads everything.
async fn begin_planned_sqlite(db: &Db, prefetch: Prefetch) -> Result<WriteTx, StoreError> {
    let (conn, known) = match carried_for(db, prefetch.game_id) {
        Some(c) => (c.conn, Some(c.mirror)),
        None => (None, None),
    };
    let mut tx = WriteTx::begin_lazy_on(db, Locks::default(), conn).await?;
    let delta = known.as_deref().map(|m| prefetch.without(m));
    let first = delta.as_ref().unwrap_or(&prefetch);
    let link = tx.link();
    let mut sql = link.sql();
    first.sqlite(&mut sql)?;
    let (rows, _) = link.run(sql).await?;
    let fresh = prefetched_sqlite(first, &rows)?;
    let mirror = match known {
        Some(mut m) if link.carried && m.stamp == fresh.stamp => {
            m.absorb(*fresh);
            m
        }
        Some(_) => {
            tracing::debug!(
                "planned batch: the database changed since the last one; reading it all"
            );
            let mut sql = link.sql();
            prefetch.sqlite(&mut sql)?;
            let (rows, _) = link.run(sql).await?;
            prefetched_sqlite(&prefetch, &rows)?
        }
        None => fresh,
    };
    tx.mirror = Some(mirror);
    Ok(tx)
}

/// A planned batch's mirror must say what the database says (checked in tests).
pub(super) fn mirror_agrees<T: PartialEq + std::fmt::Debug>(
    what: &str,
    asked: &impl std::fmt::Debug,
    mirror: &T,
    database: &T,
) -> Result<(), StoreError> {
    if mirror == database {
        return Ok(());
    }
    let detail = format!("{asked:?}: the mirror says {mirror:?}, the database {database:?}");
    tracing::error!(what, %detail, "a planned batch's mirror disagrees with the database");
    Err(corrupt(&format!("mirror {what}"), &detail))
}

/// One crossing read of a prefetch: a book's side (or the side opposite an order's, on its
/// book), up to `limit` orders at `worst` or better.
#[derive(Debug, Clone, PartialEq)]
struct CrossingRead {
    book: Option<i64>,
    order: Option<i64>,
    side: &'static str,
    worst: i64,
    limit: i64,
}

/// Everything a planned batch reads first, from the loads of its orders: the accounts, books
/// and orders they name (sorted, once each), their crossing reads (those on the same side of
/// the same book merged into one, as deep as the deepest and as far as the widest price of
/// them) and how many new orders need ids.
#[derive(Debug, PartialEq)]
struct Prefetch {
    game_id: i64,
    accounts: Vec<i64>,
    books: Vec<i64>,
    orders: Vec<i64>,
    reads: Vec<CrossingRead>,
    new_orders: usize,
}

impl Prefetch {
    fn of(game_id: i64, plan: &[LoadSpec]) -> Prefetch {
        let mut accounts = Vec::new();
        let mut books = Vec::new();
        let mut orders = Vec::new();
        let mut merged: std::collections::BTreeMap<(i64, &'static str), (i64, i64)> =
            Default::default();
        // Crossing reads that name an order, not a book.
        let mut by_order: Vec<CrossingRead> = Vec::new();
        let mut new_orders = 0;
        for spec in plan {
            accounts.extend(spec.lock_account);
            accounts.extend(spec.view_account);
            books.extend(spec.instrument_id);
            orders.extend(spec.order_id);
            new_orders += usize::from(spec.new_order);
            match (spec.crossing, spec.order_crossing, spec.instrument_id) {
                (Some(c), _, Some(book)) => {
                    let slot = merged
                        .entry((book, c.side.as_str()))
                        .or_insert((c.worst, c.limit));
                    slot.0 = match c.side {
                        // Asks cross up to the highest worst price, bids down to the lowest.
                        Side::Sell => slot.0.max(c.worst),
                        Side::Buy => slot.0.min(c.worst),
                    };
                    slot.1 = slot.1.max(c.limit);
                }
                (Some(c), _, None) => by_order.push(CrossingRead {
                    book: None,
                    order: spec.order_id,
                    side: c.side.as_str(),
                    worst: c.worst,
                    limit: c.limit,
                }),
                (None, Some((worst, limit)), _) => by_order.push(CrossingRead {
                    book: spec.instrument_id,
                    order: spec.order_id,
                    side: "opposite",
                    worst,
                    limit,
                }),
                (None, None, _) => {}
            }
        }
        for list in [&mut accounts, &mut books, &mut orders] {
            list.sort_unstable();
            list.dedup();
        }
        let mut reads: Vec<CrossingRead> = merged
            .into_iter()
            .map(|((book, side), (worst, limit))| CrossingRead {
                book: Some(book),
                order: None,
                side,
                worst,
                limit,
            })
            .collect();
        reads.extend(by_order);
        Prefetch {
            game_id,
            accounts,
            books,
            orders,
            reads,
            new_orders,
        }
    }

    /// What is left to read on top of `known`, a mirror carried from the last batch: the
    /// accounts, books and orders it does not know, and the crossing reads it cannot answer
    /// (one that names an order it knows becomes a read of that order's book side).
    fn without(&self, known: &Mirror) -> Prefetch {
        let mut books: Vec<i64> = self
            .books
            .iter()
            .copied()
            .filter(|&b| !known.knows_book(b))
            .collect();
        let mut orders = Vec::new();
        for &id in &self.orders {
            match known.order(id) {
                Some(o) if !known.knows_book(o.instrument_id) => books.push(o.instrument_id),
                Some(_) => {}
                None => orders.push(id),
            }
        }
        books.sort_unstable();
        books.dedup();
        let mut reads = Vec::new();
        for r in &self.reads {
            let order = r.order.and_then(|id| known.order(id));
            let side = match r.side {
                "opposite" => order.map(|o| o.side.opposite()),
                name => Side::from_name(name),
            };
            let book = r.book.or(order.map(|o| o.instrument_id));
            match book.zip(side) {
                Some((b, side)) if known.answers(b, side, r.worst, r.limit) => {}
                Some((b, side)) => reads.push(CrossingRead {
                    book: Some(b),
                    order: None,
                    side: side.as_str(),
                    ..r.clone()
                }),
                None => reads.push(r.clone()),
            }
        }
        Prefetch {
            game_id: self.game_id,
            accounts: self
                .accounts
                .iter()
                .copied()
                .filter(|&a| !known.knows_account(a))
                .collect(),
            books,
            orders,
            reads,
            new_orders: self.new_orders,
        }
    }

    /// `SELECT * FROM ex_prefetch_since(...);` (PostgreSQL, migration 0018): all of this
    /// prefetch's locks, and its reads, or only those `known` (the last batch's mirror,
    /// carried) leaves if nobody else has committed since that batch's snapshot.
    fn call_since(&self, known: Option<&Mirror>) -> String {
        // The lists left are read only with a snapshot to ask about; without one, NULLs.
        let (since, left) = match known.map(|m| (m, m.stamp.as_ref())) {
            // A snapshot's text is digits and colons (`xmin:xmax:xip,...`).
            Some((m, Some(Stamp::Snapshot { snapshot, xid })))
                if snapshot
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b':' || b == b',') =>
            {
                (format!("'{snapshot}', {xid}"), self.without(m).lists())
            }
            _ => ("NULL, NULL".to_string(), ["NULL"; 8].join(", ")),
        };
        format!(
            "SELECT * FROM ex_prefetch_since({since}, {}, {}, {left}, {});",
            self.game_id,
            self.lists(),
            self.new_orders,
        )
    }

    /// The accounts, books, orders and the five arrays of the crossing reads, as literals.
    fn lists(&self) -> String {
        let ints = |v: &[i64]| int_array(v.iter().map(|&x| Some(x)));
        let reads = &self.reads;
        [
            ints(&self.accounts),
            ints(&self.books),
            ints(&self.orders),
            int_array(reads.iter().map(|r| r.book)),
            int_array(reads.iter().map(|r| r.order)),
            text_array(reads.iter().map(|r| r.side)),
            int_array(reads.iter().map(|r| Some(r.worst))),
            int_array(reads.iter().map(|r| Some(r.limit))),
        ]
        .join(", ")
    }

    /// The same reads on SQLite, where the write lock is already held: one statement giving
    /// one row, each column a JSON list of rows of one kind of `ex_prefetch` (as in
    /// [`load_script`]), with the ids as the last order's and the last trade's. Lists are
    /// bound as JSON texts and the crossing reads fill slots whose number is rounded up to a
    /// power of two (unused ones read nothing), so the text takes a handful of shapes and
    /// stays prepared.
    fn sqlite(&self, sql: &mut Sql) -> Result<(), StoreError> {
        // Each list serialised once; bound wherever it is read.
        let (book_ids, order_ids, account_ids) = (
            json_list(&self.books)?,
            json_list(&self.orders)?,
            json_list(&self.accounts)?,
        );
        let list = |sql: &mut Sql, json: &str| {
            format!("(SELECT value FROM json_each({}))", sql.text_value(json))
        };
        let game = sql.int(self.game_id);
        let mut cols = vec![json_rows(
            "game",
            "g.id, g.starting_cash, g.initial_margin_bp, g.maint_long_bp, g.maint_short_bp, \
             g.borrow_fee_bp_day, g.fee_bp, g.collar_bp, \
             (SELECT a.id FROM ex_accounts a WHERE a.game_id = g.id AND a.is_house = 1), NULL",
            "g.name, g.status, g.stp_default",
            &format!("FROM ex_games g WHERE g.id = {game}"),
            "",
        )];
        let (books, orders) = (list(sql, &book_ids), list(sql, &order_ids));
        cols.push(json_rows(
            "books",
            "i.id, i.game_id, i.tick, i.shares_issued, i.last_price, i.next_priority",
            "i.symbol, i.name, i.profile",
            &format!(
                "FROM ex_instruments i WHERE i.id IN {books} \
                 OR i.id IN (SELECT instrument_id FROM ex_orders WHERE id IN {orders})"
            ),
            "",
        ));
        let accounts = list(sql, &account_ids);
        cols.push(json_rows(
            "accounts",
            "cash, id",
            "",
            &format!("FROM ex_accounts WHERE id IN {accounts}"),
            "",
        ));
        let accounts = list(sql, &account_ids);
        cols.push(json_rows(
            "holdings",
            "p.instrument_id, p.qty, i.last_price, p.account_id",
            "",
            &format!(
                "FROM ex_positions p JOIN ex_instruments i ON i.id = p.instrument_id \
                 WHERE p.account_id IN {accounts} AND p.qty <> 0"
            ),
            "",
        ));
        let accounts = list(sql, &account_ids);
        cols.push(json_rows(
            "open_orders",
            "instrument_id, q, v, account_id",
            "intent",
            &format!(
                "FROM (SELECT o.account_id, o.instrument_id, SUM(o.qty - o.filled) AS q, \
                     SUM((o.qty - o.filled) * COALESCE(o.price, 0)) AS v, o.intent \
                 FROM ex_orders o WHERE o.account_id IN {accounts} AND o.status = 'open' \
                 GROUP BY o.account_id, o.instrument_id, o.intent)"
            ),
            "",
        ));
        let orders = list(sql, &order_ids);
        cols.push(json_rows(
            "orders",
            ORDER_NUMBERS,
            ORDER_WORDS,
            &format!("FROM ex_orders o WHERE o.id IN {orders}"),
            "",
        ));
        cols.push("(SELECT COALESCE(MAX(id), 0) FROM ex_orders) AS last_order".into());
        cols.push("(SELECT COALESCE(MAX(id), 0) FROM ex_trades) AS last_trade".into());
        cols.push("(SELECT data_version FROM pragma_data_version()) AS data_version".into());
        for slot in 0..prefetch_slots(self.reads.len()) {
            let (book, order, side, worst, limit) = match self.reads.get(slot) {
                Some(r) => (r.book, r.order, Some(r.side), r.worst, r.limit),
                None => (None, None, None, 0, 0),
            };
            let request = format!(", {}", slot + 1);
            cols.extend(crossing_columns(
                sql,
                CrossingSql {
                    name: &format!("c{slot}"),
                    book,
                    order,
                    side,
                    worst,
                    limit,
                    extra: &request,
                    words: "intent",
                },
            ));
        }
        sql.push(&format!("SELECT {};", cols.join(", ")));
        Ok(())
    }

    /// The kind and fields of every row the statement of [`Prefetch::sqlite`] gave, in the
    /// order [`Mirror::from_rows`] takes them (with the new orders' ids, after the last
    /// order's), the last trade's id and the connection's `data_version`.
    fn sqlite_rows(&self, row: &AnyRow) -> Result<SqliteRows, StoreError> {
        let mut rows = Vec::new();
        let list = |col: &str| -> Result<Vec<JsonFields>, StoreError> {
            let text: Option<String> = row.try_get(col)?;
            match text {
                Some(t) => serde_json::from_str(&t).map_err(|e| corrupt(col, &e.to_string())),
                None => Ok(Vec::new()),
            }
        };
        for (col, kind) in [
            ("game", 0),
            ("books", 1),
            ("accounts", 2),
            ("holdings", 3),
            ("open_orders", 4),
        ] {
            rows.extend(list(col)?.into_iter().map(|f| (kind, f)));
        }
        // Each crossing read's book and side, where it names an order: that order's.
        let orders = list("orders")?;
        let mut named: std::collections::HashMap<i64, (i64, String)> = Default::default();
        for f in &orders {
            named.insert(f.num(1)?, (f.num(2)?, f.word(1)?));
        }
        rows.extend(orders.into_iter().map(|f| (5, f)));
        for slot in 0..prefetch_slots(self.reads.len()) {
            for this in ["sell", "buy"] {
                rows.extend(
                    list(&format!("c{slot}{this}s"))?
                        .into_iter()
                        .map(|f| (6, f)),
                );
            }
        }
        for (i, r) in self.reads.iter().enumerate() {
            let of_order = r.order.and_then(|id| named.get(&id));
            let book = r.book.or(of_order.map(|o| o.0));
            let side = match r.side {
                "opposite" => of_order.map(|o| if o.1 == "buy" { "sell" } else { "buy" }),
                named => Some(named),
            };
            rows.push((
                7,
                JsonFields(
                    vec![Some(i as i64 + 1), book, Some(r.worst), Some(r.limit)],
                    vec![side.map(str::to_string)],
                ),
            ));
        }
        let last_order: i64 = row.try_get("last_order")?;
        let last_trade: i64 = row.try_get("last_trade")?;
        for k in 1..=self.new_orders {
            rows.push((8, JsonFields(vec![Some(last_order + k as i64)], Vec::new())));
        }
        Ok(SqliteRows {
            rows,
            last_trade,
            data_version: row.try_get("data_version")?,
        })
    }
}

/// What the statement of [`Prefetch::sqlite`] gave (see [`Prefetch::sqlite_rows`]).
struct SqliteRows {
    rows: Vec<(i64, JsonFields)>,
    last_trade: i64,
    data_version: i64,
}

/// The crossing-read slots of a SQLite prefetch for `reads` reads.
fn prefetch_slots(reads: usize) -> usize {
    reads.max(1).next_power_of_two()
}

/// What the last planned batch left ([`super::tx::Carried`]), if it was for `game_id`.
fn carried_for(db: &Db, game_id: i64) -> Option<super::tx::Carried> {
    db.writers()
        .take_carried()
        .filter(|c| c.mirror.game_id() == game_id)
}

/// A planned batch's picture of what it locked, from the rows of its `ex_prefetch_since`
/// (rows of one column are the trip's other statements'): `known`, the last batch's, with
/// the rows it did not know, if nobody else has written since; else the rows alone.
fn prefetched(
    game_id: i64,
    known: Option<Box<Mirror>>,
    rows: &[AnyRow],
) -> Result<Box<Mirror>, StoreError> {
    let mut kinds = Vec::with_capacity(rows.len());
    let mut since = None;
    let mut quiet = false;
    for row in rows.iter().filter(|r| r.columns().len() > 1) {
        match row.try_get::<i64, _>("k")? {
            9 => {
                quiet = row.num(1)? == 1;
                since = Some(Stamp::Snapshot {
                    snapshot: row.word(1)?,
                    xid: row.num(2)?,
                });
            }
            k => kinds.push((k, row)),
        }
    }
    let mut fresh = Mirror::from_rows(game_id, kinds)?;
    fresh.stamp = Some(since.ok_or_else(|| corrupt("prefetch", "no snapshot row"))?);
    Ok(match known {
        Some(mut m) if quiet => {
            m.absorb(fresh);
            m
        }
        _ => Box::new(fresh),
    })
}

/// The same from the row of a SQLite prefetch (the last row of the trip).
fn prefetched_sqlite(prefetch: &Prefetch, rows: &[AnyRow]) -> Result<Box<Mirror>, StoreError> {
    let row = rows
        .iter()
        .rev()
        .find(|r| r.columns().len() > 1)
        .ok_or_else(|| corrupt("prefetch", "no row"))?;
    let read = prefetch.sqlite_rows(row)?;
    let mut mirror = Mirror::from_rows(prefetch.game_id, read.rows.iter().map(|(k, f)| (*k, f)))?;
    mirror.last_trade = Some(read.last_trade);
    mirror.stamp = Some(Stamp::DataVersion(read.data_version));
    Ok(Box::new(mirror))
}

/// `SELECT * FROM ex_load(...);` for PostgreSQL.
fn ex_load_call(spec: &LoadSpec) -> String {
    let (side, worst, limit) = match (spec.crossing, spec.order_crossing) {
        (Some(c), _) => (format!("'{}'", c.side.as_str()), c.worst, c.limit),
        (None, Some((worst, limit))) => ("'opposite'".to_string(), worst, limit),
        (None, None) => ("NULL".to_string(), 0, 0),
    };
    format!(
        "SELECT * FROM ex_load({}, {}, {}, {}, {}, {}, {side}, {worst}, {limit});",
        spec.game_id,
        literal(spec.instrument_id),
        literal(spec.lock_account),
        literal(spec.view_account),
        literal(spec.order_id),
        if spec.new_order { "TRUE" } else { "FALSE" },
    )
}

/// The reads of [`ex_load_call`] for SQLite, as one statement appended to `sql`, whose text is
/// the same for every spec. It returns one row: each column, named after a kind of load row,
/// holds a JSON list of such rows, each `[[n1, n2, ...], [t1, ...]]` as in `ex_load`'s
/// columns. One row because with sqlx every row crossing from its SQLite thread costs more
/// than SQLite's work on it (a profile of the order writer: copying values and converting
/// rows and their columns, row by row). The next ids are the next free rowids (the write lock
/// is held): `n10` of the game row is the next order's, `n7` of the book row the last trade's.
fn load_script(sql: &mut Sql, spec: &LoadSpec) {
    let (side, worst, limit) = match (spec.crossing, spec.order_crossing) {
        (Some(c), _) => (Some(c.side.as_str()), c.worst, c.limit),
        (None, Some((worst, limit))) => (Some("opposite"), worst, limit),
        (None, None) => (None, 0, 0),
    };
    let (new, game) = (sql.int(i64::from(spec.new_order)), sql.int(spec.game_id));
    let mut cols = vec![json_rows(
        "game",
        &format!(
            "g.id, g.starting_cash, g.initial_margin_bp, g.maint_long_bp, g.maint_short_bp, \
             g.borrow_fee_bp_day, g.fee_bp, g.collar_bp, \
             (SELECT a.id FROM ex_accounts a WHERE a.game_id = g.id AND a.is_house = 1), \
             CASE WHEN {new} THEN (SELECT COALESCE(MAX(id), 0) + 1 FROM ex_orders) END"
        ),
        "g.name, g.status, g.stp_default",
        &format!("FROM ex_games g WHERE g.id = {game}"),
        "",
    )];
    let b = book_of(sql, spec.instrument_id, spec.order_id);
    cols.push(json_rows(
        "book",
        "i.id, i.game_id, i.tick, i.shares_issued, i.last_price, i.next_priority, \
         (SELECT COALESCE(MAX(id), 0) FROM ex_trades)",
        "i.symbol, i.name, i.profile",
        &format!("FROM ex_instruments i WHERE i.id = {b}"),
        "",
    ));
    let a = sql.opt(spec.view_account);
    cols.push(json_rows(
        "cash",
        "cash",
        "",
        &format!("FROM ex_accounts WHERE id = {a}"),
        "",
    ));
    let a = sql.opt(spec.view_account);
    cols.push(json_rows(
        "holdings",
        "p.instrument_id, p.qty, i.last_price",
        "",
        &format!(
            "FROM ex_positions p JOIN ex_instruments i ON i.id = p.instrument_id \
             WHERE p.account_id = {a} AND p.qty <> 0"
        ),
        "",
    ));
    let a = sql.opt(spec.view_account);
    cols.push(json_rows(
        "open_orders",
        "instrument_id, q, v",
        "intent",
        &format!(
            "FROM (SELECT o.instrument_id, SUM(o.qty - o.filled) AS q, \
                 SUM((o.qty - o.filled) * COALESCE(o.price, 0)) AS v, o.intent \
             FROM ex_orders o WHERE o.account_id = {a} AND o.status = 'open' \
             GROUP BY o.instrument_id, o.intent)"
        ),
        "",
    ));
    let o = sql.opt(spec.order_id);
    cols.push(json_rows(
        "ord",
        ORDER_NUMBERS,
        ORDER_WORDS,
        &format!("FROM ex_orders o WHERE o.id = {o}"),
        "",
    ));
    cols.extend(crossing_columns(
        sql,
        CrossingSql {
            name: "",
            book: spec.instrument_id,
            order: spec.order_id,
            side,
            worst,
            limit,
            extra: "",
            words: "",
        },
    ));
    sql.push(&format!("SELECT {};", cols.join(", ")));
}

/// The values of an order row (`o`) in a load row of kind 5: numbers, then words.
const ORDER_NUMBERS: &str =
    "o.id, o.instrument_id, o.account_id, o.price, o.qty, o.filled, o.priority, o.created_at";
const ORDER_WORDS: &str = "o.side, o.intent, o.tif, o.status";

/// A column of load rows of kind `name` (SQLite): `n` and `t` are their values, `rest` the
/// query, `order` the list's order (the aggregate's own ORDER BY) if it matters.
fn json_rows(name: &str, n: &str, t: &str, rest: &str, order: &str) -> String {
    format!(
        "(SELECT json_group_array(json_array(json_array({n}), json_array({t})){order}) \
         {rest}) AS {name}"
    )
}

/// The book `book`, or the book of the order `order` (SQLite).
fn book_of(sql: &mut Sql, book: Option<i64>, order: Option<i64>) -> String {
    let (b, o) = (sql.opt(book), sql.opt(order));
    format!("COALESCE({b}, (SELECT instrument_id FROM ex_orders WHERE id = {o}))")
}

/// One crossing read for SQLite: up to `limit` open orders at `worst` or better on `side`
/// (`buy`, `sell`, or `opposite` the side of `order`) of `book` (or of `order`'s book), each
/// row's numbers followed by `extra`.
struct CrossingSql<'a> {
    name: &'a str,
    book: Option<i64>,
    order: Option<i64>,
    side: Option<&'a str>,
    worst: i64,
    limit: i64,
    /// More numbers and the words of each row.
    extra: &'a str,
    words: &'a str,
}

/// The two columns of a crossing read, `{name}sells` and `{name}buys`: one query per side, so
/// each walks the book's partial index in its own direction and stops at the limit; the other
/// side's stops at its constant test before reading anything (as does every query of a read
/// with no side).
fn crossing_columns(sql: &mut Sql, c: CrossingSql) -> [String; 2] {
    [
        ("sell", "<=", "price ASC, priority ASC"),
        ("buy", ">=", "price DESC, priority ASC"),
    ]
    .map(|(this, cmp, order)| {
        let (s1, o, s2) = (sql.opt_text(c.side), sql.opt(c.order), sql.opt_text(c.side));
        let wanted = format!(
            "CASE WHEN {s1} = 'opposite' THEN (SELECT CASE side WHEN 'buy' THEN 'sell' \
             ELSE 'buy' END FROM ex_orders WHERE id = {o}) ELSE {s2} END"
        );
        let b = book_of(sql, c.book, c.order);
        let (w, l) = (sql.int(c.worst), sql.int(c.limit));
        json_rows(
            &format!("{}{this}s", c.name),
            &format!("id, account_id, price, priority, open_qty{}", c.extra),
            c.words,
            &format!(
                "FROM (SELECT o.id, o.account_id, o.price, o.priority, \
                     o.qty - o.filled AS open_qty, o.intent \
                 FROM ex_orders o WHERE ({wanted}) = '{this}' AND o.instrument_id = {b} \
                 AND o.side = '{this}' AND o.status = 'open' AND o.price {cmp} {w} \
                 ORDER BY {order} LIMIT {l})"
            ),
            &format!(" ORDER BY {order}"),
        )
    })
}

/// The values of one load row: `n(1)..n(10)` and `t(1)..t(4)` as in `ex_load`'s columns.
pub(super) trait Fields {
    fn n(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn t(&self, i: usize) -> Result<Option<String>, StoreError>;

    fn num(&self, i: usize) -> Result<i64, StoreError> {
        self.n(i)?.ok_or_else(|| corrupt(&format!("n{i}"), "NULL"))
    }

    fn word(&self, i: usize) -> Result<String, StoreError> {
        self.t(i)?.ok_or_else(|| corrupt(&format!("t{i}"), "NULL"))
    }
}

const N_COLUMNS: [&str; 10] = ["n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10"];
const T_COLUMNS: [&str; 4] = ["t1", "t2", "t3", "t4"];

/// A row of `ex_load` (PostgreSQL).
impl Fields for AnyRow {
    fn n(&self, i: usize) -> Result<Option<i64>, StoreError> {
        let col = N_COLUMNS
            .get(i - 1)
            .ok_or_else(|| corrupt("load column", "n"))?;
        Ok(self.try_get(*col)?)
    }

    fn t(&self, i: usize) -> Result<Option<String>, StoreError> {
        let col = T_COLUMNS
            .get(i - 1)
            .ok_or_else(|| corrupt("load column", "t"))?;
        Ok(self.try_get(*col)?)
    }
}

/// A row of [`load_script`]'s lists (SQLite): `[[n1, ...], [t1, ...]]`.
#[derive(serde::Deserialize)]
struct JsonFields(Vec<Option<i64>>, Vec<Option<String>>);

impl Fields for JsonFields {
    fn n(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.0.get(i - 1).copied().flatten())
    }

    fn t(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.1.get(i - 1).cloned().flatten())
    }
}

/// What the row of [`load_script`] says.
fn parse_sqlite_row(row: &AnyRow) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    let mut view = AccountView::default();
    let columns = [
        ("game", 0),
        ("book", 1),
        ("cash", 2),
        ("holdings", 3),
        ("open_orders", 4),
        ("ord", 5),
        ("sells", 6),
        ("buys", 6),
    ];
    for (col, kind) in columns {
        let text: Option<String> = row.try_get(col)?;
        let list: Vec<JsonFields> = match text {
            Some(t) => serde_json::from_str(&t).map_err(|e| corrupt(col, &e.to_string()))?,
            None => Vec::new(),
        };
        for fields in &list {
            apply_row(kind, fields, &mut loaded, &mut view)?;
        }
    }
    Ok(finish(loaded, view))
}

/// What the rows of a load say (PostgreSQL).
fn parse_rows(rows: &[AnyRow]) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    let mut view = AccountView::default();
    for row in rows.iter().filter(|r| r.columns().len() > 1) {
        let kind: i64 = row.try_get("k")?;
        apply_row(kind, row, &mut loaded, &mut view)?;
    }
    Ok(finish(loaded, view))
}

/// Adds one load row of kind `kind` to what was read.
pub(super) fn apply_row(
    kind: i64,
    f: &impl Fields,
    loaded: &mut Loaded,
    view: &mut AccountView,
) -> Result<(), StoreError> {
    match kind {
        0 => {
            let status = f.word(2)?;
            let stp = f.word(3)?;
            let game = Game {
                id: f.num(1)?,
                name: f.word(1)?,
                open: status == "open",
                rules: GameRules {
                    starting_cash: f.num(2)?,
                    initial_margin_bp: f.num(3)?,
                    maint_long_bp: f.num(4)?,
                    maint_short_bp: f.num(5)?,
                    borrow_fee_bp_day: f.num(6)?,
                    fee_bp: f.num(7)?,
                    collar_bp: f.num(8)?,
                    stp_default: StpMode::from_name(&stp)
                        .ok_or_else(|| corrupt("stp mode", &stp))?,
                },
            };
            let house = f.n(9)?.ok_or_else(|| corrupt("house account", "missing"))?;
            loaded.game = Some((game, house));
            loaded.hint.next_order = f.n(10)?;
        }
        1 => {
            // PostgreSQL hands out trade ids in `ex_write`: no last trade there.
            loaded.hint.trade_base = f.n(7)?.unwrap_or(0);
            loaded.book = Some(BookState {
                instrument: Instrument {
                    id: f.num(1)?,
                    game_id: f.num(2)?,
                    symbol: f.word(1)?,
                    name: f.word(2)?,
                    profile: f.word(3)?,
                    tick: f.num(3)?,
                    shares_issued: f.num(4)?,
                    last_price: f.num(5)?,
                },
                next_priority: f.num(6)?,
            });
        }
        2 => view.cash = f.num(1)?,
        3 => view.holdings.push(Holding {
            instrument_id: f.num(1)?,
            qty: f.num(2)?,
            mark: f.num(3)?,
        }),
        4 => {
            let intent = f.word(1)?;
            view.open_orders.push(OpenOrders {
                instrument_id: f.num(1)?,
                intent: Intent::from_name(&intent).ok_or_else(|| corrupt("intent", &intent))?,
                open_qty: f.num(2)?,
                value: f.num(3)?,
            });
        }
        5 => {
            let side = f.word(1)?;
            let intent = f.word(2)?;
            let tif = f.word(3)?;
            let status = f.word(4)?;
            loaded.order = Some(Order {
                id: f.num(1)?,
                instrument_id: f.num(2)?,
                account_id: f.num(3)?,
                side: Side::from_name(&side).ok_or_else(|| corrupt("side", &side))?,
                intent: Intent::from_name(&intent).ok_or_else(|| corrupt("intent", &intent))?,
                tif: TimeInForce::from_name(&tif).ok_or_else(|| corrupt("time in force", &tif))?,
                price: f.n(4)?,
                qty: f.num(5)?,
                filled: f.num(6)?,
                status: OrderStatus::from_name(&status)
                    .ok_or_else(|| corrupt("status", &status))?,
                priority: f.num(7)?,
                created_at: f.num(8)?,
            });
        }
        6 => loaded.resting.push(RestingRow {
            order_id: f.num(1)?,
            account_id: f.num(2)?,
            price: f.num(3)?,
            priority: f.num(4)?,
            open_qty: f.num(5)?,
        }),
        k => return Err(corrupt("load row kind", &k.to_string())),
    }
    Ok(())
}

/// The account view in the engine's order, put into what was read.
fn finish(mut loaded: Loaded, mut view: AccountView) -> Loaded {
    view.holdings.sort_by_key(|h| h.instrument_id);
    view.open_orders
        .sort_by_key(|o| (o.instrument_id, o.intent.as_str()));
    loaded.view = Some(view);
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(account: i64, book: i64, side: Side, worst: i64) -> LoadSpec {
        LoadSpec {
            game_id: 1,
            instrument_id: Some(book),
            lock_account: Some(account),
            view_account: Some(account),
            new_order: true,
            crossing: Some(Crossing {
                side,
                worst,
                limit: 8,
            }),
            ..LoadSpec::default()
        }
    }

    fn replace(account: i64, order: i64) -> LoadSpec {
        LoadSpec {
            game_id: 1,
            lock_account: Some(account),
            view_account: Some(account),
            order_id: Some(order),
            order_crossing: Some((100, 4)),
            ..LoadSpec::default()
        }
    }

    /// One crossing read: book, order, side, worst price and limit.
    type Read = (Option<i64>, Option<i64>, &'static str, i64, i64);

    /// A prefetch's crossing reads.
    fn reads_of(p: &Prefetch) -> Vec<Read> {
        p.reads
            .iter()
            .map(|r| (r.book, r.order, r.side, r.worst, r.limit))
            .collect()
    }

    fn sqlite_text(plan: &[LoadSpec]) -> String {
        let mut sql = Sql::new(Backend::Sqlite);
        Prefetch::of(1, plan).sqlite(&mut sql).unwrap();
        sql.into_parts().unwrap().0
    }

    #[test]
    fn a_prefetch_merges_the_crossing_reads_of_one_book_side() {
        let p = Prefetch::of(
            1,
            &[
                place(5, 2, Side::Sell, 101),
                place(6, 2, Side::Sell, 104),
                place(5, 2, Side::Buy, 97),
                replace(6, 40),
            ],
        );
        assert_eq!(
            (p.accounts.clone(), p.books.clone(), p.orders.clone()),
            (vec![5, 6], vec![2], vec![40])
        );
        assert_eq!(p.new_orders, 3);
        assert_eq!(
            reads_of(&p),
            [
                (Some(2), None, "buy", 97, 8),
                (Some(2), None, "sell", 104, 8),
                (None, Some(40), "opposite", 100, 4),
            ]
        );
    }

    #[test]
    fn a_sqlite_prefetch_takes_one_text_per_power_of_two_of_reads() {
        // Three and four reads fill four slots: the same text whatever the lists hold.
        let three = [
            place(5, 2, Side::Sell, 101),
            place(5, 3, Side::Sell, 101),
            replace(6, 40),
        ];
        let four = [
            place(7, 2, Side::Sell, 101),
            place(8, 3, Side::Buy, 90),
            place(9, 4, Side::Buy, 90),
            replace(6, 41),
        ];
        assert_eq!(sqlite_text(&three), sqlite_text(&four));
        assert_ne!(sqlite_text(&three[..1]), sqlite_text(&three));
        assert_eq!(
            (1..=9).map(prefetch_slots).collect::<Vec<_>>(),
            [1, 2, 4, 4, 8, 8, 8, 8, 16]
        );
        assert_eq!(prefetch_slots(0), 1);
    }

    fn fields(n: &[i64], t: &[&str]) -> JsonFields {
        JsonFields(
            n.iter().map(|&x| Some(x)).collect(),
            t.iter().map(|w| Some(w.to_string())).collect(),
        )
    }

    #[test]
    fn on_a_carried_mirror_a_prefetch_reads_only_what_it_does_not_know() {
        // Known: book 2 and its asks up to 104 (one at 101), account 5 with no holdings, and
        // the open bid 40 of account 6 on book 2.
        let rows = [
            (1, fields(&[2, 1, 5, 1_000, 100, 9], &["AAA", "Aaa", "-"])),
            (2, fields(&[1_000, 5], &[])),
            (
                5,
                fields(&[40, 2, 6, 99, 10, 0, 3, 0], &["buy", "buy", "gtc", "open"]),
            ),
            (6, fields(&[41, 7, 101, 4, 10, 1], &["sell"])),
            (
                7,
                JsonFields(
                    vec![Some(1), Some(2), Some(104), Some(8)],
                    vec![Some("sell".into())],
                ),
            ),
        ];
        let known = Mirror::from_rows(1, rows.iter().map(|(k, f)| (*k, f))).unwrap();
        let plan = [
            place(5, 2, Side::Sell, 104),
            place(6, 3, Side::Sell, 101),
            replace(5, 40),
            replace(6, 77),
        ];
        let p = Prefetch::of(1, &plan).without(&known);
        // Account 6 (never read), book 3 and order 77 are read; the asks of book 2 to 104 are
        // known, and so are the asks to 100 opposite bid 40; order 77's side is not.
        assert_eq!(
            (p.accounts.clone(), p.books.clone(), p.orders.clone()),
            (vec![6], vec![3], vec![77])
        );
        assert_eq!(p.new_orders, 2);
        assert_eq!(
            reads_of(&p),
            [
                (Some(3), None, "sell", 101, 8),
                (None, Some(77), "opposite", 100, 4),
            ]
        );
        // A deeper read of the known side is read again, as a read of that book's side.
        let p = Prefetch::of(1, &[place(5, 2, Side::Sell, 110)]).without(&known);
        assert_eq!(p.reads.len(), 1);
        assert_eq!((p.reads[0].book, p.reads[0].side), (Some(2), "sell"));
        assert!(p.accounts.is_empty() && p.books.is_empty());
    }

    #[test]
    fn a_postgres_prefetch_names_the_last_snapshot_and_only_a_well_formed_one() {
        let plan = [place(5, 2, Side::Sell, 101)];
        let p = Prefetch::of(1, &plan);
        let fresh = p.call_since(None);
        assert!(
            fresh.starts_with("SELECT * FROM ex_prefetch_since(NULL, NULL, 1, '{5}'::int8[]"),
            "{fresh}"
        );
        let mut known = Mirror::from_rows(1, std::iter::empty::<(i64, &JsonFields)>()).unwrap();
        known.stamp = Some(Stamp::Snapshot {
            snapshot: "700:705:701,703".into(),
            xid: 699,
        });
        let since = p.call_since(Some(&known));
        assert!(
            since.starts_with("SELECT * FROM ex_prefetch_since('700:705:701,703', 699, 1,"),
            "{since}"
        );
        known.stamp = Some(Stamp::Snapshot {
            snapshot: "1:2:'); DROP TABLE x; --".into(),
            xid: 699,
        });
        assert!(p
            .call_since(Some(&known))
            .contains("ex_prefetch_since(NULL, NULL,"));
    }
}
