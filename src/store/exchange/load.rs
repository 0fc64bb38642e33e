//! The start of a book's write transaction: take its locks and read everything the engine
//! needs to decide (the game, the book, the account's buying power, the order being changed,
//! the first crossing orders) before anything is written.
//!
//! One trip on both engines, with `BEGIN` (or a batch's previous write) in front. PostgreSQL:
//! `SELECT * FROM ex_load(...)`, where the function (migration 0009) takes the advisory locks
//! and runs the reads with plans cached per connection; its arguments are inlined as literals
//! (integers formatted here and the fixed side names). SQLite: the writer gate was entered
//! and `BEGIN IMMEDIATE` takes the file's write lock; then the same reads as statements of one
//! text with bound arguments, which sqlx keeps prepared (`load_script`). Both give rows of
//! one shape, `(k, n1..n10, t1..t4)`, where `k` says what the row is.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::sql::Sql;
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
    /// If this first trip finds its connection dead (dropped by the server since it was last
    /// used), it is tried again on another: nothing was written yet.
    pub async fn load(db: &Db, spec: &LoadSpec) -> Result<(WriteTx, Loaded), StoreError> {
        let mut tx = WriteTx::begin_lazy(db, Locks::default()).await?;
        let loaded = tx.load_next(spec).await?;
        Ok((tx, loaded))
    }

    /// Locks and reads what `spec` asks for inside a transaction begun with
    /// [`WriteTx::begin_batch`], in one trip with the previous write.
    pub async fn load_next(&mut self, spec: &LoadSpec) -> Result<Loaded, StoreError> {
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
        lit(spec.instrument_id),
        lit(spec.lock_account),
        lit(spec.view_account),
        lit(spec.order_id),
        if spec.new_order { "TRUE" } else { "FALSE" },
    )
}

