//! Consents in progress. A state is consumed exactly once: the callback deletes the row it
//! reads, and only the request whose delete removed it goes on.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

pub use super::entities::oauth_state::Model as StoredState;
use super::entities::oauth_state::{self, Column, Entity};

pub async fn insert(db: &impl ConnectionTrait, state: StoredState) -> Result<(), DbErr> {
    let model = oauth_state::ActiveModel {
        id: Set(state.id),
        state_hash: Set(state.state_hash),
        team_id: Set(state.team_id),
        connection_id: Set(state.connection_id),
        purpose: Set(state.purpose),
        connection_version: Set(state.connection_version),
        scopes: Set(state.scopes),
        sealed_payload: Set(state.sealed_payload),
        payload_key_id: Set(state.payload_key_id),
        actor_kind: Set(state.actor_kind),
        actor_id: Set(state.actor_id),
        actor_label: Set(state.actor_label),
        expires_at: Set(state.expires_at),
        created_at: Set(state.created_at),
    };
    Entity::insert(model).exec_without_returning(db).await?;
    Ok(())
}

/// Takes the state with this hash if it exists and has not expired; it cannot be taken again.
pub async fn consume(
    db: &impl ConnectionTrait,
    state_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<StoredState>, DbErr> {
    let Some(found) = Entity::find().filter(Column::StateHash.eq(state_hash)).one(db).await? else {
        return Ok(None);
    };
    let deleted = Entity::delete_many().filter(Column::Id.eq(found.id)).exec(db).await?;
    if deleted.rows_affected == 0 || found.expires_at <= now {
        // Another request consumed it first, or it expired: either way it is gone now.
        return Ok(None);
    }
    Ok(Some(found))
}

/// Forgets expired consents; they can never complete.
pub async fn delete_expired(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(Entity::delete_many().filter(Column::ExpiresAt.lte(now)).exec(db).await?.rows_affected)
}
