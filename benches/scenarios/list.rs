//! a. List: `team.connections(first: 50)` on a team of 10,000 connections over HTTP, beside
//! `{ __typename }` on the same server in the same run.
//!
//! A fixed number of client tasks send requests back to back for a fixed time; each request is
//! timed from send to the last byte of the answer. `__typename` is sent with the same bearer token
//! (so both pay for authentication, which every real list request does) and once more without one.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::harness::app::{Backend, Instance};
use crate::harness::provider::{Delays, Provider};
use crate::harness::stats::{Samples, ms};
use crate::harness::{Scale, Summary, seed};

const CONNECTIONS: usize = 10_000;
const CLIENTS: usize = 16;
const TARGET_RATIO: f64 = 0.5;

/// What the Connections page of the example frontend asks for, 50 at a time.
const LIST: &str = r#"
query List($team: ID!) {
  team(id: $team) {
    connections(first: 50) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges {
        cursor
        node {
          id name appKey authType status expiresAt accountLabel
          lastVerification { outcome message finishedAt }
        }
      }
    }
  }
}"#;

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Summary>> {
    let mut summaries = vec![on(&Backend::Sqlite, scale).await?];
    match Backend::postgres_from_env() {
        Some(postgres) => summaries.push(on(&postgres, scale).await?),
        None => println!(
            "a/postgres: skipped; set PLUGBOARD_BENCH_DATABASE_URL (or PLUGBOARD_TEST_DATABASE_URL) to a \
             server where the bench may create databases"
        ),
    }
    Ok(summaries)
}

async fn on(backend: &Backend, scale: Scale) -> anyhow::Result<Summary> {
    let label = format!("a/{}", backend.name());
    let count = scale.items(CONNECTIONS);
    let window = if scale.quick { Duration::from_secs(2) } else { Duration::from_secs(10) };
    let provider = Provider::start(Delays::default()).await?;
    let instance = Instance::serve(backend, &provider, &[]).await?;
    let result = measure(&label, &instance, count, window).await;
    if let Err(err) = instance.drop_database().await {
        println!("{label}: could not drop the bench database: {err:#}");
    }
    provider.stop().await;
    result
}

async fn measure(
    label: &str,
    instance: &Instance,
    count: usize,
    window: Duration,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    seed::api_key_connections(&instance.state, instance.team_id, count, false).await?;
    println!("{label}: seeded {count} connections in {:.1} s", started.elapsed().as_secs_f64());

    let url = format!("{}/graphql", instance.address()?);
    let client = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build()?;
    let list = Request {
        body: json!({ "query": LIST, "variables": { "team": instance.team_id.to_string() } }).to_string(),
        token: Some(instance.token.clone()),
    };
    let typename =
        Request { body: json!({ "query": "{ __typename }" }).to_string(), token: list.token.clone() };
    let anonymous = Request { token: None, ..typename.clone() };
    check_page(&client, &url, &list, count).await?;

    // Warm the pools and caches of both paths before measuring.
    for request in [&typename, &list] {
        load(&client, &url, request, Duration::from_secs(1)).await?;
    }
    println!("{label}: {CLIENTS} client tasks, {} s per query", window.as_secs());
    let mut typename = load(&client, &url, &typename, window).await?;
    let mut list = load(&client, &url, &list, window).await?;
    let mut anonymous = load(&client, &url, &anonymous, window).await?;
    for (name, result) in [
        ("{ __typename } (with token)", &mut typename),
        ("connections(first: 50)", &mut list),
        ("{ __typename } (no token)", &mut anonymous),
    ] {
        println!(
            "{label}:   {name:<28} {:>6.0} req/s  {} requests  {}",
            result.rate(),
            result.latencies.len(),
            result.latencies.describe()
        );
    }
    // Issue 18: authentication without a database round trip costs at most half the rate.
    let authentication = typename.rate() / anonymous.rate();
    println!(
        "{label}:   authenticated __typename / anonymous {authentication:.2} (target >= {TARGET_RATIO}): {}",
        if authentication >= TARGET_RATIO { "MET" } else { "MISSED" }
    );
    let ratio = list.rate() / typename.rate();
    println!(
        "{label}:   ratio to __typename with token {ratio:.2}, to __typename without token {:.2}",
        list.rate() / anonymous.rate()
    );
    Ok(Summary::new(
        format!(
            "{label}: connections(first:50) {:.0} req/s p50 {} p99 {}; __typename {:.0} req/s; ratio {ratio:.2} \
             (target >= {TARGET_RATIO})",
            list.rate(),
            ms(list.latencies.p50()),
            ms(list.latencies.p99()),
            typename.rate(),
        ),
        ratio >= TARGET_RATIO,
    ))
}

#[derive(Clone)]
struct Request {
    body: String,
    token: Option<String>,
}

struct Load {
    latencies: Samples,
    elapsed: Duration,
}

impl Load {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `request` from `CLIENTS` tasks, back to back, for `window`.
async fn load(
    client: &reqwest::Client,
    url: &str,
    request: &Request,
    window: Duration,
) -> anyhow::Result<Load> {
    let started = Instant::now();
    let deadline = started + window;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, url, request) = (client.clone(), url.to_owned(), request.clone());
        tasks.spawn(async move {
            let mut latencies = Samples::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                send(&client, &url, &request).await?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Samples::default();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    Ok(Load { latencies, elapsed: started.elapsed() })
}

/// One request; an error answer fails the run (a fast error would flatter the figures).
async fn send(client: &reqwest::Client, url: &str, request: &Request) -> anyhow::Result<impl AsRef<[u8]>> {
    let mut builder = client.post(url).header("content-type", "application/json").body(request.body.clone());
    if let Some(token) = &request.token {
        builder = builder.bearer_auth(token);
    }
    let response = builder.send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() || body.windows(8).any(|w| w == b"\"errors\"") {
        bail!("the service answered {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}

/// Fails unless the list answers a full first page of the seeded team.
async fn check_page(client: &reqwest::Client, url: &str, list: &Request, count: usize) -> anyhow::Result<()> {
    let body: Value = serde_json::from_slice(send(client, url, list).await?.as_ref())?;
    let connections = &body["data"]["team"]["connections"];
    let edges = connections["edges"].as_array().context("the list has no edges")?;
    ensure!(
        connections["totalCount"] == count,
        "the team lists {} connections, not {count}",
        connections["totalCount"]
    );
    ensure!(edges.len() == count.min(50), "a page holds {} connections", edges.len());
    Ok(())
}
