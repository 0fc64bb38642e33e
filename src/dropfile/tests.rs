//! Dropfile readers against real-world variants (dropfiles.md) and garbage; writers round-trip.

use std::path::Path;

use proptest::prelude::*;

use super::*;

fn parse_named(name: &str, text: &[u8]) -> Result<DropInfo, DropfileError> {
    parse(DropKind::from_file_name(name), text, Path::new(name))
}

fn sample() -> DropInfo {
    DropInfo {
        bbs_name: "NuggetNet BBS".into(),
        bbs_software: "NuggetNet 0.1".into(),
        sysop: "Gordon Gekko".into(),
        user_number: 42,
        real_name: "Bud Fox".into(),
        alias: "bluestar".into(),
        location: "New York, NY".into(),
        security: 30,
        minutes_left: 45,
        emulation: Emulation::Ansi,
        width: 80,
        height: 25,
        node: 3,
        comm: Comm::Socket(7),
        baud: 2400,
    }
}

/// A Synchronet DOOR32.SYS for a socket door (LF line ends, as for native doors).
const SYNCHRONET_DOOR32: &str =
    "2\n5\n38400\nSynchronet BBS for Linux Version 3.20\n1\nJohn Doe\njdoe\n90\n58\n1\n2\n";
/// Mystic writes CR LF.
const MYSTIC_DOOR32: &str = "2\r\n1234\r\n38400\r\nMystic 1.12 A47\r\n1\r\nJames Coyle\r\ng00r00\r\n255\r\n58\r\n1\r\n1\r\n";
/// ENiGMA writes telnet with handle -1 and trailing blank lines.
const ENIGMA_DOOR32: &str = "2\r\n-1\r\n115200\r\nENiGMA-BBS_0.0.14\r\n3\r\nUnknown\r\nnuskooler\r\n255\r\n120\r\n1\r\n4\r\n\r\n\r\n";
/// WWIV 5.x wrote seconds on line 9.
const WWIV_DOOR32: &str =
    "0\r\n0\r\n0\r\nWWIV 5.4\r\n1\r\nSysop\r\nSysop\r\n255\r\n3600\r\n1\r\n1\r\n";
/// icy_board: local, handle 0, DOS end-of-file byte at the end.
const ICY_DOOR32: &str =
    "0\r\n0\r\n0\r\nIcyBoard\r\n7\r\nJoe User\r\nJoe\r\n10\r\n30\r\n0\r\n1\r\n\x1a";

