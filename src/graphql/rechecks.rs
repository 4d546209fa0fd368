//! Access re-checks of open subscriptions, shared. When a token is revoked, or a burst of events
//! makes subscribers fall behind (`Lagged`), every subscription of that caller and team asks at
//! once whether it may still see the team: 10,000 subscriptions would ask the database 10,000
//! times for one answer. Here they share one check per caller and team.
//!
//! An answer is shared only with subscriptions whose reason to ask came before the check began,
//! so none is answered from a check that could have missed the change it reacts to: the event
//! bus counts access changes (`EventBus::access_changes`, bumped before the event is sent and
//! after its change was committed), and a check is reused only while that count is what it was
//! when the check began. A check is also reused only for a moment, so a change that sends no
//! event is not hidden for long either.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use sea_orm::DatabaseConnection;
use tokio::time::Instant;

use crate::access;
use crate::domain::{Principal, TeamId, TokenId, UserId};
use crate::events::EventBus;

/// How long one check answers for, at most.
const MOMENT: Duration = Duration::from_secs(1);

/// What a re-check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    Allowed,
    Refused,
    /// The database could not say; a dashboard is not cut off for that (the next change checks
    /// again).
    Unknown,
}

/// The subscriptions' shared re-checks, one per service.
pub struct Rechecks {
    events: EventBus,
    db: DatabaseConnection,
    checks: SharedChecks<AccessKey>,
}

/// Whose access a check answers for: everything `access::still_allowed` looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AccessKey {
    user: Option<UserId>,
    token: Option<TokenId>,
    expires_at: Option<DateTime<Utc>>,
    team: TeamId,
}

impl Rechecks {
    pub fn new(events: EventBus, db: DatabaseConnection) -> Self {
        Rechecks { events, db, checks: SharedChecks::default() }
    }

    /// Whether `principal` may still see `team`, asked after something that may have changed it
    /// was noticed.
    pub async fn still_allowed(&self, principal: &Principal, team: TeamId) -> Recheck {
        let key = AccessKey {
            user: principal.user_id(),
            token: principal.token_id(),
            expires_at: principal.expires_at(),
            team,
        };
        let (db, principal) = (self.db.clone(), principal.clone());
        let check = async move {
            match access::still_allowed(&db, &principal, team).await {
                Ok(true) => Recheck::Allowed,
                Ok(false) => Recheck::Refused,
                Err(err) => {
                    tracing::warn!(error = %err, team_id = %team, "could not re-check a subscriber's access");
                    Recheck::Unknown
                }
            }
        };
        self.checks.run(key, self.events.access_changes(), check.boxed()).await
    }
}

/// Checks in flight or just done, one per key, each shared by whoever asks while it may answer
/// for them.
struct SharedChecks<K> {
    checks: Mutex<HashMap<K, Check>>,
}

impl<K> Default for SharedChecks<K> {
    fn default() -> Self {
        SharedChecks { checks: Mutex::new(HashMap::new()) }
    }
}

struct Check {
    /// The count of access changes when the check began.
    changes: u64,
    began: Instant,
    outcome: Shared<BoxFuture<'static, Recheck>>,
}

impl Check {
    fn answers_for(&self, changes: u64) -> bool {
        self.changes == changes && self.began.elapsed() < MOMENT
    }
}

impl<K: std::hash::Hash + Eq> SharedChecks<K> {
    /// The outcome of a check for `key` that began once the count of access changes was
    /// `changes` (read by the caller after it noticed its reason to ask): a check already under
    /// way or just done for that count, or `check`, run now and offered to the next callers.
    async fn run(&self, key: K, changes: u64, check: BoxFuture<'static, Recheck>) -> Recheck {
        let outcome = {
            let mut checks = self.checks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match checks.get(&key) {
                Some(shared) if shared.answers_for(changes) => shared.outcome.clone(),
                _ => {
                    // Old checks answer for nobody any more; the map keeps only current callers.
                    checks.retain(|_, check| check.began.elapsed() < MOMENT);
                    let outcome = check.shared();
                    checks.insert(key, Check { changes, began: Instant::now(), outcome: outcome.clone() });
                    outcome
                }
            }
        };
        outcome.await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn counted(runs: &Arc<AtomicUsize>, outcome: Recheck) -> BoxFuture<'static, Recheck> {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            outcome
        }
        .boxed()
    }

    #[tokio::test]
    async fn callers_asking_together_share_one_check() {
        let (checks, runs) = (Arc::new(SharedChecks::default()), Arc::new(AtomicUsize::new(0)));
        let asking: Vec<_> = (0..100)
            .map(|_| {
                let (checks, check) = (checks.clone(), counted(&runs, Recheck::Refused));
                tokio::spawn(async move { checks.run("token", 7, check).await })
            })
            .collect();
        for answer in futures_util::future::join_all(asking).await {
            assert_eq!(answer.unwrap(), Recheck::Refused);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_check_from_before_an_access_change_answers_nobody_after_it() {
        let (checks, runs) = (SharedChecks::default(), Arc::new(AtomicUsize::new(0)));
        assert_eq!(checks.run("token", 7, counted(&runs, Recheck::Allowed)).await, Recheck::Allowed);
        assert_eq!(checks.run("token", 8, counted(&runs, Recheck::Refused)).await, Recheck::Refused);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn other_callers_get_checks_of_their_own() {
        let (checks, runs) = (SharedChecks::default(), Arc::new(AtomicUsize::new(0)));
        assert_eq!(checks.run("revoked", 7, counted(&runs, Recheck::Refused)).await, Recheck::Refused);
        assert_eq!(checks.run("kept", 7, counted(&runs, Recheck::Allowed)).await, Recheck::Allowed);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_answers_only_for_a_moment() {
        let (checks, runs) = (SharedChecks::default(), Arc::new(AtomicUsize::new(0)));
        checks.run("token", 7, counted(&runs, Recheck::Allowed)).await;
        checks.run("token", 7, counted(&runs, Recheck::Allowed)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        tokio::time::advance(MOMENT).await;
        checks.run("token", 7, counted(&runs, Recheck::Allowed)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
