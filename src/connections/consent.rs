//! OAuth consent: sending a person to the provider (create, reauthorize, edit) and completing
//! it at the callback. The connection's current credentials stay in use until the consent
//! completes; an abandoned consent changes nothing. A consent's `state` is random, stored only
//! as a hash, single use, bound to the team, the connection and the purpose, and expires.

use std::collections::BTreeMap;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::record::{self, Change, Fact, Write};
use super::secrets::StoredSecrets;
use super::{granted, verification};
use crate::catalog::{App, FormValues};
use crate::crypto::Binding;
use crate::domain::{
    Actor, Connection, ConnectionId, ConnectionName, ConnectionStatus, ConsentPurpose, Principal,
    Verification, VerificationOutcome,
};
use crate::error::{AppError, AppResult};
use crate::oauth::{self, StateToken};
use crate::state::AppState;
use crate::store;
use crate::store::connections::ConnectionData;
use crate::store::oauth_states::StoredState;
use crate::verify::{self, CheckResult, RequestValues};

/// How long a person has to grant consent.
const CONSENT_TTL_MINUTES: i64 = 10;
pub(super) const STATE_PURPOSE: &str = "oauth_state";

/// What an edit will become once its consent completes.
pub struct PendingEdit {
    pub name: ConnectionName,
    pub form: FormValues,
}

/// The sealed part of a consent in progress.
#[derive(Serialize, Deserialize)]
struct Payload {
    pkce_verifier: Option<String>,
    edit: Option<EditPayload>,
}

#[derive(Serialize, Deserialize)]
struct EditPayload {
    name: String,
    public: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
}

/// Starts a consent for `connection`, recording it through `db` (the caller's transaction when
/// the connection is being created), and answers the URL to send the person to.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    state: &AppState,
    db: &impl sea_orm::ConnectionTrait,
    principal: &Principal,
    connection: &Connection,
    app: &App,
    form: &FormValues,
    scopes: &[String],
    purpose: ConsentPurpose,
    edit: Option<PendingEdit>,
) -> AppResult<url::Url> {
    let client = state.oauth_clients.for_app(app, form).map_err(|err| match err.field() {
        Some(field) => AppError::bad_input(format!("fields.{field}"), err),
        None => AppError::bad_input("app", err),
    })?;
    let token = StateToken::generate().map_err(|e| AppError::internal(anyhow::Error::new(e)))?;
    let authorization = oauth::authorization_url(app, form, &client, &redirect_uri(state), scopes, &token)
        .map_err(|err| AppError::bad_input("fields", err))?;
    let payload = Payload {
        pkce_verifier: authorization.pkce_verifier.as_ref().map(|v| v.expose_secret().to_owned()),
        edit: edit.map(|edit| EditPayload {
            name: edit.name.as_str().to_owned(),
            public: edit.form.public().clone(),
            secrets: edit
                .form
                .secrets()
                .iter()
                .map(|(k, v)| (k.clone(), v.expose_secret().to_owned()))
                .collect(),
        }),
    };
    let row_id = uuid::Uuid::now_v7();
    let plaintext =
        secrecy::SecretBox::new(Box::new(serde_json::to_vec(&payload).map_err(anyhow::Error::new)?));
    let sealed = state
        .sealer
        .seal(plaintext.expose_secret(), &Binding::new(STATE_PURPOSE, connection.team_id.as_uuid(), row_id))
        .map_err(|e| AppError::internal(anyhow::Error::new(e)))?;
    let actor = principal.actor();
    let now = Utc::now();
    store::oauth_states::delete_expired(db, now).await?;
    store::oauth_states::insert(
        db,
        StoredState {
            id: row_id,
            state_hash: token.hash(),
            team_id: connection.team_id,
            connection_id: connection.id,
            purpose: purpose.as_str().to_owned(),
            connection_version: connection.version,
            scopes: json!(authorization.scopes),
            sealed_payload: sealed,
            payload_key_id: state.sealer.active_key_id().to_string(),
            actor_kind: actor.kind,
            actor_id: actor.id,
            actor_label: actor.label,
            expires_at: now + chrono::Duration::minutes(CONSENT_TTL_MINUTES),
            created_at: now,
        },
    )
    .await?;
    tracing::info!(connection_id = %connection.id, purpose = purpose.as_str(), "consent started");
    Ok(authorization.url)
}

