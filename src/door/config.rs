//! One `[[door]]` table of the configuration file, and the command-line placeholders.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::dropfile::{DropKind, LineEnding};

/// The placeholders a door's `args` may use. `{database}` (the BBS's own database URL),
/// `{bbs}` (the board's name) and `{writer}` (the order writer's socket, empty when none runs)
/// are filled in by the node before the door starts (see [`DoorConfig::builtin_nuggetnet`]).
pub const PLACEHOLDERS: &[&str] = &[
    "dropfile", "node", "nodedir", "fd", "alias", "minutes", "cols", "rows", "database", "bbs",
    "writer",
];

/// A door `command` that means "this program" (the `nuggetnet` binary the BBS runs as).
pub const SELF_COMMAND: &str = "{nuggetnet}";

/// How the caller's bytes reach the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DoorIoMode {
    /// Pipes on standard input and output (DOOR32 comm type 0).
    #[default]
    Stdio,
    /// A pseudo-terminal as standard input, output and error, sized to the caller's screen
    /// (DOOR32 comm type 0), for doors that need a terminal.
    Pty,
    /// An inherited connected TCP socket whose descriptor number is written to DOOR32.SYS
    /// line 2 and `{fd}` (DOOR32 comm type 2).
    Socket,
}

impl DoorIoMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DoorIoMode::Stdio => "stdio",
            DoorIoMode::Pty => "pty",
            DoorIoMode::Socket => "socket",
        }
    }
}

/// A door program the BBS can run.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DoorConfig {
    /// The name shown in the door menu and in "who's online"; unique.
    pub name: String,
    /// The program to run (a path, or a name looked up in `PATH`). No shell is involved.
    pub command: String,
    /// Its arguments; `{dropfile}`, `{node}`, `{nodedir}`, `{fd}`, `{alias}`, `{minutes}`,
    /// `{cols}` and `{rows}` are replaced.
    #[serde(default)]
    pub args: Vec<String>,
    /// Which dropfile to write: `door32`, `door.sys` or `dorinfo`.
    #[serde(default = "default_dropfile")]
    pub dropfile: DropKind,
    /// Write the dropfile's name in lower case (`door32.sys`).
    #[serde(default)]
    pub dropfile_lower_case: bool,
    /// `crlf` (DOS doors) or `lf`.
    #[serde(default)]
    pub dropfile_line_ending: LineEnding,
    /// `stdio`, `pty` or `socket`.
    #[serde(default)]
    pub io: DoorIoMode,
    /// Put the pseudo-terminal in raw mode (for doors that send binary data); `pty` only.
    #[serde(default)]
    pub pty_raw: bool,
    /// Most callers in this door at once, across all nodes; absent means no limit.
    #[serde(default)]
    pub max_users: Option<u32>,
    /// Longest visit in minutes; absent means the caller's time left.
    #[serde(default)]
    pub time_limit_minutes: Option<u32>,
    /// The folder the door runs in; absent means the node's folder.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
}

fn default_dropfile() -> DropKind {
    DropKind::Door32
}

impl DoorConfig {
    /// A stdio DOOR32 door with no limits (handy for tests and examples).
    pub fn new(name: &str, command: &str, args: &[&str]) -> DoorConfig {
        DoorConfig {
            name: name.to_string(),
            command: command.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            dropfile: DropKind::Door32,
            dropfile_lower_case: false,
            dropfile_line_ending: LineEnding::CrLf,
            io: DoorIoMode::Stdio,
            pty_raw: false,
            max_users: None,
            time_limit_minutes: None,
            working_dir: None,
        }
    }

    /// The NuggetNet game, run by this same binary on the BBS's own database: the door every
    /// board has unless its configuration lists its own `[[door]]` tables.
    pub fn builtin_nuggetnet() -> DoorConfig {
        DoorConfig::new(
            "NuggetNet",
            SELF_COMMAND,
            &[
                "door",
                "--dropfile",
                "{dropfile}",
                "--database",
                "{database}",
                "--system",
                "{bbs}",
                "--writer",
                "{writer}",
            ],
        )
    }

    /// The time a caller may stay: the door's limit or the caller's minutes, whichever is less.
    pub fn time_allowed(&self, minutes_left: u32) -> Duration {
        let minutes = match self.time_limit_minutes {
            Some(limit) => limit.min(minutes_left),
            None => minutes_left,
        };
        Duration::from_secs(u64::from(minutes) * 60)
    }

