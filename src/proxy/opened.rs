//! Connections the proxy opened lately, their secrets decrypted, kept a few seconds by id so a
//! busy runner's calls neither read the row nor open the sealed blob every time.
//!
//! Only connections whose credentials are all in their fields are kept (API key, basic,
//! custom): an OAuth connection's access token is read afresh for every call anyway, and its
//! row changes at every refresh. Whatever changes a connection (an edit, a delete, a status
//! change, a reauthorization) publishes a connection event through the outbox, which evicts it
//! here on every instance within milliseconds; the proxy also evicts at once a connection whose
//! provider refused it. When an event may have been missed (the PostgreSQL listener
//! reconnecting, this receiver lagging) everything is evicted, and what went unnoticed lives at
//! most `TTL`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;

use crate::catalog::FormValues;
use crate::domain::{Connection, ConnectionId};
use crate::events::{EventBus, Invalidation};

/// How long an entry is trusted without a word from the event bus.
const TTL: Duration = Duration::from_secs(5);
/// Past this many entries, expired ones go, and if none had, all of them.
const MAX_ENTRIES: usize = 10_000;

/// A connection as read, and its fields with the secrets opened.
pub struct Opened {
    pub connection: Arc<Connection>,
    pub form: Arc<FormValues>,
}

#[derive(Default)]
pub struct OpenedConnections {
    entries: Mutex<HashMap<ConnectionId, (Arc<Opened>, Instant)>>,
    /// Moves on every eviction: a read that began before one is not kept (see `keep`).
    generation: AtomicU64,
}

impl OpenedConnections {
    /// An empty cache that follows the connection events of `events` until the bus closes.
    pub fn start(events: &EventBus) -> Arc<Self> {
        let cache = Arc::new(OpenedConnections::default());
        tokio::spawn(follow(events.clone(), cache.clone()));
        cache
    }

    pub fn get(&self, id: ConnectionId) -> Option<Arc<Opened>> {
        let mut entries = self.lock();
        match entries.get(&id) {
            Some((opened, at)) if at.elapsed() < TTL => Some(opened.clone()),
            Some(_) => {
                entries.remove(&id);
                None
            }
            None => None,
        }
    }

    /// What to hand back to `keep` after reading the connection.
    pub fn ticket(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps `opened`, unless something was evicted since `ticket` was taken: the read may
    /// predate the change that caused it.
    pub fn keep(&self, ticket: u64, opened: Arc<Opened>) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) != ticket {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, at)| at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(opened.connection.id, (opened, Instant::now()));
    }

    pub fn forget(&self, id: ConnectionId) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(&id);
    }

    pub fn clear(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// The map holds plain data that a panicking holder cannot leave half-changed.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConnectionId, (Arc<Opened>, Instant)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn follow(events: EventBus, cache: Arc<OpenedConnections>) {
    let mut changes = events.invalidations();
    let mut closing = events.closed_signal();
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(Invalidation::Connection(id)) => cache.forget(id),
                Ok(Invalidation::Access(_)) => {}
                Ok(Invalidation::Everything) | Err(RecvError::Lagged(_)) => cache.clear(),
                Err(RecvError::Closed) => return,
            },
            _ = closing.changed() => return,
        }
    }
}
