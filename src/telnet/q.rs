//! The RFC 1143 "Q method" for one side of one telnet option.
//!
//! Each option has two independent sides: *us* (our side: we send WILL/WONT and receive DO/DONT)
//! and *him* (the peer's side: we send DO/DONT and receive WILL/WONT). Both follow the same table;
//! this module states it once in terms of [`Reply::Enable`] and [`Reply::Disable`], and the codec
//! maps those to DO/DONT for *him* and to WILL/WONT for *us*.
//!
//! The Q method is what keeps negotiation from looping: a request to enter a state the option is
//! already in is never acknowledged, and an acknowledgement of our own request is never answered.
//!
//! **Invariant:** an option is on only in [`QState::Yes`]; nothing here performs I/O.

/// The negotiation state of one side of one option (RFC 1143 §7), with the one-bit queue folded
/// into the WANTNO and WANTYES states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QState {
    /// The option is off and nothing is pending.
    #[default]
    No,
    /// The option is on.
    Yes,
    /// We asked to disable it and wait for the answer; the queue is empty.
    WantNoEmpty,
    /// We asked to disable it, and then asked to enable it again once the answer arrives.
    WantNoOpposite,
    /// We asked to enable it and wait for the answer; the queue is empty.
    WantYesEmpty,
    /// We asked to enable it, and then asked to disable it again once the answer arrives.
    WantYesOpposite,
}

/// What the Q method wants sent to the peer for the side it manages.
///
/// For the peer's side (*him*) `Enable` is DO and `Disable` is DONT; for our side (*us*) `Enable`
/// is WILL and `Disable` is WONT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Send DO (him) or WILL (us).
    Enable,
    /// Send DONT (him) or WONT (us).
    Disable,
}

impl QState {
    /// Whether the option is on; only [`QState::Yes`] counts.
    pub fn is_on(self) -> bool {
        self == QState::Yes
    }

    /// The peer sent WILL (for *him*) or DO (for *us*). `accept` says whether we agree to the option
    /// being on; it only matters when the option is off and the peer starts the change.
    pub fn receive_enable(&mut self, accept: bool) -> Option<Reply> {
        let (next, reply) = match *self {
            QState::No if accept => (QState::Yes, Some(Reply::Enable)),
            QState::No => (QState::No, Some(Reply::Disable)),
            // Already on: this is the loop breaker, so nothing is sent.
            QState::Yes => (QState::Yes, None),
            // Our disable request was answered by an enable: an error the RFC resolves this way.
            QState::WantNoEmpty => (QState::No, None),
            QState::WantNoOpposite => (QState::Yes, None),
            // Our enable request was accepted.
            QState::WantYesEmpty => (QState::Yes, None),
            QState::WantYesOpposite => (QState::WantNoEmpty, Some(Reply::Disable)),
        };
        *self = next;
        reply
    }

    /// The peer sent WONT (for *him*) or DONT (for *us*).
    pub fn receive_disable(&mut self) -> Option<Reply> {
        let (next, reply) = match *self {
            // Already off: never answer a refusal of something that is not on.
            QState::No => (QState::No, None),
            QState::Yes => (QState::No, Some(Reply::Disable)),
            QState::WantNoEmpty => (QState::No, None),
            QState::WantNoOpposite => (QState::WantYesEmpty, Some(Reply::Enable)),
            // Our enable request was refused.
            QState::WantYesEmpty => (QState::No, None),
            QState::WantYesOpposite => (QState::No, None),
        };
        *self = next;
        reply
    }

    /// We want the option on. Returns the request to send, if one is needed now.
    pub fn ask_enable(&mut self) -> Option<Reply> {
        let (next, reply) = match *self {
            QState::No => (QState::WantYesEmpty, Some(Reply::Enable)),
            QState::WantNoEmpty => (QState::WantNoOpposite, None),
            QState::WantYesOpposite => (QState::WantYesEmpty, None),
            other => (other, None),
        };
        *self = next;
        reply
    }

    /// We want the option off. Returns the request to send, if one is needed now.
    pub fn ask_disable(&mut self) -> Option<Reply> {
        let (next, reply) = match *self {
            QState::Yes => (QState::WantNoEmpty, Some(Reply::Disable)),
            QState::WantYesEmpty => (QState::WantYesOpposite, None),
            QState::WantNoOpposite => (QState::WantNoEmpty, None),
            other => (other, None),
        };
        *self = next;
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::QState::*;
    use super::Reply::{Disable, Enable};
    use super::*;

    #[test]
    fn receive_enable_follows_the_rfc_1143_table() {
        // (state, accept, next state, reply)
        let rows = [
            (No, true, Yes, Some(Enable)),
            (No, false, No, Some(Disable)),
            (Yes, true, Yes, None),
            (Yes, false, Yes, None),
            (WantNoEmpty, true, No, None),
            (WantNoOpposite, true, Yes, None),
            (WantYesEmpty, true, Yes, None),
            (WantYesEmpty, false, Yes, None),
            (WantYesOpposite, true, WantNoEmpty, Some(Disable)),
        ];
        for (state, accept, next, reply) in rows {
            let mut q = state;
            assert_eq!(q.receive_enable(accept), reply, "{state:?} accept={accept}");
            assert_eq!(q, next, "{state:?} accept={accept}");
        }
    }

    #[test]
    fn receive_disable_follows_the_rfc_1143_table() {
        let rows = [
            (No, No, None),
            (Yes, No, Some(Disable)),
            (WantNoEmpty, No, None),
            (WantNoOpposite, WantYesEmpty, Some(Enable)),
            (WantYesEmpty, No, None),
            (WantYesOpposite, No, None),
        ];
        for (state, next, reply) in rows {
            let mut q = state;
            assert_eq!(q.receive_disable(), reply, "{state:?}");
            assert_eq!(q, next, "{state:?}");
        }
    }

    #[test]
    fn asking_follows_the_rfc_1143_table() {
        let enable = [
            (No, WantYesEmpty, Some(Enable)),
            (Yes, Yes, None),
            (WantNoEmpty, WantNoOpposite, None),
            (WantNoOpposite, WantNoOpposite, None),
            (WantYesEmpty, WantYesEmpty, None),
            (WantYesOpposite, WantYesEmpty, None),
        ];
        for (state, next, reply) in enable {
            let mut q = state;
            assert_eq!(q.ask_enable(), reply, "enable from {state:?}");
            assert_eq!(q, next, "enable from {state:?}");
        }
        let disable = [
            (No, No, None),
            (Yes, WantNoEmpty, Some(Disable)),
            (WantNoEmpty, WantNoEmpty, None),
            (WantNoOpposite, WantNoEmpty, None),
            (WantYesEmpty, WantYesOpposite, None),
            (WantYesOpposite, WantYesOpposite, None),
        ];
        for (state, next, reply) in disable {
            let mut q = state;
            assert_eq!(q.ask_disable(), reply, "disable from {state:?}");
            assert_eq!(q, next, "disable from {state:?}");
        }
    }

    #[test]
    fn an_acknowledgement_is_never_acknowledged() {
        let mut q = QState::No;
        assert_eq!(q.ask_enable(), Some(Enable));
        assert_eq!(q.receive_enable(true), None);
        assert!(q.is_on());
        // A repeat of the same acknowledgement is still silent.
        assert_eq!(q.receive_enable(true), None);
        assert_eq!(q.ask_disable(), Some(Disable));
        assert_eq!(q.receive_disable(), None);
        assert_eq!(q.receive_disable(), None);
        assert!(!q.is_on());
    }
}
