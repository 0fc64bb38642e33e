//! DOOR.SYS, the 52-line extended GAP format (dropfiles.md §2), plus our extension line 53.
//!
//! Lines 1 to 20 are required when reading (everything a door needs is there); lines 21 and
//! later are optional, as in the 31-line GAP files Synchronet also writes.

use super::{clamp16, extension_line, field, Comm, DropInfo, DropfileError, Emulation, Lines};

/// The number of standard lines.
const LINES: usize = 52;

/// The placeholder we write where the format wants a password.
const NO_PASSWORD: &str = "X";

/// The file's lines for `info`. Dates and times we do not keep are written as fixed
/// placeholders; no door we know of acts on them.
pub(super) fn render(info: &DropInfo) -> Vec<String> {
    // Line 1: `COM0:` for local and standard I/O, `COM0:SOCKET<fd>` (the OpenDoors extension)
    // for an inherited socket, `COMn:` for a serial port.
    let port = match info.comm {
        Comm::Local => "COM0:".to_string(),
        Comm::Serial(n) => format!("COM{n}:"),
        Comm::Socket(fd) => format!("COM0:SOCKET{fd}"),
    };
    // Line 2: Synchronet writes the DTE rate because some door kits refuse DCE rates such as
    // 14400; we write what we have, or 38400 when local.
    let baud = if info.baud == 0 { 38_400 } else { info.baud };
    let name = if info.real_name.trim().is_empty() {
        &info.alias
    } else {
        &info.real_name
    };
    // Line 20: `GR` for ANSI, `RIP` for RIP, `NG` for none (ATASCII too).
    let graphics = match info.emulation {
        Emulation::Rip => "RIP",
        e if e.is_ansi() => "GR",
        _ => "NG",
    };
    let minutes = clamp16(info.minutes_left);
    let lines: Vec<String> = vec![
        port,                                // 1 comm port
        baud.to_string(),                    // 2 connect rate
        "8".into(),                          // 3 data bits
        info.node.to_string(),               // 4 node number
        baud.to_string(),                    // 5 DTE rate
        "Y".into(),                          // 6 screen display
        "N".into(),                          // 7 printer
        "N".into(),                          // 8 page bell
        "N".into(),                          // 9 caller alarm
        field(name),                         // 10 user full name
        field(&info.location),               // 11 calling from
        "000-000-0000".into(),               // 12 home phone
        "000-000-0000".into(),               // 13 data phone
        NO_PASSWORD.into(),                  // 14 password: never the real one
        info.security.to_string(),           // 15 security level
        "1".into(),                          // 16 times on
        "01/01/80".into(),                   // 17 last date called
        (minutes * 60).to_string(),          // 18 seconds left
        minutes.to_string(),                 // 19 minutes left
        graphics.into(),                     // 20 graphics
        info.height.to_string(),             // 21 screen rows
        "Y".into(),                          // 22 expert mode
        "1".into(),                          // 23 conferences
        "1".into(),                          // 24 conference exited from
        "12/31/99".into(),                   // 25 expiration date
        info.user_number.max(1).to_string(), // 26 user record number
        "Z".into(),                          // 27 protocol
        "0".into(),                          // 28 uploads
        "0".into(),                          // 29 downloads
        "0".into(),                          // 30 K downloaded today
        "9999".into(),                       // 31 max K per day
        "01/01/70".into(),                   // 32 birth date
        "".into(),                           // 33 MAIN path
        "".into(),                           // 34 GEN path
        field(&info.sysop),                  // 35 sysop name
        field(&info.alias),                  // 36 user alias
        "00:00".into(),                      // 37 event time
        "Y".into(),                          // 38 error-correcting connection
        "N".into(),                          // 39 ANSI but chose NG
        "Y".into(),                          // 40 record locking
        "7".into(),                          // 41 default colour
        "0".into(),                          // 42 time credits
        "01/01/80".into(),                   // 43 last new-files scan
        "00:00".into(),                      // 44 time of this call
        "00:00".into(),                      // 45 time of last call
        "9999".into(),                       // 46 max daily files
        "0".into(),                          // 47 files downloaded today
        "0".into(),                          // 48 K uploaded
        "0".into(),                          // 49 K downloaded
        "None".into(),                       // 50 comment
        "0".into(),                          // 51 doors opened
        "0".into(),                          // 52 messages left
        extension_line(info),                // 53 NuggetNet extension
    ];
    debug_assert_eq!(lines.len(), LINES + 1);
    lines
}

