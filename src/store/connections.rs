//! Connections: their public part as domain values, their secrets as one sealed blob.

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Select,
    sea_query::{Expr, ExprTrait, Func},
};

use super::connection_rows;
use super::entities::connection::{self, Column, Entity};
use super::from_json;
use crate::domain::{
    AuthType, Connection, ConnectionFilter, ConnectionId, ConnectionName, ConnectionParts, ConnectionStatus,
    GrantStatus, Health, TeamId, UserId, Verification, VerificationOutcome,
};

/// A sealed envelope and the id of the key that sealed it.
#[derive(Clone)]
pub struct SealedSecrets {
    pub blob: Vec<u8>,
    pub key_id: String,
}

impl std::fmt::Debug for SealedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedSecrets(key {}, {} bytes)", self.key_id, self.blob.len())
    }
}

/// Everything a connection is made of when it is created or replaced by an edit.
#[derive(Debug, Clone)]
pub struct ConnectionData {
    pub name: ConnectionName,
    pub status: ConnectionStatus,
    pub public_fields: BTreeMap<String, String>,
    pub secret_fields: Vec<String>,
    pub sealed: Option<SealedSecrets>,
    pub scopes: Vec<String>,
    /// The check made of these credentials before they were stored, if any.
    pub verification: Option<Verification>,
    pub account_label: Option<String>,
    pub health: Health,
    /// When the access token expires (OAuth connections).
    pub expires_at: Option<chrono::DateTime<Utc>>,
    /// When the grant itself ends, if the provider says.
    pub grant_expires_at: Option<chrono::DateTime<Utc>>,
    /// Non-secret facts of the grant the app keeps.
    pub token_details: BTreeMap<String, String>,
}

fn details_json(details: &BTreeMap<String, String>) -> Option<serde_json::Value> {
    (!details.is_empty()).then(|| serde_json::json!(details))
}

pub struct NewConnection {
    pub id: ConnectionId,
    pub team_id: TeamId,
    pub app_key: String,
    pub auth_type: AuthType,
    pub data: ConnectionData,
    pub created_by: Option<UserId>,
}

pub(super) fn to_connection(model: connection::Model) -> Result<Connection, DbErr> {
    let last_verification = match (
        model.last_verification_outcome,
        model.last_verification_started_at,
        model.last_verification_finished_at,
    ) {
        (Some(outcome), Some(started_at), Some(finished_at)) => Some(Verification {
            outcome,
            message: model.last_verification_message,
            account_label: model.account_label.clone().filter(|_| outcome == VerificationOutcome::Ok),
            started_at,
            finished_at,
        }),
        _ => None,
    };
    Ok(Connection {
        id: model.id,
        team_id: model.team_id,
        app_key: model.app_key,
        name: ConnectionName::parse(&model.name).map_err(DbErr::Custom)?,
        auth_type: model.auth_type,
        status: model.status,
        public_fields: from_json(model.public_fields, "connections.public_fields")?,
        secret_fields: from_json(model.secret_fields, "connections.secret_fields")?,
        scopes: from_json(model.scopes, "connections.scopes")?,
        expires_at: model.expires_at,
        grant_expires_at: model.grant_expires_at,
        token_details: match model.token_details {
            Some(details) => from_json(details, "connections.token_details")?,
            None => BTreeMap::new(),
        },
        token_generation: model.token_generation,
        account_label: model.account_label,
        last_verification,
        health: Health {
            next_check_at: model.next_check_at,
            consecutive_failures: model.consecutive_failures,
            last_success_at: model.last_success_at,
            last_failure_at: model.last_failure_at,
        },
        version: model.version,
        created_by: model.created_by,
        updated_by: model.updated_by,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
}

/// An update of the connections table that sets `status` and records `check` as the last
/// verification: what a check, a dead grant and a note all write.
pub(super) fn noting(status: ConnectionStatus, check: &Verification) -> sea_orm::UpdateMany<Entity> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::LastVerificationOutcome, Expr::value(check.outcome))
        .col_expr(Column::LastVerificationMessage, Expr::value(check.message.clone()))
        .col_expr(Column::LastVerificationStartedAt, Expr::value(check.started_at))
        .col_expr(Column::LastVerificationFinishedAt, Expr::value(check.finished_at))
}

