//! Load for scenario a, shared by the service and its GraphQL peer: a fixed number of client
//! tasks sending one request back to back for a fixed time, each timed from send to the last
//! byte of the answer, and the check that a page is the full first page of the seeded team.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::harness::stats::Samples;

/// Client tasks sending at once, for every rate of scenario a (the service, PostGraphile,
/// pgbench), so the rates compare.
pub(super) const CLIENTS: usize = 16;

#[derive(Clone)]
pub(super) struct Request {
    pub(super) body: String,
    pub(super) token: Option<String>,
}

pub(super) struct Load {
    pub(super) latencies: Samples,
    elapsed: Duration,
}

impl Load {
    pub(super) fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `request` from `CLIENTS` tasks, back to back, for `window`.
pub(super) async fn load(
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

/// Fails unless the list (found under `path` in the answer's data) is a full first page of
/// the seeded team, with its count.
pub(super) async fn check_page(
    client: &reqwest::Client,
    url: &str,
    list: &Request,
    count: usize,
    path: &[&str],
) -> anyhow::Result<()> {
    let body: Value = serde_json::from_slice(send(client, url, list).await?.as_ref())?;
    let connections = path.iter().fold(&body["data"], |value, key| &value[*key]);
    let edges = connections["edges"].as_array().context("the list has no edges")?;
    ensure!(
        connections["totalCount"] == count,
        "the team lists {} connections, not {count}",
        connections["totalCount"]
    );
    ensure!(edges.len() == count.min(50), "a page holds {} connections", edges.len());
    ensure!(
        edges.iter().all(|e| e["node"]["lastVerification"]["outcome"] == "OK"),
        "a connection lacks its latest verification"
    );
    Ok(())
}
