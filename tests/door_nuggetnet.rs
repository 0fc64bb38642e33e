//! End-to-end: from the BBS over telnet, a caller picks NuggetNet in the door menu, trades
//! through its screens, quits, and is back at the BBS's door menu. The door is the real
//! `nuggetnet door` process started by the node with a DOOR32.SYS, on the BBS's own database.

mod common;

use common::{leave_lobby, register, Caller, TestServer};
use nuggetnet::door::DoorConfig;
use nuggetnet::exchange::{Exchange, Intent, OrderRequest, OrderType, TimeInForce};

const BIN: &str = env!("CARGO_BIN_EXE_nuggetnet");
const SELLER: i64 = 900_001;

#[tokio::test]
async fn caller_trades_in_nuggetnet_and_returns_to_the_door_menu() {
    let t = TestServer::start_with(2, |config| {
        // In tests the running program is the test harness, so name the binary; a real BBS
        // uses the built-in door, whose command means "this program".
        let mut door = DoorConfig::builtin_nuggetnet();
        door.command = BIN.into();
        config.doors = vec![door];
    })
    .await;

    // A market with somebody selling JUNK at 12.50.
    let ex = Exchange::new(t.server.db().clone());
    let game = nuggetnet::game::season::current_game(&ex).await.unwrap().id;
    ex.open_account(game, SELLER).await.unwrap();
    ex.grant(game, SELLER, 0, Some(("JUNK", 1_000)))
        .await
        .unwrap();
    let sell = OrderRequest {
        symbol: "JUNK".into(),
        intent: Intent::Sell,
        order_type: OrderType::Limit { price: 1250 },
        tif: TimeInForce::Gtc,
        qty: 500,
        stp: None,
    };
    ex.place(game, SELLER, &sell).await.unwrap();

    let mut c = Caller::telnet(t.telnet_addr(), "ANSI").await;
    leave_lobby(&mut c).await;
    register(&mut c, "Gordon Gekko", "greedisgood").await;
    c.send(b"D").await;
    c.expect("NuggetNet").await;
    c.send(b"1").await;
    c.expect("Press RETURN").await;
    c.line("").await;
    c.expect("Command:").await;
    let node = t.server.nodes().snapshot();
    assert!(
        node.iter()
            .any(|s| s.activity.to_string() == "in door NuggetNet"),
        "{node:?}"
    );
    c.send(b"b").await;
    c.expect("Symbol:").await;
    c.line("JUNK").await;
    c.expect("M)arket?").await;
    c.send(b"l").await;
    c.expect("Shares:").await;
    c.line("100").await;
    c.expect("Limit price").await;
    c.line("12.50").await;
    c.expect("Send this order?").await;
    c.send(b"y").await;
    c.expect("Filled 100 shares").await;
    c.send(b" ").await;
    c.expect("Command:").await;
    c.send(b"g").await;
    c.expect("Door (Q to go back)").await;
    c.send(b"Q").await;
    c.expect("Main Menu").await;

    // The door sent its order through the node manager's order writer, which is still there.
    let socket = t
        .server
        .order_writer()
        .expect("an order writer runs by default");
    assert!(
        std::os::unix::net::UnixStream::connect(socket).is_ok(),
        "{}",
        socket.display()
    );

    // The trade is on the BBS's exchange, for the player (this BBS, this handle).
    let tape = ex.tape(game, "JUNK", 10).await.unwrap();
    assert!(
        tape.iter().any(|t| t.price == 1250 && t.qty == 100),
        "{tape:?}"
    );
    let player =
        nuggetnet::store::players::find_or_create(ex.db(), "NuggetNet BBS", "Gordon Gekko")
            .await
            .unwrap();
    let portfolio = ex.portfolio(game, player.id).await.unwrap();
    assert!(
        portfolio
            .positions
            .iter()
            .any(|p| p.symbol == "JUNK" && p.qty == 100),
        "{portfolio:?}"
    );
    let violations = nuggetnet::exchange::audit(ex.db(), Some(game))
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}
