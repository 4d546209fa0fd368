//! c's subscribers, in a process of their own: the bench binary re-executed with
//! [`CLIENTS_ARG`], talking to the service over loopback. Out of the service's process, their
//! 10,000 tasks no longer share its runtime's threads, a profile of the service process is the
//! service alone, and each process has the open-file limit for its own end of the sockets.
//!
//! The service side (`fanout`) writes one [`Orders`] line to this process's stdin; this process
//! answers on stdout, one [`Report`] per line, and reads nothing more.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::harness::process;

/// The hidden first argument that makes the bench binary this process.
pub const CLIENTS_ARG: &str = "--fanout-subscribers";

/// Subscribers connecting at once while the crowd gathers.
const CONNECTING: usize = 64;
/// No event for this long means the run is stuck.
const SILENCE: Duration = Duration::from_secs(60);

const SUBSCRIPTION: &str = "subscription($team: ID!) { verificationEvents(teamId: $team) { connectionId phase verification { outcome finishedAt } } }";

type Socket = WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What the service side asks for. The token travels on stdin, not on the command line, which
/// every user of the machine can read.
#[derive(Serialize, Deserialize)]
pub struct Orders {
    pub address: String,
    pub token: String,
    pub team: String,
    pub subscribers: usize,
    pub verifications: usize,
}

/// One line of this process's stdout.
#[derive(Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Report {
    /// Every subscriber got `connection_ack` and sent its `subscribe`; the listeners run.
    Subscribed { rss_before: Option<u64>, rss_after: Option<u64> },
    /// The FINISHED event of verification `round` (from 1) reached every subscriber.
    Finished { round: usize },
    /// When one subscriber received each verification's events.
    Arrivals { events: Vec<Received> },
    /// Every subscriber reported; the sockets are closed.
    Done,
}

/// When one verification's events reached a subscriber.
#[derive(Serialize, Deserialize)]
pub struct Received {
    pub started_arrived: DateTime<Utc>,
    pub finished_arrived: DateTime<Utc>,
    /// The `finishedAt` the event carried.
    pub finished_at: DateTime<Utc>,
}

/// The subscribers' process: reads its orders from stdin, runs them, reports on stdout.
pub async fn run() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the orders from stdin")?;
    let orders: Orders = serde_json::from_str(&line).context("the orders do not decode")?;
    process::raise_open_files(orders.subscribers as u64 + 1024)?;

    let rss_before = process::rss();
    let sockets: Vec<Socket> = futures_util::stream::iter(0..orders.subscribers)
        .map(|_| subscribe(&orders))
        .buffer_unordered(CONNECTING)
        .collect::<Vec<anyhow::Result<Socket>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let finished = Arc::new(AtomicUsize::new(0));
    let listeners: Vec<_> = sockets
        .into_iter()
        .map(|socket| {
            tokio::spawn(listen(socket, orders.verifications, orders.subscribers, finished.clone()))
        })
        .collect();
    report(&Report::Subscribed { rss_before, rss_after: process::rss() })?;

    // Reported once all are in: the last verification's `Finished` comes before any arrivals.
    let mut heard = Vec::with_capacity(listeners.len());
    for listener in listeners {
        heard.push(listener.await??);
    }
    let mut sockets = Vec::with_capacity(heard.len());
    for (arrivals, socket) in heard {
        report(&Report::Arrivals { events: decode(arrivals)? })?;
        sockets.push(socket);
    }
    // Closed only now: a subscriber hanging up would make the service work during the deliveries.
    for mut socket in sockets {
        socket.close(None).await.ok();
    }
    report(&Report::Done)
}

fn report(report: &Report) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, report)?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