fn door_sys_lines(first: &str) -> Vec<String> {
    let mut lines: Vec<String> = [
        first,
        "38400",
        "8",
        "2",
        "38400",
        "Y",
        "Y",
        "Y",
        "Y",
        "JOHN DOE",
        "SPRINGFIELD, IL",
        "555-555-1234",
        "555-555-1234",
        "SECRET",
        "30",
        "12",
        "03/14/88",
        "3600",
        "60",
        "GR",
        "24",
        "N",
        "1,2,3,4,5,6,7",
        "1",
        "12/31/99",
        "9",
        "Z",
        "0",
        "0",
        "0",
        "9999",
        "01/01/70",
        "C:\\BBS\\MAIN\\",
        "C:\\BBS\\GEN\\",
        "Sysop",
        "JD",
        "00:05",
        "Y",
        "N",
        "Y",
        "7",
        "0",
        "07/07/90",
        "14:32",
        "07:30",
        "9999",
        "0",
        "0",
        "0",
        "None",
        "0",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    lines.truncate(52);
    lines
}

#[test]
fn door32_variants_from_real_boards() {
    let info = parse_named("DOOR32.SYS", SYNCHRONET_DOOR32.as_bytes()).unwrap();
    assert_eq!(info.comm, Comm::Socket(5));
    assert_eq!(
        (info.real_name.as_str(), info.alias.as_str()),
        ("John Doe", "jdoe")
    );
    assert_eq!((info.security, info.minutes_left, info.node), (90, 58, 2));
    assert_eq!(info.emulation, Emulation::Ansi);

    let info = parse_named("door32.sys", MYSTIC_DOOR32.as_bytes()).unwrap();
    assert_eq!(info.alias, "g00r00");
    assert_eq!(info.bbs_software, "Mystic 1.12 A47");

    let info = parse_named("door32.sys", ENIGMA_DOOR32.as_bytes()).unwrap();
    assert_eq!(info.comm, Comm::Socket(-1));
    assert_eq!((info.node, info.user_number, info.baud), (4, 3, 115_200));

    let info = parse_named("DOOR32.SYS", WWIV_DOOR32.as_bytes()).unwrap();
    assert_eq!(info.minutes_left, 60, "seconds on line 9 are recognised");

    let info = parse_named("Door32.Sys", ICY_DOOR32.as_bytes()).unwrap();
    assert_eq!((info.comm, info.emulation), (Comm::Local, Emulation::Ascii));
}

#[test]
fn door_sys_variants_from_real_boards() {
    let full = door_sys_lines("COM1:").join("\r\n") + "\r\n";
    let info = parse_named("DOOR.SYS", full.as_bytes()).unwrap();
    assert_eq!(info.comm, Comm::Serial(1));
    assert_eq!(
        (info.real_name.as_str(), info.alias.as_str()),
        ("JOHN DOE", "JD")
    );
    assert_eq!((info.node, info.security, info.minutes_left), (2, 30, 60));
    assert_eq!((info.height, info.user_number), (24, 9));
    assert_eq!(info.sysop, "Sysop");

    // Synchronet's GAP type: 31 lines and 21 blank ones, LF only.
    let mut gap = door_sys_lines("COM0:");
    gap.truncate(31);
    let gap = gap.join("\n") + &"\n".repeat(22);
    let info = parse_named("door.sys", gap.as_bytes()).unwrap();
    assert_eq!(info.comm, Comm::Local);
    assert_eq!(info.alias, "JOHN DOE", "no alias line: the name is used");

    // OpenDoors' extensions and WWIV's colon-less port.
    for (first, comm) in [
        ("COM0:STDIO", Comm::Local),
        ("COM0:SOCKET9", Comm::Socket(9)),
        ("COM2", Comm::Serial(2)),
    ] {
        let text = door_sys_lines(first).join("\r\n");
        assert_eq!(parse_named("DOOR.SYS", text.as_bytes()).unwrap().comm, comm);
    }

    // Conferences wrapping onto a second comma line shift the later lines.
    let mut wrapped = door_sys_lines("COM1:");
    wrapped.insert(23, "8,9,10".into());
    let info = parse_named("DOOR.SYS", wrapped.join("\r\n").as_bytes()).unwrap();
    assert_eq!((info.user_number, info.alias.as_str()), (9, "JD"));

    // Only the minutes are usable.
    let mut minutes_only = door_sys_lines("COM1:");
    minutes_only[17] = "n/a".into();
    let info = parse_named("DOOR.SYS", minutes_only.join("\n").as_bytes()).unwrap();
    assert_eq!(info.minutes_left, 60);
}

#[test]
fn dorinfo_variants_from_real_boards() {
    let rbbs = "MY BBS\r\nJOHN\r\nDOE\r\nCOM1\r\n38400 BAUD,N,8,1\r\n0\r\nJOE\r\nUSER\r\nANYTOWN, USA\r\n1\r\n30\r\n60\r\n-1\r\n";
    let info = parse_named("DORINFO1.DEF", rbbs.as_bytes()).unwrap();
    assert_eq!(
        (info.bbs_name.as_str(), info.sysop.as_str()),
        ("MY BBS", "JOHN DOE")
    );
    assert_eq!((info.alias.as_str(), info.baud), ("JOE USER", 38_400));
    assert_eq!((info.emulation, info.minutes_left), (Emulation::Ansi, 60));
    // Synchronet: upper case, no line 13; ENiGMA's graphics 2 is ANSI too.
    let sync = "NUGGET\nSYSOP\n\nCOM0\n0 BAUD,N,8,1\n0\nBLUESTAR\n\nNOWHERE\n2\n10\n5\n";
    let info = parse_named("dorinfoa.def", sync.as_bytes()).unwrap();
    assert_eq!((info.alias.as_str(), info.comm), ("BLUESTAR", Comm::Local));
    assert_eq!(info.emulation, Emulation::Ansi);
}

#[test]
fn dorinfo_node_comes_from_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("DORINFOB.DEF");
    std::fs::write(
        &path,
        render(DropKind::DorInfo, &sample(), LineEnding::CrLf),
    )
    .unwrap();
    assert_eq!(read(&path).unwrap().node, 11);
}

