//! The life of a connection: create, read, edit (replace), verify, delete, and key rotation.
//!
//! Every change checks the caller's access to the team, validates the form against the app's
//! catalog entry, checks the credentials with the provider (or, for OAuth apps, waits for the
//! person's consent), seals the secrets, and writes the change, its verification and its audit
//! events in one transaction. Nothing here returns or
//! logs a secret value.

mod audit;
mod consent;
mod credentials;
mod granted;
mod grants;
mod record;
mod refresh;
mod rotation;
mod scheduled;
mod secrets;
mod tokens;
mod verification;

use crate::access::{self, TeamScope};
use crate::catalog::{App, FormMode, FormValues};
use crate::domain::{
    AuthType, Connection, ConnectionFilter, ConnectionId, ConnectionName, ConnectionParts, ConnectionStatus,
    ConsentPurpose, Health, Principal, TeamId, Verification,
};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;
use crate::store::connections::{ConnectionData, NewConnection};
use crate::{flows, oauth};
use record::{Change, Fact, Write};
use secrets::StoredSecrets;

pub use consent::{Callback, Completed, Refused, complete as complete_consent};
pub use credentials::{ModuleCredentials, ResolvedModule, ensure_usable, module_credentials, resolve_module};
pub use granted::with_details;
pub use grants::warn_expiring_grants;
pub use rotation::{RotationReport, TableReport, check_keys, rotate_keys};
pub use scheduled::{AssessedChecks, CheckedConnection, assess_scheduled_checks, record_assessed_checks};
pub use secrets::open as open_secrets;
pub use tokens::{fresh_access_token, replace_refused_token};
pub use verification::{check_stored, record_check, verify_connection};

pub struct CreateConnection {
    pub team_id: TeamId,
    pub app: String,
    pub name: String,
    pub fields: serde_json::Value,
    pub scopes: Option<Vec<String>>,
}

pub struct EditConnection {
    pub name: Option<String>,
    pub fields: serde_json::Value,
    pub scopes: Option<Vec<String>>,
    /// The version the caller edited; a newer stored version is a conflict.
    pub version: Option<i32>,
}

/// Most scopes a connection may list, and the longest scope accepted.
const MAX_SCOPES: usize = 100;
const MAX_SCOPE_CHARS: usize = 200;

/// A created or edited connection, the check made of it, and where to send a person when the
/// change waits for consent (OAuth).
pub struct Changed {
    pub connection: Connection,
    pub verification: Option<Verification>,
    pub authorization_url: Option<url::Url>,
    /// Modules of running flows that the connection's scopes no longer cover.
    pub warnings: Vec<flows::ScopeWarning>,
}

pub async fn create(state: &AppState, principal: &Principal, input: CreateConnection) -> AppResult<Changed> {
    access::require_manage(&state.db, principal, input.team_id).await?;
    let app = find_app(state, &input.app)?;
    let name = ConnectionName::parse(&input.name).map_err(|m| AppError::bad_input("name", m))?;
    let form = app.check_form(&input.fields, FormMode::Create).map_err(field_error)?;
    let scopes = check_scopes(input.scopes.unwrap_or_default())?;
    check_egress(state, app, &form).await?;
    let id = ConnectionId::new();
    if app.auth_type().needs_consent() {
        return create_pending(state, principal, input.team_id, id, app, name, form, scopes).await;
    }
    let data = connection_data(state, app, input.team_id, id, name, form, scopes).await?;
    let verification = data.verification.clone();
    let txn = crate::store::begin(&state.db).await?;
    let connection = insert(&txn, state, principal, app, input.team_id, id, data).await?;
    commit(state, txn).await?;
    Ok(Changed { connection, verification, authorization_url: None, warnings: Vec::new() })
}

/// An OAuth connection waits for consent: stored pending, with the consent's state, in one
/// transaction, so a failure leaves neither.
#[allow(clippy::too_many_arguments)]
async fn create_pending(
    state: &AppState,
    principal: &Principal,
    team_id: TeamId,
    id: ConnectionId,
    app: &App,
    name: ConnectionName,
    form: FormValues,
    scopes: Vec<String>,
) -> AppResult<Changed> {
    let scopes = oauth::requested_scopes(app, &scopes).map_err(|err| AppError::bad_input("scopes", err))?;
    let secrets = StoredSecrets { form: form.secrets().clone(), ..StoredSecrets::default() };
    let data = ConnectionData {
        name,
        status: ConnectionStatus::PendingAuthorization,
        public_fields: form.public().clone(),
        secret_fields: form.secret_keys().map(str::to_owned).collect(),
        sealed: secrets.seal(&state.sealer, team_id, id)?,
        scopes: scopes.clone(),
        verification: None,
        account_label: None,
        health: Health::default(),
        expires_at: None,
        grant_expires_at: None,
        token_details: Default::default(),
    };
    let txn = crate::store::begin(&state.db).await?;
    let connection = insert(&txn, state, principal, app, team_id, id, data).await?;
    let url = consent::start(
        state,
        &txn,
        principal,
        &connection,
        app,
        &form,
        &scopes,
        ConsentPurpose::Create,
        None,
    )
    .await?;
    commit(state, txn).await?;
    Ok(Changed { connection, verification: None, authorization_url: Some(url), warnings: Vec::new() })
}

