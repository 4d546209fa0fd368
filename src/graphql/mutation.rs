//! Changes to connections. Each answers the changed object or a coded error, and changes
//! nothing when it errors.

use async_graphql::{Context, ID, InputObject, Object};

use super::ids::parse_id;
use super::types::connection::{ConnectionObject, ConnectionPayload, DeletePayload, Verification};
use super::types::flow::ScopeWarning;
use super::{admit_provider_call, caller, state};
use crate::connections::{self, CreateConnection, EditConnection};
use crate::domain::{ConnectionId, TeamId};
use crate::error::AppResult;

#[derive(Default)]
pub struct ConnectionMutation;

#[derive(InputObject)]
pub struct CreateConnectionInput {
    team_id: ID,
    /// The app's catalog key, e.g. `openai` or `http-api-key`.
    app: String,
    name: String,
    /// The form's values by field key, secrets included.
    fields: async_graphql::Json<serde_json::Value>,
    /// Scopes to request (OAuth) or that the credential carries (API keys).
    scopes: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct EditConnectionInput {
    /// A new name; the current one is kept when absent.
    name: Option<String>,
    /// The complete new form. It replaces the old one: secrets must be entered again.
    fields: async_graphql::Json<serde_json::Value>,
    /// New scopes; the current ones are kept when absent.
    scopes: Option<Vec<String>>,
    /// The version the edit is based on; a newer stored version answers `CONFLICT`.
    version: Option<i32>,
}

#[Object]
impl ConnectionMutation {
    async fn create_connection(
        &self,
        ctx: &Context<'_>,
        input: CreateConnectionInput,
    ) -> AppResult<ConnectionPayload> {
        admit_provider_call(ctx)?;
        let team_id: TeamId = parse_id(&input.team_id, "teamId")?;
        let connection = connections::create(
            state(ctx)?,
            caller(ctx)?,
            CreateConnection {
                team_id,
                app: input.app,
                name: input.name,
                fields: input.fields.0,
                scopes: input.scopes,
            },
        )
        .await?;
        Ok(payload(connection))
    }

    /// Replaces the connection's data entirely with the new form.
    async fn edit_connection(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: EditConnectionInput,
    ) -> AppResult<ConnectionPayload> {
        admit_provider_call(ctx)?;
        let id: ConnectionId = parse_id(&id, "id")?;
        let connection = connections::edit(
            state(ctx)?,
            caller(ctx)?,
            id,
            EditConnection {
                name: input.name,
                fields: input.fields.0,
                scopes: input.scopes,
                version: input.version,
            },
        )
        .await?;
        Ok(payload(connection))
    }

    /// Checks the connection with its provider now and records the result. A provider outage
    /// answers `PROVIDER_UNAVAILABLE` as the outcome and leaves the status as it was.
    async fn verify_connection(&self, ctx: &Context<'_>, id: ID) -> AppResult<Verification> {
        admit_provider_call(ctx)?;
        let id: ConnectionId = parse_id(&id, "id")?;
        let verification = connections::verify_connection(state(ctx)?, caller(ctx)?, id).await?;
        Ok(verification.into())
    }

    /// Starts a new consent for an OAuth connection (`authorizationUrl`). The current tokens
    /// stay in use until the consent completes; abandoning it changes nothing.
    async fn reauthorize_connection(&self, ctx: &Context<'_>, id: ID) -> AppResult<ConnectionPayload> {
        admit_provider_call(ctx)?;
        let id: ConnectionId = parse_id(&id, "id")?;
        Ok(payload(connections::reauthorize(state(ctx)?, caller(ctx)?, id).await?))
    }

    /// Deletes the connection and its secrets. When running flows use it, answers
    /// `CONNECTION_IN_USE` with `extensions.flows` unless `confirm` is true; a confirmed delete
    /// leaves their modules without a connection.
    async fn delete_connection(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default_with = "Some(false)")] confirm: Option<bool>,
    ) -> AppResult<DeletePayload> {
        let id: ConnectionId = parse_id(&id, "id")?;
        let deleted = connections::delete(state(ctx)?, caller(ctx)?, id, confirm.unwrap_or(false)).await?;
        Ok(DeletePayload { deleted_id: ID(deleted.to_string()) })
    }
}

/// A created, edited or reauthorized connection, with the check made of it and the consent
/// URL when a person must grant access.
fn payload(changed: connections::Changed) -> ConnectionPayload {
    ConnectionPayload {
        connection: ConnectionObject(changed.connection),
        authorization_url: changed.authorization_url.map(String::from),
        verification: changed.verification.map(Verification::from),
        warnings: changed.warnings.into_iter().map(ScopeWarning::from).collect(),
    }
}