#[test]
fn content_detection_without_a_telling_name() {
    let path = Path::new("dropfile.txt");
    let info = parse(None, SYNCHRONET_DOOR32.as_bytes(), path).unwrap();
    assert_eq!(info.alias, "jdoe");
    let door_sys = door_sys_lines("COM1:").join("\n");
    assert_eq!(parse(None, door_sys.as_bytes(), path).unwrap().alias, "JD");
    let dorinfo = render(DropKind::DorInfo, &sample(), LineEnding::Lf);
    assert_eq!(parse(None, &dorinfo, path).unwrap().alias, "bluestar");
    let err = parse(None, b"hello\nworld\n", path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dropfile.txt") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn round_trip_every_format_and_line_ending() {
    for kind in [DropKind::Door32, DropKind::DoorSys, DropKind::DorInfo] {
        for ending in [LineEnding::CrLf, LineEnding::Lf] {
            for emulation in [Emulation::Ansi, Emulation::Ascii, Emulation::Atascii] {
                let mut info = sample();
                info.emulation = emulation;
                if emulation == Emulation::Atascii {
                    (info.width, info.height) = (40, 24);
                }
                let bytes = render(kind, &info, ending);
                let back = parse(Some(kind), &bytes, Path::new("x")).unwrap();
                assert_eq!(back.emulation, emulation, "{kind} {ending:?}");
                assert_eq!(
                    (back.width, back.height),
                    (info.width, info.height),
                    "{kind}"
                );
                assert_eq!(back.minutes_left, 45, "{kind}");
                assert_eq!(back.security, 30, "{kind}");
                match kind {
                    DropKind::DorInfo => {
                        assert_eq!(back.alias, "bluestar");
                        assert_eq!(back.bbs_name, "NuggetNet BBS");
                        assert_eq!(back.sysop, "Gordon Gekko");
                    }
                    _ => {
                        assert_eq!(
                            (back.alias.as_str(), back.real_name.as_str()),
                            ("bluestar", "Bud Fox")
                        );
                        assert_eq!((back.node, back.user_number), (3, 42));
                        assert_eq!(back.comm, Comm::Socket(7), "{kind}");
                    }
                }
            }
        }
    }
}

#[test]
fn writers_never_write_a_password_and_keep_one_field_per_line() {
    let mut info = sample();
    info.alias = "evil\r\nCOM9:\r\nname".into();
    for kind in [DropKind::Door32, DropKind::DoorSys, DropKind::DorInfo] {
        let text = String::from_utf8_lossy(&render(kind, &info, LineEnding::CrLf)).to_string();
        assert!(!text.contains("SECRET"));
        let expected = match kind {
            DropKind::Door32 => 12,
            DropKind::DoorSys => 53,
            DropKind::DorInfo => 14,
        };
        assert_eq!(text.matches("\r\n").count(), expected, "{kind}");
        assert!(parse(Some(kind), text.as_bytes(), Path::new("x")).is_ok());
    }
    let door_sys =
        String::from_utf8_lossy(&render(DropKind::DoorSys, &info, LineEnding::Lf)).to_string();
    assert_eq!(door_sys.lines().nth(13), Some("X"));
}

#[test]
fn local_door32_says_type_0_handle_0() {
    let mut info = sample();
    info.comm = Comm::Local;
    let text = String::from_utf8(render(DropKind::Door32, &info, LineEnding::Lf)).unwrap();
    assert!(text.starts_with("0\n0\n"), "{text}");
}

#[test]
fn garbage_is_an_error_naming_file_and_line() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("DOOR32.SYS", Vec::new(), "line 1"),
        ("DOOR32.SYS", b"\x00\x01\x02\xff\xfe".to_vec(), "binary"),
        ("DOOR32.SYS", b"2\n5\n38400\nBBS\n1\n".to_vec(), "line 6"),
        (
            "DOOR32.SYS",
            SYNCHRONET_DOOR32
                .replace("\n90\n", "\nninety\n")
                .into_bytes(),
            "line 8",
        ),
        (
            "DOOR32.SYS",
            SYNCHRONET_DOOR32
                .replacen("2\n5\n", "7\n5\n", 1)
                .into_bytes(),
            "line 1",
        ),
        (
            "DOOR32.SYS",
            SYNCHRONET_DOOR32
                .replace("\n1\n2\n", "\n9\n2\n")
                .into_bytes(),
            "line 10",
        ),
        ("door.sys", b"COM1:\n38400\n8\n".to_vec(), "line 4"),
        (
            "door.sys",
            door_sys_lines("LPT1:").join("\n").into_bytes(),
            "line 1",
        ),
        (
            "door.sys",
            door_sys_lines("COM1:")[..15].join("\n").into_bytes(),
            "line 16",
        ),
        (
            "DORINFO1.DEF",
            b"BBS\nA\nB\nCOM1\nfast\n0\nJOE\n\nX\n1\n10\n60\n".to_vec(),
            "line 5",
        ),
        ("DORINFO1.DEF", b"BBS\nA\nB\n".to_vec(), "line 4"),
        (
            "DOOR32.SYS",
            format!("2\n{}\n", "9".repeat(5000)).into_bytes(),
            "line 2",
        ),
        ("DOOR32.SYS", vec![b'x'; 70_000], "bytes"),
        ("unknown.bin", b"\x7fELF".to_vec(), "line 1"),
    ];
    for (name, bytes, want) in cases {
        let err = parse_named(name, &bytes).unwrap_err().to_string();
        assert!(err.contains(name), "{name}: {err}");
        assert!(err.contains(want), "{name}: wanted {want:?} in {err}");
        assert!(err.contains("expected"), "{name}: {err}");
    }
}

