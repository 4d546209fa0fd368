//! How many calls to providers one caller may cause: a few per request (aliases and batches
//! share them) and a steady rate per token over time. `verifyConnection`,
//! `reauthorizeConnection`, `createConnection` and `editConnection` each reach a provider or a
//! host the caller chose, so without this one small request could make thousands of calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::error::AppError;

#[derive(Debug, Clone, Copy)]
pub struct ProviderCallLimits {
    /// Provider-reaching mutation fields in one HTTP request (all operations of a batch).
    pub per_request: usize,
    /// Sustained calls per minute per token; up to this many at once after a quiet minute.
    pub per_minute: u32,
}

/// The calls left to one request; every operation of a batch holds the same one.
#[derive(Debug, Clone, Default)]
pub struct RequestCalls(Arc<AtomicUsize>);

impl RequestCalls {
    fn take(&self, limit: usize) -> bool {
        self.0.fetch_add(1, Ordering::Relaxed) < limit
    }
}

/// Token buckets per caller, shared by every request of this instance.
pub struct CallerBuckets {
    limits: ProviderCallLimits,
    buckets: std::sync::Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Past this many callers, full buckets are dropped before a new one is added.
const MAX_TRACKED_CALLERS: usize = 10_000;

impl CallerBuckets {
    pub fn new(limits: ProviderCallLimits) -> Self {
        CallerBuckets { limits, buckets: std::sync::Mutex::new(HashMap::new()) }
    }

    /// Admits one provider call for `caller` within `request`, or says how long to wait.
    pub fn admit(&self, caller: &str, request: &RequestCalls) -> Result<(), AppError> {
        if !request.take(self.limits.per_request) {
            return Err(AppError::RateLimited {
                message: format!(
                    "one request may cause at most {} provider calls (verify, reauthorize, create, edit); \
                     send the rest in later requests",
                    self.limits.per_request
                ),
                retry_after: Duration::ZERO,
            });
        }
        self.take_from_bucket(caller, Instant::now())
    }

    fn take_from_bucket(&self, caller: &str, now: Instant) -> Result<(), AppError> {
        let capacity = f64::from(self.limits.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_TRACKED_CALLERS && !buckets.contains_key(caller) {
            buckets.retain(|_, bucket| refilled(bucket, now, per_second, capacity) < capacity);
        }
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket { tokens: capacity, updated: now });
        bucket.tokens = refilled(bucket, now, per_second, capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64(((1.0 - bucket.tokens) / per_second).max(0.0));
        Err(AppError::RateLimited {
            message: format!(
                "this token may cause {} provider calls a minute; try again in {} s",
                self.limits.per_minute,
                wait.as_secs().max(1)
            ),
            retry_after: wait,
        })
    }
}

fn refilled(bucket: &Bucket, now: Instant, per_second: f64, capacity: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * per_second).min(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(per_request: usize, per_minute: u32) -> CallerBuckets {
        CallerBuckets::new(ProviderCallLimits { per_request, per_minute })
    }

    #[test]
    fn a_request_gets_its_share_and_no_more() {
        let limiter = buckets(2, 100);
        let request = RequestCalls::default();
        assert!(limiter.admit("t", &request).is_ok());
        assert!(limiter.admit("t", &request).is_ok());
        assert!(matches!(limiter.admit("t", &request), Err(AppError::RateLimited { .. })));
        assert!(limiter.admit("t", &RequestCalls::default()).is_ok(), "a new request starts afresh");
    }

    #[test]
    fn a_token_refills_at_its_rate_and_says_when() {
        let limiter = buckets(100, 60);
        let start = Instant::now();
        for _ in 0..60 {
            limiter.take_from_bucket("t", start).unwrap();
        }
        match limiter.take_from_bucket("t", start) {
            Err(AppError::RateLimited { retry_after, .. }) => {
                assert!(retry_after <= Duration::from_secs(1) && retry_after > Duration::ZERO)
            }
            other => panic!("expected RATE_LIMITED, got {other:?}"),
        }
        assert!(limiter.take_from_bucket("other", start).is_ok(), "callers have their own buckets");
        assert!(limiter.take_from_bucket("t", start + Duration::from_secs(1)).is_ok());
    }
}
