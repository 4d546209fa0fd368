//! Flows, their modules, dynamic connections and runner credentials as the API shows them.

use async_graphql::{ComplexObject, Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::connection::ConnectionObject;
use super::enums::AuthType;
use crate::connections::ModuleCredentials;
use crate::domain::{self, ModuleTarget};
use crate::error::AppResult;
use crate::flows;
use crate::graphql::loaders::{TeamKey, loaders};
use crate::graphql::state;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "domain::FlowStatus")]
pub enum FlowStatus {
    Active,
    Scheduled,
    Inactive,
}

pub struct FlowObject(pub domain::Flow);

#[Object(name = "Flow")]
impl FlowObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn status(&self) -> FlowStatus {
        self.0.status.into()
    }

    async fn modules(&self) -> Vec<FlowModule> {
        self.0.modules.iter().map(|m| FlowModule { team_id: self.0.team_id, module: m.clone() }).collect()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct FlowModule {
    team_id: domain::TeamId,
    module: domain::FlowModule,
}

#[Object]
impl FlowModule {
    async fn key(&self) -> &str {
        &self.module.key
    }

    /// The app's catalog key.
    async fn app(&self) -> &str {
        &self.module.app_key
    }

    /// The catalog module's key.
    async fn module(&self) -> &str {
        &self.module.app_module
    }

    /// The scopes the catalog module needs.
    async fn required_scopes(&self, ctx: &Context<'_>) -> AppResult<Vec<String>> {
        Ok(flows::usage::required_scopes(&state(ctx)?.catalog, &self.module).to_vec())
    }

    /// The connection it uses; null when it uses a dynamic connection or none (e.g. after its
    /// connection was deleted).
    async fn connection(&self, ctx: &Context<'_>) -> AppResult<Option<ConnectionObject>> {
        let ModuleTarget::Connection(id) = self.module.target else { return Ok(None) };
        let key = TeamKey { team_id: self.team_id, id };
        Ok(loaders(ctx)?.connections(ctx)?.load_one(key).await?.map(ConnectionObject))
    }

    async fn dynamic_connection(&self, ctx: &Context<'_>) -> AppResult<Option<DynamicConnectionObject>> {
        let ModuleTarget::Dynamic(id) = self.module.target else { return Ok(None) };
        let key = TeamKey { team_id: self.team_id, id };
        Ok(loaders(ctx)?.dynamic_connections(ctx)?.load_one(key).await?.map(DynamicConnectionObject))
    }

    /// Whether the module has nothing to authenticate with: it will fail until one is set.
    async fn needs_connection(&self) -> bool {
        self.module.target == ModuleTarget::Unset
    }
}

pub struct DynamicConnectionObject(pub domain::DynamicConnection);

#[Object(name = "DynamicConnection")]
impl DynamicConnectionObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn app(&self) -> &str {
        &self.0.app_key
    }

    /// Increases with every change of members or default.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// The member modules use unless a run selects another.
    async fn default_connection(&self, ctx: &Context<'_>) -> AppResult<Option<ConnectionObject>> {
        let Some(id) = self.0.default_connection else { return Ok(None) };
        let key = TeamKey { team_id: self.0.team_id, id };
        Ok(loaders(ctx)?.connections(ctx)?.load_one(key).await?.map(ConnectionObject))
    }

    async fn members(&self) -> Vec<DynamicMember> {
        self.0
            .members
            .iter()
            .map(|m| DynamicMember { connection_id: ID(m.connection_id.to_string()), label: m.label.clone() })
            .collect()
    }
}

#[derive(SimpleObject)]
pub struct DynamicMember {
    connection_id: ID,
    /// What a run selects this member by, e.g. a department.
    label: String,
}

/// A module whose connection lacks scopes it needs; the flow fails with
/// `ACCOUNT_VALIDATION_ERROR` until it is reauthorized with them.
#[derive(SimpleObject)]
pub struct ScopeWarning {
    module_key: String,
    missing_scopes: Vec<String>,
    message: String,
}

impl From<flows::ScopeWarning> for ScopeWarning {
    fn from(w: flows::ScopeWarning) -> Self {
        ScopeWarning { module_key: w.module_key, missing_scopes: w.missing_scopes, message: w.message }
    }
}

#[derive(SimpleObject)]
pub struct FlowPayload {
    pub flow: FlowObject,
    pub warnings: Vec<ScopeWarning>,
}

/// A module that uses a connection, and what it misses.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ModuleUsage {
    pub module_key: String,
    pub missing_scopes: Vec<String>,
    #[graphql(skip)]
    pub flow: domain::Flow,
}

#[ComplexObject]
impl ModuleUsage {
    async fn flow(&self) -> FlowObject {
        FlowObject(self.flow.clone())
    }
}

impl From<flows::usage::Usage> for ModuleUsage {
    fn from(u: flows::usage::Usage) -> Self {
        ModuleUsage { module_key: u.module_key, missing_scopes: u.missing_scopes, flow: u.flow }
    }
}

/// What a flow runner needs to call the app. Only service tokens of the team get it.
pub struct ModuleCredentialsObject(pub ModuleCredentials);

#[Object(name = "ModuleCredentials")]
impl ModuleCredentialsObject {
    async fn connection_id(&self) -> ID {
        ID(self.0.connection_id.to_string())
    }

    async fn auth_type(&self) -> AuthType {
        self.0.auth_type.into()
    }

    /// Every form value of the connection, secrets included.
    async fn fields(&self) -> async_graphql::Json<std::collections::BTreeMap<&str, &str>> {
        async_graphql::Json(self.0.fields.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect())
    }

    /// A fresh access token (OAuth apps); refreshed first when it was near expiry.
    async fn access_token(&self) -> Option<&str> {
        self.0.access_token.as_ref().map(|t| t.expose_secret())
    }

    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// The app's API base URL for this connection: requests go under it.
    async fn base_url(&self) -> &str {
        &self.0.base_url
    }

    /// Ready-made headers carrying the credentials (an `Authorization` header, an API-key
    /// header, ...), as the app file says; add them to every request under `baseUrl`.
    async fn headers(&self) -> async_graphql::Json<std::collections::BTreeMap<&str, &str>> {
        async_graphql::Json(self.0.headers.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect())
    }

    /// Query parameters carrying the credentials, for apps that take an API key in the URL.
    async fn query_params(&self) -> async_graphql::Json<std::collections::BTreeMap<&str, &str>> {
        async_graphql::Json(self.0.query.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect())
    }
}
