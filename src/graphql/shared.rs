//! Identical subscriptions share one execution. Subscriptions of one caller (the same user or
//! token, with the same expiry) asking for the same document, operation and variables would
//! each resolve every event into the same answer; instead the first one's execution runs on the
//! GraphQL runtime, which encodes each answer once, and every identical subscription, on any
//! socket, writes the same bytes.
//! Ten thousand dashboards of one team under one token cost one execution per event, not ten
//! thousand (BENCHMARKS.md, c).
//!
//! Nothing a subscriber sees changes: an answer depends only on the document, the variables and
//! the caller, and an access lost (token revoked or expired, member removed) ends the shared
//! execution with its error, which every subscriber of it receives before `complete`. A
//! subscriber that arrives while one is ending starts afresh: an answer with errors detaches
//! the execution first, so nobody joins it after. When the last subscriber leaves, the
//! execution stops.
//!
//! A subscription counts among the bus's subscribers (`EventBus::subscribers`) once its
//! execution hears the bus: `team_events` says so through [`Listening`].

use std::any::TypeId;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use async_graphql::{Data, Request, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

use super::{Caller, errors, runtime};
use crate::domain::{Principal, TeamId, TokenId, UserId};
use crate::events::Subscribers;

/// How many answers a subscriber may fall behind its shared execution before it misses some.
/// Each execution holds this many slots (about 40 bytes each) from its start.
const BACKLOG: usize = 512;

/// The executions under way that a new identical subscription may join.
type Registry = Mutex<HashMap<Arc<Key>, Registered>>;

struct Registered {
    id: u64,
    execution: Weak<Execution>,
}

/// Every shared execution of one schema.
pub struct SharedSubscriptions {
    registry: Arc<Registry>,
    next_id: AtomicU64,
    subscribers: Subscribers,
}

impl SharedSubscriptions {
    pub fn new(subscribers: Subscribers) -> Self {
        SharedSubscriptions { registry: Arc::default(), next_id: AtomicU64::new(0), subscribers }
    }

    /// The answers to `request`, an admitted subscription of the caller in `session`, each
    /// encoded as JSON with its error codes: those of the identical subscription under way, or
    /// of a new execution that `start` begins (it is polled on the GraphQL runtime, behind a
    /// panic guard).
    pub fn subscribe(
        &self,
        request: Request,
        session: Arc<Data>,
        start: impl FnOnce(Request, Arc<Data>) -> BoxStream<'static, Response>,
    ) -> BoxStream<'static, Bytes> {
        let key = Key::of(&request, &session).map(Arc::new);
        let mut registry = lock(&self.registry);
        if let Some(execution) =
            key.as_ref().and_then(|key| registry.get(key)).and_then(|entry| entry.execution.upgrade())
        {
            return execution.subscriber();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let detach = Detach { registry: Arc::downgrade(&self.registry), key: key.clone(), id };
        let audience =
            Arc::new(Audience { subscribers: self.subscribers.clone(), members: Mutex::default() });
        let (sender, template) = broadcast::channel(BACKLOG);
        let answers = start(request.data(Listening(audience.clone())), session);
        let execution =
            Arc::new(Execution { template: Mutex::new(template), audience, detach, driver: OnceLock::new() });
        // Subscribed before the first answer can be sent.
        let first = execution.subscriber();
        let driver = runtime::spawn_subscription(drive(answers, sender, execution.detach.clone()));
        let _ = execution.driver.set(driver);
        if let Some(key) = key {
            registry.insert(key, Registered { id, execution: Arc::downgrade(&execution) });
        }
        first
    }
}

/// What makes two subscriptions identical. `None` when the variables cannot be compared: that
/// subscription runs alone.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    document: String,
    operation: Option<String>,
    variables: String,
    caller: CallerKey,
}

impl Key {
    fn of(request: &Request, session: &Data) -> Option<Key> {
        let caller = session.get(&TypeId::of::<Caller>()).and_then(|data| data.downcast_ref::<Caller>());
        Some(Key {
            document: request.query.clone(),
            operation: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).ok()?,
            caller: CallerKey::of(caller),
        })
    }
}

/// Who is asking, as far as an answer or its end depends on it.
#[derive(PartialEq, Eq, Hash)]
enum CallerKey {
    Anonymous,
    User { user_id: UserId, token_id: Option<TokenId>, expires_at: Option<DateTime<Utc>> },
    Service { team_id: TeamId, token_id: TokenId, expires_at: Option<DateTime<Utc>> },
}

impl CallerKey {
    fn of(caller: Option<&Caller>) -> CallerKey {
        match caller {
            None | Some(Caller::Anonymous) => CallerKey::Anonymous,
            Some(Caller::Authenticated(Principal::User { user_id, token_id, expires_at, .. })) => {
                CallerKey::User { user_id: *user_id, token_id: *token_id, expires_at: *expires_at }
            }
            Some(Caller::Authenticated(Principal::Service { team_id, token_id, expires_at, .. })) => {
                CallerKey::Service { team_id: *team_id, token_id: *token_id, expires_at: *expires_at }
            }
        }
    }
}

/// One execution and the subscribers it answers. Dropped with its last subscriber, which stops
/// the execution.
struct Execution {
    /// Never read: new subscribers' receivers are made from it.
    template: Mutex<broadcast::Receiver<Bytes>>,
    audience: Arc<Audience>,
    detach: Detach,
    /// Set once the first subscriber is in.
    driver: OnceLock<runtime::Task>,
}

