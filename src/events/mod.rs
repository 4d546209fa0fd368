//! What happened to connections, for live dashboards: verification started and finished,
//! connection created, updated, deleted, status changed. Events carry ids, statuses and
//! verification results, never secrets.
//!
//! A change writes its events into the outbox in its own transaction (`stage`); the dispatcher
//! (`scheduler::dispatch`) publishes them once committed, so an event exists exactly when its
//! change does, a crash loses none, and none reports a change that was rolled back. Only
//! `VerificationPhase::Started`, which reports work under way rather than a change, is
//! published directly.
//!
//! With SQLite they travel through an in-process broadcast. With PostgreSQL every instance
//! publishes with `NOTIFY` and relays what it hears on `LISTEN`, its own events included, so a
//! subscriber on one instance sees what another did.

mod postgres;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::domain::{
    ConnectionId, ConnectionStatus, TeamId, TokenId, UserId, Verification, VerificationOutcome,
};

/// How many events a slow subscriber may fall behind before it misses some.
const BUFFER: usize = 4096;
/// How far a cache may fall behind on invalidations before it must start over (see
/// `Invalidation::Everything`).
const INVALIDATION_BUFFER: usize = 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Verification(VerificationEvent),
    Connection(ConnectionEvent),
    App(AppHealthEvent),
    /// Someone's access shrank: a token revoked, a member removed or demoted. Open
    /// subscriptions it may concern check their caller again.
    Access(AccessEvent),
}

impl Event {
    /// The team whose data the event carries; none for access changes, which carry no data.
    pub fn team_id(&self) -> Option<TeamId> {
        match self {
            Event::Verification(e) => Some(e.team_id),
            Event::Connection(e) => Some(e.team_id),
            Event::App(e) => Some(e.team_id),
            Event::Access(_) => None,
        }
    }
}

/// Whose access changed. A subscription whose caller matches any of these re-checks it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccessEvent {
    pub team_id: Option<TeamId>,
    pub user_id: Option<UserId>,
    pub token_id: Option<TokenId>,
}

impl AccessEvent {
    pub fn token_revoked(token_id: TokenId) -> Event {
        Event::Access(AccessEvent { token_id: Some(token_id), ..Default::default() })
    }

    pub fn membership_changed(team_id: TeamId, user_id: UserId) -> Event {
        Event::Access(AccessEvent { team_id: Some(team_id), user_id: Some(user_id), token_id: None })
    }

    /// Whether a caller presenting `token` as `user` may be concerned.
    pub fn concerns(&self, user: Option<UserId>, token: Option<TokenId>) -> bool {
        let user_matches = self.user_id.is_some() && self.user_id == user;
        let token_matches = self.token_id.is_some() && self.token_id == token;
        user_matches || token_matches
    }
}