/// The fixed redirect URI: `{PLUGBOARD_PUBLIC_URL}/oauth/callback`.
pub fn redirect_uri(state: &AppState) -> url::Url {
    let base = state.config.public_url.as_str().trim_end_matches('/');
    url::Url::parse(&format!("{base}/oauth/callback")).unwrap_or_else(|_| state.config.public_url.clone())
}

/// What the provider sent back to the callback.
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<SecretString>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// How a completed callback went, for the page that reports to the opener window.
#[derive(Debug, Clone)]
pub struct Completed {
    pub connection_id: ConnectionId,
    pub status: ConnectionStatus,
    pub message: String,
}

/// Why a callback changed nothing (or only recorded the provider's refusal on a pending
/// connection). `connection_id` is known once the state was valid. The page shows
/// `error.public_message()` and posts `error.code()` to the opener.
#[derive(Debug, Clone)]
pub struct Refused {
    pub connection_id: Option<ConnectionId>,
    pub error: AppError,
}

impl Refused {
    /// The state was missing, unknown, expired or used.
    fn bad_state(message: &str) -> Self {
        Refused { connection_id: None, error: AppError::bad_input("state", message) }
    }

    fn of(connection_id: ConnectionId, error: AppError) -> Self {
        Refused { connection_id: Some(connection_id), error }
    }

    fn denied(connection_id: ConnectionId, message: impl Into<String>) -> Self {
        Refused::of(connection_id, AppError::ConsentDenied(message.into()))
    }

    fn conflict(connection_id: ConnectionId, message: impl Into<String>) -> Self {
        Refused::of(connection_id, AppError::Conflict(message.into()))
    }
}

