//! End-to-end: callers on real sockets register, log in, use the menu and see their screens
//! in their own charset.

mod common;

use common::{contains, leave_lobby, login, register, Caller, TestServer};
use nuggetnet::store::{calls, users};

#[tokio::test]
async fn telnet_ansi_caller_registers_logs_off_and_logs_in_again() {
    let t = TestServer::start(4).await;
    let mut caller = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut caller).await;
    caller.expect("Welcome to NuggetNet BBS").await;
    register(&mut caller, "Gordon Gekko", "greedisgood").await;
    assert!(caller.screen().contains("Who's online"));
    caller.send(b"G").await;
    caller.expect("Log off now?").await;
    caller.line("").await;
    caller.expect("Goodbye").await;
    caller.expect_closed().await;
    t.wait_nodes_in_use(0).await;

    let user = users::find_by_handle(t.server.db(), "gordon gekko")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.charset.as_str(), "ansi");
    assert_eq!((user.width, user.height), (80, 24));

    let mut again = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut again).await;
    login(&mut again, "GORDON GEKKO", "greedisgood").await;
    let screen = again.screen();
    assert!(screen.contains("Logged in as Gordon Gekko"), "{screen}");
    // The menu fits in 80 columns: no visible row is wider.
    assert!(screen.lines().all(|l| l.chars().count() <= 80));

    let log = calls::recent(t.server.db(), 10).await.unwrap();
    let finished = log.iter().find(|c| c.end_reason.is_some()).unwrap();
    assert_eq!(finished.transport, "telnet");
    assert_eq!(finished.charset.as_deref(), Some("ansi"));
    assert_eq!(finished.user_id, Some(user.id));
    assert_eq!(finished.end_reason.as_deref(), Some("logoff"));
}

#[tokio::test]
async fn raw_atari_caller_gets_atascii_only() {
    let t = TestServer::start(4).await;
    let mut atari = Caller::atari(t.raw_addr()).await;
    atari.expect("press RETURN").await;
    assert!(
        !atari.wire.contains(&0xFF),
        "no telnet byte before the first key"
    );
    atari.line("").await;
    atari.expect("Welcome to").await;
    register(&mut atari, "Atari Annie", "800xlrules").await;
    atari.send(b"G").await;
    atari.expect("Log off now?").await;
    atari.line("Y").await;
    atari.expect_closed().await;

    let mut again = Caller::atari(t.raw_addr()).await;
    leave_lobby(&mut again).await;
    login(&mut again, "atari annie", "800xlrules").await;
    let screen = again.screen();
    assert!(screen.contains("Logged in as"), "{screen}");
    assert!(screen.lines().all(|l| l.chars().count() <= 40), "{screen}");

    for caller in [&atari, &again] {
        let wire = &caller.wire;
        assert!(!wire.contains(&0xFF), "no telnet negotiation on raw TCP");
        assert!(!wire.contains(&b'\r'), "no CR to an Atari");
        assert!(!wire.contains(&b'\n'), "no LF to an Atari");
        assert!(!contains(wire, b"\x1b["), "no ANSI sequences to an Atari");
        // 0x7D (CLEAR) and 0x7E (BACKSPACE) are sent on purpose as controls; `{` and
        // backtick are graphics glyphs and must never arrive as text.
        for bad in [b'{', b'`'] {
            assert!(!wire.contains(&bad), "untranslated {:?}", bad as char);
        }
    }
    let user = users::find_by_handle(t.server.db(), "Atari Annie")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.charset.as_str(), "atascii");
    assert_eq!(user.width, 40);
}

#[tokio::test]
async fn raw_ansi_caller_is_detected_by_the_cursor_probe() {
    let t = TestServer::start(2).await;
    let mut caller = Caller::raw_ansi(t.raw_addr()).await;
    caller.expect("press RETURN").await;
    caller.line("").await;
    // The probe asks for the cursor position; answer like a 25-row ANSI terminal.
    caller.expect_data("\x1b[6n").await;
    caller.answer_cpr(25, 80).await;
    caller.expect("Welcome to").await;
    register(&mut caller, "Bud Fox", "bluestar1").await;
    let user = users::find_by_handle(t.server.db(), "Bud Fox")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.charset.as_str(), "ansi");
    assert_eq!((user.width, user.height), (80, 25));
}

#[tokio::test]
async fn silent_raw_caller_is_asked_and_gets_plain_ascii() {
    let t = TestServer::start(2).await;
    let mut caller = Caller::raw_ansi(t.raw_addr()).await;
    leave_lobby(&mut caller).await;
    caller.expect("Press A for ANSI").await;
    caller.line("").await;
    caller.expect("Your handle").await;
    let start = caller.data.len();
    register(&mut caller, "Plain Jane", "asciionly").await;
    let after = &caller.data[start..];
    assert!(
        !after.contains(&0x1B),
        "no escape sequences for plain ASCII"
    );
    assert!(after.iter().all(|b| *b < 0x80), "7-bit only");
}

