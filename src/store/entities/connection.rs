use sea_orm::entity::prelude::*;

use crate::domain::{AuthType, ConnectionId, ConnectionStatus, TeamId, UserId, VerificationOutcome};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ConnectionId,
    pub team_id: TeamId,
    pub app_key: String,
    pub name: String,
    pub auth_type: AuthType,
    pub status: ConnectionStatus,
    /// Non-secret form values: a JSON object of strings.
    pub public_fields: Json,
    /// Names of the secret fields that are set: a JSON array of strings.
    pub secret_fields: Json,
    /// Every secret of the connection in one sealed envelope (see `crypto`).
    pub sealed_secrets: Option<Vec<u8>>,
    pub secrets_key_id: Option<String>,
    pub scopes: Json,
    pub expires_at: Option<DateTimeUtc>,
    pub account_label: Option<String>,
    pub last_verification_outcome: Option<VerificationOutcome>,
    pub last_verification_message: Option<String>,
    pub last_verification_started_at: Option<DateTimeUtc>,
    pub last_verification_finished_at: Option<DateTimeUtc>,
    pub version: i32,
    pub created_by: Option<UserId>,
    pub updated_by: Option<UserId>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When the scheduler should check the connection next; none only while it waits for consent.
    pub next_check_at: Option<DateTimeUtc>,
    pub consecutive_failures: i32,
    pub last_success_at: Option<DateTimeUtc>,
    pub last_failure_at: Option<DateTimeUtc>,
    /// Who holds the right to refresh the tokens (a short lease), until `refresh_lease_expires_at`.
    pub refresh_lease_by: Option<String>,
    pub refresh_lease_expires_at: Option<DateTimeUtc>,
    /// Bumped by every write of new tokens: what a refresh's result is guarded by.
    pub token_generation: i32,
    /// When the provider says the grant (the refresh token) itself ends.
    pub grant_expires_at: Option<DateTimeUtc>,
    /// Non-secret facts the token endpoint named that the app keeps (`instance_url`).
    pub token_details: Option<Json>,
    /// The last warning sent before the grant ends, in days ahead (7, then 1).
    pub grant_warned_days: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
