//! One sweep: claim due connections in batches, check them with bounded concurrency and a
//! per-app pace, and record the results in batches. A plain async function the cron tick calls
//! and tests call directly. A failing connection is logged and the sweep goes on.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use futures_util::StreamExt;
use futures_util::stream;

use super::rate::AppPace;
use crate::connections::{self, CheckedConnection};
use crate::domain::{Actor, ActorKind, Connection};
use crate::state::AppState;
use crate::store;

/// What a sweep did; logged after every tick.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub claimed: u64,
    pub recorded: u64,
    /// Results dropped because the connection changed or was deleted during the check.
    pub dropped: u64,
    /// Connections that could not be checked at all (logged), postponed by one interval.
    pub skipped: u64,
}

/// Checks every due connection, until none is due or `stop` is set.
pub async fn run_due_checks(state: &AppState) -> anyhow::Result<SweepReport> {
    run_due_checks_until(state, &AtomicBool::new(false)).await
}

#[tracing::instrument(skip_all, fields(sweep = %uuid::Uuid::now_v7()))]
pub async fn run_due_checks_until(state: &AppState, stop: &AtomicBool) -> anyhow::Result<SweepReport> {
    let config = &state.config;
    let pace = AppPace::per_second(config.app_rate_limit);
    let actor = Actor { kind: ActorKind::System, id: None, label: "scheduler".into() };
    let mut report = SweepReport::default();
    while !stop.load(Ordering::Relaxed) {
        let claim = format!("sweep-{}", uuid::Uuid::now_v7());
        let now = Utc::now();
        let lease = chrono::Duration::from_std(config.check_lease).unwrap_or(chrono::Duration::minutes(5));
        let claimed =
            store::checks::claim_due(&state.db, &claim, now, now + lease, config.check_batch).await?;
        if claimed.is_empty() {
            break;
        }
        report.claimed += claimed.len() as u64;
        let results: Vec<Option<CheckedConnection>> = stream::iter(claimed)
            .map(|(connection, sealed)| check_one(state, &pace, connection, sealed))
            .buffer_unordered(config.check_concurrency)
            .collect()
            .await;
        let (checked, skipped): (Vec<_>, Vec<_>) = results.into_iter().partition(Option::is_some);
        report.skipped += skipped.len() as u64;
        let checked: Vec<CheckedConnection> = checked.into_iter().flatten().collect();
        for chunk in checked.chunks(WRITE_BATCH) {
            let written = connections::record_scheduled_checks(state, &actor, &claim, chunk).await?;
            report.recorded += written;
            report.dropped += chunk.len() as u64 - written;
        }
        // Whatever this claim still holds (skipped connections) goes back, postponed.
        store::checks::postpone_claimed(&state.db, &claim, Utc::now() + state.schedule.interval).await?;
    }
    tracing::info!(
        claimed = report.claimed,
        recorded = report.recorded,
        dropped = report.dropped,
        skipped = report.skipped,
        "sweep finished"
    );
    Ok(report)
}

/// Results written per transaction.
const WRITE_BATCH: usize = 100;

async fn check_one(
    state: &AppState,
    pace: &AppPace,
    connection: Connection,
    sealed: Option<Vec<u8>>,
) -> Option<CheckedConnection> {
    pace.wait(&connection.app_key).await;
    match connections::check_stored(state, &connection, sealed.as_deref()).await {
        Ok(check) => Some(CheckedConnection { connection, check }),
        Err(err) => {
            tracing::warn!(connection_id = %connection.id, app = %connection.app_key, error = %err, "could not check a connection; postponed");
            None
        }
    }
}
