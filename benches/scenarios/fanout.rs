//! c. Fan-out: 10,000 WebSocket subscribers (`graphql-transport-ws`) to `verificationEvents` of one
//! team, then a `verifyConnection` over HTTP. Each subscriber notes when the FINISHED event
//! reaches it; the delay is measured from the verification's `finishedAt` (the provider had
//! answered; the result is then written and published) and from the instant the mutation's answer
//! reached the client. One verification is a single sample of the tail, so the bench runs five,
//! one after another, and holds every one of them to the target.
//!
//! The subscribers run in this process, so they share the machine's cores with the service; the
//! provider answers at once, so the check itself is as short as it gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::harness::app::{Backend, Instance};
use crate::harness::provider::{Delays, Provider};
use crate::harness::stats::{Samples, mib, ms};
use crate::harness::{Scale, Summary, process, seed};

const SUBSCRIBERS: usize = 10_000;
const VERIFICATIONS: usize = 5;
/// Between two verifications, once every subscriber has the previous one.
const PAUSE: Duration = Duration::from_millis(500);
/// Subscribers connecting at once while the crowd gathers.
const CONNECTING: usize = 64;
const TARGET_P99_MS: f64 = 100.0;
/// Open files besides the sockets: the database, the provider, the runtime.
const SPARE_FILES: u64 = 1024;

const SUBSCRIPTION: &str = "subscription($team: ID!) { verificationEvents(teamId: $team) { connectionId phase verification { outcome finishedAt } } }";
const VERIFY: &str = "mutation($id: ID!) { verifyConnection(id: $id) { outcome startedAt finishedAt } }";

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Summary>> {
    let label = "c/sqlite";
    let wanted = scale.items(SUBSCRIBERS);
    // Each subscriber holds a socket here and one in the service, beside the database's files.
    let needed = 2 * wanted as u64 + SPARE_FILES;
    let limit = process::raise_open_files(needed)?;
    let count = wanted.min((limit.saturating_sub(SPARE_FILES) / 2) as usize);
    println!("{label}: open-file limit {limit}");
    if count < wanted {
        println!(
            "{label}: only {count} of {wanted} subscribers fit under the open-file limit, which this process may \
             not raise; run `ulimit -n {needed}` as a user allowed to (root with CAP_SYS_RESOURCE) before the \
             bench for all of them"
        );
    }

    let provider = Provider::start(Delays::default()).await?;
    let instance = Instance::serve(&Backend::Sqlite, &provider, &[]).await?;
    let address = instance.address()?.to_owned();
    let connection = *seed::api_key_connections(&instance.state, instance.team_id, 1, false)
        .await?
        .first()
        .context("no connection was seeded")?;

    let baseline = instance.state.events.subscribers();
    let rss_before = process::rss();
    let started = Instant::now();
    let sockets: Vec<Socket> = futures_util::stream::iter(0..count)
        .map(|_| subscribe(&address, &instance.token, instance.team_id.to_string()))
        .buffer_unordered(CONNECTING)
        .collect::<Vec<anyhow::Result<Socket>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    // A subscription exists once the service holds a receiver for it.
    while instance.state.events.subscribers() < baseline + count {
        ensure!(started.elapsed() < Duration::from_secs(120), "the subscriptions did not all start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("{label}: {count} subscribers ready in {:.1} s", started.elapsed().as_secs_f64());
    // Both ends of every socket live in this process: the figure is an upper bound on the service's.
    let per_subscriber =
        process::rss().zip(rss_before).map(|(after, before)| after.saturating_sub(before) / count as u64);
    println!(
        "{label}: RSS {} -> {}: {} per subscriber (the service's socket and subscription, and the bench's client \
         socket)",
        rss_before.map_or("unknown".into(), mib),
        process::rss().map_or("unknown".into(), mib),
        per_subscriber.map_or("unknown".into(), |bytes| format!("{:.1} KiB", bytes as f64 / 1024.0)),
    );

    let finished = Arc::new(AtomicUsize::new(0));
    let listeners: Vec<_> =
        sockets.into_iter().map(|socket| tokio::spawn(listen(socket, finished.clone()))).collect();
    let client = reqwest::Client::new();
    let mut verifications = Vec::with_capacity(VERIFICATIONS);
    for round in 1..=VERIFICATIONS {
        verifications.push(verify(&client, &address, &instance.token, &connection.to_string()).await?);
        let waiting = Instant::now();
        while finished.load(Ordering::SeqCst) < round * count {
            ensure!(
                waiting.elapsed() < Duration::from_secs(60),
                "verification {round} did not reach everyone"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(PAUSE).await;
    }
    let (mut received, mut sockets) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for listener in listeners {
        let (events, socket) = listener.await??;
        received.push(events);
        sockets.push(socket);
    }
    // Closed only now: a subscriber hanging up would make the service work during the deliveries.
    for mut socket in sockets {
        socket.close(None).await.ok();
    }
    provider.stop().await;

    let (mut all, mut worst_p99) = (Samples::default(), 0.0_f64);
    for (round, verification) in verifications.iter().enumerate() {
        let (mut from_finished, mut from_return) = (Samples::default(), Samples::default());
        let mut last_started = verification.started_at;
        for events in &received {
            let event = &events[round];
            ensure!(
                event.finished_at == verification.finished_at,
                "a subscriber saw the verifications out of order"
            );
            last_started = last_started.max(event.started_arrived);
            from_finished.push_ms(millis(event.finished_arrived - verification.finished_at));
            from_return.push_ms(millis(event.finished_arrived - verification.returned));
        }
        println!(
            "{label}: verification {}: finishedAt to delivery {}; from the answer reaching the client p50 {} p99 {}",
            round + 1,
            from_finished.describe(),
            ms(from_return.p50()),
            ms(from_return.p99()),
        );
        println!(
            "{label}:   the check took {}; STARTED reached the last subscriber {} after startedAt; the answer \
             reached the client {} after finishedAt",
            ms(millis(verification.finished_at - verification.started_at)),
            ms(millis(last_started - verification.started_at)),
            ms(millis(verification.returned - verification.finished_at)),
        );
        worst_p99 = worst_p99.max(from_finished.p99());
        all.extend(from_finished);
    }
    Ok(vec![Summary::new(
        format!(
            "{label}: {count} subscribers{}, {VERIFICATIONS} verifications, finishedAt to delivery p50 {} p99 {} (worst \
             verification's p99 {}); target p99 <= {TARGET_P99_MS} ms for each; {} per subscriber",
            if count < wanted { format!(" (of {wanted}: open-file limit)") } else { String::new() },
            ms(all.p50()),
            ms(all.p99()),
            ms(worst_p99),
            per_subscriber.map_or("unknown".into(), |bytes| format!("{:.1} KiB", bytes as f64 / 1024.0)),
        ),
        worst_p99 <= TARGET_P99_MS && count == wanted,
    )])
}

/// One verification, as its answer tells it, and when the answer reached the client.
struct Verified {
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    returned: DateTime<Utc>,
}

async fn verify(client: &reqwest::Client, address: &str, token: &str, id: &str) -> anyhow::Result<Verified> {
    let answer: Value = client
        .post(format!("{address}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": VERIFY, "variables": { "id": id } }))
        .send()
        .await?
        .json()
        .await?;
    let returned = Utc::now();
    let verification = &answer["data"]["verifyConnection"];
    ensure!(verification["outcome"] == "OK", "the verification failed: {answer}");
    Ok(Verified {
        started_at: parse_time(&verification["startedAt"])?,
        finished_at: parse_time(&verification["finishedAt"])?,
        returned,
    })
}

/// Opens a socket, completes `connection_init` and subscribes to the team's verifications.
async fn subscribe(address: &str, token: &str, team: String) -> anyhow::Result<Socket> {
    let mut request = format!("{}/graphql/ws", address.replace("http://", "ws://")).into_client_request()?;
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    // tungstenite reads into 128 KiB per socket by default; the events are a few hundred bytes,
    // and the memory per subscriber should be the service's, not the bench client's.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    let init =
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await?;
    let ack = next_message(&mut socket).await?;
    ensure!(ack["type"] == "connection_ack", "connection_init answered {ack}");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION, "variables": { "team": team } } });
    socket.send(Message::text(subscribe.to_string())).await?;
    Ok(socket)
}

