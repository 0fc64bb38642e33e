//! The node manager: a fixed pool of nodes, what each is doing, and messages between them.
//!
//! A caller holds a node only after leaving the lobby. [`NodeManager::try_acquire`] hands out
//! the lowest free node as a [`NodeGuard`]; dropping the guard frees the node on every exit
//! path (logoff, hang-up, panic unwinding, shutdown). The status registry is what the sysop
//! console and `/status` read; [`NodeManager::snapshot`] copies it.
//!
//! **Invariant:** a node number is held by at most one guard, and a free node has no status.
//! The registry lock is a std mutex that is never held across an `.await`.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::{broadcast, mpsc};

use crate::terminal::Caps;
use crate::transport::TransportKind;

/// How many undelivered messages a node's inbox holds before senders are told it is full.
const INBOX_CAPACITY: usize = 16;

/// What a caller on a node is doing, as the node table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    LoggingIn,
    Registering,
    MainMenu,
    WhoIsOnline,
    SendingMessage,
    Settings,
    InDoor(String),
    LoggingOff,
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activity::LoggingIn => f.write_str("logging in"),
            Activity::Registering => f.write_str("registering"),
            Activity::MainMenu => f.write_str("main menu"),
            Activity::WhoIsOnline => f.write_str("who's online"),
            Activity::SendingMessage => f.write_str("sending a message"),
            Activity::Settings => f.write_str("settings"),
            Activity::InDoor(name) => write!(f, "in door {name}"),
            Activity::LoggingOff => f.write_str("logging off"),
        }
    }
}

/// One occupied node, as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node: u16,
    pub transport: TransportKind,
    pub peer: String,
    pub caps: Caps,
    /// The line rate when the caller is on a paced or serial line.
    pub line_bps: Option<u32>,
    /// The logged-in user's handle, once known.
    pub user: Option<String>,
    pub activity: Activity,
    /// When the caller took the node.
    pub since: SystemTime,
    /// When the activity last changed.
    pub activity_since: SystemTime,
}

/// What a caller brings to a node.
#[derive(Debug, Clone)]
pub struct NodeRequest {
    pub transport: TransportKind,
    pub peer: String,
    pub caps: Caps,
    pub line_bps: Option<u32>,
}

/// A message delivered to a node's caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMessage {
    pub from_node: u16,
    pub from_user: String,
    pub text: String,
}

/// A line for every node's caller at once (a news flash, a sysop announcement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// Who says it, e.g. "NEWS FLASH".
    pub from: String,
    pub text: String,
}

/// What reached a node: a message for its caller alone, or a broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Message(NodeMessage),
    Broadcast(Broadcast),
}

/// Broadcasts kept for a node that is not reading (a caller in a door): older ones are
/// dropped, and a node coming back skips what it missed.
const BROADCAST_CAPACITY: usize = 16;

/// Why a node message could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("there is no node {0}")]
    NoSuchNode(u16),
    #[error("nobody is on node {0}")]
    NodeFree(u16),
    #[error("node {0} has too many unread messages; try again later")]
    InboxFull(u16),
}

/// The node pool; clones share it.
#[derive(Clone)]
pub struct NodeManager {
    inner: Arc<Inner>,
}

struct Inner {
    size: u16,
    state: Mutex<State>,
    broadcasts: broadcast::Sender<Broadcast>,
}

struct State {
    /// Free node numbers; the lowest is handed out first.
    free: BTreeSet<u16>,
    /// Index `n - 1` holds node `n`'s slot while it is occupied.
    slots: Vec<Option<Slot>>,
}

struct Slot {
    status: NodeStatus,
    inbox: mpsc::Sender<NodeMessage>,
}

