//! Door dropfiles: DOOR32.SYS, DOOR.SYS (52-line GAP) and DORINFOx.DEF.
//!
//! Owns the formats only: [`DropInfo`] is what a dropfile says about a caller, each format has
//! one file with a pure writer (`render`) and a pure reader (`parse`) commented line by line
//! against `shared/specs/dropfiles.md`, and this module adds reading a file from disk with
//! format detection ([`read`]) and writing one into a node folder ([`write()`]). It must not
//! start processes or know about sessions: the `door` module does that.
//!
//! Readers accept what real BBSes write (CR LF or bare LF or bare CR, a DOS end-of-file byte,
//! trailing blank lines, 31-line GAP files, upper-cased DORINFO files) and refuse everything
//! else with a [`DropfileError`] naming the file, the line and what was expected. They never
//! panic on any input. Writers never write a real password.
//!
//! # The NuggetNet extension line
//!
//! None of the three formats can say "this caller uses an Atari in ATASCII" or give the screen
//! width, so our node appends one extra line after the standard ones:
//!
//! ```text
//! NUGGETNET charset=atascii cols=40 rows=24
//! ```
//!
//! It is line 12 of DOOR32.SYS, line 53 of DOOR.SYS and line 14 of DORINFOx.DEF. Doors that
//! read a fixed number of lines never see it. Readers here detect it by its first word
//! `NUGGETNET` on any line after the standard ones; `charset` is `ansi`, `ascii` or
//! `atascii`. For an ATASCII caller the standard emulation fields say plain ASCII (DOOR32 `0`,
//! DOOR.SYS `NG`, DORINFO `0`) so that a foreign door at least sends no ANSI escapes.

mod door32;
mod doorsys;
mod dorinfo;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::terminal::cp437;

/// The largest dropfile we read; real ones are under 2 KiB.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The longest line we read, in bytes.
pub const MAX_LINE_BYTES: usize = 512;

/// The longest text field we write; longer values are cut.
const MAX_FIELD_CHARS: usize = 60;

/// The first word of the NuggetNet extension line.
pub const EXTENSION_TAG: &str = "NUGGETNET";

/// The dropfile formats we read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum DropKind {
    /// DOOR32.SYS (11 lines; Mystic's DOOR32 revision 1).
    #[serde(rename = "door32")]
    Door32,
    /// DOOR.SYS, the 52-line extended GAP format.
    #[serde(rename = "door.sys")]
    DoorSys,
    /// DORINFOx.DEF (RBBS-PC / QuickBBS, 13 lines).
    #[serde(rename = "dorinfo")]
    DorInfo,
}

impl DropKind {
    /// The file name we write: `DOOR32.SYS`, `DOOR.SYS` or `DORINFO1.DEF` (the name every
    /// door reads, whatever the node), in upper case as Synchronet writes it, or in lower case.
    pub fn file_name(self, lower_case: bool) -> String {
        let name = match self {
            DropKind::Door32 => "DOOR32.SYS",
            DropKind::DoorSys => "DOOR.SYS",
            DropKind::DorInfo => "DORINFO1.DEF",
        };
        if lower_case {
            name.to_ascii_lowercase()
        } else {
            name.to_string()
        }
    }

    /// The kind a file name implies (case-insensitive): `door32.sys`, `door.sys`,
    /// `dorinfo?.def` (any one character for the node).
    pub fn from_file_name(name: &str) -> Option<DropKind> {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "door32.sys" => Some(DropKind::Door32),
            "door.sys" => Some(DropKind::DoorSys),
            _ if lower.len() == 12
                && lower.starts_with("dorinfo")
                && lower.ends_with(".def")
                && lower.as_bytes()[7].is_ascii_alphanumeric() =>
            {
                Some(DropKind::DorInfo)
            }
            _ => None,
        }
    }
}

impl fmt::Display for DropKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropKind::Door32 => "DOOR32.SYS",
            DropKind::DoorSys => "DOOR.SYS",
            DropKind::DorInfo => "DORINFOx.DEF",
        })
    }
}

/// What the caller's terminal understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulation {
    /// Plain text.
    Ascii,
    /// ANSI-BBS over CP437.
    Ansi,
    /// Avatar (DOOR32 `2`); doors fall back to ANSI.
    Avatar,
    /// RIPscrip (DOOR32 `3`, DOOR.SYS `RIP`); doors fall back to ANSI.
    Rip,
    /// Maximus "max graphics" (DOOR32 `4`); doors fall back to ANSI.
    MaxGraphics,
    /// Atari ATASCII, known only from the NuggetNet extension line.
    Atascii,
}

