//! The main menu and what hangs off it: who's online, node messages, settings, logoff.

use std::time::SystemTime;

use crate::node::{Activity, NodeManager, NodeMessage, NodeStatus};
use crate::store::users::{self, User};
use crate::store::Db;
use crate::terminal::keys::Key;
use crate::terminal::line::{Filter, LineOptions};
use crate::terminal::out::Style;
use crate::terminal::screen::{Align, Screen, Table};

use super::login::{self, choose_terminal, describe, PASSWORD_MIN};
use super::term::{End, Term};
use super::Context;

/// Longest node message.
pub const MESSAGE_MAX: usize = 70;

/// The main menu loop; returns when the caller logs off.
pub async fn main_menu(term: &mut Term, ctx: &Context, user: &mut User) -> Result<(), End> {
    let mut show_menu = true;
    loop {
        set_activity(term, Activity::MainMenu);
        if show_menu {
            term.show(&menu_screen(ctx, user)).await?;
        }
        show_menu = true;
        let key = term.hotkey("Command:").await?;
        let choice = match key {
            Key::Char(c) => c.to_ascii_uppercase(),
            Key::Enter => {
                // RETURN redraws the menu.
                continue;
            }
            _ => {
                show_menu = false;
                newline(term).await?;
                continue;
            }
        };
        newline(term).await?;
        match choice {
            // Lists and replies stay on screen under a fresh prompt; RETURN redraws the menu.
            'W' => {
                who(term, &ctx.nodes).await?;
                show_menu = false;
            }
            'M' => {
                message(term, &ctx.nodes, user).await?;
                show_menu = false;
            }
            'S' => settings(term, &ctx.db, user).await?,
            'D' if !ctx.config.doors.is_empty() => super::doors::door_menu(term, ctx, user).await?,
            'G' | 'Q' => {
                if term.confirm("Log off now?", true).await? {
                    return Ok(());
                }
            }
            '?' => {}
            _ => {
                term.say("No such command. Press ? for the menu.", Style::Error)
                    .await?;
                show_menu = false;
            }
        }
    }
}

fn set_activity(term: &Term, activity: Activity) {
    if let Some(node) = term.node() {
        node.set_activity(activity);
    }
}

async fn newline(term: &mut Term) -> Result<(), End> {
    let mut out = term.out();
    out.newline();
    term.send(out).await
}

fn menu_screen(ctx: &Context, user: &User) -> Screen {
    let node = ctx.nodes.in_use();
    let mut items = vec![
        ('W', "Who's online"),
        ('M', "Message a node"),
        ('S', "Your settings"),
    ];
    // The door menu appears only when doors are configured.
    if !ctx.config.doors.is_empty() {
        items.push(('D', "Doors"));
    }
    items.push(('G', "Goodbye (log off)"));
    Screen::new()
        .title(&format!("{} - Main Menu", ctx.config.bbs.name))
        .paragraph(&format!(
            "Logged in as {}. {} of {} lines in use.",
            user.handle,
            node,
            ctx.nodes.size()
        ))
        .blank()
        .menu(&items)
        .blank()
}

/// Who's online: one row per occupied node.
pub async fn who(term: &mut Term, nodes: &NodeManager) -> Result<(), End> {
    set_activity(term, Activity::WhoIsOnline);
    term.show(&who_screen(&nodes.snapshot(), nodes.size()))
        .await?;
    Ok(())
}

/// The who's-online table.
pub fn who_screen(snapshot: &[NodeStatus], size: u16) -> Screen {
    let now = SystemTime::now();
    let mut table = Table::new()
        .column("Node", Align::Right, 0)
        .column("User", Align::Left, 0)
        .column("Doing", Align::Left, 1)
        .column("Line", Align::Left, 3)
        .column("On", Align::Right, 2);
    for s in snapshot {
        table.push_row({
            let minutes = now
                .duration_since(s.since)
                .map(|d| d.as_secs() / 60)
                .unwrap_or(0);
            let line = match s.line_bps {
                Some(bps) => format!("{} {bps}", s.transport.as_str()),
                None => s.transport.as_str().to_string(),
            };
            [
                s.node.to_string(),
                s.user.clone().unwrap_or_else(|| "(logging in)".into()),
                s.activity.to_string(),
                line,
                format!("{minutes}m"),
            ]
        });
    }
    Screen::continued()
        .title(&format!(
            "Who's online ({} of {size} nodes)",
            snapshot.len()
        ))
        .table(table)
        .blank()
}

