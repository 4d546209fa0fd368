//! Webhooks: a team's endpoints, told when a connection needs a person (needs reauthorization,
//! became invalid), recovered, was created or deleted, with the flows affected. Each delivery is
//! signed with the endpoint's secret (sealed like credentials), recorded, and retried with
//! backoff. Endpoint URLs obey the same egress policy as verification.

mod delivery;
mod signature;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

pub use delivery::{DeliveryReport, deliver_due};
pub use signature::sign;

use crate::access;
use crate::crypto::Binding;
use crate::domain::{Connection, ConnectionStatus, Principal, TeamId};
use crate::error::{AppError, AppResult, FlowRef};
use crate::flows;
use crate::state::AppState;
use crate::store;
use crate::store::webhooks::{Delivery, Webhook};

pub(crate) const SECRET_PURPOSE: &str = "webhook";
const MIN_SECRET_CHARS: usize = 16;

/// The events a webhook receives.
pub const NEEDS_REAUTHORIZATION: &str = "connection.needs_reauthorization";
pub const INVALID: &str = "connection.invalid";
pub const RECOVERED: &str = "connection.recovered";
pub const CREATED: &str = "connection.created";
pub const DELETED: &str = "connection.deleted";
/// Consent completed (create, reauthorize or an OAuth edit), naming the account consented as.
pub const AUTHORIZED: &str = "connection.authorized";
/// The connection's grant ends soon (a week, then a day, before).
pub const EXPIRING: &str = "connection.expiring";

pub async fn register(
    state: &AppState,
    principal: &Principal,
    team_id: TeamId,
    url: &str,
    secret: SecretString,
) -> AppResult<Webhook> {
    access::require_manage(&state.db, principal, team_id).await?;
    let parsed =
        url::Url::parse(url.trim()).map_err(|err| AppError::bad_input("url", format!("not a URL: {err}")))?;
    state.outbound.client_for(&parsed, true).map_err(|err| AppError::bad_input("url", err))?;
    if secret.expose_secret().chars().count() < MIN_SECRET_CHARS {
        return Err(AppError::bad_input(
            "secret",
            format!("a signing secret has at least {MIN_SECRET_CHARS} characters"),
        ));
    }
    let id = uuid::Uuid::now_v7();
    let sealed = state
        .sealer
        .seal(secret.expose_secret().as_bytes(), &Binding::new(SECRET_PURPOSE, team_id.as_uuid(), id))
        .map_err(|err| AppError::internal(anyhow::Error::new(err)))?;
    let hook = Webhook {
        id,
        team_id,
        url: parsed.to_string(),
        sealed_secret: sealed,
        secret_key_id: state.sealer.active_key_id().to_string(),
        created_at: Utc::now(),
    };
    store::webhooks::insert(&state.db, hook.clone()).await?;
    tracing::info!(webhook_id = %id, %team_id, "webhook registered");
    Ok(hook)
}

pub async fn remove(state: &AppState, principal: &Principal, id: uuid::Uuid) -> AppResult<uuid::Uuid> {
    let not_found = || AppError::NotFound("webhook");
    let team_id = store::webhooks::owner_of(&state.db, id).await?.ok_or_else(not_found)?;
    access::team_access(&state.db, principal, team_id).await.map_err(|_| not_found())?;
    access::require_manage(&state.db, principal, team_id).await?;
    store::webhooks::delete(&state.db, team_id, id).await?;
    Ok(id)
}

pub async fn list(state: &AppState, principal: &Principal, team_id: TeamId) -> AppResult<Vec<Webhook>> {
    access::team_access(&state.db, principal, team_id).await?;
    Ok(store::webhooks::list(&state.db, team_id).await?)
}

pub async fn deliveries(state: &AppState, hook: &Webhook, limit: u64) -> AppResult<Vec<Delivery>> {
    Ok(store::webhooks::deliveries(&state.db, hook.team_id, hook.id, limit).await?)
}

/// The webhook event a status change means, if any.
pub fn status_event(previous: ConnectionStatus, now: ConnectionStatus) -> Option<&'static str> {
    let bad = |s| matches!(s, ConnectionStatus::Invalid | ConnectionStatus::NeedsReauthorization);
    match now {
        ConnectionStatus::NeedsReauthorization if previous != now => Some(NEEDS_REAUTHORIZATION),
        ConnectionStatus::Invalid if previous != now => Some(INVALID),
        ConnectionStatus::Active if bad(previous) => Some(RECOVERED),
        _ => None,
    }
}

/// Queues `event` about `connection` for the team's endpoints, with the flows it affects (those
/// using it now, or `affected` when the caller knows better, as after a delete), and starts
/// delivering in the background. A failure here is logged: the change itself stands.
pub async fn notify(
    state: &AppState,
    event: &'static str,
    connection: &Connection,
    affected: Option<Vec<FlowRef>>,
) {
    let result = enqueue(&state.db, state, event, connection, affected, serde_json::Map::new()).await;
    match result {
        Ok(0) => {}
        Ok(queued) => {
            tracing::info!(event, connection_id = %connection.id, queued, "webhook deliveries queued");
            deliver_soon(state);
        }
        Err(err) => tracing::error!(error = %err, event, "could not queue webhook deliveries"),
    }
}

/// Queues `event` about `connection` through `db` (the caller's transaction, so the deliveries
/// commit with the change that causes them), with `extra` fields in the payload. Answers how
/// many deliveries were queued; call `deliver_soon` after the commit.
pub async fn enqueue(
    db: &impl sea_orm::ConnectionTrait,
    state: &AppState,
    event: &'static str,
    connection: &Connection,
    affected: Option<Vec<FlowRef>>,
    extra: serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<usize> {
    let affected = match affected {
        Some(flows) => flows,
        None => {
            let mut refs: Vec<FlowRef> = Vec::new();
            for usage in flows::usage::usages(db, &state.catalog, connection).await? {
                if !refs.iter().any(|f| f.id == usage.flow.id.to_string()) {
                    refs.push(flows::usage::flow_ref(&usage.flow));
                }
            }
            refs
        }
    };
    let mut payload = json!({
        "type": event,
        "created_at": Utc::now(),
        "team_id": connection.team_id.to_string(),
        "connection": {
            "id": connection.id.to_string(),
            "name": connection.name.as_str(),
            "app": connection.app_key,
            "status": connection.status.as_str(),
        },
        "flows": affected,
    });
    for (key, value) in extra {
        payload[key] = value;
    }
    Ok(store::webhooks::enqueue(db, connection.team_id, event, &payload).await?)
}

/// Starts delivering what is due in the background (the scheduler retries what fails).
pub fn deliver_soon(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(err) = deliver_due(&state).await {
            tracing::warn!(error = format!("{err:#}"), "webhook delivery pass failed; the scheduler retries");
        }
    });
}

/// Opens an endpoint's signing secret.
fn secret_of(state: &AppState, hook: &Webhook) -> anyhow::Result<SecretString> {
    let plaintext = state
        .sealer
        .open(&hook.sealed_secret, &Binding::new(SECRET_PURPOSE, hook.team_id.as_uuid(), hook.id))?;
    Ok(SecretString::from(String::from_utf8(plaintext.expose_secret().clone())?))
}