impl NodeManager {
    /// A pool of `size` nodes numbered 1 to `size`.
    pub fn new(size: u16) -> NodeManager {
        NodeManager {
            inner: Arc::new(Inner {
                size,
                state: Mutex::new(State {
                    free: (1..=size).collect(),
                    slots: (0..size).map(|_| None).collect(),
                }),
                broadcasts: broadcast::channel(BROADCAST_CAPACITY).0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-written (every update
        // is a single assignment), so a poisoned lock is safe to keep using.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of nodes in the pool.
    pub fn size(&self) -> u16 {
        self.inner.size
    }

    /// How many nodes are occupied.
    pub fn in_use(&self) -> usize {
        self.inner.size as usize - self.state().free.len()
    }

    /// Takes the lowest free node, or `None` when all lines are busy.
    pub fn try_acquire(&self, request: NodeRequest) -> Option<NodeGuard> {
        let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
        let mut state = self.state();
        let node = state.free.pop_first()?;
        let now = SystemTime::now();
        state.slots[usize::from(node - 1)] = Some(Slot {
            status: NodeStatus {
                node,
                transport: request.transport,
                peer: request.peer,
                caps: request.caps,
                line_bps: request.line_bps,
                user: None,
                activity: Activity::LoggingIn,
                since: now,
                activity_since: now,
            },
            inbox: tx,
        });
        Some(NodeGuard {
            node,
            manager: self.clone(),
            inbox: rx,
            broadcasts: self.inner.broadcasts.subscribe(),
        })
    }

    /// A copy of every occupied node's status, by node number.
    pub fn snapshot(&self) -> Vec<NodeStatus> {
        self.state()
            .slots
            .iter()
            .flatten()
            .map(|slot| slot.status.clone())
            .collect()
    }

    /// The status of one node, if occupied.
    pub fn status(&self, node: u16) -> Option<NodeStatus> {
        let state = self.state();
        let slot = state.slots.get(usize::from(node).checked_sub(1)?)?;
        slot.as_ref().map(|s| s.status.clone())
    }

    /// Delivers a message to the caller on node `to`.
    pub fn send_message(&self, to: u16, message: NodeMessage) -> Result<(), SendError> {
        let inbox = {
            let state = self.state();
            let index = usize::from(to)
                .checked_sub(1)
                .ok_or(SendError::NoSuchNode(to))?;
            let slot = state.slots.get(index).ok_or(SendError::NoSuchNode(to))?;
            slot.as_ref().ok_or(SendError::NodeFree(to))?.inbox.clone()
        };
        inbox.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::InboxFull(to),
            mpsc::error::TrySendError::Closed(_) => SendError::NodeFree(to),
        })
    }

    /// Shows `text` to every node's caller (those at a prompt see it at once; a caller in a
    /// door does not, as the door owns the screen). Returns how many nodes it reached.
    pub fn broadcast(&self, from: &str, text: &str) -> usize {
        self.inner
            .broadcasts
            .send(Broadcast {
                from: from.to_string(),
                text: text.to_string(),
            })
            .unwrap_or(0)
    }

    fn update(&self, node: u16, f: impl FnOnce(&mut NodeStatus)) {
        let mut state = self.state();
        if let Some(Some(slot)) = state.slots.get_mut(usize::from(node - 1)) {
            f(&mut slot.status);
        }
    }

    fn release(&self, node: u16) {
        let mut state = self.state();
        state.slots[usize::from(node - 1)] = None;
        state.free.insert(node);
    }
}

/// A held node. Dropping it frees the node.
pub struct NodeGuard {
    node: u16,
    manager: NodeManager,
    inbox: mpsc::Receiver<NodeMessage>,
    broadcasts: broadcast::Receiver<Broadcast>,
}

impl NodeGuard {
    /// The node's number (1-based).
    pub fn number(&self) -> u16 {
        self.node
    }

    /// Records the logged-in user.
    pub fn set_user(&self, handle: &str) {
        self.manager
            .update(self.node, |s| s.user = Some(handle.to_string()));
    }

    /// Records what the caller is doing now.
    pub fn set_activity(&self, activity: Activity) {
        self.manager.update(self.node, |s| {
            if s.activity != activity {
                s.activity = activity;
                s.activity_since = SystemTime::now();
            }
        });
    }

    /// Records a change of terminal (a resize, or new settings).
    pub fn set_caps(&self, caps: Caps) {
        self.manager.update(self.node, |s| s.caps = caps);
    }

    /// The next message or broadcast for this node's caller. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Delivery> {
        loop {
            tokio::select! {
                message = self.inbox.recv() => return message.map(Delivery::Message),
                b = self.broadcasts.recv() => match b {
                    Ok(b) => return Some(Delivery::Broadcast(b)),
                    // Missed some while not reading: go on with the newest.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => {
                        return self.inbox.recv().await.map(Delivery::Message)
                    }
                },
            }
        }
    }

    /// Forgets broadcasts sent while the caller could not see them (they were in a door).
    pub fn skip_broadcasts(&mut self) {
        self.broadcasts = self.broadcasts.resubscribe();
    }

    /// The pool this node belongs to.
    pub fn manager(&self) -> &NodeManager {
        &self.manager
    }
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        self.manager.release(self.node);
    }
}

