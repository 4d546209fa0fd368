//! c. Fan-out: 10,000 WebSocket subscribers (`graphql-transport-ws`) to `verificationEvents` of one
//! team, then a `verifyConnection` over HTTP. Each subscriber notes when the FINISHED event
//! reaches it; the delay is measured from the verification's `finishedAt` (the provider had
//! answered; the result is then written and published) and from the instant the mutation's answer
//! reached the client. One verification is a single sample of the tail, so the bench runs five,
//! one after another, and holds every one of them to the target.
//!
//! The service runs in this process and the subscribers in another (`fanout_clients`): they
//! still share the machine's cores, but not the service's threads, and this process's memory is
//! the service's. The provider answers at once, so the check itself is as short as it gets.
//!
//! Before the service, the same crowd of subscribers (a process of its own too) is served by a
//! bare WebSocket server (`fanout_floor`): its delays are the floor of this machine, and the
//! summary says how many times it the service takes. The target is still the absolute 100 ms.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::{DateTime, Utc};
use plugboard::events::{Event, EventBus, VerificationPhase};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::fanout_clients::{Orders, parse_time};
use super::fanout_crowd::{Clients, PATIENCE, Round, deliveries};
use super::fanout_floor;
use crate::harness::app::{Backend, Instance};
use crate::harness::provider::{Delays, Provider};
use crate::harness::stats::{mib, ms};
use crate::harness::{Scale, Summary, process, seed};

const SUBSCRIBERS: usize = 10_000;
const VERIFICATIONS: usize = 5;
/// Between two verifications, once every subscriber has the previous one; and before the
/// first, once every subscriber has subscribed: the subscribers' process has just started its
/// 10,000 listeners, and their first polls took the cores from the first round (its p99 was
/// 20-30 ms above the others', for the floor too).
const PAUSE: Duration = Duration::from_millis(500);
const TARGET_P99_MS: f64 = 100.0;
/// Open files besides the sockets: the database, the provider, the runtime.
const SPARE_FILES: u64 = 1024;

