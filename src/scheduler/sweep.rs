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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use futures_util::future::Either;
use futures_util::{FutureExt, StreamExt, future, stream};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::busy::retry_when_busy;
use super::rate::AppPace;
use crate::connections::{self, CheckedConnection};
use crate::domain::{
    Actor, AppTally, Connection, ConnectionId, DEGRADED_PROBES, DEGRADED_RECHECK_MINUTES, VerificationOutcome,
};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;
use crate::store::WriteTurns;
use crate::store::checks::BatchClaim;

/// What a sweep did; logged after every tick.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub claimed: u64,
    pub recorded: u64,
    /// Results dropped because the connection was deleted, or its claim taken over, during the check.
    pub dropped: u64,
    /// Connections that could not be checked at all (logged), postponed by one interval.
    pub skipped: u64,
    /// Connections of degraded apps left for later: only a few probes check such an app.
    pub deferred: u64,
}

/// Results written per transaction, at most: a few statements for the whole batch.
const RECORD_BATCH: usize = 500;

/// A claimed connection with its sealed secrets and the lease it was claimed under.
struct Claimed {
    connection: Connection,
    sealed: Option<Vec<u8>>,
    lease: uuid::Uuid,
}

/// Checks every due connection, until none is due or `stop` is set.
pub async fn run_due_checks(state: &AppState) -> anyhow::Result<SweepReport> {
    run_due_checks_until(state, &AtomicBool::new(false)).await
}

#[tracing::instrument(skip_all, fields(sweep = %uuid::Uuid::now_v7()))]
pub async fn run_due_checks_until(state: &AppState, stop: &AtomicBool) -> anyhow::Result<SweepReport> {
    // One token for the whole sweep: the leases it still holds at the end go back.
    let sweep = format!("sweep-{}", uuid::Uuid::now_v7());
    let batch = usize::try_from(state.config.check_batch).unwrap_or(usize::MAX).max(1);
    let (claimed_tx, claimed_rx) = mpsc::channel::<Claimed>(batch);
    let recorders = recorders_for(&state.db);
    // Room for a batch per recorder and one more, so checks keep running while batches are
    // being written.
    let (checked_tx, checked_rx) = mpsc::channel::<CheckedConnection>((recorders + 1) * RECORD_BATCH);
    let checked_rx = Arc::new(tokio::sync::Mutex::new(checked_rx));
    // Apps degraded when the sweep starts are checked through a few probes only.
    let degraded = store::app_health::degraded(&state.db).await?;
    let gate = ProbeGate::new(degraded.keys().cloned());
    let writes = state.background_writes.clone();
    // On tasks of their own, so recording uses another core while checks run.
    let recorders: Vec<_> = (0..recorders)
        .map(|_| {
            let record = record_all(state.clone(), writes.clone(), checked_rx.clone());
            tokio::spawn(record.in_current_span())
        })
        .collect();
    drop(checked_rx);
    let (claimed, swept) = tokio::join!(
        claim_all(state, &sweep, &writes, stop, claimed_tx),
        check_all(state, stop, &gate, claimed_rx, checked_tx)
    );
    let (mut recorded, mut dropped) = (0, 0);
    for recorder in recorders {
        let (written, stale) =
            recorder.await.map_err(|err| anyhow::anyhow!("the sweep's recorder failed: {err}"))??;
        recorded += written;
        dropped += stale;
    }
    let report = SweepReport {
        claimed: claimed?,
        recorded,
        dropped,
        skipped: swept.skipped.len() as u64,
        deferred: swept.deferred.len() as u64,
    };
    // Connections that could not be checked wait an interval, those of degraded apps a while;
    // any claimed ahead when `stop` was set are due again once the leases go back.
    let now = Utc::now();
    let next_check_at = now + state.schedule.interval;
    for ids in swept.skipped.chunks(RECORD_BATCH) {
        store::checks::postpone(&state.db, ids, now, next_check_at).await?;
    }
    let recheck_at = now + chrono::Duration::minutes(DEGRADED_RECHECK_MINUTES);
    for ids in swept.deferred.chunks(RECORD_BATCH) {
        store::checks::postpone(&state.db, ids, now, recheck_at).await?;
    }
    store::checks::release_leases(&state.db, &sweep).await?;
    super::incidents::assess(state, &degraded, swept.tallies).await;
    tracing::info!(
        claimed = report.claimed,
        recorded = report.recorded,
        dropped = report.dropped,
        skipped = report.skipped,
        deferred = report.deferred,
        "sweep finished"
    );
    Ok(report)
}

