//! A team's webhook endpoints and the deliveries queued for them.

use chrono::{DateTime, Utc};

use super::TeamId;

/// An endpoint that receives a team's connection events, signed with its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: uuid::Uuid,
    pub team_id: TeamId,
    pub url: String,
    /// The signing secret, sealed like credentials; opened only to sign a delivery.
    pub sealed_secret: Vec<u8>,
    pub secret_key_id: String,
    pub created_at: DateTime<Utc>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    /// Queued, or waiting to be retried.
    Pending,
    Delivered,
    /// Given up after the last attempt.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

/// One event queued for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDelivery {
    /// Also the `webhook-id` receivers deduplicate on.
    pub id: uuid::Uuid,
    pub webhook_id: uuid::Uuid,
    pub team_id: TeamId,
    /// e.g. `connection.needs_reauthorization`.
    pub event: String,
    pub payload: serde_json::Value,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}
