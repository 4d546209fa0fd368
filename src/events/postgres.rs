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

/// Encoded events to send, and who waits until they are sent.
struct Queued {
    payloads: Vec<String>,
    sent: Option<oneshot::Sender<()>>,
}

impl Notifier {
    fn start(pool: PgPool) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(send_queued(pool, waiting));
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
    /// sent (or could not be: that is logged).
    pub async fn notify_encoded(&self, payloads: &[&str]) {
        if payloads.is_empty() {
            return;
        }
        let (sent, done) = oneshot::channel();
        let payloads = payloads.iter().map(|payload| (*payload).to_owned()).collect();
        self.enqueue(Queued { payloads, sent: Some(sent) }).await;
        let _ = done.await;
    }

    async fn enqueue(&self, queued: Queued) {
        if self.queue.send(queued).await.is_err() {
            tracing::warn!("the event queue is closed; live subscribers miss events");
        }
    }
}

/// Sends what the queue holds, in order, until every `Notifier` is gone.
async fn send_queued(pool: PgPool, mut waiting: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(SEND_BATCH);
    while waiting.recv_many(&mut batch, SEND_BATCH).await > 0 {
        let payloads: Vec<String> =
            batch.iter_mut().flat_map(|queued| std::mem::take(&mut queued.payloads)).collect();
        send(&pool, &payloads).await;
        for queued in batch.drain(..) {
            if let Some(sent) = queued.sent {
                let _ = sent.send(());
            }
        }
    }
}

/// One statement for all of `payloads`. PostgreSQL delivers the notifications of one
/// transaction in the order they were sent (and folds identical ones into one).
async fn send(pool: &PgPool, payloads: &[String]) {
    if payloads.is_empty() {
        return;
    }
    let sent = sea_orm::sqlx::query(
        "SELECT pg_notify($1, payload) FROM unnest($2::text[]) WITH ORDINALITY AS sent(payload, n) ORDER BY n",
    )
    .bind(CHANNEL)
    .bind(payloads)
    .execute(pool)
    .await;
    if let Err(err) = sent {
        tracing::warn!(error = %err, events = payloads.len(), "could not publish events through PostgreSQL; live subscribers miss them");
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
    Ok(Notifier::start(pool))
}
