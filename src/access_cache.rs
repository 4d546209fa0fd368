//! Verified tokens and team roles, kept in memory for a few seconds so that a busy caller's
//! requests make no database round trip to say who they are and what they may touch. What the
//! store answered lately, held by `AppState`; `access` reads through it and keeps it current.
//!
//! What may never happen: a revoked token, a removed member or a lowered role keeps working.
//! Every change of access stages an `Event::Access`, which reaches every instance (in process
//! on SQLite, through LISTEN/NOTIFY on PostgreSQL) and evicts what it concerns; the instance
//! that made the change also evicts at once, before it answers. A notification can still be
//! missed (the listener reconnecting, a lagging receiver): then the whole cache is dropped,
//! and whatever went unnoticed meanwhile lives at most `TTL`. A token's own `expires_at` is
//! checked on every use, cached or not. Only what grants access is cached: a lookup that
//! refused is asked again next time, so a new member or token works at once.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::domain::{Principal, TeamId, TeamRole, TokenId, UserId};

/// How long an entry is trusted without a word from the event bus: the bound on staleness
/// when an invalidation was lost.
const TTL: Duration = Duration::from_secs(10);
/// Tokens kept at once; past it, expired entries go, and if none had, all of them (a rare
/// refill beats an unbounded map under a flood of distinct tokens).
const MAX_TOKENS: usize = 10_000;
const MAX_ROLES: usize = 50_000;

/// A token that was active when read.
#[derive(Clone)]
pub struct CachedToken {
    pub principal: Principal,
    /// When `last_used_at` was last recorded (or queued), so a use is written at most once a
    /// minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

struct Entry<V> {
    value: V,
    cached_at: Instant,
}

/// A map whose entries last `TTL` and whose size is bounded.
struct Bounded<K, V> {
    entries: HashMap<K, Entry<V>>,
    max: usize,
}

impl<K: Eq + Hash, V: Clone> Bounded<K, V> {
    fn new(max: usize) -> Self {
        Bounded { entries: HashMap::new(), max }
    }

    fn get<Q>(&mut self, key: &Q, now: Instant) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self.entries.get(key) {
            Some(entry) if now.duration_since(entry.cached_at) >= TTL => {
                self.entries.remove(key);
                None
            }
            Some(_) => self.entries.get_mut(key).map(|entry| &mut entry.value),
            None => None,
        }
    }

    fn insert(&mut self, key: K, value: V, now: Instant) {
        if self.entries.len() >= self.max {
            self.entries.retain(|_, entry| now.duration_since(entry.cached_at) < TTL);
            if self.entries.len() >= self.max {
                self.entries.clear();
            }
        }
        self.entries.insert(key, Entry { value, cached_at: now });
    }
}

/// The cache of one instance. Shared by every request; each lock is held for a map operation.
pub struct AccessCache {
    /// By the token's hash: the same key the database is asked with.
    tokens: Mutex<Bounded<String, CachedToken>>,
    roles: Mutex<Bounded<(UserId, TeamId), TeamRole>>,
    /// Moves on every eviction. A lookup notes it before reading the database and stores its
    /// answer only if it has not moved, so a read that raced a revocation is not kept.
    generation: AtomicU64,
    /// Uses of tokens not yet written to `last_used_at`.
    uses: Mutex<HashMap<TokenId, DateTime<Utc>>>,
}

impl Default for AccessCache {
    fn default() -> Self {
        AccessCache {
            tokens: Mutex::new(Bounded::new(MAX_TOKENS)),
            roles: Mutex::new(Bounded::new(MAX_ROLES)),
            generation: AtomicU64::new(0),
            uses: Mutex::new(HashMap::new()),
        }
    }
}

/// What a lookup saw before it read the database; hand it back to store the answer.
#[derive(Clone, Copy)]
pub struct Ticket(u64);

impl AccessCache {
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    /// The cached token with this hash, unless it expired (by its own `expires_at` or the TTL).
    /// A use is queued for `last_used_at` when the last one recorded is over a minute old.
    pub fn token(&self, hash: &str, now: DateTime<Utc>) -> Option<Principal> {
        let mut tokens = lock(&self.tokens);
        let cached = tokens.get(hash, Instant::now())?;
        if cached.principal.expires_at().is_some_and(|at| at <= now) {
            tokens.entries.remove(hash);
            return None;
        }
        let principal = cached.principal.clone();
        if use_is_news(cached.last_used_at, now) {
            cached.last_used_at = Some(now);
            drop(tokens);
            self.note_use(&principal, now);
        }
        Some(principal)
    }

    pub fn keep_token(&self, ticket: Ticket, hash: String, token: CachedToken) {
        let mut tokens = lock(&self.tokens);
        // Checked under the lock that evictions also take, so none slips in between.
        if self.generation.load(Ordering::Acquire) == ticket.0 {
            tokens.insert(hash, token, Instant::now());
        }
    }

    pub fn role(&self, user_id: UserId, team_id: TeamId) -> Option<TeamRole> {
        lock(&self.roles).get(&(user_id, team_id), Instant::now()).copied()
    }

    pub fn keep_role(&self, ticket: Ticket, user_id: UserId, team_id: TeamId, role: TeamRole) {
        let mut roles = lock(&self.roles);
        if self.generation.load(Ordering::Acquire) == ticket.0 {
            roles.insert((user_id, team_id), role, Instant::now());
        }
    }

