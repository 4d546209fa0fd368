//! Webhooks: a team's endpoints, told when a connection needs a person (needs reauthorization,
//! became invalid), recovered, was created or deleted, with the flows affected, and when an app
//! the team uses became degraded or recovered. Each delivery is
//! signed with the endpoint's secret (sealed like credentials), recorded, and retried with
//! backoff. Endpoint URLs obey the same egress policy as verification.

mod delivery;
mod retention;
mod signature;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

pub use delivery::{DeliveryReport, deliver_due};
pub use retention::{forget_finished_deliveries, forget_until_closed};
pub use signature::sign;

use crate::access::{self, TeamScope};
use crate::crypto::Binding;
use crate::domain::{
    AuditAction, AuditEvent, Connection, ConnectionStatus, Principal, TeamId, Webhook, WebhookDelivery,
};
use crate::error::{AppError, AppResult, FlowRef};
use crate::flows;
use crate::state::AppState;
use crate::store;

pub(crate) const SECRET_PURPOSE: &str = "webhook";
const MIN_SECRET_CHARS: usize = 16;
/// Longer secrets add nothing to an HMAC key of 256 bits but bytes to every signature check.
const MAX_SECRET_CHARS: usize = 1024;
/// Longer than browsers accept; every delivery carries it.
const MAX_URL_CHARS: usize = 2048;
/// Every event of a team is sent to each of its webhooks.
pub const MAX_WEBHOOKS_PER_TEAM: u64 = 20;

/// The events a webhook receives.
pub const NEEDS_REAUTHORIZATION: &str = "connection.needs_reauthorization";
pub const INVALID: &str = "connection.invalid";
pub const RECOVERED: &str = "connection.recovered";
pub const CREATED: &str = "connection.created";
pub const DELETED: &str = "connection.deleted";
pub const APP_DEGRADED: &str = "app.degraded";
pub const APP_RECOVERED: &str = "app.recovered";

/// The body of an app-level webhook (`app.degraded`, `app.recovered`) for one team.
pub fn app_payload(
    event: &str,
    team_id: TeamId,
    app: &str,
    health: &crate::domain::AppHealth,
) -> serde_json::Value {
    json!({
        "type": event,
        "created_at": Utc::now(),
        "team_id": team_id.to_string(),
        "app": {
            "key": app,
            "status": health.status.as_str(),
            "since": health.since,
            "last_error": health.last_error,
        },
    })
}
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
    if url.trim().chars().count() > MAX_URL_CHARS {
        return Err(AppError::bad_input(
            "url",
            format!("a webhook URL has at most {MAX_URL_CHARS} characters"),
        ));
    }
    let parsed =
        url::Url::parse(url.trim()).map_err(|err| AppError::bad_input("url", format!("not a URL: {err}")))?;
    state.outbound.client_for(&parsed, true).map_err(|err| AppError::bad_input("url", err))?;
    let secret_chars = secret.expose_secret().chars().count();
    if !(MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&secret_chars) {
        return Err(AppError::bad_input(
            "secret",
            format!("a signing secret has {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters"),
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
    let txn = store::begin(&state.db).await?;
    // Registrations of one team count one after another, as members' changes do.
    store::teams::lock(&txn, team_id).await?;
    if store::webhooks::count(&txn, team_id).await? >= MAX_WEBHOOKS_PER_TEAM {
        return Err(AppError::bad_input(
            "teamId",
            format!("a team has at most {MAX_WEBHOOKS_PER_TEAM} webhooks; remove one before adding another"),
        ));
    }
    store::webhooks::insert(&txn, hook.clone()).await?;
    audit(&txn, principal, &hook, AuditAction::WebhookCreated).await?;
    txn.commit().await?;
    tracing::info!(webhook_id = %id, %team_id, "webhook registered");
    Ok(hook)
}

pub async fn remove(state: &AppState, principal: &Principal, id: uuid::Uuid) -> AppResult<uuid::Uuid> {
    let not_found = || AppError::NotFound("webhook");
    let team_id = store::webhooks::owner_of(&state.db, id).await?.ok_or_else(not_found)?;
    access::team_access(&state.db, principal, team_id).await.map_err(|_| not_found())?;
    access::require_manage(&state.db, principal, team_id).await?;
    let hook = store::webhooks::find(&state.db, team_id, id).await?.ok_or_else(not_found)?;
    let txn = store::begin(&state.db).await?;
    store::webhooks::delete(&txn, team_id, id).await?;
    audit(&txn, principal, &hook, AuditAction::WebhookDeleted).await?;
    txn.commit().await?;
    Ok(id)
}

/// The trail's entry for a change to an endpoint. Its URL's host only: a path or query may
/// carry a token of the receiver's (as Slack's incoming webhooks do).
async fn audit(
    txn: &impl sea_orm::ConnectionTrait,
    principal: &Principal,
    hook: &Webhook,
    action: AuditAction,
) -> AppResult<()> {
    let host = url::Url::parse(&hook.url).ok().and_then(|url| url.host_str().map(str::to_owned));
    let detail = json!({ "webhook": { "id": hook.id, "host": host } });
    store::audit::record(txn, &AuditEvent::about_team(hook.team_id, &principal.actor(), action, detail))
        .await?;
    Ok(())
}

/// A team's webhook endpoints.
pub async fn list(state: &AppState, scope: &TeamScope) -> AppResult<Vec<Webhook>> {
    Ok(store::webhooks::list(&state.db, scope.team()).await?)
}

pub async fn deliveries(state: &AppState, hook: &Webhook, limit: u64) -> AppResult<Vec<WebhookDelivery>> {
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

/// Queues `event` about `connection` for the team's endpoints inside the caller's transaction,
/// with the flows it affects (those using it now, or `affected` when the caller knows better, as
/// after a delete). The deliveries exist exactly when the change does; the dispatcher sends
/// them once the caller has committed and woken it.
pub async fn stage(
    txn: &impl sea_orm::ConnectionTrait,
    state: &AppState,
    event: &'static str,
    connection: &Connection,
    affected: Option<Vec<FlowRef>>,
) -> AppResult<()> {
    enqueue(txn, state, event, connection, affected, serde_json::Map::new()).await?;
    Ok(())
}

/// `stage` with `extra` fields in the payload (the account consented as, a grant's end).
/// Answers how many deliveries were queued.
pub async fn enqueue(
    txn: &impl sea_orm::ConnectionTrait,
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
            for usage in flows::usage::usages(txn, &state.catalog, connection).await? {
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
    let queued = store::webhooks::enqueue(txn, connection.team_id, event, &payload).await?;
    if queued > 0 {
        tracing::info!(event, connection_id = %connection.id, queued, "webhook deliveries queued");
    }
    Ok(queued)
}

/// Opens an endpoint's signing secret.
fn secret_of(state: &AppState, hook: &Webhook) -> anyhow::Result<SecretString> {
    let plaintext = state
        .sealer
        .open(&hook.sealed_secret, &Binding::new(SECRET_PURPOSE, hook.team_id.as_uuid(), hook.id))?;
    Ok(SecretString::from(String::from_utf8(plaintext.expose_secret().clone())?))
}
