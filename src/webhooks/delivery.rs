//! Sending queued deliveries: claimed a few at a time with a lease, POSTed as signed JSON,
//! recorded, and retried with exponential backoff until they succeed or run out of attempts.
//! At least once: an instance that dies mid-request leaves its claim to lapse, and another
//! sends again with the same `webhook-id`.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};

use super::{secret_of, sign};
use crate::domain::{DeliveryStatus, Webhook, WebhookDelivery};
use crate::outbound::read_capped;
use crate::state::AppState;
use crate::store;

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i32 = 8;
const FIRST_RETRY: Duration = Duration::from_secs(30);
const LONGEST_RETRY: Duration = Duration::from_secs(3600);
/// Deliveries in flight at once per instance, each to another endpoint.
const CONCURRENCY: usize = 16;
/// What a claim adds to the time its request may take before another instance may take it over.
const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// How often deliveries still in flight let what became due meanwhile be claimed, when no
/// commit signals it (a retry's time came, or another instance's endpoint freed up).
const RECLAIM: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: u64,
    pub retrying: u64,
    pub failed: u64,
}

/// Sends every due delivery, until none is due and none is in flight. A plain function: the
/// dispatcher calls it, and so do tests.
///
/// Up to `CONCURRENCY` deliveries are in flight, each to another endpoint
/// (`store::webhooks::claim_due`): an endpoint gets its deliveries one at a time and in order.
/// Whenever one finishes, a commit signals, or `RECLAIM` passes, what is due is claimed into
/// the free room, so a slow endpoint holds up only its own deliveries.
pub async fn deliver_due(state: &AppState) -> anyhow::Result<DeliveryReport> {
    let lease = chrono::Duration::from_std(state.config.http_timeout + LEASE_MARGIN)?;
    let mut report = DeliveryReport::default();
    let mut in_flight = FuturesUnordered::new();
    // What `in_flight` holds: a delivery still waiting for its team's permit may see its claim
    // lapse, and is then left to other instances rather than claimed a second time here.
    let mut held: HashSet<uuid::Uuid> = HashSet::new();
    let mut commits = state.events.dispatcher_signal();
    // Once the service closes, what is in flight finishes and nothing more is claimed.
    let closing = state.events.closed_signal();
    loop {
        let room = if *closing.borrow() { 0 } else { CONCURRENCY - in_flight.len() };
        if room > 0 {
            commits.borrow_and_update();
            let claim = format!("webhooks-{}", uuid::Uuid::now_v7());
            let now = Utc::now();
            let holding: Vec<uuid::Uuid> = held.iter().copied().collect();
            let claimed = match store::webhooks::claim_due(
                &state.db,
                &claim,
                now,
                now + lease,
                room as u64,
                &holding,
            )
            .await
            {
                Ok(claimed) => claimed,
                Err(err) if in_flight.is_empty() => return Err(err.into()),
                // Returning now would drop the requests under way, to be sent again once
                // their claims lapse: they finish first, and claiming is tried again.
                Err(err) => {
                    tracing::warn!(error = %err, "could not claim due webhook deliveries; trying again in a moment");
                    Vec::new()
                }
            };
            for (delivery, hook) in claimed {
                held.insert(delivery.id);
                let id = delivery.id;
                in_flight.push(
                    attempt(state, claim.clone(), lease, delivery, hook).map(move |outcome| (id, outcome)),
                );
            }
        }
        if in_flight.is_empty() {
            return Ok(report);
        }
        tokio::select! {
            Some((id, outcome)) = in_flight.next() => {
                held.remove(&id);
                // One delivery's failed write must not cut the others short mid-request (they
                // would be sent again); its claim lapses and it is sent again later.
                match outcome {
                    Ok(status) => report.count(status),
                    Err(err) => tracing::warn!(delivery_id = %id, error = format!("{err:#}"), "could not write a webhook delivery's claim or result; it is sent again once its claim lapses"),
                }
            }
            Ok(()) = commits.changed(), if in_flight.len() < CONCURRENCY => {}
            () = tokio::time::sleep(RECLAIM), if in_flight.len() < CONCURRENCY => {}
        }
    }
}

