//! Users of the BBS: handles, password hashes and saved terminal settings.

use sqlx::Row;

use super::{now_ms, Db, StoreError};
use crate::terminal::Charset;

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub handle: String,
    /// An argon2id PHC string; never shown or logged.
    pub password_hash: String,
    pub charset: Charset,
    pub width: u16,
    pub height: u16,
    pub is_sysop: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
    pub times_on: i64,
}

/// What registration stores.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub handle: &'a str,
    pub password_hash: &'a str,
    pub charset: Charset,
    pub width: u16,
    pub height: u16,
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// Somebody already has this handle (ignoring case).
    #[error("that handle is taken")]
    HandleTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key handles are unique by: trimmed and lower-cased.
pub fn handle_key(handle: &str) -> String {
    handle.trim().to_lowercase()
}

const COLUMNS: &str = "id, handle, password_hash, charset, width, height, is_sysop, \
                       created_at, last_login_at, times_on";

fn from_row(row: &sqlx::any::AnyRow) -> Result<User, StoreError> {
    let charset: String = row.try_get("charset")?;
    Ok(User {
        id: row.try_get("id")?,
        handle: row.try_get("handle")?,
        password_hash: row.try_get("password_hash")?,
        // The CHECK constraint keeps this column to the three names.
        charset: Charset::from_name(&charset).unwrap_or(Charset::Ascii),
        width: clamp_u16(row.try_get("width")?),
        height: clamp_u16(row.try_get("height")?),
        is_sysop: row.try_get::<i64, _>("is_sysop")? != 0,
        created_at: row.try_get("created_at")?,
        last_login_at: row.try_get("last_login_at")?,
        times_on: row.try_get("times_on")?,
    })
}

fn clamp_u16(v: i64) -> u16 {
    v.clamp(0, u16::MAX as i64) as u16
}

/// Creates a user. The very first user of a board becomes its sysop.
pub async fn create(db: &Db, new: &NewUser<'_>) -> Result<User, CreateUserError> {
    let sql = format!(
        "INSERT INTO users (handle, handle_key, password_hash, charset, width, height, is_sysop, \
                            created_at, times_on) \
         SELECT $1, $2, $3, $4, $5, $6, \
                CASE WHEN EXISTS (SELECT 1 FROM users) THEN 0 ELSE 1 END, $7, 0 \
         RETURNING {COLUMNS}"
    );
    let result = sqlx::query(&sql)
        .bind(new.handle.trim())
        .bind(handle_key(new.handle))
        .bind(new.password_hash)
        .bind(new.charset.as_str())
        .bind(new.width as i64)
        .bind(new.height as i64)
        .bind(now_ms())
        .fetch_one(db.pool())
        .await;
    match result {
        Ok(row) => Ok(from_row(&row)?),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(CreateUserError::HandleTaken)
        }
        Err(e) => Err(CreateUserError::Store(e.into())),
    }
}

/// Finds a user by handle, ignoring case.
pub async fn find_by_handle(db: &Db, handle: &str) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE handle_key = $1");
    let row = sqlx::query(&sql)
        .bind(handle_key(handle))
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Finds a user by id.
pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(from_row).transpose()
}

/// Notes a successful login.
pub async fn record_login(db: &Db, id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET last_login_at = $1, times_on = times_on + 1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Saves a user's terminal settings.
pub async fn save_terminal(
    db: &Db,
    id: i64,
    charset: Charset,
    width: u16,
    height: u16,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET charset = $1, width = $2, height = $3 WHERE id = $4")
        .bind(charset.as_str())
        .bind(width as i64)
        .bind(height as i64)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Replaces a user's password hash.
pub async fn set_password_hash(db: &Db, id: i64, hash: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// How many users the board has.
pub async fn count(db: &Db) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get("n")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::fresh_db;

    fn new_user(handle: &str) -> NewUser<'_> {
        NewUser {
            handle,
            password_hash: "$argon2id$fake",
            charset: Charset::Atascii,
            width: 40,
            height: 24,
        }
    }

    #[tokio::test]
    async fn create_find_and_update() {
        let t = fresh_db().await;
        let first = create(&t.db, &new_user("Gordon")).await.unwrap();
        assert!(first.is_sysop, "the first user is the sysop");
        let second = create(&t.db, &new_user("Bud Fox")).await.unwrap();
        assert!(!second.is_sysop);

        let found = find_by_handle(&t.db, "  gORDON ").await.unwrap().unwrap();
        assert_eq!(found, first);
        assert!(find_by_handle(&t.db, "nobody").await.unwrap().is_none());

        record_login(&t.db, first.id).await.unwrap();
        save_terminal(&t.db, first.id, Charset::Ansi, 80, 25)
            .await
            .unwrap();
        set_password_hash(&t.db, first.id, "$argon2id$other")
            .await
            .unwrap();
        let again = find_by_id(&t.db, first.id).await.unwrap().unwrap();
        assert_eq!(again.times_on, 1);
        assert!(again.last_login_at.is_some());
        assert_eq!(
            (again.charset, again.width, again.height),
            (Charset::Ansi, 80, 25)
        );
        assert_eq!(again.password_hash, "$argon2id$other");
        assert_eq!(count(&t.db).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn handles_are_unique_ignoring_case() {
        let t = fresh_db().await;
        create(&t.db, &new_user("Gordon")).await.unwrap();
        let err = create(&t.db, &new_user("GORDON")).await.unwrap_err();
        assert!(matches!(err, CreateUserError::HandleTaken), "{err:?}");
        assert_eq!(count(&t.db).await.unwrap(), 1);
    }
}
