//! Login and new-user registration.
//!
//! Passwords are hashed with argon2id on the blocking pool (`spawn_blocking`), never on the
//! async workers. After the configured number of failed attempts the call ends, each failure
//! costing a delay first.

use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::store::users::{self, CreateUserError, NewUser, User};
use crate::store::Db;
use crate::terminal::keys::Key;
use crate::terminal::line::{Filter, LineOptions};
use crate::terminal::out::Style;
use crate::terminal::{Caps, Charset};

use super::term::{End, Term};

/// Handles are 2 to 20 characters.
pub const HANDLE_MIN: usize = 2;
pub const HANDLE_MAX: usize = 20;
/// Passwords are 6 to 32 characters.
pub const PASSWORD_MIN: usize = 6;
pub const PASSWORD_MAX: usize = 32;

/// Handles nobody may register: commands at the login prompt and names that would confuse.
const RESERVED: &[&str] = &[
    "new",
    "sysop",
    "all",
    "everyone",
    "guest",
    "nobody",
    "system",
    "nuggetnet",
    "house",
];

/// What is wrong with a proposed handle, in words for the caller.
pub fn check_handle(handle: &str) -> Result<(), String> {
    let len = handle.chars().count();
    if !(HANDLE_MIN..=HANDLE_MAX).contains(&len) {
        return Err(format!(
            "A handle is {HANDLE_MIN} to {HANDLE_MAX} characters long."
        ));
    }
    if !handle
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
    {
        return Err("A handle starts with a letter.".into());
    }
    if let Some(bad) = handle
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_')))
    {
        return Err(format!(
            "'{bad}' is not allowed: use letters, digits, spaces, '.', '-' and '_'."
        ));
    }
    if handle.ends_with(' ') || handle.contains("  ") {
        return Err("No double or trailing spaces, please.".into());
    }
    if RESERVED.contains(&handle.to_ascii_lowercase().as_str()) {
        return Err(format!("\"{handle}\" is reserved. Pick another."));
    }
    Ok(())
}

/// Hashes a password with argon2id on the blocking pool.
pub async fn hash_password(password: String) -> Result<String, End> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| End::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| End::Internal(format!("password hashing task failed: {e}")))?
}

/// Checks a password against a stored hash on the blocking pool.
pub async fn verify_password(password: String, hash: String) -> Result<bool, End> {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(|e| End::Internal(format!("password check task failed: {e}")))
}

/// Login settings.
#[derive(Debug, Clone, Copy)]
pub struct LoginRules {
    pub attempts: u32,
    pub failure_delay: Duration,
}

fn handle_options() -> LineOptions {
    LineOptions {
        max_len: HANDLE_MAX,
        filter: Filter::Printable,
        ..LineOptions::default()
    }
}

/// The line editor's rules for a password field.
pub fn password_options() -> LineOptions {
    LineOptions {
        max_len: PASSWORD_MAX,
        mask: true,
        filter: Filter::Printable,
        ..LineOptions::default()
    }
}

fn db_error(e: impl std::fmt::Display) -> End {
    End::Internal(format!("database: {e}"))
}

/// Who logged in, and how.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// The user as stored after this login was recorded.
    pub user: User,
    /// Whether the user registered on this call.
    pub registered: bool,
    /// When the user last logged in before this call.
    pub previous_login_at: Option<i64>,
}

/// Asks for a handle and password until a user logs in (or registers), or the attempts run out.
pub async fn login(term: &mut Term, db: &Db, rules: LoginRules) -> Result<LoggedIn, End> {
    let mut failures = 0;
    loop {
        let handle = term
            .line("Your handle (or NEW to register):", handle_options())
            .await?;
        let handle = handle.trim();
        if handle.is_empty() {
            continue;
        }
        if handle.eq_ignore_ascii_case("new") {
            match register(term, db).await? {
                Some(user) => {
                    return Ok(LoggedIn {
                        user,
                        registered: true,
                        previous_login_at: None,
                    })
                }
                None => continue,
            }
        }
        let user = users::find_by_handle(db, handle).await.map_err(db_error)?;
        let password = term.line("Password:", password_options()).await?;
        let ok = match &user {
            Some(user) => verify_password(password, user.password_hash.clone()).await?,
            None => false,
        };
        if let (true, Some(user)) = (ok, user) {
            users::record_login(db, user.id).await.map_err(db_error)?;
            let previous_login_at = user.last_login_at;
            let user = users::find_by_id(db, user.id)
                .await
                .map_err(db_error)?
                .unwrap_or(user);
            return Ok(LoggedIn {
                user,
                registered: false,
                previous_login_at,
            });
        }
        failures += 1;
        // One message for both cases, so handles cannot be fished for.
        term.say("Wrong handle or password.", Style::Error).await?;
        tokio::time::sleep(rules.failure_delay).await;
        if failures >= rules.attempts {
            term.say(
                "Too many failed logins. Call back when you remember.",
                Style::Error,
            )
            .await?;
            return Err(End::LoginFailed);
        }
    }
}

