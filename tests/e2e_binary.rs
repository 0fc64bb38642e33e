//! End-to-end with the real `nuggetnet` binary: start on port 0, take a caller, shut down on
//! SIGTERM with a goodbye; refuse a bad config file with a clear message.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{leave_lobby, Caller};
use nuggetnet::store::testing::fresh_url;

const BIN: &str = env!("CARGO_BIN_EXE_nuggetnet");

#[tokio::test]
async fn serve_takes_a_caller_and_says_goodbye_on_sigterm() {
    let (url, _cleanup) = fresh_url().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bbs.toml");
    std::fs::write(
        &config,
        format!(
            "[bbs]\nnodes = 2\nnodes_dir = \"{nodes}\"\n\n[database]\nurl = \"{url}\"\n\n\
             [[listener]]\nkind = \"telnet\"\nbind = \"127.0.0.1:0\"\n\n\
             [[listener]]\nkind = \"raw\"\nbind = \"127.0.0.1:0\"\n",
            nodes = dir.path().join("nodes").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    // Learn the telnet port from the log.
    let until = Instant::now() + Duration::from_secs(30);
    let mut log = Vec::new();
    let telnet_addr = loop {
        let line = rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no listening line; log so far: {log:#?}"));
        log.push(line.clone());
        if line.contains("listening") && line.contains("telnet") {
            let addr = line
                .split("addr=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap();
            break addr.parse::<std::net::SocketAddr>().unwrap();
        }
    };

    let mut caller = Caller::telnet(telnet_addr, "ANSI").await;
    leave_lobby(&mut caller).await;
    caller.expect("Your handle").await;

    let pid = child.id() as i32;
    assert_eq!(send_sigterm(pid), 0);
    caller.expect("shutting down").await;
    caller.expect_closed().await;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
}

/// Sends SIGTERM through the `kill` command, keeping the test free of `unsafe`.
fn send_sigterm(pid: i32) -> i32 {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    status.code().unwrap_or(1)
}

#[test]
fn a_bad_config_file_names_the_file_and_key_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.toml");
    std::fs::write(&config, "[bbs]\nnodes = \"lots\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.toml"), "{stderr}");
    assert!(stderr.contains("bbs.nodes"), "{stderr}");
    assert!(stderr.contains("expected"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = Command::new(BIN)
        .args(["serve", "--config", "/no/such/file.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.toml"));
}

#[test]
fn db_migrate_creates_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["db", "migrate"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("data/nuggetnet.db").exists());
}