/// Reads the lines of a DOOR.SYS file.
pub(super) fn parse(lines: &Lines<'_>) -> Result<DropInfo, DropfileError> {
    lines.require(20, "at least the first 20 lines of DOOR.SYS")?;
    let comm = parse_port(lines)?;
    let baud = lines
        .lenient_number(2)
        .ok_or_else(|| lines.bad(2, "a connect rate"))?;
    let node: u16 = lines.number(4, "a node number")?;
    let real_name = lines.text(10, "the user's name")?.to_string();
    let location = lines.text(11, "the user's location")?.to_string();
    let security: u16 = lines.number(15, "a security level from 0 to 65535")?;
    // Seconds (line 18) are finer than minutes (line 19); either may be the one that is right.
    let seconds = lines.text(18, "the seconds left")?.parse::<u32>().ok();
    let minutes = lines.text(19, "the minutes left")?.parse::<u32>().ok();
    let minutes_left = match (seconds, minutes) {
        (Some(s), _) => s / 60,
        (None, Some(m)) => m,
        (None, None) => return Err(lines.bad(18, "the seconds left")),
    };
    // Line 20: OpenDoors takes `RIP`, anything starting with `G` as ANSI, else ASCII.
    let graphics = lines
        .text(20, "a graphics mode GR, NG or RIP")?
        .to_ascii_uppercase();
    let emulation = if graphics == "RIP" {
        Emulation::Rip
    } else if graphics.starts_with('G') {
        Emulation::Ansi
    } else {
        Emulation::Ascii
    };
    // Line 23 (conferences) may wrap onto further lines with commas; OpenDoors skips those.
    let mut shift = 0;
    while lines.optional(24 + shift).is_some_and(|l| l.contains(',')) {
        shift += 1;
    }
    let later = |n: usize| if n >= 24 { n + shift } else { n };
    let mut info = DropInfo {
        real_name,
        location,
        security,
        minutes_left,
        emulation,
        node,
        comm,
        baud,
        ..DropInfo::default()
    };
    if let Some(rows) = lines.lenient_number::<u16>(21) {
        if (8..=255).contains(&rows) {
            info.height = rows;
        }
    }
    if let Some(number) = lines.lenient_number::<u32>(later(26)) {
        info.user_number = number.max(1);
    }
    if let Some(sysop) = lines.optional(later(35)) {
        info.sysop = sysop.to_string();
    }
    info.alias = match lines.optional(later(36)) {
        Some(alias) if !alias.is_empty() => alias.to_string(),
        _ => info.real_name.clone(),
    };
    if info.alias.is_empty() {
        return Err(lines.bad(10, "the user's name (it is empty)"));
    }
    lines.apply_extension(LINES + shift, &mut info);
    Ok(info)
}

/// Line 1: `COMn:` with OpenDoors' `COM0:STDIO`, `COM0:SOCKETn` and `COM0:HANDLEn`; `COMn`
/// without the colon (as WWIV writes) is accepted too.
fn parse_port(lines: &Lines<'_>) -> Result<Comm, DropfileError> {
    const EXPECTED: &str = "a comm port such as COM1: or COM0:";
    let text = lines.text(1, EXPECTED)?.to_ascii_uppercase();
    let rest = text
        .strip_prefix("COM")
        .ok_or_else(|| lines.bad(1, EXPECTED))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let port: u32 = digits.parse().map_err(|_| lines.bad(1, EXPECTED))?;
    let after = rest[digits.len()..]
        .strip_prefix(':')
        .unwrap_or(&rest[digits.len()..]);
    if let Some(fd) = after.strip_prefix("SOCKET") {
        let fd = fd
            .parse()
            .map_err(|_| lines.bad(1, "a socket number after COM0:SOCKET"))?;
        return Ok(Comm::Socket(fd));
    }
    if let Some(handle) = after.strip_prefix("HANDLE") {
        let handle = handle
            .parse()
            .map_err(|_| lines.bad(1, "a handle after COM0:HANDLE"))?;
        return Ok(Comm::Serial(handle));
    }
    if !(after.is_empty() || after == "STDIO") {
        return Err(lines.bad(1, EXPECTED));
    }
    Ok(if port == 0 {
        Comm::Local
    } else {
        Comm::Serial(port)
    })
}
