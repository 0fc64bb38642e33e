//! The per-door concurrency cap, shared by all nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many callers are in each door. A cheap-clone handle; the std mutex is never held
/// across `.await` (every method is synchronous).
#[derive(Debug, Clone, Default)]
pub struct DoorSlots {
    inner: Arc<Mutex<HashMap<String, u32>>>,
}

impl DoorSlots {
    pub fn new() -> DoorSlots {
        DoorSlots::default()
    }

    /// Takes a place in `door` if fewer than `max` callers are in it (`None`: no limit).
    /// Dropping the returned slot gives the place back.
    pub fn try_enter(&self, door: &str, max: Option<u32>) -> Option<DoorSlot> {
        let mut map = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = map.entry(door.to_string()).or_insert(0);
        if max.is_some_and(|max| *count >= max) {
            return None;
        }
        *count += 1;
        Some(DoorSlot {
            slots: self.clone(),
            door: door.to_string(),
        })
    }

    /// How many callers are in `door` now.
    pub fn in_use(&self, door: &str) -> u32 {
        let map = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(door).copied().unwrap_or(0)
    }
}

/// One caller's place in a door; dropping it frees the place on every path.
#[derive(Debug)]
pub struct DoorSlot {
    slots: DoorSlots,
    door: String,
}

impl Drop for DoorSlot {
    fn drop(&mut self) {
        let mut map = self
            .slots
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = map.get_mut(&self.door) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.door);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_and_places_come_back() {
        let slots = DoorSlots::new();
        let a = slots.try_enter("Game", Some(2)).unwrap();
        let _b = slots.try_enter("Game", Some(2)).unwrap();
        assert!(slots.try_enter("Game", Some(2)).is_none());
        assert!(slots.try_enter("Other", Some(1)).is_some());
        drop(a);
        assert_eq!(slots.in_use("Game"), 1);
        assert!(slots.try_enter("Game", Some(2)).is_some());
        assert!(slots.try_enter("Free", None).is_some());
    }
}