#[tokio::test]
async fn two_callers_on_two_nodes_message_each_other() {
    let t = TestServer::start(4).await;
    let mut a = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut a).await;
    register(&mut a, "Alice", "password1").await;
    let mut b = Caller::atari(t.raw_addr()).await;
    leave_lobby(&mut b).await;
    register(&mut b, "Bob", "password2").await;
    t.wait_nodes_in_use(2).await;

    a.send(b"W").await;
    a.expect("Bob").await;

    a.send(b"M").await;
    a.expect("Send to node").await;
    a.line("2").await;
    a.expect("Message:").await;
    a.line("Buy Bluestar Airlines!").await;
    a.expect("Sent to node 2").await;

    b.expect("Message from Alice (node 1)").await;
    b.expect("Buy Bluestar Airlines!").await;
    // The prompt is redrawn under the message.
    b.expect_data("Command:").await;

    // Messaging a free node is refused in words.
    a.send(b"M").await;
    a.expect("Send to node").await;
    a.line("3").await;
    a.expect("Nobody is on node 3").await;
}

#[tokio::test]
async fn lobby_holds_no_node_and_extra_callers_hear_busy() {
    let t = TestServer::start(1).await;
    // Callers waiting in the lobby hold nothing.
    let mut lurkers = Vec::new();
    for _ in 0..3 {
        let mut c = Caller::telnet(t.telnet_addr(), "ANSI").await;
        c.expect("press RETURN").await;
        lurkers.push(c);
    }
    assert_eq!(t.server.nodes().in_use(), 0);

    let mut first = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut first).await;
    first.expect("Your handle").await;
    t.wait_nodes_in_use(1).await;

    let mut second = lurkers.pop().unwrap();
    second.line("").await;
    second.expect("All lines are busy").await;
    second.expect_closed().await;

    let mut atari = Caller::atari(t.raw_addr()).await;
    leave_lobby(&mut atari).await;
    atari.expect("All lines are busy").await;
    atari.expect_closed().await;
    assert!(!atari.wire.contains(&b'\r'), "busy is said in ATASCII");

    // The node comes back when its caller hangs up.
    drop(first);
    t.wait_nodes_in_use(0).await;
    let mut third = lurkers.pop().unwrap();
    third.line("").await;
    third.expect("Your handle").await;
}

#[tokio::test]
async fn three_wrong_passwords_end_the_call() {
    let t = TestServer::start(2).await;
    let mut c = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut c).await;
    register(&mut c, "Larry", "wildman99").await;
    drop(c);
    t.wait_nodes_in_use(0).await;

    let mut c = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut c).await;
    c.expect("Your handle").await;
    // Typed ahead: the server reads each line when it reaches the prompt.
    for _ in 0..3 {
        c.line("Larry").await;
        c.line("wrong").await;
    }
    c.expect("Too many failed logins").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn settings_change_charset_and_password() {
    let t = TestServer::start(2).await;
    let mut c = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut c).await;
    register(&mut c, "Darien", "artdealer").await;
    c.send(b"S").await;
    c.expect("Your settings").await;
    c.send(b"P").await;
    c.expect("Current password").await;
    c.line("artdealer").await;
    c.expect("New password").await;
    c.line("newpass99").await;
    c.expect("Same again").await;
    c.line("newpass99").await;
    c.expect("Password changed").await;
    c.send(b"T").await;
    c.expect("Keep it?").await;
    c.line("n").await;
    c.expect("Charset?").await;
    c.send(b"P").await;
    c.expect("Screen width").await;
    c.line("64").await;
    c.expect("Saved").await;
    let user = users::find_by_handle(t.server.db(), "darien")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.charset.as_str(), "ascii");
    assert_eq!(user.width, 64);
    drop(c);

    // The saved choice of plain ASCII wins over the ANSI the telnet client reports.
    let mut c = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut c).await;
    c.expect("Your handle").await;
    c.line("Darien").await;
    c.expect("Password").await;
    c.line("newpass99").await;
    c.expect("Press any key").await;
    let from = c.data.len();
    c.line("").await;
    c.expect("Main Menu").await;
    assert!(
        !c.data[from..].contains(&0x1B),
        "plain ASCII after login, as saved"
    );
}

#[tokio::test]
async fn a_window_resize_mid_session_reaches_the_node_table() {
    let t = TestServer::start(2).await;
    let mut c = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut c).await;
    register(&mut c, "Resizer", "stretch99").await;
    assert_eq!(t.server.nodes().status(1).unwrap().caps.width, 80);
    // NAWS 132x43, as a client sends it when its window is resized.
    c.send_raw(&[255, 250, 31, 0, 132, 0, 43, 255, 240]).await;
    c.send(b"W").await;
    c.expect("of 2 nodes)").await;
    let caps = t.server.nodes().status(1).unwrap().caps;
    assert_eq!((caps.width, caps.height), (132, 43));
}