/// New-user registration. `Ok(None)` when the caller backs out.
pub async fn register(term: &mut Term, db: &Db) -> Result<Option<User>, End> {
    if let Some(node) = term.node() {
        node.set_activity(crate::node::Activity::Registering);
    }
    term.say("New user registration", Style::Title).await?;
    term.say(
        "Pick a handle: 2-20 letters, digits, spaces, '.', '-' or '_'. RETURN alone cancels.",
        Style::Normal,
    )
    .await?;
    let handle = loop {
        let handle = term.line("New handle:", handle_options()).await?;
        let handle = handle.trim().to_string();
        if handle.is_empty() {
            return Ok(None);
        }
        if let Err(why) = check_handle(&handle) {
            term.say(&why, Style::Error).await?;
            continue;
        }
        if users::find_by_handle(db, &handle)
            .await
            .map_err(db_error)?
            .is_some()
        {
            term.say("That handle is taken. Try another.", Style::Error)
                .await?;
            continue;
        }
        break handle;
    };
    let password = loop {
        let first = term
            .line("Password (6-32 chars):", password_options())
            .await?;
        if first.chars().count() < PASSWORD_MIN {
            term.say("Too short: at least 6 characters.", Style::Error)
                .await?;
            continue;
        }
        if first.eq_ignore_ascii_case(&handle) {
            term.say("Your password cannot be your handle.", Style::Error)
                .await?;
            continue;
        }
        let second = term.line("Same again:", password_options()).await?;
        if first != second {
            term.say("Those two did not match. Once more.", Style::Error)
                .await?;
            continue;
        }
        break first;
    };
    let caps = choose_terminal(term).await?;
    term.set_caps(caps);
    let hash = hash_password(password).await?;
    let created = users::create(
        db,
        &NewUser {
            handle: &handle,
            password_hash: &hash,
            charset: caps.charset,
            width: caps.width,
            height: caps.height,
        },
    )
    .await;
    match created {
        Ok(user) => {
            term.say(
                &format!("Welcome aboard, {}. Greed is good.", user.handle),
                Style::Success,
            )
            .await?;
            users::record_login(db, user.id).await.map_err(db_error)?;
            Ok(Some(User {
                times_on: user.times_on + 1,
                ..user
            }))
        }
        Err(CreateUserError::HandleTaken) => {
            term.say(
                "Somebody grabbed that handle a moment ago. Please start again.",
                Style::Error,
            )
            .await?;
            Ok(None)
        }
        Err(CreateUserError::Store(e)) => Err(db_error(e)),
    }
}

/// Confirms (or changes) the detected terminal; used at registration and in settings.
pub async fn choose_terminal(term: &mut Term) -> Result<Caps, End> {
    let caps = term.caps();
    let described = describe(&caps);
    if term
        .confirm(&format!("Your terminal: {described}. Keep it?"), true)
        .await?
    {
        return Ok(caps);
    }
    let charset = loop {
        term.say(
            "A = ANSI colour (PC, CP437)   T = ATASCII (Atari 8-bit)   P = plain ASCII",
            Style::Normal,
        )
        .await?;
        match term.hotkey("Charset?").await? {
            Key::Char(c) if c.eq_ignore_ascii_case(&'a') => break Charset::Ansi,
            Key::Char(c) if c.eq_ignore_ascii_case(&'t') => break Charset::Atascii,
            Key::Char(c) if c.eq_ignore_ascii_case(&'p') => break Charset::Ascii,
            _ => {
                let mut out = term.out();
                out.newline();
                term.send(out).await?;
            }
        }
    };
    let mut new_caps = Caps::for_charset(charset);
    new_caps.height = caps.height;
    term.set_caps(new_caps);
    term.say(&format!("Using {}.", charset_name(charset)), Style::Normal)
        .await?;
    let width = loop {
        let answer = term
            .line(
                &format!("Screen width (RETURN for {}):", new_caps.width),
                LineOptions {
                    max_len: 3,
                    filter: Filter::Digits,
                    ..LineOptions::default()
                },
            )
            .await?;
        if answer.is_empty() {
            break new_caps.width;
        }
        match answer.parse::<u16>() {
            Ok(w) if (32..=255).contains(&w) => break w,
            _ => {
                term.say("A width from 32 to 255, please.", Style::Error)
                    .await?
            }
        }
    };
    new_caps.width = width;
    Ok(new_caps)
}

/// "ANSI colour, 80x24" and the like.
pub fn describe(caps: &Caps) -> String {
    format!(
        "{}, {}x{}",
        charset_name(caps.charset),
        caps.width,
        caps.height
    )
}

fn charset_name(charset: Charset) -> &'static str {
    match charset {
        Charset::Ansi => "ANSI colour",
        Charset::Atascii => "ATASCII",
        Charset::Ascii => "plain ASCII",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_rules() {
        assert!(check_handle("Gordon Gekko").is_ok());
        assert!(check_handle("Bud_Fox-2.0").is_ok());
        assert!(check_handle("G").is_err());
        assert!(check_handle("a".repeat(21).as_str()).is_err());
        assert!(check_handle("2Fast").is_err());
        assert!(check_handle("Dollar$").is_err());
        assert!(check_handle("two  spaces").is_err());
        assert!(check_handle("NEW").is_err());
        assert!(check_handle("SysOp").is_err());
        assert!(
            check_handle("Brace{").is_err(),
            "no ATASCII-hostile characters"
        );
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let hash = hash_password("greed is good".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("greed is good".into(), hash.clone())
            .await
            .unwrap());
        assert!(!verify_password("greed is bad".into(), hash).await.unwrap());
        assert!(!verify_password("x".into(), "not a hash".into())
            .await
            .unwrap());
    }
}
