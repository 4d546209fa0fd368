//! Warnings before a grant ends: a week and a day before the end the provider named
//! (`grantExpiresAt`), each connection gets a `connection.expiring` webhook naming the flows
//! that will break, and a connection event, once per warning across instances. A plain
//! function the scheduler's tick calls and tests call directly.

use chrono::Utc;
use serde_json::json;

use crate::domain::GRANT_WARNINGS;
use crate::events::{ConnectionEvent, ConnectionEventKind};
use crate::state::AppState;
use crate::store;

/// Connections warned per query; the tick takes as many rounds as it needs.
const BATCH: u64 = 200;

/// Sends the warnings that are due. Answers how many were sent.
pub async fn warn_expiring_grants(state: &AppState) -> anyhow::Result<u64> {
    let mut sent = 0;
    // The nearest window first: a connection first seen a day before its end gets the day's
    // warning alone, not the week's too.
    for ahead in GRANT_WARNINGS.iter().rev() {
        let days = i32::try_from(ahead.num_days()).unwrap_or(i32::MAX);
        loop {
            let due = store::grants::due_warning(&state.db, Utc::now(), days, BATCH).await?;
            if due.is_empty() {
                break;
            }
            let mut progressed = false;
            for connection in due {
                let Some(ends) = connection.grant_expires_at else { continue };
                let txn = crate::store::begin(&state.db).await?;
                if !store::grants::mark_warned(&txn, connection.team_id, connection.id, ends, days).await? {
                    continue;
                }
                progressed = true;
                let mut extra = serde_json::Map::new();
                extra.insert("grant_expires_at".into(), json!(ends));
                extra.insert("days_left".into(), json!((ends - Utc::now()).num_days()));
                let queued = crate::webhooks::enqueue(
                    &txn,
                    state,
                    crate::webhooks::EXPIRING,
                    &connection,
                    None,
                    extra,
                )
                .await?;
                let event = ConnectionEvent::changed(
                    connection.team_id,
                    connection.id,
                    ConnectionEventKind::Expiring,
                    Some(connection.status),
                    None,
                );
                crate::events::stage(&txn, &[event]).await?;
                txn.commit().await?;
                state.events.wake_dispatcher();
                sent += 1;
                tracing::info!(connection_id = %connection.id, %ends, days, queued, "the connection's grant ends soon; warned");
            }
            if !progressed {
                break;
            }
        }
    }
    Ok(sent)
}
