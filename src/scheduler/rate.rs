//! A per-app pace for scheduled checks, so a sweep over thousands of one app's connections
//! does not hammer its API (and get the whole instance rate limited).

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

pub struct AppPace {
    gap: Duration,
    next_slot: Mutex<HashMap<String, Instant>>,
}

impl AppPace {
    pub fn per_second(rate: u32) -> Self {
        AppPace { gap: Duration::from_secs(1) / rate.max(1), next_slot: Mutex::new(HashMap::new()) }
    }

    /// Waits for this app's next free slot. A slot that is already due is taken at once: a
    /// timer set for now would still wait for the timer's next tick (a millisecond) and cost
    /// every check of a sweep a wake-up from the timer.
    pub async fn wait(&self, app: &str) {
        let (slot, now) = {
            let mut slots = self.next_slot.lock().await;
            let now = Instant::now();
            let slot = slots.get(app).copied().filter(|s| *s > now).unwrap_or(now);
            slots.insert(app.to_owned(), slot + self.gap);
            (slot, now)
        };
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_for_one_app_are_spaced_and_apps_are_independent() {
        let pace = AppPace::per_second(10);
        let start = Instant::now();
        for _ in 0..5 {
            pace.wait("slack").await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
        let other = Instant::now();
        pace.wait("github").await;
        assert_eq!(other.elapsed(), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_due_slot_is_taken_without_waiting_for_the_timer() {
        use futures_util::FutureExt;
        let pace = AppPace::per_second(1_000_000);
        for _ in 0..3 {
            // A check with no one ahead of it goes on in the same poll.
            assert!(pace.wait("openai").now_or_never().is_some(), "a due slot waited");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}
