//! Moving every sealed secret under the active master key.

use super::secrets;
use crate::state::AppState;
use crate::store;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RotationReport {
    pub resealed: u64,
    /// Rows edited while the rotation ran; the edit sealed them under the active key already.
    pub skipped_changed: u64,
}

/// Re-seals every secret not yet under the active key, in batches. Safe to stop and rerun:
/// each row is swapped on its own, and only if nobody changed it meanwhile.
pub async fn rotate_keys(state: &AppState, batch_size: u64) -> anyhow::Result<RotationReport> {
    let active = state.sealer.active_key_id().to_string();
    let mut report = RotationReport::default();
    let mut after = None;
    loop {
        let rows = store::connections::sealed_under_other_keys(&state.db, &active, after, batch_size).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.id);
        let txn = crate::store::begin(&state.db).await?;
        for row in &rows {
            let resealed = secrets::reseal(&state.sealer, row.team_id, row.id, &row.blob)?;
            if store::connections::swap_sealed(&txn, row, resealed).await? {
                report.resealed += 1;
            } else {
                report.skipped_changed += 1;
            }
        }
        txn.commit().await?;
        tracing::info!(resealed = report.resealed, "key rotation batch done");
    }
    Ok(report)
}
