//! d. Refresh storm: 1,000 concurrent `fresh_access_token` calls on one connection whose access
//! token expired, against a local token endpoint that answers after 50 ms. Single flight must
//! turn them into exactly one token request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use plugboard::connections::fresh_access_token;
use secrecy::ExposeSecret;
use tokio::sync::Barrier;

use crate::harness::app::{Backend, Instance};
use crate::harness::provider::{Delays, Provider};
use crate::harness::stats::Samples;
use crate::harness::{Scale, Summary, seed};

const CALLS: usize = 1_000;
const TOKEN_LATENCY: Duration = Duration::from_millis(50);

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Summary>> {
    let label = "d/sqlite";
    let count = scale.items(CALLS);
    let provider = Provider::start(Delays { token: TOKEN_LATENCY, ..Delays::default() }).await?;
    let instance = Instance::prepare(&Backend::Sqlite, &provider, &[]).await?;
    let id = seed::expired_oauth_connection(&instance.state, instance.team_id).await?;
    let connection = plugboard::store::connections::find(&instance.state.db, instance.team_id, id)
        .await?
        .context("the seeded connection is missing")?;

    // Every call starts at the same instant, each on its own task.
    let start = Arc::new(Barrier::new(count));
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..count {
        let (state, connection, start) = (instance.state.clone(), connection.clone(), start.clone());
        calls.spawn(async move {
            start.wait().await;
            let began = Instant::now();
            let token = fresh_access_token(&state, &connection, false).await;
            (token, began.elapsed())
        });
    }
    let mut latencies = Samples::default();
    let mut tokens = std::collections::BTreeSet::new();
    while let Some(done) = calls.join_next().await {
        let (token, took) = done?;
        let token = token.map_err(|problem| anyhow::anyhow!("a credential read failed: {problem}"))?;
        tokens.insert(token.expose_secret().to_owned());
        latencies.push(took);
    }
    let requests = provider.token_requests();
    provider.stop().await;
    ensure!(tokens.len() == 1, "the callers got {} different tokens", tokens.len());
    println!(
        "{label}: {count} concurrent reads, {requests} token request(s) to an endpoint answering in {} ms; \
         every caller got the same new token",
        TOKEN_LATENCY.as_millis()
    );
    println!("{label}: latency {}", latencies.describe());
    Ok(vec![Summary::new(
        format!(
            "{label}: {count} concurrent reads of one expired token, {requests} token request(s) (target exactly \
             1); latency p50 {} p99 {}",
            crate::harness::stats::ms(latencies.p50()),
            crate::harness::stats::ms(latencies.p99())
        ),
        requests == 1,
    )])
}
