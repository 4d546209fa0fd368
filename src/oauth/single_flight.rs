//! In-process single flight: concurrent callers with the same key share one execution and its
//! result, so fifty uses of an expired token make one refresh request, and a rotating refresh
//! token is not spent twice by this process. Across instances the refresh lease on the row
//! (`store::token_leases`) does the same.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::OnceCell;

/// Flights in progress by key. An entry lives while a flight runs: the first caller to see the
/// result removes it, so the next call runs again, and the map holds only running flights.
pub struct SingleFlight<K, T> {
    flights: Mutex<HashMap<K, Weak<OnceCell<T>>>>,
}

impl<K, T> Default for SingleFlight<K, T> {
    fn default() -> Self {
        Self { flights: Mutex::new(HashMap::new()) }
    }
}

impl<K: Eq + Hash + Clone, T: Clone> SingleFlight<K, T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` unless a flight for `key` is running, and returns its result either way. If the
    /// caller running `f` is cancelled or panics, a waiting caller runs its own `f` instead
    /// (tokio's `OnceCell` hands the turn on), so a key is never wedged.
    pub async fn run<F, Fut>(&self, key: K, f: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let cell = {
            let mut flights = self.lock();
            match flights.get(&key).and_then(Weak::upgrade) {
                Some(cell) => cell,
                None => {
                    let cell = Arc::new(OnceCell::new());
                    flights.insert(key.clone(), Arc::downgrade(&cell));
                    cell
                }
            }
        };
        let ticket = Ticket { owner: self, key, cell: Some(cell) };
        ticket.wait(f).await
    }
}

impl<K, T> SingleFlight<K, T> {
    /// How many flights are running (for metrics and tests).
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Weak<OnceCell<T>>>> {
        // The map is consistent after any panic (no code panics while holding the lock).
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A caller's place in a flight. Dropped when the caller returns, is cancelled or unwinds: it
/// removes the flight once it has a result, or when no caller is left to give it one.
struct Ticket<'a, K: Eq + Hash, T> {
    owner: &'a SingleFlight<K, T>,
    key: K,
    cell: Option<Arc<OnceCell<T>>>,
}

impl<K: Eq + Hash, T: Clone> Ticket<'_, K, T> {
    async fn wait<F, Fut>(&self, f: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        match &self.cell {
            Some(cell) => cell.get_or_init(f).await.clone(),
            // Only `drop` takes the cell; kept total rather than asserted.
            None => f().await,
        }
    }
}

impl<K: Eq + Hash, T> Drop for Ticket<'_, K, T> {
    fn drop(&mut self) {
        let Some(cell) = self.cell.take() else { return };
        let mut flights = self.owner.lock();
        let ours = flights.get(&self.key).is_some_and(|entry| Weak::as_ptr(entry) == Arc::as_ptr(&cell));
        // Counted under the lock, where new callers join: a count of one means nobody else is in.
        if ours && (cell.initialized() || Arc::strong_count(&cell) == 1) {
            flights.remove(&self.key);
        }
        // Released before the lock, so that the next ticket's count no longer includes it.
        drop(cell);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use tokio::sync::{Barrier, Notify};
    use tokio::time::{sleep, timeout};

    use super::*;

    const PATIENCE: Duration = Duration::from_secs(5);

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_concurrent_callers_share_one_run() {
        let flights = Arc::new(SingleFlight::<&str, u32>::new());
        let runs = Arc::new(AtomicU32::new(0));
        let gate = Arc::new(Notify::new());
        let all_started = Arc::new(Barrier::new(51));
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let (flights, runs, gate) = (flights.clone(), runs.clone(), gate.clone());
                let all_started = all_started.clone();
                tokio::spawn(async move {
                    all_started.wait().await;
                    flights
                        .run("connection-1", || async move {
                            gate.notified().await;
                            runs.fetch_add(1, Ordering::SeqCst) + 100
                        })
                        .await
                })
            })
            .collect();
        // Let every caller join the flight before the one running it may finish.
        all_started.wait().await;
        sleep(Duration::from_millis(100)).await;
        gate.notify_one();
        for caller in callers {
            assert_eq!(timeout(PATIENCE, caller).await.unwrap().unwrap(), 100);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn sequential_calls_run_again() {
        let flights = SingleFlight::<u8, u32>::new();
        let runs = AtomicU32::new(0);
        let run = || async { runs.fetch_add(1, Ordering::SeqCst) };
        assert_eq!(flights.run(1, run).await, 0);
        assert_eq!(flights.in_flight(), 0);
        assert_eq!(flights.run(1, run).await, 1);
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn different_keys_run_in_parallel() {
        let flights = Arc::new(SingleFlight::<&str, &str>::new());
        // Each run waits for the other: they finish only if both run at once.
        let both = Arc::new(Barrier::new(2));
        let run = |key: &'static str| {
            let (flights, both) = (flights.clone(), both.clone());
            tokio::spawn(async move {
                flights
                    .run(key, || async move {
                        both.wait().await;
                        key
                    })
                    .await
            })
        };
        let (a, b) = (run("a"), run("b"));
        assert_eq!(timeout(PATIENCE, a).await.unwrap().unwrap(), "a");
        assert_eq!(timeout(PATIENCE, b).await.unwrap().unwrap(), "b");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_leader_hands_over_to_a_waiting_caller() {
        let flights = Arc::new(SingleFlight::<&str, u32>::new());
        let started = Arc::new(Notify::new());
        let leader = {
            let (flights, started) = (flights.clone(), started.clone());
            tokio::spawn(async move {
                flights
                    .run("k", || async move {
                        started.notify_one();
                        std::future::pending::<u32>().await
                    })
                    .await
            })
        };
        started.notified().await;
        let follower = {
            let flights = flights.clone();
            tokio::spawn(async move { flights.run("k", || async { 7 }).await })
        };
        sleep(Duration::from_millis(50)).await;
        assert!(!follower.is_finished(), "the follower waits for the leader");
        leader.abort();
        assert_eq!(timeout(PATIENCE, follower).await.unwrap().unwrap(), 7);
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_lone_caller_leaves_nothing_behind() {
        let flights = SingleFlight::<&str, u32>::new();
        let abandoned =
            timeout(Duration::from_millis(20), flights.run("k", std::future::pending::<u32>)).await;
        assert!(abandoned.is_err());
        assert_eq!(flights.in_flight(), 0);
        assert_eq!(flights.run("k", || async { 3 }).await, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_leader_does_not_wedge_the_key() {
        let flights = Arc::new(SingleFlight::<&str, u32>::new());
        let started = Arc::new(Notify::new());
        let leader = {
            let (flights, started) = (flights.clone(), started.clone());
            tokio::spawn(async move {
                flights
                    .run("k", || async move {
                        started.notify_one();
                        sleep(Duration::from_millis(50)).await;
                        panic!("the provider client blew up");
                    })
                    .await
            })
        };
        started.notified().await;
        let follower = {
            let flights = flights.clone();
            tokio::spawn(async move { flights.run("k", || async { 8 }).await })
        };
        assert!(timeout(PATIENCE, leader).await.unwrap().is_err(), "the leader panicked");
        assert_eq!(timeout(PATIENCE, follower).await.unwrap().unwrap(), 8);
        assert_eq!(flights.in_flight(), 0);
        assert_eq!(flights.run("k", || async { 9 }).await, 9);
    }
}
