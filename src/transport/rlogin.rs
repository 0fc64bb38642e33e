//! The rlogin handshake (RFC 1282) as BBS door networks use it, parsed without I/O.
//!
//! A linking BBS connects and sends `\0 client-user \0 server-user \0 terminal/speed \0`. We
//! follow the door-network convention (shared/specs/rlogin.md §2, DoorParty): the
//! *client-user* field carries the linking system's shared secret, the *server-user* field is
//! `[TAG]handle`, and the terminal field is a terminal type such as `ANSI/115200` or
//! `ATASCII/9600`. The server answers one zero byte. After the handshake the stream is raw:
//! no telnet, no escaping.
//!
//! This module only parses; checking the tag and secret against the configuration is the
//! caller's job.

/// Longest field we accept; RFC 1282 peers send a few dozen bytes.
pub const FIELD_MAX: usize = 128;

/// The whole handshake is never longer than this.
pub const HANDSHAKE_MAX: usize = 4 * (FIELD_MAX + 1);

/// What a linking system sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// Field 1: by our convention, the linking system's shared secret.
    pub client_user: String,
    /// Field 2: by our convention, `[TAG]handle`.
    pub server_user: String,
    /// Field 3 before the slash: the terminal type (`ANSI`, `ATASCII`, `xterm`…).
    pub terminal: String,
    /// Field 3 after the slash: the line speed, when given.
    pub speed: Option<u32>,
}

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RloginError {
    /// The first byte was not the zero byte RFC 1282 starts with.
    #[error("not an rlogin handshake (it must start with a zero byte)")]
    NotRlogin,
    /// A field was longer than [`FIELD_MAX`].
    #[error("rlogin field {field} is longer than {FIELD_MAX} bytes")]
    FieldTooLong { field: usize },
    /// A field is not printable text.
    #[error("rlogin field {field} is not printable text")]
    NotText { field: usize },
    /// The user field is not `[TAG]handle`.
    #[error("the user field must be [TAG]handle, e.g. [NUG]Gordon")]
    NoTag,
}

impl Handshake {
    /// Parses a complete handshake from the start of `buf`. `Ok(None)` means more bytes are
    /// needed; `Ok(Some((handshake, used)))` says how many bytes it took (what follows is
    /// session data).
    pub fn parse(buf: &[u8]) -> Result<Option<(Handshake, usize)>, RloginError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        if first != 0 {
            return Err(RloginError::NotRlogin);
        }
        let mut fields: Vec<String> = Vec::with_capacity(3);
        let mut start = 1;
        for field in 1..=3 {
            let rest = &buf[start..];
            let Some(end) = rest.iter().position(|&b| b == 0) else {
                if rest.len() > FIELD_MAX {
                    return Err(RloginError::FieldTooLong { field });
                }
                return Ok(None);
            };
            if end > FIELD_MAX {
                return Err(RloginError::FieldTooLong { field });
            }
            let text = std::str::from_utf8(&rest[..end])
                .ok()
                .filter(|t| t.chars().all(|c| !c.is_control()))
                .ok_or(RloginError::NotText { field })?;
            fields.push(text.trim().to_string());
            start += end + 1;
        }
        let terminal = fields.pop().unwrap_or_default();
        let server_user = fields.pop().unwrap_or_default();
        let client_user = fields.pop().unwrap_or_default();
        let (terminal, speed) = match terminal.split_once('/') {
            Some((t, s)) => (t.trim().to_string(), s.trim().parse().ok()),
            None => (terminal, None),
        };
        Ok(Some((
            Handshake {
                client_user,
                server_user,
                terminal,
                speed,
            },
            start,
        )))
    }

    /// Splits the user field `[TAG]handle` into the linking system's tag and the player's
    /// handle on that system.
    pub fn tag_and_handle(&self) -> Result<(String, String), RloginError> {
        let rest = self
            .server_user
            .strip_prefix('[')
            .ok_or(RloginError::NoTag)?;
        let (tag, handle) = rest.split_once(']').ok_or(RloginError::NoTag)?;
        let (tag, handle) = (tag.trim(), handle.trim());
        if tag.is_empty() || handle.is_empty() {
            return Err(RloginError::NoTag);
        }
        Ok((tag.to_string(), handle.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_door_network_convention() {
        let (h, used) = Handshake::parse(b"\0s3cret\0[NUG]Gordon Gekko\0ANSI/115200\0after")
            .unwrap()
            .unwrap();
        assert_eq!(h.client_user, "s3cret");
        assert_eq!(h.terminal, "ANSI");
        assert_eq!(h.speed, Some(115200));
        assert_eq!(
            &b"\0s3cret\0[NUG]Gordon Gekko\0ANSI/115200\0after"[used..],
            b"after"
        );
        assert_eq!(
            h.tag_and_handle().unwrap(),
            ("NUG".to_string(), "Gordon Gekko".to_string())
        );
    }

    #[test]
    fn waits_for_the_whole_handshake_at_every_split() {
        let full = b"\0pw\0[A]b\0ATASCII/9600\0";
        for cut in 0..full.len() {
            assert_eq!(
                Handshake::parse(&full[..cut]).unwrap(),
                None,
                "cut at {cut}"
            );
        }
        let (h, _) = Handshake::parse(full).unwrap().unwrap();
        assert_eq!((h.terminal.as_str(), h.speed), ("ATASCII", Some(9600)));
    }

    #[test]
    fn refuses_what_is_not_rlogin_or_too_long() {
        assert_eq!(
            Handshake::parse(b"GET / HTTP/1.0\r\n"),
            Err(RloginError::NotRlogin)
        );
        let mut long = vec![0u8];
        long.extend(std::iter::repeat_n(b'x', FIELD_MAX + 1));
        assert_eq!(
            Handshake::parse(&long),
            Err(RloginError::FieldTooLong { field: 1 })
        );
        assert_eq!(
            Handshake::parse(b"\0a\0b\x07c\0t\0"),
            Err(RloginError::NotText { field: 2 })
        );
    }

    #[test]
    fn the_user_field_needs_a_tag() {
        for user in ["Gordon", "[]Gordon", "[NUG]", "[NUG Gordon"] {
            let h = Handshake {
                client_user: "pw".into(),
                server_user: user.into(),
                terminal: "ANSI".into(),
                speed: None,
            };
            assert_eq!(h.tag_and_handle(), Err(RloginError::NoTag), "{user}");
        }
    }

    #[test]
    fn empty_terminal_and_no_speed_are_fine() {
        let (h, _) = Handshake::parse(b"\0pw\0[X]y\0\0").unwrap().unwrap();
        assert_eq!((h.terminal.as_str(), h.speed), ("", None));
    }
}
