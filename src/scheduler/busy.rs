//! A background write that meets a busy database waits and tries again instead of abandoning
//! the sweep. Under a burst (a thousand flow reads at once, another instance writing the same
//! SQLite file) the write lock or a pooled connection can stay taken past the database's own
//! timeouts; the sweep's claims and results are written under its claim, so a write that failed
//! wrote nothing and the same write can simply run again.

use std::future::Future;
use std::time::Duration;

/// Tries in all, the first included: about 7.5 s of pauses on top of the database's own waits.
const ATTEMPTS: u32 = 5;
/// The pause before the first retry; it doubles after each.
const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// Runs `write` until it succeeds, fails for another reason than `busy`, or has been tried
/// `ATTEMPTS` times. `what` names the write in the log.
pub(super) async fn retry_when_busy<T, E, F, W>(
    what: &str,
    busy: fn(&E) -> bool,
    mut write: W,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: Future<Output = Result<T, E>>,
    W: FnMut() -> F,
{
    let (mut attempt, mut pause) = (1, FIRST_PAUSE);
    loop {
        match write().await {
            Err(err) if busy(&err) && attempt < ATTEMPTS => {
                tracing::warn!(
                    error = %err,
                    attempt,
                    retry_in_ms = pause.as_millis() as u64,
                    "the database was too busy to {what}; trying again"
                );
                tokio::time::sleep(pause).await;
                attempt += 1;
                pause *= 2;
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn busy(err: &&str) -> bool {
        *err == "busy"
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_write_is_tried_again_until_it_succeeds() {
        let tries = AtomicU32::new(0);
        let done = retry_when_busy("write", busy, || async {
            if tries.fetch_add(1, Ordering::SeqCst) < 2 { Err("busy") } else { Ok(7) }
        })
        .await;
        assert_eq!(done, Ok(7));
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn another_failure_or_the_last_attempt_ends_it() {
        let tries = AtomicU32::new(0);
        let failed: Result<(), &str> = retry_when_busy("write", busy, || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err("broken")
        })
        .await;
        assert_eq!((failed, tries.load(Ordering::SeqCst)), (Err("broken"), 1));
        let tries = AtomicU32::new(0);
        let failed: Result<(), &str> = retry_when_busy("write", busy, || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err("busy")
        })
        .await;
        assert_eq!((failed, tries.load(Ordering::SeqCst)), (Err("busy"), ATTEMPTS));
    }
}
