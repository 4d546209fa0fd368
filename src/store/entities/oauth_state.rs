use sea_orm::entity::prelude::*;

use crate::domain::{ActorKind, ConnectionId, TeamId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// SHA-256 of the `state` sent to the provider; the state itself is never stored.
    #[sea_orm(unique)]
    pub state_hash: String,
    pub team_id: TeamId,
    pub connection_id: ConnectionId,
    /// `CREATE`, `REAUTHORIZE` or `EDIT`.
    pub purpose: String,
    /// The connection's version when the consent started.
    pub connection_version: i32,
    pub scopes: Json,
    /// The PKCE verifier and, for an edit, the pending form: sealed like credentials.
    pub sealed_payload: Vec<u8>,
    pub payload_key_id: String,
    pub actor_kind: ActorKind,
    pub actor_id: Option<Uuid>,
    pub actor_label: String,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
