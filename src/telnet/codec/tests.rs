//! Script tests for the codec: bytes in, events and replies out.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::*;
use crate::telnet::cmd::{GA, NOP};
use crate::telnet::opt::{LFLOW, LINEMODE, STATUS};

/// Everything one script produced, with data and replies concatenated.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    data: Vec<u8>,
    sent: Vec<u8>,
    /// The events other than data and replies, in order.
    events: Vec<TelnetEvent>,
    /// How many `Data` events came out.
    data_events: usize,
}

/// Feeds each chunk as one read and drains the decoder after each.
fn run(codec: &mut TelnetCodec, chunks: &[&[u8]]) -> Outcome {
    let mut outcome = Outcome::default();
    for chunk in chunks {
        let mut src = BytesMut::from(*chunk);
        while let Some(event) = codec.decode(&mut src).expect("decoding never fails") {
            match event {
                TelnetEvent::Data(bytes) => {
                    assert!(!bytes.is_empty(), "empty data event");
                    outcome.data.extend_from_slice(&bytes);
                    outcome.data_events += 1;
                }
                TelnetEvent::Send(bytes) => outcome.sent.extend_from_slice(&bytes),
                other => outcome.events.push(other),
            }
        }
        assert!(src.is_empty(), "the decoder left bytes in the buffer");
    }
    outcome
}

fn feed(codec: &mut TelnetCodec, bytes: &[u8]) -> Outcome {
    run(codec, &[bytes])
}

fn encode(codec: &mut TelnetCodec, data: &[u8]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    codec
        .encode(Bytes::copy_from_slice(data), &mut dst)
        .expect("encoding never fails");
    dst.to_vec()
}

/// The negotiations (`IAC verb opt`) in `bytes`, skipping subnegotiations.
fn negotiations(bytes: &[u8]) -> Vec<(u8, u8)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i + 2 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (IAC, WILL | WONT | DO | DONT) => {
                found.push((bytes[i + 1], bytes[i + 2]));
                i += 3;
            }
            (IAC, SB) => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == IAC && bytes[i + 1] == SE) {
                    i += 1;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    found
}

const TTYPE_SEND: &[u8] = &[IAC, SB, TTYPE, 1, IAC, SE];
const TSPEED_SEND: &[u8] = &[IAC, SB, TSPEED, 1, IAC, SE];

fn ttype_is(name: &str) -> Vec<u8> {
    let mut bytes = vec![IAC, SB, TTYPE, 0];
    bytes.extend_from_slice(name.as_bytes());
    bytes.extend_from_slice(&[IAC, SE]);
    bytes
}

