//! Sending queued deliveries: claimed a few at a time with a lease, POSTed as signed JSON,
//! recorded, and retried with exponential backoff until they succeed or run out of attempts.
//! At least once: an instance that dies mid-request leaves its claim to lapse, and another
//! sends again with the same `webhook-id`.

use std::time::Duration;

use chrono::Utc;
use futures_util::{StreamExt, stream};

use super::{secret_of, sign};
use crate::domain::{DeliveryStatus, Webhook, WebhookDelivery};
use crate::outbound::read_capped;
use crate::state::AppState;
use crate::store;

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i32 = 8;
const FIRST_RETRY: Duration = Duration::from_secs(30);
const LONGEST_RETRY: Duration = Duration::from_secs(3600);
/// Endpoints claimed at a time (one delivery each), and sent to at once, per instance.
const CONCURRENCY: usize = 16;
/// What a claim adds to the time its request may take before another instance may take it over.
const LEASE_MARGIN: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: u64,
    pub retrying: u64,
    pub failed: u64,
}

/// Sends every due delivery. A plain function: the scheduler tick calls it, and so do tests.
///
/// Each pass claims one delivery per endpoint (`store::webhooks::claim_due`), so an endpoint
/// gets its deliveries one at a time and in order, while different endpoints are sent to at
/// once.
pub async fn deliver_due(state: &AppState) -> anyhow::Result<DeliveryReport> {
    let mut report = DeliveryReport::default();
    let lease = chrono::Duration::from_std(state.config.http_timeout + LEASE_MARGIN)?;
    loop {
        let claim = format!("webhooks-{}", uuid::Uuid::now_v7());
        let now = Utc::now();
        let claimed =
            store::webhooks::claim_due(&state.db, &claim, now, now + lease, CONCURRENCY as u64).await?;
        if claimed.is_empty() {
            return Ok(report);
        }
        let outcomes: Vec<anyhow::Result<Option<DeliveryStatus>>> = stream::iter(claimed)
            .map(|(delivery, hook)| attempt(state, &claim, lease, delivery, hook))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome? {
                Some(DeliveryStatus::Delivered) => report.delivered += 1,
                Some(DeliveryStatus::Failed) => report.failed += 1,
                Some(DeliveryStatus::Pending) => report.retrying += 1,
                None => {}
            }
        }
    }
}

/// Sends one claimed delivery and records the attempt; answers the delivery's status after it,
/// or `None` when another instance took the delivery over first.
async fn attempt(
    state: &AppState,
    claim: &str,
    lease: chrono::Duration,
    delivery: WebhookDelivery,
    hook: Webhook,
) -> anyhow::Result<Option<DeliveryStatus>> {
    // Within the team's permits: one team's slow endpoints wait on their own.
    let _permit = state.provider_gate.enter(hook.team_id).await;
    // Waiting for a permit has no bound, so the lease starts again here; a claim that lapsed
    // meanwhile and was taken over is not sent a second time.
    if !store::webhooks::renew_claim(&state.db, delivery.id, claim, Utc::now() + lease).await? {
        tracing::info!(delivery_id = %delivery.id, "another instance took this webhook delivery over while it waited");
        return Ok(None);
    }
    let attempts = delivery.attempts + 1;
    let (status, error, next) = match send(state, &hook, &delivery).await {
        Ok(()) => (DeliveryStatus::Delivered, None, Utc::now()),
        Err(error) if attempts >= MAX_ATTEMPTS => (DeliveryStatus::Failed, Some(error), Utc::now()),
        Err(error) => (DeliveryStatus::Pending, Some(error), Utc::now() + backoff(attempts)),
    };
    store::webhooks::record_attempt(&state.db, delivery.id, claim, status, attempts, error, next).await?;
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
