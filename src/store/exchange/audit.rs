//! The audit: invariants of the exchange checked on a live database, inside one read
//! transaction (a snapshot), so a busy exchange can be audited without stopping it.
//!
//! Rules, each named in the violations it reports:
//! - `ledger-cash`: every account's cash equals the sum of its ledger cash movements;
//! - `ledger-shares`: every position equals the sum of its ledger share movements;
//! - `shares-issued`: per instrument, longs minus shorts (players and house) equal the shares
//!   issued;
//! - `crossed-book`: no book has its best bid at or above its best ask;
//! - `order-fills`: every order's filled quantity equals the sum of its trades, never exceeds
//!   its size, and its status agrees with it;
//! - `references`: every order, ledger row and position belongs to an account and an
//!   instrument of its game (the busy tables have no foreign keys, so this is checked here);
//! - `trade-orders`: every trade has a buy order and a sell order of its instrument, from two
//!   different accounts (prices are not compared: a replace may have moved an order since);
//! - `trade-ledger`: every trade moved exactly its shares and its cash (fees included) between
//!   accounts, creating nothing;
//! - `negative-balance`: the house never has negative cash or shares; in a game without margin
//!   (initial margin of 100% or more) no player has negative cash;
//! - `cash-total`: the cash of all accounts equals grants plus dividends: trading, fees and
//!   borrow fees only move cash around.

use sqlx::{Any, Row, Transaction};

use crate::exchange::model::Violation;
use crate::store::{Backend, Db, StoreError};

/// At most this many violations are reported per rule.
const LIMIT: i64 = 20;

struct Check {
    rule: &'static str,
    sql: &'static str,
    /// Formats one offending row.
    describe: fn(&sqlx::any::AnyRow) -> Result<String, sqlx::Error>,
}

fn i(row: &sqlx::any::AnyRow, col: &str) -> Result<i64, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.unwrap_or(0))
}