/// The reads of [`ex_load_call`] for SQLite, as one statement appended to `sql`, whose text is
/// the same for every spec. It returns one row whose columns hold JSON arrays, because with
/// sqlx every row crossing from its SQLite thread costs more than SQLite's work on it (a
/// profile of the order writer: copying values and converting rows and their columns, row by
/// row). The next ids are the next free rowids (the write lock is held).
fn load_script(sql: &mut Sql, spec: &LoadSpec) {
    let (side, worst, limit) = match (spec.crossing, spec.order_crossing) {
        (Some(c), _) => (Some(c.side.as_str()), c.worst, c.limit),
        (None, Some((worst, limit))) => (Some("opposite"), worst, limit),
        (None, None) => (None, 0, 0),
    };
    // The book: the one asked for, or the order's.
    let book = |sql: &mut Sql| {
        let (i, o) = (sql.opt(spec.instrument_id), sql.opt(spec.order_id));
        format!("COALESCE({i}, (SELECT instrument_id FROM ex_orders WHERE id = {o}))")
    };
    let (new, game) = (sql.int(i64::from(spec.new_order)), sql.int(spec.game_id));
    let mut cols = vec![format!(
        "(SELECT json_array(g.id, g.starting_cash, g.initial_margin_bp, g.maint_long_bp, \
             g.maint_short_bp, g.borrow_fee_bp_day, g.fee_bp, g.collar_bp, \
             (SELECT a.id FROM ex_accounts a WHERE a.game_id = g.id AND a.is_house = 1), \
             CASE WHEN {new} THEN (SELECT COALESCE(MAX(id), 0) + 1 FROM ex_orders) END, \
             g.name, g.status, g.stp_default) \
         FROM ex_games g WHERE g.id = {game}) AS game"
    )];
    let b = book(sql);
    cols.push(format!(
        "(SELECT json_array(i.id, i.game_id, i.tick, i.shares_issued, i.last_price, \
             i.next_priority, (SELECT COALESCE(MAX(id), 0) FROM ex_trades), i.symbol, i.name, \
             i.profile) \
         FROM ex_instruments i WHERE i.id = {b}) AS book"
    ));
    let a = sql.opt(spec.view_account);
    cols.push(format!(
        "(SELECT cash FROM ex_accounts WHERE id = {a}) AS cash"
    ));
    let a = sql.opt(spec.view_account);
    cols.push(format!(
        "(SELECT json_group_array(json_array(p.instrument_id, p.qty, i.last_price)) \
         FROM ex_positions p JOIN ex_instruments i ON i.id = p.instrument_id \
         WHERE p.account_id = {a} AND p.qty <> 0) AS holdings"
    ));
    let a = sql.opt(spec.view_account);
    cols.push(format!(
        "(SELECT json_group_array(json_array(instrument_id, q, v, intent)) FROM \
             (SELECT o.instrument_id, SUM(o.qty - o.filled) AS q, \
                 SUM((o.qty - o.filled) * COALESCE(o.price, 0)) AS v, o.intent \
              FROM ex_orders o WHERE o.account_id = {a} AND o.status = 'open' \
              GROUP BY o.instrument_id, o.intent)) AS open_orders"
    ));
    let o = sql.opt(spec.order_id);
    cols.push(format!(
        "(SELECT json_array(o.id, o.instrument_id, o.account_id, o.price, o.qty, o.filled, \
             o.priority, o.created_at, o.side, o.intent, o.tif, o.status) \
         FROM ex_orders o WHERE o.id = {o}) AS ord"
    ));
    // One query per side, so each walks the book's partial index in its own direction and
    // stops at the limit; the other side's stops at its constant test before reading anything.
    for (this, cmp, order) in [
        ("sell", "<=", "o.price ASC, o.priority ASC"),
        ("buy", ">=", "o.price DESC, o.priority ASC"),
    ] {
        let (s1, o, s2) = (
            sql.opt_text(side),
            sql.opt(spec.order_id),
            sql.opt_text(side),
        );
        let wanted = format!(
            "CASE WHEN {s1} = 'opposite' THEN (SELECT CASE side WHEN 'buy' THEN 'sell' \
             ELSE 'buy' END FROM ex_orders WHERE id = {o}) ELSE {s2} END"
        );
        let b = book(sql);
        let (w, l) = (sql.int(worst), sql.int(limit));
        cols.push(format!(
            "(SELECT json_group_array(json_array(id, account_id, price, priority, open_qty)) FROM \
                 (SELECT o.id, o.account_id, o.price, o.priority, o.qty - o.filled AS open_qty \
                  FROM ex_orders o WHERE ({wanted}) = '{this}' AND o.instrument_id = {b} \
                  AND o.side = '{this}' AND o.status = 'open' AND o.price {cmp} {w} \
                  ORDER BY {order} LIMIT {l})) AS {this}s"
        ));
    }
    sql.push(&format!("SELECT {};", cols.join(", ")));
}

