//! The edges of a connection page, answered without a future per field (see `selection`), one
//! edge at a time when `listed_page` cannot answer the whole page in one loop.
//!
//! The schema does not see this: `ListedEdge` registers as `ConnectionEdge`, whose derived
//! resolvers still answer what is not plain data (`app`, `usedBy`, `verifications`, ...). The
//! values written here must stay what `ConnectionObject`'s getters return; the listing tests
//! compare the two for every plain field.

use std::borrow::Cow;
use std::collections::BTreeMap;

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, InputType, Name, OutputType, Positioned, ServerResult, Value};
use chrono::{DateTime, Utc};

use super::connection::{ConnectionEdge, ConnectionObject};
use super::enums::{AuthType, ConnectionStatus, GrantStatus, VerificationOutcome};
use super::selection::{self, Entry as Selected, Shape};
use crate::domain::{self, ConnectionPart};
use crate::rfc3339;

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
                    entries.push(Selected::Later(field));
                    continue;
                }
            };
            entries.push(Selected::Ready(key, value));
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
            Some(value) => Selected::Ready(field.node.response_key().node.clone(), value),
            None => Selected::Later(field),
        })
        .collect();
    Ok(selection::finish(ctx, object, entries).await)
}

/// The value of a field the connection's row holds; `None` for any other field.
fn plain(ctx: &ContextSelectionSet<'_>, c: &domain::Connection, field: &Positioned<Field>) -> Option<Value> {
    let name = field.node.name.node.as_str();
    if name == "lastVerification" {
        return Some(match &c.last_verification {
            None => Value::Null,
            Some(v) => {
                let ctx_field = ctx.with_field(field);
                let plan = VerificationField::plan(&ctx_field.with_selection_set(&field.node.selection_set))?;
                Shape::new(plan).answer(|field| field.value(v))
            }
        });
    }
    Some(Plain::of(name)?.value(c))
}

/// A scalar field of `Connection` that the connection's row holds.
#[derive(Clone, Copy)]
pub(super) enum Plain {
    Typename,
    Id,
    Name,
    AppKey,
    AuthType,
    Status,
    Fields,
    SecretFields,
    Scopes,
    ExpiresAt,
    GrantExpiresAt,
    GrantStatus,
    GrantDetails,
    AccountLabel,
    NextCheckAt,
    ConsecutiveFailures,
    LastSuccessAt,
    LastFailureAt,
    Version,
    CreatedAt,
    UpdatedAt,
}

impl Plain {
    /// The field called `name`; `None` for a field that is not a scalar of the row
    /// (`lastVerification` included, which has a selection of its own).
    pub(super) fn of(name: &str) -> Option<Self> {
        Some(match name {
            "__typename" => Plain::Typename,
            "id" => Plain::Id,
            "name" => Plain::Name,
            "appKey" => Plain::AppKey,
            "authType" => Plain::AuthType,
            "status" => Plain::Status,
            "fields" => Plain::Fields,
            "secretFields" => Plain::SecretFields,
            "scopes" => Plain::Scopes,
            "expiresAt" => Plain::ExpiresAt,
            "grantExpiresAt" => Plain::GrantExpiresAt,
            "grantStatus" => Plain::GrantStatus,
            "grantDetails" => Plain::GrantDetails,
            "accountLabel" => Plain::AccountLabel,
            "nextCheckAt" => Plain::NextCheckAt,
            "consecutiveFailures" => Plain::ConsecutiveFailures,
            "lastSuccessAt" => Plain::LastSuccessAt,
            "lastFailureAt" => Plain::LastFailureAt,
            "version" => Plain::Version,
            "createdAt" => Plain::CreatedAt,
            "updatedAt" => Plain::UpdatedAt,
            _ => return None,
        })
    }

    /// The part of the connection `value` reads, beyond its identity (id, name, app, auth
    /// type, status, version).
    pub(super) fn part(self) -> Option<ConnectionPart> {
        Some(match self {
            Plain::Typename | Plain::Id | Plain::Name | Plain::AppKey | Plain::AuthType => return None,
            Plain::Status | Plain::Version => return None,
            Plain::Fields => ConnectionPart::PublicFields,
            Plain::SecretFields => ConnectionPart::SecretFieldNames,
            Plain::Scopes => ConnectionPart::Scopes,
            Plain::ExpiresAt => ConnectionPart::ExpiresAt,
            Plain::GrantExpiresAt | Plain::GrantStatus | Plain::GrantDetails => ConnectionPart::Grant,
            Plain::AccountLabel => ConnectionPart::AccountLabel,
            Plain::NextCheckAt | Plain::ConsecutiveFailures | Plain::LastSuccessAt | Plain::LastFailureAt => {
                ConnectionPart::Health
            }
            Plain::CreatedAt | Plain::UpdatedAt => ConnectionPart::Times,
        })
    }

