//! `nuggetnet door` as a BBS runs it: the real binary with a Synchronet-style DOOR32.SYS, its
//! screen read the way the caller's terminal shows it (vt100 for ANSI, the Atari model for
//! ATASCII), trading through the screens against orders seeded through the exchange API.

use std::process::{Command, Stdio};
use std::time::Duration;

use nuggetnet::exchange::{Exchange, Intent, OrderRequest, OrderType, TimeInForce};
use nuggetnet::store::testing::{fresh_db, TestDb};

#[path = "common/door.rs"]
mod door;

use door::{config, door32, spawn_stdio, wait_exit, Caller, EXE, WAIT};
/// The player ids of the two house-side traders the tests seed.
const SELLER: i64 = 900_001;
const BUYER: i64 = 900_002;

/// A fresh database with the default season and a resting sell at 12.50 and buy at 12.40.
async fn market() -> (TestDb, Exchange, i64) {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    let game = nuggetnet::game::season::current_game(&ex).await.unwrap().id;
    ex.open_account(game, SELLER).await.unwrap();
    ex.open_account(game, BUYER).await.unwrap();
    ex.grant(game, SELLER, 0, Some(("JUNK", 1_000)))
        .await
        .unwrap();
    for (player, intent, price) in [(SELLER, Intent::Sell, 1250), (BUYER, Intent::Buy, 1240)] {
        let req = OrderRequest {
            symbol: "JUNK".into(),
            intent,
            order_type: OrderType::Limit { price },
            tif: TimeInForce::Gtc,
            qty: 500,
            stp: None,
        };
        ex.place(game, player, &req).await.unwrap();
    }
    (t, ex, game)
}

/// Buys 100 JUNK at a 12.50 limit, sells them at market, and leaves.
fn buy_and_sell(c: &mut Caller) {
    c.expect("Press RETURN");
    let enter = c.enter;
    c.keys(enter);
    c.expect("Command:");
    c.expect("JUNK");
    c.keys(b"b");
    c.expect("Symbol:");
    c.line("junk");
    c.expect("M)arket?");
    c.keys(b"l");
    c.expect("Shares:");
    c.line("0");
    c.expect("at least 1 share");
    c.line("100");
    c.expect("Limit price");
    c.line("12.53");
    c.expect("steps of 0.05");
    c.line("12.50");
    c.expect("Send this order?");
    c.expect("BUY 100 JUNK limit 12.50");
    c.keys(b"y");
    c.expect("Filled 100 shares");
    c.keys(b" ");
    c.expect("Command:");
    c.keys(b"s");
    c.expect("Symbol:");
    c.line("JUNK");
    c.expect("M)arket?");
    c.keys(b"m");
    c.expect("Shares:");
    c.line("100");
    c.expect("Send this order?");
    c.keys(b"y");
    c.expect("Filled 100 shares");
    c.keys(b" ");
    c.expect("Command:");
    c.keys(b"p");
    c.expect("Net worth");
    c.keys(b" ");
    c.expect("Command:");
    c.keys(b"g");
    c.expect("miss your money");
}

/// The exchange after the two trades: both printed, the player flat, the books balanced.
async fn check_traded(ex: &Exchange, game: i64) {
    let tape = ex.tape(game, "JUNK", 10).await.unwrap();
    assert!(
        tape.iter().any(|t| t.price == 1250 && t.qty == 100),
        "{tape:?}"
    );
    assert!(
        tape.iter().any(|t| t.price == 1240 && t.qty == 100),
        "{tape:?}"
    );
    let player =
        nuggetnet::store::players::find_or_create(ex.db(), "Synchronet BBS for Linux", "gekko")
            .await
            .unwrap();
    let p = ex.portfolio(game, player.id).await.unwrap();
    assert!(p.positions.iter().all(|x| x.qty == 0), "{p:?}");
    assert!(
        p.cash < 1_000_000,
        "fees and the spread cost money: {}",
        p.cash
    );
    let violations = nuggetnet::exchange::audit(ex.db(), Some(game))
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}

