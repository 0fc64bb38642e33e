//! Hayes result codes: parsing what a real modem says, and the numeric codes we emit.
//!
//! Owns the verbose and numeric result-code vocabulary of `../shared/specs/hayes.md` §4 (the
//! CONNECT variants table) and §7 (numeric codes). Pure functions only: no I/O, no state.
//!
//! Numeric codes above 10 differ between vendors. We read and write one dialect, the common
//! Hayes/ZyXEL/IBM one (13 = 14400, 14 = 19200, 18 = 57600, 24 = 7200, 25 = 12000,
//! 28 = 38400); sysops with a USR modem should configure verbose results (`V1`), which every
//! init string we document does.

/// One result line from a modem, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultCode {
    Ok,
    /// `CONNECT`, with the rate we take as the line rate, when one was given.
    Connect(Option<u32>),
    /// Rockwell `CARRIER 28800` (sent before CONNECT with W1): the line rate.
    Carrier(u32),
    Ring,
    NoCarrier,
    Error,
    NoDialtone,
    Busy,
    NoAnswer,
}

/// The line rate assumed when a modem says `CONNECT` with no number (X0, or code 1).
pub const DEFAULT_CONNECT_BPS: u32 = 300;

/// Numeric connect codes of the common dialect and their rates.
const NUMERIC_CONNECTS: &[(u32, u32)] = &[
    (1, DEFAULT_CONNECT_BPS),
    (5, 1200),
    (9, 600),
    (10, 2400),
    (11, 4800),
    (12, 9600),
    (13, 14400),
    (14, 19200),
    (18, 57600),
    (24, 7200),
    (25, 12000),
    (28, 38400),
];

/// Classifies one line (without CR/LF) received from a modem; `None` for anything else
/// (echo, caller ID, `PROTOCOL:` lines, noise).
pub fn parse_result(line: &str) -> Option<ResultCode> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    if line.bytes().all(|b| b.is_ascii_digit()) {
        let code: u32 = line.parse().ok()?;
        return match code {
            0 => Some(ResultCode::Ok),
            2 => Some(ResultCode::Ring),
            3 => Some(ResultCode::NoCarrier),
            4 => Some(ResultCode::Error),
            6 => Some(ResultCode::NoDialtone),
            7 => Some(ResultCode::Busy),
            8 => Some(ResultCode::NoAnswer),
            _ => NUMERIC_CONNECTS
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, bps)| ResultCode::Connect(Some(*bps))),
        };
    }
    let upper = line.to_ascii_uppercase();
    if let Some(rest) = upper.strip_prefix("CONNECT") {
        return Some(ResultCode::Connect(connect_rate(rest)));
    }
    if let Some(rest) = upper.strip_prefix("CARRIER") {
        return first_number(rest).map(|(n, _)| ResultCode::Carrier(n));
    }
    match upper.as_str() {
        "OK" => Some(ResultCode::Ok),
        "RING" | "RINGING" => Some(ResultCode::Ring),
        "NO CARRIER" => Some(ResultCode::NoCarrier),
        "ERROR" => Some(ResultCode::Error),
        "NO DIALTONE" | "NO DIAL TONE" => Some(ResultCode::NoDialtone),
        "BUSY" => Some(ResultCode::Busy),
        "NO ANSWER" => Some(ResultCode::NoAnswer),
        _ => None,
    }
}

/// The rate in what follows `CONNECT`: the first decimal number, except in ZyXEL's
/// `CONNECT 38400/V.32bis 14400/V.42bis` form, where the first number is the DTE rate and the
/// one after the modulation is the line rate.
fn connect_rate(rest: &str) -> Option<u32> {
    let (first, after) = first_number(rest)?;
    if let Some(modulation) = after.strip_prefix("/V.") {
        if let Some(space) = modulation.find(' ') {
            if let Some((second, _)) = first_number(&modulation[space..]) {
                return Some(second);
            }
        }
    }
    Some(first)
}

