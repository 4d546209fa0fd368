//! App-level incidents, judged once per sweep from what the sweep saw of each app: many
//! transient failures that are most of an app's checks degrade it; most of its probes answering
//! again recover it. Each change is written with its webhooks (one per team using the app, not
//! one per connection) in one transaction, then announced to the teams' subscribers. A failure
//! here is logged; the sweep's results stand.

use std::collections::HashMap;

use chrono::Utc;

use crate::domain::{AppHealth, AppHealthStatus, AppTally};
use crate::error::AppResult;
use crate::events::AppHealthEvent;
use crate::state::AppState;
use crate::{store, webhooks};

/// The health of an app, as the last sweeps of every instance judged it.
pub async fn app_health(state: &AppState, app_key: &str) -> AppResult<AppHealth> {
    Ok(store::app_health::get(&state.db, app_key).await?)
}

/// Degrades or recovers the apps whose tallies say so. `degraded` is what was degraded when the
/// sweep started.
pub(super) async fn assess(
    state: &AppState,
    degraded: &HashMap<String, AppHealth>,
    tallies: HashMap<String, AppTally>,
) {
    for (app, tally) in tallies {
        let was_degraded = degraded.contains_key(&app);
        let change = if !was_degraded && tally.degrades() {
            Some(AppHealthStatus::Degraded)
        } else if was_degraded && tally.recovers() {
            Some(AppHealthStatus::Healthy)
        } else {
            None
        };
        let Some(status) = change else { continue };
        if let Err(err) = change_health(state, &app, status, &tally).await {
            tracing::error!(app = %app, error = format!("{err:#}"), "could not record the app's health");
        }
    }
}

async fn change_health(
    state: &AppState,
    app: &str,
    status: AppHealthStatus,
    tally: &AppTally,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let txn = store::begin(&state.db).await?;
    let changed = match status {
        AppHealthStatus::Degraded => {
            store::app_health::mark_degraded(&txn, app, now, tally.last_error.as_deref()).await?
        }
        AppHealthStatus::Healthy => store::app_health::mark_recovered(&txn, app, now).await?,
    };
    if !changed {
        // Another instance announced it first.
        txn.commit().await?;
        return Ok(());
    }
    let health = store::app_health::get(&txn, app).await?;
    let event = match status {
        AppHealthStatus::Degraded => webhooks::APP_DEGRADED,
        AppHealthStatus::Healthy => webhooks::APP_RECOVERED,
    };
    let teams = store::app_health::teams_using(&txn, app).await?;
    for team in &teams {
        store::webhooks::enqueue(&txn, *team, event, &webhooks::app_payload(event, *team, app, &health))
            .await?;
    }
    let events: Vec<_> = teams.iter().map(|team| AppHealthEvent::changed(*team, app, &health)).collect();
    crate::events::stage(&txn, &events).await?;
    txn.commit().await?;
    state.events.wake_dispatcher();
    match status {
        AppHealthStatus::Degraded => tracing::warn!(
            app,
            checked = tally.checked,
            transient = tally.transient,
            teams = teams.len(),
            "app degraded: its connections are checked by a few probes until it recovers"
        ),
        AppHealthStatus::Healthy => tracing::info!(app, teams = teams.len(), "app recovered"),
    }
    Ok(())
}
