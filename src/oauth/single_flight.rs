//! In-process single flight: concurrent callers with the same key share one execution and its
//! result, so fifty uses of an expired token make one refresh request, and a rotating refresh
//! token is not spent twice by this process. Across instances a database lock is still needed.

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
        let mut flights = self.owner.flights.lock().unwrap_or_else(PoisonError::into_inner);
        let ours = flights.get(&self.key).is_some_and(|entry| Weak::as_ptr(entry) == Arc::as_ptr(&cell));
        // Counted under the lock, where new callers join: a count of one means nobody else is in.
        if ours && (cell.initialized() || Arc::strong_count(&cell) == 1) {
            flights.remove(&self.key);
        }
        drop(cell);
    }
}