/// When one verification's events reached a subscriber.
struct Received {
    started_arrived: DateTime<Utc>,
    finished_arrived: DateTime<Utc>,
    /// The `finishedAt` the event carried.
    finished_at: DateTime<Utc>,
}

/// Notes when each message arrives, counting FINISHED events in `finished`, until it has seen
/// every verification. Answers what it received and the socket, still open. Messages are only
/// looked at here; they are decoded afterwards, so the bench's clients spend as little as they
/// can of the cores the service needs while events are delivered.
async fn listen(mut socket: Socket, finished: Arc<AtomicUsize>) -> anyhow::Result<(Vec<Received>, Socket)> {
    let mut arrivals = Vec::with_capacity(2 * VERIFICATIONS);
    let mut seen = 0;
    while seen < VERIFICATIONS {
        let text = tokio::time::timeout(Duration::from_secs(60), next_text(&mut socket))
            .await
            .context("no event for a minute")??;
        let arrived = Utc::now();
        if text.contains("\"FINISHED\"") {
            seen += 1;
            finished.fetch_add(1, Ordering::SeqCst);
        }
        arrivals.push((arrived, text));
    }
    Ok((decode(arrivals)?, socket))
}

/// Pairs each verification's STARTED and FINISHED events, as they arrived.
fn decode(arrivals: Vec<(DateTime<Utc>, String)>) -> anyhow::Result<Vec<Received>> {
    let mut received = Vec::with_capacity(VERIFICATIONS);
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

/// The next protocol message, skipping pings and keep-alives.
async fn next_message(socket: &mut Socket) -> anyhow::Result<Value> {
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

fn parse_time(value: &Value) -> anyhow::Result<DateTime<Utc>> {
    let text = value.as_str().with_context(|| format!("{value} is not a time"))?;
    Ok(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc))
}

fn millis(delta: chrono::TimeDelta) -> f64 {
    delta.num_microseconds().map_or(f64::NAN, |us| us as f64 / 1e3)
}
