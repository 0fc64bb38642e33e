//! The configuration file (`nuggetnet.toml`).
//!
//! Owns parsing and validating the TOML file into [`Config`]. Every key has a default, so a
//! missing file means "run on defaults". A bad file is reported as a [`ConfigError`] that names
//! the file, the key and what was expected; this module never panics on input.
//! `nuggetnet.example.toml` at the top of the repository documents every key and is checked by a
//! test to parse into exactly the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::terminal::CharsetSetting;

/// The largest node pool we allow: node numbers are `u16` and node 0 does not exist.
pub const MAX_NODES: u32 = 65_535;

/// Where the config file is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "nuggetnet.toml";

/// Everything `nuggetnet serve` needs to know.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub bbs: BbsConfig,
    pub database: DatabaseConfig,
    /// The TCP listeners; when the key is absent, telnet on 127.0.0.1:2323 and raw TCP on
    /// 127.0.0.1:2324.
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Other BBSes allowed to link NuggetNet over the rlogin listener (`[[link]]` tables).
    #[serde(rename = "link")]
    pub links: Vec<LinkConfig>,
    /// Serial lines (`[[serial]]` tables): real modems, virtual modems and direct lines.
    #[serde(rename = "serial")]
    pub serial: Vec<crate::serial::SerialPortConfig>,
    /// Door programs (`[[door]]` tables) offered in the door menu.
    #[serde(rename = "door")]
    pub doors: Vec<crate::door::DoorConfig>,
    pub limits: LimitsConfig,
    pub logging: LoggingConfig,
    /// `[market]`: the simulation's clock, calendar, NPCs and instruments.
    pub market: crate::market::MarketConfig,
    /// `[season]`: reminders before a season ends, the final mark, the job runner.
    pub season: SeasonSettings,
}

/// `[season]`: when reminders go out before a season ends, how the final leaderboard marks
/// holdings, and the job runner that carries out mail delivery, reminders and season ends.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SeasonSettings {
    /// How long a season the market starts lasts, in real hours (`serve` starting the first
    /// season, `nuggetnet market new-game`). Players see the end at login.
    pub length_hours: u64,
    /// Hours before a season's end at which every player is reminded.
    pub reminder_hours: Vec<u64>,
    /// How many of the latest trades the final mark's median is taken over.
    pub mark_recent_trades: u64,
    /// How many of the latest tick bars the final mark's volume-weighted close covers.
    pub mark_recent_ticks: u64,
    /// How far (basis points) from the simulation's fair value a final mark may be.
    pub mark_fair_band_bp: u64,
    /// Whether `nuggetnet serve` runs the job runner (any number of processes may).
    pub run_jobs: bool,
    /// How often an idle job runner looks for due jobs, in ms.
    pub job_poll_ms: u64,
    /// How long a claimed job is held before another process may take it over, in seconds.
    pub job_lease_secs: u64,
}

impl Default for SeasonSettings {
    fn default() -> Self {
        SeasonSettings {
            length_hours: 720,
            reminder_hours: vec![168, 24, 1],
            mark_recent_trades: 21,
            mark_recent_ticks: 60,
            mark_fair_band_bp: 500,
            run_jobs: true,
            job_poll_ms: 1_000,
            job_lease_secs: 60,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bbs: BbsConfig::default(),
            database: DatabaseConfig::default(),
            listeners: vec![
                ListenerConfig {
                    kind: ListenerKind::Telnet,
                    bind: SocketAddr::from(([127, 0, 0, 1], 2323)),
                    charset: CharsetSetting::Auto,
                    bps: None,
                },
                ListenerConfig {
                    kind: ListenerKind::Raw,
                    bind: SocketAddr::from(([127, 0, 0, 1], 2324)),
                    charset: CharsetSetting::Auto,
                    bps: None,
                },
            ],
            links: Vec::new(),
            serial: Vec::new(),
            doors: vec![crate::door::DoorConfig::builtin_nuggetnet()],
            limits: LimitsConfig::default(),
            logging: LoggingConfig::default(),
            market: crate::market::MarketConfig::default(),
            season: SeasonSettings::default(),
        }
    }
}

/// `[bbs]`: identity and the node pool.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BbsConfig {
    /// The board's name, shown on the welcome screen and written into dropfiles.
    pub name: String,
    /// The sysop's name.
    pub sysop: String,
    /// How many nodes (simultaneous logged-in callers) the board has: 1 to 65,535.
    pub nodes: u32,
    /// Folder that holds one `nodeN/` folder per node (dropfiles, door scratch space).
    pub nodes_dir: PathBuf,
    /// Folder of ANSI art (`*.ans`, CP437, SAUCE records are stripped).
    pub ansi_dir: PathBuf,
    /// Folder of ATASCII art (`*.ata`).
    pub atascii_dir: PathBuf,
}

