//! Connections read for showing: every column a connection shows, and never its sealed
//! secrets or the scheduler's claims and leases, decoded by position (see `by_index`).

use std::collections::BTreeMap;

use sea_orm::{DbErr, FromQueryResult, QueryResult, QuerySelect, Select};
use uuid::Uuid;

use super::by_index::Row;
use super::entities::connection::{Column, Entity};
use crate::domain::{
    AuthType, Connection, ConnectionId, ConnectionName, ConnectionStatus, Health, TeamId, UserId,
    Verification, VerificationOutcome,
};

/// The columns `Shown` decodes, in its order.
pub(super) const SHOWN: [Column; 27] = [
    Column::Id,
    Column::TeamId,
    Column::AppKey,
    Column::Name,
    Column::AuthType,
    Column::Status,
    Column::PublicFields,
    Column::SecretFields,
    Column::Scopes,
    Column::ExpiresAt,
    Column::GrantExpiresAt,
    Column::TokenDetails,
    Column::TokenGeneration,
    Column::AccountLabel,
    Column::LastVerificationOutcome,
    Column::LastVerificationMessage,
    Column::LastVerificationStartedAt,
    Column::LastVerificationFinishedAt,
    Column::NextCheckAt,
    Column::ConsecutiveFailures,
    Column::LastSuccessAt,
    Column::LastFailureAt,
    Column::Version,
    Column::CreatedBy,
    Column::UpdatedBy,
    Column::CreatedAt,
    Column::UpdatedAt,
];

/// Narrows `query` to the shown columns; read its rows `into_model::<Shown>()`.
pub(super) fn shown(query: Select<Entity>) -> Select<Entity> {
    query.select_only().columns(SHOWN)
}

/// A connection as a row of `shown` holds it.
pub(super) struct Shown(pub Connection);

impl FromQueryResult for Shown {
    fn from_query_result(result: &QueryResult, _prefix: &str) -> Result<Self, DbErr> {
        decode(&Row::of(result)?).map(Shown)
    }
}

/// A `COUNT(*)`, the row's only column.
pub(super) struct Counted(pub u64);

impl FromQueryResult for Counted {
    fn from_query_result(result: &QueryResult, _prefix: &str) -> Result<Self, DbErr> {
        let count: i64 = Row::of(result)?.get(0)?;
        u64::try_from(count).map(Counted).map_err(|_| DbErr::Type(format!("a count of {count}")))
    }
}

/// The connection in the columns `SHOWN` of `row`, first among the row's columns.
pub(super) fn decode(row: &Row<'_>) -> Result<Connection, DbErr> {
    let account_label: Option<String> = row.get(13)?;
    let outcome =
        row.get::<Option<&str>>(14)?.map(|raw| parse(raw, VerificationOutcome::parse)).transpose()?;
    let started_at = row.time_opt(16)?;
    let finished_at = row.time_opt(17)?;
    let last_verification = match (outcome, started_at, finished_at) {
        (Some(outcome), Some(started_at), Some(finished_at)) => Some(Verification {
            outcome,
            message: row.get(15)?,
            account_label: account_label.clone().filter(|_| outcome == VerificationOutcome::Ok),
            started_at,
            finished_at,
        }),
        _ => None,
    };
    Ok(Connection {
        id: ConnectionId::from_uuid(row.get::<Uuid>(0)?),
        team_id: TeamId::from_uuid(row.get::<Uuid>(1)?),
        app_key: row.get(2)?,
        name: ConnectionName::parse(row.str(3)?).map_err(DbErr::Custom)?,
        auth_type: parse(row.str(4)?, AuthType::parse)?,
        status: parse(row.str(5)?, ConnectionStatus::parse)?,
        public_fields: row.json(6)?,
        secret_fields: row.json(7)?,
        scopes: row.json(8)?,
        expires_at: row.time_opt(9)?,
        grant_expires_at: row.time_opt(10)?,
        token_details: row.json_opt::<BTreeMap<String, String>>(11)?.unwrap_or_default(),
        token_generation: row.get(12)?,
        account_label,
        last_verification,
        health: Health {
            next_check_at: row.time_opt(18)?,
            consecutive_failures: row.get(19)?,
            last_success_at: row.time_opt(20)?,
            last_failure_at: row.time_opt(21)?,
        },
        version: row.get(22)?,
        created_by: row.get::<Option<Uuid>>(23)?.map(UserId::from_uuid),
        updated_by: row.get::<Option<Uuid>>(24)?.map(UserId::from_uuid),
        created_at: row.time(25)?,
        updated_at: row.time(26)?,
    })
}

/// A stored enum name, or an error naming what no variant is called.
fn parse<T>(raw: &str, parse: fn(&str) -> Option<T>) -> Result<T, DbErr> {
    parse(raw).ok_or_else(|| DbErr::Type(format!("{raw:?} is not a valid {}", std::any::type_name::<T>())))
}
