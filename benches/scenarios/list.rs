//! a. List: `team.connections(first: 50)` on a team of 10,000 connections over HTTP, beside
//! `{ __typename }` on the same server in the same run.
//!
//! A fixed number of client tasks send requests back to back for a fixed time; each request is
//! timed from send to the last byte of the answer. `__typename` is sent with the same bearer token
//! (so both pay for authentication, which every real list request does) and once more without one.
//!
//! The targets compare the page with its peers on PostgreSQL (see `list_peers`): at least 1.5
//! times PostGraphile's rate for the same page, and at least half the rate at which PostgreSQL
//! itself answers the page and the count. The SQLite run is held to the same peers' figures.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use super::list_load::{CLIENTS, Load, Request, check_page, load};
use super::list_peers::{self, Peers};
use crate::harness::app::{Backend, Instance};
use crate::harness::provider::{Delays, Provider};
use crate::harness::stats::ms;
use crate::harness::{Scale, Summary, seed};

const CONNECTIONS: usize = 10_000;
/// Of PostGraphile's rate for the same page.
const TARGET_VS_POSTGRAPHILE: f64 = 1.5;
/// Of PostgreSQL's rate for the page and the count (pgbench).
const TARGET_VS_PGBENCH: f64 = 0.5;
/// Issue 18: the authenticated `{ __typename }` at least half the anonymous one's rate.
const TARGET_AUTHENTICATED: f64 = 0.5;

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
    // PostgreSQL first: its run measures the peers both runs are held to.
    let mut summaries = Vec::new();
    let mut peers = Peers::default();
    match Backend::postgres_from_env() {
        Some(Backend::Postgres { admin_url }) => {
            // Plaintext, as the peers speak it; the pool's default would negotiate TLS.
            let postgres = Backend::Postgres { admin_url: with_sslmode_disable(&admin_url)? };
            let (summary, measured) = on(&postgres, scale, None).await?;
            peers = measured;
            summaries.push(summary);
        }
        _ => println!(
            "a/postgres: skipped, and with it the peers (PostGraphile, pgbench); set PLUGBOARD_BENCH_DATABASE_URL \
             (or PLUGBOARD_TEST_DATABASE_URL) to a server where the bench may create databases"
        ),
    }
    let (summary, _) = on(&Backend::Sqlite, scale, Some(peers)).await?;
    summaries.insert(0, summary);
    Ok(summaries)
}

fn with_sslmode_disable(url: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(url).context("the PostgreSQL URL is not a URL")?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "sslmode")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept).append_pair("sslmode", "disable");
    Ok(url.to_string())
}

/// Runs the scenario on `backend`. Without `peers` (PostgreSQL), measures them on the same
/// database after the service.
async fn on(backend: &Backend, scale: Scale, peers: Option<Peers>) -> anyhow::Result<(Summary, Peers)> {
    let label = format!("a/{}", backend.name());
    let count = scale.items(CONNECTIONS);
    let window = if scale.quick { Duration::from_secs(2) } else { Duration::from_secs(10) };
    let provider = Provider::start(Delays::default()).await?;
    let instance = Instance::serve(backend, &provider, &[]).await?;
    let result = async {
        let mut service = measure(&label, &instance, count, window).await?;
        let peers = match peers {
            Some(peers) => peers,
            None => list_peers::measure(&label, &instance, count, window).await,
        };
        anyhow::Ok((judge(&label, &mut service, &peers), peers))
    }
    .await;
    if let Err(err) = instance.drop_database().await {
        println!("{label}: could not drop the bench database: {err:#}");
    }
    provider.stop().await;
    result
}

/// What the service answered in one run.
struct Service {
    list: Load,
    typename: Load,
}

async fn measure(
    label: &str,
    instance: &Instance,
    count: usize,
    window: Duration,
) -> anyhow::Result<Service> {
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
    check_page(&client, &url, &list, count, &["team", "connections"]).await?;

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
        "{label}:   authenticated __typename / anonymous {authentication:.2} (target >= {TARGET_AUTHENTICATED}): {}",
        if authentication >= TARGET_AUTHENTICATED { "MET" } else { "MISSED" }
    );
    println!(
        "{label}:   list to __typename with token {:.2}, to __typename without token {:.2}",
        list.rate() / typename.rate(),
        list.rate() / anonymous.rate()
    );
    Ok(Service { list, typename })
}

/// The summary line: the page's rate against each peer's, and whether both targets hold.
fn judge(label: &str, service: &mut Service, peers: &Peers) -> Summary {
    let rate = service.list.rate();
    let ratio = |peer: Option<f64>, target: f64| match peer {
        Some(peer) => (format!("{:.2} (target >= {target})", rate / peer), rate / peer >= target),
        None => ("not measured".to_owned(), false),
    };
    let (vs_postgraphile, met_postgraphile) = ratio(peers.postgraphile, TARGET_VS_POSTGRAPHILE);
    let (vs_pgbench, met_pgbench) = ratio(peers.pgbench, TARGET_VS_PGBENCH);
    let peer_rate = |peer: Option<f64>| peer.map_or("-".to_owned(), |r| format!("{r:.0}"));
    println!(
        "{label}:   to PostGraphile on PostgreSQL {vs_postgraphile}; to pgbench on PostgreSQL {vs_pgbench}"
    );
    Summary::new(
        format!(
            "{label}: connections(first:50) {rate:.0} req/s p50 {} p99 {} (__typename {:.0}); \
             PostGraphile {} req/s, ratio {vs_postgraphile}; pgbench {} /s, ratio {vs_pgbench}",
            ms(service.list.latencies.p50()),
            ms(service.list.latencies.p99()),
            service.typename.rate(),
            peer_rate(peers.postgraphile),
            peer_rate(peers.pgbench),
        ),
        met_postgraphile && met_pgbench,
    )
}