impl Default for BbsConfig {
    fn default() -> Self {
        BbsConfig {
            name: "NuggetNet BBS".into(),
            sysop: "Sysop".into(),
            nodes: 8,
            nodes_dir: "nodes".into(),
            ansi_dir: "ansi".into(),
            atascii_dir: "atascii".into(),
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    pub url: String,
    /// Largest number of pooled connections this process keeps open.
    pub max_connections: u32,
    /// Whether `serve` runs an order writer (on `exchange.sock` in the nodes folder) that the
    /// NuggetNet doors it starts send their orders to, so that many callers' orders share
    /// commits and queue fairly (see `exchange::writer`). Off: every door runs its own
    /// transactions.
    pub order_writer: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/nuggetnet.db".into(),
            max_connections: 8,
            order_writer: true,
        }
    }
}

/// One `[[listener]]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `telnet` (negotiates at connect) or `raw` (never sends a telnet byte; switches to telnet
    /// only when the peer's first byte is IAC).
    pub kind: ListenerKind,
    /// Address and port, e.g. `"127.0.0.1:2323"` or `"0.0.0.0:23"`.
    pub bind: SocketAddr,
    /// `auto` (detect), or force `ansi`, `atascii` or `ascii` for every caller of this listener.
    #[serde(default)]
    pub charset: CharsetSetting,
    /// Pace output to this many bits per second, for the feel of a real modem (e.g. 2400);
    /// absent means full speed.
    #[serde(default)]
    pub bps: Option<u32>,
}

/// The kinds of TCP listener.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    Telnet,
    Raw,
    /// RFC 1282 rlogin for linked BBSes: callers go straight into the NuggetNet door.
    Rlogin,
}

impl ListenerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerKind::Telnet => "telnet",
            ListenerKind::Raw => "raw",
            ListenerKind::Rlogin => "rlogin",
        }
    }
}

/// One `[[link]]` table: a BBS allowed to link NuggetNet over rlogin.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// The system's tag, as it sends it in `[TAG]handle`; 1 to 16 letters, digits, `-`, `_`.
    /// Players from it are `(tag, handle)`.
    pub tag: String,
    /// The shared secret it sends as rlogin's first field; at least 8 characters.
    pub secret: String,
    /// A longer name for logs and the node table (default: the tag).
    #[serde(default)]
    pub name: Option<String>,
}

impl LinkConfig {
    /// Whether `secret` is this link's secret, compared in constant time.
    pub fn secret_matches(&self, secret: &str) -> bool {
        let (a, b) = (self.secret.as_bytes(), secret.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// `[limits]`: time-outs and caps. Durations are in seconds unless the key says otherwise.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most simultaneous connections from one IP address (lobby and nodes together).
    pub per_ip: u32,
    /// Most connections in the pre-login lobby at once, across all addresses.
    pub lobby: u32,
    /// How long the lobby waits for the first RETURN before hanging up.
    pub lobby_timeout_secs: u64,
    /// How long any prompt waits for a key before the caller is logged off.
    pub idle_timeout_secs: u64,
    /// How long the telnet listener waits for TTYPE/NAWS answers after connect.
    pub telnet_wait_ms: u64,
    /// How long the ANSI cursor-position probe waits for a reply.
    pub probe_timeout_ms: u64,
    /// Failed logins before the call is ended.
    pub login_attempts: u32,
    /// Delay after each failed login, in seconds.
    pub login_failure_delay_secs: u64,
    /// On shutdown, how long nodes get to say goodbye and finish.
    pub shutdown_grace_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            per_ip: 8,
            lobby: 20_000,
            lobby_timeout_secs: 120,
            idle_timeout_secs: 600,
            telnet_wait_ms: 1_000,
            probe_timeout_ms: 1_500,
            login_attempts: 3,
            login_failure_delay_secs: 2,
            shutdown_grace_secs: 10,
        }
    }
}

/// `[logging]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// A `tracing` filter such as `"info"` or `"nuggetnet=debug"`; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            filter: "info".into(),
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key has the wrong type or an unknown name.
    #[error("config file {path}: {location}key `{key}`: {message}")]
    Parse {
        path: PathBuf,
        key: String,
        location: String,
        message: String,
    },
    /// A key has the right type but an unusable value.
    #[error("config file {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

impl Config {
    /// Reads the file given with `--config`, else `nuggetnet.toml` in the working folder if it
    /// exists, else returns the defaults. The second value is the file that was read.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG_FILE);
                if !p.exists() {
                    return Ok((Config::default(), None));
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let config = Config::parse(&text, &path)?;
        Ok((config, Some(path)))
    }

