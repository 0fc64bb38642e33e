//! The inbox through the real door at 80 columns (ANSI) and 40 columns (ATASCII): the unread
//! count on the status line, reading (which marks read), answering with the line editor,
//! a refused recipient, and deleting. Delivery runs through the job table afterwards.

use nuggetnet::exchange::Exchange;
use nuggetnet::inbox::{self, MailKind};
use nuggetnet::jobs::{self, Ran, RunnerConfig};
use nuggetnet::store::players;
use nuggetnet::store::testing::fresh_db;

#[path = "common/door.rs"]
mod door;

use door::{config, door32, spawn_stdio, wait_exit, Caller, WAIT};

/// Mail waiting for Gekko: a margin call from the exchange and a note from Bud.
async fn mailbox() -> (nuggetnet::store::testing::TestDb, Exchange, i64) {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    nuggetnet::game::season::current_game(&ex).await.unwrap();
    let system = "Synchronet BBS for Linux";
    let gekko = players::find_or_create(ex.db(), system, "Gekko")
        .await
        .unwrap();
    let bud = players::find_or_create(ex.db(), system, "Bud")
        .await
        .unwrap();
    let now = nuggetnet::store::now_ms();
    inbox::send_system(
        ex.db(),
        gekko.id,
        MailKind::MarginCall,
        "Margin call",
        "Your account is below maintenance. Pay up.",
        "mc-1",
        now - 60_000,
    )
    .await
    .unwrap();
    inbox::send(
        ex.db(),
        &bud,
        "gekko",
        "Bluestar",
        "The union is in. Buy.",
        now,
    )
    .await
    .unwrap();
    drain(&ex, now).await;
    (t, ex, bud.id)
}

async fn drain(ex: &Exchange, now: i64) {
    let handlers = inbox::handlers(ex.db());
    let cfg = RunnerConfig::default();
    while jobs::run_once(ex.db(), &handlers, &cfg, now).await.unwrap() != Ran::Idle {}
}

async fn read_answer_and_delete(atari: bool) {
    let (t, ex, bud) = mailbox().await;
    let dir = tempfile::tempdir().unwrap();
    let ext = atari.then_some("NUGGETNET charset=atascii cols=40 rows=24");
    let drop = door32(dir.path(), "0\r\n0", ext);
    let cfg = config(dir.path(), &t.url);
    let mut child = spawn_stdio(&drop, &cfg);
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut c = Caller::new(Box::new(stdin), Box::new(stdout), atari);
    tokio::task::block_in_place(|| {
        c.expect("Press RETURN");
        c.expect("You have 2 new messages.");
        let enter = c.enter;
        c.keys(enter);
        c.expect("Command:");
        c.expect("Mail 2");
        c.keys(b"i");
        c.expect("Inbox: 2 messages, 2 new");
        c.expect("Bluestar");
        c.keys(b"r");
        c.expect("Which #");
        c.line("1");
        c.expect("The union is in. Buy.");
        c.keys(b"a");
        c.expect("To: Bud");
        c.expect("Re: Bluestar");
        c.line("Buy it all.");
        c.line("Every share.");
        c.line("");
        c.expect("Send to Bud?");
        c.keys(b"y");
        c.expect("Message to Bud sent.");
        c.expect("1 new");
        c.keys(b"w");
        c.expect("To:");
        c.line("Nobody");
        c.expect("Subject:");
        c.line("Hello");
        c.line("Anyone?");
        c.line("");
        c.keys(b"y");
        c.expect("nobody called");
        c.keys(b"d");
        c.expect("Which #");
        c.line("2");
        c.expect("Delete this message?");
        c.keys(b"y");
        c.expect("Message deleted.");
        c.expect("Inbox: 1 messages, 0 new");
        c.keys(b"q");
        c.expect("Command:");
        c.keys(b"g");
        c.expect("miss your money");
        let status = wait_exit(&mut child, WAIT);
        assert!(status.success(), "{status:?}");
    });
    drain(&ex, nuggetnet::store::now_ms()).await;
    let got = inbox::list(ex.db(), bud).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].subject, "Re: Bluestar");
    assert_eq!(got[0].body, "Buy it all.\nEvery share.");
}

#[tokio::test(flavor = "multi_thread")]
async fn inbox_at_80_columns() {
    read_answer_and_delete(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inbox_at_40_columns() {
    read_answer_and_delete(true).await;
}
