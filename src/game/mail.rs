//! The inbox screens, as pure builders: the message list, one message, and the compose form's
//! framing. The flow between them (and every database call) is in [`super::app`].
//!
//! Like every game screen these are described once and laid out for 40-column ATASCII,
//! 80-column ANSI or plain ASCII; they never draw wider than the caller's line.

use crate::inbox::{MailKind, Message};
use crate::terminal::out::Style;
use crate::terminal::screen::{Align, Screen, Table};
use crate::terminal::Caps;

use super::screens::{narrow, Status};

/// The inbox's key prompt.
pub fn list_prompt(caps: &Caps) -> &'static str {
    if narrow(caps) {
        "R)ead W)rite D)el Q)uit"
    } else {
        "R: read  W: write  D: delete  Q: back to the board"
    }
}

/// The prompt under one message.
pub fn message_prompt(can_answer: bool, caps: &Caps) -> &'static str {
    match (can_answer, narrow(caps)) {
        (true, true) => "A)nswer D)el, any key",
        (true, false) => "A: answer  D: delete  any other key: back",
        (false, true) => "D)el, any key: back",
        (false, false) => "D: delete  any other key: back",
    }
}

/// The sent date the way the list shows it: month/day and UTC time.
fn when(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let (_, m, d) = civil_from_days(days);
    let t = secs.rem_euclid(86_400);
    format!("{m:02}/{d:02} {:02}:{:02}", t / 3600, t / 60 % 60)
}

/// Year, month and day of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Cuts text to `max` characters, marking the cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('.');
        s
    }
}

/// The list of messages, newest first, numbered from 1.
pub fn list(
    status: &Status,
    messages: &[Message],
    notice: Option<(&str, Style)>,
    caps: &Caps,
) -> Screen {
    let n = narrow(caps);
    let unread = messages.iter().filter(|m| m.unread()).count();
    let mut s = Screen::new()
        .line_styled(&status.text(caps), Style::Emphasis)
        .title(&format!("Inbox: {} messages, {unread} new", messages.len()));
    if messages.is_empty() {
        s = s
            .paragraph("No mail. Nobody writes to a trader who is losing.")
            .blank();
    } else {
        let mut t = Table::new()
            .column("#", Align::Right, 0)
            .column("", Align::Left, 0)
            .column("From", Align::Left, 0)
            .column("Subject", Align::Left, 0)
            .column("Sent", Align::Left, 1);
        let (from_w, subj_w) = if n { (8, 16) } else { (14, 34) };
        for (i, m) in messages.iter().enumerate() {
            t.push_row([
                (i + 1).to_string(),
                if m.unread() { "*".into() } else { " ".into() },
                cut(&m.from, from_w),
                cut(&m.subject, subj_w),
                when(m.sent_at),
            ]);
        }
        s = s.table(t).line_styled("* new. Times are UTC.", Style::Dim);
    }
    if let Some((text, style)) = notice {
        s = s.line_styled(text, style);
    }
    s
}

/// One message in full.
pub fn message(status: &Status, m: &Message, caps: &Caps) -> Screen {
    let kind = match m.kind {
        MailKind::Player => "",
        MailKind::Fill => " (fill)",
        MailKind::MarginCall => " (margin call)",
        MailKind::Reminder => " (notice)",
        MailKind::Tip => " (tip)",
    };
    let mut s = Screen::new()
        .line_styled(&status.text(caps), Style::Emphasis)
        .title(&m.subject)
        .line_styled(&format!("From: {}{kind}", m.from), Style::Emphasis)
        .line_styled(&format!("Sent: {} UTC", when(m.sent_at)), Style::Dim)
        .blank();
    for para in m.body.split('\n') {
        s = if para.trim().is_empty() {
            s.blank()
        } else {
            s.paragraph(para)
        };
    }
    s.blank()
}

/// The compose form's heading: who it goes to and how to finish.
pub fn compose(status: &Status, to: Option<&str>, subject: Option<&str>, caps: &Caps) -> Screen {
    let mut s = Screen::new()
        .line_styled(&status.text(caps), Style::Emphasis)
        .title("Write a message");
    if let Some(to) = to {
        s = s.line(&format!("To: {to}"));
    }
    if let Some(subject) = subject {
        s = s.line(&format!("Subject: {subject}"));
    }
    let help = if narrow(caps) {
        "Type the message. An empty line ends it; ESC cancels."
    } else {
        "Type the message line by line. An empty line ends it; ESC cancels it."
    };
    s.paragraph_styled(help, Style::Dim)
}

/// The longest line the compose editor takes at this width.
pub fn body_line_len(caps: &Caps) -> usize {
    caps.line_width().saturating_sub(3).max(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terminal::testing::check;

    fn status() -> Status {
        Status {
            cash: 100,
            net_worth: 200,
            open: true,
            minutes_left: 9,
            unread: 1,
            session: None,
            season_left_ms: None,
        }
    }

    fn msg(id: i64, from: &str, subject: &str, read: bool) -> Message {
        Message {
            id,
            kind: MailKind::Player,
            from_player: Some(7),
            from: from.into(),
            subject: subject.into(),
            body: "Lunch is for wimps.\n\nCall me.".into(),
            sent_at: 1_700_000_000_000,
            read_at: read.then_some(1),
            reply_to: None,
        }
    }

    #[test]
    fn login_news_tells_the_end_and_the_mail() {
        use crate::game::screens::{welcome, welcome_news, LoginNews};
        let news = LoginNews {
            ends_in: Some(3 * 86_400_000 + 5),
            unread: 2,
        };
        check(
            |c| welcome_news(welcome("Bud", "Season 2", false, 0), &news).render(c),
            &["This season ends in 3 days.", "You have 2 new messages."],
        );
        let over = LoginNews {
            ends_in: Some(-1),
            unread: 0,
        };
        check(
            |c| welcome_news(welcome("Bud", "S", false, 0), &over).render(c),
            &["This season is over"],
        );
    }

    #[test]
    fn dates_are_month_day_and_utc_time() {
        assert_eq!(when(1_700_000_000_000), "11/14 22:13");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn the_list_fits_40_and_80_columns() {
        let list_of = vec![
            msg(
                1,
                "Gordon Gekko the Third",
                "A very long subject about Bluestar Airlines",
                false,
            ),
            msg(2, "Bud", "Re: Teldar", true),
        ];
        let st = status();
        check(
            |c| list(&st, &list_of, Some(("Sent.", Style::Success)), c).render(c),
            &["Inbox: 2 messages, 1 new", "Re: Teldar", "Sent."],
        );
        check(|c| list(&st, &[], None, c).render(c), &["No mail."]);
    }

    #[test]
    fn a_message_shows_sender_and_body() {
        let st = status();
        let m = msg(1, "Gordon", "Teldar", false);
        check(
            |c| message(&st, &m, c).render(c),
            &["From: Gordon", "Lunch is for wimps.", "Call me."],
        );
        check(
            |c| compose(&st, Some("Bud"), Some("Re: Teldar"), c).render(c),
            &["To: Bud", "Subject: Re: Teldar", "empty line"],
        );
    }
}