/// Opens a socket, completes `connection_init` and subscribes to the team's verifications.
async fn subscribe(orders: &Orders) -> anyhow::Result<Socket> {
    let mut request =
        format!("{}/graphql/ws", orders.address.replace("http://", "ws://")).into_client_request()?;
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    // tungstenite reads into 128 KiB per socket by default; the events are a few hundred bytes.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", orders.token) } });
    socket.send(Message::text(init.to_string())).await?;
    let ack = next_message(&mut socket).await?;
    ensure!(ack["type"] == "connection_ack", "connection_init answered {ack}");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION, "variables": { "team": orders.team } } });
    socket.send(Message::text(subscribe.to_string())).await?;
    Ok(socket)
}

/// Notes when each message arrives until it has seen `verifications` FINISHED events, and
/// reports each verification that reached the last of the `subscribers` (counted in
/// `finished`). Answers what it received and the socket, still open. Messages are only looked
/// at here and decoded once every listener is done: a listener that decoded as soon as it had
/// its last event took cores from the last round's delivery to the others.
async fn listen(
    mut socket: Socket,
    verifications: usize,
    subscribers: usize,
    finished: Arc<AtomicUsize>,
) -> anyhow::Result<(Arrivals, Socket)> {
    let mut arrivals = Vec::with_capacity(2 * verifications);
    let mut seen = 0;
    while seen < verifications {
        let text = tokio::time::timeout(SILENCE, next_text(&mut socket))
            .await
            .context("no event for a minute")??;
        let arrived = Utc::now();
        if text.contains("\"FINISHED\"") {
            seen += 1;
            let delivered = finished.fetch_add(1, Ordering::SeqCst) + 1;
            if delivered.is_multiple_of(subscribers) {
                report(&Report::Finished { round: delivered / subscribers })?;
            }
        }
        arrivals.push((arrived, text));
    }
    Ok((arrivals, socket))
}

/// Each message as it arrived, undecoded.
type Arrivals = Vec<(DateTime<Utc>, String)>;

/// Pairs each verification's STARTED and FINISHED events, as they arrived.
fn decode(arrivals: Arrivals) -> anyhow::Result<Vec<Received>> {
    let mut received = Vec::new();
    let mut started_arrived = None;
    for (arrived, text) in arrivals {
        let message: Value = serde_json::from_str(&text)?;
        if message["type"] != "next" {
            bail!("the subscription answered {message}");
        }
        let event = &message["payload"]["data"]["verificationEvents"];
        match event["phase"].as_str() {
            Some("STARTED") => started_arrived = Some(arrived),
            Some("FINISHED") => received.push(Received {
                started_arrived: started_arrived.take().context("FINISHED came without STARTED")?,
                finished_arrived: arrived,
                finished_at: parse_time(&event["verification"]["finishedAt"])?,
            }),
            _ => bail!("unexpected event {event}"),
        }
    }
    Ok(received)
}

/// The next protocol message as text, skipping pings and keep-alives.
async fn next_text(socket: &mut Socket) -> anyhow::Result<String> {
    loop {
        match socket.next().await.context("the socket closed")?? {
            Message::Text(text) => {
                let keep_alive = [r#""type":"ping""#, r#""type":"pong""#, r#""type":"ka""#]
                    .iter()
                    .any(|kind| text.contains(kind));
                if !keep_alive {
                    return Ok(text.as_str().to_owned());
                }
            }
            Message::Close(frame) => bail!("the socket closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// The next protocol message, skipping pings and keep-alives; on either end of a socket (the
/// floor's server reads its subscribers' messages with it too).
pub async fn next_message<S>(socket: &mut WebSocketStream<S>) -> anyhow::Result<Value>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match socket.next().await.context("the socket closed")?? {
            Message::Text(text) => {
                let message: Value = serde_json::from_str(&text)?;
                if !matches!(message["type"].as_str(), Some("ping" | "pong" | "ka")) {
                    return Ok(message);
                }
            }
            Message::Close(frame) => bail!("the socket closed: {frame:?}"),
            _ => continue,
        }
    }
}

pub fn parse_time(value: &Value) -> anyhow::Result<DateTime<Utc>> {
    let text = value.as_str().with_context(|| format!("{value} is not a time"))?;
    Ok(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc))
}