#[tracing::instrument(skip_all, fields(connection_id = tracing::field::Empty, purpose = tracing::field::Empty))]
pub async fn complete(state: &AppState, callback: Callback) -> Result<Completed, Refused> {
    let hash = callback.state.as_deref().and_then(StateToken::hash_presented).ok_or_else(|| {
        Refused::bad_state("this sign-in link is not valid; start again from the connection")
    })?;
    let stored = store::oauth_states::consume(&state.db, &hash, Utc::now())
        .await
        .map_err(|err| internal_refusal(None, err))?
        .ok_or_else(|| {
            Refused::bad_state(
                "this sign-in has expired or was already used; start again from the connection",
            )
        })?;
    let id = stored.connection_id;
    let purpose = ConsentPurpose::parse(&stored.purpose)
        .ok_or_else(|| Refused::of(id, AppError::bad_input("state", "unknown consent purpose")))?;
    tracing::Span::current()
        .record("connection_id", tracing::field::display(id))
        .record("purpose", purpose.as_str());
    let payload = open_payload(state, &stored).map_err(|err| internal_refusal(Some(id), err))?;
    let (connection, sealed) = store::connections::find_with_secrets(&state.db, stored.team_id, id)
        .await
        .map_err(|err| internal_refusal(Some(id), err))?
        .ok_or_else(|| Refused::conflict(id, "the connection was deleted while consent was pending"))?;
    let app = state
        .catalog
        .get(&connection.app_key)
        .ok_or_else(|| Refused::conflict(id, "the app left the catalog"))?;
    let actor = Actor { kind: stored.actor_kind, id: stored.actor_id, label: stored.actor_label.clone() };
    // The consent is the starter's: it completes only while they may still change the team's
    // connections (a member removed meanwhile cannot finish one).
    if let Some(user) = actor_user(&actor) {
        let role = store::teams::role_of(&state.db, stored.team_id, user)
            .await
            .map_err(|err| internal_refusal(Some(id), err))?;
        if !role.is_some_and(crate::domain::TeamRole::can_manage) {
            return Err(Refused::of(
                id,
                AppError::Forbidden("the person who started this sign-in can no longer change this team's connections; nothing was changed".into()),
            ));
        }
    }

    if let Some(error) = callback.error {
        let message = format!(
            "{} did not grant access ({error}{}); nothing was changed",
            app.name(),
            callback.error_description.map(|d| format!(": {d}")).unwrap_or_default()
        );
        if purpose == ConsentPurpose::Create {
            note_pending(state, &connection, &message).await;
        }
        return Err(Refused::denied(id, message));
    }
    let code =
        callback.code.ok_or_else(|| Refused::denied(id, "the provider sent neither a code nor an error"))?;
    if connection.version != stored.connection_version {
        return Err(Refused::conflict(
            id,
            "the connection was changed while consent was pending; start again",
        ));
    }

    let current = StoredSecrets::open(&state.sealer, connection.team_id, id, sealed.as_deref())
        .map_err(|err| internal_refusal(Some(id), err))?;
    let (name, form) = match &payload.edit {
        Some(edit) => (
            ConnectionName::parse(&edit.name).map_err(|m| Refused::of(id, AppError::bad_input("name", m)))?,
            FormValues::from_parts(
                edit.public.clone(),
                edit.secrets.iter().map(|(k, v)| (k.clone(), SecretString::from(v.clone()))).collect(),
            ),
        ),
        None => (
            connection.name.clone(),
            FormValues::from_parts(connection.public_fields.clone(), current.form.clone()),
        ),
    };
    let client = state.oauth_clients.for_app(app, &form).map_err(|err| internal_refusal(Some(id), err))?;
    let http = granted::token_client(state, app, &form).map_err(|err| internal_refusal(Some(id), err))?;
    let verifier = payload.pkce_verifier.map(SecretString::from);
    let permit = state.provider_gate.enter(connection.team_id).await;
    let granted = match oauth::exchange_code(
        &http,
        app,
        &form,
        &client,
        &redirect_uri(state),
        &code,
        verifier.as_ref(),
    )
    .await
    {
        Ok(tokens) => tokens,
        Err(err) => {
            let message = format!("{} did not complete the sign-in: {err}", app.name());
            if purpose == ConsentPurpose::Create {
                note_pending(state, &connection, &message).await;
            }
            return Err(Refused::denied(id, message));
        }
    };
    let details = granted::grant_details(app, &granted).unwrap_or_else(|| {
        if purpose == ConsentPurpose::Create { Default::default() } else { connection.token_details.clone() }
    });
    let check =
        check_new_token(state, app, &granted::with_details(&form, &details), &granted.access_token).await;
    drop(permit);
    if let (Some(before), Some(after)) =
        (&connection.account_label, check.as_ref().and_then(|c| c.account_label.as_ref()))
        && purpose != ConsentPurpose::Create
        && before != after
    {
        return Err(Refused::conflict(
            id,
            format!(
                "you signed in to {} as {after}, but this connection belongs to {before}; sign in as {before}, or create a new connection",
                app.name()
            ),
        ));
    }

    let stored_scopes: Vec<String> = serde_json::from_value(stored.scopes.clone()).unwrap_or_default();
    let secrets = StoredSecrets {
        form: form.secrets().clone(),
        access_token: Some(granted.access_token.clone()),
        refresh_token: granted.refresh_token.clone().or(if purpose == ConsentPurpose::Create {
            None
        } else {
            current.refresh_token
        }),
    };
    let status = ConnectionStatus::of_new_credentials(check.as_ref().map(|c| c.verification.outcome), true);
    let now = Utc::now();
    let expires_at = granted::expiry(now, granted.expires_in);
    let data = ConnectionData {
        name,
        status,
        public_fields: form.public().clone(),
        secret_fields: form.secret_keys().map(str::to_owned).collect(),
        sealed: secrets
            .seal(&state.sealer, connection.team_id, id)
            .map_err(|err| internal_refusal(Some(id), err))?,
        scopes: granted.scopes.clone().unwrap_or(stored_scopes),
        account_label: check
            .as_ref()
            .and_then(|c| c.account_label.clone())
            .or(connection.account_label.clone()),
        verification: check.as_ref().map(|c| c.verification.clone()),
        health: verification::initial_health(state, check.as_ref(), granted::grant_expiry(now, &granted)),
        expires_at,
        grant_expires_at: granted::grant_expiry(now, &granted),
        token_details: details,
    };
    let updated =
        store_completed(state, &actor, &connection, data, purpose, check.as_ref()).await.map_err(|err| {
            match err {
                // Internal detail goes to the log, never to the page.
                AppError::Internal(_) => internal_refusal(Some(id), err),
                other => Refused::of(id, other),
            }
        })?;
    let mut message = match &check {
        Some(check) => check.verification.message.clone().unwrap_or_default(),
        None => format!("{} is connected", app.name()),
    };
    let usages = crate::flows::usage::usages(&state.db, &state.catalog, &updated).await.unwrap_or_default();
    if let Some(gaps) = crate::flows::usage::gaps_message(&usages) {
        message = format!("{message}. Warning: {gaps}");
    }
    tracing::info!(status = updated.status.as_str(), "consent completed");
    Ok(Completed { connection_id: id, status: updated.status, message })
}