impl Execution {
    fn subscriber(self: &Arc<Self>) -> BoxStream<'static, Bytes> {
        let receiver = lock(&self.template).resubscribe();
        let member = Member::join(self.clone());
        stream::unfold((receiver, member), |(mut receiver, member)| async move {
            loop {
                match receiver.recv().await {
                    Ok(answer) => return Some((answer, (receiver, member))),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a slow subscriber missed events")
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}

impl Drop for Execution {
    fn drop(&mut self) {
        self.detach.run();
    }
}

/// Polls the execution, hands each answer to its subscribers, and ends them when it ends.
async fn drive(mut answers: BoxStream<'static, Response>, sender: broadcast::Sender<Bytes>, detach: Detach) {
    let pump = async {
        while let Some(answer) = answers.next().await {
            let answer = errors::with_codes(answer);
            if !answer.errors.is_empty() {
                detach.run();
            }
            // No receiver means the last subscriber is leaving; this task is about to stop.
            let _ = sender.send(encode(&answer));
        }
    };
    if let Err(payload) = AssertUnwindSafe(pump).catch_unwind().await {
        tracing::error!(panic = %runtime::panic_text(payload), "a GraphQL subscription panicked; it was ended with INTERNAL");
        detach.run();
        let _ = sender.send(encode(&errors::internal_response()));
    }
    detach.run();
}

/// `answer` as the JSON a client receives.
pub fn encode(answer: &Response) -> Bytes {
    serde_json::to_vec(answer).map(Bytes::from).unwrap_or_else(|err| {
        tracing::error!(error = %err, "a GraphQL answer could not be encoded; it was answered INTERNAL");
        // Plain strings and a code: this one always encodes.
        serde_json::to_vec(&errors::internal_response()).map(Bytes::from).unwrap_or_default()
    })
}

/// Takes an execution out of the registry, so that no new subscriber joins it.
#[derive(Clone)]
struct Detach {
    registry: Weak<Registry>,
    key: Option<Arc<Key>>,
    id: u64,
}

impl Detach {
    fn run(&self) {
        let (Some(registry), Some(key)) = (self.registry.upgrade(), self.key.as_ref()) else {
            return;
        };
        let mut registry = lock(&registry);
        if registry.get(key).is_some_and(|entry| entry.id == self.id) {
            registry.remove(key);
        }
    }
}

/// One subscriber of an execution, counted among the bus's subscribers while the execution
/// hears the bus.
struct Member {
    execution: Arc<Execution>,
}

impl Member {
    fn join(execution: Arc<Execution>) -> Member {
        execution.audience.update(|members| members.count += 1);
        Member { execution }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.execution.audience.update(|members| members.count -= 1);
    }
}

/// An execution's subscribers, and whether it hears the bus yet.
struct Audience {
    subscribers: Subscribers,
    members: Mutex<Members>,
}

#[derive(Default)]
struct Members {
    listening: bool,
    count: usize,
}

impl Audience {
    /// Applies `change` and moves the bus's count by what it changed among those heard.
    fn update(&self, change: impl FnOnce(&mut Members)) {
        let mut members = lock(&self.members);
        let heard = |members: &Members| if members.listening { members.count } else { 0 };
        let before = heard(&members);
        change(&mut members);
        let after = heard(&members);
        if after > before {
            self.subscribers.add(after - before);
        } else {
            self.subscribers.remove(before - after);
        }
    }
}

/// Lets a subscription's resolver say that it now hears the bus (see `team_events`).
pub struct Listening(Arc<Audience>);

impl Listening {
    pub fn started(&self) {
        self.0.update(|members| members.listening = true);
    }
}

/// The registry's and the audiences' locks guard plain counts and maps: a panic elsewhere
/// cannot leave them half-changed, so a poisoned lock is taken as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::Email;

    fn session(caller: Caller) -> Data {
        let mut data = Data::default();
        data.insert(caller);
        data
    }

    fn user(user_id: UserId, token_id: TokenId) -> Caller {
        Caller::Authenticated(Principal::User {
            user_id,
            email: Email::parse("ana@acme.test").unwrap(),
            token_id: Some(token_id),
            expires_at: None,
        })
    }

    #[test]
    fn only_the_same_caller_document_and_variables_share() {
        let request = || {
            Request::new("subscription($t: ID!) { connectionEvents(teamId: $t) { kind } }")
                .variables(async_graphql::Variables::from_json(serde_json::json!({ "t": "a" })))
        };
        let (ana, token) = (UserId::new(), TokenId::new());
        let key = |request: Request, caller: Caller| Key::of(&request, &session(caller)).unwrap();
        assert!(key(request(), user(ana, token)) == key(request(), user(ana, token)));
        assert!(key(request(), user(ana, token)) != key(request(), user(UserId::new(), token)));
        assert!(key(request(), user(ana, token)) != key(request(), user(ana, TokenId::new())));
        assert!(key(request(), user(ana, token)) != key(request(), Caller::Anonymous));
        let other_team =
            request().variables(async_graphql::Variables::from_json(serde_json::json!({ "t": "b" })));
        assert!(key(request(), user(ana, token)) != key(other_team, user(ana, token)));
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_misses_the_oldest_answers_and_goes_on() {
        let shared = SharedSubscriptions::new(Subscribers::default());
        let answers = (0..BACKLOG + 100).map(|n| Response::new(async_graphql::Value::from(n as i32)));
        let answers = stream::iter(answers).chain(stream::pending());
        let mut subscriber =
            shared.subscribe(Request::new("subscription { n }"), Arc::default(), |_, _| answers.boxed());
        // The execution runs ahead on its own runtime while nobody reads.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut received = Vec::new();
        while let Ok(Some(answer)) = tokio::time::timeout(Duration::from_millis(300), subscriber.next()).await
        {
            received.push(serde_json::from_slice::<serde_json::Value>(&answer).unwrap()["data"].clone());
        }
        let kept: Vec<_> = (100..BACKLOG + 100).map(|n| serde_json::json!(n)).collect();
        assert_eq!(received, kept);
    }
}
