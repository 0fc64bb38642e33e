//! `[[serial]]` tables: one serial line each.
//!
//! Owns [`SerialPortConfig`] and its enums, their defaults and validation, and the conversion
//! into the pure machines' configurations (`crate::modem`). Parsing the file is `crate::config`'s
//! job; this module only describes one line.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::modem::answer::AnswerConfig;
use crate::modem::emulator::EmulatorConfig;
use crate::terminal::CharsetSetting;

/// What is attached to the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineMode {
    /// A real Hayes modem, driven in answer mode.
    Modem,
    /// A computer whose terminal program expects a modem: we emulate one.
    VirtualModem,
    /// A computer on a null-modem cable with no AT commands: a key starts the call.
    #[default]
    Direct,
}

impl LineMode {
    /// The name used in config files, logs and the node table.
    pub fn as_str(self) -> &'static str {
        match self {
            LineMode::Modem => "modem",
            LineMode::VirtualModem => "virtual-modem",
            LineMode::Direct => "direct",
        }
    }

    /// The transport kind reported to the node manager for calls on such a line.
    pub fn transport_kind(self) -> crate::transport::TransportKind {
        use crate::transport::TransportKind;
        match self {
            LineMode::Modem => TransportKind::Modem,
            LineMode::VirtualModem => TransportKind::VirtualModem,
            LineMode::Direct => TransportKind::Direct,
        }
    }
}

/// Parity bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    #[default]
    None,
    Odd,
    Even,
}

/// Flow control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowControl {
    /// No flow control (three-wire cables, most Atari 850 setups).
    #[default]
    None,
    /// Hardware flow control on RTS/CTS (what every high-speed modem wants).
    RtsCts,
    /// Software flow control with XON/XOFF characters (never with binary transfers).
    XonXoff,
}

/// How a modem line hangs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HangupMethod {
    /// Drop DTR (the modem needs `&D2`); if the carrier stays up, fall back to `+++` `ATH0`.
    #[default]
    Dtr,
    /// Only `+++` with guard times, then `ATH0` (for cables without DTR).
    Escape,
}

/// One `[[serial]]` table: a serial port and what is attached to it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SerialPortConfig {
    /// The line's name in logs and the node table, e.g. `"modem1"`. Default: the device path.
    /// Names must be unique.
    pub name: String,
    /// The device, e.g. `"/dev/ttyUSB0"` or a stable udev name such as
    /// `"/dev/serial/by-id/usb-FTDI_…-if00-port0"`. Required.
    pub device: PathBuf,
    /// Port speed in bits per second (the DTE rate; for a modem, lock it at 19200 or higher).
    /// Default 9600.
    pub baud: u32,
    /// Data bits, 5 to 8. Default 8.
    pub data_bits: u8,
    /// `none`, `odd` or `even`. Default `none`.
    pub parity: Parity,
    /// Stop bits, 1 or 2. Default 1.
    pub stop_bits: u8,
    /// `none`, `rts-cts` or `xon-xoff`. Default `none`.
    pub flow_control: FlowControl,
    /// `modem`, `virtual-modem` or `direct`. Default `direct`.
    pub mode: LineMode,
    /// The charset of callers on this line: `auto` (detect), `ansi`, `atascii` or `ascii`.
    /// An Atari on a null-modem line is `atascii` from the first byte. Default `auto`.
    pub charset: CharsetSetting,
    /// Whether the port's DCD input is wired and should be watched: a drop ends the call.
    /// Default: true on `modem` lines, false on `direct` lines; ignored on `virtual-modem`
    /// lines. Without it a modem call ends on `NO CARRIER` text or a port error. A port that
    /// cannot report DCD (a PTY, some adapters) shows an error until this is set to false.
    pub carrier_detect: Option<bool>,
    /// `modem` lines: the init string. `^M` ends a command (each must answer `OK`), `~` pauses
    /// half a second, `^X` sends a control character. Default
    /// `"ATZ^M~AT E0 V1 Q0 X4 &C1 &D2 S0=0"`.
    pub init: String,
    /// `modem` lines: answer with `ATA` after this many rings; 0 lets the modem auto-answer
    /// (put `S0=1` in the init string then). Default 1.
    pub rings: u32,
    /// `modem` lines: `dtr` (drop DTR, fall back to `+++ATH0`) or `escape` (`+++ATH0` only).
    /// Default `dtr`.
    pub hangup: HangupMethod,
    /// `modem` lines: an idle modem is probed with `AT` this often (seconds); no `OK` means it
    /// is reset. Default 300.
    pub watchdog_secs: u64,
    /// `modem` lines: milliseconds DTR is held low to reset or hang up the modem. Default 1000.
    pub dtr_drop_ms: u64,
    /// `modem` lines: milliseconds to wait after raising DTR before talking to the modem.
    /// Default 500.
    pub settle_ms: u64,
    /// `modem` lines: milliseconds to wait for `OK` after `AT` or an init command. Default 5000.
    pub command_timeout_ms: u64,
    /// `modem` lines: the pause written `~` in the init string, in milliseconds. Default 500.
    pub tilde_ms: u64,
    /// `modem` lines: milliseconds of silence before and after `+++` when hanging up by
    /// escape; must exceed the modem's S12 (50 = one second). Default 1100.
    pub guard_ms: u64,
    /// `virtual-modem` lines: the speed in `CONNECT <speed>`, also the pacing rate. Default:
    /// `baud`.
    pub connect_speed: Option<u32>,
    /// `virtual-modem` lines: milliseconds between `ATD` and `CONNECT`. Default 1000.
    pub answer_delay_ms: u64,
    /// Pace output to the line rate (the CONNECT rate on modem lines, `connect_speed` on
    /// virtual-modem lines, `baud` on direct lines). Default true.
    pub pace: bool,
    /// First wait (seconds) before reopening a port that failed or vanished; doubles on each
    /// failure. Default 1.
    pub retry_min_secs: u64,
    /// Longest wait (seconds) between reopening attempts. Default 60.
    pub retry_max_secs: u64,
}

