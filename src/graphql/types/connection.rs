//! A connection as its team sees it: everything but the secrets, which are only named.

use std::collections::BTreeMap;

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::api_call::{ApiCallEdge, ApiCallList};
use super::app::AppObject;
use super::audit::AuditEventList;
use super::enums::{AuthType, ConnectionStatus, GrantStatus, VerificationOutcome};
use super::flow::ModuleUsage;
use crate::connections;
use crate::domain;
use crate::error::{AppError, AppResult};
use crate::graphql::ids::MAX_PAGE_SIZE;
use crate::graphql::ids::{decode_cursor, encode_cursor, page_size};
use crate::graphql::loaders::{TeamKey, loaders};
use crate::graphql::{audit_page, caller, state};

pub struct ConnectionObject(pub domain::Connection);

#[Object(name = "Connection")]
impl ConnectionObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        self.0.name.as_str()
    }

    /// The app's catalog entry. Errors only if the app was removed from the catalog.
    async fn app(&self, ctx: &Context<'_>) -> AppResult<AppObject> {
        let app = state(ctx)?.catalog.get(&self.0.app_key).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "connection {} uses app {:?}, which is no longer in the catalog",
                self.0.id,
                self.0.app_key
            ))
        })?;
        Ok(app.into())
    }

    /// The app's key, readable even when the app has left the catalog.
    async fn app_key(&self) -> &str {
        &self.0.app_key
    }

    async fn auth_type(&self) -> AuthType {
        self.0.auth_type.into()
    }

    async fn status(&self) -> ConnectionStatus {
        self.0.status.into()
    }

    /// Non-secret form values, to prefill the edit form.
    async fn fields(&self) -> async_graphql::Json<&BTreeMap<String, String>> {
        async_graphql::Json(&self.0.public_fields)
    }

    /// The secret fields that are set. Their values are never returned.
    async fn secret_fields(&self) -> &[String] {
        &self.0.secret_fields
    }

    async fn scopes(&self) -> &[String] {
        &self.0.scopes
    }

    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// When the grant itself (the refresh token) ends, as the provider said
    /// (`refresh_token_expires_in`); null when it did not say. A person must reauthorize before.
    async fn grant_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.grant_expires_at
    }

    /// `EXPIRING` within a week of `grantExpiresAt`, `EXPIRED` after it.
    async fn grant_status(&self) -> GrantStatus {
        domain::GrantStatus::of(self.0.grant_expires_at, Utc::now()).into()
    }

    /// Non-secret facts the provider named with the grant that the app keeps (e.g.
    /// Salesforce's `instance_url`).
    async fn grant_details(&self) -> async_graphql::Json<&BTreeMap<String, String>> {
        async_graphql::Json(&self.0.token_details)
    }

    /// The account the provider reported at the last successful check, e.g. an e-mail.
    async fn account_label(&self) -> Option<&str> {
        self.0.account_label.as_deref()
    }

    async fn last_verification(&self) -> Option<Verification> {
        self.0.last_verification.clone().map(Verification::from)
    }

    /// When the scheduler checks this connection next.
    async fn next_check_at(&self) -> Option<DateTime<Utc>> {
        self.0.health.next_check_at
    }

    /// Checks in a row that did not pass; reset by a passing one.
    async fn consecutive_failures(&self) -> i32 {
        self.0.health.consecutive_failures
    }

    async fn last_success_at(&self) -> Option<DateTime<Utc>> {
        self.0.health.last_success_at
    }

    async fn last_failure_at(&self) -> Option<DateTime<Utc>> {
        self.0.health.last_failure_at
    }

    /// Increases with every change; send it back with an edit to detect concurrent edits.
    async fn version(&self) -> i32 {
        self.0.version
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The last checks of this connection, newest first (the service keeps a bounded history).
    #[graphql(complexity = "crate::graphql::limits::list_complexity(first, 20, child_complexity)")]
    async fn verifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
    ) -> AppResult<Vec<Verification>> {
        let first = page_size(first.or(Some(20)), MAX_PAGE_SIZE)?;
        let checks = connections::verifications(state(ctx)?, caller(ctx)?, &self.0, first).await?;
        Ok(checks.into_iter().map(Verification::from).collect())
    }

    /// The flow modules that use this connection (directly or through a dynamic connection),
    /// with the scopes each misses.
    async fn used_by(&self, ctx: &Context<'_>) -> AppResult<Vec<ModuleUsage>> {
        usages(ctx, &self.0).await
    }

    /// The modules using this connection that lack scopes, with what each misses.
    async fn missing_scopes(&self, ctx: &Context<'_>) -> AppResult<Vec<ModuleUsage>> {
        Ok(usages(ctx, &self.0).await?.into_iter().filter(|u| !u.missing_scopes.is_empty()).collect())
    }

    /// What happened to this connection, newest first.
    #[graphql(complexity = "crate::graphql::limits::list_complexity(first, 50, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: Option<i32>,
        before: Option<String>,
    ) -> AppResult<AuditEventList> {
        let scope = crate::access::scope(state(ctx)?, caller(ctx)?, self.0.team_id).await?;
        audit_page(ctx, &scope, Some(self.0.id), first, before).await
    }

    /// Calls made through the proxy with this connection, newest first (kept for
    /// `PLUGBOARD_API_CALL_RETENTION_DAYS`). Never a body or a header value.
    async fn api_calls(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: Option<i32>,
        after: Option<String>,
    ) -> AppResult<ApiCallList> {
        let first = page_size(first, MAX_PAGE_SIZE)?;
        let after = after.map(|c| decode_cursor::<uuid::Uuid>(API_CALL_CURSOR, &c, "after")).transpose()?;
        let mut calls = crate::proxy::calls(state(ctx)?, caller(ctx)?, &self.0, after, first + 1).await?;
        let has_next_page = calls.len() as u64 > first;
        calls.truncate(first as usize);
        let edges: Vec<ApiCallEdge> = calls
            .into_iter()
            .map(|call| ApiCallEdge { cursor: encode_cursor(API_CALL_CURSOR, call.id), node: call.into() })
            .collect();
        Ok(ApiCallList {
            page_info: super::PageInfo { has_next_page, end_cursor: edges.last().map(|e| e.cursor.clone()) },
            edges,
        })
    }
}

