//! How many GraphQL sockets are open, in all and per caller.
//!
//! A socket stays open for as long as its client answers pings, so sockets are what a hostile or
//! broken client piles up: a reconnect loop that never closes the old socket, a script opening
//! them by the thousand. Each holds a file descriptor, and a process out of descriptors can no
//! longer reach its database or a provider. So an instance serves at most
//! `PLUGBOARD_MAX_SOCKETS` at once (a new upgrade is answered `503`), and one caller at most
//! `PLUGBOARD_MAX_SOCKETS_PER_CALLER` (its next `connection_init` is refused), so one leaked
//! token cannot take the sockets of everyone else.
//!
//! A slot is taken when a socket opens (in all) and when its `connection_init` is accepted (per
//! caller), and goes back when the socket closes: the slots are values the socket owns.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::domain::{Principal, TokenId, UserId};

/// Who a socket counts against: a token, a user signed in with the identity provider's JWT (no
/// token of ours), or, for a socket without a token, the address it came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SocketHolder {
    Token(TokenId),
    User(UserId),
    Address(IpAddr),
    /// An anonymous socket whose peer address is unknown (not over TCP).
    Unaddressed,
}

impl SocketHolder {
    pub fn of(principal: Option<&Principal>, peer: Option<IpAddr>) -> Self {
        match principal {
            Some(principal) => match (principal.token_id(), principal.user_id()) {
                (Some(token_id), _) => SocketHolder::Token(token_id),
                (None, Some(user_id)) => SocketHolder::User(user_id),
                (None, None) => SocketHolder::Unaddressed,
            },
            None => peer.map_or(SocketHolder::Unaddressed, SocketHolder::Address),
        }
    }
}

/// The sockets of one instance; cloned into every worker.
#[derive(Clone)]
pub struct SocketSlots {
    counts: Arc<Counts>,
}

struct Counts {
    max_open: usize,
    max_per_holder: usize,
    open: AtomicUsize,
    per_holder: Mutex<HashMap<SocketHolder, usize>>,
}

impl Counts {
    fn per_holder(&self) -> MutexGuard<'_, HashMap<SocketHolder, usize>> {
        self.per_holder.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SocketSlots {
    pub fn new(max_open: usize, max_per_holder: usize) -> Self {
        SocketSlots {
            counts: Arc::new(Counts {
                max_open,
                max_per_holder,
                open: AtomicUsize::new(0),
                per_holder: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn max_open(&self) -> usize {
        self.counts.max_open
    }

    pub fn max_per_holder(&self) -> usize {
        self.counts.max_per_holder
    }

    /// Sockets open now.
    pub fn open(&self) -> usize {
        self.counts.open.load(Ordering::Relaxed)
    }

    /// A slot for one more socket, or none when the instance serves its most already.
    pub fn take_open(&self) -> Option<OpenSlot> {
        let counts = &self.counts;
        counts
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < counts.max_open).then_some(open + 1)
            })
            .ok()?;
        Some(OpenSlot { counts: counts.clone() })
    }

    /// A slot for one more socket of `holder`, or none when it holds its most already.
    pub fn take_for(&self, holder: SocketHolder) -> Option<HolderSlot> {
        let mut per_holder = self.counts.per_holder();
        let held = per_holder.entry(holder.clone()).or_insert(0);
        if *held >= self.counts.max_per_holder {
            return None;
        }
        *held += 1;
        Some(HolderSlot { counts: self.counts.clone(), holder })
    }
}

/// One open socket's place in the instance's count; given back when dropped.
pub struct OpenSlot {
    counts: Arc<Counts>,
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.counts.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One socket's place in its holder's count; given back when dropped.
pub struct HolderSlot {
    counts: Arc<Counts>,
    holder: SocketHolder,
}

impl Drop for HolderSlot {
    fn drop(&mut self) {
        let mut per_holder = self.counts.per_holder();
        if let Some(held) = per_holder.get_mut(&self.holder) {
            *held -= 1;
            if *held == 0 {
                per_holder.remove(&self.holder);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::{SocketHolder, SocketSlots};

    #[test]
    fn the_instance_serves_its_most_and_a_closed_socket_frees_its_slot() {
        let slots = SocketSlots::new(2, 10);
        let first = slots.take_open().expect("room for one");
        let _second = slots.take_open().expect("room for two");
        assert!(slots.take_open().is_none(), "a third is refused");
        assert_eq!(slots.open(), 2);
        drop(first);
        assert_eq!(slots.open(), 1);
        assert!(slots.take_open().is_some(), "a closed socket's slot is free again");
    }

    #[test]
    fn each_holder_has_its_own_count_and_forgets_it_at_zero() {
        let slots = SocketSlots::new(100, 2);
        let here = SocketHolder::Address(Ipv4Addr::new(10, 0, 0, 1).into());
        let there = SocketHolder::Address(Ipv4Addr::new(10, 0, 0, 2).into());
        let first = slots.take_for(here.clone()).unwrap();
        let second = slots.take_for(here.clone()).unwrap();
        assert!(slots.take_for(here.clone()).is_none(), "a holder's third is refused");
        assert!(slots.take_for(there.clone()).is_some(), "another holder is not");
        drop(first);
        let third = slots.take_for(here.clone()).expect("a closed socket's slot is free again");
        drop((second, third));
        assert!(slots.counts.per_holder().is_empty(), "holders without sockets are not kept");
    }
}
