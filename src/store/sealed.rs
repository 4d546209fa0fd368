//! Every sealed column of the database, for key rotation: which rows are sealed under another
//! key than the active one, and a swap of one row's blob that lands only if the blob is still
//! the one read (a change meanwhile sealed it under the active key already). Across all teams:
//! for the `rotate-keys` command only.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::{connection, oauth_state, webhook};
use crate::domain::{ConnectionId, TeamId};

/// A table holding sealed blobs. A new sealed column belongs here, so rotation covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    /// A connection's secrets (form secrets and tokens).
    Connections,
    /// A webhook endpoint's signing secret.
    Webhooks,
    /// A consent in progress (its PKCE verifier and a pending edit's secrets).
    OAuthStates,
}

impl SealedTable {
    pub const ALL: [SealedTable; 3] =
        [SealedTable::Connections, SealedTable::Webhooks, SealedTable::OAuthStates];

    pub fn name(self) -> &'static str {
        match self {
            SealedTable::Connections => "connections",
            SealedTable::Webhooks => "webhooks",
            SealedTable::OAuthStates => "oauth_states",
        }
    }
}

/// A sealed blob with what it is bound to.
#[derive(Clone)]
pub struct SealedRow {
    pub id: uuid::Uuid,
    pub team_id: TeamId,
    pub blob: Vec<u8>,
}

/// The next rows of `table`, after `after` in id order, sealed under another key than `active`.
pub async fn under_other_keys(
    db: &impl ConnectionTrait,
    table: SealedTable,
    active: &str,
    after: Option<uuid::Uuid>,
    limit: u64,
) -> Result<Vec<SealedRow>, DbErr> {
    Ok(match table {
        SealedTable::Connections => {
            let mut query = connection::Entity::find()
                .filter(connection::Column::SealedSecrets.is_not_null())
                .filter(connection::Column::SecretsKeyId.ne(active));
            if let Some(after) = after {
                query = query.filter(connection::Column::Id.gt(ConnectionId::from_uuid(after)));
            }
            let rows = query.order_by_asc(connection::Column::Id).limit(limit).all(db).await?;
            rows.into_iter()
                .filter_map(|m| {
                    Some(SealedRow { id: m.id.as_uuid(), team_id: m.team_id, blob: m.sealed_secrets? })
                })
                .collect()
        }
        SealedTable::Webhooks => {
            let mut query = webhook::Entity::find().filter(webhook::Column::SecretKeyId.ne(active));
            if let Some(after) = after {
                query = query.filter(webhook::Column::Id.gt(after));
            }
            let rows = query.order_by_asc(webhook::Column::Id).limit(limit).all(db).await?;
            rows.into_iter()
                .map(|m| SealedRow { id: m.id, team_id: m.team_id, blob: m.sealed_secret })
                .collect()
        }
        SealedTable::OAuthStates => {
            let mut query = oauth_state::Entity::find().filter(oauth_state::Column::PayloadKeyId.ne(active));
            if let Some(after) = after {
                query = query.filter(oauth_state::Column::Id.gt(after));
            }
            let rows = query.order_by_asc(oauth_state::Column::Id).limit(limit).all(db).await?;
            rows.into_iter()
                .map(|m| SealedRow { id: m.id, team_id: m.team_id, blob: m.sealed_payload })
                .collect()
        }
    })
}

/// Replaces a row's blob only if it is still the one read. Answers whether it swapped.
pub async fn swap(
    db: &impl ConnectionTrait,
    table: SealedTable,
    row: &SealedRow,
    blob: Vec<u8>,
    key_id: &str,
) -> Result<bool, DbErr> {
    let result = match table {
        SealedTable::Connections => {
            connection::Entity::update_many()
                .col_expr(connection::Column::SealedSecrets, Expr::value(blob))
                .col_expr(connection::Column::SecretsKeyId, Expr::value(key_id))
                .filter(connection::Column::TeamId.eq(row.team_id))
                .filter(connection::Column::Id.eq(ConnectionId::from_uuid(row.id)))
                .filter(connection::Column::SealedSecrets.eq(row.blob.clone()))
                .exec(db)
                .await?
        }
        SealedTable::Webhooks => {
            webhook::Entity::update_many()
                .col_expr(webhook::Column::SealedSecret, Expr::value(blob))
                .col_expr(webhook::Column::SecretKeyId, Expr::value(key_id))
                .filter(webhook::Column::TeamId.eq(row.team_id))
                .filter(webhook::Column::Id.eq(row.id))
                .filter(webhook::Column::SealedSecret.eq(row.blob.clone()))
                .exec(db)
                .await?
        }
        SealedTable::OAuthStates => {
            oauth_state::Entity::update_many()
                .col_expr(oauth_state::Column::SealedPayload, Expr::value(blob))
                .col_expr(oauth_state::Column::PayloadKeyId, Expr::value(key_id))
                .filter(oauth_state::Column::TeamId.eq(row.team_id))
                .filter(oauth_state::Column::Id.eq(row.id))
                .filter(oauth_state::Column::SealedPayload.eq(row.blob.clone()))
                .exec(db)
                .await?
        }
    };
    Ok(result.rows_affected == 1)
}

/// How many rows of `table` are sealed under another key than `active`.
pub async fn count_under_other_keys(
    db: &impl ConnectionTrait,
    table: SealedTable,
    active: &str,
) -> Result<u64, DbErr> {
    match table {
        SealedTable::Connections => {
            connection::Entity::find()
                .filter(connection::Column::SealedSecrets.is_not_null())
                .filter(connection::Column::SecretsKeyId.ne(active))
                .count(db)
                .await
        }
        SealedTable::Webhooks => {
            webhook::Entity::find().filter(webhook::Column::SecretKeyId.ne(active)).count(db).await
        }
        SealedTable::OAuthStates => {
            oauth_state::Entity::find().filter(oauth_state::Column::PayloadKeyId.ne(active)).count(db).await
        }
    }
}