impl Default for SerialPortConfig {
    fn default() -> Self {
        SerialPortConfig {
            name: String::new(),
            device: PathBuf::new(),
            baud: 9600,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            flow_control: FlowControl::None,
            mode: LineMode::Direct,
            charset: CharsetSetting::Auto,
            carrier_detect: None,
            init: AnswerConfig::default().init,
            rings: 1,
            hangup: HangupMethod::Dtr,
            watchdog_secs: 300,
            dtr_drop_ms: 1000,
            settle_ms: 500,
            command_timeout_ms: 5000,
            tilde_ms: 500,
            guard_ms: 1100,
            connect_speed: None,
            answer_delay_ms: 1000,
            pace: true,
            retry_min_secs: 1,
            retry_max_secs: 60,
        }
    }
}

/// A `[[serial]]` value that parsed but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct SerialConfigError {
    /// The key, e.g. `serial[1].baud`.
    pub key: String,
    /// What was expected.
    pub message: String,
}

impl SerialPortConfig {
    /// The name shown for the line: `name`, or the device path when `name` is empty.
    pub fn display_name(&self) -> String {
        if self.name.trim().is_empty() {
            self.device.display().to_string()
        } else {
            self.name.clone()
        }
    }

    /// Whether DCD is watched on this line.
    pub fn watches_carrier(&self) -> bool {
        match self.mode {
            LineMode::Modem => self.carrier_detect.unwrap_or(true),
            LineMode::Direct => self.carrier_detect.unwrap_or(false),
            LineMode::VirtualModem => false,
        }
    }

    /// The rate reported by the virtual modem.
    pub fn virtual_connect_bps(&self) -> u32 {
        self.connect_speed.unwrap_or(self.baud)
    }

    /// Bits on the wire per character: start, data, parity, stop.
    pub fn bits_per_char(&self) -> u32 {
        1 + u32::from(self.data_bits)
            + u32::from(self.parity != Parity::None)
            + u32::from(self.stop_bits)
    }

    /// The answer machine's configuration for a `modem` line.
    pub fn answer_config(&self) -> AnswerConfig {
        AnswerConfig {
            init: self.init.clone(),
            rings: self.rings,
            carrier_detect: self.watches_carrier(),
            dtr_hangup: self.hangup == HangupMethod::Dtr,
            watchdog: Duration::from_secs(self.watchdog_secs.max(1)),
            dtr_drop: Duration::from_millis(self.dtr_drop_ms),
            settle: Duration::from_millis(self.settle_ms),
            command_timeout: Duration::from_millis(self.command_timeout_ms.max(1)),
            tilde_pause: Duration::from_millis(self.tilde_ms),
            guard: Duration::from_millis(self.guard_ms),
            ..AnswerConfig::default()
        }
    }

    /// The emulator's configuration for a `virtual-modem` line.
    pub fn emulator_config(&self) -> EmulatorConfig {
        EmulatorConfig {
            connect_bps: self.virtual_connect_bps(),
            answer_delay: Duration::from_millis(self.answer_delay_ms),
        }
    }

    /// The first and the longest wait between reopening attempts.
    pub fn retry_bounds(&self) -> (Duration, Duration) {
        let min = Duration::from_secs(self.retry_min_secs.max(1));
        let max = Duration::from_secs(self.retry_max_secs).max(min);
        (min, max)
    }

