//! Changes to flows, dynamic connections and webhooks.

use async_graphql::{Context, ID, InputObject, Object};

use super::ids::parse_id;
use super::types::connection::DeletePayload;
use super::types::flow::{DynamicConnectionObject, FlowObject, FlowPayload, FlowStatus, ScopeWarning};
use super::types::webhook::WebhookObject;
use super::{caller, state};
use crate::domain::{ConnectionId, DynamicConnectionId, FlowId, TeamId};
use crate::error::AppResult;
use crate::flows::{self, DynamicInput, MemberInput, ModuleInput};

#[derive(Default)]
pub struct FlowMutation;

#[derive(InputObject)]
pub struct FlowModuleInput {
    /// Unique within the flow; runners name the module by it.
    key: String,
    /// The app's catalog key.
    app: String,
    /// The catalog module's key.
    module: String,
    connection_id: Option<ID>,
    dynamic_connection_id: Option<ID>,
}

#[derive(InputObject)]
pub struct CreateFlowInput {
    team_id: ID,
    name: String,
    #[graphql(default_with = "FlowStatus::Inactive")]
    status: FlowStatus,
    modules: Vec<FlowModuleInput>,
}

#[derive(InputObject)]
pub struct UpdateFlowInput {
    name: Option<String>,
    status: Option<FlowStatus>,
    /// Replaces all modules when given.
    modules: Option<Vec<FlowModuleInput>>,
}

#[derive(InputObject)]
pub struct DynamicMemberInput {
    connection_id: ID,
    label: String,
}

#[derive(InputObject)]
pub struct CreateDynamicConnectionInput {
    team_id: ID,
    name: String,
    app: String,
    members: Vec<DynamicMemberInput>,
    /// The default member; the first one when absent.
    default_connection_id: Option<ID>,
}

fn modules(inputs: Vec<FlowModuleInput>) -> AppResult<Vec<ModuleInput>> {
    inputs
        .into_iter()
        .enumerate()
        .map(|(index, m)| {
            Ok(ModuleInput {
                key: m.key,
                app: m.app,
                module: m.module,
                connection_id: m
                    .connection_id
                    .map(|id| parse_id::<ConnectionId>(&id, &format!("modules[{index}].connectionId")))
                    .transpose()?,
                dynamic_connection_id: m
                    .dynamic_connection_id
                    .map(|id| {
                        parse_id::<DynamicConnectionId>(&id, &format!("modules[{index}].dynamicConnectionId"))
                    })
                    .transpose()?,
            })
        })
        .collect()
}

fn flow_payload((flow, warnings): (crate::domain::Flow, Vec<flows::ScopeWarning>)) -> FlowPayload {
    FlowPayload { flow: FlowObject(flow), warnings: warnings.into_iter().map(ScopeWarning::from).collect() }
}

#[Object]
impl FlowMutation {
    /// Creates a flow. Modules whose connection lacks scopes they need come back as warnings.
    async fn create_flow(&self, ctx: &Context<'_>, input: CreateFlowInput) -> AppResult<FlowPayload> {
        let team_id: TeamId = parse_id(&input.team_id, "teamId")?;
        let modules = modules(input.modules)?;
        let created =
            flows::create(state(ctx)?, caller(ctx)?, team_id, input.name, input.status.into(), modules)
                .await?;
        Ok(flow_payload(created))
    }

    async fn update_flow(&self, ctx: &Context<'_>, id: ID, input: UpdateFlowInput) -> AppResult<FlowPayload> {
        let id: FlowId = parse_id(&id, "id")?;
        let modules = input.modules.map(modules).transpose()?;
        let updated =
            flows::update(state(ctx)?, caller(ctx)?, id, input.name, input.status.map(Into::into), modules)
                .await?;
        Ok(flow_payload(updated))
    }

    async fn delete_flow(&self, ctx: &Context<'_>, id: ID) -> AppResult<DeletePayload> {
        let id: FlowId = parse_id(&id, "id")?;
        let deleted = flows::delete(state(ctx)?, caller(ctx)?, id).await?;
        Ok(DeletePayload { deleted_id: ID(deleted.to_string()) })
    }

