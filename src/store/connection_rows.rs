//! Connections read for showing: the columns a connection shows (all of them, or those of the
//! parts a page asks for), never its sealed secrets or the scheduler's claims and leases,
//! decoded by position (see `by_index`).

use std::collections::BTreeMap;

use chrono::DateTime;
use sea_orm::sea_query::{Expr, SelectStatement};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, QueryResult, QuerySelect, QueryTrait, Select};
use uuid::Uuid;

use super::by_index::Row;
use super::entities::connection::{Column, Entity};
use crate::domain::{
    AuthType, Connection, ConnectionId, ConnectionName, ConnectionPart, ConnectionParts, ConnectionStatus,
    Health, TeamId, UserId, Verification, VerificationOutcome,
};

/// The columns of a connection's identity, always read.
const IDENTITY: [Column; 7] = [
    Column::Id,
    Column::TeamId,
    Column::AppKey,
    Column::Name,
    Column::AuthType,
    Column::Status,
    Column::Version,
];

/// The columns of each part a read may leave out, in the order of `ConnectionPart`'s variants.
const PARTS: [(ConnectionPart, &[Column]); 10] = [
    (ConnectionPart::PublicFields, &[Column::PublicFields]),
    (ConnectionPart::SecretFieldNames, &[Column::SecretFields]),
    (ConnectionPart::Scopes, &[Column::Scopes]),
    (ConnectionPart::ExpiresAt, &[Column::ExpiresAt]),
    (ConnectionPart::Grant, &[Column::GrantExpiresAt, Column::TokenDetails, Column::TokenGeneration]),
    (ConnectionPart::AccountLabel, &[Column::AccountLabel]),
    (
        ConnectionPart::LastVerification,
        &[
            Column::LastVerificationOutcome,
            Column::LastVerificationMessage,
            Column::LastVerificationStartedAt,
            Column::LastVerificationFinishedAt,
        ],
    ),
    (
        ConnectionPart::Health,
        &[Column::NextCheckAt, Column::ConsecutiveFailures, Column::LastSuccessAt, Column::LastFailureAt],
    ),
    (ConnectionPart::Authors, &[Column::CreatedBy, Column::UpdatedBy]),
    (ConnectionPart::Times, &[Column::CreatedAt, Column::UpdatedAt]),
];

/// Every column a connection shows, in the order `decode` reads them: the identity, then each
/// part's.
pub(super) const SHOWN: [Column; 27] = {
    let mut columns = [Column::Id; 27];
    let mut at = 0;
    while at < IDENTITY.len() {
        columns[at] = IDENTITY[at];
        at += 1;
    }
    let mut part = 0;
    while part < PARTS.len() {
        assert!(PARTS[part].0 as usize == part, "PARTS follows ConnectionPart's order");
        let mut index = 0;
        while index < PARTS[part].1.len() {
            columns[at] = PARTS[part].1[index];
            at += 1;
            index += 1;
        }
        part += 1;
    }
    assert!(at == 27, "SHOWN holds the columns of IDENTITY and PARTS");
    columns
};

/// What a read of `parts` reads: a verification's account is its connection's, so
/// `LastVerification` brings `AccountLabel` along.
fn read_parts(parts: ConnectionParts) -> ConnectionParts {
    match parts.has(ConnectionPart::LastVerification) {
        true => parts.with(ConnectionPart::AccountLabel),
        false => parts,
    }
}

/// The columns of `parts`, in the order `decode_parts` reads them.
fn columns(parts: ConnectionParts) -> impl Iterator<Item = Column> {
    let parts = read_parts(parts);
    let optional =
        PARTS.into_iter().filter(move |(part, _)| parts.has(*part)).flat_map(|(_, columns)| columns);
    IDENTITY.into_iter().chain(optional.copied())
}

/// The connections `query` selects, `parts` of each (what a part left out holds is empty, see
/// `ConnectionParts`), decoded by position.
pub(super) async fn read(
    db: &impl ConnectionTrait,
    query: Select<Entity>,
    parts: ConnectionParts,
) -> Result<Vec<Connection>, DbErr> {
    let rows = db.query_all(&query.select_only().columns(columns(parts)).into_query()).await?;
    rows.iter().map(|result| decode_parts(&Row::of(result)?, parts)).collect()
}

/// As `read`, with the answer of `counting` (a count, as one row and column) in one more column
/// of every row: a page and its count in one statement, one round trip. The count is `None`
/// when `query` selects no row to carry it, or `counting` answered no row.
pub(super) async fn read_counted(
    db: &impl ConnectionTrait,
    query: Select<Entity>,
    parts: ConnectionParts,
    counting: SelectStatement,
) -> Result<(Vec<Connection>, Option<u64>), DbErr> {
    let count_at = columns(parts).count();
    let statement = query
        .select_only()
        .columns(columns(parts))
        .expr(Expr::SubQuery(None, Box::new(counting.into())))
        .into_query();
    let rows = db.query_all(&statement).await?;
    let total = match rows.first() {
        Some(first) => Row::of(first)?.get::<Option<i64>>(count_at)?.map(non_negative).transpose()?,
        None => None,
    };
    let connections =
        rows.iter().map(|result| decode_parts(&Row::of(result)?, parts)).collect::<Result<_, _>>()?;
    Ok((connections, total))
}

/// A `COUNT(*)`, the row's only column.
pub(super) struct Counted(pub u64);