/// Sends a one-line message to another node.
async fn message(term: &mut Term, nodes: &NodeManager, user: &User) -> Result<(), End> {
    set_activity(term, Activity::SendingMessage);
    let me = term.node().map(|n| n.number()).unwrap_or(0);
    let others: Vec<NodeStatus> = nodes
        .snapshot()
        .into_iter()
        .filter(|s| s.node != me)
        .collect();
    if others.is_empty() {
        term.say("Nobody else is on right now.", Style::Warning)
            .await?;
        return Ok(());
    }
    term.show(&who_screen(&others, nodes.size())).await?;
    let answer = term
        .line(
            "Send to node (RETURN cancels):",
            LineOptions {
                max_len: 5,
                filter: Filter::Digits,
                ..LineOptions::default()
            },
        )
        .await?;
    if answer.is_empty() {
        return Ok(());
    }
    let Ok(to) = answer.parse::<u16>() else {
        term.say("That is not a node number.", Style::Error).await?;
        return Ok(());
    };
    if to == me {
        term.say("Talking to yourself? Pick another node.", Style::Error)
            .await?;
        return Ok(());
    }
    if nodes.status(to).is_none() {
        term.say(&format!("Nobody is on node {to}."), Style::Error)
            .await?;
        return Ok(());
    }
    let width = usize::from(term.caps().width).saturating_sub(10);
    let text = term
        .line(
            "Message:",
            LineOptions {
                max_len: MESSAGE_MAX.min(width.max(20)),
                filter: Filter::Printable,
                ..LineOptions::default()
            },
        )
        .await?;
    let text = text.trim();
    if text.is_empty() {
        term.say("Nothing sent.", Style::Normal).await?;
        return Ok(());
    }
    let sent = nodes.send_message(
        to,
        NodeMessage {
            from_node: me,
            from_user: user.handle.clone(),
            text: text.to_string(),
        },
    );
    match sent {
        Ok(()) => {
            term.say(&format!("Sent to node {to}."), Style::Success)
                .await
        }
        Err(e) => term.say(&format!("Not sent: {e}."), Style::Error).await,
    }
}

/// Settings: terminal and password.
async fn settings(term: &mut Term, db: &Db, user: &mut User) -> Result<(), End> {
    let mut show_screen = true;
    loop {
        set_activity(term, Activity::Settings);
        if show_screen {
            let screen = Screen::new()
                .title("Your settings")
                .line(&format!("Terminal: {}", describe(&term.caps())))
                .blank()
                .menu(&[
                    ('T', "Terminal (charset and width)"),
                    ('P', "Change password"),
                    ('Q', "Back to the main menu"),
                ])
                .blank();
            term.show(&screen).await?;
        }
        // After an action its outcome stays on screen under a fresh prompt.
        show_screen = false;
        let key = term.hotkey("Settings (T, P, Q):").await?;
        newline(term).await?;
        match key {
            Key::Char(c) if c.eq_ignore_ascii_case(&'t') => {
                let caps = choose_terminal(term).await?;
                term.set_caps(caps);
                users::save_terminal(db, user.id, caps.charset, caps.width, caps.height)
                    .await
                    .map_err(|e| End::Internal(format!("database: {e}")))?;
                user.charset = caps.charset;
                user.width = caps.width;
                user.height = caps.height;
                term.say(&format!("Saved: {}.", describe(&caps)), Style::Success)
                    .await?;
            }
            Key::Char(c) if c.eq_ignore_ascii_case(&'p') => change_password(term, db, user).await?,
            Key::Char(c) if c.eq_ignore_ascii_case(&'q') => return Ok(()),
            Key::Enter | Key::Escape => return Ok(()),
            Key::Char('?') => show_screen = true,
            _ => {}
        }
    }
}

async fn change_password(term: &mut Term, db: &Db, user: &mut User) -> Result<(), End> {
    let options = login::password_options();
    let current = term.line("Current password:", options.clone()).await?;
    if !login::verify_password(current, user.password_hash.clone()).await? {
        term.say("That is not your password.", Style::Error).await?;
        return Ok(());
    }
    let first = term.line("New password:", options.clone()).await?;
    if first.chars().count() < PASSWORD_MIN {
        term.say("Too short: at least 6 characters.", Style::Error)
            .await?;
        return Ok(());
    }
    let second = term.line("Same again:", options).await?;
    if first != second {
        term.say("Those two did not match. Password unchanged.", Style::Error)
            .await?;
        return Ok(());
    }
    let hash = login::hash_password(first).await?;
    users::set_password_hash(db, user.id, &hash)
        .await
        .map_err(|e| End::Internal(format!("database: {e}")))?;
    user.password_hash = hash;
    term.say("Password changed.", Style::Success).await
}