    /// What `ConnectionObject`'s getter of this field answers for `c`.
    pub(super) fn value(self, c: &domain::Connection) -> Value {
        match self {
            Plain::Typename => string("Connection"),
            Plain::Id => id_value(c.id.as_uuid()),
            Plain::Name => string(c.name.as_str()),
            Plain::AppKey => string(&c.app_key),
            Plain::AuthType => AuthType::from(c.auth_type).to_value(),
            Plain::Status => ConnectionStatus::from(c.status).to_value(),
            Plain::Fields => json_strings(&c.public_fields),
            Plain::SecretFields => strings(&c.secret_fields),
            Plain::Scopes => strings(&c.scopes),
            Plain::ExpiresAt => optional_time(c.expires_at.as_ref()),
            Plain::GrantExpiresAt => optional_time(c.grant_expires_at.as_ref()),
            Plain::GrantStatus => {
                GrantStatus::from(domain::GrantStatus::of(c.grant_expires_at, Utc::now())).to_value()
            }
            Plain::GrantDetails => json_strings(&c.token_details),
            Plain::AccountLabel => optional(c.account_label.as_deref()),
            Plain::NextCheckAt => optional_time(c.health.next_check_at.as_ref()),
            Plain::ConsecutiveFailures => Value::from(c.health.consecutive_failures),
            Plain::LastSuccessAt => optional_time(c.health.last_success_at.as_ref()),
            Plain::LastFailureAt => optional_time(c.health.last_failure_at.as_ref()),
            Plain::Version => Value::from(c.version),
            Plain::CreatedAt => time(&c.created_at),
            Plain::UpdatedAt => time(&c.updated_at),
        }
    }
}

/// A field of `Verification`, all of whose fields are plain.
#[derive(Clone, Copy)]
pub(super) enum VerificationField {
    Typename,
    Outcome,
    Message,
    AccountLabel,
    StartedAt,
    FinishedAt,
}

impl VerificationField {
    /// The selection on a verification under its response keys; `None` leaves the field to
    /// the executor.
    pub(super) fn plan(ctx: &ContextSelectionSet<'_>) -> Option<Vec<(Name, Self)>> {
        let fields = selection::fields(ctx, "Verification")?;
        let mut plan = Vec::with_capacity(fields.len());
        for field in fields {
            let kind = match field.node.name.node.as_str() {
                "__typename" => VerificationField::Typename,
                "outcome" => VerificationField::Outcome,
                "message" => VerificationField::Message,
                "accountLabel" => VerificationField::AccountLabel,
                "startedAt" => VerificationField::StartedAt,
                "finishedAt" => VerificationField::FinishedAt,
                _ => return None,
            };
            plan.push((field.node.response_key().node.clone(), kind));
        }
        Some(plan)
    }

    pub(super) fn value(self, v: &domain::Verification) -> Value {
        match self {
            VerificationField::Typename => string("Verification"),
            VerificationField::Outcome => VerificationOutcome::from(v.outcome).to_value(),
            VerificationField::Message => optional(v.message.as_deref()),
            VerificationField::AccountLabel => optional(v.account_label.as_deref()),
            VerificationField::StartedAt => time(&v.started_at),
            VerificationField::FinishedAt => time(&v.finished_at),
        }
    }
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

/// A map of strings as the `JSON` scalar answers it (`async_graphql::to_value`).
fn json_strings(map: &BTreeMap<String, String>) -> Value {
    Value::Object(map.iter().map(|(k, v)| (Name::new(k), string(v))).collect())
}

/// An id as the `ID` scalar answers it (the hyphenated, lower-case UUID).
fn id_value(id: uuid::Uuid) -> Value {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    Value::String(id.hyphenated().encode_lower(&mut buf).to_owned())
}

fn time(at: &DateTime<Utc>) -> Value {
    Value::String(rfc3339::write(at))
}

fn optional_time(at: Option<&DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, time)
}
