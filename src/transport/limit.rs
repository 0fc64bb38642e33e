//! Connection caps: connections per IP address, and callers waiting in the lobby.
//!
//! Both hand out RAII permits; dropping a permit gives its place back, on every exit path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts connections per IP address and refuses those beyond the cap.
#[derive(Clone, Debug)]
pub struct IpLimiter {
    inner: Arc<IpInner>,
}

#[derive(Debug)]
struct IpInner {
    per_ip: u32,
    // A std mutex: held only for a map update, never across an `.await`.
    counts: Mutex<HashMap<IpAddr, u32>>,
}

/// One connection's place in the per-IP count.
#[derive(Debug)]
pub struct IpPermit {
    limiter: IpLimiter,
    ip: IpAddr,
}

impl IpLimiter {
    /// A limiter allowing `per_ip` simultaneous connections from each address.
    pub fn new(per_ip: u32) -> IpLimiter {
        IpLimiter {
            inner: Arc::new(IpInner {
                per_ip,
                counts: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Takes a place for `ip`, or `None` when the address already has `per_ip` connections.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<IpPermit> {
        let mut counts = self.inner.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.inner.per_ip {
            return None;
        }
        *count += 1;
        Some(IpPermit {
            limiter: self.clone(),
            ip,
        })
    }

    /// Connections currently open from `ip`.
    pub fn count(&self, ip: IpAddr) -> u32 {
        let counts = self.inner.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .inner
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_address_and_frees_on_drop() {
        let limiter = IpLimiter::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let p1 = limiter.try_acquire(a).unwrap();
        let _p2 = limiter.try_acquire(a).unwrap();
        assert!(limiter.try_acquire(a).is_none());
        let _other = limiter.try_acquire(b).unwrap();
        drop(p1);
        assert_eq!(limiter.count(a), 1);
        assert!(limiter.try_acquire(a).is_some());
    }
}
