//! The audit of proxied calls: each call becomes one compact row, written in batches by a
//! background task so a busy runner costs one insert per batch rather than one per call (a
//! batch waits briefly to fill, see `LINGER`), and rows older than the retention are forgotten
//! as it goes. Records still queued when the process stops are lost; the call itself has
//! already been answered by then.

use std::time::Duration;

use chrono::Utc;
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;

use crate::domain::ApiCall;
use crate::store;

/// Calls waiting to be written before callers start waiting for the writer.
const QUEUE: usize = 8_192;
/// Most rows written in one statement.
const BATCH: usize = 500;
/// How long the writer waits for a batch to fill; a call's row appears at most this late.
const LINGER: Duration = Duration::from_millis(50);
/// How often old rows are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<ApiCall>,
}

/// Taken exclusively while a batch is written, and shared by the proxy's token renewals: a
/// renewal holds a transaction open across its call to the token endpoint, and on SQLite that
/// transaction fails to commit (losing a rotated refresh token) if another write commits
/// meanwhile. Calls never wait for each other on it, only for a batch being written.
pub type WriteTurn = std::sync::Arc<tokio::sync::RwLock<()>>;

impl Recorder {
    /// Starts the writer on the current runtime; it writes only in its `turn`.
    pub fn start(db: DatabaseConnection, retention: Duration, turn: WriteTurn) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(db, pending, retention, turn));
        Recorder { queue }
    }

    pub async fn record(&self, call: ApiCall) {
        if self.queue.send(call).await.is_err() {
            tracing::warn!("the API call audit writer has stopped; a call went unrecorded");
        }
    }
}

async fn write_batches(
    db: DatabaseConnection,
    mut pending: mpsc::Receiver<ApiCall>,
    retention: Duration,
    turn: WriteTurn,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut next_purge = tokio::time::Instant::now();
    while pending.recv_many(&mut batch, BATCH).await > 0 {
        gather(&mut pending, &mut batch).await;
        {
            let _turn = turn.write().await;
            if let Err(err) = store::api_calls::record_many(&db, &batch).await {
                tracing::error!(error = %err, calls = batch.len(), "could not record proxied calls");
            }
        }
        batch.clear();
        if tokio::time::Instant::now() >= next_purge {
            next_purge = tokio::time::Instant::now() + PURGE_EVERY;
            purge(&db, retention, &turn).await;
        }
    }
}

/// Waits up to `LINGER` for the batch to fill: every batch is a commit (on SQLite a sync to
/// disk), and a busy proxy would otherwise write a few rows at a time, hundreds of times a second.
async fn gather(pending: &mut mpsc::Receiver<ApiCall>, batch: &mut Vec<ApiCall>) {
    let deadline = tokio::time::Instant::now() + LINGER;
    while batch.len() < BATCH {
        let wanted = BATCH - batch.len();
        match tokio::time::timeout_at(deadline, pending.recv_many(batch, wanted)).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Forgets calls older than the retention, a batch per write turn (token renewals wait for the
/// turn, so none waits for the whole purge); answers how many went. A failure is logged, and
/// the rest waits for the next purge.
pub async fn purge(db: &DatabaseConnection, retention: Duration, turn: &WriteTurn) -> u64 {
    let cutoff = Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(30));
    let purged = store::purge_in_batches(|limit| async move {
        let _turn = turn.write().await;
        store::api_calls::purge_before(db, cutoff, limit).await
    })
    .await;
    match purged {
        Ok(0) => 0,
        Ok(purged) => {
            tracing::info!(purged, "forgot proxied calls past their retention");
            purged
        }
        Err(err) => {
            tracing::error!(error = %err, "could not purge old proxied calls; retrying at the next purge");
            0
        }
    }
}

/// A page of a connection's calls the caller can see, newest first, before the call `before`.
pub async fn calls(
    state: &crate::state::AppState,
    principal: &crate::domain::Principal,
    connection: &crate::domain::Connection,
    before: Option<uuid::Uuid>,
    limit: u64,
) -> crate::error::AppResult<Vec<ApiCall>> {
    crate::access::cached_team_access(state, principal, connection.team_id).await?;
    Ok(store::api_calls::list(&state.db, connection.team_id, connection.id, before, limit).await?)
}
