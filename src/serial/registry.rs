//! The live state of every serial line, for the node table.
//!
//! Owns [`LineRegistry`], a cheap-clone handle over a small table of [`LineStatus`] rows that
//! line drivers update and the node manager reads with [`LineRegistry::snapshot`]. The lock is
//! a std mutex that is never held across an `.await` (every method takes and releases it).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use super::config::{LineMode, SerialPortConfig};
use crate::modem::LineState;

/// One line as shown in the node table.
#[derive(Debug, Clone, PartialEq)]
pub struct LineStatus {
    pub name: String,
    pub device: PathBuf,
    pub mode: LineMode,
    pub state: LineState,
    /// The current caller's ID (from a modem's caller-ID lines), while in a call.
    pub caller_id: Option<String>,
    /// When the line entered `state`.
    pub since: Instant,
}

/// Shared table of line states; clone it freely.
#[derive(Debug, Clone, Default)]
pub struct LineRegistry {
    lines: Arc<Mutex<Vec<LineStatus>>>,
}

impl LineRegistry {
    pub fn new() -> LineRegistry {
        LineRegistry::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<LineStatus>> {
        // A panic while holding the lock cannot leave a row half-written, so a poisoned lock
        // is still usable.
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every line, in configuration order.
    pub fn snapshot(&self) -> Vec<LineStatus> {
        self.lock().clone()
    }

    /// The state of one line, if registered.
    pub fn state(&self, name: &str) -> Option<LineState> {
        self.lock()
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.state.clone())
    }

    /// Adds a line in the `Opening` state (or resets it if already there).
    pub fn register(&self, config: &SerialPortConfig) {
        let row = LineStatus {
            name: config.display_name(),
            device: config.device.clone(),
            mode: config.mode,
            state: LineState::Opening,
            caller_id: None,
            since: Instant::now(),
        };
        let mut lines = self.lock();
        match lines.iter_mut().find(|l| l.name == row.name) {
            Some(existing) => *existing = row,
            None => lines.push(row),
        }
    }

    /// Records a new state; the caller ID is cleared unless the line is in a call.
    pub fn set_state(&self, name: &str, state: LineState) {
        let mut lines = self.lock();
        if let Some(l) = lines.iter_mut().find(|l| l.name == name) {
            if l.state != state {
                l.since = Instant::now();
            }
            if !matches!(state, LineState::Connected { .. } | LineState::Held { .. }) {
                l.caller_id = None;
            }
            l.state = state;
        }
    }

    /// Records the caller ID of the current call.
    pub fn set_caller_id(&self, name: &str, caller_id: Option<String>) {
        if let Some(l) = self.lock().iter_mut().find(|l| l.name == name) {
            l.caller_id = caller_id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_update_and_snapshot() {
        let reg = LineRegistry::new();
        let cfg = SerialPortConfig {
            name: "m1".into(),
            device: "/dev/ttyS0".into(),
            ..SerialPortConfig::default()
        };
        reg.register(&cfg);
        reg.set_state("m1", LineState::Connected { bps: 2400 });
        reg.set_caller_id("m1", Some("JOE".into()));
        let clone = reg.clone();
        let snap = clone.snapshot();
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].state, LineState::Connected { bps: 2400 });
        assert_eq!(snap[0].caller_id.as_deref(), Some("JOE"));
        reg.set_state("m1", LineState::HangingUp);
        assert_eq!(reg.snapshot()[0].caller_id, None);
        reg.set_state("nope", LineState::Idle);
        assert_eq!(reg.state("m1"), Some(LineState::HangingUp));
    }
}
