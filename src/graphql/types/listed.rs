//! The edges of a connection page, answered without a future per field (see `selection`).
//!
//! The schema does not see this: `ListedEdge` registers as `ConnectionEdge`, whose derived
//! resolvers still answer what is not plain data (`app`, `usedBy`, `verifications`, ...). The
//! values written here must stay what `ConnectionObject`'s getters return; the listing tests
//! compare the two for every plain field.

use std::borrow::Cow;

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{
    ContextSelectionSet, InputType, Name, OutputType, Positioned, ScalarType, ServerResult, Value,
};
use chrono::{DateTime, Utc};

use super::connection::{ConnectionEdge, ConnectionObject};
use super::enums::{AuthType, ConnectionStatus, GrantStatus, VerificationOutcome};
use super::selection::{self, Entry};
use crate::domain;

/// An edge of `Team.connections`.
pub struct ListedEdge(pub ConnectionEdge);

impl OutputType for ListedEdge {
    fn type_name() -> Cow<'static, str> {
        <ConnectionEdge as OutputType>::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        ConnectionEdge::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        let edge = &self.0;
        let Some(fields) = selection::fields(ctx, "ConnectionEdge") else {
            return OutputType::resolve(edge, ctx, field).await;
        };
        let mut entries = Vec::with_capacity(fields.len());
        for field in fields {
            let key = field.node.response_key().node.clone();
            let value = match field.node.name.node.as_str() {
                "__typename" => string("ConnectionEdge"),
                "cursor" => string(&edge.cursor),
                "node" => {
                    let ctx_field = ctx.with_field(field);
                    let ctx_node = ctx_field.with_selection_set(&field.node.selection_set);
                    match connection(&ctx_node, &edge.node, field).await {
                        Ok(value) => value,
                        Err(error) => {
                            ctx.add_error(error);
                            continue;
                        }
                    }
                }
                _ => {
                    entries.push(Entry::Later(field));
                    continue;
                }
            };
            entries.push(Entry::Ready(key, value));
        }
        Ok(selection::finish(ctx, edge, entries).await)
    }
}

/// A listed connection: its row's fields in place, the rest through `ConnectionObject`.
async fn connection(
    ctx: &ContextSelectionSet<'_>,
    object: &ConnectionObject,
    field: &Positioned<Field>,
) -> ServerResult<Value> {
    let Some(fields) = selection::fields(ctx, "Connection") else {
        return OutputType::resolve(object, ctx, field).await;
    };
    let entries = fields
        .into_iter()
        .map(|field| match plain(ctx, &object.0, field) {
            Some(value) => Entry::Ready(field.node.response_key().node.clone(), value),
            None => Entry::Later(field),
        })
        .collect();
    Ok(selection::finish(ctx, object, entries).await)
}

/// The value of a field the connection's row holds; `None` for any other field.
fn plain(ctx: &ContextSelectionSet<'_>, c: &domain::Connection, field: &Positioned<Field>) -> Option<Value> {
    Some(match field.node.name.node.as_str() {
        "__typename" => string("Connection"),
        "id" => Value::String(c.id.to_string()),
        "name" => string(c.name.as_str()),
        "appKey" => string(&c.app_key),
        "authType" => AuthType::from(c.auth_type).to_value(),
        "status" => ConnectionStatus::from(c.status).to_value(),
        "fields" => async_graphql::to_value(&c.public_fields).ok()?,
        "secretFields" => strings(&c.secret_fields),
        "scopes" => strings(&c.scopes),
        "expiresAt" => time(c.expires_at),
        "grantExpiresAt" => time(c.grant_expires_at),
        "grantStatus" => {
            GrantStatus::from(domain::GrantStatus::of(c.grant_expires_at, Utc::now())).to_value()
        }
        "grantDetails" => async_graphql::to_value(&c.token_details).ok()?,
        "accountLabel" => optional(c.account_label.as_deref()),
        "lastVerification" => match &c.last_verification {
            None => Value::Null,
            Some(v) => {
                let ctx_field = ctx.with_field(field);
                verification(&ctx_field.with_selection_set(&field.node.selection_set), v)?
            }
        },
        "nextCheckAt" => time(c.health.next_check_at),
        "consecutiveFailures" => Value::from(c.health.consecutive_failures),
        "lastSuccessAt" => time(c.health.last_success_at),
        "lastFailureAt" => time(c.health.last_failure_at),
        "version" => Value::from(c.version),
        "createdAt" => ScalarType::to_value(&c.created_at),
        "updatedAt" => ScalarType::to_value(&c.updated_at),
        _ => return None,
    })
}

/// A verification's selection, all of it plain; `None` leaves the field to the executor.
fn verification(ctx: &ContextSelectionSet<'_>, v: &domain::Verification) -> Option<Value> {
    let mut object = async_graphql::indexmap::IndexMap::new();
    for field in selection::fields(ctx, "Verification")? {
        let value = match field.node.name.node.as_str() {
            "__typename" => string("Verification"),
            "outcome" => VerificationOutcome::from(v.outcome).to_value(),
            "message" => optional(v.message.as_deref()),
            "accountLabel" => optional(v.account_label.as_deref()),
            "startedAt" => ScalarType::to_value(&v.started_at),
            "finishedAt" => ScalarType::to_value(&v.finished_at),
            _ => return None,
        };
        // Scalars only: a key selected twice keeps its first value.
        let key: Name = field.node.response_key().node.clone();
        object.entry(key).or_insert(value);
    }
    Some(if object.is_empty() { Value::Null } else { Value::Object(object) })
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn optional(s: Option<&str>) -> Value {
    s.map_or(Value::Null, string)
}

fn strings(items: &[String]) -> Value {
    Value::List(items.iter().map(|s| string(s)).collect())
}

fn time(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |at| ScalarType::to_value(&at))
}
