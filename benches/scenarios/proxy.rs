//! f. Proxy: what `/proxy/{path}` adds over calling a loopback provider directly (p50 and p99
//! of the same request, sent one at a time, alternating direct and proxied), then proxied
//! requests per second with 64 concurrent callers. Every proxied call goes the whole way: token
//! lookup, connection and secrets read, credentials attached, the provider's answer streamed
//! back, and the call audited.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use secrecy::ExposeSecret;

use crate::harness::app::{Backend, Instance};
use crate::harness::provider::{Delays, Provider};
use crate::harness::stats::{Samples, ms};
use crate::harness::{Scale, Summary, seed};

const SEQUENTIAL: usize = 2_000;
const CALLERS: usize = 64;
const THROUGHPUT_CALLS: usize = 40_000;
const TARGET_OVERHEAD_MS: f64 = 1.0;
const TARGET_RATE: f64 = 5_000.0;

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Summary>> {
    let label = "f/sqlite";
    let provider = Provider::start(Delays::default()).await?;
    let instance = Instance::serve(&Backend::Sqlite, &provider, &[]).await?;
    let connection = seed::api_key_connections(&instance.state, instance.team_id, 1, false).await?[0];
    let runner =
        plugboard::access::issue_service_token(&instance.state.db, instance.team_id, "bench", None).await?;
    let runner = runner.token.expose_secret().to_owned();
    let proxied = format!("{}/proxy/models", instance.address()?);
    let direct = format!("{}/v1/models", provider.url);
    let client = reqwest::Client::builder().pool_max_idle_per_host(CALLERS * 2).build()?;
    let proxy_call = {
        let (client, runner, connection) = (client.clone(), runner.clone(), connection.to_string());
        move || client.get(&proxied).bearer_auth(&runner).header("plugboard-connection", &connection).send()
    };
    // Warm both paths (connections pooled, statements prepared).
    for _ in 0..50 {
        ensure!(proxy_call().await?.status() == 200, "a proxied call failed");
        client.get(&direct).bearer_auth("sk-bench-0000000").send().await?;
    }

    let count = scale.items(SEQUENTIAL);
    let (mut direct_ms, mut proxied_ms) = (Samples::default(), Samples::default());
    for _ in 0..count {
        let began = Instant::now();
        let response = client.get(&direct).bearer_auth("sk-bench-0000000").send().await?;
        response.bytes().await?;
        direct_ms.push(began.elapsed());
        let began = Instant::now();
        let response = proxy_call().await?;
        ensure!(response.status() == 200, "a proxied call answered {}", response.status());
        response.bytes().await?;
        proxied_ms.push(began.elapsed());
    }
    let overhead_p50 = proxied_ms.p50() - direct_ms.p50();
    let overhead_p99 = proxied_ms.p99() - direct_ms.p99();
    println!("{label}: {count} sequential calls each way");
    println!("{label}: direct   {}", direct_ms.describe());
    println!("{label}: proxied  {}", proxied_ms.describe());
    println!("{label}: overhead p50 {} p99 {}", ms(overhead_p50), ms(overhead_p99));

    let total = scale.items(THROUGHPUT_CALLS);
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let (call, next, failures) = (proxy_call.clone(), next.clone(), failures.clone());
        callers.spawn(async move {
            let mut latencies = Samples::default();
            while next.fetch_add(1, Ordering::SeqCst) < total as u64 {
                let sent = Instant::now();
                match call().await {
                    Ok(response) if response.status() == 200 => {
                        let _ = response.bytes().await;
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
                latencies.push(sent.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Samples::default();
    while let Some(done) = callers.join_next().await {
        latencies.extend(done?);
    }
    let elapsed = began.elapsed();
    let rate = total as f64 / elapsed.as_secs_f64();
    let failed = failures.load(Ordering::SeqCst);
    println!(
        "{label}: {total} calls by {CALLERS} concurrent callers in {:.2} s: {rate:.0} requests/s, {failed} failed; \
         latency {}",
        elapsed.as_secs_f64(),
        latencies.describe()
    );
    let recorded = wait_for_audit(&instance, connection, (count + 50 + total) as u64).await?;
    println!("{label}: {recorded} calls audited");
    provider.stop().await;
    Ok(vec![
        Summary::new(
            format!(
                "{label}: proxy overhead over a direct loopback call p50 {} p99 {} (target p50 <= {} ms)",
                ms(overhead_p50),
                ms(overhead_p99),
                TARGET_OVERHEAD_MS
            ),
            overhead_p50 <= TARGET_OVERHEAD_MS,
        ),
        Summary::new(
            format!(
                "{label}: {rate:.0} proxied requests/s with {CALLERS} concurrent callers, {failed} failed \
                 (target >= {TARGET_RATE:.0})"
            ),
            rate >= TARGET_RATE && failed == 0,
        ),
    ])
}

/// Waits (a little) for the audit writer to catch up, and answers how many calls it recorded.
async fn wait_for_audit(
    instance: &Instance,
    connection: plugboard::domain::ConnectionId,
    expected: u64,
) -> anyhow::Result<u64> {
    use plugboard::store::entities::api_call::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let recorded =
            Entity::find().filter(Column::ConnectionId.eq(connection)).count(&instance.state.db).await?;
        if recorded >= expected || Instant::now() > deadline {
            return Ok(recorded);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
