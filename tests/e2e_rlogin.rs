//! End-to-end: another BBS links NuggetNet over rlogin (RFC 1282). A known system with the
//! right secret gets its caller straight into the game as the player (tag, handle) and holds a
//! node while there; an unknown system or a wrong secret is refused in words.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, WAIT};
use nuggetnet::config::{LinkConfig, ListenerConfig, ListenerKind};
use nuggetnet::terminal::CharsetSetting;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server() -> TestServer {
    TestServer::start_with(2, |config| {
        config.listeners.push(ListenerConfig {
            kind: ListenerKind::Rlogin,
            bind: "127.0.0.1:0".parse().unwrap(),
            charset: CharsetSetting::Auto,
            bps: None,
        });
        config.links = vec![LinkConfig {
            tag: "DP".into(),
            secret: "open sesame".into(),
            name: Some("DoorParty".into()),
        }];
    })
    .await
}

/// Connects, sends the handshake and reads until `text` arrives or the link closes.
async fn link(addr: std::net::SocketAddr, handshake: &[u8], text: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(handshake).await.unwrap();
    let mut seen = Vec::new();
    let until = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(text) && Instant::now() < until {
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    (s, String::from_utf8_lossy(&seen).into_owned())
}

#[tokio::test]
async fn a_linked_system_gets_its_caller_into_the_game_as_tag_and_handle() {
    let t = server().await;
    let addr = t.server.local_addr(ListenerKind::Rlogin).unwrap();
    let (mut s, seen) = link(
        addr,
        b"\0open sesame\0[DP]Gordon Gekko\0ANSI/115200\0",
        "Press RETURN",
    )
    .await;
    assert!(
        seen.starts_with('\0'),
        "the RFC 1282 acknowledgement comes first"
    );
    assert!(seen.contains("Welcome, Gordon Gekko"), "{seen}");
    t.wait_nodes_in_use(1).await;
    let node = t.server.nodes().snapshot().remove(0);
    assert_eq!(node.user.as_deref(), Some("Gordon Gekko [DP]"));
    assert_eq!(node.activity.to_string(), "in door NuggetNet");
    assert_eq!(node.transport.as_str(), "rlogin");

    // The player is (tag, handle): the same handle from another system is someone else.
    let player = nuggetnet::store::players::find_or_create(t.server.db(), "DP", "gordon gekko")
        .await
        .unwrap();
    let ex = nuggetnet::exchange::Exchange::new(t.server.db().clone());
    let game = nuggetnet::game::season::current_game(&ex).await.unwrap().id;
    assert!(
        ex.account(game, player.id).await.is_ok(),
        "the door opened its account"
    );

    // Leaving the game ends the link and frees the node.
    s.write_all(b"\r").await.unwrap();
    s.write_all(b"g").await.unwrap();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            _ => assert!(Instant::now() < until, "the link stayed open after goodbye"),
        }
    }
    t.wait_nodes_in_use(0).await;
}

#[tokio::test]
async fn unknown_systems_and_wrong_secrets_are_refused_in_words() {
    let t = server().await;
    let addr = t.server.local_addr(ListenerKind::Rlogin).unwrap();
    let (_, seen) = link(addr, b"\0open sesame\0[XX]Bud\0ANSI\0", "refused").await;
    assert!(seen.contains("unknown system [XX]"), "{seen}");
    let (_, seen) = link(addr, b"\0guess\0[DP]Bud\0ANSI\0", "refused").await;
    assert!(seen.contains("wrong secret for [DP]"), "{seen}");
    let (_, seen) = link(addr, b"\0open sesame\0Bud\0ANSI\0", "refused").await;
    assert!(seen.contains("[TAG]handle"), "{seen}");
    let (_, seen) = link(addr, b"GET / HTTP/1.0\r\n\r\n", "refused").await;
    assert!(seen.contains("not an rlogin handshake"), "{seen}");
    assert_eq!(t.server.nodes().in_use(), 0, "refused links hold no node");
}