/// Claims due connections a batch at a time and passes them on, until none is due, `stop` is
/// set, or the checks stopped taking them. Answers how many it claimed.
async fn claim_all(
    state: &AppState,
    sweep: &str,
    writes: &WriteTurns,
    stop: &AtomicBool,
    claimed: mpsc::Sender<Claimed>,
) -> anyhow::Result<u64> {
    let config = &state.config;
    let lease_for = chrono::Duration::from_std(config.check_lease).unwrap_or(chrono::Duration::minutes(5));
    let mut total = 0;
    let postgres = state.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    while !stop.load(Ordering::Relaxed) {
        let lease = uuid::Uuid::now_v7();
        let claim = || {
            let now = Utc::now();
            BatchClaim { sweep, lease, now, expires_at: now + lease_for, limit: config.check_batch }
        };
        let batch = if postgres {
            // Claimed and read at once: only other claims wait while the rows are read.
            retry_when_busy("claim due connections", crate::error::is_busy, || {
                store::checks::claim_and_read_due(&state.db, claim())
            })
            .await?
        } else {
            claim_then_read(state, writes, claim).await?
        };
        if batch.is_empty() {
            break;
        }
        total += batch.len() as u64;
        for (connection, sealed) in batch {
            if claimed.send(Claimed { connection, sealed, lease }).await.is_err() {
                // The checks ended early; what was not sent is released at the end.
                return Ok(total);
            }
        }
    }
    Ok(total)
}

/// On SQLite: claims in a write turn, then reads what it claimed once the turn is given back,
/// so other writers need not wait while 500 rows are copied out.
async fn claim_then_read<'a>(
    state: &AppState,
    writes: &WriteTurns,
    claim: impl Fn() -> BatchClaim<'a>,
) -> anyhow::Result<Vec<(Connection, Option<Vec<u8>>)>> {
    let ids = retry_when_busy("claim due connections", crate::error::is_busy, || async {
        let _turn = writes.take().await;
        store::checks::claim_due(&state.db, claim()).await
    })
    .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let batch = retry_when_busy("read claimed connections", crate::error::is_busy, || {
        store::checks::read_claimed(&state.db, &ids)
    })
    .await?;
    Ok(batch)
}

/// What the checks of one sweep left behind besides their results.
#[derive(Default)]
struct Swept {
    /// Could not be checked at all.
    skipped: Vec<ConnectionId>,
    /// Of a degraded app, beyond its probes.
    deferred: Vec<ConnectionId>,
    /// What each app's checks found, for its health.
    tallies: HashMap<String, AppTally>,
}

/// One claimed connection's fate.
enum Fate {
    Checked(Box<CheckedConnection>),
    Skipped(ConnectionId),
    Deferred(ConnectionId),
}

/// Lets through only `DEGRADED_PROBES` connections of each degraded app per sweep.
struct ProbeGate {
    probes_left: Mutex<HashMap<String, u32>>,
}

impl ProbeGate {
    fn new(degraded_apps: impl Iterator<Item = String>) -> Self {
        ProbeGate { probes_left: Mutex::new(degraded_apps.map(|app| (app, DEGRADED_PROBES)).collect()) }
    }

    /// Whether a connection of `app` should wait instead of being checked now.
    fn defers(&self, app: &str) -> bool {
        let mut probes = self.probes_left.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match probes.get_mut(app) {
            Some(0) => true,
            Some(left) => {
                *left -= 1;
                false
            }
            None => false,
        }
    }
}

/// Checks claimed connections, `check_concurrency` at a time, and passes the results on.
/// Stops taking new ones when `stop` is set. Connections of degraded apps beyond their probes
/// are deferred unchecked.
async fn check_all(
    state: &AppState,
    stop: &AtomicBool,
    gate: &ProbeGate,
    claimed: mpsc::Receiver<Claimed>,
    checked: mpsc::Sender<CheckedConnection>,
) -> Swept {
    let pace = Arc::new(AppPace::per_second(state.config.app_rate_limit));
    let claimed =
        stream::unfold(
            claimed,
            |mut claimed| async move { claimed.recv().await.map(|next| (next, claimed)) },
        );
    let mut results = std::pin::pin!(
        claimed
            .take_while(|_| future::ready(!stop.load(Ordering::Relaxed)))
            .map(|claimed| {
                if gate.defers(&claimed.connection.app_key) {
                    Either::Left(future::ready(Fate::Deferred(claimed.connection.id)))
                } else {
                    Either::Right(spawn_check(state.clone(), pace.clone(), claimed).map(
                        |result| match result {
                            Ok(done) => Fate::Checked(Box::new(done)),
                            Err(id) => Fate::Skipped(id),
                        },
                    ))
                }
            })
            .buffer_unordered(state.config.check_concurrency)
    );
    let mut swept = Swept::default();
    while let Some(fate) = results.next().await {
        match fate {
            Fate::Checked(done) => {
                let tally = swept.tallies.entry(done.connection.app_key.clone()).or_default();
                tally.checked += 1;
                if done.check.verification.outcome == VerificationOutcome::ProviderUnavailable {
                    tally.transient += 1;
                    tally.last_error.clone_from(&done.check.verification.message);
                }
                if checked.send(*done).await.is_err() {
                    // The recorder failed; its error ends the sweep.
                    break;
                }
            }
            Fate::Skipped(id) => swept.skipped.push(id),
            Fate::Deferred(id) => swept.deferred.push(id),
        }
    }
    swept
}

