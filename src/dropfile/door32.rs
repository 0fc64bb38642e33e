//! DOOR32.SYS, revision 1 (dropfiles.md §1): eleven lines, plus our extension line 12.

use super::{clamp16, extension_line, field, Comm, DropInfo, DropfileError, Emulation, Lines};

/// The number of standard lines.
const LINES: usize = 11;

/// Above this, line 9 is taken to be seconds (WWIV 5.x wrote seconds there by mistake).
const MINUTES_SANITY: u32 = 1_440;

/// The file's lines for `info`.
pub(super) fn render(info: &DropInfo) -> Vec<String> {
    // Lines 1 and 2: comm type and handle. Local doors get 0 and 0 (not -1, which some
    // readers take to mean "socket without a handle").
    let (comm_type, handle) = match info.comm {
        Comm::Local => (0, 0),
        Comm::Serial(port) => (1, i64::from(port)),
        Comm::Socket(fd) => (2, fd),
    };
    // Line 10: 0 ASCII, 1 ANSI, 2 Avatar, 3 RIP, 4 Max Graphics. ATASCII callers get 0: the
    // extension line tells doors that know about it.
    let emulation = match info.emulation {
        Emulation::Ascii | Emulation::Atascii => 0,
        Emulation::Ansi => 1,
        Emulation::Avatar => 2,
        Emulation::Rip => 3,
        Emulation::MaxGraphics => 4,
    };
    vec![
        comm_type.to_string(),
        handle.to_string(),
        // Line 3: baud rate, informational.
        info.baud.to_string(),
        // Line 4: BBSID, software name and version.
        field(&info.bbs_software),
        // Line 5: user record number, 1-based.
        info.user_number.max(1).to_string(),
        // Line 6: real name (the alias when unknown, as doors expect something).
        field(if info.real_name.trim().is_empty() {
            &info.alias
        } else {
            &info.real_name
        }),
        // Line 7: handle.
        field(&info.alias),
        // Line 8: security level.
        info.security.to_string(),
        // Line 9: minutes left.
        clamp16(info.minutes_left).to_string(),
        emulation.to_string(),
        // Line 11: node number.
        info.node.to_string(),
        extension_line(info),
    ]
}

/// Reads the lines of a DOOR32.SYS file.
pub(super) fn parse(lines: &Lines<'_>) -> Result<DropInfo, DropfileError> {
    lines.require(11, "the 11 lines of DOOR32.SYS")?;
    let comm_type: u8 = lines.number(1, "a comm type 0, 1, 2 or 3")?;
    let handle: i64 = lines.number(2, "a comm or socket handle number")?;
    let comm = match comm_type {
        0 => Comm::Local,
        1 => Comm::Serial(u32::try_from(handle).map_err(|_| lines.bad(2, "a port number"))?),
        // Type 3 (Wildcat 5, RMDoor only) is a socket too.
        2 | 3 => Comm::Socket(handle),
        _ => return Err(lines.bad(1, "a comm type 0, 1, 2 or 3")),
    };
    let baud = lines
        .lenient_number(3)
        .ok_or_else(|| lines.bad(3, "a baud rate"))?;
    let bbs_software = lines.text(4, "the BBS software name")?.to_string();
    let user_number: u32 = lines.number(5, "a user record number")?;
    let real_name = lines.text(6, "the user's real name")?.to_string();
    let alias = lines.text(7, "the user's handle")?.to_string();
    if real_name.is_empty() && alias.is_empty() {
        return Err(lines.bad(7, "the user's handle (lines 6 and 7 are both empty)"));
    }
    let security: u16 = lines.number(8, "a security level from 0 to 65535")?;
    let mut minutes_left: u32 = lines.number(9, "the minutes left")?;
    if minutes_left > MINUTES_SANITY {
        minutes_left /= 60;
    }
    let emulation = match lines.number::<u8>(10, "an emulation 0 to 4")? {
        0 => Emulation::Ascii,
        1 => Emulation::Ansi,
        2 => Emulation::Avatar,
        3 => Emulation::Rip,
        4 => Emulation::MaxGraphics,
        _ => return Err(lines.bad(10, "an emulation 0 to 4")),
    };
    let node: u16 = lines.number(11, "a node number")?;
    let mut info = DropInfo {
        bbs_software,
        user_number,
        real_name,
        alias,
        security,
        minutes_left,
        emulation,
        node,
        comm,
        baud,
        ..DropInfo::default()
    };
    lines.apply_extension(LINES, &mut info);
    Ok(info)
}
