//! The outbox dispatcher: publishes the live events that committed changes staged, and sends
//! their webhook deliveries, on every instance. It wakes when a commit says so (an in-process
//! signal, and `NOTIFY` from other instances on PostgreSQL) and polls besides, so a retry or a
//! lost signal waits at most `POLL`. On PostgreSQL rows of events are claimed with a lease, so
//! instances share the work and a crashed instance's claims lapse; on SQLite, where one process
//! owns the file, its one dispatcher needs no claim. Webhook delivery is at least once: a
//! receiver deduplicates on the delivery id (`webhook-id`).

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::state::AppState;
use crate::store;

/// The longest a staged event or a due retry waits when no signal comes.
const POLL: Duration = Duration::from_secs(1);
/// Rows of events claimed at a time. A row holds one change's events, or those of a sweep's
/// batch of up to 500 checks: this keeps what one pass holds to about 10 MB.
const EVENT_ROWS: u64 = 64;
/// Events published at once, at least (a row's events are never split).
const PUBLISH_CHUNK: usize = 500;
/// How long an event claim holds; publishing a batch takes milliseconds.
const EVENT_LEASE: Duration = Duration::from_secs(30);

/// Publishes every staged event. A plain function the dispatcher loop calls; on SQLite nothing
/// else may at the same time (see `publish_alone`). Answers how many events were published.
pub async fn publish_staged_events(state: &AppState) -> anyhow::Result<usize> {
    let mut published = 0;
    loop {
        let passed = match state.db.get_database_backend() {
            // Reads the oldest rows straight away: a committed change's events go out one query
            // after the wake, which counts when the machine is busy with a fan-out.
            sea_orm::DatabaseBackend::Sqlite => publish_alone(state).await?,
            _ => {
                if !store::outbox::any_claimable(&state.db, Utc::now()).await? {
                    return Ok(published);
                }
                publish_claimed(state).await?
            }
        };
        if passed == 0 {
            return Ok(published);
        }
        published += passed;
    }
}

/// One pass where instances share the outbox: claims rows, publishes their events, deletes
/// them. A crash before the delete publishes them again once the claim lapses.
async fn publish_claimed(state: &AppState) -> anyhow::Result<usize> {
    let now = Utc::now();
    let claim = format!("events-{}", uuid::Uuid::now_v7());
    let lease = chrono::Duration::from_std(EVENT_LEASE)?;
    let claimed = {
        let _turn = state.background_writes.take().await;
        store::outbox::claim(&state.db, &claim, now, now + lease, EVENT_ROWS).await?
    };
    // Refused by PostgreSQL: the rows stay claimed until the claim lapses, then go out again
    // (events of the pass sent before the refusal go out twice; their receivers take them as
    // they would a repeat).
    let published = publish(state, &claimed).await?;
    let ids: Vec<uuid::Uuid> = claimed.iter().map(|(id, _)| *id).collect();
    {
        let _turn = state.background_writes.take().await;
        store::outbox::remove(&state.db, &claim, &ids).await?;
    }
    Ok(published)
}

/// One pass on SQLite, where one process owns the file and runs this one dispatcher: reads
/// the oldest rows, publishes their events, deletes them. No claim, so one write instead of
/// two; rows are deleted only once published, so an empty outbox still means every event
/// reached the process's subscribers.
async fn publish_alone(state: &AppState) -> anyhow::Result<usize> {
    let rows = store::outbox::oldest(&state.db, EVENT_ROWS).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let published = publish(state, &rows).await?;
    let ids: Vec<uuid::Uuid> = rows.iter().map(|(id, _)| *id).collect();
    {
        let _turn = state.background_writes.take().await;
        store::outbox::delete(&state.db, &ids).await?;
    }
    Ok(published)
}

/// Publishes the events of `rows`, in order, a few hundred at a time with a yield between, as
/// when a row held one event and a pass 500 rows: subscribers whose buffers a burst of
/// thousands would overrun get a chance to catch up. Answers how many, or an error when
/// PostgreSQL refused to send some: the rows must then stay.
async fn publish(state: &AppState, rows: &[(uuid::Uuid, String)]) -> anyhow::Result<usize> {
    let mut published = 0;
    let mut chunk: Vec<&str> = Vec::with_capacity(PUBLISH_CHUNK);
    let refused = || anyhow::anyhow!("PostgreSQL refused to send staged events; they stay in the outbox");
    for (_, row) in rows {
        chunk.extend(store::outbox::payloads(row));
        if chunk.len() >= PUBLISH_CHUNK {
            if !state.events.publish_staged(&chunk).await {
                return Err(refused());
            }
            published += chunk.len();
            chunk.clear();
            tokio::task::yield_now().await;
        }
    }
    if !state.events.publish_staged(&chunk).await {
        return Err(refused());
    }
    Ok(published + chunk.len())
}

/// Runs the two dispatcher loops until the service closes (`closing` turns true), and the hourly
/// forgetting of old webhook deliveries. Events and webhooks have loops of their own, so a slow
/// webhook endpoint never holds up live events.
pub async fn run_dispatcher(state: AppState, closing: watch::Receiver<bool>) {
    let events = {
        let state = state.clone();
        dispatch_loop("events", state.events.dispatcher_signal(), closing.clone(), move || {
            let state = state.clone();
            async move { publish_staged_events(&state).await.map(|_| ()) }
        })
    };
    let forgetting = crate::webhooks::forget_until_closed(state.clone(), closing.clone());
    let webhooks = dispatch_loop("webhooks", state.events.dispatcher_signal(), closing, move || {
        let state = state.clone();
        async move { crate::webhooks::deliver_due(&state).await.map(|_| ()) }
    });
    tokio::join!(events, webhooks, forgetting);
}

async fn dispatch_loop<F, Fut>(
    name: &'static str,
    mut signal: watch::Receiver<u64>,
    mut closing: watch::Receiver<bool>,
    pass: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    loop {
        if *closing.borrow() {
            return;
        }
        signal.borrow_and_update();
        if let Err(err) = pass().await {
            tracing::warn!(
                dispatcher = name,
                error = format!("{err:#}"),
                "dispatch pass failed; retrying shortly"
            );
        }
        tokio::select! {
            _ = signal.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = closing.changed() => {}
        }
    }
}