pub async fn edit(
    state: &AppState,
    principal: &Principal,
    id: ConnectionId,
    input: EditConnection,
) -> AppResult<Changed> {
    let current = get(state, principal, id).await?;
    access::require_manage(&state.db, principal, current.team_id).await?;
    if let Some(version) = input.version
        && version != current.version
    {
        return Err(stale(current.version));
    }
    let app = find_app(state, &current.app_key)?;
    let name = match input.name {
        Some(raw) => ConnectionName::parse(&raw).map_err(|m| AppError::bad_input("name", m))?,
        None => current.name.clone(),
    };
    let form = app.check_form(&input.fields, FormMode::Edit).map_err(field_error)?;
    let scopes = match input.scopes {
        Some(scopes) => check_scopes(scopes)?,
        None => current.scopes.clone(),
    };
    check_egress(state, app, &form).await?;
    if app.auth_type().needs_consent() {
        // The edit waits for consent; until then the connection keeps working as it was.
        let scopes =
            oauth::requested_scopes(app, &scopes).map_err(|err| AppError::bad_input("scopes", err))?;
        let pending = consent::PendingEdit { name, form: form.clone() };
        let txn = crate::store::begin(&state.db).await?;
        let url = consent::start(
            state,
            &txn,
            principal,
            &current,
            app,
            &form,
            &scopes,
            ConsentPurpose::Edit,
            Some(pending),
        )
        .await?;
        txn.commit().await?;
        return Ok(Changed {
            connection: current,
            verification: None,
            authorization_url: Some(url),
            warnings: Vec::new(),
        });
    }
    let data = connection_data(state, app, current.team_id, id, name, form, scopes).await?;
    let verification = data.verification.clone();
    let txn = crate::store::begin(&state.db).await?;
    let change = Change {
        actor: &principal.actor(),
        fact: Fact::Edited,
        before: Some(&current),
        write: Write::Replace { version: current.version, data, by: principal.user_id() },
        check: verification.as_ref(),
    };
    let edited = record::record(&txn, state, change).await?.ok_or_else(|| stale(current.version))?;
    commit(state, txn).await?;
    let warnings = scope_warnings(state, &edited).await?;
    Ok(Changed { connection: edited, verification, authorization_url: None, warnings })
}

/// `reauthorizeConnection`: a new consent for an OAuth connection. Its current tokens stay in
/// use until the consent completes; abandoning it changes nothing.
pub async fn reauthorize(state: &AppState, principal: &Principal, id: ConnectionId) -> AppResult<Changed> {
    let current = get(state, principal, id).await?;
    access::require_manage(&state.db, principal, current.team_id).await?;
    let app = find_app(state, &current.app_key)?;
    if !app.auth_type().needs_consent() {
        return Err(AppError::bad_input(
            "id",
            format!(
                "{} connections are not authorized by consent; edit the connection to enter new credentials",
                app.name()
            ),
        ));
    }
    let (connection, sealed) = store::connections::find_with_secrets(&state.db, current.team_id, id)
        .await?
        .ok_or(AppError::NotFound("connection"))?;
    let secrets = StoredSecrets::open(&state.sealer, connection.team_id, id, sealed.as_deref())?;
    let form = FormValues::from_parts(connection.public_fields.clone(), secrets.form);
    let scopes = connection.scopes.clone();
    let url = consent::start(
        state,
        &state.db,
        principal,
        &connection,
        app,
        &form,
        &scopes,
        ConsentPurpose::Reauthorize,
        None,
    )
    .await?;
    Ok(Changed { connection, verification: None, authorization_url: Some(url), warnings: Vec::new() })
}