pub(super) fn scoped(team_id: TeamId) -> Select<Entity> {
    Entity::find().filter(Column::TeamId.eq(team_id))
}

/// Runs a guarded update of one connection and answers the row as written, in one round trip
/// (`RETURNING`); `None` when the guard did not hold (the connection changed or is gone).
pub(super) async fn update_one(
    db: &impl ConnectionTrait,
    update: sea_orm::UpdateMany<Entity>,
) -> Result<Option<Connection>, DbErr> {
    update.exec_with_returning(db).await?.into_iter().next().map(to_connection).transpose()
}

pub async fn insert(db: &impl ConnectionTrait, new: NewConnection) -> Result<Connection, DbErr> {
    let now = Utc::now();
    let (sealed_secrets, secrets_key_id) = split_sealed(new.data.sealed);
    let model = connection::ActiveModel {
        id: Set(new.id),
        team_id: Set(new.team_id),
        app_key: Set(new.app_key),
        name: Set(new.data.name.as_str().to_owned()),
        auth_type: Set(new.auth_type),
        status: Set(new.data.status),
        public_fields: Set(serde_json::json!(new.data.public_fields)),
        secret_fields: Set(serde_json::json!(new.data.secret_fields)),
        sealed_secrets: Set(sealed_secrets),
        secrets_key_id: Set(secrets_key_id),
        scopes: Set(serde_json::json!(new.data.scopes)),
        expires_at: Set(new.data.expires_at),
        account_label: Set(new.data.account_label),
        last_verification_outcome: Set(new.data.verification.as_ref().map(|v| v.outcome)),
        last_verification_message: Set(new.data.verification.as_ref().and_then(|v| v.message.clone())),
        last_verification_started_at: Set(new.data.verification.as_ref().map(|v| v.started_at)),
        last_verification_finished_at: Set(new.data.verification.as_ref().map(|v| v.finished_at)),
        version: Set(1),
        created_by: Set(new.created_by),
        updated_by: Set(new.created_by),
        created_at: Set(now),
        updated_at: Set(now),
        next_check_at: Set(new.data.health.next_check_at),
        consecutive_failures: Set(new.data.health.consecutive_failures),
        last_success_at: Set(new.data.health.last_success_at),
        last_failure_at: Set(new.data.health.last_failure_at),
        refresh_lease_by: Set(None),
        refresh_lease_expires_at: Set(None),
        token_generation: Set(0),
        grant_expires_at: Set(new.data.grant_expires_at),
        token_details: Set(details_json(&new.data.token_details)),
        grant_warned_days: Set(None),
    };
    to_connection(Entity::insert(model).exec_with_returning(db).await?)
}

fn split_sealed(sealed: Option<SealedSecrets>) -> (Option<Vec<u8>>, Option<String>) {
    match sealed {
        Some(s) => (Some(s.blob), Some(s.key_id)),
        None => (None, None),
    }
}

pub async fn find(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: ConnectionId,
) -> Result<Option<Connection>, DbErr> {
    scoped(team_id).filter(Column::Id.eq(id)).one(db).await?.map(to_connection).transpose()
}

/// A connection with its sealed secrets, for the few places that send them out.
pub async fn find_with_secrets(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: ConnectionId,
) -> Result<Option<(Connection, Option<Vec<u8>>)>, DbErr> {
    let Some(mut model) = scoped(team_id).filter(Column::Id.eq(id)).one(db).await? else {
        return Ok(None);
    };
    let sealed = model.sealed_secrets.take();
    Ok(Some((to_connection(model)?, sealed)))
}

/// Sets a connection's status outside a check (a consent the provider refused), if it is still
/// at `expected_version`: a late note never lands on a newer state.
pub async fn set_status(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: ConnectionId,
    expected_version: i32,
    status: ConnectionStatus,
    note: &Verification,
) -> Result<Option<Connection>, DbErr> {
    let update = noting(status, note)
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(expected_version));
    update_one(db, update).await
}

/// The team a connection belongs to, for resolving a bare id before the caller's access to that
/// team is checked. Callers must check access before reading anything else.
pub async fn owner_of(db: &impl ConnectionTrait, id: ConnectionId) -> Result<Option<TeamId>, DbErr> {
    Entity::find_by_id(id).select_only().column(Column::TeamId).into_tuple().one(db).await
}

