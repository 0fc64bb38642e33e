//! SQL text with its arguments, built up statement by statement, for the exchange's write
//! transactions.
//!
//! A write transaction sends several statements in one go: `BEGIN` and a load, or a write and
//! the next load, or a write and `COMMIT`. On PostgreSQL such a text must go as a simple query,
//! which takes no bound arguments, so values are inlined as literals (integers formatted here
//! and the exchange's fixed words, quoted). On SQLite they are bound as anonymous `?`
//! parameters, numbered across the statements in the order they appear: then the text of a
//! given shape is the same every time and sqlx keeps it prepared, where a text with literals
//! in it would be parsed and planned anew for every order.

use sqlx::any::AnyArguments;
use sqlx::Arguments;

use crate::store::{Backend, StoreError};

/// One bound value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
}

/// Statements and the values they take; see the module documentation.
#[derive(Debug, Clone)]
pub struct Sql {
    backend: Backend,
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    /// Nothing yet, for `backend`.
    pub fn new(backend: Backend) -> Sql {
        Sql {
            backend,
            text: String::new(),
            args: Vec::new(),
        }
    }

    /// Whether there is no text.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Appends text as it is.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// An integer: its placeholder (SQLite) or literal (PostgreSQL), to put in the text next.
    pub fn int(&mut self, v: i64) -> String {
        self.opt(Some(v))
    }

    /// An integer or NULL.
    pub fn opt(&mut self, v: Option<i64>) -> String {
        match self.backend {
            Backend::Postgres => literal(v),
            Backend::Sqlite => {
                self.args.push(Arg::Int(v));
                "?".to_string()
            }
        }
    }

    /// A text value.
    pub fn text_value(&mut self, v: &str) -> String {
        self.opt_text(Some(v))
    }

    /// A text value or NULL.
    pub fn opt_text(&mut self, v: Option<&str>) -> String {
        match self.backend {
            Backend::Postgres => text_literal(v),
            Backend::Sqlite => {
                self.args.push(Arg::Text(v.map(str::to_string)));
                "?".to_string()
            }
        }
    }

    /// Appends `other`'s statements and their arguments after these.
    pub fn append(&mut self, other: Sql) {
        self.text.push_str(&other.text);
        self.args.extend(other.args);
    }

    /// Takes everything out, leaving this empty.
    pub fn take(&mut self) -> Sql {
        std::mem::replace(self, Sql::new(self.backend))
    }

    /// The text and its arguments, ready to run; `None` arguments means a simple query.
    pub(crate) fn into_parts(self) -> Result<(String, Option<AnyArguments<'static>>), StoreError> {
        if self.args.is_empty() {
            return Ok((self.text, None));
        }
        let mut args = AnyArguments::default();
        for arg in self.args {
            let added = match arg {
                Arg::Int(v) => args.add(v),
                Arg::Text(v) => args.add(v),
            };
            added.map_err(|e| StoreError::Sqlx(sqlx::Error::Encode(e)))?;
        }
        Ok((self.text, Some(args)))
    }
}

/// A text literal, quoted for SQL.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// An integer literal, or `NULL`.
pub fn literal(v: Option<i64>) -> String {
    v.map_or_else(|| "NULL".to_string(), |v| v.to_string())
}

/// A quoted text literal, or `NULL`.
pub fn text_literal(v: Option<&str>) -> String {
    v.map_or_else(|| "NULL".to_string(), quote)
}

/// `'{1,NULL,3}'::int8[]`.
pub fn int_array(items: impl IntoIterator<Item = Option<i64>>) -> String {
    let list: Vec<String> = items.into_iter().map(literal).collect();
    format!("'{{{}}}'::int8[]", list.join(","))
}

/// `ARRAY['a',NULL]::text[]`.
pub fn opt_text_array<'a>(items: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let list: Vec<String> = items.into_iter().map(text_literal).collect();
    if list.is_empty() {
        "'{}'::text[]".to_string()
    } else {
        format!("ARRAY[{}]::text[]", list.join(","))
    }
}

/// `ARRAY['a','b']::text[]`.
pub fn text_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    opt_text_array(items.into_iter().map(Some))
}

/// Rows as a JSON list (a tuple is a list), for SQLite's `json_each`.
pub fn json_list(rows: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(rows).map_err(|e| StoreError::Sqlx(sqlx::Error::Encode(e.into())))
}

/// Runs `sql` on `conn` and returns every row of every statement in it.
pub(crate) async fn fetch_all(
    conn: &mut sqlx::AnyConnection,
    sql: Sql,
) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
    let (text, args) = sql.into_parts()?;
    let rows = match args {
        None => sqlx::Executor::fetch_all(conn, sqlx::raw_sql(&text)).await?,
        Some(args) => sqlx::query_with(&text, args).fetch_all(conn).await?,
    };
    Ok(rows)
}

/// Why [`fetch_split`] failed, and whether its marker row had arrived first.
#[derive(Debug)]
pub(crate) struct SplitError {
    /// The marker had arrived (and `at_marker` had run): the failure is in what came after.
    pub passed: bool,
    pub error: StoreError,
}

