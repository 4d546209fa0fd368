//! The providers' published rate limits, kept per connection and per app in this instance, so
//! the proxy queues a call briefly or refuses it (`429` with `Retry-After`) instead of pushing
//! the provider into throttling. A generic cell rate algorithm: each limit remembers when its
//! next request is due in theory, which allows bursts up to the limit and no more.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::catalog::{RateLimit, RateLimits};
use crate::domain::ConnectionId;

/// Above this many remembered keys, those with nothing pending are forgotten.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    App(String),
    Connection(ConnectionId),
}

#[derive(Default)]
pub struct RateLimiter {
    due: Mutex<HashMap<Key, Instant>>,
}

impl RateLimiter {
    /// Waits for a slot under `limits`, at most `queue`; answers how long to wait before trying
    /// again when the slot is further away.
    pub async fn acquire(
        &self,
        limits: RateLimits,
        app: &str,
        connection: ConnectionId,
        queue: Duration,
    ) -> Result<(), Duration> {
        let wait = self.reserve(limits, app, connection, queue, Instant::now())?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// Reserves a slot at `now` or within `queue` of it, answering the wait; or how long until
    /// one would be free.
    fn reserve(
        &self,
        limits: RateLimits,
        app: &str,
        connection: ConnectionId,
        queue: Duration,
        now: Instant,
    ) -> Result<Duration, Duration> {
        let keyed: Vec<(Key, RateLimit)> = [
            limits.per_app.map(|limit| (Key::App(app.to_owned()), limit)),
            limits.per_connection.map(|limit| (Key::Connection(connection), limit)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if keyed.is_empty() {
            return Ok(Duration::ZERO);
        }
        let mut due = self.due.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut wait = Duration::ZERO;
        for (key, limit) in &keyed {
            let (interval, tolerance) = cell(*limit);
            let theoretical = due.get(key).copied().filter(|t| *t > now).unwrap_or(now);
            wait = wait.max((theoretical + interval).saturating_duration_since(now + tolerance + interval));
        }
        if wait > queue {
            return Err(wait);
        }
        for (key, limit) in keyed {
            let (interval, _) = cell(limit);
            let theoretical = due.get(&key).copied().filter(|t| *t > now).unwrap_or(now);
            due.insert(key, theoretical + interval);
        }
        if due.len() > PRUNE_ABOVE {
            due.retain(|_, at| *at > now);
        }
        Ok(wait)
    }
}

/// The gap between two requests at the steady rate, and how far ahead a burst may run.
fn cell(limit: RateLimit) -> (Duration, Duration) {
    let interval = limit.period / limit.requests.max(1);
    (interval, limit.period.saturating_sub(interval))
}

/// Whole seconds for `Retry-After`, rounded up, at least one.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(requests: u32, secs: u64) -> RateLimits {
        RateLimits {
            per_connection: Some(RateLimit { requests, period: Duration::from_secs(secs) }),
            per_app: None,
        }
    }

    #[test]
    fn a_burst_up_to_the_limit_passes_then_calls_wait_or_are_refused() {
        let limiter = RateLimiter::default();
        let connection = ConnectionId::new();
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                limiter.reserve(limits(3, 3), "a", connection, Duration::ZERO, now),
                Ok(Duration::ZERO)
            );
        }
        let refused = limiter.reserve(limits(3, 3), "a", connection, Duration::ZERO, now).unwrap_err();
        assert_eq!(refused, Duration::from_secs(1));
        // With room to queue, the fourth waits for its slot instead.
        let queued = limiter.reserve(limits(3, 3), "a", connection, Duration::from_secs(2), now);
        assert_eq!(queued, Ok(Duration::from_secs(1)));
        // Another connection has its own budget.
        let other = ConnectionId::new();
        assert_eq!(limiter.reserve(limits(3, 3), "a", other, Duration::ZERO, now), Ok(Duration::ZERO));
    }

    #[test]
    fn an_app_limit_spans_its_connections() {
        let limiter = RateLimiter::default();
        let app = RateLimits {
            per_connection: None,
            per_app: Some(RateLimit { requests: 2, period: Duration::from_secs(10) }),
        };
        let now = Instant::now();
        assert!(limiter.reserve(app, "a", ConnectionId::new(), Duration::ZERO, now).is_ok());
        assert!(limiter.reserve(app, "a", ConnectionId::new(), Duration::ZERO, now).is_ok());
        assert!(limiter.reserve(app, "a", ConnectionId::new(), Duration::ZERO, now).is_err());
        assert!(limiter.reserve(app, "b", ConnectionId::new(), Duration::ZERO, now).is_ok());
        assert_eq!(retry_after_secs(Duration::from_millis(4_001)), 5);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
