//! Where GraphQL requests run: queries and mutations on a runtime of its own whose threads have
//! large stacks, subscriptions where their socket is; a panic guard around every request.
//!
//! The documents are bounded before parsing (see `limits`), so nothing should recurse deeply;
//! the large stack is the second wall for a case those limits miss. A stack overflow cannot be
//! caught, so the stack is made large enough instead (memory is only committed as it is
//! touched), and a panic becomes an `INTERNAL` answer for that one request while the service
//! goes on.
//!
//! Subscriptions do without that second wall: their stream is polled on the actix worker that
//! owns the socket (`guard`), because handing each event from this runtime to that worker cost
//! two wake-ups and a context switch per subscriber (BENCHMARKS.md, c). The limits have bounded
//! the document's depth before the subscription starts, and each event resolves the same
//! shallow selection. The panic guard stays, around each poll.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use futures_util::stream::{BoxStream, Stream};
use futures_util::{FutureExt, StreamExt};

/// Stack of each GraphQL thread; the default of 2 MiB is what a deep document exhausted.
const STACK_BYTES: usize = 64 * 1024 * 1024;

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The runtime lives as long as the process (it is shared by every app a test process builds,
/// and dropping a runtime from async code is not allowed).
fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("graphql")
            .thread_stack_size(STACK_BYTES)
            .enable_all()
            .build()
            .unwrap_or_else(|err| panic!("the GraphQL runtime could not start: {err}"))
    })
}

/// Starts the runtime now, so a failure shows at start and not on the first request.
pub fn start() {
    runtime();
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

/// Polls `stream` wherever the returned stream is polled, each poll behind the panic guard: a
/// panic ends it with `on_panic()`, and the task polling it (the socket's) goes on.
pub fn guard<T: Send + 'static>(stream: BoxStream<'static, T>, on_panic: fn() -> T) -> BoxStream<'static, T> {
    Guarded { stream: Some(stream), on_panic }.boxed()
}

struct Guarded<T> {
    /// `None` once the stream panicked.
    stream: Option<BoxStream<'static, T>>,
    on_panic: fn() -> T,
}

impl<T> Stream for Guarded<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        match catch_unwind(AssertUnwindSafe(|| stream.poll_next_unpin(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                tracing::error!(panic = %panic_text(payload), "a GraphQL subscription panicked; it was ended with INTERNAL");
                let stream = self.stream.take();
                // Its state may be half-changed: dropping it must not take the socket down either.
                let _ = catch_unwind(AssertUnwindSafe(|| drop(stream)));
                Poll::Ready(Some((self.on_panic)()))
            }
        }
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
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
    async fn a_guarded_stream_that_panics_ends_with_the_answer_to_a_panic() {
        let panicking =
            futures_util::stream::iter([1, 2, 3]).map(|n| if n == 3 { panic!("boom") } else { n });
        let items: Vec<i32> = guard(panicking.boxed(), || -1).collect().await;
        assert_eq!(items, [1, 2, -1]);
    }

    #[tokio::test]
    async fn a_guarded_stream_is_polled_by_its_caller() {
        let caller = std::thread::current().id();
        let polled_on = futures_util::stream::once(async { std::thread::current().id() });
        let items: Vec<_> = guard(polled_on.boxed(), || panic!("no panic expected")).collect().await;
        assert_eq!(items, [caller]);
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