    async fn create_dynamic_connection(
        &self,
        ctx: &Context<'_>,
        input: CreateDynamicConnectionInput,
    ) -> AppResult<DynamicConnectionObject> {
        let team_id: TeamId = parse_id(&input.team_id, "teamId")?;
        let members = input
            .members
            .into_iter()
            .map(|m| {
                Ok(MemberInput {
                    connection_id: parse_id(&m.connection_id, "members.connectionId")?,
                    label: m.label,
                })
            })
            .collect::<AppResult<Vec<_>>>()?;
        let default_connection_id =
            input.default_connection_id.map(|id| parse_id(&id, "defaultConnectionId")).transpose()?;
        let dynamic = flows::create_dynamic(
            state(ctx)?,
            caller(ctx)?,
            DynamicInput { team_id, name: input.name, app: input.app, members, default_connection_id },
        )
        .await?;
        Ok(DynamicConnectionObject(dynamic))
    }

    /// Switches the default member: every module using the dynamic connection moves at once.
    async fn set_dynamic_connection_default(
        &self,
        ctx: &Context<'_>,
        id: ID,
        connection_id: ID,
    ) -> AppResult<DynamicConnectionObject> {
        let id: DynamicConnectionId = parse_id(&id, "id")?;
        let connection_id: ConnectionId = parse_id(&connection_id, "connectionId")?;
        Ok(DynamicConnectionObject(flows::set_default(state(ctx)?, caller(ctx)?, id, connection_id).await?))
    }

    async fn add_dynamic_connection_member(
        &self,
        ctx: &Context<'_>,
        id: ID,
        connection_id: ID,
        label: String,
    ) -> AppResult<DynamicConnectionObject> {
        let id: DynamicConnectionId = parse_id(&id, "id")?;
        let member = MemberInput { connection_id: parse_id(&connection_id, "connectionId")?, label };
        Ok(DynamicConnectionObject(flows::add_member(state(ctx)?, caller(ctx)?, id, member).await?))
    }

    async fn remove_dynamic_connection_member(
        &self,
        ctx: &Context<'_>,
        id: ID,
        connection_id: ID,
    ) -> AppResult<DynamicConnectionObject> {
        let id: DynamicConnectionId = parse_id(&id, "id")?;
        let connection_id: ConnectionId = parse_id(&connection_id, "connectionId")?;
        Ok(DynamicConnectionObject(flows::remove_member(state(ctx)?, caller(ctx)?, id, connection_id).await?))
    }

    /// Registers an endpoint for the team's connection events (`connection.needs_reauthorization`,
    /// `connection.invalid`, `connection.recovered`, `connection.created`, `connection.deleted`).
    /// Deliveries are signed with `secret`: `Plugboard-Signature: t=<unix time>,v1=<hex
    /// HMAC-SHA256 of "<t>.<body>">`.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        team_id: ID,
        url: String,
        secret: String,
    ) -> AppResult<WebhookObject> {
        let team_id: TeamId = parse_id(&team_id, "teamId")?;
        let hook = crate::webhooks::register(state(ctx)?, caller(ctx)?, team_id, &url, secret.into()).await?;
        Ok(WebhookObject(hook))
    }

    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> AppResult<DeletePayload> {
        let id: uuid::Uuid = parse_id(&id, "id")?;
        let deleted = crate::webhooks::remove(state(ctx)?, caller(ctx)?, id).await?;
        Ok(DeletePayload { deleted_id: ID(deleted.to_string()) })
    }

    async fn delete_dynamic_connection(&self, ctx: &Context<'_>, id: ID) -> AppResult<DeletePayload> {
        let id: DynamicConnectionId = parse_id(&id, "id")?;
        let deleted = flows::delete_dynamic(state(ctx)?, caller(ctx)?, id).await?;
        Ok(DeletePayload { deleted_id: ID(deleted.to_string()) })
    }
}