/// Checks a token just granted, before anything is stored.
async fn check_new_token(
    state: &AppState,
    app: &App,
    form: &FormValues,
    token: &SecretString,
) -> Option<CheckResult> {
    app.verify()?;
    let values = RequestValues { app, form, access_token: Some(token) };
    match verify::check(&state.outbound, &values).await {
        Ok(check) => Some(check),
        Err(err) => Some(CheckResult {
            verification: Verification::noted(VerificationOutcome::InvalidCredentials, err.to_string()),
            account_label: None,
            http_status: None,
            retry_after: None,
        }),
    }
}

async fn store_completed(
    state: &AppState,
    actor: &Actor,
    before: &Connection,
    data: ConnectionData,
    purpose: ConsentPurpose,
    check: Option<&CheckResult>,
) -> AppResult<Connection> {
    let txn = crate::store::begin(&state.db).await?;
    let change = Change {
        actor,
        fact: Fact::Authorized { purpose, consented_as: check.and_then(|c| c.account_label.clone()) },
        before: Some(before),
        write: Write::Replace { version: before.version, data, by: actor_user(actor) },
        check: check.map(|c| &c.verification),
    };
    let updated = record::record(&txn, state, change).await?.ok_or_else(|| {
        AppError::Conflict("the connection was changed while consent was pending; start again".into())
    })?;
    super::commit(state, txn).await?;
    Ok(updated)
}

fn actor_user(actor: &Actor) -> Option<crate::domain::UserId> {
    (actor.kind == crate::domain::ActorKind::User)
        .then_some(actor.id.map(crate::domain::UserId::from_uuid))
        .flatten()
}

/// Records on a connection still waiting for consent why it did not complete.
async fn note_pending(state: &AppState, connection: &Connection, message: &str) {
    if connection.status != ConnectionStatus::PendingAuthorization {
        return;
    }
    let note = Verification::noted(VerificationOutcome::InvalidCredentials, message);
    let change = Change {
        actor: &Actor::system("consent"),
        fact: Fact::ConsentRefused,
        before: Some(connection),
        write: Write::Note { version: connection.version },
        check: Some(&note),
    };
    if let Err(err) = record::record_alone(state, change).await {
        tracing::error!(error = %err, "could not record a refused consent");
    }
}

fn open_payload(state: &AppState, stored: &StoredState) -> anyhow::Result<Payload> {
    let binding = Binding::new(STATE_PURPOSE, stored.team_id.as_uuid(), stored.id);
    let plaintext = state.sealer.open(&stored.sealed_payload, &binding)?;
    Ok(serde_json::from_slice(plaintext.expose_secret())?)
}

fn internal_refusal(id: Option<ConnectionId>, err: impl std::fmt::Display) -> Refused {
    tracing::error!(error = %err, "could not complete a consent");
    Refused {
        connection_id: id,
        error: AppError::internal(anyhow::anyhow!("could not complete a consent: {err}")),
    }
}
