//! Proxied calls in flight on this instance, bounded. Each holds two descriptors, the runner's
//! connection and the provider's, for as long as its answer streams; the open-file budget
//! (`http::open_files`) keeps a share of descriptors for them, and this keeps calls to it. A
//! call past it waits up to `PLUGBOARD_PROXY_QUEUE_MS` for one to finish, then is answered
//! `503 UNAVAILABLE` with `Retry-After`, instead of taking descriptors the database needs.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ProxyError;

/// How long a runner refused for want of room is asked to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct CallSlots {
    slots: Arc<Semaphore>,
    max: usize,
}

/// One call's place; given back when dropped, once its answer has streamed.
pub struct CallSlot {
    _permit: OwnedSemaphorePermit,
}

impl CallSlots {
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        CallSlots { slots: Arc::new(Semaphore::new(max)), max }
    }

    /// A place for one more call, waiting at most `wait` for one to come free.
    pub async fn enter(&self, wait: Duration) -> Result<CallSlot, ProxyError> {
        let slot = tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await;
        match slot {
            Ok(Ok(permit)) => Ok(CallSlot { _permit: permit }),
            // Timed out, or (never, as the semaphore is not closed) closed.
            Ok(Err(_)) | Err(_) => Err(ProxyError::busy(
                format!(
                    "this instance has {} proxied calls in flight, its most (PLUGBOARD_PROXY_MAX_IN_FLIGHT, or \
                     what the open-file limit allows); retry shortly",
                    self.max
                ),
                RETRY_AFTER,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::CallSlots;

    #[tokio::test]
    async fn a_call_past_the_limit_waits_its_while_then_is_refused_and_a_finished_call_makes_room() {
        let slots = CallSlots::new(1);
        let first = slots.enter(Duration::ZERO).await.expect("room for one");
        let refused = slots.enter(Duration::from_millis(20)).await.err().expect("no room for two");
        assert_eq!((refused.code, refused.status), ("UNAVAILABLE", 503));
        assert!(refused.message.contains("PLUGBOARD_PROXY_MAX_IN_FLIGHT"), "{}", refused.message);
        assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
        let waiting = tokio::spawn(async move { slots.enter(Duration::from_secs(5)).await.is_ok() });
        drop(first);
        assert!(waiting.await.unwrap(), "a call that waits gets the place a finished one gives back");
    }
}
