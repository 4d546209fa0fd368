//! Webhook endpoints and their deliveries. The signing secret is never returned.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::{DeliveryStatus, Webhook, WebhookDelivery as Delivery};
use crate::error::AppResult;
use crate::graphql::ids::page_size;
use crate::graphql::state;
use crate::webhooks;

pub struct WebhookObject(pub Webhook);

#[Object(name = "Webhook")]
impl WebhookObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn url(&self) -> &str {
        &self.0.url
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The latest deliveries, newest first.
    #[graphql(complexity = "crate::graphql::limits::list_complexity(first, 20, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
    ) -> AppResult<Vec<WebhookDelivery>> {
        let first = page_size(first, crate::graphql::ids::MAX_PAGE_SIZE)?;
        let found = webhooks::deliveries(state(ctx)?, &self.0, first).await?;
        Ok(found.into_iter().map(WebhookDelivery::from).collect())
    }
}

#[derive(SimpleObject)]
pub struct WebhookDelivery {
    id: ID,
    /// e.g. `connection.needs_reauthorization`.
    event: String,
    /// `PENDING` (queued or retrying), `DELIVERED` or `FAILED` (gave up).
    status: String,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    /// What was (or will be) sent.
    payload: async_graphql::Json<serde_json::Value>,
}

impl From<Delivery> for WebhookDelivery {
    fn from(d: Delivery) -> Self {
        WebhookDelivery {
            id: ID(d.id.to_string()),
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            event: d.event,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            payload: async_graphql::Json(d.payload),
        }
    }
}