#[test]
fn read_reports_missing_files_by_name() {
    let err = read(Path::new("/nonexistent/DOOR32.SYS"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/DOOR32.SYS"), "{err}");
}

#[test]
fn write_then_read_from_disk_in_lower_case() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        DropKind::Door32,
        &sample(),
        LineEnding::CrLf,
        true,
    )
    .unwrap();
    assert_eq!(path.file_name().unwrap(), "door32.sys");
    assert_eq!(read(&path).unwrap().alias, "bluestar");
}

#[test]
fn file_names_are_recognised_ignoring_case() {
    assert_eq!(
        DropKind::from_file_name("DoOr32.SyS"),
        Some(DropKind::Door32)
    );
    assert_eq!(
        DropKind::from_file_name("DORINFO9.DEF"),
        Some(DropKind::DorInfo)
    );
    assert_eq!(DropKind::from_file_name("dorinfo.def"), None);
    assert_eq!(DropKind::from_file_name("chain.txt"), None);
}

proptest! {
    #[test]
    fn readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), kind in 0..4u8) {
        let kind = match kind {
            0 => Some(DropKind::Door32),
            1 => Some(DropKind::DoorSys),
            2 => Some(DropKind::DorInfo),
            _ => None,
        };
        let _ = parse(kind, &bytes, Path::new("fuzz"));
    }

    #[test]
    fn readers_never_panic_on_line_shaped_input(
        lines in proptest::collection::vec("[ -~]{0,12}", 0..60), kind in 0..4u8,
    ) {
        let kind = match kind {
            0 => Some(DropKind::Door32),
            1 => Some(DropKind::DoorSys),
            2 => Some(DropKind::DorInfo),
            _ => None,
        };
        let _ = parse(kind, lines.join("\r\n").as_bytes(), Path::new("fuzz"));
    }
}
