//! b. Sweep: 100,000 due connections of one API-key app (OpenAI) checked by
//! `scheduler::run_due_checks` against a local provider that answers after 20 ms, 256 at a time,
//! with the service's default claim batch (`PLUGBOARD_CHECK_BATCH`, 500): the sweep claims a
//! batch ahead while checks run, and records results in batches while later checks run.
//!
//! The ideal is N x latency / concurrency. The provider measures how long it had at least one
//! request in flight; the rest of the wall time no check was running (the first claim, the last
//! records).

use std::time::{Duration, Instant};

use plugboard::scheduler::run_due_checks;
use plugboard::store::entities::{audit_event, verification};
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::harness::app::{Backend, Instance};
use crate::harness::provider::{Delays, Provider};
use crate::harness::stats::{mib, secs};
use crate::harness::{Scale, Summary, process, seed};

const CONNECTIONS: usize = 100_000;
const LATENCY: Duration = Duration::from_millis(20);
const CONCURRENCY: usize = 256;
const TARGET_RATIO: f64 = 1.25;
const TARGET_RSS: u64 = 200 * 1024 * 1024;

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Summary>> {
    let label = "b/sqlite";
    let count = scale.items(CONNECTIONS);
    let provider = Provider::start(Delays { verify: LATENCY, ..Delays::default() }).await?;
    let settings = [
        ("PLUGBOARD_CHECK_CONCURRENCY", CONCURRENCY.to_string()),
        // Far above what the sweep reaches, so the per-app pace never holds it back.
        ("PLUGBOARD_APP_RATE_LIMIT", "1000000".to_owned()),
    ];
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let instance = Instance::prepare(&Backend::Sqlite, &provider, &settings).await?;
    let started = Instant::now();
    seed::api_key_connections(&instance.state, instance.team_id, count, true).await?;
    println!("{label}: seeded {count} due connections in {:.1} s", started.elapsed().as_secs_f64());

    let reset = process::reset_peak_rss();
    let rss_before = process::rss();
    let busy_before = provider.busy();
    let cpu_before = process::cpu_time();
    let started = Instant::now();
    // On a runtime worker, as the cron tick runs it.
    let state = instance.state.clone();
    let report = tokio::spawn(async move { run_due_checks(&state).await }).await??;
    let wall = started.elapsed();
    let peak = process::peak_rss();
    let cpu = process::cpu_time().zip(cpu_before).map(|(after, before)| after - before);
    let busy = provider.busy() - busy_before;

    let db = &instance.state.db;
    let history = verification::Entity::find().count(db).await?;
    let audit = audit_event::Entity::find().count(db).await?;
    let ideal = LATENCY * count as u32 / CONCURRENCY as u32;
    let ratio = wall.as_secs_f64() / ideal.as_secs_f64();
    let per_second = report.recorded as f64 / wall.as_secs_f64();
    println!("{label}: {report:?}; the provider answered {} checks", provider.verify_requests());
    println!(
        "{label}: wall {} vs ideal {} ({count} x {} ms / {CONCURRENCY}): ratio {ratio:.2}",
        secs(wall),
        secs(ideal),
        LATENCY.as_millis()
    );
    println!(
        "{label}: checks in flight during {} ({:.0}% of the wall); no check in flight during {} (claiming and \
         recording)",
        secs(busy),
        100.0 * busy.as_secs_f64() / wall.as_secs_f64(),
        secs(wall.saturating_sub(busy))
    );
    println!(
        "{label}: {per_second:.0} recorded checks/s; a batch of up to 500 results is one transaction of one \
         multi-row statement each (UPDATE connections, INSERT verifications, DELETE beyond the history \
         limit, INSERT audit_events for changes of status only) after three look-ups of which connections \
         flows use; stored now: {history} verifications, {audit} audit events"
    );
    if let Some(cpu) = cpu {
        println!(
            "{label}: CPU time {} over the wall's {} ({:.2} of the machine's {} cores busy; service, provider and \
             bench together)",
            secs(cpu),
            secs(wall),
            cpu.as_secs_f64() / wall.as_secs_f64(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
    }
    let rss_note = if reset { "peak reset before the sweep" } else { "peak since process start" };
    println!(
        "{label}: peak RSS {} (VmHWM, {rss_note}; includes the in-process provider and the bench), RSS {} \
         when the sweep started",
        peak.map_or("unknown".into(), mib),
        rss_before.map_or("unknown".into(), mib)
    );
    provider.stop().await;

    let complete = report.recorded == count as u64;
    if !complete {
        println!("{label}: only {} of {count} checks were recorded", report.recorded);
    }
    let rss_met = peak.is_some_and(|peak| peak <= TARGET_RSS);
    Ok(vec![Summary::new(
        format!(
            "{label}: {} checks in {}, ideal {}, ratio {ratio:.2} (target <= {TARGET_RATIO}); peak RSS {} (target \
             <= 200 MB); {per_second:.0} recorded checks/s",
            report.recorded,
            secs(wall),
            secs(ideal),
            peak.map_or("unknown".into(), mib),
        ),
        complete && ratio <= TARGET_RATIO && rss_met,
    )])
}
