//! One caller's whole call: lobby, detection, a node, login, menus, goodbye.
//!
//! [`run_call`] is the only entry point. It is given an [`Incoming`] by any transport (TCP
//! listener, serial line, modem) and a shared [`Context`], and it always writes the call's
//! row in the call log, whatever ends the call. The node is held as a guard inside the
//! [`Term`], so it is freed on every exit path.

pub mod art;
pub mod doors;
pub mod lobby;
pub mod login;
pub mod menu;
mod rlogin;
pub mod term;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::Config;
use crate::node::{NodeManager, NodeRequest};
use crate::store::calls::{self, CallRecord};
use crate::store::Db;
use crate::terminal::out::Style;
use crate::terminal::screen::Screen;
use crate::terminal::{Caps, Charset};
use crate::transport::connection::Connection;
use crate::transport::{Incoming, TelnetMode};

use self::term::{End, Term};

/// What every session shares: configuration, database, node pool, art.
pub struct Context {
    pub config: Arc<Config>,
    pub db: Db,
    pub nodes: NodeManager,
    pub art: art::Art,
    /// Places in the pre-login lobby (callers who hold no node yet).
    pub lobby: Arc<tokio::sync::Semaphore>,
    /// Cancelled when the BBS shuts down.
    pub shutdown: CancellationToken,
    /// How many callers are in each door, across nodes.
    pub door_slots: crate::door::DoorSlots,
    /// The order writer's socket, when this node manager runs one.
    pub order_writer: Option<std::path::PathBuf>,
}

/// Runs one call from connect to hang-up.
pub async fn run_call(ctx: Arc<Context>, incoming: Incoming) {
    let span = tracing::info_span!(
        "call",
        transport = incoming.kind.as_str(),
        peer = %incoming.peer,
        node = tracing::field::Empty,
        user = tracing::field::Empty,
    );
    async move {
        let started_at = crate::store::now_ms();
        let (transport, peer) = (incoming.kind.as_str(), incoming.peer.clone());
        tracing::info!(caller_id = incoming.caller_id.as_deref(), "connected");
        let mut outcome = Outcome::default();
        let end = call(&ctx, incoming, &mut outcome).await;
        match &end {
            End::Internal(why) => tracing::error!(reason = %why, "call ended by an internal error"),
            other => tracing::info!(reason = other.as_str(), "call ended"),
        }
        let record = CallRecord {
            started_at,
            transport,
            peer: &peer,
            node: outcome.node,
            charset: outcome.charset.map(Charset::as_str),
            user_id: outcome.user_id,
            end_reason: end.as_str(),
            door_ms: outcome.door_ms,
        };
        if let Err(e) = calls::record(&ctx.db, &record).await {
            tracing::error!(error = %e, "cannot write the call log");
        }
    }
    .instrument(span)
    .await
}

/// What became known during a call, for the call log.
#[derive(Debug, Default)]
struct Outcome {
    node: Option<u16>,
    charset: Option<Charset>,
    user_id: Option<i64>,
    /// Time spent in doors, in ms.
    door_ms: i64,
}

async fn call(ctx: &Context, incoming: Incoming, outcome: &mut Outcome) -> End {
    if incoming.kind == crate::transport::TransportKind::Rlogin {
        return rlogin::call(ctx, incoming, outcome).await;
    }
    let limits = &ctx.config.limits;
    let Ok(lobby_place) = ctx.lobby.clone().try_acquire_owned() else {
        let mut conn = Connection::new(incoming.stream, TelnetMode::Never, None);
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            conn.send(b"Too many callers are waiting. Please try again in a minute."),
        )
        .await;
        conn.close().await;
        return End::Busy;
    };
    let meta = incoming_meta(&incoming);
    let conn = Connection::new(incoming.stream, incoming.telnet, incoming.line_bps);
    let initial = incoming
        .charset
        .forced()
        .map(Caps::for_charset)
        .unwrap_or_else(|| Caps::for_charset(Charset::Ascii));
    let mut term = Term::new(
        conn,
        initial,
        Duration::from_secs(limits.idle_timeout_secs),
        ctx.shutdown.clone(),
    );
    let end = match session(ctx, &mut term, &meta, lobby_place, outcome).await {
        Ok(()) => End::Logoff,
        Err(end) => end,
    };
    // Say goodbye where the caller can still hear it.
    let farewell = match &end {
        End::Shutdown => Some("The BBS is shutting down now. Goodbye!"),
        End::Idle => Some("Idle too long. Goodbye!"),
        End::Internal(_) => Some("Something broke on our side. Please call again later."),
        _ => None,
    };
    if let Some(text) = farewell {
        let mut out = term.out();
        out.newline();
        out.styled(text, Style::Warning);
        out.newline();
        let _ = tokio::time::timeout(Duration::from_secs(2), term.send(out)).await;
    }
    outcome.door_ms = i64::try_from(term.door_time().as_millis()).unwrap_or(i64::MAX);
    let (bytes_in, bytes_out) = term.close().await;
    tracing::debug!(bytes_in, bytes_out, "connection closed");
    end
}

/// The parts of an [`Incoming`] the session needs after the stream is taken.
struct Meta {
    kind: crate::transport::TransportKind,
    peer: String,
    charset: Option<Charset>,
    line_bps: Option<u32>,
}

fn incoming_meta(incoming: &Incoming) -> Meta {
    Meta {
        kind: incoming.kind,
        peer: incoming.peer.clone(),
        charset: incoming.charset.forced(),
        line_bps: incoming.line_bps,
    }
}

