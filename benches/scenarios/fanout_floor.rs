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
//! The sockets are written by WRITERS, chosen by `PLUGBOARD_BENCH_FLOOR_WRITERS`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{SecondsFormat, SubsecRound, Utc};
use futures_util::SinkExt;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::fanout_clients::{Orders, next_message};
use super::fanout_crowd::{Clients, Delivery, PATIENCE, Round, deliveries};
use crate::harness::stats::ms;

/// Between a round's STARTED fan-out and its FINISHED one, as a check against a provider takes.
const CHECK: Duration = Duration::from_millis(5);
/// Chooses the writers: `socket` (a task per socket) or a number of tasks sharing the sockets.
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

/// Who writes the sockets.
#[derive(Debug, Clone, Copy)]
enum Writers {
    /// A task per socket, each woken by a broadcast of the event (the service's shape).
    PerSocket,
    /// This many tasks, each writing its share of the sockets in a loop.
    Groups(usize),
}

impl Writers {
    fn from_env() -> anyhow::Result<Writers> {
        match std::env::var(WRITERS_VAR) {
            Err(_) => Ok(Writers::Groups(std::thread::available_parallelism().map_or(1, |n| n.get()))),
            Ok(value) if value == "socket" => Ok(Writers::PerSocket),
            Ok(value) => match value.parse() {
                Ok(groups) if groups > 0 => Ok(Writers::Groups(groups)),
                _ => bail!("{WRITERS_VAR} must be `socket` or a number of writing tasks, not {value:?}"),
            },
        }
    }

    fn describe(self) -> String {
        match self {
            Writers::PerSocket => "a task per socket".into(),
            Writers::Groups(1) => "one task".into(),
            Writers::Groups(groups) => format!("{groups} tasks"),
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
    sender: Sender,
}

/// Where the acceptor hands each subscribed socket, and the fan-out each event.
enum Sender {
    PerSocket(broadcast::Sender<Event>),
    Groups { groups: Vec<mpsc::UnboundedSender<Command>>, tasks: Vec<JoinHandle<()>> },
}

impl Floor {
    async fn start(writers: Writers) -> anyhow::Result<Floor> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("the floor's listener")?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let (sender, joining) = match writers {
            Writers::PerSocket => {
                // Two events a round, and every round reaches everyone before the next.
                let (events, _) = broadcast::channel(16);
                (Sender::PerSocket(events.clone()), Joining::PerSocket(events))
            }
            Writers::Groups(count) => {
                let (mut groups, mut tasks) = (Vec::new(), Vec::new());
                for _ in 0..count {
                    let (commands, commands_in) = mpsc::unbounded_channel();
                    tasks.push(tokio::spawn(write_group(commands_in, shared.clone())));
                    groups.push(commands);
                }
                (Sender::Groups { groups: groups.clone(), tasks }, Joining::Groups(groups))
            }
        };
        let acceptor = tokio::spawn(accept(listener, joining, shared.clone()));
        Ok(Floor { address, shared, acceptor, sender })
    }

    /// One round: STARTED to every socket, then after [`CHECK`] FINISHED, stamped with the
    /// instant its fan-out begins.
    async fn round(&self, connection: &str) -> anyhow::Result<Round> {
        let failed = self.shared.failed.load(Ordering::SeqCst);
        ensure!(failed == 0, "{failed} of the floor's subscribers failed to subscribe (see above)");
        let id = self.shared.id.get().context("no subscriber subscribed")?;
        let started = event(id, connection, None);
        let started_at = Utc::now();
        self.send(started)?;
        tokio::time::sleep(CHECK).await;
        // To the microsecond, as the event carries it.
        let finished_at = Utc::now().trunc_subsecs(6);
        self.send(event(id, connection, Some(&finished_at.to_rfc3339_opts(SecondsFormat::Micros, true))))?;
        Ok(Round { started_at, finished_at, returned: None })
    }

    fn send(&self, event: Event) -> anyhow::Result<()> {
        match &self.sender {
            Sender::PerSocket(events) => {
                events.send(event).ok().context("no socket is listening")?;
            }
            Sender::Groups { groups, .. } => {
                for group in groups {
                    group.send(Command::Write(event.clone())).ok().context("a writer ended")?;
                }
            }
        }
        Ok(())
    }

    /// Closes every socket and waits until they are closed.
    async fn stop(self) -> anyhow::Result<()> {
        self.acceptor.abort();
        let _ = self.acceptor.await;
        match self.sender {
            Sender::PerSocket(events) => drop(events),
            Sender::Groups { groups, tasks } => {
                drop(groups);
                for task in tasks {
                    task.await.context("a floor writer failed")?;
                }
            }
        }
        let started = Instant::now();
        while self.shared.subscribed.load(Ordering::SeqCst) > 0 {
            ensure!(started.elapsed() < PATIENCE, "the floor's sockets did not all close");
            tokio::time::sleep(Duration::from_millis(10)).await;
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

/// Where the acceptor puts a subscribed socket.
enum Joining {
    PerSocket(broadcast::Sender<Event>),
    Groups(Vec<mpsc::UnboundedSender<Command>>),
}

/// What a group of sockets' writer is told: a socket joins, or an event is to be written.
enum Command {
    Join(Socket),
    Write(Event),
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

/// Accepts sockets until aborted; each one's handshake runs in a task of its own, then it joins
/// its writer (the groups in turn).
async fn accept(listener: TcpListener, joining: Joining, shared: Arc<Shared>) {
    for turn in 0.. {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                eprintln!("c's floor: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let shared = shared.clone();
        match &joining {
            Joining::PerSocket(events) => {
                let events = events.subscribe();
                tokio::spawn(async move {
                    if let Some(socket) = subscribe(stream, &shared).await {
                        write_one(Subscriber::join(socket, shared), events).await;
                    }
                });
            }
            Joining::Groups(groups) => {
                let group = groups[turn % groups.len()].clone();
                tokio::spawn(async move {
                    if let Some(socket) = subscribe(stream, &shared).await {
                        let _ = group.send(Command::Join(socket));
                    }
                });
            }
        }
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
    let protocol = |_: &Request, mut response: Response| {
        response
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
        Ok(response)
    };
    // The subscribers send two small messages; each event is written at once.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let mut socket = tokio_tungstenite::accept_hdr_async_with_config(stream, protocol, Some(config)).await?;
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

/// A task per socket: waits for each event and writes it.
async fn write_one(mut subscriber: Subscriber, mut events: broadcast::Receiver<Event>) {
    while let Ok(Event(message)) = events.recv().await {
        if let Err(err) = subscriber.socket.send(message).await {
            eprintln!("c's floor: a write failed: {err}");
            return;
        }
    }
}

/// A task for a share of the sockets: takes those that join, and writes each event to all of
/// them in turn. Events that come while it writes wait in the channel, as the service's do.
async fn write_group(mut commands: mpsc::UnboundedReceiver<Command>, shared: Arc<Shared>) {
    let mut subscribers = Vec::new();
    while let Some(command) = commands.recv().await {
        match command {
            Command::Join(socket) => subscribers.push(Subscriber::join(socket, shared.clone())),
            Command::Write(Event(message)) => {
                let mut failed = 0;
                for subscriber in &mut subscribers {
                    if subscriber.socket.send(message.clone()).await.is_err() {
                        failed += 1;
                    }
                }
                if failed > 0 {
                    eprintln!("c's floor: {failed} writes failed");
                }
            }
        }
    }
}