impl Emulation {
    /// Whether a door may send ANSI escape sequences.
    pub fn is_ansi(self) -> bool {
        matches!(
            self,
            Emulation::Ansi | Emulation::Avatar | Emulation::Rip | Emulation::MaxGraphics
        )
    }

    /// The extension line's `charset=` word.
    fn charset_word(self) -> &'static str {
        match self {
            Emulation::Atascii => "atascii",
            Emulation::Ascii => "ascii",
            _ => "ansi",
        }
    }
}

/// How the caller reaches the door, as the dropfile states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comm {
    /// Local or standard input/output (DOOR32 comm type 0, `COM0:`).
    Local,
    /// A serial port (DOOR32 type 1, `COMn:`); the number is the port or handle.
    Serial(u32),
    /// An inherited socket (DOOR32 type 2); the number is the file descriptor, or -1 when the
    /// writer gave none (ENiGMA).
    Socket(i64),
}

/// Everything a dropfile says about a caller and the BBS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropInfo {
    /// The BBS's name (DORINFO line 1; DOOR32 has only the software name).
    pub bbs_name: String,
    /// The BBS software and version (DOOR32 line 4).
    pub bbs_software: String,
    /// The sysop's name.
    pub sysop: String,
    /// The user's record number, 1-based.
    pub user_number: u32,
    /// The user's real name; empty when the BBS does not know it.
    pub real_name: String,
    /// The user's handle (alias).
    pub alias: String,
    /// Where the user calls from; empty when unknown.
    pub location: String,
    /// Security level.
    pub security: u16,
    /// Minutes left for this call.
    pub minutes_left: u32,
    /// The terminal emulation.
    pub emulation: Emulation,
    /// Screen columns (80 unless the file says otherwise).
    pub width: u16,
    /// Screen rows.
    pub height: u16,
    /// The node number, 1-based.
    pub node: u16,
    /// How the door talks to the caller.
    pub comm: Comm,
    /// The line rate in bits per second (informational; 0 when local).
    pub baud: u32,
}

impl Default for DropInfo {
    fn default() -> Self {
        DropInfo {
            bbs_name: String::new(),
            bbs_software: String::new(),
            sysop: String::new(),
            user_number: 1,
            real_name: String::new(),
            alias: String::new(),
            location: String::new(),
            security: 10,
            minutes_left: 60,
            emulation: Emulation::Ansi,
            width: 80,
            height: 24,
            node: 1,
            comm: Comm::Local,
            baud: 0,
        }
    }
}

impl DropInfo {
    /// The name to greet the user by: the alias, else the real name.
    pub fn display_name(&self) -> &str {
        if self.alias.trim().is_empty() {
            &self.real_name
        } else {
            &self.alias
        }
    }
}

/// Line endings for writing: DOS doors want CR LF, native ones accept either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineEnding {
    #[default]
    CrLf,
    Lf,
}

/// Why a dropfile could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DropfileError {
    /// The file could not be opened or read.
    #[error("cannot read dropfile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write dropfile {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is too big to be a dropfile.
    #[error(
        "dropfile {path}: line 1: expected a dropfile of at most {max} bytes, found {size} bytes"
    )]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    /// Neither the name nor the content says which format this is.
    #[error("dropfile {path}: line 1: expected DOOR32.SYS, DOOR.SYS or DORINFOx.DEF (by file name or content), found {found:?}")]
    Unknown { path: PathBuf, found: String },
    /// The file ends before a line the format requires.
    #[error("dropfile {path}: line {line}: expected {expected}, but the file ends after {lines} lines ({kind})")]
    Missing {
        path: PathBuf,
        kind: DropKind,
        line: usize,
        lines: usize,
        expected: &'static str,
    },
    /// A line does not hold what the format puts there.
    #[error("dropfile {path}: line {line}: expected {expected}, found {found:?} ({kind})")]
    Field {
        path: PathBuf,
        kind: DropKind,
        line: usize,
        expected: &'static str,
        found: String,
    },
    /// A line is far longer than any field.
    #[error("dropfile {path}: line {line}: expected at most {max} bytes, found {len} bytes")]
    LineTooLong {
        path: PathBuf,
        line: usize,
        len: usize,
        max: usize,
    },
    /// A line holds control bytes: the file is binary, not a dropfile.
    #[error("dropfile {path}: line {line}: expected text, found binary data (byte 0x{byte:02X})")]
    Binary {
        path: PathBuf,
        line: usize,
        byte: u8,
    },
}

