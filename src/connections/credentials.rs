//! Credentials for flow runners: what a module needs to call its app, with a fresh access token.
//! Only service tokens of the flow's team may read them, and every read is audited. The proxy
//! resolves a flow's module the same way (`resolve_module`), so both refuse alike.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::catalog::{App, FormValues};
use crate::domain::{
    AuditAction, AuditEvent, AuditEventId, AuthType, Connection, ConnectionId, ConnectionStatus, Flow,
    FlowId, FlowModule, ModuleTarget, Principal, TeamId,
};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;

/// What a runner gets. Holds secrets: never log it.
pub struct ModuleCredentials {
    pub connection_id: ConnectionId,
    pub auth_type: AuthType,
    /// Every form value, secrets included.
    pub fields: BTreeMap<String, SecretString>,
    pub access_token: Option<SecretString>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The app's API base URL for this connection.
    pub base_url: String,
    /// The headers every request to the app carries, as the app file says (Basic included).
    pub headers: BTreeMap<String, SecretString>,
    /// The query parameters every request to the app carries (API keys sent in the URL).
    pub query: BTreeMap<String, SecretString>,
}

/// A flow's module, resolved to the connection it uses and found usable for it.
pub struct ResolvedModule {
    pub flow: Flow,
    pub module: FlowModule,
    pub connection: Connection,
    /// The connection's sealed secrets.
    pub sealed: Option<Vec<u8>>,
}

/// The credentials of `module_key` in `flow_id`, resolving a dynamic connection to the member
/// named by `select` or its default.
#[tracing::instrument(skip_all, fields(flow_id = %flow_id, module = module_key))]
pub async fn module_credentials(
    state: &AppState,
    principal: &Principal,
    flow_id: FlowId,
    module_key: &str,
    select: Option<&str>,
) -> AppResult<ModuleCredentials> {
    let Principal::Service { team_id, .. } = principal else {
        return Err(AppError::Forbidden(
            "credentials are for flow runners: use a service token of the team".into(),
        ));
    };
    let team_id: TeamId = *team_id;
    let ResolvedModule { flow, module, connection, sealed } =
        resolve_module(state, team_id, flow_id, module_key, select).await?;
    let connection_id = connection.id;
    let app = state.catalog.get(&connection.app_key).ok_or(AppError::NotFound("app"))?;
    let secrets = match sealed.as_deref() {
        Some(blob) => super::open_secrets(&state.sealer, team_id, connection_id, blob)?,
        None => BTreeMap::new(),
    };
    let mut fields: BTreeMap<String, SecretString> =
        connection.public_fields.iter().map(|(k, v)| (k.clone(), SecretString::from(v.clone()))).collect();
    fields.extend(secrets.into_iter().filter(|(k, _)| k != "access_token" && k != "refresh_token"));
    // What the provider said about the grant that the app keeps (Salesforce's `instance_url`).
    for (name, value) in &connection.token_details {
        fields.entry(name.clone()).or_insert_with(|| SecretString::from(value.clone()));
    }
    let access_token = if app.oauth().is_some() {
        Some(super::fresh_access_token(state, &connection, false).await.map_err(AppError::from)?)
    } else {
        None
    };
    let expires_at = match &access_token {
        Some(_) => {
            store::connections::find(&state.db, team_id, connection_id).await?.and_then(|c| c.expires_at)
        }
        None => None,
    };
    let (base_url, headers, query) = ready_made(app, &connection, &fields, access_token.as_ref())?;
    let event = AuditEvent {
        id: AuditEventId::new(),
        team_id,
        actor: principal.actor(),
        action: AuditAction::CredentialsRead,
        connection_id: Some(connection_id),
        connection_name: Some(connection.name.as_str().to_owned()),
        detail: json!({ "flow_id": flow_id.to_string(), "flow": flow.name, "module": module.key }),
        created_at: Utc::now(),
    };
    store::audit::record(&state.db, &event).await?;
    tracing::info!(connection_id = %connection_id, "credentials read by a runner");
    Ok(ModuleCredentials {
        connection_id,
        auth_type: connection.auth_type,
        fields,
        access_token,
        expires_at,
        base_url,
        headers,
        query,
    })
}