async fn session(
    ctx: &Context,
    term: &mut Term,
    meta: &Meta,
    lobby_place: tokio::sync::OwnedSemaphorePermit,
    outcome: &mut Outcome,
) -> Result<(), End> {
    let limits = &ctx.config.limits;
    let detected = lobby::run(
        term,
        meta.charset,
        lobby::LobbyTimes {
            lobby_timeout: Duration::from_secs(limits.lobby_timeout_secs),
            telnet_wait: Duration::from_millis(limits.telnet_wait_ms),
            probe_timeout: Duration::from_millis(limits.probe_timeout_ms),
        },
    )
    .await?;
    term.set_caps(detected.caps);
    term.discard_typeahead();
    outcome.charset = Some(detected.caps.charset);
    tracing::info!(
        charset = detected.caps.charset.as_str(),
        width = detected.caps.width,
        height = detected.caps.height,
        evidence = detected.evidence,
        "terminal detected"
    );

    // Only now, with a human at the keyboard, is a node taken.
    let request = NodeRequest {
        transport: meta.kind,
        peer: meta.peer.clone(),
        caps: detected.caps,
        line_bps: meta.line_bps,
    };
    let Some(node) = ctx.nodes.try_acquire(request) else {
        let mut out = term.out();
        out.newline();
        out.styled(
            "All lines are busy. Please call again later.",
            Style::Warning,
        );
        out.newline();
        term.send(out).await?;
        return Err(End::Busy);
    };
    drop(lobby_place);
    let number = node.number();
    outcome.node = Some(number);
    tracing::Span::current().record("node", number);
    term.attach_node(node);

    // Welcome.
    let mut out = term.out();
    out.newline();
    term.send(out).await?;
    // Hand-drawn art when there is some for this charset (a key skips it on a slow line),
    // then the words every caller gets.
    let caps = term.caps();
    let full = match ctx.art.load("welcome", caps.charset) {
        Some(art) => {
            term.show_art(&art).await?;
            false
        }
        None => true,
    };
    term.write(&welcome_screen(ctx, number, full).render(&caps))
        .await?;

    let rules = login::LoginRules {
        attempts: limits.login_attempts,
        failure_delay: Duration::from_secs(limits.login_failure_delay_secs),
    };
    let login = login::login(term, &ctx.db, rules).await?;
    let mut user = login.user;
    outcome.user_id = Some(user.id);
    tracing::Span::current().record("user", user.handle.as_str());
    tracing::info!("logged in");
    if let Some(node) = term.node() {
        node.set_user(&user.handle);
    }
    adopt_saved_terminal(term, &user).await?;
    if !login.registered {
        let last = login
            .previous_login_at
            .map(|at| format!(" Your last call was {}.", ago(crate::store::now_ms() - at)))
            .unwrap_or_default();
        term.say(
            &format!(
                "Welcome back, {}. This is call number {} for you.{last}",
                user.handle, user.times_on
            ),
            Style::Success,
        )
        .await?;
    }
    term.pause().await?;

    menu::main_menu(term, ctx, &mut user).await?;

    if let Some(node) = term.node() {
        node.set_activity(crate::node::Activity::LoggingOff);
    }
    let goodbye = ctx
        .art
        .load("goodbye", term.caps().charset)
        .unwrap_or_else(|| goodbye_screen(ctx, &user.handle).render(&term.caps()));
    term.write(&goodbye).await?;
    Ok(())
}

/// Applies the user's saved terminal. Whether the caller is on an Atari is a fact of this
/// call (the RETURN key said so), so ATASCII is never forced on or off by a saved setting; between
/// ANSI and plain ASCII the user's saved choice wins over detection. The saved size applies
/// unless the client reported its window size.
async fn adopt_saved_terminal(
    term: &mut Term,
    user: &crate::store::users::User,
) -> Result<(), End> {
    let caps = term.caps();
    let atari_now = caps.charset == Charset::Atascii;
    let atari_saved = user.charset == Charset::Atascii;
    if atari_now != atari_saved {
        return term
            .say(
                &format!(
                    "(Your saved terminal is {}; this call uses {}. Change it under Settings.)",
                    user.charset, caps.charset
                ),
                Style::Dim,
            )
            .await;
    }
    let (width, height) = match term.naws() {
        Some(size) => size,
        None => (user.width, user.height),
    };
    term.set_caps(Caps {
        charset: user.charset,
        width,
        height,
        color: user.charset == Charset::Ansi,
    });
    Ok(())
}

/// "today", "yesterday", "5 days ago".
fn ago(ms: i64) -> String {
    match ms / 86_400_000 {
        i64::MIN..=0 => "today".into(),
        1 => "yesterday".into(),
        days => format!("{days} days ago"),
    }
}

/// The welcome words; `full` adds a cleared screen and a title for callers without art.
fn welcome_screen(ctx: &Context, node: u16, full: bool) -> Screen {
    let screen = if full {
        Screen::new().title(&format!("Welcome to {}", ctx.config.bbs.name))
    } else {
        Screen::continued().line(&format!("Welcome to {}", ctx.config.bbs.name))
    };
    screen
        .paragraph(
            "Home of NuggetNet, the loosely regulated exchange where greed is good, lunch is \
             for wimps and the modems are loud.",
        )
        .blank()
        .line(&format!(
            "You are on node {node} of {}. Sysop: {}.",
            ctx.nodes.size(),
            ctx.config.bbs.sysop
        ))
        .blank()
}

fn goodbye_screen(ctx: &Context, handle: &str) -> Screen {
    Screen::continued()
        .blank()
        .title("Goodbye")
        .paragraph(&format!(
            "Thanks for calling {}, {handle}. Buy low, sell high, and hang up gently.",
            ctx.config.bbs.name
        ))
        .blank()
}