    /// Checks one table; `index` is its position among the `[[serial]]` tables.
    pub fn validate(&self, index: usize) -> Result<(), SerialConfigError> {
        let err = |field: &str, message: String| SerialConfigError {
            key: format!("serial[{index}].{field}"),
            message,
        };
        if self.device.as_os_str().is_empty() {
            return Err(err(
                "device",
                "expected a device path such as /dev/ttyUSB0".into(),
            ));
        }
        if self.baud == 0 || self.baud > 4_000_000 {
            return Err(err(
                "baud",
                format!("expected 1 to 4000000, found {}", self.baud),
            ));
        }
        if !(5..=8).contains(&self.data_bits) {
            return Err(err(
                "data_bits",
                format!("expected 5 to 8, found {}", self.data_bits),
            ));
        }
        if !(1..=2).contains(&self.stop_bits) {
            return Err(err(
                "stop_bits",
                format!("expected 1 or 2, found {}", self.stop_bits),
            ));
        }
        if self.connect_speed == Some(0) {
            return Err(err("connect_speed", "expected a speed above 0".into()));
        }
        if self.mode == LineMode::Modem && self.rings > 255 {
            return Err(err(
                "rings",
                format!("expected 0 to 255, found {}", self.rings),
            ));
        }
        Ok(())
    }

    /// Checks every table and that names and devices are not used twice.
    pub fn validate_all(ports: &[SerialPortConfig]) -> Result<(), SerialConfigError> {
        for (i, p) in ports.iter().enumerate() {
            p.validate(i)?;
            for (j, q) in ports.iter().enumerate().skip(i + 1) {
                if p.display_name() == q.display_name() {
                    return Err(SerialConfigError {
                        key: format!("serial[{j}].name"),
                        message: format!(
                            "name {:?} is already used by serial[{i}]",
                            p.display_name()
                        ),
                    });
                }
                if p.device == q.device {
                    return Err(SerialConfigError {
                        key: format!("serial[{j}].device"),
                        message: format!(
                            "device {} is already used by serial[{i}]",
                            p.device.display()
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_table_parses() {
        let text = r#"
            name = "atari"
            device = "/dev/ttyUSB0"
            baud = 19200
            data_bits = 8
            parity = "even"
            stop_bits = 2
            flow_control = "rts-cts"
            mode = "virtual-modem"
            charset = "atascii"
            carrier_detect = false
            init = "ATZ"
            rings = 2
            hangup = "escape"
            watchdog_secs = 60
            dtr_drop_ms = 600
            settle_ms = 250
            command_timeout_ms = 3000
            tilde_ms = 1000
            guard_ms = 1200
            connect_speed = 2400
            answer_delay_ms = 0
            pace = false
            retry_min_secs = 2
            retry_max_secs = 30
        "#;
        let c: SerialPortConfig = toml::from_str(text).unwrap();
        assert_eq!(c.mode, LineMode::VirtualModem);
        assert_eq!(c.flow_control, FlowControl::RtsCts);
        assert_eq!(c.parity, Parity::Even);
        assert_eq!(c.charset, CharsetSetting::Atascii);
        assert_eq!(c.virtual_connect_bps(), 2400);
        assert_eq!(c.bits_per_char(), 12);
        assert!(c.validate(0).is_ok());
    }

    #[test]
    fn defaults_and_unknown_keys() {
        let c: SerialPortConfig = toml::from_str("device = \"/dev/ttyS0\"").unwrap();
        assert_eq!(c.display_name(), "/dev/ttyS0");
        assert_eq!(c.mode, LineMode::Direct);
        assert!(!c.watches_carrier());
        assert_eq!(c.bits_per_char(), 10);
        assert!(toml::from_str::<SerialPortConfig>("devise = \"x\"").is_err());
        let modem: SerialPortConfig =
            toml::from_str("device = \"/dev/ttyS0\"\nmode = \"modem\"").unwrap();
        assert!(modem.watches_carrier());
        assert!(modem.answer_config().dtr_hangup);
    }

    #[test]
    fn bad_values_name_the_key() {
        let bad = SerialPortConfig {
            device: "/dev/x".into(),
            data_bits: 9,
            ..SerialPortConfig::default()
        };
        assert_eq!(bad.validate(3).unwrap_err().key, "serial[3].data_bits");
        assert_eq!(
            SerialPortConfig::default().validate(0).unwrap_err().key,
            "serial[0].device"
        );
        let a = SerialPortConfig {
            device: "/dev/a".into(),
            name: "one".into(),
            ..SerialPortConfig::default()
        };
        let b = SerialPortConfig {
            device: "/dev/a".into(),
            name: "two".into(),
            ..SerialPortConfig::default()
        };
        let e = SerialPortConfig::validate_all(&[a, b]).unwrap_err();
        assert_eq!(e.key, "serial[1].device");
    }
}