/// What the row of [`load_script`] says.
fn parse_sqlite_row(row: &AnyRow) -> Result<Loaded, StoreError> {
    fn json<T: serde::de::DeserializeOwned>(
        row: &AnyRow,
        col: &str,
    ) -> Result<Option<T>, StoreError> {
        let text: Option<String> = row.try_get(col)?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(col, &e.to_string())))
            .transpose()
    }
    let mut loaded = Loaded::default();
    type GameRow = (
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        String,
        String,
        String,
    );
    if let Some(g) = json::<GameRow>(row, "game")? {
        let (id, starting_cash, initial_margin_bp, maint_long_bp, maint_short_bp) =
            (g.0, g.1, g.2, g.3, g.4);
        let (borrow_fee_bp_day, fee_bp, collar_bp, house, next_order) = (g.5, g.6, g.7, g.8, g.9);
        let (name, status, stp) = (g.10, g.11, g.12);
        let game = Game {
            id,
            name,
            open: status == "open",
            rules: GameRules {
                starting_cash,
                initial_margin_bp,
                maint_long_bp,
                maint_short_bp,
                borrow_fee_bp_day,
                fee_bp,
                collar_bp,
                stp_default: StpMode::from_name(&stp).ok_or_else(|| corrupt("stp mode", &stp))?,
            },
        };
        let house = house.ok_or_else(|| corrupt("house account", "missing"))?;
        loaded.game = Some((game, house));
        loaded.hint.next_order = next_order;
    }
    type BookRow = (i64, i64, i64, i64, i64, i64, i64, String, String, String);
    if let Some(b) = json::<BookRow>(row, "book")? {
        loaded.hint.trade_base = b.6;
        loaded.book = Some(BookState {
            instrument: Instrument {
                id: b.0,
                game_id: b.1,
                tick: b.2,
                shares_issued: b.3,
                last_price: b.4,
                symbol: b.7,
                name: b.8,
                profile: b.9,
            },
            next_priority: b.5,
        });
    }
    let cash: Option<i64> = row.try_get("cash")?;
    let holdings: Vec<(i64, i64, i64)> = json(row, "holdings")?.unwrap_or_default();
    let open: Vec<(i64, i64, i64, String)> = json(row, "open_orders")?.unwrap_or_default();
    let mut view = AccountView {
        cash: cash.unwrap_or(0),
        ..AccountView::default()
    };
    for (instrument_id, qty, mark) in holdings {
        view.holdings.push(Holding {
            instrument_id,
            qty,
            mark,
        });
    }
    for (instrument_id, open_qty, value, intent) in open {
        view.open_orders.push(OpenOrders {
            instrument_id,
            intent: Intent::from_name(&intent).ok_or_else(|| corrupt("intent", &intent))?,
            open_qty,
            value,
        });
    }
    view.holdings.sort_by_key(|h| h.instrument_id);
    view.open_orders
        .sort_by_key(|o| (o.instrument_id, o.intent.as_str()));
    loaded.view = Some(view);
    type OrderRow = (
        i64,
        i64,
        i64,
        Option<i64>,
        i64,
        i64,
        i64,
        i64,
        String,
        String,
        String,
        String,
    );
    if let Some(o) = json::<OrderRow>(row, "ord")? {
        let (side, intent, tif, status) = (o.8, o.9, o.10, o.11);
        loaded.order = Some(Order {
            id: o.0,
            instrument_id: o.1,
            account_id: o.2,
            side: Side::from_name(&side).ok_or_else(|| corrupt("side", &side))?,
            intent: Intent::from_name(&intent).ok_or_else(|| corrupt("intent", &intent))?,
            tif: TimeInForce::from_name(&tif).ok_or_else(|| corrupt("time in force", &tif))?,
            price: o.3,
            qty: o.4,
            filled: o.5,
            status: OrderStatus::from_name(&status).ok_or_else(|| corrupt("status", &status))?,
            priority: o.6,
            created_at: o.7,
        });
    }
    // Only the side asked for has rows. Best first, whatever order the aggregate kept.
    for (col, sells) in [("sells", true), ("buys", false)] {
        let rows: Vec<(i64, i64, Option<i64>, i64, i64)> = json(row, col)?.unwrap_or_default();
        let mut side: Vec<RestingRow> = rows
            .into_iter()
            .map(
                |(order_id, account_id, price, priority, open_qty)| RestingRow {
                    order_id,
                    account_id,
                    price: price.unwrap_or(0),
                    priority,
                    open_qty,
                },
            )
            .collect();
        side.sort_by_key(|r| (if sells { r.price } else { -r.price }, r.priority));
        loaded.resting.extend(side);
    }
    Ok(loaded)
}

/// What the rows of a load say.
fn parse_rows(rows: &[AnyRow]) -> Result<Loaded, StoreError> {
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
                let last_trade: Option<i64> = row.try_get("n7")?;
                loaded.hint.trade_base = last_trade.unwrap_or(0);
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
                    intent: Intent::from_name(&intent).ok_or_else(|| corrupt("intent", &intent))?,
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
                    intent: Intent::from_name(&intent).ok_or_else(|| corrupt("intent", &intent))?,
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
    view.holdings.sort_by_key(|h| h.instrument_id);
    view.open_orders
        .sort_by_key(|o| (o.instrument_id, o.intent.as_str()));
    loaded.view = Some(view);
    Ok(loaded)
}
