//! The players' inbox: mail between players and mail from the system (fills, margin calls,
//! season reminders, anonymous tips), with an unread count.
//!
//! This module owns the rules of mail: what a valid message is ([`validate`], pure), who may
//! write to whom (players on the same system, found by handle), and how player mail is
//! delivered: [`send`] and [`reply`] only enqueue a [`DELIVER`] job, and the job's handler
//! ([`handlers`]) stores the message with a key unique to the job, so a delivery interrupted by
//! a restart is retried and still arrives exactly once. System mail ([`send_system`]) is
//! written at once by code that is itself running in a job or a tick, with a key the caller
//! chooses for the same reason.
//!
//! It must not know SQL (that is `store::inbox`), draw screens (that is `game`), or read the
//! clock: every call takes `now`.

use serde::{Deserialize, Serialize};

use crate::jobs::{self, Enqueue, Handlers, Job, JobError};
use crate::store::inbox::{self as si, MessageRow, NewMessage};
use crate::store::players::Player;
use crate::store::{Db, StoreError};

/// The job kind that delivers a player's message.
pub const DELIVER: &str = "mail.deliver";

/// The longest subject, in characters.
pub const SUBJECT_MAX: usize = 60;
/// The longest body, in characters.
pub const BODY_MAX: usize = 4_000;
/// How many messages [`list`] shows at most.
pub const LIST_MAX: i64 = 200;

/// What went wrong; the messages are written for the player.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// The body is empty or only spaces.
    #[error("the message is empty")]
    EmptyBody,
    /// The body is longer than [`BODY_MAX`].
    #[error("the message is too long: {len} characters, at most {max}")]
    BodyTooLong { len: usize, max: usize },
    /// The subject is longer than [`SUBJECT_MAX`].
    #[error("the subject is too long: {len} characters, at most {max}")]
    SubjectTooLong { len: usize, max: usize },
    /// No player has this handle on the sender's system.
    #[error("nobody called {0:?} plays here")]
    UnknownRecipient(String),
    /// No such message in this player's inbox.
    #[error("there is no such message")]
    NoSuchMessage,
    /// System mail has nobody to answer.
    #[error("system mail cannot be answered")]
    CannotReplyToSystem,
    /// A storage failure; the details go to the log, the player sees only this.
    #[error("internal error")]
    Store(#[from] StoreError),
    /// The job table failed; the player sees only this.
    #[error("internal error")]
    Jobs(#[from] JobError),
}

/// What kind of mail a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// From another player.
    Player,
    /// An order filled.
    Fill,
    /// The account is below maintenance margin.
    MarginCall,
    /// The season ends soon.
    Reminder,
    /// An anonymous tip before a headline.
    Tip,
}

impl MailKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Player => "player",
            MailKind::Fill => "fill",
            MailKind::MarginCall => "margin_call",
            MailKind::Reminder => "reminder",
            MailKind::Tip => "tip",
        }
    }

    /// The kind with this stored name.
    pub fn parse(s: &str) -> Option<MailKind> {
        Some(match s {
            "player" => MailKind::Player,
            "fill" => MailKind::Fill,
            "margin_call" => MailKind::MarginCall,
            "reminder" => MailKind::Reminder,
            "tip" => MailKind::Tip,
            _ => return None,
        })
    }

    /// Who the sender appears as for system mail.
    pub fn system_sender(self) -> &'static str {
        match self {
            MailKind::Player => "",
            MailKind::Fill => "Trade Desk",
            MailKind::MarginCall => "Margin Dept.",
            MailKind::Reminder => "The Exchange",
            MailKind::Tip => "A Friend",
        }
    }
}

/// A message as its recipient sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub kind: MailKind,
    /// The sending player, `None` for system mail.
    pub from_player: Option<i64>,
    /// The sender's handle, or the system desk's name.
    pub from: String,
    pub subject: String,
    pub body: String,
    pub sent_at: i64,
    pub read_at: Option<i64>,
    pub reply_to: Option<i64>,
}

impl Message {
    /// True until the message is first read.
    pub fn unread(&self) -> bool {
        self.read_at.is_none()
    }
}

