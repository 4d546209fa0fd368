//! Which connection a proxied call uses, named by the caller's `Plugboard-*` headers, and
//! whether the caller may use it: service tokens through their team's connections and flows,
//! `ADMIN` and `MEMBER` users through their team's connections, `MONITORING` not at all.
//! Another team's ids answer exactly like missing ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;

use crate::catalog::FormValues;
use crate::domain::{Connection, ConnectionId, FlowId, Principal, TeamAccess, TeamId};
use crate::error::AppError;
use crate::state::AppState;
use crate::{access, connections, store};

use super::error::ProxyError;
use super::opened::{Opened, OpenedConnections};

/// What the caller named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Connection(ConnectionId),
    Module { flow_id: FlowId, module_key: String, select: Option<String> },
}

/// The `Plugboard-*` headers a call names its connection with.
#[derive(Debug, Default)]
pub struct Naming<'a> {
    pub connection: Option<&'a str>,
    pub flow: Option<&'a str>,
    pub module: Option<&'a str>,
    pub select: Option<&'a str>,
}

impl Naming<'_> {
    pub fn parse(&self) -> Result<Via, ProxyError> {
        let trimmed = |value: Option<&str>| value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        match (trimmed(self.connection), trimmed(self.flow), trimmed(self.module)) {
            (Some(id), None, None) => id.parse().map(Via::Connection).map_err(|_| {
                ProxyError::bad_request("Plugboard-Connection must be a connection id (a UUID)")
            }),
            (None, Some(flow), Some(module_key)) => {
                let flow_id = flow
                    .parse()
                    .map_err(|_| ProxyError::bad_request("Plugboard-Flow must be a flow id (a UUID)"))?;
                if module_key.len() > 100 {
                    return Err(ProxyError::bad_request(
                        "Plugboard-Module is a module key of 1 to 100 characters",
                    ));
                }
                Ok(Via::Module { flow_id, module_key, select: trimmed(self.select) })
            }
            (None, Some(_), None) => {
                Err(ProxyError::bad_request("Plugboard-Flow needs Plugboard-Module too"))
            }
            (None, None, Some(_)) => {
                Err(ProxyError::bad_request("Plugboard-Module needs Plugboard-Flow too"))
            }
            (None, None, None) => Err(ProxyError::bad_request(
                "name the connection to use: Plugboard-Connection, or Plugboard-Flow with Plugboard-Module",
            )),
            _ => Err(ProxyError::bad_request(
                "give Plugboard-Connection or Plugboard-Flow with Plugboard-Module, not both",
            )),
        }
    }
}

/// The connection a call goes through, and the flow module it was made for.
pub struct Target {
    pub connection: Arc<Connection>,
    pub secrets: Secrets,
    pub module: Option<ModuleRef>,
}

/// The connection's secrets: sealed as read, or already opened (from `OpenedConnections`).
pub enum Secrets {
    Sealed(Option<Vec<u8>>),
    Opened(Arc<FormValues>),
}

/// A flow's module: its key in the flow, and the app module it is.
#[derive(Debug, Clone)]
pub struct ModuleRef {
    pub flow_id: FlowId,
    pub key: String,
    pub app_module: String,
}

pub async fn resolve(
    state: &AppState,
    opened: &OpenedConnections,
    principal: &Principal,
    via: Via,
) -> Result<Target, ProxyError> {
    match via {
        Via::Connection(id) => through_connection(state, opened, principal, id).await,
        Via::Module { flow_id, module_key, select } => {
            let Principal::Service { team_id, .. } = principal else {
                return Err(ProxyError::forbidden(
                    "flows' modules are called by flow runners: use a service token of the team, or name a \
                     connection with Plugboard-Connection",
                ));
            };
            let resolved =
                crate::connections::resolve_module(state, *team_id, flow_id, &module_key, select.as_deref())
                    .await?;
            Ok(Target {
                connection: Arc::new(resolved.connection),
                secrets: Secrets::Sealed(resolved.sealed),
                module: Some(ModuleRef {
                    flow_id,
                    key: resolved.module.key,
                    app_module: resolved.module.app_module,
                }),
            })
        }
    }
}

async fn through_connection(
    state: &AppState,
    opened: &OpenedConnections,
    principal: &Principal,
    id: ConnectionId,
) -> Result<Target, ProxyError> {
    let not_found = || ProxyError::from(AppError::NotFound("connection"));
    if let Some(kept) = opened.get(id) {
        may_call(state, principal, kept.connection.team_id).await?;
        let app = state.catalog.get(&kept.connection.app_key).ok_or_else(not_found)?;
        crate::connections::ensure_usable(app, &kept.connection)?;
        let secrets = Secrets::Opened(kept.form.clone());
        return Ok(Target { connection: kept.connection.clone(), secrets, module: None });
    }
    let ticket = opened.ticket();
    let team_id = match principal {
        // A runner's team is known: the read below, scoped to it, finds the connection or not.
        Principal::Service { team_id, .. } => *team_id,
        Principal::User { .. } => store::connections::owner_of(&state.db, id)
            .await
            .map_err(AppError::from)?
            .ok_or_else(not_found)?,
    };
    may_call(state, principal, team_id).await?;
    let (connection, sealed) = store::connections::find_with_secrets(&state.db, team_id, id)
        .await
        .map_err(AppError::from)?
        .ok_or_else(not_found)?;
    let app = state.catalog.get(&connection.app_key).ok_or_else(not_found)?;
    crate::connections::ensure_usable(app, &connection)?;
    let connection = Arc::new(connection);
    if app.oauth().is_some() {
        return Ok(Target { connection, secrets: Secrets::Sealed(sealed), module: None });
    }
    let form = Arc::new(form_values(state, &connection, sealed.as_deref())?);
    opened.keep(ticket, Arc::new(Opened { connection: connection.clone(), form: form.clone() }));
    Ok(Target { connection, secrets: Secrets::Opened(form), module: None })
}

/// Whether `principal` may call apps through `team_id`'s connections; another team's answers
/// like a missing connection.
async fn may_call(state: &AppState, principal: &Principal, team_id: TeamId) -> Result<(), ProxyError> {
    let access = access::cached_team_access(state, principal, team_id)
        .await
        .map_err(|_| ProxyError::from(AppError::NotFound("connection")))?;
    if let TeamAccess::Member(role) = access
        && !role.can_manage()
    {
        return Err(ProxyError::forbidden(format!(
            "your role in this team is {}, which may not call apps through connections; ask an ADMIN",
            role.as_str()
        )));
    }
    Ok(())
}

/// The connection's fields with its secrets opened (tokens left out: they are fetched fresh).
pub(super) fn form_values(
    state: &AppState,
    connection: &Connection,
    sealed: Option<&[u8]>,
) -> Result<FormValues, ProxyError> {
    let secrets: BTreeMap<String, SecretString> = match sealed {
        Some(blob) => connections::open_secrets(&state.sealer, connection.team_id, connection.id, blob)
            .map_err(ProxyError::internal)?,
        None => BTreeMap::new(),
    };
    let form_secrets =
        secrets.into_iter().filter(|(k, _)| k != "access_token" && k != "refresh_token").collect();
    let form = FormValues::from_parts(connection.public_fields.clone(), form_secrets);
    // The grant's kept details (Salesforce's `instance_url`) fill the API base like fields.
    Ok(connections::with_details(&form, &connection.token_details))
}