fn naws(cols: u16, rows: u16) -> Vec<u8> {
    let mut bytes = vec![IAC, SB, NAWS];
    for b in cols.to_be_bytes().into_iter().chain(rows.to_be_bytes()) {
        bytes.push(b);
        if b == IAC {
            bytes.push(IAC);
        }
    }
    bytes.extend_from_slice(&[IAC, SE]);
    bytes
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---- The Q tables, driven through the codec -------------------------------------------------

/// Receiving WILL/WONT (peer's side) or DO/DONT (our side) in every state, for an option we accept
/// and one we refuse. Expected: (state, received verb, reply verb or none, next state).
#[test]
fn every_row_of_the_q_tables_replies_as_specified() {
    use QState::*;
    let him_rows = [
        (No, WILL, Some(DO), Yes),
        (Yes, WILL, None, Yes),
        (WantNoEmpty, WILL, None, No),
        (WantNoOpposite, WILL, None, Yes),
        (WantYesEmpty, WILL, None, Yes),
        (WantYesOpposite, WILL, Some(DONT), WantNoEmpty),
        (No, WONT, None, No),
        (Yes, WONT, Some(DONT), No),
        (WantNoEmpty, WONT, None, No),
        (WantNoOpposite, WONT, Some(DO), WantYesEmpty),
        (WantYesEmpty, WONT, None, No),
        (WantYesOpposite, WONT, None, No),
    ];
    for (state, received, reply, next) in him_rows {
        let mut codec = TelnetCodec::telnet();
        codec.him[usize::from(NAWS)] = state;
        let out = feed(&mut codec, &[IAC, received, NAWS]);
        let expected = reply.map(|v| vec![IAC, v, NAWS]).unwrap_or_default();
        assert_eq!(out.sent, expected, "him {state:?} receives {received}");
        assert_eq!(
            codec.him[usize::from(NAWS)],
            next,
            "him {state:?} receives {received}"
        );
    }
    // The same table for our side, with DO/DONT in and WILL/WONT out.
    let us_rows = [
        (No, DO, Some(WILL), Yes),
        (Yes, DO, None, Yes),
        (WantNoEmpty, DO, None, No),
        (WantNoOpposite, DO, None, Yes),
        (WantYesEmpty, DO, None, Yes),
        (WantYesOpposite, DO, Some(WONT), WantNoEmpty),
        (No, DONT, None, No),
        (Yes, DONT, Some(WONT), No),
        (WantNoEmpty, DONT, None, No),
        (WantNoOpposite, DONT, Some(WILL), WantYesEmpty),
        (WantYesEmpty, DONT, None, No),
        (WantYesOpposite, DONT, None, No),
    ];
    for (state, received, reply, next) in us_rows {
        let mut codec = TelnetCodec::telnet();
        codec.us[usize::from(ECHO)] = state;
        let out = feed(&mut codec, &[IAC, received, ECHO]);
        let expected = reply.map(|v| vec![IAC, v, ECHO]).unwrap_or_default();
        assert_eq!(out.sent, expected, "us {state:?} receives {received}");
        assert_eq!(
            codec.us[usize::from(ECHO)],
            next,
            "us {state:?} receives {received}"
        );
    }
}

#[test]
fn refused_options_get_dont_or_wont_once_and_never_a_reply_when_off() {
    for opt in [LINEMODE, LFLOW, ECHO, STATUS, 200, 255] {
        let mut codec = TelnetCodec::telnet();
        let out = feed(&mut codec, &[IAC, WILL, opt, IAC, WILL, opt]);
        // Each WILL finds the option off and is refused; neither enables it.
        assert_eq!(out.sent, [IAC, DONT, opt, IAC, DONT, opt], "WILL {opt}");
        assert!(!codec.remote_enabled(opt));
        assert!(feed(&mut codec, &[IAC, WONT, opt]).sent.is_empty());
    }
    for opt in [TTYPE, NAWS, LINEMODE, STATUS, 200] {
        let mut codec = TelnetCodec::telnet();
        let out = feed(&mut codec, &[IAC, DO, opt]);
        assert_eq!(out.sent, [IAC, WONT, opt], "DO {opt}");
        assert!(feed(&mut codec, &[IAC, DONT, opt]).sent.is_empty());
        assert!(!codec.local_enabled(opt));
    }
}

#[test]
fn acknowledgements_of_our_requests_are_not_acknowledged() {
    let mut codec = TelnetCodec::telnet();
    let _ = codec.start_negotiation();
    let acks = cat(&[
        &[
            IAC, DO, ECHO, IAC, DO, SGA, IAC, WILL, SGA, IAC, DO, BINARY, IAC, WILL, BINARY,
        ],
        &[IAC, WILL, NAWS, IAC, WONT, NEW_ENVIRON],
    ]);
    let out = feed(&mut codec, &acks);
    assert!(out.sent.is_empty(), "replied {:?}", out.sent);
    for opt in [ECHO, SGA, BINARY] {
        assert!(codec.local_enabled(opt), "local {opt}");
    }
    for opt in [SGA, BINARY, NAWS] {
        assert!(codec.remote_enabled(opt), "remote {opt}");
    }
    assert!(!codec.remote_enabled(NEW_ENVIRON));
    // The same acknowledgements again are just as silent.
    assert!(feed(&mut codec, &acks).sent.is_empty());
}

// ---- Opening ---------------------------------------------------------------------------------

#[test]
fn start_negotiation_sends_the_opening_once_and_nothing_in_raw_mode() {
    let mut codec = TelnetCodec::telnet();
    let opening = codec.start_negotiation();
    let expected: &[u8] = &[
        IAC,
        WILL,
        ECHO,
        IAC,
        WILL,
        SGA,
        IAC,
        DO,
        SGA,
        IAC,
        WILL,
        BINARY,
        IAC,
        DO,
        BINARY,
        IAC,
        DO,
        TTYPE,
        IAC,
        DO,
        NAWS,
        IAC,
        DO,
        NEW_ENVIRON,
    ];
    assert_eq!(&opening[..], expected);
    assert!(codec.start_negotiation().is_empty());
    assert_eq!(codec.him[usize::from(TTYPE)], QState::WantYesEmpty);

    assert!(TelnetCodec::raw_autodetect().start_negotiation().is_empty());
    let mut raw = TelnetCodec::raw_autodetect();
    let _ = feed(&mut raw, b"hello");
    assert!(raw.start_negotiation().is_empty());
    assert!(raw.enable_local(BINARY).is_empty());
}

#[test]
fn putty_opening_burst_is_answered_once() {
    let burst: &[u8] = &[
        IAC,
        WILL,
        NAWS,
        IAC,
        WILL,
        TSPEED,
        IAC,
        WILL,
        TTYPE,
        IAC,
        WILL,
        NEW_ENVIRON,
        IAC,
        DO,
        ECHO,
        IAC,
        WILL,
        SGA,
        IAC,
        DO,
        SGA,
    ];
    // Before our own opening: every offer is accepted and answered, and the SB requests follow.
    let mut codec = TelnetCodec::telnet();
    let out = feed(&mut codec, burst);
    let expected = cat(&[
        &[IAC, DO, NAWS, IAC, DO, TSPEED],
        TSPEED_SEND,
        &[IAC, DO, TTYPE],
        TTYPE_SEND,
        &[IAC, DO, NEW_ENVIRON],
        ENVIRON_REQUEST,
        &[IAC, WILL, ECHO, IAC, DO, SGA, IAC, WILL, SGA],
    ]);
    assert_eq!(out.sent, expected);

    // After our opening the burst mostly acknowledges it: only TSPEED (not asked) and the SB
    // requests are sent.
    let mut codec = TelnetCodec::telnet();
    let _ = codec.start_negotiation();
    let out = feed(&mut codec, burst);
    let expected = cat(&[&[IAC, DO, TSPEED], TSPEED_SEND, TTYPE_SEND, ENVIRON_REQUEST]);
    assert_eq!(out.sent, expected);

    // PuTTY then answers the requests.
    let answers = cat(&[
        &naws(80, 24),
        &[IAC, SB, TSPEED, 0],
        b"38400,38400",
        &[IAC, SE],
        &ttype_is("XTERM"),
        &[IAC, SB, NEW_ENVIRON, 0, 0],
        b"USER",
        &[1],
        b"alice",
        &[IAC, SE],
        &ttype_is("XTERM"),
    ]);
    let out = feed(&mut codec, &answers);
    assert_eq!(out.sent, TTYPE_SEND);
    assert_eq!(
        out.events,
        [
            TelnetEvent::WindowSize { cols: 80, rows: 24 },
            TelnetEvent::TerminalSpeed {
                tx: 38400,
                rx: 38400
            },
            TelnetEvent::Environment(vec![("USER".into(), "alice".into())]),
            TelnetEvent::TerminalTypes(vec!["XTERM".into()]),
        ]
    );
}

#[test]
fn syncterm_opening_burst_needs_no_reply_after_ours() {
    let mut codec = TelnetCodec::telnet();
    let _ = codec.start_negotiation();
    let burst: &[u8] = &[
        IAC, WILL, SGA, IAC, DO, SGA, IAC, WILL, BINARY, IAC, DO, BINARY, IAC, DO, ECHO,
    ];
    assert!(feed(&mut codec, burst).sent.is_empty());
    // Its answers to our DOs: TTYPE yes (walk starts), NAWS with the size first, no NEW-ENVIRON.
    let out = feed(
        &mut codec,
        &cat(&[
            &[IAC, WILL, TTYPE],
            &naws(80, 25),
            &[IAC, WILL, NAWS, IAC, WONT, NEW_ENVIRON],
        ]),
    );
    assert_eq!(out.sent, TTYPE_SEND);
    assert_eq!(out.events, [TelnetEvent::WindowSize { cols: 80, rows: 25 }]);
    let out = feed(
        &mut codec,
        &cat(&[&ttype_is("syncterm"), &ttype_is("syncterm")]),
    );
    assert_eq!(out.sent, TTYPE_SEND);
    assert_eq!(
        out.events,
        [TelnetEvent::TerminalTypes(vec!["syncterm".into()])]
    );
    assert!(codec.local_enabled(BINARY) && codec.remote_enabled(BINARY));
}

#[test]
fn netkit_opening_burst_refuses_linemode_and_friends() {
    let mut codec = TelnetCodec::telnet();
    let _ = codec.start_negotiation();
    let burst: &[u8] = &[
        IAC,
        DO,
        SGA,
        IAC,
        WILL,
        TTYPE,
        IAC,
        WILL,
        NAWS,
        IAC,
        WILL,
        TSPEED,
        IAC,
        WILL,
        LFLOW,
        IAC,
        WILL,
        LINEMODE,
        IAC,
        WILL,
        NEW_ENVIRON,
        IAC,
        DO,
        STATUS,
    ];
    let out = feed(&mut codec, burst);
    let expected = cat(&[
        TTYPE_SEND,
        &[IAC, DO, TSPEED],
        TSPEED_SEND,
        &[IAC, DONT, LFLOW, IAC, DONT, LINEMODE],
        ENVIRON_REQUEST,
        &[IAC, WONT, STATUS],
    ]);
    assert_eq!(out.sent, expected);
    assert!(!codec.remote_enabled(LINEMODE));
}

/// A peer that answers every negotiation it receives, like tcpser's `parse_nvt_command`: it
/// mirrors WILL→DO, DO→WILL, WONT→DONT, DONT→WONT.
fn mirror(bytes: &[u8]) -> Vec<u8> {
    negotiations(bytes)
        .into_iter()
        .flat_map(|(verb, opt)| {
            let answer = match verb {
                WILL => DO,
                DO => WILL,
                WONT => DONT,
                _ => WONT,
            };
            [IAC, answer, opt]
        })
        .collect()
}

#[test]
fn tcpser_answering_everything_does_not_loop() {
    let mut codec = TelnetCodec::telnet();
    // tcpser opens with WILL ECHO and WILL/DO BINARY once it sees our IAC.
    let mut to_peer = codec.start_negotiation().to_vec();
    let mut from_peer = vec![IAC, WILL, ECHO, IAC, WILL, BINARY, IAC, DO, BINARY];
    let mut rounds = 0;
    while !to_peer.is_empty() || !from_peer.is_empty() {
        rounds += 1;
        assert!(rounds < 6, "negotiation did not settle");
        from_peer.extend(mirror(&to_peer));
        to_peer = feed(&mut codec, &from_peer).sent;
        from_peer.clear();
    }
    assert!(codec.local_enabled(ECHO));
    assert!(
        !codec.remote_enabled(ECHO),
        "a client's WILL ECHO must be refused"
    );
    assert!(codec.remote_enabled(TTYPE) && codec.remote_enabled(BINARY));
}

#[test]
fn a_contrary_peer_gets_a_bounded_number_of_replies() {
    // This peer refuses whatever we enable and then offers it again, and offers whatever we
    // refuse: with a naive implementation it would go on forever.
    let contrary = |bytes: &[u8]| -> Vec<u8> {
        let mut answer = Vec::new();
        for (verb, opt) in negotiations(bytes) {
            match verb {
                WILL => answer.extend_from_slice(&[IAC, DONT, opt, IAC, DO, opt]),
                DO => answer.extend_from_slice(&[IAC, WONT, opt, IAC, WILL, opt]),
                WONT => answer.extend_from_slice(&[IAC, DO, opt]),
                _ => answer.extend_from_slice(&[IAC, WILL, opt]),
            }
        }
        answer
    };
    let mut codec = TelnetCodec::telnet();
    let mut to_peer = codec.start_negotiation().to_vec();
    let mut total = 0;
    for _ in 0..1000 {
        if to_peer.is_empty() {
            break;
        }
        to_peer = feed(&mut codec, &contrary(&to_peer)).sent;
        total += to_peer.len();
    }
    assert!(to_peer.is_empty(), "still replying after 1000 rounds");
    assert!(total > 0);
    assert!(
        total <= 8 * usize::from(PEER_REPLY_BUDGET) * 3 + 64,
        "{total}"
    );
}

#[test]
fn a_negotiation_flood_gets_bounded_replies() {
    let mut flood = Vec::new();
    for _ in 0..10_000 {
        flood.extend_from_slice(&[
            IAC, WILL, BINARY, IAC, WONT, BINARY, IAC, DO, 77, IAC, DONT, 77,
        ]);
    }
    let mut codec = TelnetCodec::telnet();
    let out = feed(&mut codec, &flood);
    assert!(
        out.sent.len() <= 2 * usize::from(PEER_REPLY_BUDGET) * 3,
        "{}",
        out.sent.len()
    );
    assert!(!codec.remote_enabled(BINARY));
}

// ---- TTYPE -----------------------------------------------------------------------------------

fn walking_codec() -> TelnetCodec {
    let mut codec = TelnetCodec::telnet();
    let _ = codec.start_negotiation();
    assert_eq!(feed(&mut codec, &[IAC, WILL, TTYPE]).sent, TTYPE_SEND);
    codec
}

#[test]
fn ttype_walk_ends_at_the_first_repeat() {
    let mut codec = walking_codec();
    assert_eq!(feed(&mut codec, &ttype_is("ANSI")).sent, TTYPE_SEND);
    assert_eq!(feed(&mut codec, &ttype_is(" VT100 ")).sent, TTYPE_SEND);
    let out = feed(&mut codec, &ttype_is("ansi"));
    assert!(out.sent.is_empty());
    assert_eq!(
        out.events,
        [TelnetEvent::TerminalTypes(vec![
            "ANSI".into(),
            "VT100".into()
        ])]
    );
    // The walk is over: later replies and a second WILL are ignored.
    let out = feed(
        &mut codec,
        &cat(&[&ttype_is("XTERM"), &[IAC, WONT, TTYPE, IAC, WILL, TTYPE]]),
    );
    assert!(out.events.is_empty());
    assert_eq!(out.sent, [IAC, DONT, TTYPE, IAC, DO, TTYPE]);
}

#[test]
fn ttype_single_name_repeated() {
    let mut codec = walking_codec();
    let out = feed(&mut codec, &cat(&[&ttype_is("VT100"), &ttype_is("VT100")]));
    assert_eq!(
        out.events,
        [TelnetEvent::TerminalTypes(vec!["VT100".into()])]
    );
}

#[test]
fn ttype_walk_is_capped_and_ends_on_empty_names_or_withdrawal() {
    let mut codec = walking_codec();
    let names: Vec<String> = (0..20).map(|i| format!("T{i}")).collect();
    let script: Vec<u8> = names.iter().flat_map(|n| ttype_is(n)).collect();
    let out = feed(&mut codec, &script);
    assert_eq!(
        out.events,
        [TelnetEvent::TerminalTypes(names[..TTYPE_MAX].to_vec())]
    );
    assert_eq!(out.sent.len(), (TTYPE_MAX - 1) * TTYPE_SEND.len());

    let mut codec = walking_codec();
    let out = feed(&mut codec, &cat(&[&ttype_is("PETSCII"), &ttype_is("  ")]));
    assert_eq!(
        out.events,
        [TelnetEvent::TerminalTypes(vec!["PETSCII".into()])]
    );

    let mut codec = walking_codec();
    let out = feed(&mut codec, &cat(&[&ttype_is("ANSI"), &[IAC, WONT, TTYPE]]));
    assert_eq!(
        out.events,
        [TelnetEvent::TerminalTypes(vec!["ANSI".into()])]
    );
}

#[test]
fn unsolicited_ttype_is_ignored() {
    let mut codec = TelnetCodec::telnet();
    assert!(feed(&mut codec, &ttype_is("ANSI")).events.is_empty());
}

// ---- NAWS ------------------------------------------------------------------------------------

#[test]
fn naws_reports_sizes_and_resizes() {
    let mut codec = TelnetCodec::telnet();
    let _ = codec.start_negotiation();
    let out = feed(&mut codec, &cat(&[&[IAC, WILL, NAWS], &naws(80, 24)]));
    assert!(out.sent.is_empty());
    assert_eq!(out.events, [TelnetEvent::WindowSize { cols: 80, rows: 24 }]);
    // A resize mid-session, between data.
    let out = feed(&mut codec, &cat(&[b"ab", &naws(132, 50), b"cd"]));
    assert_eq!(out.data, b"abcd");
    assert_eq!(
        out.events,
        [TelnetEvent::WindowSize {
            cols: 132,
            rows: 50
        }]
    );
    // The same size again is not a resize.
    assert!(feed(&mut codec, &naws(132, 50)).events.is_empty());
    assert_eq!(codec.window_size(), Some((132, 50)));
}

#[test]
fn naws_unescapes_0xff_inside_the_payload() {
    let mut codec = TelnetCodec::telnet();
    let script = naws(255, 0x01FF);
    // IAC SB and IAC SE, and two doubled 0xFF bytes.
    assert_eq!(script.iter().filter(|&&b| b == IAC).count(), 6);
    let out = feed(&mut codec, &script);
    assert_eq!(
        out.events,
        [TelnetEvent::WindowSize {
            cols: 255,
            rows: 511
        }]
    );
}

#[test]
fn naws_zero_and_absurd_dimensions_keep_the_last_known_value() {
    let mut codec = TelnetCodec::telnet();
    // ConnectBot's 0x0 first: nothing.
    assert!(feed(&mut codec, &naws(0, 0)).events.is_empty());
    // Only the width known: still nothing, but the width is remembered.
    assert!(feed(&mut codec, &naws(40, 0)).events.is_empty());
    let out = feed(&mut codec, &naws(0, 24));
    assert_eq!(out.events, [TelnetEvent::WindowSize { cols: 40, rows: 24 }]);
    // A zero or absurd dimension later keeps the known one.
    let out = feed(&mut codec, &naws(80, 0));
    assert_eq!(out.events, [TelnetEvent::WindowSize { cols: 80, rows: 24 }]);
    let out = feed(&mut codec, &naws(1000, 25));
    assert_eq!(out.events, [TelnetEvent::WindowSize { cols: 80, rows: 25 }]);
    assert!(feed(&mut codec, &naws(0, 0)).events.is_empty());
    assert!(feed(&mut codec, &naws(65535, 65535)).events.is_empty());
    // A payload of the wrong length is ignored.
    assert!(feed(&mut codec, &[IAC, SB, NAWS, 0, 90, 0, IAC, SE])
        .events
        .is_empty());
    assert_eq!(codec.window_size(), Some((80, 25)));
}

#[test]
fn naws_split_at_every_byte_decodes_the_same() {
    let script = cat(&[b"x", &naws(255, 24), b"y"]);
    for cut in 0..=script.len() {
        let mut codec = TelnetCodec::telnet();
        let out = run(&mut codec, &[&script[..cut], &script[cut..]]);
        assert_eq!(out.data, b"xy", "cut at {cut}");
        assert_eq!(
            out.events,
            [TelnetEvent::WindowSize {
                cols: 255,
                rows: 24
            }],
            "cut at {cut}"
        );
    }
}

// ---- End of line -----------------------------------------------------------------------------

#[test]
fn cr_lf_and_cr_nul_become_one_cr_outside_binary() {
    let mut codec = TelnetCodec::telnet();
    assert_eq!(
        feed(&mut codec, b"a\r\nb\r\0c\rd\r\re\n").data,
        b"a\rb\rc\rd\r\re\n"
    );
    // Split between the CR and its LF, and with a command in between.
    let out = run(&mut codec, &[b"x\r", b"\ny\r", &[IAC, NOP], b"\0z"]);
    assert_eq!(out.data, b"x\ry\rz");
    // A CR followed by IAC IAC keeps both.
    assert_eq!(feed(&mut codec, &[CR, IAC, IAC]).data, [CR, IAC]);
    // CR LF LF is one CR and one LF.
    assert_eq!(feed(&mut codec, b"\r\n\n").data, b"\r\n");
}

#[test]
fn binary_mode_leaves_cr_alone() {
    let mut codec = TelnetCodec::telnet();
    let _ = codec.start_negotiation();
    let _ = feed(&mut codec, &[IAC, WILL, BINARY, IAC, DO, BINARY]);
    assert!(codec.remote_enabled(BINARY) && codec.local_enabled(BINARY));
    assert_eq!(feed(&mut codec, b"a\r\nb\r\0c\r").data, b"a\r\nb\r\0c\r");
    assert_eq!(encode(&mut codec, b"a\rb\r\n\r"), b"a\rb\r\n\r");
    assert_eq!(encode(&mut codec, &[IAC, CR]), [IAC, IAC, CR]);
}

#[test]
fn encoder_escapes_iac_and_writes_bare_cr_as_cr_nul() {
    let mut codec = TelnetCodec::telnet();
    assert_eq!(encode(&mut codec, b"plain text\r\n"), b"plain text\r\n");
    assert_eq!(
        encode(&mut codec, &[1, IAC, 2, IAC, IAC]),
        [1, IAC, IAC, 2, IAC, IAC, IAC, IAC]
    );
    assert_eq!(encode(&mut codec, b"a\rb\r"), b"a\r\0b\r\0");
    // CR NUL from the application is left as it is.
    assert_eq!(encode(&mut codec, b"a\r\0b"), b"a\r\0b");
    let mut dst = BytesMut::new();
    codec
        .encode(&b"\xff\r"[..], &mut dst)
        .expect("encoding never fails");
    assert_eq!(&dst[..], &[IAC, IAC, CR, NUL]);
}

// ---- Data, commands and modes ----------------------------------------------------------------

#[test]
fn iac_iac_is_one_0xff_and_keeps_its_neighbours() {
    let mut codec = TelnetCodec::telnet();
    let out = feed(&mut codec, &[b'a', IAC, IAC, b'b', IAC, IAC, IAC, IAC]);
    assert_eq!(out.data, [b'a', IAC, b'b', IAC, IAC]);
    assert_eq!(out.data_events, 1);
    // Split between the two IACs.
    let out = run(&mut codec, &[&[b'a', IAC], &[IAC, b'b']]);
    assert_eq!(out.data, [b'a', IAC, b'b']);
}

#[test]
fn a_contiguous_run_is_one_data_event_borrowed_from_the_buffer() {
    let mut codec = TelnetCodec::telnet();
    let mut src = BytesMut::from(&b"hello, world"[..]);
    let start = src.as_ptr();
    let Some(TelnetEvent::Data(data)) = codec.decode(&mut src).expect("decodes") else {
        panic!("expected data");
    };
    assert_eq!(&data[..], b"hello, world");
    assert_eq!(data.as_ptr(), start, "data was copied");
    assert_eq!(codec.decode(&mut src).expect("decodes"), None);
}

#[test]
fn commands_are_reported_or_discarded() {
    let mut codec = TelnetCodec::telnet();
    let script = [
        b'a', IAC, AYT, b'b', IAC, NOP, IAC, GA, IAC, 242, IAC, 17, IAC, SE, IAC, IP, IAC, 239,
        b'c',
    ];
    let out = feed(&mut codec, &script);
    assert_eq!(out.data, b"abc");
    assert_eq!(
        out.events,
        [TelnetEvent::Command(AYT), TelnetEvent::Command(IP)]
    );
    assert!(out.sent.is_empty());
}

#[test]
fn raw_mode_passes_everything_through() {
    let mut codec = TelnetCodec::raw_autodetect();
    let script = [b'a', IAC, WILL, TTYPE, CR, NUL, CR, LF, IAC, IAC];
    let out = feed(&mut codec, &script);
    assert!(!codec.is_telnet());
    assert_eq!(out.data, script);
    assert!(out.sent.is_empty() && out.events.is_empty());
    // A later IAC does not switch: only the very first byte counts.
    let out = feed(&mut codec, &[IAC, DO, ECHO]);
    assert_eq!(out.data, [IAC, DO, ECHO]);
    assert!(!codec.is_telnet());
    assert_eq!(encode(&mut codec, &[IAC, CR, b'x']), [IAC, CR, b'x']);
}

#[test]
fn raw_autodetect_switches_on_a_leading_iac() {
    let mut codec = TelnetCodec::raw_autodetect();
    // Before the peer speaks, output is raw.
    assert_eq!(encode(&mut codec, &[IAC, CR]), [IAC, CR]);
    let out = run(&mut codec, &[&[], &[IAC], &[WILL, NAWS, b'h', b'i']]);
    assert_eq!(out.events[0], TelnetEvent::TelnetDetected);
    assert_eq!(out.sent, [IAC, DO, NAWS]);
    assert_eq!(out.data, b"hi");
    assert!(codec.is_telnet());
    assert!(!codec.start_negotiation().is_empty());
    assert_eq!(encode(&mut codec, &[IAC]), [IAC, IAC]);
}

// ---- Subnegotiation payloads -----------------------------------------------------------------

#[test]
fn environment_is_unescaped_and_typed() {
    let mut codec = TelnetCodec::telnet();
    let script = cat(&[
        &[IAC, SB, NEW_ENVIRON, 0, 0],
        b"USER",
        &[1],
        b"bo",
        &[2, 1, 2, 2],
        b"b",
        &[3],
        b"TERM",
        &[1],
        b"ansi",
        &[3],
        b"EMPTY",
        &[0, 3],
        b"COLUMNS",
        &[1, IAC, IAC, IAC, SE],
    ]);
    let out = feed(&mut codec, &script);
    assert_eq!(
        out.events,
        [TelnetEvent::Environment(vec![
            ("USER".into(), "bo\u{1}\u{2}b".into()),
            ("TERM".into(), "ansi".into()),
            ("EMPTY".into(), String::new()),
            ("COLUMNS".into(), "\u{fffd}".into()),
        ])]
    );
    // A SEND from the peer is not an answer; an empty INFO says nothing.
    assert!(feed(&mut codec, &[IAC, SB, NEW_ENVIRON, 1, IAC, SE])
        .events
        .is_empty());
    assert!(feed(&mut codec, &[IAC, SB, NEW_ENVIRON, 2, IAC, SE])
        .events
        .is_empty());
    let out = feed(&mut codec, &[IAC, SB, NEW_ENVIRON, 0, IAC, SE]);
    assert_eq!(out.events, [TelnetEvent::Environment(Vec::new())]);
}

#[test]
fn tspeed_reply_is_parsed_and_garbage_ignored() {
    let mut codec = TelnetCodec::telnet();
    let out = feed(
        &mut codec,
        &cat(&[&[IAC, SB, TSPEED, 0], b"2400, 1200", &[IAC, SE]]),
    );
    assert_eq!(
        out.events,
        [TelnetEvent::TerminalSpeed { tx: 2400, rx: 1200 }]
    );
    let out = feed(
        &mut codec,
        &cat(&[&[IAC, SB, TSPEED, 0], b"fast", &[IAC, SE]]),
    );
    assert!(out.events.is_empty());
}

#[test]
fn an_unterminated_subnegotiation_uses_bounded_memory() {
    let mut codec = TelnetCodec::telnet();
    let _ = feed(&mut codec, &[IAC, SB, TTYPE, 0]);
    let junk: Vec<u8> = (0..4096u32).map(|i| (i % 250) as u8).collect();
    for _ in 0..256 {
        let out = feed(&mut codec, &junk);
        assert_eq!(out, Outcome::default());
        assert!(codec.sb_buf.capacity() <= SB_MAX);
    }
    // IAC SE still ends it; the oversized payload is dropped and data flows again.
    let out = feed(&mut codec, &[IAC, SE, b'o', b'k']);
    assert_eq!(out.data, b"ok");
    assert!(out.events.is_empty());
}

#[test]
fn a_command_inside_a_subnegotiation_abandons_it() {
    let mut codec = TelnetCodec::telnet();
    let out = feed(&mut codec, &[IAC, SB, NAWS, 0, 80, IAC, WILL, SGA, b'x']);
    assert_eq!(out.sent, [IAC, DO, SGA]);
    assert_eq!(out.data, b"x");
    assert!(out.events.is_empty());
}

// ---- Properties ------------------------------------------------------------------------------

/// Bytes that hit the interesting paths often: IAC, commands, options, CR, LF, NUL.
fn telnet_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => Just(IAC),
        2 => prop::sample::select(vec![WILL, WONT, DO, DONT, SB, SE, AYT, NOP]),
        2 => prop::sample::select(vec![BINARY, ECHO, SGA, TTYPE, NAWS, TSPEED, NEW_ENVIRON, LINEMODE]),
        2 => prop::sample::select(vec![CR, LF, NUL, 0, 1, 2, 3]),
        3 => any::<u8>(),
    ]
}

