//! Creating teams and managing who belongs to them.

use sea_orm::ConnectionTrait;
use serde_json::json;

use super::audit;
use crate::access::{self, TeamScope};
use crate::domain::{
    Actor, AuditAction, Email, Member, Principal, Team, TeamId, TeamName, TeamRole, User, UserId,
};
use crate::error::{AppError, AppResult};
use crate::events::{self, AccessEvent};
use crate::state::AppState;
use crate::store;

const LAST_ADMIN: &str = "a team keeps at least one ADMIN; make another member ADMIN first";

/// A new team with the caller as its `ADMIN`, and the caller's scope there. Only people create
/// teams.
pub async fn create_team(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> AppResult<(Team, TeamScope)> {
    let Some(user_id) = principal.user_id() else {
        return Err(AppError::Forbidden("service tokens cannot create teams; use a person's token".into()));
    };
    let name = TeamName::parse(name).map_err(|m| AppError::bad_input("name", m))?;
    let txn = store::begin(&state.db).await?;
    if store::teams::find_by_name(&txn, &name).await?.is_some() {
        return Err(AppError::bad_input("name", format!("a team named {:?} exists already", name.as_str())));
    }
    let team = store::teams::insert(&txn, &name).await?;
    store::teams::set_membership(&txn, team.id, user_id, TeamRole::Admin).await?;
    audit::record(
        &txn,
        team.id,
        &principal.actor(),
        AuditAction::TeamCreated,
        json!({ "name": name.as_str() }),
    )
    .await?;
    txn.commit().await?;
    let scope = access::scope(state, principal, team.id).await?;
    Ok((team, scope))
}

/// A team's members, by e-mail.
pub async fn members(state: &AppState, scope: &TeamScope) -> AppResult<Vec<Member>> {
    Ok(store::teams::members(&state.db, scope.team()).await?)
}

/// Adds `email` (creating the user when new) to the team in `role`.
pub async fn add_member(
    state: &AppState,
    principal: &Principal,
    team_id: TeamId,
    email: &str,
    role: TeamRole,
) -> AppResult<Member> {
    let email = Email::parse(email).map_err(|m| AppError::bad_input("email", m))?;
    // Checked under the team's lock, so an ADMIN demoted meanwhile can no longer act.
    let txn = store::begin(&state.db).await?;
    store::teams::lock(&txn, team_id).await?;
    access::require_admin(&txn, principal, team_id).await?;
    let user = store::teams::find_or_insert_user(&txn, &email).await?;
    if store::teams::role_of(&txn, team_id, user.id).await?.is_some() {
        return Err(AppError::bad_input(
            "email",
            format!("{} is already a member; change the role with updateTeamMember", email.as_str()),
        ));
    }
    let member = set_member(&txn, &principal.actor(), team_id, &user, role, None).await?;
    txn.commit().await?;
    Ok(member)
}

/// Changes a member's role. Demoting the last `ADMIN` is refused.
pub async fn update_member(
    state: &AppState,
    principal: &Principal,
    team_id: TeamId,
    user_id: UserId,
    role: TeamRole,
) -> AppResult<Member> {
    let txn = store::begin(&state.db).await?;
    store::teams::lock(&txn, team_id).await?;
    access::require_admin(&txn, principal, team_id).await?;
    let previous =
        store::teams::role_of(&txn, team_id, user_id).await?.ok_or(AppError::NotFound("member"))?;
    let user = store::teams::find_user(&txn, user_id).await?.ok_or(AppError::NotFound("member"))?;
    let member = set_member(&txn, &principal.actor(), team_id, &user, role, Some(previous)).await?;
    if store::teams::count_admins(&txn, team_id).await? == 0 {
        return Err(AppError::bad_input("role", LAST_ADMIN));
    }
    let changes = [AccessEvent::membership_changed(team_id, user_id)];
    if previous != role {
        events::stage(&txn, &changes).await?;
    }
    txn.commit().await?;
    access::changed(&state.access, &changes);
    state.events.wake_dispatcher();
    Ok(member)
}

/// Removes a member. Their open subscriptions to the team end; removing the last `ADMIN` is
/// refused.
pub async fn remove_member(
    state: &AppState,
    principal: &Principal,
    team_id: TeamId,
    user_id: UserId,
) -> AppResult<UserId> {
    let txn = store::begin(&state.db).await?;
    store::teams::lock(&txn, team_id).await?;
    access::require_admin(&txn, principal, team_id).await?;
    let role = store::teams::role_of(&txn, team_id, user_id).await?.ok_or(AppError::NotFound("member"))?;
    let user = store::teams::find_user(&txn, user_id).await?.ok_or(AppError::NotFound("member"))?;
    store::teams::remove_membership(&txn, team_id, user_id).await?;
    if store::teams::count_admins(&txn, team_id).await? == 0 {
        return Err(AppError::bad_input("userId", LAST_ADMIN));
    }
    audit::record(
        &txn,
        team_id,
        &principal.actor(),
        AuditAction::MemberRemoved,
        json!({ "user_id": user_id.to_string(), "email": user.email.as_str(), "role": role.as_str() }),
    )
    .await?;
    // Open subscriptions of the member learn it through the outbox, on every instance.
    let changes = [AccessEvent::membership_changed(team_id, user_id)];
    events::stage(&txn, &changes).await?;
    txn.commit().await?;
    access::changed(&state.access, &changes);
    state.events.wake_dispatcher();
    Ok(user_id)
}

/// Writes a membership and its audit entry, inside the caller's transaction. `previous` is the
/// role before, for a change; the CLI's `bootstrap` uses this too.
pub async fn set_member(
    db: &impl ConnectionTrait,
    actor: &Actor,
    team_id: TeamId,
    user: &User,
    role: TeamRole,
    previous: Option<TeamRole>,
) -> AppResult<Member> {
    store::teams::set_membership(db, team_id, user.id, role).await?;
    let (action, detail) = match previous {
        None => (
            AuditAction::MemberAdded,
            json!({ "user_id": user.id.to_string(), "email": user.email.as_str(), "role": role.as_str() }),
        ),
        Some(previous) => (
            AuditAction::MemberRoleChanged,
            json!({
                "user_id": user.id.to_string(), "email": user.email.as_str(),
                "previous_role": previous.as_str(), "role": role.as_str(),
            }),
        ),
    };
    if previous != Some(role) {
        audit::record(db, team_id, actor, action, detail).await?;
    }
    let since = match previous {
        None => chrono::Utc::now(),
        Some(_) => store::teams::members(db, team_id)
            .await?
            .into_iter()
            .find(|m| m.user.id == user.id)
            .map(|m| m.since)
            .unwrap_or_else(chrono::Utc::now),
    };
    Ok(Member { user: user.clone(), role, since })
}
