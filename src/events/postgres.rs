//! The PostgreSQL bridge: `pg_notify` out, `LISTEN` in, relayed to the local broadcast.

use std::time::Duration;

use sea_orm::sqlx::PgPool;
use sea_orm::sqlx::postgres::PgListener;

use super::{Event, Relay};

const CHANNEL: &str = "plugboard_events";

#[derive(Clone)]
pub struct Notifier {
    pool: PgPool,
}

impl Notifier {
    pub async fn notify(&self, event: &Event) {
        let payload = match serde_json::to_string(event) {
            Ok(payload) => payload,
            Err(err) => return tracing::error!(error = %err, "could not encode an event"),
        };
        let sent = sea_orm::sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await;
        if let Err(err) = sent {
            tracing::warn!(error = %err, "could not publish an event through PostgreSQL; live subscribers miss it");
        }
    }
}

/// Starts listening (before returning, so no event published after start is missed) and relays
/// every notification to `local`; a commit that staged outbox rows wakes `outbox`.
pub(super) async fn bridge(
    pool: PgPool,
    local: Relay,
    outbox: tokio::sync::watch::Sender<u64>,
) -> anyhow::Result<Notifier> {
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen_all([CHANNEL, crate::store::outbox::WAKE_CHANNEL]).await?;
    tokio::spawn(async move {
        loop {
            // `try_recv` rather than `recv`, which would reconnect silently: a lost connection
            // must be known, because notifications sent meanwhile are gone for good.
            match listener.try_recv().await {
                Ok(Some(notification)) if notification.channel() == crate::store::outbox::WAKE_CHANNEL => {
                    outbox.send_modify(|commits| *commits = commits.wrapping_add(1));
                }
                Ok(Some(notification)) => match serde_json::from_str::<Event>(notification.payload()) {
                    Ok(event) => local.send(event),
                    Err(err) => tracing::warn!(error = %err, "ignored a malformed event notification"),
                },
                Ok(None) => {
                    // Reconnects on the next call. Live events sent meanwhile are lost (the
                    // outbox's are not: its dispatcher also polls), so caches of access start over.
                    tracing::warn!("lost the PostgreSQL event listener; reconnecting");
                    local.may_have_missed();
                    outbox.send_modify(|commits| *commits = commits.wrapping_add(1));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the PostgreSQL event listener failed; retrying");
                    local.may_have_missed();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(Notifier { pool })
}