fn decode_chunks(mut codec: TelnetCodec, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for p in points {
        chunks.push(&input[start..p]);
        start = p;
    }
    chunks.push(&input[start..]);
    run(&mut codec, &chunks)
}

proptest! {
    #[test]
    fn random_streams_decode_the_same_however_split(
        input in prop::collection::vec(telnet_byte(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        opening in any::<bool>(),
        autodetect in any::<bool>(),
    ) {
        let make = || {
            let mut codec = if autodetect { TelnetCodec::raw_autodetect() } else { TelnetCodec::telnet() };
            if opening {
                let _ = codec.start_negotiation();
            }
            codec
        };
        let whole = decode_chunks(make(), &input, &[]);
        let split = decode_chunks(make(), &input, &cuts);
        prop_assert_eq!(&whole.data, &split.data);
        prop_assert_eq!(&whole.sent, &split.sent);
        prop_assert_eq!(&whole.events, &split.events);
        // Output is bounded by the input.
        prop_assert!(whole.data.len() <= input.len());
        prop_assert!(whole.sent.len() <= 4 * input.len() + ENVIRON_REQUEST.len());
        prop_assert!(whole.events.len() <= input.len());
    }

    #[test]
    fn encoding_then_decoding_returns_the_data(
        data in prop::collection::vec(telnet_byte(), 0..300),
    ) {
        let mut codec = TelnetCodec::telnet();
        let wire = encode(&mut codec, &data);
        let out = feed(&mut TelnetCodec::telnet(), &wire);
        // The decoder folds CR LF and CR NUL into CR, so compare against the same folding.
        let mut expected = Vec::new();
        let mut after_cr = false;
        for &b in &data {
            if after_cr && (b == LF || b == NUL) {
                after_cr = false;
                continue;
            }
            after_cr = b == CR;
            expected.push(b);
        }
        prop_assert_eq!(out.data, expected);
        prop_assert!(out.sent.is_empty());
        prop_assert!(out.events.is_empty());
    }
}
