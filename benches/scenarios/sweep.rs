//! b. Sweep: 100,000 due connections of one API-key app (OpenAI) checked by
//! `scheduler::run_due_checks` against a local provider that answers after 20 ms, 256 at a time,
//! with the service's default claim batch (`PLUGBOARD_CHECK_BATCH`, 500): the sweep claims a
//! batch ahead while checks run, and records results in batches while later checks run. The
//! outbox dispatcher runs beside it, as in the service, and publishes each check's event.
//!
//! On SQLite, then (when `PLUGBOARD_BENCH_DATABASE_URL` names a server) on PostgreSQL with one
//! instance, and with two instances on the one database sweeping the same connections at once:
//! that run counts the connections checked more than once, which must be none.
//!
//! The ideal is N x latency / concurrency (of all instances together). The provider measures how
//! long it had at least one request in flight; the rest of the wall time no check was running
//! (the first claim, the last records).
//!
//! After each sweep the bench sends the same requests itself, as many at once, with nothing
//! else running: no database, no service. That floor is what this machine's cores allow for the
//! HTTP alone (client, provider and loopback share them), so the run prints the sweep against
//! it as well as against the ideal.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use plugboard::scheduler::run_due_checks;
use plugboard::state::AppState;
use plugboard::store::entities::{audit_event, verification};
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, Statement};

use crate::harness::app::{Backend, Instance};
use crate::harness::provider::{Delays, Provider};
use crate::harness::stats::{mib, secs};
use crate::harness::{Scale, Summary, process, seed};

const CONNECTIONS: usize = 100_000;
const LATENCY: Duration = Duration::from_millis(20);
const CONCURRENCY: usize = 256;
const TARGET_RATIO_SQLITE: f64 = 1.10;
const TARGET_RATIO_POSTGRES: f64 = 1.25;
const TARGET_RSS: u64 = 200 * 1024 * 1024;
/// How long the outbox may take to drain after a sweep before the bench gives up waiting.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Summary>> {
    let mut summaries = vec![sweep(&Backend::Sqlite, 1, scale).await?];
    match Backend::postgres_from_env() {
        Some(postgres) => {
            summaries.push(sweep(&postgres, 1, scale).await?);
            summaries.push(sweep(&postgres, 2, scale).await?);
        }
        None => println!(
            "b/postgres: skipped; set PLUGBOARD_BENCH_DATABASE_URL (or PLUGBOARD_TEST_DATABASE_URL) to a \
             server where the bench may create databases"
        ),
    }
    Ok(summaries)
}

/// One sweep of `instances` instances on one fresh database.
async fn sweep(backend: &Backend, instances: usize, scale: Scale) -> anyhow::Result<Summary> {
    let label = match instances {
        1 => format!("b/{}", backend.name()),
        n => format!("b/{}x{n}", backend.name()),
    };
    let provider = Provider::start(Delays { verify: LATENCY, ..Delays::default() }).await?;
    let settings = [
        ("PLUGBOARD_CHECK_CONCURRENCY", CONCURRENCY.to_string()),
        // Far above what the sweep reaches, so the per-app pace never holds it back.
        ("PLUGBOARD_APP_RATE_LIMIT", "1000000".to_owned()),
        // The bench's connections all belong to one team, whose provider calls are bounded per
        // instance (8 by default, so one team's slow provider cannot take every check's place):
        // at 8, this sweep would take 100,000 x 20 ms / 8 = 250 s. The scenario measures the
        // sweep at 256 checks at a time, as if many teams were due at once.
        ("PLUGBOARD_TEAM_PROVIDER_CONCURRENCY", CONCURRENCY.to_string()),
    ];
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let instance = Instance::prepare(backend, &provider, &settings).await?;
    let result = measure(&label, &instance, &provider, instances, scale).await;
    if let Err(err) = instance.drop_database().await {
        println!("{label}: could not drop the bench database: {err:#}");
    }
    provider.stop().await;
    result
}