const CHECKS: &[Check] = &[
    Check {
        rule: "ledger-cash",
        sql: "SELECT a.id AS account, a.cash AS cash, COALESCE(l.s, 0) AS ledger \
              FROM ex_accounts a LEFT JOIN \
                (SELECT account_id, CAST(SUM(cash_delta) AS BIGINT) AS s FROM ex_ledger \
                 GROUP BY account_id) l ON l.account_id = a.id \
              WHERE a.game_id = $1 AND a.cash <> COALESCE(l.s, 0) ORDER BY a.id LIMIT $2",
        describe: |r| {
            Ok(format!(
                "account {} has cash {} but its ledger sums to {}",
                i(r, "account")?,
                i(r, "cash")?,
                i(r, "ledger")?
            ))
        },
    },
    Check {
        rule: "ledger-shares",
        sql: "SELECT x.account_id AS account, x.instrument_id AS instrument, \
                  CAST(SUM(x.p) AS BIGINT) AS pos, CAST(SUM(x.l) AS BIGINT) AS ledger \
              FROM (SELECT account_id, instrument_id, qty AS p, 0 AS l FROM ex_positions \
                    UNION ALL SELECT account_id, instrument_id, 0 AS p, share_delta AS l \
                    FROM ex_ledger WHERE instrument_id IS NOT NULL) x \
              JOIN ex_accounts a ON a.id = x.account_id \
              WHERE a.game_id = $1 GROUP BY x.account_id, x.instrument_id \
              HAVING SUM(x.p) <> SUM(x.l) ORDER BY x.account_id LIMIT $2",
        describe: |r| {
            Ok(format!(
                "account {} holds {} of instrument {} but its ledger sums to {}",
                i(r, "account")?,
                i(r, "pos")?,
                i(r, "instrument")?,
                i(r, "ledger")?
            ))
        },
    },
    Check {
        rule: "shares-issued",
        sql: "SELECT i.id AS instrument, i.shares_issued AS issued, \
                  CAST(COALESCE(SUM(p.qty), 0) AS BIGINT) AS held \
              FROM ex_instruments i LEFT JOIN ex_positions p ON p.instrument_id = i.id \
              WHERE i.game_id = $1 GROUP BY i.id, i.shares_issued \
              HAVING COALESCE(SUM(p.qty), 0) <> i.shares_issued ORDER BY i.id LIMIT $2",
        describe: |r| {
            Ok(format!(
                "instrument {} issued {} shares but longs minus shorts are {}",
                i(r, "instrument")?,
                i(r, "issued")?,
                i(r, "held")?
            ))
        },
    },
    Check {
        rule: "crossed-book",
        sql: "SELECT b.instrument_id AS instrument, b.bid AS bid, s.ask AS ask \
              FROM (SELECT instrument_id, MAX(price) AS bid FROM ex_orders \
                    WHERE game_id = $1 AND status = 'open' AND side = 'buy' \
                    GROUP BY instrument_id) b \
              JOIN (SELECT instrument_id, MIN(price) AS ask FROM ex_orders \
                    WHERE game_id = $1 AND status = 'open' AND side = 'sell' \
                    GROUP BY instrument_id) s ON s.instrument_id = b.instrument_id \
              WHERE b.bid >= s.ask ORDER BY b.instrument_id LIMIT $2",
        describe: |r| {
            Ok(format!(
                "instrument {} has a bid of {} at or above its ask of {}",
                i(r, "instrument")?,
                i(r, "bid")?,
                i(r, "ask")?
            ))
        },
    },
    Check {
        rule: "order-fills",
        // Each order's trades by index, one order after another: a join with all trades
        // summed per order was planned, for a new game whose statistics say "no orders", as
        // a loop that summed every trade again for each order (minutes at 15,000 orders).
        sql: "SELECT id, qty, filled, traded, status FROM \
                (SELECT o.id AS id, o.qty AS qty, o.filled AS filled, o.status AS status, \
                     CAST((SELECT COALESCE(SUM(t.qty), 0) FROM ex_trades t \
                           WHERE t.buy_order_id = o.id) \
                        + (SELECT COALESCE(SUM(t.qty), 0) FROM ex_trades t \
                           WHERE t.sell_order_id = o.id) AS BIGINT) AS traded \
                 FROM ex_orders o WHERE o.game_id = $1) x \
              WHERE filled <> traded OR filled > qty \
                  OR (status = 'filled' AND filled <> qty) \
                  OR (status <> 'filled' AND filled >= qty) \
              ORDER BY id LIMIT $2",
        describe: |r| {
            let status: String = r.try_get("status")?;
            Ok(format!(
                "order {} ({status}) of {} shares says {} filled but its trades sum to {}",
                i(r, "id")?,
                i(r, "qty")?,
                i(r, "filled")?,
                i(r, "traded")?
            ))
        },
    },
    Check {
        rule: "references",
        sql: "SELECT 'order' AS what, o.id AS id FROM ex_orders o \
              LEFT JOIN ex_accounts a ON a.id = o.account_id \
              LEFT JOIN ex_instruments i ON i.id = o.instrument_id \
              WHERE o.game_id = $1 AND (a.id IS NULL OR i.id IS NULL \
                  OR a.game_id <> o.game_id OR i.game_id <> o.game_id) \
              UNION ALL \
              SELECT 'ledger row', l.id FROM ex_ledger l \
              LEFT JOIN ex_accounts a ON a.id = l.account_id \
              LEFT JOIN ex_instruments i ON i.id = l.instrument_id \
              WHERE l.game_id = $1 AND (a.id IS NULL OR a.game_id <> l.game_id \
                  OR (l.instrument_id IS NOT NULL AND (i.id IS NULL OR i.game_id <> l.game_id))) \
              UNION ALL \
              SELECT 'position of account', p.account_id FROM ex_positions p \
              JOIN ex_instruments i ON i.id = p.instrument_id \
              LEFT JOIN ex_accounts a ON a.id = p.account_id \
              WHERE i.game_id = $1 AND (a.id IS NULL OR a.game_id <> i.game_id) \
              LIMIT $2",
        describe: |r| {
            let what: String = r.try_get("what")?;
            Ok(format!(
                "{what} {} refers to an account or instrument outside the game",
                i(r, "id")?
            ))
        },
    },
    Check {
        rule: "trade-orders",
        sql: "SELECT t.id AS id FROM ex_trades t \
              LEFT JOIN ex_orders b ON b.id = t.buy_order_id \
              LEFT JOIN ex_orders s ON s.id = t.sell_order_id \
              WHERE t.game_id = $1 AND (b.id IS NULL OR s.id IS NULL \
                  OR b.side <> 'buy' OR s.side <> 'sell' \
                  OR b.instrument_id <> t.instrument_id OR s.instrument_id <> t.instrument_id \
                  OR b.account_id = s.account_id) \
              ORDER BY t.id LIMIT $2",
        describe: |r| {
            Ok(format!(
                "trade {} does not match a buy order and a sell order of its instrument",
                i(r, "id")?
            ))
        },
    },
    Check {
        rule: "trade-ledger",
        sql: "SELECT t.id AS id, t.qty AS qty, t.price AS price, \
                  CAST(COALESCE(SUM(l.cash_delta), 0) AS BIGINT) AS cash, \
                  CAST(COALESCE(SUM(l.share_delta), 0) AS BIGINT) AS shares, \
                  CAST(COALESCE(SUM(CASE WHEN l.share_delta > 0 THEN l.share_delta ELSE 0 END), 0) \
                      AS BIGINT) AS bought, \
                  CAST(COALESCE(SUM(CASE WHEN l.reason <> 'fee' AND l.cash_delta > 0 \
                      THEN l.cash_delta ELSE 0 END), 0) AS BIGINT) AS paid \
              FROM ex_trades t LEFT JOIN ex_ledger l ON l.trade_id = t.id \
              WHERE t.game_id = $1 GROUP BY t.id, t.qty, t.price \
              HAVING COALESCE(SUM(l.cash_delta), 0) <> 0 OR COALESCE(SUM(l.share_delta), 0) <> 0 \
                  OR COALESCE(SUM(CASE WHEN l.share_delta > 0 THEN l.share_delta ELSE 0 END), 0) \
                      <> t.qty \
                  OR COALESCE(SUM(CASE WHEN l.reason <> 'fee' AND l.cash_delta > 0 \
                      THEN l.cash_delta ELSE 0 END), 0) <> t.qty * t.price \
              ORDER BY t.id LIMIT $2",
        describe: |r| {
            Ok(format!(
                "trade {} of {} at {}: ledger moved cash {} net, shares {} net, {} bought, {} paid",
                i(r, "id")?,
                i(r, "qty")?,
                i(r, "price")?,
                i(r, "cash")?,
                i(r, "shares")?,
                i(r, "bought")?,
                i(r, "paid")?
            ))
        },
    },
    Check {
        rule: "negative-balance",
        sql: "SELECT a.id AS account, a.cash AS cash, \
                  (SELECT MIN(p.qty) FROM ex_positions p WHERE p.account_id = a.id) AS min_qty \
              FROM ex_accounts a JOIN ex_games g ON g.id = a.game_id \
              WHERE a.game_id = $1 AND ( \
                  (a.is_house = 1 AND (a.cash < 0 OR EXISTS \
                      (SELECT 1 FROM ex_positions p WHERE p.account_id = a.id AND p.qty < 0))) \
                  OR (a.is_house = 0 AND g.initial_margin_bp >= 10000 AND a.cash < 0)) \
              ORDER BY a.id LIMIT $2",
        describe: |r| {
            Ok(format!(
                "account {} has cash {} and smallest position {} outside the rules",
                i(r, "account")?,
                i(r, "cash")?,
                i(r, "min_qty")?
            ))
        },
    },
    Check {
        rule: "cash-total",
        sql: "SELECT g.id AS game, \
                  (SELECT CAST(COALESCE(SUM(a.cash), 0) AS BIGINT) FROM ex_accounts a \
                   WHERE a.game_id = g.id) AS total, \
                  (SELECT CAST(COALESCE(SUM(l.cash_delta), 0) AS BIGINT) FROM ex_ledger l \
                   WHERE l.game_id = g.id AND l.reason IN ('grant', 'dividend')) AS sources \
              FROM ex_games g WHERE g.id = $1 AND \
                  (SELECT COALESCE(SUM(a.cash), 0) FROM ex_accounts a WHERE a.game_id = g.id) <> \
                  (SELECT COALESCE(SUM(l.cash_delta), 0) FROM ex_ledger l \
                   WHERE l.game_id = g.id AND l.reason IN ('grant', 'dividend')) \
              LIMIT $2",
        describe: |r| {
            Ok(format!(
                "all cash adds up to {} but grants and dividends to {}",
                i(r, "total")?,
                i(r, "sources")?
            ))
        },
    },
];

/// Audits one game, or every game when `game_id` is `None`.
pub async fn audit(db: &Db, game_id: Option<i64>) -> Result<Vec<Violation>, StoreError> {
    let mut tx: Transaction<'static, Any> = match db.backend() {
        Backend::Postgres => {
            db.pool()
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?
        }
        // A deferred transaction reads one WAL snapshot from its first read to its end.
        Backend::Sqlite => db.pool().begin().await?,
    };
    let games: Vec<i64> = match game_id {
        Some(g) => vec![g],
        None => sqlx::query("SELECT id FROM ex_games ORDER BY id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>("id"))
            .collect::<Result<_, _>>()?,
    };
    let mut out = Vec::new();
    for game in games {
        for check in CHECKS {
            let rows = sqlx::query(check.sql)
                .bind(game)
                .bind(LIMIT)
                .fetch_all(&mut *tx)
                .await?;
            for row in &rows {
                out.push(Violation {
                    game_id: game,
                    rule: check.rule,
                    detail: (check.describe)(row)?,
                });
            }
        }
    }
    tx.rollback().await?;
    Ok(out)
}