/// The flow `flow_id` of `team_id`, its module `module_key` and the connection it uses (a
/// dynamic connection's member named by `select`, or its default), refused when the connection
/// cannot serve the module: consent missing or revoked, credentials rejected, scopes missing.
pub async fn resolve_module(
    state: &AppState,
    team_id: TeamId,
    flow_id: FlowId,
    module_key: &str,
    select: Option<&str>,
) -> AppResult<ResolvedModule> {
    let flow = store::flows::find(&state.db, team_id, flow_id).await?.ok_or(AppError::NotFound("flow"))?;
    let module =
        flow.modules.iter().find(|m| m.key == module_key).ok_or(AppError::NotFound("module"))?.clone();
    let connection_id = match module.target {
        ModuleTarget::Connection(id) => id,
        ModuleTarget::Dynamic(id) => {
            let dynamic = store::dynamic_connections::find(&state.db, team_id, id)
                .await?
                .ok_or(AppError::NotFound("connection"))?;
            dynamic.resolve(select).ok_or(AppError::NotFound("connection"))?
        }
        ModuleTarget::Unset => return Err(AppError::NotFound("connection")),
    };
    let (connection, sealed) = store::connections::find_with_secrets(&state.db, team_id, connection_id)
        .await?
        .ok_or(AppError::NotFound("connection"))?;
    let app = state.catalog.get(&connection.app_key).ok_or(AppError::NotFound("app"))?;
    ensure_usable(app, &connection)?;
    let required = crate::flows::usage::required_scopes(&state.catalog, &module);
    let missing = app.missing_scopes(required, &connection.scopes);
    if !missing.is_empty() {
        return Err(AppError::AccountValidation {
            message: format!(
                "the connection \"{}\" lacks scopes module {} needs: {}",
                connection.name.as_str(),
                module.key,
                missing.join(", ")
            ),
            missing_scopes: missing,
        });
    }
    Ok(ResolvedModule { flow, module, connection, sealed })
}

/// Refuses a connection whose status says its credentials cannot work now.
pub fn ensure_usable(app: &App, connection: &Connection) -> AppResult<()> {
    match connection.status {
        ConnectionStatus::NeedsReauthorization | ConnectionStatus::PendingAuthorization => {
            Err(AppError::NeedsReauthorization(format!(
                "the connection \"{}\" needs a person to reauthorize it",
                connection.name.as_str()
            )))
        }
        ConnectionStatus::Invalid => Err(AppError::AccountValidation {
            message: format!("{} rejected the credentials of \"{}\"", app.name(), connection.name.as_str()),
            missing_scopes: Vec::new(),
        }),
        ConnectionStatus::Active | ConnectionStatus::Unverified => Ok(()),
    }
}

type ReadyMade = (String, BTreeMap<String, SecretString>, BTreeMap<String, SecretString>);

/// The base URL, headers and query parameters a runner attaches itself when it cannot use the
/// proxy.
fn ready_made(
    app: &App,
    connection: &Connection,
    fields: &BTreeMap<String, SecretString>,
    access_token: Option<&SecretString>,
) -> AppResult<ReadyMade> {
    let form =
        FormValues::from_parts(BTreeMap::new(), fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    let values = app.template_values(&form);
    let attachment = app
        .attachment(|key| match (key, access_token) {
            ("access_token", Some(token)) => Some(token.expose_secret()),
            _ => values(key),
        })
        .map_err(|missing| {
            AppError::internal(anyhow::anyhow!(
                "connection {} cannot fill the credentials of {}: {missing}",
                connection.id,
                app.key()
            ))
        })?;
    Ok((
        attachment.base_url,
        attachment.headers.into_iter().collect(),
        attachment.query.into_iter().collect(),
    ))
}
