//! Audit entries for team changes: who was added, changed or removed, which token was issued or
//! revoked (by name and prefix, never its value).

use chrono::Utc;
use sea_orm::ConnectionTrait;

use crate::domain::{Actor, AuditAction, AuditEvent, AuditEventId, TeamId};
use crate::error::AppResult;
use crate::store;

pub async fn record(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    actor: &Actor,
    action: AuditAction,
    detail: serde_json::Value,
) -> AppResult<()> {
    let event = AuditEvent {
        id: AuditEventId::new(),
        team_id,
        actor: actor.clone(),
        action,
        connection_id: None,
        connection_name: None,
        detail,
        created_at: Utc::now(),
    };
    store::audit::record(db, &event).await?;
    Ok(())
}