/// Swaps in a complete new credential set, if the stored version is still `expected_version`.
/// Answers `None` when another change got there first (or the connection is gone).
pub async fn replace(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    id: ConnectionId,
    expected_version: i32,
    data: ConnectionData,
    updated_by: Option<UserId>,
) -> Result<Option<Connection>, DbErr> {
    let (sealed_secrets, secrets_key_id) = split_sealed(data.sealed);
    let update = Entity::update_many()
        .col_expr(Column::Name, Expr::value(data.name.as_str()))
        .col_expr(Column::Status, Expr::value(data.status))
        .col_expr(Column::PublicFields, Expr::value(serde_json::json!(data.public_fields)))
        .col_expr(Column::SecretFields, Expr::value(serde_json::json!(data.secret_fields)))
        .col_expr(Column::SealedSecrets, Expr::value(sealed_secrets))
        .col_expr(Column::SecretsKeyId, Expr::value(secrets_key_id))
        .col_expr(Column::Scopes, Expr::value(serde_json::json!(data.scopes)))
        .col_expr(Column::AccountLabel, Expr::value(data.account_label))
        .col_expr(Column::LastVerificationOutcome, Expr::value(data.verification.as_ref().map(|v| v.outcome)))
        .col_expr(
            Column::LastVerificationMessage,
            Expr::value(data.verification.as_ref().and_then(|v| v.message.clone())),
        )
        .col_expr(
            Column::LastVerificationStartedAt,
            Expr::value(data.verification.as_ref().map(|v| v.started_at)),
        )
        .col_expr(
            Column::LastVerificationFinishedAt,
            Expr::value(data.verification.as_ref().map(|v| v.finished_at)),
        )
        .col_expr(Column::ExpiresAt, Expr::value(data.expires_at))
        .col_expr(Column::GrantExpiresAt, Expr::value(data.grant_expires_at))
        .col_expr(Column::TokenDetails, Expr::value(details_json(&data.token_details)))
        .col_expr(Column::GrantWarnedDays, Expr::value(Option::<i32>::None))
        // New credentials: a refresh decided on the old ones must not land.
        .col_expr(Column::TokenGeneration, Expr::col(Column::TokenGeneration).add(1))
        .col_expr(Column::NextCheckAt, Expr::value(data.health.next_check_at))
        .col_expr(Column::ConsecutiveFailures, Expr::value(data.health.consecutive_failures))
        .col_expr(Column::LastSuccessAt, Expr::value(data.health.last_success_at))
        .col_expr(Column::LastFailureAt, Expr::value(data.health.last_failure_at))
        // A check claimed before the edit tests the old credentials: its result is dropped.
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .col_expr(Column::UpdatedBy, Expr::value(updated_by))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(expected_version));
    update_one(db, update).await
}

/// Deletes the connection and its sealed secrets with it. Answers whether it existed.
pub async fn delete(db: &impl ConnectionTrait, team_id: TeamId, id: ConnectionId) -> Result<bool, DbErr> {
    let result =
        Entity::delete_many().filter(Column::TeamId.eq(team_id)).filter(Column::Id.eq(id)).exec(db).await?;
    Ok(result.rows_affected > 0)
}

