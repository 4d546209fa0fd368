//! The access cache's two background tasks: evicting on every access change the event bus
//! carries, and writing queued token uses to `last_used_at` in one statement a second.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::broadcast::error::RecvError;

use crate::access_cache::AccessCache;
use crate::events::{EventBus, Invalidation};

/// How often queued uses are written. A token's `last_used_at` lags its use by at most this
/// (plus the minute for which repeated uses are not recorded).
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Rows per UPDATE: a bound on the statement's parameters.
const FLUSH_BATCH: usize = 500;

/// Starts both tasks on the current runtime; they end when the bus closes (the last uses
/// written first).
pub fn start(db: DatabaseConnection, events: &EventBus, cache: Arc<AccessCache>) {
    tokio::spawn(evict_on_changes(events.clone(), cache.clone()));
    tokio::spawn(flush_uses_until_closed(db, events.closed_signal(), cache));
}

async fn evict_on_changes(events: EventBus, cache: Arc<AccessCache>) {
    let mut changes = events.invalidations();
    let mut closing = events.closed_signal();
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(Invalidation::Access(change)) => super::forget(&cache, &change),
                Ok(Invalidation::Connection(_)) => {}
                // The PostgreSQL listener reconnected, or this receiver fell behind: some change
                // may have gone unseen.
                Ok(Invalidation::Everything) | Err(RecvError::Lagged(_)) => cache.clear(),
                Err(RecvError::Closed) => return,
            },
            _ = closing.changed() => return,
        }
    }
}

async fn flush_uses_until_closed(
    db: DatabaseConnection,
    mut closing: tokio::sync::watch::Receiver<bool>,
    cache: Arc<AccessCache>,
) {
    loop {
        let closed = tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => false,
            _ = closing.changed() => true,
        };
        flush_uses(&db, &cache).await;
        if closed || *closing.borrow() {
            return;
        }
    }
}

/// Writes the uses queued so far; those that fail to write are kept for the next round. A plain
/// function, so a test or the shutdown can call it.
pub async fn flush_uses(db: &DatabaseConnection, cache: &AccessCache) {
    let uses = cache.take_uses();
    for batch in uses.chunks(FLUSH_BATCH) {
        if let Err(err) = crate::store::tokens::record_uses(db, batch).await {
            tracing::warn!(error = %err, "could not record token uses; retrying shortly");
            cache.return_uses(batch.to_vec());
        }
    }
}
