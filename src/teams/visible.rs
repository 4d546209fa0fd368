//! The teams a caller can see, with what the caller may do in each, and their audit trails.

use crate::access;
use crate::domain::{AuditEvent, AuditEventId, ConnectionId, Principal, Team, TeamAccess, TeamId};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;

/// Every team the caller belongs to (a service token: its own team).
pub async fn visible(state: &AppState, principal: &Principal) -> AppResult<Vec<(Team, TeamAccess)>> {
    match principal {
        Principal::User { user_id, .. } => Ok(store::teams::teams_of_user(&state.db, *user_id)
            .await?
            .into_iter()
            .map(|(team, role)| (team, TeamAccess::Member(role)))
            .collect()),
        Principal::Service { team_id, .. } => {
            let team = store::teams::find(&state.db, *team_id).await?.ok_or(AppError::Unauthenticated)?;
            Ok(vec![(team, TeamAccess::Service)])
        }
    }
}

/// What the caller may do in a team, if it can see it; another team answers exactly like a
/// missing one. Teams are never deleted, so an answer also says the team exists.
pub async fn access_to(
    state: &AppState,
    principal: &Principal,
    team_id: TeamId,
) -> AppResult<Option<TeamAccess>> {
    match access::cached_team_access(state, principal, team_id).await {
        Ok(access) => Ok(Some(access)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

/// One team, if the caller can see it; another team answers exactly like a missing one.
pub async fn find(
    state: &AppState,
    principal: &Principal,
    team_id: TeamId,
) -> AppResult<Option<(Team, TeamAccess)>> {
    let Some(access) = access_to(state, principal, team_id).await? else {
        return Ok(None);
    };
    Ok(store::teams::find(&state.db, team_id).await?.map(|team| (team, access)))
}

/// Up to `limit` entries of a team's audit trail older than `before`, newest first; only
/// those about `connection_id` when given.
pub async fn audit_trail(
    state: &AppState,
    principal: &Principal,
    team_id: TeamId,
    connection_id: Option<ConnectionId>,
    before: Option<AuditEventId>,
    limit: u64,
) -> AppResult<Vec<AuditEvent>> {
    access::cached_team_access(state, principal, team_id).await?;
    Ok(store::audit::list(&state.db, team_id, connection_id, before, limit).await?)
}