impl DeliveryReport {
    fn count(&mut self, status: Option<DeliveryStatus>) {
        match status {
            Some(DeliveryStatus::Delivered) => self.delivered += 1,
            Some(DeliveryStatus::Failed) => self.failed += 1,
            Some(DeliveryStatus::Pending) => self.retrying += 1,
            None => {}
        }
    }
}

/// Sends one claimed delivery and records the attempt; answers the delivery's status after it,
/// or `None` when another instance took the delivery over first.
async fn attempt(
    state: &AppState,
    claim: String,
    lease: chrono::Duration,
    delivery: WebhookDelivery,
    hook: Webhook,
) -> anyhow::Result<Option<DeliveryStatus>> {
    // Within the team's permits: one team's slow endpoints wait on their own.
    let _permit = state.provider_gate.enter(hook.team_id).await;
    // Waiting for a permit has no bound, so the lease starts again here; a claim that lapsed
    // meanwhile and was taken over is not sent a second time.
    if !store::webhooks::renew_claim(&state.db, delivery.id, &claim, Utc::now() + lease).await? {
        tracing::info!(delivery_id = %delivery.id, "another instance took this webhook delivery over while it waited");
        return Ok(None);
    }
    let attempts = delivery.attempts + 1;
    let (status, error, next) = match send(state, &hook, &delivery).await {
        Ok(()) => (DeliveryStatus::Delivered, None, Utc::now()),
        Err(error) if attempts >= MAX_ATTEMPTS => (DeliveryStatus::Failed, Some(error), Utc::now()),
        Err(error) => (DeliveryStatus::Pending, Some(error), Utc::now() + backoff(attempts)),
    };
    store::webhooks::record_attempt(&state.db, delivery.id, &claim, status, attempts, error, next).await?;
    Ok(Some(status))
}

fn backoff(attempts: i32) -> chrono::Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(16);
    let wait = FIRST_RETRY.saturating_mul(2u32.saturating_pow(exponent)).min(LONGEST_RETRY);
    chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
}

#[tracing::instrument(skip_all, fields(webhook_id = %hook.id, delivery_id = %delivery.id, event = %delivery.event))]
async fn send(state: &AppState, hook: &Webhook, delivery: &WebhookDelivery) -> Result<(), String> {
    let url = url::Url::parse(&hook.url).map_err(|err| format!("the URL is not valid: {err}"))?;
    let client = state.outbound.client_for(&url, true).map_err(|err| err.to_string())?;
    let secret = secret_of(state, hook).map_err(|err| {
        tracing::error!(error = format!("{err:#}"), "could not open a webhook secret");
        "the signing secret could not be opened; see the server log".to_owned()
    })?;
    let body = serde_json::to_vec(&delivery.payload).map_err(|err| err.to_string())?;
    let timestamp = Utc::now().timestamp();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("plugboard-event", &delivery.event)
        .header("plugboard-delivery", delivery.id.to_string())
        // Standard Webhooks' names: the id stays the same over retries, for deduplication.
        .header("webhook-id", delivery.id.to_string())
        .header("webhook-timestamp", timestamp.to_string())
        .header("plugboard-signature", sign(&secret, timestamp, &body))
        .body(body)
        .send()
        .await
        .map_err(|err| describe(&err))?;
    let status = response.status();
    let _ = read_capped(response).await;
    if status.is_success() {
        tracing::info!(status = status.as_u16(), "webhook delivered");
        Ok(())
    } else {
        tracing::warn!(status = status.as_u16(), "webhook endpoint refused the delivery");
        Err(format!("the endpoint answered HTTP {}", status.as_u16()))
    }
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "the endpoint did not answer in time".into()
    } else if crate::verify::error_mentions(err, "internal addresses") {
        "the endpoint resolves to an internal address, which webhooks may not reach".into()
    } else if err.is_connect() {
        "the endpoint could not be reached".into()
    } else {
        "the request to the endpoint failed".into()
    }
}
