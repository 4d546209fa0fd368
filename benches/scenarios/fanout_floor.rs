//! c's floor: the same subscribers' process, 10,000 sockets and rounds as the service's run,
//! served by a bare WebSocket server in this process (tokio's `TcpListener` and
//! tokio-tungstenite). It speaks just enough `graphql-transport-ws` for the clients, unchanged:
//! `connection_ack` to `connection_init`, the `subscribe`'s id noted. Then, each round, it sends
//! every socket a STARTED event and, [`CHECK`] later, a FINISHED one whose `finishedAt` is the
//! instant that fan-out began. Each event is encoded once and the same bytes are written to every
//! socket: no GraphQL, no authentication, no database, no per-socket stream layers. What is left
//! is what the loopback sockets, the wake-ups and the clients on the same cores cost: the best
//! any WebSocket server could do here, which says whether the service's target is in reach.
//!
//! Each socket has a task that waits on a broadcast of the encoded events and writes them, spread
//! over the runtime's worker threads (the service's shape, without its layers). That beat a few
//! tasks each writing its share of the sockets in a loop (p99 314 ms against 454 ms with two and
//! 503 ms with one, 2026-11-30), probably because a socket whose STARTED is still waiting when
//! FINISHED is sent gets both back to back, where a loop first ends the whole STARTED fan-out.
//! `PLUGBOARD_BENCH_FLOOR_WRITERS=one-thread` runs the same tasks on a thread of their own, to
//! compare one writing thread with all of them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{SecondsFormat, SubsecRound, Utc};
use futures_util::SinkExt;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::fanout_clients::{Orders, next_message};
use super::fanout_crowd::{Clients, Delivery, PATIENCE, Round, deliveries};
use crate::harness::stats::ms;

/// Between a round's STARTED fan-out and its FINISHED one, about what the service's check and
/// its publishing take (the bench prints the latter). FINISHED is sent from a thread of its own:
/// a timer on the runtime the STARTED fan-out keeps busy fired 15-50 ms late, so the floor's
/// FINISHED met a STARTED fan-out mostly done, and its delays read shorter than the service's
/// for the same work. The thread still waits for a core: the check then takes 8-19 ms here.
const CHECK: Duration = Duration::from_millis(5);
/// Chooses the writers' threads: `workers` (the default) or `one-thread`.
const WRITERS_VAR: &str = "PLUGBOARD_BENCH_FLOOR_WRITERS";

type Socket = WebSocketStream<TcpStream>;

/// Runs `rounds` rounds, `pause` apart, to `count` subscribers in a process of their own;
/// prints each round's delays and answers them all. Every socket is closed when it returns.
pub async fn run(count: usize, rounds: usize, pause: Duration) -> anyhow::Result<Delivery> {
    let label = "c/floor";
    let writers = Writers::from_env()?;
    let floor = Floor::start(writers).await?;
    let started = Instant::now();
    let mut clients = Clients::start(&Orders {
        address: format!("http://{}", floor.address),
        token: String::new(),
        team: String::new(),
        subscribers: count,
        verifications: rounds,
    })?;
    clients.subscribed().await?;
    while floor.shared.subscribed.load(Ordering::SeqCst) < count {
        ensure!(started.elapsed() < PATIENCE, "the floor's subscribers did not all subscribe");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "{label}: {count} subscribers ready in {:.1} s; written by {}",
        started.elapsed().as_secs_f64(),
        writers.describe()
    );

    let connection = uuid::Uuid::now_v7().to_string();
    let mut sent = Vec::with_capacity(rounds);
    // As the service's run does: the subscribers' listeners settle first.
    tokio::time::sleep(pause).await;
    for round in 1..=rounds {
        sent.push(floor.round(&connection).await?);
        clients.reached(round).await?;
        tokio::time::sleep(pause).await;
    }
    let received = clients.arrivals(count).await?;
    floor.stop().await?;

    let mut delivery = deliveries(label, "round", &sent, &received)?;
    println!(
        "{label}: {count} subscribers, {rounds} rounds, finishedAt to delivery p50 {} p99 {} (worst round's p99 {})",
        ms(delivery.all.p50()),
        ms(delivery.all.p99()),
        ms(delivery.worst_p99),
    );
    Ok(delivery)
}