/// Checks one connection on its own task, so the work of many checks (opening secrets, building
/// requests, reading answers) spreads over every worker thread instead of the sweep's one.
async fn spawn_check(
    state: AppState,
    pace: Arc<AppPace>,
    claimed: Claimed,
) -> Result<CheckedConnection, ConnectionId> {
    let id = claimed.connection.id;
    let app = claimed.connection.app_key.clone();
    let check = async move { check_one(&state, &pace, claimed).await };
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
    claimed: Claimed,
) -> Result<CheckedConnection, ConnectionId> {
    let Claimed { connection, sealed, lease } = claimed;
    pace.wait(&connection.app_key).await;
    match connections::check_stored(state, &connection, sealed.as_deref()).await {
        Ok(check) => Ok(CheckedConnection { connection, lease, check }),
        Err(err) => {
            tracing::warn!(connection_id = %connection.id, app = %connection.app_key, error = %err, "could not check a connection; postponed");
            Err(connection.id)
        }
    }
}

/// Recorders writing at once. PostgreSQL locks rows, and one sweep's batches hold different
/// connections, so several transactions commit side by side: one recorder at a time was what
/// held a PostgreSQL sweep back (checks waited for room to put their results). SQLite writes
/// one transaction at a time, so more recorders there would only wait for each other.
fn recorders_for(db: &sea_orm::DatabaseConnection) -> usize {
    match db.get_database_backend() {
        sea_orm::DatabaseBackend::Sqlite => 1,
        _ => POSTGRES_RECORDERS,
    }
}

/// Recorders on PostgreSQL: a few of the pool's connections, the rest left to requests.
const POSTGRES_RECORDERS: usize = 4;

/// A batch is worth its transaction from this many results: below it, the recorder waits up
/// to `RECORD_LINGER` for more. Each transaction costs several statements and a commit
/// whatever its size, and recorders taking whatever was waiting wrote 50 results a
/// transaction on average in the PostgreSQL sweep.
const RECORD_FILL: usize = RECORD_BATCH / 2;
const RECORD_LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// Receives the next batch of results into `batch`: what is waiting, and, when that is fewer
/// than `RECORD_FILL`, what arrives within `RECORD_LINGER`. Answers how many; 0 once every
/// check has ended.
async fn collect(
    checked: &mut mpsc::Receiver<CheckedConnection>,
    batch: &mut Vec<CheckedConnection>,
) -> usize {
    let mut received = checked.recv_many(batch, RECORD_BATCH).await;
    let deadline = tokio::time::Instant::now() + RECORD_LINGER;
    while received > 0 && batch.len() < RECORD_FILL {
        match tokio::time::timeout_at(deadline, checked.recv_many(batch, RECORD_BATCH - batch.len())).await {
            Ok(0) | Err(_) => break,
            Ok(more) => received += more,
        }
    }
    received
}

/// Records results as they arrive, a batch per transaction (see `collect`), taking turns with
/// other recorders to collect a batch. Answers how many were
/// recorded and how many dropped as stale.
async fn record_all(
    state: AppState,
    writes: WriteTurns,
    checked: Arc<tokio::sync::Mutex<mpsc::Receiver<CheckedConnection>>>,
) -> AppResult<(u64, u64)> {
    let actor = Actor::system("scheduler");
    let (mut recorded, mut dropped) = (0, 0);
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    loop {
        // The lock is held only while this recorder collects its batch.
        let received = collect(&mut *checked.lock().await, &mut batch).await;
        if received == 0 {
            break;
        }
        // The flows' look-ups are reads: done before this recorder's turn to write, so claims
        // and other writers do not wait for them.
        let assessed = retry_when_busy("assess a batch of checks", AppError::is_busy, || {
            connections::assess_scheduled_checks(&state, &batch)
        })
        .await?;
        let written = retry_when_busy("record a batch of checks", AppError::is_busy, || async {
            let _turn = writes.take().await;
            connections::record_assessed_checks(&state, &actor, &assessed).await
        })
        .await?;
        recorded += written;
        dropped += batch.len() as u64 - written;
        batch.clear();
    }
    Ok((recorded, dropped))
}