impl From<MessageRow> for Message {
    fn from(row: MessageRow) -> Message {
        // A kind the database allows but this build does not know reads as system mail.
        let kind = MailKind::parse(&row.kind).unwrap_or(MailKind::Reminder);
        let from = match (&row.from_handle, kind) {
            (Some(handle), _) => handle.clone(),
            (None, kind) => kind.system_sender().to_string(),
        };
        Message {
            id: row.id,
            kind,
            from_player: row.from_player,
            from,
            subject: row.subject,
            body: row.body,
            sent_at: row.sent_at,
            read_at: row.read_at,
            reply_to: row.reply_to,
        }
    }
}

/// A checked subject and body, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub subject: String,
    pub body: String,
}

/// Checks and tidies a subject and body: line ends become `\n`, other control characters are
/// dropped, trailing space is trimmed, an empty subject becomes "(no subject)".
pub fn validate(subject: &str, body: &str) -> Result<Draft, InboxError> {
    let clean = |s: &str, keep_newlines: bool| -> String {
        s.replace("\r\n", "\n")
            .replace('\r', "\n")
            .chars()
            .filter(|c| !c.is_control() || (keep_newlines && *c == '\n'))
            .collect::<String>()
    };
    let subject = clean(subject, false).trim().to_string();
    let body = clean(body, true).trim_end().to_string();
    if body.trim().is_empty() {
        return Err(InboxError::EmptyBody);
    }
    let len = body.chars().count();
    if len > BODY_MAX {
        return Err(InboxError::BodyTooLong { len, max: BODY_MAX });
    }
    let len = subject.chars().count();
    if len > SUBJECT_MAX {
        return Err(InboxError::SubjectTooLong {
            len,
            max: SUBJECT_MAX,
        });
    }
    let subject = if subject.is_empty() {
        "(no subject)".to_string()
    } else {
        subject
    };
    Ok(Draft { subject, body })
}

/// The subject of a reply: "Re: " once, cut to fit.
pub fn reply_subject(subject: &str) -> String {
    let base = subject.strip_prefix("Re: ").unwrap_or(subject);
    format!("Re: {base}").chars().take(SUBJECT_MAX).collect()
}

/// The arguments of a [`DELIVER`] job.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Delivery {
    to: i64,
    from: i64,
    subject: String,
    body: String,
    reply_to: Option<i64>,
}

