//! Turns between the service's background writers on SQLite: the sweep's claimer and
//! recorders, and the outbox dispatcher.
//!
//! SQLite lets one transaction write at a time. A writer that finds the database locked waits
//! in SQLite's busy handler, which sleeps in steps of up to 100 ms without being woken when the
//! lock frees: the claimer then stalls the checks, the recorder the claimer, or the dispatcher
//! all of them. Taking turns here hands the lock over the moment it is free. A turn is taken
//! before a pooled connection is, so no one holds a connection while waiting for a turn.
//! PostgreSQL locks rows, so there everyone writes at once and a turn is nothing.

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

#[derive(Clone)]
pub struct WriteTurns(Option<Arc<Mutex<()>>>);

impl WriteTurns {
    pub fn for_database(db: &sea_orm::DatabaseConnection) -> Self {
        let sqlite = db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite;
        WriteTurns(sqlite.then(|| Arc::new(Mutex::new(()))))
    }

    /// Waits for this writer's turn; it lasts until the guard is dropped.
    pub async fn take(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.0 {
            Some(turns) => Some(turns.lock().await),
            None => None,
        }
    }
}
