//! Real door processes on stdio, PTY and socket I/O: bytes both ways, carrier loss, time-out,
//! crashes, the concurrency cap and the node folder.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use nuggetnet::door::{
    run_door, run_door_for, DoorConfig, DoorEnd, DoorError, DoorIo, DoorIoMode, DoorOutcome,
    DoorSlots,
};
use nuggetnet::dropfile::{DropInfo, DropKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Generous bound for anything that should happen "at once".
const WAIT: Duration = Duration::from_secs(10);

/// The caller side: input from the test, output collected for it.
struct TestIo {
    input: mpsc::UnboundedReceiver<Bytes>,
    output: mpsc::UnboundedSender<Vec<u8>>,
}

impl DoorIo for TestIo {
    fn recv(&mut self) -> impl Future<Output = Option<Bytes>> + Send {
        self.input.recv()
    }

    fn send(&mut self, data: &[u8]) -> impl Future<Output = io::Result<()>> + Send {
        let sent = self
            .output
            .send(data.to_vec())
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe));
        async move { sent }
    }
}

/// A running visit and the test's end of its caller.
struct Visit {
    input: Option<mpsc::UnboundedSender<Bytes>>,
    output: mpsc::UnboundedReceiver<Vec<u8>>,
    seen: String,
    task: JoinHandle<Result<DoorOutcome, DoorError>>,
    node_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Visit {
    fn start(door: DoorConfig, slots: &DoorSlots, allowed: Option<Duration>) -> Visit {
        let dir = tempfile::tempdir().unwrap();
        let node_dir = dir.path().join("nodes").join("node3");
        let (input_tx, input_rx) = mpsc::unbounded_channel();
        let (output_tx, output_rx) = mpsc::unbounded_channel();
        let slots = slots.clone();
        let folder = node_dir.clone();
        let task = tokio::spawn(async move {
            let mut io = TestIo {
                input: input_rx,
                output: output_tx,
            };
            match allowed {
                Some(allowed) => {
                    run_door_for(&door, &caller(), &folder, &slots, allowed, &mut io).await
                }
                None => run_door(&door, &caller(), &folder, &slots, &mut io).await,
            }
        });
        Visit {
            input: Some(input_tx),
            output: output_rx,
            seen: String::new(),
            task,
            node_dir,
            _dir: dir,
        }
    }

    fn type_text(&self, text: &str) {
        if let Some(input) = &self.input {
            let _ = input.send(Bytes::copy_from_slice(text.as_bytes()));
        }
    }

    fn hang_up(&mut self) {
        self.input = None;
    }

    /// Waits until the door has written `text`.
    async fn expect(&mut self, text: &str) {
        let found = tokio::time::timeout(WAIT, async {
            while !self.seen.contains(text) {
                match self.output.recv().await {
                    Some(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                    None => return false,
                }
            }
            true
        })
        .await;
        assert!(
            matches!(found, Ok(true)),
            "wanted {text:?}, door wrote {:?}",
            self.seen
        );
    }

    /// A number the door printed as `label:N`.
    fn number(&self, label: &str) -> i32 {
        let start = self.seen.find(label).expect("label") + label.len();
        self.seen[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("number")
    }

    /// Waits for the visit to end; the folder stays until the returned value is dropped.
    async fn finish(self) -> (Result<DoorOutcome, DoorError>, Folder) {
        let result = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the visit ends")
            .expect("no panic");
        (
            result,
            Folder {
                path: self.node_dir,
                _dir: self._dir,
            },
        )
    }
}

/// A node folder kept alive for inspection.
struct Folder {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

fn caller() -> DropInfo {
    DropInfo {
        bbs_name: "NuggetNet BBS".into(),
        bbs_software: "NuggetNet 0.1".into(),
        sysop: "Sysop".into(),
        user_number: 5,
        real_name: String::new(),
        alias: "bluestar".into(),
        node: 3,
        minutes_left: 30,
        ..DropInfo::default()
    }
}

fn sh(name: &str, script: &str) -> DoorConfig {
    DoorConfig::new(name, "sh", &["-c", script, "door", "{dropfile}", "{node}"])
}

/// Whether a process is gone (or only a zombie waiting for its new parent to reap it).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

async fn assert_gone_within(pid: i32, limit: Duration) {
    let waited = tokio::time::timeout(limit, async {
        while !gone(pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "process {pid} still runs");
}

fn assert_empty(folder: &Folder) {
    let left: Vec<_> = std::fs::read_dir(&folder.path).unwrap().collect();
    assert!(left.is_empty(), "node folder not cleaned: {left:?}");
}

#[tokio::test]
async fn stdio_door_reads_the_dropfile_echoes_and_dies_with_the_carrier() {
    let script = r#"
        tr -d '\r' < "$1" | sed -n '1p;2p;7p;11p' | tr '\n' ' '; echo
        echo "node:$2 pid:$$"
        sleep 30 & echo "child:$!"
        while read -r line; do echo "got:$line"; done
    "#;
    let mut visit = Visit::start(sh("Echo", script), &DoorSlots::new(), None);
    visit.expect("0 0 bluestar 3 \n").await;
    visit.expect("child:").await;
    visit.type_text("hello door\n");
    visit.expect("got:hello door").await;
    let (pid, child) = (visit.number("pid:"), visit.number("child:"));
    visit.hang_up();
    let (outcome, node_dir) = visit.finish().await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.end, DoorEnd::CarrierLost);
    assert_eq!(outcome.problem(), None);
    assert!(outcome.bytes_to_door >= 11 && outcome.bytes_from_door > 20);
    assert_gone_within(pid, Duration::from_secs(1)).await;
    assert_gone_within(child, Duration::from_secs(1)).await;
    assert_empty(&node_dir);
}

#[tokio::test]
async fn a_door_that_ignores_hangup_is_killed() {
    let script = r#"trap '' HUP TERM; echo "pid:$$"; while :; do sleep 1; done"#;
    let mut visit = Visit::start(sh("Stubborn", script), &DoorSlots::new(), None);
    visit.expect("pid:").await;
    let pid = visit.number("pid:");
    visit.hang_up();
    let (outcome, _) = visit.finish().await;
    assert_eq!(outcome.unwrap().end, DoorEnd::CarrierLost);
    assert_gone_within(pid, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn time_out_ends_the_door() {
    let script = r#"echo "pid:$$"; sleep 30"#;
    let mut visit = Visit::start(
        sh("Slow", script),
        &DoorSlots::new(),
        Some(Duration::from_millis(300)),
    );
    visit.expect("pid:").await;
    let pid = visit.number("pid:");
    let (outcome, node_dir) = visit.finish().await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.end, DoorEnd::TimedOut);
    assert!(outcome.problem().is_some());
    assert!(outcome.elapsed < Duration::from_secs(5));
    assert_gone_within(pid, Duration::from_secs(1)).await;
    assert_empty(&node_dir);
}

#[tokio::test]
async fn exit_status_and_crashes_are_reported() {
    let mut visit = Visit::start(sh("Quits", "echo bye; exit 3"), &DoorSlots::new(), None);
    visit.expect("bye").await;
    let (outcome, node_dir) = visit.finish().await;
    let outcome = outcome.unwrap();
    assert!(matches!(outcome.end, DoorEnd::Exited(s) if s.code() == Some(3)));
    assert!(outcome.problem().unwrap().contains('3'));
    assert_empty(&node_dir);

    let visit = Visit::start(sh("Crashes", "kill -SEGV $$"), &DoorSlots::new(), None);
    let (outcome, _) = visit.finish().await;
    let outcome = outcome.unwrap();
    assert!(
        outcome.problem().unwrap().contains("signal 11"),
        "{outcome:?}"
    );

    let visit = Visit::start(sh("Fine", "exit 0"), &DoorSlots::new(), None);
    assert_eq!(visit.finish().await.0.unwrap().problem(), None);
}

#[tokio::test]
async fn a_missing_program_is_an_error_and_the_folder_is_clean() {
    let door = DoorConfig::new("Ghost", "/nonexistent/door", &["{dropfile}"]);
    let visit = Visit::start(door, &DoorSlots::new(), None);
    let (result, node_dir) = visit.finish().await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("Ghost") && err.contains("/nonexistent/door"),
        "{err}"
    );
    assert_empty(&node_dir);
}

#[tokio::test]
async fn pty_door_sees_a_terminal_of_the_callers_size() {
    let mut door = sh(
        "Tty",
        r#"test -t 0 && echo "tty:yes"; echo "size:$(stty size)"; read -r line; echo "got:$line""#,
    );
    door.io = DoorIoMode::Pty;
    door.dropfile = DropKind::DoorSys;
    let mut visit = Visit::start(door, &DoorSlots::new(), None);
    visit.expect("tty:yes").await;
    visit.expect("size:24 80").await;
    visit.type_text("typed\r");
    visit.expect("got:typed").await;
    let (outcome, node_dir) = visit.finish().await;
    assert!(matches!(outcome.unwrap().end, DoorEnd::Exited(s) if s.success()));
    assert_empty(&node_dir);
}

#[tokio::test]
async fn pty_door_dies_with_the_carrier() {
    let mut door = sh("TtyWait", r#"echo "pid:$$"; while :; do sleep 1; done"#);
    door.io = DoorIoMode::Pty;
    let mut visit = Visit::start(door, &DoorSlots::new(), None);
    visit.expect("pid:").await;
    // The terminal echoes input; wait for the whole pid line first.
    visit.expect("\n").await;
    let pid = visit.number("pid:");
    visit.hang_up();
    assert_eq!(visit.finish().await.0.unwrap().end, DoorEnd::CarrierLost);
    assert_gone_within(pid, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn socket_door_gets_an_inherited_socket_named_in_door32() {
    // bash, because only it takes a descriptor number from a variable in a redirection.
    let script = r#"
        ct=$(sed -n 1p "$1" | tr -d '\r'); fd=$(sed -n 2p "$1" | tr -d '\r')
        exec 0<&"$fd" 1>&"$fd"
        echo "comm:$ct fd:$fd arg:$2"
        read -r line; echo "got:$line"
        read -r line; echo "again:$line"
    "#;
    let mut door = DoorConfig::new(
        "Sock",
        "bash",
        &["-c", script, "door", "{dropfile}", "{fd}"],
    );
    door.io = DoorIoMode::Socket;
    let mut visit = Visit::start(door, &DoorSlots::new(), None);
    visit.expect("comm:2 fd:").await;
    visit.expect(" arg:").await;
    let fd = visit.number("fd:");
    assert_eq!(visit.number("arg:"), fd);
    assert!(fd > 2, "the socket is not on stdio");
    visit.type_text("over the wire\n");
    visit.expect("got:over the wire").await;
    visit.type_text("\u{e9} binary\n");
    visit.expect("again:").await;
    let (outcome, _) = visit.finish().await;
    assert!(matches!(outcome.unwrap().end, DoorEnd::Exited(s) if s.success()));
}

#[tokio::test]
async fn socket_door_dies_with_the_carrier() {
    let mut door = DoorConfig::new("SockWait", "sh", &["-c", r#"echo "pid:$$" >&2; sleep 30"#]);
    door.io = DoorIoMode::Socket;
    // Standard error goes to the log; find the process by the folder it runs in instead.
    let mut visit = Visit::start(door, &DoorSlots::new(), None);
    let node_dir = visit.node_dir.clone();
    let pid = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(pid) = pid_in(&node_dir) {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the door starts");
    visit.hang_up();
    assert_eq!(visit.finish().await.0.unwrap().end, DoorEnd::CarrierLost);
    assert_gone_within(pid, Duration::from_secs(1)).await;
}

/// A process whose working folder is `dir`.
fn pid_in(dir: &Path) -> Option<i32> {
    let dir = std::fs::canonicalize(dir).ok()?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(entry.path().join("cwd")).ok().as_deref() == Some(dir.as_path()) {
            return Some(pid);
        }
    }
    None
}

#[tokio::test]
async fn the_concurrency_cap_is_shared_across_nodes() {
    let slots = DoorSlots::new();
    let mut door = sh("Solo", "echo in; read -r line");
    door.max_users = Some(1);
    let mut first = Visit::start(door.clone(), &slots, None);
    first.expect("in").await;
    let second = Visit::start(door.clone(), &slots, None);
    let (result, _) = second.finish().await;
    assert!(matches!(result, Err(DoorError::Busy { max: 1, .. })));
    first.type_text("done\n");
    assert!(first.finish().await.0.is_ok());
    assert_eq!(slots.in_use("Solo"), 0);
}

#[tokio::test]
async fn doors_get_a_clean_environment_and_an_unbounded_limit_is_fine() {
    // Cargo gives test processes variables such as CARGO_MANIFEST_DIR; doors must not see
    // the BBS's environment.
    let script = r#"echo "term:$TERM cols:$COLUMNS secret:${CARGO_MANIFEST_DIR:-none} drop:$NUGGETNET_DROPFILE""#;
    let mut visit = Visit::start(sh("Env", script), &DoorSlots::new(), Some(Duration::MAX));
    visit.expect("term:ansi cols:80 secret:none drop:").await;
    visit.expect("DOOR32.SYS").await;
    let (outcome, _) = visit.finish().await;
    assert!(matches!(outcome.unwrap().end, DoorEnd::Exited(s) if s.success()));
}

#[tokio::test]
async fn a_flooding_door_still_dies_with_the_carrier() {
    let mut visit = Visit::start(
        sh("Flood", r#"echo "pid:$$"; exec yes nuggets"#),
        &DoorSlots::new(),
        None,
    );
    visit.expect("nuggets").await;
    let pid = visit.number("pid:");
    visit.hang_up();
    assert_eq!(visit.finish().await.0.unwrap().end, DoorEnd::CarrierLost);
    assert_gone_within(pid, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_door_that_closes_its_output_is_still_watched() {
    let script = r#"echo "pid:$$"; exec >&- 2>&-; sleep 30"#;
    let mut visit = Visit::start(sh("Mute", script), &DoorSlots::new(), None);
    visit.expect("pid:").await;
    visit.expect("\n").await;
    let pid = visit.number("pid:");
    visit.type_text("anyone there?\n");
    visit.hang_up();
    assert_eq!(visit.finish().await.0.unwrap().end, DoorEnd::CarrierLost);
    assert_gone_within(pid, Duration::from_secs(1)).await;
}