/// Reads a dropfile, detecting its format by file name (case-insensitive) and, when the name
/// says nothing, by content.
pub fn read(path: &Path) -> Result<DropInfo, DropfileError> {
    let read_err = |source| DropfileError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Read at most one byte more than allowed, so a device or a pipe given as the path cannot
    // make us read for ever.
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_FILE_BYTES + 1),
        &mut bytes,
    )
    .map_err(read_err)?;
    let by_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(DropKind::from_file_name);
    let mut info = parse(by_name, &bytes, path)?;
    if by_name == Some(DropKind::DorInfo) {
        // DORINFOx.DEF carries the node only in its name: 1-9, then A-F as Synchronet writes
        // (OpenDoors agrees up to F).
        let node = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.chars().nth(7))
            .and_then(|c| c.to_digit(16));
        if let Some(node) = node.filter(|&n| n > 0) {
            info.node = node as u16;
        }
    }
    Ok(info)
}

/// Parses dropfile bytes. `kind` is the format the file name implied, if any; without it the
/// content decides. `path` is used only in error messages.
pub fn parse(kind: Option<DropKind>, bytes: &[u8], path: &Path) -> Result<DropInfo, DropfileError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(DropfileError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            max: MAX_FILE_BYTES,
        });
    }
    let lines = split_lines(bytes, path)?;
    let kind = match kind.or_else(|| detect(&lines)) {
        Some(kind) => kind,
        None => {
            return Err(DropfileError::Unknown {
                path: path.to_path_buf(),
                found: lines.first().cloned().unwrap_or_default(),
            })
        }
    };
    let lines = Lines {
        path,
        kind,
        lines: &lines,
    };
    match kind {
        DropKind::Door32 => door32::parse(&lines),
        DropKind::DoorSys => doorsys::parse(&lines),
        DropKind::DorInfo => dorinfo::parse(&lines),
    }
}

/// Renders a dropfile's bytes (CP437).
pub fn render(kind: DropKind, info: &DropInfo, ending: LineEnding) -> Vec<u8> {
    let lines = match kind {
        DropKind::Door32 => door32::render(info),
        DropKind::DoorSys => doorsys::render(info),
        DropKind::DorInfo => dorinfo::render(info),
    };
    let eol: &[u8] = match ending {
        LineEnding::CrLf => b"\r\n",
        LineEnding::Lf => b"\n",
    };
    let mut out = Vec::new();
    for line in lines {
        out.extend(line.chars().map(|c| cp437::encode_char(c).unwrap_or(b'?')));
        out.extend_from_slice(eol);
    }
    out
}

/// Writes a dropfile into `dir` (which must exist) and returns its path.
pub fn write(
    dir: &Path,
    kind: DropKind,
    info: &DropInfo,
    ending: LineEnding,
    lower_case: bool,
) -> Result<PathBuf, DropfileError> {
    let path = dir.join(kind.file_name(lower_case));
    std::fs::write(&path, render(kind, info, ending)).map_err(|source| DropfileError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Guesses the format from content: `COMn:` on line 1 is DOOR.SYS; a comm type 0–3 on line 1
/// and at least 11 lines is DOOR32.SYS; `COMn` on line 4 with a rate on line 5 is DORINFO.
fn detect(lines: &[String]) -> Option<DropKind> {
    let line = |n: usize| lines.get(n - 1).map(|s| s.trim()).unwrap_or("");
    let upper1 = line(1).to_ascii_uppercase();
    if upper1.starts_with("COM") && upper1.as_bytes().get(3).is_some_and(u8::is_ascii_digit) {
        return Some(DropKind::DoorSys);
    }
    if lines.len() >= 11 && matches!(line(1), "0" | "1" | "2" | "3") {
        return Some(DropKind::Door32);
    }
    if line(4).to_ascii_uppercase().starts_with("COM")
        && line(5).starts_with(|c: char| c.is_ascii_digit())
    {
        return Some(DropKind::DorInfo);
    }
    None
}

/// Splits a file into lines: LF or CR LF, or bare CR when the file has no LF at all. A DOS
/// end-of-file byte (0x1A) and what follows it are dropped, and so are trailing blank lines.
fn split_lines(bytes: &[u8], path: &Path) -> Result<Vec<String>, DropfileError> {
    let bytes = match bytes.iter().position(|&b| b == 0x1A) {
        Some(eof) => &bytes[..eof],
        None => bytes,
    };
    let sep = if bytes.contains(&b'\n') { b'\n' } else { b'\r' };
    let mut lines = Vec::new();
    for (i, raw) in bytes.split(|&b| b == sep).enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_LINE_BYTES {
            return Err(DropfileError::LineTooLong {
                path: path.to_path_buf(),
                line,
                len: raw.len(),
                max: MAX_LINE_BYTES,
            });
        }
        if let Some(&byte) = raw.iter().find(|&&b| (b < 0x20 && b != b'\t') || b == 0x7F) {
            return Err(DropfileError::Binary {
                path: path.to_path_buf(),
                line,
                byte,
            });
        }
        lines.push(cp437::to_unicode(raw));
    }
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    Ok(lines)
}

/// A parsed file's lines with the context errors need. Line numbers are 1-based.
pub(crate) struct Lines<'a> {
    path: &'a Path,
    kind: DropKind,
    lines: &'a [String],
}