/// Runs `sql` on `conn` like [`fetch_all`], but hands the rows up to the first one that
/// `is_marker` picks out (the marker not included) to `at_marker` as soon as that marker
/// arrives, while the statements after it may still be running; returns the rows after it.
/// Without a marker, `at_marker` runs at the end with every row.
pub(crate) async fn fetch_split(
    conn: &mut sqlx::AnyConnection,
    sql: Sql,
    is_marker: impl Fn(&sqlx::any::AnyRow) -> bool,
    at_marker: impl FnOnce(Vec<sqlx::any::AnyRow>),
) -> Result<Vec<sqlx::any::AnyRow>, SplitError> {
    use futures::TryStreamExt;
    let fail = |passed, error| SplitError { passed, error };
    let (text, args) = sql.into_parts().map_err(|e| fail(false, e))?;
    let mut stream = match args {
        None => sqlx::Executor::fetch_many(conn, sqlx::raw_sql(&text)),
        Some(args) => sqlx::Executor::fetch_many(conn, sqlx::query_with(&text, args)),
    };
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut at_marker = Some(at_marker);
    loop {
        let item = stream
            .try_next()
            .await
            .map_err(|e| fail(at_marker.is_none(), e.into()))?;
        let Some(item) = item else { break };
        let sqlx::Either::Right(row) = item else {
            continue;
        };
        match at_marker.take() {
            None => after.push(row),
            Some(hand) if is_marker(&row) => hand(std::mem::take(&mut before)),
            Some(hand) => {
                before.push(row);
                at_marker = Some(hand);
            }
        }
    }
    if let Some(hand) = at_marker {
        hand(before);
    }
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_inlines_literals() {
        let mut s = Sql::new(Backend::Postgres);
        let (a, b, c, d) = (
            s.int(-3),
            s.opt(None),
            s.text_value("it's"),
            s.opt_text(None),
        );
        s.push(&format!("SELECT {a}, {b}, {c}, {d};"));
        assert_eq!(s.text, "SELECT -3, NULL, 'it''s', NULL;");
        let (_, args) = s.into_parts().unwrap();
        assert!(args.is_none());
    }

    #[test]
    fn sqlite_binds_in_order() {
        let mut s = Sql::new(Backend::Sqlite);
        let (a, b) = (s.int(1), s.text_value("x"));
        s.push(&format!("SELECT {a}, {b};"));
        let c = s.opt(None);
        s.push(&format!("SELECT {c};"));
        assert_eq!(s.text, "SELECT ?, ?;SELECT ?;");
        assert_eq!(
            s.args,
            vec![
                Arg::Int(Some(1)),
                Arg::Text(Some("x".into())),
                Arg::Int(None)
            ]
        );
        let taken = s.take();
        assert!(s.is_empty() && s.args.is_empty());
        assert_eq!(taken.args.len(), 3);
    }

    #[tokio::test]
    async fn a_split_hands_over_the_rows_before_its_marker_and_returns_the_rest() {
        use sqlx::Row;
        let db = crate::store::testing::fresh_db().await;
        let mut conn = db.db.pool().acquire().await.unwrap();
        let is_marker = |r: &sqlx::any::AnyRow| {
            use sqlx::Column;
            r.columns()[0].name() == "marker"
        };
        let n = |v: i64| format!("SELECT CAST({v} AS BIGINT) AS n");
        let ns = |rows: &[sqlx::any::AnyRow]| -> Vec<i64> {
            rows.iter().map(|r| r.get::<i64, _>(0)).collect()
        };
        let mut s = Sql::new(db.db.backend());
        s.push(&format!(
            "{}; {}; SELECT 0 AS marker; {};",
            n(1),
            n(2),
            n(3)
        ));
        let mut handed = None;
        let after = fetch_split(&mut conn, s, is_marker, |rows| handed = Some(ns(&rows)))
            .await
            .unwrap();
        assert_eq!((handed, ns(&after)), (Some(vec![1, 2]), vec![3]));

        // A failure after the marker says so; one before it, that the marker never came.
        for (text, passed) in [
            ("{}; SELECT 0 AS marker; SELECT * FROM no_such_table;", true),
            (
                "{}; SELECT * FROM no_such_table; SELECT 0 AS marker;",
                false,
            ),
        ] {
            let mut s = Sql::new(db.db.backend());
            s.push(&text.replace("{}", &n(1)));
            let mut called = false;
            let Err(err) = fetch_split(&mut conn, s, is_marker, |_| called = true).await else {
                panic!("{text}: no error");
            };
            assert_eq!((err.passed, called), (passed, passed), "{text}");
        }

        // No marker: everything is handed over at the end.
        let mut s = Sql::new(db.db.backend());
        s.push(&format!("{}; {};", n(1), n(2)));
        let mut handed = None;
        let after = fetch_split(&mut conn, s, is_marker, |rows| handed = Some(ns(&rows)))
            .await
            .unwrap();
        assert_eq!((handed, after.len()), (Some(vec![1, 2]), 0));
    }

    #[tokio::test]
    async fn runs_on_sqlite_with_arguments_across_statements() {
        let db = crate::store::testing::fresh_db().await;
        let mut conn = db.db.pool().acquire().await.unwrap();
        let mut s = Sql::new(db.db.backend());
        let (a, b) = (s.int(7), s.text_value("it's"));
        s.push(&format!(
            "SELECT CAST({a} AS BIGINT) AS n, CAST({b} AS TEXT) AS t;"
        ));
        let c = s.int(8);
        s.push(&format!("SELECT CAST({c} AS BIGINT) AS n, 'y' AS t;"));
        let rows = fetch_all(&mut conn, s).await.unwrap();
        use sqlx::Row;
        let got: Vec<(i64, String)> = rows
            .iter()
            .map(|r| (r.get::<i64, _>("n"), r.get::<String, _>("t")))
            .collect();
        assert_eq!(got, vec![(7, "it's".to_string()), (8, "y".to_string())]);
    }
}
