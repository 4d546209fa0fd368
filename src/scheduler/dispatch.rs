//! The outbox dispatcher: publishes the live events that committed changes staged, and sends
//! their webhook deliveries, on every instance. It wakes when a commit says so (an in-process
//! signal, and `NOTIFY` from other instances on PostgreSQL) and polls besides, so a retry or a
//! lost signal waits at most `POLL`. Rows are claimed with a lease, so instances share the work
//! and a crashed instance's claims lapse. Delivery is at least once: a receiver deduplicates on
//! the delivery id (`webhook-id`).

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::state::AppState;
use crate::store;

/// The longest a staged event or a due retry waits when no signal comes.
const POLL: Duration = Duration::from_secs(1);
/// Events claimed at a time.
const EVENT_BATCH: u64 = 500;
/// How long an event claim holds; publishing a batch takes milliseconds.
const EVENT_LEASE: Duration = Duration::from_secs(30);

/// Publishes every staged event. A plain function: the dispatcher loop calls it, and so can a
/// test. Answers how many were published.
pub async fn publish_staged_events(state: &AppState) -> anyhow::Result<usize> {
    let mut published = 0;
    loop {
        let now = Utc::now();
        if !store::outbox::any_claimable(&state.db, now).await? {
            return Ok(published);
        }
        let claim = format!("events-{}", uuid::Uuid::now_v7());
        let lease = chrono::Duration::from_std(EVENT_LEASE)?;
        let claimed = {
            let _turn = state.background_writes.take().await;
            store::outbox::claim(&state.db, &claim, now, now + lease, EVENT_BATCH).await?
        };
        if claimed.is_empty() {
            return Ok(published);
        }
        let (ids, payloads): (Vec<uuid::Uuid>, Vec<String>) = claimed.into_iter().unzip();
        state.events.publish_staged(&payloads).await;
        {
            let _turn = state.background_writes.take().await;
            store::outbox::remove(&state.db, &claim, &ids).await?;
        }
        published += ids.len();
    }
}

/// Runs the two dispatcher loops until the service closes (`closing` turns true). Events and
/// webhooks have loops of their own, so a slow webhook endpoint never holds up live events.
pub async fn run_dispatcher(state: AppState, closing: watch::Receiver<bool>) {
    let events = {
        let state = state.clone();
        dispatch_loop("events", state.events.dispatcher_signal(), closing.clone(), move || {
            let state = state.clone();
            async move { publish_staged_events(&state).await.map(|_| ()) }
        })
    };
    let webhooks = dispatch_loop("webhooks", state.events.dispatcher_signal(), closing, move || {
        let state = state.clone();
        async move { crate::webhooks::deliver_due(&state).await.map(|_| ()) }
    });
    tokio::join!(events, webhooks);
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
