//! DORINFOx.DEF, the RBBS-PC / QuickBBS format (dropfiles.md §3): thirteen lines, plus our
//! extension line 14. Lines 1 to 12 are required when reading; Synchronet omits line 13.

use super::{clamp16, extension_line, field, Comm, DropInfo, DropfileError, Emulation, Lines};

/// The number of standard lines.
const LINES: usize = 13;

/// The file's lines for `info`.
pub(super) fn render(info: &DropInfo) -> Vec<String> {
    let (sysop_first, sysop_last) = split_name(&info.sysop);
    // Lines 7 and 8: a handle goes whole into the first name with an empty last name.
    let user = if info.alias.trim().is_empty() {
        &info.real_name
    } else {
        &info.alias
    };
    let port = match info.comm {
        Comm::Serial(n) => format!("COM{n}"),
        // DORINFO cannot carry a socket; a socket door takes its handle from the command line.
        Comm::Local | Comm::Socket(_) => "COM0".to_string(),
    };
    // Line 10: 1 means ANSI to every reader (ENiGMA's 2 is not understood by RMDoor).
    let graphics = if info.emulation.is_ansi() { "1" } else { "0" };
    vec![
        field(&info.bbs_name),                  // 1 BBS name
        sysop_first,                            // 2 sysop first name
        sysop_last,                             // 3 sysop last name
        port,                                   // 4 comm port
        format!("{} BAUD,N,8,1", info.baud),    // 5 rate line
        "0".into(),                             // 6 reserved
        field(user),                            // 7 user first name or handle
        String::new(),                          // 8 user last name (blank for a handle)
        field(&info.location),                  // 9 location
        graphics.into(),                        // 10 graphics
        info.security.to_string(),              // 11 security level
        clamp16(info.minutes_left).to_string(), // 12 minutes left
        "-1".into(),                            // 13 external FOSSIL
        extension_line(info),                   // 14 NuggetNet extension
    ]
}

fn split_name(name: &str) -> (String, String) {
    let name = field(name);
    match name.split_once(' ') {
        Some((first, last)) => (first.to_string(), last.trim().to_string()),
        None => (name, String::new()),
    }
}

/// Reads the lines of a DORINFOx.DEF file.
pub(super) fn parse(lines: &Lines<'_>) -> Result<DropInfo, DropfileError> {
    lines.require(12, "at least the first 12 lines of DORINFO")?;
    let bbs_name = lines.text(1, "the BBS name")?.to_string();
    let sysop_first = lines.text(2, "the sysop's first name")?;
    let sysop_last = lines.text(3, "the sysop's last name (may be blank)")?;
    let sysop = format!("{sysop_first} {sysop_last}").trim().to_string();
    let port = lines
        .text(4, "a comm port such as COM1 or COM0")?
        .to_ascii_uppercase();
    let port: u32 = port
        .strip_prefix("COM")
        .map(|p| p.trim_end_matches(':'))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| lines.bad(4, "a comm port such as COM1 or COM0"))?;
    // Line 5: `<bps> BAUD,N,8,1`; readers take the leading number.
    let baud = lines
        .lenient_number(5)
        .ok_or_else(|| lines.bad(5, "a rate line such as 38400 BAUD,N,8,1"))?;
    let first = lines.text(7, "the user's first name")?;
    let last = lines.text(8, "the user's last name (may be blank)")?;
    if first.is_empty() {
        return Err(lines.bad(7, "the user's first name (it is empty)"));
    }
    let name = format!("{first} {last}").trim().to_string();
    let location = lines.text(9, "the user's location")?.to_string();
    // Line 10: OpenDoors treats anything but 0 as ANSI; so do we.
    let graphics: i32 = lines.number(10, "a graphics number 0, 1 or 2")?;
    let security: u16 = lines.number(11, "a security level from 0 to 65535")?;
    let minutes_left: i64 = lines.number(12, "the minutes left")?;
    let mut info = DropInfo {
        bbs_name,
        sysop,
        // DORINFO has one name; a handle and a real name cannot be told apart.
        real_name: name.clone(),
        alias: name,
        location,
        security,
        minutes_left: u32::try_from(minutes_left.max(0)).unwrap_or(u32::MAX),
        emulation: if graphics == 0 {
            Emulation::Ascii
        } else {
            Emulation::Ansi
        },
        comm: if port == 0 {
            Comm::Local
        } else {
            Comm::Serial(port)
        },
        baud,
        ..DropInfo::default()
    };
    lines.apply_extension(LINES - 1, &mut info);
    Ok(info)
}