impl FromQueryResult for Counted {
    fn from_query_result(result: &QueryResult, _prefix: &str) -> Result<Self, DbErr> {
        count(&Row::of(result)?, 0).map(Counted)
    }
}

/// The count in the column at `index`.
fn count(row: &Row<'_>, index: usize) -> Result<u64, DbErr> {
    non_negative(row.get(index)?)
}

fn non_negative(count: i64) -> Result<u64, DbErr> {
    u64::try_from(count).map_err(|_| DbErr::Type(format!("a count of {count}")))
}

/// The connection in the columns `SHOWN` of `row`, first among the row's columns.
pub(super) fn decode(row: &Row<'_>) -> Result<Connection, DbErr> {
    decode_parts(row, ConnectionParts::ALL)
}

/// The connection in the columns of `parts` (see `columns`), first among the row's columns.
fn decode_parts(row: &Row<'_>, parts: ConnectionParts) -> Result<Connection, DbErr> {
    let parts = read_parts(parts);
    // Where each part's columns start in the row; `None` for a part left out.
    let mut starts = [None; PARTS.len()];
    let mut at = IDENTITY.len();
    for (start, (part, columns)) in starts.iter_mut().zip(PARTS) {
        if parts.has(part) {
            *start = Some(at);
            at += columns.len();
        }
    }
    let start = |part: ConnectionPart| starts[part as usize];

    let account_label: Option<String> = match start(ConnectionPart::AccountLabel) {
        Some(at) => row.get(at)?,
        None => None,
    };
    let last_verification = match start(ConnectionPart::LastVerification) {
        Some(at) => verification(row, at, account_label.as_deref())?,
        None => None,
    };
    let (grant_expires_at, token_details, token_generation) = match start(ConnectionPart::Grant) {
        Some(at) => (
            row.time_opt(at)?,
            row.json_opt::<BTreeMap<String, String>>(at + 1)?.unwrap_or_default(),
            row.get(at + 2)?,
        ),
        None => (None, BTreeMap::new(), 0),
    };
    let health = match start(ConnectionPart::Health) {
        Some(at) => Health {
            next_check_at: row.time_opt(at)?,
            consecutive_failures: row.get(at + 1)?,
            last_success_at: row.time_opt(at + 2)?,
            last_failure_at: row.time_opt(at + 3)?,
        },
        None => Health::default(),
    };
    let user = |at: usize| Ok::<_, DbErr>(row.get::<Option<Uuid>>(at)?.map(UserId::from_uuid));
    let (created_by, updated_by) = match start(ConnectionPart::Authors) {
        Some(at) => (user(at)?, user(at + 1)?),
        None => (None, None),
    };
    let (created_at, updated_at) = match start(ConnectionPart::Times) {
        Some(at) => (row.time(at)?, row.time(at + 1)?),
        None => (DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH),
    };
    Ok(Connection {
        id: ConnectionId::from_uuid(row.get::<Uuid>(0)?),
        team_id: TeamId::from_uuid(row.get::<Uuid>(1)?),
        app_key: row.get(2)?,
        name: ConnectionName::parse(row.str(3)?).map_err(DbErr::Custom)?,
        auth_type: parse(row.str(4)?, AuthType::parse)?,
        status: parse(row.str(5)?, ConnectionStatus::parse)?,
        version: row.get(6)?,
        public_fields: json_or_empty(row, start(ConnectionPart::PublicFields))?,
        secret_fields: json_or_empty(row, start(ConnectionPart::SecretFieldNames))?,
        scopes: json_or_empty(row, start(ConnectionPart::Scopes))?,
        expires_at: start(ConnectionPart::ExpiresAt).map(|at| row.time_opt(at)).transpose()?.flatten(),
        grant_expires_at,
        token_details,
        token_generation,
        account_label,
        last_verification,
        health,
        created_by,
        updated_by,
        created_at,
        updated_at,
    })
}

/// The JSON column at `at`, or an empty value when its part was left out.
fn json_or_empty<T: serde::de::DeserializeOwned + Default>(
    row: &Row<'_>,
    at: Option<usize>,
) -> Result<T, DbErr> {
    at.map_or_else(|| Ok(T::default()), |at| row.json(at))
}

/// The last verification in the four columns from `at`, if the connection was ever checked.
fn verification(
    row: &Row<'_>,
    at: usize,
    account_label: Option<&str>,
) -> Result<Option<Verification>, DbErr> {
    let outcome =
        row.get::<Option<&str>>(at)?.map(|raw| parse(raw, VerificationOutcome::parse)).transpose()?;
    let (Some(outcome), Some(started_at), Some(finished_at)) =
        (outcome, row.time_opt(at + 2)?, row.time_opt(at + 3)?)
    else {
        return Ok(None);
    };
    Ok(Some(Verification {
        outcome,
        message: row.get(at + 1)?,
        // The account is shown beside a passing check only.
        account_label: account_label.filter(|_| outcome == VerificationOutcome::Ok).map(str::to_owned),
        started_at,
        finished_at,
    }))
}

/// A stored enum name, or an error naming what no variant is called.
fn parse<T>(raw: &str, parse: fn(&str) -> Option<T>) -> Result<T, DbErr> {
    parse(raw).ok_or_else(|| DbErr::Type(format!("{raw:?} is not a valid {}", std::any::type_name::<T>())))
}
