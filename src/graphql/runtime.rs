//! Where GraphQL requests run: on runtimes of their own whose threads have large stacks, behind
//! a panic guard.
//!
//! The documents are bounded before parsing (see `limits`), so nothing should recurse deeply;
//! the large stack is the second wall for a case those limits miss. A stack overflow cannot be
//! caught, so the stack is made large enough instead (memory is only committed as it is
//! touched), and a panic becomes an `INTERNAL` answer for that one request while the service
//! goes on.
//!
//! A subscription's execution, once for all identical subscriptions (`shared`), runs on a
//! runtime of the same kind beside it; each socket only frames the answers.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};

/// Stack of each GraphQL thread; the default of 2 MiB is what a deep document exhausted.
const STACK_BYTES: usize = 64 * 1024 * 1024;

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
static SUBSCRIPTIONS: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The runtimes live as long as the process (they are shared by every app a test process
/// builds, and dropping a runtime from async code is not allowed).
fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| build("graphql"))
}

/// Where subscriptions' executions run. An event wakes every socket of an execution at once,
/// thousands in one go; on threads of their own, those wake-ups do not hold up the queries and
/// mutations queued behind them (a verification recording its result, say).
fn subscriptions() -> &'static tokio::runtime::Runtime {
    SUBSCRIPTIONS.get_or_init(|| build("subscriptions"))
}

fn build(name: &str) -> tokio::runtime::Runtime {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .thread_stack_size(STACK_BYTES)
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("the {name} runtime could not start: {err}"))
}

/// Starts the runtimes now, so a failure shows at start and not on the first request.
pub fn start() {
    runtime();
    subscriptions();
}

/// A request that panicked; its detail was logged.
#[derive(Debug)]
pub struct Panicked;

/// Runs `work` on the GraphQL runtime. Dropping the returned future (the client went away)
/// stops the work too.
pub async fn run<F>(work: F) -> Result<F::Output, Panicked>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut task = AbortOnDrop(runtime().spawn(work));
    match (&mut task.0).await {
        Ok(output) => Ok(output),
        Err(err) => {
            let detail = if err.is_panic() { panic_text(err.into_panic()) } else { err.to_string() };
            tracing::error!(panic = %detail, "a GraphQL request panicked; it was answered INTERNAL and the service goes on");
            Err(Panicked)
        }
    }
}

/// Drives `stream` on the GraphQL runtime and hands its items over as they come. A panic ends
/// it with `on_panic()`; dropping the returned stream (the client left) stops the work.
pub fn forward<T: Send + 'static>(
    stream: BoxStream<'static, T>,
    on_panic: fn() -> T,
) -> BoxStream<'static, T> {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    let task = runtime().spawn(async move {
        let pump = async {
            let mut stream = stream;
            while let Some(item) = stream.next().await {
                if sender.send(item).await.is_err() {
                    return;
                }
            }
        };
        if let Err(payload) = AssertUnwindSafe(pump).catch_unwind().await {
            tracing::error!(panic = %panic_text(payload), "a GraphQL subscription panicked; it was ended with INTERNAL");
            let _ = sender.send(on_panic()).await;
        }
    });
    futures_util::stream::unfold((receiver, AbortOnDrop(task)), |(mut receiver, guard)| async move {
        let item = receiver.recv().await?;
        Some((item, (receiver, guard)))
    })
    .boxed()
}

/// Runs a subscription's execution on the subscriptions' runtime until it ends or the
/// returned task is dropped.
pub fn spawn_subscription(work: impl Future<Output = ()> + Send + 'static) -> Task {
    Task { _abort: AbortOnDrop(subscriptions().spawn(work)) }
}

/// Work on the GraphQL runtime, stopped when this is dropped.
pub struct Task {
    _abort: AbortOnDrop<()>,
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload.downcast_ref::<&str>().map(|s| (*s).to_owned()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_answered_and_the_runtime_goes_on() {
        assert!(run(async { panic!("boom") }).await.is_err());
        assert_eq!(run(async { 7 }).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn deep_recursion_fits_the_stack() {
        fn depth(n: u32) -> u32 {
            let padding = [n as u8; 512];
            if n == 0 {
                u32::from(padding[0])
            } else {
                depth(n - 1) + u32::from(std::hint::black_box(padding)[1] & 1)
            }
        }
        // About 5 MiB of frames: more than a default thread's stack holds.
        assert!(run(async { depth(10_000) }).await.is_ok());
    }
}
