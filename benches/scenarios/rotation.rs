//! e. Key rotation: `connections::rotate_keys` (what `plugboard rotate-keys` runs, with its
//! default batch of 500) over 100,000 connections sealed with `k1`, after a restart with the
//! keys `k2,k1`.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use plugboard::connections::rotate_keys;
use plugboard::store::entities::connection::{Column, Entity};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::harness::app::{Backend, Instance, K1, K2};
use crate::harness::provider::{Delays, Provider};
use crate::harness::stats::secs;
use crate::harness::{Scale, Summary, seed};

const CONNECTIONS: usize = 100_000;
/// `plugboard rotate-keys`'s default `--batch-size`.
const BATCH: u64 = 500;
const TARGET: Duration = Duration::from_secs(30);

pub async fn run(scale: Scale) -> anyhow::Result<Vec<Summary>> {
    let label = "e/sqlite";
    let count = scale.items(CONNECTIONS);
    let provider = Provider::start(Delays::default()).await?;
    let instance = Instance::prepare(&Backend::Sqlite, &provider, &[]).await?;
    let started = Instant::now();
    let ids = seed::api_key_connections(&instance.state, instance.team_id, count, false).await?;
    println!(
        "{label}: seeded {count} connections sealed with k1 in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let keys = format!("{K2},{K1}");
    let rotated = instance.reopen(&[("PLUGBOARD_MASTER_KEYS", &keys)]).await?;
    let started = Instant::now();
    let report = rotate_keys(&rotated, BATCH).await?;
    let took = started.elapsed();
    provider.stop().await;

    let left = Entity::find().filter(Column::SecretsKeyId.eq("k1")).count(&rotated.db).await?;
    ensure!(left == 0, "{left} connections are still sealed with k1");
    let last = *ids.last().context("nothing was seeded")?;
    let (_, sealed) = plugboard::store::connections::find_with_secrets(&rotated.db, instance.team_id, last)
        .await?
        .context("a rotated connection is missing")?;
    let sealed = sealed.context("a rotated connection lost its secrets")?;
    ensure!(plugboard::crypto::Sealer::envelope_key_id(&sealed)?.to_string() == "k2", "not sealed with k2");
    plugboard::connections::open_secrets(&rotated.sealer, instance.team_id, last, &sealed)?;

    let rate = report.resealed() as f64 / took.as_secs_f64();
    println!("{label}: {report:?} in {} ({rate:.0} connections/s, batches of {BATCH})", secs(took));
    Ok(vec![Summary::new(
        format!(
            "{label}: re-sealed {} connections k1 -> k2 in {} (target <= {} s)",
            report.resealed(),
            secs(took),
            TARGET.as_secs()
        ),
        report.resealed() == count as u64 && took <= TARGET,
    )])
}
