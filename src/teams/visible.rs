//! The teams a caller can see, with what the caller may do in each, and their audit trails.

use crate::access::{self, TeamScope};
use crate::domain::{AuditEvent, AuditEventId, ConnectionId, Principal, Team, TeamId};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;

/// Every team the caller belongs to (a service token: its own team).
pub async fn visible(state: &AppState, principal: &Principal) -> AppResult<Vec<(Team, TeamScope)>> {
    access::visible_teams(state, principal).await
}

/// The caller's scope in a team, if it can see it; another team answers exactly like a missing
/// one. Teams are never deleted, so a scope also says the team exists: its row need not be read.
pub async fn scope_of(
    state: &AppState,
    principal: &Principal,
    team_id: TeamId,
) -> AppResult<Option<TeamScope>> {
    match access::scope(state, principal, team_id).await {
        Ok(scope) => Ok(Some(scope)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The row of a team the caller may see.
pub async fn row(state: &AppState, scope: &TeamScope) -> AppResult<Team> {
    store::teams::find(&state.db, scope.team()).await?.ok_or(AppError::NotFound("team"))
}

/// Up to `limit` entries of a team's audit trail older than `before`, newest first; only
/// those about `connection_id` when given.
pub async fn audit_trail(
    state: &AppState,
    scope: &TeamScope,
    connection_id: Option<ConnectionId>,
    before: Option<AuditEventId>,
    limit: u64,
) -> AppResult<Vec<AuditEvent>> {
    Ok(store::audit::list(&state.db, scope.team(), connection_id, before, limit).await?)
}
