//! The start of a book's write transaction: take its locks and read everything the engine
//! needs to decide (the game, the book, the account's buying power, the order being changed,
//! the first crossing orders) before anything is written.
//!
//! PostgreSQL: one round trip, `BEGIN; SELECT * FROM ex_load(...)`, where the function
//! (migration 0009) takes the advisory locks and runs the reads with plans cached per
//! connection. SQLite: the writer gate and `BEGIN IMMEDIATE`, then the reads one by one (they
//! run in the process, so round trips cost little there).
//!
//! Arguments are inlined as literals: integers formatted here and the fixed side names.

use sqlx::any::AnyRow;
use sqlx::Row;

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
#[derive(Debug, Clone, Default)]
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

fn lit(v: Option<i64>) -> String {
    v.map_or_else(|| "NULL".to_string(), |v| v.to_string())
}

fn num(row: &AnyRow, col: &str) -> Result<i64, StoreError> {
    let v: Option<i64> = row.try_get(col)?;
    v.ok_or_else(|| corrupt(col, "NULL"))
}

fn word(row: &AnyRow, col: &str) -> Result<String, StoreError> {
    let v: Option<String> = row.try_get(col)?;
    v.ok_or_else(|| corrupt(col, "NULL"))
}

impl WriteTx {
    /// Begins a write transaction on a book, takes its locks and reads what `spec` asks for.
    /// If this first round trip finds its connection dead (dropped by the server since the
    /// pool checked it), it is tried again on another: nothing was written yet, and the dead
    /// one is closed, not pooled.
    pub async fn load(db: &Db, spec: &LoadSpec) -> Result<(WriteTx, Loaded), StoreError> {
        let tries = db.pool().options().get_max_connections() + 1;
        let mut attempt = 1;
        loop {
            match WriteTx::load_once(db, spec).await {
                Err(e) if e.connection_lost() && attempt < tries => {
                    tracing::debug!(error = %e, attempt, "connection lost before the first statement; retrying");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn load_once(db: &Db, spec: &LoadSpec) -> Result<(WriteTx, Loaded), StoreError> {
        match db.backend() {
            Backend::Postgres => {
                let mut tx = WriteTx::begin_lazy(db, Locks::default()).await?;
                let loaded = tx.load_pg(spec).await?;
                Ok((tx, loaded))
            }
            Backend::Sqlite => {
                let mut tx = WriteTx::begin_lazy(db, Locks::default()).await?;
                let loaded = tx.load_sqlite(spec).await?;
                Ok((tx, loaded))
            }
        }
    }

    /// Locks and reads what `spec` asks for inside a transaction begun with
    /// [`WriteTx::begin_batch`]; on PostgreSQL in one round trip with the previous write.
    pub async fn load_next(&mut self, spec: &LoadSpec) -> Result<Loaded, StoreError> {
        match self.backend {
            Backend::Postgres => self.load_pg(spec).await,
            Backend::Sqlite => self.load_sqlite(spec).await,
        }
    }

    async fn load_pg(&mut self, spec: &LoadSpec) -> Result<Loaded, StoreError> {
        let (side, worst, limit) = match (spec.crossing, spec.order_crossing) {
            (Some(c), _) => (format!("'{}'", c.side.as_str()), c.worst, c.limit),
            (None, Some((worst, limit))) => ("'opposite'".to_string(), worst, limit),
            (None, None) => ("NULL".to_string(), 0, 0),
        };
        let call = format!(
            "SELECT * FROM ex_load({}, {}, {}, {}, {}, {}, {side}, {worst}, {limit});",
            spec.game_id,
            lit(spec.instrument_id),
            lit(spec.lock_account),
            lit(spec.view_account),
            lit(spec.order_id),
            if spec.new_order { "TRUE" } else { "FALSE" },
        );
        let pg = self
            .pg()
            .ok_or_else(|| corrupt("backend", "not PostgreSQL"))?;
        let sql = format!("{}{call}", pg.take_pending());
        let rows = sqlx::Executor::fetch_all(pg.raw(), sqlx::raw_sql(&sql)).await?;
        if let Some(ids) = pg.written_ids(&rows)? {
            self.written.push(ids);
        }
        let mut loaded = Loaded::default();
        let mut view = AccountView::default();
        for row in rows.iter().filter(|r| r.columns().len() > 1) {
            match num(row, "k")? {
                0 => {
                    let status = word(row, "t2")?;
                    let stp = word(row, "t3")?;
                    let game = Game {
                        id: num(row, "n1")?,
                        name: word(row, "t1")?,
                        open: status == "open",
                        rules: GameRules {
                            starting_cash: num(row, "n2")?,
                            initial_margin_bp: num(row, "n3")?,
                            maint_long_bp: num(row, "n4")?,
                            maint_short_bp: num(row, "n5")?,
                            borrow_fee_bp_day: num(row, "n6")?,
                            fee_bp: num(row, "n7")?,
                            collar_bp: num(row, "n8")?,
                            stp_default: StpMode::from_name(&stp)
                                .ok_or_else(|| corrupt("stp mode", &stp))?,
                        },
                    };
                    let house: Option<i64> = row.try_get("n9")?;
                    let house = house.ok_or_else(|| corrupt("house account", "missing"))?;
                    loaded.game = Some((game, house));
                    loaded.hint.next_order = row.try_get("n10")?;
                }
                1 => {
                    loaded.book = Some(BookState {
                        instrument: Instrument {
                            id: num(row, "n1")?,
                            game_id: num(row, "n2")?,
                            symbol: word(row, "t1")?,
                            name: word(row, "t2")?,
                            profile: word(row, "t3")?,
                            tick: num(row, "n3")?,
                            shares_issued: num(row, "n4")?,
                            last_price: num(row, "n5")?,
                        },
                        next_priority: num(row, "n6")?,
                    });
                }
                2 => view.cash = num(row, "n1")?,
                3 => view.holdings.push(Holding {
                    instrument_id: num(row, "n1")?,
                    qty: num(row, "n2")?,
                    mark: num(row, "n3")?,
                }),
                4 => {
                    let intent = word(row, "t1")?;
                    view.open_orders.push(OpenOrders {
                        instrument_id: num(row, "n1")?,
                        intent: Intent::from_name(&intent)
                            .ok_or_else(|| corrupt("intent", &intent))?,
                        open_qty: num(row, "n2")?,
                        value: num(row, "n3")?,
                    });
                }
                5 => {
                    let side = word(row, "t1")?;
                    let intent = word(row, "t2")?;
                    let tif = word(row, "t3")?;
                    let status = word(row, "t4")?;
                    loaded.order = Some(Order {
                        id: num(row, "n1")?,
                        instrument_id: num(row, "n2")?,
                        account_id: num(row, "n3")?,
                        side: Side::from_name(&side).ok_or_else(|| corrupt("side", &side))?,
                        intent: Intent::from_name(&intent)
                            .ok_or_else(|| corrupt("intent", &intent))?,
                        tif: TimeInForce::from_name(&tif)
                            .ok_or_else(|| corrupt("time in force", &tif))?,
                        price: row.try_get("n4")?,
                        qty: num(row, "n5")?,
                        filled: num(row, "n6")?,
                        status: OrderStatus::from_name(&status)
                            .ok_or_else(|| corrupt("status", &status))?,
                        priority: num(row, "n7")?,
                        created_at: num(row, "n8")?,
                    });
                }
                6 => loaded.resting.push(RestingRow {
                    order_id: num(row, "n1")?,
                    account_id: num(row, "n2")?,
                    price: num(row, "n3")?,
                    priority: num(row, "n4")?,
                    open_qty: num(row, "n5")?,
                }),
                k => return Err(corrupt("load row kind", &k.to_string())),
            }
        }
        if spec.view_account.is_some() {
            view.holdings.sort_by_key(|h| h.instrument_id);
            view.open_orders
                .sort_by_key(|o| (o.instrument_id, o.intent.as_str()));
            loaded.view = Some(view);
        }
        Ok(loaded)
    }

    async fn load_sqlite(&mut self, spec: &LoadSpec) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        if let Some(id) = spec.order_id {
            loaded.order = self.order(id).await?;
        }
        let instrument = spec
            .instrument_id
            .or(loaded.order.as_ref().map(|o| o.instrument_id));
        let both = match instrument {
            Some(i) => self.game_and_book(spec.game_id, i).await?,
            None => None,
        };
        match both {
            Some((game, house, book, hint)) => {
                loaded.game = Some((game, house));
                loaded.book = Some(book);
                loaded.hint = hint;
            }
            None => {
                // The book is missing or in another game; tell the caller which.
                loaded.game = self.game(spec.game_id).await?;
                if let Some(i) = instrument {
                    loaded.book = self.book(i).await?;
                }
            }
        }
        if !spec.new_order {
            loaded.hint.next_order = None;
        }
        if let Some(account) = spec.view_account {
            loaded.view = Some(self.account_view(account).await?);
        }
        let crossing = spec.crossing.or_else(|| {
            let (worst, limit) = spec.order_crossing?;
            let side = loaded.order.as_ref()?.side.opposite();
            Some(Crossing { side, worst, limit })
        });
        if let (Some(c), Some(i)) = (crossing, instrument) {
            loaded.resting = self.resting(i, c.side, c.worst, None, c.limit).await?;
        }
        Ok(loaded)
    }
}
