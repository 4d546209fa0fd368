//! Forgetting finished deliveries once they are older than the retention
//! (`PLUGBOARD_WEBHOOK_RETENTION_DAYS`), so the delivery log does not grow for ever. Pending
//! deliveries are never forgotten.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::state::AppState;
use crate::store;

/// How often finished deliveries past the retention are forgotten; the first time at start.
const EVERY: Duration = Duration::from_secs(3600);

/// Forgets the deliveries that finished before the retention; answers how many. A plain
/// function: the loop below calls it, and so do tests.
pub async fn forget_finished_deliveries(state: &AppState) -> anyhow::Result<u64> {
    let cutoff = Utc::now() - chrono::Duration::from_std(state.config.webhook_retention)?;
    let forgotten = store::purge_in_batches(|limit| async move {
        let _turn = state.background_writes.take().await;
        store::webhooks::purge_finished_before(&state.db, cutoff, limit).await
    })
    .await?;
    if forgotten > 0 {
        tracing::info!(forgotten, "forgot webhook deliveries past their retention");
    }
    Ok(forgotten)
}

/// Runs `forget_finished_deliveries` every `EVERY` until the service closes.
pub async fn forget_until_closed(state: AppState, mut closing: watch::Receiver<bool>) {
    loop {
        if *closing.borrow() {
            return;
        }
        if let Err(err) = forget_finished_deliveries(&state).await {
            tracing::warn!(
                error = format!("{err:#}"),
                "could not forget old webhook deliveries; retrying in an hour"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = closing.changed() => {}
        }
    }
}
