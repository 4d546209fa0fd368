//! One sweep: a pipeline that claims due connections a batch ahead, checks them with bounded
//! concurrency and a per-app pace, and records results in batches while later checks are still
//! running. A plain async function the cron tick calls and tests call directly. A connection
//! that cannot be checked is logged and postponed, and the sweep goes on.
//!
//! ```text
//! claim (batch)  ──channel──▶  check (N at a time)  ──channel──▶  record (spawned, batches)
//! ```
//! Both channels are bounded, so memory stays at about two claimed batches however many
//! connections are due, and a slow database slows the checks instead of piling up results.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use futures_util::{StreamExt, future, stream};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::rate::AppPace;
use crate::connections::{self, CheckedConnection};
use crate::domain::{Actor, ActorKind, Connection, ConnectionId};
use crate::error::AppResult;
use crate::state::AppState;
use crate::store;

/// What a sweep did; logged after every tick.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub claimed: u64,
    pub recorded: u64,
    /// Results dropped because the connection was deleted, or its claim taken over, during the check.
    pub dropped: u64,
    /// Connections that could not be checked at all (logged), postponed by one interval.
    pub skipped: u64,
}

/// Results written per transaction, at most: a few statements for the whole batch.
const RECORD_BATCH: usize = 500;

/// A claimed connection with its sealed secrets.
type Claimed = (Connection, Option<Vec<u8>>);

/// Checks every due connection, until none is due or `stop` is set.
pub async fn run_due_checks(state: &AppState) -> anyhow::Result<SweepReport> {
    run_due_checks_until(state, &AtomicBool::new(false)).await
}

#[tracing::instrument(skip_all, fields(sweep = %uuid::Uuid::now_v7()))]
pub async fn run_due_checks_until(state: &AppState, stop: &AtomicBool) -> anyhow::Result<SweepReport> {
    // One claim token for the whole sweep: what it still holds at the end goes back.
    let claim = format!("sweep-{}", uuid::Uuid::now_v7());
    let batch = usize::try_from(state.config.check_batch).unwrap_or(usize::MAX).max(1);
    let (claimed_tx, claimed_rx) = mpsc::channel::<Claimed>(batch);
    // Room for two batches, so checks keep running while one batch is being written.
    let (checked_tx, checked_rx) = mpsc::channel::<CheckedConnection>(2 * RECORD_BATCH);
    // On its own task, so recording uses another core while checks run.
    let writes = WriteTurns::for_database(&state.db);
    let recorder =
        tokio::spawn(record_all(state.clone(), claim.clone(), writes.clone(), checked_rx).in_current_span());
    let (claimed, skipped) = tokio::join!(
        claim_all(state, &claim, &writes, stop, claimed_tx),
        check_all(state, stop, claimed_rx, checked_tx)
    );
    let (recorded, dropped) =
        recorder.await.map_err(|err| anyhow::anyhow!("the sweep's recorder failed: {err}"))??;
    let report = SweepReport { claimed: claimed?, recorded, dropped, skipped: skipped.len() as u64 };
    // Connections that could not be checked wait an interval; any still held (claimed ahead
    // when `stop` was set) go back as they were.
    let next_check_at = Utc::now() + state.schedule.interval;
    for ids in skipped.chunks(RECORD_BATCH) {
        store::checks::postpone(&state.db, &claim, ids, next_check_at).await?;
    }
    store::checks::release_claimed(&state.db, &claim).await?;
    tracing::info!(
        claimed = report.claimed,
        recorded = report.recorded,
        dropped = report.dropped,
        skipped = report.skipped,
        "sweep finished"
    );
    Ok(report)
}

/// Claims due connections a batch at a time and passes them on, until none is due, `stop` is
/// set, or the checks stopped taking them. Answers how many it claimed.
async fn claim_all(
    state: &AppState,
    claim: &str,
    writes: &WriteTurns,
    stop: &AtomicBool,
    claimed: mpsc::Sender<Claimed>,
) -> anyhow::Result<u64> {
    let config = &state.config;
    let lease = chrono::Duration::from_std(config.check_lease).unwrap_or(chrono::Duration::minutes(5));
    let mut total = 0;
    while !stop.load(Ordering::Relaxed) {
        let now = Utc::now();
        let batch = {
            let _turn = writes.take().await;
            store::checks::claim_due(&state.db, claim, now, now + lease, config.check_batch).await?
        };
        if batch.is_empty() {
            break;
        }
        total += batch.len() as u64;
        for connection in batch {
            if claimed.send(connection).await.is_err() {
                // The checks ended early; what was not sent is released at the end.
                return Ok(total);
            }
        }
    }
    Ok(total)
}