/// What in-memory caches hear, on every instance: what changed, or that a change may have
/// gone unheard.
#[derive(Debug, Clone)]
pub enum Invalidation {
    /// Someone's access shrank.
    Access(AccessEvent),
    /// A connection changed (its row, secrets or status) or was deleted.
    Connection(ConnectionId),
    /// The PostgreSQL listener lost its connection: notifications sent meanwhile are gone, so
    /// caches start over.
    Everything,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerificationPhase {
    Started,
    Finished,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerificationEvent {
    pub team_id: TeamId,
    pub connection_id: ConnectionId,
    pub phase: VerificationPhase,
    /// Set when finished.
    pub result: Option<VerificationResult>,
}

/// A verification as it travels between instances.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerificationResult {
    pub outcome: VerificationOutcome,
    pub message: Option<String>,
    pub account_label: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

impl VerificationEvent {
    pub fn started(team_id: TeamId, connection_id: ConnectionId) -> Event {
        Event::Verification(VerificationEvent {
            team_id,
            connection_id,
            phase: VerificationPhase::Started,
            result: None,
        })
    }

    pub fn finished(team_id: TeamId, connection_id: ConnectionId, check: &Verification) -> Event {
        Event::Verification(VerificationEvent {
            team_id,
            connection_id,
            phase: VerificationPhase::Finished,
            result: Some(VerificationResult {
                outcome: check.outcome,
                message: check.message.clone(),
                account_label: check.account_label.clone(),
                started_at: check.started_at,
                finished_at: check.finished_at,
            }),
        })
    }

    pub fn verification(&self) -> Option<Verification> {
        let result = self.result.as_ref()?;
        Some(Verification {
            outcome: result.outcome,
            message: result.message.clone(),
            account_label: result.account_label.clone(),
            started_at: result.started_at,
            finished_at: result.finished_at,
        })
    }
}

/// An app one of the team's connections uses became degraded or recovered: one event per team
/// for the whole app, instead of one per connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppHealthEvent {
    pub team_id: TeamId,
    pub app: String,
    pub status: crate::domain::AppHealthStatus,
    pub since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl AppHealthEvent {
    pub fn changed(team_id: TeamId, app: &str, health: &crate::domain::AppHealth) -> Event {
        Event::App(AppHealthEvent {
            team_id,
            app: app.to_owned(),
            status: health.status,
            since: health.since,
            last_error: health.last_error.clone(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectionEventKind {
    Created,
    Updated,
    Deleted,
    StatusChanged,
    /// The connection's grant ends soon (a week, then a day, before).
    Expiring,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionEvent {
    pub team_id: TeamId,
    pub connection_id: ConnectionId,
    pub kind: ConnectionEventKind,
    /// The status after the change; none after a delete.
    pub status: Option<ConnectionStatus>,
    /// The status before, for `StatusChanged`.
    pub previous_status: Option<ConnectionStatus>,
}

impl ConnectionEvent {
    pub fn changed(
        team_id: TeamId,
        connection_id: ConnectionId,
        kind: ConnectionEventKind,
        status: Option<ConnectionStatus>,
        previous_status: Option<ConnectionStatus>,
    ) -> Event {
        Event::Connection(ConnectionEvent { team_id, connection_id, kind, status, previous_status })
    }
}

/// Writes `events` into the outbox inside the caller's transaction; the dispatcher publishes
/// them after the commit. Call `EventBus::wake_dispatcher` once committed.
pub async fn stage(txn: &impl sea_orm::ConnectionTrait, events: &[Event]) -> anyhow::Result<()> {
    EncodedEvents::new(events)?.stage(txn).await
}

/// Events encoded for the outbox ahead of the transaction that stages them, so that a batch's
/// encoding is not done while the transaction holds the database's writer.
pub struct EncodedEvents(Vec<String>);

impl EncodedEvents {
    pub fn new(events: &[Event]) -> anyhow::Result<Self> {
        Ok(EncodedEvents(events.iter().map(serde_json::to_string).collect::<Result<_, _>>()?))
    }

    /// Writes them into the outbox inside the caller's transaction, as `stage` does.
    pub async fn stage(self, txn: &impl sea_orm::ConnectionTrait) -> anyhow::Result<()> {
        crate::store::outbox::stage(txn, self.0).await?;
        Ok(())
    }
}

/// Publishes events and hands out subscriptions. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    local: Relay,
    postgres: Option<postgres::Notifier>,
    /// Set at shutdown: every subscription completes.
    closing: tokio::sync::watch::Sender<bool>,
    /// Counts commits that staged something, so every dispatcher loop wakes for each.
    outbox: tokio::sync::watch::Sender<u64>,
    subscribers: Subscribers,
}

impl EventBus {
    /// An in-process bus, or one bridged through PostgreSQL when `db` is PostgreSQL.
    pub async fn start(db: &DatabaseConnection) -> anyhow::Result<Self> {
        let local = Relay::new();
        let outbox = tokio::sync::watch::Sender::new(0);
        let postgres = match db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => Some(
                postgres::bridge(db.get_postgres_connection_pool().clone(), local.clone(), outbox.clone())
                    .await?,
            ),
            _ => None,
        };
        Ok(EventBus {
            local,
            postgres,
            closing: tokio::sync::watch::Sender::new(false),
            outbox,
            subscribers: Subscribers::default(),
        })
    }

    /// Tells this instance's dispatcher that a commit staged events or webhook deliveries (on
    /// PostgreSQL the commit itself tells every instance).
    pub fn wake_dispatcher(&self) {
        self.outbox.send_modify(|commits| *commits = commits.wrapping_add(1));
    }

    /// What a dispatcher loop waits on: it changes whenever something was staged.
    pub fn dispatcher_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.outbox.subscribe()
    }

    /// Publishes events that the outbox held, as encoded by `stage`, in their order. On
    /// PostgreSQL they go out as they are, all in one statement; every listener decodes them.
    /// Answers false when PostgreSQL refused the statement: none went out, and the outbox
    /// should keep them.
    pub async fn publish_staged(&self, payloads: &[&str]) -> bool {
        match &self.postgres {
            Some(notifier) => notifier.notify_encoded(payloads).await,
            None => {
                for payload in payloads {
                    if let Err(err) = self.local.send_encoded(payload) {
                        tracing::error!(error = %err, "dropped an outbox event that does not decode")
                    }
                }
                true
            }
        }
    }

    /// Sends `event` to every subscriber of every instance. Never fails the caller: a lost event
    /// is logged, and the state it reports is in the database anyway.
    pub async fn publish(&self, event: Event) {
        match &self.postgres {
            Some(notifier) => notifier.notify(&event).await,
            None => self.local.send(event),
        }
    }

    /// A subscription to every event, and a signal that turns true when the service shuts down.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Event>>, tokio::sync::watch::Receiver<bool>) {
        (self.local.events.subscribe(), self.closing.subscribe())
    }

    /// What caches must evict, as it happens on any instance; not counted among
    /// `subscribers`.
    pub fn invalidations(&self) -> broadcast::Receiver<Invalidation> {
        self.local.invalidations.subscribe()
    }

    /// Turns true when the service shuts down.
    pub fn closed_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends every subscription (at shutdown), so clients are told instead of cut off.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// How many subscriptions hear this instance's events.
    pub fn subscribers(&self) -> usize {
        self.subscribers.count()
    }

    /// Where subscriptions are counted as they start and end hearing the bus.
    pub fn subscriber_tally(&self) -> Subscribers {
        self.subscribers.clone()
    }

    /// How many access changes this instance has heard of (or may have missed). It grows before
    /// each access event reaches a subscriber, so an access check that began when it stood at
    /// the value a subscriber reads now saw every change that subscriber heard of.
    pub fn access_changes(&self) -> u64 {
        self.local.access_changes.load(Ordering::SeqCst)
    }
}

/// How many GraphQL subscriptions hear the bus on this instance. Receivers are not counted:
/// identical subscriptions share one (see `graphql::shared`), and caches hold their own.
#[derive(Clone, Default)]
pub struct Subscribers(Arc<AtomicUsize>);

impl Subscribers {
    pub fn add(&self, count: usize) {
        self.0.fetch_add(count, Ordering::SeqCst);
    }

    pub fn remove(&self, count: usize) {
        self.0.fetch_sub(count, Ordering::SeqCst);
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// This instance's end of the bus: every event to subscriptions, what it invalidates to caches.
#[derive(Clone)]
struct Relay {
    events: broadcast::Sender<Arc<Event>>,
    invalidations: broadcast::Sender<Invalidation>,
    /// See `EventBus::access_changes`.
    access_changes: Arc<AtomicU64>,
}

impl Relay {
    fn new() -> Self {
        Relay {
            events: broadcast::channel(BUFFER).0,
            invalidations: broadcast::channel(INVALIDATION_BUFFER).0,
            access_changes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Hands `event` to this instance's receivers. No receiver is not an error: nobody is
    /// watching.
    fn send(&self, event: Event) {
        let invalidation = match &event {
            Event::Access(change) => {
                self.access_changes.fetch_add(1, Ordering::SeqCst);
                Some(Invalidation::Access(change.clone()))
            }
            Event::Connection(change) => Some(Invalidation::Connection(change.connection_id)),
            Event::Verification(_) | Event::App(_) => None,
        };
        if let Some(invalidation) = invalidation {
            let _ = self.invalidations.send(invalidation);
        }
        let _ = self.events.send(Arc::new(event));
    }

    /// Hands over an event as `stage` encoded it. Decoding is skipped for an event that only
    /// subscriptions read while there are none: a sweep publishes one per check.
    fn send_encoded(&self, payload: &str) -> Result<(), serde_json::Error> {
        if self.events.receiver_count() == 0 && invalidates_nothing(payload) {
            return Ok(());
        }
        self.send(serde_json::from_str(payload)?);
        Ok(())
    }

    fn may_have_missed(&self) {
        self.access_changes.fetch_add(1, Ordering::SeqCst);
        let _ = self.invalidations.send(Invalidation::Everything);
    }
}

/// Whether an encoded event is one that no cache cares about (see `Relay::send`). Read from the
/// tag, which serde writes first for an internally tagged enum; an event written otherwise is
/// simply decoded.
fn invalidates_nothing(payload: &str) -> bool {
    const TAGS: [&str; 2] = [r#"{"type":"verification","#, r#"{"type":"app","#];
    TAGS.iter().any(|tag| payload.starts_with(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events cross instances (NOTIFY) and outlive a deploy (the outbox): their JSON is a wire
    /// format. Typed fields must encode exactly as the strings they replaced.
    #[test]
    fn events_keep_their_wire_format() {
        let team = TeamId::from_uuid(uuid::Uuid::nil());
        let connection = ConnectionId::from_uuid(uuid::Uuid::max());
        let event = ConnectionEvent::changed(
            team,
            connection,
            ConnectionEventKind::StatusChanged,
            Some(ConnectionStatus::NeedsReauthorization),
            Some(ConnectionStatus::Active),
        );
        let wire = serde_json::to_value(&event).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({
                "type": "connection",
                "team_id": "00000000-0000-0000-0000-000000000000",
                "connection_id": "ffffffff-ffff-ffff-ffff-ffffffffffff",
                "kind": "STATUS_CHANGED",
                "status": "NEEDS_REAUTHORIZATION",
                "previous_status": "ACTIVE",
            })
        );
        let back: Event = serde_json::from_value(wire).unwrap();
        assert!(
            matches!(back, Event::Connection(e) if e.status == Some(ConnectionStatus::NeedsReauthorization))
        );

        let check = Verification::noted(VerificationOutcome::InsufficientScopes, "missing files.read");
        let finished = serde_json::to_value(VerificationEvent::finished(team, connection, &check)).unwrap();
        assert_eq!(finished["result"]["outcome"], "INSUFFICIENT_SCOPES");
        assert_eq!(finished["phase"], "FINISHED");
    }

    /// Without subscribers, a relay skips decoding the events no cache reads, by their tag.
    #[test]
    fn only_events_that_invalidate_nothing_are_recognised_undecoded() {
        let team = TeamId::from_uuid(uuid::Uuid::nil());
        let connection = ConnectionId::from_uuid(uuid::Uuid::max());
        let encoded = |event: &Event| EncodedEvents::new(std::slice::from_ref(event)).unwrap().0.remove(0);
        let check = Verification::noted(VerificationOutcome::Ok, "fine");
        assert!(invalidates_nothing(&encoded(&VerificationEvent::finished(team, connection, &check))));
        assert!(invalidates_nothing(&encoded(&VerificationEvent::started(team, connection))));
        let changed = ConnectionEvent::changed(team, connection, ConnectionEventKind::Deleted, None, None);
        assert!(!invalidates_nothing(&encoded(&changed)));
        assert!(!invalidates_nothing(&encoded(&AccessEvent::token_revoked(TokenId::from_uuid(
            uuid::Uuid::nil()
        )))));

        let relay = Relay::new();
        let mut invalidations = relay.invalidations.subscribe();
        relay.send_encoded(&encoded(&VerificationEvent::finished(team, connection, &check))).unwrap();
        relay.send_encoded(&encoded(&changed)).unwrap();
        assert!(matches!(invalidations.try_recv(), Ok(Invalidation::Connection(id)) if id == connection));
        assert!(relay.send_encoded(r#"{"type":"connection"}"#).is_err());
    }
}