/// Which threads write the sockets.
#[derive(Debug, Clone, Copy)]
enum Writers {
    /// The bench's runtime, all its worker threads.
    Workers,
    /// A single-threaded runtime on a thread of its own.
    OneThread,
}

impl Writers {
    fn from_env() -> anyhow::Result<Writers> {
        match std::env::var(WRITERS_VAR).as_deref() {
            Err(_) | Ok("workers") => Ok(Writers::Workers),
            Ok("one-thread") => Ok(Writers::OneThread),
            Ok(other) => bail!("{WRITERS_VAR} must be `workers` or `one-thread`, not {other:?}"),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Writers::Workers => "a task per socket on every worker thread",
            Writers::OneThread => "a task per socket on one thread",
        }
    }
}

/// What the floor's tasks share.
#[derive(Default)]
struct Shared {
    /// Sockets past their `subscribe`, ready for events.
    subscribed: AtomicUsize,
    /// The subscription id of the first `subscribe`: one encoding serves every socket only if
    /// they all use the same one (the clients do).
    id: OnceLock<String>,
    /// Sockets whose handshake or `subscribe` went wrong, or that used another id.
    failed: AtomicUsize,
}

/// An event for every socket, encoded once.
#[derive(Clone)]
struct Event(Message);

struct Floor {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: JoinHandle<()>,
    events: broadcast::Sender<Event>,
    /// With [`Writers::OneThread`]: the thread, and what ends its runtime.
    thread: Option<(oneshot::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Floor {
    async fn start(writers: Writers) -> anyhow::Result<Floor> {
        // Bound here, registered with the runtime that serves it (in `accept`).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("the floor's listener")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        // Two events a round, and every round reaches everyone before the next.
        let (events, _) = broadcast::channel(16);
        let (runtime, thread) = match writers {
            Writers::Workers => (tokio::runtime::Handle::current(), None),
            Writers::OneThread => {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                let handle = runtime.handle().clone();
                let (end, ended) = oneshot::channel::<()>();
                let thread = std::thread::Builder::new()
                    .name("c-floor".into())
                    .spawn(move || {
                        let _ = runtime.block_on(ended);
                    })
                    .context("the floor's thread")?;
                (handle, Some((end, thread)))
            }
        };
        let acceptor = runtime.spawn(accept(listener, events.clone(), shared.clone()));
        Ok(Floor { address, shared, acceptor, events, thread })
    }

    /// One round: STARTED to every socket, then after [`CHECK`] FINISHED, stamped with the
    /// instant its fan-out begins.
    async fn round(&self, connection: &str) -> anyhow::Result<Round> {
        let failed = self.shared.failed.load(Ordering::SeqCst);
        ensure!(failed == 0, "{failed} of the floor's subscribers failed to subscribe (see above)");
        let id = self.shared.id.get().context("no subscriber subscribed")?;
        let started = event(id, connection, None);
        let started_at = Utc::now();
        self.events.send(started).ok().context("no socket is listening")?;
        let (events, id, connection) = (self.events.clone(), id.clone(), connection.to_owned());
        let finished_at = tokio::task::spawn_blocking(move || {
            std::thread::sleep(CHECK);
            // To the microsecond, as the event carries it.
            let finished_at = Utc::now().trunc_subsecs(6);
            let stamp = finished_at.to_rfc3339_opts(SecondsFormat::Micros, true);
            events.send(event(&id, &connection, Some(&stamp))).ok().map(|_| finished_at)
        })
        .await?
        .context("no socket is listening")?;
        Ok(Round { started_at, finished_at, returned: None })
    }

    /// Closes every socket and waits until they are closed.
    async fn stop(self) -> anyhow::Result<()> {
        self.acceptor.abort();
        let _ = self.acceptor.await;
        // The writers end when the events do, and drop their sockets.
        drop(self.events);
        let started = Instant::now();
        while self.shared.subscribed.load(Ordering::SeqCst) > 0 {
            ensure!(started.elapsed() < PATIENCE, "the floor's sockets did not all close");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some((end, thread)) = self.thread {
            let _ = end.send(());
            thread.join().ok().context("the floor's thread panicked")?;
        }
        Ok(())
    }
}

/// The `next` message of one event as the service sends it: `connectionId phase verification {
/// outcome finishedAt }`, `verification` null while STARTED.
fn event(id: &str, connection: &str, finished_at: Option<&str>) -> Event {
    let (phase, verification) = match finished_at {
        None => ("STARTED", serde_json::Value::Null),
        Some(at) => ("FINISHED", json!({ "outcome": "OK", "finishedAt": at })),
    };
    let message = json!({
        "id": id,
        "type": "next",
        "payload": { "data": { "verificationEvents": {
            "connectionId": connection, "phase": phase, "verification": verification,
        } } },
    });
    Event(Message::text(message.to_string()))
}

/// A subscribed socket with its writer; counted in [`Shared::subscribed`] until it is dropped.
struct Subscriber {
    socket: Socket,
    shared: Arc<Shared>,
}

impl Subscriber {
    /// Counted once it can be written: no event can miss it after the count says so.
    fn join(socket: Socket, shared: Arc<Shared>) -> Subscriber {
        shared.subscribed.fetch_add(1, Ordering::SeqCst);
        Subscriber { socket, shared }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.shared.subscribed.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts sockets until aborted; each one's handshake, then its writes, run in a task of its
/// own, which listens to the events from before its handshake so that it misses none.
async fn accept(listener: std::net::TcpListener, events: broadcast::Sender<Event>, shared: Arc<Shared>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("c's floor: could not listen: {err}");
            return;
        }
    };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                eprintln!("c's floor: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (shared, events) = (shared.clone(), events.subscribe());
        tokio::spawn(async move {
            if let Some(socket) = subscribe(stream, &shared).await {
                write(Subscriber::join(socket, shared), events).await;
            }
        });
    }
}

/// The WebSocket handshake, `connection_init` and `subscribe`. A failure is printed and counted,
/// and ends the run before its first round.
async fn subscribe(stream: TcpStream, shared: &Shared) -> Option<Socket> {
    match greet(stream, shared).await {
        Ok(socket) => Some(socket),
        Err(err) => {
            eprintln!("c's floor: a subscriber failed: {err:#}");
            shared.failed.fetch_add(1, Ordering::SeqCst);
            None
        }
    }
}

async fn greet(stream: TcpStream, shared: &Shared) -> anyhow::Result<Socket> {
    // As the service does: an event is one small write, sent at once.
    stream.set_nodelay(true)?;
    // The subscribers send two small messages; each event is written at once.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let mut socket =
        tokio_tungstenite::accept_hdr_async_with_config(stream, answer_protocol, Some(config)).await?;
    let init = next_message(&mut socket).await?;
    ensure!(init["type"] == "connection_init", "expected connection_init, got {init}");
    socket.send(Message::text(r#"{"type":"connection_ack"}"#)).await?;
    let subscribe = next_message(&mut socket).await?;
    ensure!(subscribe["type"] == "subscribe", "expected subscribe, got {subscribe}");
    let id = subscribe["id"].as_str().context("a subscribe without an id")?;
    let first = shared.id.get_or_init(|| id.to_owned());
    ensure!(id == first, "subscription id {id:?} beside {first:?}: one encoding per event needs one id");
    Ok(socket)
}

/// Names the protocol in the handshake's answer: the clients require it.
#[allow(clippy::result_large_err)] // The callback's type is tungstenite's.
fn answer_protocol(_: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    response.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
    Ok(response)
}

/// A socket's task: waits for each event and writes it. When FINISHED is sent before this socket
/// had STARTED, it writes both back to back, as the service's actor does.
async fn write(mut subscriber: Subscriber, mut events: broadcast::Receiver<Event>) {
    while let Ok(Event(message)) = events.recv().await {
        if let Err(err) = subscriber.socket.send(message).await {
            eprintln!("c's floor: a write failed: {err}");
            return;
        }
    }
}