const API_CALL_CURSOR: &str = "api-call";

/// Through the operation's loaders: a page of connections asks once for all its usages. The
/// caller's access comes from the access cache, so a page asks the database for it at most once.
async fn usages(ctx: &Context<'_>, connection: &domain::Connection) -> AppResult<Vec<ModuleUsage>> {
    let loaders = loaders(ctx)?;
    crate::access::cached_team_access(state(ctx)?, caller(ctx)?, connection.team_id).await?;
    let key = TeamKey { team_id: connection.team_id, id: connection.id };
    let uses = loaders.usages(ctx)?.load_one(key).await?.unwrap_or_default();
    let catalog = &state(ctx)?.catalog;
    Ok(uses.iter().map(|u| u.with_scopes(catalog, &connection.scopes).into()).collect())
}

#[derive(SimpleObject)]
pub struct Verification {
    outcome: VerificationOutcome,
    /// Written for a person; never contains a secret.
    message: Option<String>,
    /// The account the provider named when the check passed, e.g. an e-mail.
    account_label: Option<String>,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
}

impl From<domain::Verification> for Verification {
    fn from(v: domain::Verification) -> Self {
        Verification {
            outcome: v.outcome.into(),
            message: v.message,
            account_label: v.account_label,
            started_at: v.started_at,
            finished_at: v.finished_at,
        }
    }
}

// Registers `ConnectionEdge` and answers what `ListedEdge` leaves to the executor (a doc
// comment here would become the type's description in the schema).
#[derive(SimpleObject)]
pub struct ConnectionEdge {
    pub cursor: String,
    pub node: ConnectionObject,
}

/// What a create or edit answers.
#[derive(SimpleObject)]
pub struct ConnectionPayload {
    pub connection: ConnectionObject,
    /// Where to send a person to grant consent, when the change needs it (OAuth apps).
    pub authorization_url: Option<String>,
    /// The check made of the new credentials; null when the app offers none or consent is pending.
    pub verification: Option<Verification>,
    /// Modules of running flows that the connection's scopes no longer cover.
    pub warnings: Vec<super::flow::ScopeWarning>,
}

#[derive(SimpleObject)]
pub struct DeletePayload {
    pub deleted_id: ID,
}