/// Checks the new credentials with the provider (fetching a token first for client-credentials
/// apps) and seals them: everything a create or an edit stores.
async fn connection_data(
    state: &AppState,
    app: &App,
    team_id: TeamId,
    id: ConnectionId,
    name: ConnectionName,
    form: FormValues,
    scopes: Vec<String>,
) -> AppResult<ConnectionData> {
    let mut secrets = StoredSecrets { form: form.secrets().clone(), ..StoredSecrets::default() };
    let (check, expires_at) = if app.auth_type() == AuthType::OAuth2ClientCredentials {
        let first = tokens::first_client_token(state, app, &form, &scopes, team_id, id).await?;
        secrets.access_token = first.access_token;
        (first.check, first.expires_at)
    } else {
        (verification::check_form(state, app, &form, team_id, id).await?, None)
    };
    let status = ConnectionStatus::of_new_credentials(check.as_ref().map(|c| c.verification.outcome), false);
    Ok(ConnectionData {
        name,
        status,
        public_fields: form.public().clone(),
        secret_fields: form.secret_keys().map(str::to_owned).collect(),
        sealed: secrets.seal(&state.sealer, team_id, id)?,
        scopes,
        account_label: check.as_ref().and_then(|c| c.account_label.clone()),
        health: verification::initial_health(state, check.as_ref(), None),
        verification: check.map(|c| c.verification),
        expires_at,
        grant_expires_at: None,
        token_details: Default::default(),
    })
}

/// Deletes the connection and its secrets. If running flows use it (directly, or as a dynamic
/// connection's default), answers `CONNECTION_IN_USE` naming them unless `confirm`; a confirmed
/// delete leaves their modules without a connection.
pub async fn delete(
    state: &AppState,
    principal: &Principal,
    id: ConnectionId,
    confirm: bool,
) -> AppResult<ConnectionId> {
    let current = get(state, principal, id).await?;
    access::require_manage(&state.db, principal, current.team_id).await?;
    let broken = flows::usage::flows_broken_by_delete(&state.db, &current).await?;
    if !broken.is_empty() && !confirm {
        let names: Vec<String> = broken.iter().map(|f| format!("\"{}\"", f.name)).collect();
        return Err(AppError::ConnectionInUse {
            message: format!(
                "the connection is used by running flows ({}), which will stop working; delete with confirm: true to go ahead",
                names.join(", ")
            ),
            flows: broken,
        });
    }
    let txn = crate::store::begin(&state.db).await?;
    store::flows::detach_connection(&txn, current.team_id, id).await?;
    let change = Change {
        actor: &principal.actor(),
        fact: Fact::Deleted { broken },
        before: Some(&current),
        write: Write::Delete,
        check: None,
    };
    record::record(&txn, state, change).await?.ok_or(AppError::NotFound("connection"))?;
    commit(state, txn).await?;
    Ok(id)
}

/// Records a new connection of `app` in `txn`, with the check `data` brings.
async fn insert(
    txn: &sea_orm::DatabaseTransaction,
    state: &AppState,
    principal: &Principal,
    app: &App,
    team_id: TeamId,
    id: ConnectionId,
    data: ConnectionData,
) -> AppResult<Connection> {
    let verification = data.verification.clone();
    let new = NewConnection {
        id,
        team_id,
        app_key: app.key().to_owned(),
        auth_type: app.auth_type(),
        data,
        created_by: principal.user_id(),
    };
    let actor = principal.actor();
    let change = Change {
        actor: &actor,
        fact: Fact::Created,
        before: None,
        write: Write::Insert(new),
        check: verification.as_ref(),
    };
    // An insert has no guard, so it is always recorded.
    record::record(txn, state, change)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("an insert was reported as not written")))
}

/// Commits a change whose events and webhook deliveries were staged in `txn`, and wakes this
/// instance's dispatcher to send them.
pub(crate) async fn commit(state: &AppState, txn: sea_orm::DatabaseTransaction) -> AppResult<()> {
    txn.commit().await?;
    state.events.wake_dispatcher();
    Ok(())
}

/// A connection the caller can see; another team's answers exactly like a missing one.
pub async fn get(state: &AppState, principal: &Principal, id: ConnectionId) -> AppResult<Connection> {
    let team_id = visible_team(state, principal, id).await?;
    store::connections::find(&state.db, team_id, id).await?.ok_or(AppError::NotFound("connection"))
}

/// Like `get`, with the sealed secrets, for a caller about to use them: one read of the row.
pub async fn get_with_secrets(
    state: &AppState,
    principal: &Principal,
    id: ConnectionId,
) -> AppResult<(Connection, Option<Vec<u8>>)> {
    let team_id = visible_team(state, principal, id).await?;
    store::connections::find_with_secrets(&state.db, team_id, id)
        .await?
        .ok_or(AppError::NotFound("connection"))
}

/// The team of a connection the caller can see; another team's answers exactly like a missing
/// one.
async fn visible_team(state: &AppState, principal: &Principal, id: ConnectionId) -> AppResult<TeamId> {
    let not_found = || AppError::NotFound("connection");
    let team_id = store::connections::owner_of(&state.db, id).await?.ok_or_else(not_found)?;
    access::cached_team_access(state, principal, team_id).await.map_err(|_| not_found())?;
    Ok(team_id)
}

pub struct Page {
    pub connections: Vec<Connection>,
    pub has_next_page: bool,
    /// How many connections match across all pages; counted only when asked for.
    pub total_count: Option<u64>,
}

