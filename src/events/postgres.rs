//! The PostgreSQL bridge: `pg_notify` out, `LISTEN` in, relayed to the local broadcast.

use std::time::Duration;

use sea_orm::sqlx::PgPool;
use sea_orm::sqlx::postgres::PgListener;
use tokio::sync::{mpsc, oneshot};

use super::{Event, Relay};

const CHANNEL: &str = "plugboard_events";

/// Queued sends taken together into one statement, at most.
const SEND_BATCH: usize = 256;
/// Sends waiting, at most: beyond it, publishers wait (PostgreSQL is behind).
const QUEUE: usize = 8192;

/// Publishes through `pg_notify`. Everything this instance publishes goes through one queue
/// that one task empties, as much at a time as is waiting: one statement and one pooled
/// connection for many events instead of one each (a sweep's starts took the pool from its
/// own writes), and events leave in the order they were published (a check's start before its
/// result).
#[derive(Clone)]
pub struct Notifier {
    queue: mpsc::Sender<Queued>,
}

/// PostgreSQL refuses a notification payload of 8,000 bytes or more.
const MAX_PAYLOAD_BYTES: usize = 7999;

/// Encoded events to send, and who waits to learn whether they were sent.
struct Queued {
    payloads: Vec<String>,
    sent: Option<oneshot::Sender<bool>>,
}

impl Notifier {
    fn start(pool: PgPool, local: Relay) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(send_queued(pool, local, waiting));
        Notifier { queue }
    }

    /// Queues `event`; it is sent as soon as what was queued before it is.
    pub async fn notify(&self, event: &Event) {
        let payload = match serde_json::to_string(event) {
            Ok(payload) => payload,
            Err(err) => return tracing::error!(error = %err, "could not encode an event"),
        };
        self.enqueue(Queued { payloads: vec![payload], sent: None }).await;
    }

    /// Sends events already encoded (the outbox's payloads), in order, and waits until they are
    /// sent. Answers false when PostgreSQL refused them (logged): none of them went out, and
    /// the outbox keeps them for its next pass.
    pub async fn notify_encoded(&self, payloads: &[&str]) -> bool {
        if payloads.is_empty() {
            return true;
        }
        let (sent, done) = oneshot::channel();
        let payloads = payloads.iter().map(|payload| (*payload).to_owned()).collect();
        self.enqueue(Queued { payloads, sent: Some(sent) }).await;
        done.await.unwrap_or(false)
    }

    async fn enqueue(&self, queued: Queued) {
        if self.queue.send(queued).await.is_err() {
            tracing::warn!("the event queue is closed; live subscribers miss events");
        }
    }
}

/// Sends what the queue holds, in order, until every `Notifier` is gone. An event too large
/// for a notification reaches this instance's subscribers only, and is logged: one such event
/// would otherwise make PostgreSQL refuse every other event of its statement.
async fn send_queued(pool: PgPool, local: Relay, mut waiting: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(SEND_BATCH);
    while waiting.recv_many(&mut batch, SEND_BATCH).await > 0 {
        let mut payloads = Vec::new();
        for queued in &mut batch {
            for payload in std::mem::take(&mut queued.payloads) {
                if payload.len() <= MAX_PAYLOAD_BYTES {
                    payloads.push(payload);
                    continue;
                }
                tracing::error!(
                    bytes = payload.len(),
                    "an event is too large for a PostgreSQL notification; only this instance's subscribers get it"
                );
                if let Err(err) = local.send_encoded(&payload) {
                    tracing::error!(error = %err, "dropped an event that does not decode");
                }
            }
        }
        let sent = send(&pool, &payloads).await;
        if !sent {
            // What this instance's caches may have missed; the outbox's events go out again.
            local.may_have_missed();
        }
        for queued in batch.drain(..) {
            if let Some(waiting) = queued.sent {
                let _ = waiting.send(sent);
            }
        }
    }
}

/// One statement for all of `payloads`: all of them go out, or none. PostgreSQL delivers the
/// notifications of one transaction in the order they were sent (and folds identical ones into
/// one). Answers whether they went out.
async fn send(pool: &PgPool, payloads: &[String]) -> bool {
    if payloads.is_empty() {
        return true;
    }
    let sent = sea_orm::sqlx::query(
        "SELECT pg_notify($1, payload) FROM unnest($2::text[]) WITH ORDINALITY AS sent(payload, n) ORDER BY n",
    )
    .bind(CHANNEL)
    .bind(payloads)
    .execute(pool)
    .await;
    if let Err(err) = &sent {
        tracing::warn!(error = %err, events = payloads.len(), "could not publish events through PostgreSQL; the outbox's go out again on its next pass, live ones are missed");
    }
    sent.is_ok()
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
    let local_for_notifier = local.clone();
    tokio::spawn(async move {
        loop {
            // `try_recv` rather than `recv`, which would reconnect silently: a lost connection
            // must be known, because notifications sent meanwhile are gone for good.
            match listener.try_recv().await {
                Ok(Some(notification)) if notification.channel() == crate::store::outbox::WAKE_CHANNEL => {
                    outbox.send_modify(|commits| *commits = commits.wrapping_add(1));
                }
                Ok(Some(notification)) => {
                    if let Err(err) = local.send_encoded(notification.payload()) {
                        tracing::warn!(error = %err, "ignored a malformed event notification");
                    }
                }
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
    Ok(Notifier::start(pool, local_for_notifier))
}