async fn trade_on_stdio(atari: bool) {
    let (t, ex, game) = market().await;
    let dir = tempfile::tempdir().unwrap();
    let ext = atari.then_some("NUGGETNET charset=atascii cols=40 rows=24");
    let drop = door32(dir.path(), "0\r\n0", ext);
    let cfg = config(dir.path(), &t.url);
    let mut child = spawn_stdio(&drop, &cfg);
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut caller = Caller::new(Box::new(stdin), Box::new(stdout), atari);
    tokio::task::block_in_place(|| {
        buy_and_sell(&mut caller);
        let status = wait_exit(&mut child, WAIT);
        assert!(status.success(), "{status:?}");
    });
    check_traded(&ex, game).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ansi_caller_buys_and_sells_through_the_screens() {
    trade_on_stdio(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn atari_caller_buys_and_sells_through_the_screens() {
    trade_on_stdio(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inherited_socket_caller_buys_and_sells() {
    use std::os::fd::AsRawFd;
    let (t, ex, game) = market().await;
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (door_end, _) = listener.accept().unwrap();
    // The BBS's side of the hand-over: the door's end survives exec under its number.
    nix::fcntl::fcntl(
        &door_end,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .unwrap();
    let drop = door32(dir.path(), &format!("2\r\n{}", door_end.as_raw_fd()), None);
    let cfg = config(dir.path(), &t.url);
    let mut child = Command::new(EXE)
        .args(["door", "--dropfile"])
        .arg(&drop)
        .arg("--config")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    drop_fd(door_end);
    let mut caller = Caller::new(
        Box::new(client.try_clone().unwrap()),
        Box::new(client),
        false,
    );
    tokio::task::block_in_place(|| {
        buy_and_sell(&mut caller);
        let status = wait_exit(&mut child, WAIT);
        assert!(status.success(), "{status:?}");
    });
    check_traded(&ex, game).await;
}

/// The test's own copy of the door's socket end is closed once the door has it.
fn drop_fd(s: std::net::TcpStream) {
    drop(s);
}

#[test]
fn missing_and_garbage_dropfiles_fail_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("DOOR32.SYS");
    let out = Command::new(EXE)
        .args(["door", "--dropfile"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing.display().to_string()), "{err}");

    let garbage = dir.path().join("door32.sys");
    std::fs::write(
        &garbage,
        "0\r\n0\r\n38400\r\nBBS\r\n1\r\nA\r\nB\r\nlots\r\n30\r\n1\r\n1\r\n",
    )
    .unwrap();
    let out = Command::new(EXE)
        .args(["door", "--dropfile"])
        .arg(&garbage)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&garbage.display().to_string()) && err.contains("line 8"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hanging_up_mid_order_leaves_no_trade_and_exits_within_a_second() {
    let (t, ex, game) = market().await;
    let dir = tempfile::tempdir().unwrap();
    let drop = door32(dir.path(), "0\r\n0", None);
    let cfg = config(dir.path(), &t.url);
    let mut child = spawn_stdio(&drop, &cfg);
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut c = Caller::new(Box::new(stdin), Box::new(stdout), false);
    let trades_before = ex.tape(game, "JUNK", 10).await.unwrap().len();
    tokio::task::block_in_place(|| {
        c.expect("Press RETURN");
        c.keys(b"\r");
        c.expect("Command:");
        c.keys(b"b");
        c.expect("Symbol:");
        c.line("JUNK");
        c.expect("M)arket?");
        c.keys(b"m");
        c.expect("Shares:");
        c.line("100");
        c.expect("Send this order?");
        c.hang_up();
        let status = wait_exit(&mut child, Duration::from_secs(1));
        assert!(status.success(), "{status:?}");
    });
    assert_eq!(
        ex.tape(game, "JUNK", 10).await.unwrap().len(),
        trades_before
    );
    let player =
        nuggetnet::store::players::find_or_create(ex.db(), "Synchronet BBS for Linux", "Gekko")
            .await
            .unwrap();
    assert!(ex
        .orders(game, player.id, false, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(nuggetnet::exchange::audit(ex.db(), Some(game))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn live_board_and_every_screen() {
    let (t, ex, game) = market().await;
    let dir = tempfile::tempdir().unwrap();
    let drop = door32(dir.path(), "0\r\n0", None);
    let cfg = config(dir.path(), &t.url);
    let mut child = spawn_stdio(&drop, &cfg);
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut c = Caller::new(Box::new(stdin), Box::new(stdout), false);
    tokio::task::block_in_place(|| {
        c.expect("Press RETURN");
        c.keys(b"\r");
        c.expect("Command:");
        c.expect("12.40");
    });
    // Somebody else trades while the caller watches the board.
    let drawn = c.received.lock().unwrap().len();
    let req = OrderRequest {
        symbol: "JUNK".into(),
        intent: Intent::Buy,
        order_type: OrderType::Limit { price: 1250 },
        tif: TimeInForce::Gtc,
        qty: 77,
        stp: None,
    };
    ex.place(game, BUYER, &req).await.unwrap();
    tokio::task::block_in_place(|| {
        c.expect_row("JUNK", " 77");
        let update = c.received.lock().unwrap()[drawn..].to_vec();
        assert!(
            !update.windows(4).any(|w| w == b"\x1b[2J"),
            "the board was redrawn whole"
        );
        assert!(
            update.len() < 120,
            "{} bytes for one changed quote",
            update.len()
        );

        c.keys(b"q");
        c.expect("Symbol:");
        c.line("NOPE");
        c.expect("no stock called NOPE");
        c.line("JUNK");
        c.expect("Bid qty");
        c.expect("fewer than two trades");
        c.keys(b"x");
        c.expect("Command:");

        c.keys(b"b");
        c.expect("Symbol:");
        c.line("JUNK");
        c.expect("M)arket?");
        c.keys(b"l");
        c.expect("Shares:");
        c.line("10");
        c.expect("Limit price");
        c.line("12");
        c.expect("Send this order?");
        c.keys(b"y");
        c.expect("rests on the book");
        c.keys(b" ");
        c.expect("Command:");
        c.keys(b"o");
        c.expect("Your open orders");
        c.expect("12.00");
        c.keys(b"c");
        c.expect("Cancel which #");
        c.line("5");
        c.expect("There is no #5");
        c.keys(b"c");
        c.expect("Cancel which #");
        c.line("1");
        c.expect("Cancel BUY 10 JUNK");
        c.keys(b"y");
        c.expect("cancelled.");
        c.keys(b"x");
        c.expect("Command:");

        c.keys(b"t");
        c.expect("The tape");
        c.expect("buyer");
        c.keys(b" ");
        c.expect("Command:");
        c.keys(b"l");
        c.expect("Leaderboard");
        c.expect("Gekko (you)");
        c.keys(b" ");
        c.expect("Command:");
        c.keys(b"?");
        c.expect("Survival Guide 1/4");
        c.keys(b" ");
        c.expect("Survival Guide 2/4");
        c.keys(b"q");
        c.expect("Command:");
        c.keys(b"z");
        c.expect("That key does nothing");
        c.keys(b"g");
        c.expect("miss your money");
        let status = wait_exit(&mut child, WAIT);
        assert!(status.success(), "{status:?}");
    });
    let player =
        nuggetnet::store::players::find_or_create(ex.db(), "Synchronet BBS for Linux", "Gekko")
            .await
            .unwrap();
    let orders = ex.orders(game, player.id, false, 10).await.unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(
        orders[0].status,
        nuggetnet::exchange::OrderStatus::Cancelled
    );
    assert!(nuggetnet::exchange::audit(ex.db(), Some(game))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_ends_the_door_within_a_second() {
    let (t, _ex, _game) = market().await;
    let dir = tempfile::tempdir().unwrap();
    let drop = door32(dir.path(), "0\r\n0", None);
    let cfg = config(dir.path(), &t.url);
    let mut child = spawn_stdio(&drop, &cfg);
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut c = Caller::new(Box::new(stdin), Box::new(stdout), false);
    tokio::task::block_in_place(|| {
        c.expect("Press RETURN");
        c.keys(b"\r");
        c.expect("Command:");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
        let status = wait_exit(&mut child, Duration::from_secs(1));
        assert!(status.success(), "{status:?}");
    });
}

/// A season the market simulation runs, its clock starting at `start` (market time), and
/// the door started on it with a caller attached.
async fn door_in_season(
    start: &str,
    name: &str,
) -> (
    TestDb,
    Exchange,
    i64,
    tempfile::TempDir,
    std::process::Child,
    Caller,
) {
    let t = fresh_db().await;
    let ex = Exchange::new(t.db.clone());
    let clock = nuggetnet::market::MarketConfig {
        start: start.into(),
        ..Default::default()
    };
    let market = nuggetnet::market::Market::new(ex.clone(), clock).unwrap();
    let game = market
        .new_game(name, "test", nuggetnet::store::now_ms())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let drop = door32(dir.path(), "0\r\n0", None);
    let cfg = config(dir.path(), &t.url);
    let mut child = spawn_stdio(&drop, &cfg);
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let c = Caller::new(Box::new(stdin), Box::new(stdout), false);
    (t, ex, game, dir, child, c)
}

/// From the board's prompt: B, the symbol SNL, up to the L)imit or M)arket question.
fn buy_snl(c: &mut Caller) {
    c.expect("Command:");
    c.keys(b"b");
    c.expect("Symbol:");
    c.keys(b"SNL\r");
    c.expect("L)imit or M)arket?");
}

/// Leaves an order form with ESC, then the door with G; the door exits cleanly.
fn cancel_and_leave(c: &mut Caller, child: &mut std::process::Child) {
    c.keys(b"\x1b");
    c.expect("Order cancelled. Nothing was sent.");
    leave(c, child);
}

/// From the board's prompt: G; the door exits cleanly.
fn leave(c: &mut Caller, child: &mut std::process::Child) {
    c.expect("Command:");
    c.keys(b"g");
    let status = wait_exit(child, WAIT);
    assert!(status.success(), "{status:?}");
}

/// The door's player (DOOR32.SYS "gekko" on Synchronet) has no orders in `game`.
async fn no_orders_reached_the_exchange(ex: &Exchange, game: i64) {
    let player =
        nuggetnet::store::players::find_or_create(ex.db(), "Synchronet BBS for Linux", "gekko")
            .await
            .unwrap();
    let orders = ex.orders(game, player.id, false, 10).await.unwrap();
    assert!(
        orders.is_empty(),
        "nothing reached the exchange: {orders:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_hours_the_order_form_says_at_once_that_only_limit_orders_go() {
    // A Monday, 17:00 on the market clock: the after-hours session.
    let (_t, _ex, _game, _dir, mut child, mut c) =
        door_in_season("2026-11-23 17:00", "Evening Season").await;
    tokio::task::block_in_place(|| {
        c.expect("Press RETURN");
        c.keys(b"\r");
        c.expect("AFTER HOURS");
        buy_snl(&mut c);
        // Refused before the shares and the ticket, and the form goes on.
        let before = c.received.lock().unwrap().len();
        c.keys(b"m");
        c.expect("Not now: market orders are not taken after hours; they return Tue 09:30");
        let seen = String::from_utf8_lossy(&c.received.lock().unwrap()[before..]).into_owned();
        assert!(!seen.contains("Shares:"), "{seen}");
        c.keys(b"l");
        c.expect("Shares:");
        cancel_and_leave(&mut c, &mut child);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fractional_share_count_is_refused_and_asked_again() {
    // A Monday, 10:00: the regular session.
    let (_t, ex, game, _dir, mut child, mut c) =
        door_in_season("2026-11-23 10:00", "Morning Season").await;
    tokio::task::block_in_place(|| {
        c.expect("Press RETURN");
        c.keys(b"\r");
        buy_snl(&mut c);
        c.keys(b"l");
        c.expect("Shares:");
        // The point is echoed and refused with the field, not dropped to make 1105 shares;
        // a letter rings the bell.
        c.keys(b"11.05x\r");
        c.expect("\"11.05\" is not a number of shares: whole shares only, like 100");
        c.expect("Shares:");
        cancel_and_leave(&mut c, &mut child);
        let seen = String::from_utf8_lossy(&c.received.lock().unwrap()).into_owned();
        assert!(
            seen.contains("11.05\x07"),
            "the refused letter rang no bell"
        );
    });
    no_orders_reached_the_exchange(&ex, game).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_outside_market_hours_are_refused_with_the_next_opening() {
    // A season run by the market simulation whose clock stands on a Sunday: closed all day.
    let (_t, ex, game, _dir, mut child, mut c) =
        door_in_season("2026-11-22 12:00", "Sunday Season").await;
    tokio::task::block_in_place(|| {
        c.expect("Press RETURN");
        c.keys(b"\r");
        c.expect("CLOSED - opens Mon");
        // Told at once, before a ticket is filled in, on the board it returns to.
        let before = c.received.lock().unwrap().len();
        c.keys(b"b");
        c.expect("No orders taken now: the market is closed; it opens Mon");
        let seen = String::from_utf8_lossy(&c.received.lock().unwrap()[before..]).into_owned();
        assert!(!seen.contains("Symbol:"), "{seen}");
        leave(&mut c, &mut child);
    });
    no_orders_reached_the_exchange(&ex, game).await;
}
