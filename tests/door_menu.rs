//! End-to-end: a telnet caller picks a door from the door menu, talks to it, and comes back;
//! a crashing door gets a one-line message; hanging up in a door ends its processes and frees
//! the node.

mod common;

use std::time::Duration;

use common::{leave_lobby, register, Caller, TestServer};
use nuggetnet::door::DoorConfig;
use nuggetnet::store::calls;

/// A door that greets the caller by the handle in DOOR32.SYS and echoes lines until "quit".
/// Telnet callers end lines with CR, so lines are read up to CR.
const ECHO_DOOR: &str = r#"
    alias=$(sed -n 7p "$1" | tr -d '\r')
    printf 'Hello %s from the door\r\n' "$alias"
    printf 'pid:%s\r\n' $$
    while IFS= read -r -d $'\r' line; do
        line=${line#$'\n'}
        printf 'got:%s\r\n' "$line"
        [ "$line" = quit ] && exit 0
    done
"#;

async fn server() -> TestServer {
    TestServer::start_with(2, |config| {
        config.doors = vec![
            DoorConfig::new(
                "Echo Chamber",
                "bash",
                &["-c", ECHO_DOOR, "door", "{dropfile}"],
            ),
            DoorConfig::new("Crash Test", "sh", &["-c", "exit 7"]),
        ];
    })
    .await
}

#[tokio::test]
async fn caller_runs_a_door_and_comes_back_to_the_menu() {
    let t = server().await;
    let mut caller = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut caller).await;
    register(&mut caller, "Bud Fox", "bluestar").await;
    caller.expect("Doors").await;
    caller.send(b"D").await;
    caller.expect("Echo Chamber").await;
    caller.send(b"1").await;
    caller.expect("Hello Bud Fox from the door").await;
    caller.line("buy low").await;
    caller.expect("got:buy low").await;
    let node = t.server.nodes().snapshot();
    assert!(
        node.iter()
            .any(|s| s.activity.to_string() == "in door Echo Chamber"),
        "{node:?}"
    );
    caller.line("quit").await;
    // The door menu is redrawn on a cleared screen.
    let back = tokio::time::timeout(Duration::from_secs(10), async {
        while caller.screen().contains("got:buy low") || !caller.screen().contains("Door (Q") {
            caller.pump(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(back.is_ok(), "{}", caller.screen());

    caller.send(b"2").await;
    caller.expect("error code 7").await;
    caller.send(b" ").await;
    caller.expect("Door (Q to go back)").await;
    caller.send(b"Q").await;
    caller.expect("Main Menu").await;
    caller.send(b"G").await;
    caller.expect("Log off now?").await;
    caller.line("").await;
    caller.expect_closed().await;
    t.wait_nodes_in_use(0).await;
    // The call's row is written as the call ends, just after the node is freed.
    let mut log = Vec::new();
    for _ in 0..100 {
        log = calls::recent(t.server.db(), 1).await.unwrap();
        if !log.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log[0].end_reason.as_deref(), Some("logoff"));
    assert!(log[0].door_ms > 0, "door time is logged: {:?}", log[0]);
}

#[tokio::test]
async fn hanging_up_in_a_door_ends_it_and_frees_the_node() {
    let t = server().await;
    let mut caller = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut caller).await;
    register(&mut caller, "Gordon Gekko", "greedisgood").await;
    caller.send(b"D").await;
    caller.expect("Echo Chamber").await;
    caller.send(b"1").await;
    caller.expect("pid:").await;
    caller.expect("Hello").await;
    let screen = caller.screen();
    let pid: i32 = screen
        .split("pid:")
        .nth(1)
        .and_then(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .expect("the door shows its pid");
    drop(caller);
    t.wait_nodes_in_use(0).await;
    let gone = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            });
            if !alive {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "door process {pid} survived the hang-up");
    let folder = t.dir.path().join("nodes").join("node1");
    let left = std::fs::read_dir(&folder).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "node folder not cleaned");
}