    /// Evicts what a change of access concerns: the revoked `token`, the `user`'s role in
    /// `team` (in every team when none is named).
    pub fn forget(&self, token: Option<TokenId>, user: Option<UserId>, team: Option<TeamId>) {
        let mut tokens = lock(&self.tokens);
        let mut roles = lock(&self.roles);
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(token) = token {
            tokens.entries.retain(|_, e| e.value.principal.token_id() != Some(token));
        }
        if let Some(user) = user {
            roles.entries.retain(|(user_id, team_id), _| {
                *user_id != user || team.is_some_and(|team| team != *team_id)
            });
        }
    }

    /// Evicts everything: an invalidation may have been missed.
    pub fn clear(&self) {
        let mut tokens = lock(&self.tokens);
        let mut roles = lock(&self.roles);
        self.generation.fetch_add(1, Ordering::AcqRel);
        tokens.entries.clear();
        roles.entries.clear();
    }

    pub fn note_use(&self, principal: &Principal, now: DateTime<Utc>) {
        if let Some(id) = principal.token_id() {
            lock(&self.uses).insert(id, now);
        }
    }

    /// The uses queued since the last call, for `last_used_at`.
    pub fn take_uses(&self) -> Vec<(TokenId, DateTime<Utc>)> {
        std::mem::take(&mut *lock(&self.uses)).into_iter().collect()
    }

    /// Puts back uses that could not be written, unless newer ones came meanwhile.
    pub fn return_uses(&self, uses: Vec<(TokenId, DateTime<Utc>)>) {
        let mut pending = lock(&self.uses);
        for (id, at) in uses {
            pending.entry(id).or_insert(at);
        }
    }
}

/// Whether a use at `now` should be recorded, the last recorded being `last`: at most once a
/// minute, so busy runners do not turn reads into writes.
pub fn use_is_news(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|last| now - last > chrono::Duration::minutes(1))
}

/// The maps hold plain data that a panicking holder cannot leave half-changed.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Email;

    fn service(team: TeamId, expires_at: Option<DateTime<Utc>>) -> (TokenId, CachedToken) {
        let token_id = TokenId::new();
        let principal =
            Principal::Service { team_id: team, token_id, token_prefix: "pbs_x".into(), expires_at };
        (token_id, CachedToken { principal, last_used_at: Some(Utc::now()) })
    }

    #[test]
    fn a_revoked_token_is_evicted_and_a_racing_read_is_not_kept() {
        let cache = AccessCache::default();
        let (id, token) = service(TeamId::new(), None);
        let ticket = cache.ticket();
        cache.keep_token(ticket, "h".into(), token.clone());
        assert!(cache.token("h", Utc::now()).is_some());
        cache.forget(Some(id), None, None);
        assert!(cache.token("h", Utc::now()).is_none());
        // A read that started before the revocation answers too late to be kept.
        cache.keep_token(ticket, "h".into(), token);
        assert!(cache.token("h", Utc::now()).is_none());
    }

    #[test]
    fn a_cached_token_expires_when_it_says() {
        let cache = AccessCache::default();
        let (_, token) = service(TeamId::new(), Some(Utc::now() + chrono::Duration::seconds(5)));
        cache.keep_token(cache.ticket(), "h".into(), token);
        assert!(cache.token("h", Utc::now()).is_some());
        assert!(cache.token("h", Utc::now() + chrono::Duration::seconds(6)).is_none());
    }

    #[test]
    fn a_membership_change_evicts_only_that_members_role_in_that_team() {
        let cache = AccessCache::default();
        let (ana, bob) = (UserId::new(), UserId::new());
        let (acme, globex) = (TeamId::new(), TeamId::new());
        for (user, team) in [(ana, acme), (bob, acme), (bob, globex)] {
            cache.keep_role(cache.ticket(), user, team, TeamRole::Member);
        }
        cache.forget(None, Some(bob), Some(acme));
        assert_eq!(cache.role(ana, acme), Some(TeamRole::Member));
        assert_eq!(cache.role(bob, acme), None);
        assert_eq!(cache.role(bob, globex), Some(TeamRole::Member));
    }

    #[test]
    fn uses_are_queued_at_most_once_a_minute() {
        let cache = AccessCache::default();
        let user = Principal::User {
            user_id: UserId::new(),
            email: Email::parse("ana@acme.test").unwrap(),
            token_id: Some(TokenId::new()),
            expires_at: None,
        };
        let now = Utc::now();
        cache.keep_token(cache.ticket(), "h".into(), CachedToken { principal: user, last_used_at: None });
        cache.token("h", now);
        cache.token("h", now + chrono::Duration::seconds(30));
        assert_eq!(cache.take_uses().len(), 1);
        cache.token("h", now + chrono::Duration::seconds(50));
        assert!(cache.take_uses().is_empty());
        cache.token("h", now + chrono::Duration::seconds(90));
        assert_eq!(cache.take_uses().len(), 1);
    }

    #[test]
    fn the_maps_stay_bounded() {
        let mut map = Bounded::new(3);
        let now = Instant::now();
        for key in 0..10 {
            map.insert(key, key, now);
            assert!(map.entries.len() <= 3);
        }
    }
}