/// Checks claimed connections, `check_concurrency` at a time, and passes the results on.
/// Stops taking new ones when `stop` is set. Answers the connections that could not be checked.
async fn check_all(
    state: &AppState,
    stop: &AtomicBool,
    claimed: mpsc::Receiver<Claimed>,
    checked: mpsc::Sender<CheckedConnection>,
) -> Vec<ConnectionId> {
    let pace = Arc::new(AppPace::per_second(state.config.app_rate_limit));
    let claimed =
        stream::unfold(
            claimed,
            |mut claimed| async move { claimed.recv().await.map(|next| (next, claimed)) },
        );
    let mut results = std::pin::pin!(
        claimed
            .take_while(|_| future::ready(!stop.load(Ordering::Relaxed)))
            .map(|(connection, sealed)| spawn_check(state.clone(), pace.clone(), connection, sealed))
            .buffer_unordered(state.config.check_concurrency)
    );
    let mut skipped = Vec::new();
    while let Some(result) = results.next().await {
        match result {
            Ok(done) => {
                if checked.send(done).await.is_err() {
                    // The recorder failed; its error ends the sweep.
                    break;
                }
            }
            Err(id) => skipped.push(id),
        }
    }
    skipped
}

/// Checks one connection on its own task, so the work of many checks (opening secrets, building
/// requests, reading answers) spreads over every worker thread instead of the sweep's one.
async fn spawn_check(
    state: AppState,
    pace: Arc<AppPace>,
    connection: Connection,
    sealed: Option<Vec<u8>>,
) -> Result<CheckedConnection, ConnectionId> {
    let id = connection.id;
    let app = connection.app_key.clone();
    let check = async move { check_one(&state, &pace, connection, sealed).await };
    match tokio::spawn(check.in_current_span()).await {
        Ok(result) => result,
        Err(err) => {
            tracing::error!(connection_id = %id, app = %app, error = %err, "a check failed unexpectedly; postponed");
            Err(id)
        }
    }
}

async fn check_one(
    state: &AppState,
    pace: &AppPace,
    connection: Connection,
    sealed: Option<Vec<u8>>,
) -> Result<CheckedConnection, ConnectionId> {
    pace.wait(&connection.app_key).await;
    match connections::check_stored(state, &connection, sealed.as_deref()).await {
        Ok(check) => Ok(CheckedConnection { connection, check }),
        Err(err) => {
            tracing::warn!(connection_id = %connection.id, app = %connection.app_key, error = %err, "could not check a connection; postponed");
            Err(connection.id)
        }
    }
}

/// Records results as they arrive, as many as are waiting (up to `RECORD_BATCH`) per
/// transaction. Answers how many were recorded and how many dropped as stale.
async fn record_all(
    state: AppState,
    claim: String,
    writes: WriteTurns,
    mut checked: mpsc::Receiver<CheckedConnection>,
) -> AppResult<(u64, u64)> {
    let actor = Actor { kind: ActorKind::System, id: None, label: "scheduler".into() };
    let (mut recorded, mut dropped) = (0, 0);
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while checked.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let written = {
            let _turn = writes.take().await;
            connections::record_scheduled_checks(&state, &actor, &claim, &batch).await?
        };
        recorded += written;
        dropped += batch.len() as u64 - written;
        batch.clear();
    }
    Ok((recorded, dropped))
}

/// Turns between the sweep's two writers, the claimer and the recorder, on SQLite.
///
/// SQLite lets one transaction write at a time. A writer that finds the database locked waits
/// in SQLite's busy handler, which sleeps in steps of up to 100 ms without being woken when the
/// lock frees: the claimer then stalls the checks, or the recorder the claimer. Taking turns
/// here hands the lock over the moment it is free. PostgreSQL locks rows, so there both write
/// at once.
#[derive(Clone)]
struct WriteTurns(Option<Arc<tokio::sync::Mutex<()>>>);

impl WriteTurns {
    fn for_database(db: &sea_orm::DatabaseConnection) -> Self {
        let sqlite = db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite;
        WriteTurns(sqlite.then(|| Arc::new(tokio::sync::Mutex::new(()))))
    }

    async fn take(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.0 {
            Some(turns) => Some(turns.lock().await),
            None => None,
        }
    }
}