impl Lines<'_> {
    /// Line `n`, trimmed, or an error saying the file ended.
    pub(crate) fn text(&self, n: usize, expected: &'static str) -> Result<&str, DropfileError> {
        self.lines
            .get(n - 1)
            .map(|s| s.trim())
            .ok_or_else(|| DropfileError::Missing {
                path: self.path.to_path_buf(),
                kind: self.kind,
                line: n,
                lines: self.lines.len(),
                expected,
            })
    }

    /// Fails at the first missing line when the file has fewer than `n` lines.
    pub(crate) fn require(&self, n: usize, expected: &'static str) -> Result<(), DropfileError> {
        if self.lines.len() >= n {
            return Ok(());
        }
        Err(DropfileError::Missing {
            path: self.path.to_path_buf(),
            kind: self.kind,
            line: self.lines.len() + 1,
            lines: self.lines.len(),
            expected,
        })
    }

    /// Line `n` if the file has it.
    pub(crate) fn optional(&self, n: usize) -> Option<&str> {
        self.lines.get(n - 1).map(|s| s.trim())
    }

    /// An error for line `n`.
    pub(crate) fn bad(&self, n: usize, expected: &'static str) -> DropfileError {
        DropfileError::Field {
            path: self.path.to_path_buf(),
            kind: self.kind,
            line: n,
            expected,
            found: self.optional(n).unwrap_or("").chars().take(40).collect(),
        }
    }

    /// Line `n` as a decimal number.
    pub(crate) fn number<T: std::str::FromStr>(
        &self,
        n: usize,
        expected: &'static str,
    ) -> Result<T, DropfileError> {
        self.text(n, expected)?
            .parse()
            .map_err(|_| self.bad(n, expected))
    }

    /// Line `n` as a number if present and well-formed; informational fields use this.
    pub(crate) fn lenient_number<T: std::str::FromStr>(&self, n: usize) -> Option<T> {
        let text = self.optional(n)?;
        let digits: String = text
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        digits.parse().ok()
    }

    /// Applies the NuggetNet extension line, if any line after `standard` carries one.
    pub(crate) fn apply_extension(&self, standard: usize, info: &mut DropInfo) {
        for line in self.lines.iter().skip(standard) {
            // Synchronet upper-cases whole DORINFO files, so case is ignored.
            let line = line.to_ascii_lowercase();
            let mut words = line.split_whitespace();
            if !words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(EXTENSION_TAG))
            {
                continue;
            }
            for word in words {
                let Some((key, value)) = word.split_once('=') else {
                    continue;
                };
                match key {
                    "charset" => match value {
                        "atascii" => info.emulation = Emulation::Atascii,
                        "ascii" => info.emulation = Emulation::Ascii,
                        "ansi" if !info.emulation.is_ansi() => info.emulation = Emulation::Ansi,
                        _ => {}
                    },
                    "cols" => {
                        if let Ok(cols) = value.parse::<u16>() {
                            if (20..=255).contains(&cols) {
                                info.width = cols;
                            }
                        }
                    }
                    "rows" => {
                        if let Ok(rows) = value.parse::<u16>() {
                            if (8..=255).contains(&rows) {
                                info.height = rows;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The NuggetNet extension line for `info`.
pub(crate) fn extension_line(info: &DropInfo) -> String {
    format!(
        "{EXTENSION_TAG} charset={} cols={} rows={}",
        info.emulation.charset_word(),
        info.width,
        info.height
    )
}

/// A text value made safe for one dropfile line: no line breaks or controls, at most
/// [`MAX_FIELD_CHARS`] characters.
pub(crate) fn field(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_FIELD_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Minutes clamped to a 16-bit signed field, as Synchronet does.
pub(crate) fn clamp16(value: u32) -> u32 {
    value.min(32_767)
}

#[cfg(test)]
mod tests;