    /// Checks every `[[door]]` table; the error names the key, e.g. `door[0].command`.
    pub fn validate_all(doors: &[DoorConfig]) -> Result<(), DoorConfigError> {
        let invalid = |i: usize, key: &str, message: String| DoorConfigError {
            key: format!("door[{i}].{key}"),
            message,
        };
        for (i, door) in doors.iter().enumerate() {
            if door.name.trim().is_empty() {
                return Err(invalid(i, "name", "expected a non-empty name".into()));
            }
            if let Some(j) = doors[..i]
                .iter()
                .position(|d| d.name.trim().eq_ignore_ascii_case(door.name.trim()))
            {
                return Err(invalid(
                    i,
                    "name",
                    format!("{:?} is already the name of door[{j}]", door.name),
                ));
            }
            if door.command.trim().is_empty() {
                return Err(invalid(i, "command", "expected a program to run".into()));
            }
            for (k, arg) in door.args.iter().enumerate() {
                if let Some(unknown) = placeholders(arg).find(|p| !PLACEHOLDERS.contains(p)) {
                    return Err(invalid(
                        i,
                        &format!("args[{k}]"),
                        format!(
                            "unknown placeholder {{{unknown}}}; expected one of {}",
                            PLACEHOLDERS
                                .iter()
                                .map(|p| format!("{{{p}}}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ),
                    ));
                }
            }
            if door.max_users == Some(0) {
                return Err(invalid(i, "max_users", "expected at least 1".into()));
            }
            if door.time_limit_minutes == Some(0) {
                return Err(invalid(
                    i,
                    "time_limit_minutes",
                    "expected at least 1".into(),
                ));
            }
            let fd_on_command_line = door.args.iter().any(|a| placeholders(a).any(|p| p == "fd"));
            if door.io == DoorIoMode::Socket
                && door.dropfile == DropKind::DorInfo
                && !fd_on_command_line
            {
                return Err(invalid(
                    i,
                    "io",
                    "a socket door needs a dropfile that carries the socket (door32 or door.sys) \
                     or {fd} in its args"
                        .into(),
                ));
            }
            if door.pty_raw && door.io != DoorIoMode::Pty {
                return Err(invalid(
                    i,
                    "pty_raw",
                    "only applies with io = \"pty\"".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A `[[door]]` table that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct DoorConfigError {
    /// The key, e.g. `door[1].args[0]`.
    pub key: String,
    pub message: String,
}

/// The names inside `{...}` in `arg`.
pub fn placeholders(arg: &str) -> impl Iterator<Item = &str> {
    arg.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

/// Replaces every `{name}` in `arg` whose name `value` knows; other text is kept as it is.
pub fn expand(arg: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.split_once('}') {
            Some((name, tail)) => match value(name) {
                Some(v) => {
                    out.push_str(&v);
                    rest = tail;
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            },
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand_and_unknown_text_stays() {
        let v = |name: &str| match name {
            "node" => Some("3".to_string()),
            "dropfile" => Some("/n/DOOR32.SYS".to_string()),
            _ => None,
        };
        assert_eq!(expand("-d{dropfile}", v), "-d/n/DOOR32.SYS");
        assert_eq!(expand("{node}{node}", v), "33");
        assert_eq!(expand("{x} {node", v), "{x} {node");
        assert_eq!(placeholders("a{b}c{d}").collect::<Vec<_>>(), ["b", "d"]);
    }

    #[test]
    fn validation_names_the_key() {
        let mut door = DoorConfig::new("Game", "/bin/game", &["{bogus}"]);
        let err = DoorConfig::validate_all(&[door.clone()]).unwrap_err();
        assert_eq!(err.key, "door[0].args[0]");
        door.args.clear();
        door.command = " ".into();
        assert_eq!(
            DoorConfig::validate_all(&[door.clone()]).unwrap_err().key,
            "door[0].command"
        );
        door.command = "/bin/game".into();
        let twice = [door.clone(), door.clone()];
        assert_eq!(
            DoorConfig::validate_all(&twice).unwrap_err().key,
            "door[1].name"
        );
        door.io = DoorIoMode::Socket;
        door.dropfile = DropKind::DorInfo;
        assert_eq!(
            DoorConfig::validate_all(&[door.clone()]).unwrap_err().key,
            "door[0].io"
        );
        door.args = vec!["--socket={fd}".into()];
        assert!(DoorConfig::validate_all(&[door]).is_ok());
    }

    #[test]
    fn time_allowed_is_the_smaller_limit() {
        let mut door = DoorConfig::new("Game", "/bin/game", &[]);
        assert_eq!(door.time_allowed(30), Duration::from_secs(1800));
        door.time_limit_minutes = Some(10);
        assert_eq!(door.time_allowed(30), Duration::from_secs(600));
        assert_eq!(door.time_allowed(5), Duration::from_secs(300));
    }
}
