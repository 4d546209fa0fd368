//! Bounds the provider calls one team has in flight on this instance (token endpoints and
//! checks), so a team whose provider is slow or hostile waits on its own permits and never
//! takes the capacity another team's requests need. Nothing here holds the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::TeamId;

pub struct ProviderGate {
    per_team: usize,
    /// A team's semaphore lives while some call holds or waits for one of its permits.
    teams: Mutex<HashMap<TeamId, Weak<Semaphore>>>,
}

/// The right to call a provider for a team; given back when dropped.
pub struct ProviderPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl ProviderGate {
    pub fn new(per_team: usize) -> Self {
        Self { per_team: per_team.max(1), teams: Mutex::new(HashMap::new()) }
    }

    /// Waits until `team` has fewer than its limit of provider calls in flight.
    pub async fn enter(&self, team: TeamId) -> ProviderPermit {
        let semaphore = self.semaphore(team);
        // The semaphore is never closed, so acquiring fails only if it were; then the call
        // goes ahead unbounded rather than failing.
        ProviderPermit { _permit: semaphore.acquire_owned().await.ok() }
    }

    fn semaphore(&self, team: TeamId) -> Arc<Semaphore> {
        // No code panics while holding the lock, so a poisoned map is still consistent.
        let mut teams = self.teams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(semaphore) = teams.get(&team).and_then(Weak::upgrade) {
            return semaphore;
        }
        teams.retain(|_, semaphore| semaphore.strong_count() > 0);
        let semaphore = Arc::new(Semaphore::new(self.per_team));
        teams.insert(team, Arc::downgrade(&semaphore));
        semaphore
    }

    /// How many teams have calls in flight or waiting (for tests).
    pub fn busy_teams(&self) -> usize {
        let teams = self.teams.lock().unwrap_or_else(PoisonError::into_inner);
        teams.values().filter(|semaphore| semaphore.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::timeout;

    use super::*;

    #[tokio::test]
    async fn a_busy_team_waits_while_another_goes_ahead() {
        let gate = ProviderGate::new(2);
        let (busy, other) = (TeamId::new(), TeamId::new());
        let _first = gate.enter(busy).await;
        let _second = gate.enter(busy).await;
        assert!(timeout(Duration::from_millis(50), gate.enter(busy)).await.is_err(), "the third waits");
        let _other =
            timeout(Duration::from_millis(50), gate.enter(other)).await.expect("another team enters");
        drop(_first);
        timeout(Duration::from_millis(50), gate.enter(busy)).await.expect("a freed permit is taken");
    }

    #[tokio::test]
    async fn idle_teams_leave_nothing_behind() {
        let gate = ProviderGate::new(1);
        for _ in 0..100 {
            drop(gate.enter(TeamId::new()).await);
        }
        assert_eq!(gate.busy_teams(), 0);
        let _held = gate.enter(TeamId::new()).await;
        assert_eq!(gate.busy_teams(), 1);
        assert!(gate.teams.lock().unwrap().len() <= 2, "dead entries are pruned");
    }
}