impl fmt::Debug for NodeGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeGuard")
            .field("node", &self.node)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terminal::Charset;

    fn request(peer: &str) -> NodeRequest {
        NodeRequest {
            transport: TransportKind::Telnet,
            peer: peer.into(),
            caps: Caps::for_charset(Charset::Ansi),
            line_bps: None,
        }
    }

    #[test]
    fn hands_out_lowest_free_node_and_frees_on_drop() {
        let nodes = NodeManager::new(3);
        let a = nodes.try_acquire(request("a")).unwrap();
        let b = nodes.try_acquire(request("b")).unwrap();
        let c = nodes.try_acquire(request("c")).unwrap();
        assert_eq!((a.number(), b.number(), c.number()), (1, 2, 3));
        assert!(nodes.try_acquire(request("d")).is_none(), "all lines busy");
        drop(b);
        assert_eq!(nodes.in_use(), 2);
        let d = nodes.try_acquire(request("d")).unwrap();
        assert_eq!(d.number(), 2);
        assert_eq!(nodes.status(2).unwrap().peer, "d");
    }

    #[test]
    fn registry_tracks_user_activity_and_caps() {
        let nodes = NodeManager::new(2);
        let guard = nodes.try_acquire(request("x")).unwrap();
        guard.set_user("Gordon");
        guard.set_activity(Activity::InDoor("NuggetNet".into()));
        guard.set_caps(Caps::for_charset(Charset::Atascii));
        let snap = nodes.snapshot();
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].user.as_deref(), Some("Gordon"));
        assert_eq!(snap[0].activity.to_string(), "in door NuggetNet");
        assert_eq!(snap[0].caps.width, 40);
        drop(guard);
        assert!(nodes.snapshot().is_empty());
        assert!(nodes.status(1).is_none());
    }

    #[tokio::test]
    async fn messages_reach_the_node_and_errors_are_typed() {
        let nodes = NodeManager::new(2);
        let mut one = nodes.try_acquire(request("one")).unwrap();
        let message = NodeMessage {
            from_node: 2,
            from_user: "Bud".into(),
            text: "buy low".into(),
        };
        nodes.send_message(1, message.clone()).unwrap();
        assert_eq!(one.recv().await, Some(Delivery::Message(message.clone())));
        assert_eq!(
            nodes.send_message(2, message.clone()),
            Err(SendError::NodeFree(2))
        );
        assert_eq!(
            nodes.send_message(0, message.clone()),
            Err(SendError::NoSuchNode(0))
        );
        assert_eq!(
            nodes.send_message(9, message.clone()),
            Err(SendError::NoSuchNode(9))
        );
        for _ in 0..INBOX_CAPACITY {
            nodes.send_message(1, message.clone()).unwrap();
        }
        assert_eq!(nodes.send_message(1, message), Err(SendError::InboxFull(1)));
    }

    #[test]
    fn a_large_pool_is_cheap() {
        let nodes = NodeManager::new(u16::MAX);
        let guards: Vec<_> = (0..1000)
            .map(|i| nodes.try_acquire(request(&i.to_string())).unwrap())
            .collect();
        assert_eq!(nodes.in_use(), 1000);
        assert_eq!(guards.last().unwrap().number(), 1000);
    }
}
