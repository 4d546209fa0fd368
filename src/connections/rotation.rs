//! Moving every sealed secret under the active master key: connections, webhook secrets and
//! consents in progress (every table `store::sealed` knows). A row that cannot be opened is
//! reported by id and the rotation goes on; rows changed meanwhile are revisited; the report
//! ends with what is still sealed under another key, so an operator knows whether an old key
//! may be removed.

use std::collections::BTreeSet;

use super::{consent, secrets};
use crate::crypto::{Binding, Sealer};
use crate::domain::ConnectionId;
use crate::state::AppState;
use crate::store;
use crate::store::sealed::{SealedRow, SealedTable};

/// How often rows changed during a pass are looked at again before giving up on them.
const PASSES: usize = 3;

/// What rotation did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub table: &'static str,
    pub resealed: u64,
    /// Rows changed while the rotation ran and still under another key after every pass.
    pub skipped_changed: u64,
    /// Rows no configured key opens (or bound to another row): by id, with why.
    pub unopenable: Vec<(uuid::Uuid, String)>,
    /// Rows still sealed under another key than the active one at the end.
    pub remaining: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub tables: Vec<TableReport>,
}

impl RotationReport {
    /// Whether nothing is left under another key: the old keys may be removed.
    pub fn complete(&self) -> bool {
        self.tables.iter().all(|t| t.remaining == 0)
    }

    /// Rows re-sealed across every table.
    pub fn resealed(&self) -> u64 {
        self.tables.iter().map(|t| t.resealed).sum()
    }

    pub fn table(&self, table: SealedTable) -> Option<&TableReport> {
        self.tables.iter().find(|t| t.table == table.name())
    }
}

/// Re-seals every secret not yet under the active key, in batches. Safe to stop and rerun:
/// each row is swapped on its own, and only if nobody changed it meanwhile.
pub async fn rotate_keys(state: &AppState, batch_size: u64) -> anyhow::Result<RotationReport> {
    let mut report = RotationReport::default();
    for table in SealedTable::ALL {
        report.tables.push(rotate_table(state, table, batch_size.max(1)).await?);
    }
    Ok(report)
}

/// How many rows of each table are still sealed under another key than the active one,
/// changing nothing: `rotate-keys --check`.
pub async fn check_keys(state: &AppState) -> anyhow::Result<RotationReport> {
    let active = state.sealer.active_key_id().to_string();
    let mut report = RotationReport::default();
    for table in SealedTable::ALL {
        let remaining = store::sealed::count_under_other_keys(&state.db, table, &active).await?;
        report.tables.push(TableReport {
            table: table.name(),
            resealed: 0,
            skipped_changed: 0,
            unopenable: Vec::new(),
            remaining,
        });
    }
    Ok(report)
}

async fn rotate_table(state: &AppState, table: SealedTable, batch_size: u64) -> anyhow::Result<TableReport> {
    let active = state.sealer.active_key_id().to_string();
    let mut resealed = 0;
    let mut skipped = 0;
    let mut unopenable: Vec<(uuid::Uuid, String)> = Vec::new();
    let mut given_up: BTreeSet<uuid::Uuid> = BTreeSet::new();
    for _ in 0..PASSES {
        skipped = 0;
        let mut after = None;
        loop {
            let rows = store::sealed::under_other_keys(&state.db, table, &active, after, batch_size).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            let txn = crate::store::begin(&state.db).await?;
            for row in &rows {
                if given_up.contains(&row.id) {
                    continue;
                }
                let blob = match reseal(&state.sealer, table, row) {
                    Ok(blob) => blob,
                    Err(err) => {
                        tracing::warn!(table = table.name(), id = %row.id, error = %err, "a sealed row cannot be opened; left as it is");
                        given_up.insert(row.id);
                        unopenable.push((row.id, err));
                        continue;
                    }
                };
                if store::sealed::swap(&txn, table, row, blob, &active).await? {
                    resealed += 1;
                } else {
                    skipped += 1;
                }
            }
            txn.commit().await?;
            tracing::info!(table = table.name(), resealed, "key rotation batch done");
        }
        if skipped == 0 {
            break;
        }
    }
    let remaining = store::sealed::count_under_other_keys(&state.db, table, &active).await?;
    Ok(TableReport { table: table.name(), resealed, skipped_changed: skipped, unopenable, remaining })
}

/// The row's blob sealed again under the active key, for the same binding; or why not.
fn reseal(sealer: &Sealer, table: SealedTable, row: &SealedRow) -> Result<Vec<u8>, String> {
    let binding = match table {
        SealedTable::Connections => secrets::binding(row.team_id, ConnectionId::from_uuid(row.id)),
        SealedTable::Webhooks => Binding::new(crate::webhooks::SECRET_PURPOSE, row.team_id.as_uuid(), row.id),
        SealedTable::OAuthStates => Binding::new(consent::STATE_PURPOSE, row.team_id.as_uuid(), row.id),
    };
    sealer.reseal(&row.blob, &binding).map_err(|err| match Sealer::envelope_key_id(&row.blob) {
        Ok(key) if !sealer.key_ids().any(|k| *k == key) => {
            format!("sealed under key {key}, which PLUGBOARD_MASTER_KEYS does not hold")
        }
        _ => err.to_string(),
    })
}