/// What `list` reads and counts.
pub struct PageRequest<'a> {
    pub filter: &'a ConnectionFilter,
    pub after: Option<ConnectionId>,
    pub first: u64,
    /// Whether to count every match too.
    pub count: bool,
    /// The parts of each connection to read; only a caller that shows no other may leave some
    /// out (see `ConnectionParts`).
    pub parts: ConnectionParts,
}

/// One page of a team's connections, counting them all too when asked (in the same statement).
/// The scope is the check made when the request resolved its `Team`; the list asks nothing more
/// about the caller.
pub async fn list(state: &AppState, scope: &TeamScope, request: PageRequest<'_>) -> AppResult<Page> {
    let PageRequest { filter, after, first, count, parts } = request;
    // Longer than any name, it could match none; and SQLite refuses a LIKE pattern of 50,000
    // bytes as a database error.
    if filter.search.as_ref().is_some_and(|search| search.chars().count() > ConnectionName::MAX_CHARS) {
        return Err(AppError::bad_input(
            "search",
            format!(
                "a search matches connection names, which have at most {} characters: send no more",
                ConnectionName::MAX_CHARS
            ),
        ));
    }
    let (mut connections, total_count) =
        store::connections::page(&state.db, scope.team(), filter, after, first + 1, parts, count).await?;
    let has_next_page = connections.len() as u64 > first;
    connections.truncate(first as usize);
    Ok(Page { connections, has_next_page, total_count })
}

/// The last checks of a connection the caller can see, newest first.
pub async fn verifications(
    state: &AppState,
    principal: &Principal,
    connection: &Connection,
    limit: u64,
) -> AppResult<Vec<crate::domain::Verification>> {
    access::cached_team_access(state, principal, connection.team_id).await?;
    Ok(store::verifications::list(&state.db, connection.team_id, connection.id, limit).await?)
}

fn find_app<'a>(state: &'a AppState, key: &str) -> AppResult<&'a App> {
    state.catalog.get(key).ok_or_else(|| {
        AppError::bad_input(
            "app",
            format!("there is no app {key:?} in the catalog; query `apps` to list them"),
        )
    })
}

/// Modules of running flows that `connection`'s scopes do not cover.
async fn scope_warnings(state: &AppState, connection: &Connection) -> AppResult<Vec<flows::ScopeWarning>> {
    let usages = flows::usage::usages(&state.db, &state.catalog, connection).await?;
    Ok(usages
        .into_iter()
        .filter(|u| u.flow.status.is_running() && !u.missing_scopes.is_empty())
        .map(|u| flows::ScopeWarning {
            message: format!(
                "module {} of flow \"{}\" will fail: it needs {}",
                u.module_key,
                u.flow.name,
                u.missing_scopes.join(", ")
            ),
            module_key: u.module_key,
            missing_scopes: u.missing_scopes,
        })
        .collect())
}

/// Refuses, before anything is stored, a form whose URLs lead where the egress policy forbids
/// (loopback, private, link-local addresses), naming the field that chose the host: such a
/// connection could never be checked or refreshed.
async fn check_egress(state: &AppState, app: &App, form: &FormValues) -> AppResult<()> {
    let lookup = app.template_values(form);
    for (_, template, fields) in app.user_supplied_urls() {
        let Ok(text) = template.render(&lookup) else { continue };
        let Ok(url) = url::Url::parse(&text) else { continue };
        if let Err(refused) = state.outbound.check_user_url(&url).await {
            let field = fields.first().copied().unwrap_or("fields");
            return Err(AppError::bad_input(format!("fields.{field}"), refused));
        }
    }
    Ok(())
}

fn field_error(err: crate::catalog::FieldError) -> AppError {
    AppError::BadUserInput { message: err.to_string(), field: Some(format!("fields.{}", err.field)) }
}

fn check_scopes(scopes: Vec<String>) -> AppResult<Vec<String>> {
    if scopes.len() > MAX_SCOPES {
        return Err(AppError::bad_input("scopes", format!("at most {MAX_SCOPES} scopes")));
    }
    let mut checked: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let scope = scope.trim().to_owned();
        if scope.is_empty() || scope.len() > MAX_SCOPE_CHARS || scope.chars().any(char::is_whitespace) {
            return Err(AppError::bad_input(
                "scopes",
                format!("a scope is 1 to {MAX_SCOPE_CHARS} characters without spaces"),
            ));
        }
        if !checked.contains(&scope) {
            checked.push(scope);
        }
    }
    Ok(checked)
}

fn stale(current_version: i32) -> AppError {
    AppError::Conflict(format!(
        "the connection was changed by someone else (it is now at version {current_version}); reload it and edit again"
    ))
}
