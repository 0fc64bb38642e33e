//! End-to-end: hostile and careless callers. Whatever they send, the server keeps serving
//! everyone else, never panics, frees their nodes and leaves the database consistent.

mod common;

use std::time::Duration;

use common::{leave_lobby, register, Caller, TestServer};
use nuggetnet::store::{calls, users};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A well-behaved caller can still register and reach the menu.
async fn still_serving(t: &TestServer, handle: &str) {
    let mut c = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut c).await;
    register(&mut c, handle, "stillhere1").await;
}

/// Writes `bytes` and then reads until the server closes or `wait` passes; never panics on
/// a reset connection.
async fn blast(addr: std::net::SocketAddr, bytes: &[u8], wait: Duration) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return;
    };
    let _ = s.write_all(bytes).await;
    let mut buf = vec![0u8; 65536];
    let _ = tokio::time::timeout(wait, async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn random_bytes_on_both_ports() {
    let t = TestServer::start(4).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5EED);
    for round in 0..20 {
        let len = rng.gen_range(1..4096);
        let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let addr = if round % 2 == 0 {
            t.telnet_addr()
        } else {
            t.raw_addr()
        };
        blast(addr, &bytes, Duration::from_millis(200)).await;
    }
    still_serving(&t, "Survivor").await;
}

#[tokio::test]
async fn a_one_megabyte_line_at_every_stage() {
    let t = TestServer::start(4).await;
    let huge = vec![b'A'; 1024 * 1024];
    // In the lobby.
    blast(t.raw_addr(), &huge, Duration::from_millis(300)).await;
    // At the login prompt, with a real caller.
    let mut c = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut c).await;
    c.expect("Your handle").await;
    c.send(&huge).await;
    c.line("").await;
    // The handle field is capped: the server answers instead of choking.
    c.expect("Password").await;
    still_serving(&t, "Bigline").await;
}

#[tokio::test]
async fn unterminated_subnegotiation_and_negotiation_flood() {
    let t = TestServer::start(4).await;
    // IAC SB TTYPE followed by a megabyte that never ends the subnegotiation.
    let mut sb = vec![255, 250, 24];
    sb.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    blast(t.telnet_addr(), &sb, Duration::from_millis(300)).await;
    blast(t.raw_addr(), &sb, Duration::from_millis(300)).await;

    // Thousands of WILL/WONT/DO/DONT for every option.
    let mut flood = Vec::new();
    for i in 0..20_000u32 {
        flood.extend_from_slice(&[255, 251 + (i % 4) as u8, (i % 256) as u8]);
    }
    let mut s = TcpStream::connect(t.telnet_addr()).await.unwrap();
    s.write_all(&flood).await.unwrap();
    // The server answers a bounded amount, not one reply per request forever.
    let mut received = 0usize;
    let mut buf = vec![0u8; 65536];
    let _ = tokio::time::timeout(Duration::from_millis(1500), async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            received += n;
        }
    })
    .await;
    assert!(
        received < flood.len(),
        "replies ({received} bytes) must not mirror the flood"
    );
    drop(s);
    still_serving(&t, "Negotiator").await;
}

#[tokio::test]
async fn hanging_up_at_every_prompt_frees_the_node_and_keeps_the_database_consistent() {
    let t = TestServer::start(2).await;
    // Each script stops at a different prompt and then hangs up.
    let scripts: &[&[&str]] = &[
        &[],                                                // lobby
        &[""],                                              // login prompt
        &["", "NEW"],                                       // new handle
        &["", "NEW", "Hangup Harry"],                       // password
        &["", "NEW", "Hangup Harry", "secret1"],            // password again
        &["", "NEW", "Hangup Harry", "secret1", "secret1"], // terminal question
        &["", "nobody"],                                    // password for a login
    ];
    for script in scripts {
        let mut c = Caller::telnet(t.telnet_addr(), "ANSI").await;
        c.expect("press RETURN").await;
        for line in *script {
            c.line(line).await;
            c.pump(Duration::from_millis(150)).await;
        }
        drop(c);
        t.wait_nodes_in_use(0).await;
    }
    // Nobody half-registered.
    assert!(users::find_by_handle(t.server.db(), "Hangup Harry")
        .await
        .unwrap()
        .is_none());
    assert_eq!(users::count(t.server.db()).await.unwrap(), 0);
    // Every call was logged when it ended.
    let log = {
        let mut tries = 0;
        loop {
            let log = calls::recent(t.server.db(), 100).await.unwrap();
            if log.len() >= scripts.len() || tries > 100 {
                break log;
            }
            tries += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(log.len(), scripts.len());
    for call in &log {
        assert!(call.ended_at.is_some(), "call {} left open", call.id);
        assert_eq!(call.end_reason.as_deref(), Some("hangup"));
    }
    still_serving(&t, "After Hours").await;
}

#[tokio::test]
async fn per_ip_cap_refuses_extra_connections_in_plain_words() {
    let t = TestServer::start_with(4, |c| c.limits.per_ip = 2).await;
    let mut a = Caller::telnet(t.telnet_addr(), "ANSI").await;
    a.expect("press RETURN").await;
    let mut b = Caller::atari(t.raw_addr()).await;
    b.expect("press RETURN").await;
    let mut c = Caller::atari(t.raw_addr()).await;
    c.expect("Too many connections").await;
    c.expect_closed().await;
    drop(a);
    // The place comes back once the first caller's hang-up is noticed.
    let mut tries = 0;
    loop {
        let mut d = Caller::atari(t.raw_addr()).await;
        d.expect_closed_or("press RETURN").await;
        if d.screen().contains("press RETURN") {
            break;
        }
        tries += 1;
        assert!(tries < 50, "the per-IP place was never given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.line("").await;
    b.expect("Your handle").await;
}

#[tokio::test]
async fn idle_callers_are_logged_off_and_free_their_node() {
    let t = TestServer::start_with(2, |c| {
        c.limits.idle_timeout_secs = 1;
        c.limits.lobby_timeout_secs = 1;
    })
    .await;
    // Silent in the lobby: hung up without taking a node.
    let mut lurker = Caller::atari(t.raw_addr()).await;
    lurker.expect("press RETURN").await;
    lurker.expect_closed().await;

    // Silent at the login prompt: told why, then hung up, and the node is free again.
    let mut sleeper = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut sleeper).await;
    sleeper.expect("Your handle").await;
    t.wait_nodes_in_use(1).await;
    sleeper.expect("Idle too long").await;
    sleeper.expect_closed().await;
    t.wait_nodes_in_use(0).await;
}