/// The first run of decimal digits in `text` (skipping only spaces before it) and the text after
/// it; `None` if there is none or it is zero or absurdly large.
fn first_number(text: &str) -> Option<(u32, &str)> {
    let start = text.trim_start_matches([' ', ':']);
    let end = start
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(start.len());
    if end == 0 {
        return None;
    }
    let n: u32 = start[..end].parse().ok()?;
    if n == 0 || n > 10_000_000 {
        return None;
    }
    Some((n, &start[end..]))
}

/// The numeric code for `CONNECT <bps>` in our dialect; 1 (plain CONNECT) for rates without
/// a code of their own.
pub fn numeric_connect_code(bps: u32) -> u32 {
    NUMERIC_CONNECTS
        .iter()
        .skip(1)
        .find(|(_, rate)| *rate == bps)
        .map_or(1, |(code, _)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_variant_table() {
        let table: &[(&str, Option<ResultCode>)] = &[
            ("CONNECT", Some(ResultCode::Connect(None))),
            ("CONNECT 2400", Some(ResultCode::Connect(Some(2400)))),
            ("connect 1200", Some(ResultCode::Connect(Some(1200)))),
            (
                "CONNECT 14400/ARQ/V42BIS",
                Some(ResultCode::Connect(Some(14400))),
            ),
            ("CONNECT 9600/ARQ", Some(ResultCode::Connect(Some(9600)))),
            (
                "CONNECT 28800/ARQ/V34/LAPM/V42BIS",
                Some(ResultCode::Connect(Some(28800))),
            ),
            ("CONNECT 2400/NONE", Some(ResultCode::Connect(Some(2400)))),
            (
                "CONNECT 38400/V.32bis 14400/V.42bis",
                Some(ResultCode::Connect(Some(14400))),
            ),
            (
                "CONNECT 14400/ARQ/MNP5",
                Some(ResultCode::Connect(Some(14400))),
            ),
            ("CONNECT 28800 EC", Some(ResultCode::Connect(Some(28800)))),
            ("CONNECT 50666 EC", Some(ResultCode::Connect(Some(50666)))),
            ("CONNECT 115200", Some(ResultCode::Connect(Some(115200)))),
            ("CARRIER 2400", Some(ResultCode::Carrier(2400))),
            ("CARRIER 28800", Some(ResultCode::Carrier(28800))),
            ("1", Some(ResultCode::Connect(Some(300)))),
            ("5", Some(ResultCode::Connect(Some(1200)))),
            ("10", Some(ResultCode::Connect(Some(2400)))),
            ("12", Some(ResultCode::Connect(Some(9600)))),
            ("13", Some(ResultCode::Connect(Some(14400)))),
            ("18", Some(ResultCode::Connect(Some(57600)))),
            ("28", Some(ResultCode::Connect(Some(38400)))),
            ("0", Some(ResultCode::Ok)),
            ("2", Some(ResultCode::Ring)),
            ("3", Some(ResultCode::NoCarrier)),
            ("4", Some(ResultCode::Error)),
            ("7", Some(ResultCode::Busy)),
            ("8", Some(ResultCode::NoAnswer)),
            ("OK", Some(ResultCode::Ok)),
            ("RING", Some(ResultCode::Ring)),
            ("NO CARRIER", Some(ResultCode::NoCarrier)),
            ("NO DIAL TONE", Some(ResultCode::NoDialtone)),
            ("PROTOCOL: LAP-M", None),
            ("NMBR = 5551234", None),
            ("ATA", None),
            ("99999999999999", None),
            ("", None),
        ];
        for (line, expect) in table {
            assert_eq!(parse_result(line), *expect, "line {line:?}");
        }
    }

    #[test]
    fn connect_with_silly_number_has_no_rate() {
        assert_eq!(parse_result("CONNECT 0"), Some(ResultCode::Connect(None)));
        assert_eq!(
            parse_result("CONNECT 99999999999"),
            Some(ResultCode::Connect(None))
        );
    }

    #[test]
    fn numeric_codes_round_trip() {
        for bps in [1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600] {
            let code = numeric_connect_code(bps);
            assert_eq!(
                parse_result(&code.to_string()),
                Some(ResultCode::Connect(Some(bps)))
            );
        }
        assert_eq!(numeric_connect_code(115_200), 1);
        assert_eq!(numeric_connect_code(300), 1);
    }
}