/// Sends mail from `from` to the player called `to_handle` on the same system. The message is
/// delivered by the job runner; returns the delivery job's id.
pub async fn send(
    db: &Db,
    from: &Player,
    to_handle: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<i64, InboxError> {
    let draft = validate(subject, body)?;
    let to = si::player_by_handle(db, &from.system, to_handle)
        .await?
        .ok_or_else(|| InboxError::UnknownRecipient(to_handle.trim().to_string()))?;
    enqueue_delivery(db, from.id, to.id, draft, None, now).await
}

/// Answers message `message_id` in `player`'s inbox; returns the delivery job's id.
pub async fn reply(
    db: &Db,
    player: &Player,
    message_id: i64,
    body: &str,
    now: i64,
) -> Result<i64, InboxError> {
    let original = si::get(db, player.id, message_id)
        .await?
        .ok_or(InboxError::NoSuchMessage)?;
    let Some(to) = original.from_player else {
        return Err(InboxError::CannotReplyToSystem);
    };
    let draft = validate(&reply_subject(&original.subject), body)?;
    enqueue_delivery(db, player.id, to, draft, Some(original.id), now).await
}

async fn enqueue_delivery(
    db: &Db,
    from: i64,
    to: i64,
    draft: Draft,
    reply_to: Option<i64>,
    now: i64,
) -> Result<i64, InboxError> {
    let payload = serde_json::to_value(Delivery {
        to,
        from,
        subject: draft.subject,
        body: draft.body,
        reply_to,
    })
    .map_err(JobError::from)?;
    let mut job = Enqueue::new(DELIVER, payload, now);
    job.max_attempts = 10;
    // Without a dedupe key the insert always adds a row.
    Ok(jobs::enqueue(db, job, now)
        .await?
        .ok_or(JobError::Duplicate)?)
}

/// Stores a delivery job's message; running it twice stores it once.
pub async fn deliver(db: &Db, job: &Job, now: i64) -> Result<(), InboxError> {
    let d: Delivery = serde_json::from_str(&job.payload).map_err(JobError::from)?;
    si::insert(
        db,
        &NewMessage {
            to_player: d.to,
            from_player: Some(d.from),
            kind: MailKind::Player.as_str(),
            subject: &d.subject,
            body: &d.body,
            reply_to: d.reply_to,
            delivery_key: &format!("job:{}", job.id),
        },
        now,
    )
    .await?;
    Ok(())
}

/// The job handlers of the inbox: [`DELIVER`].
pub fn handlers(db: &Db) -> Handlers {
    let mut h = Handlers::new();
    let db = db.clone();
    h.register(DELIVER, move |job, now| {
        let db = db.clone();
        async move { deliver(&db, &job, now).await.map_err(|e| log_error(&e)) }
    });
    h
}

/// The text stored as a job's last error: the full cause, not the player's "internal error".
fn log_error(e: &InboxError) -> String {
    match e {
        InboxError::Store(s) => s.to_string(),
        InboxError::Jobs(j) => format!("{j:?}"),
        other => other.to_string(),
    }
}

/// Writes system mail to `to_player` now. `key` makes the call idempotent: a second call with
/// the same key stores nothing and returns `None`.
pub async fn send_system(
    db: &Db,
    to_player: i64,
    kind: MailKind,
    subject: &str,
    body: &str,
    key: &str,
    now: i64,
) -> Result<Option<i64>, InboxError> {
    let draft = validate(subject, body)?;
    Ok(si::insert(
        db,
        &NewMessage {
            to_player,
            from_player: None,
            kind: kind.as_str(),
            subject: &draft.subject,
            body: &draft.body,
            reply_to: None,
            delivery_key: &format!("sys:{key}"),
        },
        now,
    )
    .await?)
}

/// A player's messages, newest first (deleted ones left out).
pub async fn list(db: &Db, player_id: i64) -> Result<Vec<Message>, InboxError> {
    Ok(si::list(db, player_id, LIST_MAX)
        .await?
        .into_iter()
        .map(Message::from)
        .collect())
}

/// Reads a message and marks it read.
pub async fn read(db: &Db, player_id: i64, id: i64, now: i64) -> Result<Message, InboxError> {
    let mut m: Message = si::get(db, player_id, id)
        .await?
        .ok_or(InboxError::NoSuchMessage)?
        .into();
    if m.read_at.is_none() {
        si::mark_read(db, player_id, id, now).await?;
        m.read_at = Some(now);
    }
    Ok(m)
}

/// Deletes a message from a player's inbox.
pub async fn delete(db: &Db, player_id: i64, id: i64) -> Result<(), InboxError> {
    if si::delete(db, player_id, id).await? {
        Ok(())
    } else {
        Err(InboxError::NoSuchMessage)
    }
}

/// How many unread messages a player has.
pub async fn unread_count(db: &Db, player_id: i64) -> Result<i64, InboxError> {
    Ok(si::unread_count(db, player_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_explains_what_is_wrong() {
        assert!(matches!(
            validate("hi", "  \n "),
            Err(InboxError::EmptyBody)
        ));
        let long = "x".repeat(BODY_MAX + 1);
        assert!(matches!(
            validate("hi", &long),
            Err(InboxError::BodyTooLong { len, max: BODY_MAX }) if len == BODY_MAX + 1
        ));
        assert!(matches!(
            validate(&"s".repeat(61), "body"),
            Err(InboxError::SubjectTooLong { .. })
        ));
        let d = validate("", "line one\r\nline\x07 two  ").unwrap();
        assert_eq!(d.subject, "(no subject)");
        assert_eq!(d.body, "line one\nline two");
        assert_eq!(
            InboxError::UnknownRecipient("Zed".into()).to_string(),
            "nobody called \"Zed\" plays here"
        );
    }

    #[test]
    fn reply_subject_adds_re_once() {
        assert_eq!(reply_subject("Junk bonds"), "Re: Junk bonds");
        assert_eq!(reply_subject("Re: Junk bonds"), "Re: Junk bonds");
        assert_eq!(reply_subject(&"y".repeat(80)).chars().count(), SUBJECT_MAX);
    }

    #[test]
    fn kinds_round_trip() {
        for k in [
            MailKind::Player,
            MailKind::Fill,
            MailKind::MarginCall,
            MailKind::Reminder,
            MailKind::Tip,
        ] {
            assert_eq!(MailKind::parse(k.as_str()), Some(k));
        }
    }
}
