//! App-level incidents as every instance sees them: which apps are degraded, and the one write
//! that changes an app's status, guarded so that two instances never both announce it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, Set};

use super::entities::{app_health, connection};
use crate::domain::{AppHealth, AppHealthStatus, TeamId};

fn to_domain(row: app_health::Model) -> AppHealth {
    AppHealth {
        status: AppHealthStatus::parse(&row.status).unwrap_or(AppHealthStatus::Healthy),
        since: Some(row.since),
        last_error: row.last_error,
    }
}

/// The health of `app_key`; healthy when it never had an incident.
pub async fn get(db: &impl ConnectionTrait, app_key: &str) -> Result<AppHealth, DbErr> {
    let row = app_health::Entity::find_by_id(app_key.to_owned()).one(db).await?;
    Ok(row.map(to_domain).unwrap_or_else(AppHealth::healthy))
}

/// Every degraded app, by key.
pub async fn degraded(db: &impl ConnectionTrait) -> Result<HashMap<String, AppHealth>, DbErr> {
    let rows = app_health::Entity::find()
        .filter(app_health::Column::Status.eq(AppHealthStatus::Degraded.as_str()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|row| (row.app_key.clone(), to_domain(row))).collect())
}

/// Marks the app degraded. `true` when this call changed it (so its caller announces it);
/// `false` when it already was, in which case only the last error is updated.
pub async fn mark_degraded(
    db: &impl ConnectionTrait,
    app_key: &str,
    now: DateTime<Utc>,
    last_error: Option<&str>,
) -> Result<bool, DbErr> {
    let degraded = AppHealthStatus::Degraded.as_str();
    let row = app_health::ActiveModel {
        app_key: Set(app_key.to_owned()),
        status: Set(degraded.to_owned()),
        since: Set(now),
        last_error: Set(last_error.map(str::to_owned)),
        updated_at: Set(now),
    };
    let inserted = app_health::Entity::insert(row)
        .on_conflict(OnConflict::column(app_health::Column::AppKey).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    if inserted == 1 {
        return Ok(true);
    }
    let changed = app_health::Entity::update_many()
        .col_expr(app_health::Column::Status, Expr::value(degraded))
        .col_expr(app_health::Column::Since, Expr::value(now))
        .col_expr(app_health::Column::LastError, Expr::value(last_error.map(str::to_owned)))
        .col_expr(app_health::Column::UpdatedAt, Expr::value(now))
        .filter(app_health::Column::AppKey.eq(app_key))
        .filter(app_health::Column::Status.ne(degraded))
        .exec(db)
        .await?;
    if changed.rows_affected == 1 {
        return Ok(true);
    }
    app_health::Entity::update_many()
        .col_expr(app_health::Column::LastError, Expr::value(last_error.map(str::to_owned)))
        .col_expr(app_health::Column::UpdatedAt, Expr::value(now))
        .filter(app_health::Column::AppKey.eq(app_key))
        .exec(db)
        .await?;
    Ok(false)
}

/// Marks a degraded app healthy again. `true` when this call changed it.
pub async fn mark_recovered(
    db: &impl ConnectionTrait,
    app_key: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let changed = app_health::Entity::update_many()
        .col_expr(app_health::Column::Status, Expr::value(AppHealthStatus::Healthy.as_str()))
        .col_expr(app_health::Column::Since, Expr::value(now))
        .col_expr(app_health::Column::UpdatedAt, Expr::value(now))
        .filter(app_health::Column::AppKey.eq(app_key))
        .filter(app_health::Column::Status.eq(AppHealthStatus::Degraded.as_str()))
        .exec(db)
        .await?;
    Ok(changed.rows_affected == 1)
}

/// The teams with at least one connection of the app: who hears of its incidents.
pub async fn teams_using(db: &impl ConnectionTrait, app_key: &str) -> Result<Vec<TeamId>, DbErr> {
    connection::Entity::find()
        .select_only()
        .column(connection::Column::TeamId)
        .distinct()
        .filter(connection::Column::AppKey.eq(app_key))
        .into_tuple::<TeamId>()
        .all(db)
        .await
}