    /// Parses and validates TOML text; `path` is used only in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|err| {
            let key = err.path().to_string();
            let inner = err.into_inner();
            let location = inner
                .span()
                .map(|span| {
                    let (line, col) = line_col(text, span.start);
                    format!("line {line}, column {col}: ")
                })
                .unwrap_or_default();
            ConfigError::Parse {
                path: path.to_path_buf(),
                key: if key == "." {
                    "(top level)".into()
                } else {
                    key
                },
                location,
                message: inner.message().trim().to_string(),
            }
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        if self.bbs.nodes == 0 || self.bbs.nodes > MAX_NODES {
            return Err(invalid(
                "bbs.nodes",
                format!(
                    "expected a node count from 1 to {MAX_NODES}, found {}",
                    self.bbs.nodes
                ),
            ));
        }
        if self.bbs.name.trim().is_empty() {
            return Err(invalid("bbs.name", "expected a non-empty name".into()));
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                format!("expected a URL starting with sqlite: or postgres://, found {url:?}"),
            ));
        }
        if self.season.length_hours == 0 || self.season.length_hours > 24 * 3_650 {
            return Err(invalid(
                "season.length_hours",
                format!(
                    "expected hours from 1 to 87600 (ten years), found {}",
                    self.season.length_hours
                ),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid(
                "database.max_connections",
                "expected at least 1".into(),
            ));
        }
        for (i, l) in self.listeners.iter().enumerate() {
            for (j, other) in self.listeners.iter().enumerate().skip(i + 1) {
                if l.bind == other.bind && l.bind.port() != 0 {
                    return Err(invalid(
                        &format!("listener[{j}].bind"),
                        format!("address {} is already used by listener[{i}]", l.bind),
                    ));
                }
            }
        }
        for (i, l) in self.listeners.iter().enumerate() {
            if l.bps == Some(0) {
                return Err(invalid(
                    &format!("listener[{i}].bps"),
                    "expected a line rate in bits per second, e.g. 2400".into(),
                ));
            }
        }
        for (i, link) in self.links.iter().enumerate() {
            let tag_ok = (1..=16).contains(&link.tag.len())
                && link
                    .tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !tag_ok {
                return Err(invalid(
                    &format!("link[{i}].tag"),
                    format!(
                        "expected 1 to 16 letters, digits, '-' or '_', found {:?}",
                        link.tag
                    ),
                ));
            }
            if let Some(j) = self.links[..i]
                .iter()
                .position(|l| l.tag.eq_ignore_ascii_case(&link.tag))
            {
                return Err(invalid(
                    &format!("link[{i}].tag"),
                    format!("tag {:?} is already used by link[{j}]", link.tag),
                ));
            }
            if link.secret.chars().count() < 8 {
                return Err(invalid(
                    &format!("link[{i}].secret"),
                    "expected a shared secret of at least 8 characters".into(),
                ));
            }
        }
        crate::serial::SerialPortConfig::validate_all(&self.serial)
            .map_err(|e| invalid(&e.key, e.message))?;
        crate::door::DoorConfig::validate_all(&self.doors)
            .map_err(|e| invalid(&e.key, e.message))?;
        self.market
            .validate()
            .map_err(|(key, message)| invalid(&key, message))?;
        let season = &self.season;
        if let Some(i) = season.reminder_hours.iter().position(|h| *h == 0) {
            return Err(invalid(
                &format!("season.reminder_hours[{i}]"),
                "expected a number of hours greater than 0".into(),
            ));
        }
        let positive = [
            ("season.mark_recent_trades", season.mark_recent_trades),
            ("season.mark_recent_ticks", season.mark_recent_ticks),
            ("season.job_poll_ms", season.job_poll_ms),
            ("season.job_lease_secs", season.job_lease_secs),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "expected a number greater than 0".into()));
            }
        }
        let lim = &self.limits;
        let positive = [
            ("limits.per_ip", lim.per_ip as u64),
            ("limits.lobby", lim.lobby as u64),
            ("limits.lobby_timeout_secs", lim.lobby_timeout_secs),
            ("limits.idle_timeout_secs", lim.idle_timeout_secs),
            ("limits.login_attempts", lim.login_attempts as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "expected a number greater than 0".into()));
            }
        }
        Ok(())
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn doors_parse_and_are_validated() {
        let text = "[[door]]\nname = \"NuggetNet\"\ncommand = \"/usr/bin/nuggetnet\"\n\
                    args = [\"door\", \"--dropfile\", \"{dropfile}\"]\ndropfile = \"door.sys\"\n\
                    io = \"socket\"\nmax_users = 4\ntime_limit_minutes = 30\n";
        let config = parse(text).unwrap();
        assert_eq!(config.doors.len(), 1);
        assert_eq!(config.doors[0].io, crate::door::DoorIoMode::Socket);
        assert_eq!(config.doors[0].dropfile, crate::dropfile::DropKind::DoorSys);
        let err = parse("[[door]]\nname = \"X\"\ncommand = \"\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("door[0].command"), "{err}");
        let err = parse("[[door]]\nname = \"X\"\ncommand = \"x\"\nio = \"carrier-pigeon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("door[0].io"), "{err}");
    }

    #[test]
    fn example_door_table_parses_when_uncommented() {
        let text = include_str!("../nuggetnet.example.toml");
        let table: String = text
            .lines()
            .skip_while(|l| *l != "# [[door]]")
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
            .collect();
        let config = parse(&table).unwrap();
        assert_eq!(config.doors.len(), 2);
        assert_eq!(
            config.doors[0],
            crate::door::DoorConfig::builtin_nuggetnet(),
            "the first example is exactly the built-in door"
        );
        assert_eq!(config.doors[1].max_users, Some(1));
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn example_file_documents_exactly_the_defaults() {
        let text = include_str!("../nuggetnet.example.toml");
        assert_eq!(parse(text).unwrap(), Config::default());
    }

    #[test]
    fn wrong_type_names_file_key_and_expectation() {
        let err = parse("[bbs]\nnodes = \"eight\"\n").unwrap_err().to_string();
        assert!(err.contains("test.toml"), "{err}");
        assert!(err.contains("bbs.nodes"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("expected"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse("[limits]\nper_ipp = 3\n").unwrap_err().to_string();
        assert!(err.contains("per_ipp"), "{err}");
    }

    #[test]
    fn out_of_range_node_count_is_refused() {
        let err = parse("[bbs]\nnodes = 70000\n").unwrap_err().to_string();
        assert!(err.contains("bbs.nodes") && err.contains("65535"), "{err}");
        assert!(parse("[bbs]\nnodes = 0\n").is_err());
    }

    #[test]
    fn listener_with_bad_address_names_the_entry() {
        let text = "[[listener]]\nkind = \"telnet\"\nbind = \"nowhere\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("listener[0].bind"), "{err}");
    }

    #[test]
    fn listener_kind_and_charset_parse() {
        let text =
            "[[listener]]\nkind = \"raw\"\nbind = \"127.0.0.1:9000\"\ncharset = \"atascii\"\n";
        let config = parse(text).unwrap();
        assert_eq!(config.listeners.len(), 1);
        assert_eq!(config.listeners[0].kind, ListenerKind::Raw);
        assert_eq!(config.listeners[0].charset, CharsetSetting::Atascii);
    }

    #[test]
    fn serial_lines_parse_and_are_validated() {
        let text =
            "[[serial]]\nname = \"atari\"\ndevice = \"/dev/ttyUSB0\"\nmode = \"virtual-modem\"\n\
                    baud = 9600\nconnect_speed = 2400\ncharset = \"atascii\"\n";
        let config = parse(text).unwrap();
        assert_eq!(config.serial.len(), 1);
        assert_eq!(
            config.serial[0].device,
            std::path::Path::new("/dev/ttyUSB0")
        );
        let twice = format!("{text}{}", text.replace("/dev/ttyUSB0", "/dev/ttyUSB1"));
        let err = parse(&twice).unwrap_err().to_string();
        assert!(err.contains("serial[1].name"), "{err}");
        let err = parse("[[serial]]\ndevice = \"/dev/x\"\nbaud = \"fast\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("serial[0].baud"), "{err}");
    }

    #[test]
    fn links_parse_and_are_validated() {
        let text = "[[listener]]\nkind = \"rlogin\"\nbind = \"127.0.0.1:5513\"\n\
                    [[link]]\ntag = \"DP\"\nsecret = \"open sesame\"\n";
        let config = parse(text).unwrap();
        assert_eq!(config.listeners[0].kind, ListenerKind::Rlogin);
        assert!(config.links[0].secret_matches("open sesame"));
        assert!(!config.links[0].secret_matches("open sesamE"));
        assert!(!config.links[0].secret_matches("open"));
        let err = parse("[[link]]\ntag = \"D P\"\nsecret = \"open sesame\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("link[0].tag"), "{err}");
        let err = parse("[[link]]\ntag = \"DP\"\nsecret = \"short\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("link[0].secret"), "{err}");
        let twice = "[[link]]\ntag = \"DP\"\nsecret = \"open sesame\"\n\
                     [[link]]\ntag = \"dp\"\nsecret = \"open sesame\"\n";
        assert!(parse(twice)
            .unwrap_err()
            .to_string()
            .contains("link[1].tag"));
    }

    #[test]
    fn bad_database_url_is_refused() {
        let err = parse("[database]\nurl = \"mysql://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.url"), "{err}");
    }

    #[test]
    fn missing_explicit_file_is_an_error_not_a_panic() {
        let err = Config::load(Some(Path::new("/nonexistent/nuggetnet.toml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/nuggetnet.toml"));
    }
}