async fn measure(
    label: &str,
    instance: &Instance,
    provider: &Provider,
    instances: usize,
    scale: Scale,
) -> anyhow::Result<Summary> {
    let count = scale.items(CONNECTIONS);
    let started = Instant::now();
    seed::api_key_connections(&instance.state, instance.team_id, count, true).await?;
    println!("{label}: seeded {count} due connections in {:.1} s", started.elapsed().as_secs_f64());
    // Every further instance is another state on the same database: its own pool, event bus
    // and dispatcher, as another process would have.
    let mut states = vec![instance.state.clone()];
    for _ in 1..instances {
        states.push(instance.reopen(&[]).await?);
    }
    let dispatchers: Vec<_> = states
        .iter()
        .map(|state| {
            tokio::spawn(plugboard::scheduler::run_dispatcher(state.clone(), state.events.closed_signal()))
        })
        .collect();

    let reset = process::reset_peak_rss();
    let rss_before = process::rss();
    let busy_before = provider.busy();
    let requests_before = provider.verify_requests();
    let held_before = provider.verify_held();
    let cpu_before = process::cpu_time();
    let started = Instant::now();
    // Each on a runtime worker, as the cron tick runs it; all at once.
    let sweeps: Vec<_> = states
        .iter()
        .map(|state| {
            let state = state.clone();
            tokio::spawn(async move { run_due_checks(&state).await })
        })
        .collect();
    let mut reports = Vec::with_capacity(instances);
    for sweep in sweeps {
        reports.push(sweep.await??);
    }
    let wall = started.elapsed();
    let cpu = process::cpu_time().zip(cpu_before).map(|(after, before)| after - before);
    let busy = provider.busy() - busy_before;
    let requests = provider.verify_requests() - requests_before;
    let held = provider.verify_held() - held_before;
    let drained = drain(&instance.state).await;
    let peak = process::peak_rss();
    let concurrency = CONCURRENCY * instances;
    let ideal = LATENCY * count as u32 / concurrency as u32;
    // After the sweep, so that the floor's client leaves nothing in the sweep's memory figures.
    let floor_held_before = provider.verify_held();
    let floor = http_floor(provider, count, concurrency).await?;
    let floor_held = provider.verify_held() - floor_held_before;
    println!(
        "{label}: the provider held each check {} on average in the sweep, {} in the floor (the ideal assumes {} \
         ms)",
        mean_ms(held, requests),
        mean_ms(floor_held, count as u64),
        LATENCY.as_millis()
    );
    println!(
        "{label}: floor: the bench alone sent the {count} requests, {concurrency} at a time, in {} ({:.2} x the \
         ideal) with {} of CPU",
        secs(floor.wall),
        floor.wall.as_secs_f64() / ideal.as_secs_f64(),
        floor.cpu.map_or("unknown".into(), secs),
    );
    for state in &states {
        state.events.close();
    }
    for dispatcher in dispatchers {
        dispatcher.await.ok();
    }

    let db = &instance.state.db;
    let history = verification::Entity::find().count(db).await?;
    let audit = audit_event::Entity::find().count(db).await?;
    let checked_connections = distinct_checked(db).await?;
    let recorded: u64 = reports.iter().map(|r| r.recorded).sum();
    let ratio = wall.as_secs_f64() / ideal.as_secs_f64();
    let per_second = recorded as f64 / wall.as_secs_f64();
    for (n, report) in reports.iter().enumerate() {
        println!("{label}: instance {}: {report:?}", n + 1);
    }
    // A connection checked twice costs a provider request and (when both results land) a second
    // history row; counting both catches a second check whose result was dropped as stale.
    let duplicates = requests.saturating_sub(checked_connections).max(history - checked_connections);
    println!(
        "{label}: the provider answered {requests} checks; the history holds {history} rows for \
         {checked_connections} connections; connections checked twice: {duplicates}"
    );
    println!(
        "{label}: wall {} vs ideal {} ({count} x {} ms / {concurrency}): ratio {ratio:.2}",
        secs(wall),
        secs(ideal),
        LATENCY.as_millis()
    );
    println!(
        "{label}: the sweep took {:.2} x the floor's {} (HTTP alone, same requests and concurrency)",
        wall.as_secs_f64() / floor.wall.as_secs_f64(),
        secs(floor.wall)
    );
    println!(
        "{label}: checks in flight during {} ({:.0}% of the wall); no check in flight during {} (claiming and \
         recording)",
        secs(busy),
        100.0 * busy.as_secs_f64() / wall.as_secs_f64(),
        secs(wall.saturating_sub(busy))
    );
    println!(
        "{label}: {per_second:.0} recorded checks/s; stored now: {history} verifications, {audit} audit events; \
         {}",
        match drained {
            Ok(after) => format!("the outbox was empty {} after the sweep", secs(after)),
            Err(left) =>
                format!("{left} events were still in the outbox {} after the sweep", secs(DRAIN_LIMIT)),
        }
    );
    if let Some(cpu) = cpu {
        println!(
            "{label}: CPU time {} over the wall's {} ({:.2} of the machine's {} cores busy; service, provider, \
             bench and dispatcher together)",
            secs(cpu),
            secs(wall),
            cpu.as_secs_f64() / wall.as_secs_f64(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
    }
    let rss_note = if reset { "peak reset before the sweep" } else { "peak since process start" };
    println!(
        "{label}: peak RSS {} (VmHWM, {rss_note}, until the outbox drained; includes the in-process provider \
         and the bench), RSS {} when the sweep started",
        peak.map_or("unknown".into(), mib),
        rss_before.map_or("unknown".into(), mib)
    );

    let complete = recorded == count as u64 && checked_connections == count as u64;
    if !complete {
        println!("{label}: {recorded} checks recorded for {checked_connections} of {count} connections");
    }
    let rss_met = peak.is_some_and(|peak| peak <= TARGET_RSS);
    if instances > 1 {
        // Two instances share two cores here: the point of this run is that they never check a
        // connection twice. Their ratio is printed, not held to a target.
        return Ok(Summary::new(
            format!(
                "{label}: {recorded} checks by {instances} instances in {}, ideal {}, ratio {ratio:.2}; connections \
                 checked twice: {duplicates} (target 0)",
                secs(wall),
                secs(ideal),
            ),
            complete && duplicates == 0,
        ));
    }
    let target = match instance.state.db.get_database_backend() {
        sea_orm::DatabaseBackend::Sqlite => TARGET_RATIO_SQLITE,
        _ => TARGET_RATIO_POSTGRES,
    };
    Ok(Summary::new(
        format!(
            "{label}: {recorded} checks in {}, ideal {}, ratio {ratio:.2} (target <= {target}); peak RSS {} (target \
             <= 200 MB); {per_second:.0} recorded checks/s; HTTP alone {} ({:.2} x ideal), the sweep {:.2} x that",
            secs(wall),
            secs(ideal),
            peak.map_or("unknown".into(), mib),
            secs(floor.wall),
            floor.wall.as_secs_f64() / ideal.as_secs_f64(),
            wall.as_secs_f64() / floor.wall.as_secs_f64(),
        ),
        complete && ratio <= target && rss_met,
    ))
}

fn mean_ms(total: Duration, count: u64) -> String {
    match count {
        0 => "nothing".to_owned(),
        n => format!("{:.2} ms", total.as_secs_f64() * 1e3 / n as f64),
    }
}

/// What the HTTP of a sweep costs on its own here.
struct Floor {
    wall: Duration,
    cpu: Option<Duration>,
}

/// Sends `count` verification requests to the provider, `concurrency` at a time, from one
/// client with the service's connection reuse and nothing else: no claims, secrets, records
/// or events. Every answer must be a success, or the floor is not what the sweep does.
async fn http_floor(provider: &Provider, count: usize, concurrency: usize) -> anyhow::Result<Floor> {
    let client = reqwest::Client::new();
    let url = format!("{}/v1/models", provider.url);
    let cpu_before = process::cpu_time();
    let started = Instant::now();
    let mut answers = futures_util::stream::iter(0..count)
        .map(|_| async {
            let send = || client.get(&url).bearer_auth("sk-bench-floor").send();
            // A pooled connection the provider closed just as it was reused fails the request
            // before an answer (seen once in nine runs): it goes again once, so one such race
            // does not void the run.
            let response = match send().await {
                Err(err) if err.is_request() => send().await?,
                sent => sent?,
            };
            response.error_for_status()?.bytes().await
        })
        .buffer_unordered(concurrency);
    while let Some(answer) = answers.next().await {
        answer.context("the provider failed a floor request")?;
    }
    let wall = started.elapsed();
    let cpu = process::cpu_time().zip(cpu_before).map(|(after, before)| after - before);
    Ok(Floor { wall, cpu })
}

/// Waits until the dispatchers have published every staged event. Answers how long that took,
/// or how many were left when the bench gave up.
async fn drain(state: &AppState) -> Result<Duration, u64> {
    let started = Instant::now();
    loop {
        let left = plugboard::store::outbox::backlog(&state.db).await.unwrap_or(u64::MAX);
        if left == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > DRAIN_LIMIT {
            return Err(left);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many connections have at least one check in their history.
async fn distinct_checked(db: &sea_orm::DatabaseConnection) -> anyhow::Result<u64> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(DISTINCT connection_id) AS checked FROM verifications",
        ))
        .await?
        .context("COUNT answered no row")?;
    let checked: i64 = row.try_get("", "checked")?;
    Ok(checked as u64)
}