fn filtered(team_id: TeamId, filter: &ConnectionFilter) -> Select<Entity> {
    let mut query = scoped(team_id);
    if let Some(app) = &filter.app {
        query = query.filter(Column::AppKey.eq(app.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(Column::Status.eq(status));
    }
    if let Some(grant) = filter.grant {
        let now = Utc::now();
        let warn_from = now + crate::domain::GRANT_WARNINGS[0];
        query = match grant {
            GrantStatus::NoExpiry => query.filter(Column::GrantExpiresAt.is_null()),
            GrantStatus::Ok => query.filter(Column::GrantExpiresAt.gt(warn_from)),
            GrantStatus::Expiring => {
                query.filter(Column::GrantExpiresAt.gt(now)).filter(Column::GrantExpiresAt.lte(warn_from))
            }
            GrantStatus::Expired => query.filter(Column::GrantExpiresAt.lte(now)),
        };
    }
    if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
        query = query.filter(
            Condition::all().add(
                Expr::expr(Func::lower(Expr::col(Column::Name)))
                    .like(sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')),
            ),
        );
    }
    query
}

/// Escapes LIKE wildcards so a search for "50%" finds exactly that.
fn escape_like(raw: &str) -> String {
    raw.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// One page of a team's connections in creation order, after the cursor `after`, and with
/// `count`, how many match `filter` in all. Reads only `parts` of what a connection shows (never
/// the sealed secrets), decoded by position; the page and the count are one statement, unless
/// the page is empty (see `count` for how it counts).
pub async fn page(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    filter: &ConnectionFilter,
    after: Option<ConnectionId>,
    limit: u64,
    parts: ConnectionParts,
    count: bool,
) -> Result<(Vec<Connection>, Option<u64>), DbErr> {
    let mut query = filtered(team_id, filter);
    if let Some(after) = after {
        query = query.filter(Column::Id.gt(after));
    }
    let query = query.order_by_asc(Column::Id).limit(limit);
    if !count {
        return Ok((connection_rows::read(db, query, parts).await?, None));
    }
    let (connections, total) =
        connection_rows::read_counted(db, query, parts, counting(team_id, filter)).await?;
    let total = match total {
        Some(total) => total,
        None => self::count(db, team_id, filter).await?,
    };
    Ok((connections, Some(total)))
}

/// Those of `ids` that are the team's, in no particular order; one query for all of them
/// (what the data loaders of a request ask for).
pub async fn find_many(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    ids: &[ConnectionId],
) -> Result<Vec<Connection>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let query = scoped(team_id).filter(Column::Id.is_in(ids.iter().copied()));
    connection_rows::read(db, query, ConnectionParts::ALL).await
}

/// How many of the team's connections match `filter`. Without a filter, the count the database
/// keeps (`connection_counts`); with one, or for a team that never had a connection (and so no
/// kept count), a plain `SELECT COUNT(*)` on the table (`PaginatorTrait::count` would wrap a
/// select of every column in a subquery).
pub async fn count(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    filter: &ConnectionFilter,
) -> Result<u64, DbErr> {
    if keeps_all(filter)
        && let Some(kept) = db.query_one(&kept_count(team_id)).await?
    {
        return Ok(connection_rows::Counted::from_query_result(&kept, "")?.0);
    }
    let counted = db.query_one(&count_all(team_id, filter)).await?;
    let counted = counted.map(|row| connection_rows::Counted::from_query_result(&row, "")).transpose()?;
    Ok(counted.map_or(0, |counted| counted.0))
}

/// The statement a page carries its count in: the kept count of the team when nothing is
/// filtered, which reads one row where `COUNT(*)` reads an index entry per connection.
fn counting(team_id: TeamId, filter: &ConnectionFilter) -> sea_orm::sea_query::SelectStatement {
    if keeps_all(filter) { kept_count(team_id) } else { count_all(team_id, filter) }
}

/// Whether `filter` keeps every connection of the team (a blank search filters nothing).
fn keeps_all(filter: &ConnectionFilter) -> bool {
    let ConnectionFilter { app, status, search, grant } = filter;
    app.is_none()
        && status.is_none()
        && grant.is_none()
        && search.as_deref().is_none_or(|s| s.trim().is_empty())
}

/// The team's connections as the triggers of `connection_counts` keep them: one row, or none
/// for a team that never had a connection.
fn kept_count(team_id: TeamId) -> sea_orm::sea_query::SelectStatement {
    use super::entities::connection_count;
    connection_count::Entity::find()
        .select_only()
        .column(connection_count::Column::Connections)
        .filter(connection_count::Column::TeamId.eq(team_id))
        .into_query()
}

/// The `SELECT COUNT(*)` of the team's connections that match `filter`.
fn count_all(team_id: TeamId, filter: &ConnectionFilter) -> sea_orm::sea_query::SelectStatement {
    filtered(team_id, filter).select_only().expr(Expr::cust("COUNT(*)")).into_query()
}

/// How many connections each app has in each status, across all teams (for metrics).
pub async fn count_by_app_and_status(
    db: &impl ConnectionTrait,
) -> Result<Vec<(String, ConnectionStatus, i64)>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::AppKey)
        .column(Column::Status)
        .column_as(Column::Id.count(), "count")
        .group_by(Column::AppKey)
        .group_by(Column::Status)
        .into_tuple()
        .all(db)
        .await
}
