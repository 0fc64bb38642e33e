//! A linked BBS's caller on the rlogin listener: straight into the NuggetNet door.
//!
//! The linking system sends the RFC 1282 handshake with its shared secret and `[TAG]handle`
//! (see `transport::rlogin`). A known tag with the right secret gets a node and plays
//! NuggetNet, mounted in this process, as the player `(tag, handle)`; anything else is told
//! why in one plain line and disconnected. There is no login, lobby or menu: the linking BBS
//! already knows its user.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::dropfile::{Comm, DropInfo, Emulation};
use crate::game::{DoorIo, DoorOptions};
use crate::node::{Activity, NodeRequest};
use crate::terminal::detect::charset_from_ttype;
use crate::terminal::{Caps, Charset};
use crate::transport::rlogin::{Handshake, HANDSHAKE_MAX};
use crate::transport::{Incoming, Stream};

use super::term::End;
use super::{Context, Outcome};

/// How long a linking system gets to send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a linked caller may stay in the game per call.
const LINKED_MINUTES: u32 = 60;

/// Runs one rlogin call.
pub(super) async fn call(ctx: &Context, incoming: Incoming, outcome: &mut Outcome) -> End {
    let mut stream = incoming.stream;
    // RFC 1282: one zero byte acknowledges; linking clients accept it early.
    if stream.write_all(&[0]).await.is_err() {
        return End::Hangup;
    }
    let handshake = match read_handshake(&mut stream).await {
        Ok(h) => h,
        Err(end) => return end,
    };
    let (tag, handle) = match handshake.tag_and_handle() {
        Ok(pair) => pair,
        Err(e) => return refuse(stream, &format!("Link refused: {e}.")).await,
    };
    let Some(link) = ctx
        .config
        .links
        .iter()
        .find(|l| l.tag.eq_ignore_ascii_case(&tag))
    else {
        tracing::warn!(%tag, "rlogin from an unknown system");
        return refuse(stream, &format!("Link refused: unknown system [{tag}].")).await;
    };
    if !link.secret_matches(&handshake.client_user) {
        tracing::warn!(%tag, "rlogin with a wrong secret");
        return refuse(stream, &format!("Link refused: wrong secret for [{tag}].")).await;
    }
    let tag = link.tag.clone();

    let names = [handshake.terminal.clone()];
    let charset = charset_from_ttype(&names).unwrap_or(Charset::Ascii);
    let caps = Caps::for_charset(charset);
    outcome.charset = Some(charset);
    let Some(node) = ctx.nodes.try_acquire(NodeRequest {
        transport: incoming.kind,
        peer: incoming.peer.clone(),
        caps,
        line_bps: None,
    }) else {
        return refuse(stream, "All lines are busy. Please call again later.").await;
    };
    outcome.node = Some(node.number());
    tracing::Span::current().record("node", node.number());
    let who = format!("{handle} [{tag}]");
    tracing::Span::current().record("user", who.as_str());
    node.set_user(&who);
    node.set_activity(Activity::InDoor("NuggetNet".into()));
    tracing::info!(%tag, %handle, terminal = %handshake.terminal, "linked caller");

    let info = DropInfo {
        bbs_name: link.name.clone().unwrap_or_else(|| tag.clone()),
        alias: handle,
        minutes_left: LINKED_MINUTES,
        emulation: match charset {
            Charset::Ansi => Emulation::Ansi,
            Charset::Atascii => Emulation::Atascii,
            Charset::Ascii => Emulation::Ascii,
        },
        width: caps.width,
        height: caps.height,
        node: node.number(),
        comm: Comm::Local,
        ..DropInfo::default()
    };
    let options = DoorOptions {
        dropfile: Default::default(),
        database_url: crate::store::absolute_url(&ctx.config.database.url),
        writer: ctx.order_writer.clone(),
        atascii: charset == Charset::Atascii,
        telnet: false,
        system: Some(tag),
        idle: Duration::from_secs(ctx.config.limits.idle_timeout_secs),
    };
    let game = crate::game::run(&options, &info, DoorIo::Stream(stream));
    let end = tokio::select! {
        result = game => match result {
            Ok(_) => End::Logoff,
            Err(e) => End::Internal(format!("NuggetNet: {e}")),
        },
        _ = ctx.shutdown.cancelled() => End::Shutdown,
    };
    drop(node);
    end
}

/// Reads the four-field handshake, refusing what is too long or too slow.
async fn read_handshake(stream: &mut Box<dyn Stream>) -> Result<Handshake, End> {
    let mut buf = BytesMut::with_capacity(256);
    let read = async {
        loop {
            match Handshake::parse(&buf) {
                Ok(Some((handshake, _))) => return Ok(handshake),
                Ok(None) if buf.len() >= HANDSHAKE_MAX => {
                    return Err("the rlogin handshake is too long".to_string())
                }
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return Err(String::new()),
                Ok(_) => {}
            }
        }
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, read).await {
        Ok(Ok(handshake)) => Ok(handshake),
        Ok(Err(why)) if why.is_empty() => Err(End::Hangup),
        Ok(Err(why)) => {
            tracing::info!(reason = %why, "rlogin handshake refused");
            let _ = stream
                .write_all(format!("Link refused: {why}.\r\n").as_bytes())
                .await;
            Err(End::LoginFailed)
        }
        Err(_) => Err(End::Idle),
    }
}

/// Tells the linking system why, in one plain line, and hangs up.
async fn refuse(mut stream: Box<dyn Stream>, why: &str) -> End {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(why.as_bytes()).await;
        let _ = stream.write_all(b"\r\n").await;
        let _ = stream.shutdown().await;
    })
    .await;
    if why.starts_with("All lines") {
        End::Busy
    } else {
        End::LoginFailed
    }
}