const VERIFY: &str = "mutation($id: ID!) { verifyConnection(id: $id) { outcome startedAt finishedAt } }";

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Summary>> {
    let label = "c/sqlite";
    let wanted = scale.items(SUBSCRIBERS);
    // Each process holds one end of every socket, beside its other files.
    let needed = wanted as u64 + SPARE_FILES;
    let limit = process::raise_open_files(needed)?;
    let count = wanted.min(limit.saturating_sub(SPARE_FILES) as usize);
    println!("{label}: open-file limit {limit} per process");
    if count < wanted {
        println!(
            "{label}: only {count} of {wanted} subscribers fit under the open-file limit, which this process may \
             not raise; run `ulimit -n {needed}` as a user allowed to (root with CAP_SYS_RESOURCE) before the \
             bench for all of them"
        );
    }

    // First, and with its sockets closed before the service opens its own: both fit the limit.
    let mut floor = fanout_floor::run(count, VERIFICATIONS, PAUSE).await?;

    let provider = Provider::start(Delays::default()).await?;
    // One token for the whole crowd, as one team's dashboards under a shared token: the
    // service holds each caller to 100 sockets unless told otherwise.
    let per_caller = count.to_string();
    let instance =
        Instance::serve(&Backend::Sqlite, &provider, &[("PLUGBOARD_MAX_SOCKETS_PER_CALLER", &per_caller)])
            .await?;
    let address = instance.address()?.to_owned();
    let connection = *seed::api_key_connections(&instance.state, instance.team_id, 1, false)
        .await?
        .first()
        .context("no connection was seeded")?;

    let baseline = instance.state.events.subscribers();
    let rss_before = process::rss();
    let started = Instant::now();
    let mut clients = Clients::start(&Orders {
        address: address.clone(),
        token: instance.token.clone(),
        team: instance.team_id.to_string(),
        subscribers: count,
        verifications: VERIFICATIONS,
    })?;
    let (client_before, client_after) = clients.subscribed().await?;
    // A subscription exists once the service holds a receiver for it.
    while instance.state.events.subscribers() < baseline + count {
        ensure!(started.elapsed() < PATIENCE, "the subscriptions did not all start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("{label}: {count} subscribers ready in {:.1} s", started.elapsed().as_secs_f64());
    let rss_after = process::rss();
    let per_subscriber = growth_per_subscriber(rss_before, rss_after, count);
    println!(
        "{label}: service RSS {} -> {}: {} per subscriber (its socket, actor and subscription); the clients' \
         process {} -> {}: {} per subscriber",
        rss_before.map_or("unknown".into(), mib),
        rss_after.map_or("unknown".into(), mib),
        kib(per_subscriber),
        client_before.map_or("unknown".into(), mib),
        client_after.map_or("unknown".into(), mib),
        kib(growth_per_subscriber(client_before, client_after, count)),
    );

    let published = heard_finished(&instance.state.events, VERIFICATIONS);
    let client = reqwest::Client::new();
    let mut verifications = Vec::with_capacity(VERIFICATIONS);
    tokio::time::sleep(PAUSE).await;
    for round in 1..=VERIFICATIONS {
        verifications.push(verify(&client, &address, &instance.token, &connection.to_string()).await?);
        clients.reached(round).await?;
        tokio::time::sleep(PAUSE).await;
    }
    let received = clients.arrivals(count).await?;
    provider.stop().await;
    let published = published.await?;
    for (index, (round, heard)) in verifications.iter().zip(&published).enumerate() {
        let delay = (*heard - round.finished_at).num_microseconds().unwrap_or_default() as f64 / 1e3;
        println!(
            "{label}: verification {}: FINISHED was on the bus {} after finishedAt",
            index + 1,
            ms(delay)
        );
    }

    let mut service = deliveries(label, "verification", &verifications, &received)?;
    let (p99, floor_p99) = (service.all.p99(), floor.all.p99());
    Ok(vec![Summary::new(
        format!(
            "{label}: {count} subscribers{}, {VERIFICATIONS} verifications, finishedAt to delivery p50 {} p99 {} (worst \
             verification's p99 {}); target p99 <= {TARGET_P99_MS} ms for each; floor p99 {}; the service's p99 is \
             {:.1}× the floor; {} per subscriber in the service",
            if count < wanted { format!(" (of {wanted}: open-file limit)") } else { String::new() },
            ms(service.all.p50()),
            ms(p99),
            ms(service.worst_p99),
            ms(floor_p99),
            p99 / floor_p99,
            kib(per_subscriber),
        ),
        service.worst_p99 <= TARGET_P99_MS && count == wanted,
    )])
}

/// When each of the next `count` FINISHED events reaches this instance's bus, before any socket:
/// the part of the delay that is the service's recording and publishing, not the fan-out.
fn heard_finished(events: &EventBus, count: usize) -> tokio::task::JoinHandle<Vec<DateTime<Utc>>> {
    let (mut heard, _) = events.subscribe();
    tokio::spawn(async move {
        let mut at = Vec::with_capacity(count);
        while at.len() < count {
            match heard.recv().await {
                Ok(event) => {
                    if let Event::Verification(check) = &*event
                        && check.phase == VerificationPhase::Finished
                    {
                        at.push(Utc::now());
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
        at
    })
}

/// Growth of resident memory shared out over `count` subscribers.
fn growth_per_subscriber(before: Option<u64>, after: Option<u64>, count: usize) -> Option<u64> {
    after.zip(before).map(|(after, before)| after.saturating_sub(before) / count.max(1) as u64)
}

fn kib(bytes: Option<u64>) -> String {
    bytes.map_or("unknown".into(), |bytes| format!("{:.1} KiB", bytes as f64 / 1024.0))
}

/// One verification, as its answer tells it, and when the answer reached the client.
async fn verify(client: &reqwest::Client, address: &str, token: &str, id: &str) -> anyhow::Result<Round> {
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
    Ok(Round {
        started_at: parse_time(&verification["startedAt"])?,
        finished_at: parse_time(&verification["finishedAt"])?,
        returned: Some(returned),
    })
}
